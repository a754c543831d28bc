//! What users hand to the producer ([`ProducerRecord`]) and what they get back
//! ([`RecordMetadata`]).

use std::sync::Arc;

use bytes::Bytes;

/// A record to produce: topic, optional partition, key, value, headers and timestamp.
///
/// ```
/// use kafka_sdk::producer::ProducerRecord;
/// let r = ProducerRecord::new("orders")
///     .key("customer-42")
///     .value("{\"total\": 10}")
///     .header("trace-id", Some("abc"))
///     .timestamp(1_700_000_000_000);
/// assert_eq!(r.topic(), "orders");
/// ```
#[derive(Debug, Clone, Default)]
pub struct ProducerRecord {
    pub(crate) topic: Arc<str>,
    pub(crate) partition: Option<i32>,
    pub(crate) key: Option<Bytes>,
    pub(crate) value: Option<Bytes>,
    pub(crate) headers: Vec<(String, Option<Bytes>)>,
    pub(crate) timestamp: Option<i64>,
}

impl ProducerRecord {
    /// A record for `topic` with no key, no value (a tombstone unless a value is set), no
    /// headers, the partition chosen by the partitioner and the timestamp taken at `send`.
    pub fn new(topic: impl Into<Arc<str>>) -> Self {
        ProducerRecord {
            topic: topic.into(),
            ..Default::default()
        }
    }

    /// Sends to this partition, bypassing the partitioner.
    pub fn partition(mut self, partition: i32) -> Self {
        self.partition = Some(partition);
        self
    }

    /// Sets the key.
    pub fn key(mut self, key: impl Into<Bytes>) -> Self {
        self.key = Some(key.into());
        self
    }

    /// Sets or clears the key.
    pub fn opt_key(mut self, key: Option<Bytes>) -> Self {
        self.key = key;
        self
    }

    /// Sets the value.
    pub fn value(mut self, value: impl Into<Bytes>) -> Self {
        self.value = Some(value.into());
        self
    }

    /// Sets or clears the value (`None` = tombstone).
    pub fn opt_value(mut self, value: Option<Bytes>) -> Self {
        self.value = value;
        self
    }

    /// Adds a header (header keys may repeat; order is kept).
    pub fn header(mut self, key: impl Into<String>, value: Option<impl Into<Bytes>>) -> Self {
        self.headers.push((key.into(), value.map(Into::into)));
        self
    }

    /// Replaces all headers.
    pub fn headers(mut self, headers: Vec<(String, Option<Bytes>)>) -> Self {
        self.headers = headers;
        self
    }

    /// Sets the timestamp (milliseconds since the Unix epoch, create time).
    pub fn timestamp(mut self, ts_ms: i64) -> Self {
        self.timestamp = Some(ts_ms);
        self
    }

    /// The topic.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// The explicit partition, if any.
    pub fn get_partition(&self) -> Option<i32> {
        self.partition
    }

    /// The key, if any.
    pub fn get_key(&self) -> Option<&Bytes> {
        self.key.as_ref()
    }

    /// The value, if any.
    pub fn get_value(&self) -> Option<&Bytes> {
        self.value.as_ref()
    }

    /// The headers.
    pub fn get_headers(&self) -> &[(String, Option<Bytes>)] {
        &self.headers
    }

    /// The explicit timestamp, if any.
    pub fn get_timestamp(&self) -> Option<i64> {
        self.timestamp
    }
}

/// Where a record landed, as acknowledged by the partition leader.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordMetadata {
    /// The topic.
    pub topic: Arc<str>,
    /// The partition.
    pub partition: i32,
    /// The record's offset; -1 when unknown (acks=0, or a duplicate the broker reported as
    /// DUPLICATE_SEQUENCE_NUMBER without the original offset).
    pub offset: i64,
    /// The record's timestamp: the create time the producer sent, or the broker's log append
    /// time when the topic uses `LogAppendTime`.
    pub timestamp: i64,
}
