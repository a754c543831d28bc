//! Settings shared by every client.

use std::collections::BTreeSet;
use std::time::Duration;

use super::keys::*;
use super::resolve::Resolved;
use super::security::SecurityConfig;
use crate::error::{ConfigError, Result};

/// Protocol used to talk to brokers (`security.protocol`). Parses (`FromStr`, any case) and
/// prints (`Display`, [`name`](Self::name)) as the key table spells it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SecurityProtocol {
    /// Unencrypted, unauthenticated TCP (`plaintext`).
    Plaintext,
    /// TLS (`ssl`), optionally with a client certificate (mTLS). Needs the `tls` feature.
    Ssl,
    /// SASL authentication over plain TCP (`sasl_plaintext`).
    SaslPlaintext,
    /// SASL authentication over TLS (`sasl_ssl`). Needs the `tls` feature.
    SaslSsl,
}

impl SecurityProtocol {
    /// Whether connections use TLS (`ssl`, `sasl_ssl`).
    pub fn uses_tls(self) -> bool {
        matches!(self, SecurityProtocol::Ssl | SecurityProtocol::SaslSsl)
    }

    /// Whether connections authenticate with SASL (`sasl_plaintext`, `sasl_ssl`).
    pub fn uses_sasl(self) -> bool {
        matches!(
            self,
            SecurityProtocol::SaslPlaintext | SecurityProtocol::SaslSsl
        )
    }
}

/// Settings every client (producer, consumer, admin) uses. Built by
/// [`ClientConfig::common`](super::ClientConfig::common).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommonConfig {
    /// `bootstrap.servers` (alias `metadata.broker.list`): initial brokers, normalized to
    /// `host:port` (`PLAINTEXT://` stripped, missing port = 9092, IPv6 as `[::1]:9092`).
    /// Required and non-empty.
    pub bootstrap_servers: Vec<String>,
    /// `client.id`, default `kafka-sdk`.
    pub client_id: String,
    /// Sent in ApiVersions (KIP-511): always `kafka-sdk` (not a key).
    pub client_software_name: String,
    /// Sent in ApiVersions (KIP-511): this crate's version (not a key).
    pub client_software_version: String,
    /// `request.timeout.ms` (alias `socket.timeout.ms`), default 30000.
    pub request_timeout: Duration,
    /// `socket.connection.setup.timeout.ms`, default 10000.
    pub socket_connection_setup_timeout: Duration,
    /// `socket.connection.setup.timeout.max.ms`, default 30000; never below
    /// `socket_connection_setup_timeout`.
    pub socket_connection_setup_timeout_max: Duration,
    /// `reconnect.backoff.ms`, default 50.
    pub reconnect_backoff: Duration,
    /// `reconnect.backoff.max.ms`, default 1000; never below `reconnect_backoff`.
    pub reconnect_backoff_max: Duration,
    /// `retry.backoff.ms`, default 100.
    pub retry_backoff: Duration,
    /// `retry.backoff.max.ms`, default 1000; never below `retry_backoff`.
    pub retry_backoff_max: Duration,
    /// `metadata.max.age.ms` (alias `topic.metadata.refresh.interval.ms`), default 300000.
    pub metadata_max_age: Duration,
    /// `statistics.interval.ms` (librdkafka), default 0 = off: how often producers and
    /// consumers emit a [`Statistics`](crate::stats::Statistics) snapshot.
    pub statistics_interval: Duration,
    /// `receive.message.max.bytes` (librdkafka), default 100000000, at least 1000: the
    /// largest response frame accepted.
    pub max_response_size: usize,
    /// `connections.max.idle.ms`, default 540000; zero means never close idle connections.
    pub connections_max_idle: Duration,
    /// `socket.nagle.disable` (alias `tcp.nodelay`), default `true`: set TCP_NODELAY.
    /// Disabling Nagle *is* TCP_NODELAY, so both spellings take the same truth value.
    /// (librdkafka's default is `false`; Java always sets TCP_NODELAY.)
    pub socket_nodelay: bool,
    /// `client.rack`; `None` when unset or empty.
    pub client_rack: Option<String>,
    /// `allow.auto.create.topics`, default `true`.
    pub allow_auto_create_topics: bool,
    /// `security.protocol`, default `plaintext`.
    pub security_protocol: SecurityProtocol,
    /// TLS and SASL settings (`ssl.*`, `sasl.*`), checked and loaded (certificates and keys
    /// read, encrypted keys decrypted) when the config is built. Its `Debug` hides secrets.
    pub security: SecurityConfig,
    /// Canonical names of the keys that were set explicitly (under any spelling), for the
    /// Java rules that depend on whether a value was defaulted.
    pub explicit_keys: BTreeSet<&'static str>,
}

