//! Chaos run (issues 7 and 13): a 3-node KRaft cluster whose brokers the clients reach through
//! the test kit's fault-injecting proxies, a nemesis that kills (-9), pauses (SIGSTOP/SIGCONT)
//! and restarts brokers and injects network faults between the clients and a broker (latency,
//! bandwidth limit, connection reset/refusal, black hole) — hitting the current partition
//! leader and the group / transaction coordinators — while three workloads run, then a
//! Jepsen-style check of everything they observed against a final read of the logs.
//!
//! Workloads (all in this process, one tokio runtime):
//! - **idempotent producers** (acks=all) sending unique values to `chaos-data`;
//! - **a consumer group** (cooperative-sticky, manual sync commits after processing) reading
//!   `chaos-data`, whose members join, leave (close) and are killed (task aborted: the
//!   consumer is dropped without LeaveGroup);
//! - **a transactional consume-transform-produce pipeline** (two instances, read_committed,
//!   offsets committed in the transaction) from `chaos-data` to `chaos-out`; one transaction
//!   in ten is aborted on purpose;
//! - **a KIP-848 group** (`group.protocol=consumer`, members with manual commits or auto
//!   commits) reading `chaos-data`, churning like the classic group;
//! - **share consumers** (KIP-932, explicit acknowledgement: accept, one record in fifty
//!   released) on `chaos-share`, written by a third idempotent producer, churning too.
//!
//! After the faults, the cluster heals, the producers stop, the group and the pipeline must
//! catch up (lag 0), and fresh read_committed consumers drain both topics. Anomalies:
//! lost write, duplicate, wrong offset (an acknowledged offset holding another value, or two
//! values observed at one offset), order (per producer and partition), committed but
//! unprocessed (either group), consumer order (a member's records of a partition not
//! contiguous between two rebalances), stuck (deliveries, lag, drain, share acceptance), for
//! the pipeline: missing, duplicate, aborted read, partial transaction; for the share group:
//! never accepted (an acknowledged write neither confirmed accepted nor, when an accept's
//! outcome was unknown, settled on the broker: every share-partition final), delivery count
//! decreasing (a record handed out again with a lower count). Any anomaly fails the test;
//! the counts are printed either way.
//!
//! Size: `KAFKA_SDK_CHAOS_FAULTS` (default 10, the CI size); `KAFKA_SDK_CHAOS=long` means 50.
//! `KAFKA_SDK_CHAOS_SEED` replays a schedule of faults.

mod support;
use support::common;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kafka_protocol::messages::incremental_alter_configs_request::{
    AlterConfigsResource, AlterableConfig,
};
use kafka_protocol::messages::IncrementalAlterConfigsRequest;
use kafka_protocol::protocol::StrBytes;
use kafka_sdk::admin::{AdminClient, NewTopic};
use kafka_sdk::backoff::Deadline;
use kafka_sdk::cluster::{Cluster, ClusterOptions as SdkClusterOptions, CoordinatorKind};
use kafka_sdk::consumer::{CommitMode, Consumer, Offset};
use kafka_sdk::producer::{DeliveryFuture, Producer, ProducerRecord};
use kafka_sdk::{AcknowledgeType, ClientConfig, ShareConsumer, TopicPartition};
use kafka_testkit::{ClusterOptions, KafkaCluster, NetFault};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use common::blocking;

const DATA: &str = "chaos-data";
const OUT: &str = "chaos-out";
const PARTITIONS: i32 = 6;
const GROUP: &str = "chaos-group";
const EOS_GROUP: &str = "chaos-eos";
/// The KIP-848 group (`group.protocol=consumer`) on `chaos-data`.
const GROUP_848: &str = "chaos-group-848";
/// The share group's topic, written by producer `SHARE_PRODUCER`.
const SHARE_TOPIC: &str = "chaos-share";
const SHARE_PARTITIONS: i32 = 3;
const SHARE_GROUP: &str = "chaos-share-group";
const SHARE_PRODUCER: u64 = PRODUCERS + 1;
/// The share group's acquisition lock (a group config): records a killed share consumer
/// held are delivered again after this.
const SHARE_LOCK_MS: u64 = 10_000;
const PRODUCERS: u64 = 2;
const PIPELINES: usize = 2;
/// Client request timeout: short, so paused brokers are given up on quickly.
const REQUEST_TIMEOUT_MS: &str = "10000";
/// How long each drain may take.
const CATCH_UP: Duration = Duration::from_secs(180);
/// A group catching up after the faults is stuck when its committed offsets do not move for
/// this long while it has lag (a slow group is not stuck: under load a long run can leave
/// the pipeline minutes behind).
const NO_PROGRESS: Duration = Duration::from_secs(60);
/// Bound on the whole catch-up of one group.
const CATCH_UP_MAX: Duration = Duration::from_secs(900);

// ---------------------------------------------------------------------------------------
// Values: `<producer>:<seq>` (producer 1..), parsed back to a u64 id.

fn value_of(producer: u64, seq: u64) -> String {
    format!("{producer}:{seq:09}")
}

fn parse_value(v: &[u8]) -> Option<(u64, u64)> {
    let s = std::str::from_utf8(v).ok()?;
    let (p, q) = s.split_once(':')?;
    Some((p.parse().ok()?, q.parse().ok()?))
}

fn id(producer: u64, seq: u64) -> u64 {
    (producer << 40) | seq
}

fn unid(id: u64) -> (u64, u64) {
    (id >> 40, id & ((1 << 40) - 1))
}

// ---------------------------------------------------------------------------------------
// The history every workload writes into.

#[derive(Debug)]
enum Outcome {
    Acked { partition: i32, offset: i64 },
    Failed(String),
}

#[derive(Default)]
struct History {
    /// value id -> outcome of its send.
    sends: HashMap<u64, Outcome>,
    /// (partition, offset) of `chaos-data` -> value id, as seen by any consumer.
    observed: HashMap<(i32, i64), u64>,
    /// Observations that disagreed with an earlier one at the same offset.
    two_values: Vec<String>,
    /// (partition, offset) processed by the classic group.
    processed: HashSet<(i32, i64)>,
    /// (partition, offset) processed by the KIP-848 group.
    processed_848: HashSet<(i32, i64)>,
    /// Per group member and partition: the membership (generation / member epoch) of its
    /// last batch and the last offset it got (the order check).
    last_consumed: HashMap<(String, i32), (Option<i32>, i64)>,
    /// Group members' records of a partition that were not contiguous within one
    /// membership epoch.
    order_violations: Vec<String>,
    /// Share topic: value id -> outcome of its send.
    share_sends: HashMap<u64, Outcome>,
    /// Share topic: (partition, offset) -> delivery counts, in the order handed out.
    share_deliveries: HashMap<(i32, i64), Vec<u16>>,
    /// Share topic: (partition, offset) whose Accept the broker confirmed.
    share_accepted: HashSet<(i32, i64)>,
    /// Share topic: (partition, offset) whose Accept failed (connection reset, timeout,
    /// refused): the outcome is unknown — the broker may have taken it. Whether every such
    /// record ended up accepted is checked on the broker (`share_not_final`).
    share_ack_unknown: HashSet<(i32, i64)>,
    /// Share partitions whose start offset (below it every record is acknowledged or
    /// archived) did not reach the high watermark at the end: partition -> (start, end).
    share_not_final: BTreeMap<i32, (i64, i64)>,
    /// Share topic: (partition, offset) -> value id a share consumer got there.
    share_observed: HashMap<(i32, i64), u64>,
    /// Pipeline: attempt id -> number of records sent in it, by outcome.
    txn_committed: HashMap<String, usize>,
    txn_aborted: HashSet<String>,
    txn_unknown: HashSet<String>,
    /// Deliveries that never resolved.
    stuck_deliveries: u64,
}

/// One churning group's counters (classic, KIP-848 or share).
#[derive(Default)]
struct GroupCounters {
    records: AtomicU64,
    commits: AtomicU64,
    commit_failures: AtomicU64,
    recv_errors: AtomicU64,
    joins: AtomicU64,
    leaves: AtomicU64,
    kills: AtomicU64,
    /// Share: records released (delivered again); acknowledgements whose outcome the
    /// commit did not report.
    released: AtomicU64,
    ack_unknown: AtomicU64,
}

impl GroupCounters {
    fn summary(&self) -> String {
        let ld = |a: &AtomicU64| a.load(Ordering::Relaxed);
        format!(
            "{} records, {} commits ok, {} commits failed, {} recv errors, {} joins, {} leaves, \
             {} kills",
            ld(&self.records),
            ld(&self.commits),
            ld(&self.commit_failures),
            ld(&self.recv_errors),
            ld(&self.joins),
            ld(&self.leaves),
            ld(&self.kills)
        )
    }
}

#[derive(Default)]
struct Counters {
    sent: AtomicU64,
    send_errors: AtomicU64,
    classic: GroupCounters,
    kip848: GroupCounters,
    share: GroupCounters,
    txn_commits: AtomicU64,
    txn_aborts_deliberate: AtomicU64,
    txn_aborts_error: AtomicU64,
    txn_unknown: AtomicU64,
    pipeline_restarts: AtomicU64,
    pipeline_records: AtomicU64,
}

struct World {
    bootstrap: String,
    history: Mutex<History>,
    counters: Counters,
    /// Producers stop sending.
    stop_producing: AtomicBool,
    /// Group members and pipeline instances stop.
    stop_consuming: AtomicBool,
    /// Last reported state of every member / pipeline instance (for diagnosing a stall).
    status: Mutex<BTreeMap<String, (Instant, String)>>,
    /// Errors the workloads saw, counted by kind (see `note_error`).
    errors: Mutex<BTreeMap<String, u64>>,
}

impl World {
    /// Records `who`'s assignment and positions, at most every 2 s.
    fn report(&self, who: &str, consumer: &Consumer, note: &str) {
        let mut st = self.status.lock().unwrap_or_else(|p| p.into_inner());
        if st
            .get(who)
            .is_some_and(|(t, _)| t.elapsed() < Duration::from_secs(2))
        {
            return;
        }
        let pos: Vec<String> = consumer
            .position()
            .into_iter()
            .map(|(tp, o)| {
                format!(
                    "{}:{}",
                    tp.partition,
                    o.map_or("-".into(), |o| o.to_string())
                )
            })
            .collect();
        let line = format!(
            "membership {:?}, positions [{}], paused {:?}; {note}",
            consumer.group_membership(),
            pos.join(" "),
            consumer.paused()
        );
        st.insert(who.to_string(), (Instant::now(), line));
    }

