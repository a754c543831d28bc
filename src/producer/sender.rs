//! The sender task: asks the accumulator which partitions are ready and drains their batches
//! into one Produce request per broker lane, keeps up to
//! `max.in.flight.requests.per.connection` requests in flight per lane, handles responses
//! strictly in order per lane, retries, expires re-sends, and drives the idempotence state
//! ([`super::idempotence`]: sequences, KIP-360 epoch bumps). See the module docs of
//! [`crate::producer`] for the rules.
//!
//! Lanes: the partitions a broker leads are sent over [`LANES`] connections to it, a
//! partition always over the same one while that broker leads it (dealt in turn as the
//! sender meets them: [`Sender::lane_for`]; lane 0 is the cluster's shared connection to the
//! broker, the others the sender's own). A broker works
//! on one request of a connection at a time, so with one connection it idled between
//! requests while the next was read; with two it works on one while the other's answer or
//! request is on the wire. With 1 KiB records and Java's `max.request.size` (one ~1 MB batch
//! per request) two lanes sent 1.10-1.40x as many records per second to one broker over
//! three partitions in two A/B sittings, at 5-30 % less broker CPU per record
//! (BENCHMARKS.md, "Producer: two connections per broker"). Per-partition order is kept as with one connection: a
//! partition's requests all go over its lane, and its lane changes only with its leader.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::messages::produce_response::PartitionProduceResponse;
use kafka_protocol::messages::{ApiKey, ProduceResponse};
use tokio::time::Instant;

use crate::backoff::{jitter, Backoff};
use crate::cluster::Cluster;
use crate::connection::Connection;
use crate::error::{Error, ErrorAction, KafkaCode, Result};

use super::accumulator::{Accumulator, Held, OpenBatch, PartitionRef, ReadyCheck};
use super::delivery::{BatchAck, Completion, Outcome};
use super::idempotence::{Idempotence, PidEpoch};
use super::transaction::{self, Txn};
use crate::config::ProducerConfig;
use crate::protocol::{encode_produce, ProduceSpec, ProduceTopic};
use crate::record::{
    decode_batches, rewrite_producer_state, BatchBuilder, BatchParams, DecodeOptions,
};

type BoxFut<T> = Pin<Box<dyn Future<Output = T> + Send>>;
type Tp = (Arc<str>, i32);
/// Records of a batch the broker named as invalid (KIP-467): index in the batch, message.
type InvalidRecords = Vec<(i32, Option<String>)>;

/// Target of the per-batch `batch acknowledged` debug event (where an acknowledged batch's
/// time went); `sent_at` is only taken while a subscriber enables it.
pub(crate) const TIMING: &str = "kafka_sdk::producer::timing";

/// Most batches of one partition in flight with idempotence (the broker remembers 5).
const MAX_IDEMPOTENT_IN_FLIGHT: usize = 5;

/// A sealed batch owned by the sender.
struct Batch {
    id: u64,
    completion: Arc<Completion>,
    created: Instant,
    permits: Held,
    record_count: i32,
    data: Bytes,
    /// Base sequence (-1 without idempotence).
    base_seq: i32,
    /// Failed attempts so far.
    attempts: u32,
    /// A request carrying this batch failed in a way that leaves its outcome unknown.
    unknown_outcome: bool,
    retry_at: Instant,
    last_error: Option<Error>,
    /// A piece of a batch split after the broker refused it as too large: the offset delta
    /// of its first record in the original batch (whose [`Completion`] it shares).
    piece: Option<i32>,
    /// When its latest Produce request was made (for the `timing` event of [`TIMING`]).
    sent_at: Option<Instant>,
}

impl Batch {
    fn tp(&self) -> Tp {
        (self.completion.topic.clone(), self.completion.partition)
    }
}

/// Per-partition send state (owned by the sender task only).
#[derive(Default)]
struct PartSend {
    /// Batches of this partition in flight.
    in_flight: usize,
    /// Broker lane those in-flight batches went to.
    in_flight_lane: LaneKey,
    /// The lane this partition's batches go over while its leader is that lane's broker
    /// (see [`Sender::lane_for`]).
    home: Option<LaneKey>,
    /// Sent batches waiting to be re-sent, in creation (= sequence) order.
    retry: VecDeque<Batch>,
}

struct InFlightReq {
    fut: BoxFut<Result<Option<ProduceResponse>>>,
    done: Option<Result<Option<ProduceResponse>>>,
    batches: Vec<Batch>,
    /// `host:port` of the broker it went to.
    broker: String,
}

/// Per-record results of a failed batch of `count` records whose invalid records the broker
/// named (`invalid`, by index): pieces as (first record's index, result), in order, each
/// named record alone with `err` and its own message, the runs between them with
/// [`Error::InvalidDifferentRecord`]. Gives `err` back when no index is in the batch.
fn record_outcomes(
    count: i32,
    err: Error,
    mut invalid: InvalidRecords,
) -> std::result::Result<Vec<(i32, Result<BatchAck>)>, Error> {
    invalid.retain(|(i, _)| (0..count).contains(i));
    invalid.sort_by_key(|(i, _)| *i);
    invalid.dedup_by_key(|(i, _)| *i);
    let (Error::Broker { code, context }, false) = (&err, invalid.is_empty()) else {
        return Err(err);
    };
    let other = Error::InvalidDifferentRecord {
        cause: *code,
        context: context.clone(),
    };
    let mut pieces = Vec::with_capacity(2 * invalid.len() + 1);
    let mut next = 0;
    for (i, message) in invalid {
        if i > next {
            pieces.push((next, Err(other.clone())));
        }
        let context = match message {
            Some(m) => format!("{context}; this record (index {i} of its batch): {m}"),
            None => format!("{context}; this record (index {i} of its batch)"),
        };
        pieces.push((i, Err(Error::broker(*code, context))));
        next = i + 1;
    }
    if next < count {
        pieces.push((next, Err(other)));
    }
    Ok(pieces)
}

/// The broker may have written what a request carried, but its answer says nothing about it
/// (it does not decode, or lacks the partition): the outcome is unknown (`Ambiguous`).
fn unusable_answer(broker: &str, reason: String) -> Error {
    Error::Connection {
        broker: broker.to_string(),
        reason,
        in_flight: true,
    }
}

/// Connections (lanes) per broker that Produce requests go over (see the module docs).
pub(crate) const LANES: usize = 2;

/// A broker and one of its lanes.
type LaneKey = (i32, usize);

/// One lane of a broker: its connection and the requests in flight on it.
#[derive(Default)]
struct BrokerSend {
    conn: Option<Connection>,
    connecting: Option<BoxFut<Result<Connection>>>,
    in_flight: VecDeque<InFlightReq>,
    /// Round-robin start among the lane's partitions.
    rr: usize,
    /// Partitions whose home this lane is.
    homes: usize,
    /// Lanes past the first (own connections): the reconnect backoff after a failed
    /// connect, and when the next attempt may start. Lane 0's connection is the
    /// cluster's, whose endpoint keeps the backoff.
    backoff: Option<Backoff>,
    connect_at: Option<Instant>,
}

enum Event {
    Response(InFlightReq),
    Bumped(Result<PidEpoch>),
    /// V1: AddPartitionsToTxn finished (partitions, transaction number, outcome).
    Added(Vec<Tp>, u64, Result<()>),
}

