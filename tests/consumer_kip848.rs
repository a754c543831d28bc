//! KIP-848 consumer group protocol (`group.protocol=consumer`) against a real broker.
//!
//! One dedicated single-node cluster for the file: the broker's consumer-group heartbeat
//! interval (500 ms) and session timeout (3 s) are lowered so that fencing a killed member
//! takes seconds, not the default 45 s, and regex subscriptions are re-resolved every 10 s (the minimum).
//! Local brokers only: an external cluster would not have these settings.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use kafka_sdk::consumer::{BoxFuture, CommitMode, Consumer, ConsumerHandle, RebalanceListener};
use kafka_sdk::producer::{Producer, ProducerRecord};
use kafka_sdk::{ClientConfig, TopicPartition};
use kafka_testkit::{ClusterOptions, KafkaCluster};
use tokio::time::Instant;

use support::common::{self, unique};

/// The broker's heartbeat interval for consumer groups (ms).
const BROKER_HB_MS: u64 = 500;
/// The broker's session timeout for consumer groups (ms).
const BROKER_SESSION_MS: u64 = 3000;

fn cluster() -> &'static KafkaCluster {
    static CLUSTER: OnceLock<KafkaCluster> = OnceLock::new();
    CLUSTER.get_or_init(|| {
        let hb = BROKER_HB_MS.to_string();
        let session = BROKER_SESSION_MS.to_string();
        let props = [
            ("group.consumer.heartbeat.interval.ms", hb.as_str()),
            ("group.consumer.min.heartbeat.interval.ms", "100"),
            ("group.consumer.session.timeout.ms", session.as_str()),
            ("group.consumer.min.session.timeout.ms", "1000"),
            ("group.consumer.regex.refresh.interval.ms", "10000"),
        ];
        KafkaCluster::start(ClusterOptions {
            broker_props: props
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            heap_mb: 384,
            allow_external: false,
            ..ClusterOptions::default()
        })
        .expect("start the KIP-848 test cluster")
    })
}

async fn bootstrap() -> String {
    common::blocking(|| cluster().bootstrap()).await
}

/// A `group.protocol=consumer` member config: manual commits of stored (processed) offsets.
fn member_cfg(bs: &str, group: &str) -> ClientConfig {
    common::config(
        bs,
        &[
            ("group.id", group),
            ("group.protocol", "consumer"),
            ("auto.offset.reset", "earliest"),
            ("enable.auto.commit", "false"),
            ("enable.auto.offset.store", "false"),
            ("max.poll.interval.ms", "30000"),
        ],
    )
}

/// Produces `n` records `"<tag>-<i>"` spread over the partitions of `topic`, all acknowledged.
async fn produce(bs: &str, topic: &str, partitions: i32, tag: &str, n: usize) -> Vec<String> {
    let p = Producer::new(&common::config(bs, &[("linger.ms", "5")]))
        .await
        .unwrap();
    let mut acks = Vec::new();
    let mut values = Vec::new();
    for i in 0..n {
        let v = format!("{tag}-{i}");
        let rec = ProducerRecord::new(topic)
            .partition((i as i32) % partitions)
            .value(v.clone().into_bytes());
        acks.push(p.send(rec).await.unwrap());
        values.push(v);
    }
    for a in acks {
        a.await.unwrap();
    }
    p.close(Duration::from_secs(30)).await.unwrap();
    values
}

async fn wait_until(what: &str, within: Duration, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// One event of the shared log: listener calls and deliveries, per member.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Ev {
    Assigned(String, TopicPartition),
    /// `on_assigned` returned for this partition.
    AssignedDone(String, TopicPartition),
    Revoked(String, TopicPartition),
    Lost(String, TopicPartition),
    Msg(String, TopicPartition, String),
}

/// Shared by the members of a test: the event log, the owner of each partition (to catch a
/// partition owned twice), and one processing lock per member that `on_revoked` takes, so a
/// record is either processed and stored before the revocation commits, or not processed.
#[derive(Default)]
struct Book {
    log: Vec<Ev>,
    owner: BTreeMap<TopicPartition, String>,
    violations: Vec<String>,
}

type SharedBook = Arc<Mutex<Book>>;

struct Listener {
    name: String,
    book: SharedBook,
    processing: Arc<tokio::sync::Mutex<()>>,
    /// How long `on_assigned` takes.
    assign_delay: Duration,
}

