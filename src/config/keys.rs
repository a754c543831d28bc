//! The one table of configuration keys.
//!
//! Every key kafka-sdk knows is declared once in the table `KEYS`, with its aliases, value kind,
//! default (as text), the clients that use it, its support status and a one-line doc. Parsing,
//! validation, alias resolution and defaults all go through this table; the typed configs are
//! filled from it. [`known_keys`] lists it (for README generation and tests).

use super::producer::PartitionerKind;
use crate::error::ConfigError;

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
                .map(|v| Value::Str(v.to_string()))
                .ok_or_else(invalid),
            Kind::String { allow_empty } => {
                if text.is_empty() && !allow_empty {
                    Err(invalid())
                } else {
                    Ok(Value::Str(text.to_string()))
                }
            }
            Kind::List { values } => {
                let mut out: Vec<String> = Vec::new();
                for item in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                    let v = match_enum(values, item, false).ok_or_else(invalid)?;
                    if !out.iter().any(|o| o == v) {
                        out.push(v.to_string());
                    }
                }
                if out.is_empty() {
                    return Err(invalid());
                }
                Ok(Value::List(out))
            }
            Kind::HostList => parse_hosts(key, raw, &self.expected()),
        }
    }
}

fn names(values: &[EnumValue]) -> String {
    values.iter().map(|v| v.name).collect::<Vec<_>>().join(", ")
}

