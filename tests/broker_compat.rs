//! kafka-sdk against the last Kafka 3.x broker (3.9.1, KRaft), which many production clusters
//! still run: the test kit starts one node of that version for this file (its jars come from
//! Maven Central like 4.3's). Everything a 3.9 broker offers works (idempotent and compressed
//! produce, classic groups with commits, admin calls, transactions, which fall back to the V1
//! protocol since 3.9 has no `transaction.version` 2); what it lacks (the KIP-848 consumer
//! group protocol, share groups) fails promptly with an error that says what to do, instead of
//! a consumer that waits forever.

mod support;

use std::collections::BTreeMap;
use std::sync::OnceLock;
use std::time::Duration;

use kafka_sdk::admin::{AdminClient, NewTopic, OffsetSpec};
use kafka_sdk::consumer::{CommitMode, Consumer, Offset};
use kafka_sdk::producer::{Producer, ProducerRecord};
use kafka_sdk::share::ShareConsumer;
use kafka_sdk::{ClientConfig, TopicPartition};
use kafka_testkit::{ClusterOptions, KafkaCluster};
use support::common::{blocking, config, unique};

/// The broker version under test: the last 3.x release.
const VERSION: &str = "3.9.1";

fn cluster() -> &'static KafkaCluster {
    static C: OnceLock<KafkaCluster> = OnceLock::new();
    C.get_or_init(|| {
        KafkaCluster::start(ClusterOptions {
            kafka_version: Some(VERSION.into()),
            allow_external: false,
            heap_mb: 512,
            ..ClusterOptions::default()
        })
        .unwrap_or_else(|e| panic!("start a Kafka {VERSION} node: {e}"))
    })
}

async fn bootstrap() -> String {
    blocking(cluster).await.bootstrap()
}

/// Receives `n` records (panics on an error or after 60 s).
async fn recv_n(c: &Consumer, n: usize) -> Vec<(i32, i64, String)> {
    let mut out = Vec::new();
    while out.len() < n {
        let m = tokio::time::timeout(Duration::from_secs(60), c.recv())
            .await
            .unwrap_or_else(|_| panic!("{} of {n} records in 60 s", out.len()))
            .unwrap_or_else(|e| panic!("recv after {} records: {e}", out.len()));
        let v = String::from_utf8_lossy(m.value().map(|v| &v[..]).unwrap_or_default()).into_owned();
        out.push((m.partition(), m.offset(), v));
    }
    out
}

/// Idempotent zstd produce, a classic cooperative group that reads and commits everything,
/// and the admin calls a service makes (topics, offsets, records, group offsets).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn produce_consume_commit_and_admin() {
    let b = bootstrap().await;
    let admin = AdminClient::new(&config(&b, &[])).await.unwrap();
    let topic = unique("compat");
    admin
        .create_topic(NewTopic::new(topic.as_str(), 3, 1).config("retention.ms", "3600000"))
        .await
        .unwrap();
    let described = admin.describe_topics(&[topic.as_str()]).await.unwrap();
    assert_eq!(described[0].partitions.len(), 3, "{described:?}");

    let p = Producer::new(&config(
        &b,
        &[("enable.idempotence", "true"), ("compression.type", "zstd")],
    ))
    .await
    .unwrap();
    let n = 300;
    let mut futs = Vec::new();
    for i in 0..n {
        let r = ProducerRecord::new(topic.as_str())
            .key(format!("k{}", i % 17))
            .value(format!("v{i}"));
        futs.push(p.send(r).await.unwrap());
    }
    for f in futs {
        f.await.expect("delivered");
    }

    let group = unique("compat-g");
    let c = Consumer::new(&config(
        &b,
        &[
            ("group.id", group.as_str()),
            ("auto.offset.reset", "earliest"),
            ("enable.auto.commit", "false"),
            ("partition.assignment.strategy", "cooperative-sticky"),
        ],
    ))
    .await
    .unwrap();
    c.subscribe(&[topic.as_str()]).unwrap();
    let got = recv_n(&c, n).await;
    let mut values: Vec<String> = got.iter().map(|(_, _, v)| v.clone()).collect();
    values.sort();
    let mut want: Vec<String> = (0..n).map(|i| format!("v{i}")).collect();
    want.sort();
    assert_eq!(values, want, "every record once");
    c.commit(CommitMode::Sync).await.unwrap();
    let mut ends: BTreeMap<i32, i64> = BTreeMap::new();
    for (part, off, _) in &got {
        let e = ends.entry(*part).or_default();
        *e = (*e).max(off + 1);
    }
    let committed = admin.list_group_offsets(&group).await.unwrap();
    for (part, end) in &ends {
        let tp = TopicPartition::new(topic.as_str(), *part);
        assert_eq!(committed.get(&tp).copied().flatten(), Some(*end), "{tp}");
    }
    c.close().await.unwrap();

    // Records deleted below offset 1 of partition 0 (DeleteRecords), then the topic.
    let tp0 = TopicPartition::new(topic.as_str(), 0);
    admin.delete_records(vec![(tp0.clone(), 1)]).await.unwrap();
    let earliest = admin
        .list_offsets(vec![(tp0.clone(), OffsetSpec::Earliest)])
        .await
        .unwrap();
    let start = earliest[0].1.as_ref().map(|o| o.offset);
    assert_eq!(start.ok(), Some(1), "{earliest:?}");
    for (name, r) in admin.delete_topics(&[topic.as_str()]).await.unwrap() {
        r.unwrap_or_else(|e| panic!("delete {name}: {e}"));
    }
}

