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
//! Only the consume loop is here; the set-up (a topic with 1000 records, a consumer with
//! `enable.auto.commit=false` subscribed to it) and the summary line are in
//! `examples/common/mod.rs`. Compare with `examples/at_most_once.rs`.

mod common;

use std::process::ExitCode;
use std::time::Duration;

use kafka_sdk::consumer::{CommitMode, Consumer};

#[tokio::main]
async fn main() -> ExitCode {
    let about = "At-least-once consumption: commit after processing";
    common::semantics_main(about, "at_least_once", process_then_commit).await
}

/// Reads `records` records, committing each batch after it is processed. Returns the number
/// of records processed and their value bytes.
async fn process_then_commit(
    consumer: &Consumer,
    records: u64,
) -> Result<(u64, u64), common::BoxError> {
    let (mut received, mut total) = (0u64, 0u64);
    while received < records {
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
    Ok((received, total))
}
