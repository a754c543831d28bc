//! State shared by the consumer handle, the fetch tasks and the membership task.
//!
//! One `std::sync::Mutex<State>` guards everything per partition; it is never held across an
//! `.await`. Two `watch` counters wake tasks: `work` (something a fetcher or the position
//! resolver may act on changed) and wakers registered by `recv` for data.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::Waker;
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use super::message::{CommitResult, Message, Offset};
use crate::cluster::Cluster;
use crate::config::ConsumerConfig;
use crate::error::Error;
use crate::types::TopicPartition;

/// How a partition without a position gets one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Reset {
    /// The group's committed offset, else `auto.offset.reset`.
    Committed,
    /// `auto.offset.reset` (after OFFSET_OUT_OF_RANGE or when nothing is committed).
    Policy,
    /// ListOffsets with this timestamp (-2 earliest, -1 latest, or a time).
    Timestamp(i64),
    /// `n` before the end.
    Tail(i64),
}

impl Reset {
    pub(crate) fn from_offset(o: Offset) -> Result<Reset, i64> {
        match o {
            Offset::Beginning => Ok(Reset::Timestamp(-2)),
            Offset::End => Ok(Reset::Timestamp(-1)),
            Offset::Stored => Ok(Reset::Committed),
            Offset::OffsetTail(n) => Ok(Reset::Tail(n)),
            Offset::Timestamp(t) => Ok(Reset::Timestamp(t)),
            Offset::Offset(o) => Err(o),
        }
    }
}

/// Per-partition consumer state.
#[derive(Debug)]
pub(crate) struct PartState {
    /// Next offset to fetch; `None` while the position is being resolved.
    pub fetch_offset: Option<i64>,
    /// Leader epoch of the last batch before `fetch_offset` (control batches included): the
    /// position's epoch once the buffer is delivered.
    pub fetch_epoch: Option<i32>,
    /// Pending position resolution.
    pub reset: Option<Reset>,
    /// Next offset to hand to the application (the consumed position).
    pub position: Option<i64>,
    /// Leader epoch of the record before the position: the last delivered record's, or the
    /// one a committed offset or a ListOffsets answer came with (`None`: unknown, e.g. after
    /// a seek to an absolute offset; such a position is never validated, as in Java).
    pub position_epoch: Option<i32>,
    /// The partition leader's epoch (from metadata) the position was last checked against:
    /// Java's "current leader" of the fetch position. Fetch and ListOffsets send it as
    /// `current_leader_epoch`; a different epoch in metadata means a leader change, and the
    /// position is validated before the next fetch ([`PartState::await_validation`]).
    pub leader_epoch: Option<i32>,
    /// The position waits for validation with OffsetsForLeaderEpoch (KIP-320; Java's
    /// AWAIT_VALIDATION): not fetched until the leader confirmed that its log still holds
    /// the position's epoch up to the position, or the truncation was handled.
    pub validate: bool,
    /// Prefetched messages, in offset order, all `>= position`.
    pub buffer: VecDeque<Message>,
    /// Bytes accounted for `buffer`.
    pub buffer_bytes: usize,
    /// Paused by the application: not fetched, not delivered.
    pub paused: bool,
    /// A fetch for this partition is in flight (position lookups wait for it to end).
    pub inflight: bool,
    /// Which assignment of the partition this state belongs to: unique in the process, fixed
    /// at creation. A fetch started for an earlier assignment (the partition was revoked or
    /// unassigned, then assigned again) must not touch this one, not even its `inflight`.
    pub incarnation: u64,
    /// Changed by every seek/reset to a value never used before in the process (see
    /// [`next_session`]): results of fetches and lookups started before are discarded.
    pub session: u64,
    /// Offset stored for the next commit (`store_offset` / auto offset store).
    pub stored: Option<(i64, Option<i32>)>,
    /// Last offset committed by this consumer (skip redundant auto commits).
    pub committed: Option<i64>,
    /// Watermarks from the last fetch response.
    pub high_watermark: i64,
    /// Last stable offset from the last fetch response.
    pub last_stable_offset: i64,
    /// Log start offset from the last fetch response.
    pub log_start_offset: i64,
    /// Do not fetch before this instant (after a partition error).
    pub retry_at: Option<Instant>,
    /// Error stop: not fetched until the application seeks.
    pub stopped: bool,
    /// `enable.partition.eof` already reported at this position.
    pub eof_reported: bool,
    /// Being revoked by the membership task: not delivered any more.
    pub revoking: bool,
    /// Being assigned: not fetched (so not delivered) until the listener's `on_assigned`
    /// returned, which may seek it.
    pub assigning: bool,
    /// A lookup error was already reported for this partition.
    pub error_reported: bool,
    /// The last fetch at `fetch_offset` was answered OFFSET_OUT_OF_RANGE while records
    /// before it were still buffered: the partition is not fetched again until they are
    /// delivered (then the fetch is repeated, and only an answer out of range at the
    /// position itself applies `auto.offset.reset`, as in Java, which fetches a partition
    /// only once its fetched records were handed out).
    pub out_of_range: bool,
    /// Place of the partition in the order of the next fetch (lowest first; ties in
    /// partition order). A fetch that returns records for the partition moves it to the end
    /// ([`State::next_fetch_rank`]), as Java does, so that under `fetch.max.bytes` no
    /// partition starves behind others, and a partition whose next batch is bigger than
    /// `max.partition.fetch.bytes` comes first in turn: the broker returns the first batch
    /// of the first non-empty partition whole (KIP-74).
    pub fetch_rank: u64,
    /// Fetched ahead: `(session, offset)` after the records of a response that is still
    /// being decoded (the next fetch goes out meanwhile and starts there). Only valid in the
    /// session it names; cleared when that response is applied.
    pub ahead: Option<(u64, i64)>,
    /// The replica to fetch from instead of the leader, and until when (KIP-392): the
    /// leader names it (`preferred_read_replica`, chosen by the broker's
    /// `replica.selector.class` from the fetch's `client.rack`) and it holds for
    /// `metadata.max.age.ms`, or until a fetch from it fails.
    pub read_replica: Option<(i32, Instant)>,
    /// Records and key + value bytes delivered to the application (statistics; counted
    /// under the lock `recv` holds anyway).
    pub rxmsgs: u64,
    pub rxbytes: u64,
}

