//! [`ClientConfig`]: string keys and values, as in rdkafka, and the traits that create clients
//! from it.
//!
//! The keys are handed to kafka-sdk's [`kafka_sdk::ClientConfig`] unchanged: it knows Java's
//! and librdkafka's names (see kafka-sdk's README for which librdkafka keys are supported,
//! accepted without effect, or rejected). Problems are found when a client is created, as
//! with librdkafka, and reported as [`KafkaError::ClientConfig`] naming the key.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use kafka_sdk::error::{ConfigError, Error as SdkError};

use crate::client::ClientContext;
use crate::error::{KafkaError, KafkaResult, RDKafkaConfRes};

/// librdkafka's defaults that the drop-in applies where kafka-sdk's own (Java's) differ in
/// a way a service would notice. Producer and consumer keys go to every client (kafka-sdk
/// ignores another client's keys).
pub(crate) const LIBRDKAFKA_DEFAULTS: &[(&str, &str)] = &[
    // consistent_random (CRC32 of the key), not Java's murmur2: each key keeps going to the
    // partition it went to before the switch.
    ("partitioner", "consistent_random"),
    // librdkafka 10 ms; kafka-sdk 0 (bytes only, as Java).
    ("sticky.partitioning.linger.ms", "10"),
    // 300 s before a record fails (kafka-sdk / Java: 120 s). Spelled `message.timeout.ms`,
    // which keeps librdkafka's meaning (a plain upper bound).
    ("message.timeout.ms", "300000"),
    // Batches up to 1 MB (kafka-sdk / Java: 16 KiB): rdkafka's batching and throughput.
    ("batch.size", "1000000"),
    // Quotas and broker logs keyed by client id see the same name as before.
    ("client.id", "rdkafka"),
    // Consumers skip aborted transactional records by default in librdkafka.
    ("isolation.level", "read_committed"),
    ("check.crcs", "false"),
    // Offered in JoinGroup; a group mixing rdkafka and drop-in members agrees on `range`.
    ("partition.assignment.strategy", "range,roundrobin"),
];

/// Which kind of client a configuration is for (some librdkafka defaults differ by kind).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) enum Role {
    /// Producers.
    Producer,
    /// Consumers.
    Consumer,
    /// The admin client.
    Admin,
}

/// librdkafka's log levels (syslog's).
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RDKafkaLogLevel {
    /// Emergency.
    Emerg = 0,
    /// Alert.
    Alert = 1,
    /// Critical.
    Critical = 2,
    /// Error.
    Error = 3,
    /// Warning.
    Warning = 4,
    /// Notice.
    Notice = 5,
    /// Info.
    Info = 6,
    /// Debug.
    Debug = 7,
}

impl RDKafkaLogLevel {
    /// The level for a syslog number (out of range: `Debug`).
    pub fn from_int(level: i32) -> RDKafkaLogLevel {
        match level {
            0 => RDKafkaLogLevel::Emerg,
            1 => RDKafkaLogLevel::Alert,
            2 => RDKafkaLogLevel::Critical,
            3 => RDKafkaLogLevel::Error,
            4 => RDKafkaLogLevel::Warning,
            5 => RDKafkaLogLevel::Notice,
            6 => RDKafkaLogLevel::Info,
            _ => RDKafkaLogLevel::Debug,
        }
    }
}

/// A client configuration: string keys and values.
#[derive(Clone)]
pub struct ClientConfig {
    conf_map: HashMap<String, String>,
    /// The log level. kafka-sdk logs through `tracing`; filter there (this field is kept
    /// for API compatibility and has no effect).
    pub log_level: RDKafkaLogLevel,
}

impl fmt::Debug for ClientConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut m = f.debug_map();
        for (k, v) in self.config_map() {
            if is_secret(k) {
                m.entry(&k, &"<redacted>");
            } else {
                m.entry(&k, &v);
            }
        }
        m.finish()
    }
}

