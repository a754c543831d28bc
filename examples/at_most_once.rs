//! At-most-once consumption: commit *before* processing.
//!
//! ```text
//! cargo run --example at_most_once                          # starts a local Kafka via kafka-testkit
//! cargo run --example at_most_once -- --brokers host:9092   # or KAFKA_BOOTSTRAP_SERVERS=host:9092
//! cargo run --example at_most_once -- --brokers host:9092 -X client.id=demo -X fetch.max.wait.ms=100
//! ```
//!
//! Each record's offset is committed (synchronously) as soon as it is received, then the record
//! is processed. If the process dies during processing, the record is never seen again: no
//! duplicates, possible loss.
//!
//! The set-up (a topic with 1000 records written by the Java perf tool, a consumer with
//! `enable.auto.commit=false` subscribed to it) is in `examples/common/mod.rs`; compare this
//! loop with the one in `examples/at_least_once.rs`.

mod common;

use std::process::ExitCode;

use clap::Parser;
use kafka_sdk::consumer::CommitMode;

const RECORDS: u64 = 1000;

#[derive(Parser, Debug)]
#[command(about = "At-most-once consumption: commit before processing")]
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
    let consumer = common::semantics_setup(&kafka, "at_most_once", RECORDS).await?;

    let (mut received, mut total) = (0u64, 0u64);
    while received < RECORDS {
        let m = consumer.recv().await?;
        // 1. Commit first: after this, a crash loses `m` rather than repeating it.
        consumer.commit_message(&m, CommitMode::Sync).await?;
        // 2. Then process.
        common::process(&m, &mut total);
        received += 1;
    }
    common::semantics_finish(consumer, received, total).await
}