    fn forget(&self, who: &str) {
        self.status
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(who);
    }

    fn statuses(&self) -> String {
        let st = self.status.lock().unwrap_or_else(|p| p.into_inner());
        st.iter()
            .map(|(who, (t, line))| {
                format!("  {who} ({:.0}s ago): {line}\n", t.elapsed().as_secs_f64())
            })
            .collect()
    }

    fn history(&self) -> std::sync::MutexGuard<'_, History> {
        self.history.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn observe(&self, partition: i32, offset: i64, value: Option<&[u8]>, who: &str) {
        let Some((p, s)) = value.and_then(parse_value) else {
            self.history().two_values.push(format!(
                "{who}: unparsable value at {DATA}/{partition}@{offset}: {value:?}"
            ));
            return;
        };
        let v = id(p, s);
        let mut h = self.history();
        match h.observed.insert((partition, offset), v) {
            Some(old) if old != v => {
                let msg = format!(
                    "{who}: {DATA}/{partition}@{offset} held {:?} earlier, now {:?}",
                    unid(old),
                    unid(v)
                );
                h.two_values.push(msg);
            }
            _ => {}
        }
    }

    /// The order check of a group member's batch: within one membership (generation or
    /// member epoch), a member's records of a partition are contiguous (`chaos-data` holds
    /// no transaction markers, so its offsets have no gaps); a new membership may move the
    /// position (the partition changed owners and comes back at the committed offset).
    fn consumed(&self, who: &str, membership: Option<i32>, batch: &[(i32, i64)]) {
        let mut h = self.history();
        let mut first = HashSet::new();
        for &(p, o) in batch {
            let key = (who.to_string(), p);
            let fresh = first.insert(p);
            if let Some(&(m, last)) = h.last_consumed.get(&key) {
                let same = !fresh || (m.is_some() && m == membership);
                if same && o != last + 1 {
                    let msg = format!(
                        "{who}: {DATA}/{p}: offset {o} after {last} (membership {membership:?})"
                    );
                    h.order_violations.push(msg);
                }
            }
            h.last_consumed.insert(key, (membership, o));
        }
    }
}

fn config(bootstrap: &str, kv: &[(&str, &str)]) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", bootstrap);
    c.set("request.timeout.ms", REQUEST_TIMEOUT_MS);
    for (k, v) in kv {
        c.set(*k, *v);
    }
    c
}

// ---------------------------------------------------------------------------------------
// Workload 1: idempotent producers.

