//! Inbox consumer: applies each message's effect exactly once in PostgreSQL, whatever Kafka
//! re-delivers; a message the handler rejects goes to the dead-letter table.
//!
//! ```text
//! cargo run -p kafka-sdk-outbox --example inbox_consumer            # starts Kafka and PostgreSQL
//! cargo run -p kafka-sdk-outbox --example inbox_consumer -- \
//!     --brokers host:9092 --database-url postgres://app@db/app --topic orders --produce 0
//! ```
//!
//! With `--produce N` (default 100) it first writes N messages with `message-id` headers,
//! each of the first ten a second time (a re-publication: same id), and one payload that is
//! not UTF-8, then consumes until every id is in the inbox, and prints what happened.

#[path = "../../examples/common/mod.rs"]
mod common;

use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use kafka_sdk::{ClientConfig, Consumer, Message, Producer, ProducerRecord};
use kafka_sdk_outbox::{HandlerError, Inbox, Outcome, MESSAGE_ID_HEADER};
use tokio_postgres::{NoTls, Transaction};

/// Command line.
#[derive(Parser, Debug)]
#[command(about = "kafka-sdk-outbox: an idempotent inbox consumer")]
struct Args {
    #[command(flatten)]
    conn: common::Connection,
    /// PostgreSQL URL. Default: $DATABASE_URL, else a throwaway local server (kafka-testkit).
    #[arg(long)]
    database_url: Option<String>,
    /// The topic to consume.
    #[arg(long, default_value = "inbox-demo")]
    topic: String,
    /// The consumer group.
    #[arg(long, default_value = "inbox-demo")]
    group: String,
    /// Messages to produce first (plus duplicates and one bad payload); 0 = consume only,
    /// until Ctrl-C.
    #[arg(long, default_value_t = 100)]
    produce: usize,
}

#[tokio::main]
async fn main() -> ExitCode {
    common::exit(run(Args::parse()).await)
}

/// The business logic: store the order (the payload must be UTF-8).
async fn handle(tx: &Transaction<'_>, m: &Message) -> Result<(), HandlerError> {
    let text = std::str::from_utf8(m.payload().unwrap_or_default())
        .map_err(|e| format!("payload is not UTF-8: {e}"))?;
    tx.execute(
        "INSERT INTO inbox_demo_orders (payload) VALUES ($1)",
        &[&text],
    )
    .await?;
    Ok(())
}

async fn run(args: Args) -> Result<(), common::BoxError> {
    let kafka = args.conn.connect().await?;
    let (_pg, url) = match args.database_url.clone() {
        Some(u) => (None, u),
        None => match std::env::var("DATABASE_URL") {
            Ok(u) => (None, u),
            Err(_) => {
                eprintln!(
                    "no --database-url: starting a local PostgreSQL through kafka-testkit ..."
                );
                let pg =
                    tokio::task::spawn_blocking(kafka_testkit::PostgresServer::start).await??;
                let u = pg.url();
                (Some(pg), u)
            }
        },
    };
    let (mut db, conn) = tokio_postgres::connect(&url, NoTls).await?;
    tokio::spawn(conn);
    db.batch_execute("CREATE TABLE IF NOT EXISTS inbox_demo_orders (payload TEXT NOT NULL)")
        .await?;

    let counts = Arc::new([AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0)]);
    let c = counts.clone();
    let inbox = Inbox::new("kafka_inbox")?.after_commit(Arc::new(move |_m, outcome| {
        let i = match outcome {
            Outcome::Processed => 0,
            Outcome::Duplicate => 1,
            Outcome::DeadLettered(_) => 2,
        };
        c[i].fetch_add(1, Ordering::Relaxed);
    }));
    inbox.migrate(&mut db).await?;

    let expected = if args.produce > 0 {
        if let Err(e) = kafka.create_topic(&args.topic, 3).await {
            eprintln!("topic {}: {e} (using it as it is)", args.topic);
        }
        let producer = Producer::new(&kafka.config(ClientConfig::new())).await?;
        let run_id = std::process::id();
        let mut sends = Vec::new();
        for i in 0..args.produce {
            let copies = if i < 10 { 2 } else { 1 };
            for _ in 0..copies {
                let value: Vec<u8> = if i == 5 {
                    vec![0xff, 0xfe]
                } else {
                    format!("order {i}").into_bytes()
                };
                let record = ProducerRecord::new(args.topic.as_str())
                    .key(format!("order-{}", i % 7))
                    .value(value)
                    .header(MESSAGE_ID_HEADER, Some(format!("{run_id}-{i}")));
                sends.push(producer.send(record).await?);
            }
        }
        for s in sends {
            s.await?;
        }
        producer.close(Duration::from_secs(10)).await?;
        println!("produced {} messages (+10 duplicates)", args.produce);
        Some(args.produce as u64)
    } else {
        None
    };

    let consumer = Consumer::new(
        &kafka.config(
            ClientConfig::new()
                .with("group.id", &args.group)
                .with("auto.offset.reset", "earliest")
                .with("enable.auto.commit", "false"),
        ),
    )
    .await?;
    consumer.subscribe(&[&args.topic])?;
    let c = counts.clone();
    let done = async move {
        match expected {
            Some(n) => {
                while c[0].load(Ordering::Relaxed) + c[2].load(Ordering::Relaxed) < n {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                // Give the duplicates (later in their partitions) a moment to arrive.
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
            None => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    };
    inbox.run(&mut db, &consumer, handle, done).await?;
    consumer.close().await?;
    println!(
        "processed={} duplicates_skipped={} dead_lettered={}",
        counts[0].load(Ordering::Relaxed),
        counts[1].load(Ordering::Relaxed),
        counts[2].load(Ordering::Relaxed)
    );
    for (id, error) in inbox.dead_letters(&db).await? {
        println!("dead letter {id}: {error}");
    }
    Ok(())
}
