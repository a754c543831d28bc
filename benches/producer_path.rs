//! The producer's whole client-side path against an in-process mock broker
//! (`tests/support/mock_broker.rs`, acknowledging every Produce at once without decoding the
//! records): per iteration, `send(ProducerRecord)` of 10,000 x 100 B corpus values, then
//! `flush()`, then every delivery future awaited. Profile D settings (acks=all, idempotent,
//! max in flight 5, linger.ms 5, batch.size 1,000,000, no compression), a 3-partition topic,
//! key-less (sticky partitioning) and keyed (murmur2 over 1,000 distinct keys). Throughput is
//! in records. The mock runs in the same process and on the same runtime (2 worker threads),
//! so this measures send + accumulate + seal + frame + socket + response handling +
//! completion, plus the mock's small per-request cost.
//!
//! Instruction counts (load-independent; see `benches/callgrind.py producer`):
//! `PRODUCER_BENCH_CASE=keyless|keyed PRODUCER_BENCH_ITERS=N` runs N iterations after one
//! warm-up iteration and exits without criterion. For how the cost grows with the partition
//! count (`benches/callgrind.py producer-scale`), that mode also takes
//! `PRODUCER_BENCH_PARTITIONS` (default 3), `PRODUCER_BENCH_RECORDS` (per iteration, default
//! 10,000), `PRODUCER_BENCH_KEYS` (distinct keys, default 1,000) and `PRODUCER_BENCH_LINGER_MS`
//! (default 5; a long linger makes every batch hold what one iteration sent to its partition,
//! whatever the slow-down of the tool running it).

#[path = "../tests/support/mock_broker.rs"]
mod mock_broker;

#[path = "common/mod.rs"]
mod common;

use std::hint::black_box;
use std::sync::Arc;

use bytes::Bytes;
use criterion::{Criterion, Throughput};
use kafka_sdk::producer::{Producer, ProducerRecord};
use kafka_sdk::ClientConfig;
use mock_broker::MockBroker;

const TOPIC: &str = "bench";
const RECORDS: usize = 10_000;

struct Setup {
    rt: tokio::runtime::Runtime,
    _mock: MockBroker,
    producer: Producer,
    values: Vec<Bytes>,
    keys: Vec<Bytes>,
    topic: Arc<str>,
    records: usize,
}

/// A number from the environment, else `default`.
fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn setup() -> Setup {
    let partitions = env_or("PRODUCER_BENCH_PARTITIONS", 3) as i32;
    let linger = env_or("PRODUCER_BENCH_LINGER_MS", 5);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let (mock, producer) = rt.block_on(async {
        let mock = MockBroker::start(&[(TOPIC, partitions)]).await;
        mock.log_requests(false);
        let mut cfg = ClientConfig::new();
        cfg.set("bootstrap.servers", mock.bootstrap())
            .set("acks", "all")
            .set("enable.idempotence", "true")
            .set("max.in.flight.requests.per.connection", "5")
            .set("linger.ms", linger.to_string())
            .set("batch.size", "1000000")
            .set("compression.type", "none");
        let producer = Producer::new(&cfg).await.expect("producer");
        (mock, producer)
    });
    Setup {
        rt,
        _mock: mock,
        producer,
        values: common::corpus(100),
        keys: (0..env_or("PRODUCER_BENCH_KEYS", 1000))
            .map(|i| Bytes::from(format!("user-{i:06}")))
            .collect(),
        topic: TOPIC.into(),
        records: env_or("PRODUCER_BENCH_RECORDS", RECORDS),
    }
}

/// One iteration: 10,000 sends (`records`), flush, await every delivery.
async fn run(s: &Setup, keyed: bool) -> usize {
    let mut futs = Vec::with_capacity(s.records);
    for i in 0..s.records {
        let mut rec =
            ProducerRecord::new(s.topic.clone()).value(s.values[i % s.values.len()].clone());
        if keyed {
            rec = rec.key(s.keys[i % s.keys.len()].clone());
        }
        futs.push(s.producer.send(rec).await.expect("send"));
    }
    s.producer.flush().await;
    let mut ok = 0;
    for f in futs {
        black_box(f.await.expect("delivered"));
        ok += 1;
    }
    ok
}

fn instruction_count_mode() -> bool {
    let Ok(case) = std::env::var("PRODUCER_BENCH_CASE") else {
        return false;
    };
    let iters = env_or("PRODUCER_BENCH_ITERS", 5);
    let keyed = match case.as_str() {
        "keyless" => false,
        "keyed" => true,
        _ => panic!("unknown case {case:?} (keyless or keyed)"),
    };
    let s = setup();
    let mut total = s.rt.block_on(run(&s, keyed)); // warm-up: connection, buffers
    for _ in 0..iters {
        total += s.rt.block_on(run(&s, keyed));
    }
    println!(
        "{case}: {iters} iterations x {} records (+1 warm-up; {total} delivered)",
        s.records
    );
    true
}

fn benches(c: &mut Criterion) {
    let s = setup();
    let mut g = c.benchmark_group("producer_path");
    g.throughput(Throughput::Elements(RECORDS as u64));
    g.sample_size(20);
    for (name, keyed) in [("keyless/10000x100B", false), ("keyed/10000x100B", true)] {
        g.bench_function(name, |b| b.iter(|| s.rt.block_on(run(&s, keyed))));
    }
    g.finish();
}

fn main() {
    if instruction_count_mode() {
        return;
    }
    let mut c = Criterion::default().configure_from_args();
    benches(&mut c);
    c.final_summary();
}
