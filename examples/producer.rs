//! Producer CLI for users and benchmarks.
//!
//! ```text
//! cargo run --release --example producer -- --brokers 127.0.0.1:9092 --topic bench \
//!     --count 1000000 --size 100 --keys none --acks all --linger-ms 5
//! cargo run --release --example producer -- --brokers 127.0.0.1:9092 --topic bench \
//!     -X client.id=bench -X max.in.flight.requests.per.connection=1
//! ```
//!
//! Without `--brokers` (or `KAFKA_BOOTSTRAP_SERVERS`), a local single-node Kafka is started
//! with the test kit (needs Java). `-X key=value` sets any client config key and overrides the
//! value the flags give (`-X linger.ms=20` beats `--linger-ms`).
//! Outcomes go to the producer's delivery handler (`ProducerBuilder::delivery_handler`, each
//! record's future handed back with `report(send time)`), which counts and times them on the
//! producer's sender task: nothing kept per record but 24 bytes until it is acknowledged.
//! Ends with one line:
//! `sent=<n> acked=<n> failed=<n> secs=<f> msgs_per_sec=<f> mb_per_sec=<f> p50_ms=<f> p99_ms=<f>`.

mod common;

use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use clap::Parser;
use hdrhistogram::Histogram;
use kafka_sdk::admin::{AdminClient, NewTopic};
use kafka_sdk::producer::{DeliveryReport, Producer, ProducerRecord};
use kafka_sdk::{ClientConfig, KafkaCode};

#[derive(Parser, Debug)]
#[command(about = "Produce records with kafka-sdk and print one summary line")]
struct Args {
    #[command(flatten)]
    conn: common::Connection,
    /// Topic (created with 3 partitions if missing).
    #[arg(long, default_value = "kafka-sdk-bench")]
    topic: String,
    /// Number of records.
    #[arg(long, default_value_t = 100_000)]
    count: u64,
    /// Value size in bytes.
    #[arg(long, default_value_t = 100)]
    size: usize,
    /// `none` for key-less records, or N to cycle through N distinct keys.
    #[arg(long, default_value = "none")]
    keys: String,
    /// compression.type: none, gzip, snappy, lz4, zstd.
    #[arg(long, default_value = "none")]
    compression: String,
    /// acks: 0, 1, all.
    #[arg(long, default_value = "all")]
    acks: String,
    /// linger.ms.
    #[arg(long, default_value_t = 5)]
    linger_ms: u64,
    /// batch.size in bytes.
    #[arg(long, default_value_t = 16384)]
    batch_size: usize,
    /// enable.idempotence (true requires acks=all); default: the config default.
    #[arg(long)]
    idempotence: Option<bool>,
    /// Target records per second (0 = unlimited).
    #[arg(long, default_value_t = 0)]
    rate: u64,
    /// partitioner (murmur2_random, murmur2, consistent_random, consistent, random, ...).
    #[arg(long, default_value = "murmur2_random")]
    partitioner: String,
}

#[tokio::main]
async fn main() -> ExitCode {
    common::exit(run(Args::parse()).await)
}

async fn run(args: Args) -> Result<(), common::BoxError> {
    let keys: Option<u64> = match args.keys.as_str() {
        "none" => None,
        n => Some(
            n.parse()
                .map_err(|_| format!("--keys: `{n}` is not `none` or a number"))?,
        ),
    };

    let kafka = args.conn.connect().await?;
    let mut own = ClientConfig::new();
    own.set("compression.type", &args.compression)
        .set("acks", &args.acks)
        .set("linger.ms", args.linger_ms.to_string())
        .set("batch.size", args.batch_size.to_string())
        .set("partitioner", &args.partitioner);
    if let Some(i) = args.idempotence {
        own.set("enable.idempotence", i.to_string());
    }
    let cfg = kafka.config(own);

    let admin = AdminClient::new(&cfg).await?;
    match admin.create_topic(NewTopic::new(&args.topic, 3, -1)).await {
        Ok(()) => eprintln!("created topic {}", args.topic),
        Err(e) if e.code() == Some(KafkaCode::TOPIC_ALREADY_EXISTS) => {}
        Err(e) => return Err(e.into()),
    }

    /// What the delivery handler counts.
    struct Outcomes {
        acked: u64,
        failed: u64,
        hist: Histogram<u64>,
        first_error: Option<String>,
    }
    let outcomes = Arc::new(Mutex::new(Outcomes {
        acked: 0,
        failed: 0,
        hist: Histogram::<u64>::new_with_bounds(1, 3_600_000_000, 3).expect("histogram"),
        first_error: None,
    }));
    let start = Instant::now();
    let seen = outcomes.clone();
    // `opaque`: when the record was sent, in microseconds since `start`.
    let handler = move |r: &DeliveryReport<'_>| {
        let now = start.elapsed().as_micros() as u64;
        let mut o = seen.lock().unwrap_or_else(|p| p.into_inner());
        match r.result {
            Ok(_) => {
                o.acked += 1;
                let _ = o.hist.record(now.saturating_sub(r.opaque).max(1));
            }
            Err(e) => {
                o.failed += 1;
                o.first_error.get_or_insert_with(|| e.to_string());
            }
        }
    };
    let producer = Producer::builder(&cfg)
        .delivery_handler(Arc::new(handler))
        .build()
        .await?;
    let value = Bytes::from(vec![b'x'; args.size]);

    let mut sent = 0u64;
    let mut send_failed = 0u64;
    for i in 0..args.count {
        if args.rate > 0 {
            let due = start + Duration::from_secs_f64(i as f64 / args.rate as f64);
            if due > Instant::now() {
                tokio::time::sleep_until(due.into()).await;
            }
        }
        let mut rec = ProducerRecord::new(args.topic.as_str()).value(value.clone());
        if let Some(n) = keys {
            rec = rec.key(format!("key-{}", i % n.max(1)));
        }
        let t0 = start.elapsed().as_micros() as u64;
        match producer.send(rec).await {
            Ok(fut) => {
                sent += 1;
                fut.report(t0);
            }
            Err(e) => {
                send_failed += 1;
                if send_failed == 1 {
                    eprintln!("send failed: {e}");
                }
            }
        }
    }
    // Every batch completed, every outcome reported.
    producer.flush().await;
    let secs = start.elapsed().as_secs_f64();
    let _ = producer.close(Duration::from_secs(10)).await;
    let o = outcomes.lock().unwrap_or_else(|p| p.into_inner());
    let (acked, failed, hist, first_error) = (o.acked, o.failed, &o.hist, &o.first_error);
    if let Some(e) = first_error {
        eprintln!("first delivery error: {e}");
    }
    let mb = (acked as f64 * args.size as f64) / 1_000_000.0;
    println!(
        "sent={sent} acked={acked} failed={} secs={secs:.3} msgs_per_sec={:.1} mb_per_sec={:.3} p50_ms={:.3} p99_ms={:.3}",
        failed + send_failed,
        acked as f64 / secs,
        mb / secs,
        hist.value_at_quantile(0.5) as f64 / 1000.0,
        hist.value_at_quantile(0.99) as f64 / 1000.0,
    );
    Ok(())
}
