//! Fetching: one manager task (resolves positions, starts fetch tasks) and up to
//! [`LANES`] fetch tasks per leader broker.
//!
//! Lanes: the partitions a broker leads are dealt to [`LANES`] fetch tasks in turn (in the
//! order of the assignment), each with its own connection and fetch session, so that as
//! many fetches are in flight to that broker at once and the broker prepares one while the
//! other's response is on the wire or being decoded. A consumer of 1 KiB records waits on
//! the broker's round trip, not on its own CPU: with two lanes it read 1.09-1.15x as many
//! records per second from a topic of 3 partitions and 1.22x from one of 6 (pairs of runs
//! alternating on one broker, BENCHMARKS.md "Consumer: two fetches in flight per broker").
//! A partition is only ever in one fetch at a time, and the lane that fetches it applies
//! its answers in order, so per-partition order is kept; a partition dealt to the other
//! lane after an assignment change is fetched there once its fetch in flight has landed
//! (an answer that arrives before the other lane's records are applied does not start at
//! the partition's `fetch_offset` and is dropped, as any stale answer).
//!
//! A fetch task builds a Fetch request from the partitions of the shared state that its
//! broker leads, that its lane holds, and that are fetchable (position known, not paused,
//! no fetch in flight), while the buffers and the fetches in flight leave room in
//! `queued.max.messages.kbytes`, marks them in flight, sends, decodes the answer *outside*
//! the lock and appends the messages to the partitions' buffers, unless the partition was
//! sought or revoked meanwhile (its `session` changed). Partition errors are handled per
//! partition; connection errors put the whole request back after a backoff and refresh
//! metadata, so a restarted broker or a moved leader is followed without user action.
//!
//! Decoding overlaps the next fetch: when a response arrives, every partition that came back
//! with whole batches past the offset asked for is released at once for the next fetch,
//! which starts after those batches (their offsets are read from the batch headers,
//! [`record::next_offset_after`], and kept in [`PartState::ahead`]); the records are decoded
//! and appended by a task of their own while the fetch task sends that next fetch, so the
//! broker prepares it instead of waiting for the client. Responses are applied in the order
//! they came (a task waits for the decoding before it). The partitions' `fetch_offset` (the
//! offset after the records *applied*) moves only when the records are appended, so the
//! position never passes records still being decoded, and an answer that turns out not to
//! apply (a seek, a revocation, a corrupt batch) makes the fetch sent ahead of it stale as
//! before: its offset is not the partition's `fetch_offset`. The room a fetch reserved in
//! the bound is held until its records are counted in the buffers.
//!
//! Compressed batches are decoded about as fast as the application reads them: the decoding
//! task appends them in groups of about one batch and waits while the partition holds
//! [`DECODE_AHEAD`] decoded bytes not yet taken ([`apply_partition`]), so what waits ahead
//! of the application is mostly compressed bytes, and a waiting decoding holds back its
//! lane's next fetch.
//!
//! The bound is counted in buffered bytes (message structs plus keys, values and headers);
//! a fetch reserves at most a quarter of it and asks for the wire bytes expected to fill
//! that ([`pick_partitions`]), so several responses overlap: one being read, others landed
//! or on their way.
//!
//! There is no bound per partition: a partition with records buffered is still fetched.
//! A share of the bound per partition left a backlogged partition out of the fetch once
//! its share was full; the fetch of the other, caught-up partitions then waited
//! `fetch.wait.max.ms` at the broker, and the backlog stayed unfetched for that long even
//! after its buffer was read (a consumer of 100 partitions on 3 brokers spent a quarter of
//! its run in such waits near the end of the data). The broker fills a response in request
//! order up to `max.partition.fetch.bytes` per partition, and the rotating order below
//! keeps one partition from taking every response.
//!
//! Partitions go into a Fetch in rotating order ([`PartState::fetch_rank`]): one that
//! returned records moves to the end of the next fetch's order (as in Java). The broker fills
//! a response in request order up to `fetch.max.bytes`, so a fixed order starved the later
//! partitions while an earlier one had a backlog, and a partition whose next batch is bigger
//! than `max.partition.fetch.bytes` never progressed unless it was the first non-empty one
//! (only that partition's first batch is returned whole, KIP-74); rotated, it comes first in
//! turn.
//!
//! OFFSET_OUT_OF_RANGE applies `auto.offset.reset` only when the fetch was made at the
//! position, i.e. nothing fetched before is still buffered (Java fetches a partition only
//! once its fetched records were handed out). With records buffered, they are delivered
//! first and the partition is fetched again at that offset once they are
//! ([`PartState::out_of_range`]); the reset drops the buffer and leaves the partition without
//! a position until the lookup answers, like a seek.
//!
//! Leader epochs (KIP-320, as Java's consumer): a Fetch carries, per partition, the leader
//! epoch from metadata the position was last checked against ([`PartState::leader_epoch`]);
//! a leader answers FENCED_LEADER_EPOCH when ours is stale and UNKNOWN_LEADER_EPOCH when
//! its own is, and both only delay the partition (`retry.backoff.ms`) and refresh metadata.
//! When metadata shows a new epoch, when the fetch connection to the leader breaks, or when
//! a position is restored from a commit, a position with a known epoch is *validated*
//! before fetching resumes ([`PartState::await_validation`], [`validate_positions`]): the
//! leader says where the position's epoch ends in its log, and an end below the position
//! means records the consumer received are gone (an unclean election truncated the log).
//! The position's epoch is the one of the last batch before it (control batches included,
//! [`PartState::fetch_epoch`]), else a marker written by a newer leader would look like a
//! truncation.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic, ForgottenTopic};
use kafka_protocol::messages::fetch_response::PartitionData;
use kafka_protocol::messages::{ApiKey, BrokerId, FetchRequest, TopicName};
use kafka_protocol::protocol::StrBytes;
use tokio::time::Instant;

use super::message::Message;
use super::offsets::{self, EpochEnd, EpochQuery, ListedOffset};
use super::state::{next_session, Chunk, Expansion, PartState, Reset, Shared, State};
use crate::backoff::{Backoff, Deadline};
use crate::cluster::MetadataSnapshot;
use crate::config::{IsolationLevel, OffsetReset};
use crate::connection::Connection;
use crate::error::{Error, ErrorAction, KafkaCode};
use crate::record::{self, ControlType, DecodeOptions};
use crate::types::TopicPartition;

/// Target of the per-fetch `fetch answered` debug event (where a fetch's time went); its
/// clock reads happen only while a subscriber enables it.
pub(crate) const TIMING: &str = "kafka_sdk::consumer::timing";

/// How often idle tasks re-check their work even without a wake-up (retry timers).
const IDLE_TICK: Duration = Duration::from_millis(200);

/// Prefetch bound over all partitions (`queued.max.messages.kbytes`).
pub(crate) fn total_cap(shared: &Shared) -> usize {
    (shared.cfg.queued_max_messages_kbytes.max(1)).saturating_mul(1024)
}

/// Responses' worth of records (`max.partition.fetch.bytes` each, the most a response
/// brings for one partition) buffered for a partition at or above which its broker is not
/// fetched from until the application takes from it (see `pick_partitions`).
/// Holding more does not make fetches larger or fewer (a broker answers each with at most
/// that much per partition); it only filled the prefetch bound (64 MiB) with a few
/// partitions' records whenever the application read slower than its brokers sent: one
/// member of a group over 3 partitions on 3 brokers held 32-81 MB, now 30-37 MB, at the
/// same msgs/s within the noise (BENCHMARKS.md, "Consumer: about one response per
/// partition").
pub(crate) const PART_CAP_RESPONSES: usize = 1;

/// Decoded bytes buffered for a partition at or above which the decoding of its further
/// compressed batches waits until the application has taken from it (see
/// [`apply_partition`]): what a consumer holds decoded ahead of the application, per
/// partition.
pub(crate) const DECODE_AHEAD: usize = 1 << 20;

/// Buffered bytes after which a run of decoded compressed batches is appended to the
/// partition's buffer (one ~1 MB batch each for producers filling `batch.size=1000000`), so
/// the application reads them while the next ones wait or decode.
const DECODE_GROUP: usize = 512 << 10;

/// [`PART_CAP_RESPONSES`] in buffered bytes, at the data's current expansion.
pub(crate) fn part_cap(shared: &Shared, expansion: Expansion) -> usize {
    let wire =
        (shared.cfg.max_partition_fetch_bytes.max(1) as usize).saturating_mul(PART_CAP_RESPONSES);
    expansion.buffered(wire)
}

/// The levels at which taking a message wakes the fetch tasks (see `client::take_one`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Marks {
    /// [`fetch_at`].
    pub fetch_at: usize,
    /// [`part_cap`].
    pub part_cap: usize,
    /// [`DECODE_AHEAD`], while a decoding waits for it ([`State::decode_waiting`]); else
    /// `usize::MAX` (no wake-up for it). Crossing it wakes the decodings
    /// ([`Shared::decode_room`](super::state::Shared::decode_room)), not the fetch tasks.
    pub decode_ahead: usize,
}

impl Marks {
    /// The marks now (`st`: the consumer's state, locked).
    pub(crate) fn of(shared: &Shared, st: &State) -> Marks {
        Marks {
            fetch_at: fetch_at(shared),
            part_cap: part_cap(shared, st.expansion),
            decode_ahead: if st.decode_waiting > 0 {
                DECODE_AHEAD
            } else {
                usize::MAX
            },
        }
    }
}

/// Buffered plus reserved bytes at or below which a fetch may go out: [`fetch_at_of`] the
/// prefetch bound.
pub(crate) fn fetch_at(shared: &Shared) -> usize {
    fetch_at_of(total_cap(shared))
}

/// Of a prefetch bound of `total` bytes, the buffered plus reserved bytes at or below
/// which a fetch may go out: a quarter of the bound must be free, so a consumer that reads
/// slower than its brokers send fetches a quarter of the bound at a time rather than
/// each bit the application frees. The brokers' cost is mostly per request (every
/// partition of the fetch session is looked at): refilling the room one ~1 MiB fetch at a
/// time made them spend 2-3x franz-go's CPU per record in a 3-node run of 100 partitions,
/// CPU the consumer on the same cores went without (1.7-2.2M msgs/s where franz-go read
/// 2.7-3.2M); fetching a quarter at once, 2.5-3.1M at franz-go's broker CPU.
fn fetch_at_of(total: usize) -> usize {
    total - (total / 4).max(1).min(total)
}

