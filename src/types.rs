//! Small value types shared by every client (and by the consumer and the transactional
//! producer: [`ConsumerGroupMetadata`]).

use std::fmt;
use std::sync::Arc;

/// A topic name and a partition index. Ordered by topic name, then partition.
#[derive(Clone, Eq)]
pub struct TopicPartition {
    /// Topic name (cheap to clone).
    pub topic: Arc<str>,
    /// Partition index.
    pub partition: i32,
}

impl TopicPartition {
    /// Creates a topic-partition.
    pub fn new(topic: impl Into<Arc<str>>, partition: i32) -> Self {
        TopicPartition {
            topic: topic.into(),
            partition,
        }
    }
}

// Keys of one topic that share the name's allocation compare without reading the names
// (a consumer looks its partition up by key for every message it delivers).
impl PartialEq for TopicPartition {
    fn eq(&self, other: &Self) -> bool {
        self.partition == other.partition
            && (Arc::ptr_eq(&self.topic, &other.topic) || self.topic == other.topic)
    }
}

impl Ord for TopicPartition {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        let topic = if Arc::ptr_eq(&self.topic, &other.topic) {
            std::cmp::Ordering::Equal
        } else {
            self.topic.cmp(&other.topic)
        };
        topic.then(self.partition.cmp(&other.partition))
    }
}

impl std::hash::Hash for TopicPartition {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.topic.hash(state);
        self.partition.hash(state);
    }
}

impl PartialOrd for TopicPartition {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Debug for TopicPartition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.topic, self.partition)
    }
}

impl fmt::Display for TopicPartition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.topic, self.partition)
    }
}

/// The consumer group state that goes with offsets sent to a transaction (KIP-447): the
/// group coordinator refuses the offsets of a member that is no longer part of the group's
/// current generation, which fences zombie instances of a consume-transform-produce loop.
///
/// Shared by both clients: the consumer hands it out
/// ([`ConsumerHandle::group_metadata`](crate::consumer::ConsumerHandle::group_metadata)) and
/// the transactional producer sends it
/// ([`Producer::send_offsets_to_transaction`](crate::producer::Producer::send_offsets_to_transaction)),
/// so neither depends on the other. Also exported as `kafka_sdk::producer::ConsumerGroupMetadata`
/// and `kafka_sdk::consumer::ConsumerGroupMetadata`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerGroupMetadata {
    /// The consumer group id.
    pub group_id: String,
    /// The member's generation (-1: unknown; the coordinator then does not check it).
    pub generation_id: i32,
    /// The member id ("" : unknown).
    pub member_id: String,
    /// The static member id (`group.instance.id`), if any.
    pub group_instance_id: Option<String>,
}

impl ConsumerGroupMetadata {
    /// Metadata with only the group id (no generation or member fencing; KIP-98 style).
    pub fn new(group_id: impl Into<String>) -> Self {
        ConsumerGroupMetadata {
            group_id: group_id.into(),
            generation_id: -1,
            member_id: String::new(),
            group_instance_id: None,
        }
    }
}

/// Checks a topic name against Kafka's rules: 1 to 249 characters from `[a-zA-Z0-9._-]`,
/// and not `.` or `..`.
pub fn validate_topic_name(name: &str) -> crate::Result<()> {
    let bad = |why: &str| {
        Err(crate::Error::InvalidArgument(format!(
            "invalid topic name `{name}`: {why}"
        )))
    };
    if name.is_empty() {
        return bad("it is empty");
    }
    if name == "." || name == ".." {
        return bad("`.` and `..` are not allowed");
    }
    if name.len() > 249 {
        return bad(&format!("{} characters, the maximum is 249", name.len()));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return bad(&format!(
            "character {c:?} is not allowed (only ASCII letters, digits, '.', '_' and '-')"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_names() {
        assert!(validate_topic_name("orders.v1_A-b").is_ok());
        for bad in ["", ".", "..", "a b", "ü", "a/b", &"x".repeat(250)] {
            let e = validate_topic_name(bad).unwrap_err().to_string();
            assert!(e.contains("invalid topic name"), "{e}");
        }
        assert!(validate_topic_name(&"x".repeat(249)).is_ok());
    }

    /// Equality and order are the names' and partitions', whether or not two keys share the
    /// name's allocation.
    #[test]
    fn topic_partition_order_is_by_name_then_partition() {
        use std::collections::hash_map::DefaultHasher;
        use std::hash::{Hash, Hasher};
        let shared: Arc<str> = Arc::from("b");
        let keys = [
            TopicPartition::new("a", 1),
            TopicPartition::new("ab", 0),
            TopicPartition::new("b", 0),
            TopicPartition {
                topic: shared.clone(),
                partition: 0,
            },
            TopicPartition {
                topic: shared.clone(),
                partition: 2,
            },
            TopicPartition::new("b", 2),
            TopicPartition::new("b", -1),
        ];
        let hash = |k: &TopicPartition| {
            let mut h = DefaultHasher::new();
            k.hash(&mut h);
            h.finish()
        };
        for x in &keys {
            for y in &keys {
                let by_value = (&*x.topic, x.partition).cmp(&(&*y.topic, y.partition));
                assert_eq!(x.cmp(y), by_value, "{x} vs {y}");
                assert_eq!(x.partial_cmp(y), Some(by_value));
                assert_eq!(x == y, by_value.is_eq());
                if x == y {
                    assert_eq!(hash(x), hash(y));
                }
            }
        }
    }
}
