//! Outbox relay: creates orders (each with its outbox row, in one database transaction),
//! then runs a relay that publishes them to Kafka; prints the throughput.
//!
//! ```text
//! cargo run -p kafka-sdk-outbox --example outbox_relay            # starts Kafka and PostgreSQL
//! cargo run -p kafka-sdk-outbox --example outbox_relay -- \
//!     --brokers host:9092 --database-url postgres://app@db/app --orders 0   # relay only
//! cargo run -p kafka-sdk-outbox --release --example outbox_relay -- --orders 20000 --until-empty
//! ```
//!
//! Without `--until-empty` the relay keeps running (new rows are published as they commit)
//! until Ctrl-C, then shuts down gracefully.

#[path = "../../examples/common/mod.rs"]
mod common;

use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Parser;
use kafka_sdk::ClientConfig;
use kafka_sdk_outbox::{Outbox, OutboxEvent, Relay, RelayConfig};
use tokio_postgres::NoTls;

/// Command line.
#[derive(Parser, Debug)]
#[command(about = "kafka-sdk-outbox: create orders with outbox rows, relay them to Kafka")]
struct Args {
    #[command(flatten)]
    conn: common::Connection,
    /// PostgreSQL URL. Default: $DATABASE_URL, else a throwaway local server (kafka-testkit).
    #[arg(long)]
    database_url: Option<String>,
    /// The topic the orders' events go to (created when missing).
    #[arg(long, default_value = "orders")]
    topic: String,
    /// Orders to create before the relay starts.
    #[arg(long, default_value_t = 1000)]
    orders: usize,
    /// Distinct aggregates (order ids) the events are spread over.
    #[arg(long, default_value_t = 100)]
    aggregates: usize,
    /// Transactional relay with this transactional.id prefix (default: idempotent producer).
    #[arg(long)]
    transactional: Option<String>,
    /// Rows per batch.
    #[arg(long, default_value_t = 500)]
    batch_size: usize,
    /// Lanes (the unit of ordering and of ownership between relays).
    #[arg(long, default_value_t = 16)]
    lanes: u32,
    /// Exit once the outbox is empty instead of running until Ctrl-C.
    #[arg(long)]
    until_empty: bool,
}

#[tokio::main]
async fn main() -> ExitCode {
    common::exit(run(Args::parse()).await)
}

async fn run(args: Args) -> Result<(), common::BoxError> {
    let kafka = args.conn.connect().await?;
    let (_pg, url) = database(args.database_url.clone()).await?;
    let (mut db, conn) = tokio_postgres::connect(&url, NoTls).await?;
    tokio::spawn(conn);

    let outbox = Outbox::new("kafka_outbox")?;
    outbox.migrate(&mut db).await?;
    db.batch_execute("CREATE TABLE IF NOT EXISTS orders (id TEXT, amount BIGINT)")
        .await?;
    if let Err(e) = kafka.create_topic(&args.topic, 6).await {
        eprintln!("topic {}: {e} (using it as it is)", args.topic);
    }

    // The service side: the business row and the event in one transaction.
    let started = Instant::now();
    for i in 0..args.orders {
        let order = format!("order-{}", i % args.aggregates.max(1));
        let tx = db.transaction().await?;
        tx.execute(
            "INSERT INTO orders (id, amount) VALUES ($1, $2)",
            &[&order, &(i as i64)],
        )
        .await?;
        let event = OutboxEvent::new(args.topic.as_str(), order.as_str())
            .payload(format!("{{\"order\":\"{order}\",\"amount\":{i}}}"));
        outbox.insert(&tx, &event).await?;
        tx.commit().await?;
    }
    if args.orders > 0 {
        println!(
            "created {} orders in {:.2}s",
            args.orders,
            started.elapsed().as_secs_f64()
        );
    }

    let mut cfg = RelayConfig::new(url.clone(), kafka.config(ClientConfig::new()))
        .batch_size(args.batch_size)
        .lanes(args.lanes);
    if let Some(prefix) = &args.transactional {
        cfg = cfg.transactional(prefix.as_str());
    }
    let pending = outbox.pending(&db).await?;
    let started = Instant::now();
    let relay = Relay::spawn(&outbox, cfg);
    if args.until_empty {
        while outbox.pending(&db).await? > 0 {
            if relay.is_finished() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let secs = started.elapsed().as_secs_f64();
        println!(
            "relayed {pending} events in {secs:.2}s: {:.0} events/s (published and deleted)",
            pending as f64 / secs
        );
    } else {
        println!("relay running; Ctrl-C to stop");
        tokio::signal::ctrl_c().await?;
    }
    let published = relay.published();
    relay.shutdown().await?;
    println!("relay stopped after publishing {published} events");
    Ok(())
}

/// The database URL: given, `$DATABASE_URL`, or a local throwaway server (kept alive by the
/// returned guard).
pub async fn database(
    url: Option<String>,
) -> Result<(Option<kafka_testkit::PostgresServer>, String), common::BoxError> {
    if let Some(u) = url.or_else(|| std::env::var("DATABASE_URL").ok()) {
        return Ok((None, u));
    }
    eprintln!("no --database-url: starting a local PostgreSQL through kafka-testkit ...");
    let pg = tokio::task::spawn_blocking(kafka_testkit::PostgresServer::start).await??;
    let url = pg.url();
    Ok((Some(pg), url))
}
