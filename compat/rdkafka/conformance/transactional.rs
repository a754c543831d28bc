//! Conformance: a transactional `FutureProducer` commits one transaction of `--count`
//! records and aborts one of `--count` more; a `read_committed` `BaseConsumer` assigned to
//! every partition from the beginning sees only the committed ones.

#[path = "common.rs"]
mod common;

use std::error::Error;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::topic_partition_list::TopicPartitionList;
use rdkafka::{Message, Offset};

pub use common::Opts;

/// What the program saw.
#[derive(Debug, Default)]
pub struct Report {
    pub committed_sent: usize,
    pub aborted_sent: usize,
    pub read_committed_seen: usize,
    pub aborted_seen: usize,
}

pub async fn run(o: &Opts) -> Result<Report, Box<dyn Error>> {
    let txn_id = format!("{}-txn", o.topic);
    let producer: FutureProducer = o
        .config(&[
            ("transactional.id", &txn_id),
            ("message.timeout.ms", "30000"),
        ])
        .create()?;
    producer.init_transactions(Duration::from_secs(30))?;
    let mut report = Report::default();
    for (commit, tag) in [(true, "committed"), (false, "aborted")] {
        producer.begin_transaction()?;
        let mut pending = Vec::new();
        for i in 0..o.count {
            let value = format!("{tag}-{i}");
            let record = FutureRecord::<str, str>::to(&o.topic).payload(&value);
            pending.push(producer.send_result(record).map_err(|(e, _)| e)?);
        }
        for d in pending {
            d.await?.map_err(|(e, _)| e)?;
        }
        if commit {
            producer.commit_transaction(Duration::from_secs(30))?;
            report.committed_sent = o.count;
        } else {
            producer.abort_transaction(Duration::from_secs(30))?;
            report.aborted_sent = o.count;
        }
    }

    let consumer: BaseConsumer = o
        .config(&[
            ("group.id", &o.group),
            ("enable.auto.commit", "false"),
            ("isolation.level", "read_committed"),
        ])
        .create()?;
    let md = consumer.fetch_metadata(Some(&o.topic), Duration::from_secs(10))?;
    let mut tpl = TopicPartitionList::new();
    for t in md.topics() {
        for p in t.partitions() {
            tpl.add_partition_offset(t.name(), p.id(), Offset::Beginning)?;
        }
    }
    consumer.assign(&tpl)?;
    // Read until everything committed was seen and then nothing more comes for a while.
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut quiet = 0;
    while Instant::now() < deadline && (report.read_committed_seen < o.count || quiet < 3) {
        match consumer.poll(Duration::from_millis(300)) {
            Some(m) => {
                let m = m?;
                quiet = 0;
                match m.payload_view::<str>() {
                    Some(Ok(v)) if v.starts_with("committed-") => report.read_committed_seen += 1,
                    _ => report.aborted_seen += 1,
                }
            }
            None => quiet += 1,
        }
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
