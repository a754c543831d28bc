//! `BaseProducer`'s delivery reports read each record back from the batch kafka-sdk keeps
//! (`ProducerBuilder::keep_records`: no copy per record in the drop-in). What a report shows
//! must be the record's own: key, payload, headers (the caller's, `None` without), timestamp,
//! partition and offset, for compressed batches (lz4, zstd), for records that failed (a
//! batch the broker refused, a batch split because it was too large whose one piece then
//! failed, a batch that never left the producer), in append order per partition, also when
//! two threads send to one partition at once. Against the in-process mock broker
//! (tests/support/mock_broker.rs: offsets are assigned from each batch's record count, faults
//! scripted), so each case takes well under a second.

#[path = "../../../tests/support/mock_broker.rs"]
mod mock_broker;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use kafka_sdk_rdkafka::client::ClientContext;
use kafka_sdk_rdkafka::config::ClientConfig;
use kafka_sdk_rdkafka::message::{Header, Headers, Message, OwnedHeaders, Timestamp};
use kafka_sdk_rdkafka::producer::{
    BaseProducer, BaseRecord, DeliveryResult, Producer as _, ProducerContext,
};
use mock_broker::{Fault, MockBroker};

/// What one delivery report showed.
#[derive(Debug, Clone, PartialEq)]
struct Seen {
    opaque: usize,
    ok: bool,
    topic: String,
    partition: i32,
    offset: i64,
    timestamp: Timestamp,
    key: Option<Vec<u8>>,
    payload: Option<Vec<u8>>,
    headers: Option<Vec<(String, Option<Vec<u8>>)>>,
}

#[derive(Clone, Default)]
struct Reports(Arc<Mutex<Vec<Seen>>>);

impl ClientContext for Reports {}

impl ProducerContext for Reports {
    type DeliveryOpaque = usize;

    fn delivery(&self, r: &DeliveryResult<'_>, opaque: usize) {
        let (ok, m) = match r {
            Ok(m) => (true, m),
            Err((_, m)) => (false, m),
        };
        let headers = m.headers().map(|h| {
            h.iter()
                .map(|h| (h.key.to_string(), h.value.map(<[u8]>::to_vec)))
                .collect()
        });
        self.0.lock().unwrap().push(Seen {
            opaque,
            ok,
            topic: m.topic().to_string(),
            partition: m.partition(),
            offset: m.offset(),
            timestamp: m.timestamp(),
            key: m.key().map(<[u8]>::to_vec),
            payload: m.payload().map(<[u8]>::to_vec),
            headers,
        });
    }
}

impl Reports {
    fn take(&self) -> Vec<Seen> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

fn producer(mock: &MockBroker, extra: &[(&str, &str)]) -> BaseProducer<Reports> {
    let mut cfg = ClientConfig::new();
    cfg.set("bootstrap.servers", mock.bootstrap())
        .set("linger.ms", "5")
        .set("enable.idempotence", "false");
    for (k, v) in extra {
        cfg.set(*k, *v);
    }
    cfg.create_with_context(Reports::default())
        .expect("BaseProducer")
}

/// Runs `f` on a blocking thread (the producer's sync calls must not run on a worker).
async fn blocking<R: Send + 'static>(f: impl FnOnce() -> R + Send + 'static) -> R {
    tokio::task::spawn_blocking(f).await.expect("blocking part")
}

fn key(i: usize) -> String {
    format!("key-{i}")
}

fn payload(i: usize) -> Vec<u8> {
    // Compressible, and different per record.
    (0..100 + i % 50)
        .map(|j| ((i * 7 + j) % 251) as u8)
        .collect()
}

/// The headers of record `i`: none for every third record, an empty list for some, else two.
fn headers(i: usize) -> Option<OwnedHeaders> {
    match i % 3 {
        0 => None,
        1 if i.is_multiple_of(2) => Some(OwnedHeaders::new()),
        _ => Some(
            OwnedHeaders::new()
                .insert(Header {
                    key: "n",
                    value: Some(&i.to_string()),
                })
                .insert(Header::<&str> {
                    key: "null",
                    value: None,
                }),
        ),
    }
}

