//! The one error type of kafka-sdk and the one place that classifies failures.
//!
//! Every fallible call in the crate returns [`Error`]. Errors coming from a broker carry the
//! Kafka error code as a [`KafkaCode`], which knows its protocol name (`NOT_LEADER_OR_FOLLOWER`)
//! and whether the protocol calls it retriable.
//!
//! [`Error::classify`] is the one classification of failures. Its [`ErrorAction`] (also
//! [`Error::action`]) is what every retry loop consults: retry as is, refresh metadata (or look
//! the coordinator up again) and then retry, treat the outcome as unknown (the request may or
//! may not have been applied), or give up. Its [`ErrorReach`] says how far a failure that is
//! given up reaches: the operation, a fenced group member, or the whole client. The
//! predicates [`Error::is_retriable`], [`Error::is_fatal`], [`Error::txn_requires_abort`] and
//! [`Error::txn_action`] are derived from it and from nothing else (but the error's variant
//! where said).

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::error::ResponseError;

/// Result alias used throughout kafka-sdk.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A Kafka protocol error code (the `error_code` field of a response).
///
/// Wraps the numeric code; [`KafkaCode::name`] gives the protocol's name and
/// [`KafkaCode::is_retriable`] the protocol's retriable flag. Codes this crate does not know are
/// kept as they are and treated as not retriable.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct KafkaCode(pub i16);

impl KafkaCode {
    /// No error.
    pub const NONE: KafkaCode = KafkaCode(0);
    /// UNKNOWN_SERVER_ERROR (-1).
    pub const UNKNOWN_SERVER_ERROR: KafkaCode = KafkaCode(-1);
    /// OFFSET_OUT_OF_RANGE (1).
    pub const OFFSET_OUT_OF_RANGE: KafkaCode = KafkaCode(1);
    /// CORRUPT_MESSAGE (2).
    pub const CORRUPT_MESSAGE: KafkaCode = KafkaCode(2);
    /// UNKNOWN_TOPIC_OR_PARTITION (3).
    pub const UNKNOWN_TOPIC_OR_PARTITION: KafkaCode = KafkaCode(3);
    /// LEADER_NOT_AVAILABLE (5).
    pub const LEADER_NOT_AVAILABLE: KafkaCode = KafkaCode(5);
    /// NOT_LEADER_OR_FOLLOWER (6).
    pub const NOT_LEADER_OR_FOLLOWER: KafkaCode = KafkaCode(6);
    /// REQUEST_TIMED_OUT (7).
    pub const REQUEST_TIMED_OUT: KafkaCode = KafkaCode(7);
    /// MESSAGE_TOO_LARGE (10).
    pub const MESSAGE_TOO_LARGE: KafkaCode = KafkaCode(10);
    /// NETWORK_EXCEPTION (13).
    pub const NETWORK_EXCEPTION: KafkaCode = KafkaCode(13);
    /// COORDINATOR_LOAD_IN_PROGRESS (14).
    pub const COORDINATOR_LOAD_IN_PROGRESS: KafkaCode = KafkaCode(14);
    /// COORDINATOR_NOT_AVAILABLE (15).
    pub const COORDINATOR_NOT_AVAILABLE: KafkaCode = KafkaCode(15);
    /// NOT_COORDINATOR (16).
    pub const NOT_COORDINATOR: KafkaCode = KafkaCode(16);
    /// INVALID_TOPIC_EXCEPTION (17).
    pub const INVALID_TOPIC_EXCEPTION: KafkaCode = KafkaCode(17);
    /// RECORD_LIST_TOO_LARGE (18).
    pub const RECORD_LIST_TOO_LARGE: KafkaCode = KafkaCode(18);
    /// NOT_ENOUGH_REPLICAS (19).
    pub const NOT_ENOUGH_REPLICAS: KafkaCode = KafkaCode(19);
    /// NOT_ENOUGH_REPLICAS_AFTER_APPEND (20).
    pub const NOT_ENOUGH_REPLICAS_AFTER_APPEND: KafkaCode = KafkaCode(20);
    /// ILLEGAL_GENERATION (22).
    pub const ILLEGAL_GENERATION: KafkaCode = KafkaCode(22);
    /// UNKNOWN_MEMBER_ID (25).
    pub const UNKNOWN_MEMBER_ID: KafkaCode = KafkaCode(25);
    /// REBALANCE_IN_PROGRESS (27).
    pub const REBALANCE_IN_PROGRESS: KafkaCode = KafkaCode(27);
    /// TOPIC_AUTHORIZATION_FAILED (29).
    pub const TOPIC_AUTHORIZATION_FAILED: KafkaCode = KafkaCode(29);
    /// GROUP_AUTHORIZATION_FAILED (30).
    pub const GROUP_AUTHORIZATION_FAILED: KafkaCode = KafkaCode(30);
    /// CLUSTER_AUTHORIZATION_FAILED (31).
    pub const CLUSTER_AUTHORIZATION_FAILED: KafkaCode = KafkaCode(31);
    /// INVALID_TIMESTAMP (32): a record's timestamp is outside what the topic accepts.
    pub const INVALID_TIMESTAMP: KafkaCode = KafkaCode(32);
    /// UNSUPPORTED_VERSION (35).
    pub const UNSUPPORTED_VERSION: KafkaCode = KafkaCode(35);
    /// TOPIC_ALREADY_EXISTS (36).
    pub const TOPIC_ALREADY_EXISTS: KafkaCode = KafkaCode(36);
    /// OUT_OF_ORDER_SEQUENCE_NUMBER (45).
    pub const OUT_OF_ORDER_SEQUENCE_NUMBER: KafkaCode = KafkaCode(45);
    /// DUPLICATE_SEQUENCE_NUMBER (46).
    pub const DUPLICATE_SEQUENCE_NUMBER: KafkaCode = KafkaCode(46);
    /// INVALID_PRODUCER_EPOCH (47).
    pub const INVALID_PRODUCER_EPOCH: KafkaCode = KafkaCode(47);
    /// INVALID_TXN_STATE (48).
    pub const INVALID_TXN_STATE: KafkaCode = KafkaCode(48);
    /// INVALID_PRODUCER_ID_MAPPING (49).
    pub const INVALID_PRODUCER_ID_MAPPING: KafkaCode = KafkaCode(49);
    /// CONCURRENT_TRANSACTIONS (51).
    pub const CONCURRENT_TRANSACTIONS: KafkaCode = KafkaCode(51);
    /// TRANSACTIONAL_ID_AUTHORIZATION_FAILED (53).
    pub const TRANSACTIONAL_ID_AUTHORIZATION_FAILED: KafkaCode = KafkaCode(53);
    /// KAFKA_STORAGE_ERROR (56).
    pub const KAFKA_STORAGE_ERROR: KafkaCode = KafkaCode(56);
    /// UNKNOWN_PRODUCER_ID (59).
    pub const UNKNOWN_PRODUCER_ID: KafkaCode = KafkaCode(59);
    /// FENCED_LEADER_EPOCH (74).
    pub const FENCED_LEADER_EPOCH: KafkaCode = KafkaCode(74);
    /// UNKNOWN_LEADER_EPOCH (75).
    pub const UNKNOWN_LEADER_EPOCH: KafkaCode = KafkaCode(75);
    /// MEMBER_ID_REQUIRED (79).
    pub const MEMBER_ID_REQUIRED: KafkaCode = KafkaCode(79);
    /// FENCED_INSTANCE_ID (82).
    pub const FENCED_INSTANCE_ID: KafkaCode = KafkaCode(82);
    /// INVALID_RECORD (87): the broker refused a record (for example, one without a key
    /// on a compacted topic).
    pub const INVALID_RECORD: KafkaCode = KafkaCode(87);
    /// UNSTABLE_OFFSET_COMMIT (88).
    pub const UNSTABLE_OFFSET_COMMIT: KafkaCode = KafkaCode(88);
    /// PRODUCER_FENCED (90).
    pub const PRODUCER_FENCED: KafkaCode = KafkaCode(90);
    /// UNKNOWN_TOPIC_ID (100).
    pub const UNKNOWN_TOPIC_ID: KafkaCode = KafkaCode(100);
    /// INCONSISTENT_TOPIC_ID (103).
    pub const INCONSISTENT_TOPIC_ID: KafkaCode = KafkaCode(103);
    /// SASL_AUTHENTICATION_FAILED (58).
    pub const SASL_AUTHENTICATION_FAILED: KafkaCode = KafkaCode(58);
    /// UNSUPPORTED_SASL_MECHANISM (33).
    pub const UNSUPPORTED_SASL_MECHANISM: KafkaCode = KafkaCode(33);
    /// ILLEGAL_SASL_STATE (34).
    pub const ILLEGAL_SASL_STATE: KafkaCode = KafkaCode(34);
    /// FENCED_MEMBER_EPOCH (110): a KIP-848 member's epoch is fenced; its partitions are lost.
    pub const FENCED_MEMBER_EPOCH: KafkaCode = KafkaCode(110);
    /// UNRELEASED_INSTANCE_ID (111): a static member's `group.instance.id` is still in use.
    pub const UNRELEASED_INSTANCE_ID: KafkaCode = KafkaCode(111);
    /// UNSUPPORTED_ASSIGNOR (112): the broker has no such `group.remote.assignor`.
    pub const UNSUPPORTED_ASSIGNOR: KafkaCode = KafkaCode(112);
    /// STALE_MEMBER_EPOCH (113): a commit or offset fetch carried an older member epoch.
    pub const STALE_MEMBER_EPOCH: KafkaCode = KafkaCode(113);
    /// INVALID_REGULAR_EXPRESSION (128): the broker refused a subscription's regex.
    pub const INVALID_REGULAR_EXPRESSION: KafkaCode = KafkaCode(128);
    /// TRANSACTION_ABORTABLE (120).
    pub const TRANSACTION_ABORTABLE: KafkaCode = KafkaCode(120);
    /// INVALID_RECORD_STATE (121): a share-group acknowledgement named a record this member
    /// does not hold (already acknowledged, or its acquisition lock expired).
    pub const INVALID_RECORD_STATE: KafkaCode = KafkaCode(121);
    /// SHARE_SESSION_NOT_FOUND (122): the broker no longer knows the share session.
    pub const SHARE_SESSION_NOT_FOUND: KafkaCode = KafkaCode(122);
    /// INVALID_SHARE_SESSION_EPOCH (123): the share session epoch is not the expected one.
    pub const INVALID_SHARE_SESSION_EPOCH: KafkaCode = KafkaCode(123);
    /// FENCED_STATE_EPOCH (124): the share coordinator's state epoch moved on.
    pub const FENCED_STATE_EPOCH: KafkaCode = KafkaCode(124);
    /// SHARE_SESSION_LIMIT_REACHED (133): the broker has no room for another share session.
    pub const SHARE_SESSION_LIMIT_REACHED: KafkaCode = KafkaCode(133);
    /// NON_EMPTY_GROUP (68): the group still has members.
    pub const NON_EMPTY_GROUP: KafkaCode = KafkaCode(68);
    /// GROUP_ID_NOT_FOUND (69).
    pub const GROUP_ID_NOT_FOUND: KafkaCode = KafkaCode(69);
    /// ELECTION_NOT_NEEDED (84): the preferred replica already leads.
    pub const ELECTION_NOT_NEEDED: KafkaCode = KafkaCode(84);
    /// TRANSACTIONAL_ID_NOT_FOUND (105).
    pub const TRANSACTIONAL_ID_NOT_FOUND: KafkaCode = KafkaCode(105);

