//! Errors with rdkafka's shapes: [`KafkaError`] (what failed) carrying an
//! [`RDKafkaErrorCode`] (librdkafka's code: Kafka's broker codes plus librdkafka's local,
//! negative ones), and [`RDKafkaError`] for transactional calls.
//!
//! kafka-sdk errors are converted here, once: `code_of` picks the code and the flags of
//! [`RDKafkaError`] come from kafka-sdk's own classification (`Error::classify`).

use std::fmt;

use kafka_sdk::error::Error as SdkError;

/// The result of most calls.
pub type KafkaResult<T> = Result<T, KafkaError>;

macro_rules! error_codes {
    ($($(#[$m:meta])* $name:ident = $v:expr,)*) => {
        /// librdkafka's error codes: negative ones are local to the client, positive ones are
        /// Kafka's broker error codes.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        #[repr(i32)]
        #[allow(missing_docs)]
        pub enum RDKafkaErrorCode {
            $($(#[$m])* $name = $v,)*
        }

        impl From<i32> for RDKafkaErrorCode {
            /// The code numbered `n`; numbers this crate does not name become `Unknown`.
            fn from(n: i32) -> RDKafkaErrorCode {
                match n {
                    $($v => RDKafkaErrorCode::$name,)*
                    _ => RDKafkaErrorCode::Unknown,
                }
            }
        }

        impl RDKafkaErrorCode {
            fn text(self) -> &'static str {
                match self {
                    $(RDKafkaErrorCode::$name => stringify!($name),)*
                }
            }
        }
    };
}

error_codes! {
    BadMessage = -199, BadCompression = -198, BrokerDestroy = -197, Fail = -196,
    BrokerTransportFailure = -195, CriticalSystemResource = -194, Resolve = -193,
    MessageTimedOut = -192, PartitionEOF = -191, UnknownPartition = -190, FileSystem = -189,
    UnknownTopic = -188, AllBrokersDown = -187, InvalidArgument = -186,
    OperationTimedOut = -185, QueueFull = -184, ISRInsufficient = -183, NodeUpdate = -182,
    SSL = -181, WaitingForCoordinator = -180, UnknownGroup = -179, InProgress = -178,
    PreviousInProgress = -177, ExistingSubscription = -176, AssignPartitions = -175,
    RevokePartitions = -174, Conflict = -173, State = -172, UnknownProtocol = -171,
    NotImplemented = -170, Authentication = -169, NoOffset = -168, Outdated = -167,
    TimedOutQueue = -166, UnsupportedFeature = -165, WaitCache = -164, Interrupted = -163,
    KeySerialization = -162, ValueSerialization = -161, KeyDeserialization = -160,
    ValueDeserialization = -159, Partial = -158, ReadOnly = -157, NoEnt = -156,
    Underflow = -155, InvalidType = -154, Retry = -153, PurgeQueue = -152,
    PurgeInflight = -151, Fatal = -150, Inconsistent = -149, GaplessGuarantee = -148,
    PollExceeded = -147, UnknownBroker = -146, NotConfigured = -145, Fenced = -144,
    Application = -143, AssignmentLost = -142, Noop = -141, AutoOffsetReset = -140,
    LogTruncation = -139, InvalidDifferentRecord = -138, DestroyBroker = -137,
    Unknown = -1, NoError = 0, OffsetOutOfRange = 1, InvalidMessage = 2,
    UnknownTopicOrPartition = 3, InvalidMessageSize = 4, LeaderNotAvailable = 5,
    NotLeaderForPartition = 6, RequestTimedOut = 7, BrokerNotAvailable = 8,
    ReplicaNotAvailable = 9, MessageSizeTooLarge = 10, StaleControllerEpoch = 11,
    OffsetMetadataTooLarge = 12, NetworkException = 13, CoordinatorLoadInProgress = 14,
    CoordinatorNotAvailable = 15, NotCoordinator = 16, InvalidTopic = 17,
    MessageBatchTooLarge = 18, NotEnoughReplicas = 19, NotEnoughReplicasAfterAppend = 20,
    InvalidRequiredAcks = 21, IllegalGeneration = 22, InconsistentGroupProtocol = 23,
    InvalidGroupId = 24, UnknownMemberId = 25, InvalidSessionTimeout = 26,
    RebalanceInProgress = 27, InvalidCommitOffsetSize = 28, TopicAuthorizationFailed = 29,
    GroupAuthorizationFailed = 30, ClusterAuthorizationFailed = 31, InvalidTimestamp = 32,
    UnsupportedSASLMechanism = 33, IllegalSASLState = 34, UnsupportedVersion = 35,
    TopicAlreadyExists = 36, InvalidPartitions = 37, InvalidReplicationFactor = 38,
    InvalidReplicaAssignment = 39, InvalidConfig = 40, NotController = 41,
    InvalidRequest = 42, UnsupportedForMessageFormat = 43, PolicyViolation = 44,
    OutOfOrderSequenceNumber = 45, DuplicateSequenceNumber = 46, InvalidProducerEpoch = 47,
    InvalidTransactionalState = 48, InvalidProducerIdMapping = 49,
    InvalidTransactionTimeout = 50, ConcurrentTransactions = 51,
    TransactionCoordinatorFenced = 52, TransactionalIdAuthorizationFailed = 53,
    SecurityDisabled = 54, OperationNotAttempted = 55, KafkaStorageError = 56,
    LogDirNotFound = 57, SaslAuthenticationFailed = 58, UnknownProducerId = 59,
    ReassignmentInProgress = 60, DelegationTokenAuthDisabled = 61,
    DelegationTokenNotFound = 62, DelegationTokenOwnerMismatch = 63,
    DelegationTokenRequestNotAllowed = 64, DelegationTokenAuthorizationFailed = 65,
    DelegationTokenExpired = 66, InvalidPrincipalType = 67, NonEmptyGroup = 68,
    GroupIdNotFound = 69, FetchSessionIdNotFound = 70, InvalidFetchSessionEpoch = 71,
    ListenerNotFound = 72, TopicDeletionDisabled = 73, FencedLeaderEpoch = 74,
    UnknownLeaderEpoch = 75, UnsupportedCompressionType = 76, StaleBrokerEpoch = 77,
    OffsetNotAvailable = 78, MemberIdRequired = 79, PreferredLeaderNotAvailable = 80,
    GroupMaxSizeReached = 81, FencedInstanceId = 82, EligibleLeadersNotAvailable = 83,
    ElectionNotNeeded = 84, NoReassignmentInProgress = 85, GroupSubscribedToTopic = 86,
    InvalidRecord = 87, UnstableOffsetCommit = 88, ThrottlingQuotaExceeded = 89,
    ProducerFenced = 90, ResourceNotFound = 91, DuplicateResource = 92,
    UnacceptableCredential = 93, InconsistentVoterSet = 94, InvalidUpdateVersion = 95,
    FeatureUpdateFailed = 96, PrincipalDeserializationFailure = 97, SnapshotNotFound = 98,
    PositionOutOfRange = 99, UnknownTopicId = 100, DuplicateBrokerRegistration = 101,
    BrokerIdNotRegistered = 102, InconsistentTopicId = 103, InconsistentClusterId = 104,
    TransactionalIdNotFound = 105, FetchSessionTopicIdError = 106, IneligibleReplica = 107,
    NewLeaderElected = 108, OffsetMovedToTieredStorage = 109, FencedMemberEpoch = 110,
    UnreleasedInstanceId = 111, UnsupportedAssignor = 112, StaleMemberEpoch = 113,
    UnknownSubscriptionId = 117, TelemetryTooLarge = 118, RebootstrapRequired = 129,
}

impl fmt::Display for RDKafkaErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.text())
    }
}

