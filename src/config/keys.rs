//! The one table of configuration keys.
//!
//! Every key kafka-sdk knows is declared once in the table `KEYS`, with its aliases, value kind,
//! default (as text), the clients that use it, its support status and a one-line doc. Parsing,
//! validation, alias resolution and defaults all go through this table; the typed configs are
//! filled from it. [`known_keys`] lists it (for README generation and tests).

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use super::producer::PartitionerKind;
use super::share::ShareAcknowledgementMode;
use super::{
    Acks, AssignmentStrategy, GroupProtocol, IsolationLevel, OffsetReset, SecurityProtocol,
};
use crate::error::ConfigError;
use crate::record::Compression;

/// Which clients read a key. A key read by none of the clients being built is accepted (and
/// validated) but ignored by that client's typed config.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Clients {
    /// The producer reads this key.
    pub producer: bool,
    /// The consumer reads this key.
    pub consumer: bool,
    /// The admin client reads this key.
    pub admin: bool,
}

impl Clients {
    /// Read by every client (connection, metadata and logging settings).
    pub const ALL: Clients = Clients {
        producer: true,
        consumer: true,
        admin: true,
    };
    /// Read by the producer only.
    pub const PRODUCER: Clients = Clients {
        producer: true,
        consumer: false,
        admin: false,
    };
    /// Read by the consumer only.
    pub const CONSUMER: Clients = Clients {
        producer: false,
        consumer: true,
        admin: false,
    };
    /// Read by the producer and the consumer, not the admin client.
    pub const PRODUCER_CONSUMER: Clients = Clients {
        producer: true,
        consumer: true,
        admin: false,
    };
}

/// One allowed value of an enumerated key, with the other spellings that mean the same.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EnumValue {
    /// The canonical spelling (what the typed config and error messages use).
    pub name: &'static str,
    /// Other accepted spellings (librdkafka names, Java class names, numeric forms).
    pub synonyms: &'static [&'static str],
}

/// What values a key takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Kind {
    /// A decimal integer (surrounding whitespace ignored) in `min..=max`.
    Int {
        /// Smallest allowed value.
        min: i64,
        /// Largest allowed value.
        max: i64,
    },
    /// `true` or `false` in any case; `1` and `0` are accepted too (librdkafka does).
    Bool,
    /// One of a fixed set of values.
    Enum {
        /// The allowed values.
        values: &'static [EnumValue],
        /// Whether `PLAINTEXT` matches `plaintext` (librdkafka and, for these keys, Java
        /// accept any case).
        case_insensitive: bool,
    },
    /// Free text (surrounding whitespace trimmed).
    String {
        /// Whether the empty string is allowed.
        allow_empty: bool,
    },
    /// A comma-separated, non-empty list of enumerated values (case-sensitive).
    List {
        /// The allowed values.
        values: &'static [EnumValue],
    },
    /// A comma-separated list of `host:port` broker addresses.
    HostList,
    /// One of a fixed set of values (any case), or `prefix` followed by an ISO-8601
    /// duration, `PnDTnHnMn.nS` as Java's `Duration.parse` reads it, not negative
    /// (`auto.offset.reset`'s `by_duration:P1D`, KIP-1106).
    EnumOrDuration {
        /// The allowed fixed values.
        values: &'static [EnumValue],
        /// What precedes the duration, e.g. `by_duration:`.
        prefix: &'static str,
    },
}

/// Whether kafka-sdk implements a key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Status {
    /// Implemented.
    Supported,
    /// Accepted and validated, but has no effect in kafka-sdk (the detail says why or what
    /// to use instead). Setting it logs a hint at `info` level.
    Ignored {
        /// Why it is ignored / what to use instead.
        detail: &'static str,
    },
    /// Only some values are implemented; any other valid value gives
    /// [`ConfigError::NotSupported`].
    Partial {
        /// The implemented values, in canonical text form (`true`, `0`, `plaintext`).
        supported: &'static [&'static str],
        /// Shown in the `NotSupported` error.
        detail: &'static str,
    },
    /// Not implemented: setting the key at all gives [`ConfigError::NotSupported`].
    NotSupported {
        /// Shown in the `NotSupported` error.
        detail: &'static str,
    },
}

/// One configuration key: the single source of truth for its name, aliases, values, default
/// and support status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct KeyDef {
    /// Canonical name (Java's where Java has the key, else librdkafka's).
    pub name: &'static str,
    /// Other names meaning the same key (librdkafka/Java alternates).
    pub aliases: &'static [&'static str],
    /// The values it takes.
    pub kind: Kind,
    /// Default as text, `None` when unset means "absent" (e.g. `group.id`).
    pub default: Option<&'static str>,
    /// Which clients read it.
    pub clients: Clients,
    /// Whether kafka-sdk implements it.
    pub status: Status,
    /// One-line description.
    pub doc: &'static str,
}

impl KeyDef {
    const fn new(
        name: &'static str,
        kind: Kind,
        default: Option<&'static str>,
        clients: Clients,
        doc: &'static str,
    ) -> KeyDef {
        KeyDef {
            name,
            aliases: &[],
            kind,
            default,
            clients,
            status: Status::Supported,
            doc,
        }
    }

    const fn aliases(self, aliases: &'static [&'static str]) -> KeyDef {
        KeyDef { aliases, ..self }
    }

    const fn status(self, status: Status) -> KeyDef {
        KeyDef { status, ..self }
    }

    /// Whether `name` is this key's canonical name or one of its aliases.
    pub fn is_named(&self, name: &str) -> bool {
        self.name == name || self.aliases.contains(&name)
    }

    /// A description of the allowed values, as used in [`ConfigError::InvalidValue`]'s
    /// `expected` (e.g. `an integer in 0..=900000`, `one of: none, gzip, snappy, lz4, zstd`).
    pub fn expected(&self) -> String {
        match self.kind {
            Kind::Int { min, max } => format!("an integer in {min}..={max}"),
            Kind::Bool => "true or false".to_string(),
            Kind::Enum { values, .. } => format!("one of: {}", names(values)),
            Kind::String { allow_empty: true } => "a string".to_string(),
            Kind::String { allow_empty: false } => "a non-empty string".to_string(),
            Kind::List { values } => {
                format!("a non-empty comma-separated list of: {}", names(values))
            }
            Kind::HostList => "a comma-separated list of host:port (port in 1..=65535)".to_string(),
            Kind::EnumOrDuration { values, prefix } => format!(
                "one of: {}, or {prefix}<ISO-8601 duration, PnDTnHnMn.nS, not negative>",
                names(values)
            ),
        }
    }

    /// Parses `raw` (the value as given for the spelling `key`) into its canonical form.
    pub(crate) fn parse(&self, key: &str, raw: &str) -> Result<Value, ConfigError> {
        let invalid = || ConfigError::InvalidValue {
            key: key.to_string(),
            value: raw.to_string(),
            expected: self.expected(),
        };
        let text = raw.trim();
        match self.kind {
            Kind::Int { min, max } => match text.parse::<i64>() {
                Ok(v) if (min..=max).contains(&v) => Ok(Value::Int(v)),
                _ => Err(invalid()),
            },
            Kind::Bool => {
                if text.eq_ignore_ascii_case("true") || text == "1" {
                    Ok(Value::Bool(true))
                } else if text.eq_ignore_ascii_case("false") || text == "0" {
                    Ok(Value::Bool(false))
                } else {
                    Err(invalid())
                }
            }
            Kind::Enum {
                values,
                case_insensitive,
            } => match_enum(values, text, case_insensitive)
                .map(Value::Enum)
                .ok_or_else(invalid),
            Kind::String { allow_empty } => {
                if text.is_empty() && !allow_empty {
                    Err(invalid())
                } else {
                    Ok(Value::Str(text.to_string()))
                }
            }
            Kind::List { values } => {
                let mut out: Vec<Choice> = Vec::new();
                for item in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                    let v = match_enum(values, item, false).ok_or_else(invalid)?;
                    if !out.contains(&v) {
                        out.push(v);
                    }
                }
                if out.is_empty() {
                    return Err(invalid());
                }
                Ok(Value::Enums(out))
            }
            Kind::HostList => parse_hosts(key, raw, &self.expected()),
            Kind::EnumOrDuration { values, prefix } => {
                let head = text.get(..prefix.len());
                if head.is_some_and(|h| h.eq_ignore_ascii_case(prefix)) {
                    parse_iso_duration(&text[prefix.len()..])
                        .map(|d| Value::Duration(prefix, d))
                        .ok_or_else(invalid)
                } else {
                    match_enum(values, text, true)
                        .map(Value::Enum)
                        .ok_or_else(invalid)
                }
            }
        }
    }
}