impl RebalanceListener for Listener {
    fn on_assigned<'a>(
        &'a self,
        _c: &'a ConsumerHandle,
        partitions: &'a [TopicPartition],
    ) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            {
                let mut b = self.book.lock().unwrap();
                for tp in partitions {
                    if let Some(o) = b.owner.get(tp).cloned() {
                        if o != self.name {
                            let v = format!("{tp} assigned to {} while {o} owns it", self.name);
                            b.violations.push(v);
                        }
                    }
                    b.owner.insert(tp.clone(), self.name.clone());
                    b.log.push(Ev::Assigned(self.name.clone(), tp.clone()));
                }
            }
            tokio::time::sleep(self.assign_delay).await;
            let mut b = self.book.lock().unwrap();
            for tp in partitions {
                b.log.push(Ev::AssignedDone(self.name.clone(), tp.clone()));
            }
        })
    }

    fn on_revoked<'a>(
        &'a self,
        c: &'a ConsumerHandle,
        partitions: &'a [TopicPartition],
    ) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            let _guard = self.processing.lock().await;
            if let Err(e) = c.commit_stored(CommitMode::Sync).await {
                panic!("{}: commit on revoke failed: {e}", self.name);
            }
            let mut b = self.book.lock().unwrap();
            for tp in partitions {
                if b.owner.get(tp) == Some(&self.name) {
                    b.owner.remove(tp);
                }
                b.log.push(Ev::Revoked(self.name.clone(), tp.clone()));
            }
        })
    }

    fn on_lost<'a>(
        &'a self,
        _c: &'a ConsumerHandle,
        partitions: &'a [TopicPartition],
    ) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            let mut b = self.book.lock().unwrap();
            for tp in partitions {
                if b.owner.get(tp) == Some(&self.name) {
                    b.owner.remove(tp);
                }
                b.log.push(Ev::Lost(self.name.clone(), tp.clone()));
            }
        })
    }
}

/// A member running its receive loop in a task until stopped.
struct Member {
    name: String,
    handle: ConsumerHandle,
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<Consumer>,
}

impl Member {
    /// Builds a consumer from `cfg`, subscribes it (`topics`, or `regex`) and runs the loop:
    /// each record still assigned is processed (logged) and its offset stored, under the
    /// processing lock.
    async fn start(
        name: &str,
        cfg: &ClientConfig,
        book: &SharedBook,
        sub: Sub<'_>,
        assign_delay: Duration,
    ) -> Member {
        let processing = Arc::new(tokio::sync::Mutex::new(()));
        let c = Consumer::builder(cfg)
            .rebalance_listener(Arc::new(Listener {
                name: name.to_string(),
                book: book.clone(),
                processing: processing.clone(),
                assign_delay,
            }))
            .build()
            .await
            .unwrap();
        match sub {
            Sub::Topics(t) => c.subscribe(t).unwrap(),
            Sub::Regex(r) => c.subscribe_regex(r).unwrap(),
        }
        let handle = c.handle();
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let (me, book) = (name.to_string(), book.clone());
        let task = tokio::spawn(async move {
            while !stopped.load(Ordering::Relaxed) {
                let Ok(r) = tokio::time::timeout(Duration::from_millis(200), c.recv()).await else {
                    continue;
                };
                let m = match r {
                    Ok(m) => m,
                    Err(e) => panic!("{me}: recv error: {e}"),
                };
                let _guard = processing.lock().await;
                let tp = m.topic_partition();
                if !c.assignment().contains(&tp) {
                    // Being revoked: the next owner reads it from the committed offset.
                    continue;
                }
                let v = String::from_utf8(m.value().unwrap().to_vec()).unwrap();
                book.lock().unwrap().log.push(Ev::Msg(me.clone(), tp, v));
                c.store_offset_from_message(&m).unwrap();
            }
            c
        });
        Member {
            name: name.to_string(),
            handle,
            stop,
            task,
        }
    }

    /// Stops the loop and closes the consumer (revoke: commit stored offsets; leave).
    async fn close(self) {
        self.stop.store(true, Ordering::Relaxed);
        let c = self.task.await.unwrap();
        c.close().await.unwrap();
    }

    /// Stops the loop and drops the consumer without leaving the group (a killed process:
    /// no LeaveGroup, no commit).
    async fn kill(self) {
        self.stop.store(true, Ordering::Relaxed);
        let c = self.task.await.unwrap();
        drop(c);
    }
}

#[derive(Clone, Copy)]
enum Sub<'a> {
    Topics(&'a [&'a str]),
    Regex(&'a str),
}

fn owned(book: &SharedBook, name: &str) -> BTreeSet<TopicPartition> {
    book.lock()
        .unwrap()
        .owner
        .iter()
        .filter(|(_, o)| *o == name)
        .map(|(tp, _)| tp.clone())
        .collect()
}

/// How often each value was processed.
fn counts(book: &SharedBook) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for ev in &book.lock().unwrap().log {
        if let Ev::Msg(_, _, v) = ev {
            *out.entry(v.clone()).or_insert(0) += 1;
        }
    }
    out
}

fn processed(book: &SharedBook) -> usize {
    counts(book).len()
}

