//! A short chaos run over SASL_SSL (issue 14): a 3-node cluster of the test kit whose client
//! listener is SASL_SSL (SCRAM-SHA-512, the kit's CA) with `connections.max.reauth.ms` = 10 s
//! (so sessions re-authenticate all along), while a nemesis SIGKILLs and restarts brokers and
//! restarts them gracefully. Workloads: two idempotent producers (acks=all) writing unique
//! values to a topic with replication 3 and `min.insync.replicas` 2, and a consumer group of
//! two members committing after processing.
//!
//! Checks, against a final read of the whole topic over SASL_SSL: no acknowledged value lost,
//! every acknowledged value at its acknowledged offset, no value twice in the log (idempotence),
//! per-producer order within a partition, and the group observed every acknowledged value.
//!
//! Costly (3 brokers with TLS on a shared machine): `#[ignore]`d; run by hand with
//! `cargo test --test chaos_secure -- --ignored --nocapture`. `KAFKA_SDK_CHAOS_FAULTS` sets
//! the number of faults (default 4). The result of the last run is in RELIABILITY.md.

mod support;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kafka_sdk::consumer::{CommitMode, Consumer, Offset};
use kafka_sdk::producer::{Producer, ProducerRecord};
use kafka_sdk::{ClientConfig, TopicPartition};
use kafka_testkit::{ClusterOptions, KafkaCluster, SaslMechanism, Security, SUPER_USER};
use support::common::blocking;

const TOPIC: &str = "chaos-secure";
const PARTITIONS: i32 = 3;
const GROUP: &str = "chaos-secure-group";
const PRODUCERS: u64 = 2;
const MEMBERS: usize = 2;

/// `<producer>:<seq>`.
fn parse(v: &[u8]) -> Option<(u64, u64)> {
    let (p, s) = std::str::from_utf8(v).ok()?.split_once(':')?;
    Some((p.parse().ok()?, s.parse().ok()?))
}

#[derive(Default)]
struct Seen {
    /// (producer, seq) -> acknowledged (partition, offset).
    acked: HashMap<(u64, u64), (i32, i64)>,
    failed: u64,
    /// Values the group observed, with how often.
    group: HashMap<(u64, u64), u32>,
    errors: BTreeMap<String, u64>,
}

struct World {
    cfg: ClientConfig,
    seen: Mutex<Seen>,
    stop_producing: AtomicBool,
    stop_consuming: AtomicBool,
    sent: AtomicU64,
}

impl World {
    fn seen(&self) -> std::sync::MutexGuard<'_, Seen> {
        self.seen.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn note(&self, what: &str, e: &kafka_sdk::Error) {
        let text: String = format!("{what}: {e}")
            .chars()
            .map(|c| if c.is_ascii_digit() { '#' } else { c })
            .take(90)
            .collect();
        *self.seen().errors.entry(text).or_default() += 1;
    }

    fn config(&self, extra: &[(&str, &str)]) -> ClientConfig {
        let mut c = self.cfg.clone();
        for (k, v) in extra {
            c.set(*k, *v);
        }
        c
    }
}