impl std::error::Error for RDKafkaErrorCode {}

/// Result of setting a configuration property in librdkafka (kept for
/// [`KafkaError::ClientConfig`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RDKafkaConfRes {
    /// Unknown configuration name.
    Unknown = -2,
    /// Invalid configuration value.
    Invalid = -1,
    /// Configuration okay.
    Ok = 0,
}

/// An error of a transactional call, with librdkafka's flags.
#[derive(Clone, PartialEq, Eq)]
pub struct RDKafkaError {
    code: RDKafkaErrorCode,
    text: String,
    fatal: bool,
    retriable: bool,
    abort: bool,
}

impl RDKafkaError {
    /// The error code.
    pub fn code(&self) -> RDKafkaErrorCode {
        self.code
    }

    /// The code's name.
    pub fn name(&self) -> String {
        self.code.to_string()
    }

    /// A human-readable description.
    pub fn string(&self) -> String {
        self.text.clone()
    }

    /// The producer is unusable and must be recreated.
    pub fn is_fatal(&self) -> bool {
        self.fatal
    }

    /// The call may be retried.
    pub fn is_retriable(&self) -> bool {
        self.retriable
    }

    /// The transaction must be aborted (`abort_transaction`) before going on.
    pub fn txn_requires_abort(&self) -> bool {
        self.abort
    }

    pub(crate) fn from_sdk(e: &SdkError) -> RDKafkaError {
        RDKafkaError {
            code: code_of(e),
            text: e.to_string(),
            fatal: e.is_fatal(),
            retriable: e.is_retriable() && !e.txn_requires_abort(),
            abort: e.txn_requires_abort(),
        }
    }
}

