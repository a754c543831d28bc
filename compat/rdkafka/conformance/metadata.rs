//! Conformance: a metadata dump (brokers, the topic's partitions with leaders, replicas and
//! ISR) and the watermarks of each partition, through a `BaseConsumer`.

#[path = "common.rs"]
mod common;

use std::error::Error;
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer};

pub use common::Opts;

/// What the program saw.
#[derive(Debug, Default)]
pub struct Report {
    pub brokers: usize,
    pub partitions: usize,
    /// Sum over the partitions of high watermark minus low watermark.
    pub records: i64,
}

pub fn run(o: &Opts) -> Result<Report, Box<dyn Error>> {
    let consumer: BaseConsumer = o.config(&[]).create()?;
    let all = consumer.fetch_metadata(None, Duration::from_secs(10))?;
    let mut report = Report {
        brokers: all.brokers().len(),
        ..Report::default()
    };
    for b in all.brokers() {
        println!("broker {} at {}:{}", b.id(), b.host(), b.port());
    }
    let md = consumer.fetch_metadata(Some(&o.topic), Duration::from_secs(10))?;
    for t in md.topics() {
        for p in t.partitions() {
            println!(
                "{} [{}] leader {} replicas {:?} isr {:?}",
                t.name(),
                p.id(),
                p.leader(),
                p.replicas(),
                p.isr()
            );
            let (low, high) =
                consumer.fetch_watermarks(t.name(), p.id(), Duration::from_secs(10))?;
            report.records += high - low;
            report.partitions += 1;
        }
    }
    Ok(report)
}

#[allow(dead_code)]
fn main() -> Result<(), Box<dyn Error>> {
    let o = Opts::from_args();
    println!("{:?}", run(&o)?);
    Ok(())
}
