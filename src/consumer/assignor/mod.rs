//! Consumer-group partition assignors, wire-compatible with the Java consumer.
//!
//! In the classic group protocol the broker only relays opaque bytes: every member sends a
//! [`Subscription`] in JoinGroup, the elected leader runs an [`Assignor`] over all of them and
//! sends one [`Assignment`] per member in SyncGroup. Mixed groups (kafka-sdk and Java consumers)
//! therefore need the same byte format ([`protocol`](self::Subscription::encode), the Java
//! `ConsumerProtocol`) and the same assignment rules, whichever member happens to lead.
//!
//! The built-in assignors carry the Java protocol names:
//!
//! | name                 | Java class                                                 | protocol    |
//! |----------------------|------------------------------------------------------------|-------------|
//! | `range`              | `org.apache.kafka.clients.consumer.RangeAssignor`          | eager       |
//! | `roundrobin`         | `org.apache.kafka.clients.consumer.RoundRobinAssignor`     | eager       |
//! | `sticky`             | `org.apache.kafka.clients.consumer.StickyAssignor`         | eager       |
//! | `cooperative-sticky` | `org.apache.kafka.clients.consumer.CooperativeStickyAssignor` | cooperative |
//!
//! Rack-aware assignment (KIP-881) is not implemented: it needs the replica racks of every
//! partition, which [`Assignor::assign`] does not receive. Java falls back to the same
//! non-rack-aware logic whenever partition racks are unknown, so the results agree with a Java
//! leader that has no replica rack information.

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use bytes::Bytes;

use crate::config::AssignmentStrategy;
use crate::error::Result;
use crate::TopicPartition;

mod protocol;
mod range;
mod roundrobin;
mod sticky;

pub use range::RangeAssignor;
pub use roundrobin::RoundRobinAssignor;
pub use sticky::{CooperativeStickyAssignor, StickyAssignor};

/// The rebalance protocol an assignor is written for (Java `RebalanceProtocol`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RebalanceProtocol {
    /// Every member revokes all its partitions before rejoining (range, roundrobin, sticky).
    Eager,
    /// Members keep their partitions across a rebalance and revoke only those taken away
    /// (KIP-429); a moved partition is assigned to its new owner in a follow-up rebalance.
    Cooperative,
}

/// What a member sends in JoinGroup (Java `ConsumerPartitionAssignor.Subscription`, encoded as
/// `ConsumerProtocolSubscription` v0..=3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    /// The topics the member subscribes to.
    pub topics: Vec<String>,
    /// Assignor-specific opaque data (see [`Assignor::subscription_user_data`]).
    pub user_data: Option<Bytes>,
    /// The partitions the member owns when it joins (v1+; always empty for eager members, which
    /// revoke everything before rejoining).
    pub owned_partitions: Vec<TopicPartition>,
    /// The generation the member last took part in; `-1` if unknown (v2+).
    pub generation_id: i32,
    /// The member's `client.rack` (v3+). Decoding maps an empty rack to `None`, like Java.
    pub rack_id: Option<String>,
}

impl Subscription {
    /// A subscription to `topics` with no user data, no owned partitions, generation `-1`
    /// and no rack.
    pub fn new(topics: Vec<String>) -> Self {
        Subscription {
            topics,
            user_data: None,
            owned_partitions: Vec::new(),
            generation_id: -1,
            rack_id: None,
        }
    }
}

impl Default for Subscription {
    fn default() -> Self {
        Subscription::new(Vec::new())
    }
}

/// What the leader hands each member in SyncGroup (Java `ConsumerPartitionAssignor.Assignment`,
/// encoded as `ConsumerProtocolAssignment`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Assignment {
    /// The partitions assigned to the member.
    pub partitions: Vec<TopicPartition>,
    /// Assignor-specific opaque data (`None` for all built-in assignors).
    pub user_data: Option<Bytes>,
}

/// One group member as seen by the leader.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberInfo {
    /// The member id the coordinator gave the member.
    pub member_id: String,
    /// The member's `group.instance.id` (static membership), if any.
    pub group_instance_id: Option<String>,
    /// The member's decoded subscription.
    pub subscription: Subscription,
}

/// A partition assignment strategy (Java `ConsumerPartitionAssignor`).
pub trait Assignor: Send + Sync + fmt::Debug {
    /// The protocol name sent in JoinGroup, e.g. `range` (identical to Java's).
    fn name(&self) -> &'static str;

    /// The rebalance protocol this assignor is meant for. Default: [`RebalanceProtocol::Eager`]
    /// (as in Java).
    fn protocol(&self) -> RebalanceProtocol {
        RebalanceProtocol::Eager
    }

