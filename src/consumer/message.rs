//! What the consumer hands out: [`Message`], plus the small value types of its API
//! ([`Offset`], [`CommitMode`], [`Watermarks`]).

use std::sync::Arc;

use bytes::Bytes;

pub use crate::record::{Header, TimestampType};
use crate::types::TopicPartition;

/// One consumed record. Key, value and headers are zero-copy slices of the fetched buffer; a
/// message borrows nothing from the consumer and may outlive it.
///
/// ```no_run
/// # async fn f(consumer: &kafka_sdk::Consumer) -> kafka_sdk::Result<()> {
/// let message = consumer.recv().await?;
/// let key = message.key().map(|k| String::from_utf8_lossy(k).into_owned());
/// let trace = message.header("trace-id").flatten();
/// println!(
///     "{}/{}@{} key {key:?} trace {trace:?}: {} bytes",
///     message.topic(),
///     message.partition(),
///     message.offset(),
///     message.payload().map_or(0, <[u8]>::len),
/// );
/// consumer.store_offset_from_message(&message)?; // processed: commit it with the next commit
/// # Ok(()) }
/// ```
// Kept at 128 bytes or less (a test checks): messages are moved several times between the
// fetch and `recv`, and larger moves become `memcpy` calls (~8% of the consumer's CPU at
// 100 B records before the fields were packed).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    pub(crate) topic: Arc<str>,
    pub(crate) partition: i32,
    /// Leader epoch of the record's batch, -1 when the broker did not set one.
    pub(crate) leader_epoch: i32,
    pub(crate) offset: i64,
    pub(crate) timestamp: i64,
    pub(crate) timestamp_type: TimestampType,
    pub(crate) key: Option<Bytes>,
    pub(crate) value: Option<Bytes>,
    pub(crate) headers: Box<[Header]>,
}

impl Message {
    /// A `process` span for handling this message (OpenTelemetry messaging fields: topic,
    /// partition, offset). With the `opentelemetry` feature, it is a child of the producer's
    /// `send` span when the message carries a trace context (`traceparent` header):
    /// `handle(m).instrument(m.span()).await`.
    pub fn span(&self) -> tracing::Span {
        crate::observe::process_span(self)
    }

    /// Topic name.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// Partition index.
    pub fn partition(&self) -> i32 {
        self.partition
    }

    /// Topic and partition.
    pub fn topic_partition(&self) -> TopicPartition {
        TopicPartition {
            topic: self.topic.clone(),
            partition: self.partition,
        }
    }

    /// Offset of the record in its partition.
    pub fn offset(&self) -> i64 {
        self.offset
    }

    /// Timestamp in milliseconds since the epoch (see [`Message::timestamp_type`]).
    pub fn timestamp(&self) -> i64 {
        self.timestamp
    }

    /// Whether the timestamp was set by the producer or by the broker.
    pub fn timestamp_type(&self) -> TimestampType {
        self.timestamp_type
    }

    /// Leader epoch of the batch the record came in (`None` when the broker did not set one).
    pub fn leader_epoch(&self) -> Option<i32> {
        (self.leader_epoch >= 0).then_some(self.leader_epoch)
    }

    /// Key, `None` when null.
    pub fn key(&self) -> Option<&Bytes> {
        self.key.as_ref()
    }

    /// Value (payload), `None` when null (a tombstone).
    pub fn value(&self) -> Option<&Bytes> {
        self.value.as_ref()
    }

    /// rdkafka's name for [`Message::value`].
    pub fn payload(&self) -> Option<&[u8]> {
        self.value.as_deref()
    }

    /// Headers in wire order.
    pub fn headers(&self) -> &[Header] {
        &self.headers
    }

    /// The value of the first header named `key`.
    pub fn header(&self, key: &str) -> Option<Option<&Bytes>> {
        self.headers
            .iter()
            .find(|h| h.key.as_ref() == key.as_bytes())
            .map(|h| h.value.as_ref())
    }

    /// Takes key, value and headers out of the message.
    pub fn into_parts(self) -> (Option<Bytes>, Option<Bytes>, Vec<Header>) {
        (self.key, self.value, self.headers.into_vec())
    }

    /// Takes the whole message apart: the topic's shared name is moved out with the other
    /// parts (no reference count taken and given back, as [`Message::topic_partition`] and a
    /// drop would), and the headers come as they were decoded (no copy, no allocation).
    /// For code that converts each message into a type of its own (the rdkafka drop-in's
    /// `BorrowedMessage`); [`Message::into_parts`] is enough when only the payload matters.
    ///
    /// ```no_run
    /// # async fn f(consumer: &kafka_sdk::Consumer) -> kafka_sdk::Result<()> {
    /// let parts = consumer.recv().await?.into_all_parts();
    /// println!("{}/{}@{}", parts.topic, parts.partition, parts.offset);
    /// # Ok(()) }
    /// ```
    pub fn into_all_parts(self) -> MessageParts {
        MessageParts {
            leader_epoch: self.leader_epoch(),
            topic: self.topic,
            partition: self.partition,
            offset: self.offset,
            timestamp: self.timestamp,
            timestamp_type: self.timestamp_type,
            key: self.key,
            value: self.value,
            headers: self.headers,
        }
    }