impl fmt::Debug for RDKafkaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RDKafkaError({:?}, {:?})", self.code, self.text)
    }
}

impl fmt::Display for RDKafkaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl std::error::Error for RDKafkaError {}

/// What failed, with the code that says why.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum KafkaError {
    /// Creating an admin operation failed.
    AdminOpCreation(String),
    /// An admin operation failed.
    AdminOp(RDKafkaErrorCode),
    /// The operation was canceled (its client went away).
    Canceled,
    /// An invalid configuration: result, description, key, value.
    ClientConfig(RDKafkaConfRes, String, String, String),
    /// Creating a client failed.
    ClientCreation(String),
    /// A commit failed.
    ConsumerCommit(RDKafkaErrorCode),
    /// Closing the consumer queue failed.
    ConsumerQueueClose(RDKafkaErrorCode),
    /// A flush did not finish.
    Flush(RDKafkaErrorCode),
    /// A client-wide error.
    Global(RDKafkaErrorCode),
    /// Listing groups failed.
    GroupListFetch(RDKafkaErrorCode),
    /// Consuming failed.
    MessageConsumption(RDKafkaErrorCode),
    /// Consuming failed and the consumer cannot go on.
    MessageConsumptionFatal(RDKafkaErrorCode),
    /// Producing failed.
    MessageProduction(RDKafkaErrorCode),
    /// A metadata request failed.
    MetadataFetch(RDKafkaErrorCode),
    /// No message arrived in time.
    NoMessageReceived,
    /// A string contained a NUL byte.
    Nul(std::ffi::NulError),
    /// Fetching offsets failed.
    OffsetFetch(RDKafkaErrorCode),
    /// The end of a partition was reached (with `enable.partition.eof=true`).
    PartitionEOF(i32),
    /// Pausing or resuming failed.
    PauseResume(String),
    /// A rebalance failed.
    Rebalance(RDKafkaErrorCode),
    /// A seek failed.
    Seek(String),
    /// Setting a partition offset failed.
    SetPartitionOffset(RDKafkaErrorCode),
    /// Storing an offset failed.
    StoreOffset(RDKafkaErrorCode),
    /// Subscribing failed.
    Subscription(String),
    /// A transactional call failed.
    Transaction(RDKafkaError),
    /// The mock cluster failed (no mock cluster here).
    MockCluster(RDKafkaErrorCode),
}

impl KafkaError {
    /// The librdkafka code of this error, when it has one.
    pub fn rdkafka_error_code(&self) -> Option<RDKafkaErrorCode> {
        use KafkaError::*;
        match self {
            AdminOp(c)
            | ConsumerCommit(c)
            | ConsumerQueueClose(c)
            | Flush(c)
            | Global(c)
            | GroupListFetch(c)
            | MessageConsumption(c)
            | MessageConsumptionFatal(c)
            | MessageProduction(c)
            | MetadataFetch(c)
            | OffsetFetch(c)
            | Rebalance(c)
            | SetPartitionOffset(c)
            | StoreOffset(c)
            | MockCluster(c) => Some(*c),
            Transaction(e) => Some(e.code()),
            _ => None,
        }
    }
}

impl fmt::Debug for KafkaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use KafkaError::*;
        match self {
            AdminOpCreation(s) => write!(f, "KafkaError (Admin operation creation error: {s})"),
            ClientConfig(_, d, k, v) => {
                write!(f, "KafkaError (Client config error: {d} {k} {v})")
            }
            ClientCreation(s) => write!(f, "KafkaError (Client creation error: {s})"),
            Canceled => write!(f, "KafkaError (Client dropped)"),
            NoMessageReceived => write!(f, "No message received within the given poll interval"),
            Nul(e) => write!(f, "KafkaError (FFI nul error: {e})"),
            PartitionEOF(p) => write!(f, "KafkaError (Partition EOF: {p})"),
            PauseResume(s) => write!(f, "KafkaError (Pause/resume error: {s})"),
            Seek(s) => write!(f, "KafkaError (Seek error: {s})"),
            Subscription(s) => write!(f, "KafkaError (Subscription error: {s})"),
            Transaction(e) => write!(f, "KafkaError (Transaction error: {e:?})"),
            other => write!(
                f,
                "KafkaError ({} error: {:?})",
                other.what(),
                other
                    .rdkafka_error_code()
                    .unwrap_or(RDKafkaErrorCode::Unknown)
            ),
        }
    }
}

