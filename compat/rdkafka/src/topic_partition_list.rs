//! [`TopicPartitionList`]: partitions with offsets, metadata and per-partition errors.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Mutex;

use kafka_sdk::TopicPartition;

use crate::error::{KafkaError, KafkaResult, RDKafkaErrorCode};

const OFFSET_BEGINNING: i64 = -2;
const OFFSET_END: i64 = -1;
const OFFSET_STORED: i64 = -1000;
const OFFSET_INVALID: i64 = -1001;
const OFFSET_TAIL_BASE: i64 = -2000;

/// A partition offset, with librdkafka's special values.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum Offset {
    /// The start of the partition.
    Beginning,
    /// The end of the partition.
    End,
    /// The offset stored (committed) for the group.
    Stored,
    /// No offset.
    Invalid,
    /// An absolute offset.
    Offset(i64),
    /// This many messages before the end.
    OffsetTail(i64),
}

impl Offset {
    /// Decodes librdkafka's raw offset number.
    pub fn from_raw(raw: i64) -> Offset {
        match raw {
            OFFSET_BEGINNING => Offset::Beginning,
            OFFSET_END => Offset::End,
            OFFSET_STORED => Offset::Stored,
            OFFSET_INVALID => Offset::Invalid,
            n if n <= OFFSET_TAIL_BASE => Offset::OffsetTail(-(n - OFFSET_TAIL_BASE)),
            n => Offset::Offset(n),
        }
    }

    /// librdkafka's raw number; `None` for a tail that does not fit.
    pub fn to_raw(self) -> Option<i64> {
        match self {
            Offset::Beginning => Some(OFFSET_BEGINNING),
            Offset::End => Some(OFFSET_END),
            Offset::Stored => Some(OFFSET_STORED),
            Offset::Invalid => Some(OFFSET_INVALID),
            Offset::Offset(n) => Some(n),
            Offset::OffsetTail(n) => OFFSET_TAIL_BASE.checked_sub(n),
        }
    }

    /// kafka-sdk's start position; `None` for [`Offset::Invalid`].
    pub(crate) fn to_sdk(self) -> Option<kafka_sdk::Offset> {
        Some(match self {
            Offset::Beginning => kafka_sdk::Offset::Beginning,
            Offset::End => kafka_sdk::Offset::End,
            Offset::Stored => kafka_sdk::Offset::Stored,
            Offset::Invalid => return None,
            Offset::Offset(n) => kafka_sdk::Offset::Offset(n),
            Offset::OffsetTail(n) => kafka_sdk::Offset::OffsetTail(n),
        })
    }
}

struct Entry {
    topic: String,
    partition: i32,
    offset: AtomicI64,
    metadata: Mutex<String>,
    error: Mutex<Option<RDKafkaErrorCode>>,
}

impl Clone for Entry {
    fn clone(&self) -> Entry {
        Entry {
            topic: self.topic.clone(),
            partition: self.partition,
            offset: AtomicI64::new(self.offset.load(Ordering::Relaxed)),
            metadata: Mutex::new(lock(&self.metadata).clone()),
            error: Mutex::new(*lock(&self.error)),
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// One partition of a [`TopicPartitionList`]; its offset and metadata can be changed in
/// place.
pub struct TopicPartitionListElem<'a> {
    entry: &'a Entry,
}

impl TopicPartitionListElem<'_> {
    /// The topic.
    pub fn topic(&self) -> &str {
        &self.entry.topic
    }

    /// The per-partition error of the call that returned the list.
    pub fn error(&self) -> KafkaResult<()> {
        match *lock(&self.entry.error) {
            Some(c) => Err(KafkaError::OffsetFetch(c)),
            None => Ok(()),
        }
    }

    /// The partition (`-1` when added with `add_topic_unassigned`).
    pub fn partition(&self) -> i32 {
        self.entry.partition
    }

    /// The offset.
    pub fn offset(&self) -> Offset {
        Offset::from_raw(self.entry.offset.load(Ordering::Relaxed))
    }

    /// Sets the offset.
    pub fn set_offset(&mut self, offset: Offset) -> KafkaResult<()> {
        let raw = offset.to_raw().ok_or(KafkaError::SetPartitionOffset(
            RDKafkaErrorCode::InvalidArgument,
        ))?;
        self.entry.offset.store(raw, Ordering::Relaxed);
        Ok(())
    }

    /// The commit metadata.
    pub fn metadata(&self) -> String {
        lock(&self.entry.metadata).clone()
    }

    /// Sets the commit metadata (kept, not sent: kafka-sdk commits without metadata).
    pub fn set_metadata<M: AsRef<str>>(&mut self, metadata: M) {
        *lock(&self.entry.metadata) = metadata.as_ref().to_string();
    }
}

impl PartialEq for TopicPartitionListElem<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.topic() == other.topic()
            && self.partition() == other.partition()
            && self.offset() == other.offset()
            && self.metadata() == other.metadata()
    }
}