fn is_secret(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    [
        "password",
        "secret",
        "jaas",
        "key.pem",
        "token",
        "credentials",
    ]
    .iter()
    .any(|s| k.contains(s))
}

impl Default for ClientConfig {
    fn default() -> ClientConfig {
        ClientConfig::new()
    }
}

impl ClientConfig {
    /// An empty configuration.
    pub fn new() -> ClientConfig {
        ClientConfig {
            conf_map: HashMap::new(),
            log_level: RDKafkaLogLevel::Info,
        }
    }

    /// The entries, sorted by key.
    pub fn config_map(&self) -> BTreeMap<&str, &str> {
        self.conf_map
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect()
    }

    /// The value set for `key` (exactly this spelling).
    pub fn get(&self, key: &str) -> Option<&str> {
        self.conf_map.get(key).map(|v| v.as_str())
    }

    /// Sets `key` to `value`.
    pub fn set<K, V>(&mut self, key: K, value: V) -> &mut ClientConfig
    where
        K: Into<String>,
        V: Into<String>,
    {
        self.conf_map.insert(key.into(), value.into());
        self
    }

    /// Removes `key`.
    pub fn remove<'a>(&'a mut self, key: &str) -> &'a mut ClientConfig {
        self.conf_map.remove(key);
        self
    }

    /// Sets the log level (no effect: see [`ClientConfig::log_level`]).
    pub fn set_log_level(&mut self, log_level: RDKafkaLogLevel) -> &mut ClientConfig {
        self.log_level = log_level;
        self
    }

    /// Creates a client with the default context.
    pub fn create<T: FromClientConfig>(&self) -> KafkaResult<T> {
        T::from_config(self)
    }

    /// Creates a client with `context`.
    pub fn create_with_context<C, T>(&self, context: C) -> KafkaResult<T>
    where
        C: ClientContext,
        T: FromClientConfigAndContext<C>,
    {
        T::from_config_and_context(self, context)
    }

    /// kafka-sdk's configuration with the same entries, plus librdkafka's defaults for the
    /// keys a service set under no spelling where kafka-sdk's own defaults (Java's) differ in
    /// what the service sees ([`LIBRDKAFKA_DEFAULTS`]; for a consumer also
    /// `allow.auto.create.topics=false`, librdkafka's consumer default).
    pub(crate) fn to_sdk(&self, role: Role) -> kafka_sdk::ClientConfig {
        let mut c = kafka_sdk::ClientConfig::new();
        for (k, v) in self.config_map() {
            c.set(k, v);
        }
        let consumer = [("allow.auto.create.topics", "false")];
        let extra: &[(&str, &str)] = if role == Role::Consumer {
            &consumer
        } else {
            &[]
        };
        for (k, v) in LIBRDKAFKA_DEFAULTS.iter().chain(extra) {
            // kafka-sdk's `get` finds a key under any of its spellings (`delivery.timeout.ms`
            // for `message.timeout.ms`, `partitioner.class` for `partitioner`, ...).
            if c.get(k).is_none() {
                c.set(*k, *v);
            }
        }
        c
    }

    /// The error for a client that could not be created.
    pub(crate) fn creation_error(&self, e: SdkError) -> KafkaError {
        let value = |key: &str| {
            if is_secret(key) {
                String::from("<redacted>")
            } else {
                self.get(key).unwrap_or_default().to_string()
            }
        };
        match &e {
            SdkError::Config(ConfigError::UnknownKey { key }) => KafkaError::ClientConfig(
                RDKafkaConfRes::Unknown,
                e.to_string(),
                key.clone(),
                value(key),
            ),
            SdkError::Config(
                ConfigError::InvalidValue { key, .. } | ConfigError::NotSupported { key, .. },
            ) => KafkaError::ClientConfig(
                RDKafkaConfRes::Invalid,
                e.to_string(),
                key.clone(),
                value(key),
            ),
            _ => KafkaError::ClientCreation(e.to_string()),
        }
    }
}

