//! Transactions against real brokers, for both coordinator protocols: V2 (KIP-890, the
//! Kafka 4.3 default; the shared test cluster) and V1 (a cluster formatted with
//! `transaction.version=1`). Every scenario is one `async fn scenario(proto)`; the `v1` and
//! `v2` modules at the bottom run each of them under both protocols.
//!
//! Visibility is checked with the Java console consumer (`--isolation-level
//! read_committed`) and with raw Fetch requests (read_uncommitted: every data record, plus
//! the control markers).

mod support;

use std::collections::{BTreeSet, HashSet};
use std::process::Stdio;
use std::sync::OnceLock;
use std::time::Duration;

use kafka_sdk::admin::{AdminClient, OffsetSpec};
use kafka_sdk::consumer::{Consumer, Offset};
use kafka_sdk::error::TxnAction;
use kafka_sdk::producer::{Producer, ProducerRecord, TransactionState};
use kafka_sdk::record::{control_record_type, ControlType};
use kafka_sdk::{Error, TopicPartition};
use kafka_testkit::{ClusterOptions, KafkaCluster};

use support::common::{config, create_topic, unique};
use support::raw::{fetch_batches, reader};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Proto {
    V1,
    V2,
}

fn v1_options() -> ClusterOptions {
    ClusterOptions {
        features: vec![("transaction.version".into(), "1".into())],
        allow_external: false,
        ..ClusterOptions::default()
    }
}

/// The cluster of a protocol, shared by that protocol's tests that do not stop brokers.
fn cluster(proto: Proto) -> &'static KafkaCluster {
    match proto {
        Proto::V2 => kafka_testkit::shared(),
        Proto::V1 => {
            static V1: OnceLock<KafkaCluster> = OnceLock::new();
            V1.get_or_init(|| KafkaCluster::start(v1_options()).expect("start V1 cluster"))
        }
    }
}

async fn txn_producer(bootstrap: &str, txn_id: &str, extra: &[(&str, &str)]) -> Producer {
    let mut kv: Vec<(&str, &str)> = vec![("transactional.id", txn_id), ("linger.ms", "5")];
    kv.extend_from_slice(extra);
    Producer::new(&config(bootstrap, &kv)).await.unwrap()
}

async fn init(p: &Producer, proto: Proto) {
    p.init_transactions().await.unwrap();
    assert_eq!(p.transaction_state(), Some(TransactionState::Ready));
    assert_eq!(
        p.transactions_v2(),
        Some(proto == Proto::V2),
        "protocol chosen from the finalized transaction.version"
    );
}

/// A new topic `<name>-..` of `partitions` and a transactional producer (id `<name>-id-..`,
/// `extra` settings) initialized on it.
async fn topic_and_producer(
    bootstrap: &str,
    proto: Proto,
    name: &str,
    partitions: i32,
    extra: &[(&str, &str)],
) -> (String, Producer) {
    let topic = unique(name);
    create_topic(bootstrap, &topic, partitions).await;
    let p = txn_producer(bootstrap, &unique(&format!("{name}-id")), extra).await;
    init(&p, proto).await;
    (topic, p)
}

/// Sends `values` inside the open transaction and waits for every acknowledgement.
async fn send_all(p: &Producer, topic: &str, values: &[String]) {
    let mut futs = Vec::new();
    for v in values {
        futs.push(
            p.send(ProducerRecord::new(topic).key(v.clone()).value(v.clone()))
                .await
                .unwrap(),
        );
    }
    for f in futs {
        f.await.unwrap();
    }
}

fn values(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}-{i}")).collect()
}

/// Reads `n` values of `topic` with the Java console consumer.
async fn java_read(
    cluster: &'static KafkaCluster,
    topic: &str,
    n: usize,
    isolation: &str,
) -> Vec<String> {
    let args: Vec<String> = [
        "console-consumer",
        "--bootstrap-server",
        &cluster.bootstrap(),
        "--topic",
        topic,
        "--from-beginning",
        "--isolation-level",
        isolation,
        "--max-messages",
        &n.to_string(),
        "--timeout-ms",
        "30000",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let isolation = isolation.to_string();
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = cluster
            .tool(args[0], &args[1..])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .output()
            .unwrap();
        let lines: Vec<String> = String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .filter(|l| !l.starts_with("Processed a total of"))
            .map(str::to_string)
            .collect();
        assert_eq!(
            lines.len(),
            n,
            "console consumer ({isolation}) read {} of {n}: {}",
            lines.len(),
            String::from_utf8_lossy(&out.stderr)
        );
        lines
    })
    .await
    .unwrap()
}

