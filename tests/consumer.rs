//! Consumer tests against a real broker: `kafka_testkit::shared()` (honours
//! `KAFKA_BOOTSTRAP_SERVERS`), or an owned cluster where a broker is restarted.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{ProduceRequest, TopicName};
use kafka_protocol::protocol::StrBytes;
use kafka_sdk::admin::{AdminClient, NewTopic};
use kafka_sdk::backoff::Deadline;
use kafka_sdk::cluster::{Cluster, ClusterOptions};
use kafka_sdk::config::ClientConfig;
use kafka_sdk::consumer::{
    BoxFuture, CommitMode, Consumer, ConsumerHandle, Message, Offset, RebalanceListener,
};
use kafka_sdk::record::{BatchBuilder, BatchParams, Compression};
use kafka_sdk::{Error, KafkaCode, TopicPartition};

use support::common::{self, unique};

fn bootstrap() -> String {
    kafka_testkit::shared().bootstrap()
}

async fn admin() -> AdminClient {
    AdminClient::new(&common::config(&bootstrap(), &[]))
        .await
        .expect("admin connect")
}

async fn create_topic(name: &str, partitions: i32) {
    admin()
        .await
        .create_topics(vec![NewTopic::new(name, partitions, 1)])
        .await
        .expect("create topic");
}

/// Wall-clock time in milliseconds since the epoch (record timestamps).
fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// One produced record: key, value, headers.
type Rec = (
    Option<Vec<u8>>,
    Option<Vec<u8>>,
    Vec<(String, Option<Vec<u8>>)>,
);

/// Produces `records` to one partition as one batch (acks=all) with a raw ProduceRequest,
/// retrying while the new topic's leader settles.
async fn produce(topic: &str, partition: i32, records: &[Rec], compression: Compression) {
    produce_at(&bootstrap(), topic, partition, records, compression).await
}

/// [`produce`] to the cluster at `bs`.
async fn produce_at(
    bs: &str,
    topic: &str,
    partition: i32,
    records: &[Rec],
    compression: Compression,
) {
    thread_local! {
        static CLUSTERS: std::cell::RefCell<BTreeMap<String, Cluster>> =
            const { std::cell::RefCell::new(BTreeMap::new()) };
    }
    let cached = CLUSTERS.with(|a| a.borrow().get(bs).cloned());
    let cluster = match cached {
        Some(c) => c,
        None => {
            let c = Cluster::connect(ClusterOptions::new(vec![bs.to_string()]))
                .await
                .expect("cluster connect");
            CLUSTERS.with(|m| m.borrow_mut().insert(bs.to_string(), c.clone()));
            c
        }
    };
    let now = now_ms();
    let mut b = BatchBuilder::new(now, 1024);
    for (k, v, h) in records {
        let hs: Vec<(&str, Option<&[u8]>)> =
            h.iter().map(|(k, v)| (k.as_str(), v.as_deref())).collect();
        b.append(now, k.as_deref(), v.as_deref(), &hs);
    }
    let batch = b
        .seal(&BatchParams {
            compression,
            ..BatchParams::default()
        })
        .expect("seal");
    let req = ProduceRequest::default()
        .with_acks(-1)
        .with_timeout_ms(10_000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(TopicName(StrBytes::from_string(topic.to_string())))
            .with_partition_data(vec![PartitionProduceData::default()
                .with_index(partition)
                .with_records(Some(batch))])]);
    let mut last = None;
    for _ in 0..50 {
        let r = async {
            let (_, conn) = cluster
                .leader(topic, partition, Deadline::after(Duration::from_secs(10)))
                .await?;
            let resp = conn.send(&req).await?;
            for t in resp.responses {
                for p in t.partition_responses {
                    if p.error_code != 0 {
                        return Err(Error::broker(KafkaCode(p.error_code), "produce"));
                    }
                }
            }
            Ok::<_, Error>(())
        }
        .await;
        match r {
            Ok(()) => return,
            Err(e) => {
                last = Some(e);
                let _ = cluster.refresh().await;
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
    panic!("produce to {topic}-{partition} failed: {last:?}");
}

/// Records `k{i}` / `v{i}` (no headers) for `i` in `from..from + n`.
fn recs(from: usize, n: usize) -> Vec<Rec> {
    (from..from + n)
        .map(|i| {
            (
                Some(format!("k{i}").into_bytes()),
                Some(format!("v{i}").into_bytes()),
                vec![],
            )
        })
        .collect()
}

/// A new topic named after `prefix` with `partitions` partitions, each holding `records`
/// records `k{i}` / `v{i}` (offsets 0..`records`).
async fn filled_topic(prefix: &str, partitions: i32, records: usize) -> String {
    let topic = unique(prefix);
    create_topic(&topic, partitions).await;
    for p in 0..partitions {
        produce_n(&topic, p, 0, records).await;
    }
    topic
}

/// Produces `n` simple records `k{i}` / `v{i}` to one partition, in batches of 100.
async fn produce_n(topic: &str, partition: i32, from: usize, n: usize) {
    let mut i = from;
    while i < from + n {
        let end = (i + 100).min(from + n);
        produce(topic, partition, &recs(i, end - i), Compression::None).await;
        i = end;
    }
}

fn config(group: Option<&str>) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", bootstrap())
        .set("auto.offset.reset", "earliest");
    if let Some(g) = group {
        c.set("group.id", g);
    }
    c
}

async fn recv_n(c: &Consumer, n: usize, within: Duration) -> Vec<Message> {
    let mut out = Vec::new();
    let deadline = tokio::time::Instant::now() + within;
    while out.len() < n {
        match tokio::time::timeout_at(deadline, c.recv()).await {
            Ok(Ok(m)) => out.push(m),
            Ok(Err(e)) => panic!("recv error after {} messages: {e}", out.len()),
            Err(_) => panic!("timed out after {} of {n} messages", out.len()),
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn assign_fetch_commit() {
    let topic = unique("c-assign");
    create_topic(&topic, 2).await;
    produce_n(&topic, 0, 0, 250).await;
    produce_n(&topic, 1, 0, 50).await;
    let group = unique("g-assign");
    let c = Consumer::new(&config(Some(&group)).with("enable.auto.commit", "false"))
        .await
        .unwrap();
    let tp0 = TopicPartition::new(topic.as_str(), 0);
    let tp1 = TopicPartition::new(topic.as_str(), 1);
    c.assign(vec![
        (tp0.clone(), Offset::Beginning),
        (tp1.clone(), Offset::Offset(10)),
    ])
    .unwrap();
    let msgs = recv_n(&c, 290, Duration::from_secs(20)).await;
    let mut next: BTreeMap<i32, i64> = BTreeMap::from([(0, 0), (1, 10)]);
    for m in &msgs {
        let e = next.get_mut(&m.partition()).unwrap();
        assert_eq!(m.offset(), *e, "in order, no gaps");
        *e += 1;
        assert_eq!(
            m.key().unwrap().as_ref(),
            format!("k{}", m.offset()).as_bytes()
        );
        assert_eq!(
            m.value().unwrap().as_ref(),
            format!("v{}", m.offset()).as_bytes()
        );
    }
    assert_eq!(c.position_of(&tp0).unwrap(), Some(250));
    c.commit(CommitMode::Sync).await.unwrap();
    let committed = c.committed(None, Duration::from_secs(10)).await.unwrap();
    assert_eq!(
        committed,
        vec![(tp0.clone(), Some(250)), (tp1.clone(), Some(50))]
    );
    c.close().await.unwrap();

    // A new consumer with Offset::Stored resumes from the commit.
    let c = Consumer::new(&config(Some(&group))).await.unwrap();
    c.assign(vec![(tp0.clone(), Offset::Stored)]).unwrap();
    produce_n(&topic, 0, 250, 5).await;
    let msgs = recv_n(&c, 5, Duration::from_secs(20)).await;
    assert_eq!(msgs[0].offset(), 250);
    c.close().await.unwrap();
}

/// What listener calls happened, per member, plus a global owner table that detects a
/// partition owned by two members at once.
#[derive(Default)]
struct Book {
    owner: BTreeMap<TopicPartition, String>,
    violations: Vec<String>,
    events: Vec<(String, &'static str, Vec<TopicPartition>)>,
}

struct Recorder {
    name: String,
    book: Arc<Mutex<Book>>,
}

impl Recorder {
    fn new(name: &str, book: &Arc<Mutex<Book>>) -> Arc<Recorder> {
        Arc::new(Recorder {
            name: name.to_string(),
            book: book.clone(),
        })
    }

    /// Records that this member no longer owns `partitions` (`kind`: revoked or lost).
    fn give_up(&self, partitions: &[TopicPartition], kind: &'static str) {
        let mut b = self.book.lock().unwrap();
        for tp in partitions {
            if b.owner.get(tp) == Some(&self.name) {
                b.owner.remove(tp);
            }
        }
        b.events
            .push((self.name.clone(), kind, partitions.to_vec()));
    }
}

impl RebalanceListener for Recorder {
    fn on_assigned<'a>(
        &'a self,
        _c: &'a ConsumerHandle,
        partitions: &'a [TopicPartition],
    ) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            let mut b = self.book.lock().unwrap();
            for tp in partitions {
                if let Some(o) = b.owner.get(tp) {
                    if o != &self.name {
                        let v = format!("{tp} assigned to {} while owned by {o}", self.name);
                        b.violations.push(v);
                    }
                }
                b.owner.insert(tp.clone(), self.name.clone());
            }
            b.events
                .push((self.name.clone(), "assigned", partitions.to_vec()));
        })
    }

    fn on_revoked<'a>(
        &'a self,
        c: &'a ConsumerHandle,
        partitions: &'a [TopicPartition],
    ) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            // Commit what was processed before giving the partitions up.
            let _ = c.commit(CommitMode::Sync).await;
            self.give_up(partitions, "revoked");
        })
    }

    fn on_lost<'a>(
        &'a self,
        _c: &'a ConsumerHandle,
        partitions: &'a [TopicPartition],
    ) -> BoxFuture<'a, ()> {
        Box::pin(async move { self.give_up(partitions, "lost") })
    }
}

/// A new, empty book for a test's members.
fn new_book() -> Arc<Mutex<Book>> {
    Arc::new(Mutex::new(Book::default()))
}

/// How many partitions `name` owns according to `book`.
fn owned_by(book: &Arc<Mutex<Book>>, name: &str) -> usize {
    book.lock()
        .unwrap()
        .owner
        .values()
        .filter(|o| *o == name)
        .count()
}

/// Fails the test if `book` saw a partition assigned to a member while another owned it.
fn assert_no_violations(book: &Arc<Mutex<Book>>) {
    let b = book.lock().unwrap();
    assert!(
        b.violations.is_empty(),
        "ownership violations: {:?}",
        b.violations
    );
}

/// A group member: a consumer built from `cfg` whose [`Recorder`] named `name` writes to
/// `book`, subscribed to `topic`.
async fn join(cfg: &ClientConfig, name: &str, book: &Arc<Mutex<Book>>, topic: &str) -> Consumer {
    let c = Consumer::builder(cfg)
        .rebalance_listener(Recorder::new(name, book))
        .build()
        .await
        .unwrap();
    c.subscribe(&[topic]).unwrap();
    c
}

/// The partitions 0..`n` of `topic`.
fn partitions(topic: &str, n: i32) -> Vec<TopicPartition> {
    (0..n).map(|p| TopicPartition::new(topic, p)).collect()
}

/// Assigns `c` partitions 0..`n` of `topic`, each from its beginning.
fn assign_from_beginning(c: &Consumer, topic: &str, n: i32) {
    c.assign(
        partitions(topic, n)
            .into_iter()
            .map(|tp| (tp, Offset::Beginning))
            .collect(),
    )
    .unwrap();
}

