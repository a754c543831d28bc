//! Observability in one place: client metrics through the `metrics` crate facade (crate
//! feature `metrics`; without it every metric function here is an empty inline function and
//! every handle a zero-sized type), the `tracing` spans with OpenTelemetry messaging fields,
//! and (feature `opentelemetry`) W3C trace-context propagation through record headers. Call
//! sites elsewhere are one line each.
//!
//! Names follow the Java client's metric names (`kafka.producer.record.send.total` is
//! Java's `producer-topic-metrics` / `record-send-total`), dots instead of dashes. Labels:
//! `client_id` always; `topic` for per-topic metrics; `partition` only for the consumer's
//! per-partition lag (bounded by the partitions assigned to the consumer). No label carries a
//! key, a value, a member id or anything else unbounded. Per-broker metrics carry `broker`, the
//! `host:port` connected to (bounded by the cluster's brokers and the bootstrap list).

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

        /// A request frame of `len` bytes (size prefix included) is being written.
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

// ---------------------------------------------------------------------------------------------
// Tracing spans (always compiled: a span nobody listens to is a disabled `Span`, one interest
// check at its call site) and, with feature `opentelemetry`, W3C trace-context propagation.
// ---------------------------------------------------------------------------------------------

use tracing::Span;

use crate::consumer::Message;
use crate::error::{Error, Result};
use crate::producer::delivery::BatchAck;

/// Target that, when enabled at TRACE level, adds the message key (lossy UTF-8) to the
/// produce, receive and process spans (`messaging.kafka.message.key`). Keys can be personal
/// data: they are left out unless a subscriber asks for this target.
pub(crate) const KEY_TARGET: &str = "kafka_sdk::message_key";

fn key_wanted(span: &Span, key: Option<&[u8]>) -> Option<String> {
    let key = key?;
    if span.is_disabled() || !tracing::enabled!(target: KEY_TARGET, tracing::Level::TRACE) {
        return None;
    }
    Some(String::from_utf8_lossy(key).into_owned())
}

/// `false` when no subscriber can want an INFO span (the compile-time and the global level
/// filters): one relaxed load, for the per-record paths.
#[inline]
fn info_may_be_wanted() -> bool {
    tracing::level_filters::STATIC_MAX_LEVEL >= tracing::Level::INFO
        && tracing::level_filters::LevelFilter::current() >= tracing::Level::INFO
}

/// The span of one produced record, from `send` to its acknowledgement (or failure), or
/// `None` when no subscriber wants it. The partition is recorded when chosen, the offset
/// when acknowledged.
///
/// Per-record hot path: with no subscriber at INFO (the common case) this is one relaxed
/// load and a compare, and `send` carries no `Span` at all (building and dropping a
/// disabled span, then attaching it to the delivery future, cost ~80 instructions per
/// record, ~5 % of `send`: benches/callgrind.py).
#[inline]
pub(crate) fn produce_span(client_id: &str, topic: &str, key: Option<&[u8]>) -> Option<Span> {
    if !info_may_be_wanted() {
        return None;
    }
    let span = build_produce_span(client_id, topic, key);
    (!span.is_disabled()).then_some(span)
}

#[cold]
fn build_produce_span(client_id: &str, topic: &str, key: Option<&[u8]>) -> Span {
    let span = tracing::info_span!(
        target: "kafka_sdk::produce",
        "send",
        otel.name = format_args!("send {topic}"),
        otel.kind = "producer",
        otel.status_code = tracing::field::Empty,
        otel.status_message = tracing::field::Empty,
        messaging.system = "kafka",
        messaging.operation.type = "send",
        messaging.destination.name = topic,
        messaging.client.id = client_id,
        messaging.kafka.destination.partition = tracing::field::Empty,
        messaging.kafka.message.offset = tracing::field::Empty,
        messaging.kafka.message.key = tracing::field::Empty,
    );
    if let Some(k) = key_wanted(&span, key) {
        span.record("messaging.kafka.message.key", k);
    }
    span
}

fn record_error(span: &Span, e: &Error) {
    span.record("otel.status_code", "ERROR");
    span.record("otel.status_message", tracing::field::display(e));
}

/// Produce spans of one batch's records, closed when the batch completes.
#[derive(Debug, Default)]
pub(crate) struct RecordSpans(std::sync::Mutex<Vec<(i32, Span)>>);

impl RecordSpans {
    fn end(span: Span, delta: i32, r: &Result<BatchAck>) {
        match r {
            Ok(ack) if ack.base_offset >= 0 => {
                span.record(
                    "messaging.kafka.message.offset",
                    ack.base_offset + i64::from(delta),
                );
            }
            Ok(_) => {}
            Err(e) => record_error(&span, e),
        }
    }

    /// Keeps the span of the record at `delta` until the batch completes; `done` is the
    /// batch's outcome if it is already known.
    pub(crate) fn attach(
        &self,
        delta: i32,
        partition: i32,
        span: Span,
        done: impl FnOnce() -> Option<(Result<BatchAck>, i32)>,
    ) {
        if span.is_disabled() {
            return;
        }
        span.record("messaging.kafka.destination.partition", partition);
        let mut spans = self.0.lock().unwrap_or_else(|p| p.into_inner());
        match done() {
            Some((r, start)) => Self::end(span, delta - start, &r),
            None => spans.push((delta, span)),
        }
    }

    /// The batch completed: records each span's offset (or error) and closes it.
    pub(crate) fn finish<'a>(&self, result_of: impl Fn(i32) -> (&'a Result<BatchAck>, i32)) {
        let spans = std::mem::take(&mut *self.0.lock().unwrap_or_else(|p| p.into_inner()));
        for (delta, span) in spans {
            let (r, start) = result_of(delta);
            Self::end(span, delta - start, r);
        }
    }
}

