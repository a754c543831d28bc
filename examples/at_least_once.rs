//! At-least-once consumption: commit *after* processing.
//!
//! ```text
//! cargo run --example at_least_once                          # starts a local Kafka via kafka-testkit
//! cargo run --example at_least_once -- --brokers host:9092   # or KAFKA_BOOTSTRAP_SERVERS=host:9092
//! cargo run --example at_least_once -- --brokers host:9092 -X client.id=demo -X fetch.max.wait.ms=100
//! ```
//!
//! Records are processed in batches and the position is committed (synchronously) only after
//! the whole batch is processed. If the process dies mid-batch, the batch is read again by
//! whoever takes the partitions over: no loss, possible duplicates.
//!
//! The set-up (a topic with 1000 records written by the Java perf tool, a consumer with
//! `enable.auto.commit=false` subscribed to it) is in `examples/common/mod.rs`; compare this
//! loop with the one in `examples/at_most_once.rs`.

mod common;

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use kafka_sdk::consumer::CommitMode;

const RECORDS: u64 = 1000;

#[derive(Parser, Debug)]
#[command(about = "At-least-once consumption: commit after processing")]
struct Args {
    #[command(flatten)]
    conn: common::Connection,
}

#[tokio::main]
async fn main() -> ExitCode {
    common::exit(run(Args::parse()).await)
}

async fn run(args: Args) -> Result<(), common::BoxError> {
    let kafka = args.conn.connect().await?;
    let consumer = common::semantics_setup(&kafka, "at_least_once", RECORDS).await?;

    let (mut received, mut total) = (0u64, 0u64);
    while received < RECORDS {
        let batch = consumer.recv_batch(100, Duration::from_secs(30)).await?;
        if batch.is_empty() {
            return Err("no records for 30s".into());
        }
        // 1. Process everything received.
        for m in &batch {
            common::process(m, &mut total);
        }
        received += batch.len() as u64;
        // 2. Then commit the position (the offset after the last processed record).
        consumer.commit(CommitMode::Sync).await?;
    }
    common::semantics_finish(consumer, received, total).await
}
