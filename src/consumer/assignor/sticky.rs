//! The sticky assignors: `sticky` (Java `StickyAssignor`, eager) and `cooperative-sticky`
//! (Java `CooperativeStickyAssignor`, KIP-429), sharing one algorithm (Java
//! `AbstractStickyAssignor`).
//!
//! # Algorithm (as in Java's `AbstractStickyAssignor`)
//!
//! 1. **Previous ownership.** Each member's claimed partitions and generation come from its
//!    member data (see each assignor). Claims of topics that are not subscribed or do not exist
//!    are dropped. When several members claim a partition, the claim with the highest
//!    generation wins; if the highest generation is claimed more than once, nobody keeps the
//!    partition (Java logs "claiming the same TopicPartition in the same generation").
//! 2. **All members subscribe to the same topics** (Java `ConstrainedAssignmentBuilder`):
//!    with `minQuota = floor(P / N)`, `maxQuota = ceil(P / N)` and `P % N` members allowed
//!    `maxQuota`, every member keeps up to its quota of its previous partitions (lowest
//!    partition numbers first), the rest is revoked, and the free partitions (sorted by topic,
//!    partition) are dealt round-robin to the members under `minQuota` (by member id), then one
//!    each to members at `minQuota` until `P % N` members have `maxQuota`.
//! 3. **Otherwise** (Java `GeneralAssignmentBuilder`): previous partitions stay with their
//!    owners; free partitions, topics with the fewest potential consumers first, go each to the
//!    least-loaded subscribed member; then partitions are moved from members that have at least
//!    two more than another potential consumer, preferring to move a partition back to its
//!    previous-generation owner, until no move improves balance; if the moves did not lower
//!    the balance score the pre-move assignment is kept.
//!
//! Java iterates hash maps in a few places where the order decides ties (which over-quota
//! member keeps `maxQuota`, which member is visited first); this implementation always visits
//! members in member-id order, so with such ties the choice may differ from a Java leader's
//! while the guarantees (coverage, balance, stickiness) are the same.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};

use super::protocol::Reader;
use super::{
    empty_assignments, java_cmp, sort_partitions, subscribed_topic_counts, Assignment, Assignor,
    MemberInfo, RebalanceProtocol, Subscription,
};
use crate::error::{Error, Result};
use crate::TopicPartition;

/// Java `AbstractStickyAssignor.DEFAULT_GENERATION`.
const DEFAULT_GENERATION: i32 = -1;

/// A member's previous partitions and generation, as the assignor reads them from its
/// subscription (Java `AbstractStickyAssignor.MemberData`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MemberData {
    pub(crate) partitions: Vec<TopicPartition>,
    pub(crate) generation: Option<i32>,
}

// ---------------------------------------------------------------------------------------------
// The two assignors.

/// The eager sticky assignor (Java `StickyAssignor`, protocol name `sticky`).
///
/// Balanced like `roundrobin`, but partitions stay with their previous owner whenever balance
/// allows. Eager members revoke everything before rejoining, so the previous assignment
/// travels in the subscription's user data, in Java's StickyAssignor format:
///
/// ```text
/// previous_assignment:[topic:string partitions:[i32]] generation:i32
/// ```
///
/// (the older form without `generation` is read too). When a member sends no user data its
/// `owned_partitions` and `generation_id` are used instead; Java always reads the user data,
/// but Java eager members never send owned partitions, so the results agree.
#[derive(Debug, Clone, Copy, Default)]
pub struct StickyAssignor;

/// The cooperative sticky assignor (Java `CooperativeStickyAssignor`, protocol name
/// `cooperative-sticky`, KIP-429).
///
/// Computes the same sticky target as [`StickyAssignor`], from the members'
/// `owned_partitions` and generation (the subscription's `generation_id` when `>= 0`,
/// otherwise the 4-byte big-endian generation in the user data). Then every partition that
/// would move from its current owner to another member is left out of this round's assignment
/// (assigned to nobody): the owner sees it missing, revokes it and rejoins, and the next
/// rebalance, in which nobody owns it any more, assigns it to its new member.
///
/// Java does this withholding inside `CooperativeStickyAssignor.assign` (the leader's
/// `ConsumerCoordinator` skips its cooperative validation for this assignor), so it is done
/// here in [`Assignor::assign`] as well.
#[derive(Debug, Clone, Copy, Default)]
pub struct CooperativeStickyAssignor;

