//! Client statistics: librdkafka's `statistics.interval.ms` snapshots, as a typed struct.
//!
//! With `statistics.interval.ms` > 0, a [`Producer`](crate::Producer) or a
//! [`Consumer`](crate::Consumer) (classic or KIP-848 group, or assign mode) takes a
//! [`Statistics`] snapshot on that interval and delivers it
//! - to the handler set with `statistics_handler` on its builder (called on the statistics
//!   task: keep it short, hand heavy work to another task), and
//! - to every receiver of `subscribe_statistics()` (a `tokio::sync::watch` receiver: the
//!   newest snapshot; `changed()` fails once the client is closed or dropped).
//!
//! `statistics()` takes a snapshot at any time, whatever the interval (also with 0).
//!
//! Names and meanings follow librdkafka's STATISTICS.md, so dashboards built on
//! librdkafka's JSON keep their meaning (the drop-in crate `kafka-sdk-rdkafka` serialises a
//! snapshot to exactly that JSON). Time stamps `ts` / `age` / `stateage` of brokers are in
//! microseconds, the group's and eos ages in milliseconds, as in librdkafka.
//!
//! # How it is measured
//! Counters are owned by the tasks that do the work: each broker connection's writer and
//! reader tasks add to relaxed atomics per request (not per record); the producer's sender
//! task adds per acknowledged batch; the consumer counts delivered records under the lock
//! `recv` already holds. The statistics task reads those and asks the owners' state (the
//! accumulator's per-partition queues, the consumer's partition state) under their short
//! locks, once per interval. A snapshot resets the broker `rtt` and `throttle` windows.
//!
//! # Not measured (librdkafka's "not available" value)
//! `replyq`, `simple_cnt`, `metadata_cache_cnt` (0); per broker `outbuf_msg_cnt`,
//! `waitresp_msg_cnt`, `txretries`, `rxerrs`, `rxcorriderrs`, `rxpartial`, `zbuf_grow`,
//! `buf_grow`, `wakeups`, `txidle`, `rxidle`, `int_latency`, `outbuf_latency`,
//! `toppars` (absent / 0); per topic `metadata_age`, `batchsize`, `batchcnt`; per partition
//! `xmit_msgq_cnt`, `xmit_msgq_bytes`, `query_offset`, `msgs`, `rx_ver_drops`,
//! `msgs_inflight`, `next_ack_seq`, `next_err_seq`, `acked_msgid` (0). The rtt percentiles
//! come from power-of-two buckets (the upper bound of the bucket, clamped to min..max).
//! Share consumers emit no statistics.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use tokio::sync::watch;

/// librdkafka's value of an offset that is not known (`RD_KAFKA_OFFSET_INVALID`).
pub const OFFSET_INVALID: i64 = -1001;

/// A statistics snapshot of one client (librdkafka's top-level object).
#[derive(Clone, Debug, Default, PartialEq)]
#[non_exhaustive]
pub struct Statistics {
    /// Instance name: `client.id` and the client type, e.g. `"app#producer-1"`.
    pub name: String,
    /// `client.id`.
    pub client_id: String,
    /// `"producer"` or `"consumer"` (librdkafka's `type`).
    pub client_type: String,
    /// Monotonic clock, microseconds (from a process-wide origin).
    pub ts: i64,
    /// Wall clock, seconds since the Unix epoch.
    pub time: i64,
    /// Microseconds since the client was created.
    pub age: i64,
    /// Producer: records accepted by `send` and not yet acknowledged or failed (in the
    /// accumulator or in flight). Consumer: 0.
    pub msg_cnt: u64,
    /// Producer: bytes of `buffer.memory` those records hold. Consumer: 0.
    pub msg_size: u64,
    /// `queue.buffering.max.messages` (0 when unlimited, or for a consumer).
    pub msg_max: u64,
    /// `buffer.memory` (0 for a consumer).
    pub msg_size_max: u64,
    /// Requests sent to all brokers.
    pub tx: u64,
    /// Bytes sent to all brokers.
    pub tx_bytes: u64,
    /// Responses received from all brokers.
    pub rx: u64,
    /// Bytes received from all brokers.
    pub rx_bytes: u64,
    /// Records acknowledged by the brokers (producer).
    pub txmsgs: u64,
    /// Bytes of the records acknowledged (their encoded size).
    pub txmsg_bytes: u64,
    /// Records delivered to the application (consumer).
    pub rxmsgs: u64,
    /// Bytes (key + value) of the records delivered to the application.
    pub rxmsg_bytes: u64,
    /// Brokers by `"host:port/id"` (`"host:port/bootstrap"` for bootstrap entries).
    pub brokers: BTreeMap<String, BrokerStats>,
    /// Topics the client produces to or consumes, by name.
    pub topics: BTreeMap<String, TopicStats>,
    /// The consumer group (consumers with `group.id`).
    pub cgrp: Option<GroupStats>,
    /// Idempotence and transactions (producers).
    pub eos: Option<EosStats>,
}