/// Parses an ISO-8601 duration as Java's `Duration.parse` does (`PnDTnHnMn.nS`: days,
/// hours, minutes, seconds with up to nine decimals, any letter case, each part signed),
/// refusing a negative total. Years, months and weeks are not durations there either.
pub(crate) fn parse_iso_duration(text: &str) -> Option<Duration> {
    let (negative, rest) = match text.as_bytes().first()? {
        b'-' => (true, &text[1..]),
        b'+' => (false, &text[1..]),
        _ => (false, text),
    };
    let rest = rest.strip_prefix(['P', 'p'])?;
    let (date, time) = match rest.find(['T', 't']) {
        Some(i) => (&rest[..i], Some(&rest[i + 1..])),
        None => (rest, None),
    };
    // Total in nanoseconds, so that signed parts add up exactly.
    let mut nanos: i128 = 0;
    let mut parts = 0;
    let mut take = |s: &str, units: &[(u8, i128)]| -> Option<()> {
        let mut s = s;
        let mut unit_at = 0;
        while !s.is_empty() {
            let end = s.find(|c: char| c.is_ascii_alphabetic())?;
            let (number, unit) = (&s[..end], s.as_bytes()[end].to_ascii_uppercase());
            let pos = units[unit_at..].iter().position(|(u, _)| *u == unit)? + unit_at;
            unit_at = pos + 1;
            let per = units[pos].1;
            let (whole, frac) = match number.split_once(['.', ',']) {
                Some((w, f))
                    if unit == b'S' && f.len() <= 9 && f.bytes().all(|b| b.is_ascii_digit()) =>
                {
                    (w, f)
                }
                Some(_) => return None,
                None => (number, ""),
            };
            let sign = if whole.starts_with('-') { -1 } else { 1 };
            let digits = whole.trim_start_matches(['-', '+']);
            if digits.is_empty() && frac.is_empty() || whole.len() > digits.len() + 1 {
                return None;
            }
            if !digits.bytes().all(|b| b.is_ascii_digit()) || digits.len() > 18 {
                return None;
            }
            let w: i128 = if digits.is_empty() {
                0
            } else {
                digits.parse().ok()?
            };
            let f: i128 = format!("{frac:0<9}").parse().ok()?;
            nanos += sign * (w * per + f);
            parts += 1;
            s = &s[end + 1..];
        }
        Some(())
    };
    const S: i128 = 1_000_000_000;
    take(date, &[(b'D', 86_400 * S)])?;
    if let Some(time) = time {
        if time.is_empty() {
            return None;
        }
        take(time, &[(b'H', 3_600 * S), (b'M', 60 * S), (b'S', S)])?;
    }
    if parts == 0 {
        return None;
    }
    let nanos = if negative { -nanos } else { nanos };
    let nanos = u64::try_from(nanos).ok()?;
    Some(Duration::from_nanos(nanos))
}

/// `d` in ISO-8601 (`PT<seconds>S`, fractions as needed), as Java's `Duration.toString`
/// would write it up to the grouping in hours and minutes.
pub(crate) fn iso_duration(d: Duration) -> String {
    let mut s = format!("PT{}", d.as_secs());
    if d.subsec_nanos() > 0 {
        let frac = format!("{:09}", d.subsec_nanos());
        s.push('.');
        s.push_str(frac.trim_end_matches('0'));
    }
    s.push('S');
    s
}

fn names(values: &[EnumValue]) -> String {
    values.iter().map(|v| v.name).collect::<Vec<_>>().join(", ")
}

/// The value of `values` that `text` spells (canonical name or synonym).
fn match_enum(values: &'static [EnumValue], text: &str, ci: bool) -> Option<Choice> {
    let eq = |a: &str| {
        if ci {
            a.eq_ignore_ascii_case(text)
        } else {
            a == text
        }
    };
    values
        .iter()
        .position(|v| eq(v.name) || v.synonyms.iter().any(|s| eq(s)))
        .map(|index| Choice {
            index,
            name: values[index].name,
        })
}

/// Splits a broker list. Entries are trimmed, empty entries skipped; an optional
/// `PLAINTEXT://` prefix (any case) is stripped; a missing port means 9092 (librdkafka's
/// rule); IPv6 hosts are written `[::1]:9092`. An empty list is reported as `Missing`.
fn parse_hosts(key: &str, raw: &str, expected: &str) -> Result<Value, ConfigError> {
    let mut out = Vec::new();
    for entry in raw.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let invalid = || ConfigError::InvalidValue {
            key: key.to_string(),
            value: raw.to_string(),
            expected: expected.to_string(),
        };
        let addr = match entry.split_once("://") {
            None => entry,
            // A listener-name prefix (Java's `SASL_SSL://host:9093`): the protocol itself comes
            // from `security.protocol`.
            Some((scheme, rest))
                if ["plaintext", "ssl", "sasl_plaintext", "sasl_ssl"]
                    .iter()
                    .any(|s| s.eq_ignore_ascii_case(scheme)) =>
            {
                rest
            }
            Some(_) => return Err(invalid()),
        };
        let (host, port) = if let Some(rest) = addr.strip_prefix('[') {
            // [v6]:port or [v6]
            let (host, after) = rest.split_once(']').ok_or_else(invalid)?;
            let port = match after {
                "" => None,
                p => Some(p.strip_prefix(':').ok_or_else(invalid)?),
            };
            (format!("[{host}]"), port)
        } else {
            match addr.split_once(':') {
                None => (addr.to_string(), None),
                Some((h, p)) if !p.contains(':') => (h.to_string(), Some(p)),
                Some(_) => return Err(invalid()), // bare IPv6 needs brackets
            }
        };
        if host.is_empty() || host == "[]" || host.contains(char::is_whitespace) {
            return Err(invalid());
        }
        let port: u16 = match port {
            None => 9092,
            Some(p) => p.parse().ok().filter(|&p| p != 0).ok_or_else(invalid)?,
        };
        out.push(format!("{host}:{port}"));
    }
    if out.is_empty() {
        return Err(ConfigError::Missing {
            key: "bootstrap.servers".to_string(),
        });
    }
    Ok(Value::Hosts(out))
}

/// One value of an enumerated key: its position in the key's value list and canonical name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Choice {
    index: usize,
    name: &'static str,
}

/// A parsed value in canonical form (one variant per [`Kind`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Value {
    Int(i64),
    Bool(bool),
    Str(String),
    Enum(Choice),
    Enums(Vec<Choice>),
    Hosts(Vec<String>),
    /// An [`Kind::EnumOrDuration`] key's duration, with its prefix.
    Duration(&'static str, Duration),
}

impl Value {
    /// Canonical text, as compared with [`Status::Partial`]'s `supported`.
    pub(crate) fn text(&self) -> String {
        match self {
            Value::Int(i) => i.to_string(),
            Value::Bool(b) => b.to_string(),
            Value::Str(s) => s.clone(),
            Value::Enum(c) => c.name.to_string(),
            Value::Enums(l) => l.iter().map(|c| c.name).collect::<Vec<_>>().join(","),
            Value::Hosts(l) => l.join(","),
            Value::Duration(prefix, d) => format!("{prefix}{}", iso_duration(*d)),
        }
    }
}

// ---- typed handles ---------------------------------------------------------------------------

/// A typed handle on a key of the table: the only way the typed configs read a value
/// ([`Resolved::get`](super::resolve::Resolved::get)). `T` is what the key reads as
/// (`Duration` for `linger.ms`, `Option<String>` for a key without a default, the enum of an
/// enumerated key). The constructors are `const fn`s that check, at compile time, that the
/// key's [`Kind`] and default fit `T`, so a mismatch fails the build and a misspelt key name
/// does not compile.
pub(crate) struct Key<T> {
    pub(crate) def: KeyDef,
    read: fn(Option<&Value>) -> T,
}

