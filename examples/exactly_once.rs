//! Exactly-once consume-transform-produce: read an input topic, transform each record, write
//! the results to an output topic and commit the input offsets *in the same transaction*.
//!
//! ```text
//! cargo run --example exactly_once                          # local Kafka via kafka-testkit:
//!                                                           # creates the topics, writes the
//!                                                           # input, runs the pipeline twice
//!                                                           # (one crash), checks the output
//! cargo run --example exactly_once -- --brokers host:9092   # the demo on that cluster
//! cargo run --example exactly_once -- --brokers host:9092 --input in --output out \
//!     [--group g] [--txn-id id] [--crash-after N] [--until-end] [--batch 500] \
//!     [-X key=value ...]
//! ```
//!
//! `-X key=value` (repeatable, any client config key) applies to the consumer and the
//! producer and overrides their settings in the code; the demo passes it on to the pipeline runs.
//!
//! Either a transaction commits (output records visible to `read_committed` consumers and
//! the input offsets committed) or it aborts (neither). A crash in the middle leaves an open
//! transaction; the next instance with the same `transactional.id` fences the old one and
//! aborts it (`init_transactions`), and its consumer starts from the committed offsets
//! (`read_committed` asks the coordinator for stable offsets). So every input record ends up
//! in the output exactly once, however often the process dies.
//!
//! `--crash-after N` calls `std::process::abort()` after N records were sent inside an open
//! transaction. `--until-end` stops once every input partition is processed up to the high
//! watermark it had when the process started.

mod common;

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use kafka_sdk::consumer::{Consumer, Offset};
use kafka_sdk::producer::{Producer, ProducerRecord};
use kafka_sdk::{ClientConfig, TopicPartition};

#[derive(Parser, Debug)]
#[command(about = "Exactly-once consume-transform-produce with kafka-sdk transactions")]
struct Args {
    #[command(flatten)]
    conn: common::Connection,
    /// Input topic (pipeline mode; without --input and --output: the demo).
    #[arg(long, requires = "output")]
    input: Option<String>,
    /// Output topic (pipeline mode).
    #[arg(long, requires = "input")]
    output: Option<String>,
    /// Consumer group; default `<input>-eos`.
    #[arg(long)]
    group: Option<String>,
    /// transactional.id; default `<input>-eos-0`.
    #[arg(long)]
    txn_id: Option<String>,
    /// abort() after this many records were sent inside an open transaction.
    #[arg(long, value_name = "N")]
    crash_after: Option<u64>,
    /// Stop once every input partition is processed up to its high watermark at start.
    #[arg(long)]
    until_end: bool,
    /// Records per transaction (at most).
    #[arg(long, value_name = "N", default_value_t = 500)]
    batch: usize,
}

/// The transformation (pure, so a re-run after an abort gives the same output).
fn transform(value: &[u8]) -> Vec<u8> {
    let mut v = value.to_ascii_uppercase();
    v.extend_from_slice(b":processed");
    v
}

/// One pipeline instance's settings.
struct Pipeline<'a> {
    kafka: &'a common::Kafka,
    input: &'a str,
    output: &'a str,
    group: &'a str,
    txn_id: &'a str,
    crash_after: Option<u64>,
    until_end: bool,
    batch: usize,
}

