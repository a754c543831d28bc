//! Facade overhead: the same produce run through kafka-sdk's native `Producer` and through
//! the drop-in `FutureProducer` and `BaseProducer`, and the same read through the native
//! `Consumer::recv` and the drop-in `StreamConsumer::recv` and `BaseConsumer::poll`,
//! alternating, against one test-kit broker. Not part of `cargo test` (ignored); run with
//! `cargo test --release -p kafka-sdk-rdkafka --test throughput -- --ignored --nocapture
//! --test-threads 1`. Results in BENCHMARKS.md ("rdkafka drop-in").

use std::time::{Duration, Instant};

use kafka_sdk::admin::{AdminClient, NewTopic};
use kafka_sdk::{ClientConfig, Consumer, Offset, Producer, ProducerRecord, TopicPartition};
use kafka_sdk_rdkafka::consumer::{BaseConsumer, Consumer as _, StreamConsumer};
use kafka_sdk_rdkafka::producer::{
    BaseProducer, BaseRecord, FutureProducer, FutureRecord, Producer as _,
};
use kafka_sdk_rdkafka::Message as _;

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
        // The drop-in's librdkafka defaults, so both sides batch alike.
        .set("batch.size", "1000000")
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

async fn facade_base(bootstrap: &str, topic: &str, payload: &[u8]) -> Run {
    let mut cfg = kafka_sdk_rdkafka::ClientConfig::new();
    cfg.set("bootstrap.servers", bootstrap)
        .set("linger.ms", "5")
        .set("queue.buffering.max.messages", "1000000");
    let p: BaseProducer = cfg.create().unwrap();
    let keys = keys();
    let cpu = cpu_seconds();
    let start = Instant::now();
    tokio::task::block_in_place(|| {
        for i in 0..RECORDS {
            let r = BaseRecord::to(topic).key(&keys[i % KEYS]).payload(payload);
            p.send(r).map_err(|(e, _)| e).unwrap();
            p.poll(Duration::ZERO);
        }
        p.flush(Duration::from_secs(60)).unwrap();
    });
    Run {
        wall: start.elapsed(),
        cpu: cpu_seconds() - cpu,
    }
}

const PARTITIONS: i32 = 3;

async fn native_read(bootstrap: &str, topic: &str, n: usize) -> Run {
    let cfg = ClientConfig::new().with("bootstrap.servers", bootstrap);
    let c = Consumer::new(&cfg).await.unwrap();
    let parts = (0..PARTITIONS)
        .map(|p| (TopicPartition::new(topic, p), Offset::Beginning))
        .collect();
    c.handle().assign(parts).unwrap();
    let cpu = cpu_seconds();
    let start = Instant::now();
    let mut bytes = 0;
    for _ in 0..n {
        bytes += c.recv().await.unwrap().payload().map_or(0, <[u8]>::len);
    }
    assert!(bytes > 0);
    Run {
        wall: start.elapsed(),
        cpu: cpu_seconds() - cpu,
    }
}

fn facade_consumer_config(bootstrap: &str) -> kafka_sdk_rdkafka::ClientConfig {
    let mut cfg = kafka_sdk_rdkafka::ClientConfig::new();
    cfg.set("bootstrap.servers", bootstrap)
        .set("group.id", "throughput-unused")
        .set("enable.auto.commit", "false")
        // As kafka-sdk's native default (the drop-in's, librdkafka's, is false): same work.
        .set("check.crcs", "true");
    cfg
}

fn facade_assignment(topic: &str) -> kafka_sdk_rdkafka::TopicPartitionList {
    let mut tpl = kafka_sdk_rdkafka::TopicPartitionList::new();
    for p in 0..PARTITIONS {
        tpl.add_partition_offset(topic, p, kafka_sdk_rdkafka::Offset::Beginning)
            .unwrap();
    }
    tpl
}

