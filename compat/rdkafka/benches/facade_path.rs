//! The drop-in's producer path next to kafka-sdk's own, against the same in-process mock
//! broker as `benches/producer_path.rs` (`tests/support/mock_broker.rs`, every Produce
//! acknowledged at once): per iteration 10,000 records of 100 B corpus values to a 3-partition
//! topic with the peer benchmark's profile D settings (acks=all, idempotent, max in flight 5,
//! linger.ms 5, batch.size 1,000,000, no compression), key-less like the peer benchmark
//! (`FACADE_BENCH_KEYED=1`: 1,000 distinct keys; `FACADE_BENCH_HEADERS=1`: two headers per
//! record, built by the caller per record on every side; `FACADE_BENCH_READ_REPORTS=1`: the
//! `BaseProducer`'s delivery callback reads each report's key and payload). Cases (`FACADE_BENCH_CASE`):
//!
//! - `native`: kafka-sdk's `Producer::send(ProducerRecord)` per record, `flush`, every
//!   delivery future awaited (as `producer_path`, in this binary so both sides share a build);
//! - `future`: the facade's `FutureProducer::send_result(FutureRecord)` per record, then
//!   every `DeliveryFuture` awaited (the peer benchmark's `future` API);
//! - `base`: the facade's `BaseProducer::send(BaseRecord)` plus `poll(0)` per record, then
//!   `flush` (the peer benchmark's `base` API; the context counts delivery reports).
//!
//! Consumer cases (the mock's fetch log holds 100 B records in batches of 500 on 3
//! partitions; each iteration reads 10,000 of them, manual assignment from the beginning):
//!
//! - `native-recv`: kafka-sdk's `Consumer::recv` per message;
//! - `stream`: the facade's `StreamConsumer::recv` per message;
//! - `base-consumer`: the facade's `BaseConsumer::poll` per message.
//!
//! `FACADE_BENCH_ITERS=N` runs N iterations after one record (metadata) and one warm-up
//! iteration. Instructions per
//! record (load-independent) come from `python3 benches/callgrind.py facade`, which runs each
//! case under callgrind at two iteration counts and divides the difference. Without
//! `FACADE_BENCH_CASE` it prints each case's wall-clock records/s (5 iterations; machine
//! load shows there, not in the instruction counts).

#[path = "../../../tests/support/mock_broker.rs"]
mod mock_broker;

#[path = "../../../benches/common/mod.rs"]
mod common;

use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use kafka_sdk::producer::{Producer as NativeProducer, ProducerRecord};
use kafka_sdk_rdkafka::config::ClientConfig;
use kafka_sdk_rdkafka::consumer::{BaseConsumer, Consumer as _, StreamConsumer};
use kafka_sdk_rdkafka::message::{Header, Message as _, OwnedHeaders};
use kafka_sdk_rdkafka::producer::{
    BaseProducer, BaseRecord, DeliveryResult, FutureProducer, FutureRecord, Producer,
    ProducerContext,
};
use kafka_sdk_rdkafka::{ClientContext, Offset, TopicPartitionList};
use mock_broker::MockBroker;

const TOPIC: &str = "bench";
const RECORDS: usize = 10_000;

/// The peer benchmark's profile D.
const SETTINGS: &[(&str, &str)] = &[
    ("acks", "all"),
    ("enable.idempotence", "true"),
    ("max.in.flight.requests.per.connection", "5"),
    ("linger.ms", "5"),
    ("batch.size", "1000000"),
    ("compression.type", "none"),
];

/// Counts delivery reports (as the peer benchmark's context does, minus the histogram).
#[derive(Default)]
struct Ctx {
    acked: AtomicU64,
    failed: AtomicU64,
    /// FACADE_BENCH_READ_REPORTS=1: each report's key and payload are read (summed here).
    read: bool,
    bytes: AtomicU64,
}

impl ClientContext for Ctx {}