impl StickyAssignor {
    /// The member data Java's `StickyAssignor` reads: the user data when present.
    pub(crate) fn member_data(sub: &Subscription) -> MemberData {
        match &sub.user_data {
            Some(b) if !b.is_empty() => decode_sticky_user_data(b),
            _ => MemberData {
                partitions: sub.owned_partitions.clone(),
                generation: (sub.generation_id >= 0).then_some(sub.generation_id),
            },
        }
    }
}

impl CooperativeStickyAssignor {
    /// The member data Java's `CooperativeStickyAssignor` reads.
    pub(crate) fn member_data(sub: &Subscription) -> MemberData {
        let generation = if sub.generation_id >= 0 {
            Some(sub.generation_id)
        } else {
            sub.user_data.as_ref().map(|b| match b.get(..4) {
                Some(g) => i32::from_be_bytes([g[0], g[1], g[2], g[3]]),
                None => DEFAULT_GENERATION,
            })
        };
        MemberData {
            partitions: sub.owned_partitions.clone(),
            generation,
        }
    }
}

impl Assignor for StickyAssignor {
    fn name(&self) -> &'static str {
        "sticky"
    }

    fn protocol(&self) -> RebalanceProtocol {
        RebalanceProtocol::Eager
    }

    /// Java's StickyAssignor user data (previous assignment + generation); `None` before the
    /// member's first assignment (`owned` empty and `generation < 0`), as in Java.
    fn subscription_user_data(&self, owned: &[TopicPartition], generation: i32) -> Option<Bytes> {
        if owned.is_empty() && generation < 0 {
            return None;
        }
        Some(encode_sticky_user_data(owned, generation))
    }

    fn assign(
        &self,
        partitions_per_topic: &BTreeMap<String, i32>,
        members: &[MemberInfo],
    ) -> Result<BTreeMap<String, Assignment>> {
        let outcome = sticky_assign(partitions_per_topic, members, StickyAssignor::member_data)?;
        Ok(outcome.into_assignments())
    }
}

impl Assignor for CooperativeStickyAssignor {
    fn name(&self) -> &'static str {
        "cooperative-sticky"
    }

    fn protocol(&self) -> RebalanceProtocol {
        RebalanceProtocol::Cooperative
    }

    /// The generation as a 4-byte big-endian integer (Java's
    /// `COOPERATIVE_STICKY_ASSIGNOR_USER_DATA_V0`); `owned` travels in `owned_partitions`.
    fn subscription_user_data(&self, _owned: &[TopicPartition], generation: i32) -> Option<Bytes> {
        Some(Bytes::copy_from_slice(&generation.to_be_bytes()))
    }

    fn assign(
        &self,
        partitions_per_topic: &BTreeMap<String, i32>,
        members: &[MemberInfo],
    ) -> Result<BTreeMap<String, Assignment>> {
        let outcome = sticky_assign(
            partitions_per_topic,
            members,
            CooperativeStickyAssignor::member_data,
        )?;
        let transferring = match &outcome.transferring {
            Some(t) => t.clone(),
            None => outcome.transfers_from_owned_partitions(),
        };
        let mut assignments = outcome.into_assignments();
        for (tp, member) in transferring {
            if let Some(a) = assignments.get_mut(&member) {
                a.partitions.retain(|p| *p != tp);
            }
        }
        Ok(assignments)
    }
}

// ---------------------------------------------------------------------------------------------
// StickyAssignor user data.

