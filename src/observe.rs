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

    /// A point in time for a latency metric (a clock read only with the feature).
    #[derive(Clone, Copy)]
    pub struct Stamp(std::time::Instant);

    pub fn stamp() -> Stamp {
        Stamp(std::time::Instant::now())
    }

    type BoxFut<T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send>>;

    /// Times a produce request from its start to its answer (`request.latency`).
    pub fn producer_request<T: Send + 'static>(
        client_id: &str,
        broker: &str,
        fut: BoxFut<T>,
    ) -> BoxFut<T> {
        let h = histogram!(
            "kafka.producer.request.latency.seconds",
            "client_id" => client_id.to_string(),
            "broker" => broker.to_string()
        );
        Box::pin(async move {
            let t = std::time::Instant::now();
            let r = fut.await;
            h.record(t.elapsed().as_secs_f64());
            r
        })
    }

    pub fn producer_retry(client_id: &str, topic: &str, records: i32) {
        counter!(
            "kafka.producer.record.retry.total",
            "client_id" => client_id.to_string(),
            "topic" => topic.to_string()
        )
        .increment(records.max(0) as u64);
    }

    /// Sender loop state: free `buffer.memory` bytes and produce requests in flight.
    pub fn producer_state(client_id: &str, f: impl FnOnce() -> (usize, usize)) {
        let (available, in_flight) = f();
        let labels = [("client_id", client_id.to_string())];
        gauge!("kafka.producer.buffer.available.bytes", &labels).set(available as f64);
        gauge!("kafka.producer.requests.in.flight", &labels).set(in_flight as f64);
    }

    /// A batch acknowledged `elapsed` after its first record was sent.
    pub fn producer_delivered(client_id: &str, topic: &str, elapsed: Duration) {
        histogram!(
            "kafka.producer.delivery.latency.seconds",
            "client_id" => client_id.to_string(),
            "topic" => topic.to_string()
        )
        .record(elapsed.as_secs_f64());
    }

    pub fn consumer_fetch(client_id: &str, started: Stamp) {
        histogram!("kafka.consumer.fetch.latency.seconds", "client_id" => client_id.to_string())
            .record(started.0.elapsed().as_secs_f64());
    }

    /// A rebalance (classic: join to applied assignment; KIP-848: one reconciliation)
    /// finished, leaving `assigned` partitions.
    pub fn consumer_rebalanced(client_id: &str, started: Stamp, assigned: usize) {
        let labels = [("client_id", client_id.to_string())];
        counter!("kafka.consumer.rebalance.total", &labels).increment(1);
        histogram!("kafka.consumer.rebalance.latency.seconds", &labels)
            .record(started.0.elapsed().as_secs_f64());
        gauge!("kafka.consumer.assigned.partitions", &labels).set(assigned as f64);
    }

    /// Per-connection metric handles, labelled with the client id and the broker address
    /// (bounded by the brokers of the cluster).
    pub struct ConnMetrics {
        count: metrics::Gauge,
        closes: metrics::Counter,
        auth_failures: metrics::Counter,
        out_bytes: metrics::Counter,
        in_bytes: metrics::Counter,
    }

    impl ConnMetrics {
        /// A socket to `broker` was established.
        pub fn opened(client_id: &str, broker: &str) -> ConnMetrics {
            let labels = [
                ("client_id", client_id.to_string()),
                ("broker", broker.to_string()),
            ];
            counter!("kafka.connection.creation.total", &labels).increment(1);
            let count = gauge!("kafka.connection.count", "client_id" => client_id.to_string());
            count.increment(1.0);
            ConnMetrics {
                count,
                closes: counter!("kafka.connection.close.total", &labels),
                auth_failures: counter!("kafka.connection.failed.authentication.total", &labels),
                out_bytes: counter!("kafka.node.outgoing.byte.total", &labels),
                in_bytes: counter!("kafka.node.incoming.byte.total", &labels),
            }
        }

        /// The connection closed (called once per connection).
        pub fn closed(&self) {
            self.count.decrement(1.0);
            self.closes.increment(1);
        }

        pub fn auth_failed(&self) {
            self.auth_failures.increment(1);
        }

        /// A request frame was written (`len` bytes, with its size prefix).
        pub fn sent(&self, len: impl FnOnce() -> usize) {
            self.out_bytes.increment(len() as u64);
        }

        /// A response of `len` bytes (without its 4-byte size prefix) was read.
        pub fn received(&self, len: usize) {
            self.in_bytes.increment(len as u64 + 4);
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

    #[derive(Clone, Copy)]
    pub struct Stamp;
    #[inline(always)]
    pub fn stamp() -> Stamp {
        Stamp
    }
    type BoxFut<T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send>>;
    #[inline(always)]
    pub fn producer_request<T: Send + 'static>(_: &str, _: &str, fut: BoxFut<T>) -> BoxFut<T> {
        fut
    }
    #[inline(always)]
    pub fn producer_retry(_: &str, _: &str, _: i32) {}
    #[inline(always)]
    pub fn producer_state(_: &str, _: impl FnOnce() -> (usize, usize)) {}
    #[inline(always)]
    pub fn producer_delivered(_: &str, _: &str, _: Duration) {}
    #[inline(always)]
    pub fn consumer_fetch(_: &str, _: Stamp) {}
    #[inline(always)]
    pub fn consumer_rebalanced(_: &str, _: Stamp, _: usize) {}

    pub struct ConnMetrics;
    impl ConnMetrics {
        #[inline(always)]
        pub fn opened(_: &str, _: &str) -> ConnMetrics {
            ConnMetrics
        }
        #[inline(always)]
        pub fn closed(&self) {}
        #[inline(always)]
        pub fn auth_failed(&self) {}
        #[inline(always)]
        pub fn sent(&self, _: impl FnOnce() -> usize) {}
        #[inline(always)]
        pub fn received(&self, _: usize) {}
    }
}

pub(crate) use imp::*;
