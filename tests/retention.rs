//! Retention and compaction against a real broker (issue 13, item 17).
//!
//! The tests run on a dedicated single-node cluster whose log cleaner and retention checker
//! run every few hundred milliseconds (`cluster()`), so a compacted topic with
//! `segment.ms=100`, `min.cleanable.dirty.ratio=0.01` and `min.compaction.lag.ms=0` really
//! gets cleaned while a test waits. Every compaction test first waits until an overwritten
//! key's old value is gone from the log (read back with a consumer), so it cannot pass
//! without the cleaner having run.
//!
//! - compaction: overwritten keys, tombstones read back as `None`, offset gaps skipped;
//! - commits and restarts whose committed offset falls into a gap, also a gap inside one
//!   cleaned batch (with a seek and an absolute assignment there too);
//! - an idempotent producer's last batch emptied by the cleaner (a header without records),
//!   stepped over with one batch per fetch;
//! - a transactional producer on a compacted topic (control records, aborted data) read with
//!   `read_committed`, before and after cleaning;
//! - retention: records removed with `kafka-delete-records` or by `retention.ms` below or
//!   above a group's committed offset; `auto.offset.reset` applies only when the committed
//!   offset is gone, and `earliest` means the new log start.

mod support;

use std::collections::BTreeMap;
use std::sync::OnceLock;
use std::time::Duration;

use kafka_sdk::admin::{AdminClient, NewTopic};
use kafka_sdk::config::ClientConfig;
use kafka_sdk::consumer::{CommitMode, Consumer, Message, Offset};
use kafka_sdk::producer::{Producer, ProducerRecord};
use kafka_sdk::{KafkaCode, TopicPartition};
use kafka_testkit::{ClusterOptions, KafkaCluster};
use tokio::time::Instant;

use support::common::{self, unique};

/// Bound on waiting for the log cleaner or the retention checker.
const CLEANER_WAIT: Duration = Duration::from_secs(180);
/// Bound on reading a partition to its end.
const READ_WAIT: Duration = Duration::from_secs(60);

/// The dedicated cluster of this file: the cleaner backs off 200 ms between passes, the
/// retention check runs every 500 ms, both start right away, and the cleaner's dedupe buffer
/// is small (the test topics are tiny; the default 128 MiB would crowd the 384 MiB heap).
/// Local brokers only: an external cluster would not have these settings.
fn cluster() -> &'static KafkaCluster {
    static CLUSTER: OnceLock<KafkaCluster> = OnceLock::new();
    CLUSTER.get_or_init(|| {
        let props = [
            ("log.cleaner.backoff.ms", "200"),
            ("log.cleaner.dedupe.buffer.size", "8388608"),
            ("log.cleaner.threads", "1"),
            ("log.retention.check.interval.ms", "500"),
            ("log.initial.task.delay.ms", "0"),
            ("log.segment.delete.delay.ms", "0"),
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
        .expect("start the retention test cluster")
    })
}

async fn bootstrap() -> String {
    common::blocking(|| cluster().bootstrap()).await
}

/// Creates a one-partition topic with `configs`.
async fn create_topic(bs: &str, prefix: &str, configs: &[(&str, &str)]) -> String {
    let topic = unique(prefix);
    let mut nt = NewTopic::new(topic.as_str(), 1, 1);
    for (k, v) in configs {
        nt = nt.config(*k, *v);
    }
    AdminClient::new(&common::config(bs, &[]))
        .await
        .expect("admin")
        .create_topic(nt)
        .await
        .unwrap_or_else(|e| panic!("create {topic}: {e}"));
    topic
}

/// Topic configs that make the cleaner compact everything outside the active segment, and
/// roll the active segment on the first append 100 ms after its first record. Tombstones
/// stay a day (so they can be read back).
const COMPACTED: &[(&str, &str)] = &[
    ("cleanup.policy", "compact"),
    ("segment.ms", "100"),
    ("min.cleanable.dirty.ratio", "0.01"),
    ("min.compaction.lag.ms", "0"),
    ("delete.retention.ms", "86400000"),
];

fn consumer_config(bs: &str, extra: &[(&str, &str)]) -> ClientConfig {
    let mut c = common::config(bs, &[("enable.auto.commit", "false")]);
    for (k, v) in extra {
        c.set(*k, *v);
    }
    c
}

async fn producer(bs: &str, extra: &[(&str, &str)]) -> Producer {
    let mut kv = vec![("linger.ms", "0")];
    kv.extend_from_slice(extra);
    Producer::new(&common::config(bs, &kv))
        .await
        .expect("producer")
}

fn record(topic: &str, key: &str, value: Option<&str>) -> ProducerRecord {
    ProducerRecord::new(topic)
        .partition(0)
        .key(key.to_string())
        .opt_value(value.map(|v| bytes::Bytes::from(v.to_string())))
}