/// The leader epoch of a partition in a metadata snapshot (`None`: unknown, or a broker
/// that reports none).
fn leader_epoch_of(snap: &MetadataSnapshot, tp: &TopicPartition) -> Option<i32> {
    snap.topic(&tp.topic)?
        .partition(tp.partition)
        .map(|p| p.leader_epoch)
        .filter(|e| *e >= 0)
}

/// The broker a partition is fetched from: the read replica its leader named (KIP-392,
/// [`PartState::read_replica`]) while that holds (not expired, still a replica of the
/// partition in the metadata), else its leader.
fn fetch_node(
    snap: &MetadataSnapshot,
    tp: &TopicPartition,
    p: &PartState,
    now: Instant,
) -> Option<i32> {
    if let Some((node, until)) = p.read_replica {
        let replica = snap
            .topic(&tp.topic)
            .and_then(|t| t.partition(tp.partition))
            .is_some_and(|m| m.replicas.contains(&node));
        if until > now && replica && snap.brokers.contains_key(&node) {
            return Some(node);
        }
    }
    snap.leader(&tp.topic, tp.partition)
}

/// The manager: resolves positions and makes sure a fetch task runs for every broker a
/// partition is fetched from (its leader or read replica).
pub(crate) async fn manager(shared: Arc<Shared>) {
    let mut work = shared.work.subscribe();
    let mut meta = shared.cluster.watch_metadata();
    let mut tasks: HashSet<(i32, usize)> = HashSet::new();
    let mut shutdown = shared.shutdown.subscribe();
    loop {
        if *shutdown.borrow() {
            return;
        }
        work.borrow_and_update();
        // Decompression buffers not needed for a while go back to the allocator (at most
        // once a second; the loop wakes at least every IDLE_TICK, also when idle).
        let now = std::time::Instant::now();
        record::out_pool::trim(now);
        super::vec_pool::trim(now);
        resolve_positions(&shared).await;
        validate_positions(&shared).await;
        // Start fetch tasks for leaders of positioned partitions.
        let snap = shared.cluster.metadata();
        let mut missing_leader = false;
        {
            let st = shared.lock();
            // Partitions each leader has (in the order lanes are dealt).
            let mut led: HashMap<i32, usize> = HashMap::new();
            for (tp, p) in &st.parts {
                let Some(node) = fetch_node(&snap, tp, p, now.into()) else {
                    missing_leader |= p.fetch_offset.is_some() && !p.stopped;
                    continue;
                };
                let lane = deal(led.entry(node).or_default());
                if p.fetch_offset.is_none() || p.stopped {
                    continue;
                }
                if tasks.insert((node, lane)) {
                    tokio::spawn(fetch_task(shared.clone(), node, lane));
                }
            }
        }
        if missing_leader {
            shared.refresh_metadata_soon();
        } else {
            shared.leaders_known();
        }
        tokio::select! {
            _ = work.changed() => {}
            _ = meta.changed() => {}
            _ = tokio::time::sleep(IDLE_TICK) => {}
            _ = shutdown.changed() => {}
        }
    }
}

/// Gives a position to every partition that needs one (committed offset, reset policy,
/// ListOffsets). Failures are retried on later rounds after a backoff.
async fn resolve_positions(shared: &Arc<Shared>) {
    let now = Instant::now();
    let todo: Vec<(TopicPartition, Reset, u64)> = {
        let mut st = shared.lock();
        st.parts
            .iter_mut()
            .filter(|(_, p)| {
                p.fetch_offset.is_none()
                    && p.reset.is_some()
                    && !p.stopped
                    && !p.inflight
                    && p.retry_at.is_none_or(|t| t <= now)
            })
            .map(|(tp, p)| (tp.clone(), p.reset.unwrap_or(Reset::Policy), p.session))
            .collect()
    };
    if todo.is_empty() {
        return;
    }
    let deadline = Deadline::after(shared.cfg.common.request_timeout);
    // Failures only affect the seek/reset they were looked up for: a partition sought (or
    // assigned again) meanwhile has a new session and is looked up afresh.
    let retry_later = |tps: &[(TopicPartition, u64)], e: &Error| {
        tracing::debug!(error = %e, ?tps, "position lookup failed; retrying");
        let mut st = shared.lock();
        for (tp, session) in tps {
            if let Some(p) = st.parts.get_mut(tp).filter(|p| p.session == *session) {
                p.retry_at = Some(Instant::now() + shared.cfg.common.retry_backoff_max);
            }
        }
    };

    // 1. Committed offsets.
    let committed: Vec<&(TopicPartition, Reset, u64)> = todo
        .iter()
        .filter(|(_, r, _)| *r == Reset::Committed)
        .collect();
    let mut policy: Vec<(TopicPartition, u64)> = Vec::new();
    if !committed.is_empty() {
        if shared.cfg.group_id.is_none() {
            policy.extend(committed.iter().map(|(tp, _, s)| (tp.clone(), *s)));
        } else {
            let tps: Vec<TopicPartition> = committed.iter().map(|(tp, _, _)| tp.clone()).collect();
            match offsets::fetch_committed(shared, &tps, deadline).await {
                Ok(map) => {
                    let snap = shared.cluster.metadata();
                    let mut st = shared.lock();
                    for (tp, _, session) in &committed {
                        match map.get(tp).copied().flatten() {
                            Some((off, epoch)) => {
                                if let Some(p) = st.parts.get_mut(tp) {
                                    if p.session == *session && p.fetch_offset.is_none() {
                                        p.fetch_offset = Some(off);
                                        p.position = Some(off);
                                        p.position_epoch = epoch;
                                        p.fetch_epoch = epoch;
                                        p.committed = Some(off);
                                        p.reset = None;
                                        p.retry_at = None;
                                        // A position restored with an epoch is validated
                                        // before fetching (KIP-320): the log may have been
                                        // truncated below it since it was committed.
                                        p.leader_epoch = leader_epoch_of(&snap, tp);
                                        p.await_validation();
                                    }
                                }
                            }
                            None => policy.push((tp.clone(), *session)),
                        }
                    }
                }
                Err(e) => {
                    let tps: Vec<(TopicPartition, u64)> = committed
                        .iter()
                        .map(|(tp, _, s)| (tp.clone(), *s))
                        .collect();
                    if e.action() == ErrorAction::Fatal {
                        stop_with_error(shared, &tps, e);
                    } else {
                        retry_later(&tps, &e);
                    }
                }
            }
        }
    }
    // 2. Reset policy -> timestamp query.
    let mut queries: Vec<(TopicPartition, i64, Reset, u64)> = Vec::new();
    for (tp, session) in policy {
        match policy_timestamp(shared.cfg.auto_offset_reset) {
            Some(ts) => queries.push((tp, ts, Reset::Timestamp(ts), session)),
            None => {
                let e = Error::State(format!(
                    "no committed offset for {tp} and auto.offset.reset is `none`: seek to set a position"
                ));
                stop_with_error(shared, &[(tp, session)], e);
            }
        }
    }
    for (tp, r, session) in &todo {
        match r {
            Reset::Committed => {}
            Reset::Policy => match policy_timestamp(shared.cfg.auto_offset_reset) {
                Some(ts) => queries.push((tp.clone(), ts, *r, *session)),
                None => {
                    let e = Error::broker(
                        KafkaCode::OFFSET_OUT_OF_RANGE,
                        format!(
                            "Fetch {tp}: position out of range and auto.offset.reset is `none`"
                        ),
                    );
                    stop_with_error(shared, &[(tp.clone(), *session)], e);
                }
            },
            Reset::Timestamp(ts) => queries.push((tp.clone(), *ts, *r, *session)),
            Reset::Tail(_) => queries.push((tp.clone(), -1, *r, *session)),
        }
    }
    if queries.is_empty() {
        shared.notify_work();
        return;
    }
    let q: Vec<(TopicPartition, i64)> = queries
        .iter()
        .map(|(tp, ts, _, _)| (tp.clone(), *ts))
        .collect();
    match offsets::list_offsets(shared, &q, deadline).await {
        Ok(answers) => {
            let mut latest_fallback: Vec<(TopicPartition, i64)> = Vec::new();
            {
                let snap = shared.cluster.metadata();
                let mut st = shared.lock();
                for (tp, _, reset, session) in &queries {
                    let Some(ans) = answers.get(tp) else { continue };
                    let Some(p) = st.parts.get_mut(tp) else {
                        continue;
                    };
                    if p.session != *session || p.fetch_offset.is_some() {
                        continue;
                    }
                    match ans {
                        Ok(ListedOffset {
                            offset,
                            leader_epoch,
                            ..
                        }) => {
                            let mut off = *offset;
                            if off < 0 {
                                // Timestamp after the last record: start at the end.
                                latest_fallback.push((tp.clone(), *session as i64));
                                p.reset = Some(Reset::Timestamp(-1));
                                continue;
                            }
                            if let Reset::Tail(n) = reset {
                                off = (off - n).max(0);
                            }
                            p.fetch_offset = Some(off);
                            p.position = Some(off);
                            p.position_epoch = *leader_epoch;
                            p.fetch_epoch = *leader_epoch;
                            // Just answered by the leader: checked against its epoch.
                            p.leader_epoch = leader_epoch_of(&snap, tp);
                            p.reset = None;
                            p.retry_at = None;
                            p.error_reported = false;
                        }
                        Err(e) if e.action() == ErrorAction::Fatal => {
                            p.stopped = true;
                            st.errors.push_back(e.clone());
                        }
                        Err(e @ Error::UnknownTopicOrPartition(_)) => {
                            // The topic may still be created: keep trying slowly, but tell
                            // the application once.
                            p.retry_at = Some(Instant::now() + shared.cfg.common.retry_backoff_max);
                            if !p.error_reported {
                                p.error_reported = true;
                                st.errors.push_back(e.clone());
                            }
                        }
                        Err(_) => {
                            p.retry_at = Some(Instant::now() + shared.cfg.common.retry_backoff);
                        }
                    }
                }
                let w = st.take_waiters();
                drop(st);
                Shared::wake(w);
            }
            if !latest_fallback.is_empty() {
                shared.notify_work();
            }
        }
        Err(e) => {
            let tps: Vec<(TopicPartition, u64)> = queries
                .iter()
                .map(|(tp, _, _, s)| (tp.clone(), *s))
                .collect();
            retry_later(&tps, &e);
        }
    }
    shared.notify_work();
}

