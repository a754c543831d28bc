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
//!   in ten is aborted on purpose.
//!
//! After the faults, the cluster heals, the producers stop, the group and the pipeline must
//! catch up (lag 0), and fresh read_committed consumers drain both topics. Anomalies:
//! lost write, duplicate, wrong offset (an acknowledged offset holding another value, or two
//! values observed at one offset), order (per producer and partition), committed but
//! unprocessed (group), stuck (deliveries, lag, drain), and for the pipeline: missing,
//! duplicate, aborted read, partial transaction. Any anomaly fails the test; the counts are
//! printed either way.
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

use kafka_sdk::admin::{AdminClient, NewTopic};
use kafka_sdk::backoff::Deadline;
use kafka_sdk::cluster::{Cluster, ClusterOptions as SdkClusterOptions, CoordinatorKind};
use kafka_sdk::consumer::{CommitMode, Consumer, Offset};
use kafka_sdk::producer::{DeliveryFuture, Producer, ProducerRecord};
use kafka_sdk::{ClientConfig, TopicPartition};
use kafka_testkit::{ClusterOptions, KafkaCluster, NetFault};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use common::blocking;

const DATA: &str = "chaos-data";
const OUT: &str = "chaos-out";
const PARTITIONS: i32 = 6;
const GROUP: &str = "chaos-group";
const EOS_GROUP: &str = "chaos-eos";
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
    /// (partition, offset) processed by the group.
    processed: HashSet<(i32, i64)>,
    /// Pipeline: attempt id -> number of records sent in it, by outcome.
    txn_committed: HashMap<String, usize>,
    txn_aborted: HashSet<String>,
    txn_unknown: HashSet<String>,
    /// Deliveries that never resolved.
    stuck_deliveries: u64,
}

