//! Client configuration: rust-rdkafka style string maps, validated into typed configs.
//!
//! ```
//! use kafka_sdk::config::{Acks, ClientConfig};
//!
//! let mut cfg = ClientConfig::new();
//! cfg.set("bootstrap.servers", "localhost:9092")
//!     .set("message.timeout.ms", "5000") // librdkafka spelling of delivery.timeout.ms
//!     .set("group.id", "shared-map");      // a consumer key: ignored by the producer
//! let producer = cfg.producer().unwrap();
//! assert_eq!(producer.acks, Acks::All);
//! assert_eq!(producer.delivery_timeout.as_millis(), 5000);
//! ```
//!
//! # Keys and the table
//! Every key is declared once in the table of [`keys`] ([`known_keys`] lists it) with its
//! canonical name, aliases, value kind, default, the clients that read it and its status.
//! The table is the only place that states a default or a spelling: the typed configs read
//! each value through the key's typed handle (inside the crate, e.g. `keys::LINGER_MS`, a
//! `Key<Duration>` declared with its table row, whose `const` constructor checks that the
//! key's kind and default fit the type), so a value is parsed once, in one place, and a key
//! nobody reads cannot be declared `Supported`. The defaults of the lower layers come from
//! the same table ([`CommonConfig::with_defaults`], `ClusterOptions::new`,
//! `ConnectionOptions::default`).
//! Keys, aliases and values are the ones of the Java client and librdkafka, with their
//! meanings. [`ClientConfig::set`] stores text as given; validation happens when a typed config
//! is built ([`ClientConfig::common`], [`producer`](ClientConfig::producer),
//! [`consumer`](ClientConfig::consumer), [`admin`](ClientConfig::admin)), and every key present
//! is validated whatever is being built. Errors are [`ConfigError`](crate::ConfigError)s inside
//! [`Error::Config`](crate::Error::Config), and the first problem in insertion order is
//! reported:
//! - a key not in the table: `UnknownKey`;
//! - a value the key's kind refuses: `InvalidValue` with the key (as spelled), the value and
//!   what is allowed;
//! - a key declared not supported (`ssl.*`, `sasl.*`, serializers, interceptors, ...), or a
//!   value not supported (`security.protocol` other than plaintext,
//!   `api.version.request=false`): `NotSupported`;
//! - a missing or empty `bootstrap.servers`: `Missing`;
//! - settings that contradict each other: `Conflict`, naming the keys.
//!
//! Keys of another client are accepted and ignored (a `tracing` debug event says so): one map
//! can serve a producer and a consumer. librdkafka keys that have no effect here (`debug`,
//! `log_level`, `log.connection.close`, `api.version.fallback.ms`, `broker.version.fallback`,
//! `queued.min.messages`) are validated and ignored with an `info` hint; logging goes through
//! `tracing`.
//!
//! # Values
//! - integers: decimal, surrounding whitespace ignored, within the key's range;
//! - booleans: `true`/`false` in any case, and `1`/`0` as librdkafka accepts;
//! - enumerations: canonical names plus the other clients' spellings (`smallest` =
//!   `earliest`, `-1` = `all`, Java class names for partitioners and assignors); any case,
//!   except `isolation.level` and `partition.assignment.strategy` (as in Java). The enum
//!   types ([`Acks`], [`Compression`], [`OffsetReset`], [`IsolationLevel`],
//!   [`AssignmentStrategy`], [`SecurityProtocol`], [`GroupProtocol`]) implement `FromStr`
//!   with exactly these spellings and rules (an unknown value is `InvalidValue`, a value not
//!   implemented is `NotSupported`), and `Display` / `name()` give the canonical name. The
//!   typed configs carry these enums to where they take effect; [`Compression`] is the record
//!   layer's codec enum itself;
//! - `bootstrap.servers`: `host:port` list; `PLAINTEXT://` is stripped, a missing port means
//!   9092 (librdkafka), IPv6 hosts need brackets.
//!
//! # Aliases and precedence
//! An alias (e.g. `metadata.broker.list` for `bootstrap.servers`, `queue.buffering.max.ms`
//! for `linger.ms`) is the same key. The map stores each spelling as given, so:
//! - [`ClientConfig::get`] returns the value under the exact name asked for, else under the
//!   canonical name, else under the first alias (table order) that is set;
//! - [`ClientConfig::remove`] removes every spelling of the key;
//! - when building, several spellings with the same (parsed) value are fine; different values
//!   are a `Conflict` naming both spellings. There is no silent "last one wins".
//!
//! `queue.buffering.max.kbytes` is librdkafka's `buffer.memory` in KiB; it is its own key (the
//! unit differs) and must agree with `buffer.memory` when both are set.
//!
//! # Defaults and cross-field rules
//! Defaults follow the Java client (e.g. `batch.size` 16384, `isolation.level`
//! read_uncommitted, `check.crcs` true) and librdkafka for librdkafka-only keys. The
//! partitioner defaults to `murmur2_random`, the librdkafka name of Java's behaviour (murmur2
//! for keyed records, sticky random otherwise). Typed configs remember which keys were set
//! explicitly ([`CommonConfig::explicit_keys`]) because some rules depend on it:
//! - idempotence (Java): `enable.idempotence=true` set explicitly with `acks` not `all`,
//!   `max.in.flight.requests.per.connection` > 5 or `retries` = 0 is a `Conflict`; when
//!   idempotence is only defaulted, it is turned off instead (an `info` event says why);
//! - `transactional.id` needs idempotence: explicitly disabled, or turned off by the rule
//!   above, is a `Conflict`;
//! - `delivery.timeout.ms` >= `linger.ms` + `request.timeout.ms` (Java): an explicit lower
//!   value is a `Conflict` naming the three keys, a defaulted one is raised. The librdkafka
//!   spelling `message.timeout.ms` keeps librdkafka's meaning (a plain upper bound) and is
//!   taken as given, so `message.timeout.ms=5000` works as it does with rust-rdkafka;
//! - `compression.level` must fit the codec (gzip 0..=9, lz4 0..=12, zstd -131072..=22,
//!   snappy none; -1 = codec default); with `compression.type=none` it is ignored;
//! - `*.max.ms` backoffs and setup timeouts must be >= their base value when set explicitly
//!   (librdkafka); a defaulted maximum is raised to the base;
//! - consumer: `heartbeat.interval.ms` < `session.timeout.ms`, `fetch.min.bytes` <=
//!   `fetch.max.bytes`, `group.instance.id` requires `group.id` (all `Conflict`). An empty
//!   `group.id` is invalid; `enable.auto.commit=true` without `group.id` is allowed and
//!   commits nothing.