/// What a raw (read_uncommitted) fetch of a partition shows.
#[derive(Debug, Default)]
struct Raw {
    /// Data record values.
    values: Vec<String>,
    /// Control markers: `true` = commit.
    markers: Vec<bool>,
    /// (producer id, epoch) of the data batches, in log order.
    producers: Vec<(i64, i16)>,
}

/// Every partition of `topic` (0..`partitions`) read raw: data values, control markers and
/// the data batches' producer ids and epochs.
async fn raw_read(bootstrap: &str, topic: &str, partitions: i32) -> Raw {
    let cluster = reader(bootstrap).await;
    let mut raw = Raw::default();
    for partition in 0..partitions {
        for b in fetch_batches(&cluster, topic, partition).await {
            if b.is_control() {
                let t = b.records[0].key.as_deref().and_then(control_record_type);
                raw.markers.push(t == Some(ControlType::Commit));
            } else {
                raw.producers.push((b.producer_id, b.producer_epoch));
                for r in &b.records {
                    raw.values
                        .push(String::from_utf8(r.value.as_deref().unwrap().to_vec()).unwrap());
                }
            }
        }
    }
    raw
}

/// Reads `topic` with [`sdk_read`] and asserts that it holds exactly `want`: the same values
/// (`what` says what that means) and none of them twice.
async fn assert_sdk_reads(
    bootstrap: &str,
    topic: &str,
    partitions: i32,
    isolation: &str,
    want: &[String],
    settle: Duration,
    what: &str,
) {
    let got = sdk_read(bootstrap, topic, partitions, isolation, want.len(), settle).await;
    assert_eq!(set(&got), set(want), "{what}");
    assert_eq!(got.len(), want.len(), "{what}: values read twice");
}

/// Reads `topic` from the beginning with our consumer (no group) until `n` values arrived,
/// then for `settle` more to catch any extra record. Returns every value read.
async fn sdk_read(
    bootstrap: &str,
    topic: &str,
    partitions: i32,
    isolation: &str,
    n: usize,
    settle: Duration,
) -> Vec<String> {
    let c = Consumer::new(&config(
        bootstrap,
        &[
            ("isolation.level", isolation),
            ("auto.offset.reset", "earliest"),
        ],
    ))
    .await
    .unwrap();
    c.assign(
        (0..partitions)
            .map(|p| (TopicPartition::new(topic, p), Offset::Beginning))
            .collect(),
    )
    .unwrap();
    let mut out = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while out.len() < n && tokio::time::Instant::now() < deadline {
        for m in c.recv_batch(10_000, Duration::from_secs(2)).await.unwrap() {
            out.push(String::from_utf8(m.value().expect("no control records").to_vec()).unwrap());
        }
    }
    let extra_until = tokio::time::Instant::now() + settle;
    while tokio::time::Instant::now() < extra_until {
        for m in c
            .recv_batch(10_000, Duration::from_millis(200))
            .await
            .unwrap()
        {
            out.push(String::from_utf8(m.value().expect("no control records").to_vec()).unwrap());
        }
    }
    c.close().await.unwrap();
    out
}

fn set(v: &[String]) -> BTreeSet<String> {
    v.iter().cloned().collect()
}

// ---- scenarios ----------------------------------------------------------------------------

