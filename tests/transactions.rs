//! Transactions against real brokers, for both coordinator protocols: V2 (KIP-890, the
//! Kafka 4.3 default; the shared test cluster) and V1 (a cluster formatted with
//! `transaction.version=1`). Every scenario is one `async fn scenario(proto)`; the `v1` and
//! `v2` modules at the bottom run each of them under both protocols.
//!
//! Visibility is checked with the Java console consumer (`--isolation-level
//! read_committed`) and with raw Fetch requests (read_uncommitted: every data record, plus
//! the control markers).

use std::collections::{BTreeSet, HashSet};
use std::process::Stdio;
use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::{FetchRequest, TopicName};
use kafka_protocol::protocol::StrBytes;
use kafka_sdk::admin::{AdminClient, NewTopic};
use kafka_sdk::backoff::Deadline;
use kafka_sdk::cluster::{Cluster, ClusterOptions as SdkClusterOptions};
use kafka_sdk::producer::{Producer, ProducerRecord, TransactionState};
use kafka_sdk::record::{control_record_type, decode_batches, ControlType, DecodeOptions};
use kafka_sdk::{ClientConfig, Error, TxnAction};
use kafka_testkit::{ClusterOptions, KafkaCluster};

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

fn unique(name: &str) -> String {
    let n = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("txn-{name}-{}-{}", std::process::id(), n % 1_000_000_000)
}

fn config(bootstrap: &str, extra: &[(&str, &str)]) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", bootstrap);
    for (k, v) in extra {
        c.set(*k, *v);
    }
    c
}

async fn create_topic(bootstrap: &str, topic: &str, partitions: i32) {
    let admin = AdminClient::new(&config(bootstrap, &[])).await.unwrap();
    admin
        .create_topic(NewTopic::new(topic, partitions, 1))
        .await
        .unwrap();
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

async fn raw_read(bootstrap: &str, topic: &str, partitions: i32) -> Raw {
    let cluster = Cluster::connect(SdkClusterOptions::new(vec![bootstrap.to_string()]))
        .await
        .unwrap();
    let mut raw = Raw::default();
    for partition in 0..partitions {
        let mut offset = 0i64;
        loop {
            let (_, conn) = cluster
                .leader(topic, partition, Deadline::after(Duration::from_secs(30)))
                .await
                .unwrap();
            let req = FetchRequest::default()
                .with_max_wait_ms(100)
                .with_min_bytes(1)
                .with_max_bytes(64 << 20)
                .with_isolation_level(0)
                .with_topics(vec![FetchTopic::default()
                    .with_topic(TopicName(StrBytes::from_string(topic.to_string())))
                    .with_partitions(vec![FetchPartition::default()
                        .with_partition(partition)
                        .with_fetch_offset(offset)
                        .with_partition_max_bytes(16 << 20)
                        .with_current_leader_epoch(-1)
                        .with_log_start_offset(-1)])]);
            let resp = conn.send(&req).await.unwrap();
            let p = &resp.responses[0].partitions[0];
            assert_eq!(p.error_code, 0, "fetch {topic}-{partition}");
            if let Some(records) = &p.records {
                for b in decode_batches(records.clone(), &DecodeOptions::default()) {
                    let b = b.unwrap();
                    offset = b.next_offset();
                    if b.is_control() {
                        let t = b.records[0].key.as_deref().and_then(control_record_type);
                        raw.markers.push(t == Some(ControlType::Commit));
                    } else {
                        raw.producers.push((b.producer_id, b.producer_epoch));
                        for r in &b.records {
                            raw.values.push(
                                String::from_utf8(r.value.as_deref().unwrap().to_vec()).unwrap(),
                            );
                        }
                    }
                }
            }
            if offset >= p.high_watermark {
                break;
            }
        }
    }
    raw
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
    // Not yet committed: an abort-free read_committed read must not see c2 before commit;
    // checked below through the final counts.
    p.commit_transaction().await.unwrap();
    assert_eq!(p.transaction_state(), Some(TransactionState::Ready));

    let committed: Vec<String> = c1.iter().chain(&c2).cloned().collect();
    let got = java_read(kc, &topic, committed.len(), "read_committed").await;
    assert_eq!(
        set(&got),
        set(&committed),
        "read_committed (Java) sees exactly the commits"
    );

    let raw = raw_read(&bootstrap, &topic, 3).await;
    let all: Vec<String> = committed.iter().chain(&a1).cloned().collect();
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

both_protocols!(commit_and_abort_visibility, fencing, wrong_state_calls);
