//! Offset requests: ListOffsets and OffsetsForLeaderEpoch (to leaders, with the leader
//! epoch from metadata), OffsetFetch and OffsetCommit (to the group coordinator). Every helper is bounded by a [`Deadline`] and retries under the cluster's
//! [`RetryPolicy`](crate::cluster::RetryPolicy) (backoff, and what [`Error::classify`] says is
//! retriable).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_fetch_request::{
    OffsetFetchRequestGroup, OffsetFetchRequestTopic, OffsetFetchRequestTopics,
};
use kafka_protocol::messages::offset_for_leader_epoch_request::{
    OffsetForLeaderPartition, OffsetForLeaderTopic,
};
use kafka_protocol::messages::{
    ApiKey, BrokerId, GroupId, ListOffsetsRequest, OffsetCommitRequest, OffsetFetchRequest,
    OffsetForLeaderEpochRequest, TopicName,
};
use kafka_protocol::protocol::StrBytes;

use super::state::{GroupInfo, Shared};
use crate::backoff::Deadline;
use crate::cluster::CoordinatorKind;
use crate::config::GroupProtocol;
use crate::connection::Connection;
use crate::error::{Error, ErrorAction, KafkaCode, Result};
use crate::types::TopicPartition;

/// One ListOffsets answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ListedOffset {
    /// The offset (-1 when no record matches a timestamp query).
    pub offset: i64,
    /// The record's timestamp (timestamp queries), -1 otherwise.
    pub timestamp: i64,
    /// Leader epoch of that offset, if known.
    pub leader_epoch: Option<i32>,
}

fn topic_name(t: &str) -> TopicName {
    TopicName(StrBytes::from_string(t.to_string()))
}

/// ListOffsets for each `(partition, timestamp)` (-2 earliest, -1 latest), grouped by leader,
/// retrying partitions whose leader moved until `deadline`. Partitions with a fatal error get
/// that error; the call fails as a whole only when the deadline passes with partitions left.
pub(crate) async fn list_offsets(
    shared: &Arc<Shared>,
    queries: &[(TopicPartition, i64)],
    deadline: Deadline,
) -> Result<HashMap<TopicPartition, Result<ListedOffset>>> {
    let mut out = HashMap::new();
    let mut pending: Vec<(TopicPartition, i64)> = queries.to_vec();
    // Partitions are retried by hand (each round only those left), so the policy drives the
    // waits and the deadline; it does not refresh: every partition left has its leader
    // looked up again after the wait.
    let mut retry = shared
        .cluster
        .retry_policy("ListOffsets", deadline)
        .refresh_metadata(false);
    let mut last_err: Option<Error> = None;
    // A partition the cached metadata does not have may have been added since it was taken:
    // one refresh per call before it counts as unknown.
    let mut refreshed = false;
    loop {
        if !refreshed && pending.iter().any(|(tp, _)| partition_unknown(shared, tp)) {
            refreshed = true;
            let _ = shared.cluster.refresh().await;
        }
        // Group by leader, with the leader's epoch (sent as `current_leader_epoch`).
        let mut by_leader: BTreeMap<i32, Vec<(TopicPartition, i64, i32)>> = BTreeMap::new();
        let mut retry_parts = Vec::new();
        for (tp, ts) in pending.drain(..) {
            match shared.cluster.topic_metadata(&tp.topic, deadline).await {
                Ok(meta) => match meta.partition(tp.partition) {
                    Some(p) if p.leader >= 0 => by_leader.entry(p.leader).or_default().push((
                        tp,
                        ts,
                        p.leader_epoch.max(-1),
                    )),
                    Some(_) => retry_parts.push((tp, ts)),
                    None => {
                        let e = Error::UnknownTopicOrPartition(format!(
                            "partition {} of topic `{}` (it has {})",
                            tp.partition,
                            tp.topic,
                            meta.partition_count()
                        ));
                        out.insert(tp, Err(e));
                    }
                },
                Err(e) if e.action() == ErrorAction::Fatal || deadline.expired() => {
                    out.insert(tp, Err(e));
                }
                Err(e) => {
                    last_err = Some(e);
                    retry_parts.push((tp, ts));
                }
            }
        }
        for (leader, parts) in by_leader {
            match list_offsets_once(shared, leader, &parts).await {
                Ok(answers) => {
                    for ((tp, ts, _), ans) in parts.into_iter().zip(answers) {
                        match ans {
                            Ok(v) => {
                                out.insert(tp, Ok(v));
                            }
                            Err(e) if e.action() == ErrorAction::Fatal => {
                                out.insert(tp, Err(e));
                            }
                            Err(e) => {
                                if e.action() == ErrorAction::RefreshAndRetry {
                                    shared.refresh_metadata_soon();
                                }
                                last_err = Some(e);
                                retry_parts.push((tp, ts));
                            }
                        }
                    }
                }
                Err(e) => {
                    if e.action() == ErrorAction::Fatal {
                        for (tp, _, _) in parts {
                            out.insert(tp, Err(e.clone()));
                        }
                    } else {
                        shared.refresh_metadata_soon();
                        last_err = Some(e);
                        retry_parts.extend(parts.into_iter().map(|(tp, ts, _)| (tp, ts)));
                    }
                }
            }
        }
        if retry_parts.is_empty() {
            return Ok(out);
        }
        pending = retry_parts;
        retry
            .failed(last_err.clone().unwrap_or_else(|| {
                Error::timeout("ListOffsets", shared.cfg.common.request_timeout, false)
            }))
            .await?;
        let _ = shared.cluster.refresh().await;
    }
}