/// One broker connection's statistics.
#[derive(Clone, Debug, Default, PartialEq)]
#[non_exhaustive]
pub struct BrokerStats {
    /// `"host:port/id"`, the key in [`Statistics::brokers`].
    pub name: String,
    /// Broker id (negative for bootstrap entries).
    pub nodeid: i32,
    /// `"host:port"`.
    pub nodename: String,
    /// `"UP"` (connected), `"DOWN"` (the last attempt failed or the connection closed),
    /// `"CONNECT"` (an attempt is under way) or `"INIT"` (never connected).
    pub state: String,
    /// Microseconds since the last state change (connect or disconnect).
    pub stateage: i64,
    /// Requests waiting to be written.
    pub outbuf_cnt: i64,
    /// Requests written and awaiting their response.
    pub waitresp_cnt: i64,
    /// Requests sent.
    pub tx: u64,
    /// Bytes sent.
    pub txbytes: u64,
    /// Write failures.
    pub txerrs: u64,
    /// Requests that timed out (`request.timeout.ms`).
    pub req_timeouts: u64,
    /// Responses received.
    pub rx: u64,
    /// Bytes received.
    pub rxbytes: u64,
    /// Connections established.
    pub connects: u64,
    /// Connections closed after they were established.
    pub disconnects: u64,
    /// Request round-trip times since the previous snapshot (microseconds).
    pub rtt: Window,
    /// Throttle times the broker asked the client to keep in its answers since the previous
    /// snapshot (milliseconds; client quotas, KIP-219).
    pub throttle: Window,
    /// Requests sent per API (`"Produce"`, `"Fetch"`, ...), only those sent at least once.
    pub req: BTreeMap<String, u64>,
}

/// Statistics over a window of measurements (microseconds).
#[derive(Clone, Debug, Default, PartialEq)]
#[non_exhaustive]
pub struct Window {
    /// Smallest value.
    pub min: i64,
    /// Largest value.
    pub max: i64,
    /// Average.
    pub avg: i64,
    /// Sum.
    pub sum: i64,
    /// Number of values.
    pub cnt: i64,
    /// 50th percentile (power-of-two resolution).
    pub p50: i64,
    /// 75th percentile.
    pub p75: i64,
    /// 90th percentile.
    pub p90: i64,
    /// 95th percentile.
    pub p95: i64,
    /// 99th percentile.
    pub p99: i64,
    /// 99.99th percentile.
    pub p99_99: i64,
}

/// One topic's statistics.
#[derive(Clone, Debug, Default, PartialEq)]
#[non_exhaustive]
pub struct TopicStats {
    /// The topic.
    pub topic: String,
    /// Its partitions the client uses, by id.
    pub partitions: BTreeMap<i32, PartitionStats>,
}