/// Committed transactions are visible to read_committed, aborted ones never; read_uncommitted
/// sees both. V2 bumps the epoch every transaction; V1 keeps it.
async fn commit_and_abort_visibility(proto: Proto) {
    let kc = cluster(proto);
    let bootstrap = kc.bootstrap();
    let topic = unique("vis");
    create_topic(&bootstrap, &topic, 3).await;
    let p = txn_producer(&bootstrap, &unique("vis-id"), &[]).await;
    init(&p, proto).await;

    let (c1, a1, c2) = (values("c1", 30), values("a1", 30), values("c2", 30));
    p.begin_transaction().unwrap();
    send_all(&p, &topic, &c1).await;
    p.commit_transaction().await.unwrap();

    p.begin_transaction().unwrap();
    send_all(&p, &topic, &a1).await;
    p.abort_transaction().await.unwrap();

    p.begin_transaction().unwrap();
    send_all(&p, &topic, &c2).await;
    // Acknowledged but not committed: read_committed stops at the last stable offset.
    assert_sdk_reads(
        &bootstrap,
        &topic,
        3,
        "read_committed",
        &c1,
        Duration::from_secs(1),
        "read_committed stops before the open transaction",
    )
    .await;
    p.commit_transaction().await.unwrap();
    assert_eq!(p.transaction_state(), Some(TransactionState::Ready));

    let committed: Vec<String> = c1.iter().chain(&c2).cloned().collect();
    let got = java_read(kc, &topic, committed.len(), "read_committed").await;
    assert_eq!(
        set(&got),
        set(&committed),
        "read_committed (Java) sees exactly the commits"
    );

    assert_sdk_reads(
        &bootstrap,
        &topic,
        3,
        "read_committed",
        &committed,
        Duration::from_secs(1),
        "read_committed (ours) sees exactly the commits, no aborted records",
    )
    .await;
    let all: Vec<String> = committed.iter().chain(&a1).cloned().collect();
    assert_sdk_reads(
        &bootstrap,
        &topic,
        3,
        "read_uncommitted",
        &all,
        Duration::from_secs(1),
        "read_uncommitted (ours) sees both",
    )
    .await;

    let raw = raw_read(&bootstrap, &topic, 3).await;
    assert_eq!(set(&raw.values), set(&all), "read_uncommitted sees both");
    assert_eq!(raw.values.len(), all.len(), "no duplicates");
    // Markers: commits and an abort were written.
    assert!(
        raw.markers.iter().filter(|c| **c).count() >= 2,
        "{:?}",
        raw.markers
    );
    assert!(raw.markers.contains(&false), "{:?}", raw.markers);
    let epochs: BTreeSet<i16> = raw.producers.iter().map(|(_, e)| *e).collect();
    let pids: HashSet<i64> = raw.producers.iter().map(|(p, _)| *p).collect();
    assert_eq!(pids.len(), 1, "one producer id");
    match proto {
        Proto::V2 => assert_eq!(
            epochs.len(),
            3,
            "V2: a new epoch per transaction: {epochs:?}"
        ),
        Proto::V1 => assert_eq!(epochs.len(), 1, "V1: one epoch: {epochs:?}"),
    }
    p.close(Duration::from_secs(5)).await.unwrap();
}

/// read_committed over compressed transactions interleaved in one partition: the consumer
/// decodes a partition's compressed batches in groups of about 512 KiB of records as the
/// application reads (`fetcher.rs`, `PartDecoder`), and a group can end only on a delivered
/// record, so here a group ends on a committed batch of one producer while the other
/// producer's aborted transaction is open: the aborted batches after it, in the next
/// groups, must still be dropped. Exactly the committed values arrive, once each, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_committed_over_compressed_transactions_in_groups() {
    let kc = cluster(Proto::V2);
    let bootstrap = kc.bootstrap();
    let topic = unique("vis-zstd");
    create_topic(&bootstrap, &topic, 1).await;
    let extra = [("compression.type", "zstd"), ("linger.ms", "0")];
    let aborting = txn_producer(&bootstrap, &unique("vis-zstd-a"), &extra).await;
    let committing = txn_producer(&bootstrap, &unique("vis-zstd-c"), &extra).await;
    init(&aborting, Proto::V2).await;
    init(&committing, Proto::V2).await;
    // ~2 KB values (key as much again): ~128 records to a decoding group.
    let big = |prefix: &str| -> Vec<String> {
        (0..1000)
            .map(|i| format!("{prefix}-{i:04}-{}", "0".repeat(2000)))
            .collect()
    };
    let (aborted, committed) = (big("a"), big("c"));
    aborting.begin_transaction().unwrap();
    committing.begin_transaction().unwrap();
    // One record per batch (each acknowledged before the next is sent), the two
    // transactions' batches alternating in the log.
    for (a, c) in aborted.iter().zip(&committed) {
        for (p, v) in [(&aborting, a), (&committing, c)] {
            let rec = ProducerRecord::new(topic.as_str())
                .key(v.clone())
                .value(v.clone());
            p.send(rec).await.unwrap().await.unwrap();
        }
    }
    aborting.abort_transaction().await.unwrap();
    committing.commit_transaction().await.unwrap();
    let got = sdk_read(
        &bootstrap,
        &topic,
        1,
        "read_committed",
        committed.len(),
        Duration::from_secs(1),
    )
    .await;
    assert_eq!(got.len(), committed.len(), "values read");
    assert!(
        got == committed,
        "read_committed: the commits, in order, none aborted"
    );
    aborting.close(Duration::from_secs(5)).await.unwrap();
    committing.close(Duration::from_secs(5)).await.unwrap();
}

