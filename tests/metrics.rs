//! Metrics (crate feature `metrics`) recorded by a debugging recorder during a known
//! workload against the test kit's broker: records sent, acknowledged, consumed, bytes, the
//! consumer's lag gauge and commits. Run with `cargo test --features metrics --test metrics`.

mod support;

use std::collections::HashMap;
use std::time::Duration;

use kafka_sdk::consumer::{CommitMode, Consumer, Offset};
use kafka_sdk::{Producer, ProducerRecord, TopicPartition};
use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};
use metrics_util::{CompositeKey, MetricKind};

use support::common::{self, unique};

type Metrics = HashMap<(String, Vec<(String, String)>), DebugValue>;

fn snapshot(s: &Snapshotter) -> Metrics {
    s.snapshot()
        .into_vec()
        .into_iter()
        .map(|(k, _, _, v): (CompositeKey, _, _, DebugValue)| {
            let key = k.key();
            let mut labels: Vec<(String, String)> = key
                .labels()
                .map(|l| (l.key().to_string(), l.value().to_string()))
                .collect();
            labels.sort();
            let _ = k.kind() == MetricKind::Counter;
            ((key.name().to_string(), labels), v)
        })
        .collect()
}

fn labels(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    v.sort();
    v
}

fn counter(m: &Metrics, name: &str, l: &[(&str, &str)]) -> u64 {
    match m.get(&(name.to_string(), labels(l))) {
        Some(DebugValue::Counter(c)) => *c,
        other => panic!(
            "{name} {l:?}: {other:?} in {:?}",
            m.keys().collect::<Vec<_>>()
        ),
    }
}

#[tokio::test]
async fn workload_is_counted() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    recorder.install().expect("install the debugging recorder");

    let bs = kafka_testkit::shared().bootstrap();
    let topic = unique("metrics");
    let group = unique("metrics-group");
    common::create_topic(&bs, &topic, 2).await;
    let p = Producer::new(&common::config(
        &bs,
        &[("client.id", "m-prod"), ("linger.ms", "5")],
    ))
    .await
    .unwrap();
    let mut futs = Vec::new();
    for i in 0..20 {
        futs.push(
            p.send(
                ProducerRecord::new(topic.as_str())
                    .partition(i % 2)
                    .value(vec![b'x'; 10]),
            )
            .await
            .unwrap(),
        );
    }
    for f in futs {
        f.await.unwrap();
    }
    p.close(Duration::from_secs(10)).await.unwrap();

    let c = Consumer::new(&common::config(
        &bs,
        &[("client.id", "m-cons"), ("group.id", group.as_str())],
    ))
    .await
    .unwrap();
    c.handle()
        .assign(vec![
            (TopicPartition::new(topic.as_str(), 0), Offset::Beginning),
            (TopicPartition::new(topic.as_str(), 1), Offset::Beginning),
        ])
        .unwrap();
    for _ in 0..20 {
        tokio::time::timeout(Duration::from_secs(60), c.recv())
            .await
            .unwrap()
            .unwrap();
    }
    c.handle().commit(CommitMode::Sync).await.unwrap();

    let m = snapshot(&snapshotter);
    let prod = [("client_id", "m-prod"), ("topic", topic.as_str())];
    let cons = [("client_id", "m-cons"), ("topic", topic.as_str())];
    assert_eq!(counter(&m, "kafka.producer.record.send.total", &prod), 20);
    assert_eq!(counter(&m, "kafka.producer.record.ack.total", &prod), 20);
    assert_eq!(counter(&m, "kafka.producer.byte.total", &prod), 200);
    assert_eq!(
        counter(&m, "kafka.consumer.records.consumed.total", &cons),
        20
    );
    assert_eq!(
        counter(&m, "kafka.consumer.bytes.consumed.total", &cons),
        200
    );
    assert_eq!(
        counter(
            &m,
            "kafka.consumer.commit.total",
            &[("client_id", "m-cons")]
        ),
        1
    );
    assert!(!m.contains_key(&(
        "kafka.producer.batch.error.total".to_string(),
        labels(&prod)
    )));
    // The lag gauge exists per assigned partition and is bounded by what was produced.
    for part in ["0", "1"] {
        let key = (
            "kafka.consumer.records.lag".to_string(),
            labels(&[
                ("client_id", "m-cons"),
                ("topic", topic.as_str()),
                ("partition", part),
            ]),
        );
        match m.get(&key) {
            Some(DebugValue::Gauge(g)) => assert!(g.into_inner() <= 10.0, "{g:?}"),
            other => panic!("lag gauge of partition {part}: {other:?}"),
        }
    }
    let lat = m.get(&(
        "kafka.consumer.commit.latency.seconds".to_string(),
        labels(&[("client_id", "m-cons")]),
    ));
    assert!(
        matches!(lat, Some(DebugValue::Histogram(h)) if h.len() == 1),
        "{lat:?}"
    );
    c.close().await.unwrap();
}