/// Runs the pipeline until `--until-end` is satisfied (or forever). Returns the number of
/// input records whose transaction committed.
async fn run_pipeline(cfg: Pipeline<'_>) -> Result<u64, common::BoxError> {
    let Pipeline {
        kafka,
        input,
        output,
        group,
        txn_id,
        crash_after,
        until_end,
        batch,
    } = cfg;
    // The consumer: read_committed (only committed upstream data; stable offsets), no auto
    // commit (offsets are committed by the producer's transaction), static membership so a
    // restarted instance gets its partitions back at once. (`-X` pairs apply on top, as to
    // the producer.)
    let consumer = Consumer::new(
        &kafka.config(
            ClientConfig::new()
                .with("group.id", group)
                .with("group.instance.id", format!("{txn_id}-member"))
                .with("session.timeout.ms", "10000")
                .with("isolation.level", "read_committed")
                .with("enable.auto.commit", "false")
                .with("auto.offset.reset", "earliest"),
        ),
    )
    .await?;
    consumer.subscribe(&[input])?;

    // The producer: one transactional.id per pipeline instance; a restarted instance reuses
    // it, which fences its predecessor and aborts the predecessor's open transaction.
    let producer = Producer::new(
        &kafka.config(
            ClientConfig::new()
                .with("transactional.id", txn_id)
                .with("transaction.timeout.ms", "30000")
                .with("linger.ms", "5"),
        ),
    )
    .await?;
    producer.init_transactions().await?;

    let mut ends: BTreeMap<TopicPartition, i64> = BTreeMap::new();
    if until_end {
        for p in consumer.partitions_for(input).await? {
            let tp = TopicPartition::new(input, p.partition);
            let w = consumer
                .fetch_watermarks(&tp, Duration::from_secs(30))
                .await?;
            ends.insert(tp, w.high);
        }
    }
    let mut done: BTreeMap<TopicPartition, i64> = BTreeMap::new();
    let mut sent_in_process = 0u64;
    let mut committed_records = 0u64;
    let mut idle_secs = 0u64;
    loop {
        if until_end
            && ends
                .iter()
                .all(|(tp, end)| done.get(tp).copied().unwrap_or(0) >= *end)
        {
            break;
        }
        let msgs = consumer.recv_batch(batch, Duration::from_secs(1)).await?;
        if msgs.is_empty() {
            idle_secs += 1;
            if idle_secs.is_multiple_of(10) {
                eprintln!(
                    "exactly_once: idle for {idle_secs}s; assignment {:?}, positions {:?}, \
                     committed so far {committed_records}",
                    consumer.assignment(),
                    consumer.position()
                );
            }
            // Nothing new; the committed offsets may be behind the end when partitions moved.
            for (tp, committed) in consumer.committed(None, Duration::from_secs(10)).await? {
                if let Some(c) = committed {
                    done.insert(tp, c);
                }
            }
            continue;
        }
        idle_secs = 0;
        producer.begin_transaction()?;
        // Next offset to read per input partition, and where this batch started (to rewind
        // the consumer if the transaction aborts).
        let mut next: BTreeMap<TopicPartition, i64> = BTreeMap::new();
        let mut first: BTreeMap<TopicPartition, i64> = BTreeMap::new();
        let mut deliveries = Vec::with_capacity(msgs.len());
        for m in &msgs {
            let tp = m.topic_partition();
            first.entry(tp.clone()).or_insert(m.offset());
            next.insert(tp, m.offset() + 1);
            let mut out = ProducerRecord::new(output)
                .value(transform(m.value().map(|v| &v[..]).unwrap_or_default()));
            if let Some(k) = m.key() {
                out = out.key(k.clone());
            }
            deliveries.push(producer.send(out).await?);
            sent_in_process += 1;
            if crash_after.is_some_and(|n| sent_in_process >= n) {
                eprintln!("exactly_once: crashing after {sent_in_process} records (--crash-after)");
                std::process::abort();
            }
        }
        // Group id, generation, member id and group.instance.id, taken now: offsets of a
        // generation this member no longer belongs to are refused (zombie fencing).
        let group_meta = consumer.group_metadata()?;
        let result = async {
            producer
                .send_offsets_to_transaction(next.clone(), &group_meta)
                .await?;
            producer.commit_transaction().await
        }
        .await;
        match result {
            Ok(()) => {
                committed_records += msgs.len() as u64;
                done.extend(next);
            }
            Err(e) if e.txn_requires_abort() => {
                eprintln!("exactly_once: transaction failed ({e}); aborting and re-reading");
                producer.abort_transaction().await?;
                // The records of this batch will be read (and transformed) again.
                for (tp, o) in first {
                    if consumer.assignment().contains(&tp) {
                        consumer.seek(&tp, Offset::Offset(o))?;
                    }
                }
            }
            Err(e) => return Err(e.into()), // fatal: fenced by a newer instance, ...
        }
        drop(deliveries); // outcomes are covered by the commit
    }
    producer.close(Duration::from_secs(10)).await?;
    consumer.close().await?;
    Ok(committed_records)
}

