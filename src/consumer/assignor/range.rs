//! The `range` assignor (Java `RangeAssignor`).

use std::collections::BTreeMap;

use super::{
    empty_assignments, members_in_java_order, sort_partitions, subscribed_topic_counts, Assignment,
    Assignor, MemberInfo,
};
use crate::error::Result;
use crate::TopicPartition;

/// Per topic, splits the partitions into contiguous ranges over the members subscribed to it.
///
/// For each topic the subscribed members are ordered like Java's `MemberInfo`: static members
/// (with a `group.instance.id`) first, by instance id, then dynamic members by member id. With
/// `n` partitions and `m` members every member gets `n / m` partitions and the first `n % m`
/// one more, in partition order. Example: 10 partitions over 3 members gives `0..=3`, `4..=6`,
/// `7..=9`.
///
/// Eager, with no subscription user data (the [`Assignor`] defaults). Racks are ignored (see
/// the [module docs](super)).
#[derive(Debug, Clone, Copy, Default)]
pub struct RangeAssignor;

impl Assignor for RangeAssignor {
    fn name(&self) -> &'static str {
        "range"
    }

    fn assign(
        &self,
        partitions_per_topic: &BTreeMap<String, i32>,
        members: &[MemberInfo],
    ) -> Result<BTreeMap<String, Assignment>> {
        let mut out = empty_assignments(members)?;
        let sorted = members_in_java_order(members);

        for (topic, count) in subscribed_topic_counts(partitions_per_topic, members) {
            let consumers: Vec<&MemberInfo> = sorted
                .iter()
                .copied()
                .filter(|m| m.subscription.topics.iter().any(|t| t == topic))
                .collect();
            if consumers.is_empty() {
                continue;
            }
            let topic: std::sync::Arc<str> = topic.into();
            let m = consumers.len();
            let n = count as usize;
            let (per, extra) = (n / m, n % m);
            for (i, member) in consumers.iter().enumerate() {
                let start = per * i + i.min(extra);
                let len = per + usize::from(i < extra);
                let a = out
                    .get_mut(&member.member_id)
                    .expect("every member has an entry");
                a.partitions
                    .extend((start..start + len).map(|p| TopicPartition {
                        topic: topic.clone(),
                        partition: p as i32,
                    }));
            }
        }
        sort_partitions(&mut out);
        Ok(out)
    }
}