/// Validates the positions waiting for it ([`PartState::validate`]) with OffsetsForLeaderEpoch
/// (KIP-320), as Java's consumer does: the leader is asked where the position's epoch ends
/// in its log. Ending at or after the position: the position is valid, fetching resumes.
/// Ending before it: the log was truncated below records the consumer received (an unclean
/// leader election); with `auto.offset.reset` earliest or latest the position moves to the
/// divergence point (the end offset) with a warning, with `none` the application gets
/// [`Error::LogTruncation`] and the partition stays stopped until it seeks. No end offset
/// (the epoch is older than the leader's log): `auto.offset.reset` applies, or
/// `LogTruncation` without a divergence point. Leaders that do not speak
/// OffsetsForLeaderEpoch v3+ are not asked: the position is taken as valid. Failures are
/// retried on later rounds (after a metadata refresh for a stale epoch or leader).
async fn validate_positions(shared: &Arc<Shared>) {
    let now = Instant::now();
    let snap = shared.cluster.metadata();
    let mut by_leader: BTreeMap<i32, Vec<(EpochQuery, i64, u64)>> = BTreeMap::new();
    let mut missing_leader = false;
    let mut cleared = false;
    {
        let mut st = shared.lock();
        for (tp, p) in st.parts.iter_mut() {
            if !p.validate || p.stopped || p.retry_at.is_some_and(|t| t > now) {
                continue;
            }
            let (Some(position), Some(epoch), Some(current)) =
                (p.position, p.position_epoch, p.leader_epoch)
            else {
                // Nothing to validate against any more (e.g. metadata without an epoch):
                // fetching goes on, as in Java.
                p.validate = false;
                cleared = true;
                continue;
            };
            let Some(leader) = snap.leader(&tp.topic, tp.partition) else {
                missing_leader = true;
                continue;
            };
            by_leader.entry(leader).or_default().push((
                EpochQuery {
                    tp: tp.clone(),
                    current_leader_epoch: current,
                    leader_epoch: epoch,
                },
                position,
                p.session,
            ));
        }
    }
    if missing_leader {
        shared.refresh_metadata_soon();
    }
    if cleared {
        shared.notify_work();
    }
    for (leader, parts) in by_leader {
        let queries: Vec<EpochQuery> = parts.iter().map(|(q, _, _)| q.clone()).collect();
        let answers = tokio::time::timeout(
            shared.cfg.common.request_timeout,
            offsets::offsets_for_leader_epoch(shared, leader, &queries),
        )
        .await
        .unwrap_or_else(|_| {
            Err(Error::timeout(
                "OffsetsForLeaderEpoch",
                shared.cfg.common.request_timeout,
                true,
            ))
        });
        // `None` for a broker without usable epoch information: nothing to validate against.
        let unsupported = matches!(answers, Ok(None));
        // A request that failed as a whole (leader unreachable) is tried again after the
        // longest backoff; a partition's error code after the shortest.
        let delay = if answers.is_err() {
            shared.cfg.common.retry_backoff_max
        } else {
            shared.cfg.common.retry_backoff
        };
        let answers: Vec<crate::Result<Option<EpochEnd>>> = match answers {
            Ok(None) => parts.iter().map(|_| Ok(None)).collect(),
            Ok(Some(a)) => a,
            Err(e) => parts.iter().map(|_| Err(e.clone())).collect(),
        };
        let mut refresh = false;
        let w = {
            let mut st = shared.lock();
            for ((q, position, session), answer) in parts.into_iter().zip(answers) {
                let Some(p) = st
                    .parts
                    .get_mut(&q.tp)
                    .filter(|p| p.session == session && p.validate)
                else {
                    continue;
                };
                let outcome = match answer {
                    Ok(None) if unsupported => Validated::Valid,
                    Ok(None) => Validated::Truncated(None),
                    Ok(Some(end)) if end.end_offset < position => Validated::Truncated(Some(end)),
                    Ok(Some(_)) => Validated::Valid,
                    Err(e) => {
                        match e.action() {
                            ErrorAction::Fatal => {
                                p.stopped = true;
                                p.validate = false;
                                st.errors.push_back(e);
                            }
                            action => {
                                tracing::debug!(tp = %q.tp, error = %e, "position validation failed; retrying");
                                refresh |= action != ErrorAction::Retry;
                                p.retry_at = Some(Instant::now() + delay);
                            }
                        }
                        continue;
                    }
                };
                p.validate = false;
                if let Validated::Truncated(end) = outcome {
                    truncated(shared, &mut st, &q.tp, position, end);
                }
            }
            st.take_waiters()
        };
        Shared::wake(w);
        if refresh {
            shared.refresh_metadata_soon();
        }
        shared.notify_work();
    }
}

/// The ListOffsets timestamp of `auto.offset.reset` (-2 earliest, -1 latest, now minus the
/// duration for `by_duration`); `None` for `none`.
fn policy_timestamp(policy: OffsetReset) -> Option<i64> {
    match policy {
        OffsetReset::Earliest => Some(-2),
        OffsetReset::Latest => Some(-1),
        OffsetReset::ByDuration(d) => {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default();
            // 0 at the earliest: negative timestamps are ListOffsets' special queries.
            Some(now.saturating_sub(d).as_millis() as i64)
        }
        OffsetReset::None => None,
    }
}

/// What a validation found.
enum Validated {
    Valid,
    /// Truncated below the position: where the position's epoch ends in the leader's log
    /// (`None`: the leader has no such epoch any more).
    Truncated(Option<EpochEnd>),
}

/// Handles a log truncation detected below `position` of `tp` (see [`validate_positions`]).
fn truncated(
    shared: &Shared,
    st: &mut State,
    tp: &TopicPartition,
    position: i64,
    end: Option<EpochEnd>,
) {
    let Some(p) = st.parts.get_mut(tp) else {
        return;
    };
    let policy = shared.cfg.auto_offset_reset;
    match (policy, end) {
        (OffsetReset::None, _) => {
            tracing::warn!(%tp, position, divergent = ?end.map(|e| e.end_offset), "log truncation detected and auto.offset.reset is `none`: the partition stops until the application seeks");
            p.stopped = true;
            st.errors.push_back(Error::LogTruncation {
                topic: tp.topic.to_string(),
                partition: tp.partition,
                offset: position,
                divergent: end.map(|e| e.end_offset),
            });
        }
        (_, Some(end)) => {
            tracing::warn!(%tp, position, divergent = end.end_offset, "log truncation detected (records received before were lost by the leader); resuming at the first offset where the logs diverge");
            p.session = next_session();
            p.fetch_offset = Some(end.end_offset);
            p.position = Some(end.end_offset);
            p.position_epoch = Some(end.leader_epoch);
            p.fetch_epoch = Some(end.leader_epoch);
            p.eof_reported = false;
            if shared.cfg.enable_auto_offset_store {
                p.stored = Some((end.end_offset, Some(end.leader_epoch)));
            }
        }
        (_, None) => {
            tracing::warn!(%tp, position, "log truncation detected below the leader's oldest epoch; applying auto.offset.reset");
            p.session = next_session();
            p.fetch_offset = None;
            p.fetch_epoch = None;
            p.position = None;
            p.position_epoch = None;
            p.reset = Some(Reset::Policy);
            p.eof_reported = false;
            if shared.cfg.enable_auto_offset_store {
                p.stored = None;
            }
        }
    }
}

/// Stops the partitions whose lookup (of the given session) failed for good and reports
/// the error, unless every one of them was sought (or reassigned) meanwhile.
fn stop_with_error(shared: &Shared, tps: &[(TopicPartition, u64)], e: Error) {
    let w = {
        let mut st = shared.lock();
        let mut current = false;
        for (tp, session) in tps {
            if let Some(p) = st.parts.get_mut(tp).filter(|p| p.session == *session) {
                p.stopped = true;
                current = true;
            }
        }
        if !current {
            return;
        }
        st.errors.push_back(e);
        st.take_waiters()
    };
    Shared::wake(w);
}

/// What one partition of an in-flight fetch asked for.
struct Asked {
    /// Fetched from a read replica, not the leader (KIP-392).
    replica: bool,
    offset: i64,
    /// The leader epoch the partition is fetched under (`current_leader_epoch`, -1: none).
    leader_epoch: i32,
    /// Its place in the request ([`PartState::fetch_rank`]).
    rank: u64,
    /// The assignment of the partition the fetch was made for.
    incarnation: u64,
    session: u64,
    /// The answer came back without an error and the partition was released for the next
    /// fetch before it was applied ([`release_ahead`]): that next fetch, not this one, owns
    /// the in-flight flag then.
    released: bool,
    /// With `released`, when the answer held whole batches: the offset after them
    /// ([`PartState::ahead`]).
    ahead: Option<i64>,
}

impl Asked {
    /// What the fetch session remembers of this partition.
    fn sent(&self) -> SentPart {
        SentPart {
            offset: self.offset,
            leader_epoch: self.leader_epoch,
        }
    }

