//! Tracing spans and W3C trace-context propagation (crate feature `opentelemetry`) across a
//! real produce → consume against the test kit's broker: the spans go through
//! `tracing-opentelemetry` into an in-memory exporter; the consumer's `receive` and `process`
//! spans must be children of the producer's `send` span, in the same trace, and every span
//! carries the OpenTelemetry messaging fields. Run with
//! `cargo test --features opentelemetry --test tracing_otel`.

mod support;

use std::time::Duration;

use kafka_sdk::consumer::{CommitMode, Consumer, Offset};
use kafka_sdk::{Producer, ProducerRecord, TopicPartition};
use opentelemetry::trace::{SpanKind, Status, TracerProvider as _};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};
use tracing::Instrument;
use tracing_subscriber::layer::SubscriberExt;

use support::common::{self, unique};

fn attr(s: &SpanData, key: &str) -> Option<String> {
    s.attributes
        .iter()
        .find(|kv| kv.key.as_str() == key)
        .map(|kv| kv.value.as_str().into_owned())
}

fn one<'a>(spans: &'a [SpanData], name: &str) -> &'a SpanData {
    let found: Vec<&SpanData> = spans.iter().filter(|s| s.name == name).collect();
    assert_eq!(
        found.len(),
        1,
        "spans named `{name}` among {:?}",
        spans.iter().map(|s| &s.name).collect::<Vec<_>>()
    );
    found[0]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumer_spans_are_children_of_the_producer_span() {
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(exporter.clone())
        .build();
    let subscriber = tracing_subscriber::registry()
        .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("kafka-sdk-test")));
    tracing::subscriber::set_global_default(subscriber).expect("install the subscriber");
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());

    let bs = kafka_testkit::shared().bootstrap();
    let topic = unique("otel");
    let group = unique("otel-group");
    common::create_topic(&bs, &topic, 1).await;

    let p = Producer::new(&common::config(&bs, &[("client.id", "otel-prod")]))
        .await
        .unwrap();
    let meta = async {
        p.send(
            ProducerRecord::new(topic.as_str())
                .key("order-7")
                .value("payload"),
        )
        .await
        .unwrap()
        .await
        .unwrap()
    }
    .instrument(tracing::info_span!("app-request"))
    .await;
    p.close(Duration::from_secs(10)).await.unwrap();

    let c = Consumer::new(&common::config(
        &bs,
        &[("client.id", "otel-cons"), ("group.id", group.as_str())],
    ))
    .await
    .unwrap();
    c.handle()
        .assign(vec![(
            TopicPartition::new(topic.as_str(), 0),
            Offset::Beginning,
        )])
        .unwrap();
    let m = tokio::time::timeout(Duration::from_secs(60), c.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(m.offset(), meta.offset);
    async { tracing::info!("processing") }
        .instrument(m.span())
        .await;
    c.handle().commit(CommitMode::Sync).await.unwrap();
    c.close().await.unwrap();
    let _ = provider.force_flush();

    let spans = exporter.get_finished_spans().unwrap();
    let send = one(&spans, &format!("send {topic}"));
    let receive = one(&spans, &format!("receive {topic}"));
    let process = one(&spans, &format!("process {topic}"));
    let commit = one(&spans, "commit");
    let root = one(&spans, "app-request");

    // The producer span: a child of the application's span, with the messaging fields.
    assert_eq!(send.span_kind, SpanKind::Producer);
    assert_eq!(send.parent_span_id, root.span_context.span_id());
    assert_eq!(attr(send, "messaging.system").as_deref(), Some("kafka"));
    assert_eq!(
        attr(send, "messaging.destination.name").as_deref(),
        Some(topic.as_str())
    );
    assert_eq!(
        attr(send, "messaging.kafka.destination.partition").as_deref(),
        Some("0")
    );
    assert_eq!(
        attr(send, "messaging.kafka.message.offset"),
        Some(meta.offset.to_string())
    );
    // Keys are recorded because this subscriber enables every target, including
    // `kafka_sdk::message_key`.
    assert_eq!(
        attr(send, "messaging.kafka.message.key").as_deref(),
        Some("order-7")
    );

    // The record carried the producer span's context...
    let tp = m
        .header("traceparent")
        .flatten()
        .map(|v| String::from_utf8_lossy(v).into_owned())
        .expect("a traceparent header");
    assert_eq!(
        tp,
        format!(
            "00-{}-{}-01",
            send.span_context.trace_id(),
            send.span_context.span_id()
        )
    );
    // ... and the consumer's spans continue that trace as children of the send span.
    for s in [receive, process] {
        assert_eq!(s.span_kind, SpanKind::Consumer, "{}", s.name);
        assert_eq!(
            s.span_context.trace_id(),
            send.span_context.trace_id(),
            "{}",
            s.name
        );
        assert_eq!(s.parent_span_id, send.span_context.span_id(), "{}", s.name);
        assert!(s.parent_span_is_remote, "{}", s.name);
        assert_eq!(
            attr(s, "messaging.kafka.message.offset"),
            Some(meta.offset.to_string())
        );
    }
    assert_eq!(
        attr(receive, "messaging.consumer.group.name").as_deref(),
        Some(group.as_str())
    );
    assert_eq!(
        attr(receive, "messaging.client.id").as_deref(),
        Some("otel-cons")
    );
    assert_eq!(
        attr(commit, "messaging.consumer.group.name").as_deref(),
        Some(group.as_str())
    );
    assert!(
        !matches!(commit.status, Status::Error { .. }),
        "the commit succeeded: {:?}",
        commit.status
    );
}