impl KafkaError {
    fn what(&self) -> &'static str {
        use KafkaError::*;
        match self {
            AdminOp(_) => "Admin operation",
            ConsumerCommit(_) => "Consumer commit",
            ConsumerQueueClose(_) => "Consumer queue close",
            Flush(_) => "Flush",
            Global(_) => "Global",
            GroupListFetch(_) => "Group list fetch",
            MessageConsumption(_) => "Message consumption",
            MessageConsumptionFatal(_) => "Message consumption fatal",
            MessageProduction(_) => "Message production",
            MetadataFetch(_) => "Meta data fetch",
            OffsetFetch(_) => "Offset fetch",
            Rebalance(_) => "Rebalance",
            SetPartitionOffset(_) => "Set partition offset",
            StoreOffset(_) => "Store offset",
            MockCluster(_) => "Mock cluster",
            _ => "Kafka",
        }
    }
}

impl fmt::Display for KafkaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.rdkafka_error_code() {
            Some(c) if !matches!(self, KafkaError::Transaction(_)) => {
                write!(f, "{} error: {c}", self.what())
            }
            _ => fmt::Debug::fmt(self, f),
        }
    }
}

impl std::error::Error for KafkaError {}

impl From<std::ffi::NulError> for KafkaError {
    fn from(e: std::ffi::NulError) -> KafkaError {
        KafkaError::Nul(e)
    }
}

/// librdkafka's code for a kafka-sdk error.
pub(crate) fn code_of(e: &SdkError) -> RDKafkaErrorCode {
    if let Some(code) = e.code() {
        return RDKafkaErrorCode::from(i32::from(code.0));
    }
    match e {
        SdkError::Config(_) | SdkError::InvalidArgument(_) => RDKafkaErrorCode::InvalidArgument,
        SdkError::Connection { .. } => RDKafkaErrorCode::BrokerTransportFailure,
        SdkError::Timeout { what, .. } if what.contains("deliver") => {
            RDKafkaErrorCode::MessageTimedOut
        }
        SdkError::Timeout { .. } => RDKafkaErrorCode::OperationTimedOut,
        SdkError::Protocol(_) => RDKafkaErrorCode::BadMessage,
        SdkError::CodecDisabled { .. } => RDKafkaErrorCode::NotImplemented,
        SdkError::UnsupportedApi { .. } => RDKafkaErrorCode::UnsupportedFeature,
        SdkError::UnknownTopicOrPartition(_) => RDKafkaErrorCode::UnknownTopicOrPartition,
        SdkError::NotAssigned(_) => RDKafkaErrorCode::UnknownPartition,
        SdkError::InvalidDifferentRecord { .. } => RDKafkaErrorCode::InvalidDifferentRecord,
        SdkError::Closed => RDKafkaErrorCode::DestroyBroker,
        SdkError::Fatal(_) => RDKafkaErrorCode::Fatal,
        SdkError::State(_) => RDKafkaErrorCode::State,
        SdkError::Io(_) => RDKafkaErrorCode::FileSystem,
        // librdkafka's local codes for a failed SASL exchange and a failed TLS handshake.
        SdkError::Authentication { .. } => RDKafkaErrorCode::Authentication,
        SdkError::Tls { .. } => RDKafkaErrorCode::SSL,
        _ => RDKafkaErrorCode::Fail,
    }
}

/// Logs `e` (the detail a code alone loses) and returns its code.
pub(crate) fn logged_code(what: &str, e: &SdkError) -> RDKafkaErrorCode {
    tracing::debug!("kafka-sdk-rdkafka: {what}: {e}");
    code_of(e)
}

impl RDKafkaError {
    pub(crate) fn timed_out() -> RDKafkaError {
        RDKafkaError {
            code: RDKafkaErrorCode::OperationTimedOut,
            text: "transactional call timed out (it may be retried)".into(),
            fatal: false,
            retriable: true,
            abort: false,
        }
    }

    pub(crate) fn invalid_arg(text: String) -> RDKafkaError {
        RDKafkaError {
            code: RDKafkaErrorCode::InvalidArgument,
            text,
            fatal: false,
            retriable: false,
            abort: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_sdk::KafkaCode;

    /// KIP-467: the record the broker named keeps the broker's code, its valid neighbours
    /// get librdkafka's `_INVALID_DIFFERENT_RECORD`.
    #[test]
    fn refused_records_keep_librdkafkas_codes() {
        let invalid = SdkError::broker(KafkaCode::INVALID_TIMESTAMP, "Produce to t-0");
        assert_eq!(code_of(&invalid), RDKafkaErrorCode::InvalidTimestamp);
        let other = SdkError::InvalidDifferentRecord {
            cause: KafkaCode::INVALID_TIMESTAMP,
            context: "Produce to t-0".into(),
        };
        assert_eq!(code_of(&other), RDKafkaErrorCode::InvalidDifferentRecord);
    }
}