    /// The partition this fetch was made for, untouched; `None` when it was unassigned, or
    /// unassigned and assigned again, since.
    fn find<'a>(&self, st: &'a mut State, tp: &TopicPartition) -> Option<&'a mut PartState> {
        st.parts
            .get_mut(tp)
            .filter(|p| p.incarnation == self.incarnation)
    }

    /// The partition this fetch was made for, with its in-flight flag cleared (or, when it
    /// was released ahead, its [`PartState::ahead`] mark); `None` when it was unassigned, or
    /// unassigned and assigned again, since (then it is not touched).
    fn land<'a>(&self, st: &'a mut State, tp: &TopicPartition) -> Option<&'a mut PartState> {
        let p = st
            .parts
            .get_mut(tp)
            .filter(|p| p.incarnation == self.incarnation)?;
        if !self.released {
            p.inflight = false;
        } else if let Some(next) = self.ahead {
            if p.ahead == Some((self.session, next)) {
                p.ahead = None;
            }
        }
        Some(p)
    }
}

/// The fetch loop for one lane of one broker.
async fn fetch_task(shared: Arc<Shared>, node: i32, lane: usize) {
    let mut work = shared.work.subscribe();
    let mut meta = shared.cluster.watch_metadata();
    let mut shutdown = shared.shutdown.subscribe();
    let mut bo = Backoff::new(
        shared.cfg.common.retry_backoff,
        shared.cfg.common.retry_backoff_max,
    );
    // The fetch task's own connection: a long-polling Fetch must not delay commits,
    // heartbeats and offset lookups queued behind it (brokers answer one connection's
    // requests in order), so fetches never share the cluster's pooled connection.
    let mut conn: Option<Connection> = None;
    let decode_opts = DecodeOptions {
        check_crc: shared.cfg.check_crcs,
        ..DecodeOptions::default()
    };
    let mut session = FetchSession::default();
    // The decoding of the last response, which runs while the next fetch is out.
    let mut decoding: Option<tokio::task::JoinHandle<()>> = None;
    // When the last answer arrived (only while the timing event is enabled).
    let mut answered_at: Option<std::time::Instant> = None;
    loop {
        if *shutdown.borrow() {
            close_session(&shared, conn.as_ref(), &session).await;
            return;
        }
        work.borrow_and_update();
        let (asked, reserved) = pick_partitions(&shared, node, lane);
        let Some(reserved) = reserved else {
            tokio::select! {
                _ = work.changed() => {}
                _ = meta.changed() => {}
                _ = tokio::time::sleep(IDLE_TICK) => {}
                _ = shutdown.changed() => {}
            }
            continue;
        };
        let max_bytes = i32::try_from(reserved.wire).unwrap_or(i32::MAX);
        let min_bytes = reserved.min_bytes;
        let timing = tracing::enabled!(target: TIMING, tracing::Level::DEBUG);
        let sent_at = timing.then(std::time::Instant::now);
        let result = tokio::select! {
            r = fetch_once(&shared, node, &mut conn, &mut session, &asked, (min_bytes, max_bytes)) => r,
            _ = shared.shutdown_signal() => {
                // The request in flight may have moved the broker's epoch: close the
                // session by id (the epoch of a closing request is not checked).
                close_session(&shared, conn.as_ref(), &session).await;
                return;
            }
        };
        match result {
            Ok(parts) => {
                bo.reset();
                if let Some(sent) = sent_at {
                    // Where a fetch's time went (debug aid; off unless a subscriber enables
                    // the target): from the previous answer to this request (the broker
                    // has nothing to do meanwhile: decoding, waiting for the application
                    // to make room), then this request's round trip.
                    let now = std::time::Instant::now();
                    let us = |d: Duration| d.as_micros() as u64;
                    let bytes: usize = parts
                        .iter()
                        .map(|(_, d)| d.records.as_ref().map_or(0, |r| r.len()))
                        .sum();
                    tracing::debug!(
                        target: TIMING,
                        node,
                        lane,
                        partitions = asked.len(),
                        max_bytes,
                        bytes,
                        held_us = answered_at.map(|a| us(sent.saturating_duration_since(a))),
                        request_us = us(now.saturating_duration_since(sent)),
                        "fetch answered"
                    );
                    answered_at = Some(now);
                }
                // Responses are applied in the order they came: the one before first.
                if let Some(d) = decoding.take() {
                    let _ = d.await;
                }
                let mut asked = asked;
                let mut reserved = reserved;
                let parts = release_ahead(&shared, &mut asked, &mut reserved, parts);
                // Decoding runs in its own task while this one sends the next fetch: the
                // broker prepares it meanwhile instead of waiting for the client.
                let shared = shared.clone();
                decoding = Some(tokio::spawn(async move {
                    for (tp, data) in parts {
                        if let Some(a) = asked.get(&tp) {
                            apply_partition(&shared, &tp, a, data, &decode_opts).await;
                        }
                    }
                    // The room the fetch held in the bound is given back once its records
                    // are counted in the buffers.
                    drop(reserved);
                }));
            }
            Err(e) => {
                tracing::debug!(node, error = %e, "fetch failed");
                // The timing event's held time starts over with the next answer: the time
                // until then is this failure and its backoff, not the client holding the
                // broker idle.
                answered_at = None;
                // Not held through the backoff below.
                drop(reserved);
                let delay = bo.next_delay();
                release(&shared, asked.iter(), Some(Instant::now() + delay));
                if matches!(
                    e,
                    Error::Connection { .. }
                        | Error::Timeout {
                            in_flight: true,
                            ..
                        }
                ) {
                    // The connection to the leader broke: the broker may have restarted
                    // and lost records (unclean election). Validate the positions on the
                    // next connection before fetching again, as after a leader change.
                    revalidate(&shared, asked.iter());
                }
                if e.action() != ErrorAction::Retry {
                    shared.refresh_metadata_soon();
                }
                if e.action() == ErrorAction::Fatal {
                    // E.g. UnsupportedApi: nothing will ever work; tell the application once.
                    shared.push_error(e);
                }
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    _ = shutdown.changed() => {}
                }
            }
        }
    }
}

/// Room the fetches in flight hold in the prefetch bound ([`State::fetch_reserved`]),
/// given back when dropped (after the answer was applied, or when the fetch failed or was
/// dropped).
struct Reserved {
    shared: Arc<Shared>,
    /// Room held, in buffered bytes (the bound's unit).
    bytes: usize,
    /// The fetch's `max_bytes`: the wire bytes expected to fill that room.
    wire: usize,
    /// The fetch's `min_bytes`: this lane's share of `fetch.min.bytes` ([`lane_min_bytes`]).
    min_bytes: i32,
}

impl Drop for Reserved {
    fn drop(&mut self) {
        let fetch_at = fetch_at(&self.shared);
        let mut st = self.shared.lock();
        let before = st.buffered_bytes + st.fetch_reserved;
        st.fetch_reserved -= self.bytes;
        let after = st.buffered_bytes + st.fetch_reserved;
        drop(st);
        if before > fetch_at && after <= fetch_at {
            // Fetch tasks that found no room may go on.
            self.shared.notify_work();
        }
    }
}

/// Chooses and marks in flight the partitions of `node` to fetch now, and reserves the
/// room in the prefetch bound that the fetch may fill: at most what is left of
/// `queued.max.messages.kbytes` (buffered bytes and other fetches' reservations counted),
/// at most a quarter of the bound, at most `fetch.max.bytes` on the wire (the room is
/// counted in buffered bytes and turned into wire bytes by [`Expansion`]). Nothing is
/// fetched while less than a quarter of the bound is free ([`fetch_at_of`]).
///
/// The quarter keeps a pipeline: while the application reads one response, others have
/// landed or are on their way. A first fetch as large as the bound (50 MiB of a 64 MiB
/// bound) left later fetches only the room the application had just freed, ~1 MiB each,
/// one round trip at a time: a consumer of 100 partitions read 1.3-1.8M msgs/s of 100 B
/// where franz-go read 3.5-4.2M.
fn pick_partitions(
    shared: &Arc<Shared>,
    node: i32,
    lane: usize,
) -> (BTreeMap<TopicPartition, Asked>, Option<Reserved>) {
    let snap = shared.cluster.metadata();
    let now = Instant::now();
    let mut st = shared.lock();
    // A new leader epoch in metadata (a leader change, possibly to this same broker) puts
    // the partition's position into validation before anything more is fetched (KIP-320).
    let mut freed = 0;
    let mut started = false;
    // One of this broker's partitions holds a response's worth (see below).
    let cap = part_cap(shared, st.expansion);
    let mut capped = false;
    for (tp, p) in st.parts.iter_mut() {
        if fetch_node(&snap, tp, p, now) == Some(node) {
            let before = p.validate;
            freed += p.note_leader_epoch(leader_epoch_of(&snap, tp));
            started |= p.validate && !before;
            // Over all lanes: the other lane's partition may be in flight.
            capped |= p.buffer_bytes >= cap && (p.fetchable(now) || p.inflight);
        }
    }
    st.buffered_bytes -= freed;
    if started {
        // The manager validates.
        shared.notify_work();
    }
    let used = st.buffered_bytes + st.fetch_reserved;
    if used > fetch_at(shared) {
        return (BTreeMap::new(), None);
    }
    // While one of this broker's partitions holds a response's worth, nothing is fetched
    // from it: leaving only that partition out would send a fetch of the others, which
    // long-polls when they are caught up, and the partition would wait behind it once the
    // application had read into its records. The application is not starved meanwhile: it
    // has that partition's records to read, and taking from them wakes this task.
    if capped {
        return (BTreeMap::new(), None);
    }
    let mut out = BTreeMap::new();
    // The broker's partitions dealt to the lanes in turn, as the manager deals them.
    let mut dealt = 0;
    for (tp, p) in st.parts.iter_mut() {
        if fetch_node(&snap, tp, p, now) != Some(node) {
            continue;
        }
        if deal(&mut dealt) != lane || !p.fetchable(now) {
            continue;
        }
        p.inflight = true;
        out.insert(
            tp.clone(),
            Asked {
                // From the read replica (`fetch_node` chose it), unless that is the leader.
                replica: p.read_replica.is_some_and(|(n, _)| n == node)
                    && snap.leader(&tp.topic, tp.partition) != Some(node),
                offset: p.next_fetch_offset().unwrap_or(0),
                leader_epoch: p.leader_epoch.unwrap_or(-1),
                rank: p.fetch_rank,
                incarnation: p.incarnation,
                session: p.session,
                released: false,
                ahead: None,
            },
        );
    }
    if out.is_empty() {
        return (out, None);
    }
    let (wire, bytes) = fetch_size(
        total_cap(shared),
        used,
        st.expansion,
        shared.cfg.fetch_max_bytes.max(1) as usize,
    );
    st.fetch_reserved += bytes;
    let min_bytes = lane_min_bytes(shared.cfg.fetch_min_bytes, dealt.min(LANES));
    (
        out,
        Some(Reserved {
            shared: shared.clone(),
            bytes,
            wire,
            min_bytes,
        }),
    )
}