mod common;
mod consumer;
pub mod keys;
mod producer;
mod resolve;
pub(crate) mod security;
mod share;
#[cfg(test)]
mod tests;

use std::fmt;

pub use common::{AdminConfig, CommonConfig, SecurityProtocol};
pub use consumer::{
    AssignmentStrategy, ConsumerConfig, GroupProtocol, IsolationLevel, OffsetReset,
};
pub use keys::{known_keys, Clients, EnumValue, KeyDef, Kind, Status};
pub use producer::{Acks, Compression, PartitionerKind, ProducerConfig};
pub use security::{
    OAuthToken, OAuthTokenFuture, OAuthTokenProvider, SaslMechanism, SecurityConfig,
};
pub use share::{ShareAcknowledgementMode, ShareConsumerConfig};

use crate::error::Result;
use resolve::{Resolved, Target};

/// A client configuration as an insertion-ordered map of string keys to string values, the
/// way rust-rdkafka's `ClientConfig` works. Nothing is checked until a typed config is built.
///
/// `Debug` hides the values of keys that look secret (`password`, `secret`, `jaas`).
///
/// ```
/// use kafka_sdk::ClientConfig;
///
/// let mut config = ClientConfig::new();
/// config
///     .set("bootstrap.servers", "broker-1:9092,broker-2:9092")
///     .set("queue.buffering.max.ms", "20"); // librdkafka's name of `linger.ms`
/// assert_eq!(config.get("linger.ms"), Some("20"));
/// assert_eq!(config.producer().unwrap().linger.as_millis(), 20);
///
/// // Problems are found when a typed config (or a client) is built, naming the key.
/// config.set("linger.ms", "soon");
/// let err = config.producer().unwrap_err();
/// assert!(err.to_string().contains("linger.ms"), "{err}");
/// ```
#[derive(Clone, Default)]
pub struct ClientConfig {
    entries: Vec<(String, String)>,
}