fn match_enum(values: &'static [EnumValue], text: &str, ci: bool) -> Option<&'static str> {
    let eq = |a: &str| {
        if ci {
            a.eq_ignore_ascii_case(text)
        } else {
            a == text
        }
    };
    values
        .iter()
        .find(|v| eq(v.name) || v.synonyms.iter().any(|s| eq(s)))
        .map(|v| v.name)
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
            Some((scheme, rest)) if scheme.eq_ignore_ascii_case("plaintext") => rest,
            Some((scheme, _))
                if ["ssl", "sasl_plaintext", "sasl_ssl"]
                    .iter()
                    .any(|s| s.eq_ignore_ascii_case(scheme)) =>
            {
                return Err(ConfigError::NotSupported {
                    key: key.to_string(),
                    detail: Some(format!("{TLS_SASL} (`{scheme}://` address)")),
                })
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
    Ok(Value::List(out))
}

/// A parsed value in canonical form (enum values by canonical name).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Value {
    Int(i64),
    Bool(bool),
    Str(String),
    List(Vec<String>),
}

impl Value {
    /// Canonical text, as compared with [`Status::Partial`]'s `supported`.
    pub(crate) fn text(&self) -> String {
        match self {
            Value::Int(i) => i.to_string(),
            Value::Bool(b) => b.to_string(),
            Value::Str(s) => s.clone(),
            Value::List(l) => l.join(","),
        }
    }
}

const I32: i64 = i32::MAX as i64;

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

/// Detail of every TLS/SASL `NotSupported` error.
pub(crate) const TLS_SASL: &str = "TLS/SASL is not supported yet";
const TLS: Status = Status::NotSupported { detail: TLS_SASL };
const SERDE: Status = Status::NotSupported {
    detail: "kafka-sdk takes bytes; serialize in your code",
};

const ACKS: &[EnumValue] = &[ev("0", &[]), ev("1", &[]), ev("all", &["-1"])];
const COMPRESSION: &[EnumValue] = &[
    ev("none", &[]),
    ev("gzip", &[]),
    ev("snappy", &[]),
    ev("lz4", &[]),
    ev("zstd", &[]),
];
/// The `partitioner` values: canonical names from [`PartitionerKind::name`] (the enum and
/// this table cannot drift apart), plus the Java class names that mean the same.
const PARTITIONERS: &[EnumValue] = &[
    ev(PartitionerKind::Murmur2.name(), &[]),
    ev(
        PartitionerKind::Murmur2Random.name(),
        &["org.apache.kafka.clients.producer.internals.DefaultPartitioner"],
    ),
    ev(PartitionerKind::Consistent.name(), &[]),
    ev(PartitionerKind::ConsistentRandom.name(), &[]),
    ev(PartitionerKind::Random.name(), &[]),
    ev(
        PartitionerKind::RoundRobin.name(),
        &["org.apache.kafka.clients.producer.RoundRobinPartitioner"],
    ),
    ev(PartitionerKind::Fnv1a.name(), &[]),
    ev(PartitionerKind::Fnv1aRandom.name(), &[]),
];
const OFFSET_RESET: &[EnumValue] = &[
    ev("earliest", &["smallest", "beginning"]),
    ev("latest", &["largest", "end"]),
    ev("none", &["error"]),
];
const ISOLATION: &[EnumValue] = &[ev("read_uncommitted", &[]), ev("read_committed", &[])];
const ASSIGNORS: &[EnumValue] = &[
    ev(
        "range",
        &["org.apache.kafka.clients.consumer.RangeAssignor"],
    ),
    ev(
        "roundrobin",
        &["org.apache.kafka.clients.consumer.RoundRobinAssignor"],
    ),
    ev(
        "sticky",
        &["org.apache.kafka.clients.consumer.StickyAssignor"],
    ),
    ev(
        "cooperative-sticky",
        &["org.apache.kafka.clients.consumer.CooperativeStickyAssignor"],
    ),
];
const SECURITY: &[EnumValue] = &[
    ev("plaintext", &[]),
    ev("ssl", &[]),
    ev("sasl_plaintext", &[]),
    ev("sasl_ssl", &[]),
];
const GROUP_PROTOCOL: &[EnumValue] = &[ev("classic", &[]), ev("consumer", &[])];

use Clients as C;

/// Every key kafka-sdk knows. Canonical names are unique and no alias is another key's name
/// (checked by tests).
pub(crate) static KEYS: &[KeyDef] = &[
    // ---- every client -------------------------------------------------------------------
    KeyDef::new(
        "bootstrap.servers",
        Kind::HostList,
        None,
        C::ALL,
        "Initial brokers, `host:port` comma-separated (required; `PLAINTEXT://` prefix allowed).",
    )
    .aliases(&["metadata.broker.list"]),
    KeyDef::new(
        "client.id",
        STRING,
        Some("kafka-sdk"),
        C::ALL,
        "Client id sent with every request (broker logs and quotas).",
    ),
    KeyDef::new(
        "request.timeout.ms",
        int(1, I32),
        Some("30000"),
        C::ALL,
        "How long to wait for a broker's response to a request.",
    )
    .aliases(&["socket.timeout.ms"]),
    KeyDef::new(
        "socket.connection.setup.timeout.ms",
        int(1, I32),
        Some("10000"),
        C::ALL,
        "Time allowed to establish a broker connection (first attempt).",
    ),
    KeyDef::new(
        "socket.connection.setup.timeout.max.ms",
        int(1, I32),
        Some("30000"),
        C::ALL,
        "Upper bound of the exponentially growing connection setup timeout.",
    ),
    KeyDef::new(
        "reconnect.backoff.ms",
        int(0, 3_600_000),
        Some("50"),
        C::ALL,
        "Initial wait before reconnecting to a broker.",
    ),
    KeyDef::new(
        "reconnect.backoff.max.ms",
        int(0, 3_600_000),
        Some("1000"),
        C::ALL,
        "Upper bound of the exponential reconnect backoff.",
    ),
    KeyDef::new(
        "retry.backoff.ms",
        int(0, 3_600_000),
        Some("100"),
        C::ALL,
        "Initial wait before retrying a failed request.",
    ),
    KeyDef::new(
        "retry.backoff.max.ms",
        int(0, 3_600_000),
        Some("1000"),
        C::ALL,
        "Upper bound of the exponential retry backoff.",
    ),
    KeyDef::new(
        "metadata.max.age.ms",
        int(0, I32),
        Some("300000"),
        C::ALL,
        "Refresh cluster metadata at least this often.",
    )
    .aliases(&["topic.metadata.refresh.interval.ms"]),
    KeyDef::new(
        "receive.message.max.bytes",
        int(1000, I32),
        Some("100000000"),
        C::ALL,
        "Largest response frame accepted from a broker.",
    ),
    KeyDef::new(
        "connections.max.idle.ms",
        int(0, I32),
        Some("540000"),
        C::ALL,
        "Close connections idle this long (0: never).",
    ),
    KeyDef::new(
        "socket.nagle.disable",
        Kind::Bool,
        Some("true"),
        C::ALL,
        "Disable Nagle's algorithm, i.e. set TCP_NODELAY (true = nodelay on).",
    )
    .aliases(&["tcp.nodelay"]),
    KeyDef::new(
        "client.rack",
        STRING,
        None,
        C::ALL,
        "Rack of the client, for fetching from the closest replica (empty: none).",
    ),
    KeyDef::new(
        "allow.auto.create.topics",
        Kind::Bool,
        Some("true"),
        C::ALL,
        "Let metadata requests auto-create missing topics (if the broker allows it).",
    ),
    KeyDef::new(
        "security.protocol",
        enumeration(SECURITY),
        Some("plaintext"),
        C::ALL,
        "Protocol used to talk to brokers.",
    )
    .status(Status::Partial {
        supported: &["plaintext"],
        detail: TLS_SASL,
    }),
    // ---- accepted, no effect --------------------------------------------------------------
    KeyDef::new("debug", STRING, None, C::ALL, "librdkafka debug contexts.").status(
        Status::Ignored {
            detail: "kafka-sdk logs through `tracing`; enable e.g. RUST_LOG=kafka_sdk=debug",
        },
    ),
    KeyDef::new(
        "log_level",
        int(0, 7),
        Some("6"),
        C::ALL,
        "librdkafka syslog level.",
    )
    .status(Status::Ignored {
        detail: "kafka-sdk logs through `tracing`; filter with your subscriber",
    }),
    KeyDef::new(
        "log.connection.close",
        Kind::Bool,
        Some("true"),
        C::ALL,
        "librdkafka: log broker disconnects.",
    )
    .status(Status::Ignored {
        detail: "disconnects are logged through `tracing` at debug level",
    }),
    KeyDef::new(
        "api.version.request",
        Kind::Bool,
        Some("true"),
        C::ALL,
        "librdkafka: query broker API versions (always done).",
    )
    .status(Status::Partial {
        supported: &["true"],
        detail: "kafka-sdk always negotiates API versions (brokers >= 0.10)",
    }),
    KeyDef::new(
        "api.version.fallback.ms",
        int(0, 604_800_000),
        Some("0"),
        C::ALL,
        "librdkafka: fallback period after a failed ApiVersions request.",
    )
    .status(Status::Ignored {
        detail: "API versions are always negotiated",
    }),
    KeyDef::new(
        "broker.version.fallback",
        STRING,
        Some("0.10.0"),
        C::ALL,
        "librdkafka: broker version assumed when ApiVersions is not used.",
    )
    .status(Status::Ignored {
        detail: "API versions are always negotiated",
    }),
    KeyDef::new(
        "statistics.interval.ms",
        int(0, 86_400_000),
        Some("0"),
        C::ALL,
        "librdkafka statistics callback interval (0: off).",
    )
    .status(Status::Partial {
        supported: &["0"],
        detail: "statistics callbacks are not supported",
    }),
    // ---- TLS / SASL (not supported) -------------------------------------------------------
    KeyDef::new("sasl.mechanism", STRING, None, C::ALL, "SASL mechanism.")
        .aliases(&["sasl.mechanisms"])
        .status(TLS),
    KeyDef::new("sasl.username", STRING, None, C::ALL, "SASL username.").status(TLS),
    KeyDef::new("sasl.password", STRING, None, C::ALL, "SASL password.").status(TLS),
    KeyDef::new("sasl.jaas.config", STRING, None, C::ALL, "Java JAAS login.").status(TLS),
    KeyDef::new(
        "sasl.kerberos.service.name",
        STRING,
        None,
        C::ALL,
        "Kerberos principal name of the brokers.",
    )
    .status(TLS),
    KeyDef::new(
        "sasl.oauthbearer.config",
        STRING,
        None,
        C::ALL,
        "librdkafka OAUTHBEARER settings.",
    )
    .status(TLS),
    KeyDef::new(
        "sasl.oauthbearer.method",
        STRING,
        None,
        C::ALL,
        "librdkafka OAUTHBEARER token method.",
    )
    .status(TLS),
    KeyDef::new(
        "sasl.oauthbearer.token.endpoint.url",
        STRING,
        None,
        C::ALL,
        "OAUTHBEARER token endpoint.",
    )
    .status(TLS),
    KeyDef::new(
        "sasl.login.callback.handler.class",
        STRING,
        None,
        C::ALL,
        "Java SASL login callback handler.",
    )
    .status(TLS),
    KeyDef::new(
        "ssl.ca.location",
        STRING,
        None,
        C::ALL,
        "CA certificate file (librdkafka).",
    )
    .status(TLS),
    KeyDef::new(
        "ssl.ca.pem",
        STRING,
        None,
        C::ALL,
        "CA certificate PEM (librdkafka).",
    )
    .status(TLS),
    KeyDef::new(
        "ssl.certificate.location",
        STRING,
        None,
        C::ALL,
        "Client certificate file (librdkafka).",
    )
    .status(TLS),
    KeyDef::new(
        "ssl.certificate.pem",
        STRING,
        None,
        C::ALL,
        "Client certificate PEM (librdkafka).",
    )
    .status(TLS),
    KeyDef::new(
        "ssl.key.location",
        STRING,
        None,
        C::ALL,
        "Client private key file (librdkafka).",
    )
    .status(TLS),
    KeyDef::new(
        "ssl.key.pem",
        STRING,
        None,
        C::ALL,
        "Client private key PEM (librdkafka).",
    )
    .status(TLS),
    KeyDef::new(
        "ssl.key.password",
        STRING,
        None,
        C::ALL,
        "Private key password.",
    )
    .status(TLS),
    KeyDef::new(
        "ssl.keystore.location",
        STRING,
        None,
        C::ALL,
        "Keystore file.",
    )
    .status(TLS),
    KeyDef::new(
        "ssl.keystore.password",
        STRING,
        None,
        C::ALL,
        "Keystore password.",
    )
    .status(TLS),
    KeyDef::new(
        "ssl.keystore.type",
        STRING,
        None,
        C::ALL,
        "Keystore format (Java).",
    )
    .status(TLS),
    KeyDef::new(
        "ssl.truststore.location",
        STRING,
        None,
        C::ALL,
        "Truststore file (Java).",
    )
    .status(TLS),
    KeyDef::new(
        "ssl.truststore.password",
        STRING,
        None,
        C::ALL,
        "Truststore password (Java).",
    )
    .status(TLS),
    KeyDef::new(
        "ssl.truststore.type",
        STRING,
        None,
        C::ALL,
        "Truststore format (Java).",
    )
    .status(TLS),
    KeyDef::new(
        "ssl.endpoint.identification.algorithm",
        STRING,
        None,
        C::ALL,
        "Broker hostname verification (`https` or none).",
    )
    .status(TLS),
    KeyDef::new(
        "ssl.cipher.suites",
        STRING,
        None,
        C::ALL,
        "Allowed TLS cipher suites.",
    )
    .status(TLS),
    KeyDef::new(
        "ssl.enabled.protocols",
        STRING,
        None,
        C::ALL,
        "Allowed TLS versions (Java).",
    )
    .status(TLS),
    KeyDef::new("ssl.protocol", STRING, None, C::ALL, "TLS protocol (Java).").status(TLS),
    KeyDef::new(
        "enable.ssl.certificate.verification",
        Kind::Bool,
        None,
        C::ALL,
        "librdkafka: verify the broker certificate.",
    )
    .status(TLS),
    // ---- Java-only plumbing (not supported) -----------------------------------------------
    KeyDef::new(
        "interceptor.classes",
        STRING,
        None,
        C::PRODUCER_CONSUMER,
        "Java interceptor classes.",
    )
    .status(Status::NotSupported {
        detail: "interceptors are Java classes; wrap the client in your code",
    }),
    KeyDef::new(
        "key.serializer",
        STRING,
        None,
        C::PRODUCER,
        "Java key serializer class.",
    )
    .status(SERDE),
    KeyDef::new(
        "value.serializer",
        STRING,
        None,
        C::PRODUCER,
        "Java value serializer class.",
    )
    .status(SERDE),
    KeyDef::new(
        "key.deserializer",
        STRING,
        None,
        C::CONSUMER,
        "Java key deserializer class.",
    )
    .status(SERDE),
    KeyDef::new(
        "value.deserializer",
        STRING,
        None,
        C::CONSUMER,
        "Java value deserializer class.",
    )
    .status(SERDE),
    // ---- producer -------------------------------------------------------------------------
    KeyDef::new(
        "acks",
        enumeration(ACKS),
        Some("all"),
        C::PRODUCER,
        "Acknowledgements the leader waits for: 0, 1 or all (-1).",
    )
    .aliases(&["request.required.acks"]),
    KeyDef::new(
        "linger.ms",
        int(0, 900_000),
        Some("5"),
        C::PRODUCER,
        "How long a batch may wait for more records before it is sent.",
    )
    .aliases(&["queue.buffering.max.ms"]),
    KeyDef::new(
        "batch.size",
        int(1, I32),
        Some("16384"),
        C::PRODUCER,
        "Target size in bytes of a partition's record batch.",
    ),
    KeyDef::new(
        "batch.num.messages",
        int(1, 1_000_000),
        Some("10000"),
        C::PRODUCER,
        "Largest number of records in one batch.",
    ),
    KeyDef::new(
        "buffer.memory",
        int(1, i64::MAX),
        Some("33554432"),
        C::PRODUCER,
        "Bytes of records the producer may buffer before `send` waits.",
    ),
    KeyDef::new(
        "queue.buffering.max.kbytes",
        int(1, I32),
        None,
        C::PRODUCER,
        "librdkafka spelling of `buffer.memory`, in KiB.",
    ),
    KeyDef::new(
        "queue.buffering.max.messages",
        int(0, I32),
        None,
        C::PRODUCER,
        "Largest number of buffered records (0 or unset: no count limit).",
    )
    .status(Status::Ignored {
        detail: "not enforced yet; `buffer.memory` bounds the buffer",
    }),
    KeyDef::new(
        "max.block.ms",
        int(0, I32),
        Some("60000"),
        C::PRODUCER,
        "How long `send` may wait for buffer space or metadata.",
    ),
    KeyDef::new(
        "max.request.size",
        int(1, I32),
        Some("1048576"),
        C::PRODUCER,
        "Largest produce request (and so record) in bytes.",
    )
    .aliases(&["message.max.bytes"]),
    KeyDef::new(
        "compression.type",
        enumeration(COMPRESSION),
        Some("none"),
        C::PRODUCER,
        "Compression codec of produced batches.",
    )
    .aliases(&["compression.codec"]),
    KeyDef::new(
        "compression.level",
        int(-131_072, 22),
        Some("-1"),
        C::PRODUCER,
        "Codec level (-1: codec default; gzip 0..=9, lz4 0..=12, zstd -131072..=22).",
    ),
    KeyDef::new(
        "enable.idempotence",
        Kind::Bool,
        Some("true"),
        C::PRODUCER,
        "Exactly-once per partition: producer ids and sequence numbers.",
    ),
    KeyDef::new(
        "max.in.flight.requests.per.connection",
        int(1, 1_000_000),
        Some("5"),
        C::PRODUCER,
        "Unacknowledged produce requests per broker connection.",
    )
    .aliases(&["max.in.flight"]),
    KeyDef::new(
        "retries",
        int(0, I32),
        Some("2147483647"),
        C::PRODUCER,
        "How often a failed produce is retried (bounded by delivery.timeout.ms).",
    )
    .aliases(&["message.send.max.retries"]),
    KeyDef::new(
        "delivery.timeout.ms",
        int(1, I32),
        Some("120000"),
        C::PRODUCER,
        "Upper bound on the time from `send` to success or failure.",
    )
    .aliases(&["message.timeout.ms"]),
    KeyDef::new(
        "partitioner",
        enumeration(PARTITIONERS),
        // THE default partitioner (`PartitionerKind::default()` reads it from here): Java's
        // behaviour, murmur2 for keyed records and uniform sticky for NULL keys.
        Some("murmur2_random"),
        C::PRODUCER,
        "How records are mapped to partitions (librdkafka names; `_random`: NULL keys sticky).",
    )
    .aliases(&["partitioner.class"]),
    KeyDef::new(
        "sticky.partitioning.linger.ms",
        int(0, 900_000),
        Some("10"),
        C::PRODUCER,
        "How long records without a key stick to one partition.",
    )
    .status(Status::Ignored {
        detail: "keyless records stick to a partition until `batch.size` bytes went to it",
    }),
    KeyDef::new(
        "transactional.id",
        NON_EMPTY,
        None,
        C::PRODUCER,
        "Enables transactions under this id (requires idempotence).",
    ),
    KeyDef::new(
        "transaction.timeout.ms",
        int(1000, I32),
        Some("60000"),
        C::PRODUCER,
        "Longest a transaction may stay open before the coordinator aborts it.",
    ),
    KeyDef::new(
        "partitioner.ignore.keys",
        Kind::Bool,
        Some("false"),
        C::PRODUCER,
        "Partition keyed records as if they had no key.",
    ),
    // ---- consumer -------------------------------------------------------------------------
    KeyDef::new(
        "group.id",
        NON_EMPTY,
        None,
        C::CONSUMER,
        "Consumer group (needed for subscribe and offset commits).",
    ),
    KeyDef::new(
        "group.instance.id",
        NON_EMPTY,
        None,
        C::CONSUMER,
        "Static membership id (requires group.id).",
    ),
    KeyDef::new(
        "group.protocol",
        enumeration(GROUP_PROTOCOL),
        Some("classic"),
        C::CONSUMER,
        "Group protocol: classic (JoinGroup/SyncGroup) or consumer (KIP-848).",
    )
    .status(Status::Partial {
        supported: &["classic"],
        detail: "the KIP-848 `consumer` group protocol is not supported yet; use classic",
    }),
    KeyDef::new(
        "session.timeout.ms",
        int(1, 3_600_000),
        Some("45000"),
        C::CONSUMER,
        "A member that sends no heartbeat for this long leaves the group.",
    ),
    KeyDef::new(
        "heartbeat.interval.ms",
        int(1, 3_600_000),
        Some("3000"),
        C::CONSUMER,
        "How often the member heartbeats to the coordinator.",
    ),
    KeyDef::new(
        "max.poll.interval.ms",
        int(1, 86_400_000),
        Some("300000"),
        C::CONSUMER,
        "Longest time between polls before the member leaves the group.",
    ),
    KeyDef::new(
        "enable.auto.commit",
        Kind::Bool,
        Some("true"),
        C::CONSUMER,
        "Commit stored offsets in the background.",
    )
    .aliases(&["auto.commit.enable"]),
    KeyDef::new(
        "auto.commit.interval.ms",
        int(0, 86_400_000),
        Some("5000"),
        C::CONSUMER,
        "Interval of background offset commits.",
    ),
    KeyDef::new(
        "enable.auto.offset.store",
        Kind::Bool,
        Some("true"),
        C::CONSUMER,
        "Store the offset of each record handed to the application.",
    ),
    KeyDef::new(
        "auto.offset.reset",
        enumeration(OFFSET_RESET),
        Some("latest"),
        C::CONSUMER,
        "Where to start with no committed offset: earliest, latest or none (error).",
    ),
    KeyDef::new(
        "fetch.min.bytes",
        int(0, 100_000_000),
        Some("1"),
        C::CONSUMER,
        "Bytes a fetch waits for (up to fetch.max.wait.ms).",
    ),
    KeyDef::new(
        "fetch.max.bytes",
        int(0, I32),
        Some("52428800"),
        C::CONSUMER,
        "Largest fetch response requested.",
    ),
    KeyDef::new(
        "fetch.max.wait.ms",
        int(0, 300_000),
        Some("500"),
        C::CONSUMER,
        "Longest the broker waits to fill fetch.min.bytes.",
    )
    .aliases(&["fetch.wait.max.ms"]),
    KeyDef::new(
        "max.partition.fetch.bytes",
        int(1, I32),
        Some("1048576"),
        C::CONSUMER,
        "Largest amount of data fetched per partition.",
    )
    .aliases(&["fetch.message.max.bytes"]),
    KeyDef::new(
        "isolation.level",
        Kind::Enum {
            values: ISOLATION,
            case_insensitive: false,
        },
        Some("read_uncommitted"),
        C::CONSUMER,
        "Whether records of open or aborted transactions are returned.",
    ),
    KeyDef::new(
        "check.crcs",
        Kind::Bool,
        Some("true"),
        C::CONSUMER,
        "Verify the CRC of fetched record batches.",
    ),
    KeyDef::new(
        "partition.assignment.strategy",
        Kind::List { values: ASSIGNORS },
        Some("range,cooperative-sticky"),
        C::CONSUMER,
        "Assignors offered to the group, in order of preference.",
    ),
    KeyDef::new(
        "max.poll.records",
        int(1, I32),
        Some("500"),
        C::CONSUMER,
        "Most records returned by one poll.",
    ),
    KeyDef::new(
        "enable.partition.eof",
        Kind::Bool,
        Some("false"),
        C::CONSUMER,
        "Report reaching the end of a partition.",
    ),
    KeyDef::new(
        "queued.max.messages.kbytes",
        int(1, 2_097_151),
        Some("65536"),
        C::CONSUMER,
        "KiB of prefetched records kept in memory.",
    ),
    KeyDef::new(
        "queued.min.messages",
        int(1, 10_000_000),
        Some("100000"),
        C::CONSUMER,
        "librdkafka: records to prefetch per partition.",
    )
    .status(Status::Ignored {
        detail: "prefetch is bounded by queued.max.messages.kbytes only",
    }),
];

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

/// The key whose canonical name is `name`; panics on a name missing from the table (a bug in
/// kafka-sdk, caught by tests).
pub(crate) fn def(name: &str) -> &'static KeyDef {
    KEYS.iter()
        .find(|k| k.name == name)
        .unwrap_or_else(|| panic!("config key `{name}` missing from the table"))
}