/// Encodes Java's `STICKY_ASSIGNOR_USER_DATA_V1`: the partitions grouped by topic (sorted),
/// then the generation.
pub(crate) fn encode_sticky_user_data(partitions: &[TopicPartition], generation: i32) -> Bytes {
    let mut sorted: Vec<&TopicPartition> = partitions.iter().collect();
    sorted.sort_by(|a, b| java_cmp(&a.topic, &b.topic).then(a.partition.cmp(&b.partition)));
    sorted.dedup();
    let mut buf = BytesMut::with_capacity(16 + 8 * sorted.len());
    super::protocol::put_topic_partitions(&mut buf, sorted.into_iter());
    buf.put_i32(generation);
    buf.freeze()
}

/// Decodes Java's StickyAssignor user data: the V1 layout (with generation), else the V0
/// layout (without), else — like Java — no previous partitions and generation `-1`.
pub(crate) fn decode_sticky_user_data(bytes: &[u8]) -> MemberData {
    let mut r = Reader::new(bytes, "sticky assignor user data");
    if let Ok(partitions) = r.topic_partitions() {
        if let Ok(generation) = r.i32() {
            return MemberData {
                partitions,
                generation: Some(generation),
            };
        }
        return MemberData {
            partitions,
            generation: None,
        };
    }
    MemberData {
        partitions: Vec::new(),
        generation: Some(DEFAULT_GENERATION),
    }
}

// ---------------------------------------------------------------------------------------------
// The shared algorithm.

/// The result of the shared sticky algorithm, before any cooperative adjustment.
struct Outcome<'a> {
    /// Members in member-id order.
    members: Vec<&'a MemberInfo>,
    /// Each member's partitions (indexed like `members`).
    assignment: Vec<Vec<TopicPartition>>,
    /// Partitions given to a member other than their previous owner, with that member, when
    /// the constrained algorithm ran (Java `partitionsTransferringOwnership`); `None` after the
    /// general algorithm, where they are derived from `owned_partitions`.
    transferring: Option<BTreeMap<TopicPartition, String>>,
}

impl Outcome<'_> {
    fn into_assignments(self) -> BTreeMap<String, Assignment> {
        let mut out: BTreeMap<String, Assignment> = self
            .members
            .iter()
            .zip(self.assignment)
            .map(|(m, partitions)| {
                (
                    m.member_id.clone(),
                    Assignment {
                        partitions,
                        user_data: None,
                    },
                )
            })
            .collect();
        sort_partitions(&mut out);
        out
    }

    /// Java `CooperativeStickyAssignor.computePartitionsTransferringOwnership`: partitions
    /// newly assigned to a member that some other member reported owning (and loses).
    fn transfers_from_owned_partitions(&self) -> BTreeMap<TopicPartition, String> {
        let mut added: BTreeMap<TopicPartition, String> = BTreeMap::new();
        let mut revoked: HashSet<&TopicPartition> = HashSet::new();
        for (m, assigned) in self.members.iter().zip(&self.assignment) {
            let owned: HashSet<&TopicPartition> = m.subscription.owned_partitions.iter().collect();
            let assigned_set: HashSet<&TopicPartition> = assigned.iter().collect();
            for tp in assigned {
                if !owned.contains(tp) {
                    added.insert(tp.clone(), m.member_id.clone());
                }
            }
            for tp in &m.subscription.owned_partitions {
                if !assigned_set.contains(tp) {
                    revoked.insert(tp);
                }
            }
        }
        added.retain(|tp, _| revoked.contains(tp));
        added
    }
}