#[tokio::main]
async fn main() -> ExitCode {
    common::exit(run(Args::parse()).await)
}

async fn run(args: Args) -> Result<(), common::BoxError> {
    let (Some(input), Some(output)) = (&args.input, &args.output) else {
        return demo(&args.conn).await;
    };
    // Pipeline mode (what the demo and tests/transactions.rs spawn): a given cluster only.
    if args.conn.bootstrap().is_none() {
        return Err("--input/--output need --brokers (or KAFKA_BOOTSTRAP_SERVERS)".into());
    }
    let kafka = args.conn.connect().await?;
    let group = args.group.clone().unwrap_or_else(|| format!("{input}-eos"));
    let txn_id = args
        .txn_id
        .clone()
        .unwrap_or_else(|| format!("{input}-eos-0"));
    let n = run_pipeline(Pipeline {
        kafka: &kafka,
        input,
        output,
        group: &group,
        txn_id: &txn_id,
        crash_after: args.crash_after,
        until_end: args.until_end,
        batch: args.batch,
    })
    .await?;
    println!("committed {n} records");
    Ok(())
}

/// The demo: 10,000 input records, a pipeline run that crashes after 3,000 records, a run
/// that finishes, and a read_committed check of the output. On the given cluster, else on a
/// local Kafka; the `-X` pairs go to every client, the pipeline processes' included.
async fn demo(conn: &common::Connection) -> Result<(), common::BoxError> {
    const RECORDS: usize = 10_000;
    let kafka = conn.connect().await?;
    let input = format!("eos-input-{}", std::process::id());
    let output = format!("eos-output-{}", std::process::id());
    kafka.create_topic(&input, 3).await?;
    kafka.create_topic(&output, 3).await?;
    let p = Producer::new(&kafka.config(ClientConfig::new())).await?;
    let mut acks = Vec::with_capacity(RECORDS);
    for i in 0..RECORDS {
        let r = ProducerRecord::new(input.as_str())
            .key(format!("k{i}"))
            .value(format!("in-{i}"));
        acks.push(p.send(r).await?);
    }
    for a in acks {
        a.await?;
    }
    p.close(Duration::from_secs(10)).await?;

    let me = std::env::current_exe()?;
    let mut pipeline = vec![
        "--brokers".to_string(),
        kafka.bootstrap().to_string(),
        "--input".to_string(),
        input.clone(),
        "--output".to_string(),
        output.clone(),
    ];
    pipeline.extend(conn.x_args());
    let status = tokio::process::Command::new(&me)
        .args(&pipeline)
        .args(["--crash-after", "3000"])
        .status()
        .await?;
    println!("first run ended with {status} (crashed on purpose)");
    let status = tokio::process::Command::new(&me)
        .args(&pipeline)
        .arg("--until-end")
        .status()
        .await?;
    println!("second run ended with {status}");

    // Check: read_committed sees every input exactly once.
    let c =
        Consumer::new(&kafka.config(ClientConfig::new().with("isolation.level", "read_committed")))
            .await?;
    c.assign(
        (0..3)
            .map(|p| (TopicPartition::new(output.as_str(), p), Offset::Beginning))
            .collect(),
    )?;
    let mut seen = std::collections::HashMap::<Vec<u8>, u32>::new();
    let mut total = 0usize;
    while total < RECORDS {
        let batch = c.recv_batch(1000, Duration::from_secs(10)).await?;
        if batch.is_empty() {
            break;
        }
        for m in batch {
            total += 1;
            *seen
                .entry(m.value().map(|v| v.to_vec()).unwrap_or_default())
                .or_default() += 1;
        }
    }
    let dups = seen.values().filter(|n| **n > 1).count();
    println!(
        "output (read_committed): {total} records, {} distinct, {dups} duplicated, {} missing",
        seen.len(),
        RECORDS.saturating_sub(seen.len())
    );
    if total != RECORDS || seen.len() != RECORDS {
        return Err("exactly-once violated".into());
    }
    println!("exactly once: OK");
    Ok(())
}