/// `true` when the cached metadata has `tp`'s topic but not the partition.
fn partition_unknown(shared: &Shared, tp: &TopicPartition) -> bool {
    shared
        .cluster
        .metadata()
        .topic(&tp.topic)
        .is_some_and(|t| t.error.is_none() && t.partition(tp.partition).is_none())
}

/// One ListOffsets request to `leader` for (partition, timestamp, leader epoch from
/// metadata, -1 when unknown); one result per input partition, in order. The broker fences
/// a request whose epoch is not its own (FENCED_LEADER_EPOCH: ours is stale;
/// UNKNOWN_LEADER_EPOCH: the broker's is), and the caller refreshes metadata and retries.
async fn list_offsets_once(
    shared: &Shared,
    leader: i32,
    parts: &[(TopicPartition, i64, i32)],
) -> Result<Vec<Result<ListedOffset>>> {
    let conn = shared.cluster.broker(leader).await?;
    let mut topics: BTreeMap<&str, Vec<ListOffsetsPartition>> = BTreeMap::new();
    for (tp, ts, epoch) in parts {
        topics.entry(&tp.topic).or_default().push(
            ListOffsetsPartition::default()
                .with_partition_index(tp.partition)
                .with_current_leader_epoch(*epoch)
                .with_timestamp(*ts),
        );
    }
    let req = ListOffsetsRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_isolation_level(shared.cfg.isolation_level.as_i8())
        .with_timeout_ms(shared.cfg.common.request_timeout.as_millis() as i32)
        .with_topics(
            topics
                .into_iter()
                .map(|(t, p)| {
                    ListOffsetsTopic::default()
                        .with_name(topic_name(t))
                        .with_partitions(p)
                })
                .collect(),
        );
    let resp = conn.send(&req).await?;
    let mut answers: HashMap<(&str, i32), Result<ListedOffset>> = HashMap::new();
    for t in &resp.topics {
        for p in &t.partitions {
            let r = match KafkaCode(p.error_code).err() {
                Some(code) => Err(Error::broker(
                    code,
                    format!("ListOffsets {}-{}", t.name.0.as_str(), p.partition_index),
                )),
                None => Ok(ListedOffset {
                    offset: p.offset,
                    timestamp: p.timestamp,
                    leader_epoch: (p.leader_epoch >= 0).then_some(p.leader_epoch),
                }),
            };
            answers.insert((t.name.0.as_str(), p.partition_index), r);
        }
    }
    Ok(parts
        .iter()
        .map(|(tp, _, _)| {
            answers
                .remove(&(&*tp.topic, tp.partition))
                .unwrap_or_else(|| {
                    Err(Error::Protocol(format!(
                        "ListOffsets response without partition {tp}"
                    )))
                })
        })
        .collect())
}

/// One partition to validate with OffsetsForLeaderEpoch.
#[derive(Debug, Clone)]
pub(crate) struct EpochQuery {
    pub tp: TopicPartition,
    /// Our view of the leader's current epoch (the broker fences a different one).
    pub current_leader_epoch: i32,
    /// The epoch of the position, whose end offset is asked for.
    pub leader_epoch: i32,
}

/// The leader's answer for one partition: the largest epoch at or below the one asked for
/// and where it ends in the leader's log; `None` when the leader has no such epoch (both
/// fields undefined).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct EpochEnd {
    pub leader_epoch: i32,
    pub end_offset: i64,
}