impl<T> Clone for Key<T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for Key<T> {}

impl<T> Key<T> {
    /// Reads the value (`None`: the key is unset and has no default).
    pub(crate) fn read(self, value: Option<&Value>) -> T {
        (self.read)(value)
    }
}

/// The handle of a key nothing reads (ignored, partially or not supported): it has no getter.
/// A key declared [`Status::Supported`] cannot have one.
pub(crate) struct Unread {
    pub(crate) def: KeyDef,
}

impl Unread {
    const fn new(def: KeyDef) -> Unread {
        assert!(
            !matches!(def.status, Status::Supported),
            "a supported key must be read through a typed `Key`"
        );
        Unread { def }
    }
}

const fn int_kind(def: &KeyDef, lo: i64, hi: i64) -> bool {
    matches!(def.kind, Kind::Int { min, max } if min >= lo && max <= hi)
}

/// The reads below only see values of the kind their constructor checked.
fn kind_checked(v: Option<&Value>) -> ! {
    unreachable!("value {v:?} does not fit its key's kind (checked by the Key constructor)")
}

fn int_of(v: Option<&Value>) -> i64 {
    match v {
        Some(Value::Int(i)) => *i,
        other => kind_checked(other),
    }
}

fn text_of(v: Option<&Value>) -> Option<String> {
    match v {
        None => None,
        Some(Value::Str(s)) => Some(s.clone()),
        other => kind_checked(other),
    }
}

impl Key<Duration> {
    /// Milliseconds (an integer key with a default, never negative).
    const fn ms(def: KeyDef) -> Self {
        assert!(int_kind(&def, 0, i64::MAX) && def.default.is_some());
        Key {
            def,
            // Lossless: the range is non-negative.
            read: |v| Duration::from_millis(int_of(v) as u64),
        }
    }
}

impl Key<i64> {
    /// An integer key with a default.
    const fn int(def: KeyDef) -> Self {
        assert!(int_kind(&def, i64::MIN, i64::MAX) && def.default.is_some());
        Key { def, read: int_of }
    }
}

impl Key<Option<i64>> {
    /// An integer key without a default.
    const fn opt_int(def: KeyDef) -> Self {
        assert!(int_kind(&def, i64::MIN, i64::MAX) && def.default.is_none());
        Key {
            def,
            read: |v| v.map(|v| int_of(Some(v))),
        }
    }
}

impl Key<i32> {
    /// An integer key with a default whose range fits `i32`.
    const fn i32(def: KeyDef) -> Self {
        assert!(int_kind(&def, i32::MIN as i64, i32::MAX as i64) && def.default.is_some());
        Key {
            def,
            // Lossless: the range fits.
            read: |v| int_of(v) as i32,
        }
    }
}

impl Key<u32> {
    /// An integer key with a default whose range fits `u32`.
    const fn u32(def: KeyDef) -> Self {
        assert!(int_kind(&def, 0, u32::MAX as i64) && def.default.is_some());
        Key {
            def,
            // Lossless: the range fits.
            read: |v| int_of(v) as u32,
        }
    }
}

impl Key<usize> {
    /// A size or count: an integer key with a default, never negative (saturates at
    /// `usize::MAX` on 32-bit targets).
    const fn size(def: KeyDef) -> Self {
        assert!(int_kind(&def, 0, i64::MAX) && def.default.is_some());
        Key {
            def,
            read: |v| usize::try_from(int_of(v)).unwrap_or(usize::MAX),
        }
    }
}

impl Key<bool> {
    /// A boolean key with a default.
    const fn flag(def: KeyDef) -> Self {
        assert!(matches!(def.kind, Kind::Bool) && def.default.is_some());
        Key {
            def,
            read: |v| match v {
                Some(Value::Bool(b)) => *b,
                other => kind_checked(other),
            },
        }
    }
}

impl Key<String> {
    /// A string key with a default.
    const fn text(def: KeyDef) -> Self {
        assert!(matches!(def.kind, Kind::String { .. }) && def.default.is_some());
        Key {
            def,
            read: |v| text_of(v).unwrap_or_else(|| kind_checked(v)),
        }
    }
}

impl Key<Option<String>> {
    /// A string key without a default.
    const fn opt_text(def: KeyDef) -> Self {
        assert!(matches!(def.kind, Kind::String { .. }) && def.default.is_none());
        Key { def, read: text_of }
    }
}

impl Key<Option<Vec<String>>> {
    /// A broker list without a default.
    const fn hosts(def: KeyDef) -> Self {
        assert!(matches!(def.kind, Kind::HostList) && def.default.is_none());
        Key {
            def,
            read: |v| match v {
                None => None,
                Some(Value::Hosts(h)) => Some(h.clone()),
                other => kind_checked(other),
            },
        }
    }
}

/// An enumeration whose spellings are one of the table's value lists (declared with
/// `spellings!`, in the order of its variants).
pub(crate) trait TableEnum: Copy + PartialEq + 'static {
    /// The key whose values these are.
    const KEY: &'static KeyDef;
    /// The allowed values: canonical spelling and synonyms.
    const VALUES: &'static [EnumValue];
    /// The variant of each of [`VALUES`](Self::VALUES); `None` for a value the table accepts
    /// but kafka-sdk does not implement (refused by the key's [`Status::Partial`]).
    const VARIANTS: &'static [Option<Self>];
}

/// The variant of `c`; values without one never pass [`Status::Partial`].
fn variant<E: TableEnum>(c: &Choice) -> E {
    E::VARIANTS[c.index]
        .unwrap_or_else(|| unreachable!("`{}` is refused by its key's status", c.name))
}

const fn values_of<E: TableEnum>(def: &KeyDef) -> bool {
    match def.kind {
        Kind::Enum { values, .. } | Kind::List { values } | Kind::EnumOrDuration { values, .. } => {
            values.len() == E::VALUES.len() && E::VARIANTS.len() == E::VALUES.len()
        }
        _ => false,
    }
}

impl<E: TableEnum> Key<E> {
    /// An enumerated key with a default, read as its enum.
    const fn one_of(def: KeyDef) -> Self {
        assert!(
            matches!(def.kind, Kind::Enum { .. }) && values_of::<E>(&def) && def.default.is_some()
        );
        Key {
            def,
            read: |v| match v {
                Some(Value::Enum(c)) => variant(c),
                other => kind_checked(other),
            },
        }
    }
}

impl Key<OffsetReset> {
    /// `auto.offset.reset`: a table value, or `by_duration:<duration>`.
    const fn offset_reset(def: KeyDef) -> Self {
        assert!(
            matches!(def.kind, Kind::EnumOrDuration { .. })
                && values_of::<OffsetReset>(&def)
                && def.default.is_some()
        );
        Key {
            def,
            read: |v| match v {
                Some(Value::Enum(c)) => variant(c),
                Some(Value::Duration(_, d)) => OffsetReset::ByDuration(*d),
                other => kind_checked(other),
            },
        }
    }
}

impl OffsetReset {
    /// The strategy's name: `earliest`, `latest`, `none` or `by_duration` (Java's
    /// `AutoOffsetResetStrategy.name()`); `Display` adds the duration.
    pub fn name(self) -> &'static str {
        match self {
            OffsetReset::ByDuration(_) => "by_duration",
            fixed => enum_name(fixed),
        }
    }
}

impl fmt::Display for OffsetReset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OffsetReset::ByDuration(d) => write!(f, "by_duration:{}", iso_duration(*d)),
            fixed => f.write_str(fixed.name()),
        }
    }
}

impl FromStr for OffsetReset {
    type Err = ConfigError;

    /// Parses any spelling `auto.offset.reset` accepts, `by_duration:PT1H` included.
    fn from_str(s: &str) -> Result<Self, ConfigError> {
        let def = &AUTO_OFFSET_RESET.def;
        Ok((AUTO_OFFSET_RESET.read)(Some(&def.parse(def.name, s)?)))
    }
}

impl<E: TableEnum> Key<Vec<E>> {
    /// A list of enumerated values with a default, read as a list of the enum.
    const fn list_of(def: KeyDef) -> Self {
        assert!(
            matches!(def.kind, Kind::List { .. }) && values_of::<E>(&def) && def.default.is_some()
        );
        Key {
            def,
            read: |v| match v {
                Some(Value::Enums(l)) => l.iter().map(variant).collect(),
                other => kind_checked(other),
            },
        }
    }
}

