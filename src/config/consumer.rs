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
    /// `classic`: JoinGroup/SyncGroup with client-side assignment (the only one supported;
    /// `consumer` (KIP-848) gives [`ConfigError::NotSupported`]).
    Classic,
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
    /// `max.poll.records`, default 500.
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
            group_protocol: r.get(GROUP_PROTOCOL),
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