/// A second producer with the same transactional.id fences the first: the first gets a
/// fatal error on its next call and on every call after; the second works.
async fn fencing(proto: Proto) {
    let kc = cluster(proto);
    let bootstrap = kc.bootstrap();
    let topic = unique("fence");
    create_topic(&bootstrap, &topic, 2).await;
    let id = unique("fence-id");
    let p1 = txn_producer(&bootstrap, &id, &[]).await;
    init(&p1, proto).await;
    p1.begin_transaction().unwrap();
    send_all(&p1, &topic, &values("zombie", 10)).await;

    let p2 = txn_producer(&bootstrap, &id, &[]).await;
    init(&p2, proto).await; // aborts p1's open transaction

    let e = p1.commit_transaction().await.unwrap_err();
    assert!(e.is_fatal(), "fenced producer: fatal error, got {e}");
    assert_eq!(e.txn_action(), TxnAction::Fatal);
    assert_eq!(p1.transaction_state(), Some(TransactionState::FatalError));
    // Says so on every later call.
    let e = p1.begin_transaction().unwrap_err();
    assert!(e.is_fatal(), "{e}");
    let e = p1
        .send(ProducerRecord::new(topic.as_str()).value("x"))
        .await
        .unwrap_err();
    assert!(e.is_fatal(), "{e}");
    let e = p1.abort_transaction().await.unwrap_err();
    assert!(e.is_fatal(), "{e}");

    let good = values("p2", 10);
    p2.begin_transaction().unwrap();
    send_all(&p2, &topic, &good).await;
    p2.commit_transaction().await.unwrap();
    p2.begin_transaction().unwrap();
    send_all(&p2, &topic, &values("p2b", 5)).await;
    p2.commit_transaction().await.unwrap();

    let mut want = good.clone();
    want.extend(values("p2b", 5));
    let got = java_read(kc, &topic, want.len(), "read_committed").await;
    assert_eq!(
        set(&got),
        set(&want),
        "the zombie's records are never visible"
    );
    assert_sdk_reads(
        &bootstrap,
        &topic,
        2,
        "read_committed",
        &want,
        Duration::from_secs(1),
        "read_committed (ours)",
    )
    .await;
    let raw = raw_read(&bootstrap, &topic, 2).await;
    assert_eq!(raw.values.len(), 25, "zombie's 10 were written and aborted");
}