/// One partition's statistics. Offsets not known are [`OFFSET_INVALID`] (-1001); lags not
/// known are -1.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct PartitionStats {
    /// Partition id.
    pub partition: i32,
    /// The broker the client talks to for it (its leader), -1 when unknown.
    pub broker: i32,
    /// Its leader, -1 when unknown.
    pub leader: i32,
    /// Producer: records waiting in the accumulator (not yet sent).
    pub msgq_cnt: i64,
    /// Producer: bytes of those records.
    pub msgq_bytes: u64,
    /// Producer: records acknowledged.
    pub txmsgs: u64,
    /// Producer: bytes of the records acknowledged.
    pub txbytes: u64,
    /// Consumer: records delivered to the application.
    pub rxmsgs: u64,
    /// Consumer: bytes (key + value) delivered to the application.
    pub rxbytes: u64,
    /// Consumer: `"active"`, `"offset-query"` (position being looked up),
    /// `"validate-epoch-wait"`, `"stopped"` (paused or stopped by an error), `"none"`.
    pub fetch_state: String,
    /// Consumer: records fetched and not yet delivered.
    pub fetchq_cnt: i64,
    /// Consumer: bytes of those records.
    pub fetchq_size: u64,
    /// Consumer: next offset to fetch.
    pub next_offset: i64,
    /// Consumer: offset of the last record delivered + 1 (the position).
    pub app_offset: i64,
    /// Consumer: offset stored for the next commit.
    pub stored_offset: i64,
    /// Consumer: last offset committed (by this consumer, or found committed on assignment).
    pub committed_offset: i64,
    /// Consumer: offset of the last partition EOF reported.
    pub eof_offset: i64,
    /// Consumer: log start offset (low watermark) from the last fetch.
    pub lo_offset: i64,
    /// Consumer: high watermark from the last fetch.
    pub hi_offset: i64,
    /// Consumer: last stable offset from the last fetch.
    pub ls_offset: i64,
    /// Consumer: `hi_offset` (`ls_offset` with `read_committed`) − `committed_offset`.
    pub consumer_lag: i64,
    /// Consumer: `hi_offset` (`ls_offset` with `read_committed`) − `stored_offset`.
    pub consumer_lag_stored: i64,
}

impl Default for PartitionStats {
    fn default() -> Self {
        PartitionStats {
            partition: -1,
            broker: -1,
            leader: -1,
            msgq_cnt: 0,
            msgq_bytes: 0,
            txmsgs: 0,
            txbytes: 0,
            rxmsgs: 0,
            rxbytes: 0,
            fetch_state: "none".into(),
            fetchq_cnt: 0,
            fetchq_size: 0,
            next_offset: OFFSET_INVALID,
            app_offset: OFFSET_INVALID,
            stored_offset: OFFSET_INVALID,
            committed_offset: OFFSET_INVALID,
            eof_offset: OFFSET_INVALID,
            lo_offset: OFFSET_INVALID,
            hi_offset: OFFSET_INVALID,
            ls_offset: OFFSET_INVALID,
            consumer_lag: -1,
            consumer_lag_stored: -1,
        }
    }
}

/// The consumer group's statistics.
#[derive(Clone, Debug, Default, PartialEq)]
#[non_exhaustive]
pub struct GroupStats {
    /// `"up"` (member of a generation), `"wait-coord"` (joining or rejoining), `"term"`
    /// (closed) or `"init"`.
    pub state: String,
    /// Milliseconds since `state` changed.
    pub stateage: i64,
    /// `"steady"` (assignment applied), `"wait-sync"` (a rebalance completing), `"wait-join"`
    /// or `"init"`.
    pub join_state: String,
    /// Milliseconds since the last rebalance (0 before the first one).
    pub rebalance_age: i64,
    /// Rebalances completed.
    pub rebalance_cnt: i64,
    /// Why the last rebalance happened (empty: not tracked).
    pub rebalance_reason: String,
    /// Partitions currently assigned.
    pub assignment_size: i32,
}

/// Idempotent / transactional producer statistics.
#[derive(Clone, Debug, Default, PartialEq)]
#[non_exhaustive]
pub struct EosStats {
    /// `"Assigned"` (a producer id is held), `"Init"` (none yet, or not idempotent).
    pub idemp_state: String,
    /// Milliseconds since `idemp_state` changed.
    pub idemp_stateage: i64,
    /// librdkafka's transaction state name (`"Init"`, `"Ready"`, `"InTransaction"`,
    /// `"CommittingTransaction"`, `"AbortingTransaction"`, `"AbortableError"`,
    /// `"FatalError"`); `"Init"` for a producer without `transactional.id`.
    pub txn_state: String,
    /// Milliseconds since the producer was created (state changes are not timed).
    pub txn_stateage: i64,
    /// Whether records may be sent now (`InTransaction`, or not transactional).
    pub txn_may_enq: bool,
    /// Producer id, -1 when none.
    pub producer_id: i64,
    /// Producer epoch, -1 when none.
    pub producer_epoch: i64,
    /// Producer ids / epochs obtained so far.
    pub epoch_cnt: i64,
}