/// Every value of `expected` processed exactly once, nothing else; no partition owned twice;
/// every record delivered only after `on_assigned` returned for its partition, to the member
/// that owned it; every revocation before the next owner's assignment.
fn check(book: &SharedBook, expected: &[String]) {
    let c = counts(book);
    let dups: Vec<_> = c.iter().filter(|(_, n)| **n > 1).collect();
    assert!(dups.is_empty(), "processed more than once: {dups:?}");
    let missing: Vec<_> = expected.iter().filter(|v| !c.contains_key(*v)).collect();
    assert!(missing.is_empty(), "never processed: {missing:?}");
    assert_eq!(c.len(), expected.len());
    let b = book.lock().unwrap();
    assert!(b.violations.is_empty(), "{:?}", b.violations);
    // Per (member, partition): the state the log implies when each record is delivered.
    let mut state: BTreeMap<(String, TopicPartition), &'static str> = BTreeMap::new();
    for ev in &b.log {
        match ev {
            Ev::Assigned(m, tp) => {
                state.insert((m.clone(), tp.clone()), "assigning");
            }
            Ev::AssignedDone(m, tp) => {
                state.insert((m.clone(), tp.clone()), "owned");
            }
            Ev::Revoked(m, tp) | Ev::Lost(m, tp) => {
                state.insert((m.clone(), tp.clone()), "gone");
            }
            Ev::Msg(m, tp, v) => {
                let s = state.get(&(m.clone(), tp.clone())).copied();
                assert_eq!(s, Some("owned"), "{m} got {v} of {tp} while {s:?}");
            }
        }
    }
}

/// Scale 1 -> 3 -> 1 members with manual commits (stored offsets committed on revoke):
/// every record processed exactly once, the listener order holds throughout.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn scale_one_three_one_exactly_once_with_manual_commits() {
    let bs = bootstrap().await;
    let topic = unique("k848-scale");
    let parts = 6;
    common::create_topic(&bs, &topic, parts).await;
    let group = unique("g848-scale");
    let cfg = member_cfg(&bs, &group);
    let book = SharedBook::default();
    let sub = Sub::Topics(&[topic.as_str()][..]);
    let mut expected = produce(&bs, &topic, parts, "a", 300).await;
    let a = Member::start("a", &cfg, &book, sub, Duration::ZERO).await;
    wait_until("a owns all 6", Duration::from_secs(60), || {
        owned(&book, "a").len() == 6
    })
    .await;
    // The consumer protocol: a client-generated UUID member id (KIP-1082), an epoch > 0.
    let (epoch, member_id) = a.handle.group_membership().expect("a is a member");
    assert!(epoch > 0, "member epoch {epoch}");
    uuid::Uuid::parse_str(&member_id).expect("member id is a UUID");
    let b = Member::start("b", &cfg, &book, sub, Duration::ZERO).await;
    let c = Member::start("c", &cfg, &book, sub, Duration::ZERO).await;
    expected.extend(produce(&bs, &topic, parts, "b", 300).await);
    wait_until("2 partitions each", Duration::from_secs(60), || {
        ["a", "b", "c"].iter().all(|m| owned(&book, m).len() == 2)
    })
    .await;
    expected.extend(produce(&bs, &topic, parts, "c", 300).await);
    wait_until("batch c processed", Duration::from_secs(60), || {
        processed(&book) >= 900
    })
    .await;
    assert_eq!(b.name, "b");
    b.close().await;
    c.close().await;
    expected.extend(produce(&bs, &topic, parts, "d", 300).await);
    wait_until("a owns all 6 again", Duration::from_secs(60), || {
        owned(&book, "a").len() == 6
    })
    .await;
    wait_until("everything processed", Duration::from_secs(60), || {
        processed(&book) >= expected.len()
    })
    .await;
    a.close().await;
    check(&book, &expected);
    // What was committed is exactly the end of each partition: a new member reads nothing.
    let book2 = SharedBook::default();
    let z = Member::start("z", &cfg, &book2, sub, Duration::ZERO).await;
    wait_until("z owns all 6", Duration::from_secs(60), || {
        owned(&book2, "z").len() == 6
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    z.close().await;
    assert_eq!(processed(&book2), 0, "records read again after the commits");
}

/// A callback much longer than the session timeout: heartbeats go on meanwhile (no fencing,
/// no `on_lost`), and nothing of the partitions is delivered before `on_assigned` returned.
/// A second member joining later gets its partitions only after the first revoked them.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn long_callbacks_keep_the_member_and_gate_delivery() {
    let bs = bootstrap().await;
    let topic = unique("k848-slowcb");
    common::create_topic(&bs, &topic, 4).await;
    let group = unique("g848-slowcb");
    let cfg = member_cfg(&bs, &group);
    let book = SharedBook::default();
    let sub = Sub::Topics(&[topic.as_str()][..]);
    let mut expected = produce(&bs, &topic, 4, "x", 200).await;
    // 2 x the session timeout, 12 x the heartbeat interval.
    let delay = Duration::from_millis(2 * BROKER_SESSION_MS);
    let a = Member::start("a", &cfg, &book, sub, delay).await;
    wait_until("a processed everything", Duration::from_secs(60), || {
        processed(&book) >= 200
    })
    .await;
    let b = Member::start("b", &cfg, &book, sub, delay).await;
    wait_until("2 partitions each", Duration::from_secs(60), || {
        owned(&book, "a").len() == 2 && owned(&book, "b").len() == 2
    })
    .await;
    expected.extend(produce(&bs, &topic, 4, "y", 200).await);
    wait_until("everything processed", Duration::from_secs(60), || {
        processed(&book) >= expected.len()
    })
    .await;
    b.close().await;
    a.close().await;
    {
        let b = book.lock().unwrap();
        let lost: Vec<_> = b.log.iter().filter(|e| matches!(e, Ev::Lost(..))).collect();
        assert!(lost.is_empty(), "fenced during a long callback: {lost:?}");
    }
    check(&book, &expected);
}

