//! A share consumer CLI (KIP-932 share groups): reads a topic as a member of a share group,
//! acknowledges every record the same way, and prints one summary line.
//!
//! ```text
//! cargo run --release --example share_consumer -- --topic t --count 10000     # local Kafka + test data
//! cargo run --release --example share_consumer -- --brokers host:9092 --topic t --group q \
//!     --ack accept --dump out.txt
//! cargo run --release --example share_consumer -- --brokers host:9092 --topic t --group q \
//!     --ack release --count 50 -X max.poll.records=10
//! ```
//!
//! Without `--brokers` (and `KAFKA_BOOTSTRAP_SERVERS`) a local Kafka is started through
//! kafka-testkit and `--count` records are written to the topic first with the Java
//! producer-perf tool. A share group starts at the end of the topic by default (the group
//! config `share.auto.offset.reset=latest`); `--from earliest` (the default here) sets the
//! group config to `earliest` first with Kafka's `kafka-configs` tool, run from the kit's
//! cached jars. `--ack` acknowledges each record explicitly: `accept` (done), `release`
//! (delivered again, with a higher delivery count) or `reject` (never again). `-X
//! key=value` sets any client config key. `--dump` writes `partition offset delivery-count`
//! per record received. The last line is
//! `received=<n> redelivered=<n> secs=<f> msgs_per_sec=<f>`.

mod common;

use std::io::Write;
use std::process::{ExitCode, Stdio};
use std::time::{Duration, Instant};

use clap::{Parser, ValueEnum};
use kafka_sdk::{AcknowledgeType, ClientConfig, ShareConsumer};

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
enum Ack {
    /// Processed: never delivered again.
    Accept,
    /// Given back: delivered again with a higher delivery count.
    Release,
    /// Unprocessable: archived, never delivered again.
    Reject,
}

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
enum From {
    /// Set the group's `share.auto.offset.reset` to `earliest` first.
    Earliest,
    /// Leave the group config alone (a new share group starts at the end).
    Latest,
}

#[derive(Parser, Debug)]
#[command(about = "Consume a Kafka topic as a member of a share group with kafka-sdk")]
struct Args {
    #[command(flatten)]
    conn: common::Connection,
    /// Topic to read.
    #[arg(long, default_value = "kafka-sdk-share-example")]
    topic: String,
    /// Share group (`group.id`).
    #[arg(long, default_value = "kafka-sdk-share-example-group")]
    group: String,
    /// Stop after receiving this many records (redeliveries count).
    #[arg(long, default_value_t = 10_000)]
    count: u64,
    /// How to acknowledge every record.
    #[arg(long, value_enum, default_value = "accept")]
    ack: Ack,
    /// Where a new share group starts.
    #[arg(long, value_enum, default_value = "earliest")]
    from: From,
    /// Write `partition offset delivery-count` per received record to this file.
    #[arg(long)]
    dump: Option<std::path::PathBuf>,
    /// Give up when no record arrives for this many seconds.
    #[arg(long, default_value_t = 30)]
    idle_secs: u64,
}

#[tokio::main]
async fn main() -> ExitCode {
    common::exit(run(Args::parse()).await)
}

/// Sets the share group's `share.auto.offset.reset` to `earliest` with `kafka-configs`.
async fn start_from_earliest(bootstrap: &str, group: &str) -> Result<(), common::BoxError> {
    let args: Vec<String> = [
        "--bootstrap-server",
        bootstrap,
        "--alter",
        "--entity-type",
        "groups",
        "--entity-name",
        group,
        "--add-config",
        "share.auto.offset.reset=earliest",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let out = tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        kafka_testkit::tool_command("configs", &args)?
            .stdin(Stdio::null())
            .output()
            .map_err(common::BoxError::from)
    })
    .await??;
    if !out.status.success() {
        return Err(format!(
            "kafka-configs failed: {}",
            String::from_utf8_lossy(&out.stderr)
        )
        .into());
    }
    Ok(())
}

async fn run(args: Args) -> Result<(), common::BoxError> {
    let kafka = args.conn.connect().await?;
    if kafka.is_local() {
        kafka.create_topic(&args.topic, 3).await?;
        kafka.fill_topic(&args.topic, args.count).await?;
    }
    if args.from == From::Earliest {
        start_from_earliest(kafka.bootstrap(), &args.group).await?;
    }
    let own = ClientConfig::new()
        .with("group.id", &args.group)
        .with("share.acknowledgement.mode", "explicit");
    let consumer = ShareConsumer::new(&kafka.config(own)).await?;
    consumer.subscribe(&[&args.topic])?;
    let ack = match args.ack {
        Ack::Accept => AcknowledgeType::Accept,
        Ack::Release => AcknowledgeType::Release,
        Ack::Reject => AcknowledgeType::Reject,
    };

    let mut dump = match &args.dump {
        Some(p) => Some(std::io::BufWriter::new(std::fs::File::create(p)?)),
        None => None,
    };
    let (mut received, mut redelivered) = (0u64, 0u64);
    let mut start: Option<Instant> = None;
    while received < args.count {
        let batch =
            match tokio::time::timeout(Duration::from_secs(args.idle_secs), consumer.recv_batch())
                .await
            {
                Ok(batch) => batch?,
                Err(_) => {
                    eprintln!("no record for {}s: stopping", args.idle_secs);
                    break;
                }
            };
        start.get_or_insert_with(Instant::now);
        for r in &batch {
            if let Some(d) = dump.as_mut() {
                writeln!(d, "{} {} {}", r.partition(), r.offset(), r.delivery_count())?;
            }
            if r.delivery_count() > 1 {
                redelivered += 1;
            }
            consumer.acknowledge(r, ack)?;
        }
        received += batch.len() as u64;
        // Send the acknowledgements now and check the broker took them.
        for (tp, result) in consumer.commit_sync().await? {
            if let Err(e) = result {
                eprintln!("acknowledgements for {tp} failed: {e}");
            }
        }
    }
    let secs = start.map_or(0.0, |s| s.elapsed().as_secs_f64()).max(1e-9);
    if let Some(mut d) = dump {
        d.flush()?;
    }
    consumer.close().await?;
    println!(
        "received={received} redelivered={redelivered} secs={secs:.3} msgs_per_sec={:.1}",
        received as f64 / secs
    );
    Ok(())
}