impl ProducerContext for Ctx {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        match result {
            Ok(_) => self.acked.fetch_add(1, Ordering::Relaxed),
            Err(_) => self.failed.fetch_add(1, Ordering::Relaxed),
        };
        if self.read {
            let m = match result {
                Ok(m) | Err((_, m)) => m,
            };
            let n = m.key().map_or(0, <[u8]>::len) + m.payload().map_or(0, <[u8]>::len);
            self.bytes.fetch_add(n as u64, Ordering::Relaxed);
        }
    }
}

enum Client {
    Native(NativeProducer, Arc<str>),
    Future(FutureProducer),
    Base(BaseProducer<Ctx>),
    NativeRecv(kafka_sdk::Consumer),
    Stream(StreamConsumer),
    BaseConsumer(BaseConsumer),
}

/// Records per batch in the mock's fetch log.
const LOG_BATCH: usize = 500;

struct Setup {
    rt: tokio::runtime::Runtime,
    _mock: MockBroker,
    client: Client,
    values: Vec<Bytes>,
    keys: Vec<Bytes>,
    keyed: bool,
    /// Two headers per record (`FACADE_BENCH_HEADERS=1`).
    headers: bool,
}

/// The value of the benchmark's `trace` header.
const TRACE: &[u8] = b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

/// `iters`: the measured iterations (the consumer cases' log holds just what the warm-up
/// and those read, rounded up to whole batches: a consumer fetches ahead, and what it
/// fetched but did not read would count in one run and not in the other).
fn setup(case: &str, keyed: bool, iters: usize) -> Setup {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let mock = rt.block_on(async {
        let mock = MockBroker::start(&[(TOPIC, 3)]).await;
        mock.log_requests(false);
        mock
    });
    let mut cfg = ClientConfig::new();
    cfg.set("bootstrap.servers", mock.bootstrap());
    for (k, v) in SETTINGS {
        cfg.set(*k, *v);
    }
    let client = match case {
        "native" => {
            let mut native = kafka_sdk::ClientConfig::new();
            native.set("bootstrap.servers", mock.bootstrap());
            for (k, v) in SETTINGS {
                native.set(*k, *v);
            }
            let p = rt
                .block_on(NativeProducer::new(&native))
                .expect("native producer");
            Client::Native(p, TOPIC.into())
        }
        "future" => Client::Future(cfg.create().expect("FutureProducer")),
        "base" => Client::Base(
            cfg.create_with_context(Ctx {
                read: std::env::var("FACADE_BENCH_READ_REPORTS").is_ok_and(|v| v == "1"),
                ..Ctx::default()
            })
            .expect("BaseProducer"),
        ),
        "native-recv" | "stream" | "base-consumer" => {
            let values = common::corpus(100);
            let strs: Vec<String> = values
                .iter()
                .map(|v| String::from_utf8_lossy(v).into_owned())
                .collect();
            for p in 0..3 {
                let per_partition = ((iters + 1) * RECORDS).div_ceil(3);
                for chunk in 0..per_partition.div_ceil(LOG_BATCH) {
                    let batch: Vec<&str> = (0..LOG_BATCH)
                        .map(|i| strs[(chunk * LOG_BATCH + i) % strs.len()].as_str())
                        .collect();
                    mock.append(TOPIC, p, &batch);
                }
            }
            let mut ccfg = ClientConfig::new();
            ccfg.set("bootstrap.servers", mock.bootstrap())
                .set("group.id", "facade-bench")
                .set("enable.auto.commit", "false");
            let mut tpl = TopicPartitionList::new();
            for p in 0..3 {
                tpl.add_partition_offset(TOPIC, p, Offset::Beginning)
                    .expect("assignment");
            }
            match case {
                "native-recv" => {
                    let native =
                        kafka_sdk::ClientConfig::new().with("bootstrap.servers", mock.bootstrap());
                    let c = rt
                        .block_on(kafka_sdk::Consumer::new(&native))
                        .expect("native consumer");
                    let parts = (0..3)
                        .map(|p| {
                            (
                                kafka_sdk::TopicPartition::new(TOPIC, p),
                                kafka_sdk::Offset::Beginning,
                            )
                        })
                        .collect();
                    c.handle().assign(parts).expect("assign");
                    Client::NativeRecv(c)
                }
                "stream" => {
                    let c: StreamConsumer = ccfg.create().expect("StreamConsumer");
                    c.assign(&tpl).expect("assign");
                    Client::Stream(c)
                }
                _ => {
                    let c: BaseConsumer = ccfg.create().expect("BaseConsumer");
                    c.assign(&tpl).expect("assign");
                    Client::BaseConsumer(c)
                }
            }
        }
        other => panic!(
            "unknown case {other:?} (native, future, base, native-recv, stream or base-consumer)"
        ),
    };
    Setup {
        rt,
        _mock: mock,
        client,
        values: common::corpus(100),
        keys: (0..1000)
            .map(|i| Bytes::from(format!("user-{i:06}")))
            .collect(),
        keyed,
        headers: std::env::var("FACADE_BENCH_HEADERS").is_ok_and(|v| v == "1"),
    }
}