/// Sends `per_tick` records every ~50 ms to `topic` (`chaos-data`, or `chaos-share` for
/// `SHARE_PRODUCER`).
async fn producer_task(world: Arc<World>, producer_id: u64, topic: &'static str, per_tick: u64) {
    let producer = loop {
        match Producer::new(&config(
            &world.bootstrap,
            &[
                ("acks", "all"),
                ("enable.idempotence", "true"),
                ("linger.ms", "5"),
                ("delivery.timeout.ms", "120000"),
            ],
        ))
        .await
        {
            Ok(p) => break p,
            Err(e) => {
                eprintln!("chaos: producer {producer_id} create failed: {e}; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    };
    let (tx, mut rx) = mpsc::unbounded_channel::<(u64, DeliveryFuture)>();
    let w = world.clone();
    let collector = tokio::spawn(async move {
        // Every delivery must resolve within delivery.timeout.ms (plus slack).
        while let Some((v, fut)) = rx.recv().await {
            let outcome = match tokio::time::timeout(Duration::from_secs(180), fut).await {
                Ok(Ok(md)) => Outcome::Acked {
                    partition: md.partition,
                    offset: md.offset,
                },
                Ok(Err(e)) => Outcome::Failed(e.to_string()),
                Err(_) => {
                    w.history().stuck_deliveries += 1;
                    Outcome::Failed("never resolved".into())
                }
            };
            let mut h = w.history();
            if topic == SHARE_TOPIC {
                h.share_sends.insert(v, outcome);
            } else {
                h.sends.insert(v, outcome);
            }
        }
    });
    let mut seq = 0u64;
    while !world.stop_producing.load(Ordering::Relaxed) {
        // ~1,000 records/s per producer: enough history, little broker load.
        for _ in 0..per_tick {
            seq += 1;
            let record = ProducerRecord::new(topic)
                .key(format!("k{}", seq % 97))
                .value(value_of(producer_id, seq));
            match producer.send(record).await {
                Ok(fut) => {
                    let _ = tx.send((id(producer_id, seq), fut));
                }
                Err(e) => {
                    world.counters.send_errors.fetch_add(1, Ordering::Relaxed);
                    let mut h = world.history();
                    let sends = if topic == SHARE_TOPIC {
                        &mut h.share_sends
                    } else {
                        &mut h.sends
                    };
                    sends.insert(id(producer_id, seq), Outcome::Failed(e.to_string()));
                }
            }
            world.counters.sent.fetch_add(1, Ordering::Relaxed);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    drop(tx);
    if let Err(e) = producer.close(Duration::from_secs(150)).await {
        eprintln!("chaos: producer {producer_id} close: {e}");
    }
    collector.await.expect("collector");
}

// ---------------------------------------------------------------------------------------
// Workloads 2, 4 and 5: the churning groups — a cooperative-sticky classic group and a
// KIP-848 group (manual sync commits after processing, or auto commits) on `chaos-data`, and
// share consumers on `chaos-share`.

/// Which churning group a member belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Classic,
    Kip848,
    Share,
}

impl Kind {
    fn prefix(self) -> &'static str {
        match self {
            Kind::Classic => "member",
            Kind::Kip848 => "k848",
            Kind::Share => "share",
        }
    }

    fn counters(self, world: &World) -> &GroupCounters {
        match self {
            Kind::Classic => &world.counters.classic,
            Kind::Kip848 => &world.counters.kip848,
            Kind::Share => &world.counters.share,
        }
    }
}

/// 0 = run, 1 = leave (close).
struct Member {
    name: String,
    mode: Arc<AtomicU8>,
    task: JoinHandle<()>,
}

fn group_config(bootstrap: &str, group: &str, extra: &[(&str, &str)]) -> ClientConfig {
    let mut kv = vec![
        ("group.id", group),
        ("partition.assignment.strategy", "cooperative-sticky"),
        ("enable.auto.commit", "false"),
        ("auto.offset.reset", "earliest"),
        ("session.timeout.ms", "10000"),
        ("heartbeat.interval.ms", "1000"),
    ];
    kv.extend_from_slice(extra);
    config(bootstrap, &kv)
}

/// A KIP-848 member: the session timeout and heartbeat interval are the broker's
/// (`group.consumer.*`); `auto_commit` members commit every second in the background.
fn kip848_config(bootstrap: &str, auto_commit: bool) -> ClientConfig {
    config(
        bootstrap,
        &[
            ("group.id", GROUP_848),
            ("group.protocol", "consumer"),
            ("auto.offset.reset", "earliest"),
            (
                "enable.auto.commit",
                if auto_commit { "true" } else { "false" },
            ),
            ("auto.commit.interval.ms", "1000"),
        ],
    )
}

/// A classic or KIP-848 member; `auto_commit` only for KIP-848 members (the classic group
/// always commits by hand).
async fn member_task(
    world: Arc<World>,
    name: String,
    mode: Arc<AtomicU8>,
    kind: Kind,
    auto_commit: bool,
) {
    let cfg = match kind {
        Kind::Kip848 => kip848_config(&world.bootstrap, auto_commit),
        _ => group_config(&world.bootstrap, GROUP, &[]),
    };
    let counters = kind.counters(&world);
    let consumer = match Consumer::new(&cfg).await {
        Ok(c) => c,
        Err(e) => {
            eprintln!("chaos: member {name}: create failed: {e}");
            return;
        }
    };
    consumer.subscribe(&[DATA]).expect("subscribe");
    // Whether what recv returned is not committed yet (a failed commit is retried when idle).
    let mut dirty = false;
    loop {
        if mode.load(Ordering::Relaxed) == 1 || world.stop_consuming.load(Ordering::Relaxed) {
            if dirty {
                let _ = consumer.commit(CommitMode::Sync).await;
            }
            if let Err(e) = consumer.close().await {
                eprintln!("chaos: member {name}: close: {e}");
            }
            world.forget(&name);
            return;
        }
        let got = consumer.recv_batch(500, Duration::from_millis(300)).await;
        let membership = consumer.group_membership().map(|(g, _)| g);
        world.report(&name, &consumer, &format!("dirty {dirty}"));
        match got {
            Ok(msgs) => {
                for m in &msgs {
                    world.observe(m.partition(), m.offset(), m.value().map(|v| &v[..]), &name);
                }
                {
                    let mut h = world.history();
                    let processed = if kind == Kind::Kip848 {
                        &mut h.processed_848
                    } else {
                        &mut h.processed
                    };
                    for m in &msgs {
                        processed.insert((m.partition(), m.offset()));
                    }
                }
                let batch: Vec<(i32, i64)> =
                    msgs.iter().map(|m| (m.partition(), m.offset())).collect();
                world.consumed(&name, membership, &batch);
                counters
                    .records
                    .fetch_add(msgs.len() as u64, Ordering::Relaxed);
                if auto_commit || (msgs.is_empty() && !dirty) {
                    continue;
                }
                // Commit what was processed (the positions recv has reached).
                match consumer.commit(CommitMode::Sync).await {
                    Ok(()) => {
                        dirty = false;
                        counters.commits.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(e) => {
                        dirty = true;
                        counters.commit_failures.fetch_add(1, Ordering::Relaxed);
                        note_error(&world, &name, "commit", &e);
                    }
                }
            }
            Err(e) => {
                counters.recv_errors.fetch_add(1, Ordering::Relaxed);
                note_error(&world, &name, "recv", &e);
                if e.is_fatal() {
                    eprintln!("chaos: member {name}: fatal {e}; leaving the task");
                    return;
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
}

/// A share consumer (explicit acknowledgement): accepts what it gets, releases one record
/// in fifty (delivered again with a higher delivery count), commits the acknowledgements
/// synchronously and records which Accepts the broker confirmed.
async fn share_member_task(world: Arc<World>, name: String, mode: Arc<AtomicU8>) {
    let counters = &world.counters.share;
    let cfg = config(
        &world.bootstrap,
        &[
            ("group.id", SHARE_GROUP),
            ("share.acknowledgement.mode", "explicit"),
            ("max.poll.records", "500"),
        ],
    );
    let consumer = match ShareConsumer::new(&cfg).await {
        Ok(c) => c,
        Err(e) => {
            eprintln!("chaos: share {name}: create failed: {e}");
            return;
        }
    };
    consumer.subscribe(&[SHARE_TOPIC]).expect("subscribe");
    let mut rng = fastrand::Rng::new();
    loop {
        if mode.load(Ordering::Relaxed) == 1 || world.stop_consuming.load(Ordering::Relaxed) {
            if let Err(e) = consumer.close().await {
                eprintln!("chaos: share {name}: close: {e}");
            }
            return;
        }
        // recv_batch is cancellation safe: a record is handed out only when it returns.
        let records =
            match tokio::time::timeout(Duration::from_millis(300), consumer.recv_batch()).await {
                Err(_) => continue,
                Ok(Ok(r)) => r,
                Ok(Err(e)) => {
                    counters.recv_errors.fetch_add(1, Ordering::Relaxed);
                    note_error(&world, &name, "recv", &e);
                    if e.is_fatal() {
                        eprintln!("chaos: share {name}: fatal {e}; leaving the task");
                        return;
                    }
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    continue;
                }
            };
        let mut accepted = Vec::new();
        {
            let mut h = world.history();
            for r in &records {
                let at = (r.partition(), r.offset());
                h.share_deliveries
                    .entry(at)
                    .or_default()
                    .push(r.delivery_count());
                match r.value().and_then(|v| parse_value(v)) {
                    Some((p, q)) => {
                        if let Some(old) = h.share_observed.insert(at, id(p, q)) {
                            if old != id(p, q) {
                                let msg = format!(
                                    "{name}: {SHARE_TOPIC}/{}@{} held {:?} earlier, now {:?}",
                                    at.0,
                                    at.1,
                                    unid(old),
                                    (p, q)
                                );
                                h.two_values.push(msg);
                            }
                        }
                    }
                    None => h.two_values.push(format!(
                        "{name}: unparsable value at {SHARE_TOPIC}/{}@{}",
                        at.0, at.1
                    )),
                }
            }
        }
        counters
            .records
            .fetch_add(records.len() as u64, Ordering::Relaxed);
        for r in &records {
            let release = rng.u8(..50) == 0;
            accepted.push(!release);
            let ack = if release {
                counters.released.fetch_add(1, Ordering::Relaxed);
                AcknowledgeType::Release
            } else {
                AcknowledgeType::Accept
            };
            if let Err(e) = consumer.acknowledge(r, ack) {
                note_error(&world, &name, "acknowledge", &e);
            }
        }
        // Until the commit answers (or if the task is killed meanwhile) the outcome of these
        // accepts is unknown: the acknowledgements may reach the broker.
        {
            let mut h = world.history();
            for (r, accept) in records.iter().zip(&accepted) {
                if *accept {
                    h.share_ack_unknown.insert((r.partition(), r.offset()));
                }
            }
        }
        match consumer.commit_sync().await {
            Ok(results) => {
                counters.commits.fetch_add(1, Ordering::Relaxed);
                let mut h = world.history();
                for (r, accept) in records.iter().zip(&accepted) {
                    let tp = r.topic_partition();
                    if !accept {
                        continue;
                    }
                    match results.get(&tp) {
                        Some(Ok(())) => {
                            h.share_accepted.insert((r.partition(), r.offset()));
                            h.share_ack_unknown.remove(&(r.partition(), r.offset()));
                        }
                        Some(Err(_)) => {}
                        None => {
                            counters.ack_unknown.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
                drop(h);
                for (tp, r) in &results {
                    if let Err(e) = r {
                        counters.commit_failures.fetch_add(1, Ordering::Relaxed);
                        note_error(&world, &name, &format!("ack {}", tp.partition), e);
                    }
                }
            }
            Err(e) => {
                counters.commit_failures.fetch_add(1, Ordering::Relaxed);
                note_error(&world, &name, "commit", &e);
            }
        }
    }
}

/// Counts an error a workload saw (by workload kind, operation and message with digits
/// masked), and prints it when `KAFKA_SDK_CHAOS_VERBOSE` is set.
fn note_error(world: &World, who: &str, what: &str, e: &kafka_sdk::Error) {
    if std::env::var_os("KAFKA_SDK_CHAOS_VERBOSE").is_some() {
        eprintln!("chaos: {who}: {what}: {e}");
    }
    let kind = who.split('-').next().unwrap_or(who);
    let text: String = e
        .to_string()
        .chars()
        .map(|c| if c.is_ascii_digit() { '#' } else { c })
        .take(72)
        .collect();
    *world
        .errors
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .entry(format!("{kind} {what}: {text}"))
        .or_default() += 1;
}

fn spawn_member(world: &Arc<World>, kind: Kind, n: u64) -> Member {
    let name = format!("{}-{n}", kind.prefix());
    let mode = Arc::new(AtomicU8::new(0));
    let task = match kind {
        Kind::Share => tokio::spawn(share_member_task(world.clone(), name.clone(), mode.clone())),
        // One KIP-848 member in three auto-commits.
        _ => tokio::spawn(member_task(
            world.clone(),
            name.clone(),
            mode.clone(),
            kind,
            kind == Kind::Kip848 && n.is_multiple_of(3),
        )),
    };
    kind.counters(world).joins.fetch_add(1, Ordering::Relaxed);
    Member { name, mode, task }
}

/// Joins, leaves and kills members of `kind`'s group every few seconds until `stop_churn`;
/// keeps 1..=4.
async fn membership_churn(
    world: Arc<World>,
    kind: Kind,
    stop_churn: Arc<AtomicBool>,
    seed: u64,
) -> Vec<Member> {
    let salt = match kind {
        Kind::Classic => 0x6d65_6d62,
        Kind::Kip848 => 0x6b38_3438,
        Kind::Share => 0x7368_6172,
    };
    let mut rng = fastrand::Rng::with_seed(seed ^ salt);
    let counters = kind.counters(&world);
    let label = format!("{kind:?}").to_lowercase();
    let mut next = 0u64;
    let mut members: Vec<Member> = Vec::new();
    for _ in 0..2 {
        next += 1;
        members.push(spawn_member(&world, kind, next));
    }
    while !stop_churn.load(Ordering::Relaxed) {
        tokio::time::sleep(Duration::from_millis(rng.u64(5_000..10_000))).await;
        members.retain(|m| !m.task.is_finished());
        let action = if members.len() < 2 {
            0
        } else if members.len() >= 4 {
            rng.u8(1..3)
        } else {
            rng.u8(0..3)
        };
        match action {
            0 => {
                next += 1;
                let m = spawn_member(&world, kind, next);
                eprintln!("chaos: {label}: {} joins", m.name);
                members.push(m);
            }
            1 => {
                let m = members.remove(rng.usize(..members.len()));
                eprintln!("chaos: {label}: {} leaves", m.name);
                m.mode.store(1, Ordering::Relaxed);
                counters.leaves.fetch_add(1, Ordering::Relaxed);
                // Leaving is asynchronous: the task closes its consumer.
                tokio::spawn(async move {
                    let _ = tokio::time::timeout(Duration::from_secs(60), m.task).await;
                });
            }
            _ => {
                let m = members.remove(rng.usize(..members.len()));
                eprintln!("chaos: {label}: {} is killed", m.name);
                m.task.abort(); // drops the consumer mid-flight: no LeaveGroup
                world.forget(&m.name);
                counters.kills.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
    // Two members finish the run.
    members.retain(|m| !m.task.is_finished());
    while members.len() < 2 {
        next += 1;
        members.push(spawn_member(&world, kind, next));
    }
    members
}

// ---------------------------------------------------------------------------------------
// Workload 3: the transactional pipeline.

fn transform(input: &[u8], attempt: &str) -> String {
    format!("{}|{attempt}", String::from_utf8_lossy(input))
}

/// One pipeline instance with a fixed transactional.id; recreated after fatal errors.
async fn pipeline_task(world: Arc<World>, instance: usize) {
    let txn_id = format!("chaos-eos-{instance}");
    let mut txn_no = 0u64;
    while !world.stop_consuming.load(Ordering::Relaxed) {
        if let Err(e) = pipeline_run(&world, instance, &txn_id, &mut txn_no).await {
            world
                .counters
                .pipeline_restarts
                .fetch_add(1, Ordering::Relaxed);
            eprintln!("chaos: pipeline {instance}: restarting after: {e}");
            note_error(&world, &format!("pipeline-{instance}"), "restart", &e);
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }
}

async fn pipeline_run(
    world: &Arc<World>,
    instance: usize,
    txn_id: &str,
    txn_no: &mut u64,
) -> Result<(), kafka_sdk::Error> {
    let consumer = Consumer::new(&group_config(
        &world.bootstrap,
        EOS_GROUP,
        &[("isolation.level", "read_committed")],
    ))
    .await?;
    consumer.subscribe(&[DATA])?;
    let producer = Producer::new(&config(
        &world.bootstrap,
        &[
            ("transactional.id", txn_id),
            ("transaction.timeout.ms", "30000"),
            ("linger.ms", "5"),
        ],
    ))
    .await?;
    producer.init_transactions().await?;
    let who = format!("pipeline-{instance}");
    loop {
        if world.stop_consuming.load(Ordering::Relaxed) {
            let _ = producer.close(Duration::from_secs(30)).await;
            let _ = consumer.close().await;
            return Ok(());
        }
        // Large transactions: the per-transaction round trips (offsets, EndTxn) dominate.
        let got = consumer.recv_batch(2_000, Duration::from_millis(300)).await;
        world.report(&who, &consumer, &format!("{txn_no} transactions"));
        let msgs = match got {
            Ok(m) => m,
            Err(e) if e.is_fatal() => return Err(e),
            Err(e) => {
                note_error(world, &who, "recv", &e);
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
        };
        if msgs.is_empty() {
            continue;
        }
        *txn_no += 1;
        let attempt = format!("e{instance}.{txn_no}");
        let deliberate_abort = *txn_no % 10 == 7;
        let mut first: BTreeMap<TopicPartition, i64> = BTreeMap::new();
        let mut next: BTreeMap<TopicPartition, i64> = BTreeMap::new();
        for m in &msgs {
            world.observe(m.partition(), m.offset(), m.value().map(|v| &v[..]), &who);
            let tp = m.topic_partition();
            first.entry(tp.clone()).or_insert(m.offset());
            next.insert(tp, m.offset() + 1);
        }
        producer.begin_transaction()?;
        let result = async {
            let mut deliveries = Vec::with_capacity(msgs.len());
            for m in &msgs {
                let mut out = ProducerRecord::new(OUT).value(transform(
                    m.value().map(|v| &v[..]).unwrap_or_default(),
                    &attempt,
                ));
                if let Some(k) = m.key() {
                    out = out.key(k.clone());
                }
                deliveries.push(producer.send(out).await?);
            }
            if deliberate_abort {
                return Ok(false);
            }
            let meta = consumer.group_metadata()?;
            producer
                .send_offsets_to_transaction(next.clone(), &meta)
                .await?;
            producer.commit_transaction().await?;
            drop(deliveries);
            Ok::<bool, kafka_sdk::Error>(true)
        }
        .await;
        let abort_counter = match result {
            Ok(true) => {
                world.counters.txn_commits.fetch_add(1, Ordering::Relaxed);
                world
                    .counters
                    .pipeline_records
                    .fetch_add(msgs.len() as u64, Ordering::Relaxed);
                world
                    .history()
                    .txn_committed
                    .insert(attempt.clone(), msgs.len());
                None
            }
            Ok(false) => Some(&world.counters.txn_aborts_deliberate),
            Err(e) if e.txn_requires_abort() => {
                note_error(world, &who, "transaction", &e);
                Some(&world.counters.txn_aborts_error)
            }
            Err(e) => {
                world.counters.txn_unknown.fetch_add(1, Ordering::Relaxed);
                world.history().txn_unknown.insert(attempt);
                return Err(e);
            }
        };
        if let Some(counter) = abort_counter {
            producer.abort_transaction().await.inspect_err(|_| {
                world.history().txn_unknown.insert(attempt.clone());
            })?;
            counter.fetch_add(1, Ordering::Relaxed);
            world.history().txn_aborted.insert(attempt);
            // The batch will be read and transformed again (by us, or by the partition's
            // next owner from the committed offsets).
            let assigned = consumer.assignment();
            for (tp, o) in first {
                if assigned.contains(&tp) {
                    consumer.seek(&tp, Offset::Offset(o))?;
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// The nemesis.

#[derive(Debug, Clone, Copy)]
enum Fault {
    /// `kill -9`, restarted 1–6 s later.
    Kill,
    /// SIGSTOP for 2–8 s, then SIGCONT.
    Pause,
    /// Graceful restart (SIGTERM, start).
    Restart,
    /// 50–500 ms added to every chunk each way between the clients and the node, for 2–8 s.
    Latency,
    /// Clients <-> node limited to 16–128 KiB/s each way, for 2–8 s.
    Bandwidth,
    /// Every client connection to the node reset (RST); half the time new connections are
    /// then reset too for 1–4 s.
    Reset,
    /// Client connections to the node black-holed (nothing forwarded, nothing read, sockets
    /// open) for 2–14 s: longer than the 10 s request timeout about a third of the time.
    BlackHole,
}

impl Fault {
    const ALL: [Fault; 7] = [
        Fault::Kill,
        Fault::Pause,
        Fault::Restart,
        Fault::Latency,
        Fault::Bandwidth,
        Fault::Reset,
        Fault::BlackHole,
    ];
}

#[derive(Default)]
struct FaultLog {
    by_kind: BTreeMap<String, u64>,
    by_target: BTreeMap<String, u64>,
    lines: Vec<String>,
}

/// Which node a fault hits: the leader of a data partition, a coordinator, or any node.
async fn pick_target(cluster: &Cluster, rng: &mut fastrand::Rng, nodes: &[i32]) -> (i32, String) {
    let deadline = || Deadline::after(Duration::from_secs(5));
    let choice = rng.u8(0..5);
    let found = match choice {
        0 | 1 => {
            let p = rng.i32(0..PARTITIONS);
            let topic = if choice == 0 { DATA } else { OUT };
            let _ = cluster.refresh_topics(&[topic]).await;
            cluster
                .leader(topic, p, deadline())
                .await
                .ok()
                .map(|(n, _)| (n, format!("leader of {topic}/{p}")))
        }
        2 => {
            cluster.invalidate_coordinator(CoordinatorKind::Group, GROUP);
            cluster
                .coordinator(CoordinatorKind::Group, GROUP, deadline())
                .await
                .ok()
                .map(|(n, _)| (n, "group coordinator".to_string()))
        }
        3 => {
            let txn = format!("chaos-eos-{}", rng.usize(..PIPELINES));
            cluster.invalidate_coordinator(CoordinatorKind::Transaction, &txn);
            cluster
                .coordinator(CoordinatorKind::Transaction, &txn, deadline())
                .await
                .ok()
                .map(|(n, _)| (n, "transaction coordinator".to_string()))
        }
        _ => None,
    };
    found
        .filter(|(n, _)| nodes.contains(n))
        .unwrap_or_else(|| (nodes[rng.usize(..nodes.len())], "random node".to_string()))
}

/// Waits until every partition of the three chaos topics has all three replicas in sync (so the
/// next fault leaves two of them), bounded.
async fn wait_healthy(admin: &AdminClient, bound: Duration) -> bool {
    let start = Instant::now();
    while start.elapsed() < bound {
        if let Ok(topics) = admin.describe_topics(&[DATA, OUT, SHARE_TOPIC]).await {
            let healthy = topics.iter().all(|t| {
                t.partitions
                    .iter()
                    .all(|p| p.leader.is_some() && p.isr.len() == 3)
            });
            if healthy && topics.len() == 3 {
                return true;
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    false
}

async fn nemesis(
    cluster: Arc<KafkaCluster>,
    admin: &AdminClient,
    faults: usize,
    seed: u64,
) -> FaultLog {
    // Leader and coordinator lookups go through the internal cluster layer (a client of its
    // own, so the nemesis never disturbs the workloads' connections).
    let probe = Cluster::connect(SdkClusterOptions::new(
        cluster.bootstrap().split(',').map(str::to_string).collect(),
    ))
    .await
    .expect("nemesis probe");
    let mut rng = fastrand::Rng::with_seed(seed);
    let nodes = cluster.node_ids();
    let mut log = FaultLog::default();
    let start = Instant::now();
    for i in 0..faults {
        if !wait_healthy(admin, Duration::from_secs(90)).await {
            log.lines.push(format!(
                "fault {i}: replicas not all in sync after 90 s; going on"
            ));
        }
        tokio::time::sleep(Duration::from_millis(rng.u64(1_000..4_000))).await;
        let (node, why) = pick_target(&probe, &mut rng, &nodes).await;
        let kinds = Fault::ALL.len();
        let fault = if i < kinds {
            // Every kind comes up; the order varies with the seed.
            Fault::ALL[(i + seed as usize) % kinds]
        } else {
            Fault::ALL[rng.usize(..kinds)]
        };
        let t = Instant::now();
        let c = cluster.clone();
        let mut detail = String::new();
        // A network fault between the clients and `node`, healed after `hold`.
        let net = |fault: NetFault, hold: Duration| {
            let c = cluster.clone();
            async move {
                c.net_fault(node, fault)?;
                tokio::time::sleep(hold).await;
                c.net_fault(node, NetFault::Heal)
            }
        };
        let result = match fault {
            Fault::Kill => {
                c.kill(node).expect("kill");
                tokio::time::sleep(Duration::from_millis(rng.u64(1_000..6_000))).await;
                blocking(move || c.start_node(node)).await
            }
            Fault::Pause => {
                blocking({
                    let c = c.clone();
                    move || c.pause(node)
                })
                .await
                .expect("pause");
                tokio::time::sleep(Duration::from_millis(rng.u64(2_000..8_000))).await;
                c.resume(node)
            }
            Fault::Restart => blocking(move || c.restart(node)).await,
            Fault::Latency => {
                let delay = Duration::from_millis(rng.u64(50..500));
                detail = format!(" +{delay:?} each way");
                let hold = Duration::from_millis(rng.u64(2_000..8_000));
                net(NetFault::Latency(delay), hold).await
            }
            Fault::Bandwidth => {
                let rate = rng.u64(16..128) * 1024;
                detail = format!(" {} KiB/s", rate / 1024);
                let hold = Duration::from_millis(rng.u64(2_000..8_000));
                net(NetFault::Bandwidth(rate), hold).await
            }
            Fault::Reset => {
                // `Reset` returns once the connections are closed; `Refuse` also resets the
                // connections opened since, then every new one until healed.
                let refuse = rng.bool();
                let reset = blocking(move || c.net_fault(node, NetFault::Reset)).await;
                if refuse && reset.is_ok() {
                    detail = " then refused".to_string();
                    let hold = Duration::from_millis(rng.u64(1_000..4_000));
                    let c = cluster.clone();
                    match blocking(move || c.net_fault(node, NetFault::Refuse)).await {
                        Ok(()) => {
                            tokio::time::sleep(hold).await;
                            cluster.net_fault(node, NetFault::Heal)
                        }
                        Err(e) => Err(e),
                    }
                } else {
                    reset
                }
            }
            Fault::BlackHole => {
                let hold = Duration::from_millis(rng.u64(2_000..14_000));
                net(NetFault::BlackHole, hold).await
            }
        };
        let line = format!(
            "fault {i} at {:>5.1}s: {fault:?}{detail} node {node} ({why}) took {:.1}s{}",
            start.elapsed().as_secs_f64(),
            t.elapsed().as_secs_f64(),
            match &result {
                Ok(()) => String::new(),
                Err(e) => format!(" — recovery error: {e}"),
            }
        );
        eprintln!("chaos: {line}");
        log.lines.push(line);
        *log.by_kind.entry(format!("{fault:?}")).or_default() += 1;
        *log.by_target.entry(why).or_default() += 1;
        if result.is_err() {
            // Make sure the node is running again and reachable before anything else.
            let c = cluster.clone();
            let _ = blocking(move || {
                let _ = c.net_fault(node, NetFault::Heal);
                c.start_node(node)
            })
            .await;
        }
    }
    log
}

// ---------------------------------------------------------------------------------------
// Draining and checking.

/// Reads every partition of `topic` from the beginning up to its end with a fresh
/// read_committed consumer (no group). Returns (partition, offset, value) or an error naming
/// the partition that did not reach its end.
///
/// The end is the last stable offset (what a read_committed consumer's watermark query
/// answers), once it has caught up with the high watermark: a transaction's commit marker is
/// written after `commit_transaction` returns, so right after the last commit the last stable
/// offset can still sit at that transaction's first record. Waited for up to
/// [`MARKER_WAIT`]; a transaction still open after that (left to time out) ends the read
/// at its first record, as it would for any read_committed reader.
async fn drain(bootstrap: &str, topic: &str) -> Result<Vec<(i32, i64, Vec<u8>)>, String> {
    const MARKER_WAIT: Duration = Duration::from_secs(15);
    let c = Consumer::new(&config(bootstrap, &[("isolation.level", "read_committed")]))
        .await
        .map_err(|e| format!("drain consumer: {e}"))?;
    let ru = Consumer::new(&config(bootstrap, &[]))
        .await
        .map_err(|e| format!("drain watermark consumer: {e}"))?;
    let mut ends = BTreeMap::new();
    for p in 0..PARTITIONS {
        let tp = TopicPartition::new(topic, p);
        let high = ru
            .fetch_watermarks(&tp, Duration::from_secs(30))
            .await
            .map_err(|e| format!("high watermark of {tp}: {e}"))?
            .high;
        let waited = Instant::now();
        let stable = loop {
            let lso = c
                .fetch_watermarks(&tp, Duration::from_secs(30))
                .await
                .map_err(|e| format!("last stable offset of {tp}: {e}"))?
                .high;
            if lso >= high || waited.elapsed() > MARKER_WAIT {
                break lso;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        ends.insert(tp, stable);
    }
    let _ = ru.close().await;
    c.assign(
        ends.keys()
            .map(|tp| (tp.clone(), Offset::Beginning))
            .collect(),
    )
    .map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    let start = Instant::now();
    loop {
        let done = ends.iter().all(|(tp, end)| {
            *end == 0
                || c.position_of(tp)
                    .ok()
                    .flatten()
                    .is_some_and(|pos| pos >= *end)
        });
        if done {
            break;
        }
        if start.elapsed() > CATCH_UP {
            let behind: Vec<String> = ends
                .iter()
                .map(|(tp, end)| format!("{tp}: at {:?} of {end}", c.position_of(tp)))
                .collect();
            return Err(format!("drain of {topic} stuck: {}", behind.join(", ")));
        }
        for m in c
            .recv_batch(5_000, Duration::from_millis(500))
            .await
            .map_err(|e| format!("drain of {topic}: {e}"))?
        {
            out.push((
                m.partition(),
                m.offset(),
                m.value().map(|v| v.to_vec()).unwrap_or_default(),
            ));
        }
    }
    let _ = c.close().await;
    Ok(out)
}

/// Waits until `group`'s committed offsets equal the high watermarks of `chaos-data`.
async fn wait_lag_zero(bootstrap: &str, group: &str) -> Result<BTreeMap<i32, i64>, String> {
    let c = Consumer::new(&config(bootstrap, &[("group.id", group)]))
        .await
        .map_err(|e| format!("lag consumer: {e}"))?;
    let tps: Vec<TopicPartition> = (0..PARTITIONS)
        .map(|p| TopicPartition::new(DATA, p))
        .collect();
    let start = Instant::now();
    let mut last = String::new();
    let mut progress = (Vec::new(), Instant::now());
    while start.elapsed() < CATCH_UP_MAX && progress.1.elapsed() < NO_PROGRESS {
        let mut lagging = Vec::new();
        let mut committed_map = BTreeMap::new();
        match c.committed(Some(&tps), Duration::from_secs(10)).await {
            Ok(committed) => {
                for (tp, o) in committed {
                    let end = c
                        .fetch_watermarks(&tp, Duration::from_secs(10))
                        .await
                        .map(|w| w.high)
                        .unwrap_or(-1);
                    let o = o.unwrap_or(0);
                    committed_map.insert(tp.partition, o);
                    if o != end {
                        lagging.push(format!("{tp}: committed {o} of {end}"));
                    }
                }
                if lagging.is_empty() {
                    let _ = c.close().await;
                    eprintln!(
                        "chaos: group {group} caught up in {:.0}s",
                        start.elapsed().as_secs_f64()
                    );
                    return Ok(committed_map);
                }
                let now: Vec<i64> = committed_map.values().copied().collect();
                if now != progress.0 {
                    progress = (now, Instant::now());
                }
                last = lagging.join(", ");
            }
            Err(e) => last = format!("committed(): {e}"),
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let _ = c.close().await;
    Err(format!(
        "group {group} did not catch up (no progress for {:.0}s, {:.0}s in all): {last}",
        progress.1.elapsed().as_secs_f64(),
        start.elapsed().as_secs_f64()
    ))
}

/// Every 10 s: logs partitions of `group` whose committed offset has not moved for 60 s
/// while there is lag (with every client's last status), until `stop`.
async fn stall_monitor(world: Arc<World>, group: &'static str, stop: Arc<AtomicBool>) {
    let Ok(c) = Consumer::new(&config(&world.bootstrap, &[("group.id", group)])).await else {
        return;
    };
    let tps: Vec<TopicPartition> = (0..PARTITIONS)
        .map(|p| TopicPartition::new(DATA, p))
        .collect();
    let mut last_move: HashMap<i32, (i64, Instant)> = HashMap::new();
    let mut reported = HashSet::new();
    while !stop.load(Ordering::Relaxed) {
        tokio::time::sleep(Duration::from_secs(10)).await;
        let Ok(committed) = c.committed(Some(&tps), Duration::from_secs(5)).await else {
            continue;
        };
        for (tp, o) in committed {
            let o = o.unwrap_or(0);
            let e = last_move.entry(tp.partition).or_insert((o, Instant::now()));
            if e.0 != o {
                *e = (o, Instant::now());
                reported.remove(&tp.partition);
            } else if e.1.elapsed() > Duration::from_secs(60) && reported.insert(tp.partition) {
                let high = c
                    .fetch_watermarks(&tp, Duration::from_secs(5))
                    .await
                    .map(|w| w.high)
                    .unwrap_or(-1);
                if high > o {
                    eprintln!(
                        "chaos: STALL: {group} {tp} committed {o} (high {high}) unchanged for {:.0}s\n{}",
                        e.1.elapsed().as_secs_f64(),
                        world.statuses()
                    );
                }
            }
        }
    }
    let _ = c.close().await;
}

#[derive(Default)]
struct Anomalies(BTreeMap<&'static str, Vec<String>>);

impl Anomalies {
    fn add(&mut self, kind: &'static str, what: String) {
        self.0.entry(kind).or_default().push(what);
    }
}

fn check_data(
    h: &History,
    data: &[(i32, i64, Vec<u8>)],
    group_committed: Option<&BTreeMap<i32, i64>>,
    group_848_committed: Option<&BTreeMap<i32, i64>>,
    a: &mut Anomalies,
) -> String {
    // value -> every (partition, offset) holding it; (partition, offset) -> value.
    let mut where_: HashMap<u64, Vec<(i32, i64)>> = HashMap::new();
    let mut at: HashMap<(i32, i64), u64> = HashMap::new();
    for (p, o, v) in data {
        match parse_value(v) {
            Some((prod, seq)) => {
                where_.entry(id(prod, seq)).or_default().push((*p, *o));
                at.insert((*p, *o), id(prod, seq));
            }
            None => a.add("unparsable", format!("{DATA}/{p}@{o}: {v:?}")),
        }
    }
    for (v, places) in &where_ {
        if places.len() > 1 {
            a.add("duplicate", format!("{:?} at {places:?}", unid(*v)));
        }
    }
    let (mut acked, mut failed, mut failed_present) = (0u64, 0u64, 0u64);
    let mut reasons: BTreeMap<String, u64> = BTreeMap::new();
    for (v, outcome) in &h.sends {
        match outcome {
            Outcome::Acked { partition, offset } => {
                acked += 1;
                match where_.get(v) {
                    None => a.add(
                        "lost write",
                        format!("{:?} acked at {partition}@{offset}", unid(*v)),
                    ),
                    Some(places) => {
                        if *offset >= 0 && !places.contains(&(*partition, *offset)) {
                            a.add(
                                "wrong offset",
                                format!(
                                    "{:?} acked at {partition}@{offset}, found at {places:?}",
                                    unid(*v)
                                ),
                            );
                        }
                    }
                }
            }
            Outcome::Failed(why) => {
                failed += 1;
                *reasons.entry(why.chars().take(80).collect()).or_default() += 1;
                if where_.contains_key(v) {
                    failed_present += 1; // allowed: the outcome was unknown
                }
            }
        }
    }
    for ((p, o), v) in &h.observed {
        match at.get(&(*p, *o)) {
            Some(d) if d != v => a.add(
                "two values at one offset",
                format!(
                    "{DATA}/{p}@{o}: consumed {:?}, log has {:?}",
                    unid(*v),
                    unid(*d)
                ),
            ),
            None => a.add(
                "two values at one offset",
                format!("{DATA}/{p}@{o}: consumed {:?}, log has nothing", unid(*v)),
            ),
            _ => {}
        }
    }
    for e in &h.two_values {
        a.add("two values at one offset", e.clone());
    }
    // Order: per producer and partition, sequence numbers grow with offsets.
    let mut last: HashMap<(u64, i32), (i64, u64)> = HashMap::new();
    let mut sorted: Vec<&(i32, i64, Vec<u8>)> = data.iter().collect();
    sorted.sort_by_key(|(p, o, _)| (*p, *o));
    for (p, o, v) in sorted {
        if let Some((prod, seq)) = parse_value(v) {
            if let Some((lo, lseq)) = last.insert((prod, *p), (*o, seq)) {
                if seq <= lseq {
                    a.add(
                        "order",
                        format!("producer {prod} on {DATA}/{p}: seq {lseq}@{lo} then {seq}@{o}"),
                    );
                }
            }
        }
    }
    // Groups: every record below the committed offset was processed by some member.
    for (kind, processed, committed) in [
        ("committed but unprocessed", &h.processed, group_committed),
        (
            "kip848: committed but unprocessed",
            &h.processed_848,
            group_848_committed,
        ),
    ] {
        let Some(committed) = committed else { continue };
        let mut unprocessed = 0u64;
        for (p, o, _) in data {
            if *o < committed.get(p).copied().unwrap_or(0) && !processed.contains(&(*p, *o)) {
                unprocessed += 1;
                if unprocessed <= 20 {
                    a.add(kind, format!("{DATA}/{p}@{o}"));
                }
            }
        }
    }
    for e in &h.order_violations {
        a.add("consumer order", e.clone());
    }
    if h.stuck_deliveries > 0 {
        a.add(
            "stuck",
            format!("{} deliveries never resolved", h.stuck_deliveries),
        );
    }
    format!(
        "producers: {} sends, {acked} acked, {failed} failed ({failed_present} of them written \
         anyway: unknown outcome; reasons {reasons:?}); log holds {} records; classic group \
         processed {} distinct offsets, KIP-848 group {}",
        h.sends.len(),
        data.len(),
        h.processed.len(),
        h.processed_848.len()
    )
}

fn check_pipeline(
    h: &History,
    data: &[(i32, i64, Vec<u8>)],
    out: &[(i32, i64, Vec<u8>)],
    a: &mut Anomalies,
) -> String {
    let inputs: HashSet<&[u8]> = data.iter().map(|(_, _, v)| &v[..]).collect();
    let mut per_input: HashMap<&[u8], u32> = HashMap::new();
    let mut per_attempt: HashMap<&str, usize> = HashMap::new();
    for (p, o, v) in out {
        let Some(split) = v.iter().rposition(|b| *b == b'|') else {
            a.add("unparsable", format!("{OUT}/{p}@{o}: {v:?}"));
            continue;
        };
        let (input, attempt) = (
            &v[..split],
            std::str::from_utf8(&v[split + 1..]).unwrap_or(""),
        );
        *per_input.entry(input).or_default() += 1;
        *per_attempt.entry(attempt).or_default() += 1;
        if h.txn_aborted.contains(attempt) {
            a.add(
                "aborted read",
                format!("{OUT}/{p}@{o} from aborted transaction {attempt}"),
            );
        } else if !h.txn_committed.contains_key(attempt) && !h.txn_unknown.contains(attempt) {
            a.add(
                "aborted read",
                format!("{OUT}/{p}@{o} from unknown attempt {attempt}"),
            );
        }
        if !inputs.contains(input) {
            a.add("pipeline: output without input", format!("{OUT}/{p}@{o}"));
        }
    }
    for (input, n) in &per_input {
        if *n > 1 {
            a.add(
                "pipeline: duplicate",
                format!("{} transformed {n} times", String::from_utf8_lossy(input)),
            );
        }
    }
    let missing = inputs
        .iter()
        .filter(|i| !per_input.contains_key(*i))
        .count();
    if missing > 0 {
        a.add(
            "pipeline: missing",
            format!("{missing} input records have no output"),
        );
    }
    for (attempt, n) in &h.txn_committed {
        let seen = per_attempt.get(attempt.as_str()).copied().unwrap_or(0);
        if seen != *n {
            a.add(
                "pipeline: partial transaction",
                format!("{attempt}: committed {n} records, {seen} visible"),
            );
        }
    }
    format!(
        "pipeline: {} transactions committed, {} aborted, {} unknown; output holds {} records",
        h.txn_committed.len(),
        h.txn_aborted.len(),
        h.txn_unknown.len(),
        out.len()
    )
}

/// The share group: every acknowledged write to `chaos-share` was accepted (the broker
/// confirmed an Accept for its offset) at least once, and each record's delivery counts
/// grew with every delivery.
fn check_share(h: &History, a: &mut Anomalies) -> String {
    let (mut acked, mut failed) = (0u64, 0u64);
    let mut never = 0u64;
    for (v, outcome) in &h.share_sends {
        match outcome {
            Outcome::Acked { partition, offset } => {
                acked += 1;
                let at = (*partition, *offset);
                if !h.share_accepted.contains(&at) && !h.share_ack_unknown.contains(&at) {
                    never += 1;
                    if never <= 20 {
                        a.add(
                            "share: never accepted",
                            format!(
                                "{:?} acked at {SHARE_TOPIC}/{partition}@{offset}, delivered {:?}",
                                unid(*v),
                                h.share_deliveries.get(&(*partition, *offset))
                            ),
                        );
                    }
                }
                if let Some(seen) = h.share_observed.get(&(*partition, *offset)) {
                    if seen != v {
                        a.add(
                            "two values at one offset",
                            format!(
                                "{SHARE_TOPIC}/{partition}@{offset}: acked {:?}, delivered {:?}",
                                unid(*v),
                                unid(*seen)
                            ),
                        );
                    }
                }
            }
            Outcome::Failed(_) => failed += 1,
        }
    }
    for (p, (start, end)) in &h.share_not_final {
        a.add(
            "share: never accepted",
            format!(
                "{SHARE_TOPIC}/{p}: the share-partition start offset is {start}, the end {end}: \
                 records not acknowledged"
            ),
        );
    }
    let unknown_only = h
        .share_ack_unknown
        .iter()
        .filter(|at| !h.share_accepted.contains(at))
        .count();
    let mut redelivered = 0u64;
    let mut max_count = 0u16;
    for ((p, o), counts) in &h.share_deliveries {
        max_count = max_count.max(counts.iter().copied().max().unwrap_or(0));
        if counts.len() > 1 {
            redelivered += 1;
        }
        // Non-decreasing, not strictly increasing: when a holder leaves (close, session
        // end, fencing) the broker releases what it had acquired and lowers those records'
        // delivery counts by one (it cannot know they were delivered), so the next delivery
        // repeats the count.
        if counts.windows(2).any(|w| w[1] < w[0]) {
            a.add(
                "share: delivery count decreasing",
                format!("{SHARE_TOPIC}/{p}@{o}: delivery counts {counts:?}"),
            );
        }
    }
    format!(
        "share: {} sends, {acked} acked, {failed} failed; {} offsets delivered ({redelivered} \
         more than once, highest delivery count {max_count}), {} accepted, {unknown_only} \
         more whose accept had an unknown outcome (a failed commit; settled by the broker-side \
         check: every share-partition's start offset must reach its end)",
        h.share_sends.len(),
        h.share_deliveries.len(),
        h.share_accepted.len()
    )
}

/// Waits until every acknowledged write to `chaos-share` has been accepted by a share
/// consumer; stuck when no new acceptance comes for `NO_PROGRESS` (records a killed consumer
/// held come back after the lock duration, 10 s).
async fn wait_share_accepted(world: &World) -> Result<(), String> {
    let start = Instant::now();
    let mut progress = (usize::MAX, Instant::now());
    while start.elapsed() < CATCH_UP_MAX && progress.1.elapsed() < NO_PROGRESS {
        let missing = {
            let h = world.history();
            h.share_sends
                .values()
                .filter(|o| match o {
                    Outcome::Acked { partition, offset } => {
                        let at = (*partition, *offset);
                        !h.share_accepted.contains(&at) && !h.share_ack_unknown.contains(&at)
                    }
                    Outcome::Failed(_) => false,
                })
                .count()
        };
        if missing == 0 {
            eprintln!(
                "chaos: share group accepted everything in {:.0}s",
                start.elapsed().as_secs_f64()
            );
            return Ok(());
        }
        if missing != progress.0 {
            progress = (missing, Instant::now());
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    Err(format!(
        "share group: {} acknowledged records not accepted (no progress for {:.0}s)",
        progress.0,
        progress.1.elapsed().as_secs_f64()
    ))
}

/// Waits (bounded) until the share group's start offset of every `chaos-share` partition
/// (`kafka-share-groups --describe`: below it every record is acknowledged or archived)
/// reaches the partition's high watermark. With no record rejected and no delivery count at
/// the limit, that means every record was accepted — also those whose accept the client saw
/// fail. Returns the partitions that did not get there: partition -> (start, end).
async fn share_final(
    cluster: &Arc<KafkaCluster>,
    bootstrap: &str,
) -> Result<BTreeMap<i32, (i64, i64)>, String> {
    let c = Consumer::new(&config(bootstrap, &[]))
        .await
        .map_err(|e| format!("watermark consumer: {e}"))?;
    let mut ends = BTreeMap::new();
    for p in 0..SHARE_PARTITIONS {
        let tp = TopicPartition::new(SHARE_TOPIC, p);
        let w = c
            .fetch_watermarks(&tp, Duration::from_secs(30))
            .await
            .map_err(|e| format!("watermarks of {tp}: {e}"))?;
        ends.insert(p, w.high);
    }
    let _ = c.close().await;
    let start = Instant::now();
    loop {
        let (c, b) = (cluster.clone(), bootstrap.to_string());
        let out = blocking(move || {
            c.tool_output(
                "share-groups",
                &[
                    "--bootstrap-server",
                    &b,
                    "--describe",
                    "--group",
                    SHARE_GROUP,
                ],
            )
        })
        .await
        .map_err(|e| format!("kafka-share-groups: {e}"))?;
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        let starts = parse_share_starts(&text);
        // Final: the start offset reached the end, or the broker reports no lag (the start
        // offset may trail acknowledged records at the end of the log).
        let behind: BTreeMap<i32, (i64, i64)> = ends
            .iter()
            .filter(|(p, end)| {
                starts
                    .get(*p)
                    .is_none_or(|(s, lag)| s < *end && *lag != Some(0))
            })
            .map(|(p, end)| (*p, (starts.get(p).map_or(-1, |(s, _)| *s), *end)))
            .collect();
        if behind.is_empty() || start.elapsed() > Duration::from_secs(120) {
            if !behind.is_empty() {
                eprintln!("chaos: share group not final; kafka-share-groups said:\n{text}");
            }
            return Ok(behind);
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

/// `kafka-share-groups --describe` output: partition -> (START-OFFSET, LAG if given) of
/// `chaos-share`.
fn parse_share_starts(text: &str) -> BTreeMap<i32, (i64, Option<i64>)> {
    let mut out = BTreeMap::new();
    let mut cols: Option<(usize, usize, usize, Option<usize>)> = None;
    for line in text.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        let pos = |name: &str| f.iter().position(|c| *c == name);
        if let (Some(t), Some(p), Some(s)) = (pos("TOPIC"), pos("PARTITION"), pos("START-OFFSET")) {
            cols = Some((t, p, s, pos("LAG")));
            continue;
        }
        if let Some((t, p, s, lag)) = cols {
            if f.get(t) == Some(&SHARE_TOPIC) {
                if let (Some(p), Some(s)) = (
                    f.get(p).and_then(|v| v.parse().ok()),
                    f.get(s).and_then(|v| v.parse().ok()),
                ) {
                    let lag = lag.and_then(|l| f.get(l)).and_then(|v| v.parse().ok());
                    out.insert(p, (s, lag));
                }
            }
        }
    }
    out
}

/// The share group's configs (IncrementalAlterConfigs on the GROUP resource, before any
/// member joins): start from the earliest offset, lock records for `SHARE_LOCK_MS`.
async fn configure_share_group(bootstrap: &str) {
    let cluster = Cluster::connect(SdkClusterOptions::new(
        bootstrap.split(',').map(str::to_string).collect(),
    ))
    .await
    .expect("connect for the share group config");
    let set = |k: &str, v: String| {
        AlterableConfig::default()
            .with_name(StrBytes::from_string(k.to_string()))
            .with_config_operation(0)
            .with_value(Some(StrBytes::from_string(v)))
    };
    let req = IncrementalAlterConfigsRequest::default().with_resources(vec![
        AlterConfigsResource::default()
            .with_resource_type(32) // GROUP
            .with_resource_name(StrBytes::from_string(SHARE_GROUP.to_string()))
            .with_configs(vec![
                set("share.auto.offset.reset", "earliest".into()),
                set("share.record.lock.duration.ms", SHARE_LOCK_MS.to_string()),
            ]),
    ]);
    let conn = cluster.any_connection().await.expect("connection");
    let resp = conn.send(&req).await.expect("IncrementalAlterConfigs");
    for r in resp.responses {
        assert_eq!(r.error_code, 0, "share group config: {:?}", r.error_message);
    }
}

// ---------------------------------------------------------------------------------------

fn faults_wanted() -> usize {
    if let Some(n) = std::env::var("KAFKA_SDK_CHAOS_FAULTS")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        return n;
    }
    match std::env::var("KAFKA_SDK_CHAOS").as_deref() {
        Ok("long") => 50,
        _ => 10,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn chaos_three_nodes() {
    let faults = faults_wanted();
    let seed = std::env::var("KAFKA_SDK_CHAOS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| fastrand::u64(..1_000_000));
    eprintln!("chaos: {faults} faults, seed {seed} (KAFKA_SDK_CHAOS_SEED={seed} replays it)");
    let t0 = Instant::now();
    let cluster = Arc::new(
        blocking(|| {
            KafkaCluster::start(ClusterOptions {
                nodes: 3,
                allow_external: false,
                // Clients reach every broker through a fault-injecting proxy (the network
                // faults); inter-broker and controller traffic stay direct.
                proxied: true,
                heap_mb: 384,
                startup_timeout: Duration::from_secs(180),
                broker_props: vec![
                    // Drop a dead follower from the ISR sooner than the 30 s default, so
                    // acks=all writes resume quickly.
                    ("replica.lag.time.max.ms".into(), "10000".into()),
                    (
                        "transaction.abort.timed.out.transaction.cleanup.interval.ms".into(),
                        "5000".into(),
                    ),
                    // KIP-848 and share groups: a killed member is fenced after 10 s, as
                    // the classic group's members are.
                    ("group.consumer.heartbeat.interval.ms".into(), "1000".into()),
                    (
                        "group.consumer.min.heartbeat.interval.ms".into(),
                        "500".into(),
                    ),
                    ("group.consumer.session.timeout.ms".into(), "10000".into()),
                    (
                        "group.consumer.min.session.timeout.ms".into(),
                        "5000".into(),
                    ),
                    ("group.share.heartbeat.interval.ms".into(), "1000".into()),
                    ("group.share.min.heartbeat.interval.ms".into(), "500".into()),
                    ("group.share.session.timeout.ms".into(), "10000".into()),
                    ("group.share.min.session.timeout.ms".into(), "5000".into()),
                    // The share group's lock is 10 s (a group config, below the 15 s
                    // default minimum); at most 10 deliveries per record (the maximum) so
                    // that faults, kills and deliberate releases do not archive a record.
                    (
                        "group.share.min.record.lock.duration.ms".into(),
                        "1000".into(),
                    ),
                    ("group.share.delivery.count.limit".into(), "10".into()),
                ],
                features: vec![("share.version".into(), "1".into())],
                ..ClusterOptions::default()
            })
        })
        .await
        .expect("start 3-node cluster"),
    );
    let bootstrap = cluster.bootstrap();
    eprintln!("chaos: cluster up in {:.1?}: {bootstrap}", t0.elapsed());
    let admin = AdminClient::new(&config(&bootstrap, &[]))
        .await
        .expect("admin");
    for (topic, partitions) in [
        (DATA, PARTITIONS),
        (OUT, PARTITIONS),
        (SHARE_TOPIC, SHARE_PARTITIONS),
    ] {
        admin
            .create_topic(NewTopic::new(topic, partitions, 3).config("min.insync.replicas", "2"))
            .await
            .expect("create topic");
    }
    configure_share_group(&bootstrap).await;
    assert!(
        wait_healthy(&admin, Duration::from_secs(60)).await,
        "topics never became healthy"
    );

    let world = Arc::new(World {
        bootstrap: bootstrap.clone(),
        history: Mutex::new(History::default()),
        counters: Counters::default(),
        stop_producing: AtomicBool::new(false),
        stop_consuming: AtomicBool::new(false),
        status: Mutex::new(BTreeMap::new()),
        errors: Mutex::new(BTreeMap::new()),
    });
    // ~1,000 records/s from each data producer, ~200/s to the share topic.
    let mut producers: Vec<JoinHandle<()>> = (1..=PRODUCERS)
        .map(|n| tokio::spawn(producer_task(world.clone(), n, DATA, 50)))
        .collect();
    producers.push(tokio::spawn(producer_task(
        world.clone(),
        SHARE_PRODUCER,
        SHARE_TOPIC,
        10,
    )));
    let stop_churn = Arc::new(AtomicBool::new(false));
    let churns: Vec<JoinHandle<Vec<Member>>> = [Kind::Classic, Kind::Kip848, Kind::Share]
        .into_iter()
        .map(|kind| {
            tokio::spawn(membership_churn(
                world.clone(),
                kind,
                stop_churn.clone(),
                seed,
            ))
        })
        .collect();
    let pipelines: Vec<JoinHandle<()>> = (0..PIPELINES)
        .map(|i| tokio::spawn(pipeline_task(world.clone(), i)))
        .collect();
    let stop_monitors = Arc::new(AtomicBool::new(false));
    for g in [GROUP, GROUP_848, EOS_GROUP] {
        tokio::spawn(stall_monitor(world.clone(), g, stop_monitors.clone()));
    }
    // Let the workloads get going before the first fault.
    tokio::time::sleep(Duration::from_secs(5)).await;

    let t_faults = Instant::now();
    let log = nemesis(cluster.clone(), &admin, faults, seed).await;
    let fault_secs = t_faults.elapsed().as_secs_f64();

    // Heal: every node runs (the nemesis restarts what it stopped), replicas back in sync.
    let healed = wait_healthy(&admin, Duration::from_secs(120)).await;
    eprintln!("chaos: faults done in {fault_secs:.0}s; healed: {healed}");
    stop_churn.store(true, Ordering::Relaxed);
    let mut members = Vec::new();
    for churn in churns {
        members.extend(churn.await.expect("churn task"));
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    world.stop_producing.store(true, Ordering::Relaxed);
    for p in producers {
        p.await.expect("producer task");
    }
    eprintln!("chaos: producers done; waiting for the group and the pipeline to catch up");

    let mut anomalies = Anomalies::default();
    let group_committed = match wait_lag_zero(&bootstrap, GROUP).await {
        Ok(c) => Some(c),
        Err(e) => {
            anomalies.add("stuck", e);
            None
        }
    };
    let group_848_committed = match wait_lag_zero(&bootstrap, GROUP_848).await {
        Ok(c) => Some(c),
        Err(e) => {
            anomalies.add("stuck", e);
            None
        }
    };
    if let Err(e) = wait_lag_zero(&bootstrap, EOS_GROUP).await {
        anomalies.add("stuck", e);
    }
    if let Err(e) = wait_share_accepted(&world).await {
        anomalies.add("stuck", e);
    }
    match share_final(&cluster, &bootstrap).await {
        Ok(behind) => world.history().share_not_final = behind,
        Err(e) => anomalies.add("stuck", e),
    }
    if anomalies.0.contains_key("stuck") {
        let c = cluster.clone();
        let b = bootstrap.clone();
        let describe = blocking(move || {
            let mut text = String::new();
            for g in [GROUP, GROUP_848, EOS_GROUP] {
                let args = [
                    "--bootstrap-server",
                    &b,
                    "--describe",
                    "--group",
                    g,
                    "--members",
                    "--verbose",
                ];
                if let Ok(o) = c.tool_output("consumer-groups", &args) {
                    text.push_str(&String::from_utf8_lossy(&o.stdout));
                }
                let args = ["--bootstrap-server", &b, "--describe", "--group", g];
                if let Ok(o) = c.tool_output("consumer-groups", &args) {
                    text.push_str(&String::from_utf8_lossy(&o.stdout));
                }
            }
            text
        })
        .await;
        eprintln!(
            "chaos: stall diagnostics\nclient view:\n{}broker view:\n{describe}",
            world.statuses()
        );
    }
    world.stop_consuming.store(true, Ordering::Relaxed);
    stop_monitors.store(true, Ordering::Relaxed);
    for m in members {
        if tokio::time::timeout(Duration::from_secs(60), m.task)
            .await
            .is_err()
        {
            anomalies.add("stuck", format!("{} did not close within 60 s", m.name));
        }
    }
    for p in pipelines {
        if tokio::time::timeout(Duration::from_secs(90), p)
            .await
            .is_err()
        {
            anomalies.add(
                "stuck",
                "a pipeline instance did not stop within 90 s".into(),
            );
        }
    }

    let data = drain(&bootstrap, DATA).await;
    let out = drain(&bootstrap, OUT).await;
    let h = world.history();
    let mut summary = String::new();
    match (&data, &out) {
        (Ok(data), Ok(out)) => {
            let _ = writeln!(
                summary,
                "{}",
                check_data(
                    &h,
                    data,
                    group_committed.as_ref(),
                    group_848_committed.as_ref(),
                    &mut anomalies
                )
            );
            let _ = writeln!(summary, "{}", check_share(&h, &mut anomalies));
            let _ = writeln!(summary, "{}", check_pipeline(&h, data, out, &mut anomalies));
        }
        _ => {
            for e in [data.as_ref().err(), out.as_ref().err()]
                .into_iter()
                .flatten()
            {
                anomalies.add("stuck", e.clone());
            }
        }
    }
    let c = &world.counters;
    let ld = |a: &AtomicU64| a.load(Ordering::Relaxed);
    let _ = writeln!(
        summary,
        "operations: {} sends ({} refused at send); classic group: {}; KIP-848 group: {}; \
         share group: {} (deliveries; commits are acknowledgement commits, failures count \
         per partition), {} released, {} accepts with no reported outcome; pipeline: {} \
         records committed, {} txn commits, {} deliberate aborts, {} aborts after errors, {} \
         unknown, {} instance restarts",
        ld(&c.sent),
        ld(&c.send_errors),
        c.classic.summary(),
        c.kip848.summary(),
        c.share.summary(),
        ld(&c.share.released),
        ld(&c.share.ack_unknown),
        ld(&c.pipeline_records),
        ld(&c.txn_commits),
        ld(&c.txn_aborts_deliberate),
        ld(&c.txn_aborts_error),
        ld(&c.txn_unknown),
        ld(&c.pipeline_restarts),
    );
    let _ = writeln!(
        summary,
        "faults: {} in {fault_secs:.0}s, by kind {:?}, by target {:?}",
        log.lines.len(),
        log.by_kind,
        log.by_target
    );
    {
        let errors = world.errors.lock().unwrap_or_else(|p| p.into_inner());
        let _ = writeln!(
            summary,
            "errors the workloads saw ({} kinds):",
            errors.len()
        );
        for (e, n) in errors.iter() {
            let _ = writeln!(summary, "  {n:>6} x {e}");
        }
    }
    let total: usize = anomalies.0.values().map(Vec::len).sum();
    let _ = writeln!(
        summary,
        "anomalies: {total} {:?}",
        anomalies
            .0
            .iter()
            .map(|(k, v)| (*k, v.len()))
            .collect::<BTreeMap<_, _>>()
    );
    for (kind, list) in &anomalies.0 {
        for e in list.iter().take(10) {
            let _ = writeln!(summary, "  {kind}: {e}");
        }
    }
    let _ = writeln!(
        summary,
        "total time {:.0}s, seed {seed}",
        t0.elapsed().as_secs_f64()
    );
    eprintln!("chaos summary:\n{summary}");
    drop(h);
    assert!(
        log.lines.len() >= faults,
        "only {} faults injected",
        log.lines.len()
    );
    assert_eq!(total, 0, "anomalies found:\n{summary}");
}

/// The checker itself: a fabricated history with one anomaly of each kind must be reported
/// as exactly those kinds (and a clean one as none), so a green chaos run means something.
#[test]
fn checker_reports_each_anomaly_kind() {
    let rec = |p: i32, o: i64, v: String| (p, o, v.into_bytes());
    let mut h = History::default();
    // Clean history: two acked values at their offsets, consumed and processed.
    h.sends.insert(
        id(1, 1),
        Outcome::Acked {
            partition: 0,
            offset: 0,
        },
    );
    h.sends.insert(
        id(1, 2),
        Outcome::Acked {
            partition: 0,
            offset: 1,
        },
    );
    h.observed.insert((0, 0), id(1, 1));
    h.processed.insert((0, 0));
    h.processed.insert((0, 1));
    h.processed_848.insert((0, 0));
    h.txn_committed.insert("e0.1".into(), 2);
    // A member's contiguous batches, and a jump after its membership changed.
    let w = World {
        bootstrap: String::new(),
        history: Mutex::new(h),
        counters: Counters::default(),
        stop_producing: AtomicBool::new(false),
        stop_consuming: AtomicBool::new(false),
        status: Mutex::new(BTreeMap::new()),
        errors: Mutex::new(BTreeMap::new()),
    };
    w.consumed("k848-1", Some(3), &[(0, 0), (1, 5), (0, 1)]);
    w.consumed("k848-1", Some(3), &[(0, 2), (1, 6)]);
    w.consumed("k848-1", Some(4), &[(0, 0), (1, 9)]);
    w.consumed("k848-2", None, &[(0, 7), (0, 8)]);
    let mut h = w.history.into_inner().unwrap();
    // Share: one record accepted at its first delivery, one released and accepted at its
    // second.
    h.share_sends.insert(
        id(3, 1),
        Outcome::Acked {
            partition: 0,
            offset: 0,
        },
    );
    h.share_sends.insert(
        id(3, 2),
        Outcome::Acked {
            partition: 0,
            offset: 1,
        },
    );
    h.share_deliveries.insert((0, 0), vec![1]);
    h.share_deliveries.insert((0, 1), vec![1, 2, 2]);
    h.share_accepted.insert((0, 0));
    h.share_accepted.insert((0, 1));
    h.share_observed.insert((0, 0), id(3, 1));
    // Accepted, but the commit failed: the outcome is unknown (the broker decides).
    h.share_sends.insert(
        id(3, 4),
        Outcome::Acked {
            partition: 0,
            offset: 2,
        },
    );
    h.share_deliveries.insert((0, 2), vec![1]);
    h.share_ack_unknown.insert((0, 2));
    let data = vec![rec(0, 0, value_of(1, 1)), rec(0, 1, value_of(1, 2))];
    let out = vec![
        rec(0, 0, format!("{}|e0.1", value_of(1, 1))),
        rec(0, 1, format!("{}|e0.1", value_of(1, 2))),
    ];
    let committed = BTreeMap::from([(0, 2)]);
    let committed_848 = BTreeMap::from([(0, 1)]);
    let mut a = Anomalies::default();
    check_data(&h, &data, Some(&committed), Some(&committed_848), &mut a);
    check_pipeline(&h, &data, &out, &mut a);
    check_share(&h, &mut a);
    assert!(a.0.is_empty(), "clean history flagged: {:?}", a.0);

    // Now break it in every way the checker knows.
    h.sends.insert(
        id(1, 3),
        Outcome::Acked {
            partition: 1,
            offset: 0,
        },
    ); // never written
    h.sends.insert(
        id(2, 1),
        Outcome::Acked {
            partition: 0,
            offset: 7,
        },
    ); // elsewhere
    h.observed.insert((0, 1), id(2, 9)); // a consumer saw another value there
    h.txn_aborted.insert("e0.2".into());
    h.txn_committed.insert("e0.3".into(), 2); // only one of its records is visible
    let data = vec![
        rec(0, 0, value_of(1, 1)),
        rec(0, 1, value_of(1, 2)),
        rec(0, 2, value_of(1, 1)), // duplicate, and out of order for producer 1
        rec(0, 3, value_of(2, 1)),
        rec(0, 4, value_of(2, 2)), // below the commit, never processed
        rec(0, 5, value_of(2, 3)), // no output
    ];
    let committed = BTreeMap::from([(0, 5)]);
    h.processed.insert((0, 2));
    h.processed.insert((0, 3));
    let committed_848 = BTreeMap::from([(0, 2)]); // (0, 1) never processed by it
                                                  // A member skipping an offset within one membership, and within one batch.
    h.last_consumed.clear();
    let w = World {
        bootstrap: String::new(),
        history: Mutex::new(h),
        counters: Counters::default(),
        stop_producing: AtomicBool::new(false),
        stop_consuming: AtomicBool::new(false),
        status: Mutex::new(BTreeMap::new()),
        errors: Mutex::new(BTreeMap::new()),
    };
    w.consumed("k848-1", Some(3), &[(0, 0), (0, 1)]);
    w.consumed("k848-1", Some(3), &[(0, 3)]);
    w.consumed("member-1", None, &[(2, 0), (2, 2)]);
    let mut h = w.history.into_inner().unwrap();
    // Share: an acked record never accepted; a delivery count that did not grow.
    h.share_sends.insert(
        id(3, 3),
        Outcome::Acked {
            partition: 1,
            offset: 0,
        },
    );
    h.share_deliveries.insert((1, 0), vec![2, 1]);
    h.share_not_final.insert(2, (10, 12));
    let out = vec![
        rec(0, 0, format!("{}|e0.1", value_of(1, 1))),
        rec(0, 1, format!("{}|e0.1", value_of(1, 2))),
        rec(0, 2, format!("{}|e0.2", value_of(1, 2))), // aborted read + duplicate
        rec(0, 3, format!("{}|e0.3", value_of(2, 1))),
        rec(0, 4, format!("{}|e0.9", value_of(2, 2))), // attempt nobody made
    ];
    let mut a = Anomalies::default();
    check_data(&h, &data, Some(&committed), Some(&committed_848), &mut a);
    check_pipeline(&h, &data, &out, &mut a);
    check_share(&h, &mut a);
    let kinds: Vec<&str> = a.0.keys().copied().collect();
    assert_eq!(
        kinds,
        vec![
            "aborted read",
            "committed but unprocessed",
            "consumer order",
            "duplicate",
            "kip848: committed but unprocessed",
            "lost write",
            "order",
            "pipeline: duplicate",
            "pipeline: missing",
            "pipeline: partial transaction",
            "share: delivery count decreasing",
            "share: never accepted",
            "two values at one offset",
            "wrong offset",
        ],
        "{:?}",
        a.0
    );
    assert_eq!(
        a.0["consumer order"].len(),
        2,
        "{:?}",
        a.0["consumer order"]
    );
    assert_eq!(a.0["aborted read"].len(), 2, "{:?}", a.0["aborted read"]);
    assert_eq!(
        a.0["share: never accepted"].len(),
        2,
        "{:?}",
        a.0["share: never accepted"]
    );
    let described = "\nGROUP TOPIC PARTITION LEADER-EPOCH START-OFFSET LAG\n\
                     chaos-share-group chaos-share 0 3 120 0\n\
                     chaos-share-group chaos-share 2 1 77 -\n";
    assert_eq!(
        parse_share_starts(described),
        BTreeMap::from([(0, (120, Some(0))), (2, (77, None))])
    );
}