/// Runs the shared sticky algorithm (Java `AbstractStickyAssignor.assignPartitions`).
fn sticky_assign<'a>(
    partitions_per_topic: &BTreeMap<String, i32>,
    members: &'a [MemberInfo],
    member_data: fn(&Subscription) -> MemberData,
) -> Result<Outcome<'a>> {
    empty_assignments(members)?; // rejects duplicate member ids
    let mut sorted: Vec<&MemberInfo> = members.iter().collect();
    sorted.sort_by(|a, b| java_cmp(&a.member_id, &b.member_id));
    let n = sorted.len();

    let topics: BTreeMap<Arc<str>, i32> = subscribed_topic_counts(partitions_per_topic, members)
        .into_iter()
        .map(|(t, c)| (Arc::from(t), c))
        .collect();
    let subscriptions: Vec<BTreeSet<&str>> = sorted
        .iter()
        .map(|m| m.subscription.topics.iter().map(String::as_str).collect())
        .collect();
    let data: Vec<MemberData> = sorted
        .iter()
        .map(|m| member_data(&m.subscription))
        .collect();

    if n == 0 {
        return Ok(Outcome {
            members: sorted,
            assignment: Vec::new(),
            transferring: Some(BTreeMap::new()),
        });
    }

    let ownership = resolve_ownership(&topics, &data);
    let all_equal = subscriptions.windows(2).all(|w| w[0] == w[1]);

    if all_equal {
        let (assignment, transferring) = constrained_assign(&topics, n, &ownership)?;
        let transferring = transferring
            .into_iter()
            .map(|(tp, m)| (tp, sorted[m].member_id.clone()))
            .collect();
        Ok(Outcome {
            members: sorted,
            assignment,
            transferring: Some(transferring),
        })
    } else {
        let assignment = General::new(&topics, &subscriptions, ownership.owned).build(&data);
        Ok(Outcome {
            members: sorted,
            assignment,
            transferring: None,
        })
    }
}

/// Previous ownership after resolving conflicting claims.
struct Ownership {
    /// Each member's valid previous partitions, sorted.
    owned: Vec<Vec<TopicPartition>>,
    /// Partitions claimed by several members of the same (highest) generation: nobody keeps
    /// them, and whoever gets them counts as a new owner.
    multiple_owners: HashSet<TopicPartition>,
}

/// Java `allSubscriptionsEqual`'s ownership bookkeeping, made independent of visiting order:
/// per partition, the unique claim with the highest generation wins; a tie at the highest
/// generation invalidates the partition for everyone.
fn resolve_ownership(topics: &BTreeMap<Arc<str>, i32>, data: &[MemberData]) -> Ownership {
    let mut claims: BTreeMap<TopicPartition, Vec<(i32, usize)>> = BTreeMap::new();
    for (m, d) in data.iter().enumerate() {
        let generation = d.generation.unwrap_or(DEFAULT_GENERATION);
        let mut seen = HashSet::new();
        for tp in &d.partitions {
            let exists = topics
                .get(&*tp.topic)
                .is_some_and(|&count| tp.partition >= 0 && tp.partition < count);
            if exists && seen.insert(tp) {
                claims.entry(tp.clone()).or_default().push((generation, m));
            }
        }
    }
    let mut owned = vec![Vec::new(); data.len()];
    let mut multiple_owners = HashSet::new();
    for (tp, cs) in claims {
        let best = cs.iter().map(|c| c.0).max().expect("at least one claim");
        let mut top = cs.iter().filter(|c| c.0 == best);
        let first = top.next().expect("at least one claim").1;
        if top.next().is_none() {
            owned[first].push(tp);
        } else {
            multiple_owners.insert(tp);
        }
    }
    Ownership {
        owned,
        multiple_owners,
    }
}

/// All partitions of `topics`, sorted by topic then partition.
fn all_partitions(topics: &BTreeMap<Arc<str>, i32>) -> Vec<TopicPartition> {
    topics
        .iter()
        .flat_map(|(t, &c)| (0..c).map(move |p| TopicPartition::new(t.clone(), p)))
        .collect()
}

type TransferMap = BTreeMap<TopicPartition, usize>;

