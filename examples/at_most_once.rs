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
//! Only the consume loop is here; the set-up (a topic with 1000 records, a consumer with
//! `enable.auto.commit=false` subscribed to it) and the summary line are in
//! `examples/common/mod.rs`. Compare with `examples/at_least_once.rs`.

mod common;

use std::process::ExitCode;

use kafka_sdk::consumer::{CommitMode, Consumer};

#[tokio::main]
async fn main() -> ExitCode {
    let about = "At-most-once consumption: commit before processing";
    common::semantics_main(about, "at_most_once", commit_then_process).await
}

/// Reads `records` records, committing each one's offset before processing it. Returns the
/// number of records processed and their value bytes.
async fn commit_then_process(
    consumer: &Consumer,
    records: u64,
) -> Result<(u64, u64), common::BoxError> {
    let (mut received, mut total) = (0u64, 0u64);
    while received < records {
        let m = consumer.recv().await?;
        // 1. Commit first: after this, a crash loses `m` rather than repeating it.
        consumer.commit_message(&m, CommitMode::Sync).await?;
        // 2. Then process.
        common::process(&m, &mut total);
        received += 1;
    }
    Ok((received, total))
}