/// A statistics handler (see [`ProducerBuilder::statistics_handler`](crate::producer::ProducerBuilder::statistics_handler)).
pub(crate) type Handler = Arc<dyn Fn(Arc<Statistics>) + Send + Sync>;

/// A receiver of the newest snapshot (`None` before the first one).
pub type StatisticsReceiver = watch::Receiver<Option<Arc<Statistics>>>;

/// The process-wide origin of `ts`.
fn origin() -> Instant {
    static ORIGIN: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    *ORIGIN.get_or_init(Instant::now)
}

/// Microseconds since the process-wide origin (librdkafka's monotonic `ts`).
pub(crate) fn now_us() -> i64 {
    i64::try_from(origin().elapsed().as_micros()).unwrap_or(i64::MAX)
}

/// The common top-level fields of a snapshot.
pub(crate) fn header(client_id: &str, client_type: &str, created: Instant, n: u64) -> Statistics {
    Statistics {
        name: format!("{client_id}#{client_type}-{n}"),
        client_id: client_id.to_string(),
        client_type: client_type.to_string(),
        ts: now_us(),
        time: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0),
        age: i64::try_from(created.elapsed().as_micros()).unwrap_or(i64::MAX),
        ..Default::default()
    }
}

/// A process-wide instance number per client type (librdkafka's `rdkafka#producer-N`).
pub(crate) fn next_instance() -> u64 {
    static N: AtomicU64 = AtomicU64::new(1);
    N.fetch_add(1, Ordering::Relaxed)
}

/// Sums the broker totals into the client totals.
pub(crate) fn add_broker_totals(s: &mut Statistics) {
    for b in s.brokers.values() {
        s.tx += b.tx;
        s.tx_bytes += b.txbytes;
        s.rx += b.rx;
        s.rx_bytes += b.rxbytes;
    }
}

/// Number of power-of-two rtt buckets (bucket i holds values < 2^i µs; the last one all).
const BUCKETS: usize = 40;
/// Largest API key counted per request type.
const API_KEYS: usize = 96;

/// One broker endpoint's counters, written by its connections' writer and reader tasks
/// (relaxed atomics, per request), read by statistics snapshots. The consumer's dedicated
/// fetch and group connections to a broker count into that broker's endpoint counters.
pub(crate) struct BrokerCounters {
    tx: AtomicU64,
    txbytes: AtomicU64,
    txerrs: AtomicU64,
    req_timeouts: AtomicU64,
    rx: AtomicU64,
    rxbytes: AtomicU64,
    connects: AtomicU64,
    disconnects: AtomicU64,
    /// `now_us()` of the last connect or disconnect (0: none).
    state_since: AtomicI64,
    /// Request round trips (µs).
    rtt: WindowCounters,
    /// Throttle times the broker reported (ms; client quotas, KIP-219).
    throttle: WindowCounters,
    req: [AtomicU64; API_KEYS],
    /// One probe per connection counting into these counters: `(queued, in flight)` while
    /// the connection lives, `None` once it is closed (then pruned).
    conns: std::sync::Mutex<Vec<Probe>>,
    /// The endpoint's state for client events ([`crate::events`]); set once by the cluster
    /// that made the endpoint.
    pub(crate) watch: std::sync::OnceLock<Arc<crate::events::EndpointWatch>>,
    /// Which of the addresses the broker's name resolves to the next connection tries first
    /// (shared by every connection to the broker; see `Transport::connect`).
    pub(crate) next_address: std::sync::atomic::AtomicUsize,
}

/// A connection's queue gauges, see [`BrokerCounters::register`].
pub(crate) type Probe = Box<dyn Fn() -> Option<(usize, usize)> + Send + Sync>;

impl std::fmt::Debug for BrokerCounters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BrokerCounters")
            .field("tx", &self.tx)
            .field("rx", &self.rx)
            .finish_non_exhaustive()
    }
}

impl Default for BrokerCounters {
    fn default() -> Self {
        BrokerCounters {
            tx: AtomicU64::new(0),
            txbytes: AtomicU64::new(0),
            txerrs: AtomicU64::new(0),
            req_timeouts: AtomicU64::new(0),
            rx: AtomicU64::new(0),
            rxbytes: AtomicU64::new(0),
            connects: AtomicU64::new(0),
            disconnects: AtomicU64::new(0),
            state_since: AtomicI64::new(now_us()),
            rtt: WindowCounters::default(),
            throttle: WindowCounters::default(),
            req: std::array::from_fn(|_| AtomicU64::new(0)),
            conns: std::sync::Mutex::new(Vec::new()),
            watch: std::sync::OnceLock::new(),
            next_address: std::sync::atomic::AtomicUsize::new(0),
        }
    }
}

