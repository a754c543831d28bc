//! The producer against a real broker (`kafka_testkit::shared()`, or `KAFKA_BOOTSTRAP_SERVERS`).
//!
//! Tests that pause or restart a broker start a cluster of their own.

mod support;

use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::process::Stdio;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use kafka_sdk::producer::partitioner::{crc32_partition, murmur2_partition};
use kafka_sdk::producer::{DeliveryFuture, Producer, ProducerRecord};
use kafka_sdk::record::RecordBatch;
use kafka_sdk::stats::BrokerStats;
use kafka_sdk::{Error, KafkaCode};
use kafka_testkit::KafkaCluster;

use support::common::{config, create_topic, unique};
use support::raw::{fetch_batches, reader};

fn bootstrap() -> String {
    kafka_testkit::shared().bootstrap()
}

/// Runs a Kafka CLI tool of the shared cluster and returns its stdout lines.
async fn tool_lines(args: Vec<String>, stdin: Option<String>) -> Vec<String> {
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let mut cmd = kafka_testkit::shared().tool(args[0], &args[1..]);
        cmd.stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn tool");
        if let Some(input) = stdin {
            let mut w = child.stdin.take().unwrap();
            w.write_all(input.as_bytes()).unwrap();
        }
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{:?} failed: {}",
            args,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(str::to_string)
            .collect()
    })
    .await
    .unwrap()
}