    /// `true` when the code is 0 (no error).
    pub fn is_ok(self) -> bool {
        self.0 == 0
    }

    /// `None` for code 0, `Some(self)` otherwise.
    pub fn err(self) -> Option<KafkaCode> {
        (self.0 != 0).then_some(self)
    }

    /// The protocol's retriable flag for this code (unknown codes: `false`). This is a fact
    /// from the protocol's table, one input of [`Error::classify`]; what the client does about
    /// a code is [`Error::classify`]'s answer, not this flag.
    pub fn is_retriable(self) -> bool {
        ResponseError::try_from_code(self.0).is_some_and(|e| e.is_retriable())
    }

    /// The protocol name of this code, e.g. `NOT_LEADER_OR_FOLLOWER`, or `UNKNOWN_CODE_<n>`.
    pub fn name(self) -> String {
        match ResponseError::try_from_code(self.0) {
            None => "NONE".to_string(),
            Some(ResponseError::Unknown(c)) => format!("UNKNOWN_CODE_{c}"),
            Some(e) => screaming_snake(&e.to_string()),
        }
    }
}

impl fmt::Debug for KafkaCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}({})", self.name(), self.0)
    }
}

impl fmt::Display for KafkaCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.name(), self.0)
    }
}

/// `NotLeaderOrFollower` -> `NOT_LEADER_OR_FOLLOWER`.
fn screaming_snake(camel: &str) -> String {
    let mut out = String::with_capacity(camel.len() + 8);
    let chars: Vec<char> = camel.chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            let prev = chars[i - 1];
            let next_lower = chars.get(i + 1).is_some_and(|n| n.is_ascii_lowercase());
            if prev.is_ascii_lowercase()
                || prev.is_ascii_digit()
                || (prev.is_ascii_uppercase() && next_lower)
            {
                out.push('_');
            }
        }
        out.push(c.to_ascii_uppercase());
    }
    out
}