impl BrokerCounters {
    /// A request of API `api_key` and `bytes` bytes is being written (counted before its
    /// first byte goes out, so that its answer never finds it uncounted).
    #[inline]
    pub(crate) fn sent(&self, api_key: i16, bytes: usize) {
        self.tx.fetch_add(1, Ordering::Relaxed);
        self.txbytes.fetch_add(bytes as u64, Ordering::Relaxed);
        if let Some(c) = usize::try_from(api_key).ok().and_then(|k| self.req.get(k)) {
            c.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// A response of `bytes` bytes arrived `rtt` after its request was written.
    #[inline]
    pub(crate) fn received(&self, bytes: usize, rtt: Duration) {
        self.rx.fetch_add(1, Ordering::Relaxed);
        self.rxbytes.fetch_add(bytes as u64, Ordering::Relaxed);
        self.rtt
            .add(u64::try_from(rtt.as_micros()).unwrap_or(u64::MAX));
    }

    /// A response carried a throttle time of `ms` milliseconds (the broker's quota).
    pub(crate) fn throttled(&self, ms: i32) {
        self.throttle.add(u64::try_from(ms).unwrap_or(0));
    }

    /// Registers a new connection's queue gauges (once per connection).
    pub(crate) fn register(&self, probe: Probe) {
        let mut c = self.conns.lock().unwrap_or_else(|p| p.into_inner());
        c.retain(|p| p().is_some());
        c.push(probe);
    }

    /// `(live connections, requests queued, requests in flight)` over the live connections.
    pub(crate) fn live(&self) -> (usize, usize, usize) {
        let mut c = self.conns.lock().unwrap_or_else(|p| p.into_inner());
        let mut out = (0, 0, 0);
        c.retain(|p| match p() {
            Some((q, w)) => {
                out = (out.0 + 1, out.1 + q, out.2 + w);
                true
            }
            None => false,
        });
        out
    }

    /// A write failed.
    pub(crate) fn write_failed(&self) {
        self.txerrs.fetch_add(1, Ordering::Relaxed);
    }

    /// A request timed out.
    pub(crate) fn timed_out(&self) {
        self.req_timeouts.fetch_add(1, Ordering::Relaxed);
    }

    /// A connection was established.
    pub(crate) fn connected(&self) {
        self.connects.fetch_add(1, Ordering::Relaxed);
        self.state_since.store(now_us(), Ordering::Relaxed);
    }

    /// An established connection closed.
    pub(crate) fn disconnected(&self) {
        self.disconnects.fetch_add(1, Ordering::Relaxed);
        self.state_since.store(now_us(), Ordering::Relaxed);
    }

    /// The counters as [`BrokerStats`] (without name, id, state and queue gauges); resets
    /// the rtt and throttle windows.
    pub(crate) fn snapshot(&self) -> BrokerStats {
        let r = Ordering::Relaxed;
        let req = self
            .req
            .iter()
            .enumerate()
            .filter_map(|(k, c)| {
                let n = c.load(r);
                let name = kafka_protocol::messages::ApiKey::try_from(k as i16).ok()?;
                (n > 0).then(|| (format!("{name:?}"), n))
            })
            .collect();
        BrokerStats {
            stateage: (now_us() - self.state_since.load(r)).max(0),
            tx: self.tx.load(r),
            txbytes: self.txbytes.load(r),
            txerrs: self.txerrs.load(r),
            req_timeouts: self.req_timeouts.load(r),
            rx: self.rx.load(r),
            rxbytes: self.rxbytes.load(r),
            connects: self.connects.load(r),
            disconnects: self.disconnects.load(r),
            rtt: self.rtt.take(),
            throttle: self.throttle.take(),
            req,
            ..Default::default()
        }
    }
}

/// The measurements of one [`Window`] since it was last taken (relaxed atomics).
struct WindowCounters {
    min: AtomicU64,
    max: AtomicU64,
    sum: AtomicU64,
    cnt: AtomicU64,
    buckets: [AtomicU64; BUCKETS],
}

impl Default for WindowCounters {
    fn default() -> Self {
        WindowCounters {
            min: AtomicU64::new(u64::MAX),
            max: AtomicU64::new(0),
            sum: AtomicU64::new(0),
            cnt: AtomicU64::new(0),
            buckets: std::array::from_fn(|_| AtomicU64::new(0)),
        }
    }
}

impl WindowCounters {
    #[inline]
    fn add(&self, v: u64) {
        let r = Ordering::Relaxed;
        self.min.fetch_min(v, r);
        self.max.fetch_max(v, r);
        self.sum.fetch_add(v, r);
        self.cnt.fetch_add(1, r);
        let b = (64 - v.leading_zeros() as usize).min(BUCKETS - 1);
        self.buckets[b].fetch_add(1, r);
    }

    /// The window so far; starts a new one.
    fn take(&self) -> Window {
        let r = Ordering::Relaxed;
        let cnt = self.cnt.swap(0, r);
        let sum = self.sum.swap(0, r);
        let min = self.min.swap(u64::MAX, r);
        let max = self.max.swap(0, r);
        let buckets: Vec<u64> = self.buckets.iter().map(|b| b.swap(0, r)).collect();
        let Some(avg) = sum.checked_div(cnt) else {
            return Window::default();
        };
        let (min, max) = (min.min(max), max);
        Window {
            min: min as i64,
            max: max as i64,
            avg: avg as i64,
            sum: sum as i64,
            cnt: cnt as i64,
            p50: percentile(&buckets, 0.50, min, max),
            p75: percentile(&buckets, 0.75, min, max),
            p90: percentile(&buckets, 0.90, min, max),
            p95: percentile(&buckets, 0.95, min, max),
            p99: percentile(&buckets, 0.99, min, max),
            p99_99: percentile(&buckets, 0.9999, min, max),
        }
    }
}

/// Topic and partition (as the producer keys them).
type Tp = (Arc<str>, i32);

/// A producer's counters: written by its sender task per batch (relaxed atomics; the
/// per-partition map under a short lock per acknowledged batch), read by snapshots.
#[derive(Debug, Default)]
pub(crate) struct ProducerCounters {
    txmsgs: AtomicU64,
    txmsg_bytes: AtomicU64,
    /// Records taken out of the accumulator (drained, expired or failed), per batch.
    taken: AtomicU64,
    /// Records whose batch completed (acknowledged or failed), per batch.
    done: AtomicU64,
    /// Producer id, epoch and when they were set (idempotent producers; -1: none).
    pid: AtomicI64,
    epoch: AtomicI64,
    epoch_cnt: AtomicU64,
    pid_since: AtomicI64,
    /// Acknowledged records and bytes per partition.
    parts: std::sync::Mutex<std::collections::HashMap<Tp, (u64, u64)>>,
}

impl ProducerCounters {
    pub(crate) fn new() -> ProducerCounters {
        let c = ProducerCounters::default();
        c.pid.store(-1, Ordering::Relaxed);
        c.epoch.store(-1, Ordering::Relaxed);
        c.pid_since.store(now_us(), Ordering::Relaxed);
        c
    }

    /// A batch of `records` records (`bytes` bytes) of `tp` was acknowledged.
    pub(crate) fn acked(&self, tp: &Tp, records: i32, bytes: usize) {
        let records = records.max(0) as u64;
        self.txmsgs.fetch_add(records, Ordering::Relaxed);
        self.txmsg_bytes.fetch_add(bytes as u64, Ordering::Relaxed);
        let mut parts = self.parts.lock().unwrap_or_else(|p| p.into_inner());
        let e = parts.entry(tp.clone()).or_default();
        e.0 += records;
        e.1 += bytes as u64;
    }

    /// `records` records left the accumulator.
    #[inline]
    pub(crate) fn taken(&self, records: usize) {
        self.taken.fetch_add(records as u64, Ordering::Relaxed);
    }

    /// The batches of `records` records completed.
    #[inline]
    pub(crate) fn done(&self, records: usize) {
        self.done.fetch_add(records as u64, Ordering::Relaxed);
    }

    /// Records whose batch completed, in all.
    #[inline]
    pub(crate) fn completed(&self) -> u64 {
        self.done.load(Ordering::Relaxed)
    }

    /// Records out of the accumulator whose batch has not completed.
    pub(crate) fn in_flight(&self) -> u64 {
        let done = self.done.load(Ordering::Relaxed);
        self.taken.load(Ordering::Relaxed).saturating_sub(done)
    }

    /// A producer id and epoch were obtained.
    pub(crate) fn set_pid(&self, pid: i64, epoch: i16) {
        self.pid.store(pid, Ordering::Relaxed);
        self.epoch.store(i64::from(epoch), Ordering::Relaxed);
        self.epoch_cnt.fetch_add(1, Ordering::Relaxed);
        self.pid_since.store(now_us(), Ordering::Relaxed);
    }

    /// `(txmsgs, txmsg_bytes)`.
    pub(crate) fn totals(&self) -> (u64, u64) {
        (
            self.txmsgs.load(Ordering::Relaxed),
            self.txmsg_bytes.load(Ordering::Relaxed),
        )
    }

    /// Acknowledged records and bytes per partition.
    pub(crate) fn per_partition(&self) -> Vec<(Tp, (u64, u64))> {
        let parts = self.parts.lock().unwrap_or_else(|p| p.into_inner());
        parts.iter().map(|(k, v)| (k.clone(), *v)).collect()
    }

    /// `(producer id, epoch, ids/epochs obtained, ms since the last one)`.
    pub(crate) fn pid(&self) -> (i64, i64, u64, i64) {
        let r = Ordering::Relaxed;
        (
            self.pid.load(r),
            self.epoch.load(r),
            self.epoch_cnt.load(r),
            (now_us() - self.pid_since.load(r)).max(0) / 1000,
        )
    }
}

/// The `q` quantile of power-of-two `buckets`: the upper bound of the bucket it falls in,
/// clamped to `min..=max`.
fn percentile(buckets: &[u64], q: f64, min: u64, max: u64) -> i64 {
    let total: u64 = buckets.iter().sum();
    let rank = ((total as f64) * q).ceil().max(1.0) as u64;
    let mut seen = 0;
    for (i, n) in buckets.iter().enumerate() {
        seen += n;
        if seen >= rank {
            let upper = if i == 0 { 0 } else { (1u64 << i) - 1 };
            return upper.clamp(min, max) as i64;
        }
    }
    max as i64
}

/// Starts the statistics task of a client: every `interval`, `snap` on the owner (while it
/// lives and `snap` returns `Some`) goes to `handler` and into the watch channel `tx`.
/// Ends when the owner is dropped or closed (`snap` returns `None`); the receivers then see
/// the channel closed.
pub(crate) fn spawn<T: Send + Sync + 'static>(
    interval: Duration,
    owner: Weak<T>,
    snap: fn(&T) -> Option<Statistics>,
    handler: Option<Handler>,
    tx: watch::Sender<Option<Arc<Statistics>>>,
) {
    if interval.is_zero() {
        return;
    }
    tokio::spawn(async move {
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let s = {
                let Some(owner) = owner.upgrade() else { break };
                let Some(s) = snap(&owner) else { break };
                Arc::new(s)
            };
            tx.send_replace(Some(s.clone()));
            if let Some(h) = &handler {
                h(s);
            }
        }
        tracing::debug!("statistics task stopped");
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rtt_window_and_reset() {
        let c = BrokerCounters::default();
        for ms in [1u64, 2, 3, 4, 100] {
            c.received(10, Duration::from_millis(ms));
        }
        c.sent(0, 7);
        c.sent(1, 5);
        let s = c.snapshot();
        assert_eq!(s.rtt.cnt, 5);
        assert_eq!(s.rtt.min, 1000);
        assert_eq!(s.rtt.max, 100_000);
        assert_eq!(s.rtt.avg, 22_000);
        assert!(s.rtt.p50 >= 2000 && s.rtt.p50 <= 4095, "{:?}", s.rtt);
        assert_eq!(s.rtt.p99, 100_000);
        assert_eq!((s.rx, s.rxbytes, s.tx, s.txbytes), (5, 50, 2, 12));
        assert_eq!(s.req.get("Produce"), Some(&1));
        assert_eq!(s.req.get("Fetch"), Some(&1));
        // The window restarts; the totals do not.
        let s = c.snapshot();
        assert_eq!(s.rtt, Window::default());
        assert_eq!(s.rx, 5);
    }
}
