//! An idempotent producer against the mock broker, for the test files that drive one
//! (`producer_faults.rs`, `producer_timing.rs`).
#![allow(dead_code)]

use std::time::Duration;

use bytes::Bytes;
use kafka_sdk::producer::{Producer, ProducerRecord};
use kafka_sdk::ClientConfig;

use super::mock_broker::MockBroker;

/// The topic the helpers send to.
pub const TOPIC: &str = "events";

/// An idempotent producer (acks=all) whose batches hold 2 records of 100 B, so a burst of
/// sends keeps several requests of one partition in flight.
pub async fn producer(mock: &MockBroker) -> Producer {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", mock.bootstrap())
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("linger.ms", "0")
        .set("batch.size", "300")
        .set("retry.backoff.ms", "10")
        .set("retry.backoff.max.ms", "50")
        .set("request.timeout.ms", "5000")
        .set("delivery.timeout.ms", "20000");
    Producer::new(&c).await.expect("producer")
}

/// Sends `n` records of 100 B to partition 0 as fast as possible, flushes, and returns each
/// record's offset (panics on a failed delivery).
pub async fn send_burst(p: &Producer, n: usize) -> Vec<i64> {
    let mut futs = Vec::with_capacity(n);
    for i in 0..n {
        let value = Bytes::from(format!("{i:0100}"));
        let rec = ProducerRecord::new(TOPIC).partition(0).value(value);
        futs.push(p.send(rec).await.expect("send"));
    }
    tokio::time::timeout(Duration::from_secs(20), p.flush())
        .await
        .expect("flush finished");
    let mut offsets = Vec::with_capacity(n);
    for (i, f) in futs.into_iter().enumerate() {
        let meta = f.await.unwrap_or_else(|e| panic!("record {i} failed: {e}"));
        assert_eq!(meta.partition, 0);
        offsets.push(meta.offset);
    }
    offsets
}
