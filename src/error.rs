//! The one error type of kafka-sdk and the one place that classifies failures.
//!
//! Every fallible call in the crate returns [`Error`]. Errors coming from a broker carry the
//! Kafka error code as a [`KafkaCode`], which knows its protocol name (`NOT_LEADER_OR_FOLLOWER`)
//! and whether the protocol calls it retriable.
//!
//! [`Error::action`] is the single decision point every retry loop consults: it says whether to
//! retry as is, refresh metadata and then retry, treat the outcome as unknown (the request may
//! or may not have been applied), or give up.

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
    /// UNSTABLE_OFFSET_COMMIT (88).
    pub const UNSTABLE_OFFSET_COMMIT: KafkaCode = KafkaCode(88);
    /// PRODUCER_FENCED (90).
    pub const PRODUCER_FENCED: KafkaCode = KafkaCode(90);
    /// UNKNOWN_TOPIC_ID (100).
    pub const UNKNOWN_TOPIC_ID: KafkaCode = KafkaCode(100);
    /// INCONSISTENT_TOPIC_ID (103).
    pub const INCONSISTENT_TOPIC_ID: KafkaCode = KafkaCode(103);
    /// TRANSACTION_ABORTABLE (120).
    pub const TRANSACTION_ABORTABLE: KafkaCode = KafkaCode(120);

    /// `true` when the code is 0 (no error).
    pub fn is_ok(self) -> bool {
        self.0 == 0
    }

    /// `None` for code 0, `Some(self)` otherwise.
    pub fn err(self) -> Option<KafkaCode> {
        (self.0 != 0).then_some(self)
    }

    /// The protocol's retriable flag for this code (unknown codes: `false`).
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

    /// `true` for codes after which cached metadata (leaders, topic ids) must be refreshed.
    pub fn needs_metadata_refresh(self) -> bool {
        matches!(
            self,
            KafkaCode::UNKNOWN_TOPIC_OR_PARTITION
                | KafkaCode::LEADER_NOT_AVAILABLE
                | KafkaCode::NOT_LEADER_OR_FOLLOWER
                | KafkaCode::FENCED_LEADER_EPOCH
                | KafkaCode::UNKNOWN_LEADER_EPOCH
                | KafkaCode::UNKNOWN_TOPIC_ID
                | KafkaCode::INCONSISTENT_TOPIC_ID
                | KafkaCode::KAFKA_STORAGE_ERROR
                | KafkaCode::NOT_COORDINATOR
                | KafkaCode::COORDINATOR_NOT_AVAILABLE
        )
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

/// What a caller should do about a failure. Produced only by [`Error::action`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorAction {
    /// Transient; retry the same request (after backoff) against the same target.
    Retry,
    /// The cached view of the cluster is stale: refresh metadata (or rediscover the
    /// coordinator), then retry.
    RefreshAndRetry,
    /// The request may or may not have taken effect (e.g. it timed out in flight). Retrying is
    /// only safe where the broker deduplicates (idempotent producer with unchanged sequence).
    Ambiguous,
    /// Retrying cannot help; surface the error.
    Fatal,
}

/// What a transactional producer does about a failed transactional request or batch
/// (KIP-98 / KIP-890 error classes). Produced only by [`Error::txn_action`].
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

    /// A topic or partition that the cluster does not have.
    #[error("unknown topic or partition: {0}")]
    UnknownTopicOrPartition(String),

    /// A consumer operation on a partition that is not assigned to the consumer (never
    /// assigned, or revoked by a rebalance meanwhile). Java's consumer throws
    /// `IllegalStateException("No current assignment for partition ...")` here.
    #[error("partition {0} is not assigned to this consumer")]
    NotAssigned(crate::types::TopicPartition),

    /// The client (or the part of it used) has been closed.
    #[error("client is closed")]
    Closed,

    /// The operation is not allowed in the current state (e.g. a transaction call out of order).
    #[error("invalid state: {0}")]
    State(String),

    /// A local I/O failure that is not a broker connection (files, processes).
    #[error("i/o error: {0}")]
    Io(Arc<std::io::Error>),
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Error::Io(Arc::new(e))
    }
}

impl Error {
    /// A broker error with context.
    pub fn broker(code: KafkaCode, context: impl Into<String>) -> Self {
        Error::Broker {
            code,
            context: context.into(),
        }
    }

    /// The Kafka error code, when this error came from a broker response.
    pub fn code(&self) -> Option<KafkaCode> {
        match self {
            Error::Broker { code, .. } => Some(*code),
            _ => None,
        }
    }