    /// The message of a decoded record of `tp`, from a batch with `timestamp_type` written
    /// under leader epoch `leader_epoch` (-1: none).
    pub(crate) fn from_record(
        tp: &TopicPartition,
        r: crate::record::Record,
        timestamp_type: TimestampType,
        leader_epoch: i32,
    ) -> Message {
        Message {
            topic: tp.topic.clone(),
            partition: tp.partition,
            offset: r.offset,
            timestamp: r.timestamp,
            timestamp_type,
            leader_epoch,
            key: r.key,
            value: r.value,
            headers: r.headers.into_boxed_slice(),
        }
    }

    /// Bytes this message accounts for in the prefetch buffer.
    pub(crate) fn buffered_size(&self) -> usize {
        let h: usize = self
            .headers
            .iter()
            .map(|h| h.key.len() + h.value.as_ref().map_or(0, |v| v.len()) + 8)
            .sum();
        std::mem::size_of::<Message>()
            + self.key.as_ref().map_or(0, |k| k.len())
            + self.value.as_ref().map_or(0, |v| v.len())
            + h
    }
}

/// Every part of a [`Message`], moved out by [`Message::into_all_parts`]. The fields mean
/// what the message's accessors of the same names return.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct MessageParts {
    /// Topic name (shared by the topic's messages).
    pub topic: Arc<str>,
    /// Partition index.
    pub partition: i32,
    /// Offset of the record in its partition.
    pub offset: i64,
    /// Timestamp in milliseconds since the epoch.
    pub timestamp: i64,
    /// Whether the producer or the broker set the timestamp.
    pub timestamp_type: TimestampType,
    /// Leader epoch of the record's batch (`None` when the broker did not set one).
    pub leader_epoch: Option<i32>,
    /// Key, `None` when null.
    pub key: Option<Bytes>,
    /// Value (payload), `None` when null (a tombstone).
    pub value: Option<Bytes>,
    /// Headers in wire order.
    pub headers: Box<[Header]>,
}

/// A start position for [`Consumer::assign`](super::ConsumerHandle::assign) and
/// [`Consumer::seek`](super::ConsumerHandle::seek) (rdkafka's names).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Offset {
    /// The earliest offset still in the log.
    Beginning,
    /// The end of the log: only records produced from now on.
    End,
    /// The group's committed offset; `auto.offset.reset` applies when there is none (and
    /// always when the consumer has no `group.id`).
    Stored,
    /// An absolute offset. An offset outside the log is handled by `auto.offset.reset`.
    Offset(i64),
    /// `n` records before the end of the log.
    OffsetTail(i64),
    /// The earliest offset whose timestamp is at or after this one (ms since the epoch); the
    /// end of the log when there is none.
    Timestamp(i64),
}

/// Whether a commit waits for the broker's answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CommitMode {
    /// Await the broker's acknowledgement (retrying retriable failures within
    /// `request.timeout.ms`).
    Sync,
    /// Send in the background and return at once; the result is reported through
    /// [`Consumer::commit_results`](super::ConsumerHandle::commit_results) (and logged on failure).
    Async,
}

/// Low and high watermarks of a partition.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Watermarks {
    /// The log start offset (earliest offset still available).
    pub low: i64,
    /// The high watermark (offset the next record will get; for `read_committed` consumers
    /// this is the last stable offset).
    pub high: i64,
}

/// The result of an asynchronous commit.
#[derive(Clone, Debug)]
pub struct CommitResult {
    /// The offsets that were committed (or that failed to be).
    pub offsets: Vec<(TopicPartition, i64)>,
    /// `Ok` when the coordinator accepted every offset.
    pub result: crate::error::Result<()>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(headers: Vec<Header>) -> Message {
        Message {
            topic: Arc::from("orders"),
            partition: 2,
            leader_epoch: 7,
            offset: 42,
            timestamp: 1_700_000_000_123,
            timestamp_type: TimestampType::LogAppendTime,
            key: Some(Bytes::from_static(b"k")),
            value: Some(Bytes::from_static(b"value")),
            headers: headers.into_boxed_slice(),
        }
    }

    #[test]
    fn into_all_parts_moves_every_part_out() {
        let headers = vec![
            Header {
                key: Bytes::from_static(b"trace"),
                value: Some(Bytes::from_static(b"t-1")),
            },
            Header {
                key: Bytes::from_static(b"null"),
                value: None,
            },
        ];
        let m = sample(headers.clone());
        let expected = m.clone();
        let topic = m.topic.clone();
        let parts = m.into_all_parts();
        assert_eq!(&*parts.topic, expected.topic());
        assert_eq!(parts.partition, expected.partition());
        assert_eq!(parts.offset, expected.offset());
        assert_eq!(parts.timestamp, expected.timestamp());
        assert_eq!(parts.timestamp_type, expected.timestamp_type());
        assert_eq!(parts.leader_epoch, Some(7));
        assert_eq!(parts.key.as_ref(), expected.key());
        assert_eq!(parts.value.as_ref(), expected.value());
        assert_eq!(&*parts.headers, &headers[..]);
        // The topic's name is moved, not copied: the same allocation, and no reference
        // left behind by the message (ours and the parts' only, once the copy is gone).
        drop(expected);
        assert!(Arc::ptr_eq(&parts.topic, &topic));
        assert_eq!(Arc::strong_count(&topic), 2);

        let mut no_epoch = sample(Vec::new());
        no_epoch.leader_epoch = -1;
        let parts = no_epoch.into_all_parts();
        assert_eq!(parts.leader_epoch, None);
        assert!(parts.headers.is_empty());
    }

    #[test]
    fn message_moves_stay_small() {
        assert!(
            std::mem::size_of::<Message>() <= 128,
            "Message grew to {} bytes",
            std::mem::size_of::<Message>()
        );
    }
}