/// A lane's `min_bytes` when the broker's partitions are fetched in `lanes` lanes: an even
/// share of `fetch.min.bytes` (rounded up), so that the broker holds the fetches of all
/// lanes together until about `fetch.min.bytes` have come, as it holds Java's one fetch,
/// rather than each lane until that much came for its part of the partitions.
fn lane_min_bytes(fetch_min_bytes: i32, lanes: usize) -> i32 {
    let (min, lanes) = (fetch_min_bytes.max(0).unsigned_abs(), lanes.max(1) as u32);
    i32::try_from(min.div_ceil(lanes)).unwrap_or(i32::MAX)
}

/// Fetch tasks (each with its connection and fetch session, so each with a fetch in flight)
/// per leader broker; see the module docs.
pub(crate) const LANES: usize = 2;

/// The lane of a broker's next partition (in assignment order) when `dealt` of its
/// partitions were dealt before: the one rule the manager (which lanes need a task) and
/// [`pick_partitions`] (which partitions a lane fetches) share.
fn deal(dealt: &mut usize) -> usize {
    let lane = *dealt % LANES;
    *dealt += 1;
    lane
}

/// A fetch's `max_bytes` (wire bytes) and the room it reserves in the bound (buffered
/// bytes), with `used` of the bound's `total` taken: at most what is left, at most a quarter
/// of the bound, at most `fetch_max` on the wire.
fn fetch_size(total: usize, used: usize, expansion: Expansion, fetch_max: usize) -> (usize, usize) {
    let budget = total.saturating_sub(used).min(total / 4).max(1);
    let wire = expansion.wire(budget).clamp(1, fetch_max);
    (wire, expansion.buffered(wire).max(1))
}

/// Releases the partitions of a response for the next fetch before their records are
/// decoded. A partition that came back with whole batches past the offset asked for is
/// marked [`PartState::ahead`] (the next fetch starts after those batches, read from their
/// headers) and moves to the end of the fetch order; one that came back without an error
/// and without records is released as it is, and so are partitions the broker left out.
/// Partitions with an error, or with bytes but no whole batch, stay in flight until their
/// answer is applied.
///
/// The fetch's reservation in the prefetch bound grows to what the response's bytes are
/// expected to become once decoded (the broker returns a partition's first batch whole even
/// past `max_bytes`, KIP-74), so the next fetch only goes out if the bound has room for it
/// after these records.
/// Returns the partitions to apply.
fn release_ahead(
    shared: &Shared,
    asked: &mut BTreeMap<TopicPartition, Asked>,
    reserved: &mut Reserved,
    parts: Vec<(TopicPartition, PartitionData)>,
) -> Vec<(TopicPartition, PartitionData)> {
    let received: usize = parts
        .iter()
        .map(|(_, d)| d.records.as_ref().map_or(0, |r| r.len()))
        .sum();
    let mut st = shared.lock();
    let expected = st.expansion.buffered(received);
    if expected > reserved.bytes {
        st.fetch_reserved += expected - reserved.bytes;
        reserved.bytes = expected;
    }
    let answered: HashSet<&TopicPartition> = parts.iter().map(|(tp, _)| tp).collect();
    // A partition sent to a read replica: the manager starts that broker's fetch task.
    let mut moved = false;
    for (tp, a) in asked.iter().filter(|(tp, _)| !answered.contains(tp)) {
        a.land(&mut st, tp);
    }
    for (tp, data) in &parts {
        let Some(a) = asked.get_mut(tp) else {
            continue;
        };
        let preferred = data.preferred_read_replica.0;
        if preferred >= 0 {
            // The leader names the replica to fetch from (its answer holds no records):
            // the partition's next fetch goes there.
            if let Some(p) = a.find(&mut st, tp) {
                let until = Instant::now() + shared.cfg.common.metadata_max_age;
                moved |= p.read_replica.is_none_or(|(n, _)| n != preferred);
                p.read_replica = Some((preferred, until));
            }
        }
        if data.error_code != 0 {
            continue;
        }
        let records = data.records.as_deref().unwrap_or_default();
        let next = record::next_offset_after(records).filter(|n| *n > a.offset);
        if next.is_none() && !records.is_empty() {
            continue;
        }
        let rank = st.next_fetch_rank();
        let Some(p) = st.parts.get_mut(tp).filter(|p| {
            p.incarnation == a.incarnation
                && p.session == a.session
                && p.fetch_offset == Some(a.offset)
                && p.inflight
                && !p.revoking
        }) else {
            continue;
        };
        p.inflight = false;
        a.released = true;
        if let Some(next) = next {
            p.ahead = Some((a.session, next));
            p.fetch_rank = rank;
            a.ahead = Some(next);
        }
    }
    drop(st);
    if moved {
        shared.notify_work();
    }
    parts
}

/// Clears the in-flight flag of the partitions a fetch asked for, optionally delaying their
/// next fetch; partitions assigned again since the fetch started are not touched.
fn release<'a>(
    shared: &Shared,
    asked: impl Iterator<Item = (&'a TopicPartition, &'a Asked)>,
    retry_at: Option<Instant>,
) {
    let mut st = shared.lock();
    for (tp, a) in asked {
        if let Some(p) = a.land(&mut st, tp) {
            if retry_at.is_some() {
                p.retry_at = retry_at;
                if a.replica {
                    // The read replica failed us: back to the leader.
                    p.read_replica = None;
                }
            }
        }
    }
}

/// Puts the positions of the partitions a failed fetch asked for into validation (same
/// assignment and session only); wakes the manager, which validates them.
fn revalidate<'a>(shared: &Shared, asked: impl Iterator<Item = (&'a TopicPartition, &'a Asked)>) {
    let mut st = shared.lock();
    let mut freed = 0;
    for (tp, a) in asked {
        if let Some(p) = st
            .parts
            .get_mut(tp)
            .filter(|p| p.incarnation == a.incarnation && p.session == a.session)
        {
            freed += p.await_validation();
        }
    }
    st.buffered_bytes -= freed;
    drop(st);
    shared.notify_work();
}

/// The fetch connection to `node`, opened (or reopened after a failure) on demand.
async fn fetch_connection(
    shared: &Shared,
    node: i32,
    slot: &mut Option<Connection>,
) -> crate::Result<Connection> {
    if let Some(c) = slot.as_ref().filter(|c| !c.is_closed()) {
        return Ok(c.clone());
    }
    *slot = None;
    let c = shared.cluster.own_connection(node).await?;
    *slot = Some(c.clone());
    Ok(c)
}

/// Broker error: the incremental fetch session named in the request is unknown (evicted,
/// expired, or the broker restarted).
const FETCH_SESSION_ID_NOT_FOUND: i16 = 70;
/// Broker error: the request's session epoch is not the one the broker expects.
const INVALID_FETCH_SESSION_EPOCH: i16 = 71;
/// The first Fetch version with sessions (KIP-227).
const FETCH_SESSION_MIN_VERSION: i16 = 7;

/// What one partition of a fetch session was last sent with: a partition whose next fetch
/// differs from this is sent again; one that matches is left out of an incremental request
/// (the broker remembers it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct SentPart {
    offset: i64,
    leader_epoch: i32,
}

/// The incremental fetch session (KIP-227) of one fetch task with its broker.
///
/// The first request is a *full* one (epoch 0, every partition); the broker answers with a
/// session id and remembers the partitions and their fetch parameters. Later requests are
/// *incremental* (epoch 1, 2, ...): only partitions whose fetch offset or leader epoch
/// changed are sent, and partitions the task does not fetch this time (paused, buffer full,
/// unassigned, moved to another leader, waiting for a retry) are sent as *forgotten*, so
/// the broker's session always holds exactly the partitions of the request in flight (and
/// never returns records for a partition the consumer is not fetching). The broker answers
/// an incremental request with the partitions that changed only.
///
/// Like Java's `FetchSessionHandler`: FETCH_SESSION_ID_NOT_FOUND or
/// INVALID_FETCH_SESSION_EPOCH, a failed request or a broken connection reset the session,
/// and the next request is full again (closing the old session on the broker when its id
/// is known). A broker that creates no session (its `max.incremental.fetch.session.cache.slots`
/// are all taken, or it answers session id 0 for any other reason) is asked with full
/// requests, each of which may create one when a slot frees up. On shutdown the fetch task
/// closes the session (epoch -1), so the broker frees the slot at once.
#[derive(Debug, Default)]
struct FetchSession {
    /// The broker's session id (0: none).
    id: i32,
    /// Epoch of the next request: 0 for a full request (creating a session, and closing
    /// `id` if set), 1.. for an incremental one.
    epoch: i32,
    /// The partitions the broker's session holds, with what they were last sent with.
    sent: HashMap<TopicPartition, SentPart>,
    /// Full requests answered without a session since the last session was created.
    refused: u32,
}

impl FetchSession {
    fn incremental(&self) -> bool {
        self.id != 0 && self.epoch > 0
    }

    /// Forgets the session: the next request is a full one that also closes the old
    /// session on the broker (its id is kept for that).
    fn reset(&mut self) {
        self.epoch = 0;
        self.sent.clear();
    }