async fn facade_stream_read(bootstrap: &str, topic: &str, n: usize) -> Run {
    let c: StreamConsumer = facade_consumer_config(bootstrap).create().unwrap();
    c.assign(&facade_assignment(topic)).unwrap();
    let cpu = cpu_seconds();
    let start = Instant::now();
    let mut bytes = 0;
    for _ in 0..n {
        bytes += c.recv().await.unwrap().payload().map_or(0, <[u8]>::len);
    }
    assert!(bytes > 0);
    Run {
        wall: start.elapsed(),
        cpu: cpu_seconds() - cpu,
    }
}

async fn facade_base_read(bootstrap: &str, topic: &str, n: usize) -> Run {
    let c: BaseConsumer = facade_consumer_config(bootstrap).create().unwrap();
    c.assign(&facade_assignment(topic)).unwrap();
    let cpu = cpu_seconds();
    let start = Instant::now();
    let mut bytes = 0;
    tokio::task::block_in_place(|| {
        let mut got = 0;
        while got < n {
            if let Some(m) = c.poll(Duration::from_secs(1)) {
                bytes += m.unwrap().payload().map_or(0, <[u8]>::len);
                got += 1;
            }
        }
    });
    assert!(bytes > 0);
    Run {
        wall: start.elapsed(),
        cpu: cpu_seconds() - cpu,
    }
}

/// Records per consumer run: reads are fast, so more of them than per producer run (the CPU
/// clock ticks every 10 ms).
const READ: usize = 5 * RECORDS;

/// Prints each API's runs: records/s and client CPU-s per 1M records, with the best rate and
/// the least CPU, relative to the first (native) API.
fn report(what: &str, records: usize, runs: &[(&str, Vec<Run>)]) {
    let rate = |r: &Run| records as f64 / r.wall.as_secs_f64();
    let cpu_per_m = |r: &Run| r.cpu * 1_000_000.0 / records as f64;
    let best = |v: &[Run]| v.iter().map(rate).fold(0.0, f64::max);
    let least_cpu = |v: &[Run]| v.iter().map(cpu_per_m).fold(f64::MAX, f64::min);
    let (base_rate, base_cpu) = (best(&runs[0].1), least_cpu(&runs[0].1));
    println!("{what} ({records} records of 100 B per run):");
    for (name, v) in runs {
        println!(
            "  {name:<28} records/s {:?} best {:.0} ({:+.1}%); CPU-s per 1M {:.2?} least {:.2} ({:+.1}%)",
            v.iter().map(|r| rate(r) as u64).collect::<Vec<_>>(),
            best(v),
            (best(v) / base_rate - 1.0) * 100.0,
            v.iter().map(cpu_per_m).collect::<Vec<_>>(),
            least_cpu(v),
            (least_cpu(v) / base_cpu - 1.0) * 100.0
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "throughput measurement, run by hand"]
async fn facade_vs_native_consumer_throughput() {
    let bootstrap = kafka_testkit::shared().bootstrap();
    let topic = format!("rdk-read-throughput-{}", std::process::id());
    let admin = AdminClient::new(&ClientConfig::new().with("bootstrap.servers", &bootstrap))
        .await
        .unwrap();
    admin
        .create_topic(NewTopic::new(&topic, PARTITIONS, 1))
        .await
        .unwrap();
    let payload = vec![b'x'; 100];
    for _ in 0..READ / RECORDS {
        native(&bootstrap, &topic, &payload).await;
    }
    let (mut n, mut s, mut b) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..4 {
        n.push(native_read(&bootstrap, &topic, READ).await);
        s.push(facade_stream_read(&bootstrap, &topic, READ).await);
        b.push(facade_base_read(&bootstrap, &topic, READ).await);
    }
    report(
        "consume",
        READ,
        &[
            ("native Consumer::recv", n),
            ("facade StreamConsumer::recv", s),
            ("facade BaseConsumer::poll", b),
        ],
    );
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
    let (mut n, mut f, mut b) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..4 {
        n.push(native(&bootstrap, &topic, &payload).await);
        f.push(facade(&bootstrap, &topic, &payload).await);
        b.push(facade_base(&bootstrap, &topic, &payload).await);
    }
    report(
        "produce",
        RECORDS,
        &[
            ("native Producer::send", n),
            ("facade FutureProducer", f),
            ("facade BaseProducer", b),
        ],
    );
}