async fn send(p: &Producer, topic: &str, key: &str, value: Option<&str>) -> i64 {
    p.send_and_wait(record(topic, key, value))
        .await
        .unwrap_or_else(|e| panic!("send {key}: {e}"))
        .offset
}

fn tp0(topic: &str) -> TopicPartition {
    TopicPartition::new(topic, 0)
}

fn key_of(m: &Message) -> String {
    String::from_utf8_lossy(m.key().expect("every test record has a key")).into_owned()
}

fn value_of(m: &Message) -> Option<String> {
    m.value().map(|v| String::from_utf8_lossy(v).into_owned())
}

async fn high_watermark(c: &Consumer, tp: &TopicPartition) -> i64 {
    c.fetch_watermarks(tp, Duration::from_secs(30))
        .await
        .expect("watermarks")
        .high
}

/// Waits until `c`'s high watermark of `tp` is `want`. For a `read_committed` consumer that
/// mark is the last stable offset, which reaches a committed transaction's end only once the
/// coordinator has written its marker: that happens after `commit_transaction` returns (the
/// EndTxn answer only waits for the transaction log), so reading up to the mark right after
/// a commit can stop short of it.
async fn await_high_watermark(c: &Consumer, tp: &TopicPartition, want: i64) {
    let deadline = Instant::now() + READ_WAIT;
    loop {
        let high = high_watermark(c, tp).await;
        if high == want {
            return;
        }
        assert!(
            high < want && Instant::now() < deadline,
            "{tp}: high watermark {high}, expected {want} within {READ_WAIT:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Receives from `c` (assigned `tp` only) until its position reaches `end`; every message
/// received on the way. Fails on a receive error, on a message at or past `end`, or when
/// `end` is not reached within [`READ_WAIT`].
async fn read_to(c: &Consumer, tp: &TopicPartition, end: i64) -> Vec<Message> {
    let deadline = Instant::now() + READ_WAIT;
    let mut out = Vec::new();
    loop {
        if matches!(c.position_of(tp).expect("assigned"), Some(p) if p >= end) {
            return out;
        }
        assert!(
            Instant::now() < deadline,
            "{tp}: position {:?} did not reach {end} within {READ_WAIT:?} ({} messages read)",
            c.position_of(tp),
            out.len()
        );
        match tokio::time::timeout(Duration::from_millis(500), c.recv()).await {
            Ok(Ok(m)) => {
                assert!(
                    m.offset() < end,
                    "message at {} past the end {end}",
                    m.offset()
                );
                out.push(m);
            }
            Ok(Err(e)) => panic!("recv after {} messages: {e}", out.len()),
            Err(_) => {}
        }
    }
}

/// Offsets strictly increase; returns whether the offsets have at least one gap.
fn assert_increasing(msgs: &[Message]) -> bool {
    let mut gap = false;
    for w in msgs.windows(2) {
        assert!(
            w[1].offset() > w[0].offset(),
            "offsets out of order: {} then {}",
            w[0].offset(),
            w[1].offset()
        );
        gap |= w[1].offset() > w[0].offset() + 1;
    }
    gap
}

/// Rolls segments (one `filler` record per round, at least 150 ms apart, so each append
/// rolls the active segment) and reads the partition from the beginning with `reader` after
/// each round, until `done` holds for what was read. Returns that read. Panics after
/// [`CLEANER_WAIT`].
async fn await_cleaned(
    filler: &Producer,
    reader: &Consumer,
    topic: &str,
    done: impl Fn(&[Message]) -> bool,
) -> Vec<Message> {
    let tp = tp0(topic);
    let deadline = Instant::now() + CLEANER_WAIT;
    let mut round = 0;
    loop {
        tokio::time::sleep(Duration::from_millis(150)).await;
        send(filler, topic, "filler", Some(&format!("f{round}"))).await;
        round += 1;
        let end = high_watermark(reader, &tp).await;
        reader.seek(&tp, Offset::Beginning).expect("seek");
        let msgs = read_to(reader, &tp, end).await;
        if done(&msgs) {
            return msgs;
        }
        assert!(
            Instant::now() < deadline,
            "{topic}: the cleaner did not compact within {CLEANER_WAIT:?} ({round} rounds); last read: {:?}",
            msgs.iter()
                .map(|m| (m.offset(), key_of(m), value_of(m)))
                .collect::<Vec<_>>()
        );
    }
}

/// Key `first` (never overwritten, so the gap left by the cleaner lies between records),
/// then keys `k0..k9` with values `a{i}`, then `b{i}`, then tombstones for `k0..k2`.
async fn overwritten_keys(p: &Producer, topic: &str) {
    send(p, topic, "first", Some("first")).await;
    for round in ["a", "b"] {
        for i in 0..10 {
            send(p, topic, &format!("k{i}"), Some(&format!("{round}{i}"))).await;
        }
    }
    for i in 0..3 {
        send(p, topic, &format!("k{i}"), None).await;
    }
}

/// The log after cleaning: no `a` value, and no `b` value of a deleted key.
fn compacted_keys(msgs: &[Message]) -> bool {
    msgs.iter().all(|m| match value_of(m) {
        Some(v) => !v.starts_with('a') && !["b0", "b1", "b2"].contains(&v.as_str()),
        None => true,
    })
}

/// (offset, key, value) of the messages that are not fillers.
fn keyed(msgs: &[Message]) -> Vec<(i64, String, Option<String>)> {
    msgs.iter()
        .filter(|m| key_of(m) != "filler")
        .map(|m| (m.offset(), key_of(m), value_of(m)))
        .collect()
}

/// The last value read of every key (`None` = tombstone), and how often each key was read.
fn by_key(msgs: &[Message]) -> BTreeMap<String, (Option<String>, usize)> {
    let mut m: BTreeMap<String, (Option<String>, usize)> = BTreeMap::new();
    for msg in msgs {
        let e = m.entry(key_of(msg)).or_default();
        e.0 = value_of(msg);
        e.1 += 1;
    }
    m
}

/// Overwritten keys and tombstones on a compacted topic: once the cleaner ran, each key is
/// read once with its last value, tombstones come back with a `None` value, the offsets
/// have gaps, and the consumer's position still reaches the high watermark.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compaction_overwrites_tombstones_and_gaps() {
    let bs = bootstrap().await;
    let topic = create_topic(&bs, "r-compact", COMPACTED).await;
    let p = producer(&bs, &[]).await;
    overwritten_keys(&p, &topic).await;

    let reader = Consumer::new(&consumer_config(&bs, &[])).await.unwrap();
    let tp = tp0(&topic);
    reader
        .assign(vec![(tp.clone(), Offset::Beginning)])
        .unwrap();
    let msgs = await_cleaned(&p, &reader, &topic, compacted_keys).await;

    assert!(
        assert_increasing(&msgs),
        "a compacted log has offset gaps: {:?}",
        msgs.iter()
            .map(|m| (m.offset(), key_of(m), value_of(m)))
            .collect::<Vec<_>>()
    );
    let keys = by_key(&msgs);
    for i in 0..10 {
        let (value, count) = keys
            .get(&format!("k{i}"))
            .unwrap_or_else(|| panic!("k{i} missing after compaction"));
        let want = (i >= 3).then(|| format!("b{i}"));
        assert_eq!(value, &want, "k{i}: last value (None = tombstone)");
        assert_eq!(*count, 1, "k{i} read once after compaction");
    }
    assert_eq!(keys["first"], (Some("first".to_string()), 1));
    assert_eq!(msgs[0].offset(), 0, "the record before the gap");
    reader.close().await.unwrap();
    p.close(Duration::from_secs(10)).await.unwrap();
}

/// Commits whose offset falls into a gap of a compacted log: a commit of the message
/// before a gap (so the committed offset no longer exists), then a restart, resumes at the
/// next record that exists, with no reset (`auto.offset.reset=latest` would skip to the
/// end); an explicit commit of an offset inside a gap does the same; a commit at the end of
/// the log resumes at the next new record.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commits_and_restarts_across_gaps() {
    let bs = bootstrap().await;
    let topic = create_topic(&bs, "r-gaps", COMPACTED).await;
    let p = producer(&bs, &[]).await;
    overwritten_keys(&p, &topic).await;
    let tp = tp0(&topic);
    let reader = Consumer::new(&consumer_config(&bs, &[])).await.unwrap();
    reader
        .assign(vec![(tp.clone(), Offset::Beginning)])
        .unwrap();
    let log = await_cleaned(&p, &reader, &topic, compacted_keys).await;
    reader.close().await.unwrap();
    let end = log.last().unwrap().offset() + 1;
    // The first gap that starts after a record: `log[i]` then a gap then `log[i + 1]`.
    let i = log
        .windows(2)
        .position(|w| w[1].offset() > w[0].offset() + 1)
        .expect("a gap in the compacted log");
    let (before, after) = (&log[i], &log[i + 1]);

    let group = unique("g-gaps");
    let cfg = consumer_config(
        &bs,
        &[
            ("group.id", group.as_str()),
            ("auto.offset.reset", "latest"),
        ],
    );
    // 1. Subscribe (nothing committed yet: from the beginning), read up to `before`, commit
    // after it (an offset that is not in the log).
    let c = Consumer::new(&cfg.clone().with("auto.offset.reset", "earliest"))
        .await
        .unwrap();
    c.subscribe(&[topic.as_str()]).unwrap();
    let deadline = Instant::now() + READ_WAIT;
    loop {
        let m = tokio::time::timeout_at(deadline, c.recv())
            .await
            .expect("read up to the gap")
            .expect("recv");
        if m.offset() == before.offset() {
            c.commit_message(&m, CommitMode::Sync).await.unwrap();
            break;
        }
        assert!(
            m.offset() < before.offset(),
            "skipped past {}",
            before.offset()
        );
    }
    c.close().await.unwrap();

    // 2. Restart: resumes at the record after the gap, reads to the end, commits the end.
    let c = Consumer::new(&cfg).await.unwrap();
    c.subscribe(&[topic.as_str()]).unwrap();
    let first = tokio::time::timeout(READ_WAIT, c.recv())
        .await
        .expect("first record after restart")
        .expect("recv");
    assert_eq!(
        (first.offset(), key_of(&first), value_of(&first)),
        (after.offset(), key_of(after), value_of(after)),
        "resumes at the first record after the gap"
    );
    let rest = read_to(&c, &tp, end).await;
    assert_eq!(
        keyed(&rest),
        keyed(&log[i + 2..]),
        "the rest of the log, in order (fillers aside: the cleaner may have removed more)"
    );
    // 3. An explicit commit of an offset inside the gap.
    c.commit_offsets([(tp.clone(), before.offset() + 1)], CommitMode::Sync)
        .await
        .unwrap();
    c.close().await.unwrap();

    let c = Consumer::new(&cfg).await.unwrap();
    c.assign(vec![(tp.clone(), Offset::Stored)]).unwrap();
    let first = tokio::time::timeout(READ_WAIT, c.recv())
        .await
        .expect("first record after the explicit commit")
        .expect("recv");
    assert_eq!(first.offset(), after.offset(), "resumes after the gap");
    read_to(&c, &tp, end).await;
    c.commit(CommitMode::Sync).await.unwrap();
    assert_eq!(
        c.committed(Some(std::slice::from_ref(&tp)), Duration::from_secs(30))
            .await
            .unwrap(),
        vec![(tp.clone(), Some(end))]
    );
    c.close().await.unwrap();

    // 4. Committed at the end: a restart resumes at the next new record.
    let c = Consumer::new(&cfg).await.unwrap();
    c.assign(vec![(tp.clone(), Offset::Stored)]).unwrap();
    let next = send(&p, &topic, "new", Some("new")).await;
    let m = tokio::time::timeout(READ_WAIT, c.recv())
        .await
        .expect("the new record")
        .expect("recv");
    assert_eq!((m.offset(), value_of(&m)), (next, Some("new".to_string())));
    c.close().await.unwrap();
    p.close(Duration::from_secs(10)).await.unwrap();
}

/// Gaps inside one record batch: the cleaner keeps a batch's surviving records in a batch
/// with the same base offset, so a fetch at an offset inside it returns records before that
/// offset, which the consumer must skip. A seek, an absolute assignment and a group commit
/// into such a gap each resume at the next surviving record of the batch, without a reset
/// (`auto.offset.reset=latest` would skip to the end).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn positions_inside_a_compacted_batch() {
    let bs = bootstrap().await;
    let topic = create_topic(&bs, "r-batch", COMPACTED).await;
    let tp = tp0(&topic);
    // One batch, offsets 0..=9: `u{i}` survive at 0, 4, 7, 9; `d` is overwritten later.
    let batched = producer(&bs, &[("linger.ms", "500")]).await;
    let keys = ["u0", "d", "d", "d", "u4", "d", "d", "u7", "d", "u9"];
    let mut futs = Vec::new();
    for (i, k) in keys.iter().enumerate() {
        let value = format!("{k}-{i}");
        futs.push(batched.send(record(&topic, k, Some(&value))).await.unwrap());
    }
    for (i, f) in futs.into_iter().enumerate() {
        assert_eq!(f.await.unwrap().offset, i as i64);
    }
    let p = producer(&bs, &[]).await;
    send(&p, &topic, "d", Some("d-last")).await;

    let reader = Consumer::new(&consumer_config(&bs, &[])).await.unwrap();
    reader
        .assign(vec![(tp.clone(), Offset::Beginning)])
        .unwrap();
    let log = await_cleaned(&p, &reader, &topic, |msgs| {
        msgs.iter()
            .filter(|m| key_of(m) == "d")
            .all(|m| value_of(m).as_deref() == Some("d-last"))
    })
    .await;
    reader.close().await.unwrap();
    assert_eq!(
        keyed(&log)[..5]
            .iter()
            .map(|(o, _, v)| (*o, v.clone().unwrap()))
            .collect::<Vec<_>>(),
        [
            (0, "u0-0"),
            (4, "u4-4"),
            (7, "u7-7"),
            (9, "u9-9"),
            (10, "d-last")
        ]
        .map(|(o, v)| (o, v.to_string()))
    );
    // The precondition: the survivors still share one batch with gaps inside.
    let raw = support::raw::reader(&bs).await;
    let batches = support::raw::fetch_batches(&raw, &topic, 0).await;
    let first = &batches[0];
    assert_eq!(
        (
            first.base_offset,
            first.records.iter().map(|r| r.offset).collect::<Vec<_>>()
        ),
        (0, vec![0, 4, 7, 9]),
        "the cleaned first batch"
    );

    let cfg = consumer_config(&bs, &[("auto.offset.reset", "latest")]);
    let c = Consumer::new(&cfg).await.unwrap();
    c.assign(vec![(tp.clone(), Offset::Offset(1))]).unwrap();
    let m = tokio::time::timeout(READ_WAIT, c.recv())
        .await
        .expect("a record")
        .expect("recv");
    assert_eq!((m.offset(), value_of(&m).as_deref()), (4, Some("u4-4")));
    c.seek(&tp, Offset::Offset(5)).unwrap();
    let m = tokio::time::timeout(READ_WAIT, c.recv())
        .await
        .expect("a record")
        .expect("recv");
    assert_eq!((m.offset(), value_of(&m).as_deref()), (7, Some("u7-7")));
    c.close().await.unwrap();

    let group = unique("g-batch");
    commit_for(&bs, &group, &topic, 8).await;
    let m = first_from_committed(&bs, &group, &topic, "latest").await;
    assert_eq!((m.offset(), value_of(&m).as_deref()), (9, Some("u9-9")));
    batched.close(Duration::from_secs(10)).await.unwrap();
    p.close(Duration::from_secs(10)).await.unwrap();
}