/// Asserts that `c`'s group committed `expect` for every partition 0..`n` of `topic`.
async fn assert_all_committed(c: &Consumer, topic: &str, n: i32, expect: i64) {
    let committed = c
        .committed(Some(&partitions(topic, n)), Duration::from_secs(10))
        .await
        .unwrap();
    assert!(
        committed.iter().all(|(_, o)| *o == Some(expect)),
        "{committed:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribe_single_member_auto_commit() {
    let topic = filled_topic("c-sub1", 3, 20).await;
    let group = unique("g-sub1");
    let book = new_book();
    let cfg = config(Some(&group))
        .with("auto.commit.interval.ms", "200")
        .with("partition.assignment.strategy", "cooperative-sticky");
    let c = join(&cfg, "a", &book, &topic).await;
    let msgs = recv_n(&c, 60, Duration::from_secs(30)).await;
    let set: BTreeSet<(i32, i64)> = msgs.iter().map(|m| (m.partition(), m.offset())).collect();
    assert_eq!(set.len(), 60);
    assert_eq!(c.assignment().len(), 3);
    assert!(c.group_membership().is_some());
    c.close().await.unwrap();
    assert_no_violations(&book);
    {
        let b = book.lock().unwrap();
        assert_eq!(b.events.first().map(|e| e.1), Some("assigned"));
        assert_eq!(
            b.events.last().map(|e| e.1),
            Some("revoked"),
            "{:?}",
            b.events
        );
    }
    // The close committed everything delivered.
    let admin = Consumer::new(&config(Some(&group))).await.unwrap();
    assert_all_committed(&admin, &topic, 3, 20).await;
}

/// A member's receive loop, running in a task until [`Member::stop`].
struct Member {
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<Consumer>,
}

impl Member {
    /// Runs `c.recv()` (200 ms at a time) in a task and hands every result to `on_recv`.
    fn run(
        c: Consumer,
        mut on_recv: impl FnMut(Result<Message, Error>) + Send + 'static,
    ) -> Member {
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let task = tokio::spawn(async move {
            while !stopped.load(Ordering::Relaxed) {
                if let Ok(r) = tokio::time::timeout(Duration::from_millis(200), c.recv()).await {
                    on_recv(r);
                }
            }
            c
        });
        Member { stop, task }
    }

    /// Records each received (partition, offset) in `seen` as processed; a recv error fails
    /// the test.
    fn spawn(c: Consumer, seen: Arc<Mutex<BTreeSet<(i32, i64)>>>) -> Member {
        Member::run(c, move |r| match r {
            Ok(m) => {
                seen.lock().unwrap().insert((m.partition(), m.offset()));
            }
            Err(e) => panic!("member recv error: {e}"),
        })
    }

    /// Ends the loop and returns the consumer (still open).
    async fn stop(self) -> Consumer {
        self.stop.store(true, Ordering::Relaxed);
        self.task.await.unwrap()
    }
}

async fn wait_until(what: &str, within: Duration, mut f: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + within;
    while !f() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Polls `c` (`recv` for 100 ms at a time, results dropped) until `done`; panics with `what`
/// after `within`.
async fn poll_until(c: &Consumer, what: &str, within: Duration, mut done: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + within;
    while !done() {
        assert!(tokio::time::Instant::now() < deadline, "{what}");
        let _ = tokio::time::timeout(Duration::from_millis(100), c.recv()).await;
    }
}

fn group_cfg(group: &str) -> ClientConfig {
    config(Some(group))
        .with("partition.assignment.strategy", "cooperative-sticky")
        .with("session.timeout.ms", "6000")
        .with("heartbeat.interval.ms", "500")
        .with("max.poll.interval.ms", "10000")
        .with("auto.commit.interval.ms", "500")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cooperative_three_members_join_and_leave() {
    let topic = unique("c-coop");
    let parts = 6;
    create_topic(&topic, parts).await;
    let group = unique("g-coop");
    let book = new_book();
    let seen = Arc::new(Mutex::new(BTreeSet::new()));
    let produced = Arc::new(AtomicU64::new(0));

    // Records keep flowing during the whole test.
    let stop_producing = Arc::new(AtomicBool::new(false));
    let producer = {
        let (topic, stop, produced) = (topic.clone(), stop_producing.clone(), produced.clone());
        tokio::spawn(async move {
            let mut round = 0usize;
            while !stop.load(Ordering::Relaxed) {
                for p in 0..parts {
                    produce_n(&topic, p, round * 10, 10).await;
                }
                produced.fetch_add(10 * parts as u64, Ordering::Relaxed);
                round += 1;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            round * 10
        })
    };

    let mut members = Vec::new();
    for name in ["a", "b", "c"] {
        let c = join(&group_cfg(&group), name, &book, &topic).await;
        members.push((name, Member::spawn(c, seen.clone())));
        // Wait until this member owns something (the group settled with it).
        wait_until("member owns partitions", Duration::from_secs(40), || {
            book.lock().unwrap().owner.values().any(|o| o == name)
        })
        .await;
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    wait_until(
        "all partitions owned by 3 members",
        Duration::from_secs(30),
        || {
            let b = book.lock().unwrap();
            b.owner.len() == parts as usize && b.owner.values().collect::<BTreeSet<_>>().len() == 3
        },
    )
    .await;
    // Leave one by one (c, then b); a ends up with everything.
    while members.len() > 1 {
        let (_, member) = members.pop().unwrap();
        member.stop().await.close().await.unwrap();
        let rest: Vec<&str> = members.iter().map(|m| m.0).collect();
        wait_until(
            "partitions moved to the remaining members",
            Duration::from_secs(40),
            || {
                let b = book.lock().unwrap();
                b.owner.len() == parts as usize
                    && b.owner.values().all(|o| rest.contains(&o.as_str()))
            },
        )
        .await;
    }
    stop_producing.store(true, Ordering::Relaxed);
    let per_partition = producer.await.unwrap() as i64;
    // Every record is processed.
    wait_until("every record processed", Duration::from_secs(40), || {
        seen.lock().unwrap().len() as i64 == per_partition * parts as i64
    })
    .await;
    let (_, last) = members.pop().unwrap();
    last.stop().await.close().await.unwrap();

    assert_no_violations(&book);
    let b = book.lock().unwrap();
    // Cooperative: a revocation (other than the final close of a member) only ever names
    // partitions that then moved to another member.
    let events = b.events.clone();
    for e in &events {
        eprintln!("listener: {e:?}");
    }
    for (i, (who, kind, tps)) in events.iter().enumerate() {
        if *kind == "lost" {
            panic!("{who} lost partitions {tps:?} in an orderly test");
        }
        if *kind != "revoked" {
            continue;
        }
        let closing = !events[i + 1..].iter().any(|e| &e.0 == who);
        if closing {
            continue;
        }
        for tp in tps {
            let moved = events[i + 1..]
                .iter()
                .any(|(w, k, t)| w != who && *k == "assigned" && t.contains(tp));
            assert!(moved, "{who} revoked {tp} which did not move: {events:?}");
        }
    }
}

/// Writes `lines` with the Java console producer (keys and headers parsed).
fn console_produce(topic: &str, codec: &str, lines: &[String]) {
    use std::io::Write;
    let bs = bootstrap();
    let mut child = kafka_testkit::shared()
        .tool(
            "console-producer",
            &[
                "--bootstrap-server",
                &bs,
                "--topic",
                topic,
                "--compression-codec",
                codec,
                "--property",
                "parse.key=true",
                "--property",
                "parse.headers=true",
                "--producer-property",
                "linger.ms=50",
            ],
        )
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("console producer");
    {
        let mut stdin = child.stdin.take().unwrap();
        for l in lines {
            writeln!(stdin, "{l}").unwrap();
        }
    }
    let st = child.wait().unwrap();
    assert!(st.success(), "console producer failed for {codec}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumes_java_console_producer_all_codecs() {
    let codecs = ["none", "gzip", "snappy", "lz4", "zstd"];
    let mut topics = Vec::new();
    for codec in codecs {
        let t = unique(&format!("c-java-{codec}"));
        create_topic(&t, 1).await;
        topics.push(t);
    }
    let n = 300;
    let lines: Vec<String> = (0..n)
        .map(|i| format!("h{i}:hv{i},x:y\tkey-{i}\tvalue-{i}-{}", "z".repeat(i % 50)))
        .collect();
    let jobs: Vec<_> = codecs
        .iter()
        .zip(&topics)
        .map(|(codec, t)| {
            let (codec, t, lines) = (codec.to_string(), t.clone(), lines.clone());
            tokio::task::spawn_blocking(move || console_produce(&t, &codec, &lines))
        })
        .collect();
    for j in jobs {
        j.await.unwrap();
    }
    for (codec, topic) in codecs.iter().zip(&topics) {
        let c = Consumer::new(&config(None)).await.unwrap();
        c.assign(vec![(
            TopicPartition::new(topic.as_str(), 0),
            Offset::Beginning,
        )])
        .unwrap();
        let msgs = recv_n(&c, n, Duration::from_secs(30)).await;
        for (i, m) in msgs.iter().enumerate() {
            assert_eq!(m.offset(), i as i64, "{codec}");
            assert_eq!(
                m.key().unwrap().as_ref(),
                format!("key-{i}").as_bytes(),
                "{codec}"
            );
            let v = format!("value-{i}-{}", "z".repeat(i % 50));
            assert_eq!(m.value().unwrap().as_ref(), v.as_bytes(), "{codec}");
            assert_eq!(m.headers().len(), 2, "{codec}");
            assert_eq!(m.headers()[0].key.as_ref(), format!("h{i}").as_bytes());
            assert_eq!(
                m.header(&format!("h{i}")),
                Some(Some(&Bytes::from(format!("hv{i}"))))
            );
            assert_eq!(m.header("x"), Some(Some(&Bytes::from_static(b"y"))));
            assert!(m.timestamp() > 0);
        }
        let w = c
            .fetch_watermarks(
                &TopicPartition::new(topic.as_str(), 0),
                Duration::from_secs(10),
            )
            .await
            .unwrap();
        assert_eq!((w.low, w.high), (0, n as i64), "{codec}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seek_pause_resume_times_watermarks() {
    let topic = unique("c-seek");
    create_topic(&topic, 2).await;
    let t0 = now_ms();
    produce_n(&topic, 0, 0, 100).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    let t1 = now_ms();
    produce_n(&topic, 0, 100, 100).await;
    produce_n(&topic, 1, 0, 10).await;
    let tp0 = TopicPartition::new(topic.as_str(), 0);
    let tp1 = TopicPartition::new(topic.as_str(), 1);
    let c = Consumer::new(&config(None)).await.unwrap();

    // Watermarks and offsets for times.
    let w = c
        .fetch_watermarks(&tp0, Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!((w.low, w.high), (0, 200));
    let times = c
        .offsets_for_times(
            vec![
                (tp0.clone(), t0 - 1000),
                (tp0.clone().clone(), t1),
                (tp1.clone(), t1 + 3_600_000),
            ],
            Duration::from_secs(10),
        )
        .await
        .unwrap();
    assert_eq!(times[0], (tp0.clone(), Some(0)));
    assert_eq!(times[1].1, Some(100), "first record at or after t1");
    assert_eq!(
        times[2],
        (tp1.clone(), None),
        "nothing after the future time"
    );

    // Tail, absolute and timestamp starts.
    c.assign(vec![
        (tp0.clone(), Offset::OffsetTail(5)),
        (tp1.clone(), Offset::Offset(7)),
    ])
    .unwrap();
    let msgs = recv_n(&c, 8, Duration::from_secs(20)).await;
    let mut got: Vec<(i32, i64)> = msgs.iter().map(|m| (m.partition(), m.offset())).collect();
    got.sort();
    assert_eq!(
        got,
        vec![
            (0, 195),
            (0, 196),
            (0, 197),
            (0, 198),
            (0, 199),
            (1, 7),
            (1, 8),
            (1, 9)
        ]
    );

    // Seek back, within the buffer-dropping path.
    c.seek(&tp0, Offset::Offset(10)).unwrap();
    let m = recv_n(&c, 1, Duration::from_secs(10)).await;
    assert_eq!((m[0].partition(), m[0].offset()), (0, 10));
    c.seek(&tp0, Offset::Timestamp(t1)).unwrap();
    let m = recv_n(&c, 1, Duration::from_secs(10)).await;
    assert_eq!(m[0].offset(), 100);
    assert_eq!(c.position_of(&tp0).unwrap(), Some(101));

    // Pause: nothing from tp0 until resumed.
    c.pause(std::slice::from_ref(&tp0)).unwrap();
    assert_eq!(c.paused(), vec![tp0.clone()]);
    produce_n(&topic, 1, 10, 3).await;
    let msgs = recv_n(&c, 3, Duration::from_secs(10)).await;
    assert!(msgs.iter().all(|m| m.partition() == 1));
    assert!(
        tokio::time::timeout(Duration::from_millis(700), c.recv())
            .await
            .is_err(),
        "paused partition delivered"
    );
    c.resume(std::slice::from_ref(&tp0)).unwrap();
    let m = recv_n(&c, 1, Duration::from_secs(10)).await;
    assert_eq!((m[0].partition(), m[0].offset()), (0, 101));

    // Seek past the end with auto.offset.reset=earliest: reset to the beginning.
    c.seek(&tp0, Offset::Offset(10_000)).unwrap();
    let m = recv_n(&c, 1, Duration::from_secs(10)).await;
    assert_eq!(m[0].offset(), 0);

    // recv_batch and the stream.
    let batch = c.recv_batch(50, Duration::from_secs(5)).await.unwrap();
    assert!(!batch.is_empty() && batch.len() <= 50);
    use futures_util::StreamExt;
    let mut s = c.stream();
    let next = s.next().await.unwrap().unwrap();
    assert_eq!(next.partition(), 0);
    c.close().await.unwrap();
}

/// KIP-1106 (Java 4.0+): `auto.offset.reset=by_duration:<ISO-8601 duration>` starts a
/// partition without a committed offset at its first record at most that old (ListOffsets by
/// timestamp), and at the end when every record is older; a position out of range resets
/// the same way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_offset_reset_by_duration_starts_at_the_first_record_that_recent() {
    use kafka_sdk::producer::{Producer, ProducerRecord};
    let topic = unique("c-by-duration");
    create_topic(&topic, 1).await;
    let p = Producer::new(&common::config(&bootstrap(), &[]))
        .await
        .unwrap();
    let now = now_ms();
    const MIN: i64 = 60_000;
    // Offsets 0-2 three hours old, 3-5 thirty minutes old, 6-7 new.
    for (i, age) in [180, 180, 180, 30, 30, 30, 0, 0].into_iter().enumerate() {
        let r = ProducerRecord::new(topic.as_str())
            .partition(0)
            .value(format!("v{i}"))
            .timestamp(now - age * MIN);
        p.send(r).await.unwrap().await.unwrap();
    }
    let tp0 = TopicPartition::new(topic.as_str(), 0);
    let start = |policy: &'static str| {
        let tp0 = tp0.clone();
        async move {
            let c = Consumer::new(
                &config(Some(&unique("g-by-duration"))).with("auto.offset.reset", policy),
            )
            .await
            .unwrap();
            c.assign(vec![(tp0, Offset::Stored)]).unwrap();
            c
        }
    };
    for (policy, first) in [
        ("by_duration:PT1H", 3),
        ("by_duration:P1D", 0),
        ("by_duration:PT10M", 6),
    ] {
        let c = start(policy).await;
        let m = recv_n(&c, 1, Duration::from_secs(15)).await;
        assert_eq!(m[0].offset(), first, "{policy}");
        if first == 3 {
            // Out of range: the same policy picks the position again.
            c.seek(&tp0, Offset::Offset(10_000)).unwrap();
            let m = recv_n(&c, 1, Duration::from_secs(15)).await;
            assert_eq!(m[0].offset(), 3, "{policy} after OFFSET_OUT_OF_RANGE");
        }
        c.close().await.unwrap();
    }
    // Every record older than the duration: the end, then what comes next.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let c = start("by_duration:PT1S").await;
    wait_until("the position is set", Duration::from_secs(15), || {
        c.position_of(&tp0).ok().flatten().is_some()
    })
    .await;
    assert_eq!(c.position_of(&tp0).unwrap(), Some(8));
    p.send(ProducerRecord::new(topic.as_str()).partition(0).value("v8"))
        .await
        .unwrap()
        .await
        .unwrap();
    let m = recv_n(&c, 1, Duration::from_secs(15)).await;
    assert_eq!(m[0].offset(), 8);
    c.close().await.unwrap();
}

/// A group subscribed to a topic that does not exist yet (auto-creation off: services are
/// often deployed before their topics) reads it within seconds of its creation, not after
/// `metadata.max.age.ms` (5 minutes): while a subscribed topic is missing, its metadata is
/// asked again with backoff up to `retry.backoff.max.ms`, as Java's consumer does. Both
/// group protocols.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscribed_topic_created_later_is_read_within_seconds() {
    for protocol in ["classic", "consumer"] {
        let topic = unique("created-later");
        let mut cfg = config(Some(&unique("g-created-later")));
        cfg.set("group.protocol", protocol)
            .set("allow.auto.create.topics", "false");
        let c = Consumer::new(&cfg).await.unwrap();
        c.subscribe(&[topic.as_str()]).unwrap();
        assert!(
            tokio::time::timeout(Duration::from_secs(2), c.recv())
                .await
                .is_err(),
            "{protocol}: nothing before the topic exists"
        );
        create_topic(&topic, 1).await;
        produce_n(&topic, 0, 0, 1).await;
        let started = tokio::time::Instant::now();
        let m = recv_n(&c, 1, Duration::from_secs(60)).await;
        assert_eq!((m[0].topic(), m[0].offset()), (topic.as_str(), 0));
        let took = started.elapsed();
        assert!(
            took < Duration::from_secs(15),
            "{protocol}: the new topic was read {took:?} after its creation"
        );
        c.close().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gives_typed_errors() {
    let topic = unique("c-bad");
    create_topic(&topic, 1).await;
    let tp = TopicPartition::new(topic.as_str(), 0);
    let c = Consumer::new(&config(Some(&unique("g-bad"))))
        .await
        .unwrap();
    // Not assigned: a typed error (Java: IllegalStateException).
    assert!(matches!(
        c.seek(&tp, Offset::Beginning),
        Err(Error::NotAssigned(ref t)) if *t == tp
    ));
    assert!(matches!(
        c.commit_offsets([(tp.clone(), 1)], CommitMode::Sync).await,
        Err(Error::NotAssigned(_))
    ));
    assert!(matches!(
        c.pause(std::slice::from_ref(&tp)),
        Err(Error::NotAssigned(_))
    ));
    assert!(matches!(c.position_of(&tp), Err(Error::NotAssigned(_))));
    assert!(matches!(c.store_offset(&tp, 1), Err(Error::NotAssigned(_))));
    assert!(matches!(
        c.subscribe(&["bad topic"]),
        Err(Error::InvalidArgument(_))
    ));
    assert!(matches!(
        c.subscribe_regex("(("),
        Err(Error::InvalidArgument(_))
    ));
    c.assign(vec![(tp.clone(), Offset::Beginning)]).unwrap();
    assert!(matches!(
        c.seek(&tp, Offset::Offset(-5)),
        Err(Error::InvalidArgument(_))
    ));
    // Subscribe while assigned manually.
    assert!(matches!(c.subscribe(&[&topic]), Err(Error::State(_))));
    // Unknown topic (auto creation off): an error from recv, bounded.
    let cfg = config(None)
        .with("allow.auto.create.topics", "false")
        .with("request.timeout.ms", "3000");
    let c2 = Consumer::new(&cfg).await.unwrap();
    c2.assign(vec![(
        TopicPartition::new(unique("c-missing").as_str(), 0),
        Offset::Beginning,
    )])
    .unwrap();
    let e = tokio::time::timeout(Duration::from_secs(20), c2.recv())
        .await
        .expect("bounded")
        .unwrap_err();
    assert!(matches!(e, Error::UnknownTopicOrPartition(_)), "{e:?}");
    // Out of range with auto.offset.reset=none: OFFSET_OUT_OF_RANGE from recv.
    produce_n(&topic, 0, 0, 3).await;
    let c3 = Consumer::new(&config(None).with("auto.offset.reset", "none"))
        .await
        .unwrap();
    c3.assign(vec![(tp.clone(), Offset::Offset(50))]).unwrap();
    let e = tokio::time::timeout(Duration::from_secs(20), c3.recv())
        .await
        .expect("bounded")
        .unwrap_err();
    assert_eq!(e.code(), Some(KafkaCode::OFFSET_OUT_OF_RANGE), "{e:?}");
    // Commit without group.id.
    assert!(matches!(
        c3.commit(CommitMode::Sync).await,
        Err(Error::Config(_))
    ));
    // Invalid group id is refused by config; a broker-invalid one surfaces from recv.
    assert!(ClientConfig::new()
        .with("bootstrap.servers", bootstrap())
        .with("group.id", "")
        .consumer()
        .is_err());
    // Closed consumer.
    c3.close().await.unwrap();
    let h = c.handle();
    drop(c);
    assert!(matches!(h.seek(&tp, Offset::Beginning), Err(Error::Closed)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn at_least_once_with_a_killed_member() {
    let topic = filled_topic("c-kill", 4, 100).await;
    let group = unique("g-kill");
    let book = new_book();
    let processed = Arc::new(Mutex::new(BTreeSet::new()));
    let cfg = group_cfg(&group).with("enable.auto.commit", "false");

    // Processes one record, then commits it (at-least-once).
    async fn work(c: &Consumer, processed: &Arc<Mutex<BTreeSet<(i32, i64)>>>) -> bool {
        match tokio::time::timeout(Duration::from_millis(200), c.recv()).await {
            Ok(Ok(m)) => {
                processed
                    .lock()
                    .unwrap()
                    .insert((m.partition(), m.offset()));
                // Commit failures during a rebalance are fine: the record is redelivered.
                let _ = c.commit_message(&m, CommitMode::Sync).await;
                true
            }
            Ok(Err(e)) => panic!("recv: {e}"),
            Err(_) => false,
        }
    }

    let a = join(&cfg, "a", &book, &topic).await;
    let b = join(&cfg, "b", &book, &topic).await;
    // Wait until both own partitions. Membership runs without `recv`, so nothing is
    // consumed (and left unrecorded) while the group settles.
    wait_until(
        "the group to settle (both members own partitions)",
        Duration::from_secs(40),
        || owned_by(&book, "a") > 0 && owned_by(&book, "b") > 0,
    )
    .await;
    // A processes a few records, then dies without leaving the group.
    for _ in 0..20 {
        work(&a, &processed).await;
    }
    drop(a);
    // B takes everything over after the session timeout and processes the rest.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while processed.lock().unwrap().len() < 400 {
        if tokio::time::Instant::now() >= deadline {
            let done = processed.lock().unwrap().clone();
            let missing: Vec<(i32, i64)> = (0..4)
                .flat_map(|p| (0..100).map(move |o| (p, o)))
                .filter(|k| !done.contains(k))
                .collect();
            let positions = b.position();
            panic!(
                "B did not finish: {} processed; missing {missing:?}; B owns {positions:?}",
                done.len()
            );
        }
        work(&b, &processed).await;
    }
    assert_eq!(owned_by(&book, "b"), 4);
    b.close().await.unwrap();
    // Every committed offset was processed: each partition is committed at its end.
    let c = Consumer::new(&cfg).await.unwrap();
    assert_all_committed(&c, &topic, 4, 100).await;
    // A clean restart resumes from the committed offsets.
    c.subscribe(&[&topic]).unwrap();
    for p in 0..4 {
        produce_n(&topic, p, 100, 5).await;
    }
    let msgs = recv_n(&c, 20, Duration::from_secs(40)).await;
    assert!(
        msgs.iter().all(|m| m.offset() >= 100),
        "redelivered committed records"
    );
    c.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn static_member_restart_does_not_rebalance() {
    let topic = unique("c-static");
    create_topic(&topic, 4).await;
    let group = unique("g-static");
    let book = new_book();
    let seen = Arc::new(Mutex::new(BTreeSet::new()));
    let cfg_a = group_cfg(&group).with("group.instance.id", "static-a");
    let a = Member::spawn(join(&cfg_a, "a", &book, &topic).await, seen.clone());
    let b = Member::spawn(
        join(&group_cfg(&group), "b", &book, &topic).await,
        seen.clone(),
    );
    wait_until("both own partitions", Duration::from_secs(40), || {
        owned_by(&book, "a") == 2 && owned_by(&book, "b") == 2
    })
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let b_events = |book: &Arc<Mutex<Book>>| {
        book.lock()
            .unwrap()
            .events
            .iter()
            .filter(|e| e.0 == "b")
            .count()
    };
    let before = b_events(&book);
    // Restart A (same group.instance.id) well within the session timeout.
    drop(a.stop().await);
    book.lock().unwrap().owner.retain(|_, o| o != "a");
    let a2 = Member::spawn(join(&cfg_a, "a", &book, &topic).await, seen.clone());
    wait_until(
        "restarted static member owns its partitions",
        Duration::from_secs(30),
        || owned_by(&book, "a") == 2,
    )
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        b_events(&book),
        before,
        "B saw a rebalance: {:?}",
        book.lock().unwrap().events
    );
    for member in [a2, b] {
        member.stop().await.close().await.unwrap();
    }
    assert_no_violations(&book);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn slow_member_leaves_and_rejoins() {
    let topic = unique("c-slow");
    create_topic(&topic, 2).await;
    let group = unique("g-slow");
    let book = new_book();
    let seen = Arc::new(Mutex::new(BTreeSet::new()));
    let cfg = group_cfg(&group).with("max.poll.interval.ms", "3000");
    let a = join(&cfg, "a", &book, &topic).await;
    let b = Member::spawn(join(&cfg, "b", &book, &topic).await, seen.clone());
    // A polls until the group is settled, then stops polling.
    poll_until(&a, "group did not settle", Duration::from_secs(40), || {
        owned_by(&book, "a") == 1 && owned_by(&book, "b") == 1
    })
    .await;
    // No recv for longer than max.poll.interval.ms: A leaves, B gets everything.
    wait_until("B owns both partitions", Duration::from_secs(30), || {
        owned_by(&book, "b") == 2
    })
    .await;
    assert_eq!(owned_by(&book, "a"), 0);
    assert!(a.group_membership().is_none());
    // A polls again: it rejoins and gets a partition back.
    poll_until(&a, "A did not rejoin", Duration::from_secs(40), || {
        owned_by(&book, "a") == 1
    })
    .await;
    b.stop().await.close().await.unwrap();
    a.close().await.unwrap();
    assert_no_violations(&book);
}
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn mixed_group_with_java_console_consumer() {
    use std::io::BufRead;
    let topic = unique("c-mixed");
    let parts = 6;
    create_topic(&topic, parts).await;
    let group = unique("g-mixed");
    let bs = bootstrap();
    let mut java = kafka_testkit::shared()
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
                "partition.assignment.strategy=org.apache.kafka.clients.consumer.CooperativeStickyAssignor",
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
                // Only record values (`p<partition>-<i>`); the tool may print other lines.
                if l.starts_with('p') && l.contains('-') && !l.contains(' ') {
                    js.lock().unwrap().push(l);
                } else {
                    eprintln!("console-consumer: {l}");
                }
            }
        });
    }
    let book = new_book();
    let sdk_seen = Arc::new(Mutex::new(Vec::<String>::new()));
    let mut members = Vec::new();
    for name in ["a", "b"] {
        let c = join(&group_cfg(&group), name, &book, &topic).await;
        let seen = sdk_seen.clone();
        // Records the values; recv errors are not this test's subject.
        members.push(Member::run(c, move |r| {
            if let Ok(m) = r {
                let v = String::from_utf8(m.value().unwrap().to_vec()).unwrap();
                seen.lock().unwrap().push(v);
            }
        }));
    }
    // Three members share six partitions: the kafka-sdk members end up with 4 of them.
    wait_until(
        "sdk members own 4 partitions",
        Duration::from_secs(60),
        || {
            let b = book.lock().unwrap();
            b.owner.len() == 4 && b.owner.values().collect::<BTreeSet<_>>().len() == 2
        },
    )
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let n = 100;
    for p in 0..parts {
        let recs: Vec<Rec> = (0..n)
            .map(|i| (None, Some(format!("p{p}-{i}").into_bytes()), vec![]))
            .collect();
        produce(&topic, p, &recs, Compression::Lz4).await;
    }
    let total = (n * parts) as usize;
    let wait = wait_until(
        "every record read by someone",
        Duration::from_secs(60),
        || sdk_seen.lock().unwrap().len() + java_seen.lock().unwrap().len() >= total,
    );
    wait.await;
    let _ = java.kill();
    let _ = java.wait();
    for member in members {
        member.stop().await.close().await.unwrap();
    }
    let sdk: BTreeSet<String> = sdk_seen.lock().unwrap().iter().cloned().collect();
    let jv: BTreeSet<String> = java_seen.lock().unwrap().iter().cloned().collect();
    assert!(!jv.is_empty(), "the Java member read nothing");
    assert!(sdk.is_disjoint(&jv), "a record read by both sides");
    assert_eq!(sdk.len() + jv.len(), total);
    // Partition-level split: a partition's records went to one side only.
    let part_of = |v: &String| v.split('-').next().unwrap().to_string();
    let sp: BTreeSet<String> = sdk.iter().map(part_of).collect();
    let jp: BTreeSet<String> = jv.iter().map(part_of).collect();
    assert!(sp.is_disjoint(&jp), "sdk {sp:?} java {jp:?}");
    assert_no_violations(&book);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn broker_restart_while_consuming_in_a_group() {
    // An owned single-node cluster: this test restarts its broker.
    let cluster = kafka_testkit::KafkaCluster::start(kafka_testkit::ClusterOptions {
        allow_external: false,
        ..Default::default()
    })
    .expect("own cluster");
    let bs = cluster.bootstrap();
    let topic = "c-restart";
    cluster.create_topic(topic, 2, 1, &[]).unwrap();
    let cfg = ClientConfig::new()
        .with("bootstrap.servers", &bs)
        .with("group.id", "g-restart")
        .with("auto.offset.reset", "earliest")
        .with("auto.commit.interval.ms", "200")
        .with("session.timeout.ms", "10000")
        .with("heartbeat.interval.ms", "500")
        .with("reconnect.backoff.max.ms", "500")
        .with("retry.backoff.max.ms", "500");
    let c = Consumer::new(&cfg).await.unwrap();
    c.subscribe(&[topic]).unwrap();
    for p in 0..2 {
        produce_at(&bs, topic, p, &recs(0, 50), Compression::None).await;
    }
    let seen = Arc::new(Mutex::new(BTreeSet::new()));
    let member = Member::spawn(c, seen.clone());
    wait_until("first records", Duration::from_secs(60), || {
        seen.lock().unwrap().len() == 100
    })
    .await;

    cluster
        .restart(cluster.node_ids()[0])
        .expect("restart broker");
    for p in 0..2 {
        produce_at(&bs, topic, p, &recs(50, 50), Compression::None).await;
    }
    wait_until("records after the restart", Duration::from_secs(90), || {
        seen.lock().unwrap().len() == 200
    })
    .await;
    let c = member.stop().await;
    // Lag returns to 0: the committed offsets reach the end of each partition.
    let tps = partitions(topic, 2);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let committed = c.committed(Some(&tps), Duration::from_secs(10)).await;
        if let Ok(v) = &committed {
            if v.iter().all(|(_, o)| *o == Some(100)) {
                break;
            }
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "lag did not return to 0: {committed:?}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    c.close().await.unwrap();
}

// ---- Seek regressions -------------------------------------------------------------------
//
// A seek must win over everything that was decided before it: buffered records, fetches and
// position lookups in flight, and the position the partition had. These tests seek while
// those are in flight and while an eager rebalance revokes and re-assigns partitions.

/// Config for the seek tests: a group (for commits), nothing committed automatically.
fn seek_cfg(group: &str) -> ClientConfig {
    config(Some(group))
        .with("enable.auto.commit", "false")
        .with("session.timeout.ms", "6000")
        .with("heartbeat.interval.ms", "500")
        .with("max.poll.interval.ms", "20000")
}

/// A consumer from `cfg`, assigned `tp` from the beginning.
async fn assigned_from_start(cfg: &ClientConfig, tp: &TopicPartition) -> Consumer {
    let c = Consumer::new(cfg).await.unwrap();
    c.assign(vec![(tp.clone(), Offset::Beginning)]).unwrap();
    c
}

/// `recv` bounded by `within`; panics on an error or a timeout.
async fn recv_one(c: &Consumer, within: Duration, what: &str) -> Message {
    match tokio::time::timeout(within, c.recv()).await {
        Ok(Ok(m)) => m,
        Ok(Err(e)) => panic!("{what}: recv error {e}"),
        Err(_) => panic!("{what}: no record within {within:?}"),
    }
}

/// The committed offset of `tp` in `c`'s group.
async fn committed_of(c: &Consumer, tp: &TopicPartition) -> Option<i64> {
    c.committed(Some(std::slice::from_ref(tp)), Duration::from_secs(20))
        .await
        .unwrap()[0]
        .1
}

/// Receives until the record before `n` was received.
async fn consume_to(c: &Consumer, n: i64) {
    loop {
        let m = recv_one(c, Duration::from_secs(20), "consume").await;
        if m.offset() + 1 >= n {
            return;
        }
    }
}

/// After a seek, `position` and `commit` describe the seek target, never the position the
/// partition had before: a seek to a target that needs a lookup (Beginning, Stored, ...)
/// has no position until the lookup answers (Java: "awaiting reset"), so a commit right
/// after it (e.g. by `on_revoked` during a rebalance) cannot commit records that the seek
/// asked to read again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seek_resets_position_and_what_commit_commits() {
    let topic = filled_topic("c-seekpos", 1, 30).await;
    let tp = TopicPartition::new(topic.as_str(), 0);
    let group = unique("g-seekpos");
    // A long fetch wait parks the fetch after the end of the log: lookups wait for it.
    let c = assigned_from_start(&seek_cfg(&group).with("fetch.max.wait.ms", "2000"), &tp).await;
    for (target, expect) in [
        (Offset::Beginning, 0),
        (Offset::Stored, 4),
        (Offset::Offset(7), 7),
        (Offset::OffsetTail(5), 25),
    ] {
        c.commit_offsets([(tp.clone(), 4)], CommitMode::Sync)
            .await
            .unwrap();
        consume_to(&c, 20).await;
        assert_eq!(c.position_of(&tp).unwrap(), Some(20));
        c.seek(&tp, target).unwrap();
        let pos = c.position_of(&tp).unwrap();
        assert!(
            pos.is_none() || pos == Some(expect),
            "{target:?}: position right after the seek is {pos:?} (the pre-seek position)"
        );
        c.commit(CommitMode::Sync).await.unwrap();
        let after = committed_of(&c, &tp).await;
        assert!(
            after == Some(4) || after == Some(expect),
            "{target:?}: commit right after the seek committed {after:?}, not the seek target"
        );
        let m = recv_one(&c, Duration::from_secs(20), "after seek").await;
        assert_eq!(
            m.offset(),
            expect,
            "{target:?}: first record after the seek"
        );
    }
    c.close().await.unwrap();

    // With the automatic offset store, the stored offset follows the seek too.
    let group = unique("g-seekstore");
    let cfg = seek_cfg(&group)
        .with("fetch.max.wait.ms", "2000")
        .with("enable.auto.offset.store", "true");
    let c = assigned_from_start(&cfg, &tp).await;
    consume_to(&c, 20).await;
    c.seek(&tp, Offset::Beginning).unwrap();
    c.commit_stored(CommitMode::Sync).await.unwrap();
    let after = committed_of(&c, &tp).await;
    assert!(
        after.is_none() || after == Some(0),
        "commit_stored after a seek committed {after:?}"
    );
    c.seek(&tp, Offset::Offset(9)).unwrap();
    c.commit_stored(CommitMode::Sync).await.unwrap();
    assert_eq!(committed_of(&c, &tp).await, Some(9));
    let m = recv_one(&c, Duration::from_secs(20), "after seek").await;
    assert_eq!(m.offset(), 9);
    c.close().await.unwrap();
}

/// A seek right after `assign`, and a seek on a partition that is unassigned and assigned
/// again while the lookup of its previous assignment is still in flight: the new
/// assignment's position must never come from the old lookup.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seek_after_assign_and_reassign_ignores_stale_lookups() {
    let topic = filled_topic("c-seekassign", 1, 10).await;
    let tp = TopicPartition::new(topic.as_str(), 0);
    let c = Consumer::new(&config(None).with("fetch.max.wait.ms", "200"))
        .await
        .unwrap();
    let mut failures = Vec::new();
    for i in 0..40u64 {
        // Starts a lookup of the end of the log...
        c.assign(vec![(tp.clone(), Offset::End)]).unwrap();
        if i % 3 == 1 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        } else if i % 3 == 2 {
            tokio::task::yield_now().await;
        }
        // ... which a new assignment of the same partition must not inherit.
        c.unassign().unwrap();
        assert!(
            matches!(c.seek(&tp, Offset::Beginning), Err(Error::NotAssigned(_))),
            "seek on an unassigned partition"
        );
        c.assign(vec![(tp.clone(), Offset::Beginning)]).unwrap();
        let expect = match i % 4 {
            0 => 0,
            1 => {
                c.seek(&tp, Offset::Offset(3)).unwrap();
                3
            }
            2 => {
                c.seek(&tp, Offset::OffsetTail(2)).unwrap();
                8
            }
            _ => {
                c.seek(&tp, Offset::Stored).unwrap();
                0 // no group: Stored falls back to auto.offset.reset (earliest)
            }
        };
        match tokio::time::timeout(Duration::from_secs(8), c.recv()).await {
            Ok(Ok(m)) if m.offset() == expect => {}
            Ok(Ok(m)) => failures.push(format!("round {i}: got {} not {expect}", m.offset())),
            Ok(Err(e)) => panic!("round {i}: {e}"),
            Err(_) => failures.push(format!(
                "round {i}: nothing received (position {:?}, expected {expect})",
                c.position_of(&tp)
            )),
        }
    }
    assert!(failures.is_empty(), "{failures:?}");
}

/// A seek while a fetch of the partition is in flight: what that fetch returns (here
/// records produced while it was parked) is dropped, and delivery restarts at the target
/// with no gap and no duplicate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seek_while_a_fetch_is_in_flight() {
    let topic = filled_topic("c-seekfly", 1, 10).await;
    let tp = TopicPartition::new(topic.as_str(), 0);
    let group = unique("g-seekfly");
    let c = assigned_from_start(&seek_cfg(&group).with("fetch.max.wait.ms", "3000"), &tp).await;
    let mut end = 10i64;
    for m in recv_n(&c, 10, Duration::from_secs(20)).await {
        assert!(m.offset() < 10);
    }
    c.commit_offsets([(tp.clone(), 6)], CommitMode::Sync)
        .await
        .unwrap();
    for (round, (target, expect)) in [
        (Offset::Offset(2), 2),
        (Offset::Beginning, 0),
        (Offset::Stored, 6),
    ]
    .into_iter()
    .enumerate()
    {
        // The fetch at the end of the log is parked by the broker now.
        tokio::time::sleep(Duration::from_millis(300)).await;
        c.seek(&tp, target).unwrap();
        // Records arrive while the (stale) fetch is parked: it returns them, to be dropped.
        produce_n(&topic, 0, end as usize, 5).await;
        end += 5;
        let got: Vec<i64> = recv_n(&c, (end - expect) as usize, Duration::from_secs(30))
            .await
            .iter()
            .map(|m| m.offset())
            .collect();
        let want: Vec<i64> = (expect..end).collect();
        assert_eq!(got, want, "round {round}: {target:?}");
    }
    c.close().await.unwrap();
}

/// One observation of the eager-rebalance seek test, in the order the test saw them.
#[derive(Debug, Clone)]
enum Ev {
    /// `member` sought `partition` to `target`; `expect` is the first offset it must
    /// deliver next (for `Stored`: at most this, the last offset committed before).
    Seek {
        member: &'static str,
        partition: i32,
        target: Offset,
        expect: i64,
    },
    /// The partition was not assigned any more when the test sought it.
    SeekRefused {
        member: &'static str,
        partition: i32,
        error: String,
    },
    /// `member`'s listener commits `offset` (its position) while `partition` is revoked.
    Commit {
        member: &'static str,
        partition: i32,
        offset: i64,
    },
    /// `partition` was revoked from (or lost by) `member`.
    Revoked {
        member: &'static str,
        partition: i32,
    },
    /// `member` received `offset` of `partition`.
    Msg {
        member: &'static str,
        partition: i32,
        offset: i64,
    },
}

type EvLog = Arc<Mutex<Vec<Ev>>>;

/// The at-least-once listener: commits the positions of revoked partitions (what
/// `commit()` would commit), logging them under the log's lock so seeks and commits are
/// ordered exactly.
struct CommitOnRevoke {
    name: &'static str,
    log: EvLog,
}

impl CommitOnRevoke {
    fn give_up<'a>(
        &'a self,
        c: &'a ConsumerHandle,
        partitions: &'a [TopicPartition],
        commit: bool,
    ) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            let offsets: Vec<(TopicPartition, i64)> = {
                let mut log = self.log.lock().unwrap();
                let positions = c.position();
                let mut out = Vec::new();
                for tp in partitions {
                    let pos = positions
                        .iter()
                        .find(|(p, _)| p == tp)
                        .and_then(|(_, o)| *o);
                    if let (Some(o), true) = (pos, commit) {
                        log.push(Ev::Commit {
                            member: self.name,
                            partition: tp.partition,
                            offset: o,
                        });
                        out.push((tp.clone(), o));
                    }
                    log.push(Ev::Revoked {
                        member: self.name,
                        partition: tp.partition,
                    });
                }
                out
            };
            if !offsets.is_empty() {
                let _ = c.commit_offsets(offsets, CommitMode::Sync).await;
            }
        })
    }
}

impl RebalanceListener for CommitOnRevoke {
    fn on_assigned<'a>(
        &'a self,
        _c: &'a ConsumerHandle,
        _partitions: &'a [TopicPartition],
    ) -> BoxFuture<'a, ()> {
        Box::pin(async {})
    }

    fn on_revoked<'a>(
        &'a self,
        c: &'a ConsumerHandle,
        partitions: &'a [TopicPartition],
    ) -> BoxFuture<'a, ()> {
        self.give_up(c, partitions, true)
    }

    fn on_lost<'a>(
        &'a self,
        c: &'a ConsumerHandle,
        partitions: &'a [TopicPartition],
    ) -> BoxFuture<'a, ()> {
        self.give_up(c, partitions, false)
    }
}