    /// The user data this member puts in its [`Subscription`], given the partitions it owned
    /// after its last assignment and the generation of that assignment (`-1` if none).
    ///
    /// `sticky` encodes its previous assignment and generation in Java's StickyAssignor format,
    /// `cooperative-sticky` the generation as a 4-byte big-endian integer; `range` and
    /// `roundrobin` keep the default, `None` (no user data, as in Java).
    fn subscription_user_data(&self, owned: &[TopicPartition], generation: i32) -> Option<Bytes> {
        let _ = (owned, generation);
        None
    }

    /// Leader side: computes every member's assignment.
    ///
    /// `partitions_per_topic` holds the partition counts of the subscribed topics that exist
    /// (topics nobody subscribes to and counts `<= 0` are ignored). Every member gets an entry,
    /// possibly empty. The result is deterministic for equal input, and each member's partitions
    /// are sorted by topic, then partition. Fails with [`Error::InvalidArgument`] if two members
    /// share a member id.
    ///
    /// [`Error::InvalidArgument`]: crate::error::Error::InvalidArgument
    fn assign(
        &self,
        partitions_per_topic: &BTreeMap<String, i32>,
        members: &[MemberInfo],
    ) -> Result<BTreeMap<String, Assignment>>;
}

/// The built-in assignor of a `partition.assignment.strategy` value.
pub fn assignor(strategy: AssignmentStrategy) -> Arc<dyn Assignor> {
    match strategy {
        AssignmentStrategy::Range => Arc::new(RangeAssignor),
        AssignmentStrategy::RoundRobin => Arc::new(RoundRobinAssignor),
        AssignmentStrategy::Sticky => Arc::new(StickyAssignor),
        AssignmentStrategy::CooperativeSticky => Arc::new(CooperativeStickyAssignor),
    }
}

/// Looks an assignor up by any spelling `partition.assignment.strategy` accepts: its protocol
/// name (`range`, `roundrobin`, `sticky`, `cooperative-sticky`) or its Java class name
/// (`org.apache.kafka.clients.consumer.RangeAssignor`, ...), case-sensitive as in Java.
pub fn assignor_by_name(name: &str) -> Option<Arc<dyn Assignor>> {
    name.parse().ok().map(assignor)
}

/// Java's `String.compareTo`: lexicographic over UTF-16 code units. Differs from Rust's `str`
/// ordering only between supplementary characters and `U+E000..=U+FFFF`.
pub(crate) fn java_cmp(a: &str, b: &str) -> Ordering {
    if a.is_ascii() && b.is_ascii() {
        return a.cmp(b);
    }
    a.encode_utf16().cmp(b.encode_utf16())
}

/// Java's `AbstractPartitionAssignor.MemberInfo` ordering, used by range and roundrobin:
/// static members (with a `group.instance.id`) first, by instance id; then dynamic members by
/// member id. Ties between equal instance ids are broken by member id (Java leaves them in
/// hash-map order).
pub(crate) fn member_order(a: &MemberInfo, b: &MemberInfo) -> Ordering {
    let by_instance = match (&a.group_instance_id, &b.group_instance_id) {
        (Some(x), Some(y)) => java_cmp(x, y),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => Ordering::Equal,
    };
    by_instance.then_with(|| java_cmp(&a.member_id, &b.member_id))
}

/// The members in [`member_order`] (range and roundrobin hand partitions out in this order).
pub(crate) fn members_in_java_order(members: &[MemberInfo]) -> Vec<&MemberInfo> {
    let mut sorted: Vec<&MemberInfo> = members.iter().collect();
    sorted.sort_by(|a, b| member_order(a, b));
    sorted
}

/// Fails on duplicate member ids and returns an empty assignment for every member.
pub(crate) fn empty_assignments(members: &[MemberInfo]) -> Result<BTreeMap<String, Assignment>> {
    let mut out = BTreeMap::new();
    for m in members {
        if out
            .insert(m.member_id.clone(), Assignment::default())
            .is_some()
        {
            return Err(crate::error::Error::InvalidArgument(format!(
                "duplicate member id `{}` in group assignment input",
                m.member_id
            )));
        }
    }
    Ok(out)
}

/// The partition counts of the topics that some member subscribes to and that exist
/// (count > 0).
pub(crate) fn subscribed_topic_counts<'a>(
    partitions_per_topic: &'a BTreeMap<String, i32>,
    members: &[MemberInfo],
) -> BTreeMap<&'a str, i32> {
    let mut out = BTreeMap::new();
    for m in members {
        for t in &m.subscription.topics {
            if let Some((name, &n)) = partitions_per_topic.get_key_value(t.as_str()) {
                if n > 0 {
                    out.insert(name.as_str(), n);
                }
            }
        }
    }
    out
}

/// Sorts every member's partitions by topic, then partition.
pub(crate) fn sort_partitions(assignments: &mut BTreeMap<String, Assignment>) {
    for a in assignments.values_mut() {
        a.partitions.sort();
    }
}

#[cfg(test)]
mod tests;