/// An idempotent producer's last batch whose records were all cleaned away: the broker
/// keeps the batch header with no records (to keep the producer's sequence), and the
/// consumer, fetching one batch at a time (`max.partition.fetch.bytes=1`), must step over
/// it instead of fetching it again and again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn empty_batch_left_by_the_cleaner() {
    let bs = bootstrap().await;
    let topic = create_topic(&bs, "r-empty", COMPACTED).await;
    let tp = tp0(&topic);
    let old = producer(&bs, &[("enable.idempotence", "true")]).await;
    assert_eq!(send(&old, &topic, "x", Some("old")).await, 0);
    old.close(Duration::from_secs(10)).await.unwrap();
    let p = producer(&bs, &[]).await;
    assert_eq!(send(&p, &topic, "x", Some("new")).await, 1);
    let reader = Consumer::new(&consumer_config(&bs, &[])).await.unwrap();
    reader
        .assign(vec![(tp.clone(), Offset::Beginning)])
        .unwrap();
    await_cleaned(&p, &reader, &topic, |msgs| {
        !msgs.iter().any(|m| value_of(m).as_deref() == Some("old"))
    })
    .await;
    reader.close().await.unwrap();
    // The precondition: an empty batch at offset 0.
    let raw = support::raw::reader(&bs).await;
    let batches = support::raw::fetch_batches(&raw, &topic, 0).await;
    assert_eq!(
        (
            batches[0].base_offset,
            batches[0].last_offset(),
            batches[0].records.len()
        ),
        (0, 0, 0),
        "the cleaner kept the idempotent producer's last batch, empty"
    );

    for isolation in ["read_uncommitted", "read_committed"] {
        let c = Consumer::new(&consumer_config(
            &bs,
            &[
                ("isolation.level", isolation),
                ("max.partition.fetch.bytes", "1"),
                ("fetch.max.bytes", "1"),
            ],
        ))
        .await
        .unwrap();
        c.assign(vec![(tp.clone(), Offset::Beginning)]).unwrap();
        let m = tokio::time::timeout(READ_WAIT, c.recv())
            .await
            .unwrap_or_else(|_| panic!("{isolation}: stuck before offset 1"))
            .expect("recv");
        assert_eq!(
            (m.offset(), value_of(&m).as_deref()),
            (1, Some("new")),
            "{isolation}"
        );
        let end = high_watermark(&c, &tp).await;
        read_to(&c, &tp, end).await;
        c.close().await.unwrap();
    }
    p.close(Duration::from_secs(10)).await.unwrap();
}

