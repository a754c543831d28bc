//! Per-partition accumulation of records into batches, and the one place that decides when a
//! batch may be sent (shared between `send` callers and the sender task, each partition
//! behind its own short `std::sync::Mutex`).
//!
//! `send` encodes the record straight into the partition's open batch
//! ([`BatchBuilder::append`]). A batch is *closed* (moved to the partition's `closed` queue,
//! ready at once) when the next record would not fit in `batch.size` bytes or
//! `batch.num.messages` records; an open batch is ready `linger.ms` after it was created, or
//! at once while a flush or close is running. A batch never sent expires
//! `delivery.timeout.ms` after it was created.
//!
//! The sender only asks: [`Accumulator::ready`] (ready partitions per leader, expired
//! batches, when to look again) and [`Accumulator::drain`] (the next ready batch of a
//! partition, if it fits the request being built); [`Accumulator::drain_all`] empties
//! everything when batches must fail. The partition state itself is private.

use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::Duration;

use tokio::sync::{watch, Notify, Semaphore};
use tokio::time::Instant;

use crate::cluster::{MetadataSnapshot, TopicMeta};
use crate::error::{Error, Result};

use super::delivery::{Completion, DeliveryFuture};
use crate::config::ProducerConfig;
use crate::record::{BatchBuilder, BufferPool, RECORD_BATCH_OVERHEAD};

/// Topic and partition.
pub(crate) type Tp = (Arc<str>, i32);

/// A batch taken out of the accumulator (drained to be sent, expired, or failed).
#[derive(Debug)]
pub(crate) struct OpenBatch {
    pub id: u64,
    pub builder: BatchBuilder,
    pub completion: Arc<Completion>,
    pub created: Instant,
    /// Bytes of `buffer.memory` and records of `queue.buffering.max.messages` this batch
    /// holds (released when it completes).
    pub permits: Held,
}

/// What a batch holds of the producer's buffer bounds: bytes of `buffer.memory` and records
/// of `queue.buffering.max.messages` (released together when the batch completes).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Held {
    pub bytes: usize,
    pub records: usize,
}

/// One partition's batches not yet taken by the sender.
#[derive(Debug, Default)]
struct PartitionAcc {
    open: Option<OpenBatch>,
    closed: VecDeque<OpenBatch>,
    /// Bytes of the last batch the sender took: the next batch's buffer starts that large
    /// (see [`Accumulator::batch_capacity`]).
    last_size: usize,
}

impl PartitionAcc {
    fn is_empty(&self) -> bool {
        self.open.is_none() && self.closed.is_empty()
    }

    /// Creation time of the oldest batch.
    fn oldest(&self) -> Option<Instant> {
        self.closed
            .front()
            .or(self.open.as_ref())
            .map(|b| b.created)
    }

    /// Removes the oldest batch.
    fn pop_oldest(&mut self) -> Option<OpenBatch> {
        self.closed.pop_front().or_else(|| self.open.take())
    }

    /// The batch that would be sent next, if one is ready: the oldest closed one, else the
    /// open one once it lingered long enough (or at once when `force`d).
    fn next_ready(&self, now: Instant, linger: Duration, force: bool) -> Option<&OpenBatch> {
        self.closed.front().or_else(|| {
            self.open
                .as_ref()
                .filter(|o| force || o.created + linger <= now + timer_slack(linger))
        })
    }

    fn take_all(&mut self, out: &mut Vec<OpenBatch>) {
        out.extend(self.closed.drain(..));
        out.extend(self.open.take());
    }
}

/// A partition of the accumulator, as [`Accumulator::ready`] reports it and
/// [`Accumulator::drain`] takes from it.
#[derive(Debug, Clone)]
pub(crate) struct PartitionRef {
    tp: Tp,
    acc: Arc<Mutex<PartitionAcc>>,
}

impl PartitionRef {
    /// Topic and partition.
    pub fn tp(&self) -> &Tp {
        &self.tp
    }
}

/// What [`Accumulator::ready`] found.
#[derive(Debug, Default)]
pub(crate) struct ReadyCheck {
    /// Partitions with a batch that may be sent now, by leader broker id.
    pub ready: HashMap<i32, Vec<PartitionRef>>,
    /// A ready partition has no known leader (the metadata needs a refresh).
    pub unknown_leader: bool,
    /// When a batch not ready yet becomes ready (linger) or expires.
    pub next: Option<Instant>,
    /// Batches never sent that passed `delivery.timeout.ms`; removed, the caller fails them.
    pub expired: Vec<OpenBatch>,
}

fn min_opt(a: Option<Instant>, b: Instant) -> Option<Instant> {
    Some(a.map_or(b, |a| a.min(b)))
}

/// Per-topic state `send` reads for every record, behind one short lock: uniform sticky
/// partitioning (KIP-794) and the topic's metadata cached under the cluster's metadata
/// generation (so `send` neither clones the snapshot nor hashes the topic name into it).
#[derive(Debug)]
struct TopicState {
    sticky: Sticky,
    meta: Option<(u64, Arc<TopicMeta>)>,
}

/// Uniform sticky partitioning (KIP-794) of one topic.
#[derive(Debug)]
struct Sticky {
    partition: i32,
    bytes: usize,
    /// When the sticky partition was chosen (`sticky.partitioning.linger.ms`).
    since: Instant,
    /// Records since the clock was last read for `sticky.partitioning.linger.ms`.
    unclocked: u32,
    /// Batches queued per partition at the sender's last readiness check (adaptive
    /// partitioning; index = partition), and partitions whose leader is unavailable
    /// (`partitioner.availability.timeout.ms`) marked with `u32::MAX`.
    load: Arc<[u32]>,
}

/// What [`Accumulator::route`] decided for a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Route {
    /// No metadata of the asked generation is cached for the topic.
    Stale,
    /// The record's partition (`preset` or the partitioner's choice: not checked against
    /// `count`), and the topic's partition count.
    To { partition: i32, count: i32 },
}

/// One topic's partitions.
#[derive(Debug)]
pub(crate) struct TopicAcc {
    name: Arc<str>,
    partitions: RwLock<Vec<Arc<Mutex<PartitionAcc>>>>,
    state: Mutex<TopicState>,
}

impl TopicAcc {
    /// The topic's name.
    pub fn name(&self) -> &Arc<str> {
        &self.name
    }

    /// Runs `f` on partition `p`'s state (created on first use), under the partition list's
    /// read lock: no reference count is taken on the per-record path.
    fn with_partition<R>(&self, p: i32, f: impl FnOnce(&Mutex<PartitionAcc>) -> R) -> R {
        let idx = p as usize;
        let parts = loop {
            let parts = read(&self.partitions);
            if parts.len() > idx {
                break parts;
            }
            drop(parts);
            let mut parts = self.partitions.write().unwrap_or_else(|e| e.into_inner());
            while parts.len() <= idx {
                parts.push(Arc::new(Mutex::new(PartitionAcc::default())));
            }
        };
        f(&parts[idx])
    }

    /// The topic's metadata cached at metadata generation `generation`, if that is the
    /// generation it was cached at.
    pub fn cached_meta(&self, generation: u64) -> Option<Arc<TopicMeta>> {
        match &lock(&self.state).meta {
            Some((g, m)) if *g == generation => Some(m.clone()),
            _ => None,
        }
    }
}

/// Hash of topic names for the accumulator's topic map (FxHash: the keys are short, and the
/// map is read on every `send`; SipHash's DoS resistance buys nothing here, the producer's
/// own user chooses the names).
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct TopicHasher(u64);

impl std::hash::Hasher for TopicHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            self.add(u64::from_le_bytes(c.try_into().expect("8 bytes")));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let last = rest
                .iter()
                .rev()
                .fold(0u64, |w, b| (w << 8) | u64::from(*b));
            self.add(last);
        }
    }

    fn write_u8(&mut self, i: u8) {
        self.add(i as u64);
    }

    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

