//! Producer features of the performance round (issue 18, item 2), against the in-process
//! mock broker (`tests/support/mock_broker.rs`):
//! - `queue.buffering.max.messages` bounds the records buffered and not yet acknowledged:
//!   `send` waits (backpressure) while the count is reached, up to `max.block.ms`, then fails
//!   with a typed `Error::Timeout` naming the key; acknowledgements free the room again;
//! - a batch the broker refuses with MESSAGE_TOO_LARGE (a topic's `max.message.bytes`) is
//!   split into halves (again while still too large) and every record is delivered once,
//!   in order, with its own offset; idempotent halves keep the batch's sequence range
//!   (first half at its base sequence, second where the first ends), so batches behind it
//!   keep theirs; a single record too large fails with a typed error.

mod support;

use std::time::Duration;

use kafka_protocol::messages::ApiKey;
use kafka_sdk::producer::{Producer, ProducerRecord};
use kafka_sdk::{ClientConfig, Error};
use support::mock_broker::{code, Fault, MockBroker, ProducedBatch};

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

/// A `send` dropped while it waits for room under `queue.buffering.max.messages` gives back
/// the `buffer.memory` it had already taken (it leaked before: the producer's memory in use
/// stayed above zero with nothing buffered, and every such drop shrank the buffer for good).
#[tokio::test]
async fn send_dropped_while_waiting_for_record_room_returns_its_memory() {
    let mock = MockBroker::start(&[(TOPIC, 1)]).await;
    let p = producer(
        &mock,
        &[
            ("queue.buffering.max.messages", "1"),
            ("max.block.ms", "30000"),
        ],
    )
    .await;
    mock.inject(Fault::delay(ApiKey::Produce, Duration::from_millis(500)));
    let first = p.send(rec(0)).await.expect("room for one record");
    for i in 1..4 {
        let waiting = tokio::time::timeout(Duration::from_millis(100), p.send(rec(i))).await;
        assert!(
            waiting.is_err(),
            "record {i} waits for room, then is dropped"
        );
    }
    first.await.expect("delivered");
    p.flush().await;
    let used = p.statistics().msg_size;
    assert_eq!(
        used, 0,
        "buffer.memory in use with nothing buffered: {used} bytes"
    );
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
async fn queue_buffering_max_messages_zero_means_no_count_limit() {
    // The default is librdkafka's 100000; 0 lifts the count limit (Java has none).
    let mock = MockBroker::start(&[(TOPIC, 1)]).await;
    let p = producer(
        &mock,
        &[
            ("max.block.ms", "100"),
            ("queue.buffering.max.messages", "0"),
        ],
    )
    .await;
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

/// Sends `n` records of 100 bytes to partition 0 as one batch (large linger, then flush);
/// returns their offsets.
async fn burst_one_batch(p: &Producer, n: usize) -> Vec<Result<i64, Error>> {
    let mut futs = Vec::new();
    for i in 0..n {
        let rec = ProducerRecord::new(TOPIC)
            .partition(0)
            .value(format!("{i:0100}"));
        futs.push(p.send(rec).await.expect("send"));
    }
    tokio::time::timeout(Duration::from_secs(20), p.flush())
        .await
        .expect("flush in time");
    let mut out = Vec::new();
    for f in futs {
        out.push(f.await.map(|m| m.offset));
    }
    out
}

fn accepted(mock: &MockBroker) -> Vec<ProducedBatch> {
    mock.produced()
        .into_iter()
        .filter(|b| b.error_code == code::NONE)
        .collect()
}

async fn split_case(idempotent: bool) {
    let mock = MockBroker::start(&[(TOPIC, 1)]).await;
    // Batches of more than ~5 records of 100 bytes are refused.
    mock.max_message_bytes(Some(700));
    let idem = if idempotent { "true" } else { "false" };
    let p = producer(
        &mock,
        &[
            ("linger.ms", "5000"),
            ("batch.size", "100000"),
            ("enable.idempotence", idem),
            ("acks", "all"),
        ],
    )
    .await;
    let got = burst_one_batch(&p, 16).await;
    let offsets: Vec<i64> = got
        .into_iter()
        .map(|r| r.expect("every record delivered"))
        .collect();
    assert_eq!(
        offsets,
        (0..16).collect::<Vec<i64>>(),
        "once each, in order"
    );
    let refused: Vec<ProducedBatch> = mock
        .produced()
        .into_iter()
        .filter(|b| b.error_code == code::MESSAGE_TOO_LARGE)
        .collect();
    assert!(
        refused.iter().any(|b| b.record_count == 16),
        "the whole batch was refused first: {refused:?}"
    );
    let ok = accepted(&mock);
    assert_eq!(ok.iter().map(|b| b.record_count).sum::<i32>(), 16, "{ok:?}");
    assert!(
        ok.iter().all(|b| b.bytes <= 700 && b.record_count <= 8),
        "{ok:?}"
    );
    assert_eq!(ok.len(), 4, "16 -> 8 + 8 -> 4 + 4 + 4 + 4: {ok:?}");
    if idempotent {
        // Sequences continue across the pieces: 0, 4, 8, 12.
        let seqs: Vec<i32> = ok.iter().map(|b| b.base_sequence).collect();
        assert_eq!(seqs, vec![0, 4, 8, 12], "{ok:?}");
        assert!(
            ok.iter()
                .all(|b| b.producer_id == MockBroker::FIRST_PRODUCER_ID && b.producer_epoch == 0),
            "no epoch bump: {ok:?}"
        );
        // The producer goes on with the next sequence.
        let next = burst_one_batch(&p, 2).await;
        assert_eq!(
            next.into_iter().map(|r| r.unwrap()).collect::<Vec<_>>(),
            vec![16, 17]
        );
        assert_eq!(accepted(&mock).last().unwrap().base_sequence, 16);
    } else {
        assert!(ok.iter().all(|b| b.base_sequence == -1), "{ok:?}");
    }
    p.close(Duration::from_secs(10)).await.unwrap();
}

#[tokio::test]
async fn message_too_large_splits_the_batch_idempotent() {
    split_case(true).await;
}

#[tokio::test]
async fn message_too_large_splits_the_batch_without_idempotence() {
    split_case(false).await;
}

/// A batch behind the refused one (in flight at the same time) keeps its sequences: the
/// halves of the refused batch fill exactly the range it had.
#[tokio::test]
async fn batches_behind_a_split_batch_keep_their_sequences() {
    let mock = MockBroker::start(&[(TOPIC, 1)]).await;
    let p = producer(
        &mock,
        &[
            ("linger.ms", "0"),
            ("batch.size", "1200"),
            ("enable.idempotence", "true"),
            ("acks", "all"),
        ],
    )
    .await;
    // The first Produce is refused as too large (whatever its size); others are accepted.
    mock.inject(Fault::produce(code::MESSAGE_TOO_LARGE));
    let got = burst_one_batch(&p, 40).await;
    let offsets: Vec<i64> = got.into_iter().map(|r| r.expect("delivered")).collect();
    assert_eq!(
        offsets,
        (0..40).collect::<Vec<i64>>(),
        "once each, in order"
    );
    let ok = accepted(&mock);
    let mut next = 0;
    for b in &ok {
        assert_eq!(b.base_sequence, next, "contiguous sequences: {ok:?}");
        next += b.record_count;
    }
    assert_eq!(next, 40);
    p.close(Duration::from_secs(10)).await.unwrap();
}

/// One record larger than the broker accepts cannot be split: it fails with a typed error
/// naming the problem, and the producer keeps working.
#[tokio::test]
async fn a_single_record_too_large_fails_with_a_typed_error() {
    let mock = MockBroker::start(&[(TOPIC, 1)]).await;
    mock.max_message_bytes(Some(300));
    let p = producer(&mock, &[("enable.idempotence", "false")]).await;
    let big = ProducerRecord::new(TOPIC)
        .partition(0)
        .value(vec![b'x'; 1000]);
    let err = p
        .send(big)
        .await
        .expect("accepted into the buffer")
        .await
        .expect_err("refused by the broker");
    assert_eq!(
        err.code(),
        Some(kafka_sdk::KafkaCode::MESSAGE_TOO_LARGE),
        "{err}"
    );
    mock.max_message_bytes(None);
    p.send(rec(1))
        .await
        .unwrap()
        .await
        .expect("the producer keeps working");
    p.close(Duration::from_secs(10)).await.unwrap();
}

/// Records without a key over 8 partitions, 4 led by node 0 and 4 by node 1 whose Produce
/// answers take `slow`: how many records each node's partitions got.
async fn keyless_over_a_slow_node(extra: &[(&str, &str)], slow: Duration) -> (usize, usize) {
    let mock = MockBroker::start_nodes(2, &[(TOPIC, 8)]).await;
    for p in 4..8 {
        mock.set_leader(TOPIC, p, Some(1));
    }
    mock.slow_produce(1, Some(slow));
    let mut cfg = vec![
        ("linger.ms", "0"),
        ("batch.size", "1000"),
        ("enable.idempotence", "false"),
        ("acks", "1"),
        ("max.in.flight.requests.per.connection", "1"),
        ("sticky.partitioning.linger.ms", "0"),
    ];
    cfg.extend_from_slice(extra);
    let p = producer(&mock, &cfg).await;
    let mut futs = Vec::new();
    for round in 0..40 {
        for i in 0..40 {
            let rec = ProducerRecord::new(TOPIC).value(format!("{round}-{i:0100}"));
            futs.push(p.send(rec).await.expect("send"));
        }
        tokio::time::sleep(Duration::from_millis(15)).await;
    }
    let (mut fast, mut slow_n) = (0, 0);
    for f in futs {
        let m = tokio::time::timeout(Duration::from_secs(60), f)
            .await
            .expect("in time")
            .expect("delivered");
        if m.partition < 4 {
            fast += 1;
        } else {
            slow_n += 1;
        }
    }
    p.close(Duration::from_secs(30)).await.unwrap();
    eprintln!("{extra:?}: fast node {fast} records, slow node {slow_n}");
    (fast, slow_n)
}

/// Adaptive partitioning (Java's default): partitions whose batches queue up behind a
/// slow leader get fewer records; without it the split is about even.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adaptive_partitioning_sends_fewer_records_to_a_slow_node() {
    let (fast, slow) = keyless_over_a_slow_node(&[], Duration::from_millis(300)).await;
    assert!(
        fast as f64 > 1.8 * slow as f64,
        "adaptive: fast node {fast} records, slow node {slow}"
    );
    let (fast, slow) = keyless_over_a_slow_node(
        &[("partitioner.adaptive.partitioning.enable", "false")],
        Duration::from_millis(300),
    )
    .await;
    let ratio = fast as f64 / slow.max(1) as f64;
    assert!(
        (0.6..1.6).contains(&ratio),
        "uniform sticky: fast node {fast} records, slow node {slow}"
    );
}

/// `partitioner.availability.timeout.ms`: a leader that takes no batch for that long while
/// it has some ready is skipped (its partitions get almost nothing until it drains).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn availability_timeout_skips_a_stuck_node() {
    let (fast, slow) = keyless_over_a_slow_node(
        &[
            ("partitioner.adaptive.partitioning.enable", "false"),
            ("partitioner.availability.timeout.ms", "50"),
        ],
        Duration::from_millis(1000),
    )
    .await;
    assert!(
        fast as f64 > 3.0 * slow as f64,
        "availability: fast node {fast} records, slow node {slow}"
    );
}