fn consumer_span(name: &'static str, m: &Message, client_id: &str, group: Option<&str>) -> Span {
    let span = match name {
        "receive" => tracing::info_span!(
            target: "kafka_sdk::receive",
            "receive",
            otel.name = format_args!("receive {}", m.topic()),
            otel.kind = "consumer",
            messaging.system = "kafka",
            messaging.operation.type = "receive",
            messaging.destination.name = m.topic(),
            messaging.client.id = client_id,
            messaging.consumer.group.name = group,
            messaging.kafka.destination.partition = m.partition(),
            messaging.kafka.message.offset = m.offset(),
            messaging.kafka.message.key = tracing::field::Empty,
        ),
        _ => tracing::info_span!(
            target: "kafka_sdk::process",
            "process",
            otel.name = format_args!("process {}", m.topic()),
            otel.kind = "consumer",
            messaging.system = "kafka",
            messaging.operation.type = "process",
            messaging.destination.name = m.topic(),
            messaging.kafka.destination.partition = m.partition(),
            messaging.kafka.message.offset = m.offset(),
            messaging.kafka.message.key = tracing::field::Empty,
        ),
    };
    if let Some(k) = key_wanted(&span, m.key().map(|k| &k[..])) {
        span.record("messaging.kafka.message.key", k);
    }
    #[cfg(feature = "opentelemetry")]
    otel::extract(&span, m.headers());
    span
}

/// A received message: a short `receive` span (closed at once), child of the producer's
/// span when the message carries its trace context (feature `opentelemetry`).
pub(crate) fn received(m: &Message, client_id: &str, group: Option<&str>) {
    // Per message: skip the span macro's callsite checks when nothing listens at INFO.
    if info_may_be_wanted() {
        drop(consumer_span("receive", m, client_id, group));
    }
}

/// The span an application processes `m` in (see [`Message::span`]).
pub(crate) fn process_span(m: &Message) -> Span {
    consumer_span("process", m, "", None)
}

/// The span of a commit (`commit*` calls; the async kind until its answer).
pub(crate) fn commit_span(client_id: &str, group: Option<&str>, partitions: usize) -> Span {
    tracing::info_span!(
        target: "kafka_sdk::commit",
        "commit",
        otel.kind = "client",
        otel.status_code = tracing::field::Empty,
        otel.status_message = tracing::field::Empty,
        messaging.system = "kafka",
        messaging.operation.type = "settle",
        messaging.operation.name = "commit",
        messaging.client.id = client_id,
        messaging.consumer.group.name = group,
        messaging.batch.message_count = partitions,
    )
}

/// Records a failure on `span`.
pub(crate) fn span_result<T>(span: &Span, r: &Result<T>) {
    if let Err(e) = r {
        record_error(span, e);
    }
}

/// Adds the trace context of `span` to `headers` (feature `opentelemetry`).
#[inline]
pub(crate) fn inject(span: &Span, headers: &mut Vec<(String, Option<bytes::Bytes>)>) {
    #[cfg(feature = "opentelemetry")]
    otel::inject(span, headers);
    #[cfg(not(feature = "opentelemetry"))]
    let _ = (span, headers);
}

#[cfg(feature = "opentelemetry")]
mod otel {
    use bytes::Bytes;
    use opentelemetry::propagation::{Extractor, Injector};
    use opentelemetry::trace::TraceContextExt;
    use tracing::Span;
    use tracing_opentelemetry::OpenTelemetrySpanExt;

    use crate::consumer::Header;

    struct HeaderInjector<'a>(&'a mut Vec<(String, Option<Bytes>)>);

    impl Injector for HeaderInjector<'_> {
        fn set(&mut self, key: &str, value: String) {
            // The record's own `traceparent` (if any) is replaced: one context per record.
            self.0.retain(|(k, _)| k != key);
            self.0.push((key.to_string(), Some(Bytes::from(value))));
        }
    }

    struct HeaderExtractor<'a>(&'a [Header]);

    impl Extractor for HeaderExtractor<'_> {
        fn get(&self, key: &str) -> Option<&str> {
            self.0
                .iter()
                .find(|h| h.key.as_ref() == key.as_bytes())
                .and_then(|h| h.value.as_deref())
                .and_then(|v| std::str::from_utf8(v).ok())
        }

        fn keys(&self) -> Vec<&str> {
            self.0
                .iter()
                .filter_map(|h| std::str::from_utf8(&h.key).ok())
                .collect()
        }
    }

    /// Injects through the global text-map propagator (set by the application, e.g.
    /// `opentelemetry_sdk::propagation::TraceContextPropagator` for `traceparent` /
    /// `tracestate`).
    pub(super) fn inject(span: &Span, headers: &mut Vec<(String, Option<Bytes>)>) {
        if span.is_disabled() {
            return;
        }
        let cx = span.context();
        opentelemetry::global::get_text_map_propagator(|p| {
            p.inject_context(&cx, &mut HeaderInjector(headers))
        });
    }

    /// Makes `span` a child of the context carried in `headers`, if any.
    pub(super) fn extract(span: &Span, headers: &[Header]) {
        if span.is_disabled() || headers.is_empty() {
            return;
        }
        let cx = opentelemetry::global::get_text_map_propagator(|p| {
            p.extract(&HeaderExtractor(headers))
        });
        if cx.span().span_context().is_valid() {
            let _ = span.set_parent(cx);
        }
    }
}