/// Java `ConstrainedAssignmentBuilder` (all members subscribe to the same topics).
fn constrained_assign(
    topics: &BTreeMap<Arc<str>, i32>,
    n: usize,
    ownership: &Ownership,
) -> Result<(Vec<Vec<TopicPartition>>, TransferMap)> {
    let total: usize = topics.values().map(|&c| c as usize).sum();
    let min_quota = total / n;
    let max_quota = total.div_ceil(n);
    let expected_over_min = total % n;
    let mut current_over_min = 0usize;

    let mut assignment: Vec<Vec<TopicPartition>> = vec![Vec::new(); n];
    let mut assigned: HashSet<TopicPartition> = HashSet::new();
    let mut revoked: HashSet<TopicPartition> = HashSet::new();
    let mut under_min: Vec<usize> = Vec::new();
    let mut exactly_min: VecDeque<usize> = VecDeque::new();

    // 1. Keep previously owned partitions up to the quota (lowest partition numbers first).
    for (m, owned) in ownership.owned.iter().enumerate() {
        let mut owned = owned.clone();
        owned.sort_by(|a, b| a.partition.cmp(&b.partition).then(a.topic.cmp(&b.topic)));
        let keep = if owned.len() < min_quota {
            under_min.push(m);
            owned.len()
        } else if owned.len() >= max_quota && current_over_min < expected_over_min {
            current_over_min += 1;
            if current_over_min == expected_over_min {
                exactly_min.clear();
            }
            max_quota
        } else {
            if current_over_min < expected_over_min {
                exactly_min.push_back(m);
            }
            min_quota
        };
        let rest = owned.split_off(keep);
        revoked.extend(rest);
        assigned.extend(owned.iter().cloned());
        assignment[m] = owned;
    }

    // 2. Deal the free partitions round-robin (members are already in member-id order).
    let unassigned: Vec<TopicPartition> = all_partitions(topics)
        .into_iter()
        .filter(|tp| !assigned.contains(tp))
        .collect();
    let mut transferring = TransferMap::new();
    let mut cursor = 0usize;
    for tp in unassigned {
        let (consumer, from_under) = if cursor < under_min.len() {
            cursor += 1;
            (under_min[cursor - 1], true)
        } else if under_min.is_empty() {
            match exactly_min.pop_front() {
                Some(c) => (c, false),
                None => {
                    return Err(Error::State(
                        "sticky assignor: no member left to take a partition".into(),
                    ))
                }
            }
        } else {
            cursor = 1;
            (under_min[0], true)
        };

        if revoked.contains(&tp) || ownership.multiple_owners.contains(&tp) {
            transferring.insert(tp.clone(), consumer);
        }
        assignment[consumer].push(tp);
        let count = assignment[consumer].len();
        if count == min_quota && from_under {
            cursor -= 1;
            under_min.remove(cursor);
            exactly_min.push_back(consumer);
        } else if count == max_quota {
            current_over_min += 1;
        }
    }

    // 3. Java's `verifyUnfilledMembers`.
    if !under_min.is_empty() {
        if current_over_min != expected_over_min {
            return Err(Error::State(
                "sticky assignor: expected members over minQuota not reached".into(),
            ));
        }
        if under_min.iter().any(|&m| assignment[m].len() != min_quota) {
            return Err(Error::State(
                "sticky assignor: a member did not reach minQuota".into(),
            ));
        }
    }
    Ok((assignment, transferring))
}

// ---------------------------------------------------------------------------------------------
// The general algorithm (Java `GeneralAssignmentBuilder`), without rack awareness.

/// Partitions moved per (from, to) pair of members.
type PairMoves = BTreeMap<(usize, usize), BTreeSet<TopicPartition>>;

/// Java `PartitionMovements`: the moves made so far, so that a later move between the same two
/// members in the opposite direction undoes an earlier one instead of creating a cycle.
#[derive(Default)]
struct Movements {
    /// topic -> (from, to) -> partitions moved that way.
    by_topic: HashMap<Arc<str>, PairMoves>,
    /// partition -> (original owner, current owner).
    moves: HashMap<TopicPartition, (usize, usize)>,
}

impl Movements {
    fn remove_record(&mut self, tp: &TopicPartition) -> Option<(usize, usize)> {
        let pair = self.moves.remove(tp)?;
        if let Some(topic_moves) = self.by_topic.get_mut(&tp.topic) {
            if let Some(set) = topic_moves.get_mut(&pair) {
                set.remove(tp);
                if set.is_empty() {
                    topic_moves.remove(&pair);
                }
            }
            if topic_moves.is_empty() {
                self.by_topic.remove(&tp.topic);
            }
        }
        Some(pair)
    }