impl CommonConfig {
    /// Whether the key with canonical name `key` was set explicitly (under any spelling).
    pub fn is_explicit(&self, key: &str) -> bool {
        self.explicit_keys.contains(key)
    }

    /// The table defaults for every key, with `bootstrap_servers` taken as given (not
    /// validated): what a client built from a map holding only `bootstrap.servers` gets.
    pub fn with_defaults(bootstrap_servers: Vec<String>) -> CommonConfig {
        CommonConfig::build(&Resolved::defaults(), bootstrap_servers)
            .unwrap_or_else(|e| unreachable!("the table defaults are consistent: {e}"))
    }

    pub(crate) fn from_resolved(r: &Resolved) -> Result<CommonConfig> {
        let bootstrap_servers = r
            .get(BOOTSTRAP_SERVERS)
            .ok_or_else(|| ConfigError::Missing {
                key: BOOTSTRAP_SERVERS.def.name.to_string(),
            })?;
        CommonConfig::build(r, bootstrap_servers)
    }

    fn build(r: &Resolved, bootstrap_servers: Vec<String>) -> Result<CommonConfig> {
        let client_rack = r.get(CLIENT_RACK).filter(|s| !s.is_empty());
        if let Some(rack) = &client_rack {
            // Protocol strings carry an i16 length.
            if rack.len() > i16::MAX as usize {
                return Err(ConfigError::InvalidValue {
                    key: r.spelling(CLIENT_RACK).to_string(),
                    value: format!("<{} bytes>", rack.len()),
                    expected: format!("at most {} bytes", i16::MAX),
                }
                .into());
            }
        }
        Ok(CommonConfig {
            bootstrap_servers,
            client_id: r.get(CLIENT_ID),
            client_software_name: "kafka-sdk".to_string(),
            client_software_version: env!("CARGO_PKG_VERSION").to_string(),
            request_timeout: r.get(REQUEST_TIMEOUT_MS),
            socket_connection_setup_timeout: r.get(SOCKET_CONNECTION_SETUP_TIMEOUT_MS),
            socket_connection_setup_timeout_max: at_least(
                r,
                SOCKET_CONNECTION_SETUP_TIMEOUT_MAX_MS,
                SOCKET_CONNECTION_SETUP_TIMEOUT_MS,
            )?,
            reconnect_backoff: r.get(RECONNECT_BACKOFF_MS),
            reconnect_backoff_max: at_least(r, RECONNECT_BACKOFF_MAX_MS, RECONNECT_BACKOFF_MS)?,
            retry_backoff: r.get(RETRY_BACKOFF_MS),
            retry_backoff_max: at_least(r, RETRY_BACKOFF_MAX_MS, RETRY_BACKOFF_MS)?,
            metadata_max_age: r.get(METADATA_MAX_AGE_MS),
            statistics_interval: r.get(STATISTICS_INTERVAL_MS),
            max_response_size: r.get(RECEIVE_MESSAGE_MAX_BYTES),
            connections_max_idle: r.get(CONNECTIONS_MAX_IDLE_MS),
            socket_nodelay: r.get(SOCKET_NAGLE_DISABLE),
            client_rack,
            allow_auto_create_topics: r.get(ALLOW_AUTO_CREATE_TOPICS),
            security_protocol: r.get(SECURITY_PROTOCOL),
            security: SecurityConfig::from_resolved(r)?,
            explicit_keys: r.explicit_keys(),
        })
    }
}

/// `max_key` as a duration, never below `base_key`: an explicit `max_key` below `base_key` is
/// a conflict (librdkafka's rule); a defaulted one is raised to `base_key`.
fn at_least(r: &Resolved, max_key: Key<Duration>, base_key: Key<Duration>) -> Result<Duration> {
    let (max, base) = (r.get(max_key), r.get(base_key));
    if max >= base {
        return Ok(max);
    }
    if r.is_explicit(max_key) {
        return Err(ConfigError::Conflict(format!(
            "`{}` ({}) must be >= `{}` ({})",
            r.spelling(max_key),
            max.as_millis(),
            r.spelling(base_key),
            base.as_millis()
        ))
        .into());
    }
    tracing::info!(
        "`{}` defaults to {}ms, below `{}` = {}ms; using {}ms",
        max_key.def.name,
        max.as_millis(),
        r.spelling(base_key),
        base.as_millis(),
        base.as_millis()
    );
    Ok(base)
}

/// Settings of the admin client. Built by [`ClientConfig::admin`](super::ClientConfig::admin).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AdminConfig {
    /// Connection and metadata settings.
    pub common: CommonConfig,
}