    /// Updates the session after a successful answer to `req` (`full`: it was a full one).
    fn answered(&mut self, full: bool, session_id: i32, asked: &BTreeMap<TopicPartition, Asked>) {
        if full {
            self.id = session_id;
            if session_id == 0 {
                // No session (no free slot on the broker): the next request is full again.
                self.refused = self.refused.saturating_add(1);
                if self.refused == 1 {
                    tracing::debug!("broker created no fetch session (cache slots full?); fetching with full requests");
                }
                self.epoch = 0;
                self.sent.clear();
                return;
            }
            self.refused = 0;
            self.epoch = 1;
        } else {
            // Epochs run 1..=i32::MAX and wrap to 1 (0 would ask for a new session).
            self.epoch = if self.epoch == i32::MAX {
                1
            } else {
                self.epoch + 1
            };
        }
        self.sent = asked.iter().map(|(tp, a)| (tp.clone(), a.sent())).collect();
    }
}

/// Appends `tp` to the topic list of a request (consecutive partitions of one topic share
/// an entry).
fn push_topic<T: Default>(
    topics: &mut Vec<T>,
    tp: &TopicPartition,
    name: impl Fn(&T) -> &str,
    make: impl FnOnce(TopicName) -> T,
) -> usize {
    if topics.last().is_none_or(|t| name(t) != &*tp.topic) {
        topics.push(make(TopicName(StrBytes::from_string(tp.topic.to_string()))));
    }
    topics.len() - 1
}

/// Builds the Fetch request for `asked` (in fetch order) under `session`: full, or
/// incremental with only changed partitions and the forgotten ones.
fn build_request(
    shared: &Shared,
    session: &FetchSession,
    use_session: bool,
    asked: &BTreeMap<TopicPartition, Asked>,
    (min_bytes, max_bytes): (i32, i32),
) -> FetchRequest {
    let incremental = use_session && session.incremental();
    // Partitions in fetch order (rank, then partition order): the broker fills the
    // response in request order. Consecutive partitions of one topic share an entry; a topic
    // may appear more than once (as in Java's requests).
    let mut order: Vec<(&TopicPartition, &Asked)> = asked
        .iter()
        .filter(|(tp, a)| !incremental || session.sent.get(*tp) != Some(&a.sent()))
        .collect();
    order.sort_by_key(|(_, a)| a.rank);
    let mut topics: Vec<FetchTopic> = Vec::new();
    for (tp, a) in order {
        let i = push_topic(
            &mut topics,
            tp,
            |t| t.topic.0.as_str(),
            |n| FetchTopic::default().with_topic(n),
        );
        topics[i].partitions.push(
            FetchPartition::default()
                .with_partition(tp.partition)
                .with_current_leader_epoch(a.leader_epoch)
                .with_fetch_offset(a.offset)
                .with_last_fetched_epoch(-1)
                .with_log_start_offset(-1)
                .with_partition_max_bytes(shared.cfg.max_partition_fetch_bytes),
        );
    }
    let mut forgotten: Vec<ForgottenTopic> = Vec::new();
    if incremental {
        let mut gone: Vec<&TopicPartition> = session
            .sent
            .keys()
            .filter(|tp| !asked.contains_key(*tp))
            .collect();
        gone.sort();
        for tp in gone {
            let i = push_topic(
                &mut forgotten,
                tp,
                |t| t.topic.0.as_str(),
                |n| ForgottenTopic::default().with_topic(n),
            );
            forgotten[i].partitions.push(tp.partition);
        }
    }
    let (session_id, session_epoch) = if use_session {
        (session.id, session.epoch)
    } else {
        (0, -1)
    };
    FetchRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_max_wait_ms(shared.cfg.fetch_max_wait.as_millis() as i32)
        .with_min_bytes(min_bytes.min(max_bytes))
        .with_max_bytes(max_bytes)
        .with_isolation_level(shared.cfg.isolation_level.as_i8())
        .with_session_id(session_id)
        .with_session_epoch(session_epoch)
        .with_topics(topics)
        .with_forgotten_topics_data(forgotten)
        .with_rack_id(StrBytes::from_string(
            shared.cfg.common.client_rack.clone().unwrap_or_default(),
        ))
}

async fn fetch_once(
    shared: &Shared,
    node: i32,
    slot: &mut Option<Connection>,
    session: &mut FetchSession,
    asked: &BTreeMap<TopicPartition, Asked>,
    bytes: (i32, i32),
) -> crate::Result<Vec<(TopicPartition, PartitionData)>> {
    let conn = fetch_connection(shared, node, slot).await?;
    let version = conn.version_for(ApiKey::Fetch)?;
    let use_session = version >= FETCH_SESSION_MIN_VERSION;
    let full = !session.incremental();
    let req = build_request(shared, session, use_session, asked, bytes);
    let max_wait = shared.cfg.fetch_max_wait;
    let started = crate::observe::stamp();
    let resp = match conn
        .send_version(&req, version, shared.cfg.common.request_timeout + max_wait)
        .await
    {
        Ok(r) => r,
        Err(e) => {
            // The broker may or may not have seen the request: start over with a full one.
            session.reset();
            return Err(e);
        }
    };
    crate::observe::consumer_fetch(&shared.cfg.common.client_id, started);
    if use_session
        && !full
        && matches!(
            resp.error_code,
            FETCH_SESSION_ID_NOT_FOUND | INVALID_FETCH_SESSION_EPOCH
        )
    {
        // The broker lost (or no longer agrees on) the session: fetch again at once with a
        // full request, which creates a new one. Nothing was fetched.
        tracing::debug!(
            node,
            code = resp.error_code,
            session = session.id,
            "fetch session reset by the broker; sending a full fetch"
        );
        if resp.error_code == FETCH_SESSION_ID_NOT_FOUND {
            session.id = 0;
        }
        session.reset();
        return Ok(Vec::new());
    }
    if let Some(code) = KafkaCode(resp.error_code).err() {
        session.reset();
        return Err(Error::broker(code, format!("Fetch from node {node}")));
    }
    if use_session {
        if !full && resp.session_id != session.id {
            // An incremental request answered for another session: do not trust it.
            tracing::debug!(
                node,
                session = session.id,
                answered = resp.session_id,
                "fetch answered for another session; resetting it"
            );
            session.reset();
            return Ok(Vec::new());
        }
        session.answered(full, resp.session_id, asked);
    }
    let mut out = Vec::new();
    for t in resp.responses {
        let topic: Arc<str> = Arc::from(t.topic.0.as_str());
        for p in t.partitions {
            out.push((
                TopicPartition {
                    topic: topic.clone(),
                    partition: p.partition_index,
                },
                p,
            ));
        }
    }
    Ok(out)
}

/// Closes the fetch session with `node`'s broker (epoch -1, no partitions) so it frees the
/// session's cache slot now instead of at its eviction time. Best effort, bounded.
async fn close_session(shared: &Shared, conn: Option<&Connection>, session: &FetchSession) {
    let Some(conn) = conn.filter(|c| !c.is_closed()) else {
        return;
    };
    if session.id == 0 {
        return;
    }
    let Ok(version) = conn.version_for(ApiKey::Fetch) else {
        return;
    };
    if version < FETCH_SESSION_MIN_VERSION {
        return;
    }
    let req = FetchRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_max_wait_ms(0)
        .with_min_bytes(0)
        .with_max_bytes(shared.cfg.fetch_max_bytes)
        .with_isolation_level(shared.cfg.isolation_level.as_i8())
        .with_session_id(session.id)
        .with_session_epoch(-1);
    let bound = shared.cfg.common.request_timeout.min(CLOSE_SESSION_TIMEOUT);
    let _ = tokio::time::timeout(bound, conn.send_version(&req, version, bound)).await;
}

/// Bound of the session-closing request sent on shutdown.
const CLOSE_SESSION_TIMEOUT: Duration = Duration::from_secs(2);

/// Handles one partition of a fetch response: an error, or its records, decoded outside
/// the lock and appended to the partition's buffer.
///
/// Compressed batches are appended in groups of about [`DECODE_GROUP`] buffered bytes, and
/// before decoding the next group the task waits while the partition holds
/// [`DECODE_AHEAD`] or more decoded bytes the application has not taken (unless the
/// partition cannot deliver now: being revoked or assigned). A paused partition's decoding
/// stops there instead (waiting would hold back the other partitions of the lane until
/// `resume`): the fetch lands at the offset after the groups appended and the rest of the
/// answer is fetched again once the partition is resumed. Decoded all at once,
/// a response of three 1 MiB partitions of lz4 batches became ~9 MB of decoded buffers
/// before the application read the first record, and with two fetch lanes per broker a
/// consumer held ~13 such buffers (max RSS 24-25 MB where rust-rdkafka's BaseConsumer had
/// 21-22; BENCHMARKS.md, "Consumer, compressed: decoding paced by the application"). The
/// compressed bytes wait instead, at a third to a tenth of the size; a waiting decoding
/// also holds its lane's next response, which is the backpressure. Uncompressed batches are
/// appended as one group (their records are slices of the response, already in memory).
async fn apply_partition(
    shared: &Arc<Shared>,
    tp: &TopicPartition,
    asked: &Asked,
    data: PartitionData,
    opts: &DecodeOptions,
) {
    if let Some(code) = KafkaCode(data.error_code).err() {
        let e = Error::broker(code, format!("Fetch {tp} at offset {}", asked.offset));
        let mut st = shared.lock();
        let Some(p) = asked.land(&mut st, tp) else {
            return;
        };
        if p.session != asked.session {
            return;
        }
        if asked.replica {
            // Any error from the read replica (it fell out of the replica set, lags behind
            // the leader's epoch, or does not have the offset yet: OFFSET_OUT_OF_RANGE is
            // no reason for `auto.offset.reset` there) sends the partition back to its
            // leader, which may name a replica again (Java does the same).
            tracing::debug!(%tp, offset = asked.offset, error = %e, "fetch from the read replica failed; fetching from the leader");
            p.read_replica = None;
            p.retry_at = Some(Instant::now() + shared.cfg.common.retry_backoff);
            drop(st);
            shared.notify_work();
            return;
        }
        if code == KafkaCode::OFFSET_OUT_OF_RANGE {
            if p.fetch_offset != Some(asked.offset) {
                return;
            }
            if p.position != Some(asked.offset) {
                // Records fetched before are still buffered (prefetch): they are delivered
                // first, then the partition is fetched again at this offset; only an answer
                // out of range at the position resets it. Resetting now moved the position
                // past the buffered records, and the next delivery moved it back.
                tracing::debug!(%tp, offset = asked.offset, "offset out of range with records buffered; resetting once they are delivered");
                p.out_of_range = true;
                return;
            }
            tracing::info!(%tp, offset = asked.offset, "offset out of range; applying auto.offset.reset");
            // Like a seek that needs a lookup: no position until the reset answers (a
            // commit meanwhile commits nothing for the partition), nothing stale buffered.
            let freed = std::mem::take(&mut p.buffer_bytes);
            p.buffer.clear();
            p.fetch_offset = None;
            p.fetch_epoch = None;
            p.position = None;
            p.position_epoch = None;
            p.reset = Some(Reset::Policy);
            p.session = next_session();
            p.out_of_range = false;
            p.eof_reported = false;
            st.buffered_bytes -= freed;
            drop(st);
            shared.notify_work();
            return;
        }
        match e.action() {
            ErrorAction::Fatal => {
                p.stopped = true;
                st.errors.push_back(e);
                let w = st.take_waiters();
                drop(st);
                Shared::wake(w);
            }
            action => {
                p.retry_at = Some(Instant::now() + shared.cfg.common.retry_backoff);
                drop(st);
                if action == ErrorAction::RefreshAndRetry {
                    shared.refresh_metadata_soon();
                }
            }
        }
        return;
    }

    let read_committed = shared.cfg.isolation_level == IsolationLevel::ReadCommitted;
    let mut dec = PartDecoder::new(tp, asked.offset, &data, opts, read_committed);
    let mut applied = Applied {
        groups: 0,
        at: asked.offset,
        added: 0,
        messages: false,
    };
    loop {
        // Decode outside the lock.
        let group = dec.next_group();
        let last = group.done;
        if !append_group(shared, tp, asked, &data, &mut applied, group) || last {
            return;
        }
        if !decode_ahead_room(shared, tp, asked, applied.at).await {
            return;
        }
    }
}