    fn add_record(&mut self, tp: &TopicPartition, pair: (usize, usize)) {
        self.moves.insert(tp.clone(), pair);
        self.by_topic
            .entry(tp.topic.clone())
            .or_default()
            .entry(pair)
            .or_default()
            .insert(tp.clone());
    }

    fn move_partition(&mut self, tp: &TopicPartition, old: usize, new: usize) {
        match self.remove_record(tp) {
            Some((src, _dst)) => {
                if src != new {
                    self.add_record(tp, (src, new));
                }
            }
            None => self.add_record(tp, (old, new)),
        }
    }

    /// Java `getTheActualPartitionToBeMoved`: if some partition of the same topic moved from
    /// `new` to `old` earlier, move that one back instead.
    fn actual_partition_to_move(
        &self,
        tp: &TopicPartition,
        mut old: usize,
        new: usize,
    ) -> TopicPartition {
        let Some(topic_moves) = self.by_topic.get(&tp.topic) else {
            return tp.clone();
        };
        if let Some(&(src, _)) = self.moves.get(tp) {
            old = src;
        }
        match topic_moves.get(&(new, old)).and_then(|s| s.iter().next()) {
            Some(other) => other.clone(),
            None => tp.clone(),
        }
    }
}

struct General<'a> {
    topics: &'a BTreeMap<Arc<str>, i32>,
    /// Potential consumers per topic, in member order.
    topic_consumers: BTreeMap<Arc<str>, Vec<usize>>,
    /// Existing subscribed topics per member.
    consumer_topics: Vec<Vec<Arc<str>>>,
    subscriptions: &'a [BTreeSet<&'a str>],
    current: Vec<Vec<TopicPartition>>,
    owner: HashMap<TopicPartition, usize>,
    /// Participating members ordered by (number of partitions, member order): Java's
    /// `sortedCurrentSubscriptions`.
    sorted: BTreeSet<(usize, usize)>,
    active: Vec<bool>,
    movements: Movements,
    revocation_required: bool,
}