    /// The one classification of failures used by every retry loop in kafka-sdk.
    ///
    /// Rules (see DESIGN.md, "Error classification"):
    /// - broker codes that mean stale metadata or a moved coordinator -> `RefreshAndRetry`;
    /// - other codes the protocol marks retriable, and CONCURRENT_TRANSACTIONS -> `Retry`,
    ///   except `REQUEST_TIMED_OUT` and
    ///   `NETWORK_EXCEPTION`, which say nothing about whether a write was applied -> `Ambiguous`;
    /// - connection failures -> `RefreshAndRetry` when nothing was in flight, else `Ambiguous`;
    /// - timeouts -> `Ambiguous` when a request was in flight, else `Retry`;
    /// - everything else (config, protocol violations, invalid input, closed, fatal codes)
    ///   -> `Fatal`.
    pub fn action(&self) -> ErrorAction {
        match self {
            Error::Broker { code, .. } => {
                if code.needs_metadata_refresh() {
                    ErrorAction::RefreshAndRetry
                } else if matches!(
                    *code,
                    KafkaCode::REQUEST_TIMED_OUT | KafkaCode::NETWORK_EXCEPTION
                ) {
                    ErrorAction::Ambiguous
                } else if code.is_retriable() || *code == KafkaCode::CONCURRENT_TRANSACTIONS {
                    // CONCURRENT_TRANSACTIONS: the previous transaction's markers are still
                    // being written (a V2 Produce can get it); Java retries it too.
                    ErrorAction::Retry
                } else {
                    ErrorAction::Fatal
                }
            }
            Error::Connection { in_flight, .. } => {
                if *in_flight {
                    ErrorAction::Ambiguous
                } else {
                    ErrorAction::RefreshAndRetry
                }
            }
            Error::Timeout { in_flight, .. } => {
                if *in_flight {
                    ErrorAction::Ambiguous
                } else {
                    ErrorAction::Retry
                }
            }
            Error::UnknownTopicOrPartition(_) => ErrorAction::RefreshAndRetry,
            Error::Config(_)
            | Error::Protocol(_)
            | Error::CodecDisabled { .. }
            | Error::UnsupportedApi { .. }
            | Error::InvalidArgument(_)
            | Error::NotAssigned(_)
            | Error::Closed
            | Error::State(_)
            | Error::Io(_) => ErrorAction::Fatal,
        }
    }

    /// `true` when retrying the operation (possibly after a metadata refresh) may succeed.
    /// Ambiguous failures count as retriable: whether a retry is *safe* is the caller's call.
    pub fn is_retriable(&self) -> bool {
        self.action() != ErrorAction::Fatal
    }

    /// `true` when the client that produced this error can no longer be used and must be
    /// recreated (fenced producers, authorization failures on init, ...).
    pub fn is_fatal(&self) -> bool {
        match self {
            Error::Broker { code, .. } => matches!(
                *code,
                KafkaCode::PRODUCER_FENCED
                    | KafkaCode::INVALID_PRODUCER_EPOCH
                    | KafkaCode::FENCED_INSTANCE_ID
                    | KafkaCode::TRANSACTIONAL_ID_AUTHORIZATION_FAILED
                    | KafkaCode::CLUSTER_AUTHORIZATION_FAILED
                    | KafkaCode::UNSUPPORTED_VERSION
                    | KafkaCode::INVALID_TXN_STATE
            ),
            Error::Config(_) | Error::Closed | Error::UnsupportedApi { .. } => true,
            _ => false,
        }
    }

    /// The classification used by the transactional producer (coordinator requests and
    /// batches inside a transaction), consistent with [`is_fatal`](Self::is_fatal) and
    /// [`txn_requires_abort`](Self::txn_requires_abort):
    /// - coordinator moves or load, CONCURRENT_TRANSACTIONS, broker codes the protocol marks
    ///   retriable, connection failures and timeouts -> `Retry` (every transactional request
    ///   is safe to repeat: the coordinator deduplicates them);
    /// - FENCED_INSTANCE_ID, ILLEGAL_GENERATION, UNKNOWN_MEMBER_ID, REBALANCE_IN_PROGRESS (the
    ///   consumer group moved on; KIP-447 zombie fencing) -> `Abortable`;
    /// - [`is_fatal`](Self::is_fatal) errors (PRODUCER_FENCED, INVALID_PRODUCER_EPOCH,
    ///   TRANSACTIONAL_ID_AUTHORIZATION_FAILED, INVALID_TXN_STATE, UNSUPPORTED_VERSION, ...)
    ///   -> `Fatal`;
    /// - everything else (TRANSACTION_ABORTABLE, topic/group authorisation, a record that
    ///   failed or timed out locally, ...) -> `Abortable`.
    pub fn txn_action(&self) -> TxnAction {
        if let Error::Broker { code, .. } = self {
            match *code {
                KafkaCode::FENCED_INSTANCE_ID
                | KafkaCode::ILLEGAL_GENERATION
                | KafkaCode::UNKNOWN_MEMBER_ID
                | KafkaCode::REBALANCE_IN_PROGRESS => return TxnAction::Abortable,
                KafkaCode::NOT_COORDINATOR
                | KafkaCode::COORDINATOR_NOT_AVAILABLE
                | KafkaCode::COORDINATOR_LOAD_IN_PROGRESS
                | KafkaCode::CONCURRENT_TRANSACTIONS => return TxnAction::Retry,
                _ => {}
            }
        }
        if self.is_fatal() {
            return TxnAction::Fatal;
        }
        match self {
            Error::Broker { code, .. } if code.is_retriable() => TxnAction::Retry,
            Error::Connection { .. } | Error::Timeout { .. } => TxnAction::Retry,
            _ => TxnAction::Abortable,
        }
    }

    /// `true` when the error occurred inside a transaction that can be aborted and retried
    /// with a new transaction (as opposed to a fatal error, which needs a new producer).
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
}