impl fmt::Debug for TopicPartitionListElem<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TopicPartitionListElem")
            .field("topic", &self.topic())
            .field("partition", &self.partition())
            .field("offset", &self.offset())
            .field("metadata", &self.metadata())
            .finish()
    }
}

/// A list of partitions with offsets.
#[derive(Clone, Default)]
pub struct TopicPartitionList {
    entries: Vec<Entry>,
}

impl TopicPartitionList {
    /// An empty list.
    pub fn new() -> TopicPartitionList {
        TopicPartitionList::default()
    }

    /// An empty list with room for `capacity` partitions.
    pub fn with_capacity(capacity: usize) -> TopicPartitionList {
        TopicPartitionList {
            entries: Vec::with_capacity(capacity),
        }
    }

    /// A list from a map of (topic, partition) to offset.
    pub fn from_topic_map(map: &HashMap<(String, i32), Offset>) -> KafkaResult<TopicPartitionList> {
        let mut tpl = TopicPartitionList::with_capacity(map.len());
        for ((t, p), o) in map {
            tpl.add_partition_offset(t, *p, *o)?;
        }
        Ok(tpl)
    }

    /// How many partitions there are.
    pub fn count(&self) -> usize {
        self.entries.len()
    }

    /// The capacity.
    pub fn capacity(&self) -> usize {
        self.entries.capacity()
    }

    /// Adds a topic without a partition (partition `-1`, as for subscriptions).
    pub fn add_topic_unassigned<'a>(&'a mut self, topic: &str) -> TopicPartitionListElem<'a> {
        self.add_partition(topic, -1)
    }

    /// Adds a partition (offset [`Offset::Invalid`]) and returns it.
    pub fn add_partition<'a>(
        &'a mut self,
        topic: &str,
        partition: i32,
    ) -> TopicPartitionListElem<'a> {
        self.entries.push(Entry {
            topic: topic.to_string(),
            partition,
            offset: AtomicI64::new(OFFSET_INVALID),
            metadata: Mutex::new(String::new()),
            error: Mutex::new(None),
        });
        let entry = self.entries.last().expect("just pushed");
        TopicPartitionListElem { entry }
    }

    /// Adds the partitions `start..=stop` of `topic`.
    pub fn add_partition_range(&mut self, topic: &str, start_partition: i32, stop_partition: i32) {
        for p in start_partition..=stop_partition {
            self.add_partition(topic, p);
        }
    }

    /// Sets the offset of a partition already in the list.
    pub fn set_partition_offset(
        &mut self,
        topic: &str,
        partition: i32,
        offset: Offset,
    ) -> KafkaResult<()> {
        match self.find_partition(topic, partition) {
            Some(mut e) => e.set_offset(offset),
            None => Err(KafkaError::SetPartitionOffset(
                RDKafkaErrorCode::UnknownPartition,
            )),
        }
    }

    /// Adds a partition with an offset.
    pub fn add_partition_offset(
        &mut self,
        topic: &str,
        partition: i32,
        offset: Offset,
    ) -> KafkaResult<()> {
        self.add_partition(topic, partition);
        self.set_partition_offset(topic, partition, offset)
    }

    /// The first entry of `topic`/`partition`.
    pub fn find_partition(
        &self,
        topic: &str,
        partition: i32,
    ) -> Option<TopicPartitionListElem<'_>> {
        self.entries
            .iter()
            .find(|e| e.topic == topic && e.partition == partition)
            .map(|entry| TopicPartitionListElem { entry })
    }

    /// Sets every offset.
    pub fn set_all_offsets(&mut self, offset: Offset) -> Result<(), KafkaError> {
        for mut e in self.elements() {
            e.set_offset(offset)?;
        }
        Ok(())
    }

    /// Every entry.
    pub fn elements(&self) -> Vec<TopicPartitionListElem<'_>> {
        self.entries
            .iter()
            .map(|entry| TopicPartitionListElem { entry })
            .collect()
    }

    /// The entries of `topic`.
    pub fn elements_for_topic<'a>(&'a self, topic: &str) -> Vec<TopicPartitionListElem<'a>> {
        self.entries
            .iter()
            .filter(|e| e.topic == topic)
            .map(|entry| TopicPartitionListElem { entry })
            .collect()
    }

    /// The list as a map.
    pub fn to_topic_map(&self) -> HashMap<(String, i32), Offset> {
        self.elements()
            .iter()
            .map(|e| ((e.topic().to_string(), e.partition()), e.offset()))
            .collect()
    }

    pub(crate) fn set_error(&self, topic: &str, partition: i32, code: RDKafkaErrorCode) {
        if let Some(e) = self
            .entries
            .iter()
            .find(|e| e.topic == topic && e.partition == partition)
        {
            *lock(&e.error) = Some(code);
        }
    }

    /// The partitions as kafka-sdk's type (topic-only entries left out).
    pub(crate) fn partitions(&self) -> Vec<TopicPartition> {
        self.entries
            .iter()
            .filter(|e| e.partition >= 0)
            .map(|e| TopicPartition::new(e.topic.as_str(), e.partition))
            .collect()
    }

    /// (partition, offset) pairs.
    pub(crate) fn with_offsets(&self) -> Vec<(TopicPartition, Offset)> {
        self.elements()
            .iter()
            .filter(|e| e.partition() >= 0)
            .map(|e| (TopicPartition::new(e.topic(), e.partition()), e.offset()))
            .collect()
    }

    pub(crate) fn from_partitions<'a>(
        parts: impl IntoIterator<Item = &'a TopicPartition>,
    ) -> TopicPartitionList {
        let mut tpl = TopicPartitionList::new();
        for tp in parts {
            tpl.add_partition(&tp.topic, tp.partition);
        }
        tpl
    }

    pub(crate) fn from_offsets(
        parts: impl IntoIterator<Item = (TopicPartition, Offset)>,
    ) -> TopicPartitionList {
        let mut tpl = TopicPartitionList::new();
        for (tp, o) in parts {
            let mut e = tpl.add_partition(&tp.topic, tp.partition);
            let _ = e.set_offset(o);
        }
        tpl
    }
}

