//! Conformance: a `StreamConsumer` with a custom `ConsumerContext` that logs rebalances and
//! commits; reads `--count` messages of `--topic` in group `--group`, commits them
//! (`commit_consumer_state`, sync) and reads the committed offsets back.

#[path = "common.rs"]
mod common;

use std::collections::BTreeMap;
use std::error::Error;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use rdkafka::client::ClientContext;
use rdkafka::consumer::{
    BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance, StreamConsumer,
};
use rdkafka::error::KafkaResult;
use rdkafka::topic_partition_list::TopicPartitionList;
use rdkafka::{Message, Offset};

pub use common::Opts;

/// What the program saw.
#[derive(Debug, Default)]
pub struct Report {
    pub received: usize,
    /// Committed offset per partition, read back with `committed`.
    pub committed: BTreeMap<i32, i64>,
    pub rebalances: Vec<String>,
    pub commit_callbacks: usize,
}

#[derive(Default)]
pub struct LoggingContext {
    events: Mutex<Vec<String>>,
    commits: AtomicUsize,
}

impl ClientContext for LoggingContext {}

impl ConsumerContext for LoggingContext {
    fn pre_rebalance(&self, _: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        let line = match rebalance {
            Rebalance::Assign(tpl) => format!("assign {}", tpl.count()),
            Rebalance::Revoke(tpl) => format!("revoke {}", tpl.count()),
            Rebalance::Error(e) => format!("error {e}"),
        };
        println!("rebalance: {line}");
        self.events.lock().unwrap().push(line);
    }

    fn commit_callback(&self, result: KafkaResult<()>, offsets: &TopicPartitionList) {
        println!("commit: {result:?} {} partitions", offsets.count());
        self.commits.fetch_add(1, Ordering::Relaxed);
    }
}

pub async fn run(o: &Opts) -> Result<Report, Box<dyn Error>> {
    let consumer: StreamConsumer<LoggingContext> = o
        .config(&[
            ("group.id", &o.group),
            ("auto.offset.reset", "earliest"),
            ("enable.auto.commit", "false"),
            ("session.timeout.ms", "10000"),
        ])
        .create_with_context(LoggingContext::default())?;
    consumer.subscribe(&[&o.topic])?;
    let mut report = Report::default();
    while report.received < o.count {
        let m = tokio::time::timeout(Duration::from_secs(60), consumer.recv()).await??;
        assert_eq!(m.topic(), o.topic);
        report.received += 1;
    }
    consumer.commit_consumer_state(CommitMode::Sync)?;
    for e in consumer.committed(Duration::from_secs(10))?.elements() {
        if let Offset::Offset(n) = e.offset() {
            report.committed.insert(e.partition(), n);
        }
    }
    report.rebalances = consumer.context().events.lock().unwrap().clone();
    report.commit_callbacks = consumer.context().commits.load(Ordering::Relaxed);
    Ok(report)
}

#[allow(dead_code)]
#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let o = Opts::from_args();
    println!("{:?}", run(&o).await?);
    Ok(())
}
