//! The `roundrobin` assignor (Java `RoundRobinAssignor`).

use std::collections::BTreeMap;

use super::{
    empty_assignments, members_in_java_order, subscribed_topic_counts, Assignment, Assignor,
    MemberInfo,
};
use crate::error::Result;
use crate::TopicPartition;

/// Deals all partitions out one at a time over all members.
///
/// All partitions of all subscribed topics are laid out sorted by topic, then partition; the
/// members are ordered like Java's `MemberInfo` (static members by `group.instance.id` first,
/// then dynamic members by member id). A single cursor cycles over the members for the whole
/// list, skipping members not subscribed to the current partition's topic. With identical
/// subscriptions member counts differ by at most one. Eager, with no subscription user data
/// (the [`Assignor`] defaults).
#[derive(Debug, Clone, Copy, Default)]
pub struct RoundRobinAssignor;

impl Assignor for RoundRobinAssignor {
    fn name(&self) -> &'static str {
        "roundrobin"
    }

    fn assign(
        &self,
        partitions_per_topic: &BTreeMap<String, i32>,
        members: &[MemberInfo],
    ) -> Result<BTreeMap<String, Assignment>> {
        let mut out = empty_assignments(members)?;
        let sorted = members_in_java_order(members);

        // Topic names are ASCII in Kafka, so BTreeMap order equals Java's TreeSet order.
        let topics = subscribed_topic_counts(partitions_per_topic, members);
        let mut cursor = 0usize;
        for (topic, count) in topics {
            let topic: std::sync::Arc<str> = topic.into();
            for partition in 0..count {
                // Some member subscribes to `topic` (it came from the subscriptions), so this
                // finds one within one full turn.
                while !sorted[cursor]
                    .subscription
                    .topics
                    .iter()
                    .any(|t| **t == *topic)
                {
                    cursor = (cursor + 1) % sorted.len();
                }
                let a = out
                    .get_mut(&sorted[cursor].member_id)
                    .expect("every member has an entry");
                a.partitions.push(TopicPartition {
                    topic: topic.clone(),
                    partition,
                });
                cursor = (cursor + 1) % sorted.len();
            }
        }
        Ok(out)
    }
}