/// Checks every seek in `log`: until the partition is revoked from the member (or sought
/// again), the member delivers contiguously from the expected offset, and commits nothing
/// beyond what it delivered since the seek. Returns the violations and the number of seeks
/// whose deliveries have not reached the end of the partition yet.
fn check_seeks(log: &[Ev], end: i64) -> (Vec<String>, usize) {
    let mut bad = Vec::new();
    let mut open = 0;
    for (i, ev) in log.iter().enumerate() {
        let Ev::Seek {
            member,
            partition,
            target,
            expect,
        } = ev
        else {
            continue;
        };
        let (m0, p0, expect) = (*member, *partition, *expect);
        let mut last: Option<i64> = None;
        let mut closed = expect >= end;
        for later in &log[i + 1..] {
            match later {
                Ev::Seek {
                    member, partition, ..
                }
                | Ev::Revoked { member, partition }
                    if *member == m0 && *partition == p0 =>
                {
                    closed = true;
                    break;
                }
                Ev::Msg {
                    member,
                    partition,
                    offset,
                } if *member == m0 && *partition == p0 => {
                    let ok = match last {
                        None if matches!(target, Offset::Stored) => *offset <= expect,
                        None => *offset == expect,
                        Some(l) => *offset == l + 1,
                    };
                    if !ok {
                        bad.push(format!(
                            "{m0} p{p0} after seek #{i} to {target:?} (expect {expect}): got {offset} after {last:?}"
                        ));
                        closed = true;
                        break;
                    }
                    last = Some(*offset);
                    if *offset + 1 >= end {
                        closed = true;
                    }
                }
                Ev::Commit {
                    member,
                    partition,
                    offset,
                } if *member == m0 && *partition == p0 => {
                    let limit = last.map_or(expect, |l| (l + 1).max(expect));
                    if *offset > limit {
                        bad.push(format!(
                            "{m0} p{p0} after seek #{i} to {target:?} (expect {expect}): committed {offset} having delivered up to {last:?}"
                        ));
                    }
                }
                _ => {}
            }
        }
        if !closed {
            open += 1;
        }
    }
    (bad, open)
}