/// OffsetsForLeaderEpoch (KIP-320) to `leader` for each query; one result per query, in
/// order. `Ok(None)` when the leader does not speak version 3 or later (no usable epoch
/// information for consumers, as Java decides): validation is skipped.
pub(crate) async fn offsets_for_leader_epoch(
    shared: &Shared,
    leader: i32,
    queries: &[EpochQuery],
) -> Result<Option<Vec<Result<Option<EpochEnd>>>>> {
    let conn = shared.cluster.broker(leader).await?;
    let version = match conn.version_for(ApiKey::OffsetForLeaderEpoch) {
        Ok(v) if v >= 3 => v,
        Ok(_) | Err(Error::UnsupportedApi { .. }) => return Ok(None),
        Err(e) => return Err(e),
    };
    let mut topics: BTreeMap<&str, Vec<OffsetForLeaderPartition>> = BTreeMap::new();
    for q in queries {
        topics.entry(&q.tp.topic).or_default().push(
            OffsetForLeaderPartition::default()
                .with_partition(q.tp.partition)
                .with_current_leader_epoch(q.current_leader_epoch)
                .with_leader_epoch(q.leader_epoch),
        );
    }
    let req = OffsetForLeaderEpochRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_topics(
            topics
                .into_iter()
                .map(|(t, p)| {
                    OffsetForLeaderTopic::default()
                        .with_topic(topic_name(t))
                        .with_partitions(p)
                })
                .collect(),
        );
    let resp = conn
        .send_version(&req, version, shared.cfg.common.request_timeout)
        .await?;
    let mut answers: HashMap<(&str, i32), Result<Option<EpochEnd>>> = HashMap::new();
    for t in &resp.topics {
        for p in &t.partitions {
            let r = match KafkaCode(p.error_code).err() {
                Some(code) => Err(Error::broker(
                    code,
                    format!(
                        "OffsetsForLeaderEpoch {}-{} from node {leader}",
                        t.topic.0.as_str(),
                        p.partition
                    ),
                )),
                None if p.leader_epoch < 0 || p.end_offset < 0 => Ok(None),
                None => Ok(Some(EpochEnd {
                    leader_epoch: p.leader_epoch,
                    end_offset: p.end_offset,
                })),
            };
            answers.insert((t.topic.0.as_str(), p.partition), r);
        }
    }
    Ok(Some(
        queries
            .iter()
            .map(|q| {
                answers
                    .remove(&(&*q.tp.topic, q.tp.partition))
                    .unwrap_or_else(|| {
                        Err(Error::Protocol(format!(
                            "OffsetsForLeaderEpoch response without partition {}",
                            q.tp
                        )))
                    })
            })
            .collect(),
    ))
}

fn require_group(shared: &Shared) -> Result<&str> {
    shared.cfg.group_id.as_deref().ok_or_else(|| {
        Error::Config(crate::error::ConfigError::Missing {
            key: "group.id".into(),
        })
    })
}

/// The group's committed offsets (`None` when nothing is committed), bounded by `deadline`.
pub(crate) async fn fetch_committed(
    shared: &Arc<Shared>,
    tps: &[TopicPartition],
    deadline: Deadline,
) -> Result<HashMap<TopicPartition, Option<(i64, Option<i32>)>>> {
    let group = require_group(shared)?;
    let mut by_topic: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
    for tp in tps {
        by_topic.entry(&tp.topic).or_default().push(tp.partition);
    }
    shared
        .cluster
        .retry_policy("OffsetFetch", deadline)
        .run_on_coordinator(CoordinatorKind::Group, group, |conn| {
            offset_fetch_once(shared, conn, group, &by_topic)
        })
        .await
}