/// A transactional producer on a compacted topic: committed, aborted and overwriting
/// transactions. `read_committed` shows exactly the committed values before cleaning (the
/// control records and the aborted data are gaps it steps over, its position reaches the
/// end), a group commit at a commit marker's offset resumes at the next committed record,
/// and after cleaning it shows each key's last committed value.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transactional_producer_on_compacted_topic() {
    let bs = bootstrap().await;
    // Held back from the cleaner (`min.compaction.lag.ms` of an hour) until the checks
    // "before cleaning" are done.
    let mut configs = COMPACTED.to_vec();
    configs.retain(|(k, _)| *k != "min.compaction.lag.ms");
    configs.push(("min.compaction.lag.ms", "3600000"));
    let topic = create_topic(&bs, "r-txn", &configs).await;
    let tp = tp0(&topic);
    let txn_id = unique("r-txn-id");
    let tx = producer(&bs, &[("transactional.id", txn_id.as_str())]).await;
    tx.init_transactions().await.unwrap();
    let mut commit_a_end = 0;
    let mut last = 0;
    for (round, commit, keys) in [
        ("c1", true, 0..5),
        ("aborted", false, 0..5),
        ("c2", true, 0..3),
    ] {
        tx.begin_transaction().unwrap();
        for i in keys {
            let f = tx
                .send(record(
                    &topic,
                    &format!("t{i}"),
                    Some(&format!("{round}-{i}")),
                ))
                .await
                .unwrap();
            last = f.await.unwrap().offset;
        }
        if commit {
            tx.commit_transaction().await.unwrap();
        } else {
            tx.abort_transaction().await.unwrap();
        }
        if round == "c1" {
            commit_a_end = last + 1;
        }
    }
    let committed_values = |msgs: &[Message]| -> Vec<(String, Option<String>)> {
        msgs.iter()
            .filter(|m| key_of(m) != "filler")
            .map(|m| (key_of(m), value_of(m)))
            .collect()
    };
    let kv = |pairs: &[(&str, &str)]| -> Vec<(String, Option<String>)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), Some(v.to_string())))
            .collect()
    };

    // Before cleaning.
    let rc = [("isolation.level", "read_committed")];
    let reader = Consumer::new(&consumer_config(&bs, &rc)).await.unwrap();
    reader
        .assign(vec![(tp.clone(), Offset::Beginning)])
        .unwrap();
    // The last transaction's data ends at `last`, its commit marker sits at `last + 1`.
    let end = last + 2;
    await_high_watermark(&reader, &tp, end).await;
    let msgs = read_to(&reader, &tp, end).await;
    assert!(
        assert_increasing(&msgs),
        "control records and aborted data are gaps"
    );
    assert_eq!(
        committed_values(&msgs),
        kv(&[
            ("t0", "c1-0"),
            ("t1", "c1-1"),
            ("t2", "c1-2"),
            ("t3", "c1-3"),
            ("t4", "c1-4"),
            ("t0", "c2-0"),
            ("t1", "c2-1"),
            ("t2", "c2-2"),
        ]),
        "read_committed before cleaning"
    );

    // read_uncommitted sees the aborted data too, never a control record.
    let ru = Consumer::new(&consumer_config(&bs, &[])).await.unwrap();
    ru.assign(vec![(tp.clone(), Offset::Beginning)]).unwrap();
    let all = read_to(&ru, &tp, end).await;
    assert_increasing(&all);
    let mut want: Vec<(String, Option<String>)> = Vec::new();
    for (round, n) in [("c1", 5), ("aborted", 5), ("c2", 3)] {
        want.extend((0..n).map(|i| (format!("t{i}"), Some(format!("{round}-{i}")))));
    }
    assert_eq!(
        committed_values(&all),
        want,
        "read_uncommitted before cleaning"
    );
    ru.close().await.unwrap();

    // A group commit at the first transaction's commit marker, then a restart.
    let group = unique("g-txn");
    let gcfg = consumer_config(
        &bs,
        &[
            ("isolation.level", "read_committed"),
            ("group.id", group.as_str()),
            ("auto.offset.reset", "latest"),
        ],
    );
    let c = Consumer::new(&gcfg).await.unwrap();
    c.assign(vec![(tp.clone(), Offset::Beginning)]).unwrap();
    c.commit_offsets([(tp.clone(), commit_a_end)], CommitMode::Sync)
        .await
        .unwrap();
    c.close().await.unwrap();
    let c = Consumer::new(&gcfg).await.unwrap();
    c.assign(vec![(tp.clone(), Offset::Stored)]).unwrap();
    let rest = read_to(&c, &tp, end).await;
    assert_eq!(
        committed_values(&rest),
        kv(&[("t0", "c2-0"), ("t1", "c2-1"), ("t2", "c2-2")]),
        "resumed at the commit marker: the next committed transaction"
    );
    c.close().await.unwrap();

    // After cleaning: c1-0..c1-2 overwritten by c2, the aborted values never visible.
    alter_topic(&bs, &topic, "min.compaction.lag.ms=0").await;
    let filler = producer(&bs, &[]).await;
    let msgs = await_cleaned(&filler, &reader, &topic, |msgs| {
        // All three: a segment may roll inside a transaction, so one pass can remove c1-0
        // and leave c1-1.
        !msgs.iter().any(|m| {
            matches!(
                value_of(m).as_deref(),
                Some("c1-0") | Some("c1-1") | Some("c1-2")
            )
        })
    })
    .await;
    assert_increasing(&msgs);
    assert_eq!(
        committed_values(&msgs),
        kv(&[
            ("t3", "c1-3"),
            ("t4", "c1-4"),
            ("t0", "c2-0"),
            ("t1", "c2-1"),
            ("t2", "c2-2"),
        ]),
        "read_committed after cleaning"
    );
    reader.close().await.unwrap();
    tx.close(Duration::from_secs(10)).await.unwrap();
    filler.close(Duration::from_secs(10)).await.unwrap();
}