impl TopicHasher {
    #[inline]
    fn add(&mut self, w: u64) {
        self.0 = (self.0.rotate_left(5) ^ w).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

type TopicMap = HashMap<Arc<str>, Arc<TopicAcc>, std::hash::BuildHasherDefault<TopicHasher>>;

fn read<T>(l: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(|e| e.into_inner())
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

thread_local! {
    /// Per thread, the topic it last sent to and the [`Accumulator::id`] it belongs to
    /// ([`Accumulator::send_topic`]). Weak: a dropped producer's topics are freed. A topic
    /// stays in its accumulator's map for the accumulator's life, so an entry that still
    /// upgrades is the map's.
    static LAST_TOPIC: RefCell<Option<(u64, Weak<TopicAcc>)>> = const { RefCell::new(None) };
}

/// All accumulated, not-yet-drained batches plus the signals between `send` and the sender.
#[derive(Debug)]
pub(crate) struct Accumulator {
    /// Unique among the process's accumulators (the key of [`LAST_TOPIC`]).
    id: u64,
    /// Every topic sent to; a topic is never removed (what [`LAST_TOPIC`] relies on).
    topics: RwLock<TopicMap>,
    /// `buffer.memory` as a semaphore of bytes.
    memory: Arc<Semaphore>,
    /// Its size.
    buffer_memory: usize,
    /// `queue.buffering.max.messages` as a semaphore of records (`None`: no count limit).
    messages: Option<Arc<Semaphore>>,
    /// Batches created and not completed (for `flush`).
    incomplete: Mutex<HashMap<u64, Arc<Completion>>>,
    next_id: AtomicU64,
    /// Wakes the sender (new or full batch, flush, close).
    wake: Notify,
    /// Flushes running: while > 0, open batches are ready regardless of `linger.ms`.
    flushing: AtomicUsize,
    /// Bumped when a flush begins (before `flushing` goes up), when one ends (after it goes
    /// down) and on close (before `closing` is set): a look at the partitions forces them
    /// only while this has not moved since the look began (see [`Accumulator::ready`]).
    force_epoch: AtomicU64,
    /// No new records; the sender drains everything and stops.
    closing: AtomicBool,
    /// `send`s past their closed check whose append has not finished yet: the sender does
    /// not stop while there are any (see [`Accumulator::begin_append`]).
    appending: AtomicUsize,
    /// Give up: the sender fails everything pending and stops.
    abort: AtomicBool,
    /// The producer is unusable: `send` refuses records with this error.
    fatal: Mutex<Option<Error>>,
    /// `fatal` is set (read by every `send` without taking the lock).
    is_fatal: AtomicBool,
    /// Becomes `true` when the sender has stopped.
    stopped: watch::Sender<bool>,
    batch_size: usize,
    batch_num_messages: usize,
    /// Uncompressed batches: their records are checksummed as they are appended
    /// ([`BatchBuilder::checksum_as_appended`]).
    checksum_as_appended: bool,
    /// A partition's previous batch at least this large: the next one goes into a pooled
    /// mapping ([`POOLED_FROM`], or half of `batch.size` when that is less).
    pooled_from: usize,
    /// The producer's delivery-report handler, given to every batch's completion.
    pub(crate) handler: super::delivery::HandlerSlot,
    /// Batch buffers, as mappings handed back to the OS after a burst (see
    /// [`BufferPool`]); the sender trims it ([`Accumulator::trim_buffers`]).
    buffers: BufferPool,
    linger: Duration,
    delivery_timeout: Duration,
    /// `sticky.partitioning.linger.ms` (zero: switch on `batch.size` bytes only).
    sticky_linger: Duration,
    /// `partitioner.adaptive.partitioning.enable`.
    adaptive: bool,
    /// `partitioner.availability.timeout.ms` (zero: off).
    availability_timeout: Duration,
    /// Per leader node: when it last had ready batches and when the sender last took one
    /// for it (availability, as Java's node latency stats).
    node_stats: Mutex<HashMap<i32, (Instant, Instant)>>,
    /// Statistics counters (`statistics.interval.ms`), shared with the sender.
    pub stats: crate::stats::ProducerCounters,
}

/// An append under way ([`Accumulator::begin_append`]); the sender waits for it to end
/// before it stops.
pub(crate) struct AppendGuard<'a>(&'a Accumulator);

impl Drop for AppendGuard<'_> {
    fn drop(&mut self) {
        self.0.appending.fetch_sub(1, Ordering::SeqCst);
        if self.0.is_closing() {
            // The sender may be waiting for this append to end before it stops.
            self.0.wake();
        }
    }
}

/// A running [`Accumulator::begin_flush`]: open batches are ready at once until it is dropped.
struct FlushGuard<'a>(&'a Accumulator);

impl Drop for FlushGuard<'_> {
    fn drop(&mut self) {
        self.0.flushing.fetch_sub(1, Ordering::SeqCst);
        self.0.force_epoch.fetch_add(1, Ordering::SeqCst);
    }
}

/// Most batch buffers one producer keeps as memory mappings at once (see
/// [`BufferPool`]).
const MAX_MAPPED_BATCHES: usize = 8192;

/// A partition's batch goes into a pooled mapping when its previous batch was at least this
/// large (or half of `batch.size`, when that is less); smaller batches, and a partition's
/// first, are built on the heap. A mapping holds at least a page and keeps resident every
/// page any batch ever wrote into it: a producer over 1,000 partitions kept ~5,500 batches
/// of ~2 KB alive (one open and up to five in flight per partition), ~11 KB resident per
/// mapping, 62 MB for 10 MB of records.
const POOLED_FROM: usize = 32 * 1024;

/// The smallest heap buffer a batch starts with (see [`Accumulator::batch_capacity`]).
const MIN_HEAP_BATCH: usize = 1024;

impl Accumulator {
    /// An empty accumulator with the producer's batching settings (`buffer.memory`,
    /// `batch.size`, `batch.num.messages`, `linger.ms`, `delivery.timeout.ms`).
    pub fn new(s: &ProducerConfig) -> Self {
        static NEXT_ID: AtomicU64 = AtomicU64::new(0);
        Accumulator {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            topics: RwLock::new(TopicMap::default()),
            memory: Arc::new(Semaphore::new(s.buffer_memory.min(Semaphore::MAX_PERMITS))),
            buffer_memory: s.buffer_memory.min(Semaphore::MAX_PERMITS),
            messages: s
                .queue_buffering_max_messages
                .map(|n| Arc::new(Semaphore::new(n.min(Semaphore::MAX_PERMITS)))),
            incomplete: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(0),
            wake: Notify::new(),
            flushing: AtomicUsize::new(0),
            force_epoch: AtomicU64::new(0),
            closing: AtomicBool::new(false),
            appending: AtomicUsize::new(0),
            abort: AtomicBool::new(false),
            fatal: Mutex::new(None),
            is_fatal: AtomicBool::new(false),
            stopped: watch::channel(false).0,
            batch_size: s.batch_size.max(1),
            batch_num_messages: s.batch_num_messages.max(1),
            checksum_as_appended: s.compression == crate::record::compression::Compression::None,
            pooled_from: POOLED_FROM.min(s.batch_size.max(1) / 2),
            handler: Default::default(),
            buffers: {
                // Not bounded by `buffer.memory / batch.size`: with many partitions most
                // batches hold a few records, and a mapping costs only the pages written
                // (a heap batch started at 64 KiB). The bound keeps a producer far from the
                // kernel's limit on mappings per process (65,530 by default); past it,
                // batches use the heap.
                BufferPool::new(
                    RECORD_BATCH_OVERHEAD + s.batch_size.max(1),
                    MAX_MAPPED_BATCHES,
                )
            },
            linger: s.linger,
            delivery_timeout: s.delivery_timeout,
            sticky_linger: s.sticky_partitioning_linger,
            adaptive: s.partitioner_adaptive,
            stats: crate::stats::ProducerCounters::new(),
            availability_timeout: s.partitioner_availability_timeout,
            node_stats: Mutex::new(HashMap::new()),
        }
    }