/// A V1 AddPartitionsToTxn run by the sender.
struct Adding {
    tps: Vec<Tp>,
    txn_seq: u64,
    fut: BoxFut<Result<()>>,
}

/// The sender: one task per producer.
pub(crate) struct Sender {
    acc: Arc<Accumulator>,
    cluster: Cluster,
    s: Arc<ProducerConfig>,
    parts: HashMap<Tp, PartSend>,
    /// Per broker lane ([`LANES`]).
    brokers: HashMap<LaneKey, BrokerSend>,
    /// Producer id, epoch and sequences (idempotent and transactional producers).
    idem: Option<Idempotence>,
    refreshing: Option<BoxFut<()>>,
    refresh_wanted: bool,
    last_refresh: Option<Instant>,
    /// The least time between two metadata refreshes: `retry.backoff.ms`, growing towards
    /// `retry.backoff.max.ms` while partitions with records stay without a leader
    /// (`refresh_backoff`; Java's KIP-580 backoff), back to the start once every leader is
    /// known.
    refresh_gap: Duration,
    refresh_backoff: crate::backoff::Backoff,
    /// Transactional producer state (shared with the `Producer` handles).
    txn: Option<Arc<Txn>>,
    adding: Option<Adding>,
    /// Batches split into pieces (by batch id): each piece's first offset delta and, once
    /// known, its result; the batch completes when every piece has one.
    splits: HashMap<u64, std::collections::BTreeMap<i32, Option<Result<BatchAck>>>>,
    /// Keep a failed batch's encoded records with its completion
    /// (`ProducerBuilder::keep_failed_records`).
    pub(crate) keep_failed: bool,
    /// Keep every batch's records, uncompressed, with its completion
    /// (`ProducerBuilder::keep_records`).
    pub(crate) keep_records: bool,
}

