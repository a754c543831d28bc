//! Metrics (crate feature `metrics`) recorded by a debugging recorder during a known
//! workload against the test kit's broker: records sent, acknowledged, consumed, bytes, the
//! consumer's lag gauge and commits; request, delivery and fetch latencies, the producer's
//! buffer and in-flight gauges, a group member's rebalance and assigned partitions, and
//! connection counts and bytes per broker. Run with `cargo test --features metrics --test metrics`.

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

/// Sum of a counter over every label set that includes `l` (e.g. every broker).
fn counter_sum(m: &Metrics, name: &str, l: &[(&str, &str)]) -> u64 {
    let want = labels(l);
    m.iter()
        .filter(|((n, ls), _)| n == name && want.iter().all(|w| ls.contains(w)))
        .map(|(_, v)| match v {
            DebugValue::Counter(c) => *c,
            other => panic!("{name}: {other:?}"),
        })
        .sum()
}

/// Samples of a histogram summed over every label set that includes `l`.
fn hist_len(m: &Metrics, name: &str, l: &[(&str, &str)]) -> usize {
    let want = labels(l);
    m.iter()
        .filter(|((n, ls), _)| n == name && want.iter().all(|w| ls.contains(w)))
        .map(|(_, v)| match v {
            DebugValue::Histogram(h) => h.len(),
            other => panic!("{name}: {other:?}"),
        })
        .sum()
}

fn gauge(m: &Metrics, name: &str, l: &[(&str, &str)]) -> Option<f64> {
    match m.get(&(name.to_string(), labels(l))) {
        Some(DebugValue::Gauge(g)) => Some(g.into_inner()),
        None => None,
        other => panic!("{name} {l:?}: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
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
    drop(p);

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
    let cid = [("client_id", "m-prod")];
    // Every batch has one delivery latency sample and one records-per-batch sample; at least
    // one batch per partition.
    let batches = hist_len(&m, "kafka.producer.batch.records", &prod);
    assert!(batches >= 2, "{batches} batches");
    assert_eq!(
        hist_len(&m, "kafka.producer.delivery.latency.seconds", &prod),
        batches
    );
    let requests = hist_len(&m, "kafka.producer.request.latency.seconds", &cid);
    assert!(
        (1..=batches).contains(&requests),
        "{requests} produce requests"
    );
    assert!(
        !m.keys()
            .any(|(n, _)| n == "kafka.producer.record.retry.total"),
        "no retries on a healthy cluster"
    );
    // All acknowledged: the whole buffer.memory free again, nothing in flight.
    assert_eq!(
        gauge(&m, "kafka.producer.buffer.available.bytes", &cid),
        Some(33_554_432.0)
    );
    assert_eq!(
        gauge(&m, "kafka.producer.requests.in.flight", &cid),
        Some(0.0)
    );
    assert!(
        hist_len(
            &m,
            "kafka.consumer.fetch.latency.seconds",
            &[("client_id", "m-cons")]
        ) >= 1
    );
    // Connections: the producer's bytes out cover the 200 value bytes; it connected at
    // least once and every connection it opened is counted as closed after close().
    let created = counter_sum(&m, "kafka.connection.creation.total", &cid);
    assert!(created >= 1);
    assert!(counter_sum(&m, "kafka.node.outgoing.byte.total", &cid) > 200);
    assert!(counter_sum(&m, "kafka.node.incoming.byte.total", &cid) > 0);
    assert_eq!(
        counter_sum(&m, "kafka.connection.failed.authentication.total", &cid),
        0
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let m = snapshot(&snapshotter);
        let closed = counter_sum(&m, "kafka.connection.close.total", &cid);
        let open = gauge(&m, "kafka.connection.count", &cid);
        if closed == counter_sum(&m, "kafka.connection.creation.total", &cid) && open == Some(0.0) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "producer connections still open after close: {closed} closed of {created}, gauge {open:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    c.close().await.unwrap();

    // A group member: one rebalance that leaves it both partitions.
    let sub = Consumer::new(&common::config(
        &bs,
        &[
            ("client.id", "m-sub"),
            ("group.id", unique("metrics-sub").as_str()),
            ("auto.offset.reset", "earliest"),
        ],
    ))
    .await
    .unwrap();
    sub.subscribe(&[topic.as_str()]).unwrap();
    tokio::time::timeout(Duration::from_secs(60), sub.recv())
        .await
        .unwrap()
        .unwrap();
    let m = snapshot(&snapshotter);
    let sid = [("client_id", "m-sub")];
    assert!(counter(&m, "kafka.consumer.rebalance.total", &sid) >= 1);
    assert_eq!(
        hist_len(&m, "kafka.consumer.rebalance.latency.seconds", &sid) as u64,
        counter(&m, "kafka.consumer.rebalance.total", &sid)
    );
    assert_eq!(
        gauge(&m, "kafka.consumer.assigned.partitions", &sid),
        Some(2.0)
    );
    sub.close().await.unwrap();
}
