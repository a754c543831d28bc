//! Conformance: produce with `FutureProducer` (send_result + send) and with `BaseProducer`
//! (a ProducerContext counting delivery reports, poll, flush).
//! Prints one line: records acknowledged per producer and the last offset per partition.

#[path = "common.rs"]
mod common;

use std::collections::BTreeMap;
use std::error::Error;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use rdkafka::client::ClientContext;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{
    BaseProducer, BaseRecord, DeliveryResult, FutureProducer, FutureRecord, Producer,
    ProducerContext,
};
use rdkafka::util::Timeout;
use rdkafka::Message;

pub use common::Opts;

/// What the program saw.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Report {
    pub future_acked: usize,
    pub base_acked: usize,
    pub base_failed: usize,
    /// The highest offset written per partition.
    pub last_offsets: BTreeMap<i32, i64>,
}

#[derive(Default)]
struct Counting {
    acked: AtomicUsize,
    failed: AtomicUsize,
}

impl ClientContext for Counting {}

impl ProducerContext for Counting {
    type DeliveryOpaque = Box<usize>;

    fn delivery(&self, result: &DeliveryResult<'_>, index: Box<usize>) {
        match result {
            Ok(m) => {
                assert!(
                    m.offset() >= 0,
                    "record {index} delivered without an offset"
                );
                self.acked.fetch_add(1, Ordering::Relaxed);
            }
            Err((e, _)) => {
                eprintln!("record {index} failed: {e}");
                self.failed.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// Produces `o.count` records with each producer (half through `send_result`, half
/// through `send`, for the future producer).
pub async fn run(o: &Opts) -> Result<Report, Box<dyn Error>> {
    let mut report = Report::default();
    let producer: FutureProducer = o
        .config(&[("message.timeout.ms", "30000"), ("linger.ms", "5")])
        .create()?;
    let mut pending = Vec::new();
    for i in 0..o.count / 2 {
        let key = format!("k{i}");
        let value = format!("future-{i}");
        let index = i.to_string();
        let headers = OwnedHeaders::new().insert(Header {
            key: "index",
            value: Some(&index),
        });
        let record = FutureRecord::to(&o.topic)
            .key(&key)
            .payload(&value)
            .headers(headers);
        match producer.send_result(record) {
            Ok(delivery) => pending.push(delivery),
            Err((e, _)) => return Err(e.into()),
        }
    }
    for delivery in pending {
        let d = delivery.await?.map_err(|(e, _)| e)?;
        report.future_acked += 1;
        let last = report.last_offsets.entry(d.partition).or_insert(-1);
        *last = (*last).max(d.offset);
    }
    for i in o.count / 2..o.count {
        let key = format!("k{i}");
        let value = format!("future-{i}");
        let record = FutureRecord::to(&o.topic).key(&key).payload(&value);
        let d = producer
            .send(record, Duration::from_secs(10))
            .await
            .map_err(|(e, _)| e)?;
        report.future_acked += 1;
        let last = report.last_offsets.entry(d.partition).or_insert(-1);
        *last = (*last).max(d.offset);
    }
    producer.flush(Timeout::After(Duration::from_secs(30)))?;

    let base: BaseProducer<Counting> = o
        .config(&[("message.timeout.ms", "30000")])
        .create_with_context(Counting::default())?;
    for i in 0..o.count {
        let key = format!("k{i}");
        let value = format!("base-{i}");
        let mut record = BaseRecord::with_opaque_to(&o.topic, Box::new(i))
            .key(&key)
            .payload(&value);
        loop {
            match base.send(record) {
                Ok(()) => break,
                Err((e, back)) => {
                    eprintln!("queue full ({e}); polling");
                    record = back;
                    base.poll(Duration::from_millis(100));
                }
            }
        }
        base.poll(Duration::ZERO);
    }
    base.flush(Duration::from_secs(30))?;
    assert_eq!(base.in_flight_count(), 0, "records in flight after flush");
    report.base_acked = base.context().acked.load(Ordering::Relaxed);
    report.base_failed = base.context().failed.load(Ordering::Relaxed);
    Ok(report)
}

#[allow(dead_code)]
#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let o = Opts::from_args();
    println!("{:?}", run(&o).await?);
    Ok(())
}