impl Setup {
    /// One record sent and its outcome awaited, so that the topic's metadata is known
    /// before the first burst: otherwise the records sent while the first one waits for it
    /// go through the drop-in's lane, how many depending on thread scheduling (under
    /// callgrind, thousands one run, hundreds the next), which the difference of two runs
    /// would count as per-record cost.
    fn prime(&self) {
        match &self.client {
            Client::NativeRecv(_) | Client::Stream(_) | Client::BaseConsumer(_) => {}
            Client::Native(p, topic) => self.rt.block_on(async {
                let rec = ProducerRecord::new(topic.clone()).value(self.values[0].clone());
                p.send(rec).await.expect("send").await.expect("delivered");
            }),
            Client::Future(p) => self.rt.block_on(async {
                let rec = FutureRecord::<[u8], [u8]>::to(TOPIC).payload(self.value(0));
                p.send(rec, Duration::from_secs(60))
                    .await
                    .map_err(|(e, _)| e)
                    .expect("delivered");
            }),
            Client::Base(p) => {
                let rec = BaseRecord::<[u8], [u8]>::to(TOPIC).payload(self.value(0));
                p.send(rec).map_err(|(e, _)| e).expect("send");
                p.flush(Duration::from_secs(60)).expect("flush");
                let ctx = p.context();
                assert_eq!(
                    ctx.acked.load(Ordering::Relaxed),
                    1,
                    "first record delivered"
                );
            }
        }
    }

    fn key(&self, i: usize) -> Option<&[u8]> {
        self.keyed.then(|| &self.keys[i % self.keys.len()][..])
    }

    /// The drop-in's headers of one record (with `FACADE_BENCH_HEADERS=1`).
    fn rd_headers(&self) -> Option<OwnedHeaders> {
        self.headers.then(|| {
            OwnedHeaders::new_with_capacity(2)
                .insert(Header {
                    key: "traceparent",
                    value: Some(TRACE),
                })
                .insert(Header {
                    key: "type",
                    value: Some(&b"event"[..]),
                })
        })
    }

    fn value(&self, i: usize) -> &[u8] {
        &self.values[i % self.values.len()]
    }