/// What the groups of one partition's answer appended so far ([`append_group`]).
struct Applied {
    /// Groups appended.
    groups: usize,
    /// The partition's `fetch_offset` after them (the fetch's offset before the first).
    at: i64,
    /// Buffered bytes they added.
    added: usize,
    /// Whether they held any message.
    messages: bool,
}

/// Appends one group of a partition's answer to its buffer, unless the partition was sought,
/// revoked or fetched elsewhere meanwhile (`false`: stop applying the answer). The first
/// group also records the answer's watermarks; the last one lands the fetch
/// ([`Asked::land`]), learns the expansion and reports EOF.
fn append_group(
    shared: &Arc<Shared>,
    tp: &TopicPartition,
    asked: &Asked,
    data: &PartitionData,
    applied: &mut Applied,
    group: Group,
) -> bool {
    let first = applied.groups == 0;
    applied.groups += 1;
    let Group {
        msgs,
        next,
        last_epoch,
        err,
        done,
    } = group;
    // Records returned: the partition goes to the end of the next fetch's order.
    let advanced = done && next > asked.offset;
    let mut st = shared.lock();
    // (A partition released ahead was moved to the end when it was released.)
    let advanced = advanced && asked.ahead.is_none();
    let rank = if advanced { st.next_fetch_rank() } else { 0 };
    let p = if done {
        asked.land(&mut st, tp)
    } else {
        asked.find(&mut st, tp)
    };
    let Some(p) = p else {
        return false;
    };
    if p.session != asked.session || p.fetch_offset != Some(applied.at) || p.revoking {
        if !done {
            asked.land(&mut st, tp);
        }
        return false;
    }
    if first {
        p.out_of_range = false;
        p.high_watermark = data.high_watermark;
        p.last_stable_offset = data.last_stable_offset;
        p.log_start_offset = data.log_start_offset;
        if let Some(pos) = p.position {
            let end = match shared.cfg.isolation_level {
                IsolationLevel::ReadCommitted => data.last_stable_offset,
                IsolationLevel::ReadUncommitted => data.high_watermark,
            };
            let cid = &shared.cfg.common.client_id;
            crate::observe::consumer_lag(cid, &tp.topic, tp.partition, (end - pos).max(0));
        }
    }
    if advanced {
        p.fetch_rank = rank;
    }
    applied.messages |= !msgs.is_empty();
    if let Some(e) = err {
        // Corrupt data: deliver what decoded, then stop the partition with the error once
        // its buffer is drained (the error is queued behind nothing: report now).
        p.stopped = !applied.messages;
        st.errors.push_back(e);
    }
    let added: usize = msgs.iter().map(Message::buffered_size).sum();
    applied.added += added;
    if done {
        let wire = data.records.as_ref().map_or(0, |r| r.len());
        st.expansion.observe(wire, applied.added);
    }
    // The state's own key: it shares the topic name with the other keys of the topic (the
    // response's name is an allocation of its own), so `recv`'s look-ups compare pointers.
    let chunk = msgs.last().map(|m| Chunk {
        tp: st
            .parts
            .get_key_value(tp)
            .map_or_else(|| tp.clone(), |(k, _)| k.clone()),
        last: m.offset,
    });
    let p = st.parts.get_mut(tp).expect("present");
    let was_empty = p.buffer.is_empty();
    if was_empty {
        // The decoded vector becomes the buffer (no copy, no regrowth); `recv` drops it
        // once emptied, so a partition does not keep the room of its largest fetch.
        p.buffer = msgs.into();
    } else {
        let mut msgs = msgs;
        p.buffer.extend(msgs.drain(..));
        super::vec_pool::give_back(msgs);
    }
    p.buffer_bytes += added;
    if next > applied.at {
        applied.at = next;
        p.fetch_offset = Some(next);
        if last_epoch.is_some() {
            p.fetch_epoch = last_epoch;
        }
        p.eof_reported = false;
        if was_empty && p.buffer.is_empty() {
            // Nothing deliverable (control batches, aborted data): move the position along,
            // with the epoch of the last batch passed (a position's epoch must be the one of
            // the batch before it, or validation would see a truncation that is not there).
            p.position = Some(next);
            p.position_epoch = p.fetch_epoch;
        }
    }
    let eof = done
        && shared.cfg.enable_partition_eof
        && p.buffer.is_empty()
        && !p.eof_reported
        && p.fetch_offset == Some(data.high_watermark);
    if eof {
        p.eof_reported = true;
    }
    st.buffered_bytes += added;
    if let Some(c) = chunk {
        st.order.push_back(c);
    }
    if eof {
        st.eof.push_back((tp.clone(), data.high_watermark));
    }
    let w = if added > 0 || eof || !st.errors.is_empty() {
        st.take_waiters()
    } else {
        Vec::new()
    };
    drop(st);
    Shared::wake(w);
    true
}

/// Waits while the partition holds [`DECODE_AHEAD`] or more decoded bytes and can deliver
/// them (see [`apply_partition`]). `false` when the rest of the answer is not to be applied:
/// the partition was sought, revoked or fetched elsewhere meanwhile, or it is paused with
/// [`DECODE_AHEAD`] decoded bytes (its fetch is landed at `at`, where the next fetch after
/// `resume` starts), or the consumer shuts down.
async fn decode_ahead_room(
    shared: &Arc<Shared>,
    tp: &TopicPartition,
    asked: &Asked,
    at: i64,
) -> bool {
    /// What the partition's state says of the next group.
    enum Next {
        Decode,
        Wait,
        /// Land the fetch and drop the rest of the answer.
        Stop,
    }
    let mut waiting = false;
    let room = loop {
        let notified = shared.decode_room.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        {
            let mut st = shared.lock();
            let next = match st.parts.get(tp).filter(|p| {
                p.incarnation == asked.incarnation
                    && p.session == asked.session
                    && p.fetch_offset == Some(at)
                    && !p.revoking
            }) {
                None => Next::Stop,
                Some(p) if p.buffer_bytes < DECODE_AHEAD || p.assigning => Next::Decode,
                Some(p) if p.paused => Next::Stop,
                Some(_) => Next::Wait,
            };
            match next {
                Next::Wait => {
                    if !waiting {
                        st.decode_waiting += 1;
                        waiting = true;
                    }
                }
                Next::Decode | Next::Stop => {
                    if waiting {
                        st.decode_waiting -= 1;
                    }
                    let go = matches!(next, Next::Decode);
                    if !go {
                        asked.land(&mut st, tp);
                    }
                    return go;
                }
            }
        }
        tokio::select! {
            _ = notified => {}
            _ = tokio::time::sleep(IDLE_TICK) => {}
            _ = shared.shutdown_signal() => break false,
        }
    };
    if !room && waiting {
        shared.lock().decode_waiting -= 1;
    }
    room
}

/// One group of a partition's decoded records ([`PartDecoder::next_group`]).
struct Group {
    msgs: Vec<Message>,
    /// The fetch offset after the batches decoded so far.
    next: i64,
    /// The leader epoch of the last batch passed so far (control and aborted batches
    /// included; `None` while no batch carried one).
    last_epoch: Option<i32>,
    /// An error that stopped decoding (the messages before it are kept).
    err: Option<Error>,
    /// No group follows.
    done: bool,
}

/// Decodes the records of one partition's answer group by group: skips records before
/// `from`, hides control records, drops aborted transactions for `read_committed`.
struct PartDecoder {
    tp: TopicPartition,
    from: i64,
    records: Bytes,
    batches: record::BatchIter,
    read_committed: bool,
    aborted: std::iter::Peekable<std::vec::IntoIter<(i64, i64)>>,
    aborting: HashSet<i64>,
    next: i64,
    last_epoch: Option<i32>,
    done: bool,
}

impl PartDecoder {
    fn new(
        tp: &TopicPartition,
        from: i64,
        data: &PartitionData,
        opts: &DecodeOptions,
        read_committed: bool,
    ) -> Self {
        let records = data.records.clone().unwrap_or_default();
        let mut aborted: Vec<(i64, i64)> = if read_committed {
            data.aborted_transactions
                .as_ref()
                .map(|v| {
                    v.iter()
                        .map(|a| (a.first_offset, a.producer_id.0))
                        .collect()
                })
                .unwrap_or_default()
        } else {
            Vec::new()
        };
        aborted.sort_unstable();
        PartDecoder {
            tp: tp.clone(),
            from,
            batches: record::decode_batches(Bytes::clone(&records), opts),
            done: records.is_empty(),
            records,
            read_committed,
            aborted: aborted.into_iter().peekable(),
            aborting: HashSet::new(),
            next: from,
            last_epoch: None,
        }
    }

