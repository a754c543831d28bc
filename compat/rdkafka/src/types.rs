//! librdkafka's enums under the names of rdkafka's `types` module.

pub use crate::error::{RDKafkaConfRes, RDKafkaErrorCode};

/// A broker or local error code as librdkafka's response-error enum.
pub type RDKafkaRespErr = RDKafkaErrorCode;

/// rdkafka's `RDKafkaRespErr` variant names that `ConsumerContext::rebalance` code matches on.
impl RDKafkaErrorCode {
    /// No error.
    pub const RD_KAFKA_RESP_ERR_NO_ERROR: RDKafkaRespErr = RDKafkaErrorCode::NoError;
    /// A rebalance assigns partitions.
    pub const RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS: RDKafkaRespErr =
        RDKafkaErrorCode::AssignPartitions;
    /// A rebalance revokes partitions.
    pub const RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS: RDKafkaRespErr =
        RDKafkaErrorCode::RevokePartitions;
}