/// `FromStr` of every [`TableEnum`]: the same matching as the key's (case rules included);
/// a value the table accepts but kafka-sdk does not implement is `NotSupported`.
pub(crate) fn parse_enum<E: TableEnum>(text: &str) -> Result<E, ConfigError> {
    let def = E::KEY;
    let case_insensitive = matches!(
        def.kind,
        Kind::Enum {
            case_insensitive: true,
            ..
        }
    );
    let choice = match_enum(E::VALUES, text.trim(), case_insensitive).ok_or_else(|| {
        ConfigError::InvalidValue {
            key: def.name.to_string(),
            value: text.to_string(),
            expected: format!("one of: {}", names(E::VALUES)),
        }
    })?;
    E::VARIANTS[choice.index].ok_or_else(|| ConfigError::NotSupported {
        key: def.name.to_string(),
        detail: match def.status {
            Status::Partial { detail, .. } => Some(detail.to_string()),
            _ => None,
        },
    })
}

/// The canonical name of `e` (its spelling in the table).
pub(crate) fn enum_name<E: TableEnum>(e: E) -> &'static str {
    E::VARIANTS.iter().position(|v| *v == Some(e)).map_or_else(
        || unreachable!("every variant is in its table"),
        |i| E::VALUES[i].name,
    )
}

/// Declares the spellings of enumerated keys: the value list (a `const`) and the
/// [`TableEnum`] impl mapping each value to its variant, pair by pair.
macro_rules! spellings {
    ($(
        $list:ident for $ty:ident (key $key:ident) = [
            $( $v:tt = $name:literal $(| $syn:literal)* ),* $(,)?
        ];
    )*) => {$(
        const $list: &[EnumValue] = &[$( ev($name, &[$($syn),*]) ),*];
        impl TableEnum for $ty {
            const KEY: &'static KeyDef = &$key.def;
            const VALUES: &'static [EnumValue] = $list;
            const VARIANTS: &'static [Option<Self>] = &[$( spellings!(@variant $ty $v) ),*];
        }
    )*};
    (@variant $ty:ident _) => { ::core::option::Option::None };
    (@variant $ty:ident $v:ident) => { ::core::option::Option::Some($ty::$v) };
}

/// Declares the table: one typed handle per key (a `const` named after it) and `KEYS`, the
/// list of every key in declaration order.
macro_rules! key_table {
    ($( $name:ident: $ty:ty = $($ctor:ident)::+ ( $def:expr ); )*) => {
        $( pub(crate) const $name: $ty = $($ctor)::+($def); )*
        /// Every key kafka-sdk knows. Canonical names are unique and no alias is another
        /// key's name (checked by tests).
        pub(crate) static KEYS: &[KeyDef] = &[$( $name.def ),*];
    };
}

/// `name()`, `Display` and `FromStr` of the public enums, all through the table.
macro_rules! named_enums {
    ($($ty:ident),*) => {$(
        impl $ty {
            /// The canonical name, as the key table spells it.
            pub fn name(self) -> &'static str {
                enum_name(self)
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.name())
            }
        }

        impl FromStr for $ty {
            type Err = ConfigError;

            /// Parses any spelling the key accepts (see the key table).
            fn from_str(s: &str) -> Result<Self, ConfigError> {
                parse_enum(s)
            }
        }
    )*};
}

named_enums!(
    Acks,
    IsolationLevel,
    AssignmentStrategy,
    SecurityProtocol,
    GroupProtocol,
    PartitionerKind
);

/// `compression.type` spellings for the record layer's codec enum (its `name()` and
/// `Display` live with it and agree with the table, see the tests).
impl FromStr for Compression {
    type Err = ConfigError;

    fn from_str(s: &str) -> Result<Self, ConfigError> {
        parse_enum(s)
    }
}

const I32: i64 = i32::MAX as i64;

/// Java's OAUTHBEARER login callback handler (KIP-768; the `secured` package before Kafka
/// 3.4): the token endpoint's client-credentials grant, kafka-sdk's OIDC provider.
pub(crate) const JAVA_OIDC_LOGIN_HANDLERS: &[&str] = &[
    "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginCallbackHandler",
    "org.apache.kafka.common.security.oauthbearer.secured.OAuthBearerLoginCallbackHandler",
];

const fn int(min: i64, max: i64) -> Kind {
    Kind::Int { min, max }
}

const fn enumeration(values: &'static [EnumValue]) -> Kind {
    Kind::Enum {
        values,
        case_insensitive: true,
    }
}

