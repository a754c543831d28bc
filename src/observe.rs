//! Client metrics through the `metrics` crate facade (crate feature `metrics`); without the
//! feature every function here is an empty inline function.
//!
//! Names follow the Java client's metric names (`kafka.producer.record.send.total` is
//! Java's `producer-topic-metrics` / `record-send-total`), dots instead of dashes. Labels:
//! `client_id` always; `topic` for per-topic metrics; `partition` only for the consumer's
//! per-partition lag (bounded by the partitions assigned to the consumer). No label carries a
//! key, a value, a member id or anything else unbounded.

#[cfg(feature = "metrics")]
mod imp {
    use std::time::Duration;

    use metrics::{counter, gauge, histogram};

    pub fn producer_send(client_id: &str, topic: &str, bytes: usize) {
        let labels = [
            ("client_id", client_id.to_string()),
            ("topic", topic.to_string()),
        ];
        counter!("kafka.producer.record.send.total", &labels).increment(1);
        counter!("kafka.producer.byte.total", &labels).increment(bytes as u64);
    }

    pub fn producer_batch_done(client_id: &str, topic: &str, records: Option<i32>, ok: bool) {
        let labels = [
            ("client_id", client_id.to_string()),
            ("topic", topic.to_string()),
        ];
        if ok {
            let n = records.unwrap_or(0).max(0) as u64;
            counter!("kafka.producer.record.ack.total", &labels).increment(n);
            histogram!("kafka.producer.batch.records", &labels).record(n as f64);
        } else {
            counter!("kafka.producer.batch.error.total", &labels).increment(1);
        }
    }

    pub fn consumer_received(client_id: &str, topic: &str, bytes: usize) {
        let labels = [
            ("client_id", client_id.to_string()),
            ("topic", topic.to_string()),
        ];
        counter!("kafka.consumer.records.consumed.total", &labels).increment(1);
        counter!("kafka.consumer.bytes.consumed.total", &labels).increment(bytes as u64);
    }

    pub fn consumer_lag(client_id: &str, topic: &str, partition: i32, lag: i64) {
        gauge!(
            "kafka.consumer.records.lag",
            "client_id" => client_id.to_string(),
            "topic" => topic.to_string(),
            "partition" => partition.to_string()
        )
        .set(lag as f64);
    }

    pub fn consumer_commit(client_id: &str, elapsed: Duration, ok: bool) {
        let labels = [("client_id", client_id.to_string())];
        histogram!("kafka.consumer.commit.latency.seconds", &labels).record(elapsed.as_secs_f64());
        if ok {
            counter!("kafka.consumer.commit.total", &labels).increment(1);
        } else {
            counter!("kafka.consumer.commit.failed.total", &labels).increment(1);
        }
    }
}

#[cfg(not(feature = "metrics"))]
#[allow(clippy::missing_const_for_fn)]
mod imp {
    use std::time::Duration;

    #[inline(always)]
    pub fn producer_send(_: &str, _: &str, _: usize) {}
    #[inline(always)]
    pub fn producer_batch_done(_: &str, _: &str, _: Option<i32>, _: bool) {}
    #[inline(always)]
    pub fn consumer_received(_: &str, _: &str, _: usize) {}
    #[inline(always)]
    pub fn consumer_lag(_: &str, _: &str, _: i32, _: i64) {}
    #[inline(always)]
    pub fn consumer_commit(_: &str, _: Duration, _: bool) {}
}

pub(crate) use imp::*;