    /// Wakes the sender.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Resolves when [`wake`](Self::wake) was called (the sender waits on it).
    pub fn woken(&self) -> tokio::sync::futures::Notified<'_> {
        self.wake.notified()
    }

    /// Makes every open batch ready at once (and wakes the sender) until the guard drops.
    fn begin_flush(&self) -> FlushGuard<'_> {
        self.force_epoch.fetch_add(1, Ordering::SeqCst);
        self.flushing.fetch_add(1, Ordering::SeqCst);
        self.wake();
        FlushGuard(self)
    }

    /// Stops accepting records: every batch is ready at once, and the sender stops when
    /// nothing is left.
    pub fn close(&self) {
        self.force_epoch.fetch_add(1, Ordering::SeqCst);
        self.closing.store(true, Ordering::SeqCst);
        self.wake();
    }

    /// Whether [`close`](Self::close) was called.
    pub fn is_closing(&self) -> bool {
        self.closing.load(Ordering::SeqCst)
    }

    /// Starts an append: `None` once [`close`](Self::close) was called. While the guard
    /// lives the sender does not stop, so a record accepted under it is always drained
    /// (the closed check and the append are one step for the sender's exit decision).
    pub fn begin_append(&self) -> Option<AppendGuard<'_>> {
        self.appending.fetch_add(1, Ordering::SeqCst);
        let guard = AppendGuard(self);
        if self.is_closing() {
            return None; // dropping the guard wakes the sender
        }
        Some(guard)
    }

    /// Whether the sender may stop once it has nothing left: closing, and no append under
    /// way. Check it *before* looking for data: an append that ends after this check saw
    /// none under way began after the close, and was refused.
    pub fn may_stop(&self) -> bool {
        self.is_closing() && self.appending.load(Ordering::SeqCst) == 0
    }

    /// The producer became unusable: from now on `send` fails with `err`.
    pub fn set_fatal(&self, err: Error) {
        lock(&self.fatal).get_or_insert(err);
        self.is_fatal.store(true, Ordering::SeqCst);
        self.wake();
    }

    /// The error that made the producer unusable, if one did.
    #[inline]
    pub fn fatal(&self) -> Option<Error> {
        if !self.is_fatal.load(Ordering::SeqCst) {
            return None;
        }
        lock(&self.fatal).clone()
    }

    /// Tells the sender to fail everything pending and stop.
    pub fn abort(&self) {
        self.abort.store(true, Ordering::SeqCst);
        self.wake();
    }

    /// Whether [`abort`](Self::abort) was called.
    pub fn is_aborted(&self) -> bool {
        self.abort.load(Ordering::SeqCst)
    }

    /// The sender says it stopped.
    pub fn mark_stopped(&self) {
        self.stopped.send_replace(true);
    }

    /// Watches whether the sender stopped.
    pub fn stopped(&self) -> watch::Receiver<bool> {
        self.stopped.subscribe()
    }

    /// Takes `permits` bytes of `buffer.memory` if they are free now: `Ok(false)` when not.
    #[inline]
    pub fn try_reserve(&self, permits: usize) -> Result<bool> {
        let wanted = permits.min(u32::MAX as usize) as u32;
        match self.memory.try_acquire_many(wanted) {
            Ok(p) => {
                p.forget();
                Ok(true)
            }
            Err(tokio::sync::TryAcquireError::Closed) => Err(Error::Closed),
            Err(tokio::sync::TryAcquireError::NoPermits) => Ok(false),
        }
    }

    /// Waits until `permits` bytes of `buffer.memory` are free and takes them; `Ok(false)`
    /// when `deadline` passed first.
    pub async fn reserve_until(&self, permits: usize, deadline: Instant) -> Result<bool> {
        let wanted = permits.min(u32::MAX as usize) as u32;
        let sem = self.memory.clone();
        match tokio::time::timeout_at(deadline, sem.acquire_many_owned(wanted)).await {
            Ok(Ok(p)) => {
                p.forget();
                Ok(true)
            }
            Ok(Err(_)) => Err(Error::Closed),
            Err(_) => Ok(false),
        }
    }

    /// Gives back `permits` bytes of `buffer.memory`.
    #[inline]
    pub fn release(&self, permits: usize) {
        self.memory.add_permits(permits);
    }

    /// Free bytes of `buffer.memory` (metrics).
    pub fn available_memory(&self) -> usize {
        self.memory.available_permits()
    }

    /// Takes one record of `queue.buffering.max.messages` if one is free now (always with
    /// no count limit): `Ok(false)` when not.
    #[inline]
    pub fn try_reserve_record(&self) -> Result<bool> {
        let Some(m) = &self.messages else {
            return Ok(true);
        };
        match m.try_acquire() {
            Ok(p) => {
                p.forget();
                Ok(true)
            }
            Err(tokio::sync::TryAcquireError::Closed) => Err(Error::Closed),
            Err(tokio::sync::TryAcquireError::NoPermits) => Ok(false),
        }
    }

    /// Waits until one record of `queue.buffering.max.messages` is free and takes it;
    /// `Ok(false)` when `deadline` passed first.
    pub async fn reserve_record_until(&self, deadline: Instant) -> Result<bool> {
        let Some(m) = self.messages.clone() else {
            return Ok(true);
        };
        match tokio::time::timeout_at(deadline, m.acquire_owned()).await {
            Ok(Ok(p)) => {
                p.forget();
                Ok(true)
            }
            Ok(Err(_)) => Err(Error::Closed),
            Err(_) => Ok(false),
        }
    }

    /// Gives back `records` records of `queue.buffering.max.messages`.
    #[inline]
    pub fn release_records(&self, records: usize) {
        if let Some(m) = &self.messages {
            m.add_permits(records);
        }
    }

    /// Batch `id` has its outcome: no longer pending for `flush`; its memory and record
    /// count are free. (Its records were counted done, `stats.done`, before the outcome was
    /// handed out.)
    pub fn completed(&self, id: u64, held: Held) {
        lock(&self.incomplete).remove(&id);
        self.release(held.bytes);
        self.release_records(held.records);
    }

    /// Makes every batch ready at once and waits until each batch pending at the call has
    /// its outcome.
    pub async fn flush(&self) {
        let _flushing = self.begin_flush();
        let pending: Vec<Arc<Completion>> = lock(&self.incomplete).values().cloned().collect();
        for c in pending {
            let mut slot = super::delivery::NO_SLOT;
            std::future::poll_fn(|cx| c.poll_result(cx, &mut slot).map(|_| ())).await;
        }
    }

    /// The topic's accumulator, if it exists.
    pub fn get_topic(&self, name: &str) -> Option<Arc<TopicAcc>> {
        read(&self.topics).get(name).cloned()
    }

    /// [`get_topic`](Self::get_topic) for `send`, once per record: the topic this thread
    /// last sent to through this accumulator when it is `name` (no lock, no hashing: one
    /// reference count up; ~5 % of the producer's client CPU at 100 B went to the map's
    /// lock, hashing and clone), else the map's.
    #[inline]
    pub fn send_topic(&self, name: &str) -> Option<Arc<TopicAcc>> {
        let hit = LAST_TOPIC.with(|last| match &*last.borrow() {
            Some((id, t)) if *id == self.id => t.upgrade().filter(|t| *t.name == *name),
            _ => None,
        });
        if hit.is_some() {
            return hit;
        }
        let t = self.get_topic(name)?;
        LAST_TOPIC.with(|last| *last.borrow_mut() = Some((self.id, Arc::downgrade(&t))));
        Some(t)
    }

    /// The topic's accumulator, created on first use.
    pub fn topic(&self, name: &Arc<str>) -> Arc<TopicAcc> {
        if let Some(t) = self.get_topic(name) {
            return t;
        }
        let mut topics = self.topics.write().unwrap_or_else(|e| e.into_inner());
        topics
            .entry(name.clone())
            .or_insert_with(|| {
                Arc::new(TopicAcc {
                    name: name.clone(),
                    partitions: RwLock::new(Vec::new()),
                    state: Mutex::new(TopicState {
                        sticky: Sticky {
                            partition: -1,
                            bytes: 0,
                            since: Instant::now(),
                            unclocked: 0,
                            load: Arc::from(Vec::new()),
                        },
                        meta: None,
                    }),
                })
            })
            .clone()
    }

    /// Calls `f` with every partition's name and state (no topic lock held during `f`).
    fn each_partition(&self, mut f: impl FnMut(&Arc<str>, i32, Arc<Mutex<PartitionAcc>>)) {
        let topics: Vec<Arc<TopicAcc>> = read(&self.topics).values().cloned().collect();
        for topic in topics {
            let parts = read(&topic.partitions).clone();
            for (i, pacc) in parts.into_iter().enumerate() {
                f(&topic.name, i as i32, pacc);
            }
        }
    }

    /// The sticky partition for a key-less record of `bytes` bytes: stays on one partition
    /// (with a known leader when any has one) until `batch.size` bytes went to it or
    /// `sticky.partitioning.linger.ms` passed since it was chosen; the record is accounted
    /// to the partition returned. The next partition is chosen as Java's adaptive
    /// partitioner does: partitions with fewer queued batches are likelier
    /// (`partitioner.adaptive.partitioning.enable`), partitions of an unavailable leader are
    /// skipped (`partitioner.availability.timeout.ms`), see [`pick_partition`]. (`send`
    /// makes this choice inside [`route`](Self::route).)
    #[cfg(test)]
    pub fn sticky_partition(&self, topic: &TopicAcc, meta: &TopicMeta, bytes: usize) -> i32 {
        self.sticky_in(&mut lock(&topic.state).sticky, meta, bytes)
    }

    /// `send`'s one look at `topic`'s state for a record of `bytes` (encoded) bytes, under one
    /// lock: the metadata cached at metadata generation `generation` (after storing `fresh`
    /// there when given), then the record's partition: `preset`, else `choose(partition
    /// count)`, else the sticky partition (which the record advances). `choose` runs under
    /// the topic's lock: only a built-in partitioner (no user code) may be passed.
    /// [`Route::Stale`] when no metadata of `generation` is cached (nothing changed).
    pub fn route(
        &self,
        topic: &TopicAcc,
        generation: u64,
        fresh: Option<Arc<TopicMeta>>,
        bytes: usize,
        preset: Option<i32>,
        choose: impl FnOnce(i32) -> Option<i32>,
    ) -> Route {
        let mut s = lock(&topic.state);
        let TopicState { sticky, meta } = &mut *s;
        if let Some(m) = fresh {
            *meta = Some((generation, m));
        }
        let meta = match meta {
            Some((g, m)) if *g == generation => &**m,
            _ => return Route::Stale,
        };
        let count = meta.partition_count();
        let partition = match preset.or_else(|| choose(count)) {
            Some(p) => p,
            None => self.sticky_in(sticky, meta, bytes),
        };
        Route::To { partition, count }
    }

    /// The sticky partition for a key-less record of `bytes` bytes (see
    /// [`sticky_partition`](Self::sticky_partition)), on the topic's locked state.
    fn sticky_in(&self, s: &mut Sticky, meta: &TopicMeta, bytes: usize) -> i32 {
        let n = meta.partition_count();
        // The clock is read once per STICKY_CLOCK_EVERY records, not on every record (this
        // is the per-record path): a partition may overstay the linger by a few records.
        let mut timed = false;
        if !self.sticky_linger.is_zero() {
            s.unclocked += 1;
            if s.unclocked >= STICKY_CLOCK_EVERY {
                s.unclocked = 0;
                timed = true;
            }
        }
        let now = if timed { Instant::now() } else { s.since };
        if s.partition < 0
            || s.partition >= n
            || (timed && now.duration_since(s.since) >= self.sticky_linger)
        {
            let avoid = if s.partition < n { s.partition } else { -1 };
            s.partition = pick_partition(meta, avoid, &s.load);
            s.bytes = 0;
            s.since = if timed { now } else { Instant::now() };
        }
        let p = s.partition;
        s.bytes += bytes;
        if s.bytes >= self.batch_size {
            s.partition = pick_partition(meta, p, &s.load);
            s.bytes = 0;
            s.since = if timed { now } else { Instant::now() };
        }
        p
    }

    /// The sender took a batch for leader `node` (availability tracking).
    pub fn drained(&self, node: i32, now: Instant) {
        if self.availability_timeout.is_zero() {
            return;
        }
        lock(&self.node_stats)
            .entry(node)
            .and_modify(|e| e.1 = now)
            .or_insert((now, now));
    }

    /// Leaders that had ready batches and none taken for longer than
    /// `partitioner.availability.timeout.ms`.
    fn unavailable_nodes(&self, ready_nodes: &[i32], now: Instant) -> Vec<i32> {
        if self.availability_timeout.is_zero() {
            return Vec::new();
        }
        let mut stats = lock(&self.node_stats);
        for n in ready_nodes {
            stats
                .entry(*n)
                .and_modify(|e| e.0 = now)
                .or_insert((now, now));
        }
        stats
            .iter()
            .filter(|(_, (ready, drained))| {
                ready.saturating_duration_since(*drained) > self.availability_timeout
            })
            .map(|(n, _)| *n)
            .collect()
    }

    /// Appends an encoded record to the partition's open batch (opening a new one when it
    /// does not fit), holding `permits` bytes of buffer memory and one record of
    /// `queue.buffering.max.messages`. Never blocks.
    #[allow(clippy::too_many_arguments)]
    pub fn append(
        &self,
        topic: &TopicAcc,
        partition: i32,
        ts: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[(&str, Option<&[u8]>)],
        payload_size: usize,
        rec_size: usize,
        permits: usize,
    ) -> DeliveryFuture {
        let mut wake = false;
        let fut = topic.with_partition(partition, |pacc| {
            let mut pa = lock(pacc);
            let fits = pa.open.as_ref().is_some_and(|b| {
                b.builder.len() < self.batch_num_messages
                    && (b.builder.is_empty()
                        || b.builder.size_bytes() + rec_size <= self.batch_size)
            });
            if !fits {
                if let Some(full) = pa.open.take() {
                    pa.closed.push_back(full);
                }
                let id = self.next_id.fetch_add(1, Ordering::Relaxed);
                let completion =
                    Completion::with_handler(topic.name.clone(), partition, self.handler.clone());
                lock(&self.incomplete).insert(id, completion.clone());
                pa.open = Some(OpenBatch {
                    id,
                    builder: {
                        let pooled = (pa.last_size >= self.pooled_from
                            && RECORD_BATCH_OVERHEAD + rec_size <= self.buffers.buffer_size())
                        .then(|| self.buffers.take())
                        .flatten();
                        let b = match pooled {
                            Some(buf) => BatchBuilder::in_pooled(ts, buf),
                            None => {
                                BatchBuilder::new(ts, self.batch_capacity(pa.last_size, rec_size))
                            }
                        };
                        if self.checksum_as_appended {
                            b.checksum_as_appended()
                        } else {
                            b
                        }
                    },
                    completion,
                    created: Instant::now(),
                    permits: Held::default(),
                });
                wake = true;
            }
            let batch = pa.open.as_mut().expect("open batch exists");
            let offset_delta = batch.builder.len() as i32;
            batch
                .builder
                .append_with_payload_size(ts, key, value, headers, payload_size);
            batch.permits.bytes += permits;
            batch.permits.records += 1;
            let fut = DeliveryFuture::new(batch.completion.clone(), offset_delta, ts);
            if batch.builder.len() >= self.batch_num_messages
                || batch.builder.size_bytes() >= self.batch_size
            {
                let full = pa.open.take().expect("open batch exists");
                pa.closed.push_back(full);
                wake = true;
            }
            fut
        });
        if wake {
            self.wake.notify_one();
        }
        fut
    }

    /// Initial heap buffer size of a partition's new batch whose first record is `rec_size`
    /// bytes: what the partition's previous batch needed (`last`) plus an eighth, at least
    /// [`MIN_HEAP_BATCH`], at most `batch.size` (and always room for the record). A batch
    /// that outgrows its buffer is copied into a larger one; sized from the previous batch, a
    /// steady stream's batches are not (at 1 KiB records the copies of buffers that grew
    /// from 64 KiB were ~5 % of the producer's CPU), while a partition with small batches
    /// keeps small buffers.
    fn batch_capacity(&self, last: usize, rec_size: usize) -> usize {
        (last + last / 8)
            .max(MIN_HEAP_BATCH)
            .min(self.batch_size)
            .max(rec_size + 64)
    }

    /// Unmaps the batch buffers the pool did not need lately; returns when to call again
    /// (see [`BufferPool::trim`]).
    pub fn trim_buffers(&self, now: Instant) -> Option<Instant> {
        self.buffers.trim(now.into_std()).map(Instant::from_std)
    }

    /// The batch buffers' pool.
    #[cfg(test)]
    pub(crate) fn buffers(&self) -> &BufferPool {
        &self.buffers
    }

    /// Whether any batch is waiting in the accumulator.
    pub fn has_data(&self) -> bool {
        let mut any = false;
        self.each_partition(|_, _, pacc| any = any || !lock(&pacc).is_empty());
        any
    }

    /// While a flush or close runs, open batches are ready without waiting for `linger.ms`.
    fn forced(&self) -> bool {
        self.flushing.load(Ordering::SeqCst) > 0 || self.closing.load(Ordering::SeqCst)
    }

    /// One look at every partition: removes the batches that passed `delivery.timeout.ms`
    /// without being sent, and reports the partitions with a ready batch (a closed one, or
    /// an open one that lingered `linger.ms`, or any while a flush or close runs) grouped by
    /// their leader in `snap`, and when to look again.
    pub fn ready(&self, snap: &MetadataSnapshot, now: Instant) -> ReadyCheck {
        // A flush or close forces a partition's batches when one runs as this look begins
        // and none began or ended since (`force_epoch` unmoved) when the look has the
        // partition's lock: a batch appended after a flush returned keeps its linger even if
        // this look began during the flush, and a flush that begins during this look (even
        // while an earlier one still ran at its start) leaves every partition after the
        // change to a look of its own, at once (so one look does not send a few partitions
        // early and the rest in a second request). The epoch is read first: a flush
        // beginning between the two reads moved it before `flushing`, so every partition
        // sees the change.
        let epoch_at_start = self.force_epoch.load(Ordering::SeqCst);
        let forced_at_start = self.forced();
        let (linger, dt) = (self.linger, self.delivery_timeout);
        let mut out = ReadyCheck::default();
        let track = self.adaptive || !self.availability_timeout.is_zero();
        // Queued batches per partition of each topic (adaptive partitioning), gathered on
        // this pass over the partitions the sender makes anyway. Everything per topic (its
        // metadata, its load vector) is looked up once per topic, not per partition: this
        // pass runs on every sender wake-up, over every partition.
        let mut loads: Vec<(Arc<TopicAcc>, Vec<u32>)> = Vec::new();
        let topics: Vec<Arc<TopicAcc>> = read(&self.topics).values().cloned().collect();
        for topic in topics {
            let parts = read(&topic.partitions).clone();
            let meta = snap.topic(&topic.name);
            let mut load = if track {
                vec![0u32; parts.len()]
            } else {
                Vec::new()
            };
            for (i, pacc) in parts.into_iter().enumerate() {
                let ready = {
                    let mut pa = lock(&pacc);
                    if track {
                        load[i] = pa.closed.len() as u32 + u32::from(pa.open.is_some());
                    }
                    while pa.oldest().is_some_and(|c| c + dt <= now) {
                        if let Some(b) = pa.pop_oldest() {
                            self.stats.taken(b.builder.len());
                            out.expired.push(b);
                        }
                    }
                    if let Some(o) = pa.oldest() {
                        out.next = min_opt(out.next, o + dt);
                    }
                    let moved = forced_at_start
                        && self.force_epoch.load(Ordering::SeqCst) != epoch_at_start;
                    if moved {
                        out.next = Some(now);
                    }
                    let force = forced_at_start && !moved;
                    let ready = pa.next_ready(now, linger, force).is_some();
                    if !ready {
                        if let Some(o) = &pa.open {
                            out.next = min_opt(out.next, o.created + linger - timer_slack(linger));
                        }
                    }
                    ready
                };
                if ready {
                    let p = i as i32;
                    let leader = meta
                        .and_then(|m| m.partition(p))
                        .map(|pm| pm.leader)
                        .filter(|l| *l >= 0);
                    match leader {
                        Some(l) => out.ready.entry(l).or_default().push(PartitionRef {
                            tp: (topic.name.clone(), p),
                            acc: pacc,
                        }),
                        None => out.unknown_leader = true,
                    }
                }
            }
            if track {
                loads.push((topic, load));
            }
        }
        if track {
            let ready_nodes: Vec<i32> = out.ready.keys().copied().collect();
            let down = self.unavailable_nodes(&ready_nodes, now);
            for (topic, mut load) in loads {
                if !self.adaptive {
                    load.iter_mut().for_each(|q| *q = 0);
                }
                if !down.is_empty() {
                    if let Some(t) = snap.topic(&topic.name) {
                        let n = t.partition_count().max(0) as usize;
                        if load.len() < n {
                            load.resize(n, 0);
                        }
                        for (p, q) in load.iter_mut().enumerate() {
                            if t.partition(p as i32)
                                .is_some_and(|pm| pm.leader >= 0 && down.contains(&pm.leader))
                            {
                                *q = u32::MAX;
                            }
                        }
                    }
                }
                lock(&topic.state).sticky.load = Arc::from(load);
            }
        }
        out
    }

    /// Takes the partition's next ready batch (see [`ready`](Self::ready)) if its unsealed
    /// size is at most `room` bytes.
    pub fn drain(&self, part: &PartitionRef, now: Instant, room: usize) -> Option<OpenBatch> {
        let mut pa = lock(&part.acc);
        let size = pa
            .next_ready(now, self.linger, self.forced())?
            .builder
            .size_bytes();
        if size > room {
            return None;
        }
        let b = pa.pop_oldest();
        if let Some(b) = &b {
            self.stats.taken(b.builder.len());
            pa.last_size = size;
        }
        b
    }

    /// Takes every batch out of the accumulator (the caller fails them).
    pub fn drain_all(&self) -> Vec<OpenBatch> {
        let mut all = Vec::new();
        self.each_partition(|_, _, pacc| lock(&pacc).take_all(&mut all));
        self.stats
            .taken(all.iter().map(|b| b.builder.len()).sum::<usize>());
        all
    }

    /// Records and their bytes waiting in each partition (statistics; one short lock per
    /// partition).
    pub fn queued(&self) -> Vec<(Arc<str>, i32, usize, usize)> {
        let mut out = Vec::new();
        self.each_partition(|topic, p, pacc| {
            let pa = lock(&pacc);
            let (n, bytes) = pa
                .closed
                .iter()
                .chain(pa.open.as_ref())
                .fold((0, 0), |(n, b), x| {
                    (n + x.builder.len(), b + x.builder.size_bytes())
                });
            out.push((topic.clone(), p, n, bytes));
        });
        out
    }

    /// `buffer.memory` in use (bytes held by records not completed).
    pub fn used_memory(&self) -> usize {
        self.buffer_memory
            .saturating_sub(self.memory.available_permits())
    }

    /// The accumulator's partition `tp`, if a record was ever appended to it.
    pub fn partition_ref(&self, tp: &Tp) -> Option<PartitionRef> {
        let topic = self.get_topic(&tp.0)?;
        let acc = read(&topic.partitions)
            .get(usize::try_from(tp.1).ok()?)?
            .clone();
        Some(PartitionRef {
            tp: tp.clone(),
            acc,
        })
    }
}