/// A static member that closes (epoch -2) and comes back with the same `group.instance.id`
/// gets the same partitions back, and the other member is not disturbed.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn static_member_restart_keeps_its_partitions() {
    let bs = bootstrap().await;
    let topic = unique("k848-static");
    common::create_topic(&bs, &topic, 4).await;
    let group = unique("g848-static");
    // The coordinator keeps a static member's assignment for its session timeout after it
    // left: 3 s could pass before the restarted member joins on a loaded machine, so this
    // group gets 30 s (a group-level config, KIP-848).
    common::alter_configs(
        cluster(),
        "groups",
        &group,
        "consumer.session.timeout.ms=30000",
    )
    .await;
    let book = SharedBook::default();
    let sub = Sub::Topics(&[topic.as_str()][..]);
    let cfg_a = member_cfg(&bs, &group).with("group.instance.id", "ia");
    let cfg_b = member_cfg(&bs, &group).with("group.instance.id", "ib");
    let a = Member::start("a", &cfg_a, &book, sub, Duration::ZERO).await;
    let b = Member::start("b", &cfg_b, &book, sub, Duration::ZERO).await;
    wait_until("2 partitions each", Duration::from_secs(60), || {
        owned(&book, "a").len() == 2 && owned(&book, "b").len() == 2
    })
    .await;
    let before = owned(&book, "a");
    let b_events = book.lock().unwrap().log.len();
    a.close().await;
    let a2 = Member::start("a", &cfg_a, &book, sub, Duration::ZERO).await;
    wait_until("a back", Duration::from_secs(30), || {
        owned(&book, "a").len() == 2
    })
    .await;
    assert_eq!(
        owned(&book, "a"),
        before,
        "the static member got other partitions"
    );
    {
        let log = book.lock().unwrap();
        let b_moves: Vec<_> = log.log[b_events..]
            .iter()
            .filter(|e| {
                matches!(e, Ev::Assigned(m, _) | Ev::Revoked(m, _) | Ev::Lost(m, _) if m == "b")
            })
            .collect();
        assert!(b_moves.is_empty(), "b was rebalanced: {b_moves:?}");
    }
    a2.close().await;
    b.close().await;
}

/// A member dropped without leaving (no heartbeat, no leave) is fenced by the coordinator
/// after the session timeout and its partitions move to the survivor, which reads on from
/// the dead member's last commit (at least once: nothing lost).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn killed_member_is_fenced_and_its_partitions_move() {
    let bs = bootstrap().await;
    let topic = unique("k848-kill");
    common::create_topic(&bs, &topic, 4).await;
    let group = unique("g848-kill");
    let cfg = member_cfg(&bs, &group);
    let book = SharedBook::default();
    let sub = Sub::Topics(&[topic.as_str()][..]);
    let a = Member::start("a", &cfg, &book, sub, Duration::ZERO).await;
    let b = Member::start("b", &cfg, &book, sub, Duration::ZERO).await;
    wait_until("2 partitions each", Duration::from_secs(60), || {
        owned(&book, "a").len() == 2 && owned(&book, "b").len() == 2
    })
    .await;
    let killed_at = Instant::now();
    b.kill().await;
    // The dead member never revoked: its partitions are still in the book under its name.
    // The survivor is assigned them once the coordinator fenced b.
    // (Counting a's Assigned events would not do: a may have owned all 4 before b joined.)
    wait_until("a owns all 4", Duration::from_secs(30), || {
        owned(&book, "a").len() == 4
    })
    .await;
    assert!(
        killed_at.elapsed() >= Duration::from_millis(BROKER_SESSION_MS / 2),
        "moved before the session could expire"
    );
    let expected = produce(&bs, &topic, 4, "k", 200).await;
    wait_until("a processed everything", Duration::from_secs(60), || {
        let c = counts(&book);
        expected.iter().all(|v| c.contains_key(v))
    })
    .await;
    a.close().await;
}