async fn sleep_until_opt(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

fn min_opt(a: Option<Instant>, b: Instant) -> Option<Instant> {
    Some(a.map_or(b, |a| a.min(b)))
}

impl Sender {
    pub(crate) fn new(
        acc: Arc<Accumulator>,
        cluster: Cluster,
        s: Arc<ProducerConfig>,
        pid: Option<PidEpoch>,
        txn: Option<Arc<Txn>>,
    ) -> Sender {
        // A transactional producer gets its id and epoch from `init_transactions` (and new
        // epochs from the transaction manager); the sender follows `Txn::pid_epoch`.
        let pid = if txn.is_some() { Some((-1, -1)) } else { pid };
        if let Some((p, e)) = pid.filter(|_| txn.is_none()) {
            acc.stats.set_pid(p, e);
        }
        let backoff = (s.common.retry_backoff, s.common.retry_backoff_max);
        Sender {
            acc,
            cluster,
            s,
            parts: HashMap::new(),
            brokers: HashMap::new(),
            idem: pid.map(Idempotence::new),
            refreshing: None,
            refresh_wanted: false,
            last_refresh: None,
            refresh_gap: backoff.0,
            refresh_backoff: crate::backoff::Backoff::new(backoff.0, backoff.1),
            txn,
            adding: None,
            splits: HashMap::new(),
            keep_failed: false,
            keep_records: false,
        }
    }

    /// The task body: runs until closed and idle, or aborted.
    pub(crate) async fn run(mut self) {
        let acc = self.acc.clone();
        let mut meta_rx = self.cluster.watch_metadata();
        loop {
            if acc.is_aborted() {
                self.fail_everything();
                break;
            }
            let now = Instant::now();
            let next = self.cycle(now);
            // Batch buffers the last second did not need go back to the OS.
            let next = match (next, acc.trim_buffers(now)) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            // `may_stop` first: an append it did not see under way is in `is_idle`'s view.
            if acc.may_stop() && self.is_idle() {
                break;
            }
            let events = tokio::select! {
                ev = std::future::poll_fn(|cx| self.poll_io(cx)) => ev,
                _ = acc.woken() => Vec::new(),
                r = meta_rx.changed() => {
                    if r.is_err() {
                        // Cannot happen while we hold the cluster; avoid a busy loop anyway.
                        meta_rx = self.cluster.watch_metadata();
                    }
                    Vec::new()
                }
                _ = sleep_until_opt(next) => Vec::new(),
            };
            for ev in events {
                match ev {
                    Event::Response(req) => self.handle_response(req),
                    Event::Bumped(r) => self.handle_bump(r),
                    Event::Added(tps, seq, r) => {
                        if let Some(t) = &self.txn {
                            t.partitions_added(&tps, seq, r);
                        }
                    }
                }
            }
            crate::observe::producer_state(&self.s.common.client_id, || {
                (acc.available_memory(), self.total_in_flight())
            });
        }
        tracing::debug!("producer sender stopped");
        acc.mark_stopped();
    }

    fn idempotent(&self) -> bool {
        self.idem.is_some()
    }

    /// An idempotent producer built without waiting for the cluster (`lazy_bootstrap`) gets
    /// its producer id here, through the epoch-bump path (nothing is sent until it is
    /// done): an InitProducerId without a current id is a plain one.
    pub(crate) fn request_producer_id(&mut self) {
        if self.txn.is_none() {
            if let Some(i) = self.idem.as_mut() {
                i.request_bump();
            }
        }
    }

    fn total_in_flight(&self) -> usize {
        self.brokers.values().map(|b| b.in_flight.len()).sum()
    }

    fn is_idle(&self) -> bool {
        self.total_in_flight() == 0
            && self.parts.values().all(|p| p.retry.is_empty())
            && !self.acc.has_data()
            // (A first producer id still being fetched holds nothing back: dropped.)
            && self.idem.as_ref().is_none_or(|i| !i.is_bumping() || i.current().0 < 0)
            && self.adding.is_none()
    }

    /// Polls every connect attempt and in-flight request (in send order, so requests reach
    /// the connection in that order), and returns responses at the head of each broker's
    /// queue, in order.
    fn poll_io(&mut self, cx: &mut Context<'_>) -> Poll<Vec<Event>> {
        let mut events = Vec::new();
        let mut progressed = false;
        for (&(node, lane), b) in self.brokers.iter_mut() {
            if let Some(f) = b.connecting.as_mut() {
                if let Poll::Ready(r) = f.as_mut().poll(cx) {
                    b.connecting = None;
                    progressed = true;
                    match r {
                        Ok(c) => {
                            b.conn = Some(c);
                            if let Some(bo) = b.backoff.as_mut() {
                                bo.reset();
                            }
                        }
                        Err(e) => {
                            tracing::debug!(broker = node, lane, error = %e, "producer cannot connect");
                            if let Some(bo) = b.backoff.as_mut() {
                                b.connect_at = Some(Instant::now() + bo.next_delay());
                            }
                            self.refresh_wanted = true;
                        }
                    }
                }
            }
            for req in b.in_flight.iter_mut() {
                if req.done.is_none() {
                    if let Poll::Ready(r) = req.fut.as_mut().poll(cx) {
                        req.done = Some(r);
                    }
                }
            }
            while b.in_flight.front().is_some_and(|r| r.done.is_some()) {
                let req = b.in_flight.pop_front().expect("front exists");
                events.push(Event::Response(req));
            }
        }
        if let Some(f) = self.refreshing.as_mut() {
            if f.as_mut().poll(cx).is_ready() {
                self.refreshing = None;
                progressed = true;
            }
        }
        if let Some(idem) = self.idem.as_mut() {
            if let Poll::Ready(r) = idem.poll_bump(cx) {
                events.push(Event::Bumped(r));
            }
        }
        if let Some(a) = self.adding.as_mut() {
            if let Poll::Ready(r) = a.fut.as_mut().poll(cx) {
                let a = self.adding.take().expect("adding exists");
                events.push(Event::Added(a.tps, a.txn_seq, r));
            }
        }
        if events.is_empty() && !progressed {
            Poll::Pending
        } else {
            Poll::Ready(events)
        }
    }

    /// One pass: expire, find ready partitions per leader (the accumulator's ready batches
    /// and the sender's own re-sends), send what may be sent. Returns when something will
    /// next become ready (linger, backoff, expiry).
    fn cycle(&mut self, now: Instant) -> Option<Instant> {
        let dt = self.s.delivery_timeout;
        if self.acc.fatal().is_some() {
            self.fail_for_fatal();
            return None;
        }
        let snap = self.cluster.metadata();
        let ReadyCheck {
            ready: mut per_broker,
            unknown_leader,
            mut next,
            expired,
        } = self.acc.ready(&snap, now);
        let mut leaderless = unknown_leader;
        // Re-sends: expire what passed delivery.timeout.ms, and add their partitions.
        let mut dead: Vec<Batch> = Vec::new();
        let mut resend: Vec<Tp> = Vec::new();
        for (tp, ps) in self.parts.iter_mut() {
            if ps.retry.is_empty() {
                continue;
            }
            let (gone, keep): (VecDeque<Batch>, VecDeque<Batch>) = std::mem::take(&mut ps.retry)
                .into_iter()
                .partition(|b| b.created + dt <= now);
            ps.retry = keep;
            dead.extend(gone);
            if let Some(h) = ps.retry.front() {
                // A backoff that passed is no reason to wake: if the re-send still cannot
                // go (no leader, earlier batches in flight, epoch bump, connecting), what
                // it waits for wakes the sender (refresh timer, response, bump, connect).
                if h.retry_at > now {
                    next = min_opt(next, h.retry_at);
                }
                next = min_opt(next, h.created + dt);
                resend.push(tp.clone());
            }
        }
        for b in dead {
            self.expire_sent(b);
        }
        for tp in resend {
            match snap.leader(&tp.0, tp.1) {
                Some(l) => {
                    let cands = per_broker.entry(l).or_default();
                    if !cands.iter().any(|c| *c.tp() == tp) {
                        cands.extend(self.acc.partition_ref(&tp));
                    }
                }
                None => leaderless = true,
            }
        }
        if leaderless {
            self.refresh_wanted = true;
        } else if self.refresh_backoff.attempts() > 0 {
            self.refresh_backoff.reset();
            self.refresh_gap = self.s.common.retry_backoff;
        }
        for b in expired {
            let err = Error::timeout(
                format!(
                    "delivery to {}-{} (batch never sent; delivery.timeout.ms)",
                    b.completion.topic, b.completion.partition
                ),
                dt,
                false,
            );
            tracing::warn!(topic = %b.completion.topic, partition = b.completion.partition, records = b.builder.len(), "batch expired before it could be sent");
            self.finish_open(b, err);
        }
        if let Some(at) = self.maybe_refresh(now) {
            next = min_opt(next, at);
        }
        if self.txn.is_some() && !self.txn_pass() {
            return next;
        }
        if let Some(idem) = self.idem.as_mut() {
            if idem.bump_needed() {
                // KIP-360: no new request until nothing is in flight, then InitProducerId.
                if self.brokers.values().all(|b| b.in_flight.is_empty()) {
                    if let Some(at) =
                        idem.start_bump(&self.cluster, self.s.common.request_timeout, now)
                    {
                        next = min_opt(next, at);
                    }
                }
                return next;
            }
        }
        let mut brokers: Vec<i32> = per_broker.keys().copied().collect();
        brokers.sort_unstable();
        for node in brokers {
            let mut lanes: [Vec<PartitionRef>; LANES] = Default::default();
            for c in per_broker.remove(&node).unwrap_or_default() {
                lanes[self.lane_for(c.tp(), node)].push(c);
            }
            for (lane, cands) in lanes.into_iter().enumerate() {
                if !cands.is_empty() {
                    self.send_to((node, lane), cands, now, &mut next);
                }
            }
        }
        next
    }

    /// The transactional part of a pass: fails what will not be sent (abort, abortable or
    /// fatal error), follows the transaction manager's producer id and epoch (resetting
    /// sequences when they change, which happens only between transactions), and (V1) starts
    /// AddPartitionsToTxn for partitions new to the transaction. Returns `false` when
    /// nothing may be sent in this pass.
    fn txn_pass(&mut self) -> bool {
        let Some(txn) = self.txn.clone() else {
            return true;
        };
        if let Some(err) = txn.drop_undrained() {
            self.fail_undrained(&err);
        }
        let (pid, epoch) = txn.pid_epoch();
        if let Some(idem) = self.idem.as_ref() {
            if idem.current() != (pid, epoch) {
                if self.total_in_flight() > 0 {
                    return false;
                }
                tracing::debug!(
                    producer_id = pid,
                    epoch,
                    "transactional producer: new epoch, sequences restart"
                );
                if let Some(i) = self.idem.as_mut() {
                    i.reset((pid, epoch));
                }
                let stale: Vec<Batch> = self
                    .parts
                    .values_mut()
                    .flat_map(|ps| std::mem::take(&mut ps.retry))
                    .collect();
                for mut b in stale {
                    // Cannot happen (transactions end only when every batch completed).
                    b.base_seq = -1;
                    self.fail(b, Error::State("batch outlived its transaction".into()));
                }
            }
        }
        if pid < 0 {
            return false;
        }
        if self.adding.is_none() {
            if let Some((tps, pid, epoch, seq)) = txn.take_partitions_to_add() {
                let fut = transaction::add_partitions(
                    self.cluster.clone(),
                    self.s.clone(),
                    txn.clone(),
                    tps.clone(),
                    pid,
                    epoch,
                );
                self.adding = Some(Adding {
                    tps,
                    txn_seq: seq,
                    fut: Box::pin(fut),
                });
            }
        }
        true
    }

    /// Empties every partition's retry queue.
    fn take_retries(&mut self) -> Vec<Batch> {
        self.parts
            .values_mut()
            .flat_map(|ps| std::mem::take(&mut ps.retry))
            .collect()
    }

    /// Fails every batch not in flight (accumulator and retry queues) with `err`.
    fn fail_undrained(&mut self, err: &Error) {
        let retry = self.take_retries();
        for b in retry {
            self.fail(b, err.clone());
        }
        for b in self.acc.drain_all() {
            self.finish_open(b, err.clone());
        }
    }

    /// Starts a wanted metadata refresh, at most one per `refresh_gap` (`retry.backoff.ms`,
    /// growing while leaders stay unknown). Returns when to try again when a wanted refresh
    /// is held back by that rate limit (a running refresh wakes the sender when it ends).
    fn maybe_refresh(&mut self, now: Instant) -> Option<Instant> {
        if !self.refresh_wanted || self.refreshing.is_some() {
            return None;
        }
        if let Some(at) = self
            .last_refresh
            .map(|t| t + self.refresh_gap)
            .filter(|at| now < *at)
        {
            return Some(at);
        }
        self.refresh_wanted = false;
        self.last_refresh = Some(now);
        self.refresh_gap = self.refresh_backoff.next_delay();
        let cluster = self.cluster.clone();
        tracing::debug!("producer requests a metadata refresh");
        self.refreshing = Some(Box::pin(async move {
            if let Err(e) = cluster.refresh().await {
                tracing::debug!(error = %e, "metadata refresh failed");
            }
        }));
        None
    }

    /// The lane of `node` that partition `tp` (led by `node`) goes over: its home there, or,
    /// the first time it is sent to `node` (after a leader change: again), the lane of `node`
    /// with the fewest homes, so the partitions a broker leads are dealt evenly whichever
    /// partition numbers they have (with partition number mod 2, a broker of an even-sized
    /// cluster, which leads partitions of one parity, used one lane). A partition's lane
    /// changes only when its leader does, and [`take_batch`](Self::take_batch) sends over a
    /// new lane only once nothing is in flight over the old one (when order matters).
    fn lane_for(&mut self, tp: &Tp, node: i32) -> usize {
        let home = self.parts.get(tp).and_then(|ps| ps.home);
        if let Some((_, lane)) = home.filter(|&(n, _)| n == node) {
            return lane;
        }
        let lane = (0..LANES)
            .min_by_key(|&l| self.brokers.get(&(node, l)).map_or(0, |b| b.homes))
            .unwrap_or(0);
        let ps = self.parts.entry(tp.clone()).or_default();
        if let Some(old) = ps.home.replace((node, lane)) {
            if let Some(b) = self.brokers.get_mut(&old) {
                b.homes = b.homes.saturating_sub(1);
            }
        }
        self.brokers.entry((node, lane)).or_default().homes += 1;
        lane
    }

    /// Sends what may go of `cands` (partitions of lane `key` of a broker) over that lane.
    fn send_to(
        &mut self,
        key: LaneKey,
        cands: Vec<PartitionRef>,
        now: Instant,
        next: &mut Option<Instant>,
    ) {
        let max_in_flight = self.s.max_in_flight.max(1);
        let (node, lane) = key;
        let b = self.brokers.entry(key).or_default();
        if let Some(c) = b.conn.take_if(|c| c.is_closed()) {
            // Lost: the broker may be gone or no longer lead these partitions. Closed for
            // being idle: nothing changed, reconnect only.
            if !c.closed_cleanly() {
                self.refresh_wanted = true;
            }
        }
        let Some(conn) = b.conn.clone() else {
            if b.connecting.is_none() {
                if let Some(at) = b.connect_at.filter(|&at| at > now) {
                    *next = min_opt(*next, at);
                    return;
                }
                let cluster = self.cluster.clone();
                b.connecting = Some(if lane == 0 {
                    Box::pin(async move { cluster.broker(node).await })
                } else {
                    let o = &cluster.options().connection;
                    b.backoff.get_or_insert_with(|| {
                        Backoff::new(o.reconnect_backoff, o.reconnect_backoff_max)
                    });
                    Box::pin(async move { cluster.own_connection(node).await })
                });
            }
            return;
        };
        let mut slots = max_in_flight.saturating_sub(b.in_flight.len());
        let mut rr = b.rr;
        let n = cands.len();
        while slots > 0 && n > 0 {
            let mut batches: Vec<Batch> = Vec::new();
            let mut size = 0usize;
            for k in 0..n {
                if let Some(batch) = self.take_batch(key, &cands[(rr + k) % n], now, size, next) {
                    size += batch.data.len();
                    batches.push(batch);
                }
            }
            rr = rr.wrapping_add(1);
            if batches.is_empty() {
                break;
            }
            self.dispatch(key, conn.clone(), batches);
            slots -= 1;
        }
        if let Some(b) = self.brokers.get_mut(&key) {
            b.rr = rr;
        }
    }

    /// The next batch of a partition for a request to `node` that already holds `size`
    /// bytes, if one may be sent now: its next re-send, else the accumulator's next ready
    /// batch (sealed and, with idempotence, sequenced here).
    fn take_batch(
        &mut self,
        key: LaneKey,
        part: &PartitionRef,
        now: Instant,
        size: usize,
        next: &mut Option<Instant>,
    ) -> Option<Batch> {
        let node = key.0;
        let tp = part.tp();
        let idem = self.idem.as_ref().map(|i| i.current());
        // Idempotence, or `max.in.flight.requests.per.connection=1` without it (Java's
        // "guarantee message order"): a partition's batches must not overtake each other.
        let ordered = idem.is_some() || self.s.max_in_flight <= 1;
        let max_req = self.s.max_request_size;
        if self.txn.as_ref().is_some_and(|t| !t.may_send(tp)) {
            return None; // V1: not added to the transaction yet.
        }
        let ps = self.parts.entry(tp.clone()).or_default();
        if ordered && ps.in_flight > 0 && ps.in_flight_lane != key {
            // Leader (so lane) moved: let the old requests finish first (ordering).
            return None;
        }
        if let Some(head) = ps.retry.front() {
            if head.retry_at > now {
                *next = min_opt(*next, head.retry_at);
                return None;
            }
            if ordered && ps.in_flight > 0 {
                return None; // Re-send in order: only once nothing is in flight.
            }
            if size > 0 && size + head.data.len() > max_req {
                return None;
            }
            self.acc.drained(node, now);
            return ps.retry.pop_front();
        }
        if idem.is_some() && ps.in_flight >= MAX_IDEMPOTENT_IN_FLIGHT {
            return None;
        }
        if ps.in_flight > 0 && self.idem.as_ref().is_some_and(|i| !i.broker_knows(tp, now)) {
            // The broker may have no state for this producer id yet: a partition's first
            // batch goes alone (see `Idempotence::broker_knows`).
            return None;
        }
        // A request's first batch is always allowed; later ones only within max.request.size.
        let room = if size == 0 {
            usize::MAX
        } else {
            max_req.saturating_sub(size)
        };
        let ob = self.acc.drain(part, now, room)?;
        self.acc.drained(node, now);
        let record_count = ob.builder.len() as i32;
        let base_seq = match &self.idem {
            Some(i) => i.next_sequence(tp),
            None => -1,
        };
        let params = BatchParams {
            compression: self.s.compression,
            compression_level: self.s.compression_level,
            producer_id: idem.map_or(-1, |i| i.0),
            producer_epoch: idem.map_or(-1, |i| i.1),
            base_sequence: base_seq,
            transactional: self.txn.is_some(),
            partition_leader_epoch: -1,
            timestamp_type_log_append: false,
        };
        let sealed = if self.keep_records {
            let (sealed, kept) = ob.builder.seal_keeping(&params);
            if let Some(kept) = kept {
                ob.completion.keep_records(kept);
            }
            sealed
        } else {
            ob.builder.seal(&params)
        };
        match sealed {
            Ok(data) => {
                if let Some(i) = self.idem.as_mut() {
                    i.assigned(tp, base_seq, record_count);
                }
                Some(Batch {
                    id: ob.id,
                    completion: ob.completion,
                    created: ob.created,
                    permits: ob.permits,
                    record_count,
                    data,
                    base_seq,
                    attempts: 0,
                    unknown_outcome: false,
                    retry_at: now,
                    last_error: None,
                    piece: None,
                    sent_at: None,
                })
            }
            Err(e) => {
                tracing::warn!(topic = %tp.0, partition = tp.1, error = %e, "cannot encode batch");
                self.finish(
                    ob.id,
                    &ob.completion,
                    ob.permits,
                    None,
                    Outcome::Whole(Err(e)),
                );
                None
            }
        }
    }

    fn dispatch(&mut self, key: LaneKey, conn: Connection, mut batches: Vec<Batch>) {
        let node = key.0;
        if tracing::enabled!(target: TIMING, tracing::Level::DEBUG) {
            let now = Instant::now();
            for b in &mut batches {
                b.sent_at = Some(now);
            }
        }
        let mut topics: Vec<ProduceTopic<'_>> = Vec::new();
        let mut bytes = 0usize;
        for b in &batches {
            let ps = self.parts.entry(b.tp()).or_default();
            ps.in_flight += 1;
            ps.in_flight_lane = key;
            bytes += b.data.len();
            let part = (b.completion.partition, b.data.clone());
            match topics.iter_mut().find(|t| t.name == &*b.completion.topic) {
                Some(t) => t.partitions.push(part),
                None => topics.push(ProduceTopic {
                    name: &b.completion.topic,
                    partitions: vec![part],
                }),
            }
        }
        let timeout = self.s.common.request_timeout;
        // Produce v12 with transactional batches is how V2 adds partitions to a transaction,
        // so V1 must stay at v11 (Java's `ProduceRequest.builder(.., useTransactionV1Version)`).
        let v1_cap = self.txn.as_ref().is_some_and(|t| !t.is_v2());
        let spec = ProduceSpec {
            transactional_id: self.txn.as_ref().map(|t| t.id.as_str()),
            acks: self.s.acks.as_i16(),
            timeout_ms: timeout.as_millis().min(i32::MAX as u128) as i32,
            topics,
        };
        tracing::debug!(
            broker = node,
            batches = batches.len(),
            bytes,
            "sending produce request"
        );
        let acks0 = self.s.acks == crate::config::Acks::None;
        let broker = conn.addr().to_string();
        let frame = conn
            .version_for(ApiKey::Produce)
            .map(|v| if v1_cap { v.min(11) } else { v })
            .and_then(|v| Ok((v, encode_produce(&spec, v, conn.client_id())?)));
        drop(spec);
        let fut: BoxFut<Result<Option<ProduceResponse>>> = match frame {
            Err(e) => Box::pin(async move { Err(e) }),
            Ok((_, frame)) if acks0 => {
                Box::pin(async move { conn.send_frame_no_response(frame).await.map(|_| None) })
            }
            Ok((version, frame)) => Box::pin(async move {
                match conn
                    .send_frame::<ProduceResponse>(ApiKey::Produce, frame, version, timeout)
                    .await
                {
                    // (The connection kept the answer's throttle, KIP-219.)
                    Ok(r) => Ok(Some(r)),
                    // The request was written; an answer that breaks the protocol says
                    // nothing about whether the broker appended the batches.
                    Err(Error::Protocol(m)) => Err(unusable_answer(
                        conn.addr(),
                        format!("unusable Produce response: {m}"),
                    )),
                    Err(e) => Err(e),
                }
            }),
        };
        let fut = crate::observe::producer_request(&self.s.common.client_id, &broker, fut);
        self.brokers
            .entry(key)
            .or_default()
            .in_flight
            .push_back(InFlightReq {
                fut,
                done: None,
                batches,
                broker,
            });
    }

    fn handle_response(&mut self, req: InFlightReq) {
        let InFlightReq {
            done,
            batches,
            broker,
            ..
        } = req;
        for b in &batches {
            if let Some(ps) = self.parts.get_mut(&b.tp()) {
                ps.in_flight = ps.in_flight.saturating_sub(1);
            }
        }
        match done.unwrap_or_else(|| Err(Error::Protocol("request without outcome".into()))) {
            Ok(None) => {
                for b in batches {
                    self.succeed(
                        b,
                        BatchAck {
                            base_offset: -1,
                            log_append_time: -1,
                        },
                    );
                }
            }
            Ok(Some(resp)) => {
                let mut results: HashMap<(&str, i32), &PartitionProduceResponse> = HashMap::new();
                for t in &resp.responses {
                    for p in &t.partition_responses {
                        results.insert((t.name.0.as_str(), p.index), p);
                    }
                }
                for b in batches {
                    let topic = b.completion.topic.clone();
                    let key = (&*topic, b.completion.partition);
                    let Some(p) = results.get(&key) else {
                        let e = unusable_answer(
                            &broker,
                            format!("the Produce response lacks {}-{}", key.0, key.1),
                        );
                        self.batch_error(b, e);
                        continue;
                    };
                    let code = KafkaCode(p.error_code);
                    if code.is_ok() || code == KafkaCode::DUPLICATE_SEQUENCE_NUMBER {
                        let base_offset = if code.is_ok() { p.base_offset } else { -1 };
                        self.succeed(
                            b,
                            BatchAck {
                                base_offset,
                                log_append_time: p.log_append_time_ms,
                            },
                        );
                        continue;
                    }
                    let ctx = format!(
                        "Produce to {}-{}{}",
                        key.0,
                        key.1,
                        p.error_message
                            .as_ref()
                            .map(|m| format!(": {}", m.as_str()))
                            .unwrap_or_default()
                    );
                    let err = if code == KafkaCode::INVALID_PRODUCER_EPOCH && self.txn.is_some() {
                        // KIP-588: the coordinator aborted the transaction (it outlived
                        // `transaction.timeout.ms`) and bumped the epoch. Not fenced by another
                        // instance: the transaction must be aborted, and the producer goes on
                        // (as Java's does).
                        Error::broker(
                            KafkaCode::TRANSACTION_ABORTABLE,
                            format!("{ctx}: INVALID_PRODUCER_EPOCH, the coordinator aborted the transaction (older than transaction.timeout.ms?) and bumped the producer epoch; abort it"),
                        )
                    } else {
                        Error::broker(code, ctx)
                    };
                    // KIP-467: the records the broker named as invalid, by index in the batch.
                    let invalid = p
                        .record_errors
                        .iter()
                        .map(|re| {
                            let m = re.batch_index_error_message.as_ref();
                            (re.batch_index, m.map(|m| m.as_str().to_string()))
                        })
                        .collect();
                    self.batch_error_records(b, err, invalid);
                }
            }
            Err(e) => {
                tracing::debug!(error = %e, batches = batches.len(), "produce request failed");
                if e.action() != ErrorAction::Fatal {
                    self.refresh_wanted = true;
                }
                for b in batches {
                    self.batch_error(b, e.clone());
                }
            }
        }
    }

    /// Decides what to do with a batch whose attempt failed (the one retry decision point).
    fn batch_error(&mut self, b: Batch, err: Error) {
        self.batch_error_records(b, err, Vec::new());
    }

    /// [`batch_error`](Self::batch_error) for an answer that named invalid records of the
    /// batch (KIP-467): if the batch fails for good, those records fail with `err` and
    /// their own message, the others with [`Error::InvalidDifferentRecord`].
    fn batch_error_records(&mut self, mut b: Batch, err: Error, invalid: InvalidRecords) {
        let now = Instant::now();
        let tp = b.tp();
        let code = err.code();
        let idempotent = self.idempotent();
        if idempotent
            && matches!(
                code,
                Some(KafkaCode::UNKNOWN_PRODUCER_ID)
                    | Some(KafkaCode::OUT_OF_ORDER_SEQUENCE_NUMBER)
            )
        {
            let earliest = self
                .idem
                .as_ref()
                .is_some_and(|i| i.is_earliest(&tp, b.base_seq));
            if earliest && self.txn.is_some() {
                // Transactional: the batch fails, the transaction must be aborted (and, V1,
                // the epoch is bumped after the abort), like the Java client.
                tracing::warn!(topic = %tp.0, partition = tp.1, seq = b.base_seq, error = %err, "sequence rejected inside a transaction");
                self.fail(b, err);
                return;
            }
            if earliest {
                // The broker checked the sequence and refused it: definitely not written.
                tracing::warn!(topic = %tp.0, partition = tp.1, seq = b.base_seq, error = %err, "sequence rejected; the producer epoch will be bumped");
                b.unknown_outcome = false;
                if let Some(i) = self.idem.as_mut() {
                    i.request_bump();
                }
            } else {
                tracing::debug!(topic = %tp.0, partition = tp.1, seq = b.base_seq, error = %err, "sequence rejected after an earlier failure; retrying in order");
            }
            self.requeue(b, err, now);
            return;
        }
        if matches!(
            code,
            Some(KafkaCode::MESSAGE_TOO_LARGE) | Some(KafkaCode::RECORD_LIST_TOO_LARGE)
        ) && b.record_count > 1
            && !b.unknown_outcome
        {
            // Refused as a whole (nothing written): split it in two and send the halves.
            b = match self.split(b, &err, now) {
                Ok(()) => return,
                Err(b) => *b,
            };
        }
        match err.action() {
            ErrorAction::Fatal => {
                tracing::warn!(topic = %tp.0, partition = tp.1, error = %err, "batch failed");
                self.fail_records(b, err, invalid);
            }
            action => {
                if action == ErrorAction::Ambiguous {
                    b.unknown_outcome = true;
                }
                if action == ErrorAction::RefreshAndRetry || action == ErrorAction::Ambiguous {
                    self.refresh_wanted = true;
                }
                self.requeue(b, err, now);
            }
        }
    }

    /// Splits a batch the broker refused as too large into two halves of its records, sent
    /// first from the partition's retry queue (without counting an attempt, as Java).
    /// The halves keep the batch's sequence range (the first half starts at its base
    /// sequence, the second where the first ends), so idempotent batches behind it keep
    /// theirs; they share its delivery [`Completion`] (each record's offset comes from its
    /// half's answer). Gives the batch back when its records cannot be re-encoded.
    fn split(
        &mut self,
        b: Batch,
        err: &Error,
        now: Instant,
    ) -> std::result::Result<(), Box<Batch>> {
        let tp = b.tp();
        let (first, second) = match split_records(&b, self.s.compression, self.s.compression_level)
        {
            Ok(halves) => halves,
            Err(e) => {
                tracing::warn!(topic = %tp.0, partition = tp.1, error = %e, "cannot split a batch refused as too large");
                return Err(Box::new(b));
            }
        };
        let n1 = first.1;
        tracing::info!(topic = %tp.0, partition = tp.1, records = b.record_count, error = %err, "batch too large for the broker; splitting it in two");
        let start = b.piece.unwrap_or(0);
        let pieces = self.splits.entry(b.id).or_default();
        pieces.remove(&start);
        pieces.insert(start, None);
        pieces.insert(start + n1, None);
        if b.base_seq >= 0 {
            if let Some(i) = self.idem.as_mut() {
                i.split(&tp, b.base_seq, n1);
            }
        }
        let total = b.record_count.max(1) as usize;
        let held1 = Held {
            bytes: b.permits.bytes * n1 as usize / total,
            records: b.permits.records.min(n1 as usize),
        };
        let held2 = Held {
            bytes: b.permits.bytes - held1.bytes,
            records: b.permits.records - held1.records,
        };
        let seq2 = if b.base_seq >= 0 {
            ((b.base_seq as i64 + n1 as i64) % (i32::MAX as i64 + 1)) as i32
        } else {
            -1
        };
        let half = |data: Bytes, records: i32, seq: i32, held: Held, piece: i32| Batch {
            id: b.id,
            completion: b.completion.clone(),
            created: b.created,
            permits: held,
            record_count: records,
            data,
            base_seq: seq,
            attempts: b.attempts,
            unknown_outcome: false,
            retry_at: now,
            last_error: Some(err.clone()),
            piece: Some(piece),
            sent_at: None,
        };
        let h1 = half(first.0, n1, b.base_seq, held1, start);
        let h2 = half(second.0, second.1, seq2, held2, start + n1);
        let ps = self.parts.entry(tp).or_default();
        let pos = ps
            .retry
            .iter()
            .position(|x| x.id > b.id)
            .unwrap_or(ps.retry.len());
        ps.retry.insert(pos, h2);
        ps.retry.insert(pos, h1);
        Ok(())
    }

    fn requeue(&mut self, mut b: Batch, err: Error, now: Instant) {
        b.attempts += 1;
        if b.attempts > self.s.retries {
            tracing::warn!(topic = %b.completion.topic, partition = b.completion.partition, attempts = b.attempts, error = %err, "batch failed: retries exhausted");
            self.fail(b, err);
            return;
        }
        let exp = (b.attempts - 1).min(20);
        let delay = self
            .s
            .common
            .retry_backoff
            .saturating_mul(1u32 << exp)
            .min(self.s.common.retry_backoff_max);
        b.retry_at = now + jitter(delay);
        crate::observe::producer_retry(
            &self.s.common.client_id,
            &b.completion.topic,
            b.record_count,
        );
        tracing::debug!(topic = %b.completion.topic, partition = b.completion.partition, attempt = b.attempts, seq = b.base_seq, error = %err, "retrying batch");
        b.last_error = Some(err);
        let ps = self.parts.entry(b.tp()).or_default();
        // In batch order (pieces of a split batch by their first record).
        let key = (b.id, b.piece.unwrap_or(0));
        let pos = ps
            .retry
            .iter()
            .position(|x| (x.id, x.piece.unwrap_or(0)) > key)
            .unwrap_or(ps.retry.len());
        ps.retry.insert(pos, b);
    }

    /// A sent batch passed `delivery.timeout.ms` while waiting to be re-sent.
    fn expire_sent(&mut self, b: Batch) {
        let what = format!(
            "delivery to {}-{} after {} attempts (last error: {})",
            b.completion.topic,
            b.completion.partition,
            b.attempts,
            b.last_error
                .as_ref()
                .map(|e| e.to_string())
                .unwrap_or_else(|| "none".into())
        );
        let err = Error::timeout(what, self.s.delivery_timeout, b.unknown_outcome);
        tracing::warn!(error = %err, "batch expired");
        self.fail(b, err);
    }

    fn succeed(&mut self, b: Batch, ack: BatchAck) {
        let tp = b.tp();
        if let Some(sent) = b.sent_at {
            // Where a batch's time went (debug aid for latency tails; off unless a
            // subscriber enables the target): from its first record to its last Produce
            // request (linger, waiting for an in-flight slot, retries), then that request's
            // round trip.
            let (now, us) = (Instant::now(), |d: Duration| d.as_micros() as u64);
            tracing::debug!(
                target: TIMING,
                topic = %tp.0,
                partition = tp.1,
                records = b.record_count,
                bytes = b.data.len(),
                attempts = b.attempts,
                queued_us = us(sent.saturating_duration_since(b.created)),
                request_us = us(now.saturating_duration_since(sent)),
                total_us = us(now.saturating_duration_since(b.created)),
                "batch acknowledged"
            );
        }
        self.acc.stats.acked(&tp, b.record_count, b.permits.bytes);
        crate::observe::producer_delivered(&self.s.common.client_id, &tp.0, b.created.elapsed());
        if b.base_seq >= 0 {
            if let Some(i) = self.idem.as_mut() {
                i.acked(&tp, Instant::now());
            }
        }
        self.forget_seq(&tp, b.base_seq);
        self.finish_batch(b, Outcome::Whole(Ok(ack)));
    }

    /// Fails a batch for good. With idempotence, a batch that had a sequence leaves a gap:
    /// later sequences of its partition would be refused, so the epoch is bumped.
    fn fail(&mut self, b: Batch, err: Error) {
        self.fail_records(b, err, Vec::new());
    }

    /// Fails a batch; with `invalid` records named by the broker, those get `err` with their
    /// own message and the batch's other records [`Error::InvalidDifferentRecord`].
    fn fail_records(&mut self, b: Batch, err: Error, invalid: InvalidRecords) {
        let tp = b.tp();
        if b.base_seq >= 0 {
            if let Some(t) = &self.txn {
                t.sequence_gap();
            } else if let Some(i) = self.idem.as_mut() {
                i.request_bump();
            }
        }
        self.forget_seq(&tp, b.base_seq);
        let outcome = match record_outcomes(b.record_count, err, invalid) {
            Ok(pieces) => Outcome::Split(pieces),
            Err(err) => Outcome::Whole(Err(err)),
        };
        self.finish_batch(b, outcome);
    }

    /// [`finish`](Self::finish) for a sealed batch; a piece of a split batch completes the
    /// batch once every piece has its result.
    fn finish_batch(&mut self, b: Batch, outcome: Outcome) {
        if self.keep_failed && outcome.first_error().is_some() {
            b.completion
                .keep_failed(b.piece.unwrap_or(0), b.data.clone());
        }
        let Some(start) = b.piece else {
            self.finish(
                b.id,
                &b.completion,
                b.permits,
                Some(b.record_count),
                outcome,
            );
            return;
        };
        if let (Some(t), Some(e)) = (&self.txn, outcome.first_error()) {
            t.batch_failed(e);
        }
        self.acc.release(b.permits.bytes);
        self.acc.release_records(b.permits.records);
        self.acc.stats.done(b.permits.records);
        let pieces = self.splits.entry(b.id).or_default();
        match outcome {
            Outcome::Whole(r) => {
                pieces.insert(start, Some(r));
            }
            Outcome::Split(parts) => {
                pieces.extend(parts.into_iter().map(|(d, r)| (start + d, Some(r))))
            }
        }
        if pieces.values().all(Option::is_some) {
            let pieces = self.splits.remove(&b.id).unwrap_or_default();
            b.completion.complete_split(
                pieces
                    .into_iter()
                    .filter_map(|(start, r)| r.map(|r| (start, r)))
                    .collect(),
            );
            self.acc.completed(b.id, Held::default());
        }
    }

    /// Fails a batch that was never sealed (keeping its records, encoded uncompressed, with
    /// `keep_failed` or `keep_records`).
    fn finish_open(&self, b: OpenBatch, err: Error) {
        if self.keep_failed || self.keep_records {
            if let Ok(data) = b.builder.seal(&BatchParams::default()) {
                if self.keep_records {
                    b.completion.keep_records(data.clone());
                }
                if self.keep_failed {
                    b.completion.keep_failed(0, data);
                }
            }
        }
        self.finish(
            b.id,
            &b.completion,
            b.permits,
            None,
            Outcome::Whole(Err(err)),
        );
    }

    fn forget_seq(&mut self, tp: &Tp, seq: i32) {
        if let Some(i) = self.idem.as_mut() {
            i.forget(tp, seq);
        }
    }

    fn finish(
        &self,
        id: u64,
        completion: &Completion,
        permits: Held,
        records: Option<i32>,
        outcome: Outcome,
    ) {
        let failed = outcome.first_error();
        crate::observe::producer_batch_done(
            &self.s.common.client_id,
            &completion.topic,
            records,
            failed.is_none(),
        );
        if let (Some(t), Some(e)) = (&self.txn, failed) {
            t.batch_failed(e);
        }
        // Counted before the outcome is handed out: whoever learns it (an awaited future,
        // the delivery handler) finds the records no longer in flight
        // (`Producer::completed_records`).
        self.acc.stats.done(permits.records);
        completion.complete_outcome(outcome);
        self.acc.completed(id, permits);
    }

    /// New producer id/epoch (KIP-360): restart every partition's sequences at 0 and
    /// re-stamp the batches waiting for a re-send; a batch whose outcome is unknown is never
    /// re-stamped (that could duplicate it): it fails as ambiguous.
    fn handle_bump(&mut self, r: Result<PidEpoch>) {
        let now = Instant::now();
        // The first producer id of a lazily bootstrapped producer: nothing was sent yet.
        let first = self.idem.as_ref().is_some_and(|i| i.current().0 < 0);
        let (pid, epoch) = match r {
            Ok(v) => v,
            Err(e) => {
                let failing = match self.idem.as_mut() {
                    Some(i) => i.bump_failed(now, now + self.s.common.retry_backoff_max),
                    None => Duration::ZERO,
                };
                if e.is_fatal() {
                    self.become_fatal(e);
                } else if first {
                    // As librdkafka: keep trying while the cluster is away (records expire
                    // by delivery.timeout.ms meanwhile); a later send may find it back.
                    tracing::debug!(error = %e, "InitProducerId failed; will retry");
                } else if failing >= self.s.delivery_timeout {
                    // Without a new epoch nothing can be sent again: give up for good
                    // instead of accepting records that can only expire.
                    self.become_fatal(Error::Fatal(format!(
                        "the producer epoch bump (InitProducerId) kept failing for {}ms (delivery.timeout.ms); last error: {e}",
                        failing.as_millis()
                    )));
                } else {
                    tracing::warn!(error = %e, "InitProducerId for the epoch bump failed; will retry");
                }
                return;
            }
        };
        if first {
            tracing::debug!(producer_id = pid, epoch, "idempotent producer initialised");
        } else {
            tracing::info!(producer_id = pid, epoch, "producer epoch bumped");
        }
        let Some(idem) = self.idem.as_mut() else {
            return;
        };
        idem.reset((pid, epoch));
        idem.bump_done();
        if self.txn.is_none() {
            self.acc.stats.set_pid(pid, epoch);
        }
        let tps: Vec<Tp> = self.parts.keys().cloned().collect();
        for tp in tps {
            let retry = {
                let ps = self.parts.get_mut(&tp).expect("key exists");
                std::mem::take(&mut ps.retry)
            };
            for mut b in retry {
                if b.unknown_outcome {
                    let err = Error::timeout(
                        format!(
                            "delivery to {}-{}: outcome unknown (last error: {}); not re-sent under the new producer epoch to avoid a duplicate",
                            tp.0,
                            tp.1,
                            b.last_error.as_ref().map(|e| e.to_string()).unwrap_or_default()
                        ),
                        self.s.delivery_timeout,
                        true,
                    );
                    b.base_seq = -1;
                    self.fail(b, err);
                    continue;
                }
                let Some(idem) = self.idem.as_mut() else {
                    return;
                };
                let seq = idem.next_sequence(&tp);
                let mut data = bytes::BytesMut::from(std::mem::take(&mut b.data));
                match rewrite_producer_state(&mut data, pid, epoch, seq) {
                    Ok(()) => {
                        idem.assigned(&tp, seq, b.record_count);
                        b.data = data.freeze();
                        b.base_seq = seq;
                        b.retry_at = now;
                        self.parts
                            .get_mut(&tp)
                            .expect("key exists")
                            .retry
                            .push_back(b);
                    }
                    Err(e) => {
                        b.base_seq = -1;
                        self.fail(b, e);
                    }
                }
            }
        }
        // Failing unknown-outcome batches above must not trigger another bump.
        if let Some(i) = self.idem.as_mut() {
            i.bump_done();
        }
    }

    /// The producer cannot go on (its epoch bump failed for good): `send` refuses records
    /// from now on and every batch not in flight fails with `err` (the bump waited until
    /// nothing was in flight).
    fn become_fatal(&mut self, err: Error) {
        tracing::error!(error = %err, "the producer is unusable");
        self.acc.set_fatal(err);
        self.fail_for_fatal();
    }

    /// Fails every batch not in flight with the producer's fatal error (also the records a
    /// `send` appended while the producer became fatal).
    fn fail_for_fatal(&mut self) {
        let Some(err) = self.acc.fatal() else {
            return;
        };
        let retry = self.take_retries();
        for b in retry {
            self.finish_batch(b, Outcome::Whole(Err(err.clone())));
        }
        for b in self.acc.drain_all() {
            self.finish_open(b, err.clone());
        }
        if let Some(i) = self.idem.as_mut() {
            i.bump_done(); // nothing will be sent again
        }
    }

    /// Close timed out (or the task is going away): fail everything still pending.
    fn fail_everything(&mut self) {
        let mut batches: Vec<(Batch, bool)> = Vec::new();
        for (_, b) in self.brokers.iter_mut() {
            for req in b.in_flight.drain(..) {
                batches.extend(req.batches.into_iter().map(|b| (b, true)));
            }
        }
        for ps in self.parts.values_mut() {
            batches.extend(ps.retry.drain(..).map(|b| (b, false)));
        }
        for (b, in_flight) in batches {
            let unknown = in_flight || b.unknown_outcome;
            let err = if unknown {
                Error::timeout(
                    format!(
                        "delivery to {}-{} (producer closed with the request in flight)",
                        b.completion.topic, b.completion.partition
                    ),
                    Duration::ZERO,
                    true,
                )
            } else {
                Error::Closed
            };
            self.finish_batch(b, Outcome::Whole(Err(err)));
        }
        for b in self.acc.drain_all() {
            self.finish_open(b, Error::Closed);
        }
    }
}

impl Drop for Sender {
    fn drop(&mut self) {
        // The runtime may drop the task without running it to the end: never leave a
        // delivery future waiting forever.
        self.fail_everything();
        self.acc.mark_stopped();
    }
}

/// The records of a sealed batch re-encoded as two batches of about half the records each
/// (same producer id, epoch, transactional flag and codec; the second's base sequence follows
/// the first's records): `((data, records), (data, records))`.
#[allow(clippy::type_complexity)]
fn split_records(
    b: &Batch,
    compression: crate::record::Compression,
    compression_level: Option<i32>,
) -> Result<((Bytes, i32), (Bytes, i32))> {
    let opts = DecodeOptions::default();
    let batch = decode_batches(b.data.clone(), &opts)
        .next()
        .ok_or_else(|| Error::Protocol("no batch to split".into()))?
        .map_err(|e| Error::Protocol(format!("cannot decode the batch to split: {e}")))?;
    let n = batch.records.len();
    if n < 2 {
        return Err(Error::Protocol(
            "a batch of one record cannot be split".into(),
        ));
    }
    let mid = n / 2;
    let seal = |records: &[crate::record::Record], seq: i32| -> Result<Bytes> {
        let first_ts = records.first().map_or(0, |r| r.timestamp);
        let mut builder = BatchBuilder::new(first_ts, b.data.len() / 2 + 64);
        for r in records {
            let headers: Vec<(String, Option<&[u8]>)> = r
                .headers
                .iter()
                .map(|h| {
                    (
                        String::from_utf8_lossy(&h.key).into_owned(),
                        h.value.as_deref(),
                    )
                })
                .collect();
            let hs: Vec<(&str, Option<&[u8]>)> =
                headers.iter().map(|(k, v)| (k.as_str(), *v)).collect();
            builder.append(r.timestamp, r.key.as_deref(), r.value.as_deref(), &hs);
        }
        builder.seal(&BatchParams {
            compression,
            compression_level,
            producer_id: batch.producer_id,
            producer_epoch: batch.producer_epoch,
            base_sequence: seq,
            transactional: batch.is_transactional(),
            partition_leader_epoch: -1,
            timestamp_type_log_append: false,
        })
    };
    let seq2 = if b.base_seq >= 0 {
        ((b.base_seq as i64 + mid as i64) % (i32::MAX as i64 + 1)) as i32
    } else {
        -1
    };
    let first = seal(&batch.records[..mid], b.base_seq)?;
    let second = seal(&batch.records[mid..], seq2)?;
    Ok(((first, mid as i32), (second, (n - mid) as i32)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(pieces: &[(i32, Result<BatchAck>)]) -> Vec<(i32, Option<KafkaCode>, bool)> {
        pieces
            .iter()
            .map(|(start, r)| {
                let e = r.as_ref().expect_err("every piece failed");
                let other = matches!(e, Error::InvalidDifferentRecord { .. });
                (*start, e.code(), other)
            })
            .collect()
    }

    #[test]
    fn named_invalid_records_fail_alone_and_the_others_as_different_records() {
        let err = || Error::broker(KafkaCode::INVALID_TIMESTAMP, "Produce to t-0");
        let ts = Some(KafkaCode::INVALID_TIMESTAMP);
        // Named out of order, one twice, one outside the batch.
        let invalid = vec![(3, Some("late".into())), (0, None), (3, None), (9, None)];
        let pieces = record_outcomes(5, err(), invalid).unwrap();
        assert_eq!(
            shape(&pieces),
            vec![
                (0, ts, false),
                (1, None, true),
                (3, ts, false),
                (4, None, true)
            ]
        );
        let own = pieces[2].1.as_ref().unwrap_err().to_string();
        assert!(own.contains("index 3 of its batch): late"), "{own}");
        let last = record_outcomes(3, err(), vec![(2, None)]).unwrap();
        assert_eq!(shape(&last), vec![(0, None, true), (2, ts, false)]);
        // Nothing named inside the batch, or not a broker error: the error as it was.
        assert!(record_outcomes(3, err(), vec![(7, None)]).is_err());
        assert!(record_outcomes(3, Error::Closed, vec![(1, None)]).is_err());
    }
}