async fn producer_task(world: Arc<World>, id: u64) {
    let producer = loop {
        match Producer::new(&world.config(&[
            ("acks", "all"),
            ("enable.idempotence", "true"),
            ("linger.ms", "5"),
            ("delivery.timeout.ms", "120000"),
        ]))
        .await
        {
            Ok(p) => break p,
            Err(e) => {
                world.note("producer create", &e);
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    };
    let mut pending = Vec::new();
    let mut seq = 0u64;
    while !world.stop_producing.load(Ordering::Relaxed) {
        for _ in 0..20 {
            seq += 1;
            let r = ProducerRecord::new(TOPIC)
                .key(format!("k{}", seq % 31))
                .value(format!("{id}:{seq:09}"));
            match producer.send(r).await {
                Ok(f) => pending.push((seq, f)),
                Err(e) => {
                    world.note("send", &e);
                    world.seen().failed += 1;
                }
            }
            world.sent.fetch_add(1, Ordering::Relaxed);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        // Resolve what is done so the list stays short.
        let mut still = Vec::new();
        for (s, mut f) in pending.drain(..) {
            match futures_util::FutureExt::now_or_never(&mut f) {
                Some(Ok(md)) => {
                    world
                        .seen()
                        .acked
                        .insert((id, s), (md.partition, md.offset));
                }
                Some(Err(e)) => {
                    world.note("delivery", &e);
                    world.seen().failed += 1;
                }
                None => still.push((s, f)),
            }
        }
        pending = still;
    }
    for (s, f) in pending {
        match tokio::time::timeout(Duration::from_secs(180), f).await {
            Ok(Ok(md)) => {
                world
                    .seen()
                    .acked
                    .insert((id, s), (md.partition, md.offset));
            }
            Ok(Err(e)) => {
                world.note("delivery", &e);
                world.seen().failed += 1;
            }
            Err(_) => panic!("producer {id}: a delivery never resolved"),
        }
    }
    let _ = producer.close(Duration::from_secs(60)).await;
}

async fn member_task(world: Arc<World>) {
    let consumer = loop {
        match Consumer::new(&world.config(&[
            ("group.id", GROUP),
            ("enable.auto.commit", "false"),
            ("auto.offset.reset", "earliest"),
            ("session.timeout.ms", "10000"),
            ("heartbeat.interval.ms", "1000"),
        ]))
        .await
        {
            Ok(c) => break c,
            Err(e) => {
                world.note("consumer create", &e);
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    };
    consumer.subscribe(&[TOPIC]).expect("subscribe");
    while !world.stop_consuming.load(Ordering::Relaxed) {
        match consumer.recv_batch(500, Duration::from_millis(300)).await {
            Ok(msgs) => {
                if msgs.is_empty() {
                    continue;
                }
                {
                    let mut seen = world.seen();
                    for m in &msgs {
                        if let Some(v) = m.value().and_then(|v| parse(v)) {
                            *seen.group.entry(v).or_default() += 1;
                        }
                    }
                }
                if let Err(e) = consumer.commit(CommitMode::Sync).await {
                    world.note("commit", &e);
                }
            }
            Err(e) => {
                world.note("recv", &e);
                assert!(!e.is_fatal(), "group member: fatal error {e}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
    let _ = consumer.close().await;
}

/// Reads the whole topic: (partition, offset, value).
async fn drain(world: &World) -> Vec<(i32, i64, (u64, u64))> {
    let c = Consumer::new(&world.config(&[]))
        .await
        .expect("drain consumer");
    let mut ends = BTreeMap::new();
    for p in 0..PARTITIONS {
        let tp = TopicPartition::new(TOPIC, p);
        let w = c
            .fetch_watermarks(&tp, Duration::from_secs(60))
            .await
            .expect("watermarks");
        ends.insert(tp, w.high);
    }
    c.assign(
        ends.keys()
            .map(|tp| (tp.clone(), Offset::Beginning))
            .collect(),
    )
    .unwrap();
    let mut out = Vec::new();
    let t0 = Instant::now();
    while !ends
        .iter()
        .all(|(tp, end)| *end == 0 || c.position_of(tp).ok().flatten().is_some_and(|p| p >= *end))
    {
        assert!(t0.elapsed() < Duration::from_secs(180), "drain stuck");
        for m in c
            .recv_batch(5_000, Duration::from_millis(500))
            .await
            .expect("drain recv")
        {
            let v = m.value().and_then(|v| parse(v)).expect("a value we wrote");
            out.push((m.partition(), m.offset(), v));
        }
    }
    let _ = c.close().await;
    out
}

/// The anomalies of a run (empty: none).
fn check(seen: &Seen, log: &[(i32, i64, (u64, u64))]) -> Vec<String> {
    let mut bad = Vec::new();
    let mut at: HashMap<(u64, u64), (i32, i64)> = HashMap::new();
    let mut dups = 0;
    for (p, o, v) in log {
        if at.insert(*v, (*p, *o)).is_some() {
            dups += 1;
        }
    }
    if dups > 0 {
        bad.push(format!("{dups} values twice in the log"));
    }
    let lost: Vec<_> = seen.acked.keys().filter(|v| !at.contains_key(v)).collect();
    if !lost.is_empty() {
        bad.push(format!(
            "{} acknowledged values lost, e.g. {:?}",
            lost.len(),
            &lost[..lost.len().min(5)]
        ));
    }
    let moved = seen
        .acked
        .iter()
        .filter(|(v, po)| at.get(v).is_some_and(|x| x != *po))
        .count();
    if moved > 0 {
        bad.push(format!(
            "{moved} acknowledged values not at their acknowledged offset"
        ));
    }
    // Order: per producer and partition, sequence numbers grow with offsets.
    let mut last: HashMap<(u64, i32), u64> = HashMap::new();
    let mut sorted: Vec<_> = log.to_vec();
    sorted.sort_by_key(|(p, o, _)| (*p, *o));
    let mut reordered = 0;
    for (p, _, (prod, seq)) in sorted {
        if let Some(prev) = last.insert((prod, p), seq) {
            if seq < prev {
                reordered += 1;
            }
        }
    }
    if reordered > 0 {
        bad.push(format!("{reordered} records out of producer order"));
    }
    let unseen = seen
        .acked
        .keys()
        .filter(|v| !seen.group.contains_key(v))
        .count();
    if unseen > 0 {
        bad.push(format!("the group never saw {unseen} acknowledged values"));
    }
    bad
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "3 brokers with TLS: run by hand (see the module docs)"]
async fn chaos_over_sasl_ssl() {
    let faults: usize = std::env::var("KAFKA_SDK_CHAOS_FAULTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(4);
    let t_start = Instant::now();
    let cluster = Arc::new(
        blocking(|| {
            KafkaCluster::start(ClusterOptions {
                allow_external: false,
                heap_mb: 384,
                startup_timeout: Duration::from_secs(180),
                ..ClusterOptions::default()
                    .nodes(3)
                    .security(Security::SaslSsl)
                    .max_reauth(Duration::from_secs(10))
            })
        })
        .await
        .expect("start a 3-node SASL_SSL cluster"),
    );
    eprintln!("chaos_secure: cluster up in {:.1?}", t_start.elapsed());
    {
        let c = cluster.clone();
        blocking(move || c.create_topic(TOPIC, PARTITIONS, 3, &[("min.insync.replicas", "2")]))
            .await
            .expect("create topic");
    }
    let mut cfg = ClientConfig::new();
    cfg.set("bootstrap.servers", cluster.bootstrap());
    cfg.set("request.timeout.ms", "10000");
    for (k, v) in cluster
        .client_config(SUPER_USER, SaslMechanism::ScramSha512)
        .unwrap()
    {
        cfg.set(k, v);
    }
    let world = Arc::new(World {
        cfg,
        seen: Mutex::new(Seen::default()),
        stop_producing: AtomicBool::new(false),
        stop_consuming: AtomicBool::new(false),
        sent: AtomicU64::new(0),
    });
    let producers: Vec<_> = (1..=PRODUCERS)
        .map(|i| tokio::spawn(producer_task(world.clone(), i)))
        .collect();
    let members: Vec<_> = (0..MEMBERS)
        .map(|_| tokio::spawn(member_task(world.clone())))
        .collect();

    // Nemesis: alternately SIGKILL (down 5 s) and graceful restart of a random node.
    let nodes = cluster.node_ids();
    let mut rng = fastrand::Rng::with_seed(
        std::env::var("KAFKA_SDK_CHAOS_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(14),
    );
    tokio::time::sleep(Duration::from_secs(5)).await;
    for i in 0..faults {
        let node = nodes[rng.usize(..nodes.len())];
        let c = cluster.clone();
        let t0 = Instant::now();
        if i % 2 == 0 {
            blocking(move || c.kill(node)).await.expect("kill");
            tokio::time::sleep(Duration::from_secs(5)).await;
            let c = cluster.clone();
            blocking(move || c.start_node(node)).await.expect("start");
            eprintln!(
                "chaos_secure: fault {i}: kill -9 node {node}, back after {:.1?}",
                t0.elapsed()
            );
        } else {
            blocking(move || c.restart(node)).await.expect("restart");
            eprintln!(
                "chaos_secure: fault {i}: restart node {node} in {:.1?}",
                t0.elapsed()
            );
        }
        let c = cluster.clone();
        blocking(move || c.wait_ready(Duration::from_secs(120)))
            .await
            .expect("cluster ready again");
        tokio::time::sleep(Duration::from_secs(5)).await;
    }

    world.stop_producing.store(true, Ordering::Relaxed);
    for p in producers {
        p.await.expect("producer task");
    }
    // The group catches up: it has seen every acknowledged value.
    let t0 = Instant::now();
    loop {
        let missing = {
            let s = world.seen();
            s.acked.keys().filter(|v| !s.group.contains_key(v)).count()
        };
        if missing == 0 || t0.elapsed() > Duration::from_secs(180) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    world.stop_consuming.store(true, Ordering::Relaxed);
    for m in members {
        m.await.expect("member task");
    }
    let log = drain(&world).await;
    let bad = {
        let seen = world.seen();
        let regroup = seen.group.values().filter(|n| **n > 1).count();
        eprintln!(
            "chaos_secure: {faults} faults in {:.0?}; sent {}, acked {}, failed {}, log {}, group saw {} ({} more than once, allowed: at-least-once)",
            t_start.elapsed(),
            world.sent.load(Ordering::Relaxed),
            seen.acked.len(),
            seen.failed,
            log.len(),
            seen.group.len(),
            regroup
        );
        for (e, n) in &seen.errors {
            eprintln!("chaos_secure: error x{n}: {e}");
        }
        let unique: HashSet<_> = log.iter().map(|(_, _, v)| *v).collect();
        assert!(!unique.is_empty(), "nothing was written");
        check(&seen, &log)
    };
    assert!(bad.is_empty(), "anomalies: {bad:#?}");
    if let Ok(c) = Arc::try_unwrap(cluster) {
        blocking(move || c.stop()).await;
    }
}

/// The checker finds each anomaly it looks for (so a clean run means something).
#[test]
fn checker_reports_loss_duplicates_moves_order_and_unseen() {
    let mut seen = Seen::default();
    seen.acked.insert((1, 1), (0, 0));
    seen.acked.insert((1, 2), (0, 1));
    seen.group.insert((1, 1), 1);
    seen.group.insert((1, 2), 2);
    let clean = vec![(0, 0, (1, 1)), (0, 1, (1, 2))];
    assert!(
        check(&seen, &clean).is_empty(),
        "{:?}",
        check(&seen, &clean)
    );
    let lost = vec![(0, 0, (1, 1))];
    assert!(check(&seen, &lost).iter().any(|b| b.contains("lost")));
    let dup = vec![(0, 0, (1, 1)), (0, 1, (1, 2)), (0, 2, (1, 2))];
    assert!(check(&seen, &dup).iter().any(|b| b.contains("twice")));
    let swapped = vec![(0, 0, (1, 2)), (0, 1, (1, 1))];
    let b = check(&seen, &swapped);
    assert!(b.iter().any(|b| b.contains("acknowledged offset")), "{b:?}");
    assert!(b.iter().any(|b| b.contains("order")), "{b:?}");
    seen.group.remove(&(1, 2));
    assert!(check(&seen, &clean).iter().any(|b| b.contains("never saw")));
}
