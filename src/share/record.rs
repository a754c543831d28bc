//! What a share consumer hands out ([`ShareRecord`]), how records are acknowledged
//! ([`AcknowledgeType`]), and the encoding of acknowledgements into the protocol's
//! acknowledgement batches.

use std::collections::BTreeMap;
use std::ops::Deref;
use std::time::Instant;

use uuid::Uuid;

use crate::consumer::Message;
use crate::types::TopicPartition;

/// How a share consumer acknowledges a delivered record (KIP-932).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AcknowledgeType {
    /// Processed: the record will not be delivered again.
    Accept,
    /// Not processed: the record goes back to the share group and is delivered again (to
    /// this or another consumer) with a higher delivery count.
    Release,
    /// Unprocessable: the record is archived and never delivered again.
    Reject,
}

impl AcknowledgeType {
    /// The protocol's acknowledge type: 1 accept, 2 release, 3 reject (0 is a gap).
    pub(crate) fn code(self) -> i8 {
        match self {
            AcknowledgeType::Accept => 1,
            AcknowledgeType::Release => 2,
            AcknowledgeType::Reject => 3,
        }
    }
}

/// The acknowledge type of an offset the broker acquired for us but that holds no record
/// (a transaction marker, a compacted-away record).
pub(crate) const GAP: i8 = 0;

/// A record received from a share group: the [`Message`] (which `ShareRecord` dereferences
/// to: `record.value()`, `record.offset()`, ...) plus how often the group delivered it and
/// how long this consumer holds it.
///
/// The record is *acquired* by this consumer until it is acknowledged or its acquisition
/// lock expires (the group's `group.share.record.lock.duration.ms`, 30 s by default), after
/// which the group hands it to another consumer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShareRecord {
    pub(crate) message: Message,
    pub(crate) topic_id: Uuid,
    pub(crate) delivery_count: u16,
    pub(crate) lock_expires: Instant,
}

impl ShareRecord {
    /// How many times the share group has delivered this record, this delivery included
    /// (1 the first time).
    pub fn delivery_count(&self) -> u16 {
        self.delivery_count
    }

    /// When this consumer's acquisition lock on the record ends (estimated from when the
    /// ShareFetch response arrived). An acknowledgement sent after it fails with
    /// `INVALID_RECORD_STATE` and the record may be delivered again.
    pub fn acquisition_lock_expires(&self) -> Instant {
        self.lock_expires
    }

    /// The consumed message.
    pub fn message(&self) -> &Message {
        &self.message
    }

    /// The consumed message, by value.
    pub fn into_message(self) -> Message {
        self.message
    }

    pub(crate) fn part(&self) -> Part {
        Part {
            tp: self.message.topic_partition(),
            id: self.topic_id,
        }
    }
}

impl Deref for ShareRecord {
    type Target = Message;
    fn deref(&self) -> &Message {
        &self.message
    }
}

/// A partition with its topic id (the share APIs address topics by id).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct Part {
    pub tp: TopicPartition,
    pub id: Uuid,
}

/// One acknowledgement batch: `first..=last` and either one type for the whole range or one
/// per offset.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct AckBatch {
    pub first: i64,
    pub last: i64,
    pub types: Vec<i8>,
}

/// Turns per-offset acknowledgements into batches of consecutive offsets: one type per
/// batch when the whole run has the same type, else one type per offset.
pub(crate) fn ack_batches(acks: &BTreeMap<i64, i8>) -> Vec<AckBatch> {
    let mut out: Vec<AckBatch> = Vec::new();
    let mut run: Vec<i8> = Vec::new();
    let mut first = 0i64;
    let mut prev: Option<i64> = None;
    let close = |first: i64, run: &mut Vec<i8>, out: &mut Vec<AckBatch>| {
        if run.is_empty() {
            return;
        }
        let last = first + run.len() as i64 - 1;
        let types = if run.iter().all(|t| *t == run[0]) {
            vec![run[0]]
        } else {
            std::mem::take(run)
        };
        run.clear();
        out.push(AckBatch { first, last, types });
    };
    for (&offset, &ty) in acks {
        match prev {
            Some(p) if p + 1 == offset => {}
            _ => {
                close(first, &mut run, &mut out);
                first = offset;
            }
        }
        run.push(ty);
        prev = Some(offset);
    }
    close(first, &mut run, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_group_consecutive_offsets() {
        let acks: BTreeMap<i64, i8> = [(3, 1), (4, 1), (5, 1), (7, 2), (8, 3), (10, 0)]
            .into_iter()
            .collect();
        assert_eq!(
            ack_batches(&acks),
            vec![
                AckBatch {
                    first: 3,
                    last: 5,
                    types: vec![1]
                },
                AckBatch {
                    first: 7,
                    last: 8,
                    types: vec![2, 3]
                },
                AckBatch {
                    first: 10,
                    last: 10,
                    types: vec![0]
                },
            ]
        );
        assert!(ack_batches(&BTreeMap::new()).is_empty());
    }

    #[test]
    fn codes_are_the_protocols() {
        assert_eq!(AcknowledgeType::Accept.code(), 1);
        assert_eq!(AcknowledgeType::Release.code(), 2);
        assert_eq!(AcknowledgeType::Reject.code(), 3);
    }
}
