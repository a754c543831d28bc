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

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use tokio::sync::{watch, Notify, Semaphore};
use tokio::time::Instant;

use crate::cluster::{MetadataSnapshot, TopicMeta};
use crate::error::{Error, Result};

use super::delivery::{Completion, DeliveryFuture};
use crate::config::ProducerConfig;
use crate::record::BatchBuilder;

/// Topic and partition.
pub(crate) type Tp = (Arc<str>, i32);

/// A batch taken out of the accumulator (drained to be sent, expired, or failed).
#[derive(Debug)]
pub(crate) struct OpenBatch {
    pub id: u64,
    pub builder: BatchBuilder,
    pub completion: Arc<Completion>,
    pub created: Instant,
    /// Bytes of `buffer.memory` this batch holds (released when it completes).
    pub permits: usize,
}

/// One partition's batches not yet taken by the sender.
#[derive(Debug, Default)]
struct PartitionAcc {
    open: Option<OpenBatch>,
    closed: VecDeque<OpenBatch>,
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
                .filter(|o| force || o.created + linger <= now)
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
    sticky_partition: i32,
    sticky_bytes: usize,
    meta: Option<(u64, Arc<TopicMeta>)>,
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

    fn partition(&self, p: i32) -> Arc<Mutex<PartitionAcc>> {
        let idx = p as usize;
        if let Some(pa) = read(&self.partitions).get(idx) {
            return pa.clone();
        }
        let mut parts = self.partitions.write().unwrap_or_else(|e| e.into_inner());
        while parts.len() <= idx {
            parts.push(Arc::new(Mutex::new(PartitionAcc::default())));
        }
        parts[idx].clone()
    }

    /// The topic's metadata cached at metadata generation `generation`, if that is the
    /// generation it was cached at.
    pub fn cached_meta(&self, generation: u64) -> Option<Arc<TopicMeta>> {
        match &lock(&self.state).meta {
            Some((g, m)) if *g == generation => Some(m.clone()),
            _ => None,
        }
    }