/// A 3.9 broker finalizes no `transaction.version` 2: the producer uses the V1 protocol, a
/// committed transaction is read by a read_committed consumer and an aborted one is not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transactions_use_the_v1_protocol() {
    let b = bootstrap().await;
    let topic = unique("compat-txn");
    let admin = AdminClient::new(&config(&b, &[])).await.unwrap();
    admin
        .create_topic(NewTopic::new(topic.as_str(), 1, 1))
        .await
        .unwrap();
    let p = Producer::new(&config(&b, &[("transactional.id", &unique("compat-tid"))]))
        .await
        .unwrap();
    p.init_transactions().await.unwrap();
    assert_eq!(p.transactions_v2(), Some(false), "V1 against {VERSION}");
    for (round, commit) in [(0, true), (1, false), (2, true)] {
        p.begin_transaction().unwrap();
        let mut sent = Vec::new();
        for i in 0..5 {
            let r = ProducerRecord::new(topic.as_str()).value(format!("r{round}-{i}"));
            sent.push(p.send(r).await.unwrap());
        }
        if commit {
            p.commit_transaction().await.unwrap();
            for f in sent {
                f.await.expect("a committed record was delivered");
            }
        } else {
            p.abort_transaction().await.unwrap();
        }
    }
    let c = Consumer::new(&config(
        &b,
        &[
            ("isolation.level", "read_committed"),
            ("auto.offset.reset", "earliest"),
        ],
    ))
    .await
    .unwrap();
    c.assign(vec![(
        TopicPartition::new(topic.as_str(), 0),
        Offset::Beginning,
    )])
    .unwrap();
    let got: Vec<String> = recv_n(&c, 10).await.into_iter().map(|r| r.2).collect();
    let want: Vec<String> = [0, 2]
        .iter()
        .flat_map(|r| (0..5).map(move |i| format!("r{r}-{i}")))
        .collect();
    assert_eq!(got, want, "the committed transactions only, in order");
    assert!(
        tokio::time::timeout(Duration::from_secs(2), c.recv())
            .await
            .is_err(),
        "nothing of the aborted transaction"
    );
}

/// What 3.9 lacks fails the first `recv` promptly with an error naming the way out:
/// `group.protocol=consumer` (KIP-848, Kafka 4.0) and share groups (KIP-932, Kafka 4.1).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_4_group_protocols_fail_promptly_and_say_why() {
    let b = bootstrap().await;
    let topic = unique("compat-848");
    let admin = AdminClient::new(&config(&b, &[])).await.unwrap();
    admin
        .create_topic(NewTopic::new(topic.as_str(), 1, 1))
        .await
        .unwrap();
    let cfg: ClientConfig = config(
        &b,
        &[
            ("group.id", &unique("compat-848-g")),
            ("group.protocol", "consumer"),
        ],
    );
    let c = Consumer::new(&cfg).await.unwrap();
    c.subscribe(&[topic.as_str()]).unwrap();
    let e = tokio::time::timeout(Duration::from_secs(30), c.recv())
        .await
        .expect("an answer within 30 s, not a wait")
        .expect_err("the KIP-848 protocol is not there");
    assert!(e.is_fatal(), "{e:?}");
    assert!(e.to_string().contains("group.protocol=classic"), "{e}");
    drop(c);

    let s = ShareConsumer::new(&config(&b, &[("group.id", &unique("compat-share-g"))]))
        .await
        .unwrap();
    s.subscribe(&[topic.as_str()]).unwrap();
    let e = tokio::time::timeout(Duration::from_secs(30), s.recv())
        .await
        .expect("an answer within 30 s, not a wait")
        .expect_err("no share groups");
    assert!(e.to_string().contains("ShareGroupHeartbeat"), "{e}");
}
