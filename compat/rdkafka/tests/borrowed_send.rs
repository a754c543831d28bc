//! The producers' fast path: kafka-sdk's `Producer::try_send_borrowed` (a record of borrowed
//! slices appended on the calling thread, `None` when `send` would wait) and the drop-in's
//! use of it (a `BaseProducer` record's own copy cut from a shared per-thread chunk, for its
//! delivery report; a `FutureProducer` error result's key and payload from the failed batch
//! kafka-sdk keeps). Against the test kit's shared broker; each test has its own topic.

mod common;
use common::{bootstrap, unique};

use std::sync::{Arc, Mutex};
use std::time::Duration;

use kafka_sdk::admin::{AdminClient, NewTopic};
use kafka_sdk::producer::BorrowedRecord;
use kafka_sdk::{ClientConfig, Consumer, Offset, Producer, ProducerRecord, TopicPartition};
use kafka_sdk_rdkafka::config::ClientConfig as RdConfig;
use kafka_sdk_rdkafka::message::{Header, Headers, Message, OwnedHeaders};
use kafka_sdk_rdkafka::producer::{
    BaseProducer, BaseRecord, DeliveryResult, FutureProducer, FutureRecord, Producer as _,
    ProducerContext,
};
use kafka_sdk_rdkafka::ClientContext;

async fn create_topic(topic: &str, partitions: i32) {
    let cfg = ClientConfig::new().with("bootstrap.servers", bootstrap());
    AdminClient::new(&cfg)
        .await
        .unwrap()
        .create_topic(NewTopic::new(topic, partitions, 1))
        .await
        .unwrap_or_else(|e| panic!("create topic {topic}: {e}"));
}

/// Reads `n` records of `topic` partition `partition` from the beginning (native consumer).
async fn read(topic: &str, partition: i32, n: usize) -> Vec<kafka_sdk::consumer::Message> {
    let c = Consumer::new(&ClientConfig::new().with("bootstrap.servers", bootstrap()))
        .await
        .unwrap();
    c.assign(vec![(
        TopicPartition::new(topic, partition),
        Offset::Beginning,
    )])
    .unwrap();
    let mut out = Vec::new();
    while out.len() < n {
        let m = tokio::time::timeout(Duration::from_secs(60), c.recv())
            .await
            .unwrap_or_else(|_| panic!("only {} of {n} records of {topic} read", out.len()))
            .unwrap();
        out.push(m);
    }
    out
}