/// Two members of an eager group (the default `range,cooperative-sticky`) poll while the
/// second joins or leaves, and seek every owned partition (to Beginning, Stored or an
/// offset) just before or during the rebalance. Each member's listener commits positions
/// on revocation (the at-least-once pattern). Every seek must be honoured: records from the
/// expected offset are delivered again without gaps, and no commit skips records the seek
/// asked to read again.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn seek_during_eager_rebalances() {
    const PARTS: i32 = 4;
    const RECORDS: i64 = 30;
    const ROUNDS: usize = 6;
    let topic = filled_topic("c-seekreb", PARTS, RECORDS as usize).await;
    let group = unique("g-seekreb");
    let log: EvLog = Arc::new(Mutex::new(Vec::new()));
    // A long fetch wait: drained partitions have a fetch parked at the broker, so a seek's
    // lookup waits for it, which is when a rebalance used to commit the old position.
    let cfg = seek_cfg(&group).with("fetch.max.wait.ms", "4000");
    let member = |name: &'static str| {
        let cfg = cfg.clone();
        let log = log.clone();
        let topic = topic.clone();
        async move {
            let c = Consumer::builder(&cfg)
                .rebalance_listener(Arc::new(CommitOnRevoke { name, log }))
                .build()
                .await
                .unwrap();
            c.subscribe(&[&topic]).unwrap();
            c
        }
    };
    async fn poll(c: &Consumer, name: &'static str, log: &EvLog, wait: Duration) -> bool {
        match tokio::time::timeout(wait, c.recv()).await {
            Ok(Ok(m)) => {
                log.lock().unwrap().push(Ev::Msg {
                    member: name,
                    partition: m.partition(),
                    offset: m.offset(),
                });
                true
            }
            Ok(Err(e)) => {
                eprintln!("{name}: recv error {e}");
                false
            }
            Err(_) => false,
        }
    }
    /// One `poll` of A, then of B when it is a member; whether either received a record.
    async fn poll_both(a: &Consumer, b: &Option<Consumer>, log: &EvLog, wait: Duration) -> bool {
        let mut any = poll(a, "a", log, wait).await;
        if let Some(b) = b {
            any |= poll(b, "b", log, wait).await;
        }
        any
    }
    fn seek_all(c: &Consumer, name: &'static str, log: &EvLog, target: Offset) {
        for tp in c.assignment() {
            let mut log = log.lock().unwrap();
            let expect = match target {
                Offset::Beginning => 0,
                Offset::Offset(o) => o,
                Offset::Stored => log
                    .iter()
                    .rev()
                    .find_map(|e| match e {
                        Ev::Commit {
                            partition, offset, ..
                        } if *partition == tp.partition => Some(*offset),
                        _ => None,
                    })
                    .unwrap_or(0),
                other => unreachable!("{other:?}"),
            };
            match c.seek(&tp, target) {
                Ok(()) => log.push(Ev::Seek {
                    member: name,
                    partition: tp.partition,
                    target,
                    expect,
                }),
                // Revoked since `assignment()` listed it: a typed error, nothing else.
                Err(e @ Error::NotAssigned(_)) => log.push(Ev::SeekRefused {
                    member: name,
                    partition: tp.partition,
                    error: e.to_string(),
                }),
                Err(e) => panic!("{name}: seek {tp}: {e:?}"),
            }
        }
    }

    let a = member("a").await;
    let mut b: Option<Consumer> = None;
    let targets = [Offset::Beginning, Offset::Stored, Offset::Offset(7)];
    for round in 0..ROUNDS {
        let target = targets[round % targets.len()];
        // Drain what is there (fetches then park at the end of the log).
        let mut idle = 0;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while idle < 3 && tokio::time::Instant::now() < deadline {
            let any = poll_both(&a, &b, &log, Duration::from_millis(100)).await;
            idle = if any { 0 } else { idle + 1 };
        }
        let seek_first = round % 2 == 0;
        let seek = |a: &Consumer, b: &Option<Consumer>| {
            seek_all(a, "a", &log, target);
            if let Some(b) = b {
                seek_all(b, "b", &log, target);
            }
        };
        if seek_first {
            seek(&a, &b);
        }
        // The rebalance: B joins or leaves.
        match b.take() {
            None => b = Some(member("b").await),
            Some(old) => {
                let _ = old.close().await;
            }
        }
        if !seek_first {
            // Seek while the group rebalances: poll a little first.
            let until = tokio::time::Instant::now() + Duration::from_millis(150 * round as u64);
            while tokio::time::Instant::now() < until {
                poll_both(&a, &b, &log, Duration::from_millis(50)).await;
            }
            seek(&a, &b);
        }
        // Deliver until every seek is settled (delivered to the end, or revoked).
        let deadline = tokio::time::Instant::now() + Duration::from_secs(40);
        loop {
            let (bad, open) = check_seeks(&log.lock().unwrap(), RECORDS);
            if !bad.is_empty() || open > 0 && tokio::time::Instant::now() >= deadline {
                let log = log.lock().unwrap();
                for e in log.iter().filter(|e| !matches!(e, Ev::Msg { .. })) {
                    eprintln!("{e:?}");
                }
                panic!("round {round} ({target:?}): {open} seeks unsettled; violations {bad:#?}");
            }
            if open == 0 {
                break;
            }
            poll_both(&a, &b, &log, Duration::from_millis(50)).await;
        }
    }
    let seeks = log
        .lock()
        .unwrap()
        .iter()
        .filter(|e| matches!(e, Ev::Seek { .. }))
        .count();
    assert!(seeks >= ROUNDS, "only {seeks} seeks happened");
    for e in log.lock().unwrap().iter() {
        if let Ev::SeekRefused {
            member,
            partition,
            error,
        } = e
        {
            eprintln!("seek refused (partition revoked meanwhile): {member} p{partition}: {error}");
        }
    }
    if let Some(b) = b {
        b.close().await.unwrap();
    }
    a.close().await.unwrap();
}

