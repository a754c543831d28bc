//! `statistics.interval.ms` through the drop-in crate: a custom `ClientContext` receives
//! librdkafka's statistics JSON (`stats_raw`) and the parsed `Statistics` (`stats`, the
//! default `stats_raw` path) from a `FutureProducer` and a `StreamConsumer`, with counts,
//! offsets and lag matching the run; dropping the client stops the callbacks.

mod common;
use common::unique;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use kafka_sdk_rdkafka::client::ClientContext;
use kafka_sdk_rdkafka::config::ClientConfig;
use kafka_sdk_rdkafka::consumer::{CommitMode, Consumer, ConsumerContext, StreamConsumer};
use kafka_sdk_rdkafka::producer::{FutureProducer, FutureRecord};
use kafka_sdk_rdkafka::statistics::Statistics;
use kafka_sdk_rdkafka::topic_partition_list::Offset;
use serde_json::Value;

const N: usize = 200;

/// Keeps the raw JSON of every snapshot, then lets the default path parse it into `stats`.
#[derive(Clone, Default)]
struct Collect {
    raw: Arc<Mutex<Vec<Value>>>,
    parsed: Arc<Mutex<Vec<Statistics>>>,
}

impl ClientContext for Collect {
    fn stats(&self, statistics: Statistics) {
        self.parsed.lock().unwrap().push(statistics);
    }

    fn stats_raw(&self, statistics: &[u8]) {
        let v: Value = serde_json::from_slice(statistics).expect("statistics JSON parses");
        self.raw.lock().unwrap().push(v);
        self.stats(serde_json::from_slice(statistics).expect("parses into Statistics"));
    }
}

impl ConsumerContext for Collect {}

/// Waits (bounded) for a raw snapshot satisfying `f`.
async fn wait_for(ctx: &Collect, what: &str, f: impl Fn(&Value) -> bool) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(v) = ctx.raw.lock().unwrap().iter().rev().find(|v| f(v)) {
            return v.clone();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no statistics with {what}; last: {:?}",
            ctx.raw.lock().unwrap().last()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// No callback arrives any more (after the client was dropped).
async fn assert_stopped(ctx: &Collect) {
    tokio::time::sleep(Duration::from_millis(800)).await;
    let n = ctx.raw.lock().unwrap().len();
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(
        ctx.raw.lock().unwrap().len(),
        n,
        "stats callbacks after drop"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn context_receives_librdkafka_statistics() {
    let bs = kafka_testkit::shared().bootstrap();
    let topic = unique("facade-stats");
    let admin = kafka_sdk::AdminClient::new(
        &kafka_sdk::ClientConfig::new().with("bootstrap.servers", bs.as_str()),
    )
    .await
    .unwrap();
    admin
        .create_topic(kafka_sdk::NewTopic::new(topic.as_str(), 2, 1))
        .await
        .unwrap();

    // --- FutureProducer ---
    let pctx = Collect::default();
    let producer: FutureProducer<Collect> = ClientConfig::new()
        .set("bootstrap.servers", &bs)
        .set("statistics.interval.ms", "200")
        .create_with_context(pctx.clone())
        .unwrap();
    for i in 0..N {
        let key = format!("k{i}");
        let value = format!("v{i}");
        producer
            .send(
                FutureRecord::to(&topic).key(&key).payload(&value),
                Duration::from_secs(10),
            )
            .await
            .unwrap();
    }
    let v = wait_for(&pctx, "txmsgs == N", |v| v["txmsgs"] == N as u64).await;
    assert_eq!(v["type"], "producer");
    assert_eq!(v["msg_cnt"], 0);
    let parts = &v["topics"][&topic]["partitions"];
    let sum: u64 = ["0", "1"]
        .iter()
        .map(|p| parts[p]["txmsgs"].as_u64().unwrap_or(0))
        .sum();
    assert_eq!(sum, N as u64, "{parts}");
    let brokers = v["brokers"].as_object().expect("brokers object");
    assert!(
        brokers
            .values()
            .any(|b| b["state"] == "UP" && b["tx"].as_u64().unwrap_or(0) > 0),
        "{brokers:?}"
    );
    wait_for(&pctx, "a broker rtt cnt > 0", |v| {
        v["brokers"].as_object().is_some_and(|b| {
            b.values()
                .any(|b| b["rtt"]["cnt"].as_i64().unwrap_or(0) > 0)
        })
    })
    .await;
    // The default `stats_raw` path: the same snapshot parsed into `Statistics`.
    assert!(pctx
        .parsed
        .lock()
        .unwrap()
        .iter()
        .any(|s| s.txmsgs == N as i64 && s.client_type == "producer"));
    drop(producer);
    assert_stopped(&pctx).await;

    // --- StreamConsumer ---
    let cctx = Collect::default();
    let group = unique("facade-stats-group");
    let consumer: StreamConsumer<Collect> = ClientConfig::new()
        .set("bootstrap.servers", &bs)
        .set("group.id", &group)
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .set("statistics.interval.ms", "200")
        .create_with_context(cctx.clone())
        .unwrap();
    consumer.subscribe(&[&topic]).unwrap();
    for _ in 0..N {
        tokio::time::timeout(Duration::from_secs(60), consumer.recv())
            .await
            .expect("records within 60 s")
            .unwrap();
    }
    consumer.commit_consumer_state(CommitMode::Sync).unwrap();
    let committed = consumer.committed(Duration::from_secs(10)).unwrap();
    let v = wait_for(&cctx, "rxmsgs == N, committed offsets, group up", |v| {
        let parts = &v["topics"][&topic]["partitions"];
        v["rxmsgs"] == N as u64
            && v["cgrp"]["state"] == "up"
            && ["0", "1"]
                .iter()
                .all(|p| parts[p]["committed_offset"].as_i64().unwrap_or(-1) >= 0)
    })
    .await;
    assert_eq!(v["type"], "consumer");
    assert_eq!(v["cgrp"]["assignment_size"], 2);
    for e in committed.elements_for_topic(&topic) {
        let Offset::Offset(o) = e.offset() else {
            panic!("no committed offset for {e:?}");
        };
        let p = &v["topics"][&topic]["partitions"][e.partition().to_string()];
        assert_eq!(p["committed_offset"], o, "{p}");
        assert_eq!(p["hi_offset"], o, "{p}");
        assert_eq!(p["consumer_lag"], 0, "{p}");
        assert_eq!(p["app_offset"], o, "{p}");
    }
    drop(consumer);
    assert_stopped(&cctx).await;
}