/// One small record delivered to `partition` of a just-created `topic` (metadata known
/// afterwards). With `retries=0` a send can fail while the new partition's leadership
/// settles (`NotLeaderForPartition`): sent again until delivered, for up to 60 s.
async fn warm_up(p: &FutureProducer, topic: &str, partition: i32) {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let r = p
            .send(
                FutureRecord::to(topic)
                    .partition(partition)
                    .key("warm")
                    .payload("up"),
                Duration::from_secs(30),
            )
            .await;
        match r {
            Ok(_) => return,
            Err((e, _)) if std::time::Instant::now() < deadline => {
                eprintln!("warm-up send to {topic}: {e}; again");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err((e, _)) => panic!("warm-up send to {topic} never delivered: {e}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn try_send_borrowed_never_waits_and_keeps_every_part() {
    let topic = unique("borrowed");
    // The producer first: its metadata cannot know the topic yet.
    let p = Producer::new(&ClientConfig::new().with("bootstrap.servers", bootstrap()))
        .await
        .unwrap();
    create_topic(&topic, 3).await;
    let headers: [(&str, Option<&[u8]>); 2] = [("h1", Some(b"v1")), ("h2", None)];
    let rec = BorrowedRecord {
        topic: &topic,
        partition: Some(2),
        key: Some(b"key-1"),
        value: Some(b"value-1"),
        timestamp: Some(1_700_000_000_123),
        headers: &headers,
    };
    // The topic is not in the producer's metadata: `send` would wait, so nothing is taken.
    assert_eq!(
        p.try_send_borrowed(rec).err(),
        Some(kafka_sdk::producer::WouldWait::Metadata),
        "appended without metadata"
    );
    // `send` fetches it; from then on the borrowed path appends at once.
    p.send(
        ProducerRecord::new(topic.as_str())
            .partition(2)
            .value("first"),
    )
    .await
    .unwrap()
    .await
    .unwrap();
    let meta = p
        .try_send_borrowed(rec)
        .expect("metadata cached: no wait")
        .expect("accepted")
        .await
        .expect("delivered");
    assert_eq!((meta.partition, meta.offset), (2, 1));
    // Errors come at once, as from `send`.
    let bad = BorrowedRecord {
        partition: Some(7),
        ..rec
    };
    match p.try_send_borrowed(bad) {
        Ok(Err(kafka_sdk::Error::UnknownTopicOrPartition(m))) => assert!(m.contains('7'), "{m}"),
        other => panic!("partition 7 of 3: {other:?}"),
    }
    let got = read(&topic, 2, 2).await;
    let m = &got[1];
    assert_eq!(m.key().map(|k| &k[..]), Some(&b"key-1"[..]));
    assert_eq!(m.payload(), Some(&b"value-1"[..]));
    assert_eq!(m.timestamp(), 1_700_000_000_123);
    let hs: Vec<(&[u8], Option<&[u8]>)> = m
        .headers()
        .iter()
        .map(|h| (&h.key[..], h.value.as_deref()))
        .collect();
    assert_eq!(hs, vec![(&b"h1"[..], Some(&b"v1"[..])), (&b"h2"[..], None)]);
}

/// A delivery report: the record's index (the opaque), key, payload, success.
type Report = (usize, Vec<u8>, Vec<u8>, bool);

/// Every delivery report.
#[derive(Default)]
struct Reports(Mutex<Vec<Report>>);

impl ClientContext for Reports {}

impl ProducerContext for Reports {
    type DeliveryOpaque = usize;

    fn delivery(&self, r: &DeliveryResult<'_>, i: usize) {
        let (m, ok) = match r {
            Ok(m) => (m, true),
            Err((_, m)) => (m, false),
        };
        self.0.lock().unwrap().push((
            i,
            m.key().unwrap_or_default().to_vec(),
            m.payload().unwrap_or_default().to_vec(),
            ok,
        ));
    }
}

fn value(i: usize) -> Vec<u8> {
    // Sizes vary (some records above the per-record chunk limit) so that copies cut from one
    // chunk have different lengths and some records get an allocation of their own.
    let len = [1, 90, 100, 1000, 5000][i % 5];
    (0..len).map(|j| (i + j) as u8).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drop_in_reports_and_error_results_show_each_records_own_bytes() {
    let topic = unique("drop-in-copy");
    create_topic(&topic, 3).await;
    let mut cfg = RdConfig::new();
    cfg.set("bootstrap.servers", bootstrap())
        .set("linger.ms", "5");
    const N: usize = 2_000;
    // BaseProducer: every delivery report shows its own record's key and payload.
    let base: BaseProducer<Reports> = cfg.create_with_context(Reports::default()).unwrap();
    let ctx: Arc<Reports> = base.context().clone();
    tokio::task::block_in_place(|| {
        for i in 0..N {
            let (k, v) = (format!("k{i}"), value(i));
            base.send(BaseRecord::with_opaque_to(&topic, i).key(&k).payload(&v))
                .map_err(|(e, _)| e)
                .unwrap();
            base.poll(Duration::ZERO);
        }
        // A record for a partition that does not exist: its report hands the bytes back.
        base.send(
            BaseRecord::with_opaque_to(&topic, N)
                .partition(9)
                .key("bad-key")
                .payload("bad-payload"),
        )
        .map_err(|(e, _)| e)
        .unwrap();
        base.flush(Duration::from_secs(60)).unwrap();
    });
    let mut reports = std::mem::take(&mut *ctx.0.lock().unwrap());
    reports.sort_by_key(|r| r.0);
    assert_eq!(reports.len(), N + 1);
    for (i, k, v, ok) in &reports[..N] {
        assert!(*ok, "record {i} failed");
        assert_eq!(k, format!("k{i}").as_bytes(), "key of report {i}");
        assert_eq!(*v, value(*i), "payload of report {i}");
    }
    assert_eq!(
        reports[N],
        (N, b"bad-key".to_vec(), b"bad-payload".to_vec(), false)
    );
    assert_eq!(base.in_flight_count(), 0);

    // FutureProducer: the error result hands the record back; successes leave nothing behind.
    let fut: FutureProducer = cfg.create().unwrap();
    let mut pending = Vec::new();
    for i in 0..N {
        let (k, v) = (format!("f{i}"), value(i));
        let rec = FutureRecord::to(&topic).key(&k).payload(&v);
        pending.push(fut.send_result(rec).map_err(|(e, _)| e).unwrap());
    }
    let headers = OwnedHeaders::new().insert(Header {
        key: "h",
        value: Some("hv"),
    });
    let bad = FutureRecord::to(&topic)
        .partition(9)
        .key("bad-key")
        .payload("bad-payload")
        .headers(headers);
    let (e, msg) = fut
        .send(bad, Duration::from_secs(5))
        .await
        .expect_err("partition 9 of 3");
    assert_eq!(msg.key(), Some(&b"bad-key"[..]), "{e}");
    assert_eq!(msg.payload(), Some(&b"bad-payload"[..]));
    let h = msg.headers().expect("headers handed back").get(0);
    assert_eq!((h.key, h.value), ("h", Some(&b"hv"[..])));
    for (i, d) in pending.into_iter().enumerate() {
        d.await
            .unwrap()
            .unwrap_or_else(|(e, _)| panic!("record {i}: {e}"));
    }
    assert_eq!(fut.in_flight_count(), 0);
}

/// `FutureProducer::send` keeps no copy of the record (its future holds the caller's
/// record): a record kafka-sdk took and the broker then refused (larger than the topic's
/// `max.message.bytes`) still comes back in the error result with its own key, payload,
/// headers and partition; `send_result`'s future (which keeps a copy) gives the same.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_error_result_after_the_append_hands_the_record_back() {
    let topic = unique("drop-in-refused");
    let cfg = ClientConfig::new().with("bootstrap.servers", bootstrap());
    AdminClient::new(&cfg)
        .await
        .unwrap()
        .create_topic(NewTopic::new(&topic, 2, 1).config("max.message.bytes", "2000"))
        .await
        .unwrap();
    let mut rd = RdConfig::new();
    rd.set("bootstrap.servers", bootstrap())
        .set("retries", "0")
        .set("enable.idempotence", "false");
    let p: FutureProducer = rd.create().unwrap();
    // Metadata known first, so that the big records are appended at once (not via the lane).
    warm_up(&p, &topic, 1).await;
    let big: Vec<u8> = (0..10_000).map(|i| i as u8).collect();
    let headers = OwnedHeaders::new().insert(Header {
        key: "h",
        value: Some("hv"),
    });
    let check = |e: &kafka_sdk_rdkafka::error::KafkaError,
                 msg: &kafka_sdk_rdkafka::message::OwnedMessage,
                 key: &[u8]| {
        assert_eq!(msg.key(), Some(key), "{e}");
        assert_eq!(msg.payload(), Some(&big[..]), "{e}");
        assert_eq!(msg.topic(), topic);
        assert_eq!(msg.partition(), 1);
        let h = msg.headers().expect("headers handed back").get(0);
        assert_eq!((h.key, h.value), ("h", Some(&b"hv"[..])));
    };
    let (e, msg) = p
        .send(
            FutureRecord::to(&topic)
                .partition(1)
                .key("big-1")
                .payload(&big)
                .headers(headers.clone()),
            Duration::from_secs(30),
        )
        .await
        .expect_err("larger than max.message.bytes");
    check(&e, &msg, b"big-1");
    let fut = p
        .send_result(
            FutureRecord::to(&topic)
                .partition(1)
                .key("big-2")
                .payload(&big)
                .headers(headers),
        )
        .map_err(|(e, _)| e)
        .unwrap();
    let (e, msg) = fut
        .await
        .unwrap()
        .expect_err("larger than max.message.bytes");
    check(&e, &msg, b"big-2");
    assert_eq!(p.in_flight_count(), 0);
}

/// `send_result` keeps no copy of key and payload: a failed record's come back from the
/// batch kafka-sdk kept (`keep_failed_records`). Four records in one batch, the third too
/// large for the topic: the broker refuses the batch, kafka-sdk splits it until the large
/// record is alone, and only that one fails, with its own key, payload, headers, partition
/// and timestamp (found by its place in the split batch); the others are delivered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_result_error_of_a_split_batch_hands_back_the_failed_record() {
    let topic = unique("drop-in-split");
    let cfg = ClientConfig::new().with("bootstrap.servers", bootstrap());
    AdminClient::new(&cfg)
        .await
        .unwrap()
        .create_topic(NewTopic::new(&topic, 1, 1).config("max.message.bytes", "2000"))
        .await
        .unwrap();
    let mut rd = RdConfig::new();
    rd.set("bootstrap.servers", bootstrap())
        .set("retries", "0")
        .set("enable.idempotence", "false")
        .set("linger.ms", "200");
    let p: FutureProducer = rd.create().unwrap();
    // Metadata known first, so that the records are appended at once into one batch.
    warm_up(&p, &topic, 0).await;
    let big: Vec<u8> = (0..5_000).map(|i| (i % 251) as u8).collect();
    let headers = OwnedHeaders::new().insert(Header {
        key: "h",
        value: Some("hv"),
    });
    let small = b"small".to_vec();
    let payloads: [&Vec<u8>; 4] = [&small, &small, &big, &small];
    let futs: Vec<_> = payloads
        .iter()
        .enumerate()
        .map(|(i, payload)| {
            let key = format!("k{i}");
            p.send_result(
                FutureRecord::to(&topic)
                    .partition(0)
                    .key(&key)
                    .payload(*payload)
                    .timestamp(1_700_000_000_000 + i as i64)
                    .headers(headers.clone()),
            )
            .map_err(|(e, _)| e)
            .unwrap()
        })
        .collect();
    let mut delivered = Vec::new();
    for (i, f) in futs.into_iter().enumerate() {
        match f.await.unwrap() {
            Ok(d) => delivered.push((i, d.offset)),
            Err((e, msg)) => {
                assert_eq!(i, 2, "only the large record fails: {e}");
                assert_eq!(msg.key(), Some(&b"k2"[..]));
                assert_eq!(msg.payload(), Some(&big[..]));
                assert_eq!(msg.topic(), topic);
                assert_eq!(msg.partition(), 0);
                assert_eq!(
                    msg.timestamp(),
                    kafka_sdk_rdkafka::Timestamp::CreateTime(1_700_000_000_002)
                );
                let h = msg.headers().expect("headers handed back").get(0);
                assert_eq!((h.key, h.value), ("h", Some(&b"hv"[..])));
            }
        }
    }
    assert_eq!(
        delivered.iter().map(|(i, _)| *i).collect::<Vec<_>>(),
        [0, 1, 3]
    );
    assert_eq!(p.in_flight_count(), 0);
}