/// `group_metadata` carries what `send_offsets_to_transaction` needs, from the live
/// membership.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_metadata_for_transactions() {
    let topic = filled_topic("c-gmeta", 1, 3).await;
    let group = unique("g-gmeta");
    let c = Consumer::new(&seek_cfg(&group).with("group.instance.id", "gmeta-1"))
        .await
        .unwrap();
    let before = c.group_metadata().unwrap();
    assert_eq!(before.group_id, group);
    assert_eq!(before.generation_id, -1);
    assert_eq!(before.member_id, "");
    assert_eq!(before.group_instance_id.as_deref(), Some("gmeta-1"));
    c.subscribe(&[&topic]).unwrap();
    recv_one(&c, Duration::from_secs(30), "first record").await;
    let m = c.group_metadata().unwrap();
    let (generation, member) = c.group_membership().expect("in a generation");
    assert_eq!(
        m,
        kafka_sdk::producer::ConsumerGroupMetadata {
            group_id: group.clone(),
            generation_id: generation,
            member_id: member,
            group_instance_id: Some("gmeta-1".into()),
        }
    );
    assert!(m.generation_id >= 0 && !m.member_id.is_empty(), "{m:?}");
    c.close().await.unwrap();
    // Without a group there is nothing to fence with.
    let c = Consumer::new(&config(None)).await.unwrap();
    assert!(matches!(c.group_metadata(), Err(Error::Config(_))));
}

// ---------------------------------------------------------------------------------------------
// Issue 13: fetching (items 6 and 7). New tests of the fetch path; keep them at the end.
// ---------------------------------------------------------------------------------------------

/// Item 6: OFFSET_OUT_OF_RANGE answers a fetch while records fetched before it still sit in
/// the partition's buffer. The buffered records are delivered first, in order, then the reset
/// (`auto.offset.reset`) applies; the position never moves backwards, so neither do commits.
///
/// One batch of 200 records of 1 KB is fetched whole (KIP-74: the first batch of the first
/// non-empty partition is returned even when bigger than `max.partition.fetch.bytes`) and
/// fills the prefetch bound (`queued.max.messages.kbytes`: 64 KB), so the next fetch, at
/// offset 200, goes out only once about 45 records are left in the buffer (a quarter of the
/// bound free); by then the records before 300 are deleted and that fetch is out of range.
/// After every delivery of that batch the test watches the position for a while: it must stay right after the
/// record just delivered (the reset used to move it to 300 while records before it were
/// still buffered; the next delivery moved it back, and a commit in between committed 300).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offset_out_of_range_with_records_prefetched() {
    let topic = unique("c-oor");
    create_topic(&topic, 1).await;
    produce(&topic, 0, &sized_recs(0, 200, 1000), Compression::None).await;
    produce(&topic, 0, &recs(200, 100), Compression::None).await;
    produce(&topic, 0, &recs(300, 100), Compression::None).await;
    let tp = TopicPartition::new(topic.as_str(), 0);
    let group = unique("g-oor");
    let c = Consumer::new(
        &seek_cfg(&group)
            .with("max.partition.fetch.bytes", "1024")
            .with("fetch.max.bytes", "1024")
            .with("queued.max.messages.kbytes", "64"),
    )
    .await
    .unwrap();
    c.assign(vec![(tp.clone(), Offset::Beginning)]).unwrap();
    let first = recv_one(&c, Duration::from_secs(30), "first record").await;
    assert_eq!(first.offset(), 0);
    // The buffer holds 1..200, over the prefetch bound: nothing is fetched meanwhile.
    let t = topic.clone();
    common::blocking(move || common::delete_records(kafka_testkit::shared(), &t, 0, 300)).await;

    let mut delivered = vec![0i64];
    let mut last_committed = -1i64;
    while *delivered.last().unwrap() < 399 {
        let m = recv_one(&c, Duration::from_secs(30), "after delete-records").await;
        let prev = *delivered.last().unwrap();
        assert!(
            m.offset() > prev,
            "offset {} delivered after {prev}: out of order or duplicate",
            m.offset()
        );
        delivered.push(m.offset());
        if m.offset() < 199 {
            // Records are still buffered: nothing but a delivery moves the position.
            let window = tokio::time::Instant::now() + Duration::from_millis(50);
            loop {
                let pos = c.position_of(&tp).unwrap();
                assert_eq!(
                    pos,
                    Some(m.offset() + 1),
                    "position moved without a delivery (last delivered: {})",
                    m.offset()
                );
                if tokio::time::Instant::now() >= window {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
        if delivered.len() % 20 == 0 {
            c.commit(CommitMode::Sync).await.unwrap();
            let committed = committed_of(&c, &tp).await.unwrap_or(-1);
            assert!(
                committed >= last_committed,
                "committed offset moved back from {last_committed} to {committed}"
            );
            last_committed = committed;
        }
    }
    let expected: Vec<i64> = (0..200).chain(300..400).collect();
    assert_eq!(delivered, expected);
    c.commit(CommitMode::Sync).await.unwrap();
    assert_eq!(committed_of(&c, &tp).await, Some(400));
    c.close().await.unwrap();
}

/// Records `i` in `from..from + n` with a `size`-byte value each (key `k{i}`).
fn sized_recs(from: usize, n: usize, size: usize) -> Vec<Rec> {
    (from..from + n)
        .map(|i| {
            (
                Some(format!("k{i}").into_bytes()),
                Some(vec![b'x'; size]),
                vec![],
            )
        })
        .collect()
}

/// Item 7: the partitions of a fetch are rotated (as Java does: partitions that returned
/// data go to the end of the next fetch's order), so under the byte limits no partition
/// starves behind one that alone fills `fetch.max.bytes`, and a partition whose next batch is
/// bigger than `max.partition.fetch.bytes` still progresses: once first in the order it is
/// the first non-empty partition, whose first batch the broker returns whole (KIP-74).
///
/// Partitions 0 and 1 hold 60 batches of ~5.5 KB each, so each alone fills the 16 KB of
/// `fetch.max.bytes`; partition 2 starts with one ~115 KB batch. With a fixed order
/// (0, 1, 2), partition 1 got nothing until partition 0 was fetched to its end, and
/// partition 2 nothing until both were.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetch_order_rotates_and_oversized_batches_progress() {
    let topic = unique("c-rotate");
    create_topic(&topic, 3).await;
    for p in 0..2 {
        for b in 0..60 {
            produce(&topic, p, &sized_recs(b * 100, 100, 40), Compression::None).await;
        }
    }
    produce(&topic, 2, &sized_recs(0, 1000, 100), Compression::None).await;
    produce(&topic, 2, &sized_recs(1000, 100, 40), Compression::None).await;
    let ends = [6000i64, 6000, 1100];

    let c = Consumer::new(
        &config(None)
            .with("fetch.max.bytes", "16384")
            .with("max.partition.fetch.bytes", "16384"),
    )
    .await
    .unwrap();
    assign_from_beginning(&c, &topic, 3);
    let mut next = [0i64; 3];
    // Records of partition 0 received before the first record of partitions 1 and 2.
    let mut p0_before_first: [Option<i64>; 3] = [Some(0), None, None];
    while next != ends {
        let m = recv_one(&c, Duration::from_secs(30), "rotating fetch").await;
        let p = m.partition() as usize;
        assert_eq!(m.offset(), next[p], "partition {p} out of order");
        next[p] += 1;
        if p0_before_first[p].is_none() {
            p0_before_first[p] = Some(next[0]);
        }
    }
    for (p, before) in p0_before_first.iter().enumerate().skip(1) {
        let before = before.unwrap();
        assert!(
            before < 3000,
            "partition {p} delivered its first record only after {before} of partition 0's 6000"
        );
    }
    c.close().await.unwrap();
}

// ---------------------------------------------------------------------------------------
// Issue 13, items 1, 2 and 4: listener callbacks inside the group membership (when
// fetching starts, heartbeats while callbacks run, close in the middle of a callback).
// ---------------------------------------------------------------------------------------

/// Starts and ends of one kind of callback.
#[derive(Default)]
struct Runs {
    started: AtomicU64,
    ended: AtomicU64,
}

impl Runs {
    fn started(&self) -> u64 {
        self.started.load(Ordering::SeqCst)
    }
    fn ended(&self) -> u64 {
        self.ended.load(Ordering::SeqCst)
    }
}

/// A listener that counts the starts and ends of every callback and can be slow: it sleeps
/// `assign_delay` in `on_assigned` (the first time only) before seeking every assigned
/// partition to `seek_to` (when set), and `revoke_delay` in `on_revoked`.
#[derive(Default)]
struct Scripted {
    assigned: Runs,
    revoked: Runs,
    lost: Runs,
    assign_delay: Duration,
    seek_to: Option<i64>,
    revoke_delay: Duration,
    /// The membership seen at the start of the first `on_assigned`.
    membership: Mutex<Option<(i32, String)>>,
}

impl RebalanceListener for Scripted {
    fn on_assigned<'a>(
        &'a self,
        c: &'a ConsumerHandle,
        partitions: &'a [TopicPartition],
    ) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            let first = self.assigned.started.fetch_add(1, Ordering::SeqCst) == 0;
            if first {
                *self.membership.lock().unwrap() = c.group_membership();
                // E.g. reading the positions from a database.
                tokio::time::sleep(self.assign_delay).await;
            }
            if let Some(to) = self.seek_to {
                for tp in partitions {
                    c.seek(tp, Offset::Offset(to)).unwrap();
                }
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
            self.assigned.ended.fetch_add(1, Ordering::SeqCst);
        })
    }

    fn on_revoked<'a>(
        &'a self,
        _c: &'a ConsumerHandle,
        _partitions: &'a [TopicPartition],
    ) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            self.revoked.started.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(self.revoke_delay).await;
            self.revoked.ended.fetch_add(1, Ordering::SeqCst);
        })
    }

    fn on_lost<'a>(
        &'a self,
        _c: &'a ConsumerHandle,
        _partitions: &'a [TopicPartition],
    ) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            self.lost.started.fetch_add(1, Ordering::SeqCst);
            self.lost.ended.fetch_add(1, Ordering::SeqCst);
        })
    }
}

/// A consumer of `group` with `listener`, subscribed to `topic` (eager `range`, no auto
/// commit, session 6 s).
async fn scripted_member(
    group: &str,
    topic: &str,
    listener: &Arc<Scripted>,
    max_poll_ms: &str,
) -> Consumer {
    let cfg = config(Some(group))
        .with("partition.assignment.strategy", "range")
        .with("enable.auto.commit", "false")
        .with("session.timeout.ms", "6000")
        .with("heartbeat.interval.ms", "500")
        .with("max.poll.interval.ms", max_poll_ms);
    let c = Consumer::builder(&cfg)
        .rebalance_listener(listener.clone())
        .build()
        .await
        .unwrap();
    c.subscribe(&[topic]).unwrap();
    c
}

/// Item 1: `on_assigned` runs before the partitions are fetched. A listener that takes a
/// moment to find its positions (kept outside Kafka) and seeks there must never see a record
/// from the committed position (here: none committed, so `earliest`) first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_assigned_runs_before_fetching() {
    let topic = filled_topic("c-asgn-gate", 2, 100).await;
    let group = unique("g-asgn-gate");
    let listener = Arc::new(Scripted {
        assign_delay: Duration::from_millis(1000),
        seek_to: Some(60),
        ..Scripted::default()
    });
    let c = scripted_member(&group, &topic, &listener, "60000").await;
    let mut first: BTreeMap<i32, i64> = BTreeMap::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while first.len() < 2 {
        let m = match tokio::time::timeout_at(deadline, c.recv()).await {
            Ok(Ok(m)) => m,
            Ok(Err(e)) => panic!("recv error: {e}"),
            Err(_) => panic!("no record from both partitions: {first:?}"),
        };
        first.entry(m.partition()).or_insert(m.offset());
    }
    assert_eq!(listener.assigned.ended(), 1);
    assert_eq!(
        first,
        BTreeMap::from([(0, 60), (1, 60)]),
        "the first record of each partition is the one on_assigned sought to"
    );
    c.close().await.unwrap();
}