fn expected_headers(i: usize) -> Option<Vec<(String, Option<Vec<u8>>)>> {
    headers(i).map(|h| {
        h.iter()
            .map(|h| (h.key.to_string(), h.value.map(<[u8]>::to_vec)))
            .collect()
    })
}

/// Sends `n` records (opaque `i`, partition `i % partitions`, key, payload, headers, every
/// other one with a timestamp), polling after each, then flushes.
fn send_all(p: &BaseProducer<Reports>, topic: &str, n: usize, partitions: usize, from: usize) {
    for i in from..from + n {
        let (k, v) = (key(i), payload(i));
        let mut rec = BaseRecord::with_opaque_to(topic, i)
            .partition((i % partitions) as i32)
            .key(&k)
            .payload(&v);
        if i.is_multiple_of(2) {
            rec = rec.timestamp(1_700_000_000_000 + i as i64);
        }
        if let Some(h) = headers(i) {
            rec = rec.headers(h);
        }
        p.send(rec).map_err(|(e, _)| e).expect("send");
        p.poll(Duration::ZERO);
    }
}

/// Checks that report `s` shows record `s.opaque`'s own parts.
fn check_record(s: &Seen, topic: &str, partitions: usize) {
    let i = s.opaque;
    assert_eq!(s.topic, topic, "record {i}");
    assert_eq!(s.partition, (i % partitions) as i32, "record {i}");
    assert_eq!(s.key.as_deref(), Some(key(i).as_bytes()), "record {i}");
    assert_eq!(s.payload.as_deref(), Some(&payload(i)[..]), "record {i}");
    assert_eq!(s.headers, expected_headers(i), "record {i}");
    match s.timestamp {
        Timestamp::CreateTime(t) if i.is_multiple_of(2) => {
            assert_eq!(t, 1_700_000_000_000 + i as i64, "record {i}")
        }
        // Taken by the producer when appended: now-ish.
        Timestamp::CreateTime(t) => assert!(t > 1_700_000_000_000 + 1_000_000, "record {i}"),
        other => panic!("record {i}: timestamp {other:?}"),
    }
}

/// Reports of delivered records per partition: in send order, with offsets 0, 1, 2, ...
fn check_delivered_in_order(reports: &[Seen], partitions: usize, first_offset: i64) {
    for p in 0..partitions as i32 {
        let of_p: Vec<&Seen> = reports.iter().filter(|s| s.partition == p).collect();
        for (j, s) in of_p.iter().enumerate() {
            assert!(s.ok, "record {} failed", s.opaque);
            assert_eq!(
                s.offset,
                first_offset + j as i64,
                "partition {p}, report {j}"
            );
            if j > 0 {
                assert!(of_p[j - 1].opaque < s.opaque, "partition {p}: out of order");
            }
        }
    }
}

/// Every report of compressed batches (lz4, zstd; and none) shows its record's own key,
/// payload, headers (`None` without, an empty list as given), timestamp, partition and offset,
/// in send order per partition; the in-flight count ends at 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reports_show_each_record_of_compressed_batches() {
    const N: usize = 3_000;
    let mock = MockBroker::start(&[("none", 3), ("lz4", 3), ("zstd", 3)]).await;
    for codec in ["none", "lz4", "zstd"] {
        let p = producer(&mock, &[("compression.type", codec)]);
        let topic = codec.to_string();
        let reports = blocking(move || {
            send_all(&p, &topic, N, 3, 0);
            p.flush(Duration::from_secs(60)).expect("flush");
            assert_eq!(p.in_flight_count(), 0);
            p.context().take()
        })
        .await;
        assert_eq!(reports.len(), N, "{codec}");
        let mut seen: Vec<usize> = reports.iter().map(|s| s.opaque).collect();
        seen.sort_unstable();
        assert_eq!(
            seen,
            (0..N).collect::<Vec<_>>(),
            "{codec}: each report once"
        );
        for s in &reports {
            check_record(s, codec, 3);
        }
        check_delivered_in_order(&reports, 3, 0);
    }
    // The batches really were compressed as asked (the same records, fewer bytes).
    let bytes = |topic: &str| -> usize {
        mock.produced()
            .iter()
            .filter(|b| b.topic == topic)
            .map(|b| b.bytes)
            .sum()
    };
    let plain = bytes("none");
    for codec in ["lz4", "zstd"] {
        assert!(
            bytes(codec) * 2 < plain,
            "{codec}: {} of {plain}",
            bytes(codec)
        );
    }
}