/// A session number never handed out before in this process.
///
/// Sessions used to be a per-partition counter starting at 0. When a partition was revoked
/// (eager rebalance) or unassigned and then assigned again, the new state restarted at 0 and
/// walked through the same numbers as the old one, so a position lookup started for the old
/// assignment (e.g. "the end of the log", or the committed offset of the previous owner)
/// could carry the same session as a seek made on the new assignment and overwrite it: the
/// partition resumed at the stale position and everything between the seek target and it
/// was never delivered. With process-wide unique sessions a stale answer can never match.
pub(crate) fn next_session() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

impl PartState {
    pub(crate) fn new(reset: Reset) -> PartState {
        let session = next_session();
        PartState {
            fetch_offset: None,
            fetch_epoch: None,
            reset: Some(reset),
            position: None,
            position_epoch: None,
            leader_epoch: None,
            validate: false,
            buffer: VecDeque::new(),
            buffer_bytes: 0,
            paused: false,
            inflight: false,
            incarnation: session,
            session,
            stored: None,
            committed: None,
            high_watermark: -1,
            last_stable_offset: -1,
            log_start_offset: -1,
            retry_at: None,
            stopped: false,
            eof_reported: false,
            revoking: false,
            assigning: false,
            error_reported: false,
            out_of_range: false,
            fetch_rank: 0,
            ahead: None,
            read_replica: None,
            rxmsgs: 0,
            rxbytes: 0,
        }
    }