/// A broker-side regex subscription picks up a topic created after the member joined.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn regex_subscription_picks_up_a_new_topic() {
    let bs = bootstrap().await;
    let prefix = unique("k848re");
    let first = format!("{prefix}-one");
    common::create_topic(&bs, &first, 2).await;
    let group = unique("g848-re");
    let cfg = member_cfg(&bs, &group);
    let book = SharedBook::default();
    let regex = format!("{prefix}-.*");
    let a = Member::start("a", &cfg, &book, Sub::Regex(&regex), Duration::ZERO).await;
    wait_until("a owns the first topic", Duration::from_secs(60), || {
        owned(&book, "a").len() == 2
    })
    .await;
    let second = format!("{prefix}-two");
    common::create_topic(&bs, &second, 3).await;
    let mut expected = produce(&bs, &first, 2, "one", 20).await;
    expected.extend(produce(&bs, &second, 3, "two", 30).await);
    wait_until("a owns both topics", Duration::from_secs(60), || {
        owned(&book, "a").len() == 5
    })
    .await;
    wait_until("everything processed", Duration::from_secs(60), || {
        processed(&book) >= expected.len()
    })
    .await;
    a.close().await;
    check(&book, &expected);
}

/// Reads `topic` (all `parts` partitions, from the beginning, read_committed) until `n`
/// records arrived and nothing more comes for 2 s; returns the values.
async fn read_committed(bs: &str, topic: &str, parts: i32, n: usize) -> Vec<String> {
    let c = Consumer::new(&common::config(
        bs,
        &[("isolation.level", "read_committed")],
    ))
    .await
    .unwrap();
    c.assign(
        (0..parts)
            .map(|p| {
                (
                    TopicPartition::new(topic, p),
                    kafka_sdk::consumer::Offset::Beginning,
                )
            })
            .collect(),
    )
    .unwrap();
    let mut out = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let quiet = if out.len() >= n {
            Duration::from_secs(2)
        } else {
            Duration::from_millis(500)
        };
        match tokio::time::timeout(quiet, c.recv()).await {
            Ok(Ok(m)) => out.push(String::from_utf8(m.value().unwrap().to_vec()).unwrap()),
            Ok(Err(e)) => panic!("read_committed: {e}"),
            Err(_) if out.len() >= n => break,
            Err(_) => assert!(Instant::now() < deadline, "read {} of {n}", out.len()),
        }
    }
    c.close().await.unwrap();
    out
}

/// One consume-transform-produce member: transactions of up to 20 records, each with the
/// consumer's offsets (`send_offsets_to_transaction` with the consumer protocol's member id
/// and epoch). With `crash_after`, after that many committed records it starts one more
/// transaction, sends its records, and is dropped without committing (a crash).
async fn pipeline(
    bs: &str,
    group: &str,
    input: &str,
    output: &str,
    crash_after: Option<usize>,
    done: Arc<AtomicBool>,
) -> usize {
    let c = Consumer::new(&member_cfg(bs, group).with("isolation.level", "read_committed"))
        .await
        .unwrap();
    c.subscribe(&[input]).unwrap();
    let p = Producer::new(&common::config(
        bs,
        &[
            ("transactional.id", &format!("{group}-txn")),
            ("linger.ms", "5"),
        ],
    ))
    .await
    .unwrap();
    p.init_transactions().await.unwrap();
    let mut committed = 0;
    while !done.load(Ordering::Relaxed) {
        let mut batch = Vec::new();
        while batch.len() < 20 {
            match tokio::time::timeout(Duration::from_millis(300), c.recv()).await {
                Ok(Ok(m)) => batch.push(m),
                Ok(Err(e)) => panic!("pipeline recv: {e}"),
                Err(_) => break,
            }
        }
        if batch.is_empty() {
            continue;
        }
        p.begin_transaction().unwrap();
        let mut offsets: BTreeMap<TopicPartition, i64> = BTreeMap::new();
        for m in &batch {
            let v = String::from_utf8(m.value().unwrap().to_vec()).unwrap();
            // Delivery is awaited by `commit_transaction`.
            let _delivery = p
                .send(ProducerRecord::new(output).value(format!("out-{v}").into_bytes()))
                .await
                .unwrap();
            offsets.insert(m.topic_partition(), m.offset() + 1);
        }
        if crash_after.is_some_and(|n| committed >= n) {
            // Crash with the transaction open: the records were sent, nothing committed.
            p.flush().await;
            drop(p);
            drop(c);
            return committed;
        }
        let meta = c.group_metadata().unwrap();
        assert!(meta.generation_id > 0, "{meta:?}");
        uuid::Uuid::parse_str(&meta.member_id).expect("member id is a UUID");
        p.send_offsets_to_transaction(offsets, &meta).await.unwrap();
        p.commit_transaction().await.unwrap();
        committed += batch.len();
    }
    c.close().await.unwrap();
    p.close(Duration::from_secs(30)).await.unwrap();
    committed
}