const fn ev(name: &'static str, synonyms: &'static [&'static str]) -> EnumValue {
    EnumValue { name, synonyms }
}

const STRING: Kind = Kind::String { allow_empty: true };
const NON_EMPTY: Kind = Kind::String { allow_empty: false };

/// Kerberos keys: GSSAPI is not implemented.
const GSSAPI: Status = Status::NotSupported {
    detail: "the GSSAPI (Kerberos) SASL mechanism is not supported",
};
/// TLS tuning keys rustls decides for itself.
const RUSTLS_CHOOSES: Status = Status::Ignored {
    detail: "rustls negotiates TLS 1.2 or 1.3 with its own safe cipher suites",
};
const SERDE: Status = Status::NotSupported {
    detail: "kafka-sdk takes bytes; serialize in your code",
};

// The values of the enumerated keys: each canonical spelling with its synonyms, and the
// variant it parses to (`_`: accepted by the table, refused by the key's `Partial` status).
spellings! {
    ACK_LEVELS for Acks (key ACKS) = [
        None = "0",
        Leader = "1",
        All = "all" | "-1",
    ];
    COMPRESSION for Compression (key COMPRESSION_TYPE) = [
        None = "none",
        Gzip = "gzip",
        Snappy = "snappy",
        Lz4 = "lz4",
        Zstd = "zstd",
    ];
    OFFSET_RESET for OffsetReset (key AUTO_OFFSET_RESET) = [
        Earliest = "earliest" | "smallest" | "beginning",
        Latest = "latest" | "largest" | "end",
        None = "none" | "error",
    ];
    ISOLATION for IsolationLevel (key ISOLATION_LEVEL) = [
        ReadUncommitted = "read_uncommitted",
        ReadCommitted = "read_committed",
    ];
    ASSIGNORS for AssignmentStrategy (key PARTITION_ASSIGNMENT_STRATEGY) = [
        Range = "range" | "org.apache.kafka.clients.consumer.RangeAssignor",
        RoundRobin = "roundrobin" | "org.apache.kafka.clients.consumer.RoundRobinAssignor",
        Sticky = "sticky" | "org.apache.kafka.clients.consumer.StickyAssignor",
        CooperativeSticky = "cooperative-sticky"
            | "org.apache.kafka.clients.consumer.CooperativeStickyAssignor",
    ];
    SECURITY for SecurityProtocol (key SECURITY_PROTOCOL) = [
        Plaintext = "plaintext",
        Ssl = "ssl",
        SaslPlaintext = "sasl_plaintext",
        SaslSsl = "sasl_ssl",
    ];
    PARTITIONERS for PartitionerKind (key PARTITIONER) = [
        Murmur2 = "murmur2",
        Murmur2Random = "murmur2_random"
            | "org.apache.kafka.clients.producer.internals.DefaultPartitioner",
        Consistent = "consistent",
        ConsistentRandom = "consistent_random",
        Random = "random",
        RoundRobin = "round_robin" | "org.apache.kafka.clients.producer.RoundRobinPartitioner",
        Fnv1a = "fnv1a",
        Fnv1aRandom = "fnv1a_random",
    ];
    GROUP_PROTOCOLS for GroupProtocol (key GROUP_PROTOCOL) = [
        Classic = "classic",
        Consumer = "consumer",
    ];
}

use Clients as C;

key_table! {
    // ---- every client -------------------------------------------------------------------
    BOOTSTRAP_SERVERS: Key<Option<Vec<String>>> = Key::hosts(KeyDef::new(
        "bootstrap.servers",
        Kind::HostList,
        None,
        C::ALL,
        "Initial brokers, `host:port` comma-separated (required; `PLAINTEXT://` prefix allowed).",
    )
    .aliases(&["metadata.broker.list"]));
    CLIENT_ID: Key<String> = Key::text(KeyDef::new(
        "client.id",
        STRING,
        Some("kafka-sdk"),
        C::ALL,
        "Client id sent with every request (broker logs and quotas).",
    ));
    REQUEST_TIMEOUT_MS: Key<Duration> = Key::ms(KeyDef::new(
        "request.timeout.ms",
        int(1, I32),
        Some("30000"),
        C::ALL,
        "How long to wait for a broker's response to a request.",
    )
    .aliases(&["socket.timeout.ms"]));
    SOCKET_CONNECTION_SETUP_TIMEOUT_MS: Key<Duration> = Key::ms(KeyDef::new(
        "socket.connection.setup.timeout.ms",
        int(1, I32),
        Some("10000"),
        C::ALL,
        "Time allowed to establish a broker connection (first attempt).",
    ));
    SOCKET_CONNECTION_SETUP_TIMEOUT_MAX_MS: Key<Duration> = Key::ms(KeyDef::new(
        "socket.connection.setup.timeout.max.ms",
        int(1, I32),
        Some("30000"),
        C::ALL,
        "Upper bound of the exponentially growing connection setup timeout.",
    ));
    RECONNECT_BACKOFF_MS: Key<Duration> = Key::ms(KeyDef::new(
        "reconnect.backoff.ms",
        int(0, 3_600_000),
        Some("50"),
        C::ALL,
        "Initial wait before reconnecting to a broker.",
    ));
    RECONNECT_BACKOFF_MAX_MS: Key<Duration> = Key::ms(KeyDef::new(
        "reconnect.backoff.max.ms",
        int(0, 3_600_000),
        Some("1000"),
        C::ALL,
        "Upper bound of the exponential reconnect backoff.",
    ));
    RETRY_BACKOFF_MS: Key<Duration> = Key::ms(KeyDef::new(
        "retry.backoff.ms",
        int(0, 3_600_000),
        Some("100"),
        C::ALL,
        "Initial wait before retrying a failed request.",
    ));
    RETRY_BACKOFF_MAX_MS: Key<Duration> = Key::ms(KeyDef::new(
        "retry.backoff.max.ms",
        int(0, 3_600_000),
        Some("1000"),
        C::ALL,
        "Upper bound of the exponential retry backoff.",
    ));
    METADATA_MAX_AGE_MS: Key<Duration> = Key::ms(KeyDef::new(
        "metadata.max.age.ms",
        int(0, I32),
        Some("300000"),
        C::ALL,
        "Refresh cluster metadata at least this often.",
    )
    .aliases(&["topic.metadata.refresh.interval.ms"]));
    RECEIVE_MESSAGE_MAX_BYTES: Key<usize> = Key::size(KeyDef::new(
        "receive.message.max.bytes",
        int(1000, I32),
        Some("100000000"),
        C::ALL,
        "Largest response frame accepted from a broker.",
    ));
    CONNECTIONS_MAX_IDLE_MS: Key<Duration> = Key::ms(KeyDef::new(
        "connections.max.idle.ms",
        int(0, I32),
        Some("540000"),
        C::ALL,
        "Close connections idle this long (0: never).",
    ));
    SOCKET_NAGLE_DISABLE: Key<bool> = Key::flag(KeyDef::new(
        "socket.nagle.disable",
        Kind::Bool,
        Some("true"),
        C::ALL,
        "Disable Nagle's algorithm, i.e. set TCP_NODELAY (true = nodelay on).",
    )
    .aliases(&["tcp.nodelay"]));
    CLIENT_RACK: Key<Option<String>> = Key::opt_text(KeyDef::new(
        "client.rack",
        STRING,
        None,
        C::ALL,
        "Rack of the client, for fetching from the closest replica (empty: none).",
    ));
    ALLOW_AUTO_CREATE_TOPICS: Key<bool> = Key::flag(KeyDef::new(
        "allow.auto.create.topics",
        Kind::Bool,
        Some("true"),
        C::ALL,
        "Let metadata requests auto-create missing topics (if the broker allows it).",
    ));
    SECURITY_PROTOCOL: Key<SecurityProtocol> = Key::one_of(KeyDef::new(
        "security.protocol",
        enumeration(SECURITY),
        Some("plaintext"),
        C::ALL,
        "Protocol used to talk to brokers: plaintext, ssl, sasl_plaintext, sasl_ssl (any case).",
    ));
    // ---- accepted, no effect --------------------------------------------------------------
    DEBUG: Unread = Unread::new(KeyDef::new("debug", STRING, None, C::ALL, "librdkafka debug contexts.").status(
        Status::Ignored {
            detail: "kafka-sdk logs through `tracing`; enable e.g. RUST_LOG=kafka_sdk=debug",
        },
    ));
    LOG_LEVEL: Unread = Unread::new(KeyDef::new(
        "log_level",
        int(0, 7),
        Some("6"),
        C::ALL,
        "librdkafka syslog level.",
    )
    .status(Status::Ignored {
        detail: "kafka-sdk logs through `tracing`; filter with your subscriber",
    }));
    LOG_CONNECTION_CLOSE: Unread = Unread::new(KeyDef::new(
        "log.connection.close",
        Kind::Bool,
        Some("true"),
        C::ALL,
        "librdkafka: log broker disconnects.",
    )
    .status(Status::Ignored {
        detail: "disconnects are logged through `tracing` at debug level",
    }));
    API_VERSION_REQUEST: Unread = Unread::new(KeyDef::new(
        "api.version.request",
        Kind::Bool,
        Some("true"),
        C::ALL,
        "librdkafka: query broker API versions (always done).",
    )
    .status(Status::Partial {
        supported: &["true"],
        detail: "kafka-sdk always negotiates API versions (brokers >= 0.10)",
    }));
    API_VERSION_FALLBACK_MS: Unread = Unread::new(KeyDef::new(
        "api.version.fallback.ms",
        int(0, 604_800_000),
        Some("0"),
        C::ALL,
        "librdkafka: fallback period after a failed ApiVersions request.",
    )
    .status(Status::Ignored {
        detail: "API versions are always negotiated",
    }));
    BROKER_VERSION_FALLBACK: Unread = Unread::new(KeyDef::new(
        "broker.version.fallback",
        STRING,
        Some("0.10.0"),
        C::ALL,
        "librdkafka: broker version assumed when ApiVersions is not used.",
    )
    .status(Status::Ignored {
        detail: "API versions are always negotiated",
    }));
    STATISTICS_INTERVAL_MS: Key<Duration> = Key::ms(KeyDef::new(
        "statistics.interval.ms",
        int(0, 86_400_000),
        Some("0"),
        C::PRODUCER_CONSUMER,
        "librdkafka: producers and consumers emit a statistics snapshot (`kafka_sdk::stats`) this often (0: off).",
    ));
    // ---- TLS / SASL (issue 14) -------------------------------------------------------------
    SASL_MECHANISM: Key<Option<String>> = Key::opt_text(KeyDef::new(
        "sasl.mechanism",
        STRING,
        None,
        C::ALL,
        "SASL mechanism: PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 or OAUTHBEARER (needed with sasl_*).",
    )
    .aliases(&["sasl.mechanisms"]));
    SASL_USERNAME: Key<Option<String>> = Key::opt_text(KeyDef::new(
        "sasl.username",
        STRING,
        None,
        C::ALL,
        "SASL username for PLAIN and SCRAM (librdkafka).",
    ));
    SASL_PASSWORD: Key<Option<String>> = Key::opt_text(KeyDef::new(
        "sasl.password",
        STRING,
        None,
        C::ALL,
        "SASL password for PLAIN and SCRAM (librdkafka; never logged).",
    ));
    SASL_JAAS_CONFIG: Key<Option<String>> = Key::opt_text(KeyDef::new(
        "sasl.jaas.config",
        STRING,
        None,
        C::ALL,
        "Java JAAS line: Plain/ScramLoginModule username/password, OAuthBearerLoginModule unsecured claims.",
    ));
    SASL_KERBEROS_SERVICE_NAME: Unread = Unread::new(KeyDef::new(
        "sasl.kerberos.service.name",
        STRING,
        None,
        C::ALL,
        "Kerberos principal name of the brokers.",
    )
    .status(GSSAPI));
    SASL_OAUTHBEARER_CONFIG: Key<Option<String>> = Key::opt_text(KeyDef::new(
        "sasl.oauthbearer.config",
        STRING,
        None,
        C::ALL,
        "Unsecured JWT for tests (librdkafka): `principal=... [scope=a,b] [lifeSeconds=...]`.",
    ));
    SASL_OAUTHBEARER_METHOD: Key<Option<String>> = Key::opt_text(KeyDef::new(
        "sasl.oauthbearer.method",
        STRING,
        None,
        C::ALL,
        "OAUTHBEARER token source: `default` when unset (unsecured JWT or the builder's provider) or `oidc` (feature `oidc`).",
    ));
    SASL_OAUTHBEARER_TOKEN_ENDPOINT_URL: Key<Option<String>> = Key::opt_text(KeyDef::new(
        "sasl.oauthbearer.token.endpoint.url",
        STRING,
        None,
        C::ALL,
        "OIDC token endpoint (http or https URL) for the client-credentials grant.",
    ));
    SASL_OAUTHBEARER_CLIENT_ID: Key<Option<String>> = Key::opt_text(KeyDef::new(
        "sasl.oauthbearer.client.id",
        STRING,
        None,
        C::ALL,
        "OIDC client id (or JAAS `clientId` of OAuthBearerLoginModule).",
    )
    .aliases(&["sasl.oauthbearer.client.credentials.client.id"]));
    SASL_OAUTHBEARER_CLIENT_SECRET: Key<Option<String>> = Key::opt_text(KeyDef::new(
        "sasl.oauthbearer.client.secret",
        STRING,
        None,
        C::ALL,
        "OIDC client secret (or JAAS `clientSecret`; never logged).",
    )
    .aliases(&["sasl.oauthbearer.client.credentials.client.secret"]));
    SASL_OAUTHBEARER_SCOPE: Key<Option<String>> = Key::opt_text(KeyDef::new(
        "sasl.oauthbearer.scope",
        STRING,
        None,
        C::ALL,
        "OIDC scope requested with the token (or JAAS `scope`).",
    ));
    SASL_LOGIN_CALLBACK_HANDLER_CLASS: Key<Option<String>> = Key::opt_text(KeyDef::new(
        "sasl.login.callback.handler.class",
        STRING,
        None,
        C::ALL,
        "Java SASL login callback handler: Java's OAUTHBEARER one (KIP-768) asks for the built-in OIDC provider, as `sasl.oauthbearer.method=oidc`.",
    )
    .status(Status::Partial {
        supported: JAVA_OIDC_LOGIN_HANDLERS,
        detail: "Java classes cannot be loaded; only Java's own OAUTHBEARER handler (the built-in OIDC provider) is understood; set a token provider with the builder's `oauth_token_provider`",
    }));
    SSL_CA_LOCATION: Key<Option<String>> = Key::opt_text(KeyDef::new(
        "ssl.ca.location",
        STRING,
        None,
        C::ALL,
        "CA certificate(s) file, PEM (librdkafka); system roots when no CA is given.",
    ));
    SSL_CA_PEM: Key<Option<String>> = Key::opt_text(KeyDef::new(
        "ssl.ca.pem",
        STRING,
        None,
        C::ALL,
        "CA certificate(s), PEM text (librdkafka).",
    ));
    SSL_CERTIFICATE_LOCATION: Key<Option<String>> = Key::opt_text(KeyDef::new(
        "ssl.certificate.location",
        STRING,
        None,
        C::ALL,
        "Client certificate (chain) file for mTLS, PEM (librdkafka).",
    ));
    SSL_CERTIFICATE_PEM: Key<Option<String>> = Key::opt_text(KeyDef::new(
        "ssl.certificate.pem",
        STRING,
        None,
        C::ALL,
        "Client certificate (chain), PEM text (librdkafka).",
    ));
    SSL_KEY_LOCATION: Key<Option<String>> = Key::opt_text(KeyDef::new(
        "ssl.key.location",
        STRING,
        None,
        C::ALL,
        "Client private key file for mTLS, PEM (PKCS#8, PKCS#1, SEC1 or encrypted PKCS#8).",
    ));
    SSL_KEY_PEM: Key<Option<String>> = Key::opt_text(KeyDef::new(
        "ssl.key.pem",
        STRING,
        None,
        C::ALL,
        "Client private key, PEM text (librdkafka).",
    ));
    SSL_KEY_PASSWORD: Key<Option<String>> = Key::opt_text(KeyDef::new(
        "ssl.key.password",
        STRING,
        None,
        C::ALL,
        "Password of an encrypted PKCS#8 private key (never logged).",
    ));
    SSL_KEYSTORE_LOCATION: Key<Option<String>> = Key::opt_text(KeyDef::new(
        "ssl.keystore.location",
        STRING,
        None,
        C::ALL,
        "Java keystore file: with type PEM, the private key and certificate chain.",
    ));
    SSL_KEYSTORE_PASSWORD: Key<Option<String>> = Key::opt_text(KeyDef::new(
        "ssl.keystore.password",
        STRING,
        None,
        C::ALL,
        "Java keystore password (PEM keystore: the key's password if `ssl.key.password` is unset).",
    ));
    SSL_KEYSTORE_TYPE: Key<Option<String>> = Key::opt_text(KeyDef::new(
        "ssl.keystore.type",
        STRING,
        None,
        C::ALL,
        "Java keystore format: PEM (JKS and PKCS12: convert to PEM).",
    ));
    SSL_KEYSTORE_KEY: Key<Option<String>> = Key::opt_text(KeyDef::new(
        "ssl.keystore.key",
        STRING,
        None,
        C::ALL,
        "Java PEM keystore: the private key as PEM text.",
    ));
    SSL_KEYSTORE_CERTIFICATE_CHAIN: Key<Option<String>> = Key::opt_text(KeyDef::new(
        "ssl.keystore.certificate.chain",
        STRING,
        None,
        C::ALL,
        "Java PEM keystore: the certificate chain as PEM text.",
    ));
    SSL_TRUSTSTORE_LOCATION: Key<Option<String>> = Key::opt_text(KeyDef::new(
        "ssl.truststore.location",
        STRING,
        None,
        C::ALL,
        "Java truststore file: with type PEM, the CA certificates.",
    ));
    SSL_TRUSTSTORE_PASSWORD: Key<Option<String>> = Key::opt_text(KeyDef::new(
        "ssl.truststore.password",
        STRING,
        None,
        C::ALL,
        "Java truststore password (not needed for PEM).",
    ));
    SSL_TRUSTSTORE_TYPE: Key<Option<String>> = Key::opt_text(KeyDef::new(
        "ssl.truststore.type",
        STRING,
        None,
        C::ALL,
        "Java truststore format: PEM (JKS and PKCS12: convert to PEM).",
    ));
    SSL_TRUSTSTORE_CERTIFICATES: Key<Option<String>> = Key::opt_text(KeyDef::new(
        "ssl.truststore.certificates",
        STRING,
        None,
        C::ALL,
        "Java PEM truststore: the CA certificates as PEM text.",
    ));
    SSL_ENDPOINT_IDENTIFICATION_ALGORITHM: Key<String> = Key::text(KeyDef::new(
        "ssl.endpoint.identification.algorithm",
        STRING,
        Some("https"),
        C::ALL,
        "Verify the broker's host name against its certificate: https, or none (also empty).",
    ));
    ENABLE_SSL_CERTIFICATE_VERIFICATION: Key<bool> = Key::flag(KeyDef::new(
        "enable.ssl.certificate.verification",
        Kind::Bool,
        Some("true"),
        C::ALL,
        "Verify the broker's certificate chain (false: trust any certificate; tests only).",
    ));
    SSL_CIPHER_SUITES: Unread = Unread::new(KeyDef::new(
        "ssl.cipher.suites",
        STRING,
        None,
        C::ALL,
        "Allowed TLS cipher suites.",
    )
    .status(RUSTLS_CHOOSES));
    SSL_ENABLED_PROTOCOLS: Unread = Unread::new(KeyDef::new(
        "ssl.enabled.protocols",
        STRING,
        None,
        C::ALL,
        "Allowed TLS versions (Java).",
    )
    .status(RUSTLS_CHOOSES));
    SSL_PROTOCOL: Unread = Unread::new(KeyDef::new("ssl.protocol", STRING, None, C::ALL, "TLS protocol (Java).").status(RUSTLS_CHOOSES));
    // ---- Java-only plumbing (not supported) -----------------------------------------------
    INTERCEPTOR_CLASSES: Unread = Unread::new(KeyDef::new(
        "interceptor.classes",
        STRING,
        None,
        C::PRODUCER_CONSUMER,
        "Java interceptor classes.",
    )
    .status(Status::NotSupported {
        detail: "interceptors are Java classes; wrap the client in your code",
    }));
    KEY_SERIALIZER: Unread = Unread::new(KeyDef::new(
        "key.serializer",
        STRING,
        None,
        C::PRODUCER,
        "Java key serializer class.",
    )
    .status(SERDE));
    VALUE_SERIALIZER: Unread = Unread::new(KeyDef::new(
        "value.serializer",
        STRING,
        None,
        C::PRODUCER,
        "Java value serializer class.",
    )
    .status(SERDE));
    KEY_DESERIALIZER: Unread = Unread::new(KeyDef::new(
        "key.deserializer",
        STRING,
        None,
        C::CONSUMER,
        "Java key deserializer class.",
    )
    .status(SERDE));
    VALUE_DESERIALIZER: Unread = Unread::new(KeyDef::new(
        "value.deserializer",
        STRING,
        None,
        C::CONSUMER,
        "Java value deserializer class.",
    )
    .status(SERDE));
    // ---- producer -------------------------------------------------------------------------
    ACKS: Key<Acks> = Key::one_of(KeyDef::new(
        "acks",
        enumeration(ACK_LEVELS),
        Some("all"),
        C::PRODUCER,
        "Acknowledgements the leader waits for: 0, 1 or all (-1).",
    )
    .aliases(&["request.required.acks"]));
    LINGER_MS: Key<Duration> = Key::ms(KeyDef::new(
        "linger.ms",
        int(0, 900_000),
        Some("5"),
        C::PRODUCER,
        "How long a batch may wait for more records before it is sent.",
    )
    .aliases(&["queue.buffering.max.ms"]));
    BATCH_SIZE: Key<usize> = Key::size(KeyDef::new(
        "batch.size",
        int(1, I32),
        Some("16384"),
        C::PRODUCER,
        "Target size in bytes of a partition's record batch.",
    ));
    BATCH_NUM_MESSAGES: Key<usize> = Key::size(KeyDef::new(
        "batch.num.messages",
        int(1, 1_000_000),
        Some("10000"),
        C::PRODUCER,
        "Largest number of records in one batch.",
    ));
    BUFFER_MEMORY: Key<i64> = Key::int(KeyDef::new(
        "buffer.memory",
        int(1, i64::MAX),
        Some("33554432"),
        C::PRODUCER,
        "Bytes of records the producer may buffer before `send` waits.",
    ));
    QUEUE_BUFFERING_MAX_KBYTES: Key<Option<i64>> = Key::opt_int(KeyDef::new(
        "queue.buffering.max.kbytes",
        int(1, I32),
        None,
        C::PRODUCER,
        "librdkafka spelling of `buffer.memory`, in KiB.",
    ));
    QUEUE_BUFFERING_MAX_MESSAGES: Key<i64> = Key::int(KeyDef::new(
        "queue.buffering.max.messages",
        int(0, I32),
        Some("100000"),
        C::PRODUCER,
        "Largest number of buffered records, as in librdkafka (0: no count limit, as in Java); `send` waits like for `buffer.memory`.",
    ));
    MAX_BLOCK_MS: Key<Duration> = Key::ms(KeyDef::new(
        "max.block.ms",
        int(0, I32),
        Some("60000"),
        C::PRODUCER,
        "How long `send` may wait for buffer space or metadata.",
    ));
    MAX_REQUEST_SIZE: Key<usize> = Key::size(KeyDef::new(
        "max.request.size",
        int(1, I32),
        Some("1048576"),
        C::PRODUCER,
        "Largest produce request (and so record) in bytes.",
    )
    .aliases(&["message.max.bytes"]));
    COMPRESSION_TYPE: Key<Compression> = Key::one_of(KeyDef::new(
        "compression.type",
        enumeration(COMPRESSION),
        Some("none"),
        C::PRODUCER,
        "Compression codec of produced batches.",
    )
    .aliases(&["compression.codec"]));
    COMPRESSION_LEVEL: Key<i64> = Key::int(KeyDef::new(
        "compression.level",
        int(-131_072, 22),
        Some("-1"),
        C::PRODUCER,
        "Codec level (-1: codec default; gzip 0..=9, lz4 0..=12, zstd -131072..=22).",
    ));
    ENABLE_IDEMPOTENCE: Key<bool> = Key::flag(KeyDef::new(
        "enable.idempotence",
        Kind::Bool,
        Some("true"),
        C::PRODUCER,
        "Exactly-once per partition: producer ids and sequence numbers.",
    ));
    MAX_IN_FLIGHT_REQUESTS_PER_CONNECTION: Key<usize> = Key::size(KeyDef::new(
        "max.in.flight.requests.per.connection",
        int(1, 1_000_000),
        Some("5"),
        C::PRODUCER,
        "Unacknowledged produce requests per broker connection.",
    )
    .aliases(&["max.in.flight"]));
    RETRIES: Key<u32> = Key::u32(KeyDef::new(
        "retries",
        int(0, I32),
        Some("2147483647"),
        C::PRODUCER,
        "How often a failed produce is retried (bounded by delivery.timeout.ms).",
    )
    .aliases(&["message.send.max.retries"]));
    DELIVERY_TIMEOUT_MS: Key<Duration> = Key::ms(KeyDef::new(
        "delivery.timeout.ms",
        int(1, I32),
        Some("120000"),
        C::PRODUCER,
        "Upper bound on the time from `send` to success or failure.",
    )
    .aliases(&["message.timeout.ms"]));
    PARTITIONER: Key<PartitionerKind> = Key::one_of(KeyDef::new(
        "partitioner",
        enumeration(PARTITIONERS),
        // THE default partitioner (`PartitionerKind::default()` reads it from here): Java's
        // behaviour, murmur2 for keyed records and uniform sticky for NULL keys.
        Some("murmur2_random"),
        C::PRODUCER,
        "How records are mapped to partitions (librdkafka names; `_random`: NULL keys sticky).",
    )
    .aliases(&["partitioner.class"]));
    STICKY_PARTITIONING_LINGER_MS: Key<Duration> = Key::ms(KeyDef::new(
        "sticky.partitioning.linger.ms",
        int(0, 900_000),
        Some("0"),
        C::PRODUCER,
        "How long records without a key stick to one partition before switching (they also switch after `batch.size` bytes); 0, the default, switches on bytes only as Java does (librdkafka's default is 10, which the rdkafka drop-in keeps).",
    ));
    TRANSACTIONAL_ID: Key<Option<String>> = Key::opt_text(KeyDef::new(
        "transactional.id",
        NON_EMPTY,
        None,
        C::PRODUCER,
        "Enables transactions under this id (requires idempotence).",
    ));
    TRANSACTION_TIMEOUT_MS: Key<Duration> = Key::ms(KeyDef::new(
        "transaction.timeout.ms",
        int(1000, I32),
        Some("60000"),
        C::PRODUCER,
        "Longest a transaction may stay open before the coordinator aborts it.",
    ));
    PARTITIONER_IGNORE_KEYS: Key<bool> = Key::flag(KeyDef::new(
        "partitioner.ignore.keys",
        Kind::Bool,
        Some("false"),
        C::PRODUCER,
        "Partition keyed records as if they had no key.",
    ));
    // ---- producer: adaptive partitioning (issue 18) ---------------------------------------
    PARTITIONER_ADAPTIVE_PARTITIONING_ENABLE: Key<bool> = Key::flag(KeyDef::new(
        "partitioner.adaptive.partitioning.enable",
        Kind::Bool,
        Some("true"),
        C::PRODUCER,
        "Records without a key go to partitions with fewer queued batches more often.",
    ));
    PARTITIONER_AVAILABILITY_TIMEOUT_MS: Key<Duration> = Key::ms(KeyDef::new(
        "partitioner.availability.timeout.ms",
        int(0, I32),
        Some("0"),
        C::PRODUCER,
        "Skip partitions of a leader that took no batch for this long while it had some ready (0: off).",
    ));
    // ---- consumer -------------------------------------------------------------------------
    GROUP_ID: Key<Option<String>> = Key::opt_text(KeyDef::new(
        "group.id",
        NON_EMPTY,
        None,
        C::CONSUMER,
        "Consumer group (needed for subscribe and offset commits).",
    ));
    GROUP_INSTANCE_ID: Key<Option<String>> = Key::opt_text(KeyDef::new(
        "group.instance.id",
        NON_EMPTY,
        None,
        C::CONSUMER,
        "Static membership id (requires group.id).",
    ));
    GROUP_PROTOCOL: Key<GroupProtocol> = Key::one_of(KeyDef::new(
        "group.protocol",
        enumeration(GROUP_PROTOCOLS),
        Some("classic"),
        C::CONSUMER,
        // Java 4.3's default (`ConsumerConfig.configDef().defaultValues()`): classic.
        "Group protocol: classic (JoinGroup/SyncGroup) or consumer (KIP-848).",
    ));
    GROUP_REMOTE_ASSIGNOR: Key<Option<String>> = Key::opt_text(KeyDef::new(
        "group.remote.assignor",
        NON_EMPTY,
        None,
        C::CONSUMER,
        "Server-side assignor for group.protocol=consumer (uniform, range; unset: the broker's).",
    ));
    SESSION_TIMEOUT_MS: Key<Duration> = Key::ms(KeyDef::new(
        "session.timeout.ms",
        int(1, 3_600_000),
        Some("45000"),
        C::CONSUMER,
        "A member that sends no heartbeat for this long leaves the group.",
    ));
    HEARTBEAT_INTERVAL_MS: Key<Duration> = Key::ms(KeyDef::new(
        "heartbeat.interval.ms",
        int(1, 3_600_000),
        Some("3000"),
        C::CONSUMER,
        "How often the member heartbeats to the coordinator.",
    ));
    MAX_POLL_INTERVAL_MS: Key<Duration> = Key::ms(KeyDef::new(
        "max.poll.interval.ms",
        int(1, 86_400_000),
        Some("300000"),
        C::CONSUMER,
        "Longest time between polls before the member leaves the group.",
    ));
    ENABLE_AUTO_COMMIT: Key<bool> = Key::flag(KeyDef::new(
        "enable.auto.commit",
        Kind::Bool,
        Some("true"),
        C::CONSUMER,
        "Commit stored offsets in the background.",
    )
    .aliases(&["auto.commit.enable"]));
    AUTO_COMMIT_INTERVAL_MS: Key<Duration> = Key::ms(KeyDef::new(
        "auto.commit.interval.ms",
        int(0, 86_400_000),
        Some("5000"),
        C::CONSUMER,
        "Interval of background offset commits.",
    ));
    ENABLE_AUTO_OFFSET_STORE: Key<bool> = Key::flag(KeyDef::new(
        "enable.auto.offset.store",
        Kind::Bool,
        Some("true"),
        C::CONSUMER,
        "Store the offset of each record handed to the application.",
    ));
    AUTO_OFFSET_RESET: Key<OffsetReset> = Key::offset_reset(KeyDef::new(
        "auto.offset.reset",
        Kind::EnumOrDuration {
            values: OFFSET_RESET,
            prefix: "by_duration:",
        },
        Some("latest"),
        C::CONSUMER,
        "Where to start with no committed offset (or out of range): earliest, latest, by_duration:<ISO-8601 duration> (the first record at most that old, KIP-1106) or none (error).",
    ));
    FETCH_MIN_BYTES: Key<i32> = Key::i32(KeyDef::new(
        "fetch.min.bytes",
        int(0, 100_000_000),
        Some("1"),
        C::CONSUMER,
        "Bytes a fetch waits for (up to fetch.max.wait.ms).",
    ));
    FETCH_MAX_BYTES: Key<i32> = Key::i32(KeyDef::new(
        "fetch.max.bytes",
        int(0, I32),
        Some("52428800"),
        C::CONSUMER,
        "Largest fetch response requested.",
    ));
    FETCH_MAX_WAIT_MS: Key<Duration> = Key::ms(KeyDef::new(
        "fetch.max.wait.ms",
        int(0, 300_000),
        Some("500"),
        C::CONSUMER,
        "Longest the broker waits to fill fetch.min.bytes.",
    )
    .aliases(&["fetch.wait.max.ms"]));
    MAX_PARTITION_FETCH_BYTES: Key<i32> = Key::i32(KeyDef::new(
        "max.partition.fetch.bytes",
        int(1, I32),
        Some("1048576"),
        C::CONSUMER,
        "Largest amount of data fetched per partition.",
    )
    .aliases(&["fetch.message.max.bytes"]));
    ISOLATION_LEVEL: Key<IsolationLevel> = Key::one_of(KeyDef::new(
        "isolation.level",
        Kind::Enum {
            values: ISOLATION,
            case_insensitive: false,
        },
        Some("read_uncommitted"),
        C::CONSUMER,
        "Whether records of open or aborted transactions are returned.",
    ));
    CHECK_CRCS: Key<bool> = Key::flag(KeyDef::new(
        "check.crcs",
        Kind::Bool,
        Some("true"),
        C::CONSUMER,
        "Verify the CRC of fetched record batches.",
    ));
    PARTITION_ASSIGNMENT_STRATEGY: Key<Vec<AssignmentStrategy>> = Key::list_of(KeyDef::new(
        "partition.assignment.strategy",
        Kind::List { values: ASSIGNORS },
        Some("range,cooperative-sticky"),
        C::CONSUMER,
        "Assignors offered to the group, in order of preference.",
    ));
    MAX_POLL_RECORDS: Key<usize> = Key::size(KeyDef::new(
        "max.poll.records",
        int(1, I32),
        Some("500"),
        C::CONSUMER,
        "Most records one share-consumer poll returns (a consumer's recv returns one message; recv_batch takes its own maximum).",
    ));
    ENABLE_PARTITION_EOF: Key<bool> = Key::flag(KeyDef::new(
        "enable.partition.eof",
        Kind::Bool,
        Some("false"),
        C::CONSUMER,
        "Report reaching the end of a partition.",
    ));
    QUEUED_MAX_MESSAGES_KBYTES: Key<usize> = Key::size(KeyDef::new(
        "queued.max.messages.kbytes",
        int(1, 2_097_151),
        Some("65536"),
        C::CONSUMER,
        "KiB of prefetched records kept in memory.",
    ));
    QUEUED_MIN_MESSAGES: Unread = Unread::new(KeyDef::new(
        "queued.min.messages",
        int(1, 10_000_000),
        Some("100000"),
        C::CONSUMER,
        "librdkafka: records to prefetch per partition.",
    )
    .status(Status::Ignored {
        detail: "prefetch is bounded by queued.max.messages.kbytes and by about one response (max.partition.fetch.bytes) per partition",
    }));
    // ---- share consumer (KIP-932) ---------------------------------------------------------
    SHARE_ACKNOWLEDGEMENT_MODE: Key<ShareAcknowledgementMode> = Key::one_of(KeyDef::new(
        "share.acknowledgement.mode",
        enumeration(SHARE_ACK_MODES),
        Some("implicit"),
        C::CONSUMER,
        "Share consumer: implicit (records accepted at the next receive) or explicit (acknowledge each).",
    ));
}

// The share consumer's enumerated keys.
spellings! {
    SHARE_ACK_MODES for ShareAcknowledgementMode (key SHARE_ACKNOWLEDGEMENT_MODE) = [
        Implicit = "implicit",
        Explicit = "explicit",
    ];
}
named_enums!(ShareAcknowledgementMode);

/// Every key kafka-sdk knows, in table order (common keys, then producer, then consumer).
///
/// For README generation and tests: each entry tells the canonical name, aliases, value kind,
/// default, clients and support status.
pub fn known_keys() -> impl Iterator<Item = &'static KeyDef> {
    KEYS.iter()
}

/// The key named `name` (canonical or alias).
pub fn lookup(name: &str) -> Option<&'static KeyDef> {
    KEYS.iter().find(|k| k.is_named(name))
}