    /// Seeks: drops the buffer and the results of every fetch and lookup in flight, and
    /// moves the position to the target. A target that needs a lookup (beginning, end,
    /// stored, tail, timestamp) leaves the partition without a position until the lookup
    /// answers, like Java's "awaiting reset" state.
    ///
    /// The position before the seek must not survive it: `commit()` commits positions (and
    /// `on_revoked` listeners commit them while a rebalance takes the partition away), so a
    /// stale position committed between the seek and its lookup undid the seek: a seek to
    /// `Stored` then resolved to that very commit and the records the seek asked for again
    /// were skipped. With `auto_store` (`enable.auto.offset.store`) the stored offset is the
    /// consumer's own copy of the position and follows it for the same reason.
    ///
    /// Returns the bytes freed from the buffer.
    pub(crate) fn seek(&mut self, to: Offset, auto_store: bool) -> usize {
        let freed = self.buffer_bytes;
        self.buffer.clear();
        self.buffer_bytes = 0;
        self.session = next_session();
        self.retry_at = None;
        self.stopped = false;
        self.eof_reported = false;
        self.out_of_range = false;
        self.position_epoch = None;
        self.fetch_epoch = None;
        self.validate = false;
        match Reset::from_offset(to) {
            Ok(r) => {
                self.fetch_offset = None;
                self.position = None;
                self.reset = Some(r);
            }
            Err(o) => {
                self.fetch_offset = Some(o);
                self.position = Some(o);
                self.reset = None;
            }
        }
        if auto_store {
            self.stored = self.position.map(|o| (o, None));
        }
        freed
    }

    /// Notes the partition leader's current epoch from metadata. A change (a new leader, or
    /// the same broker elected again) puts a position with a known epoch into validation
    /// ([`await_validation`](Self::await_validation)); returns the bytes freed from the
    /// buffer.
    pub(crate) fn note_leader_epoch(&mut self, epoch: Option<i32>) -> usize {
        if self.leader_epoch == epoch {
            return 0;
        }
        self.leader_epoch = epoch;
        self.await_validation()
    }

    /// Puts the position into validation (Java's AWAIT_VALIDATION), when it has a leader
    /// epoch and the leader's epoch is known (without both there is nothing to validate and
    /// fetching goes on, as in Java): buffered records are dropped (they came from the
    /// former leader and may be beyond the new leader's log; Java drops them too), the next
    /// fetch starts at the position again once the position is validated, and fetches and
    /// validations in flight are disregarded (new session). Returns the bytes freed.
    pub(crate) fn await_validation(&mut self) -> usize {
        if self.reset.is_some()
            || self.stopped
            || self.position.is_none()
            || self.position_epoch.is_none()
            || self.leader_epoch.is_none()
        {
            return 0;
        }
        let freed = std::mem::take(&mut self.buffer_bytes);
        self.buffer.clear();
        self.fetch_offset = self.position;
        self.fetch_epoch = self.position_epoch;
        self.session = next_session();
        self.out_of_range = false;
        self.eof_reported = false;
        self.retry_at = None;
        self.validate = true;
        freed
    }

    /// Offset the next fetch of this partition starts at: past a response still being
    /// decoded ([`PartState::ahead`]) if there is one, else `fetch_offset`.
    pub(crate) fn next_fetch_offset(&self) -> Option<i64> {
        let ahead = self
            .ahead
            .filter(|(s, _)| *s == self.session)
            .map(|(_, o)| o);
        self.fetch_offset.and(ahead.or(self.fetch_offset))
    }

    /// Whether a fetch may include this partition now. How much it holds buffered does not
    /// matter: only the total (`queued.max.messages.kbytes`) bounds the prefetch, and a
    /// partition with data is never left out of a fetch that would otherwise long-poll
    /// the caught-up ones for `fetch.wait.max.ms` (see [`super::fetcher`]).
    pub(crate) fn fetchable(&self, now: Instant) -> bool {
        self.fetch_offset.is_some()
            && !self.validate
            && !self.paused
            && !self.inflight
            && !self.stopped
            && !self.revoking
            && (!self.out_of_range || self.buffer.is_empty())
            && !self.assigning
            && self.retry_at.is_none_or(|t| t <= now)
    }
}