/// Item 2: heartbeats go on while a callback runs. An `on_assigned` longer than
/// `session.timeout.ms` (10 s against 6 s) must not get the member expelled: no `on_lost`,
/// no second assignment, the generation stays.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_on_assigned_keeps_the_membership() {
    let topic = filled_topic("c-long-asgn", 1, 10).await;
    let group = unique("g-long-asgn");
    let listener = Arc::new(Scripted {
        assign_delay: Duration::from_secs(10),
        ..Scripted::default()
    });
    let c = scripted_member(&group, &topic, &listener, "120000").await;
    poll_until(
        &c,
        "on_assigned did not end",
        Duration::from_secs(60),
        || listener.assigned.ended() == 1,
    )
    .await;
    let during = listener.membership.lock().unwrap().clone();
    assert!(during.is_some(), "on_assigned ran inside a generation");
    // An expelled member finds out at its next heartbeat (every 500 ms): give it several.
    let until = tokio::time::Instant::now() + Duration::from_secs(4);
    while tokio::time::Instant::now() < until {
        let _ = tokio::time::timeout(Duration::from_millis(100), c.recv()).await;
    }
    assert_eq!(
        listener.lost.started(),
        0,
        "partitions lost: the member was expelled"
    );
    assert_eq!(listener.assigned.started(), 1, "assigned again");
    assert_eq!(
        c.group_membership(),
        during,
        "generation or member id changed"
    );
    c.close().await.unwrap();
}

/// Item 4: `close` while `on_revoked` is in the middle of an await waits for it (bounded) and
/// does not call it again: every callback ran to completion exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_during_on_revoked_waits_for_it() {
    let topic = filled_topic("c-close-rvk", 1, 10).await;
    let other = unique("c-close-rvk2");
    create_topic(&other, 1).await;
    let group = unique("g-close-rvk");
    let listener = Arc::new(Scripted {
        revoke_delay: Duration::from_secs(3),
        ..Scripted::default()
    });
    let c = scripted_member(&group, &topic, &listener, "60000").await;
    poll_until(&c, "not assigned", Duration::from_secs(60), || {
        listener.assigned.ended() == 1
    })
    .await;
    // A new subscription: the eager protocol revokes everything before rejoining.
    c.subscribe(&[&topic, &other]).unwrap();
    wait_until("on_revoked started", Duration::from_secs(30), || {
        listener.revoked.started() == 1
    })
    .await;
    let bound = Duration::from_secs(20);
    let t0 = std::time::Instant::now();
    c.close_with_timeout(bound).await.unwrap();
    let took = t0.elapsed();
    assert!(took < bound + Duration::from_secs(2), "close took {took:?}");
    assert_eq!(
        (listener.revoked.started(), listener.revoked.ended()),
        (1, 1),
        "on_revoked cut off or run twice"
    );
    assert_eq!(listener.assigned.started(), listener.assigned.ended());
    assert_eq!(listener.lost.started(), 0);
}

/// Item 2, revoke side: an eager `on_revoked` longer than `session.timeout.ms` (10 s against
/// 6 s) must not get the member expelled: it rejoins with the same member id, one
/// generation later, and nothing is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_on_revoked_keeps_the_membership() {
    let topic = filled_topic("c-long-rvk", 1, 10).await;
    let other = unique("c-long-rvk2");
    create_topic(&other, 1).await;
    let group = unique("g-long-rvk");
    let listener = Arc::new(Scripted {
        revoke_delay: Duration::from_secs(10),
        ..Scripted::default()
    });
    let c = scripted_member(&group, &topic, &listener, "120000").await;
    poll_until(&c, "not assigned", Duration::from_secs(60), || {
        listener.assigned.ended() == 1
    })
    .await;
    let (generation, member) = c.group_membership().expect("in a generation");
    // A new subscription: the eager protocol revokes everything (slowly) before rejoining.
    c.subscribe(&[&topic, &other]).unwrap();
    poll_until(&c, "not assigned again", Duration::from_secs(60), || {
        listener.assigned.ended() == 2
    })
    .await;
    assert_eq!(
        (listener.revoked.started(), listener.revoked.ended()),
        (1, 1)
    );
    assert_eq!(listener.lost.started(), 0, "partitions lost");
    assert_eq!(
        c.group_membership(),
        Some((generation + 1, member)),
        "expelled during on_revoked (new member id) or more than one rebalance"
    );
    c.close().await.unwrap();
}

// ---- Commit semantics (issue 13, items 3, 5, 9, 10) -------------------------------------
//
// A commit belongs to the generation that owned its partitions: it is tagged with that
// generation once, never sent with a generation the member has left behind while it still
// owns the partitions, and never re-sent under a newer one (the unit test
// `a_commit_is_never_resent_under_a_newer_generation` in `src/consumer/offsets.rs`).

/// A group member driven by hand over the raw protocol (unstable internals), so a test
/// decides when the rebalance's SyncGroup completes. It joins with the `cooperative-sticky`
/// protocol and, as the first member, stays the group's leader.
struct RawMember {
    cluster: Cluster,
    conn: kafka_sdk::connection::Connection,
    group: String,
    topic: String,
    member_id: String,
    generation: i32,
}

impl RawMember {
    async fn connect(group: &str, topic: &str) -> RawMember {
        let cluster = Cluster::connect(ClusterOptions::new(vec![bootstrap()]))
            .await
            .expect("cluster connect");
        let conn = Self::coordinator(&cluster, group).await;
        RawMember {
            cluster,
            conn,
            group: group.to_string(),
            topic: topic.to_string(),
            member_id: String::new(),
            generation: -1,
        }
    }

    /// A connection of its own to the group coordinator.
    async fn coordinator(cluster: &Cluster, group: &str) -> kafka_sdk::connection::Connection {
        use kafka_sdk::cluster::CoordinatorKind;
        cluster.invalidate_coordinator(CoordinatorKind::Group, group);
        let (_, pooled) = cluster
            .coordinator(
                CoordinatorKind::Group,
                group,
                Deadline::after(Duration::from_secs(60)),
            )
            .await
            .expect("group coordinator");
        // Its own connection: a JoinGroup is parked by the broker for the whole rebalance.
        kafka_sdk::connection::Connection::connect(
            pooled.addr(),
            cluster.options().connection.clone(),
        )
        .await
        .expect("coordinator connection")
    }

    /// JoinGroup (with the MEMBER_ID_REQUIRED round trip); returns the other members' ids.
    async fn join(&mut self) -> Vec<String> {
        use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
        use kafka_protocol::messages::{ApiKey, GroupId, JoinGroupRequest};
        use kafka_sdk::consumer::assignor::Subscription;
        loop {
            let sub = Subscription {
                topics: vec![self.topic.clone()],
                user_data: None,
                owned_partitions: Vec::new(),
                generation_id: self.generation,
                rack_id: None,
            };
            let req = JoinGroupRequest::default()
                .with_group_id(GroupId(StrBytes::from_string(self.group.clone())))
                .with_session_timeout_ms(45_000)
                .with_rebalance_timeout_ms(60_000)
                .with_member_id(StrBytes::from_string(self.member_id.clone()))
                .with_protocol_type(StrBytes::from_static_str("consumer"))
                .with_protocols(vec![JoinGroupRequestProtocol::default()
                    .with_name(StrBytes::from_static_str("cooperative-sticky"))
                    .with_metadata(sub.encode(3))]);
            let version = self.conn.version_for(ApiKey::JoinGroup).unwrap();
            let resp = self
                .conn
                .send_version(&req, version, Duration::from_secs(90))
                .await
                .expect("JoinGroup");
            match KafkaCode(resp.error_code) {
                KafkaCode::MEMBER_ID_REQUIRED => {
                    self.member_id = resp.member_id.to_string();
                    continue;
                }
                // A new group's coordinator may still be settling.
                KafkaCode::NOT_COORDINATOR
                | KafkaCode::COORDINATOR_NOT_AVAILABLE
                | KafkaCode::COORDINATOR_LOAD_IN_PROGRESS => {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    self.conn = Self::coordinator(&self.cluster, &self.group).await;
                    continue;
                }
                KafkaCode::NONE => {}
                code => panic!("raw JoinGroup: {code}"),
            }
            self.member_id = resp.member_id.to_string();
            self.generation = resp.generation_id;
            assert_eq!(
                resp.leader.as_str(),
                self.member_id,
                "the raw member leads the group"
            );
            return resp
                .members
                .iter()
                .map(|m| m.member_id.to_string())
                .filter(|m| *m != self.member_id)
                .collect();
        }
    }

    /// SyncGroup as the leader: `assignments` per member id (the raw member gets nothing).
    async fn sync(&mut self, assignments: &[(String, Vec<TopicPartition>)]) {
        use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
        use kafka_protocol::messages::{ApiKey, GroupId, SyncGroupRequest};
        use kafka_sdk::consumer::assignor::Assignment;
        let mut all: Vec<SyncGroupRequestAssignment> = assignments
            .iter()
            .map(|(m, parts)| {
                SyncGroupRequestAssignment::default()
                    .with_member_id(StrBytes::from_string(m.clone()))
                    .with_assignment(
                        Assignment {
                            partitions: parts.clone(),
                            user_data: None,
                        }
                        .encode(3),
                    )
            })
            .collect();
        all.push(
            SyncGroupRequestAssignment::default()
                .with_member_id(StrBytes::from_string(self.member_id.clone()))
                .with_assignment(Assignment::default().encode(3)),
        );
        let req = SyncGroupRequest::default()
            .with_group_id(GroupId(StrBytes::from_string(self.group.clone())))
            .with_generation_id(self.generation)
            .with_member_id(StrBytes::from_string(self.member_id.clone()))
            .with_protocol_type(Some(StrBytes::from_static_str("consumer")))
            .with_protocol_name(Some(StrBytes::from_static_str("cooperative-sticky")))
            .with_assignments(all);
        let version = self.conn.version_for(ApiKey::SyncGroup).unwrap();
        let resp = self
            .conn
            .send_version(&req, version, Duration::from_secs(60))
            .await
            .expect("SyncGroup");
        assert_eq!(KafkaCode(resp.error_code), KafkaCode::NONE, "raw SyncGroup");
    }

    /// Heartbeats until the coordinator says a rebalance started (another member joined).
    async fn await_rebalance(&self, within: Duration) {
        use kafka_protocol::messages::{GroupId, HeartbeatRequest};
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let req = HeartbeatRequest::default()
                .with_group_id(GroupId(StrBytes::from_string(self.group.clone())))
                .with_generation_id(self.generation)
                .with_member_id(StrBytes::from_string(self.member_id.clone()));
            let resp = self.conn.send(&req).await.expect("Heartbeat");
            match KafkaCode(resp.error_code) {
                KafkaCode::NONE => {}
                KafkaCode::REBALANCE_IN_PROGRESS => return,
                code => panic!("raw Heartbeat: {code}"),
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "no rebalance within {within:?}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// A cooperative group led by a raw member, with one consumer owning both partitions of a
/// new topic in a stable generation: (raw leader, consumer, the consumer's member id,
/// partitions).
async fn raw_led_group(prefix: &str) -> (RawMember, Consumer, String, Vec<TopicPartition>) {
    let topic = unique(prefix);
    create_topic(&topic, 2).await;
    let group = unique(&format!("g-{prefix}"));
    let tps: Vec<TopicPartition> = (0..2)
        .map(|p| TopicPartition::new(topic.as_str(), p))
        .collect();

    // The raw member joins first: it leads every generation.
    let mut raw = RawMember::connect(&group, &topic).await;
    assert!(raw.join().await.is_empty());
    raw.sync(&[]).await;

    let cfg = config(Some(&group))
        .with("partition.assignment.strategy", "cooperative-sticky")
        .with("enable.auto.commit", "false")
        .with("session.timeout.ms", "45000")
        .with("heartbeat.interval.ms", "300")
        .with("max.poll.interval.ms", "120000");
    let c = Consumer::new(&cfg).await.unwrap();
    c.subscribe(&[&topic]).unwrap();

    // The consumer gets both partitions.
    raw.await_rebalance(Duration::from_secs(60)).await;
    let others = raw.join().await;
    assert_eq!(others.len(), 1, "{others:?}");
    let member = others[0].clone();
    raw.sync(&[(member.clone(), tps.clone())]).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while c.assignment().len() != 2 {
        assert!(tokio::time::Instant::now() < deadline, "no assignment");
        let _ = tokio::time::timeout(Duration::from_millis(100), c.recv()).await;
    }
    (raw, c, member, tps)
}

/// Waits until `c` has its JoinGroup answer (the rebalance completing: no generation).
async fn await_completing(c: &Consumer) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while c.group_membership().is_some() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the consumer never got its JoinGroup answer"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Item 10: in a cooperative group a member keeps its partitions through a rebalance, and a
/// commit made while the rebalance completes (JoinGroup answered, SyncGroup not yet) must not
/// go out with the generation the group has just left (the coordinator refuses it, although
/// the partition never moved). Here a raw leader holds the rebalance between JoinGroup and
/// SyncGroup while the consumer commits: the commit waits for the new generation and
/// succeeds under it, since the consumer still owns the partitions.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn commit_during_a_cooperative_rebalance_uses_the_new_generation() {
    let (mut raw, c, member, tps) = raw_led_group("c-coopgen").await;
    let gen2 = c.group_membership().expect("in a generation").0;
    c.commit_offsets([(tps[0].clone(), 3)], CommitMode::Sync)
        .await
        .expect("commit in a stable generation");

    // The leader rejoins: a new rebalance. When its JoinGroup answers, the consumer has
    // rejoined too and waits in SyncGroup, which the leader holds back.
    raw.join().await;
    assert!(raw.generation > gen2);
    await_completing(&c).await;
    let committer = {
        let c = c.handle();
        let tp = tps[0].clone();
        tokio::spawn(async move { c.commit_offsets([(tp, 7)], CommitMode::Sync).await })
    };
    // The commit cannot be decided before the rebalance ends (checked for a moment).
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let early = committer.is_finished();
    // The consumer keeps both partitions in the new generation.
    raw.sync(&[(member, tps.clone())]).await;
    let r = tokio::time::timeout(Duration::from_secs(60), committer)
        .await
        .expect("commit finishes")
        .unwrap();
    assert!(
        r.is_ok(),
        "commit of an owned partition during a rebalance failed: {r:?}"
    );
    assert!(!early, "the commit finished while the rebalance was held");
    assert_eq!(c.group_membership().map(|m| m.0), Some(raw.generation));
    assert_eq!(committed_of(&c, &tps[0]).await, Some(7));
    c.close().await.unwrap();
}

/// Items 3 and 10, the legitimate case: a commit made during the rebalance for a partition
/// that the rebalance takes away (here the raw leader moves partition 1 to itself at once)
/// is not sent under the new generation, where it would overwrite the new owner's offsets:
/// it fails with `NotAssigned`, and nothing of it is committed.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn commit_during_a_rebalance_that_moves_the_partition_is_not_sent() {
    let (mut raw, c, member, tps) = raw_led_group("c-coopmove").await;
    raw.join().await;
    await_completing(&c).await;
    let committer = {
        let c = c.handle();
        let offsets = vec![(tps[0].clone(), 7), (tps[1].clone(), 9)];
        tokio::spawn(async move { c.commit_offsets(offsets, CommitMode::Sync).await })
    };
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert!(
        !committer.is_finished(),
        "the commit waits for the rebalance"
    );
    raw.sync(&[(member, vec![tps[0].clone()])]).await;
    let r = tokio::time::timeout(Duration::from_secs(60), committer)
        .await
        .expect("commit finishes")
        .unwrap();
    match r {
        Err(Error::NotAssigned(tp)) => assert_eq!(tp, tps[1]),
        other => panic!("a commit for a partition that moved: {other:?}"),
    }
    assert_eq!(committed_of(&c, &tps[1]).await, None);
    assert_eq!(committed_of(&c, &tps[0]).await, None);
    c.close().await.unwrap();
}

/// Item 5: "store after processing, commit stored offsets on revoke". A member receives 10
/// records but has finished only 5 (stored with `store_offset_from_message`,
/// `enable.auto.offset.store=false`) when a second member joins and the eager rebalance
/// revokes its partition. Both the automatic commit on revocation (`enable.auto.commit`) and
/// the documented listener (`commit_stored` in `on_revoked`) commit 5, never the 10
/// delivered, and the next owner starts at 5. (Not a defect in the commit path: the
/// revocation already committed the stored offsets; the listener example used to commit the
/// position, which is what this pins down.)
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn revoke_commits_what_was_processed_not_what_was_delivered() {
    struct CommitStoredOnRevoke;
    impl RebalanceListener for CommitStoredOnRevoke {
        fn on_revoked<'a>(
            &'a self,
            c: &'a ConsumerHandle,
            _partitions: &'a [TopicPartition],
        ) -> BoxFuture<'a, ()> {
            Box::pin(async move {
                c.commit_stored(CommitMode::Sync)
                    .await
                    .expect("commit_stored on revoke");
            })
        }
    }
    let topic = filled_topic("c-storerev", 1, 30).await;
    let tp = TopicPartition::new(topic.as_str(), 0);
    for auto_commit in [true, false] {
        let group = unique("g-storerev");
        let cfg = config(Some(&group))
            .with("enable.auto.commit", auto_commit.to_string())
            .with("auto.commit.interval.ms", "600000")
            .with("enable.auto.offset.store", "false")
            .with("session.timeout.ms", "6000")
            .with("heartbeat.interval.ms", "300")
            .with("max.poll.interval.ms", "60000");
        let mut b = Consumer::builder(&cfg);
        if !auto_commit {
            b = b.rebalance_listener(Arc::new(CommitStoredOnRevoke));
        }
        let a = b.build().await.unwrap();
        a.subscribe(&[&topic]).unwrap();
        let got = recv_n(&a, 10, Duration::from_secs(60)).await;
        assert_eq!(got.len(), 10);
        assert_eq!(got[0].offset(), 0);
        // Records 0..=4 are processed; 5..=9 are delivered, still being processed.
        a.store_offset_from_message(&got[4]).unwrap();
        // Nothing more from `a` until the rebalance (a revoked and re-assigned partition
        // starts unpaused).
        a.pause(std::slice::from_ref(&tp)).unwrap();
        assert_eq!(committed_of(&a, &tp).await, None);
        let b = Consumer::new(&cfg).await.unwrap();
        b.subscribe(&[&topic]).unwrap();
        // The eager rebalance revokes the partition from `a` (it may come back to `a`; the
        // range assignor gives it to the first member by id). Keep `a` polling meanwhile.
        let first_of_new_owner = tokio::select! {
            m = b.recv() => m.unwrap(),
            m = a.recv() => {
                // Back at `a` after the revocation: it restarts from the committed offset.
                let m = m.unwrap();
                assert!(a.assignment().contains(&tp));
                m
            }
        };
        assert_eq!(
            first_of_new_owner.offset(),
            5,
            "auto_commit={auto_commit}: the partition restarts from the stored offset"
        );
        assert_eq!(
            committed_of(&b, &tp).await,
            Some(5),
            "auto_commit={auto_commit}"
        );
        b.close().await.unwrap();
        a.close().await.unwrap();
    }
}

