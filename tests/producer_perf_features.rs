//! Producer features of the performance round (issue 18, item 2), against the in-process
//! mock broker (`tests/support/mock_broker.rs`):
//! - `queue.buffering.max.messages` bounds the records buffered and not yet acknowledged:
//!   `send` waits (backpressure) while the count is reached, up to `max.block.ms`, then fails
//!   with a typed `Error::Timeout` naming the key; acknowledgements free the room again.

mod support;

use std::time::Duration;

use kafka_protocol::messages::ApiKey;
use kafka_sdk::producer::{Producer, ProducerRecord};
use kafka_sdk::{ClientConfig, Error};
use support::mock_broker::{Fault, MockBroker};

const TOPIC: &str = "perf";

async fn producer(mock: &MockBroker, extra: &[(&str, &str)]) -> Producer {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", mock.bootstrap())
        .set("linger.ms", "0")
        .set("retry.backoff.ms", "10")
        .set("retry.backoff.max.ms", "50");
    for (k, v) in extra {
        c.set(*k, *v);
    }
    Producer::new(&c).await.expect("producer")
}

fn rec(i: usize) -> ProducerRecord {
    ProducerRecord::new(TOPIC)
        .partition(0)
        .value(format!("v{i}"))
}

#[tokio::test]
async fn queue_buffering_max_messages_blocks_then_times_out() {
    let mock = MockBroker::start(&[(TOPIC, 1)]).await;
    let p = producer(
        &mock,
        &[
            ("queue.buffering.max.messages", "5"),
            ("max.block.ms", "300"),
        ],
    )
    .await;
    // Produce answers are withheld for 2 s: the first 5 records stay buffered.
    mock.inject(Fault::delay(ApiKey::Produce, Duration::from_secs(2)));
    let mut futs = Vec::new();
    for i in 0..5 {
        futs.push(
            tokio::time::timeout(Duration::from_secs(5), p.send(rec(i)))
                .await
                .expect("room for 5 records: no wait")
                .expect("send"),
        );
    }
    let t = std::time::Instant::now();
    let err = p
        .send(rec(5))
        .await
        .expect_err("the 6th record has no room");
    assert!(
        matches!(err, Error::Timeout { .. })
            && err.to_string().contains("queue.buffering.max.messages"),
        "typed timeout naming the key: {err}"
    );
    assert!(
        t.elapsed() >= Duration::from_millis(250),
        "waited max.block.ms"
    );
    for f in futs {
        tokio::time::timeout(Duration::from_secs(20), f)
            .await
            .expect("acked in time")
            .expect("delivered");
    }
    // Acknowledged: room again, at once.
    let f = tokio::time::timeout(Duration::from_secs(1), p.send(rec(6)))
        .await
        .expect("room after the acknowledgements")
        .expect("send");
    f.await.expect("delivered");
    p.close(Duration::from_secs(10)).await.unwrap();
}

#[tokio::test]
async fn queue_buffering_max_messages_backpressures_until_acked() {
    let mock = MockBroker::start(&[(TOPIC, 1)]).await;
    let p = producer(
        &mock,
        &[
            ("queue.buffering.max.messages", "3"),
            ("max.block.ms", "20000"),
        ],
    )
    .await;
    mock.inject(Fault::delay(ApiKey::Produce, Duration::from_millis(500)));
    let t = std::time::Instant::now();
    let mut futs = Vec::new();
    for i in 0..10 {
        futs.push(p.send(rec(i)).await.expect("send waits, then succeeds"));
    }
    // The 4th send waited for the delayed acknowledgement.
    assert!(
        t.elapsed() >= Duration::from_millis(400),
        "{:?}",
        t.elapsed()
    );
    let mut offsets = Vec::new();
    for f in futs {
        offsets.push(f.await.expect("delivered").offset);
    }
    assert_eq!(
        offsets,
        (0..10).collect::<Vec<i64>>(),
        "all delivered in order"
    );
    p.close(Duration::from_secs(10)).await.unwrap();
}

#[tokio::test]
async fn without_queue_buffering_max_messages_there_is_no_count_limit() {
    let mock = MockBroker::start(&[(TOPIC, 1)]).await;
    let p = producer(&mock, &[("max.block.ms", "100")]).await;
    mock.inject(Fault::delay(ApiKey::Produce, Duration::from_secs(1)));
    let mut futs = Vec::new();
    for i in 0..1000 {
        futs.push(p.send(rec(i)).await.expect("no count limit"));
    }
    for f in futs {
        f.await.expect("delivered");
    }
    p.close(Duration::from_secs(10)).await.unwrap();
}