/// Exactly-once consume-transform-produce with the consumer protocol: a pipeline crashes with
/// a transaction open; its successor (same transactional id and group) fences it and goes
/// on from the committed offsets; the output read with read_committed holds every input
/// record exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn exactly_once_pipeline_with_the_consumer_protocol() {
    let bs = bootstrap().await;
    let input = unique("k848-eos-in");
    let output = unique("k848-eos-out");
    common::create_topic(&bs, &input, 3).await;
    common::create_topic(&bs, &output, 3).await;
    let group = unique("g848-eos");
    let n = 300;
    let expected = produce(&bs, &input, 3, "e", n).await;
    let never = Arc::new(AtomicBool::new(false));
    let first = pipeline(&bs, &group, &input, &output, Some(100), never).await;
    assert!(
        first >= 100 && first < n,
        "first pipeline committed {first}"
    );
    let done = Arc::new(AtomicBool::new(false));
    let second = {
        let (bs, group, input, output, done) = (
            bs.clone(),
            group.clone(),
            input.clone(),
            output.clone(),
            done.clone(),
        );
        tokio::spawn(async move { pipeline(&bs, &group, &input, &output, None, done).await })
    };
    let out = read_committed(&bs, &output, 3, n).await;
    done.store(true, Ordering::Relaxed);
    let second = second.await.unwrap();
    assert_eq!(first + second, n, "committed {first} + {second}");
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for v in &out {
        *counts.entry(v.as_str()).or_default() += 1;
    }
    let dups: Vec<_> = counts.iter().filter(|(_, c)| **c > 1).collect();
    assert!(dups.is_empty(), "duplicates in the output: {dups:?}");
    let want: BTreeSet<String> = expected.iter().map(|v| format!("out-{v}")).collect();
    let got: BTreeSet<String> = out.iter().cloned().collect();
    assert_eq!(got, want);
}

/// A mixed group: two kafka-sdk members and Java's console consumer, all with
/// `group.protocol=consumer`: every record is consumed exactly once across both sides.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn mixed_group_with_the_java_console_consumer() {
    use std::io::BufRead;
    let bs = bootstrap().await;
    let topic = unique("k848-mixed");
    let parts = 6;
    common::create_topic(&bs, &topic, parts).await;
    let group = unique("g848-mixed");
    let book = SharedBook::default();
    let sub = Sub::Topics(&[topic.as_str()][..]);
    let cfg = member_cfg(&bs, &group);
    let a = Member::start("a", &cfg, &book, sub, Duration::ZERO).await;
    let b = Member::start("b", &cfg, &book, sub, Duration::ZERO).await;
    wait_until("a and b share the topic", Duration::from_secs(60), || {
        owned(&book, "a").len() == 3 && owned(&book, "b").len() == 3
    })
    .await;
    let mut java = cluster()
        .tool(
            "console-consumer",
            &[
                "--bootstrap-server",
                &bs,
                "--topic",
                &topic,
                "--group",
                &group,
                "--consumer-property",
                "group.protocol=consumer",
                "--consumer-property",
                "auto.offset.reset=earliest",
            ],
        )
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("console consumer");
    let java_seen = Arc::new(Mutex::new(Vec::<String>::new()));
    {
        let out = java.stdout.take().unwrap();
        let js = java_seen.clone();
        std::thread::spawn(move || {
            for l in std::io::BufReader::new(out).lines().map_while(|l| l.ok()) {
                if l.starts_with("m-") {
                    js.lock().unwrap().push(l);
                }
            }
        });
    }
    // Three members, six partitions: the kafka-sdk members give two up to Java.
    wait_until("java joined", Duration::from_secs(60), || {
        owned(&book, "a").len() + owned(&book, "b").len() == 4
    })
    .await;
    let expected = produce(&bs, &topic, parts, "m", 600).await;
    let sdk_values = || -> Vec<String> {
        book.lock()
            .unwrap()
            .log
            .iter()
            .filter_map(|e| match e {
                Ev::Msg(_, _, v) => Some(v.clone()),
                _ => None,
            })
            .collect()
    };
    wait_until(
        "every record read by someone",
        Duration::from_secs(60),
        || sdk_values().len() + java_seen.lock().unwrap().len() >= expected.len(),
    )
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let _ = java.kill();
    let _ = java.wait();
    a.close().await;
    b.close().await;
    let sdk = sdk_values();
    let jv = java_seen.lock().unwrap().clone();
    assert!(!jv.is_empty(), "the Java member read nothing");
    assert!(!sdk.is_empty(), "the kafka-sdk members read nothing");
    let all: Vec<&String> = sdk.iter().chain(jv.iter()).collect();
    let distinct: BTreeSet<&String> = all.iter().copied().collect();
    assert_eq!(all.len(), distinct.len(), "a record read twice");
    let want: BTreeSet<&String> = expected.iter().collect();
    assert_eq!(distinct, want);
}

