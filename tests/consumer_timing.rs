//! kafka-sdk's per-fetch timing events (target `kafka_sdk::consumer::timing`) against a real
//! broker (`kafka_testkit::shared()`, honours `KAFKA_BOOTSTRAP_SERVERS`), and against the mock
//! broker where a fetch has to fail on cue. A test binary of its
//! own, as `producer_timing.rs`: a thread-local subscriber sees a callsite's events only if no
//! other thread of the process registers the callsite as "never interested" meanwhile.

mod support;

use std::collections::HashSet;
use std::time::Duration;

use kafka_sdk::consumer::{Consumer, Offset};
use kafka_sdk::producer::{Producer, ProducerRecord};
use kafka_sdk::TopicPartition;

use support::common::{config, create_topic, unique, TargetEvents};

/// With a subscriber that enables the timing target, every answered fetch reports its
/// broker and lane, partitions, size limit, the record bytes it brought and its round trip, and every
/// fetch after the first how long the client held the broker idle before it; the bytes of
/// all events cover the records read.
#[tokio::test]
async fn answered_fetches_report_their_timing() {
    use tracing_subscriber::layer::SubscriberExt as _;
    let events = TargetEvents::new("kafka_sdk::consumer::timing");
    // The test's runtime is current-thread: the consumer's tasks run on this thread, under
    // this default subscriber.
    let _guard =
        tracing::subscriber::set_default(tracing_subscriber::registry().with(events.clone()));
    let b = kafka_testkit::shared().bootstrap();
    let topic = unique("consumer-timing");
    create_topic(&b, &topic, 3).await;
    let (n, size): (usize, usize) = (600, 1000);
    let producer = Producer::new(&config(&b, &[("linger.ms", "5")]))
        .await
        .unwrap();
    let mut acks = Vec::new();
    for i in 0..n {
        let r = ProducerRecord::new(topic.as_str())
            .partition((i % 3) as i32)
            .value(vec![b'x'; size]);
        acks.push(producer.send(r).await.unwrap());
    }
    for a in acks {
        a.await.unwrap();
    }
    producer.close(Duration::from_secs(10)).await.unwrap();

    // Small responses, so that one partition's records take several fetches.
    let c = Consumer::new(&config(&b, &[("max.partition.fetch.bytes", "65536")]))
        .await
        .unwrap();
    c.assign(
        (0..3)
            .map(|p| (TopicPartition::new(topic.as_str(), p), Offset::Beginning))
            .collect(),
    )
    .unwrap();
    for _ in 0..n {
        tokio::time::timeout(Duration::from_secs(30), c.recv())
            .await
            .expect("a record within 30 s")
            .unwrap();
    }
    drop(c);

    let got = events.events();
    let num = TargetEvents::num;
    // 200 KB per partition, at most 64 KiB of it per answer.
    assert!(got.len() >= 3, "{got:?}");
    let mut bytes = 0;
    let mut nodes = HashSet::new();
    for m in &got {
        let parts = num(m, "partitions");
        assert!((1..=3).contains(&parts), "{m:?}");
        assert!(num(m, "max_bytes") > 0, "{m:?}");
        num(m, "request_us");
        // Fetch tasks per broker and lane, each one's first fetch without an answer before it.
        let later = !nodes.insert((num(m, "node"), num(m, "lane")));
        assert_eq!(m.contains_key("held_us"), later, "{m:?}");
        if later {
            num(m, "held_us");
        }
        bytes += num(m, "bytes");
    }
    // Three partitions of one broker: two lanes, one with two of them.
    let lanes: HashSet<u64> = nodes.iter().map(|&(_, lane)| lane).collect();
    assert_eq!(lanes.len(), 2, "{got:?}");
    assert!(
        bytes >= (n * size) as u64,
        "{bytes} record bytes for {n} values of {size} B"
    );
}

/// A failed fetch starts the held time over: the next answered fetch reports no `held_us`,
/// since the time since the previous answer was the failed request and the retry backoff
/// (here 800 ms), not the client holding the broker idle. Against the mock broker, which
/// can drop the connection of one Fetch request.
#[tokio::test]
async fn a_failed_fetch_does_not_count_as_held_time() {
    use kafka_protocol::messages::ApiKey;
    use support::mock_broker::{Fault, MockBroker};
    use tracing_subscriber::layer::SubscriberExt as _;
    let events = TargetEvents::new("kafka_sdk::consumer::timing");
    let _guard =
        tracing::subscriber::set_default(tracing_subscriber::registry().with(events.clone()));
    let mock = MockBroker::start(&[("held", 1)]).await;
    mock.append("held", 0, &["a"]);
    let c = Consumer::new(&config(
        &mock.bootstrap(),
        &[
            ("retry.backoff.ms", "800"),
            ("retry.backoff.max.ms", "800"),
            ("fetch.max.wait.ms", "50"),
        ],
    ))
    .await
    .unwrap();
    c.assign(vec![(TopicPartition::new("held", 0), Offset::Beginning)])
        .unwrap();
    let first = tokio::time::timeout(Duration::from_secs(10), c.recv())
        .await
        .expect("the first record within 10 s")
        .unwrap();
    assert_eq!(first.value().map(|v| v.as_ref()), Some(&b"a"[..]));
    mock.inject(Fault::disconnect(ApiKey::Fetch));
    mock.append("held", 0, &["b"]);
    let second = tokio::time::timeout(Duration::from_secs(10), c.recv())
        .await
        .expect("the second record within 10 s")
        .unwrap();
    assert_eq!(second.value().map(|v| v.as_ref()), Some(&b"b"[..]));
    drop(c);

    let got = events.events();
    assert!(!got.is_empty(), "no timing events");
    for m in &got {
        if m.contains_key("held_us") {
            let held = TargetEvents::num(m, "held_us");
            assert!(
                held < 500_000,
                "held_us {held} spans a failed fetch and its backoff: {got:?}"
            );
        }
    }
}