impl ClientConfig {
    /// An empty configuration.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets `key` to `value` (stored as given, not validated). Setting the same spelling again
    /// replaces the value in place; other spellings of the key are kept (see the module docs).
    pub fn set(&mut self, key: impl Into<String>, value: impl Into<String>) -> &mut Self {
        let (key, value) = (key.into(), value.into());
        match self.entries.iter_mut().find(|(k, _)| *k == key) {
            Some(entry) => entry.1 = value,
            None => self.entries.push((key, value)),
        }
        self
    }

    /// Builder-style [`set`](Self::set).
    pub fn with(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.set(key, value);
        self
    }

    /// The value set for `key`, resolving aliases: the exact spelling first, then the
    /// canonical name, then the aliases in table order. `get("metadata.broker.list")` finds a
    /// value set as `bootstrap.servers`. Defaults are not returned.
    pub fn get(&self, key: &str) -> Option<&str> {
        if let Some(v) = self.raw(key) {
            return Some(v);
        }
        let def = keys::lookup(key)?;
        std::iter::once(&def.name)
            .chain(def.aliases)
            .find_map(|name| self.raw(name))
    }

    /// Removes every spelling of `key` and returns what [`get`](Self::get) returned.
    pub fn remove(&mut self, key: &str) -> Option<String> {
        let found = self.get(key).map(str::to_string);
        match keys::lookup(key) {
            Some(def) => self.entries.retain(|(k, _)| !def.is_named(k)),
            None => self.entries.retain(|(k, _)| k != key),
        }
        found
    }

    /// The entries as set, in insertion order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> + '_ {
        self.entries.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// Validates every key and builds the settings shared by all clients.
    pub fn common(&self) -> Result<CommonConfig> {
        CommonConfig::from_resolved(&self.resolve(Target::Common)?)
    }

    /// Validates every key and builds the producer's settings (with the producer rules).
    pub fn producer(&self) -> Result<ProducerConfig> {
        ProducerConfig::from_resolved(&self.resolve(Target::Producer)?)
    }

    /// Validates every key and builds the consumer's settings (with the consumer rules).
    pub fn consumer(&self) -> Result<ConsumerConfig> {
        ConsumerConfig::from_resolved(&self.resolve(Target::Consumer)?)
    }

    /// Validates every key and builds the admin client's settings.
    pub fn admin(&self) -> Result<AdminConfig> {
        Ok(AdminConfig {
            common: CommonConfig::from_resolved(&self.resolve(Target::Admin)?)?,
        })
    }

    fn raw(&self, key: &str) -> Option<&str> {
        self.entries
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    fn resolve(&self, target: Target) -> Result<Resolved> {
        Resolved::new(self.iter(), target)
    }
}

fn is_secret(key: &str) -> bool {
    ["password", "secret", "jaas", "pem", "keystore.key", "token"]
        .iter()
        .any(|s| key.contains(s))
}

impl fmt::Debug for ClientConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(self.entries.iter().map(|(k, v)| {
                let v = if is_secret(k) {
                    "<redacted>"
                } else {
                    v.as_str()
                };
                (k, v)
            }))
            .finish()
    }
}

impl<K: Into<String>, V: Into<String>> FromIterator<(K, V)> for ClientConfig {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        let mut cfg = ClientConfig::new();
        for (k, v) in iter {
            cfg.set(k, v);
        }
        cfg
    }
}
