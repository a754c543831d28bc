//! Consumer settings and their cross-field rules.

use std::time::Duration;

use super::common::CommonConfig;
use super::keys::*;
use super::resolve::Resolved;
use crate::error::{ConfigError, Result};

/// Where to start reading a partition that has no committed offset (`auto.offset.reset`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OffsetReset {
    /// `earliest` (librdkafka also: `smallest`, `beginning`).
    Earliest,
    /// `latest`, the default (librdkafka also: `largest`, `end`).
    Latest,
    /// `none` (librdkafka: `error`): report an error.
    None,
    /// `by_duration:<ISO-8601 duration>` (Java 4.0+, KIP-1106), e.g. `by_duration:P1D`: the
    /// first record whose timestamp is at most this old (ListOffsets by timestamp); the end
    /// of the partition when every record is older.
    ByDuration(std::time::Duration),
}

/// Which records a fetch returns with respect to transactions (`isolation.level`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum IsolationLevel {
    /// `read_uncommitted` (the default, as in Java; librdkafka defaults to read_committed):
    /// everything, including records of open and aborted transactions.
    ReadUncommitted,
    /// `read_committed`: only committed records, up to the last stable offset.
    ReadCommitted,
}

impl IsolationLevel {
    /// The `isolation_level` field of Fetch and ListOffsets requests: 0 or 1.
    pub fn as_i8(self) -> i8 {
        match self {
            IsolationLevel::ReadUncommitted => 0,
            IsolationLevel::ReadCommitted => 1,
        }
    }
}

/// A partition assignor offered to the group (`partition.assignment.strategy`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AssignmentStrategy {
    /// `range` (Java `org.apache.kafka.clients.consumer.RangeAssignor`).
    Range,
    /// `roundrobin` (Java `...RoundRobinAssignor`).
    RoundRobin,
    /// `sticky` (Java `...StickyAssignor`), eager.
    Sticky,
    /// `cooperative-sticky` (Java `...CooperativeStickyAssignor`), incremental rebalancing.
    CooperativeSticky,
}

impl AssignmentStrategy {
    /// The protocol name sent in JoinGroup, as the Java client names it (the canonical name
    /// of the key table, [`name`](Self::name)).
    pub fn protocol_name(self) -> &'static str {
        self.name()
    }
}

/// Consumer group protocol (`group.protocol`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum GroupProtocol {
    /// `classic` (the default, as in Java 4.3): JoinGroup/SyncGroup with client-side
    /// assignment (`partition.assignment.strategy`).
    Classic,
    /// `consumer` (KIP-848): ConsumerGroupHeartbeat with server-side assignment
    /// (`group.remote.assignor`), no stop-the-world rebalances.
    Consumer,
}