/// `max.poll.interval.ms` without `recv`: the member gives its partitions up and leaves (the
/// other member gets them); once it polls again it rejoins and gets a share back.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_member_that_stops_polling_leaves_and_rejoins_at_the_next_recv() {
    let bs = bootstrap().await;
    let topic = unique("k848-poll");
    common::create_topic(&bs, &topic, 2).await;
    let group = unique("g848-poll");
    let book = SharedBook::default();
    let sub = Sub::Topics(&[topic.as_str()][..]);
    let a = Member::start("a", &member_cfg(&bs, &group), &book, sub, Duration::ZERO).await;
    let b = Member::start(
        "b",
        &member_cfg(&bs, &group).with("max.poll.interval.ms", "3000"),
        &book,
        sub,
        Duration::ZERO,
    )
    .await;
    wait_until("1 partition each", Duration::from_secs(60), || {
        owned(&book, "a").len() == 1 && owned(&book, "b").len() == 1
    })
    .await;
    // b stops polling (its loop ends; the consumer stays open).
    b.stop.store(true, Ordering::Relaxed);
    let b_consumer = b.task.await.unwrap();
    wait_until("a owns both", Duration::from_secs(30), || {
        owned(&book, "a").len() == 2
    })
    .await;
    assert!(owned(&book, "b").is_empty());
    assert!(b_consumer.group_membership().is_none());
    // b polls again: it rejoins and gets a partition back.
    let deadline = Instant::now() + Duration::from_secs(40);
    while owned(&book, "b").len() != 1 {
        assert!(Instant::now() < deadline, "b did not rejoin");
        let _ = tokio::time::timeout(Duration::from_millis(100), b_consumer.recv()).await;
    }
    b_consumer.close().await.unwrap();
    a.close().await;
    assert!(book.lock().unwrap().violations.is_empty());
}

/// Online upgrade of a classic group (cooperative-sticky) to the consumer protocol by a
/// rolling restart, with manual commits of processed records: every record exactly once,
/// no partition owned twice (the broker's `bidirectional` migration policy, the default).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn online_upgrade_from_classic_by_rolling_restart() {
    let bs = bootstrap().await;
    let topic = unique("k848-upgrade");
    let parts = 4;
    common::create_topic(&bs, &topic, parts).await;
    let group = unique("g848-upgrade");
    let book = SharedBook::default();
    let sub = Sub::Topics(&[topic.as_str()][..]);
    let classic = common::config(
        &bs,
        &[
            ("group.id", &group),
            ("auto.offset.reset", "earliest"),
            ("enable.auto.commit", "false"),
            ("enable.auto.offset.store", "false"),
            ("partition.assignment.strategy", "cooperative-sticky"),
            ("session.timeout.ms", "10000"),
            ("heartbeat.interval.ms", "500"),
        ],
    );
    let consumer = member_cfg(&bs, &group);
    let mut expected = produce(&bs, &topic, parts, "u1", 200).await;
    let a = Member::start("a", &classic, &book, sub, Duration::ZERO).await;
    let b = Member::start("b", &classic, &book, sub, Duration::ZERO).await;
    wait_until("classic: 2 each", Duration::from_secs(60), || {
        owned(&book, "a").len() == 2 && owned(&book, "b").len() == 2
    })
    .await;
    expected.extend(produce(&bs, &topic, parts, "u2", 200).await);
    // Roll a: classic -> consumer protocol.
    a.close().await;
    let a2 = Member::start("a2", &consumer, &book, sub, Duration::ZERO).await;
    wait_until("mixed: 2 each", Duration::from_secs(60), || {
        owned(&book, "a2").len() == 2 && owned(&book, "b").len() == 2
    })
    .await;
    expected.extend(produce(&bs, &topic, parts, "u3", 200).await);
    // Roll b.
    b.close().await;
    let b2 = Member::start("b2", &consumer, &book, sub, Duration::ZERO).await;
    wait_until("upgraded: 2 each", Duration::from_secs(60), || {
        owned(&book, "a2").len() == 2 && owned(&book, "b2").len() == 2
    })
    .await;
    expected.extend(produce(&bs, &topic, parts, "u4", 200).await);
    wait_until("everything processed", Duration::from_secs(60), || {
        processed(&book) >= expected.len()
    })
    .await;
    a2.close().await;
    b2.close().await;
    check(&book, &expected);
}

