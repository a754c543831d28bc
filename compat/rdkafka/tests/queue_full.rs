//! `queue.buffering.max.kbytes` bounds what a drop-in producer holds, as in librdkafka: once
//! the records waiting to be sent fill it, `BaseProducer::send` and
//! `FutureProducer::send_result` fail at once with `QueueFull` and hand the record back
//! (nothing is copied aside to wait), and `FutureProducer::send` waits up to its queue
//! timeout. After a flush, sends go through again. Against the test kit's shared broker; a
//! long `linger.ms` keeps the records waiting in the producer.

mod common;
use common::{bootstrap, create_topic, unique};

use std::time::{Duration, Instant};

use kafka_sdk_rdkafka::config::ClientConfig;
use kafka_sdk_rdkafka::error::{KafkaError, RDKafkaErrorCode};
use kafka_sdk_rdkafka::message::Message;
use kafka_sdk_rdkafka::producer::{
    BaseProducer, BaseRecord, FutureProducer, FutureRecord, Producer as _,
};

/// 64 KiB of buffer; 1 KiB records: about 55 fit.
const KBYTES: &str = "64";
const VALUE: usize = 1024;

fn config() -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", bootstrap())
        .set("queue.buffering.max.kbytes", KBYTES)
        .set("linger.ms", "60000")
        .set("batch.size", "1000000");
    c
}

fn is_queue_full(e: &KafkaError) -> bool {
    *e == KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull)
}