/// Calls in the wrong state fail with a state error naming the state.
async fn wrong_state_calls(proto: Proto) {
    let kc = cluster(proto);
    let bootstrap = kc.bootstrap();
    let topic = unique("state");
    create_topic(&bootstrap, &topic, 1).await;
    let p = txn_producer(&bootstrap, &unique("state-id"), &[]).await;
    let state_err = |r: Result<(), Error>, state: &str| match r {
        Err(Error::State(m)) => assert!(m.contains(state), "{m} should name {state}"),
        other => panic!("expected a state error naming {state}, got {other:?}"),
    };
    assert_eq!(p.transaction_state(), Some(TransactionState::Uninitialized));
    state_err(p.begin_transaction(), "Uninitialized");
    state_err(
        p.send(ProducerRecord::new(topic.as_str()).value("x"))
            .await
            .map(|_| ()),
        "Uninitialized",
    );
    state_err(p.commit_transaction().await, "Uninitialized");
    init(&p, proto).await;
    state_err(p.init_transactions().await, "Ready");
    state_err(p.commit_transaction().await, "Ready");
    state_err(p.abort_transaction().await, "Ready");
    state_err(
        p.send(ProducerRecord::new(topic.as_str()).value("x"))
            .await
            .map(|_| ()),
        "Ready",
    );
    p.begin_transaction().unwrap();
    state_err(p.begin_transaction(), "InTransaction");
    // An empty transaction commits without a round trip.
    p.commit_transaction().await.unwrap();
    p.begin_transaction().unwrap();
    p.abort_transaction().await.unwrap();

    let plain = Producer::new(&config(&bootstrap, &[])).await.unwrap();
    assert_eq!(plain.transaction_state(), None);
    assert!(matches!(
        plain.init_transactions().await,
        Err(Error::State(_))
    ));
}

/// A record the transaction could not take (`send` failed: a topic that does not exist, a
/// record too large) must not let the transaction commit without it: the transaction becomes
/// abortable, as in Java (`maybeTransitionToErrorState`) and librdkafka (a failed delivery
/// report makes `commit_transaction` require an abort). `try_send_borrowed`'s synchronous
/// refusal is librdkafka's `produce()` return code: it leaves the transaction as it was.
async fn failed_send_makes_the_transaction_abortable(proto: Proto) {
    let kc = cluster(proto);
    let bootstrap = kc.bootstrap();
    let missing = unique("txn-no-such-topic");
    let (topic, p) = topic_and_producer(
        &bootstrap,
        proto,
        "txn-send-fails",
        1,
        &[
            ("max.block.ms", "1500"),
            ("allow.auto.create.topics", "false"),
            ("max.request.size", "10000"),
        ],
    )
    .await;
    let must_abort = |r: Result<(), Error>, what: &str| match r {
        Err(e) => assert!(
            e.txn_requires_abort(),
            "{what}: {e:?} should require an abort"
        ),
        Ok(()) => panic!("{what}: the transaction committed without the failed record"),
    };

    // A topic that does not exist.
    p.begin_transaction().unwrap();
    send_all(&p, &topic, &values("lost-missing", 3)).await;
    let e = p
        .send(ProducerRecord::new(missing.as_str()).value("x"))
        .await
        .map(|_| ())
        .expect_err("a send to a missing topic");
    assert!(
        matches!(e, Error::UnknownTopicOrPartition(_) | Error::Timeout { .. }),
        "{e:?}"
    );
    assert_eq!(
        p.transaction_state(),
        Some(TransactionState::AbortableError)
    );
    must_abort(p.commit_transaction().await, "missing topic");
    p.abort_transaction().await.unwrap();

    // A record larger than max.request.size.
    p.begin_transaction().unwrap();
    send_all(&p, &topic, &values("lost-large", 3)).await;
    let e = p
        .send(ProducerRecord::new(topic.as_str()).value(vec![7u8; 20_000]))
        .await
        .map(|_| ())
        .expect_err("a record over max.request.size");
    assert!(matches!(e, Error::InvalidArgument(_)), "{e:?}");
    must_abort(p.commit_transaction().await, "record too large");
    p.abort_transaction().await.unwrap();

    // The borrowed path refuses the record and the transaction goes on.
    p.begin_transaction().unwrap();
    let kept = values("kept", 3);
    send_all(&p, &topic, &kept).await;
    let big = vec![7u8; 20_000];
    let refused = p
        .try_send_borrowed(kafka_sdk::producer::BorrowedRecord {
            topic: &topic,
            partition: None,
            key: None,
            value: Some(&big),
            timestamp: None,
            headers: &[],
        })
        .expect("nothing to wait for");
    assert!(matches!(refused, Err(Error::InvalidArgument(_))));
    assert_eq!(p.transaction_state(), Some(TransactionState::InTransaction));
    p.commit_transaction().await.unwrap();

    assert_sdk_reads(
        &bootstrap,
        &topic,
        1,
        "read_committed",
        &kept,
        Duration::from_millis(500),
        "only the committed transaction",
    )
    .await;
}