/// What the consumer is subscribed to.
#[derive(Debug, Clone, Default)]
pub(crate) enum SubscriptionSpec {
    /// Nothing (or manual assignment).
    #[default]
    None,
    /// A list of topics.
    Topics(BTreeSet<String>),
    /// A regular expression matched against all topic names.
    Pattern(regex::Regex),
}

/// The messages one fetch response brought for one partition, as a place in the delivery
/// order: `recv` takes from the partition's buffer while its first message's offset is at
/// most `last`, then moves on to the next chunk. Delivering chunks whole and in arrival
/// order (as the Java client and librdkafka do) lets a fetch response's memory go as soon as
/// its last chunk is read; going round robin over partitions kept every response of a wide
/// assignment alive until all of its partitions were drained (one consumer of 100
/// partitions: 113 MB RSS against a 64 MiB bound). A chunk left behind by a seek or a
/// revocation is dropped when it reaches the front; a paused partition's chunks wait behind
/// the others.
#[derive(Debug, Clone)]
pub(crate) struct Chunk {
    pub tp: TopicPartition,
    pub last: i64,
}

/// Everything behind the mutex.
#[derive(Default)]
pub(crate) struct State {
    pub parts: BTreeMap<TopicPartition, PartState>,
    /// Errors for the application, returned by the next `recv`.
    pub errors: VecDeque<Error>,
    /// Fetched chunks in the order they arrived: `recv` delivers the front one whole, then
    /// the next (see [`Chunk`]).
    pub order: VecDeque<Chunk>,
    /// Bytes in all buffers.
    pub buffered_bytes: usize,
    /// Bytes the fetches in flight may still bring (each reserves its request's `max_bytes`
    /// until its answer is applied): with `buffered_bytes`, what `queued.max.messages.kbytes`
    /// bounds.
    pub fetch_reserved: usize,
    /// Wakers of pending `recv` calls.
    pub waiters: Vec<Waker>,
    /// Group subscription (empty for manual assignment).
    pub subscription: SubscriptionSpec,
    /// `true` when `assign` was used (no group membership).
    pub manual: bool,
    /// A fatal error: every later call fails with it.
    pub fatal: Option<Error>,
    /// Set by `close`.
    pub closed: bool,
    /// EOF events pending for `enable.partition.eof` (reported as messages-less errors).
    pub eof: VecDeque<(TopicPartition, i64)>,
    /// The last fetch rank handed out ([`PartState::fetch_rank`]).
    pub fetch_ranks: u64,
    /// Decodings waiting for a partition's buffer to go under
    /// [`DECODE_AHEAD`](super::fetcher::DECODE_AHEAD) (taking a message wakes them then).
    pub decode_waiting: usize,
    /// Records and key + value bytes delivered to the application (statistics).
    pub rxmsgs: u64,
    pub rxbytes: u64,
    /// Buffered bytes per fetched byte, learned from the responses applied.
    pub expansion: Expansion,
}

/// How many bytes of the prefetch bound one byte of a fetch response becomes once decoded
/// ([`Message::buffered_size`]: the message struct plus key, value and headers), learned
/// from the partitions' data applied (a moving average). About 2 for uncompressed 100 B
/// records, 1.1 at 1 KiB, more with compression. A fetch asks for the wire bytes that fill
/// the room it reserves, so the bound holds in the unit it is counted in: fetches of 50 MiB
/// of 100 B records filled twice a 64 MiB bound.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Expansion {
    /// The ratio in 1/256ths, at least 1.
    per_256: usize,
}

impl Default for Expansion {
    fn default() -> Self {
        // Before any data: uncompressed records of ~100 B.
        Expansion { per_256: 2 * 256 }
    }
}

impl Expansion {
    /// Most the ratio is taken to be (compressed data of long runs of one byte).
    const MAX_PER_256: usize = 64 * 256;