async fn topic() -> String {
    let topic = unique("queue-full");
    create_topic(&topic, 1, &[]).await;
    topic
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn base_producer_send_is_queue_full_when_the_buffer_is() {
    let topic = topic().await;
    let accepted = tokio::task::spawn_blocking(move || {
        let p: BaseProducer = config().create().unwrap();
        let value = vec![7u8; VALUE];
        // The first record fetches the topic's metadata (it may wait in the lane for it).
        p.send(BaseRecord::<(), _>::to(&topic).payload(&value[..]))
            .map_err(|(e, _)| e)
            .unwrap();
        p.flush(Duration::from_secs(30)).unwrap();
        let mut accepted = 0;
        let full = loop {
            let v = format!("{accepted:04}-{}", "x".repeat(VALUE));
            match p.send(BaseRecord::<(), _>::to(&topic).payload(&v)) {
                Ok(()) => accepted += 1,
                Err((e, rec)) => {
                    assert!(is_queue_full(&e), "after {accepted}: {e}");
                    // The very record comes back.
                    assert_eq!(rec.payload.map(String::as_str), Some(v.as_str()));
                    break accepted;
                }
            }
            assert!(
                accepted < 200,
                "200 records of 1 KiB taken with 64 KiB of buffer"
            );
        };
        assert!((20..=64).contains(&full), "QueueFull after {full} records");
        // Still full: refused again at once.
        let t0 = Instant::now();
        let again = p.send(BaseRecord::<(), _>::to(&topic).payload(&value[..]));
        assert!(matches!(again, Err((ref e, _)) if is_queue_full(e)));
        assert!(t0.elapsed() < Duration::from_millis(500));
        // Sent out: room again.
        p.flush(Duration::from_secs(30)).unwrap();
        p.send(BaseRecord::<(), _>::to(&topic).payload(&value[..]))
            .map_err(|(e, _)| e)
            .expect("room after the flush");
        p.flush(Duration::from_secs(30)).unwrap();
        full
    })
    .await
    .unwrap();
    assert!(accepted > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn future_producer_is_queue_full_when_the_buffer_is() {
    let topic = topic().await;
    let p: FutureProducer = config().create().unwrap();
    let value = vec![7u8; VALUE];
    // The first record fetches the topic's metadata; flushed out (no 60 s linger).
    let first = p
        .send_result(FutureRecord::<(), _>::to(&topic).payload(&value[..]))
        .map_err(|(e, _)| e)
        .unwrap();
    flush(&p).await;
    first
        .await
        .unwrap()
        .map_err(|(e, _)| e)
        .expect("first record");
    let mut pending = Vec::new();
    let full = loop {
        let v = format!("{:04}-{}", pending.len(), "y".repeat(VALUE));
        match p.send_result(FutureRecord::<(), _>::to(&topic).payload(&v)) {
            Ok(f) => pending.push(f),
            Err((e, rec)) => {
                assert!(is_queue_full(&e), "after {}: {e}", pending.len());
                assert_eq!(rec.payload.map(String::as_str), Some(v.as_str()));
                break pending.len();
            }
        }
        assert!(
            pending.len() < 200,
            "200 records of 1 KiB taken with 64 KiB of buffer"
        );
    };
    assert!((20..=64).contains(&full), "QueueFull after {full} records");
    // `send` (of a record as large as the refused one) waits up to its queue timeout, then
    // gives the record back.
    let late = format!("late-{}", "z".repeat(VALUE));
    let t0 = Instant::now();
    let r = p
        .send(
            FutureRecord::<(), _>::to(&topic).payload(&late),
            Duration::from_millis(300),
        )
        .await;
    match r {
        Err((e, m)) => {
            assert!(is_queue_full(&e), "{e}");
            assert_eq!(m.payload(), Some(late.as_bytes()));
        }
        Ok(d) => panic!("delivered while the buffer was full: {d:?}"),
    }
    assert!(
        t0.elapsed() >= Duration::from_millis(300),
        "{:?}",
        t0.elapsed()
    );
    // Sent out: every accepted record delivered, room again.
    flush(&p).await;
    for f in pending {
        f.await.unwrap().map_err(|(e, _)| e).expect("delivered");
    }
    let after = p
        .send_result(FutureRecord::<(), _>::to(&topic).payload(&late))
        .map_err(|(e, _)| e)
        .expect("room after the flush");
    flush(&p).await;
    after.await.unwrap().map_err(|(e, _)| e).expect("delivered");
}

/// `flush` (blocking) off the runtime's threads.
async fn flush(p: &FutureProducer) {
    let p = p.clone();
    tokio::task::spawn_blocking(move || p.flush(Duration::from_secs(30)))
        .await
        .unwrap()
        .unwrap();
}

/// `queue.buffering.max.messages` bounds a `FutureProducer`'s records in flight, as in
/// librdkafka: those kafka-sdk took (its own limit) and those still waiting for the topic's
/// metadata (the facade's count) together. The next `send_result` fails at once with
/// `QueueFull` and hands the record back; after the outcomes, sends go through again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn future_producer_is_queue_full_at_max_messages() {
    let topic = topic().await;
    let config = || {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", bootstrap())
            .set("queue.buffering.max.messages", "5")
            .set("linger.ms", "60000");
        c
    };
    let fill = |p: &FutureProducer, tag: &str| {
        let pending: Vec<_> = (0..5)
            .map(|i| {
                p.send_result(FutureRecord::<(), _>::to(&topic).payload(&format!("{tag}{i}")))
                    .map_err(|(e, _)| e)
                    .unwrap_or_else(|e| panic!("{tag}: record {i} refused: {e}"))
            })
            .collect();
        let sixth = format!("{tag}5");
        match p.send_result(FutureRecord::<(), _>::to(&topic).payload(&sixth)) {
            Err((e, rec)) => {
                assert!(is_queue_full(&e), "{tag}: {e}");
                assert_eq!(rec.payload, Some(&sixth), "{tag}: the record comes back");
            }
            Ok(_) => panic!("{tag}: a sixth record taken with queue.buffering.max.messages=5"),
        }
        pending
    };
    // A new producer: the records wait for the topic's metadata (the facade's lane).
    let waiting: FutureProducer = config().create().unwrap();
    let pending = fill(&waiting, "w");
    flush(&waiting).await;
    for f in pending {
        f.await.unwrap().map_err(|(e, _)| e).expect("delivered");
    }
    // Metadata known: kafka-sdk takes the records at once and counts them itself.
    let pending = fill(&waiting, "d");
    flush(&waiting).await;
    for f in pending {
        f.await.unwrap().map_err(|(e, _)| e).expect("delivered");
    }
    let after = waiting
        .send_result(FutureRecord::<(), _>::to(&topic).payload("after"))
        .map_err(|(e, _)| e)
        .expect("room after the outcomes");
    flush(&waiting).await;
    after.await.unwrap().map_err(|(e, _)| e).expect("delivered");
}

/// A flush's effect ends when `flush` returns, as librdkafka's: a record sent after it keeps
/// its `linger.ms`. The drop-in ran kafka-sdk's flush on a task of its own that outlived the
/// call (the call returned once nothing was in flight, or at its timeout), so a record sent
/// right after `flush` returned went at once (seen in CI: the QueueFull test above had a
/// record delivered while the buffer was full). Here a flush that times out at once leaves
/// a record sent after it waiting for its 60 s linger.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_sent_after_flush_returned_keeps_its_linger() {
    let topic = topic().await;
    let p: FutureProducer = config().create().unwrap();
    let first = p
        .send_result(FutureRecord::<(), _>::to(&topic).payload("first"))
        .map_err(|(e, _)| e)
        .unwrap();
    flush(&p).await;
    first.await.unwrap().map_err(|(e, _)| e).expect("first");
    for round in 0..3 {
        let a = p
            .send_result(FutureRecord::<(), _>::to(&topic).payload("a"))
            .map_err(|(e, _)| e)
            .unwrap();
        let q = p.clone();
        let r = tokio::task::spawn_blocking(move || q.flush(Duration::ZERO))
            .await
            .unwrap();
        assert!(r.is_err(), "a flush of a lingering record with no time");
        let b = p
            .send_result(FutureRecord::<(), _>::to(&topic).payload("b"))
            .map_err(|(e, _)| e)
            .unwrap();
        let early = tokio::time::timeout(Duration::from_millis(1500), b).await;
        assert!(
            early.is_err(),
            "round {round}: a record sent after flush returned was delivered within 1.5 s \
             (linger.ms=60000): {early:?}"
        );
        flush(&p).await;
        a.await.unwrap().map_err(|(e, _)| e).expect("a");
    }
}
