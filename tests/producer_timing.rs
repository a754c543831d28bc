//! kafka-sdk's per-batch timing events (target `kafka_sdk::producer::timing`) against the
//! mock broker. A test binary of its own: a thread-local tracing subscriber sees a callsite's
//! events only if no other thread of the process registers the callsite as "never
//! interested" meanwhile (tracing's global callsite cache), which parallel tests of a shared
//! binary did (this test failed about one run in two in producer_faults.rs).

mod support;

use std::sync::Arc;

use support::mock_broker::MockBroker;
use support::mock_producer::{producer, send_burst, TOPIC};

/// Captures the fields of kafka-sdk's `batch acknowledged` timing events (target
/// `kafka_sdk::producer::timing`).
#[derive(Clone, Default)]
struct TimingEvents(Arc<std::sync::Mutex<Vec<std::collections::HashMap<String, String>>>>);

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for TimingEvents {
    fn on_event(&self, e: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        if e.metadata().target() != "kafka_sdk::producer::timing" {
            return;
        }
        let mut fields = std::collections::HashMap::new();
        e.record(&mut |f: &tracing::field::Field, v: &dyn std::fmt::Debug| {
            fields.insert(f.name().to_string(), format!("{v:?}"));
        });
        self.0.lock().unwrap().push(fields);
    }
}

/// With a subscriber that enables the timing target, every acknowledged batch reports its
/// records, bytes and where its time went (before its request, then the request's round
/// trip); the records of all events add up to the records sent.
#[tokio::test]
async fn acknowledged_batches_report_their_timing() {
    use tracing_subscriber::layer::SubscriberExt as _;
    let events = TimingEvents::default();
    // The test's runtime is current-thread: the producer's tasks run on this thread, under
    // this default subscriber.
    let _guard =
        tracing::subscriber::set_default(tracing_subscriber::registry().with(events.clone()));
    let mock = MockBroker::start(&[(TOPIC, 3)]).await;
    let p = producer(&mock).await;
    let offsets = send_burst(&p, 10).await;
    assert_eq!(offsets, (0..10).collect::<Vec<_>>());
    let got = events.0.lock().unwrap().clone();
    assert!(
        got.len() >= 5,
        "2 records per batch: at least 5 batches, got {got:?}"
    );
    let num = |m: &std::collections::HashMap<String, String>, k: &str| -> u64 {
        m.get(k)
            .unwrap_or_else(|| panic!("no {k} in {m:?}"))
            .parse()
            .unwrap()
    };
    let mut records = 0;
    for m in &got {
        assert_eq!(m["topic"], TOPIC);
        assert_eq!(m["partition"], "0");
        assert!(num(m, "bytes") > 100, "{m:?}");
        let (queued, request, total) = (
            num(m, "queued_us"),
            num(m, "request_us"),
            num(m, "total_us"),
        );
        assert!(
            queued + request <= total + 1 && total <= queued + request + 1,
            "{m:?}"
        );
        records += num(m, "records");
    }
    assert_eq!(records, 10, "{got:?}");
}