    /// Caches the topic's metadata read at (or after) metadata generation `generation`.
    pub fn cache_meta(&self, generation: u64, meta: Arc<TopicMeta>) {
        lock(&self.state).meta = Some((generation, meta));
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

/// All accumulated, not-yet-drained batches plus the signals between `send` and the sender.
#[derive(Debug)]
pub(crate) struct Accumulator {
    topics: RwLock<TopicMap>,
    /// `buffer.memory` as a semaphore of bytes.
    memory: Arc<Semaphore>,
    /// Batches created and not completed (for `flush`).
    incomplete: Mutex<HashMap<u64, Arc<Completion>>>,
    next_id: AtomicU64,
    /// Wakes the sender (new or full batch, flush, close).
    wake: Notify,
    /// Flushes running: while > 0, open batches are ready regardless of `linger.ms`.
    flushing: AtomicUsize,
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
    linger: Duration,
    delivery_timeout: Duration,
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
    }
}

impl Accumulator {
    /// An empty accumulator with the producer's batching settings (`buffer.memory`,
    /// `batch.size`, `batch.num.messages`, `linger.ms`, `delivery.timeout.ms`).
    pub fn new(s: &ProducerConfig) -> Self {
        Accumulator {
            topics: RwLock::new(TopicMap::default()),
            memory: Arc::new(Semaphore::new(s.buffer_memory.min(Semaphore::MAX_PERMITS))),
            incomplete: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(0),
            wake: Notify::new(),
            flushing: AtomicUsize::new(0),
            closing: AtomicBool::new(false),
            appending: AtomicUsize::new(0),
            abort: AtomicBool::new(false),
            fatal: Mutex::new(None),
            is_fatal: AtomicBool::new(false),
            stopped: watch::channel(false).0,
            batch_size: s.batch_size.max(1),
            batch_num_messages: s.batch_num_messages.max(1),
            linger: s.linger,
            delivery_timeout: s.delivery_timeout,
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
        self.flushing.fetch_add(1, Ordering::SeqCst);
        self.wake();
        FlushGuard(self)
    }

    /// Stops accepting records: every batch is ready at once, and the sender stops when
    /// nothing is left.
    pub fn close(&self) {
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

    /// Batch `id` has its outcome: no longer pending for `flush`; its memory is free.
    pub fn completed(&self, id: u64, permits: usize) {
        lock(&self.incomplete).remove(&id);
        self.release(permits);
    }

    /// Makes every batch ready at once and waits until each batch pending at the call has
    /// its outcome.
    pub async fn flush(&self) {
        let _flushing = self.begin_flush();
        let pending: Vec<Arc<Completion>> = lock(&self.incomplete).values().cloned().collect();
        for c in pending {
            let mut slot = None;
            std::future::poll_fn(|cx| c.poll_result(cx, &mut slot).map(|_| ())).await;
        }
    }

    /// The topic's accumulator, if it exists.
    pub fn get_topic(&self, name: &str) -> Option<Arc<TopicAcc>> {
        read(&self.topics).get(name).cloned()
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
                        sticky_partition: -1,
                        sticky_bytes: 0,
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
    /// (with a known leader when any has one) until `batch.size` bytes went to it; the record
    /// is accounted to the partition returned.
    pub fn sticky_partition(&self, topic: &TopicAcc, meta: &TopicMeta, bytes: usize) -> i32 {
        let n = meta.partition_count();
        let mut s = lock(&topic.state);
        if s.sticky_partition < 0 || s.sticky_partition >= n {
            s.sticky_partition = pick_partition(meta, -1);
            s.sticky_bytes = 0;
        }
        let p = s.sticky_partition;
        s.sticky_bytes += bytes;
        if s.sticky_bytes >= self.batch_size {
            s.sticky_partition = pick_partition(meta, p);
            s.sticky_bytes = 0;
        }
        p
    }

    /// Appends an encoded record to the partition's open batch (opening a new one when it
    /// does not fit), holding `permits` bytes of buffer memory. Never blocks.
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
        let pacc = topic.partition(partition);
        let mut wake = false;
        let fut = {
            let mut pa = lock(&pacc);
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
                let completion = Completion::new(topic.name.clone(), partition);
                lock(&self.incomplete).insert(id, completion.clone());
                pa.open = Some(OpenBatch {
                    id,
                    builder: BatchBuilder::new(
                        ts,
                        self.batch_size.min(64 * 1024).max(rec_size + 64),
                    ),
                    completion,
                    created: Instant::now(),
                    permits: 0,
                });
                wake = true;
            }
            let batch = pa.open.as_mut().expect("open batch exists");
            let offset_delta = batch.builder.len() as i32;
            batch
                .builder
                .append_with_payload_size(ts, key, value, headers, payload_size);
            batch.permits += permits;
            let fut = DeliveryFuture::new(batch.completion.clone(), offset_delta, ts);
            if batch.builder.len() >= self.batch_num_messages
                || batch.builder.size_bytes() >= self.batch_size
            {
                let full = pa.open.take().expect("open batch exists");
                pa.closed.push_back(full);
                wake = true;
            }
            fut
        };
        if wake {
            self.wake.notify_one();
        }
        fut
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
        let force = self.forced();
        let (linger, dt) = (self.linger, self.delivery_timeout);
        let mut out = ReadyCheck::default();
        self.each_partition(|topic, p, pacc| {
            let ready = {
                let mut pa = lock(&pacc);
                while pa.oldest().is_some_and(|c| c + dt <= now) {
                    out.expired.extend(pa.pop_oldest());
                }
                if let Some(o) = pa.oldest() {
                    out.next = min_opt(out.next, o + dt);
                }
                let ready = pa.next_ready(now, linger, force).is_some();
                if !ready {
                    if let Some(o) = &pa.open {
                        out.next = min_opt(out.next, o.created + linger);
                    }
                }
                ready
            };
            if ready {
                match snap.leader(topic, p) {
                    Some(l) => out.ready.entry(l).or_default().push(PartitionRef {
                        tp: (topic.clone(), p),
                        acc: pacc,
                    }),
                    None => out.unknown_leader = true,
                }
            }
        });
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
        pa.pop_oldest()
    }

    /// Takes every batch out of the accumulator (the caller fails them).
    pub fn drain_all(&self) -> Vec<OpenBatch> {
        let mut all = Vec::new();
        self.each_partition(|_, _, pacc| lock(&pacc).take_all(&mut all));
        all
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

/// A random partition other than `avoid`, preferring partitions with a known leader.
fn pick_partition(meta: &TopicMeta, avoid: i32) -> i32 {
    let n = meta.partition_count();
    if n <= 1 {
        return 0;
    }
    let candidates: Vec<i32> = meta
        .partitions
        .iter()
        .filter(|p| p.leader >= 0 && p.partition != avoid)
        .map(|p| p.partition)
        .collect();
    let r = crate::backoff::random_unit();
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
}