#[derive(Default)]
struct Counters {
    sent: AtomicU64,
    send_errors: AtomicU64,
    group_records: AtomicU64,
    group_commits: AtomicU64,
    group_commit_failures: AtomicU64,
    group_recv_errors: AtomicU64,
    joins: AtomicU64,
    leaves: AtomicU64,
    kills: AtomicU64,
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

async fn producer_task(world: Arc<World>, producer_id: u64) {
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
            w.history().sends.insert(v, outcome);
        }
    });
    let mut seq = 0u64;
    while !world.stop_producing.load(Ordering::Relaxed) {
        // ~1,000 records/s per producer: enough history, little broker load.
        for _ in 0..50 {
            seq += 1;
            let record = ProducerRecord::new(DATA)
                .key(format!("k{}", seq % 97))
                .value(value_of(producer_id, seq));
            match producer.send(record).await {
                Ok(fut) => {
                    let _ = tx.send((id(producer_id, seq), fut));
                }
                Err(e) => {
                    world.counters.send_errors.fetch_add(1, Ordering::Relaxed);
                    world
                        .history()
                        .sends
                        .insert(id(producer_id, seq), Outcome::Failed(e.to_string()));
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
// Workload 2: a cooperative-sticky group, manual commits after processing.

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

async fn member_task(world: Arc<World>, name: String, mode: Arc<AtomicU8>) {
    let consumer = match Consumer::new(&group_config(&world.bootstrap, GROUP, &[])).await {
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
        world.report(&name, &consumer, &format!("dirty {dirty}"));
        match got {
            Ok(msgs) => {
                for m in &msgs {
                    world.observe(m.partition(), m.offset(), m.value().map(|v| &v[..]), &name);
                    world
                        .history()
                        .processed
                        .insert((m.partition(), m.offset()));
                }
                world
                    .counters
                    .group_records
                    .fetch_add(msgs.len() as u64, Ordering::Relaxed);
                if msgs.is_empty() && !dirty {
                    continue;
                }
                // Commit what was processed (the positions recv has reached).
                match consumer.commit(CommitMode::Sync).await {
                    Ok(()) => {
                        dirty = false;
                        world.counters.group_commits.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(e) => {
                        dirty = true;
                        world
                            .counters
                            .group_commit_failures
                            .fetch_add(1, Ordering::Relaxed);
                        note_error(&world, &name, "commit", &e);
                    }
                }
            }
            Err(e) => {
                world
                    .counters
                    .group_recv_errors
                    .fetch_add(1, Ordering::Relaxed);
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

fn spawn_member(world: &Arc<World>, n: u64) -> Member {
    let name = format!("member-{n}");
    let mode = Arc::new(AtomicU8::new(0));
    let task = tokio::spawn(member_task(world.clone(), name.clone(), mode.clone()));
    world.counters.joins.fetch_add(1, Ordering::Relaxed);
    Member { name, mode, task }
}

/// Joins, leaves and kills members every few seconds until `stop_churn`; keeps 1..=4.
async fn membership_churn(
    world: Arc<World>,
    stop_churn: Arc<AtomicBool>,
    seed: u64,
) -> Vec<Member> {
    let mut rng = fastrand::Rng::with_seed(seed ^ 0x6d65_6d62);
    let mut next = 0u64;
    let mut members: Vec<Member> = Vec::new();
    for _ in 0..2 {
        next += 1;
        members.push(spawn_member(&world, next));
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
                let m = spawn_member(&world, next);
                eprintln!("chaos: group: {} joins", m.name);
                members.push(m);
            }
            1 => {
                let m = members.remove(rng.usize(..members.len()));
                eprintln!("chaos: group: {} leaves", m.name);
                m.mode.store(1, Ordering::Relaxed);
                world.counters.leaves.fetch_add(1, Ordering::Relaxed);
                // Leaving is asynchronous: the task closes its consumer.
                tokio::spawn(async move {
                    let _ = tokio::time::timeout(Duration::from_secs(60), m.task).await;
                });
            }
            _ => {
                let m = members.remove(rng.usize(..members.len()));
                eprintln!("chaos: group: {} is killed", m.name);
                m.task.abort(); // drops the consumer mid-flight: no LeaveGroup
                world.forget(&m.name);
                world.counters.kills.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
    // Two members finish the run.
    members.retain(|m| !m.task.is_finished());
    while members.len() < 2 {
        next += 1;
        members.push(spawn_member(&world, next));
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

/// Waits until every partition of the chaos topics has all three replicas in sync (so the
/// next fault leaves two of them), bounded.
async fn wait_healthy(admin: &AdminClient, bound: Duration) -> bool {
    let start = Instant::now();
    while start.elapsed() < bound {
        if let Ok(topics) = admin.describe_topics(&[DATA, OUT]).await {
            let healthy = topics.iter().all(|t| {
                t.partitions
                    .iter()
                    .all(|p| p.leader.is_some() && p.isr.len() == 3)
            });
            if healthy && topics.len() == 2 {
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

/// Reads every partition of `topic` from the beginning up to its high watermark with a
/// fresh read_committed consumer (no group). Returns (partition, offset, value) or an error
/// naming the partition that did not reach its end.
async fn drain(bootstrap: &str, topic: &str) -> Result<Vec<(i32, i64, Vec<u8>)>, String> {
    let c = Consumer::new(&config(bootstrap, &[("isolation.level", "read_committed")]))
        .await
        .map_err(|e| format!("drain consumer: {e}"))?;
    let mut ends = BTreeMap::new();
    for p in 0..PARTITIONS {
        let tp = TopicPartition::new(topic, p);
        let w = c
            .fetch_watermarks(&tp, Duration::from_secs(30))
            .await
            .map_err(|e| format!("watermarks of {tp}: {e}"))?;
        ends.insert(tp, w.high);
    }
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
    // Group: every record below the committed offset was processed by some member.
    let mut unprocessed = 0u64;
    if let Some(committed) = group_committed {
        for (p, o, _) in data {
            if *o < committed.get(p).copied().unwrap_or(0) && !h.processed.contains(&(*p, *o)) {
                unprocessed += 1;
                if unprocessed <= 20 {
                    a.add("committed but unprocessed", format!("{DATA}/{p}@{o}"));
                }
            }
        }
    }
    if h.stuck_deliveries > 0 {
        a.add(
            "stuck",
            format!("{} deliveries never resolved", h.stuck_deliveries),
        );
    }
    format!(
        "producers: {} sends, {acked} acked, {failed} failed ({failed_present} of them written \
         anyway: unknown outcome; reasons {reasons:?}); log holds {} records; group processed {} \
         distinct offsets",
        h.sends.len(),
        data.len(),
        h.processed.len()
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
                ],
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
    for topic in [DATA, OUT] {
        admin
            .create_topic(NewTopic::new(topic, PARTITIONS, 3).config("min.insync.replicas", "2"))
            .await
            .expect("create topic");
    }
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
    let producers: Vec<JoinHandle<()>> = (1..=PRODUCERS)
        .map(|n| tokio::spawn(producer_task(world.clone(), n)))
        .collect();
    let stop_churn = Arc::new(AtomicBool::new(false));
    let churn = tokio::spawn(membership_churn(world.clone(), stop_churn.clone(), seed));
    let pipelines: Vec<JoinHandle<()>> = (0..PIPELINES)
        .map(|i| tokio::spawn(pipeline_task(world.clone(), i)))
        .collect();
    let stop_monitors = Arc::new(AtomicBool::new(false));
    for g in [GROUP, EOS_GROUP] {
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
    let members = churn.await.expect("churn task");
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
    if let Err(e) = wait_lag_zero(&bootstrap, EOS_GROUP).await {
        anomalies.add("stuck", e);
    }
    if anomalies.0.contains_key("stuck") {
        let c = cluster.clone();
        let b = bootstrap.clone();
        let describe = blocking(move || {
            let mut text = String::new();
            for g in [GROUP, EOS_GROUP] {
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
                check_data(&h, data, group_committed.as_ref(), &mut anomalies)
            );
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
        "operations: {} sends ({} refused at send); group: {} records, {} commits ok, {} \
         commits failed, {} recv errors, {} joins, {} leaves, {} kills; pipeline: {} records \
         committed, {} txn commits, {} deliberate aborts, {} aborts after errors, {} unknown, \
         {} instance restarts",
        ld(&c.sent),
        ld(&c.send_errors),
        ld(&c.group_records),
        ld(&c.group_commits),
        ld(&c.group_commit_failures),
        ld(&c.group_recv_errors),
        ld(&c.joins),
        ld(&c.leaves),
        ld(&c.kills),
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
    h.txn_committed.insert("e0.1".into(), 2);
    let data = vec![rec(0, 0, value_of(1, 1)), rec(0, 1, value_of(1, 2))];
    let out = vec![
        rec(0, 0, format!("{}|e0.1", value_of(1, 1))),
        rec(0, 1, format!("{}|e0.1", value_of(1, 2))),
    ];
    let committed = BTreeMap::from([(0, 2)]);
    let mut a = Anomalies::default();
    check_data(&h, &data, Some(&committed), &mut a);
    check_pipeline(&h, &data, &out, &mut a);
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
    let out = vec![
        rec(0, 0, format!("{}|e0.1", value_of(1, 1))),
        rec(0, 1, format!("{}|e0.1", value_of(1, 2))),
        rec(0, 2, format!("{}|e0.2", value_of(1, 2))), // aborted read + duplicate
        rec(0, 3, format!("{}|e0.3", value_of(2, 1))),
        rec(0, 4, format!("{}|e0.9", value_of(2, 2))), // attempt nobody made
    ];
    let mut a = Anomalies::default();
    check_data(&h, &data, Some(&committed), &mut a);
    check_pipeline(&h, &data, &out, &mut a);
    let kinds: Vec<&str> = a.0.keys().copied().collect();
    assert_eq!(
        kinds,
        vec![
            "aborted read",
            "committed but unprocessed",
            "duplicate",
            "lost write",
            "order",
            "pipeline: duplicate",
            "pipeline: missing",
            "pipeline: partial transaction",
            "two values at one offset",
            "wrong offset",
        ],
        "{:?}",
        a.0
    );
    assert_eq!(a.0["aborted read"].len(), 2, "{:?}", a.0["aborted read"]);
}
