//! librdkafka's enums under the names of rdkafka's `types` module.

pub use crate::error::{RDKafkaConfRes, RDKafkaErrorCode};

/// A broker or local error code as librdkafka's response-error enum.
pub type RDKafkaRespErr = RDKafkaErrorCode;