impl<'a> General<'a> {
    fn new(
        topics: &'a BTreeMap<Arc<str>, i32>,
        subscriptions: &'a [BTreeSet<&'a str>],
        owned: Vec<Vec<TopicPartition>>,
    ) -> Self {
        let n = subscriptions.len();
        let mut topic_consumers: BTreeMap<Arc<str>, Vec<usize>> =
            topics.keys().map(|t| (t.clone(), Vec::new())).collect();
        let mut consumer_topics = vec![Vec::new(); n];
        for (m, subs) in subscriptions.iter().enumerate() {
            for t in subs {
                if let Some((topic, _)) = topics.get_key_value(*t) {
                    consumer_topics[m].push(topic.clone());
                    topic_consumers.get_mut(*t).expect("known topic").push(m);
                }
            }
        }
        let mut owner = HashMap::new();
        for (m, parts) in owned.iter().enumerate() {
            for tp in parts {
                owner.insert(tp.clone(), m);
            }
        }
        General {
            topics,
            topic_consumers,
            consumer_topics,
            subscriptions,
            current: owned,
            owner,
            sorted: BTreeSet::new(),
            active: vec![true; n],
            movements: Movements::default(),
            revocation_required: false,
        }
    }

    fn subscribed(&self, m: usize, topic: &str) -> bool {
        self.subscriptions[m].contains(topic)
    }

    fn max_assignment_size(&self, m: usize) -> usize {
        self.consumer_topics[m]
            .iter()
            .map(|t| self.topics[t] as usize)
            .sum()
    }

    fn build(mut self, data: &[MemberData]) -> Vec<Vec<TopicPartition>> {
        let n = self.current.len();
        let max_generation = data
            .iter()
            .map(|d| d.generation.unwrap_or(DEFAULT_GENERATION))
            .max()
            .unwrap_or(DEFAULT_GENERATION);

        // Java `prepopulateCurrentAssignments`: owners from older generations, kept to move a
        // partition back to them when that helps balance.
        let mut prev: HashMap<TopicPartition, (usize, i32)> = HashMap::new();
        for (m, d) in data.iter().enumerate() {
            let generation = match d.generation {
                Some(g) if g < max_generation => g,
                None if max_generation > DEFAULT_GENERATION => DEFAULT_GENERATION,
                _ => continue,
            };
            for tp in &d.partitions {
                match prev.get(tp) {
                    Some(&(_, g)) if generation <= g => {}
                    _ => {
                        prev.insert(tp.clone(), (m, generation));
                    }
                }
            }
        }

        // All partitions, topics with the fewest potential consumers first.
        let mut topic_order: Vec<&Arc<str>> = self.topic_consumers.keys().collect();
        topic_order.sort_by(|a, b| {
            self.topic_consumers[*a]
                .len()
                .cmp(&self.topic_consumers[*b].len())
                .then_with(|| java_cmp(a, b))
        });
        let mut sorted_all: Vec<TopicPartition> = topic_order
            .iter()
            .flat_map(|t| (0..self.topics[*t]).map(|p| TopicPartition::new((*t).clone(), p)))
            .collect();

        // Java `assignOwnedPartitions`: drop owned partitions whose topic the owner no longer
        // subscribes to.
        let mut assigned: HashSet<TopicPartition> = HashSet::new();
        for m in 0..n {
            let mut parts = std::mem::take(&mut self.current[m]);
            parts.retain(|tp| {
                if self.subscribed(m, &tp.topic) {
                    assigned.insert(tp.clone());
                    true
                } else {
                    self.revocation_required = true;
                    self.owner.remove(tp);
                    false
                }
            });
            self.current[m] = parts;
        }
        let mut unassigned: Vec<TopicPartition> = sorted_all
            .iter()
            .filter(|tp| !assigned.contains(*tp))
            .cloned()
            .collect();

        for m in 0..n {
            self.sorted.insert((self.current[m].len(), m));
        }
        self.balance(&prev, &mut sorted_all, &mut unassigned);
        self.current
    }

    /// Java `balance`.
    fn balance(
        &mut self,
        prev: &HashMap<TopicPartition, (usize, i32)>,
        sorted_all: &mut Vec<TopicPartition>,
        unassigned: &mut Vec<TopicPartition>,
    ) {
        let initializing = self.sorted.last().is_none_or(|&(len, _)| len == 0);

        // Give every free partition to the least-loaded member subscribed to its topic.
        for tp in unassigned.iter() {
            if let Some(m) = self.least_loaded_for(&tp.topic) {
                self.add(m, tp.clone());
            }
        }

        // Partitions of topics with fewer than two potential consumers cannot move.
        let fixed_topics: HashSet<Arc<str>> = self
            .topic_consumers
            .iter()
            .filter(|(_, cs)| cs.len() < 2)
            .map(|(t, _)| t.clone())
            .collect();
        sorted_all.retain(|tp| !fixed_topics.contains(&tp.topic));
        unassigned.retain(|tp| !fixed_topics.contains(&tp.topic));

        // Members that cannot gain or lose anything sit out.
        for m in 0..self.current.len() {
            if !self.can_participate(m) {
                self.sorted.remove(&(self.current[m].len(), m));
                self.active[m] = false;
            }
        }

        let pre_balance = self.current.clone();
        let pre_owner = self.owner.clone();

        if !self.revocation_required {
            self.perform_reassignments(unassigned, prev);
        }
        let reassigned = self.perform_reassignments(sorted_all, prev);

        if !initializing
            && reassigned
            && self.balance_score(&self.current) >= self.balance_score(&pre_balance)
        {
            self.current = pre_balance;
            self.owner = pre_owner;
        }
    }

    fn least_loaded_for(&self, topic: &str) -> Option<usize> {
        self.sorted
            .iter()
            .map(|&(_, m)| m)
            .find(|&m| self.subscribed(m, topic))
    }

    fn add(&mut self, m: usize, tp: TopicPartition) {
        self.sorted.remove(&(self.current[m].len(), m));
        self.current[m].push(tp.clone());
        self.owner.insert(tp, m);
        self.sorted.insert((self.current[m].len(), m));
    }

    fn can_participate(&self, m: usize) -> bool {
        if self.current[m].len() < self.max_assignment_size(m) {
            return true;
        }
        self.current[m]
            .iter()
            .any(|tp| self.topic_consumers[&tp.topic].len() >= 2)
    }

    fn balance_score(&self, assignment: &[Vec<TopicPartition>]) -> usize {
        let sizes: Vec<usize> = (0..assignment.len())
            .filter(|&m| self.active[m])
            .map(|m| assignment[m].len())
            .collect();
        let mut score = 0;
        for i in 0..sizes.len() {
            for j in i + 1..sizes.len() {
                score += sizes[i].abs_diff(sizes[j]);
            }
        }
        score
    }

    /// Java `isBalanced`: counts differ by at most one, or no member with room could take a
    /// partition from a member with at least two more.
    fn is_balanced(&self) -> bool {
        let (Some(&(min, _)), Some(&(max, _))) = (self.sorted.first(), self.sorted.last()) else {
            return true;
        };
        if min + 1 >= max {
            return true;
        }
        for &(len, m) in &self.sorted {
            if len == self.max_assignment_size(m) {
                continue;
            }
            for topic in &self.consumer_topics[m] {
                for p in 0..self.topics[topic] {
                    let tp = TopicPartition::new(topic.clone(), p);
                    if let Some(&other) = self.owner.get(&tp) {
                        if other != m && self.active[other] && len + 1 < self.current[other].len() {
                            return false;
                        }
                    }
                }
            }
        }
        true
    }

    /// Java `performReassignments`; returns whether anything moved.
    fn perform_reassignments(
        &mut self,
        partitions: &[TopicPartition],
        prev: &HashMap<TopicPartition, (usize, i32)>,
    ) -> bool {
        let mut reassigned = false;
        // Every move strictly improves balance in the common case; bound the passes anyway so
        // a pathological movement history cannot loop forever.
        let max_passes = partitions.len().saturating_mul(self.current.len()).max(1) + 10;
        for _ in 0..max_passes {
            let mut modified = false;
            for tp in partitions {
                if self.is_balanced() {
                    break;
                }
                let Some(&consumer) = self.owner.get(tp) else {
                    continue;
                };
                if !self.active[consumer] {
                    continue;
                }
                let load = self.current[consumer].len();
                if let Some(&(prev_owner, _)) = prev.get(tp) {
                    if prev_owner != consumer
                        && self.active[prev_owner]
                        && self.subscribed(prev_owner, &tp.topic)
                        && load > self.current[prev_owner].len() + 1
                    {
                        self.reassign(tp, prev_owner);
                        reassigned = true;
                        modified = true;
                        continue;
                    }
                }
                let can_improve = self.topic_consumers[&tp.topic]
                    .iter()
                    .any(|&other| self.active[other] && load > self.current[other].len() + 1);
                if can_improve {
                    let target = self
                        .least_loaded_for(&tp.topic)
                        .expect("the partition's topic has an active consumer");
                    self.reassign(tp, target);
                    reassigned = true;
                    modified = true;
                }
            }
            if !modified {
                break;
            }
        }
        reassigned
    }

    fn reassign(&mut self, tp: &TopicPartition, new: usize) {
        let old = self.owner[tp];
        let actual = self.movements.actual_partition_to_move(tp, old, new);
        self.process_movement(&actual, new);
    }

    fn process_movement(&mut self, tp: &TopicPartition, new: usize) {
        let Some(&old) = self.owner.get(tp) else {
            return;
        };
        if old == new || !self.active[old] {
            return;
        }
        self.sorted.remove(&(self.current[old].len(), old));
        self.sorted.remove(&(self.current[new].len(), new));
        self.movements.move_partition(tp, old, new);
        self.current[old].retain(|p| p != tp);
        self.current[new].push(tp.clone());
        self.owner.insert(tp.clone(), new);
        self.sorted.insert((self.current[new].len(), new));
        self.sorted.insert((self.current[old].len(), old));
    }
}
