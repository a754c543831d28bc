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

/// CPU seconds this process has used (user + system; the broker is another process), from
/// /proc/self/stat (Linux; 0 elsewhere).
fn cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    // Fields after the command name (which is in parentheses): utime is the 14th field of
    // the line, stime the 15th, in clock ticks (100 per second on Linux).
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<f64> = rest
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|v| v.parse().ok())
        .collect();
    f.iter().sum::<f64>() / 100.0
}

/// Wall time and CPU seconds of one run.
#[derive(Clone, Copy)]
struct Run {
    wall: Duration,
    cpu: f64,
}
const KEYS: usize = 1000;

fn keys() -> Vec<String> {
    (0..KEYS).map(|i| format!("key-{i}")).collect()
}

async fn native(bootstrap: &str, topic: &str, payload: &[u8]) -> Run {
    let mut cfg = ClientConfig::new();
    cfg.set("bootstrap.servers", bootstrap)
        .set("linger.ms", "5")
        .set("partitioner", "consistent_random");
    let p = Producer::new(&cfg).await.unwrap();
    let keys = keys();
    let cpu = cpu_seconds();
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
    Run {
        wall: start.elapsed(),
        cpu: cpu_seconds() - cpu,
    }
}

async fn facade(bootstrap: &str, topic: &str, payload: &[u8]) -> Run {
    let mut cfg = kafka_sdk_rdkafka::ClientConfig::new();
    cfg.set("bootstrap.servers", bootstrap)
        .set("linger.ms", "5")
        .set("queue.buffering.max.messages", "1000000");
    let p: FutureProducer = cfg.create().unwrap();
    let keys = keys();
    let cpu = cpu_seconds();
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
    let took = Run {
        wall: start.elapsed(),
        cpu: cpu_seconds() - cpu,
    };
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
    for _ in 0..4 {
        n.push(native(&bootstrap, &topic, &payload).await);
        f.push(facade(&bootstrap, &topic, &payload).await);
    }
    let rate = |r: &Run| RECORDS as f64 / r.wall.as_secs_f64();
    let cpu_per_m = |r: &Run| r.cpu * 1_000_000.0 / RECORDS as f64;
    let best = |v: &[Run]| v.iter().map(rate).fold(0.0, f64::max);
    let least_cpu = |v: &[Run]| v.iter().map(cpu_per_m).fold(f64::MAX, f64::min);
    println!(
        "records/s (100 B, {RECORDS} per run) native {:?} facade {:?}; best native {:.0} facade {:.0} ({:+.1}%)",
        n.iter().map(|r| rate(r) as u64).collect::<Vec<_>>(),
        f.iter().map(|r| rate(r) as u64).collect::<Vec<_>>(),
        best(&n),
        best(&f),
        (best(&f) / best(&n) - 1.0) * 100.0
    );
    println!(
        "client CPU-s per 1M records native {:.2?} facade {:.2?}; least native {:.2} facade {:.2} ({:+.1}%)",
        n.iter().map(cpu_per_m).collect::<Vec<_>>(),
        f.iter().map(cpu_per_m).collect::<Vec<_>>(),
        least_cpu(&n),
        least_cpu(&f),
        (least_cpu(&f) / least_cpu(&n) - 1.0) * 100.0
    );
}
