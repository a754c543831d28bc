//! kafka-sdk's per-batch timing events (target `kafka_sdk::producer::timing`) against the
//! mock broker. A test binary of its own: a thread-local tracing subscriber sees a callsite's
//! events only if no other thread of the process registers the callsite as "never
//! interested" meanwhile (tracing's global callsite cache), which parallel tests of a shared
//! binary did (this test failed about one run in two in producer_faults.rs).

mod support;

use support::common::TargetEvents;
use support::mock_broker::MockBroker;
use support::mock_producer::{producer, send_burst, TOPIC};

/// With a subscriber that enables the timing target, every acknowledged batch reports its
/// records, bytes and where its time went (before its request, then the request's round
/// trip); the records of all events add up to the records sent.
#[tokio::test]
async fn acknowledged_batches_report_their_timing() {
    use tracing_subscriber::layer::SubscriberExt as _;
    let events = TargetEvents::new("kafka_sdk::producer::timing");
    // The test's runtime is current-thread: the producer's tasks run on this thread, under
    // this default subscriber.
    let _guard =
        tracing::subscriber::set_default(tracing_subscriber::registry().with(events.clone()));
    let mock = MockBroker::start(&[(TOPIC, 3)]).await;
    let p = producer(&mock).await;
    let offsets = send_burst(&p, 10).await;
    assert_eq!(offsets, (0..10).collect::<Vec<_>>());
    let got = events.events();
    assert!(
        got.len() >= 5,
        "2 records per batch: at least 5 batches, got {got:?}"
    );
    let num = TargetEvents::num;
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