/// One OffsetFetch to the group coordinator (`conn`).
async fn offset_fetch_once(
    shared: &Shared,
    conn: Connection,
    group: &str,
    by_topic: &BTreeMap<&str, Vec<i32>>,
) -> Result<HashMap<TopicPartition, Option<(i64, Option<i32>)>>> {
    // `client_versions` keeps this within what kafka-protocol's structs encode (v9).
    let version = conn.version_for(ApiKey::OffsetFetch)?;
    let gid = GroupId(StrBytes::from_string(group.to_string()));
    // Transactions (KIP-447): a read_committed consumer asks for stable offsets only, so a
    // new owner of a partition does not start from offsets whose transaction is still open;
    // the coordinator answers UNSTABLE_OFFSET_COMMIT (retriable) until it completes, and the
    // retry loop of `fetch_committed` waits it out. read_uncommitted does not wait (as Java).
    let read_committed = shared.cfg.isolation_level == crate::config::IsolationLevel::ReadCommitted;
    let mut req = OffsetFetchRequest::default().with_require_stable(version >= 7 && read_committed);
    if version >= 8 {
        // KIP-848 (v9): a member of a consumer-protocol group names itself and its epoch.
        let (member_id, member_epoch) = fetch_member(shared, version);
        req = req.with_groups(vec![OffsetFetchRequestGroup::default()
            .with_group_id(gid)
            .with_member_id(member_id)
            .with_member_epoch(member_epoch)
            .with_topics(Some(
                by_topic
                    .iter()
                    .map(|(t, ps)| {
                        OffsetFetchRequestTopics::default()
                            .with_name(topic_name(t))
                            .with_partition_indexes(ps.clone())
                    })
                    .collect(),
            ))]);
    } else {
        req = req.with_group_id(gid).with_topics(Some(
            by_topic
                .iter()
                .map(|(t, ps)| {
                    OffsetFetchRequestTopic::default()
                        .with_name(topic_name(t))
                        .with_partition_indexes(ps.clone())
                })
                .collect(),
        ));
    }
    let resp = conn
        .send_version(&req, version, shared.cfg.common.request_timeout)
        .await?;
    // v8+ nests the answer under the group; before, it is the whole response. Either way:
    // a group-level error code, then one row per partition.
    let (group_code, rows): (i16, Vec<FetchedOffset<'_>>) = if version >= 8 {
        let g = resp
            .groups
            .first()
            .ok_or_else(|| Error::Protocol("OffsetFetch response without groups".into()))?;
        let rows = g.topics.iter().flat_map(|t| {
            let topic = t.name.0.as_str();
            t.partitions.iter().map(move |p| {
                (
                    topic,
                    p.partition_index,
                    p.committed_offset,
                    p.committed_leader_epoch,
                    p.error_code,
                )
            })
        });
        (g.error_code, rows.collect())
    } else {
        let rows = resp.topics.iter().flat_map(|t| {
            let topic = t.name.0.as_str();
            t.partitions.iter().map(move |p| {
                (
                    topic,
                    p.partition_index,
                    p.committed_offset,
                    p.committed_leader_epoch,
                    p.error_code,
                )
            })
        });
        (resp.error_code, rows.collect())
    };
    if let Some(code) = KafkaCode(group_code).err() {
        return Err(Error::broker(
            code,
            format!("OffsetFetch of group `{group}`"),
        ));
    }
    let mut out = HashMap::with_capacity(rows.len());
    for (topic, p, offset, epoch, code) in rows {
        if let Some(code) = KafkaCode(code).err() {
            return Err(Error::broker(
                code,
                format!("OffsetFetch {topic}-{p} of group `{group}`"),
            ));
        }
        out.insert(
            TopicPartition::new(topic, p),
            (offset >= 0).then_some((offset, (epoch >= 0).then_some(epoch))),
        );
    }
    Ok(out)
}

/// The member id and epoch an OffsetFetch of version `version` carries: those of a joined
/// member of a `group.protocol=consumer` group from v9 on, else none (`None`, -1).
fn fetch_member(shared: &Shared, version: i16) -> (Option<StrBytes>, i32) {
    let g = shared.group_info();
    if version >= 9
        && shared.cfg.group_protocol == GroupProtocol::Consumer
        && g.joined
        && g.generation > 0
    {
        (Some(StrBytes::from_string(g.member_id)), g.generation)
    } else {
        (None, -1)
    }
}

/// KIP-848: the member epoch moves on with every assignment the member acknowledges, while
/// the partitions it keeps stay its own. A commit made under an older epoch is therefore sent
/// under the current one (as Java's consumer does, committing with its latest epoch) when the
/// member is the same and still has every partition of the commit; a partition it gave up
/// meanwhile may belong to another member now, so such a commit is not sent. Never with the
/// classic protocol, where a new generation may have moved any partition.
fn retag_ok(
    shared: &Shared,
    offsets: &BTreeMap<TopicPartition, (i64, Option<i32>)>,
    built_in: &GroupInfo,
    now: &GroupInfo,
) -> bool {
    shared.cfg.group_protocol == GroupProtocol::Consumer
        && now.joined
        && now.generation > 0
        && !now.member_id.is_empty()
        && now.member_id == built_in.member_id
        && {
            let st = shared.lock();
            offsets.keys().all(|tp| st.parts.contains_key(tp))
        }
}

/// One partition of an OffsetFetch answer: topic, partition, committed offset (-1: none),
/// its leader epoch (-1: unknown), error code.
type FetchedOffset<'a> = (&'a str, i32, i64, i32, i16);

/// Commits `offsets` (next offset to read, leader epoch) to the group.
///
/// The commit belongs to one generation: it is tagged with the member's generation and
/// member id once, when it is built (see [`Commit::new`]: a commit built while a rebalance is
/// under way waits for the new generation), and every attempt carries that pair. Coordinator
/// moves, transient and ambiguous failures are retried until `deadline` under that same
/// generation (the coordinator fences it if the group has moved on); once the member is in
/// another generation the commit is not sent again and fails with ILLEGAL_GENERATION.
/// Generation errors from the coordinator (REBALANCE_IN_PROGRESS, ILLEGAL_GENERATION,
/// UNKNOWN_MEMBER_ID, FENCED_INSTANCE_ID) fail at once; so does UNKNOWN_TOPIC_OR_PARTITION
/// for the consumer's own commits ([`By::Consumer`]).
pub(crate) async fn commit(
    shared: &Arc<Shared>,
    offsets: &BTreeMap<TopicPartition, (i64, Option<i32>)>,
    deadline: Deadline,
    by: By,
) -> Result<()> {
    commit_as(shared, offsets, deadline, shared.group_info(), by).await
}