/// Item 9, the earlier suspect: a member polling through an eager rebalance seeks to
/// `Offset::Stored` (the committed offset) just as a second member joins; its listener
/// commits the position on revocation (the at-least-once pattern). The seek leaves the
/// partition without a position until the committed offset is looked up, so the revocation
/// cannot commit the position from before the seek: every record from the committed offset
/// on is delivered again (by the old or the new owner), the first of them being the
/// committed offset itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn seek_to_stored_during_an_eager_rebalance_redelivers_everything() {
    struct CommitPositionOnRevoke;
    impl RebalanceListener for CommitPositionOnRevoke {
        fn on_revoked<'a>(
            &'a self,
            c: &'a ConsumerHandle,
            _partitions: &'a [TopicPartition],
        ) -> BoxFuture<'a, ()> {
            Box::pin(async move {
                let _ = c.commit(CommitMode::Sync).await;
            })
        }
    }
    const RECORDS: i64 = 20;
    const STORED: i64 = 5;
    let topic = filled_topic("c-seekstored", 1, RECORDS as usize).await;
    let tp = TopicPartition::new(topic.as_str(), 0);
    let group = unique("g-seekstored");
    // A long fetch wait: the drained partition has a fetch parked at the broker, which the
    // seek's lookup waits for, right when the rebalance revokes the partition.
    let cfg = seek_cfg(&group).with("fetch.max.wait.ms", "4000");
    let a = Consumer::builder(&cfg)
        .rebalance_listener(Arc::new(CommitPositionOnRevoke))
        .build()
        .await
        .unwrap();
    a.subscribe(&[&topic]).unwrap();
    let got = recv_n(&a, RECORDS as usize, Duration::from_secs(60)).await;
    assert_eq!(got.last().map(|m| m.offset()), Some(RECORDS - 1));
    a.commit_offsets([(tp.clone(), STORED)], CommitMode::Sync)
        .await
        .unwrap();
    // Let the next fetch park at the broker.
    let _ = tokio::time::timeout(Duration::from_millis(500), a.recv()).await;
    a.seek(&tp, Offset::Stored).unwrap();
    let b = Consumer::new(&cfg).await.unwrap();
    b.subscribe(&[&topic]).unwrap();
    // Both poll until every record from STORED on was delivered again.
    let mut seen: BTreeMap<i64, usize> = BTreeMap::new();
    let mut firsts: Vec<(&str, i64)> = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
    while (STORED..RECORDS).any(|o| !seen.contains_key(&o)) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "not every record from {STORED} was delivered again: {seen:?} (first after the seek or the move: {firsts:?})"
        );
        let (who, m) = tokio::select! {
            m = a.recv() => ("a", m.unwrap()),
            m = b.recv() => ("b", m.unwrap()),
            _ = tokio::time::sleep(Duration::from_millis(200)) => continue,
        };
        if !firsts.iter().any(|(w, _)| *w == who) {
            firsts.push((who, m.offset()));
        }
        *seen.entry(m.offset()).or_default() += 1;
    }
    // Whoever delivered first after the seek started at the committed offset.
    assert_eq!(firsts[0].1, STORED, "first deliveries: {firsts:?}");
    assert!(
        seen.keys().all(|o| *o >= STORED),
        "nothing before the committed offset: {seen:?}"
    );
    b.close().await.unwrap();
    a.close().await.unwrap();
}

/// A client built with `lazy_bootstrap` (the rdkafka drop-in's clients: rdkafka's `create()`
/// never waits for the cluster) answers its first `fetch_metadata(None)` with the cluster's
/// brokers, as an eagerly built one does, even while its background bootstrap has not
/// filled its cached metadata yet. (The list of every topic came from the answer, the brokers
/// from the cache: the drop-in's metadata dump saw 0 brokers about one run in two.) Ten fresh
/// clients of each kind, each asking at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lazily_built_clients_list_the_brokers_in_their_first_metadata() {
    let cfg = common::config(&bootstrap(), &[]);
    let eager = admin().await.fetch_metadata(None).await.unwrap();
    assert!(!eager.brokers.is_empty());
    let want: Vec<i32> = eager.brokers.iter().map(|b| b.node_id).collect();
    for i in 0..10 {
        let consumer = Consumer::builder(&cfg)
            .lazy_bootstrap(true)
            .build()
            .await
            .unwrap();
        let producer = kafka_sdk::Producer::builder(&cfg)
            .lazy_bootstrap(true)
            .build()
            .await
            .unwrap();
        let admin = AdminClient::builder(&cfg)
            .lazy_bootstrap(true)
            .build()
            .await
            .unwrap();
        for (kind, md) in [
            ("consumer", consumer.fetch_metadata(None).await.unwrap()),
            ("producer", producer.fetch_metadata(None).await.unwrap()),
            ("admin", admin.fetch_metadata(None).await.unwrap()),
        ] {
            let got: Vec<i32> = md.brokers.iter().map(|b| b.node_id).collect();
            assert_eq!(got, want, "{kind} #{i}");
            assert_eq!(md.cluster_id, eager.cluster_id, "{kind} #{i}");
        }
    }
}

/// The prefetch stays within `queued.max.messages.kbytes` however much the partitions hold,
/// and every record still arrives once the application reads. Each fetch asks for at most
/// the room left in the bound (it asked for `fetch.max.bytes` and brought up to
/// `max.partition.fetch.bytes` per partition, 1.6 MB here against a 256 KiB bound; with
/// several brokers each fetch task added its own), and a buffered message counts its real
/// size.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prefetch_stays_within_queued_max_messages_kbytes() {
    const PARTS: i32 = 4;
    const PER_PART: usize = 400;
    let topic = unique("c-prefetch");
    create_topic(&topic, PARTS).await;
    for p in 0..PARTS {
        for i in 0..PER_PART / 20 {
            // Batches of 20 records of 1 KB.
            produce(&topic, p, &sized_recs(i * 20, 20, 1000), Compression::None).await;
        }
    }
    let c =
        Consumer::new(&seek_cfg(&unique("g-prefetch")).with("queued.max.messages.kbytes", "256"))
            .await
            .unwrap();
    assign_from_beginning(&c, &topic, PARTS);
    let buffered = |c: &Consumer| {
        let s = c.statistics();
        let parts = s.topics.get(&topic).map(|t| t.partitions.values());
        parts.into_iter().flatten().fold((0u64, 0i64), |(b, n), p| {
            (b + p.fetchq_size, n + p.fetchq_cnt)
        })
    };
    // Let the prefetch fill without reading anything.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while buffered(&c).1 == 0 {
        assert!(std::time::Instant::now() < deadline, "nothing fetched");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (bytes, count) = buffered(&c);
    // The bound, plus one batch a fetch may return past it (KIP-74).
    let bound = 256 * 1024 + 21_000;
    assert!(
        bytes <= bound,
        "{bytes} bytes ({count} records) buffered, bound {bound}"
    );
    assert!(
        count as u64 * 1000 <= bytes,
        "a buffered record counts at least its value: {count} records, {bytes} bytes"
    );
    assert!(
        count < (PARTS as i64) * PER_PART as i64,
        "everything prefetched"
    );
    // Reading frees room: all records arrive, in order per partition.
    let mut next = [0i64; PARTS as usize];
    for _ in 0..PARTS as usize * PER_PART {
        let m = recv_one(&c, Duration::from_secs(30), "prefetched record").await;
        let p = m.partition() as usize;
        assert_eq!(m.offset(), next[p], "partition {p}");
        next[p] += 1;
    }
    assert!(buffered(&c).0 <= bound);
}

/// A partition whose buffer is full does not wait behind a long poll of the others: with
/// a per-partition share of the prefetch bound, a backlogged partition left out of the
/// fetch while its buffer was full, and the fetch of the caught-up partitions that went
/// without it waited `fetch.wait.max.ms` at the broker, so the backlog moved one buffer per
/// long poll (3,000 records here took ~40 s at 3 s per poll; in a 3-node run of 100
/// partitions a quarter of the run was such waits at the end of the data).
/// An application that reads slower than its brokers send: the consumer holds about one
/// fetch response per partition (`max.partition.fetch.bytes`), not the whole prefetch bound
/// (`queued.max.messages.kbytes`, 64 MiB): a partition with a response's worth buffered is
/// left out of the next fetch until the application takes from it. Every record is still
/// delivered, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_reader_holds_about_one_response_per_partition() {
    const N: usize = 4_000;
    let topic = unique("c-hold");
    create_topic(&topic, 1).await;
    // 4,000 records of ~1 KB: ~4 MB, 64 responses' worth.
    let mut i = 0;
    while i < N {
        let batch: Vec<Rec> = (i..i + 100)
            .map(|n| (None, Some(format!("{n:01000}").into_bytes()), vec![]))
            .collect();
        produce(&topic, 0, &batch, Compression::None).await;
        i += 100;
    }
    let tp = TopicPartition::new(topic.as_str(), 0);
    let c = assigned_from_start(
        &seek_cfg(&unique("g-hold")).with("max.partition.fetch.bytes", "65536"),
        &tp,
    )
    .await;
    let first = recv_one(&c, Duration::from_secs(30), "first record").await;
    assert_eq!(first.offset(), 0);
    // The application is busy; the consumer goes on fetching only as far as its rule lets.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let held = c.handle().statistics().topics[&topic].partitions[&0].fetchq_size;
    assert!(
        held <= 512 * 1024,
        "{held} bytes buffered for one partition with 64 KiB responses"
    );
    for n in 1..N as i64 {
        let m = recv_one(&c, Duration::from_secs(30), "record").await;
        assert_eq!(m.offset(), n);
    }
    c.close().await.unwrap();
}

/// `batches` batches of 250 records of 4 KB (`{n:04096}`, n counting from 0 per
/// partition) to partition `p`, zstd-compressed: ~1 MB decoded each, a few KB on the wire.
async fn produce_compressible(topic: &str, p: i32, batches: usize) {
    for b in 0..batches {
        let recs: Vec<Rec> = (b * 250..(b + 1) * 250)
            .map(|n| (None, Some(format!("{n:04096}").into_bytes()), vec![]))
            .collect();
        produce(topic, p, &recs, Compression::Zstd).await;
    }
}

/// Batches of `produce_compressible` in the compressed-backlog tests: ~24 MB decoded, one
/// response of a few KB per batch on the wire.
const BACKLOG_BATCHES: usize = 24;

/// A one-partition topic holding `BACKLOG_BATCHES` compressible zstd batches, and a consumer
/// assigned to it from the start that received its first record.
async fn compressed_backlog(name: &str) -> (Consumer, TopicPartition) {
    let topic = unique(name);
    create_topic(&topic, 1).await;
    produce_compressible(&topic, 0, BACKLOG_BATCHES).await;
    let tp = TopicPartition::new(topic.as_str(), 0);
    let c = assigned_from_start(&seek_cfg(&unique(&format!("g-{name}"))), &tp).await;
    let first = recv_one(&c, Duration::from_secs(30), "first record").await;
    assert_eq!(first.offset(), 0);
    (c, tp)
}