/// What a caller should do about a failed request: the `action` of [`Error::classify`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorAction {
    /// Transient; retry the same request (after backoff) against the same target.
    Retry,
    /// The cached view of the cluster is stale: refresh metadata (or rediscover the
    /// coordinator), then retry.
    RefreshAndRetry,
    /// The request may or may not have taken effect (e.g. it timed out in flight). Retrying is
    /// only safe where repeating the request is harmless (reads, requests the broker
    /// deduplicates).
    Ambiguous,
    /// Retrying cannot help; surface the error.
    Fatal,
}

/// How far a failure reaches once it is given up on: the `reach` of [`Error::classify`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorReach {
    /// Only the failed operation; the client can go on.
    Operation,
    /// A consumer group member was fenced (FENCED_INSTANCE_ID: another consumer registered the
    /// same `group.instance.id`). The consumer must be recreated; a transactional producer
    /// that got it for the member's offsets (TxnOffsetCommit) only aborts its transaction.
    Member,
    /// The client is unusable and must be recreated (fenced producer, authorization of the
    /// cluster or the transactional id, unsupported version, invalid configuration, closed).
    Client,
}

/// The classification of one failure, returned by [`Error::classify`] (the one table; see
/// DESIGN.md, "Error classification").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Classification {
    /// What to do with the request that failed.
    pub action: ErrorAction,
    /// How far the failure reaches when it is given up on.
    pub reach: ErrorReach,
}

/// What a transactional producer does about a failed transactional request or batch
/// (KIP-98 / KIP-890 error classes). Derived from [`Error::classify`] by [`Error::txn_action`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxnAction {
    /// Transient (coordinator moved or busy, connection lost): retried with backoff inside
    /// the call, up to its deadline.
    Retry,
    /// The current transaction cannot commit: abort it, then start a new one.
    Abortable,
    /// The producer is unusable (fenced, not authorised, ...): it must be recreated.
    Fatal,
}

/// Configuration problems, always naming the key (and value) at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A key no client of kafka-sdk knows.
    #[error("unknown configuration key `{key}`")]
    UnknownKey {
        /// The key as given.
        key: String,
    },
    /// A known key with a value that cannot be used.
    #[error("invalid value `{value}` for configuration key `{key}`: expected {expected}")]
    InvalidValue {
        /// The key as given.
        key: String,
        /// The value as given.
        value: String,
        /// What is allowed.
        expected: String,
    },
    /// A required key is missing.
    #[error("missing required configuration key `{key}`")]
    Missing {
        /// The key that must be set.
        key: String,
    },
    /// A key that is known but whose feature kafka-sdk does not implement yet.
    #[error("configuration key `{key}` is not supported yet{}", detail.as_ref().map(|d| format!(": {d}")).unwrap_or_default())]
    NotSupported {
        /// The key as given.
        key: String,
        /// Optional explanation (e.g. which values are supported).
        detail: Option<String>,
    },
    /// Settings that contradict each other.
    #[error("conflicting configuration: {0}")]
    Conflict(String),
}

/// The error type of every kafka-sdk operation.
///
/// Match on the variant for what happened, or ask the predicates what to do about it:
///
/// ```no_run
/// # async fn f(producer: &kafka_sdk::Producer) -> kafka_sdk::Result<()> {
/// use kafka_sdk::{Error, ProducerRecord};
/// match producer.send(ProducerRecord::new("orders").value("v")).await {
///     Ok(delivery) => match delivery.await {
///         Ok(meta) => println!("stored at offset {}", meta.offset),
///         // The producer already retried within `delivery.timeout.ms`.
///         Err(e) if e.is_retriable() => println!("not delivered in time: {e}"),
///         Err(e) => return Err(e),
///     },
///     Err(Error::Timeout { .. }) => println!("buffer full for max.block.ms: slow down"),
///     Err(e) => return Err(e),
/// }
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Invalid client configuration.
    #[error(transparent)]
    Config(#[from] ConfigError),

    /// A broker answered with a non-zero error code.
    #[error("broker error {code}{}", if context.is_empty() { String::new() } else { format!(" ({context})") })]
    Broker {
        /// The Kafka error code.
        code: KafkaCode,
        /// What the client was doing (API, topic/partition, ...).
        context: String,
    },

    /// Connecting to, writing to or reading from a broker failed (nothing was answered).
    #[error("connection to {broker} failed: {reason}")]
    Connection {
        /// `host:port` of the broker.
        broker: String,
        /// What went wrong.
        reason: String,
        /// Whether a request may have reached the broker before the failure.
        in_flight: bool,
    },

    /// An operation did not complete within its time bound.
    #[error("{what} timed out after {}ms", after.as_millis())]
    Timeout {
        /// What timed out.
        what: String,
        /// The bound that expired.
        after: Duration,
        /// Whether a request was sent and its outcome is unknown.
        in_flight: bool,
    },

    /// A broker sent bytes that do not parse, or that break the protocol.
    #[error("protocol error: {0}")]
    Protocol(String),

    /// A record batch uses a compression codec whose crate feature is off in this build
    /// (enable the feature of kafka-sdk named here).
    #[error(
        "{codec} compression is not available: kafka-sdk is built without its `{feature}` feature"
    )]
    CodecDisabled {
        /// The codec (`gzip`, `snappy`, `lz4` or `zstd`).
        codec: &'static str,
        /// The kafka-sdk crate feature that provides it.
        feature: &'static str,
    },

    /// The broker does not support an API (or no version in common with us).
    #[error("broker does not support {api} (versions {client_min}..={client_max} supported by the client)")]
    UnsupportedApi {
        /// API name, e.g. `Produce`.
        api: String,
        /// Lowest version the client can speak.
        client_min: i16,
        /// Highest version the client can speak.
        client_max: i16,
    },

    /// The caller passed something unusable (oversized record, invalid topic name, ...).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),

    /// The record was valid but not written: the broker refused its batch because of other
    /// records in it, which it named (KIP-467; those fail with the broker's code, such as
    /// INVALID_TIMESTAMP or INVALID_RECORD, and their own message). Not retried by the
    /// producer, as in Java and librdkafka (`_INVALID_DIFFERENT_RECORD`); the application
    /// may send the record again.
    #[error("not written: another record of its batch was invalid ({cause}; {context})")]
    InvalidDifferentRecord {
        /// The broker's error for the invalid records.
        cause: KafkaCode,
        /// The produce request's topic-partition and the broker's message.
        context: String,
    },

    /// A topic or partition that the cluster does not have.
    #[error("unknown topic or partition: {0}")]
    UnknownTopicOrPartition(String),

    /// A consumer operation on a partition that is not assigned to the consumer (never
    /// assigned, or revoked by a rebalance meanwhile). Java's consumer throws
    /// `IllegalStateException("No current assignment for partition ...")` here.
    #[error("partition {0} is not assigned to this consumer")]
    NotAssigned(crate::types::TopicPartition),

    /// The log of a partition was truncated below the consumer's position (KIP-320): records
    /// the consumer had received are gone from the log, e.g. after an unclean leader
    /// election, and `auto.offset.reset` is `none`. Java's consumer throws
    /// `LogTruncationException` here. The partition is not fetched again until the
    /// application seeks it (e.g. to `divergent`, where the new leader's log departs from
    /// what was consumed).
    #[error("log truncation detected for {topic}-{partition} at offset {offset}: {}", match divergent { Some(d) => format!("the log diverges from offset {d}"), None => "the divergence point is unknown (the position's epoch is no longer in the log)".to_string() })]
    LogTruncation {
        /// Topic of the partition.
        topic: String,
        /// Partition index.
        partition: i32,
        /// The consumer's position when the truncation was detected.
        offset: i64,
        /// The first offset where the leader's log differs from what was consumed (the end
        /// offset of the position's leader epoch), when the broker knows it.
        divergent: Option<i64>,
    },

    /// The client (or the part of it used) has been closed.
    #[error("client is closed")]
    Closed,

    /// The client hit a failure it cannot recover from on its own and must be recreated
    /// (e.g. an idempotent producer whose epoch bump kept failing for `delivery.timeout.ms`).
    #[error("client is unusable: {0}")]
    Fatal(String),

    /// The operation is not allowed in the current state (e.g. a transaction call out of order).
    #[error("invalid state: {0}")]
    State(String),

    /// A local I/O failure that is not a broker connection (files, processes).
    #[error("i/o error: {0}")]
    Io(Arc<std::io::Error>),

    /// SASL authentication with a broker failed: wrong password, unknown user, a mechanism
    /// the broker does not enable (the message lists the ones it does), a rejected token.
    /// Fatal for the call (retrying with the same credentials cannot help); the connection
    /// is closed and later calls reconnect with backoff.
    #[error("SASL {mechanism} authentication failed: {message}")]
    Authentication {
        /// The mechanism used (`PLAIN`, `SCRAM-SHA-256`, ...).
        mechanism: String,
        /// What the broker (or the client's check) said; never contains a secret.
        message: String,
    },

    /// The TLS handshake with a broker failed; `failure` says why in a matchable form.
    #[error("TLS connection to {broker} failed: {reason}")]
    Tls {
        /// `host:port` of the broker.
        broker: String,
        /// What kind of failure.
        failure: TlsFailure,
        /// What went wrong, and what to check.
        reason: String,
    },

    /// The principal is not allowed to do this (ACLs): TOPIC_, GROUP_,
    /// TRANSACTIONAL_ID_ or CLUSTER_AUTHORIZATION_FAILED. The context names the resource.
    /// Fatal (never retried); for the transactional id and the cluster the client must be
    /// recreated (as in Java).
    #[error("not authorized: {code} on {} ({context})", resource.name())]
    Authorization {
        /// The Kafka error code.
        code: KafkaCode,
        /// The kind of resource that was denied.
        resource: AclResource,
        /// What the client was doing, naming the resource (topic, group, transactional id).
        context: String,
    },
}

