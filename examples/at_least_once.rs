//! At-least-once consumption: commit *after* processing.
//!
//! ```text
//! cargo run --example at_least_once                          # starts a local Kafka via kafka-testkit
//! cargo run --example at_least_once -- --brokers host:9092   # or KAFKA_BOOTSTRAP_SERVERS=host:9092
//! ```
//!
//! Records are processed in batches and the position is committed (synchronously) only after
//! the whole batch is processed. If the process dies mid-batch, the batch is read again by
//! whoever takes the partitions over: no loss, possible duplicates.

use std::time::Duration;

use kafka_sdk::consumer::{CommitMode, Consumer, Message};
use kafka_sdk::ClientConfig;

const RECORDS: u64 = 1000;

fn brokers_arg() -> Option<String> {
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        if a == "--brokers" {
            return args.next();
        }
        if let Some(v) = a.strip_prefix("--brokers=") {
            return Some(v.to_string());
        }
    }
    None
}

/// The application's work on one record.
fn process(m: &Message, total: &mut u64) {
    *total += m.value().map_or(0, |v| v.len() as u64);
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let topic = format!("kafka-sdk-at_least_once-{}", std::process::id());
    // A local Kafka (or the given one), with RECORDS records written by the Java perf tool.
    let (bootstrap, cluster) =
        match brokers_arg().or_else(|| std::env::var("KAFKA_BOOTSTRAP_SERVERS").ok()) {
            Some(b) => (b, None),
            None => {
                eprintln!("starting a local Kafka through kafka-testkit ...");
                let c = kafka_testkit::KafkaCluster::start(kafka_testkit::ClusterOptions {
                    allow_external: false,
                    ..Default::default()
                })?;
                (c.bootstrap(), Some(c))
            }
        };
    let tools = match &cluster {
        Some(c) => c,
        None => kafka_testkit::shared(),
    };
    tools.create_topic(&topic, 3, 1, &[])?;
    let out = tools.tool_output(
        "producer-perf",
        &[
            "--topic",
            &topic,
            "--num-records",
            &RECORDS.to_string(),
            "--record-size",
            "100",
            "--throughput",
            "-1",
            "--producer-props",
            &format!("bootstrap.servers={bootstrap}"),
        ],
    )?;
    if !out.status.success() {
        return Err("producer-perf failed".into());
    }

    let cfg = ClientConfig::new()
        .with("bootstrap.servers", &bootstrap)
        .with("group.id", format!("{topic}-group"))
        .with("auto.offset.reset", "earliest")
        .with("enable.auto.commit", "false");
    let consumer = Consumer::new(&cfg).await?;
    consumer.subscribe(&[&topic])?;

    let (mut received, mut total) = (0u64, 0u64);
    while received < RECORDS {
        let batch = consumer.recv_batch(100, Duration::from_secs(30)).await?;
        if batch.is_empty() {
            return Err("no records for 30s".into());
        }
        // 1. Process everything received.
        for m in &batch {
            process(m, &mut total);
        }
        received += batch.len() as u64;
        // 2. Then commit the position (the offset after the last processed record).
        consumer.commit(CommitMode::Sync).await?;
    }
    let committed = consumer.committed(None, Duration::from_secs(10)).await?;
    consumer.close().await?;
    println!("processed={received} value_bytes={total} committed={committed:?}");
    Ok(())
}