/// Records of a batch the broker refused (retries 0; plain and lz4) and of a batch split
/// because the broker found it too large (only the piece holding the one oversized record
/// fails) get a failed report showing their own key, payload, headers and timestamp; the
/// other records' reports are delivered with their offsets.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_records_reports_show_their_own_parts() {
    let mock = MockBroker::start(&[("refused", 2), ("split", 1)]).await;

    // 1. Refused: the first Produce carrying partition 1 fails with CORRUPT_MESSAGE (its
    //    batch is not retried: retries 0).
    for codec in ["none", "lz4"] {
        mock.inject(Fault::produce_partition("refused", 1, 2));
        let p = producer(
            &mock,
            &[
                ("retries", "0"),
                ("compression.type", codec),
                ("linger.ms", "50"),
            ],
        );
        let reports = blocking(move || {
            send_all(&p, "refused", 40, 2, 0);
            p.flush(Duration::from_secs(60)).expect("flush");
            assert_eq!(p.in_flight_count(), 0);
            p.context().take()
        })
        .await;
        assert_eq!(reports.len(), 40, "{codec}");
        for s in &reports {
            check_record(s, "refused", 2);
            if !s.ok {
                assert_eq!((s.partition, s.offset), (1, -1001), "{codec}: {s:?}");
            }
        }
        assert!(reports.iter().any(|s| !s.ok), "{codec}: the refused batch");
        check_delivered_in_order(
            &reports
                .iter()
                .filter(|s| s.partition == 0)
                .cloned()
                .collect::<Vec<_>>(),
            1,
            if codec == "none" { 0 } else { 20 },
        );
    }

    // 2. Split: four records in one batch, the third larger than the broker takes.
    mock.max_message_bytes(Some(2_000));
    let p = producer(&mock, &[("retries", "0"), ("linger.ms", "200")]);
    let reports = blocking(move || {
        let big: Vec<u8> = (0..5_000).map(|i| i as u8).collect();
        for i in 0..4 {
            let k = key(i);
            let v = if i == 2 { big.clone() } else { payload(i) };
            let mut rec = BaseRecord::with_opaque_to("split", i)
                .partition(0)
                .key(&k)
                .payload(&v)
                .timestamp(1_700_000_000_000 + i as i64);
            if let Some(h) = headers(i) {
                rec = rec.headers(h);
            }
            p.send(rec).map_err(|(e, _)| e).expect("send");
        }
        p.flush(Duration::from_secs(60)).expect("flush");
        assert_eq!(p.in_flight_count(), 0);
        (p.context().take(), big)
    })
    .await;
    let (reports, big) = reports;
    mock.max_message_bytes(None);
    let mut order: Vec<usize> = reports.iter().map(|s| s.opaque).collect();
    assert_eq!(order, vec![0, 1, 2, 3], "each report once, in append order");
    order.clear();
    for s in &reports {
        let i = s.opaque;
        assert_eq!(s.key.as_deref(), Some(key(i).as_bytes()));
        assert_eq!(s.headers, expected_headers(i), "record {i}");
        assert_eq!(
            s.timestamp,
            Timestamp::CreateTime(1_700_000_000_000 + i as i64)
        );
        if i == 2 {
            assert!(!s.ok, "the oversized record fails");
            assert_eq!(s.payload.as_deref(), Some(&big[..]));
            assert_eq!((s.partition, s.offset), (0, -1001));
        } else {
            assert!(s.ok, "record {i} is delivered");
            assert_eq!(s.payload.as_deref(), Some(&payload(i)[..]));
        }
    }
    let offsets: Vec<i64> = reports.iter().filter(|s| s.ok).map(|s| s.offset).collect();
    assert_eq!(offsets, vec![0, 1, 2], "the delivered pieces' offsets");
}

