//! Facade overhead: the same produce run through kafka-sdk's native `Producer` and through
//! the drop-in `FutureProducer`, alternating, against one test-kit broker. Not part of
//! `cargo test` (ignored); run with
//! `cargo test --release -p kafka-sdk-rdkafka --test throughput -- --ignored --nocapture`.
//! Result noted in MIGRATING_FROM_RDKAFKA.md.

use std::time::{Duration, Instant};

use kafka_sdk::admin::{AdminClient, NewTopic};
use kafka_sdk::{ClientConfig, Producer, ProducerRecord};
use kafka_sdk_rdkafka::producer::{FutureProducer, FutureRecord, Producer as _};

const RECORDS: usize = 200_000;
const KEYS: usize = 1000;

fn keys() -> Vec<String> {
    (0..KEYS).map(|i| format!("key-{i}")).collect()
}

async fn native(bootstrap: &str, topic: &str, payload: &[u8]) -> Duration {
    let mut cfg = ClientConfig::new();
    cfg.set("bootstrap.servers", bootstrap)
        .set("linger.ms", "5")
        .set("partitioner", "consistent_random");
    let p = Producer::new(&cfg).await.unwrap();
    let keys = keys();
    let start = Instant::now();
    let mut pending = Vec::with_capacity(RECORDS);
    for i in 0..RECORDS {
        let r = ProducerRecord::new(topic)
            .key(keys[i % KEYS].clone())
            .value(payload.to_vec());
        pending.push(p.send(r).await.unwrap());
    }
    for d in pending {
        d.await.unwrap();
    }
    start.elapsed()
}

async fn facade(bootstrap: &str, topic: &str, payload: &[u8]) -> Duration {
    let mut cfg = kafka_sdk_rdkafka::ClientConfig::new();
    cfg.set("bootstrap.servers", bootstrap)
        .set("linger.ms", "5")
        .set("queue.buffering.max.messages", "1000000");
    let p: FutureProducer = cfg.create().unwrap();
    let keys = keys();
    let start = Instant::now();
    let mut pending = Vec::with_capacity(RECORDS);
    for i in 0..RECORDS {
        let r = FutureRecord::to(topic)
            .key(&keys[i % KEYS])
            .payload(payload);
        pending.push(p.send_result(r).map_err(|(e, _)| e).unwrap());
    }
    for d in pending {
        d.await.unwrap().map_err(|(e, _)| e).unwrap();
    }
    let took = start.elapsed();
    p.flush(Duration::from_secs(30)).unwrap();
    took
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "throughput measurement, run by hand"]
async fn facade_vs_native_producer_throughput() {
    let bootstrap = kafka_testkit::shared().bootstrap();
    let topic = format!("rdk-throughput-{}", std::process::id());
    let admin = AdminClient::new(&ClientConfig::new().with("bootstrap.servers", &bootstrap))
        .await
        .unwrap();
    admin
        .create_topic(NewTopic::new(&topic, 3, 1))
        .await
        .unwrap();
    let payload = vec![b'x'; 100];
    let (mut n, mut f) = (Vec::new(), Vec::new());
    for _ in 0..3 {
        n.push(native(&bootstrap, &topic, &payload).await);
        f.push(facade(&bootstrap, &topic, &payload).await);
    }
    let rate = |d: &Duration| RECORDS as f64 / d.as_secs_f64();
    let best = |v: &[Duration]| v.iter().map(rate).fold(0.0, f64::max);
    println!(
        "records/s (100 B, {RECORDS} per run) native {:?} facade {:?}; best native {:.0} facade {:.0} ({:+.1}%)",
        n.iter().map(|d| rate(d) as u64).collect::<Vec<_>>(),
        f.iter().map(|d| rate(d) as u64).collect::<Vec<_>>(),
        best(&n),
        best(&f),
        (best(&f) / best(&n) - 1.0) * 100.0
    );
}