/// The kind of a failed TLS handshake ([`Error::Tls`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TlsFailure {
    /// The broker's certificate is not signed by a trusted CA.
    UntrustedCertificate,
    /// The broker's certificate has expired (or is not valid yet).
    ExpiredCertificate,
    /// The broker's certificate does not name the host connected to.
    HostnameMismatch,
    /// The other side does not speak TLS (a plaintext listener?).
    NotTls,
    /// Anything else (client certificate refused, protocol mismatch, ...).
    Other,
}

/// The resource an authorization error ([`Error::Authorization`]) is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum AclResource {
    /// A topic (TOPIC_AUTHORIZATION_FAILED).
    Topic,
    /// A consumer group (GROUP_AUTHORIZATION_FAILED).
    Group,
    /// A transactional id (TRANSACTIONAL_ID_AUTHORIZATION_FAILED).
    TransactionalId,
    /// The cluster (CLUSTER_AUTHORIZATION_FAILED), e.g. idempotent writes on old brokers or
    /// admin operations.
    Cluster,
}

impl AclResource {
    /// The resource of an authorization error code, if it is one.
    pub fn of(code: KafkaCode) -> Option<AclResource> {
        Some(match code {
            KafkaCode::TOPIC_AUTHORIZATION_FAILED => AclResource::Topic,
            KafkaCode::GROUP_AUTHORIZATION_FAILED => AclResource::Group,
            KafkaCode::TRANSACTIONAL_ID_AUTHORIZATION_FAILED => AclResource::TransactionalId,
            KafkaCode::CLUSTER_AUTHORIZATION_FAILED => AclResource::Cluster,
            _ => return None,
        })
    }

    /// `topic`, `group`, `transactional id`, `cluster`.
    pub fn name(self) -> &'static str {
        match self {
            AclResource::Topic => "topic",
            AclResource::Group => "group",
            AclResource::TransactionalId => "transactional id",
            AclResource::Cluster => "cluster",
        }
    }
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Error::Io(Arc::new(e))
    }
}

impl Error {
    /// A broker error with context; the authorization codes become
    /// [`Error::Authorization`].
    pub fn broker(code: KafkaCode, context: impl Into<String>) -> Self {
        match AclResource::of(code) {
            Some(resource) => Error::Authorization {
                code,
                resource,
                context: context.into(),
            },
            None => Error::Broker {
                code,
                context: context.into(),
            },
        }
    }

    /// The Kafka error code, when this error came from a broker response.
    pub fn code(&self) -> Option<KafkaCode> {
        match self {
            Error::Broker { code, .. } | Error::Authorization { code, .. } => Some(*code),
            _ => None,
        }
    }