    /// One iteration: `RECORDS` records sent, every outcome taken; returns how many were
    /// delivered.
    fn run(&self) -> usize {
        match &self.client {
            Client::Native(p, topic) => self.rt.block_on(async {
                let mut futs = Vec::with_capacity(RECORDS);
                for i in 0..RECORDS {
                    let mut rec = ProducerRecord::new(topic.clone())
                        .value(self.values[i % self.values.len()].clone());
                    if self.keyed {
                        rec = rec.key(self.keys[i % self.keys.len()].clone());
                    }
                    if self.headers {
                        rec = rec
                            .header("traceparent", Some(Bytes::from_static(TRACE)))
                            .header("type", Some(Bytes::from_static(b"event")));
                    }
                    futs.push(p.send(rec).await.expect("send"));
                }
                p.flush().await;
                let mut ok = 0;
                for f in futs {
                    black_box(f.await.expect("delivered"));
                    ok += 1;
                }
                ok
            }),
            Client::Future(p) => self.rt.block_on(async {
                let mut futs = Vec::with_capacity(RECORDS);
                for i in 0..RECORDS {
                    let mut rec = FutureRecord::<[u8], [u8]>::to(TOPIC).payload(self.value(i));
                    if let Some(k) = self.key(i) {
                        rec = rec.key(k);
                    }
                    if let Some(h) = self.rd_headers() {
                        rec = rec.headers(h);
                    }
                    futs.push(p.send_result(rec).map_err(|(e, _)| e).expect("send"));
                }
                let mut ok = 0;
                for f in futs {
                    black_box(f.await.expect("not canceled").expect("delivered"));
                    ok += 1;
                }
                ok
            }),
            Client::Base(p) => {
                let ctx = p.context().clone();
                let before = ctx.acked.load(Ordering::Relaxed);
                for i in 0..RECORDS {
                    let mut rec = BaseRecord::<[u8], [u8]>::to(TOPIC).payload(self.value(i));
                    if let Some(k) = self.key(i) {
                        rec = rec.key(k);
                    }
                    if let Some(h) = self.rd_headers() {
                        rec = rec.headers(h);
                    }
                    p.send(rec).map_err(|(e, _)| e).expect("send");
                    p.poll(Duration::ZERO);
                }
                p.flush(Duration::from_secs(60)).expect("flush");
                assert_eq!(ctx.failed.load(Ordering::Relaxed), 0, "failed deliveries");
                (ctx.acked.load(Ordering::Relaxed) - before) as usize
            }
            Client::NativeRecv(c) => self.rt.block_on(async {
                for _ in 0..RECORDS {
                    black_box(c.recv().await.expect("message").payload().map(<[u8]>::len));
                }
                RECORDS
            }),
            Client::Stream(c) => self.rt.block_on(async {
                for _ in 0..RECORDS {
                    black_box(c.recv().await.expect("message").payload().map(<[u8]>::len));
                }
                RECORDS
            }),
            Client::BaseConsumer(c) => {
                let mut got = 0;
                while got < RECORDS {
                    if let Some(m) = c.poll(Duration::from_secs(10)) {
                        black_box(m.expect("message").payload().map(<[u8]>::len));
                        got += 1;
                    }
                }
                got
            }
        }
    }
}

fn main() {
    let keyed = std::env::var("FACADE_BENCH_KEYED").is_ok_and(|v| v == "1");
    if let Ok(case) = std::env::var("FACADE_BENCH_CASE") {
        let iters: usize = std::env::var("FACADE_BENCH_ITERS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(5);
        let s = setup(&case, keyed, iters);
        s.prime();
        let mut total = s.run(); // warm-up: connection, producer id, buffers
        for _ in 0..iters {
            total += s.run();
        }
        assert_eq!(total, (iters + 1) * RECORDS, "records delivered");
        println!("{case}: {iters} iterations x {RECORDS} records (+1 warm-up; {total} delivered)");
        return;
    }
    // `cargo bench` passes `--bench`; a plain wall-clock comparison.
    for case in [
        "native",
        "future",
        "base",
        "native-recv",
        "stream",
        "base-consumer",
    ] {
        let s = setup(case, keyed, 5);
        s.prime();
        s.run();
        let t = Instant::now();
        let mut n = 0;
        for _ in 0..5 {
            n += s.run();
        }
        let secs = t.elapsed().as_secs_f64();
        println!("{case}: {:.0} records/s ({n} records)", n as f64 / secs);
    }
}
