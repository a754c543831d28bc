//! Per-partition accumulation of records into open batches (shared between `send` callers and
//! the sender task, each partition behind its own short `std::sync::Mutex`).
//!
//! `send` encodes the record straight into the partition's open batch
//! ([`BatchBuilder::append`]). A batch is *closed* (moved to the partition's `closed` queue,
//! where the sender picks it up at once) when the next record would not fit in `batch.size`
//! bytes or `batch.num.messages` records; otherwise the sender takes the open batch when
//! `linger.ms` has passed since it was created, or at once while a flush or close is running.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use tokio::sync::{watch, Notify, Semaphore};
use tokio::time::Instant;

use crate::cluster::TopicMeta;

use super::delivery::{Completion, DeliveryFuture};
use crate::record::BatchBuilder;

/// A batch being filled (or full and waiting for the sender).
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
pub(crate) struct PartitionAcc {
    pub open: Option<OpenBatch>,
    pub closed: VecDeque<OpenBatch>,
}

impl PartitionAcc {
    pub fn is_empty(&self) -> bool {
        self.open.is_none() && self.closed.is_empty()
    }

    /// Creation time of the oldest batch.
    pub fn oldest(&self) -> Option<Instant> {
        self.closed
            .front()
            .or(self.open.as_ref())
            .map(|b| b.created)
    }
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
    pub name: Arc<str>,
    pub partitions: RwLock<Vec<Arc<Mutex<PartitionAcc>>>>,
    state: Mutex<TopicState>,
}

impl TopicAcc {
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

pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// All accumulated, not-yet-drained batches plus the signals between `send` and the sender.
#[derive(Debug)]
pub(crate) struct Accumulator {
    topics: RwLock<TopicMap>,
    /// `buffer.memory` as a semaphore of bytes.
    pub memory: Arc<Semaphore>,
    /// Batches created and not completed (for `flush`).
    pub incomplete: Mutex<HashMap<u64, Arc<Completion>>>,
    next_id: AtomicU64,
    /// Wakes the sender (new or full batch, flush, close).
    pub wake: Notify,
    /// Flushes running: while > 0, open batches are ready regardless of `linger.ms`.
    pub flushing: AtomicUsize,
    /// No new records; the sender drains everything and stops.
    pub closing: AtomicBool,
    /// Give up: the sender fails everything pending and stops.
    pub abort: AtomicBool,
    /// Becomes `true` when the sender has stopped.
    pub stopped: watch::Sender<bool>,
    batch_size: usize,
    batch_num_messages: usize,
}

impl Accumulator {
    pub fn new(buffer_memory: usize, batch_size: usize, batch_num_messages: usize) -> Self {
        Accumulator {
            topics: RwLock::new(TopicMap::default()),
            memory: Arc::new(Semaphore::new(buffer_memory.min(Semaphore::MAX_PERMITS))),
            incomplete: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(0),
            wake: Notify::new(),
            flushing: AtomicUsize::new(0),
            closing: AtomicBool::new(false),
            abort: AtomicBool::new(false),
            stopped: watch::channel(false).0,
            batch_size: batch_size.max(1),
            batch_num_messages: batch_num_messages.max(1),
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

    /// Every topic (for the sender's scan).
    pub fn topics(&self) -> Vec<Arc<TopicAcc>> {
        read(&self.topics).values().cloned().collect()
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
        self.topics()
            .iter()
            .any(|t| read(&t.partitions).iter().any(|p| !lock(p).is_empty()))
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
