//! Conformance: an at-least-once pipeline. Reads `--topic`, writes each record to
//! `<topic>-out` with a `FutureProducer`, and only after the write was acknowledged stores
//! the input offset (`store_offset_from_message`; `enable.auto.offset.store=false`), which
//! the automatic commit then commits.

#[path = "common.rs"]
mod common;

use std::collections::BTreeMap;
use std::error::Error;
use std::time::{Duration, Instant};

use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Message, Offset};

pub use common::Opts;

/// What the program saw.
#[derive(Debug, Default)]
pub struct Report {
    pub processed: usize,
    /// Committed offset per input partition once the commits caught up.
    pub committed: BTreeMap<i32, i64>,
}

pub async fn run(o: &Opts) -> Result<Report, Box<dyn Error>> {
    let output = format!("{}-out", o.topic);
    let consumer: StreamConsumer = o
        .config(&[
            ("group.id", &o.group),
            ("auto.offset.reset", "earliest"),
            ("enable.auto.commit", "true"),
            ("auto.commit.interval.ms", "200"),
            ("enable.auto.offset.store", "false"),
        ])
        .create()?;
    let producer: FutureProducer = o.config(&[("message.timeout.ms", "30000")]).create()?;
    consumer.subscribe(&[&o.topic])?;
    let mut report = Report::default();
    let mut next = BTreeMap::new();
    while report.processed < o.count {
        let m = tokio::time::timeout(Duration::from_secs(60), consumer.recv()).await??;
        let mut out = FutureRecord::to(&output);
        if let Some(k) = m.key() {
            out = out.key(k);
        }
        if let Some(p) = m.payload() {
            out = out.payload(p);
        }
        producer
            .send(out, Duration::from_secs(10))
            .await
            .map_err(|(e, _)| e)?;
        consumer.store_offset_from_message(&m)?;
        next.insert(m.partition(), m.offset() + 1);
        report.processed += 1;
    }
    // Await the automatic commit of what was stored.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let mut committed = BTreeMap::new();
        for e in consumer.committed(Duration::from_secs(10))?.elements() {
            if let Offset::Offset(n) = e.offset() {
                committed.insert(e.partition(), n);
            }
        }
        if next.iter().all(|(p, o)| committed.get(p) == Some(o)) {
            report.committed = committed;
            break;
        }
        if Instant::now() > deadline {
            return Err(format!("commits did not catch up: {committed:?} vs {next:?}").into());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(report)
}

#[allow(dead_code)]
#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let o = Opts::from_args();
    println!("{:?}", run(&o).await?);
    Ok(())
}