    /// The one classification of failures in kafka-sdk: every retry loop, every predicate
    /// below and the transactional producer decide from it.
    ///
    /// Rules (the table in DESIGN.md, "Error classification"):
    /// - broker codes that mean stale metadata or a moved coordinator (NOT_LEADER_OR_FOLLOWER,
    ///   UNKNOWN_TOPIC_OR_PARTITION, LEADER_NOT_AVAILABLE, FENCED/UNKNOWN_LEADER_EPOCH,
    ///   UNKNOWN_TOPIC_ID, INCONSISTENT_TOPIC_ID, KAFKA_STORAGE_ERROR, NOT_COORDINATOR,
    ///   COORDINATOR_NOT_AVAILABLE) -> `RefreshAndRetry`;
    /// - REQUEST_TIMED_OUT and NETWORK_EXCEPTION, which say nothing about whether a write was
    ///   applied -> `Ambiguous`;
    /// - CONCURRENT_TRANSACTIONS (marked non-retriable by the protocol, but it only means the
    ///   previous transaction's markers are still being written; Java retries it) and the
    ///   other codes the protocol marks retriable -> `Retry`;
    /// - PRODUCER_FENCED, INVALID_PRODUCER_EPOCH, UNSUPPORTED_VERSION, INVALID_TXN_STATE,
    ///   UNSUPPORTED_ASSIGNOR -> `Fatal`, reaching the client; [`Error::Authorization`] ->
    ///   `Fatal`, reaching the client for a transactional id or the cluster, the operation for
    ///   a topic or group; [`Error::Authentication`] and [`Error::Tls`] -> `Fatal` for the
    ///   operation; FENCED_INSTANCE_ID and UNRELEASED_INSTANCE_ID -> `Fatal`, reaching the
    ///   group member; STALE_MEMBER_EPOCH (KIP-848: retry with the epoch of the next
    ///   heartbeat) -> `Retry`;
    ///   every other broker code -> `Fatal` for the operation;
    /// - connection failures -> `RefreshAndRetry` when nothing was in flight, else `Ambiguous`;
    /// - timeouts -> `Ambiguous` when a request was in flight, else `Retry`;
    /// - [`Error::UnknownTopicOrPartition`] -> `RefreshAndRetry`;
    /// - invalid configuration, [`Error::Closed`], [`Error::Fatal`], an unsupported API ->
    ///   `Fatal` for the client; protocol violations, invalid arguments, unassigned
    ///   partitions, a detected log truncation (the application must seek), bad state and
    ///   local I/O -> `Fatal` for the operation.
    pub fn classify(&self) -> Classification {
        use ErrorAction::*;
        use ErrorReach::*;
        let (action, reach) = match self {
            Error::Broker { code, .. } => match *code {
                KafkaCode::NOT_LEADER_OR_FOLLOWER
                | KafkaCode::UNKNOWN_TOPIC_OR_PARTITION
                | KafkaCode::LEADER_NOT_AVAILABLE
                | KafkaCode::FENCED_LEADER_EPOCH
                | KafkaCode::UNKNOWN_LEADER_EPOCH
                | KafkaCode::UNKNOWN_TOPIC_ID
                | KafkaCode::INCONSISTENT_TOPIC_ID
                | KafkaCode::KAFKA_STORAGE_ERROR
                | KafkaCode::NOT_COORDINATOR
                | KafkaCode::COORDINATOR_NOT_AVAILABLE => (RefreshAndRetry, Operation),
                KafkaCode::REQUEST_TIMED_OUT | KafkaCode::NETWORK_EXCEPTION => {
                    (Ambiguous, Operation)
                }
                // STALE_MEMBER_EPOCH: the member's next heartbeat brings the epoch to retry
                // with (KIP-848; the commit path waits for it).
                KafkaCode::CONCURRENT_TRANSACTIONS | KafkaCode::STALE_MEMBER_EPOCH => {
                    (Retry, Operation)
                }
                // Share sessions (KIP-932): the share consumer opens a new session and sends
                // again; the acknowledgements of the failed request are lost (the records
                // come back after their acquisition lock), never applied twice.
                KafkaCode::SHARE_SESSION_NOT_FOUND
                | KafkaCode::INVALID_SHARE_SESSION_EPOCH
                | KafkaCode::SHARE_SESSION_LIMIT_REACHED => (Retry, Operation),
                // The record is not held any more (lock expired, acknowledged twice) or the
                // share state moved on: that acknowledgement cannot succeed.
                KafkaCode::INVALID_RECORD_STATE | KafkaCode::FENCED_STATE_EPOCH => {
                    (Fatal, Operation)
                }
                KafkaCode::PRODUCER_FENCED
                | KafkaCode::INVALID_PRODUCER_EPOCH
                | KafkaCode::TRANSACTIONAL_ID_AUTHORIZATION_FAILED
                | KafkaCode::CLUSTER_AUTHORIZATION_FAILED
                | KafkaCode::UNSUPPORTED_VERSION
                | KafkaCode::INVALID_TXN_STATE => (Fatal, Client),
                KafkaCode::FENCED_INSTANCE_ID | KafkaCode::UNRELEASED_INSTANCE_ID => {
                    (Fatal, Member)
                }
                KafkaCode::UNSUPPORTED_ASSIGNOR => (Fatal, Client),
                c if c.is_retriable() => (Retry, Operation),
                _ => (Fatal, Operation),
            },
            Error::Connection { in_flight, .. } => {
                if *in_flight {
                    (Ambiguous, Operation)
                } else {
                    (RefreshAndRetry, Operation)
                }
            }
            Error::Timeout { in_flight, .. } => {
                if *in_flight {
                    (Ambiguous, Operation)
                } else {
                    (Retry, Operation)
                }
            }
            // Java: TransactionalIdAuthorizationException and ClusterAuthorizationException
            // are fatal for the producer; topic and group denials fail the operation.
            Error::Authorization { resource, .. } => match resource {
                AclResource::TransactionalId | AclResource::Cluster => (Fatal, Client),
                AclResource::Topic | AclResource::Group => (Fatal, Operation),
            },
            // Same credentials, same answer: never retried; a later call reconnects.
            Error::Authentication { .. } | Error::Tls { .. } => (Fatal, Operation),
            Error::UnknownTopicOrPartition(_) => (RefreshAndRetry, Operation),
            Error::Config(_) | Error::Closed | Error::Fatal(_) | Error::UnsupportedApi { .. } => {
                (Fatal, Client)
            }
            Error::Protocol(_)
            | Error::CodecDisabled { .. }
            | Error::InvalidArgument(_)
            | Error::InvalidDifferentRecord { .. }
            | Error::NotAssigned(_)
            | Error::LogTruncation { .. }
            | Error::State(_)
            | Error::Io(_) => (Fatal, Operation),
        };
        Classification { action, reach }
    }

    /// What to do with the failed request: `classify().action`.
    pub fn action(&self) -> ErrorAction {
        self.classify().action
    }

    /// `true` when retrying the operation (possibly after a metadata refresh) may succeed:
    /// the action is not `Fatal`. Ambiguous failures count as retriable: whether a retry is
    /// *safe* is the caller's call.
    pub fn is_retriable(&self) -> bool {
        self.action() != ErrorAction::Fatal
    }

    /// `true` when the client that got this error can no longer be used and must be
    /// recreated: the reach is not the operation alone ([`ErrorReach::Client`], or
    /// [`ErrorReach::Member`] for a fenced consumer group member).
    pub fn is_fatal(&self) -> bool {
        self.classify().reach != ErrorReach::Operation
    }

