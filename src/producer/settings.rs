//! The producer's resolved settings (what the sender and the accumulator read), derived from
//! the typed producer configuration: the config's own types (`Acks`, `Compression`), with the
//! few values that need a floor or come from the common settings flattened in.

use std::time::Duration;

use crate::cluster::ClusterOptions;
use crate::config::{Acks, Compression, ProducerConfig};

/// Everything the producer needs, in one place.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub cluster: ClusterOptions,
    pub acks: Acks,
    pub linger: Duration,
    pub batch_size: usize,
    pub batch_num_messages: usize,
    pub buffer_memory: usize,
    pub max_block: Duration,
    pub max_request_size: usize,
    pub compression: Compression,
    pub compression_level: Option<i32>,
    pub idempotence: bool,
    pub max_in_flight: usize,
    pub retries: u32,
    pub delivery_timeout: Duration,
    pub request_timeout: Duration,
    pub retry_backoff: Duration,
    pub retry_backoff_max: Duration,
}

impl Settings {
    pub(crate) fn from_config(c: &ProducerConfig) -> Settings {
        Settings {
            cluster: ClusterOptions::from(&c.common),
            acks: c.acks,
            linger: c.linger,
            batch_size: c.batch_size.clamp(1, c.max_request_size.max(1)),
            batch_num_messages: c.batch_num_messages.max(1),
            buffer_memory: c.buffer_memory,
            max_block: c.max_block,
            max_request_size: c.max_request_size,
            compression: c.compression,
            compression_level: c.compression_level,
            idempotence: c.enable_idempotence,
            max_in_flight: c.max_in_flight.max(1),
            retries: c.retries,
            delivery_timeout: c.delivery_timeout,
            request_timeout: c.common.request_timeout,
            retry_backoff: c.common.retry_backoff,
            retry_backoff_max: c.common.retry_backoff_max,
        }
    }
}
