//! Consumer tests against a real broker (`KAFKA_BOOTSTRAP_SERVERS`, default the dev broker).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{ProduceRequest, TopicName};
use kafka_protocol::protocol::StrBytes;
use kafka_sdk::admin::{AdminClient, NewTopic};
use kafka_sdk::backoff::Deadline;
use kafka_sdk::cluster::ClusterOptions;
use kafka_sdk::config::ClientConfig;
use kafka_sdk::consumer::{
    BoxFuture, CommitMode, Consumer, ConsumerHandle, Message, Offset, RebalanceListener,
};
use kafka_sdk::record::{BatchBuilder, BatchParams, Compression};
use kafka_sdk::{Error, KafkaCode, TopicPartition};

fn bootstrap() -> String {
    std::env::var("KAFKA_BOOTSTRAP_SERVERS").unwrap_or_else(|_| "127.0.0.1:19092".into())
}

static SEQ: AtomicU64 = AtomicU64::new(0);

/// A name unique to this test run.
fn unique(prefix: &str) -> String {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis();
    format!("{prefix}-{t}-{}", SEQ.fetch_add(1, Ordering::Relaxed))
}

async fn admin() -> AdminClient {
    AdminClient::connect(ClusterOptions::new(vec![bootstrap()]))
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

/// One produced record: key, value, headers.
type Rec = (
    Option<Vec<u8>>,
    Option<Vec<u8>>,
    Vec<(String, Option<Vec<u8>>)>,
);

/// Produces `records` to one partition as one batch (acks=all) with a raw ProduceRequest.
async fn produce(topic: &str, partition: i32, records: &[Rec], compression: Compression) {
    let admin = admin().await;
    let cluster = admin.cluster();
    let (_, conn) = cluster
        .leader(topic, partition, Deadline::after(Duration::from_secs(10)))
        .await
        .expect("leader");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
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
    let resp = conn.send(&req).await.expect("produce");
    for t in resp.responses {
        for p in t.partition_responses {
            assert_eq!(
                p.error_code,
                0,
                "produce error {:?}",
                KafkaCode(p.error_code)
            );
        }
    }
}

/// Produces `n` simple records `k{i}` / `v{i}` to one partition, in batches of 100.
async fn produce_n(topic: &str, partition: i32, from: usize, n: usize) {
    let mut i = from;
    while i < from + n {
        let end = (i + 100).min(from + n);
        let recs: Vec<Rec> = (i..end)
            .map(|j| {
                (
                    Some(format!("k{j}").into_bytes()),
                    Some(format!("v{j}").into_bytes()),
                    vec![],
                )
            })
            .collect();
        produce(topic, partition, &recs, Compression::None).await;
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