/// Who asked for a commit: it decides whether UNKNOWN_TOPIC_OR_PARTITION is retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum By {
    /// The application (`commit`, `commit_offsets`): retried until the deadline, as Java's
    /// `commitSync` does (a topic just created may not be known to every broker yet).
    Application,
    /// The consumer itself: auto commit, the commit before partitions are given up in a
    /// rebalance, the commit at close. Not retried: the answer comes when the topic was
    /// deleted, and retrying it held the rebalance (or close) for `request.timeout.ms`
    /// (Java's KAFKA-16224 made the same choice for its new consumer).
    Consumer,
}

/// [`commit`] of offsets taken when the member's membership was `built_in` (read before the
/// commit was handed to another task, e.g. an async commit).
pub(crate) async fn commit_as(
    shared: &Arc<Shared>,
    offsets: &BTreeMap<TopicPartition, (i64, Option<i32>)>,
    deadline: Deadline,
    built_in: GroupInfo,
    by: By,
) -> Result<()> {
    if offsets.is_empty() {
        return Ok(());
    }
    let group = require_group(shared)?;
    let commit = &Commit::new(shared, group, offsets, deadline, built_in).await?;
    let mut policy = shared.cluster.retry_policy("OffsetCommit", deadline);
    if by == By::Consumer {
        policy = policy.not_retrying(KafkaCode::UNKNOWN_TOPIC_OR_PARTITION);
    }
    policy
        .run_on_coordinator(CoordinatorKind::Group, group, |conn| {
            let req = commit.request(shared);
            async move { commit.send(shared, conn, req?).await }
        })
        .await?;
    let mut st = shared.lock();
    for (tp, (o, _)) in offsets {
        if let Some(p) = st.parts.get_mut(tp) {
            p.committed = Some(*o);
        }
    }
    Ok(())
}

/// The error of a commit built in generation `built_in` once the member is in `now`: it is
/// not sent (again), since the partitions may have moved and a commit under the new
/// generation would overwrite the new owner's offsets.
fn moved_on(group: &str, built_in: &GroupInfo, now: &GroupInfo) -> Error {
    Error::broker(
        KafkaCode::ILLEGAL_GENERATION,
        format!(
            "OffsetCommit of group `{group}` built in generation {} (member `{}`) is not sent: the member is now in generation {} (member `{}`)",
            built_in.generation, built_in.member_id, now.generation, now.member_id
        ),
    )
}

/// Waits (at most `request.timeout.ms`) until the member's epoch is no longer `epoch`.
async fn wait_for_new_epoch(shared: &Shared, epoch: i32) {
    let mut changed = shared.work.subscribe();
    let wait = async {
        while shared.group_info().generation == epoch {
            if changed.changed().await.is_err() {
                return;
            }
        }
    };
    let _ = tokio::time::timeout(shared.cfg.common.request_timeout, wait).await;
}

/// One commit of offsets to the group, tagged once with the generation and member id it
/// belongs to; builds the OffsetCommit request of each attempt.
struct Commit<'a> {
    group: &'a str,
    offsets: &'a BTreeMap<TopicPartition, (i64, Option<i32>)>,
    /// The generation (`-1`: none, e.g. manual assignment) and member id of every attempt.
    generation: i32,
    member_id: String,
}