    /// The transactional producer's view of [`classify`](Self::classify), for its
    /// coordinator requests and the batches of a transaction:
    /// - reach [`ErrorReach::Client`] -> `Fatal` (fenced, not authorised, ...);
    /// - any other `Fatal` action -> `Abortable` (TRANSACTION_ABORTABLE, topic or group
    ///   authorisation, the consumer group moved on: ILLEGAL_GENERATION, UNKNOWN_MEMBER_ID,
    ///   REBALANCE_IN_PROGRESS, FENCED_INSTANCE_ID (KIP-447 zombie fencing), ...);
    /// - `Retry`, `RefreshAndRetry` and `Ambiguous` -> `Retry` (every transactional request is
    ///   safe to repeat: the coordinator deduplicates them).
    pub fn txn_action(&self) -> TxnAction {
        match self.classify() {
            Classification {
                reach: ErrorReach::Client,
                ..
            } => TxnAction::Fatal,
            Classification {
                action: ErrorAction::Fatal,
                ..
            } => TxnAction::Abortable,
            _ => TxnAction::Retry,
        }
    }

    /// `true` when the error occurred inside a transaction that can be aborted and retried
    /// with a new transaction (as opposed to a fatal error, which needs a new producer): not
    /// [`is_fatal`](Self::is_fatal), and not [`Error::State`] (a call out of order, which
    /// leaves the transaction as it was).
    pub fn txn_requires_abort(&self) -> bool {
        !self.is_fatal() && !matches!(self, Error::State(_))
    }