/// A transaction that outlives `transaction.timeout.ms`: the coordinator aborts it and bumps
/// the producer's epoch, and the next Produce is answered INVALID_PRODUCER_EPOCH. That is
/// not another instance fencing this one (KIP-588): the transaction becomes abortable (before,
/// the producer became unusable at once). V2: the abort's EndTxn takes the new epoch and the
/// producer goes on with the next transaction, as Java's does. V1: the coordinator answers
/// the abort's EndTxn (old epoch) with PRODUCER_FENCED, which is fatal, as for Java.
async fn a_timed_out_transaction_is_abortable_not_fatal(proto: Proto) {
    let kc = cluster(proto);
    let bootstrap = kc.bootstrap();
    let (topic, p) = topic_and_producer(
        &bootstrap,
        proto,
        "txn-timed-out",
        1,
        &[("transaction.timeout.ms", "1000")],
    )
    .await;
    p.begin_transaction().unwrap();
    send_all(&p, &topic, &values("aborted", 2)).await;
    // The coordinator looks for timed-out transactions every 10 s (its
    // `transaction.abort.timed.out.transaction.cleanup.interval.ms`).
    tokio::time::sleep(Duration::from_secs(13)).await;
    let e = p
        .send_and_wait(ProducerRecord::new(topic.as_str()).value("late"))
        .await
        .expect_err("a send in a transaction the coordinator aborted");
    assert!(
        e.txn_requires_abort() && !e.is_fatal(),
        "{e:?}: abortable, not fatal"
    );
    assert_eq!(
        p.transaction_state(),
        Some(TransactionState::AbortableError)
    );
    let e = p
        .commit_transaction()
        .await
        .expect_err("commit after the timeout");
    assert!(e.txn_requires_abort(), "{e:?}");
    if proto == Proto::V1 {
        let e = p
            .abort_transaction()
            .await
            .expect_err("V1: the coordinator fences the old epoch's EndTxn");
        assert!(
            e.is_fatal() && e.code() == Some(kafka_sdk::KafkaCode::PRODUCER_FENCED),
            "{e:?}"
        );
        return;
    }
    p.abort_transaction()
        .await
        .expect("abort after the timeout");
    p.begin_transaction().unwrap();
    let kept = values("kept", 3);
    send_all(&p, &topic, &kept).await;
    p.commit_transaction()
        .await
        .expect("the next transaction commits");
    assert_sdk_reads(
        &bootstrap,
        &topic,
        1,
        "read_committed",
        &kept,
        Duration::from_millis(500),
        "only the transaction after the timed-out one",
    )
    .await;
}

/// A cluster of our own (its broker is restarted and paused).
fn own_cluster(proto: Proto) -> KafkaCluster {
    let opts = match proto {
        Proto::V1 => v1_options(),
        Proto::V2 => ClusterOptions {
            allow_external: false,
            ..ClusterOptions::default()
        },
    };
    KafkaCluster::start(opts).expect("start cluster")
}