impl<'a> Commit<'a> {
    /// Tags the commit with the generation of `built_in` (the membership when the commit
    /// was made). While a rebalance completes (JoinGroup answered, SyncGroup's outcome not
    /// applied) that generation is over: the coordinator refuses it, although with the
    /// cooperative protocol the member keeps its partitions. So the commit waits, until
    /// `deadline`, for the new generation and takes it, provided every partition of the
    /// commit stays assigned in it ([`Error::NotAssigned`] otherwise: it moved, or is being
    /// revoked). REBALANCE_IN_PROGRESS when the rebalance does not end before `deadline`,
    /// [`Error::Closed`] when the consumer closes meanwhile; ILLEGAL_GENERATION when the
    /// member is in another generation than `built_in` already.
    async fn new(
        shared: &Shared,
        group: &'a str,
        offsets: &'a BTreeMap<TopicPartition, (i64, Option<i32>)>,
        deadline: Deadline,
        built_in: GroupInfo,
    ) -> Result<Commit<'a>> {
        let mut changed = shared.work.subscribe();
        let built_in_generation = built_in.generation;
        let mut info = built_in;
        let waited = info.rebalancing;
        // Until the rebalance under way ends: its generation is published, or the member
        // leaves it (fenced, closed). A rebalance that begins right after (a cooperative
        // member rejoins at once after giving partitions up) is not waited for.
        while info.rebalancing && info.generation == built_in_generation {
            tokio::select! {
                r = tokio::time::timeout(deadline.remaining(), changed.changed()) => {
                    if !matches!(r, Ok(Ok(()))) {
                        return Err(Error::broker(
                            KafkaCode::REBALANCE_IN_PROGRESS,
                            format!("OffsetCommit of group `{group}`: the rebalance did not end in time"),
                        ));
                    }
                }
                _ = shared.shutdown_signal() => return Err(Error::Closed),
            }
            info = shared.group_info();
        }
        // Built in a generation the member has left meanwhile (a commit handed to a task).
        let now = shared.group_info();
        if !waited
            && (now.generation != info.generation || now.member_id != info.member_id)
            && !retag_ok(shared, offsets, &info, &now)
        {
            return Err(moved_on(group, &info, &now));
        }
        if waited {
            let st = shared.lock();
            let gone = |tp: &&TopicPartition| st.parts.get(*tp).is_none_or(|p| p.revoking);
            if let Some(tp) = offsets.keys().find(gone) {
                return Err(Error::NotAssigned(tp.clone()));
            }
        }
        Ok(Commit {
            group,
            offsets,
            generation: info.generation,
            member_id: info.member_id,
        })
    }

    /// The request of one attempt, tagged with the commit's generation; ILLEGAL_GENERATION
    /// (nothing to send) once the member is in another generation: the partitions may have
    /// moved, and a commit sent under the new generation would overwrite the new owner's.
    fn request(&self, shared: &Shared) -> Result<OffsetCommitRequest> {
        let now = shared.group_info();
        let (generation, member_id) =
            if now.generation == self.generation && now.member_id == self.member_id {
                (self.generation, self.member_id.clone())
            } else {
                let built_in = GroupInfo {
                    generation: self.generation,
                    member_id: self.member_id.clone(),
                    ..now.clone()
                };
                if !retag_ok(shared, self.offsets, &built_in, &now) {
                    return Err(moved_on(self.group, &built_in, &now));
                }
                (now.generation, now.member_id.clone())
            };
        let mut topics: BTreeMap<&str, Vec<OffsetCommitRequestPartition>> = BTreeMap::new();
        for (tp, (off, epoch)) in self.offsets {
            topics.entry(&tp.topic).or_default().push(
                OffsetCommitRequestPartition::default()
                    .with_partition_index(tp.partition)
                    .with_committed_offset(*off)
                    .with_committed_leader_epoch(epoch.unwrap_or(-1))
                    .with_committed_metadata(Some(StrBytes::from_static_str(""))),
            );
        }
        Ok(OffsetCommitRequest::default()
            .with_group_id(GroupId(StrBytes::from_string(self.group.to_string())))
            .with_generation_id_or_member_epoch(generation)
            .with_member_id(StrBytes::from_string(member_id))
            .with_group_instance_id(
                shared
                    .cfg
                    .group_instance_id
                    .as_ref()
                    .filter(|_| generation >= 0)
                    .map(|s| StrBytes::from_string(s.clone())),
            )
            .with_retention_time_ms(-1)
            .with_topics(
                topics
                    .into_iter()
                    .map(|(t, ps)| {
                        OffsetCommitRequestTopic::default()
                            .with_name(topic_name(t))
                            .with_partitions(ps)
                    })
                    .collect(),
            ))
    }

    /// Sends one attempt's request to the group coordinator (`conn`).
    async fn send(
        &self,
        shared: &Shared,
        conn: Connection,
        req: OffsetCommitRequest,
    ) -> Result<()> {
        let group = self.group;
        let version = conn.version_for(ApiKey::OffsetCommit)?;
        let resp = conn
            .send_version(&req, version, shared.cfg.common.request_timeout)
            .await?;
        for t in &resp.topics {
            for p in &t.partitions {
                if let Some(code) = KafkaCode(p.error_code).err() {
                    if code == KafkaCode::STALE_MEMBER_EPOCH {
                        // KIP-848: retried (classified `Retry`) once the next heartbeat
                        // brought the current epoch, as Java does.
                        wait_for_new_epoch(shared, req.generation_id_or_member_epoch).await;
                    }
                    return Err(Error::broker(
                        code,
                        format!(
                            "OffsetCommit {}-{} of group `{group}` (generation {}, member `{}`)",
                            t.name.0.as_str(),
                            p.partition_index,
                            req.generation_id_or_member_epoch,
                            req.member_id.as_str()
                        ),
                    ));
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::time::Duration;

    use super::*;
    use crate::cluster::Cluster;
    use crate::config::ClientConfig;

    fn shared() -> Arc<Shared> {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", "127.0.0.1:1");
        c.set("group.id", "g");
        Shared::new(Cluster::offline_for_tests(), c.consumer().unwrap())
    }

    fn in_generation(shared: &Shared, generation: i32, member: &str) {
        shared.set_group_info(|g| {
            g.generation = generation;
            g.member_id = member.to_string();
            g.joined = true;
        });
    }

    fn offsets() -> BTreeMap<TopicPartition, (i64, Option<i32>)> {
        [(TopicPartition::new("t", 0), (42, None))]
            .into_iter()
            .collect()
    }

    /// Item 3 of issue 13: a commit built in generation 5 whose first attempt fails
    /// ambiguously while the member moves on to generation 6 (the partition may have moved)
    /// is never sent again, and certainly not under generation 6.
    #[tokio::test]
    async fn a_commit_is_never_resent_under_a_newer_generation() {
        let shared = shared();
        in_generation(&shared, 5, "m-1");
        let offsets = offsets();
        let deadline = Deadline::after(Duration::from_secs(5));
        let commit = Commit::new(&shared, "g", &offsets, deadline, shared.group_info())
            .await
            .unwrap();
        let sent: Mutex<Vec<(i32, String)>> = Mutex::new(Vec::new());
        let r = shared
            .cluster
            .retry_policy("OffsetCommit", deadline)
            .run(|| {
                let req = commit.request(&shared);
                let first = {
                    let mut sent = sent.lock().unwrap();
                    if let Ok(req) = &req {
                        sent.push((req.generation_id_or_member_epoch, req.member_id.to_string()));
                    }
                    sent.len() == 1
                };
                if first {
                    // The rebalance completes while the first attempt's outcome is unknown.
                    in_generation(&shared, 6, "m-1");
                }
                async move {
                    req?;
                    if first {
                        Err(Error::timeout(
                            "OffsetCommit",
                            Duration::from_millis(1),
                            true,
                        ))
                    } else {
                        Ok(())
                    }
                }
            })
            .await;
        assert_eq!(
            sent.lock().unwrap().as_slice(),
            &[(5, "m-1".to_string())],
            "attempts sent (generation, member)"
        );
        let e = r.expect_err("a commit of generation 5 cannot succeed in generation 6");
        assert_eq!(e.code(), Some(KafkaCode::ILLEGAL_GENERATION), "{e}");
    }

    /// An async commit belongs to the generation it was made in: when its task finds the
    /// member in another one, nothing is sent.
    #[tokio::test]
    async fn a_commit_made_in_an_older_generation_is_not_sent() {
        let shared = shared();
        in_generation(&shared, 5, "m-1");
        let built_in = shared.group_info();
        in_generation(&shared, 6, "m-1");
        let offsets = offsets();
        let deadline = Deadline::after(Duration::from_secs(5));
        let e = Commit::new(&shared, "g", &offsets, deadline, built_in)
            .await
            .err()
            .expect("refused");
        assert_eq!(e.code(), Some(KafkaCode::ILLEGAL_GENERATION), "{e}");
    }

    /// A commit made during a rebalance waits for the new generation and takes it when its
    /// partitions stay; `NotAssigned` when one is leaving; REBALANCE_IN_PROGRESS when the
    /// rebalance does not end in time.
    #[tokio::test]
    async fn a_commit_made_during_a_rebalance_waits_for_the_new_generation() {
        use crate::consumer::state::{PartState, Reset};
        let tp = TopicPartition::new("t", 0);
        for leaving in [false, true] {
            let shared = shared();
            shared
                .lock()
                .parts
                .insert(tp.clone(), PartState::new(Reset::Committed));
            in_generation(&shared, 5, "m-1");
            shared.set_group_info(|g| g.rebalancing = true);
            let offsets = offsets();
            let deadline = Deadline::after(Duration::from_secs(20));
            let waiting = {
                let shared = shared.clone();
                tokio::spawn(async move {
                    let built_in = shared.group_info();
                    Commit::new(&shared, "g", &offsets, deadline, built_in)
                        .await
                        .map(|c| (c.generation, c.member_id))
                })
            };
            tokio::task::yield_now().await;
            if leaving {
                shared.lock().parts.get_mut(&tp).unwrap().revoking = true;
            }
            in_generation(&shared, 6, "m-1");
            shared.set_group_info(|g| g.rebalancing = false);
            let r = waiting.await.unwrap();
            if leaving {
                assert!(
                    matches!(r, Err(Error::NotAssigned(ref t)) if *t == tp),
                    "{r:?}"
                );
            } else {
                assert_eq!(r.unwrap(), (6, "m-1".to_string()));
            }
        }
        let shared = shared();
        shared.set_group_info(|g| g.rebalancing = true);
        let offsets = offsets();
        let e = Commit::new(
            &shared,
            "g",
            &offsets,
            Deadline::after(Duration::from_millis(50)),
            shared.group_info(),
        )
        .await
        .err()
        .expect("times out");
        assert_eq!(e.code(), Some(KafkaCode::REBALANCE_IN_PROGRESS), "{e}");
    }

    /// With the cooperative protocol a member that gave partitions up rejoins at once: the
    /// next rebalance may begin before a commit that waited for the previous one looks. It
    /// takes the generation that rebalance published instead of waiting for the next one.
    #[tokio::test]
    async fn a_commit_waits_for_one_rebalance_not_the_next() {
        use crate::consumer::state::{PartState, Reset};
        let shared = shared();
        shared.lock().parts.insert(
            TopicPartition::new("t", 0),
            PartState::new(Reset::Committed),
        );
        in_generation(&shared, 5, "m-1");
        shared.set_group_info(|g| g.rebalancing = true);
        let offsets = offsets();
        let waiting = {
            let shared = shared.clone();
            tokio::spawn(async move {
                let built_in = shared.group_info();
                let deadline = Deadline::after(Duration::from_secs(2));
                Commit::new(&shared, "g", &offsets, deadline, built_in)
                    .await
                    .map(|c| c.generation)
            })
        };
        tokio::task::yield_now().await;
        // Generation 6 is published and the next rebalance begins before the task runs.
        shared.set_group_info(|g| {
            g.generation = 6;
            g.rebalancing = false;
        });
        shared.set_group_info(|g| g.rebalancing = true);
        assert_eq!(waiting.await.unwrap().unwrap(), 6);
    }

    /// KIP-848: the member epoch moves on with each acknowledged assignment; a commit made
    /// under epoch 5 goes out under epoch 6 for a partition the member still has, and is not
    /// sent at all for one it gave up (it may be another member's now), nor for another
    /// member id. (The classic rule, never re-tagged, is the test above.)
    #[tokio::test]
    async fn a_consumer_protocol_commit_takes_the_current_epoch_only_for_partitions_still_owned() {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", "127.0.0.1:1");
        c.set("group.id", "g");
        c.set("group.protocol", "consumer");
        let shared = Shared::new(Cluster::offline_for_tests(), c.consumer().unwrap());
        let tp = TopicPartition::new("t", 0);
        shared.lock().parts.insert(
            tp.clone(),
            crate::consumer::state::PartState::new(crate::consumer::state::Reset::Committed),
        );
        in_generation(&shared, 5, "m-1");
        let offsets = offsets();
        let deadline = Deadline::after(Duration::from_secs(5));
        let commit = Commit::new(&shared, "g", &offsets, deadline, shared.group_info())
            .await
            .unwrap();
        in_generation(&shared, 6, "m-1");
        let req = commit.request(&shared).unwrap();
        assert_eq!(req.generation_id_or_member_epoch, 6);
        assert_eq!(req.member_id.as_str(), "m-1");
        // Built under epoch 5 after the epoch moved on: also taken to 6 while owned.
        let built_in = GroupInfo {
            generation: 5,
            ..shared.group_info()
        };
        let late = Commit::new(&shared, "g", &offsets, deadline, built_in.clone())
            .await
            .unwrap();
        assert_eq!(
            late.request(&shared).unwrap().generation_id_or_member_epoch,
            6
        );
        // Given up: never sent under the new epoch.
        shared.lock().remove(&tp);
        let e = commit.request(&shared).unwrap_err();
        assert_eq!(e.code(), Some(KafkaCode::ILLEGAL_GENERATION), "{e}");
        let e = Commit::new(&shared, "g", &offsets, deadline, built_in)
            .await
            .err()
            .unwrap();
        assert_eq!(e.code(), Some(KafkaCode::ILLEGAL_GENERATION), "{e}");
        // Another member id (a new consumer instance): never.
        shared.lock().parts.insert(
            tp,
            crate::consumer::state::PartState::new(crate::consumer::state::Reset::Committed),
        );
        in_generation(&shared, 7, "m-2");
        assert!(commit.request(&shared).is_err());
    }

    /// STALE_MEMBER_EPOCH: the retry waits for the next heartbeat's epoch (not the full
    /// request timeout), and the error is one the retry policy retries.
    #[tokio::test]
    async fn a_stale_epoch_commit_waits_for_the_next_epoch_then_retries() {
        let shared = shared();
        in_generation(&shared, 5, "m-1");
        let s2 = shared.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            in_generation(&s2, 6, "m-1");
        });
        let t = std::time::Instant::now();
        wait_for_new_epoch(&shared, 5).await;
        assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
        assert_eq!(shared.group_info().generation, 6);
        let e = Error::broker(KafkaCode::STALE_MEMBER_EPOCH, "OffsetCommit");
        assert_eq!(e.action(), ErrorAction::Retry);
    }
}