    /// Takes in one partition's data: `wire` bytes of record batches became `buffered`.
    /// Data under 4 KiB is too small to say much (batch headers dominate).
    pub(crate) fn observe(&mut self, wire: usize, buffered: usize) {
        if wire < 4096 {
            return;
        }
        let r = (buffered.saturating_mul(256) / wire).clamp(256, Self::MAX_PER_256);
        self.per_256 = (self.per_256 * 3 + r) / 4;
    }

    /// Buffered bytes that `wire` bytes of records are expected to become.
    pub(crate) fn buffered(&self, wire: usize) -> usize {
        wire.saturating_mul(self.per_256) / 256
    }

    /// Wire bytes expected to become at most `buffered` bytes.
    pub(crate) fn wire(&self, buffered: usize) -> usize {
        buffered.saturating_mul(256) / self.per_256
    }
}

impl State {
    /// Wakes every pending `recv`; call after releasing the lock when possible.
    pub(crate) fn take_waiters(&mut self) -> Vec<Waker> {
        std::mem::take(&mut self.waiters)
    }

    /// A fetch rank after every one handed out so far: the end of the fetch order.
    pub(crate) fn next_fetch_rank(&mut self) -> u64 {
        self.fetch_ranks += 1;
        self.fetch_ranks
    }

    /// The state of `tp`, added (`PartState::new(Reset::Committed)`) if absent. A new
    /// partition's key shares its topic name with the other partitions of the topic already
    /// held, so that comparing keys of one topic (every `recv` looks its partition up) is a
    /// pointer comparison instead of a string comparison.
    pub(crate) fn part_entry(&mut self, tp: &TopicPartition) -> &mut PartState {
        if !self.parts.contains_key(tp) {
            let from = TopicPartition {
                topic: tp.topic.clone(),
                partition: i32::MIN,
            };
            let topic = self
                .parts
                .range(from..)
                .next()
                .filter(|(k, _)| k.topic == tp.topic)
                .map_or_else(|| tp.topic.clone(), |(k, _)| k.topic.clone());
            let key = TopicPartition {
                topic,
                partition: tp.partition,
            };
            self.parts.insert(key, PartState::new(Reset::Committed));
        }
        self.parts.get_mut(tp).expect("inserted")
    }

    /// Removes a partition, returning the bytes freed (its chunks in [`State::order`] are
    /// dropped when they come to the front).
    pub(crate) fn remove(&mut self, tp: &TopicPartition) {
        if let Some(p) = self.parts.remove(tp) {
            self.buffered_bytes -= p.buffer_bytes;
        }
    }
}

/// Everything the consumer's tasks share. Held in an `Arc`.
pub(crate) struct Shared {
    pub cluster: Cluster,
    pub cfg: ConsumerConfig,
    state: Mutex<State>,
    /// Bumped when fetchers or the resolver may have work.
    pub work: watch::Sender<u64>,
    /// Wakes the decodings waiting for a partition to go under
    /// [`DECODE_AHEAD`](super::fetcher::DECODE_AHEAD) (`recv` when one does; and
    /// [`notify_work`](Self::notify_work), for pauses, seeks and revocations).
    pub decode_room: tokio::sync::Notify,
    /// Bumped when the subscription changed (the membership task rejoins).
    pub resubscribe: watch::Sender<u64>,
    /// `true` once the consumer is closed or dropped: every task stops.
    pub shutdown: watch::Sender<bool>,
    /// `recv` calls so far: counted without reading a clock (`recv` runs per message);
    /// the membership task times them with `since_last_poll`.
    polls: AtomicU64,
    /// The poll count `since_last_poll` last saw change, and when it saw that.
    poll_seen: Mutex<(u64, Instant)>,
    pub epoch: Instant,
    /// Group membership for commits: generation, member id.
    pub group: Mutex<GroupInfo>,
    /// Async commit results, if the application asked for them.
    pub commit_results: Mutex<Option<mpsc::UnboundedSender<CommitResult>>>,
    /// Rate limit for background metadata refreshes: the last one (ms since `epoch`) and
    /// the least gap to the next (`retry.backoff.ms`, growing towards `retry.backoff.max.ms`
    /// while partitions stay without a leader, KIP-580; see
    /// [`leaders_known`](Shared::leaders_known)), with the refreshes since it last started over.
    last_refresh_ms: AtomicU64,
    refresh_gap_ms: AtomicU64,
    refresh_attempts: std::sync::atomic::AtomicU32,
    refreshing: AtomicBool,
    /// Statistics (`statistics.interval.ms`): the newest snapshot, the instance number,
    /// rebalances completed, when the last one ended and when the membership last
    /// changed (µs, [`crate::stats::now_us`]).
    pub stats_rx: std::sync::OnceLock<crate::stats::StatisticsReceiver>,
    pub instance: u64,
    rebalances: AtomicU64,
    last_rebalance_us: std::sync::atomic::AtomicI64,
    group_since_us: std::sync::atomic::AtomicI64,
}