/// Reads `n` records of `topic` with the Java console consumer.
async fn java_consume(topic: &str, n: usize, props: &[&str]) -> Vec<String> {
    let mut args: Vec<String> = [
        "console-consumer",
        "--bootstrap-server",
        &bootstrap(),
        "--topic",
        topic,
        "--from-beginning",
        "--max-messages",
        &n.to_string(),
        "--timeout-ms",
        "60000",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    for p in props {
        args.push("--property".into());
        args.push(p.to_string());
    }
    let lines: Vec<String> = tool_lines(args, None)
        .await
        .into_iter()
        .filter(|l| !l.starts_with("Processed a total of") && !l.starts_with("Option --property"))
        .collect();
    assert_eq!(
        lines.len(),
        n,
        "console consumer read {} of {n}",
        lines.len()
    );
    lines
}

fn headers_text(h: &[(String, Option<Bytes>)]) -> String {
    if h.is_empty() {
        return "NO_HEADERS".into();
    }
    h.iter()
        .map(|(k, v)| match v {
            Some(v) => format!("{k}:{}", String::from_utf8_lossy(v)),
            None => format!("{k}:null"),
        })
        .collect::<Vec<_>>()
        .join(",")
}

fn opt_text(b: Option<&Bytes>) -> String {
    b.map(|b| String::from_utf8_lossy(b).into_owned())
        .unwrap_or_else(|| "null".into())
}

/// Record `i` of the codec test: null / empty keys and values, headers with null values,
/// repeated header keys, explicit timestamps.
/// (Timestamps are recent: old ones would be deleted by the broker's time retention.)
fn codec_record(topic: &str, i: usize, base_ts: i64) -> ProducerRecord {
    let mut r = ProducerRecord::new(topic)
        .partition(0)
        .timestamp(base_ts + i as i64);
    if i.is_multiple_of(7) {
        // null key
    } else if i.is_multiple_of(11) {
        r = r.key("");
    } else {
        r = r.key(format!("key-{i}"));
    }
    if !i.is_multiple_of(13) {
        r = r.value(format!("value-{i}-{}", "x".repeat(i % 50)));
    }
    if !i.is_multiple_of(3) {
        r = r
            .header("h1", Some(format!("a{i}")))
            .header("h2", None::<Bytes>);
        if i.is_multiple_of(5) {
            r = r.header("h1", Some("again")).header("h3", Some(""));
        }
    }
    r
}

fn expected_line(r: &ProducerRecord) -> String {
    format!(
        "CreateTime:{}\t{}\t{}\t{}",
        r.get_timestamp().unwrap(),
        headers_text(r.get_headers()),
        opt_text(r.get_key()),
        opt_text(r.get_value())
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_codec_round_trips_through_the_java_consumer() {
    let b = bootstrap();
    for codec in ["none", "gzip", "snappy", "lz4", "zstd"] {
        let topic = unique(&format!("codec-{codec}"));
        create_topic(&b, &topic, 1).await;
        let producer = Producer::new(&config(&b, &[("compression.type", codec)]))
            .await
            .unwrap();
        let n = 10_000;
        let mut futs = Vec::with_capacity(n);
        let mut expected = Vec::with_capacity(n);
        let base_ts = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64
            - 60_000;
        for i in 0..n {
            let r = codec_record(&topic, i, base_ts);
            expected.push(expected_line(&r));
            futs.push(producer.send(r).await.unwrap());
        }
        for (i, f) in futs.into_iter().enumerate() {
            let m = f.await.unwrap();
            assert_eq!((m.partition, m.offset), (0, i as i64), "{codec}");
        }
        producer.close(Duration::from_secs(10)).await.unwrap();
        // The batches really are compressed with the codec.
        let batches = fetch_batches(&reader(&bootstrap()).await, &topic, 0).await;
        assert!(
            batches.iter().all(|b| b.compression().name() == codec),
            "{codec}"
        );
        let lines = java_consume(
            &topic,
            n,
            &[
                "print.key=true",
                "print.headers=true",
                "print.timestamp=true",
            ],
        )
        .await;
        for (i, (got, want)) in lines.iter().zip(&expected).enumerate() {
            assert_eq!(got, want, "{codec}: record {i}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_partitioner_matches_the_java_producer() {
    let b = bootstrap();
    let topic = unique("parity");
    create_topic(&b, &topic, 12).await;
    let n = 10_000;
    let keys: Vec<String> = (0..n).map(|i| format!("k{i}-{}", i * 7919)).collect();
    let input: String = keys.iter().map(|k| format!("{k}:java\n")).collect();
    tool_lines(
        [
            "console-producer",
            "--bootstrap-server",
            &b,
            "--topic",
            &topic,
            "--property",
            "parse.key=true",
            "--property",
            "key.separator=:",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect(),
        Some(input),
    )
    .await;
    let lines = java_consume(&topic, n, &["print.key=true", "print.partition=true"]).await;
    let java: HashMap<String, i32> = lines
        .iter()
        .map(|l| {
            let mut it = l.split('\t');
            let p = it.next().unwrap().strip_prefix("Partition:").unwrap();
            (it.next().unwrap().to_string(), p.parse().unwrap())
        })
        .collect();
    assert_eq!(java.len(), n);
    let producer = Producer::new(&config(&b, &[])).await.unwrap();
    let mut futs = Vec::new();
    for k in &keys {
        let f = producer
            .send(
                ProducerRecord::new(topic.as_str())
                    .key(k.clone())
                    .value("sdk"),
            )
            .await
            .unwrap();
        futs.push(f);
    }
    let mut used = HashSet::new();
    for (k, f) in keys.iter().zip(futs) {
        let m = f.await.unwrap();
        assert_eq!(m.partition, java[k], "key {k}");
        assert_eq!(m.partition, murmur2_partition(k.as_bytes(), 12), "key {k}");
        used.insert(m.partition);
    }
    assert_eq!(used.len(), 12);
    producer.close(Duration::from_secs(10)).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consistent_random_matches_librdkafka() {
    if std::process::Command::new("kcat")
        .arg("-V")
        .output()
        .is_err()
    {
        // CI installs kcat (.ci/run), so there a missing kcat is a failure, not a skip.
        assert!(
            std::env::var("CI").is_err(),
            "kcat (Debian package `kcat`) is required in CI"
        );
        eprintln!("SKIPPED: kcat (Debian package `kcat`) is not installed");
        return;
    }
    let b = bootstrap();
    let topic = unique("kcat");
    create_topic(&b, &topic, 12).await;
    let n = 2_000;
    let keys: Vec<String> = (0..n).map(|i| format!("user-{i}")).collect();
    let input: String = keys.iter().map(|k| format!("{k}:v\n")).collect();
    let (b2, t2) = (b.clone(), topic.clone());
    tokio::task::spawn_blocking(move || {
        let mut child = std::process::Command::new("kcat")
            .args(["-P", "-b", &b2, "-t", &t2, "-K:"])
            .stdin(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
        assert!(child.wait().unwrap().success());
    })
    .await
    .unwrap();
    let lines = java_consume(&topic, n, &["print.key=true", "print.partition=true"]).await;
    let producer = Producer::new(&config(&b, &[("partitioner", "consistent_random")]))
        .await
        .unwrap();
    for l in lines {
        let mut it = l.split('\t');
        let p: i32 = it
            .next()
            .unwrap()
            .strip_prefix("Partition:")
            .unwrap()
            .parse()
            .unwrap();
        let key = it.next().unwrap().to_string();
        assert_eq!(p, crc32_partition(key.as_bytes(), 12), "key {key}");
        let m = producer
            .send(
                ProducerRecord::new(topic.as_str())
                    .key(key.clone())
                    .value("sdk"),
            )
            .await
            .unwrap();
        assert_eq!(m.partition(), p, "key {key}");
    }
    producer.close(Duration::from_secs(10)).await.unwrap();
}

/// Sends `n` records `r{i}` to a new 1-partition topic (named after `prefix`) with a
/// producer of `settings`, waits for every delivery, closes the producer, and returns the
/// records' offsets and the partition's batches as stored.
async fn send_and_read_back(
    prefix: &str,
    settings: &[(&str, &str)],
    n: usize,
) -> (Vec<i64>, Vec<RecordBatch>) {
    let b = bootstrap();
    let topic = unique(prefix);
    create_topic(&b, &topic, 1).await;
    let producer = Producer::new(&config(&b, settings)).await.unwrap();
    let mut futs = Vec::new();
    for i in 0..n {
        futs.push(
            producer
                .send(ProducerRecord::new(topic.as_str()).value(format!("r{i}")))
                .await
                .unwrap(),
        );
    }
    let mut offsets = Vec::new();
    for f in futs {
        offsets.push(f.await.unwrap().offset);
    }
    producer.close(Duration::from_secs(10)).await.unwrap();
    let batches = fetch_batches(&reader(&b).await, &topic, 0).await;
    (offsets, batches)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn linger_batches_many_records_and_batch_size_one_does_not() {
    // linger 50 ms, big batches: 10,000 small records in few batches.
    let settings = [("linger.ms", "50"), ("batch.size", "1000000")];
    let (_, batches) = send_and_read_back("linger", &settings, 10_000).await;
    let records: usize = batches.iter().map(|b| b.records.len()).sum();
    assert_eq!(records, 10_000);
    assert!(
        batches.len() <= 100,
        "{} batches for 10,000 records",
        batches.len()
    );

    // linger 0, batch.size 1: one record per batch.
    let settings = [("linger.ms", "0"), ("batch.size", "1")];
    let (offsets, batches) = send_and_read_back("single", &settings, 300).await;
    assert_eq!(offsets, (0..300).collect::<Vec<i64>>());
    assert_eq!(batches.len(), 300);
    assert!(batches.iter().all(|b| b.records.len() == 1));
}

/// `DeliveryFuture::report` + `ProducerBuilder::delivery_handler`: every reported record's
/// outcome reaches the handler once, with its opaque, the offset the broker gave it, or the
/// broker's refusal (a record over the topic's `max.message.bytes`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_delivery_handler_gets_every_reported_outcome_once() {
    use kafka_sdk::producer::{DeliveryHandler, DeliveryReport};
    use std::sync::{Arc, Mutex};
    let b = bootstrap();
    let topic = unique("reports");
    let admin = kafka_sdk::AdminClient::new(&config(&b, &[])).await.unwrap();
    admin
        .create_topic(
            kafka_sdk::NewTopic::new(topic.as_str(), 3, 1).config("max.message.bytes", "20000"),
        )
        .await
        .unwrap();
    type Seen = Vec<(u64, i32, Result<i64, String>)>;
    let seen: Arc<Mutex<Seen>> = Arc::default();
    let s = seen.clone();
    let handler: DeliveryHandler = Arc::new(move |r: &DeliveryReport<'_>| {
        let res = r.result.map(|w| w.offset).map_err(|e| e.to_string());
        s.lock().unwrap().push((r.opaque, r.partition, res));
    });
    let cfg = config(&b, &[("linger.ms", "5"), ("enable.idempotence", "true")]);
    let p = Producer::builder(&cfg)
        .delivery_handler(handler)
        .build()
        .await
        .unwrap();
    let n = 3_000u64;
    for i in 0..n {
        let rec = ProducerRecord::new(topic.as_str())
            .key(format!("k{i}"))
            .value(format!("v{i}"));
        p.send(rec).await.unwrap().report(i);
    }
    // Awaited futures are not reported.
    let awaited = p
        .send(
            ProducerRecord::new(topic.as_str())
                .partition(0)
                .value("awaited"),
        )
        .await
        .unwrap();
    let awaited_offset = awaited.await.expect("awaited record delivered").offset;
    // Alone in its batch, larger than the topic allows.
    let big = ProducerRecord::new(topic.as_str())
        .partition(2)
        .value(vec![7u8; 50_000]);
    p.send(big).await.unwrap().report(n);
    tokio::time::timeout(Duration::from_secs(30), p.flush())
        .await
        .expect("flush in time");
    let got = std::mem::take(&mut *seen.lock().unwrap());
    assert_eq!(got.len() as u64, n + 1, "one report per reported record");
    let mut opaques: Vec<u64> = got.iter().map(|(o, _, _)| *o).collect();
    opaques.sort_unstable();
    assert_eq!(opaques, (0..=n).collect::<Vec<u64>>(), "each opaque once");
    let (fail, ok): (Vec<_>, Vec<_>) = got.into_iter().partition(|(o, _, _)| *o == n);
    let err = fail[0].2.clone().expect_err("the oversized record fails");
    assert!(err.to_lowercase().contains("large"), "{err}");
    // Offsets: per partition, every offset from 0 once (the awaited record took one of
    // partition 0's).
    let mut per: HashMap<i32, Vec<i64>> = HashMap::new();
    for (_, part, res) in ok {
        per.entry(part).or_default().push(res.expect("delivered"));
    }
    per.entry(0).or_default().push(awaited_offset);
    let mut total = 0;
    for (part, mut offs) in per {
        offs.sort_unstable();
        assert_eq!(
            offs,
            (0..offs.len() as i64).collect::<Vec<i64>>(),
            "partition {part}"
        );
        total += offs.len();
    }
    assert_eq!(total as u64, n + 1);
    p.close(Duration::from_secs(10)).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acks_zero_and_one() {
    let b = bootstrap();
    for acks in ["0", "1"] {
        let topic = unique(&format!("acks{acks}"));
        create_topic(&b, &topic, 2).await;
        // acks=0 has no way to learn that a write was refused (the broker just closes the
        // connection), and a partition can refuse writes briefly right after creation. Wait
        // until both partitions took an acknowledged write (these 2 records are counted).
        let warm = Producer::new(&config(&b, &[("acks", "all")]))
            .await
            .unwrap();
        for p in 0..2 {
            warm.send_and_wait(
                ProducerRecord::new(topic.as_str())
                    .partition(p)
                    .value("warm"),
            )
            .await
            .unwrap();
        }
        warm.close(Duration::from_secs(10)).await.unwrap();
        let producer = Producer::new(&config(&b, &[("acks", acks)])).await.unwrap();
        let mut futs = Vec::new();
        for i in 0..1000 {
            let r = ProducerRecord::new(topic.as_str())
                .partition(i % 2)
                .value(format!("v{i}"));
            futs.push(producer.send(r).await.unwrap());
        }
        let mut offsets = Vec::new();
        for f in futs {
            let m = f.await.unwrap();
            offsets.push(m.offset);
        }
        if acks == "0" {
            assert!(offsets.iter().all(|o| *o == -1));
        } else {
            let mut p0: Vec<i64> = offsets.iter().step_by(2).copied().collect();
            p0.sort();
            // Offset 0 holds the warm-up record.
            assert_eq!(p0, (1..501).collect::<Vec<i64>>());
        }
        producer.close(Duration::from_secs(10)).await.unwrap();
        // With acks=0 nothing tells the producer (or this test) when the broker appended
        // what it was sent: read until everything is there, for a while.
        let deadline = std::time::Instant::now() + Duration::from_secs(15);
        loop {
            let mut total = 0;
            for p in 0..2 {
                total += fetch_batches(&reader(&bootstrap()).await, &topic, p)
                    .await
                    .iter()
                    .map(|b| b.records.len())
                    .sum::<usize>();
            }
            if total == 1002 || std::time::Instant::now() >= deadline {
                assert_eq!(
                    total, 1002,
                    "acks={acks} (1000 records + 2 warm-up records)"
                );
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// The error `send` (enqueueing `record`) fails with; panics when it is accepted.
async fn send_err(p: &Producer, record: ProducerRecord) -> Error {
    match p.send(record).await {
        Ok(_) => panic!("send accepted a record it must refuse"),
        Err(e) => e,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gives_typed_errors() {
    let b = bootstrap();
    let topic = unique("bad");
    create_topic(&b, &topic, 3).await;
    let producer = Producer::new(&config(
        &b,
        &[
            ("max.request.size", "10000"),
            ("buffer.memory", "100000"),
            ("max.block.ms", "3000"),
            ("allow.auto.create.topics", "false"),
        ],
    ))
    .await
    .unwrap();

    let e = send_err(&producer, ProducerRecord::new("bad topic!").value("x")).await;
    assert!(matches!(e, Error::InvalidArgument(_)), "{e:?}");

    let e = send_err(
        &producer,
        ProducerRecord::new(topic.as_str()).value(vec![0u8; 20_000]),
    )
    .await;
    assert!(
        matches!(&e, Error::InvalidArgument(m) if m.contains("max.request.size") && m.contains("20")),
        "{e:?}"
    );

    let e = send_err(
        &producer,
        ProducerRecord::new(topic.as_str()).partition(3).value("x"),
    )
    .await;
    assert!(matches!(e, Error::UnknownTopicOrPartition(_)), "{e:?}");

    let missing = unique("missing");
    let e = send_err(&producer, ProducerRecord::new(missing.as_str()).value("x")).await;
    assert!(matches!(e, Error::UnknownTopicOrPartition(_)), "{e:?}");

    // The producer still works after all that.
    let m = producer
        .send_and_wait(ProducerRecord::new(topic.as_str()).value("fine"))
        .await
        .unwrap();
    assert!(m.offset >= 0);
    producer.close(Duration::from_secs(10)).await.unwrap();
    let e = send_err(&producer, ProducerRecord::new(topic.as_str()).value("late")).await;
    assert!(matches!(e, Error::Closed), "{e:?}");

    let small = Producer::new(&config(
        &b,
        &[("buffer.memory", "5000"), ("batch.size", "1000")],
    ))
    .await
    .unwrap();
    let e = send_err(
        &small,
        ProducerRecord::new(topic.as_str()).value(vec![1u8; 8000]),
    )
    .await;
    assert!(
        matches!(&e, Error::InvalidArgument(m) if m.contains("buffer.memory")),
        "{e:?}"
    );
}

/// KIP-467: when the broker refuses a batch for some of its records (a timestamp outside
/// the topic's `message.timestamp.before.max.ms`, a record without a key on a compacted
/// topic), it names them; each of those fails with the broker's code and its own message,
/// and the batch's other records fail with an error that says they were valid but not
/// written (as Java and librdkafka report them), so an application can resend them. The
/// idempotent producer goes on: the records sent after are written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_refused_with_an_invalid_neighbour_say_which_was_invalid() {
    let b = bootstrap();
    let admin = kafka_sdk::AdminClient::new(&config(&b, &[])).await.unwrap();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let p = Producer::new(&config(
        &b,
        &[("linger.ms", "200"), ("enable.idempotence", "true")],
    ))
    .await
    .unwrap();
    // (topic config, the invalid record, the code it fails with, words of its message)
    type Invalid = fn(ProducerRecord, i64) -> ProducerRecord;
    let cases: [(&str, &str, Invalid, KafkaCode, &str); 2] = [
        (
            "message.timestamp.before.max.ms",
            "60000",
            |r, now| r.key("k").timestamp(now - 3_600_000),
            KafkaCode::INVALID_TIMESTAMP,
            "out of range",
        ),
        (
            "cleanup.policy",
            "compact",
            |r, _| r,
            KafkaCode::INVALID_RECORD,
            "without key",
        ),
    ];
    for (key, value, invalid, code, words) in cases {
        let topic = unique("invalid-neighbour");
        admin
            .create_topic(kafka_sdk::NewTopic::new(topic.as_str(), 1, 1).config(key, value))
            .await
            .unwrap();
        let mut futs = Vec::new();
        for i in 0..5 {
            let r = ProducerRecord::new(topic.as_str())
                .partition(0)
                .value(format!("v{i}"));
            let r = if i == 2 { invalid(r, now) } else { r.key("k") };
            futs.push(p.send(r).await.unwrap());
        }
        assert!(
            futs.iter().all(|f| f.same_batch(&futs[0])),
            "premise: the five records share a batch"
        );
        let mut outcomes = Vec::new();
        for f in futs {
            outcomes.push(
                tokio::time::timeout(Duration::from_secs(30), f)
                    .await
                    .unwrap(),
            );
        }
        for (i, o) in outcomes.iter().enumerate() {
            let e = o.as_ref().expect_err("the broker refuses the whole batch");
            let text = e.to_string();
            if i == 2 {
                assert_eq!(e.code(), Some(code), "{key}: {e:?}");
                assert!(
                    text.contains(words),
                    "{key}: the record's own message: {text}"
                );
            } else {
                assert_ne!(e.code(), Some(code), "{key}: a valid record: {e:?}");
                assert!(
                    text.contains("another record") && text.contains(&code.name()),
                    "{key}: a valid record says it was refused for another one: {text}"
                );
                assert!(!e.is_retriable(), "{e:?}");
            }
        }
        // Nothing of the batch was written; the producer goes on (new epoch, sequences).
        let after = p
            .send(
                ProducerRecord::new(topic.as_str())
                    .partition(0)
                    .key("k")
                    .value("after"),
            )
            .await
            .unwrap()
            .await
            .expect("a record after the refused batch is written");
        assert_eq!(
            after.offset, 0,
            "{key}: the refused batch left nothing behind"
        );
    }
}

/// Partitions added to a topic after the producer cached its metadata: a record for one of
/// them waits (within `max.block.ms`) for the metadata that shows it, as Java's
/// `waitOnMetadata` does, instead of failing until the next periodic refresh
/// (`metadata.max.age.ms`, 5 minutes by default). A partition that never appears still fails
/// after `max.block.ms`, naming the partition count.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_for_a_partition_added_later_waits_for_the_metadata() {
    let b = bootstrap();
    let topic = unique("grown");
    create_topic(&b, &topic, 1).await;
    let producer = Producer::new(&config(&b, &[("max.block.ms", "20000")]))
        .await
        .unwrap();
    let md = producer
        .send_and_wait(ProducerRecord::new(topic.as_str()).partition(0).value("a"))
        .await
        .unwrap();
    assert_eq!(md.partition, 0);
    let admin = kafka_sdk::AdminClient::new(&config(&b, &[])).await.unwrap();
    for (t, r) in admin.create_partitions(&[(&topic, 3)]).await.unwrap() {
        r.unwrap_or_else(|e| panic!("create partitions of {t}: {e}"));
    }
    let md = producer
        .send_and_wait(ProducerRecord::new(topic.as_str()).partition(2).value("b"))
        .await
        .expect("a record for a partition added since the metadata was cached");
    assert_eq!((md.partition, md.offset), (2, 0));

    let quick = Producer::new(&config(&b, &[("max.block.ms", "1500")]))
        .await
        .unwrap();
    let t0 = std::time::Instant::now();
    let e = send_err(
        &quick,
        ProducerRecord::new(topic.as_str()).partition(7).value("c"),
    )
    .await;
    assert!(
        matches!(&e, Error::UnknownTopicOrPartition(m) if m.contains("partition 7") && m.contains("3 partitions")),
        "{e:?}"
    );
    assert!(
        t0.elapsed() >= Duration::from_millis(1500),
        "waited max.block.ms"
    );
    let e = send_err(
        &quick,
        ProducerRecord::new(topic.as_str()).partition(-2).value("c"),
    )
    .await;
    assert!(matches!(e, Error::UnknownTopicOrPartition(_)), "{e:?}");
}

/// A batch whose partition has no leader any more (its topic deleted under it) waits for
/// `delivery.timeout.ms`, asking for metadata meanwhile: the refreshes back off from
/// `retry.backoff.ms` towards `retry.backoff.max.ms` (Java's KIP-580 backoff) instead of
/// going out every `retry.backoff.ms` for the whole wait.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_refreshes_for_a_lost_leader_back_off() {
    let b = bootstrap();
    let topic = unique("lost-leader");
    create_topic(&b, &topic, 1).await;
    let producer = Producer::new(&config(
        &b,
        &[
            ("allow.auto.create.topics", "false"),
            ("delivery.timeout.ms", "8000"),
            ("request.timeout.ms", "5000"),
            ("linger.ms", "0"),
        ],
    ))
    .await
    .unwrap();
    producer
        .send_and_wait(ProducerRecord::new(topic.as_str()).partition(0).value("a"))
        .await
        .unwrap();
    let admin = kafka_sdk::AdminClient::new(&config(&b, &[])).await.unwrap();
    for (t, r) in admin.delete_topics(&[topic.as_str()]).await.unwrap() {
        r.unwrap_or_else(|e| panic!("delete {t}: {e}"));
    }
    let before = requests(&producer, "Metadata");
    let t0 = std::time::Instant::now();
    let e = producer
        .send_and_wait(ProducerRecord::new(topic.as_str()).partition(0).value("b"))
        .await
        .expect_err("a record for a deleted topic");
    let (waited, refreshes) = (t0.elapsed(), requests(&producer, "Metadata") - before);
    eprintln!("{refreshes} metadata requests in {waited:?}: {e}");
    // Flat at 100 ms: ~80 in 8 s. Backing off 100, 200, 400, 800 ms, then 1 s: ~12.
    assert!(
        refreshes <= 25,
        "{refreshes} metadata requests in {waited:?} while the partition had no leader"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flush_delivers_lingering_records_and_drop_does_not_block() {
    let b = bootstrap();
    let topic = unique("flush");
    create_topic(&b, &topic, 3).await;
    let producer = Producer::new(&config(&b, &[("linger.ms", "60000")]))
        .await
        .unwrap();
    let mut futs: Vec<DeliveryFuture> = Vec::new();
    for i in 0..100 {
        futs.push(
            producer
                .send(
                    ProducerRecord::new(topic.as_str())
                        .key(format!("k{i}"))
                        .value("v"),
                )
                .await
                .unwrap(),
        );
    }
    assert!(
        futs.iter().all(|f| !f.is_done()),
        "linger 60 s: nothing sent yet"
    );
    producer.flush().await;
    assert!(futs.iter().all(|f| f.is_done()));
    for f in futs {
        f.await.unwrap();
    }
    // Dropping the last handle with records pending: they are still delivered.
    let f = producer
        .send(ProducerRecord::new(topic.as_str()).value("after-drop"))
        .await
        .unwrap();
    drop(producer);
    let m = tokio::time::timeout(Duration::from_secs(90), f)
        .await
        .expect("delivered in the background")
        .unwrap();
    assert!(m.offset >= 0);
}

/// Tests that pause or restart the broker: a cluster of their own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backpressure_and_broker_restart_with_idempotence() {
    let cluster = tokio::task::spawn_blocking(|| {
        KafkaCluster::start(kafka_testkit::ClusterOptions {
            allow_external: false,
            ..Default::default()
        })
    })
    .await
    .unwrap()
    .expect("start own cluster");
    let cluster = std::sync::Arc::new(cluster);
    let b = cluster.bootstrap();

    // --- Backpressure: tiny buffer.memory, paused broker -> send waits, then times out.
    let topic = unique("pressure");
    create_topic(&b, &topic, 1).await;
    let producer = Producer::new(&config(
        &b,
        &[
            ("buffer.memory", "20000"),
            ("batch.size", "4000"),
            ("max.block.ms", "2000"),
            ("request.timeout.ms", "5000"),
            ("delivery.timeout.ms", "60000"),
        ],
    ))
    .await
    .unwrap();
    producer
        .send_and_wait(ProducerRecord::new(topic.as_str()).value("warm-up"))
        .await
        .unwrap();
    let c = cluster.clone();
    tokio::task::spawn_blocking(move || c.pause(1))
        .await
        .unwrap()
        .unwrap();
    let mut accepted = Vec::new();
    let err = loop {
        match producer
            .send(ProducerRecord::new(topic.as_str()).value(vec![7u8; 1000]))
            .await
        {
            Ok(f) => accepted.push(f),
            Err(e) => break e,
        }
        assert!(accepted.len() < 1000, "buffer.memory never filled");
    };
    assert!(
        matches!(&err, Error::Timeout { in_flight: false, what, .. } if what.contains("buffer.memory")),
        "{err:?}"
    );
    assert!(
        !accepted.is_empty() && accepted.len() < 60,
        "{}",
        accepted.len()
    );
    let c = cluster.clone();
    tokio::task::spawn_blocking(move || c.resume(1))
        .await
        .unwrap()
        .unwrap();
    for f in accepted {
        f.await.unwrap();
    }
    producer.close(Duration::from_secs(30)).await.unwrap();

    // --- Broker restart in the middle of 100,000 idempotent sends.
    let topic = unique("restart");
    create_topic(&b, &topic, 3).await;
    let producer = Producer::new(&config(
        &b,
        &[
            ("enable.idempotence", "true"),
            ("linger.ms", "5"),
            ("request.timeout.ms", "10000"),
            ("delivery.timeout.ms", "120000"),
        ],
    ))
    .await
    .unwrap();
    let n = 100_000usize;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(usize, DeliveryFuture)>();
    let collector = tokio::spawn(async move {
        let mut acked = Vec::new();
        let mut failed = 0usize;
        while let Some((i, f)) = rx.recv().await {
            match f.await {
                Ok(m) => acked.push((i, m.partition, m.offset)),
                Err(_) => failed += 1,
            }
        }
        (acked, failed)
    });
    let mut restart = None;
    for i in 0..n {
        if i == n / 3 {
            let c = cluster.clone();
            restart = Some(tokio::task::spawn_blocking(move || c.restart(1)));
        }
        let f = producer
            .send(ProducerRecord::new(topic.as_str()).value(i.to_string()))
            .await
            .unwrap();
        tx.send((i, f)).unwrap();
        if i % 1000 == 0 {
            // Spread the sends over the restart.
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    restart.expect("restarted").await.unwrap().unwrap();
    drop(tx);
    producer.flush().await;
    let (acked, failed) = collector.await.unwrap();
    eprintln!("restart test: acked {} failed {failed}", acked.len());
    assert!(acked.len() > n / 2, "only {} acked", acked.len());
    producer.close(Duration::from_secs(30)).await.unwrap();

    // Read everything back.
    let reader = reader(&b).await;
    let mut seen: HashMap<usize, (i32, i64)> = HashMap::new();
    for p in 0..3 {
        let mut last: Option<usize> = None;
        for batch in fetch_batches(&reader, &topic, p).await {
            for r in batch.records {
                let v: usize = std::str::from_utf8(r.value.as_deref().unwrap())
                    .unwrap()
                    .parse()
                    .unwrap();
                assert!(
                    seen.insert(v, (p, r.offset)).is_none(),
                    "value {v} present twice"
                );
                if let Some(l) = last {
                    assert!(v > l, "partition {p}: {v} after {l}");
                }
                last = Some(v);
            }
        }
    }
    for (i, p, o) in &acked {
        assert_eq!(
            seen.get(i),
            Some(&(*p, *o)),
            "acked record {i} missing or moved"
        );
    }
}

/// Requests of `api` (e.g. `Produce`) sent so far by `p`, over all brokers (its statistics).
fn requests(p: &Producer, api: &str) -> u64 {
    p.statistics()
        .brokers
        .values()
        .map(|b| b.req.get(api).copied().unwrap_or(0))
        .sum()
}

/// Produce requests sent so far by `p`, over all brokers.
fn produce_requests(p: &Producer) -> u64 {
    requests(p, "Produce")
}

/// The sum of `f` over `p`'s statistics of the cluster's brokers (not bootstrap entries).
fn node_sum(p: &Producer, f: fn(&BrokerStats) -> u64) -> u64 {
    p.statistics()
        .brokers
        .values()
        .filter(|b| b.nodeid >= 0)
        .map(f)
        .sum()
}

/// Sends one record to each of `parts` and waits for them: metadata, the producer id and
/// every partition first, so that nothing but what a test sends next goes out. A partition
/// new to the broker may answer its first Produce with NOT_LEADER_OR_FOLLOWER for a while
/// after the topic was created (its log is made after CreateTopics returned), and the retry
/// was a second request (seen in CI).
async fn warm_partitions(p: &Producer, topic: &str, parts: impl IntoIterator<Item = i32>) {
    let mut warm = Vec::new();
    for part in parts {
        let rec = ProducerRecord::new(topic).partition(part).value("warm");
        warm.push(p.send(rec).await.unwrap());
    }
    p.flush().await;
    for w in warm {
        w.await.unwrap();
    }
}

/// A broker's partitions go over two connections (lanes, each partition's dealt in turn as
/// the producer meets them), so two Produce requests can be on the broker at once: batches of
/// partitions 0 and 1, made ready together by `flush`, go as two requests (one per lane)
/// where one connection would carry them as one, and the broker sees a second connection
/// from the producer. Records of each partition stay in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_brokers_partitions_go_over_two_lanes() {
    two_lanes_for(2, [0, 1]).await;
}

/// The lanes do not follow partition numbers: a broker that leads partitions 0 and 2 only
/// (as every broker of a two- or four-broker cluster leads partitions of one parity, Kafka
/// dealing leaders round robin) still sends them over two connections. With lane =
/// partition number mod 2 both went over one connection as one request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partitions_of_one_parity_go_over_two_lanes() {
    two_lanes_for(4, [0, 2]).await;
}

/// A producer's connections that closed for being idle (`connections.max.idle.ms`) are opened
/// again on the next send without a metadata refresh: nothing about the cluster changed.
/// (The sender asked for one whenever it found a lane's connection closed, whatever closed
/// it.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_close_asks_for_no_metadata() {
    let b = bootstrap();
    let topic = unique("idle");
    create_topic(&b, &topic, 2).await;
    let p = Producer::new(&config(
        &b,
        &[("linger.ms", "0"), ("connections.max.idle.ms", "1000")],
    ))
    .await
    .unwrap();
    warm_partitions(&p, &topic, [0, 1]).await;
    let metadata = |p: &Producer| requests(p, "Metadata");
    let connects = |p: &Producer| node_sum(p, |b| b.connects);
    let disconnects = |p: &Producer| node_sum(p, |b| b.disconnects);
    for round in 0..2 {
        // Both lanes' connections (and the cluster's others) close while idle.
        let (closed, t0) = (disconnects(&p), std::time::Instant::now());
        while disconnects(&p) < closed + 2 {
            assert!(
                t0.elapsed() < Duration::from_secs(20),
                "round {round}: the idle connections never closed"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        let (before, connected) = (metadata(&p), connects(&p));
        warm_partitions(&p, &topic, [0, 1]).await;
        assert!(
            connects(&p) >= connected + 2,
            "round {round}: both lanes connected again ({} -> {})",
            connected,
            connects(&p)
        );
        // A refresh the sender asks for runs on its own task: give it time to show.
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(
            metadata(&p),
            before,
            "round {round}: Metadata requests after sending over idle-closed connections"
        );
    }
    p.close(Duration::from_secs(10)).await.unwrap();
}

/// Sends 20 records to each of `parts` (of a new topic of `partitions`) made ready at once
/// by `flush` and asserts two connections, two Produce requests and each partition's order.
async fn two_lanes_for(partitions: i32, parts: [i32; 2]) {
    let b = bootstrap();
    let topic = unique("lanes");
    create_topic(&b, &topic, partitions).await;
    let p = Producer::new(&config(&b, &[("linger.ms", "60000")]))
        .await
        .unwrap();
    warm_partitions(&p, &topic, parts).await;
    let connects = |p: &Producer| node_sum(p, |b| b.connects);
    assert!(
        connects(&p) >= 2,
        "a connection per lane to the broker, got {}",
        connects(&p)
    );
    let before = produce_requests(&p);
    let mut futs = Vec::new();
    for i in 0..20u32 {
        for (k, part) in parts.into_iter().enumerate() {
            let rec = ProducerRecord::new(topic.as_str())
                .partition(part)
                .value(i.to_be_bytes().to_vec());
            futs.push((k, i, p.send(rec).await.unwrap()));
        }
    }
    p.flush().await;
    let mut last: [Option<i64>; 2] = [None, None];
    for (k, i, f) in futs {
        let md = f.await.unwrap();
        assert!(
            last[k].is_none_or(|o| md.offset > o),
            "record {i} of partition {} out of order",
            parts[k]
        );
        last[k] = Some(md.offset);
    }
    assert_eq!(
        produce_requests(&p) - before,
        2,
        "one Produce request per lane for partitions {parts:?}' batches made ready at once"
    );
    p.close(Duration::from_secs(10)).await.unwrap();
}

/// One Produce request carries several partitions' batches, as many as fit in
/// `max.request.size` (Java's meaning: the largest request), and never more. The shared
/// cluster has one broker, so every partition's leader is the same node, and the six
/// partitions of the topic are dealt to its two lanes (connections), three each. Per lane,
/// three ready batches of ~10.3 KB (10 records of 1000 B each, one per partition, all made
/// ready at once by `flush`) go as one request under the default cap, as 2 + 1 under a
/// 25,000-byte cap and one by one under 12,000: 2, 4 and 6 requests in all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn produce_requests_pack_batches_within_max_request_size() {
    let b = bootstrap();
    let topic = unique("pack");
    create_topic(&b, &topic, 6).await;
    for (cap, expected) in [("1048576", 2u64), ("25000", 4), ("12000", 6)] {
        let p = Producer::new(&config(
            &b,
            &[
                ("linger.ms", "60000"),
                ("max.request.size", cap),
                ("compression.type", "none"),
            ],
        ))
        .await
        .unwrap();
        warm_partitions(&p, &topic, 0..6).await;
        let before = produce_requests(&p);
        let mut futs = Vec::new();
        for part in 0..6 {
            for i in 0..10 {
                let rec = ProducerRecord::new(topic.as_str())
                    .partition(part)
                    .value(vec![b'a' + (i as u8); 1000]);
                futs.push(p.send(rec).await.unwrap());
            }
        }
        p.flush().await;
        for f in futs {
            f.await.unwrap();
        }
        assert_eq!(
            produce_requests(&p) - before,
            expected,
            "max.request.size={cap}: Produce requests for two lanes' three ~10.3 KB batches"
        );
        p.close(Duration::from_secs(10)).await.unwrap();
    }
}