/// Consumer settings. Built by [`ClientConfig::consumer`](super::ClientConfig::consumer).
///
/// `enable.auto.commit = true` without a `group.id` is allowed: there is no group to commit
/// to, so no commits happen. `allow.auto.create.topics` is in [`CommonConfig`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConsumerConfig {
    /// Connection and metadata settings.
    pub common: CommonConfig,
    /// `group.id`; `None` when unset (assign-only consumer). Empty is invalid.
    pub group_id: Option<String>,
    /// `group.instance.id` (static membership); requires `group.id`.
    pub group_instance_id: Option<String>,
    /// `group.protocol`, default `classic`.
    pub group_protocol: GroupProtocol,
    /// `group.remote.assignor` (`group.protocol=consumer` only): the server-side assignor
    /// (`uniform`, `range`, ...); `None`: the broker's default.
    pub group_remote_assignor: Option<String>,
    /// `session.timeout.ms`, default 45000.
    pub session_timeout: Duration,
    /// `heartbeat.interval.ms`, default 3000; below `session_timeout`.
    pub heartbeat_interval: Duration,
    /// `max.poll.interval.ms`, default 300000.
    pub max_poll_interval: Duration,
    /// `enable.auto.commit` (alias `auto.commit.enable`), default `true`.
    pub enable_auto_commit: bool,
    /// `auto.commit.interval.ms`, default 5000.
    pub auto_commit_interval: Duration,
    /// `enable.auto.offset.store`, default `true`.
    pub enable_auto_offset_store: bool,
    /// `auto.offset.reset`, default `latest`.
    pub auto_offset_reset: OffsetReset,
    /// `fetch.min.bytes`, default 1.
    pub fetch_min_bytes: i32,
    /// `fetch.max.bytes`, default 52428800; at least `fetch_min_bytes`.
    pub fetch_max_bytes: i32,
    /// `fetch.max.wait.ms` (alias `fetch.wait.max.ms`), default 500.
    pub fetch_max_wait: Duration,
    /// `max.partition.fetch.bytes` (alias `fetch.message.max.bytes`), default 1048576.
    pub max_partition_fetch_bytes: i32,
    /// `isolation.level`, default `read_uncommitted` (lowercase only, as in Java).
    pub isolation_level: IsolationLevel,
    /// `check.crcs`, default `true`.
    pub check_crcs: bool,
    /// `partition.assignment.strategy`, default `range,cooperative-sticky` (Java 4.x).
    pub assignment_strategies: Vec<AssignmentStrategy>,
    /// `max.poll.records`, default 500: used by share consumers (`recv` returns one
    /// message, `recv_batch` takes its own maximum).
    pub max_poll_records: usize,
    /// `enable.partition.eof`, default `false`.
    pub enable_partition_eof: bool,
    /// `queued.max.messages.kbytes` (librdkafka prefetch cap, KiB), default 65536.
    pub queued_max_messages_kbytes: usize,
}