/// A member the coordinator removes (an admin LeaveGroup naming its `group.instance.id`,
/// as `Admin::removeMembersFromConsumerGroup` sends) finds out at its next heartbeat
/// (UNKNOWN_MEMBER_ID): its partitions are lost (`on_lost`, not `on_revoked`) and it rejoins
/// at epoch 0 with the same member id, gets partitions again and goes on consuming.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_removed_member_loses_its_partitions_and_rejoins() {
    use kafka_protocol::messages::leave_group_request::MemberIdentity;
    use kafka_protocol::messages::{ApiKey, GroupId, LeaveGroupRequest};
    use kafka_protocol::protocol::StrBytes;
    use kafka_sdk::backoff::Deadline;
    use kafka_sdk::cluster::{Cluster, ClusterOptions, CoordinatorKind};

    let bs = bootstrap().await;
    let topic = unique("k848-removed");
    common::create_topic(&bs, &topic, 2).await;
    let group = unique("g848-removed");
    let book = SharedBook::default();
    let sub = Sub::Topics(&[topic.as_str()][..]);
    let cfg = member_cfg(&bs, &group).with("group.instance.id", "ia");
    let a = Member::start("a", &cfg, &book, sub, Duration::ZERO).await;
    wait_until("a owns both", Duration::from_secs(60), || {
        owned(&book, "a").len() == 2
    })
    .await;
    let (_, member_before) = a.handle.group_membership().unwrap();
    let cluster = Cluster::connect(ClusterOptions::new(vec![bs.clone()]))
        .await
        .unwrap();
    let (_, conn) = cluster
        .coordinator(
            CoordinatorKind::Group,
            &group,
            Deadline::after(Duration::from_secs(10)),
        )
        .await
        .unwrap();
    let req = LeaveGroupRequest::default()
        .with_group_id(GroupId(StrBytes::from_string(group.clone())))
        .with_members(vec![MemberIdentity::default()
            .with_member_id(StrBytes::from_static_str(""))
            .with_group_instance_id(Some(StrBytes::from_static_str("ia")))
            .with_reason(Some(StrBytes::from_static_str("removed by the test")))]);
    let version = conn.version_for(ApiKey::LeaveGroup).unwrap();
    let resp = conn
        .send_version(&req, version, Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(resp.error_code, 0, "{resp:?}");
    assert!(resp.members.iter().all(|m| m.error_code == 0), "{resp:?}");
    wait_until("a lost its partitions", Duration::from_secs(30), || {
        book.lock()
            .unwrap()
            .log
            .iter()
            .any(|e| matches!(e, Ev::Lost(m, _) if m == "a"))
    })
    .await;
    wait_until("a owns both again", Duration::from_secs(30), || {
        owned(&book, "a").len() == 2
    })
    .await;
    let (epoch, member_after) = a.handle.group_membership().unwrap();
    assert!(epoch > 0);
    assert_eq!(
        member_after, member_before,
        "the member id changed on rejoin"
    );
    {
        let log = book.lock().unwrap();
        assert!(
            !log.log.iter().any(|e| matches!(e, Ev::Revoked(..))),
            "a removed member's partitions are lost, not revoked: {:?}",
            log.log
        );
    }
    let expected = produce(&bs, &topic, 2, "r", 50).await;
    wait_until(
        "a consumes after rejoining",
        Duration::from_secs(60),
        || {
            let c = counts(&book);
            expected.iter().all(|v| c.contains_key(v))
        },
    )
    .await;
    a.close().await;
}

/// With auto commit, partitions revoked by a reconciliation are committed first (the stored
/// offsets, as classic does): the new owner starts after what the old one delivered, even
/// though the auto-commit interval never elapsed.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn auto_commit_commits_revoked_partitions_before_they_move() {
    let bs = bootstrap().await;
    let topic = unique("k848-autocommit");
    common::create_topic(&bs, &topic, 4).await;
    let group = unique("g848-autocommit");
    produce(&bs, &topic, 4, "old", 100).await;
    let a = Consumer::new(&common::config(
        &bs,
        &[
            ("group.id", &group),
            ("group.protocol", "consumer"),
            ("auto.offset.reset", "earliest"),
            ("auto.commit.interval.ms", "600000"),
        ],
    ))
    .await
    .unwrap();
    a.subscribe(&[&topic]).unwrap();
    let mut got = 0;
    let deadline = Instant::now() + Duration::from_secs(60);
    while got < 100 {
        assert!(Instant::now() < deadline, "a read {got} of 100");
        if let Ok(r) = tokio::time::timeout(Duration::from_millis(200), a.recv()).await {
            r.unwrap();
            got += 1;
        }
    }
    // a keeps polling (it must answer the rebalance) while b joins.
    let stop = Arc::new(AtomicBool::new(false));
    let a_later = Arc::new(Mutex::new(Vec::<String>::new()));
    let poller = {
        let (stop, a_later) = (stop.clone(), a_later.clone());
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                if let Ok(r) = tokio::time::timeout(Duration::from_millis(200), a.recv()).await {
                    let m = r.unwrap();
                    let v = String::from_utf8(m.value().unwrap().to_vec()).unwrap();
                    a_later.lock().unwrap().push(v);
                }
            }
            a
        })
    };
    let book = SharedBook::default();
    let sub = Sub::Topics(&[topic.as_str()][..]);
    let b = Member::start("b", &member_cfg(&bs, &group), &book, sub, Duration::ZERO).await;
    wait_until("b owns 2", Duration::from_secs(60), || {
        owned(&book, "b").len() == 2
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(processed(&book), 0, "b read records a had delivered");
    let expected = produce(&bs, &topic, 4, "new", 40).await;
    wait_until(
        "b reads its share of the new records",
        Duration::from_secs(30),
        || processed(&book) == 20,
    )
    .await;
    wait_until(
        "a reads its share of the new records",
        Duration::from_secs(30),
        || a_later.lock().unwrap().len() == 20,
    )
    .await;
    b.close().await;
    stop.store(true, Ordering::Relaxed);
    let a = poller.await.unwrap();
    a.close().await.unwrap();
    // Between them, a and b read each new record once and no old one again.
    let mut all: Vec<String> = a_later.lock().unwrap().clone();
    all.extend(counts(&book).into_keys());
    all.sort();
    let mut want = expected.clone();
    want.sort();
    assert_eq!(all, want);
}