/// How much before `linger.ms` has passed an open batch counts as ready: the runtime's timer
/// works in whole milliseconds and rounds a deadline up to the next one, so the sender woken
/// at a batch's linger deadline found it 0-1 ms late, and every lingering record waited
/// `linger.ms` plus that. Waking a millisecond early and counting the batch ready then keeps
/// the wait within `linger.ms` (Java's linger is counted in whole milliseconds too).
fn timer_slack(linger: Duration) -> Duration {
    linger.min(LINGER_TIMER_SLACK)
}

/// The runtime timer's resolution (tokio: 1 ms).
const LINGER_TIMER_SLACK: Duration = Duration::from_millis(1);

/// How many keyless records go between two clock reads for `sticky.partitioning.linger.ms`.
const STICKY_CLOCK_EVERY: u32 = 16;

/// A random partition other than `avoid`, preferring partitions with a known leader.
///
/// `load` (from the sender's last readiness check; may be shorter than the partition count,
/// missing entries are 0) makes it adaptive, as Java's `BuiltInPartitioner`: a partition with
/// `q` queued batches is chosen with a weight of `max + 1 - q` (`max`: the most queued), so
/// partitions of slow leaders, whose batches pile up, get fewer records; `u32::MAX` marks an
/// unavailable leader's partition, which is skipped while another one can be chosen.
fn pick_partition(meta: &TopicMeta, avoid: i32, load: &[u32]) -> i32 {
    let n = meta.partition_count();
    if n <= 1 {
        return 0;
    }
    let q = |p: i32| load.get(p as usize).copied().unwrap_or(0);
    let mut candidates: Vec<i32> = meta
        .partitions
        .iter()
        .filter(|p| p.leader >= 0 && p.partition != avoid && q(p.partition) != u32::MAX)
        .map(|p| p.partition)
        .collect();
    if candidates.is_empty() {
        candidates = meta
            .partitions
            .iter()
            .filter(|p| p.leader >= 0 && p.partition != avoid)
            .map(|p| p.partition)
            .collect();
    }
    let r = crate::backoff::random_unit();
    let max = candidates
        .iter()
        .map(|p| q(*p))
        .filter(|q| *q != u32::MAX)
        .max()
        .unwrap_or(0);
    if max > 0 {
        let weights: Vec<u64> = candidates
            .iter()
            .map(|p| match q(*p) {
                u32::MAX => 1,
                x => u64::from(max - x) + 1,
            })
            .collect();
        let total: u64 = weights.iter().sum();
        let mut pick = (r * total as f64) as u64;
        for (p, w) in candidates.iter().zip(&weights) {
            if pick < *w {
                return *p;
            }
            pick -= w;
        }
        return *candidates.last().unwrap_or(&0);
    }
    if candidates.is_empty() {
        let p = (r * n as f64) as i32 % n;
        if p == avoid {
            (p + 1) % n
        } else {
            p
        }
    } else {
        candidates[(r * candidates.len() as f64) as usize % candidates.len()]
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::cluster::PartitionMeta;
    use crate::config::ClientConfig;
    use crate::record::pool::TRIM_INTERVAL;

    const T: &str = "t";

    fn acc(pairs: &[(&str, &str)]) -> Accumulator {
        let mut c = ClientConfig::new().with("bootstrap.servers", "localhost:9092");
        for (k, v) in pairs {
            c = c.with(*k, *v);
        }
        Accumulator::new(&c.producer().expect("config"))
    }

    /// Partition `p` of topic `t` is led by broker `leaders[p]` (-1: no leader).
    fn snapshot(leaders: &[i32]) -> MetadataSnapshot {
        let partitions = leaders
            .iter()
            .enumerate()
            .map(|(i, &leader)| PartitionMeta {
                partition: i as i32,
                leader,
                leader_epoch: 0,
                replicas: vec![],
                isr: vec![],
                offline: vec![],
                error: None,
            })
            .collect();
        let topic = TopicMeta {
            name: T.into(),
            id: uuid::Uuid::nil(),
            is_internal: false,
            error: None,
            partitions,
        };
        MetadataSnapshot {
            brokers: BTreeMap::new(),
            topics: HashMap::from([(Arc::<str>::from(T), Arc::new(topic))]),
            ..MetadataSnapshot::default()
        }
    }

    /// Appends a record (its delivery future is not needed here).
    fn append(a: &Accumulator, p: i32, value: &[u8]) {
        let topic = a.topic(&Arc::from(T));
        let payload = BatchBuilder::payload_size(None, Some(value), &[]);
        let rec = BatchBuilder::record_size_with_payload(0, 0, payload) + 14;
        assert!(a.try_reserve(rec).unwrap());
        drop(a.append(&topic, p, 0, None, Some(value), &[], payload, rec, rec));
    }

    /// Partition `p`'s accumulator of the (one) topic, to hold its lock in a test.
    fn partition_acc(a: &Accumulator, p: usize) -> Arc<Mutex<PartitionAcc>> {
        let topic = read(&a.topics).values().next().expect("the topic").clone();
        let parts = read(&topic.partitions);
        parts[p].clone()
    }

    fn ready_partitions(r: &ReadyCheck) -> Vec<(i32, i32)> {
        let mut v: Vec<(i32, i32)> = r
            .ready
            .iter()
            .flat_map(|(l, ps)| ps.iter().map(move |p| (*l, p.tp().1)))
            .collect();
        v.sort_unstable();
        v
    }

    #[test]
    fn open_batches_wait_for_linger_and_full_ones_do_not() {
        let a = acc(&[("linger.ms", "100"), ("batch.num.messages", "2")]);
        let snap = snapshot(&[1, 2]);
        let t0 = Instant::now();
        append(&a, 0, b"x");
        let r = a.ready(&snap, t0);
        assert!(r.ready.is_empty() && r.expired.is_empty() && !r.unknown_leader);
        let next = r.next.expect("a wake-up for the linger");
        assert!(next > t0 && next <= Instant::now() + Duration::from_millis(100));
        // Full (batch.num.messages): ready at once, on its leader.
        append(&a, 1, b"a");
        append(&a, 1, b"b");
        assert_eq!(ready_partitions(&a.ready(&snap, t0)), [(2, 1)]);
        // Past linger.ms the open batch is ready too.
        let later = Instant::now() + Duration::from_millis(150);
        assert_eq!(ready_partitions(&a.ready(&snap, later)), [(1, 0), (2, 1)]);
        assert!(a.has_data());
    }

    #[test]
    fn open_batches_go_within_linger_despite_millisecond_timers() {
        // The sender sleeps until `next` on a timer that rounds up to whole milliseconds:
        // asked to wake at the linger deadline it woke up to a millisecond after it, so
        // an open batch is ready, and the wake-up asked for, one millisecond before.
        let a = acc(&[("linger.ms", "100")]);
        let snap = snapshot(&[1]);
        let before = Instant::now();
        append(&a, 0, b"x");
        let after = Instant::now();
        let r = a.ready(&snap, before + Duration::from_millis(97));
        assert!(r.ready.is_empty());
        let next = r.next.expect("a wake-up for the linger");
        assert!(
            next <= after + Duration::from_millis(99),
            "{:?}",
            next - before
        );
        assert!(next >= before + Duration::from_millis(99));
        assert_eq!(
            ready_partitions(&a.ready(&snap, after + Duration::from_millis(99))),
            [(1, 0)]
        );
        // linger.ms=0: ready at once, no wake-up before the batch was made.
        let a = acc(&[("linger.ms", "0")]);
        append(&a, 0, b"x");
        assert_eq!(ready_partitions(&a.ready(&snap, Instant::now())), [(1, 0)]);
    }

    /// A flush makes ready the batches it finds while it runs: a look at the partitions
    /// that began during a flush and reaches a partition after the flush ended does not
    /// send that partition's lingering batch. It did: the flag was read once before the look,
    /// so a record appended right after `flush` returned could go at once (a broker test
    /// counting Produce requests saw 2 where 1 was due, once in a few CI runs).
    #[test]
    fn a_look_that_reaches_a_partition_after_the_flush_ended_keeps_its_linger() {
        let a = Arc::new(acc(&[("linger.ms", "60000")]));
        let snap = snapshot(&[1]);
        append(&a, 0, b"x");
        let part = partition_acc(&a, 0);
        let flush = a.begin_flush();
        // The look starts while the flush runs and waits for the partition's lock.
        let held = lock(&part);
        let look = {
            let (a, snap) = (Arc::clone(&a), snap.clone());
            std::thread::spawn(move || ready_partitions(&a.ready(&snap, Instant::now())))
        };
        std::thread::sleep(Duration::from_millis(200));
        drop(flush);
        drop(held);
        assert_eq!(
            look.join().unwrap(),
            [],
            "the flush was over when the look reached the partition"
        );
    }

    /// A flush that begins while a look at the partitions is under way forces none of
    /// them in that look (the flush wakes the sender for a look of its own): otherwise the
    /// partitions the look reached after the flush began went in one request and the
    /// others in the next.
    #[test]
    fn a_flush_that_begins_during_a_look_waits_for_the_next_look() {
        let a = Arc::new(acc(&[("linger.ms", "60000")]));
        let snap = snapshot(&[1, 1]);
        append(&a, 0, b"x");
        append(&a, 1, b"y");
        let second = partition_acc(&a, 1);
        // The look starts before the flush, passes partition 0 and waits for partition 1.
        let held = lock(&second);
        let look = {
            let (a, snap) = (Arc::clone(&a), snap.clone());
            std::thread::spawn(move || ready_partitions(&a.ready(&snap, Instant::now())))
        };
        std::thread::sleep(Duration::from_millis(200));
        let flush = a.begin_flush();
        drop(held);
        assert_eq!(look.join().unwrap(), [], "the flush began during the look");
        // The flush's own look takes both.
        assert_eq!(
            ready_partitions(&a.ready(&snap, Instant::now())),
            [(1, 0), (1, 1)]
        );
        drop(flush);
    }

    /// A look that began during one flush and finds a second flush running when it reaches
    /// a partition forces none of the partitions after the change (the second flush's own
    /// look takes them all): a look that began during `flush` (as the sender looks again
    /// when the flush's batch is answered), passed partition 0 before the records were
    /// appended and reached partition 1 after the next `flush` began sent partition 1 alone
    /// and partition 0 in a second request (a broker test counting Produce requests saw 2
    /// where 1 was due, in CI).
    #[test]
    fn a_look_that_spans_two_flushes_waits_for_the_second_ones_look() {
        let a = Arc::new(acc(&[("linger.ms", "60000")]));
        let snap = snapshot(&[1, 1]);
        let first = a.begin_flush();
        append(&a, 1, b"y");
        let second = partition_acc(&a, 1);
        // The look starts during the first flush, passes the empty partition 0 and waits
        // for partition 1.
        let held = lock(&second);
        let look = {
            let (a, snap) = (Arc::clone(&a), snap.clone());
            std::thread::spawn(move || {
                let r = a.ready(&snap, Instant::now());
                (ready_partitions(&r), r.next)
            })
        };
        std::thread::sleep(Duration::from_millis(200));
        drop(first);
        append(&a, 0, b"x");
        let flush = a.begin_flush();
        drop(held);
        let (ready, next) = look.join().unwrap();
        assert_eq!(ready, [], "a second flush began during the look");
        assert!(
            next.is_some_and(|n| n <= Instant::now()),
            "the sender looks again at once: {next:?}"
        );
        assert_eq!(
            ready_partitions(&a.ready(&snap, Instant::now())),
            [(1, 0), (1, 1)]
        );
        drop(flush);
    }

    #[test]
    fn flush_and_close_make_open_batches_ready() {
        let a = acc(&[("linger.ms", "60000")]);
        let snap = snapshot(&[1]);
        append(&a, 0, b"x");
        let now = Instant::now();
        assert!(a.ready(&snap, now).ready.is_empty());
        {
            let _f = a.begin_flush();
            assert_eq!(ready_partitions(&a.ready(&snap, now)), [(1, 0)]);
        }
        assert!(a.ready(&snap, now).ready.is_empty(), "flush over");
        a.close();
        assert!(a.is_closing());
        let r = a.ready(&snap, now);
        let part = &r.ready[&1][0];
        assert!(a.drain(part, now, usize::MAX).is_some());
        assert!(!a.has_data());
    }

    #[test]
    fn send_topic_finds_each_accumulators_own_topic() {
        let a1 = acc(&[]);
        let a2 = acc(&[]);
        let x: Arc<str> = Arc::from("x");
        let (x1, x2) = (a1.topic(&x), a2.topic(&x));
        for _ in 0..2 {
            // Alternating accumulators and topics on one thread: always the map's own.
            assert!(Arc::ptr_eq(&a1.send_topic("x").unwrap(), &x1));
            assert!(Arc::ptr_eq(&a2.send_topic("x").unwrap(), &x2));
            assert!(a1.send_topic("y").is_none());
        }
        let y1 = a1.topic(&Arc::from("y"));
        assert!(Arc::ptr_eq(&a1.send_topic("y").unwrap(), &y1));
        assert!(Arc::ptr_eq(&a1.send_topic("x").unwrap(), &x1));
        // A new accumulator never gets a dropped one's topic.
        drop((a1, x1, y1));
        let a3 = acc(&[]);
        assert!(a3.send_topic("x").is_none());
        assert!(Arc::ptr_eq(&a2.send_topic("x").unwrap(), &x2));
    }

    #[test]
    fn a_new_batch_starts_as_large_as_the_partitions_last_one() {
        // linger.ms=0: each batch is ready at once; batch.size 1 MB; batches on the heap (a
        // pooled buffer always holds `batch.size`, its pages used only as written).
        let mut a = acc(&[("linger.ms", "0"), ("batch.size", "1000000")]);
        a.buffers = BufferPool::new(1_000_061, 0);
        let snap = snapshot(&[1, 1]);
        let value = vec![7u8; 1000];
        for _ in 0..300 {
            append(&a, 0, &value);
        }
        let now = Instant::now() + Duration::from_millis(1);
        let r = a.ready(&snap, now);
        let part = &r.ready[&1][0];
        let big = a.drain(part, now, usize::MAX).expect("the batch");
        let size = big.builder.size_bytes();
        assert!(size > 300_000, "{size}");
        append(&a, 0, b"next");
        append(&a, 1, b"other partition");
        let r = a.ready(&snap, now);
        let mut caps = Vec::new();
        for part in r.ready.values().flatten() {
            let b = a.drain(part, now, usize::MAX).expect("a batch");
            caps.push((part.tp().1, b.builder.capacity()));
        }
        caps.sort_unstable();
        assert_eq!(caps.len(), 2, "{caps:?}");
        assert!(
            caps[0].1 >= size,
            "partition 0 starts from its last size: {caps:?}"
        );
        assert!(
            caps[1].1 < 100_000,
            "partition 1 had no large batch: small buffer: {caps:?}"
        );
    }

    /// A partition's batch goes into a pooled mapping only when its previous batch was
    /// large: small batches (many partitions, a light load) and first batches are built on
    /// the heap, in buffers sized to what they hold, instead of a page or more each.
    #[test]
    fn small_batches_stay_off_the_pool() {
        let a = acc(&[("linger.ms", "0")]); // batch.size 16384: pooled from 8 KiB
        let snap = snapshot(&[1, 1]);
        let now = Instant::now() + Duration::from_millis(1);
        let take = |a: &Accumulator, p: i32| {
            let r = a.ready(&snap, now);
            let part = r.ready[&1]
                .iter()
                .find(|x| x.tp().1 == p)
                .expect("ready")
                .clone();
            let b = a.drain(&part, now, usize::MAX).expect("a batch");
            let cap = b.builder.capacity();
            drop(b.builder.seal(&Default::default()).unwrap());
            a.completed(b.id, b.permits);
            cap
        };
        // Partition 0: small batches only.
        append(&a, 0, b"small");
        let first = take(&a, 0);
        append(&a, 0, b"small again");
        let second = take(&a, 0);
        assert!(first <= 2048 && second <= 2048, "{first} {second}");
        assert_eq!(a.buffers().mapped(), 0, "no mapping for small batches");
        // Partition 1: a large batch (its first, on the heap), then the next is pooled.
        for _ in 0..10 {
            append(&a, 1, &[7u8; 1000]);
        }
        let large = take(&a, 1);
        assert!(large < a.buffers().buffer_size(), "first batch on the heap");
        append(&a, 1, b"after a large batch");
        assert_eq!(take(&a, 1), a.buffers().buffer_size(), "pooled");
        assert_eq!(a.buffers().mapped(), 1);
        append(&a, 0, b"small");
        assert!(take(&a, 0) <= 2048);
        assert_eq!(a.buffers().mapped(), 1);
    }

    /// Batches are built in pooled mappings; the ones a burst needed and the load since
    /// did not are unmapped within two trim intervals, the one still used is kept.
    #[test]
    fn batch_buffers_go_back_to_the_os_after_a_burst() {
        let mut a = acc(&[("linger.ms", "0"), ("batch.num.messages", "1")]);
        // About the pool whatever the batches' sizes (small ones go to the heap).
        a.pooled_from = 0;
        let snap = snapshot(&[1]);
        let t0 = Instant::now();
        // A burst: eight batches under way at once.
        for _ in 0..8 {
            append(&a, 0, b"burst");
        }
        let now = t0 + Duration::from_millis(1);
        let part = &a.ready(&snap, now).ready[&1][0];
        let mut batches = Vec::new();
        while let Some(b) = a.drain(part, now, usize::MAX) {
            assert_eq!(b.builder.capacity(), a.buffers().buffer_size(), "pooled");
            batches.push(b);
        }
        assert_eq!(batches.len(), 8);
        assert_eq!(a.buffers().mapped(), 8);
        assert_eq!(a.trim_buffers(now), None, "all in use");
        for b in batches {
            let sealed = b.builder.seal(&Default::default()).unwrap();
            a.completed(b.id, b.permits);
            drop(sealed);
        }
        assert_eq!(a.buffers().free(), 8, "back in the pool when done");
        // Then a light load: one batch at a time.
        let mut t = now;
        let mut next = None;
        for _ in 0..2 {
            t += TRIM_INTERVAL;
            append(&a, 0, b"light");
            let part = &a.ready(&snap, t).ready[&1][0];
            let b = a.drain(part, t, usize::MAX).unwrap();
            drop(b.builder.seal(&Default::default()).unwrap());
            a.completed(b.id, b.permits);
            next = a.trim_buffers(t);
        }
        assert_eq!(
            a.buffers().mapped(),
            1,
            "seven unmapped, the one in use kept"
        );
        assert_eq!(
            next,
            Some(t + TRIM_INTERVAL),
            "the sender comes back to trim"
        );
        assert_eq!(a.trim_buffers(t + TRIM_INTERVAL), None);
        assert_eq!(a.buffers().mapped(), 0, "idle: nothing kept");
    }

    #[test]
    fn drain_takes_oldest_first_within_room() {
        let a = acc(&[("linger.ms", "0"), ("batch.num.messages", "1")]);
        let snap = snapshot(&[1]);
        append(&a, 0, b"first");
        append(&a, 0, b"second");
        let now = Instant::now() + Duration::from_millis(1);
        let r = a.ready(&snap, now);
        let part = &r.ready[&1][0];
        assert!(a.drain(part, now, 1).is_none(), "does not fit");
        let b1 = a.drain(part, now, usize::MAX).expect("first batch");
        let b2 = a.drain(part, now, usize::MAX).expect("second batch");
        assert!(b1.id < b2.id);
        assert!(a.drain(part, now, usize::MAX).is_none());
        a.completed(b1.id, b1.permits);
        a.completed(b2.id, b2.permits);
        assert_eq!(
            a.memory.available_permits(),
            33_554_432,
            "buffer.memory all free"
        );
    }

    #[test]
    fn unsent_batches_expire_and_leaderless_partitions_are_flagged() {
        let a = acc(&[
            ("linger.ms", "0"),
            ("delivery.timeout.ms", "40000"),
            ("request.timeout.ms", "30000"),
        ]);
        append(&a, 0, b"x");
        append(&a, 1, b"y");
        let snap = snapshot(&[-1, 3]);
        let now = Instant::now() + Duration::from_millis(1);
        let r = a.ready(&snap, now);
        assert!(r.unknown_leader);
        assert_eq!(ready_partitions(&r), [(3, 1)]);
        let much_later = Instant::now() + Duration::from_secs(41);
        let r = a.ready(&snap, much_later);
        assert_eq!(r.expired.len(), 2);
        assert!(r.ready.is_empty() && !a.has_data());
        assert!(a.drain_all().is_empty());
    }

    /// Keyless records switch partition after `batch.size` bytes, and after
    /// `sticky.partitioning.linger.ms` even when few bytes went to the partition.
    #[test]
    fn sticky_partition_switches_on_bytes_and_on_linger() {
        let snap = snapshot(&[0, 0, 0, 0]);
        let meta = snap.topic(T).expect("topic").clone();
        let a = acc(&[
            ("batch.size", "1000"),
            ("sticky.partitioning.linger.ms", "0"),
        ]);
        let t = a.topic(&Arc::from(T));
        let first = a.sticky_partition(&t, &meta, 100);
        for _ in 0..8 {
            assert_eq!(
                a.sticky_partition(&t, &meta, 100),
                first,
                "below batch.size"
            );
        }
        // The 10th record reaches batch.size: the next one goes elsewhere.
        assert_eq!(a.sticky_partition(&t, &meta, 100), first);
        assert_ne!(
            a.sticky_partition(&t, &meta, 100),
            first,
            "switched on bytes"
        );

        let a = acc(&[
            ("batch.size", "1000000"),
            ("sticky.partitioning.linger.ms", "200"),
        ]);
        let t = a.topic(&Arc::from(T));
        let first = a.sticky_partition(&t, &meta, 10);
        for _ in 0..100 {
            assert_eq!(
                a.sticky_partition(&t, &meta, 10),
                first,
                "within the linger"
            );
        }
        std::thread::sleep(Duration::from_millis(250));
        let after: Vec<i32> = (0..2 * STICKY_CLOCK_EVERY)
            .map(|_| a.sticky_partition(&t, &meta, 10))
            .collect();
        assert!(
            after.iter().any(|p| *p != first),
            "switched after the linger: {after:?}"
        );
    }
}