/// Produces `n` records `r{i}` to partition 0; returns the offset after the last.
async fn fill(p: &Producer, topic: &str, n: usize) -> i64 {
    let mut futs = Vec::new();
    for i in 0..n {
        futs.push(
            p.send(record(topic, &format!("r{i}"), Some(&format!("v{i}"))))
                .await
                .unwrap(),
        );
    }
    let mut last = -1;
    for f in futs {
        last = f.await.unwrap().offset;
    }
    last + 1
}

/// Commits `offset` for `group` on partition 0 of `topic`.
async fn commit_for(bs: &str, group: &str, topic: &str, offset: i64) {
    let c = Consumer::new(&consumer_config(bs, &[("group.id", group)]))
        .await
        .unwrap();
    let tp = tp0(topic);
    c.assign(vec![(tp.clone(), Offset::Beginning)]).unwrap();
    c.commit_offsets([(tp, offset)], CommitMode::Sync)
        .await
        .unwrap();
    c.close().await.unwrap();
}

/// The first message a new member of `group` receives on partition 0 (assigned at its
/// committed offset) with `reset` as `auto.offset.reset`.
async fn first_from_committed(bs: &str, group: &str, topic: &str, reset: &str) -> Message {
    let c = Consumer::new(&consumer_config(
        bs,
        &[("group.id", group), ("auto.offset.reset", reset)],
    ))
    .await
    .unwrap();
    c.assign(vec![(tp0(topic), Offset::Stored)]).unwrap();
    let m = tokio::time::timeout(READ_WAIT, c.recv())
        .await
        .unwrap_or_else(|_| panic!("{group}: nothing received"))
        .unwrap_or_else(|e| panic!("{group}: recv: {e}"));
    c.close().await.unwrap();
    m
}