/// Broker restart in the middle of a transaction: it commits or is aborted cleanly, the next
/// one works, read_committed never sees aborted records. Then a record that times out
/// locally (broker paused past `delivery.timeout.ms`): the commit fails as abortable, the
/// abort works, the next transaction commits.
async fn broker_restart_and_local_timeout(proto: Proto) {
    let kc: &'static KafkaCluster = Box::leak(Box::new(
        tokio::task::spawn_blocking(move || own_cluster(proto))
            .await
            .unwrap(),
    ));
    let bootstrap = kc.bootstrap();
    let (topic, p) = topic_and_producer(
        &bootstrap,
        proto,
        "restart",
        3,
        &[("request.timeout.ms", "5000")],
    )
    .await;
    let mut want = Vec::new();

    let t1 = values("t1", 50);
    p.begin_transaction().unwrap();
    send_all(&p, &topic, &t1).await;
    p.commit_transaction().await.unwrap();
    want.extend(t1);

    // Restart the (only) broker between the sends and the commit.
    let t2 = values("t2", 50);
    p.begin_transaction().unwrap();
    send_all(&p, &topic, &t2).await;
    tokio::task::spawn_blocking(move || kc.restart(1))
        .await
        .unwrap()
        .unwrap();
    match p.commit_transaction().await {
        Ok(()) => want.extend(t2),
        Err(e) => {
            assert!(e.txn_requires_abort(), "commit after restart: {e}");
            p.abort_transaction().await.unwrap();
        }
    }
    assert_eq!(p.transaction_state(), Some(TransactionState::Ready));

    // An aborted transaction after the restart, then a committed one.
    p.begin_transaction().unwrap();
    send_all(&p, &topic, &values("t3-aborted", 20)).await;
    p.abort_transaction().await.unwrap();
    let t4 = values("t4", 50);
    p.begin_transaction().unwrap();
    send_all(&p, &topic, &t4).await;
    p.commit_transaction().await.unwrap();
    want.extend(t4);

    // Local timeout: pause the broker past delivery.timeout.ms.
    let q = txn_producer(
        &bootstrap,
        &unique("timeout-id"),
        &[
            ("request.timeout.ms", "1500"),
            ("delivery.timeout.ms", "2000"),
            ("max.block.ms", "20000"),
        ],
    )
    .await;
    init(&q, proto).await;
    // One transaction first, so the producer knows the topic's metadata before the pause.
    let t5 = values("t5", 10);
    q.begin_transaction().unwrap();
    send_all(&q, &topic, &t5).await;
    q.commit_transaction().await.unwrap();
    want.extend(t5);
    q.begin_transaction().unwrap();
    tokio::task::spawn_blocking(move || kc.pause(1))
        .await
        .unwrap()
        .unwrap();
    let f = q
        .send(
            ProducerRecord::new(topic.as_str())
                .key("x")
                .value("t5-timed-out"),
        )
        .await
        .unwrap();
    let e = f.await.unwrap_err();
    assert!(matches!(e, Error::Timeout { .. }), "{e}");
    tokio::task::spawn_blocking(move || kc.resume(1))
        .await
        .unwrap()
        .unwrap();
    let e = q.commit_transaction().await.unwrap_err();
    assert!(e.txn_requires_abort(), "local timeout: abortable, got {e}");
    assert_eq!(
        q.transaction_state(),
        Some(TransactionState::AbortableError)
    );
    q.abort_transaction().await.unwrap();
    let t6 = values("t6", 20);
    q.begin_transaction().unwrap();
    send_all(&q, &topic, &t6).await;
    q.commit_transaction().await.unwrap();
    want.extend(t6);

    assert_sdk_reads(
        &bootstrap,
        &topic,
        3,
        "read_committed",
        &want,
        Duration::from_secs(2),
        "read_committed: exactly the committed transactions",
    )
    .await;
    let raw = raw_read(&bootstrap, &topic, 3).await;
    assert!(raw.values.iter().any(|v| v.starts_with("t3-aborted")));
}