impl FromIterator<(String, String)> for ClientConfig {
    fn from_iter<I: IntoIterator<Item = (String, String)>>(iter: I) -> ClientConfig {
        let mut config = ClientConfig::new();
        config.extend(iter);
        config
    }
}

impl Extend<(String, String)> for ClientConfig {
    fn extend<I: IntoIterator<Item = (String, String)>>(&mut self, iter: I) {
        self.conf_map.extend(iter)
    }
}

/// Creates a client from a [`ClientConfig`].
pub trait FromClientConfig: Sized {
    /// Creates the client.
    fn from_config(config: &ClientConfig) -> KafkaResult<Self>;
}

/// Creates a client from a [`ClientConfig`] and a context.
pub trait FromClientConfigAndContext<C: ClientContext>: Sized {
    /// Creates the client.
    fn from_config_and_context(config: &ClientConfig, context: C) -> KafkaResult<Self>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_get_remove_and_secrets() {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", "a:1")
            .set("sasl.password", "hunter2");
        assert_eq!(c.get("bootstrap.servers"), Some("a:1"));
        let shown = format!("{c:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        c.remove("sasl.password");
        assert_eq!(c.get("sasl.password"), None);
        assert_eq!(c.config_map().len(), 1);
    }

    /// librdkafka's defaults where kafka-sdk's (Java's) differ in what a service sees:
    /// delivery timeout, batch size, client id, transaction isolation, CRC checks, assignors,
    /// topic auto-creation by consumers. A value the service set, under any spelling, wins.
    #[test]
    fn librdkafka_defaults_where_kafka_sdk_differs() {
        let mut plain = ClientConfig::new();
        plain.set("bootstrap.servers", "localhost:9092");
        let p = plain.to_sdk(Role::Producer).producer().unwrap();
        assert_eq!(
            p.delivery_timeout,
            std::time::Duration::from_millis(300_000)
        );
        assert_eq!(p.batch_size, 1_000_000);
        assert_eq!(p.common.client_id, "rdkafka");
        let mut grouped = plain.clone();
        grouped.set("group.id", "g");
        let c = grouped.to_sdk(Role::Consumer).consumer().unwrap();
        assert_eq!(
            c.isolation_level,
            kafka_sdk::config::IsolationLevel::ReadCommitted
        );
        assert!(!c.check_crcs);
        assert!(!c.common.allow_auto_create_topics);
        assert_eq!(
            c.assignment_strategies,
            vec![
                kafka_sdk::config::AssignmentStrategy::Range,
                kafka_sdk::config::AssignmentStrategy::RoundRobin
            ]
        );
        assert_eq!(c.common.client_id, "rdkafka");

        // Set by the service (Java or librdkafka spelling): kept as set.
        let mut set = plain.clone();
        set.set("delivery.timeout.ms", "60000")
            .set("batch.size", "16384")
            .set("client.id", "svc")
            .set("group.id", "g")
            .set("isolation.level", "read_uncommitted")
            .set("check.crcs", "true")
            .set("allow.auto.create.topics", "true")
            .set("partition.assignment.strategy", "cooperative-sticky");
        let p = set.to_sdk(Role::Producer).producer().unwrap();
        assert_eq!(p.delivery_timeout, std::time::Duration::from_millis(60_000));
        assert_eq!(p.batch_size, 16384);
        assert_eq!(p.common.client_id, "svc");
        let c = set.to_sdk(Role::Consumer).consumer().unwrap();
        assert_eq!(
            c.isolation_level,
            kafka_sdk::config::IsolationLevel::ReadUncommitted
        );
        assert!(c.check_crcs);
        assert!(c.common.allow_auto_create_topics);
        assert_eq!(
            c.assignment_strategies,
            vec![kafka_sdk::config::AssignmentStrategy::CooperativeSticky]
        );
        // A producer auto-creates topics by default in librdkafka too.
        assert!(
            plain
                .to_sdk(Role::Producer)
                .producer()
                .unwrap()
                .common
                .allow_auto_create_topics
        );
    }
}