/// Sets the topic config `key=value` with `kafka-configs --alter --add-config`.
async fn alter_topic(bs: &str, topic: &str, key_value: &str) {
    let args: Vec<String> = [
        "--bootstrap-server",
        bs,
        "--alter",
        "--entity-type",
        "topics",
        "--entity-name",
        topic,
        "--add-config",
        key_value,
    ]
    .iter()
    .map(|a| a.to_string())
    .collect();
    let out = common::blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        cluster().tool_output("configs", &args)
    })
    .await
    .expect("run kafka-configs");
    assert!(
        out.status.success(),
        "kafka-configs {key_value}: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `kafka-delete-records` moves the log start of partition 0 to `offset`.
async fn delete_records(bs: &str, topic: &str, offset: i64) {
    let dir = std::env::temp_dir().join(unique("delete-records"));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("offsets.json");
    std::fs::write(
        &file,
        format!(
            r#"{{"version":1,"partitions":[{{"topic":"{topic}","partition":0,"offset":{offset}}}]}}"#
        ),
    )
    .unwrap();
    let bs = bs.to_string();
    let path = file.display().to_string();
    let out = common::blocking(move || {
        cluster().tool_output(
            "delete-records",
            &["--bootstrap-server", &bs, "--offset-json-file", &path],
        )
    })
    .await
    .expect("run kafka-delete-records");
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        out.status.success(),
        "kafka-delete-records failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Records deleted with `kafka-delete-records`: a group committed below the new log start
/// gets `auto.offset.reset` (`earliest` = the new log start, `latest` = the end, `none` = an
/// OFFSET_OUT_OF_RANGE error); a group committed above it resumes at its commit; an
/// absolute position below the log start is reset too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_records_below_and_above_committed_offsets() {
    let bs = bootstrap().await;
    let topic = create_topic(&bs, "r-delete", &[]).await;
    let p = producer(&bs, &[]).await;
    let end = fill(&p, &topic, 100).await;
    assert_eq!(end, 100);
    let (below, above) = (unique("g-below"), unique("g-above"));
    let (below_latest, below_none) = (unique("g-below-latest"), unique("g-below-none"));
    for g in [&below, &below_latest, &below_none] {
        commit_for(&bs, g, &topic, 30).await;
    }
    commit_for(&bs, &above, &topic, 80).await;

    delete_records(&bs, &topic, 60).await;
    let probe = Consumer::new(&consumer_config(&bs, &[])).await.unwrap();
    let wm = probe
        .fetch_watermarks(&tp0(&topic), Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!((wm.low, wm.high), (60, 100), "log start moved to 60");

    let m = first_from_committed(&bs, &below, &topic, "earliest").await;
    assert_eq!(m.offset(), 60, "earliest = the new log start");
    assert_eq!(value_of(&m).as_deref(), Some("v60"));
    let m = first_from_committed(&bs, &above, &topic, "latest").await;
    assert_eq!(
        m.offset(),
        80,
        "a committed offset still in the log is kept"
    );

    // `latest`: the position becomes the end; the first record is the next new one.
    let c = Consumer::new(&consumer_config(
        &bs,
        &[
            ("group.id", below_latest.as_str()),
            ("auto.offset.reset", "latest"),
        ],
    ))
    .await
    .unwrap();
    let tp = tp0(&topic);
    c.assign(vec![(tp.clone(), Offset::Stored)]).unwrap();
    let deadline = Instant::now() + READ_WAIT;
    while c.position_of(&tp).unwrap() != Some(100) {
        assert!(
            Instant::now() < deadline,
            "position {:?}, want 100 (reset to latest)",
            c.position_of(&tp)
        );
        if let Ok(r) = tokio::time::timeout(Duration::from_millis(200), c.recv()).await {
            panic!(
                "nothing to receive before the new record, got {:?}",
                r.map(|m| m.offset())
            );
        }
    }
    let next = send(&p, &topic, "new", Some("new")).await;
    let m = tokio::time::timeout(READ_WAIT, c.recv())
        .await
        .expect("the new record")
        .expect("recv");
    assert_eq!(m.offset(), next);
    c.close().await.unwrap();

    // `none`: the out-of-range committed offset is an error.
    let c = Consumer::new(&consumer_config(
        &bs,
        &[
            ("group.id", below_none.as_str()),
            ("auto.offset.reset", "none"),
        ],
    ))
    .await
    .unwrap();
    c.assign(vec![(tp.clone(), Offset::Stored)]).unwrap();
    match tokio::time::timeout(READ_WAIT, c.recv()).await {
        Ok(Err(e)) => assert_eq!(e.code(), Some(KafkaCode::OFFSET_OUT_OF_RANGE), "{e}"),
        Ok(Ok(m)) => panic!("auto.offset.reset=none delivered offset {}", m.offset()),
        Err(_) => panic!("auto.offset.reset=none: no error within {READ_WAIT:?}"),
    }
    c.close().await.unwrap();

    // An absolute position below the log start, no group: reset to the new log start.
    let c = Consumer::new(&consumer_config(&bs, &[("auto.offset.reset", "earliest")]))
        .await
        .unwrap();
    c.assign(vec![(tp.clone(), Offset::Offset(10))]).unwrap();
    let m = tokio::time::timeout(READ_WAIT, c.recv())
        .await
        .expect("a record")
        .expect("recv");
    assert_eq!(m.offset(), 60);
    c.close().await.unwrap();
    probe.close().await.unwrap();
    p.close(Duration::from_secs(10)).await.unwrap();
}

/// `retention.ms`: old segments deleted below a group's committed offset; the group's
/// next member starts at the new log start (`earliest`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_ms_moves_log_start_past_committed_offset() {
    let bs = bootstrap().await;
    let topic = create_topic(
        &bs,
        "r-retention",
        &[("retention.ms", "1000"), ("segment.ms", "100")],
    )
    .await;
    let p = producer(&bs, &[]).await;
    let end = fill(&p, &topic, 50).await;
    let group = unique("g-retention");
    commit_for(&bs, &group, &topic, 20).await;
    // Roll the segment holding the 50 records (the next append starts a new one); expired
    // segments go a second later (the active one too, once it expired: the broker rolls it).
    tokio::time::sleep(Duration::from_millis(200)).await;
    let last = send(&p, &topic, "last", Some("last")).await;
    assert_eq!(last, end);

    let probe = Consumer::new(&consumer_config(&bs, &[])).await.unwrap();
    let tp = tp0(&topic);
    let deadline = Instant::now() + CLEANER_WAIT;
    loop {
        let wm = probe
            .fetch_watermarks(&tp, Duration::from_secs(30))
            .await
            .unwrap();
        if wm.low >= end {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "retention did not delete the old segment within {CLEANER_WAIT:?}: {wm:?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    // Stop retention (so nothing expires while the consumer starts), then one more record.
    alter_topic(&bs, &topic, "retention.ms=86400000").await;
    let next = send(&p, &topic, "new", Some("new")).await;
    // The group's committed offset (20) is gone: `earliest` starts at the log start, at or
    // past 50: "last" (50) if it has not expired yet, else "new".
    let c = Consumer::new(&consumer_config(
        &bs,
        &[
            ("group.id", group.as_str()),
            ("auto.offset.reset", "earliest"),
        ],
    ))
    .await
    .unwrap();
    c.assign(vec![(tp.clone(), Offset::Stored)]).unwrap();
    let first = tokio::time::timeout(READ_WAIT, c.recv())
        .await
        .expect("a record after the reset")
        .expect("recv");
    let low = probe
        .fetch_watermarks(&tp, Duration::from_secs(30))
        .await
        .unwrap()
        .low;
    assert!(
        [(last, Some("last")), (next, Some("new"))]
            .contains(&(first.offset(), value_of(&first).as_deref())),
        "earliest = the new log start (now {low}), got offset {}",
        first.offset()
    );
    c.close().await.unwrap();
    probe.close().await.unwrap();
    p.close(Duration::from_secs(10)).await.unwrap();
}