impl PartialEq for TopicPartitionList {
    fn eq(&self, other: &TopicPartitionList) -> bool {
        self.count() == other.count()
            && self
                .elements()
                .iter()
                .zip(other.elements().iter())
                .all(|(a, b)| a == b)
    }
}

impl FromIterator<(String, i32, Offset)> for TopicPartitionList {
    fn from_iter<I: IntoIterator<Item = (String, i32, Offset)>>(iter: I) -> Self {
        let mut tpl = TopicPartitionList::new();
        for (t, p, o) in iter {
            let mut e = tpl.add_partition(&t, p);
            let _ = e.set_offset(o);
        }
        tpl
    }
}

impl FromIterator<((String, i32), Offset)> for TopicPartitionList {
    fn from_iter<I: IntoIterator<Item = ((String, i32), Offset)>>(iter: I) -> Self {
        iter.into_iter().map(|((t, p), o)| (t, p, o)).collect()
    }
}

impl fmt::Debug for TopicPartitionList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.elements()).finish()
    }
}

impl TopicPartitionList {
    /// Sets every offset through a shared reference (offsets are atomics).
    pub(crate) fn set_all_offsets_quiet(&self, offset: Offset) {
        if let Some(raw) = offset.to_raw() {
            for e in &self.entries {
                e.offset.store(raw, Ordering::Relaxed);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_offsets() {
        for o in [
            Offset::Beginning,
            Offset::End,
            Offset::Stored,
            Offset::Invalid,
            Offset::Offset(7),
            Offset::OffsetTail(3),
        ] {
            assert_eq!(Offset::from_raw(o.to_raw().unwrap()), o);
        }
    }

    #[test]
    fn add_find_set() {
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_range("t", 0, 2);
        tpl.set_partition_offset("t", 1, Offset::Offset(9)).unwrap();
        assert_eq!(tpl.count(), 3);
        assert_eq!(
            tpl.find_partition("t", 1).unwrap().offset(),
            Offset::Offset(9)
        );
        assert_eq!(
            tpl.find_partition("t", 0).unwrap().offset(),
            Offset::Invalid
        );
        assert!(tpl.set_partition_offset("t", 5, Offset::End).is_err());
        let copy = tpl.clone();
        assert_eq!(copy, tpl);
        tpl.set_all_offsets(Offset::Beginning).unwrap();
        assert_ne!(copy, tpl);
        assert_eq!(tpl.to_topic_map().len(), 3);
    }
}