    /// Builds a [`Error::Timeout`].
    pub fn timeout(what: impl Into<String>, after: Duration, in_flight: bool) -> Self {
        Error::Timeout {
            what: what.into(),
            after,
            in_flight,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::TopicPartition;

    #[test]
    fn names_are_protocol_names() {
        assert_eq!(
            KafkaCode::NOT_LEADER_OR_FOLLOWER.name(),
            "NOT_LEADER_OR_FOLLOWER"
        );
        assert_eq!(KafkaCode(-1).name(), "UNKNOWN_SERVER_ERROR");
        assert_eq!(
            KafkaCode::OUT_OF_ORDER_SEQUENCE_NUMBER.name(),
            "OUT_OF_ORDER_SEQUENCE_NUMBER"
        );
        assert_eq!(KafkaCode(0).name(), "NONE");
        assert_eq!(KafkaCode(30000).name(), "UNKNOWN_CODE_30000");
        assert_eq!(KafkaCode::KAFKA_STORAGE_ERROR.name(), "KAFKA_STORAGE_ERROR");
        assert_eq!(
            KafkaCode::TRANSACTION_ABORTABLE.name(),
            "TRANSACTION_ABORTABLE"
        );
    }

    #[test]
    fn every_known_code_has_a_name_and_flag() {
        for code in -1i16..=133 {
            let c = KafkaCode(code);
            let name = c.name();
            assert!(!name.is_empty());
            assert!(
                name.chars()
                    .all(|ch| ch.is_ascii_uppercase() || ch.is_ascii_digit() || ch == '_'),
                "{name}"
            );
            // Retriable flags come from the protocol's table.
            if code != 0 {
                assert_eq!(
                    c.is_retriable(),
                    ResponseError::try_from_code(code).unwrap().is_retriable()
                );
            }
        }
    }

    #[test]
    fn classification() {
        let truncation = Error::LogTruncation {
            topic: "t".into(),
            partition: 0,
            offset: 10,
            divergent: None,
        };
        assert_eq!(
            truncation.classify(),
            Classification {
                action: ErrorAction::Fatal,
                reach: ErrorReach::Operation
            }
        );
        let b = |c| Error::broker(c, "");
        assert_eq!(
            b(KafkaCode::NOT_LEADER_OR_FOLLOWER).action(),
            ErrorAction::RefreshAndRetry
        );
        assert_eq!(
            b(KafkaCode::NOT_COORDINATOR).action(),
            ErrorAction::RefreshAndRetry
        );
        assert_eq!(
            b(KafkaCode::NOT_ENOUGH_REPLICAS).action(),
            ErrorAction::Retry
        );
        assert_eq!(
            b(KafkaCode::COORDINATOR_LOAD_IN_PROGRESS).action(),
            ErrorAction::Retry
        );
        assert_eq!(
            b(KafkaCode::REQUEST_TIMED_OUT).action(),
            ErrorAction::Ambiguous
        );
        assert_eq!(b(KafkaCode::MESSAGE_TOO_LARGE).action(), ErrorAction::Fatal);
        assert_eq!(
            b(KafkaCode::CONCURRENT_TRANSACTIONS).action(),
            ErrorAction::Retry
        );
        assert_eq!(
            b(KafkaCode::UNKNOWN_SERVER_ERROR).action(),
            ErrorAction::Fatal
        );
        assert!(b(KafkaCode::PRODUCER_FENCED).is_fatal());
        assert!(!b(KafkaCode::PRODUCER_FENCED).txn_requires_abort());
        assert!(b(KafkaCode::TOPIC_AUTHORIZATION_FAILED).txn_requires_abort());
        assert_eq!(
            b(KafkaCode::CONCURRENT_TRANSACTIONS).txn_action(),
            TxnAction::Retry
        );
        assert_eq!(b(KafkaCode::NOT_COORDINATOR).txn_action(), TxnAction::Retry);
        assert_eq!(
            b(KafkaCode::COORDINATOR_LOAD_IN_PROGRESS).txn_action(),
            TxnAction::Retry
        );
        for fatal in [
            KafkaCode::PRODUCER_FENCED,
            KafkaCode::INVALID_PRODUCER_EPOCH,
            KafkaCode::TRANSACTIONAL_ID_AUTHORIZATION_FAILED,
            KafkaCode::INVALID_TXN_STATE,
            KafkaCode::UNSUPPORTED_VERSION,
        ] {
            assert_eq!(b(fatal).txn_action(), TxnAction::Fatal, "{fatal:?}");
            assert!(b(fatal).is_fatal() && !b(fatal).txn_requires_abort());
        }
        for abortable in [
            KafkaCode::TRANSACTION_ABORTABLE,
            KafkaCode::TOPIC_AUTHORIZATION_FAILED,
            KafkaCode::ILLEGAL_GENERATION,
            KafkaCode::FENCED_INSTANCE_ID,
        ] {
            assert_eq!(
                b(abortable).txn_action(),
                TxnAction::Abortable,
                "{abortable:?}"
            );
        }
        assert_eq!(
            Error::timeout("x", Duration::from_secs(1), false).txn_action(),
            TxnAction::Retry
        );
        let conn = |in_flight| Error::Connection {
            broker: "b".into(),
            reason: "r".into(),
            in_flight,
        };
        assert_eq!(conn(false).action(), ErrorAction::RefreshAndRetry);
        assert_eq!(conn(true).action(), ErrorAction::Ambiguous);
        assert_eq!(
            Error::timeout("x", Duration::from_secs(1), true).action(),
            ErrorAction::Ambiguous
        );
        assert_eq!(Error::Closed.action(), ErrorAction::Fatal);
        assert!(Error::Closed.is_fatal());
        assert_eq!(Error::Fatal("f".into()).action(), ErrorAction::Fatal);
        assert!(Error::Fatal("f".into()).is_fatal());
    }

    /// The documented table: every code the client names, with its action and reach.
    #[test]
    fn every_known_code_maps_to_the_documented_class() {
        use ErrorAction::*;
        use ErrorReach::*;
        let table: &[(KafkaCode, ErrorAction, ErrorReach)] = &[
            (KafkaCode::UNKNOWN_SERVER_ERROR, Fatal, Operation),
            (KafkaCode::OFFSET_OUT_OF_RANGE, Fatal, Operation),
            (KafkaCode::CORRUPT_MESSAGE, Retry, Operation),
            (
                KafkaCode::UNKNOWN_TOPIC_OR_PARTITION,
                RefreshAndRetry,
                Operation,
            ),
            (KafkaCode::LEADER_NOT_AVAILABLE, RefreshAndRetry, Operation),
            (
                KafkaCode::NOT_LEADER_OR_FOLLOWER,
                RefreshAndRetry,
                Operation,
            ),
            (KafkaCode::REQUEST_TIMED_OUT, Ambiguous, Operation),
            (KafkaCode::MESSAGE_TOO_LARGE, Fatal, Operation),
            (KafkaCode::NETWORK_EXCEPTION, Ambiguous, Operation),
            (KafkaCode::COORDINATOR_LOAD_IN_PROGRESS, Retry, Operation),
            (
                KafkaCode::COORDINATOR_NOT_AVAILABLE,
                RefreshAndRetry,
                Operation,
            ),
            (KafkaCode::NOT_COORDINATOR, RefreshAndRetry, Operation),
            (KafkaCode::INVALID_TOPIC_EXCEPTION, Fatal, Operation),
            (KafkaCode::RECORD_LIST_TOO_LARGE, Fatal, Operation),
            (KafkaCode::NOT_ENOUGH_REPLICAS, Retry, Operation),
            (
                KafkaCode::NOT_ENOUGH_REPLICAS_AFTER_APPEND,
                Retry,
                Operation,
            ),
            (KafkaCode::ILLEGAL_GENERATION, Fatal, Operation),
            (KafkaCode::UNKNOWN_MEMBER_ID, Fatal, Operation),
            (KafkaCode::REBALANCE_IN_PROGRESS, Fatal, Operation),
            (KafkaCode::TOPIC_AUTHORIZATION_FAILED, Fatal, Operation),
            (KafkaCode::GROUP_AUTHORIZATION_FAILED, Fatal, Operation),
            (KafkaCode::CLUSTER_AUTHORIZATION_FAILED, Fatal, Client),
            (KafkaCode::UNSUPPORTED_VERSION, Fatal, Client),
            (KafkaCode::TOPIC_ALREADY_EXISTS, Fatal, Operation),
            (KafkaCode::OUT_OF_ORDER_SEQUENCE_NUMBER, Fatal, Operation),
            (KafkaCode::DUPLICATE_SEQUENCE_NUMBER, Fatal, Operation),
            (KafkaCode::INVALID_PRODUCER_EPOCH, Fatal, Client),
            (KafkaCode::INVALID_TXN_STATE, Fatal, Client),
            (KafkaCode::INVALID_PRODUCER_ID_MAPPING, Fatal, Operation),
            (KafkaCode::CONCURRENT_TRANSACTIONS, Retry, Operation),
            (
                KafkaCode::TRANSACTIONAL_ID_AUTHORIZATION_FAILED,
                Fatal,
                Client,
            ),
            (KafkaCode::KAFKA_STORAGE_ERROR, RefreshAndRetry, Operation),
            (KafkaCode::UNKNOWN_PRODUCER_ID, Fatal, Operation),
            (KafkaCode::FENCED_LEADER_EPOCH, RefreshAndRetry, Operation),
            (KafkaCode::UNKNOWN_LEADER_EPOCH, RefreshAndRetry, Operation),
            (KafkaCode::MEMBER_ID_REQUIRED, Fatal, Operation),
            (KafkaCode::FENCED_INSTANCE_ID, Fatal, Member),
            (KafkaCode::UNSTABLE_OFFSET_COMMIT, Retry, Operation),
            (KafkaCode::PRODUCER_FENCED, Fatal, Client),
            (KafkaCode::UNKNOWN_TOPIC_ID, RefreshAndRetry, Operation),
            (KafkaCode::INCONSISTENT_TOPIC_ID, RefreshAndRetry, Operation),
            (KafkaCode::TRANSACTION_ABORTABLE, Fatal, Operation),
            (KafkaCode::FENCED_MEMBER_EPOCH, Fatal, Operation),
            (KafkaCode::UNRELEASED_INSTANCE_ID, Fatal, Member),
            (KafkaCode::UNSUPPORTED_ASSIGNOR, Fatal, Client),
            (KafkaCode::STALE_MEMBER_EPOCH, Retry, Operation),
            (KafkaCode::INVALID_REGULAR_EXPRESSION, Fatal, Operation),
        ];
        for &(code, action, reach) in table {
            let c = Error::broker(code, "").classify();
            assert_eq!((c.action, c.reach), (action, reach), "{code:?}");
        }
        // Codes the client does not name: the protocol's flag decides Retry vs Fatal.
        assert_eq!(
            Error::broker(KafkaCode(41), "").classify(), // NOT_CONTROLLER, retriable
            Classification {
                action: Retry,
                reach: Operation
            }
        );
        assert_eq!(
            Error::broker(KafkaCode(30000), "").classify(),
            Classification {
                action: Fatal,
                reach: Operation
            }
        );
        // The transactional view of the same table.
        let txn = |c| Error::broker(c, "").txn_action();
        assert_eq!(txn(KafkaCode::REQUEST_TIMED_OUT), TxnAction::Retry);
        assert_eq!(txn(KafkaCode::UNKNOWN_TOPIC_OR_PARTITION), TxnAction::Retry);
        assert_eq!(txn(KafkaCode::REBALANCE_IN_PROGRESS), TxnAction::Abortable);
        assert_eq!(txn(KafkaCode::UNKNOWN_MEMBER_ID), TxnAction::Abortable);
        assert_eq!(
            txn(KafkaCode::CLUSTER_AUTHORIZATION_FAILED),
            TxnAction::Fatal
        );
    }

    /// Every error the client can build (all protocol codes and every other variant).
    fn all_errors() -> Vec<Error> {
        let mut v: Vec<Error> = (-1i16..=133)
            .chain([30000])
            .filter(|&c| c != 0)
            .map(|c| Error::broker(KafkaCode(c), "ctx"))
            .collect();
        for in_flight in [false, true] {
            v.push(Error::Connection {
                broker: "b:9092".into(),
                reason: "reset".into(),
                in_flight,
            });
            v.push(Error::timeout("x", Duration::from_millis(5), in_flight));
        }
        v.extend([
            Error::Config(ConfigError::Conflict("c".into())),
            Error::Protocol("p".into()),
            Error::UnsupportedApi {
                api: "Produce".into(),
                client_min: 3,
                client_max: 12,
            },
            Error::InvalidArgument("a".into()),
            Error::UnknownTopicOrPartition("t".into()),
            Error::NotAssigned(TopicPartition::new("t", 0)),
            Error::LogTruncation {
                topic: "t".into(),
                partition: 0,
                offset: 10,
                divergent: Some(6),
            },
            Error::Closed,
            Error::Fatal("f".into()),
            Error::State("s".into()),
            Error::from(std::io::Error::other("io")),
        ]);
        v
    }

    /// The predicates are derivations of `classify()`, exactly as documented.
    #[test]
    fn predicates_agree_with_classify() {
        for e in all_errors() {
            let c = e.classify();
            assert_eq!(e.action(), c.action, "{e}");
            assert_eq!(e.is_retriable(), c.action != ErrorAction::Fatal, "{e}");
            assert_eq!(e.is_fatal(), c.reach != ErrorReach::Operation, "{e}");
            // A failure that reaches further than the operation is never retried.
            if c.reach != ErrorReach::Operation {
                assert_eq!(c.action, ErrorAction::Fatal, "{e}");
            }
            let txn = match (c.action, c.reach) {
                (_, ErrorReach::Client) => TxnAction::Fatal,
                (ErrorAction::Fatal, _) => TxnAction::Abortable,
                _ => TxnAction::Retry,
            };
            assert_eq!(e.txn_action(), txn, "{e}");
            assert_eq!(
                e.txn_requires_abort(),
                !e.is_fatal() && !matches!(e, Error::State(_)),
                "{e}"
            );
            // The transactional view agrees with the client-wide one, except for a fenced
            // group member (fatal to the consumer, abortable for the producer).
            if c.reach != ErrorReach::Member {
                assert_eq!(e.txn_action() == TxnAction::Fatal, e.is_fatal(), "{e}");
            }
            // Broker codes: Retry/Fatal follow the protocol's flag except where the table
            // says otherwise.
            if let Some(code) = e.code() {
                let overridden = code == KafkaCode::CONCURRENT_TRANSACTIONS
                    || code == KafkaCode::STALE_MEMBER_EPOCH;
                if !overridden {
                    assert_eq!(e.is_retriable(), code.is_retriable(), "{e}");
                }
            }
        }
    }

    /// KIP-932 share-group codes: a lost share session is retried (with a new session), a
    /// record that is not held any more is not.
    #[test]
    fn share_codes_are_classified() {
        use ErrorAction::*;
        use ErrorReach::*;
        for (code, name, action) in [
            (
                KafkaCode::INVALID_RECORD_STATE,
                "INVALID_RECORD_STATE",
                Fatal,
            ),
            (
                KafkaCode::SHARE_SESSION_NOT_FOUND,
                "SHARE_SESSION_NOT_FOUND",
                Retry,
            ),
            (
                KafkaCode::INVALID_SHARE_SESSION_EPOCH,
                "INVALID_SHARE_SESSION_EPOCH",
                Retry,
            ),
            (KafkaCode::FENCED_STATE_EPOCH, "FENCED_STATE_EPOCH", Fatal),
            (
                KafkaCode::SHARE_SESSION_LIMIT_REACHED,
                "SHARE_SESSION_LIMIT_REACHED",
                Retry,
            ),
        ] {
            assert_eq!(code.name(), name);
            let c = Error::broker(code, "ShareFetch t-0").classify();
            assert_eq!((c.action, c.reach), (action, Operation), "{code:?}");
        }
    }

    #[test]
    fn messages_name_the_problem() {
        let e = Error::from(ConfigError::InvalidValue {
            key: "linger.ms".into(),
            value: "abc".into(),
            expected: "an integer in 0..=900000".into(),
        });
        let s = e.to_string();
        assert!(s.contains("linger.ms") && s.contains("abc"), "{s}");
        let e = Error::broker(KafkaCode::NOT_LEADER_OR_FOLLOWER, "Produce t-0");
        assert!(e.to_string().contains("NOT_LEADER_OR_FOLLOWER (6)"), "{e}");
    }

    #[test]
    fn security_errors_are_typed_and_never_retried() {
        let e = Error::broker(
            KafkaCode::TOPIC_AUTHORIZATION_FAILED,
            "Produce to topic `t`",
        );
        assert!(matches!(
            &e,
            Error::Authorization {
                resource: AclResource::Topic,
                ..
            }
        ));
        assert_eq!(e.code(), Some(KafkaCode::TOPIC_AUTHORIZATION_FAILED));
        assert!(e.to_string().contains("topic `t`"), "{e}");
        assert!(!e.is_retriable() && !e.is_fatal());
        assert_eq!(e.txn_action(), TxnAction::Abortable);
        let g = Error::broker(KafkaCode::GROUP_AUTHORIZATION_FAILED, "group `g`");
        assert!(!g.is_retriable() && !g.is_fatal());
        for code in [
            KafkaCode::TRANSACTIONAL_ID_AUTHORIZATION_FAILED,
            KafkaCode::CLUSTER_AUTHORIZATION_FAILED,
        ] {
            let e = Error::broker(code, "");
            assert!(matches!(e, Error::Authorization { .. }));
            assert!(e.is_fatal() && !e.is_retriable());
            assert_eq!(e.txn_action(), TxnAction::Fatal);
        }
        let a = Error::Authentication {
            mechanism: "PLAIN".into(),
            message: "bad".into(),
        };
        assert_eq!(a.action(), ErrorAction::Fatal);
        assert!(!a.is_fatal());
        let t = Error::Tls {
            broker: "b:1".into(),
            failure: TlsFailure::NotTls,
            reason: "x".into(),
        };
        assert_eq!(t.action(), ErrorAction::Fatal);
        // Other codes stay broker errors.
        assert!(matches!(
            Error::broker(KafkaCode::NOT_LEADER_OR_FOLLOWER, ""),
            Error::Broker { .. }
        ));
    }
}