/// Asserts that `tp` holds at most 4 MiB decoded and buffered (`DECODE_AHEAD` plus a batch,
/// with room).
fn assert_little_decoded_ahead(c: &Consumer, tp: &TopicPartition, what: &str) {
    let held = c.handle().statistics().topics[&*tp.topic].partitions[&tp.partition].fetchq_size;
    assert!(
        held <= 4 << 20,
        "{held} bytes decoded and buffered for {what}"
    );
}

/// Receives the rest of the backlog after its first record, in order, and nothing past it.
async fn read_rest_of_backlog(c: &Consumer) {
    for n in 1..(BACKLOG_BATCHES * 250) as i64 {
        let m = recv_one(c, Duration::from_secs(30), "record").await;
        assert_eq!(m.offset(), n);
        assert_eq!(m.value().unwrap(), format!("{n:04096}").as_bytes());
    }
    let extra = tokio::time::timeout(Duration::from_secs(2), c.recv()).await;
    assert!(
        extra.is_err(),
        "past the end: {:?}",
        extra.map(|r| r.map(|m| m.offset()))
    );
}

/// Compressed batches are decoded as the application reads, not a response at a time: 24
/// batches of ~1 MB decoded fit one response (a few KB each on the wire), and a consumer
/// that decoded the whole response held all ~24 MB before the application took its second
/// record. Now it holds about `DECODE_AHEAD` (1 MiB) plus one batch decoded, the rest
/// waits compressed; every record still arrives, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compressed_batches_are_decoded_as_the_application_reads() {
    let (c, tp) = compressed_backlog("c-decode-ahead").await;
    // The application is busy.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_little_decoded_ahead(&c, &tp, "one partition");
    read_rest_of_backlog(&c).await;
    c.close().await.unwrap();
}

/// A partition whose decoding waits for the application to read does not hold back the
/// other partitions of the same response once the application pauses it: partitions 0
/// and 2 share a fetch lane (dealt in turn, partition 1 is empty), so one response brings
/// both, and the decoding of the first one waits while its records are not read. Paused,
/// the partition no longer counts as being read; the decoding goes on to the other, which
/// arrives whole. Resumed, the paused one delivers the rest of its records.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pausing_a_partition_whose_decoding_waits_frees_the_others() {
    const BATCHES: usize = 8;
    const N: i64 = (BATCHES * 250) as i64;
    let topic = unique("c-decode-pause");
    create_topic(&topic, 3).await;
    produce_compressible(&topic, 0, BATCHES).await;
    produce_compressible(&topic, 2, BATCHES).await;
    let c = Consumer::new(&seek_cfg(&unique("g-decode-pause")))
        .await
        .unwrap();
    assign_from_beginning(&c, &topic, 3);
    let first = recv_one(&c, Duration::from_secs(30), "first record").await;
    assert_eq!(first.offset(), 0);
    let held = first.partition();
    let other = 2 - held;
    // Let the decoding of the first partition reach its wait, then pause that partition.
    tokio::time::sleep(Duration::from_millis(500)).await;
    c.handle()
        .pause(&[TopicPartition::new(topic.as_str(), held)])
        .unwrap();
    let mut next = [0i64; 3];
    next[held as usize] = 1;
    // Records of the paused partition already handed to the chunk in delivery may come
    // first; then the other partition, whole.
    while next[other as usize] < N {
        let m = recv_one(&c, Duration::from_secs(30), "record of the other partition").await;
        let p = m.partition() as usize;
        assert_eq!(m.offset(), next[p], "partition {p}");
        next[p] += 1;
    }
    c.handle()
        .resume(&[TopicPartition::new(topic.as_str(), held)])
        .unwrap();
    while next[held as usize] < N {
        let m = recv_one(
            &c,
            Duration::from_secs(30),
            "record of the resumed partition",
        )
        .await;
        assert_eq!(m.partition(), held);
        assert_eq!(m.offset(), next[held as usize]);
        next[held as usize] += 1;
    }
    c.close().await.unwrap();
}

/// Pausing a partition does not let its decoding run ahead: a paused partition's records
/// are not read, so the decoding of its answer stops once it holds `DECODE_AHEAD` decoded
/// bytes, and the rest of the answer is fetched again after `resume`. Before, a pause let
/// the decoding go on through the whole answer (about 24 MB decoded for this one
/// partition, held until resumed and read).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_partition_is_not_decoded_ahead_of_the_application() {
    let (c, tp) = compressed_backlog("c-decode-paused").await;
    // Let the decoding reach its wait, then pause the partition for a while.
    tokio::time::sleep(Duration::from_millis(500)).await;
    c.handle().pause(std::slice::from_ref(&tp)).unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_little_decoded_ahead(&c, &tp, "one paused partition");
    c.handle().resume(std::slice::from_ref(&tp)).unwrap();
    read_rest_of_backlog(&c).await;
    c.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backlog_is_not_held_behind_a_long_poll_of_caught_up_partitions() {
    const N: usize = 3_000;
    let topic = unique("c-backlog");
    create_topic(&topic, 2).await;
    // Partition 0 has a backlog; partition 1 is empty (caught up from the start).
    produce_n(&topic, 0, 0, N).await;
    let c = Consumer::new(
        &seek_cfg(&unique("g-backlog"))
            .with("queued.max.messages.kbytes", "64")
            .with("max.partition.fetch.bytes", "1024")
            .with("fetch.wait.max.ms", "3000"),
    )
    .await
    .unwrap();
    assign_from_beginning(&c, &topic, 2);
    let first = recv_one(&c, Duration::from_secs(30), "first record").await;
    assert_eq!((first.partition(), first.offset()), (0, 0));
    let started = std::time::Instant::now();
    for i in 1..N as i64 {
        let m = recv_one(&c, Duration::from_secs(30), "backlog record").await;
        assert_eq!((m.partition(), m.offset()), (0, i));
        // An application slower than the fetches: the buffer fills up.
        if i % 20 == 0 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
    let took = started.elapsed();
    // ~0.3 s of the application's own sleeps; each wait behind a long poll costs 3 s.
    assert!(
        took < Duration::from_secs(9),
        "{N} buffered-then-fetched records took {took:?}: fetches of the backlog waited behind long polls"
    );
    c.close().await.unwrap();
}

/// The partitions one broker leads are fetched in two lanes, each with its own connection
/// and fetch session, so two fetches are held at that broker at once (the broker prepares
/// one while the other's answer is read: 1.13-1.15x the records per second of one lane at
/// 1 KiB). Here both partitions are caught up and every fetch long-polls for 4 s: with one
/// lane a single request was in flight to the broker; with two, both are, all the time.
/// Records then produced to each partition still arrive, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_brokers_partitions_are_fetched_in_two_lanes() {
    let topic = unique("c-lanes");
    create_topic(&topic, 2).await;
    let c = Consumer::new(&config(None).with("fetch.wait.max.ms", "4000"))
        .await
        .unwrap();
    assign_from_beginning(&c, &topic, 2);
    let in_flight = |c: &Consumer| -> i64 {
        let s = c.statistics();
        s.brokers
            .values()
            .filter(|b| b.nodeid >= 0)
            .map(|b| b.waitresp_cnt)
            .sum()
    };
    // Positions looked up, both lanes' first fetches sent.
    wait_until("two fetches in flight", Duration::from_secs(20), || {
        in_flight(&c) >= 2
    })
    .await;
    // Held: sampled over 2 s (the long polls end and are sent again every 4 s).
    let mut held = 0;
    for _ in 0..40 {
        held += usize::from(in_flight(&c) >= 2);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        held >= 32,
        "two requests in flight in only {held} of 40 samples"
    );
    for p in 0..2 {
        produce(&topic, p, &recs(0, 5), Compression::None).await;
    }
    let got = recv_n(&c, 10, Duration::from_secs(20)).await;
    for p in 0..2 {
        let offsets: Vec<i64> = got
            .iter()
            .filter(|m| m.partition() == p)
            .map(|m| m.offset())
            .collect();
        assert_eq!(offsets, (0..5).collect::<Vec<_>>(), "partition {p}");
    }
    c.close().await.unwrap();
}

/// A subscribed topic deleted while the member holds an uncommitted offset of it (auto
/// commit on, its interval far away): the commit before giving its partitions up is
/// answered UNKNOWN_TOPIC_OR_PARTITION, which cannot get better, so it is not retried
/// (Java's KAFKA-16224 for its new consumer). Before, it was retried until
/// `request.timeout.ms` (30 s), holding the rebalance (with the eager protocol the other
/// topic's partition, revoked too, was not fetched meanwhile) and `close`. Both group
/// protocols: the member settles on the other topic promptly and `close` returns promptly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_topic_does_not_hold_up_the_rebalance_or_close() {
    for protocol in ["classic", "consumer"] {
        let (gone, stays) = (unique("deleted"), unique("stays"));
        create_topic(&gone, 2).await;
        create_topic(&stays, 1).await;
        let group = unique("deleted-g");
        let mut cfg = config(Some(&group));
        cfg.set("group.protocol", protocol)
            .set("auto.commit.interval.ms", "600000")
            .set("allow.auto.create.topics", "false");
        let c = Consumer::new(&cfg).await.unwrap();
        c.subscribe(&[gone.as_str(), stays.as_str()]).unwrap();
        let all_three = || c.assignment().len() == 3;
        wait_until("both topics assigned", Duration::from_secs(60), all_three).await;
        // Let a rebalance for the new topics' metadata come and go first: its commit would
        // take the offset below along, and the deletion would find nothing to commit.
        tokio::time::sleep(Duration::from_secs(2)).await;
        wait_until("both topics assigned", Duration::from_secs(60), all_three).await;
        produce_n(&gone, 0, 0, 1).await;
        let first = recv_n(&c, 1, Duration::from_secs(60)).await;
        assert_eq!(first[0].topic(), gone, "{protocol}");
        let admin = admin().await;
        for (name, r) in admin.delete_topics(&[gone.as_str()]).await.unwrap() {
            r.unwrap_or_else(|e| panic!("delete {name}: {e}"));
        }
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        while admin.list_topics(false).await.unwrap().contains(&gone) {
            assert!(
                tokio::time::Instant::now() < deadline,
                "{gone} still listed"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let started = tokio::time::Instant::now();
        let only_stays = vec![TopicPartition::new(stays.as_str(), 0)];
        wait_until(
            "the assignment without the deleted topic",
            Duration::from_secs(60),
            || c.assignment() == only_stays,
        )
        .await;
        let settled = started.elapsed();
        assert!(
            settled < Duration::from_secs(15),
            "{protocol}: the member settled {settled:?} after the deletion"
        );
        produce_n(&stays, 0, 0, 1).await;
        let next = recv_n(&c, 1, Duration::from_secs(15)).await;
        assert_eq!(next[0].topic(), stays, "{protocol}");
        let started = tokio::time::Instant::now();
        let closed = c.close().await;
        let took = started.elapsed();
        assert!(
            took < Duration::from_secs(10),
            "{protocol}: close took {took:?} ({closed:?})"
        );
    }
}

/// Partitions added to a topic while consumers read it: a consumer in assign mode that is
/// assigned one of the new partitions (its metadata cached before they existed) reads it,
/// and a classic group's leader sees the new partition count and rebalances so that they
/// are read too (within `metadata.max.age.ms` plus a rebalance).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partitions_added_while_consuming_are_read() {
    let topic = unique("c-grown");
    create_topic(&topic, 1).await;
    produce_n(&topic, 0, 0, 10).await;
    let group = unique("c-grown-g");
    let member = Consumer::new(&group_cfg(&group).with("metadata.max.age.ms", "1000"))
        .await
        .unwrap();
    member.subscribe(&[topic.as_str()]).unwrap();
    recv_n(&member, 10, Duration::from_secs(30)).await;
    let assigned = Consumer::new(&config(None)).await.unwrap();
    assigned
        .assign(vec![(
            TopicPartition::new(topic.as_str(), 0),
            Offset::Beginning,
        )])
        .unwrap();
    recv_n(&assigned, 10, Duration::from_secs(30)).await;

    for (t, r) in admin()
        .await
        .create_partitions(&[(&topic, 3)])
        .await
        .unwrap()
    {
        r.unwrap_or_else(|e| panic!("create partitions of {t}: {e}"));
    }
    produce_n(&topic, 2, 100, 5).await;
    assigned
        .assign(vec![(
            TopicPartition::new(topic.as_str(), 2),
            Offset::Beginning,
        )])
        .unwrap();
    let got = recv_n(&assigned, 5, Duration::from_secs(30)).await;
    assert!(got.iter().all(|m| m.partition() == 2), "assign mode");
    let got = recv_n(&member, 5, Duration::from_secs(30)).await;
    assert!(got.iter().all(|m| m.partition() == 2), "group member");
    let mut owned: Vec<i32> = member.assignment().iter().map(|tp| tp.partition).collect();
    owned.sort();
    assert_eq!(owned, [0, 1, 2], "the group's assignment grew");
}

/// A partition being fetched loses its leader for good (its topic deleted): the consumer
/// asks for metadata with a backoff growing from `retry.backoff.ms` towards
/// `retry.backoff.max.ms` (KIP-580, as Java's), not every `retry.backoff.ms` for as long as
/// it stays assigned.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_refreshes_for_a_lost_leader_back_off() {
    let topic = unique("c-lost-leader");
    create_topic(&topic, 1).await;
    produce_n(&topic, 0, 0, 5).await;
    let c = Consumer::new(&config(None).with("allow.auto.create.topics", "false"))
        .await
        .unwrap();
    c.assign(vec![(
        TopicPartition::new(topic.as_str(), 0),
        Offset::Beginning,
    )])
    .unwrap();
    recv_n(&c, 5, Duration::from_secs(30)).await;
    let metadata = |c: &Consumer| -> u64 {
        c.statistics()
            .brokers
            .values()
            .map(|b| b.req.get("Metadata").copied().unwrap_or(0))
            .sum()
    };
    for (t, r) in admin()
        .await
        .delete_topics(&[topic.as_str()])
        .await
        .unwrap()
    {
        r.unwrap_or_else(|e| panic!("delete {t}: {e}"));
    }
    let before = metadata(&c);
    let window = Duration::from_secs(8);
    let end = tokio::time::Instant::now() + window;
    while let Ok(r) = tokio::time::timeout_at(end, c.recv()).await {
        if let Ok(m) = r {
            panic!("a record from a deleted topic: {m:?}");
        }
    }
    let during = metadata(&c) - before;
    eprintln!("{during} metadata requests in {window:?}");
    // Every 100 ms: ~50-80 in 8 s. Backing off 100, 200, 400, 800 ms, then 1 s: ~12.
    assert!(
        during <= 25,
        "{during} metadata requests in {window:?} while the partition had no leader"
    );
}