/// Two threads sending to one partition at once: each record is reported once, with its
/// own key and payload and its own offset, and each thread's records in its send order.
/// (Between two threads' concurrent sends the reports follow the order the records were
/// filed after kafka-sdk appended them: see `file_slow`.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reports_follow_append_order_with_two_sending_threads() {
    const PER_THREAD: usize = 20_000;
    let mock = MockBroker::start(&[("two", 1)]).await;
    let p = Arc::new(producer(&mock, &[("linger.ms", "1")]));
    let reports = blocking(move || {
        std::thread::scope(|s| {
            for t in 0..2 {
                let p = &p;
                s.spawn(move || {
                    for i in t * PER_THREAD..(t + 1) * PER_THREAD {
                        let (k, v) = (key(i), payload(i));
                        let rec = BaseRecord::with_opaque_to("two", i).key(&k).payload(&v);
                        p.send(rec).map_err(|(e, _)| e).expect("send");
                        // One thread polls (two polling at once serve their reports
                        // in parallel: no order between them, as with librdkafka).
                        if t == 0 && i.is_multiple_of(16) {
                            p.poll(Duration::ZERO);
                        }
                    }
                });
            }
        });
        p.flush(Duration::from_secs(60)).expect("flush");
        assert_eq!(p.in_flight_count(), 0);
        p.context().take()
    })
    .await;
    assert_eq!(reports.len(), 2 * PER_THREAD);
    let mut offsets: Vec<i64> = reports.iter().map(|s| s.offset).collect();
    for s in &reports {
        assert!(s.ok);
        assert_eq!(s.key.as_deref(), Some(key(s.opaque).as_bytes()));
        assert_eq!(s.payload.as_deref(), Some(&payload(s.opaque)[..]));
    }
    let mut each: Vec<usize> = reports.iter().map(|s| s.opaque).collect();
    each.sort_unstable();
    each.dedup();
    assert_eq!(each.len(), 2 * PER_THREAD, "each report once");
    // Each thread's own records: reported in its send order, with rising offsets.
    for t in 0..2 {
        let mine: Vec<(usize, i64)> = reports
            .iter()
            .map(|s| (s.opaque, s.offset))
            .filter(|(i, _)| i / PER_THREAD == t)
            .collect();
        for w in mine.windows(2) {
            assert!(w[0].0 < w[1].0 && w[0].1 < w[1].1, "thread {t}: {w:?}");
        }
    }
    offsets.sort_unstable();
    assert_eq!(offsets, (0..2 * PER_THREAD as i64).collect::<Vec<_>>());
}

/// A record refused at once (a partition the topic does not have) is reported as failed
/// with its own parts, without waiting for any batch, and leaves the in-flight count.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn record_refused_at_once_is_reported_with_its_parts() {
    let mock = MockBroker::start(&[("small", 1)]).await;
    let p = producer(&mock, &[]);
    let reports = blocking(move || {
        send_all(&p, "small", 10, 1, 0);
        p.flush(Duration::from_secs(60)).expect("flush");
        let h = headers(2);
        let mut rec = BaseRecord::with_opaque_to("small", 99)
            .partition(5)
            .key("bad-key")
            .payload("bad-payload");
        if let Some(h) = h {
            rec = rec.headers(h);
        }
        p.send(rec).map_err(|(e, _)| e).expect("send");
        p.poll(Duration::ZERO);
        assert_eq!(p.in_flight_count(), 0);
        p.context().take()
    })
    .await;
    assert_eq!(reports.len(), 11);
    let bad = &reports[10];
    assert!(!bad.ok);
    assert_eq!(
        (bad.opaque, bad.key.as_deref(), bad.payload.as_deref()),
        (99, Some(&b"bad-key"[..]), Some(&b"bad-payload"[..]))
    );
    assert_eq!(bad.headers, expected_headers(2));
}