    /// The next group: the batches up to and including the first compressed one after which
    /// the group holds [`DECODE_GROUP`] buffered bytes or more, or all that are left.
    fn next_group(&mut self) -> Group {
        if self.done {
            return self.group(Vec::new(), None);
        }
        // Sized from the batch headers: grown batch by batch, the vector doubled and kept up
        // to twice the room it needs while the messages wait in the partition's buffer (74
        // MB of 186 MB in a heap profile of one consumer of 100 partitions). A compressed
        // first batch is a group of its own, most likely.
        let rest = &self.records[self.batches.consumed()..];
        let sized = match record::leading_batch(rest) {
            Some((len, true)) => &rest[..len],
            _ => rest,
        };
        let mut out = super::vec_pool::take(record::records_after(sized, self.from));
        let mut buffered = 0;
        let mut err = None;
        let from = self.from;
        loop {
            let Some(batch) = self.batches.next() else {
                self.done = true;
                break;
            };
            let batch = match batch {
                Ok(b) => b,
                Err(e) => {
                    let tp = &self.tp;
                    let next = self.next;
                    err = Some(Error::Protocol(format!("{tp} at offset {next}: {e}")));
                    self.done = true;
                    break;
                }
            };
            let batch_next = batch.next_offset();
            if batch_next <= from {
                continue;
            }
            if batch.partition_leader_epoch >= 0 {
                self.last_epoch = Some(batch.partition_leader_epoch);
            }
            if self.read_committed {
                while let Some(&(first, pid)) = self.aborted.peek() {
                    if first <= batch.last_offset() {
                        self.aborting.insert(pid);
                        self.aborted.next();
                    } else {
                        break;
                    }
                }
            }
            if batch.is_control() {
                if self.read_committed && batch.is_transactional() {
                    let abort = batch
                        .records
                        .first()
                        .and_then(|r| r.key.as_deref())
                        .and_then(record::control_record_type)
                        == Some(ControlType::Abort);
                    if abort {
                        self.aborting.remove(&batch.producer_id);
                    }
                }
                self.next = self.next.max(batch_next);
                continue;
            }
            if self.read_committed
                && batch.is_transactional()
                && self.aborting.contains(&batch.producer_id)
            {
                self.next = self.next.max(batch_next);
                continue;
            }
            let compressed = batch.compression() != record::Compression::None;
            let ts_type = batch.timestamp_type();
            let epoch = batch.partition_leader_epoch.max(-1);
            out.reserve(batch.records.len());
            for r in batch.records {
                if r.offset < from {
                    continue;
                }
                let m = Message::from_record(&self.tp, r, ts_type, epoch);
                if compressed {
                    buffered += m.buffered_size();
                }
                out.push(m);
            }
            self.next = self.next.max(batch_next);
            if compressed && buffered >= DECODE_GROUP {
                break;
            }
        }
        self.group(out, err)
    }

    /// `msgs` and `err` as a group, with where decoding stands now.
    fn group(&self, msgs: Vec<Message>, err: Option<Error>) -> Group {
        Group {
            msgs,
            next: self.next,
            last_epoch: self.last_epoch,
            err,
            done: self.done,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: usize = 1 << 20;

    /// A fetch fills at most a quarter of the bound, counted in buffered bytes: the first
    /// fetch of a consumer asked for all of `fetch.max.bytes` (50 MiB) against a 64 MiB
    /// bound, its 100 B records became ~100 MiB buffered, and every later fetch got only
    /// the ~1 MiB the application had just read (one round trip per MiB).
    #[test]
    fn a_fetch_fills_a_quarter_of_the_bound_in_buffered_bytes() {
        let mut x = Expansion::default();
        // 100 B records: ~1 MiB of batches became ~2 MiB buffered, again and again.
        for _ in 0..20 {
            x.observe(MIB, 2 * MIB + MIB / 8);
        }
        let (wire, reserved) = fetch_size(64 * MIB, 0, x, 50 * MIB);
        assert!(reserved <= 16 * MIB && reserved > 15 * MIB, "{reserved}");
        assert!(wire < 8 * MIB && wire > 7 * MIB, "{wire}");
        // What is left of the bound, when less than a quarter.
        let (wire, reserved) = fetch_size(64 * MIB, 60 * MIB, x, 50 * MIB);
        assert!(reserved <= 4 * MIB && wire < 2 * MIB, "{reserved} {wire}");
        // fetch.max.bytes caps the wire bytes.
        let (wire, reserved) = fetch_size(64 * MIB, 0, x, MIB);
        assert_eq!(wire, MIB);
        assert!(reserved > 2 * MIB && reserved <= 16 * MIB);
        // A full bound still asks for something (the caller only fetches with room left).
        assert_eq!(fetch_size(64 * MIB, 64 * MIB, x, 50 * MIB).0, 1);
    }

    /// A consumer slower than its brokers refills the bound a quarter at a time: a fetch
    /// waits until a quarter is free (then [`fetch_size`] asks for that quarter), not until
    /// one partition's fetch is (~1 MiB fetches, each costing the broker a whole request).
    #[test]
    fn lanes_share_fetch_min_bytes() {
        // The default: every lane answers as soon as anything is there.
        assert_eq!(lane_min_bytes(1, 2), 1);
        assert_eq!(lane_min_bytes(1, 1), 1);
        // A broker with one partition has one lane, which keeps the whole minimum.
        assert_eq!(lane_min_bytes(100_000, 1), 100_000);
        // Two lanes: half each, rounded up, so together at least the minimum.
        assert_eq!(lane_min_bytes(100_000, 2), 50_000);
        assert_eq!(lane_min_bytes(100_001, 2), 50_001);
        // Zero (answer at once, even empty) stays zero.
        assert_eq!(lane_min_bytes(0, 2), 0);
    }

    #[test]
    fn a_fetch_waits_for_a_quarter_of_the_bound_to_be_free() {
        assert_eq!(fetch_at_of(64 * MIB), 48 * MIB);
        let (wire, reserved) = fetch_size(
            64 * MIB,
            fetch_at_of(64 * MIB),
            Expansion::default(),
            50 * MIB,
        );
        assert_eq!((wire, reserved), (8 * MIB, 16 * MIB));
        // Tiny bounds still leave room for a fetch.
        assert_eq!(fetch_at_of(1024), 768);
        assert_eq!(fetch_at_of(3), 2);
        assert_eq!(fetch_at_of(1), 0);
    }

    #[test]
    fn expansion_follows_the_data_within_bounds() {
        let mut x = Expansion::default();
        assert_eq!(x.buffered(1000), 2000, "before any data: 100 B records");
        for _ in 0..30 {
            x.observe(1 << 20, (1 << 20) + (1 << 17));
        }
        assert!(
            (1120..=1130).contains(&x.buffered(1000)),
            "{}",
            x.buffered(1000)
        );
        // Small data says nothing; less than one byte per byte is taken as one.
        x.observe(100, 100_000);
        assert!((1120..=1130).contains(&x.buffered(1000)));
        for _ in 0..30 {
            x.observe(1 << 20, 1 << 10);
        }
        assert_eq!(x.buffered(1000), 1000);
        // Highly compressed data: capped at 64.
        for _ in 0..60 {
            x.observe(1 << 20, usize::MAX);
        }
        assert!((63_500..=64_000).contains(&x.buffered(1000)));
        assert!((1000..=1010).contains(&x.wire(64_000)));
    }
}

#[cfg(test)]
mod read_replica_tests {
    use std::collections::HashMap;

    use super::*;
    use crate::cluster::metadata::{BrokerMeta, PartitionMeta, TopicMeta};

    /// Brokers 1-3 (3 only when `three_up`); partition `t`-0 led by 1, replicas 1 and 2.
    fn snapshot(three_up: bool) -> MetadataSnapshot {
        let mut snap = MetadataSnapshot::default();
        for id in [1, 2, 3].into_iter().filter(|id| three_up || *id != 3) {
            let b = BrokerMeta {
                node_id: id,
                host: "127.0.0.1".into(),
                port: 9000 + id,
                rack: None,
            };
            snap.brokers.insert(id, b);
        }
        let t = TopicMeta {
            name: "t".into(),
            id: Default::default(),
            is_internal: false,
            error: None,
            partitions: vec![PartitionMeta {
                partition: 0,
                leader: 1,
                leader_epoch: 0,
                replicas: vec![1, 2],
                isr: vec![1, 2],
                offline: vec![],
                error: None,
            }],
        };
        snap.topics = HashMap::from([(Arc::from("t"), Arc::new(t))]);
        snap
    }

    #[test]
    fn a_partition_is_fetched_from_its_read_replica_while_that_holds() {
        let (snap, tp, now) = (snapshot(true), TopicPartition::new("t", 0), Instant::now());
        let mut p = PartState::new(Reset::Policy);
        assert_eq!(fetch_node(&snap, &tp, &p, now), Some(1), "the leader");
        let later = now + Duration::from_secs(60);
        p.read_replica = Some((2, later));
        assert_eq!(
            fetch_node(&snap, &tp, &p, now),
            Some(2),
            "the named replica"
        );
        assert_eq!(fetch_node(&snap, &tp, &p, later), Some(1), "expired");
        p.read_replica = Some((3, later));
        assert_eq!(fetch_node(&snap, &tp, &p, now), Some(1), "not a replica");
        p.read_replica = Some((2, later));
        let mut gone = snapshot(true);
        gone.brokers.remove(&2);
        assert_eq!(
            fetch_node(&gone, &tp, &p, now),
            Some(1),
            "not a broker any more"
        );
        assert_eq!(fetch_node(&snapshot(false), &tp, &p, now), Some(2));
    }
}