/// The membership data commits are tagged with.
#[derive(Debug, Clone)]
pub(crate) struct GroupInfo {
    /// Current generation, `-1` when not in a (stable) generation.
    pub generation: i32,
    /// Member id, empty before the first join.
    pub member_id: String,
    /// Whether the member currently belongs to a generation (subscribe mode).
    pub joined: bool,
    /// A rebalance is completing (JoinGroup answered, its outcome not applied yet):
    /// `generation` is over, so commits wait for the new one.
    pub rebalancing: bool,
}

impl Shared {
    pub(crate) fn new(cluster: Cluster, cfg: ConsumerConfig) -> Arc<Shared> {
        let (work, _) = watch::channel(0);
        let (resubscribe, _) = watch::channel(0);
        let (shutdown, _) = watch::channel(false);
        Arc::new(Shared {
            cluster,
            cfg,
            state: Mutex::new(State::default()),
            work,
            decode_room: tokio::sync::Notify::new(),
            resubscribe,
            shutdown,
            polls: AtomicU64::new(0),
            poll_seen: Mutex::new((0, Instant::now())),
            epoch: Instant::now(),
            group: Mutex::new(GroupInfo {
                generation: -1,
                member_id: String::new(),
                joined: false,
                rebalancing: false,
            }),
            commit_results: Mutex::new(None),
            last_refresh_ms: AtomicU64::new(0),
            refresh_gap_ms: AtomicU64::new(0),
            refresh_attempts: std::sync::atomic::AtomicU32::new(0),
            refreshing: AtomicBool::new(false),
            stats_rx: std::sync::OnceLock::new(),
            instance: crate::stats::next_instance(),
            rebalances: AtomicU64::new(0),
            last_rebalance_us: std::sync::atomic::AtomicI64::new(0),
            group_since_us: std::sync::atomic::AtomicI64::new(crate::stats::now_us()),
        })
    }