/// Builds `examples/exactly_once` and returns its path.
fn example_binary() -> std::path::PathBuf {
    let status = std::process::Command::new(env!("CARGO"))
        .args(["build", "--example", "exactly_once"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .status()
        .expect("cargo build --example exactly_once");
    assert!(status.success());
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|_| std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target"));
    target.join("debug").join("examples").join("exactly_once")
}

/// Exactly-once pipeline: 100,000 input records; the transform process is killed four times
/// (twice by `--crash-after`, i.e. `abort()` inside an open transaction, twice by SIGKILL
/// from here once the run has written some thousands of records, wherever it is in its
/// transaction then; at least three must hit before the input is done) and
/// restarted; the output read_committed holds every input exactly once.
async fn exactly_once_pipeline(proto: Proto) {
    const N: usize = 100_000;
    let kc = cluster(proto);
    let bootstrap = kc.bootstrap();
    let (input, output) = (unique("eos-in"), unique("eos-out"));
    create_topic(&bootstrap, &input, 3).await;
    create_topic(&bootstrap, &output, 3).await;
    let p = Producer::new(&config(&bootstrap, &[("linger.ms", "20")]))
        .await
        .unwrap();
    let mut acks = Vec::with_capacity(N);
    for i in 0..N {
        acks.push(
            p.send(
                ProducerRecord::new(input.as_str())
                    .key(format!("k{i}"))
                    .value(format!("in-{i}")),
            )
            .await
            .unwrap(),
        );
    }
    for a in acks {
        a.await.unwrap();
    }
    p.close(Duration::from_secs(10)).await.unwrap();

    let bin = tokio::task::spawn_blocking(example_binary).await.unwrap();
    let args = |extra: &[&str]| {
        let mut v: Vec<String> = [
            "--brokers",
            &bootstrap,
            "--input",
            &input,
            "--output",
            &output,
            "--txn-id",
            &format!("{input}-0"),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        v.extend(extra.iter().map(|s| s.to_string()));
        v
    };
    enum Kill {
        After(&'static str),
        /// SIGKILL once the run has written this many records to the output (committed or
        /// not): wherever it is in its transaction then. (A kill after a fixed time missed
        /// when the machine was quiet: the run was done with the input within 2.5 s.)
        Sigkill(i64),
    }
    // Every run has --until-end: a run that is not killed finishes the input.
    let runs = [
        Kill::After("6000"),
        Kill::Sigkill(5_000),
        Kill::After("9000"),
        Kill::Sigkill(8_000),
    ];
    let admin = AdminClient::new(&config(&bootstrap, &[])).await.unwrap();
    let written = || async {
        let queries = (0..3)
            .map(|p| (TopicPartition::new(output.as_str(), p), OffsetSpec::Latest))
            .collect();
        let listed = admin.list_offsets(queries).await.unwrap();
        listed
            .into_iter()
            .map(|(_, r)| r.unwrap().offset)
            .sum::<i64>()
    };
    let mut kills = 0;
    for run in runs {
        let mut cmd = std::process::Command::new(&bin);
        cmd.stdout(Stdio::null()).stderr(Stdio::inherit());
        let status = match run {
            Kill::After(n) => cmd
                .args(args(&["--until-end", "--crash-after", n]))
                .status()
                .unwrap(),
            Kill::Sigkill(records) => {
                let start = written().await;
                let mut child = cmd.args(args(&["--until-end"])).spawn().unwrap();
                loop {
                    if child.try_wait().unwrap().is_some() || written().await - start >= records {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                let _ = child.kill();
                child.wait().unwrap()
            }
        };
        if status.success() {
            break; // finished before the kill
        }
        kills += 1;
    }
    assert!(
        kills >= 3,
        "only {kills} runs were killed before the input was done"
    );
    let out = std::process::Command::new(&bin)
        .args(args(&["--until-end"]))
        .stderr(Stdio::inherit())
        .output()
        .unwrap();
    assert!(out.status.success(), "final run failed");

    let got = sdk_read(
        &bootstrap,
        &output,
        3,
        "read_committed",
        N,
        Duration::from_secs(2),
    )
    .await;
    let distinct: HashSet<&String> = got.iter().collect();
    let want: HashSet<String> = (0..N).map(|i| format!("IN-{i}:processed")).collect();
    let missing = want.iter().filter(|v| !distinct.contains(v)).count();
    assert_eq!(missing, 0, "lost records");
    assert_eq!(got.len(), N, "{} duplicates", got.len() - distinct.len());
    assert_eq!(distinct.len(), N);
}

macro_rules! both_protocols {
    ($($name:ident),* $(,)?) => {
        mod v1 {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                super::$name(super::Proto::V1).await
            })*
        }
        mod v2 {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                super::$name(super::Proto::V2).await
            })*
        }
    };
}

both_protocols!(
    commit_and_abort_visibility,
    fencing,
    wrong_state_calls,
    failed_send_makes_the_transaction_abortable,
    a_timed_out_transaction_is_abortable_not_fatal,
    broker_restart_and_local_timeout,
    exactly_once_pipeline,
);
