//! Settings shared by every client.

use std::collections::BTreeSet;
use std::time::Duration;

use super::resolve::Resolved;
use crate::error::{ConfigError, Result};

/// Protocol used to talk to brokers (`security.protocol`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SecurityProtocol {
    /// Unencrypted, unauthenticated TCP (`plaintext`, the only one implemented; `ssl`,
    /// `sasl_plaintext` and `sasl_ssl` give [`ConfigError::NotSupported`]).
    Plaintext,
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
    /// `security.protocol`, default `plaintext` (the only one supported).
    pub security_protocol: SecurityProtocol,
    /// Canonical names of the keys that were set explicitly (under any spelling), for the
    /// Java rules that depend on whether a value was defaulted.
    pub explicit_keys: BTreeSet<&'static str>,
}

impl CommonConfig {
    /// Whether the key with canonical name `key` was set explicitly (under any spelling).
    pub fn is_explicit(&self, key: &str) -> bool {
        self.explicit_keys.contains(key)
    }

    pub(crate) fn from_resolved(r: &Resolved) -> Result<CommonConfig> {
        let bootstrap_servers =
            r.list("bootstrap.servers")
                .ok_or_else(|| ConfigError::Missing {
                    key: "bootstrap.servers".to_string(),
                })?;
        let security_protocol = match r.str("security.protocol").as_str() {
            "plaintext" => SecurityProtocol::Plaintext,
            // Other values are refused by the table's Partial status; keep a typed error anyway.
            other => {
                return Err(ConfigError::NotSupported {
                    key: "security.protocol".into(),
                    detail: Some(format!("`{other}`: TLS/SASL is not supported yet")),
                }
                .into())
            }
        };
        let client_rack = r.opt_str("client.rack").filter(|s| !s.is_empty());
        if let Some(rack) = &client_rack {
            // Protocol strings carry an i16 length.
            if rack.len() > i16::MAX as usize {
                return Err(ConfigError::InvalidValue {
                    key: "client.rack".into(),
                    value: format!("<{} bytes>", rack.len()),
                    expected: format!("at most {} bytes", i16::MAX),
                }
                .into());
            }
        }
        Ok(CommonConfig {
            bootstrap_servers,
            client_id: r.str("client.id"),
            client_software_name: "kafka-sdk".to_string(),
            client_software_version: env!("CARGO_PKG_VERSION").to_string(),
            request_timeout: r.ms("request.timeout.ms"),
            socket_connection_setup_timeout: r.ms("socket.connection.setup.timeout.ms"),
            socket_connection_setup_timeout_max: at_least(
                r,
                "socket.connection.setup.timeout.max.ms",
                "socket.connection.setup.timeout.ms",
            )?,
            reconnect_backoff: r.ms("reconnect.backoff.ms"),
            reconnect_backoff_max: at_least(r, "reconnect.backoff.max.ms", "reconnect.backoff.ms")?,
            retry_backoff: r.ms("retry.backoff.ms"),
            retry_backoff_max: at_least(r, "retry.backoff.max.ms", "retry.backoff.ms")?,
            metadata_max_age: r.ms("metadata.max.age.ms"),
            max_response_size: r.usize("receive.message.max.bytes"),
            connections_max_idle: r.ms("connections.max.idle.ms"),
            socket_nodelay: r.bool("socket.nagle.disable"),
            client_rack,
            allow_auto_create_topics: r.bool("allow.auto.create.topics"),
            security_protocol,
            explicit_keys: r.explicit_keys(),
        })
    }
}

/// `max_key` as a duration, never below `base_key`: an explicit `max_key` below `base_key` is
/// a conflict (librdkafka's rule); a defaulted one is raised to `base_key`.
fn at_least(r: &Resolved, max_key: &str, base_key: &str) -> Result<Duration> {
    let (max, base) = (r.ms(max_key), r.ms(base_key));
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
        "`{max_key}` defaults to {}ms, below `{base_key}` = {}ms; using {}ms",
        max.as_millis(),
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