impl ConsumerConfig {
    pub(crate) fn from_resolved(r: &Resolved) -> Result<ConsumerConfig> {
        let common = CommonConfig::from_resolved(r)?;
        let group_id = r.get(GROUP_ID);
        let group_instance_id = r.get(GROUP_INSTANCE_ID);
        if group_instance_id.is_some() && group_id.is_none() {
            return Err(ConfigError::Conflict(
                "`group.instance.id` is set but `group.id` is not: static membership needs a \
                 consumer group"
                    .to_string(),
            )
            .into());
        }
        let group_protocol = r.get(GROUP_PROTOCOL);
        // As Java 4.3's `ConsumerConfig`: keys of the other protocol are refused when set.
        let foreign: &[&str] = match group_protocol {
            GroupProtocol::Classic => &["group.remote.assignor"],
            GroupProtocol::Consumer => &[
                "partition.assignment.strategy",
                "session.timeout.ms",
                "heartbeat.interval.ms",
            ],
        };
        let explicit = |name: &str| match name {
            "group.remote.assignor" => r.is_explicit(GROUP_REMOTE_ASSIGNOR),
            "partition.assignment.strategy" => r.is_explicit(PARTITION_ASSIGNMENT_STRATEGY),
            "session.timeout.ms" => r.is_explicit(SESSION_TIMEOUT_MS),
            _ => r.is_explicit(HEARTBEAT_INTERVAL_MS),
        };
        if let Some(key) = foreign.iter().find(|k| explicit(k)) {
            return Err(ConfigError::Conflict(format!(
                "`{key}` cannot be set when `group.protocol` is `{group_protocol}` (as in Java: \
                 {})",
                match group_protocol {
                    GroupProtocol::Classic => "the server-side assignor is for `consumer`",
                    GroupProtocol::Consumer =>
                        "the broker assigns partitions and sets the session and heartbeat timing",
                }
            ))
            .into());
        }
        let session_timeout = r.get(SESSION_TIMEOUT_MS);
        let heartbeat_interval = r.get(HEARTBEAT_INTERVAL_MS);
        if heartbeat_interval >= session_timeout {
            return Err(ConfigError::Conflict(format!(
                "`heartbeat.interval.ms` ({}) must be lower than `session.timeout.ms` ({})",
                heartbeat_interval.as_millis(),
                session_timeout.as_millis()
            ))
            .into());
        }
        let fetch_min_bytes = r.get(FETCH_MIN_BYTES);
        let fetch_max_bytes = r.get(FETCH_MAX_BYTES);
        if fetch_min_bytes > fetch_max_bytes {
            return Err(ConfigError::Conflict(format!(
                "`fetch.min.bytes` ({fetch_min_bytes}) must be <= `fetch.max.bytes` \
                 ({fetch_max_bytes})"
            ))
            .into());
        }
        let enable_auto_commit = r.get(ENABLE_AUTO_COMMIT);
        if enable_auto_commit && group_id.is_none() && r.is_explicit(ENABLE_AUTO_COMMIT) {
            tracing::debug!("`enable.auto.commit` without `group.id`: nothing will be committed");
        }
        Ok(ConsumerConfig {
            group_id,
            group_instance_id,
            group_protocol,
            group_remote_assignor: r.get(GROUP_REMOTE_ASSIGNOR),
            session_timeout,
            heartbeat_interval,
            max_poll_interval: r.get(MAX_POLL_INTERVAL_MS),
            enable_auto_commit,
            auto_commit_interval: r.get(AUTO_COMMIT_INTERVAL_MS),
            enable_auto_offset_store: r.get(ENABLE_AUTO_OFFSET_STORE),
            auto_offset_reset: r.get(AUTO_OFFSET_RESET),
            fetch_min_bytes,
            fetch_max_bytes,
            fetch_max_wait: r.get(FETCH_MAX_WAIT_MS),
            max_partition_fetch_bytes: r.get(MAX_PARTITION_FETCH_BYTES),
            isolation_level: r.get(ISOLATION_LEVEL),
            check_crcs: r.get(CHECK_CRCS),
            assignment_strategies: r.get(PARTITION_ASSIGNMENT_STRATEGY),
            max_poll_records: r.get(MAX_POLL_RECORDS),
            enable_partition_eof: r.get(ENABLE_PARTITION_EOF),
            queued_max_messages_kbytes: r.get(QUEUED_MAX_MESSAGES_KBYTES),
            common,
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::config::{ClientConfig, GroupProtocol};
    use crate::error::{ConfigError, Error};

    fn base() -> ClientConfig {
        ClientConfig::new()
            .with("bootstrap.servers", "127.0.0.1:9092")
            .with("group.id", "g")
    }

    fn conflict(c: ClientConfig) -> String {
        match c.consumer() {
            Err(Error::Config(ConfigError::Conflict(m))) => m,
            other => panic!("expected a conflict, got {other:?}"),
        }
    }

    /// As Java 4.3's `ConsumerConfig` (checked against the 4.3.1 jar): each protocol refuses
    /// the keys of the other one when they are set, and the default protocol is `classic`.
    #[test]
    fn each_group_protocol_refuses_the_other_ones_keys() {
        assert_eq!(
            base().consumer().unwrap().group_protocol,
            GroupProtocol::Classic
        );
        let k = base()
            .with("group.protocol", "consumer")
            .with("group.remote.assignor", "uniform")
            .consumer()
            .unwrap();
        assert_eq!(k.group_protocol, GroupProtocol::Consumer);
        assert_eq!(k.group_remote_assignor.as_deref(), Some("uniform"));
        for key in [
            "partition.assignment.strategy",
            "session.timeout.ms",
            "heartbeat.interval.ms",
        ] {
            let value = if key.ends_with("strategy") {
                "range"
            } else {
                "3000"
            };
            let m = conflict(base().with("group.protocol", "consumer").with(key, value));
            assert!(m.contains(key) && m.contains("consumer"), "{m}");
        }
        let m = conflict(base().with("group.remote.assignor", "range"));
        assert!(
            m.contains("group.remote.assignor") && m.contains("classic"),
            "{m}"
        );
        let e = base()
            .with("group.protocol", "consumer")
            .with("group.remote.assignor", "")
            .consumer()
            .unwrap_err();
        assert!(e.to_string().contains("group.remote.assignor"), "{e}");
    }
}
