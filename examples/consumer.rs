//! A consumer CLI: reads a topic (as a group member or not) and prints one summary line.
//!
//! ```text
//! cargo run --release --example consumer -- --topic t --count 100000      # local Kafka + test data
//! cargo run --release --example consumer -- --brokers host:9092 --topic t --group g \
//!     --commit manual --assignor cooperative-sticky --from earliest --dump out.txt
//! cargo run --release --example consumer -- --brokers host:9092 --topic t --group g \
//!     -X client.id=demo -X fetch.max.wait.ms=100 -X max.partition.fetch.bytes=65536
//! ```
//!
//! Without `--brokers` (and `KAFKA_BOOTSTRAP_SERVERS`) a local Kafka is started through
//! kafka-testkit and `--count` records are written to the topic first with the Java
//! producer-perf tool. `-X key=value` sets any client config key and overrides the value the
//! flags give (`-X isolation.level=read_committed` beats `--isolation`). The last line is
//! `received=<n> secs=<f> msgs_per_sec=<f> mb_per_sec=<f>`.

mod common;

use std::io::Write;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::{Parser, ValueEnum};
use kafka_sdk::consumer::{CommitMode, Consumer, Offset};
use kafka_sdk::{ClientConfig, TopicPartition};

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
enum CommitKind {
    /// `enable.auto.commit=true`.
    Auto,
    /// Commit the position after every received batch (sync).
    Manual,
    /// Never commit.
    None,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum From {
    Earliest,
    Latest,
}

#[derive(Parser, Debug)]
#[command(about = "Consume a Kafka topic with kafka-sdk")]
struct Args {
    #[command(flatten)]
    conn: common::Connection,
    /// Topic to read.
    #[arg(long, default_value = "kafka-sdk-consumer-example")]
    topic: String,
    /// Consumer group; without it the consumer assigns every partition itself.
    #[arg(long)]
    group: Option<String>,
    /// Stop after this many records.
    #[arg(long, default_value_t = 100_000)]
    count: u64,
    /// Commit mode.
    #[arg(long, value_enum, default_value = "auto")]
    commit: CommitKind,
    /// `partition.assignment.strategy` (with --group).
    #[arg(long, default_value = "cooperative-sticky")]
    assignor: String,
    /// `isolation.level`: read_uncommitted or read_committed.
    #[arg(long, default_value = "read_uncommitted")]
    isolation: String,
    /// Where to start without a committed offset.
    #[arg(long, value_enum, default_value = "earliest")]
    from: From,
    /// Write `partition offset key-hex value-len` per record to this file.
    #[arg(long)]
    dump: Option<std::path::PathBuf>,
    /// Give up when no record arrives for this many seconds.
    #[arg(long, default_value_t = 30)]
    idle_secs: u64,
}

fn hex(b: Option<&[u8]>) -> String {
    match b {
        None => "-".into(),
        Some(b) => b.iter().map(|x| format!("{x:02x}")).collect(),
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    common::exit(run(Args::parse()).await)
}

async fn run(args: Args) -> Result<(), common::BoxError> {
    let kafka = args.conn.connect().await?;
    if kafka.is_local() {
        // A fresh broker holds nothing: give the consumer something to read.
        kafka.create_topic(&args.topic, 3).await?;
        kafka.fill_topic(&args.topic, args.count).await?;
    }

    let mut own = ClientConfig::new();
    own.set("isolation.level", &args.isolation)
        .set(
            "auto.offset.reset",
            match args.from {
                From::Earliest => "earliest",
                From::Latest => "latest",
            },
        )
        .set(
            "enable.auto.commit",
            (args.commit == CommitKind::Auto).to_string(),
        );
    if let Some(g) = &args.group {
        own.set("group.id", g);
        // With `-X group.protocol=consumer` (KIP-848) the broker assigns: client-side
        // assignors are refused then, as in Java 4.3.
        let kip848 = args
            .conn
            .config
            .iter()
            .any(|(k, v)| k == "group.protocol" && v.eq_ignore_ascii_case("consumer"));
        if !kip848 {
            own.set("partition.assignment.strategy", &args.assignor);
        }
    }
    let consumer = Consumer::new(&kafka.config(own)).await?;
    if args.group.is_some() {
        consumer.subscribe(&[&args.topic])?;
    } else {
        let parts = consumer
            .partitions_for(&args.topic)
            .await?
            .into_iter()
            .map(|p| {
                let p = p.partition;
                let off = match args.from {
                    From::Earliest => Offset::Beginning,
                    From::Latest => Offset::End,
                };
                (TopicPartition::new(args.topic.as_str(), p), off)
            })
            .collect();
        consumer.assign(parts)?;
    }

    let mut dump = match &args.dump {
        Some(p) => Some(std::io::BufWriter::new(std::fs::File::create(p)?)),
        None => None,
    };
    let mut received = 0u64;
    let mut bytes = 0u64;
    let mut start: Option<Instant> = None;
    while received < args.count {
        let want = (args.count - received).min(1000) as usize;
        let batch = consumer
            .recv_batch(want, Duration::from_secs(args.idle_secs))
            .await?;
        if batch.is_empty() {
            eprintln!("no record for {}s: stopping", args.idle_secs);
            break;
        }
        start.get_or_insert_with(Instant::now);
        for m in &batch {
            let vlen = m.value().map_or(0, |v| v.len());
            bytes += (vlen + m.key().map_or(0, |k| k.len())) as u64;
            if let Some(d) = dump.as_mut() {
                writeln!(
                    d,
                    "{} {} {} {}",
                    m.partition(),
                    m.offset(),
                    hex(m.key().map(|k| k.as_ref())),
                    vlen
                )?;
            }
        }
        received += batch.len() as u64;
        if args.commit == CommitKind::Manual {
            consumer.commit(CommitMode::Sync).await?;
        }
    }
    let secs = start.map_or(0.0, |s| s.elapsed().as_secs_f64()).max(1e-9);
    if let Some(mut d) = dump {
        d.flush()?;
    }
    consumer.close().await?;
    println!(
        "received={received} secs={secs:.3} msgs_per_sec={:.1} mb_per_sec={:.3}",
        received as f64 / secs,
        bytes as f64 / secs / 1e6
    );
    Ok(())
}