    /// Locks the state (poisoning is ignored: the state stays usable).
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Membership info for commits.
    pub(crate) fn group_info(&self) -> GroupInfo {
        self.group.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Updates the membership info, and wakes the commits waiting for a rebalance to end
    /// (through `work`).
    pub(crate) fn set_group_info(&self, f: impl FnOnce(&mut GroupInfo)) {
        {
            let mut g = self.group.lock().unwrap_or_else(|p| p.into_inner());
            let before = (g.joined, g.rebalancing);
            f(&mut g);
            if before != (g.joined, g.rebalancing) {
                self.group_since_us
                    .store(crate::stats::now_us(), Ordering::Relaxed);
            }
        }
        self.notify_work();
    }

    /// A rebalance completed (statistics).
    pub(crate) fn rebalanced(&self) {
        self.rebalances.fetch_add(1, Ordering::Relaxed);
        self.last_rebalance_us
            .store(crate::stats::now_us(), Ordering::Relaxed);
    }

    /// The consumer's statistics snapshot; `None` once it is closed.
    pub(crate) fn statistics(&self) -> Option<crate::stats::Statistics> {
        use crate::stats::{GroupStats, PartitionStats, TopicStats, OFFSET_INVALID};
        if *self.shutdown.borrow() {
            return None;
        }
        let cfg = &self.cfg;
        let created = std::time::Instant::now() - self.epoch.elapsed();
        let mut st =
            crate::stats::header(&cfg.common.client_id, "consumer", created, self.instance);
        let snap = self.cluster.metadata();
        let committed_iso = cfg.isolation_level == crate::config::IsolationLevel::ReadCommitted;
        let (assigned, manual, closed) = {
            let s = self.lock();
            st.rxmsgs = s.rxmsgs;
            st.rxmsg_bytes = s.rxbytes;
            for (tp, p) in &s.parts {
                let leader = snap.leader(&tp.topic, tp.partition).unwrap_or(-1);
                let off = |o: Option<i64>| o.unwrap_or(OFFSET_INVALID);
                let end = if committed_iso {
                    p.last_stable_offset
                } else {
                    p.high_watermark
                };
                let lag = |o: Option<i64>| match o {
                    Some(o) if end >= 0 && o >= 0 => (end - o).max(0),
                    _ => -1,
                };
                let fetch_state = if p.stopped || p.paused {
                    "stopped"
                } else if p.reset.is_some() || p.fetch_offset.is_none() {
                    "offset-query"
                } else if p.validate {
                    "validate-epoch-wait"
                } else if p.revoking || p.assigning {
                    "none"
                } else {
                    "active"
                };
                let stored = p.stored.map(|(o, _)| o);
                let ps = PartitionStats {
                    partition: tp.partition,
                    broker: leader,
                    leader,
                    rxmsgs: p.rxmsgs,
                    rxbytes: p.rxbytes,
                    fetch_state: fetch_state.into(),
                    fetchq_cnt: p.buffer.len() as i64,
                    fetchq_size: p.buffer_bytes as u64,
                    next_offset: off(p.fetch_offset),
                    app_offset: off(p.position),
                    stored_offset: off(stored),
                    committed_offset: off(p.committed),
                    eof_offset: if p.eof_reported {
                        off(p.position)
                    } else {
                        OFFSET_INVALID
                    },
                    lo_offset: if p.log_start_offset >= 0 {
                        p.log_start_offset
                    } else {
                        OFFSET_INVALID
                    },
                    hi_offset: if p.high_watermark >= 0 {
                        p.high_watermark
                    } else {
                        OFFSET_INVALID
                    },
                    ls_offset: if p.last_stable_offset >= 0 {
                        p.last_stable_offset
                    } else {
                        OFFSET_INVALID
                    },
                    consumer_lag: lag(p.committed),
                    consumer_lag_stored: lag(stored),
                    ..Default::default()
                };
                st.topics
                    .entry(tp.topic.to_string())
                    .or_insert_with(|| TopicStats {
                        topic: tp.topic.to_string(),
                        ..Default::default()
                    })
                    .partitions
                    .insert(tp.partition, ps);
            }
            let assigned = s.parts.values().filter(|p| !p.revoking).count();
            (assigned, s.manual, s.closed)
        };
        if closed {
            return None;
        }
        for b in self.cluster.broker_stats() {
            st.brokers.insert(b.name.clone(), b);
        }
        crate::stats::add_broker_totals(&mut st);
        if cfg.group_id.is_some() && !manual {
            let g = self.group_info();
            let now = crate::stats::now_us();
            let last = self.last_rebalance_us.load(Ordering::Relaxed);
            st.cgrp = Some(GroupStats {
                state: if g.joined { "up" } else { "wait-coord" }.into(),
                stateage: (now - self.group_since_us.load(Ordering::Relaxed)).max(0) / 1000,
                join_state: if g.rebalancing {
                    "wait-sync"
                } else if g.joined {
                    "steady"
                } else {
                    "wait-join"
                }
                .into(),
                rebalance_age: if last > 0 {
                    (now - last).max(0) / 1000
                } else {
                    0
                },
                rebalance_cnt: self.rebalances.load(Ordering::Relaxed) as i64,
                rebalance_reason: String::new(),
                assignment_size: assigned as i32,
            });
        }
        Some(st)
    }

    /// Wakes fetchers and the resolver.
    pub(crate) fn notify_work(&self) {
        self.work.send_modify(|v| *v = v.wrapping_add(1));
        self.decode_room.notify_waiters();
    }

    /// Wakes pending `recv` calls.
    pub(crate) fn wake(wakers: Vec<Waker>) {
        for w in wakers {
            w.wake();
        }
    }

    /// Queues an error for the application.
    pub(crate) fn push_error(&self, e: Error) {
        let w = {
            let mut st = self.lock();
            st.errors.push_back(e);
            st.take_waiters()
        };
        Shared::wake(w);
    }

    /// `true` once closed or dropped.
    pub(crate) fn is_shutdown(&self) -> bool {
        *self.shutdown.borrow()
    }

    /// Resolves when the consumer shuts down.
    pub(crate) async fn shutdown_signal(&self) {
        let mut rx = self.shutdown.subscribe();
        let _ = rx.wait_for(|v| *v).await;
    }

    /// Notes a `recv` call (for `max.poll.interval.ms`).
    pub(crate) fn touch_poll(&self) {
        self.polls.fetch_add(1, Ordering::Relaxed);
    }

    /// Time since the last `recv` call (`None` before the first), as seen by the caller's
    /// checks: the count of `recv` calls is compared with the previous check, so the answer
    /// can be short by up to the time between two checks (the membership task checks every
    /// heartbeat, and every 50 ms while it waits for the application to poll again).
    pub(crate) fn since_last_poll(&self) -> Option<Duration> {
        let n = self.polls.load(Ordering::Relaxed);
        if n == 0 {
            return None;
        }
        let now = Instant::now();
        let mut seen = self.poll_seen.lock().unwrap_or_else(|e| e.into_inner());
        if seen.0 != n {
            *seen = (n, now);
        }
        Some(now.saturating_duration_since(seen.1))
    }

    /// Starts a metadata refresh in the background (at most one at a time, spaced by the
    /// refresh gap: `retry.backoff.ms`, growing while leaders stay unknown).
    pub(crate) fn refresh_metadata_soon(self: &Arc<Self>) {
        let now = self.epoch.elapsed().as_millis() as u64;
        let last = self.last_refresh_ms.load(Ordering::Relaxed);
        let base = self.cfg.common.retry_backoff.as_millis() as u64;
        let min_gap = self.refresh_gap_ms.load(Ordering::Relaxed).max(base);
        if last != 0 && now.saturating_sub(last) < min_gap {
            return;
        }
        if self.refreshing.swap(true, Ordering::SeqCst) {
            return;
        }
        self.last_refresh_ms.store(now.max(1), Ordering::Relaxed);
        let attempt = self.refresh_attempts.fetch_add(1, Ordering::Relaxed);
        let c = &self.cfg.common;
        let gap =
            crate::backoff::Backoff::new(c.retry_backoff, c.retry_backoff_max).delay_for(attempt);
        self.refresh_gap_ms
            .store(gap.as_millis() as u64, Ordering::Relaxed);
        let me = self.clone();
        tokio::spawn(async move {
            if let Err(e) = me.cluster.refresh().await {
                tracing::debug!(error = %e, "consumer metadata refresh failed");
            }
            me.refreshing.store(false, Ordering::SeqCst);
            me.notify_work();
        });
    }

    /// Every partition being fetched has a leader: metadata refreshes are spaced by
    /// `retry.backoff.ms` again (after growing while some had none).
    pub(crate) fn leaders_known(&self) {
        if self.refresh_attempts.load(Ordering::Relaxed) > 0 {
            self.refresh_attempts.store(0, Ordering::Relaxed);
            self.refresh_gap_ms.store(0, Ordering::Relaxed);
        }
    }

    /// Sends an async commit result to the application's channel, if any.
    pub(crate) fn report_commit(&self, r: CommitResult) {
        let g = self
            .commit_results
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if let Some(tx) = g.as_ref() {
            let _ = tx.send(r);
        }
    }
}
