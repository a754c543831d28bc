//! confluent-kafka (Confluent's native Rust client, a translation of the Java client) side of
//! the peer comparison. Same command line and JSON line as the other binaries (see
//! `peer_bench`, lib.rs).
//!
//! Producer API `send`: `KafkaProducer<Vec<u8>, Vec<u8>>`'s byte-slice `send(record, None)`
//! (the record's bytes are written straight into the batch, no serializer, no copy), whose
//! first await only enqueues and returns a `KafkaFuture`; each future is handed to a
//! collector task that awaits `get()` in order (the same shape as the kafka-sdk and
//! FutureProducer harnesses).
//! Consumer API `poll`: `KafkaConsumer<Bytes, Bytes>` (`BytesDeserializer`, zero-copy)
//! with `poll(100 ms)` in a loop; `group.protocol=consumer` always (the crate supports only
//! the KIP-848 protocol; without a group the partitions are assigned from offset 0 through
//! `auto.offset.reset=earliest`).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use bytes::Bytes;
use confluent_kafka::common::serialization::{ByteArraySerializer, BytesDeserializer};
use confluent_kafka::common::{KafkaFuture, TopicPartition};
use confluent_kafka::consumer::{Consumer, ConsumerConfig, KafkaConsumer};
use confluent_kafka::producer::{
    KafkaProducer, Producer, ProducerConfig, ProducerRecord, RecordMetadata,
};
use peer_bench::{
    die, latency_histogram, secs_since_process_start, Args, ConsumeResult, ConsumeSpec, Pacer,
    ProduceResult, ProduceSpec,
};

type Bp = KafkaProducer<Vec<u8>, Vec<u8>>;

fn producer_config(s: &ProduceSpec) -> ProducerConfig {
    let mut props: HashMap<String, String> = [
        ("bootstrap.servers", s.brokers.clone()),
        ("acks", s.acks.clone()),
        ("enable.idempotence", s.idempotent.to_string()),
        (
            "max.in.flight.requests.per.connection",
            s.max_in_flight.to_string(),
        ),
        ("linger.ms", s.linger_ms.to_string()),
        ("batch.size", s.batch_size.to_string()),
        ("compression.type", s.compression.clone()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    for (k, v) in &s.extra {
        props.insert(k.clone(), v.clone());
    }
    ProducerConfig::new(&props).unwrap_or_else(|e| die(&format!("producer config: {e}")))
}

/// Sends record `i`; `Err` is the send's own error (not the delivery's).
async fn send_one(p: &Bp, s: &ProduceSpec, i: u64) -> Result<KafkaFuture<RecordMetadata>, String> {
    let key = s.key(i);
    let rec =
        ProducerRecord::<&[u8], &[u8]>::with_key(s.topic.clone(), key.as_deref(), Some(s.value(i)));
    p.send(rec, None).await.map_err(|e| e.to_string())
}

async fn produce(s: &ProduceSpec) -> ProduceResult {
    let p: Bp = KafkaProducer::new(
        producer_config(s),
        ByteArraySerializer::new(),
        ByteArraySerializer::new(),
    )
    .unwrap_or_else(|e| die(&format!("creating KafkaProducer: {e}")));
    let (tx, mut rx) =
        tokio::sync::mpsc::unbounded_channel::<(Instant, KafkaFuture<RecordMetadata>)>();
    // The collector runs outside tokio's coop budget (same for every future-based client):
    // with it, a turn drained at most the budget's 128 outcomes, and against a sending loop
    // that yields as often (kafka-sdk's `send` takes part in the budget) an unpaced run's
    // backlog never shrank (bench-sdk, C-lz4 / 1 KiB: 1.46M outcomes queued, ~90 MB of
    // harness memory counted as the client's RSS, and the lag counted as latency).
    let collector = tokio::spawn(tokio::task::unconstrained(async move {
        let mut hist = latency_histogram();
        let (mut acked, mut failed, mut first_error) = (0u64, 0u64, None);
        while let Some((t0, fut)) = rx.recv().await {
            match fut.get().await {
                Ok(_) => {
                    acked += 1;
                    let _ = hist.record((t0.elapsed().as_micros() as u64).max(1));
                }
                Err(e) => {
                    failed += 1;
                    first_error.get_or_insert_with(|| e.to_string());
                }
            }
        }
        (acked, failed, hist, first_error)
    }));
    // Warm-up: one record acknowledged before the clock starts (connection, producer id).
    let warm = send_one(&p, s, 0)
        .await
        .unwrap_or_else(|e| die(&format!("warm-up send: {e}")));
    warm.get()
        .await
        .unwrap_or_else(|e| die(&format!("warm-up: {e}")));
    tokio::time::sleep(peer_bench::start_delay()).await;

    let started = Instant::now();
    let (mut sent, mut send_failed, mut send_error) = (1u64, 0u64, None);
    let phase = |rate: u64, range: std::ops::Range<u64>| {
        let tx = tx.clone();
        let p = &p;
        async move {
            let pacer = Pacer::new(rate);
            let (mut sent, mut failed, mut error) = (0u64, 0u64, None::<String>);
            for (n, i) in range.enumerate() {
                if let Some(due) = pacer.due(n as u64) {
                    if due > Instant::now() {
                        tokio::time::sleep_until(due.into()).await;
                    }
                }
                let t0 = Instant::now();
                match send_one(p, s, i).await {
                    Ok(fut) => {
                        sent += 1;
                        let _ = tx.send((t0, fut));
                    }
                    Err(e) => {
                        failed += 1;
                        error.get_or_insert(e);
                    }
                }
            }
            (sent, failed, error)
        }
    };
    let (n, f, e) = phase(s.rate, 0..s.count).await;
    sent += n;
    send_failed += f;
    send_error = send_error.or(e);
    p.flush().await.unwrap_or_else(|e| eprintln!("flush: {e}"));
    let secs = started.elapsed().as_secs_f64();
    let mut burst_end_secs = None;
    if s.idle_secs > 0 {
        burst_end_secs = Some(secs_since_process_start());
        let (n, f, e) = phase(s.idle_rate, s.count..s.count + s.idle_count()).await;
        sent += n;
        send_failed += f;
        send_error = send_error.or(e);
        p.flush().await.unwrap_or_else(|e| eprintln!("flush: {e}"));
    }
    drop(tx);
    let (acked, failed, hist, first_error) = collector.await.expect("collector");
    let _ = p.close_with_timeout(Duration::from_secs(10)).await;
    ProduceResult {
        client: "confluent-kafka".into(),
        api: "send".into(),
        sent,
        acked: acked + 1, // + the warm-up record
        failed: failed + send_failed,
        secs,
        size: s.size,
        first_error: send_error.or(first_error),
        hist: Some(hist),
        burst_end_secs,
        idle_records: if s.idle_secs > 0 { s.idle_count() } else { 0 },
    }
}

async fn consume(s: &ConsumeSpec) -> ConsumeResult {
    let mut props: HashMap<String, String> = [
        ("bootstrap.servers", s.brokers.clone()),
        ("group.protocol", "consumer".to_string()),
        ("enable.auto.commit", "false".to_string()),
        ("auto.offset.reset", "earliest".to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    if let Some(g) = &s.group {
        props.insert("group.id".into(), g.clone());
    }
    for (k, v) in &s.extra {
        props.insert(k.clone(), v.clone());
    }
    let created = Instant::now();
    let config =
        ConsumerConfig::new(&props).unwrap_or_else(|e| die(&format!("consumer config: {e}")));
    let mut c: KafkaConsumer<Bytes, Bytes> =
        KafkaConsumer::new(config, BytesDeserializer::new(), BytesDeserializer::new())
            .unwrap_or_else(|e| die(&format!("creating KafkaConsumer: {e}")));
    match &s.group {
        Some(_) => c
            .subscribe_with_topics(vec![s.topic.clone()])
            .await
            .unwrap_or_else(|e| die(&format!("subscribe: {e}"))),
        None => c
            .assign(
                (0..s.partitions)
                    .map(|p| TopicPartition::new(s.topic.as_str(), p))
                    .collect(),
            )
            .await
            .unwrap_or_else(|e| die(&format!("assign: {e}"))),
    }
    let (mut received, mut bytes, mut first, mut last) = (0u64, 0u64, None, None);
    let mut ends = peer_bench::Ends::default();
    let track = s.idle_exit_ms > 0;
    while !s.done(received, last, created) {
        match c.poll(Duration::from_millis(100)).await {
            Ok(records) => {
                if !records.is_empty() {
                    let now = Instant::now();
                    first.get_or_insert(now);
                    last = Some(now);
                }
                for r in &records {
                    received += 1;
                    if track {
                        ends.note(r.partition(), r.offset());
                    }
                    bytes += r.value().map_or(0, |v| v.len()) as u64;
                }
            }
            Err(e) => eprintln!("poll error: {e}"),
        }
    }
    let first = first.unwrap_or(created);
    let secs = s.reading_secs(first, last);
    // Burst-then-idle: keep polling the drained topic.
    let idle = match s.idle_phase() {
        Some((at, until)) => {
            let mut n = 0u64;
            while Instant::now() < until {
                if let Ok(records) = c.poll(Duration::from_millis(100)).await {
                    n += (&records).into_iter().count() as u64;
                }
            }
            Some((at, n))
        }
        None => None,
    };
    let r = ConsumeResult {
        client: "confluent-kafka".into(),
        api: "poll".into(),
        received,
        bytes,
        secs,
        startup_secs: (first - created).as_secs_f64(),
        ends,
        idle,
    };
    if s.commit_at_exit {
        if let Err(e) = c.commit_sync().await {
            eprintln!("commit at exit: {e}");
        }
    }
    let _ = tokio::time::timeout(Duration::from_secs(30), c.close()).await;
    r
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let line = match args.command.as_str() {
        "produce" => produce(&ProduceSpec::from_args(&args)).await.to_json(),
        "consume" => consume(&ConsumeSpec::from_args(&args)).await.to_json(),
        "version" => "{\"confluent-kafka\":\"1.0.0\"}".to_string(),
        other => die(&format!("unknown command {other:?}")),
    };
    println!("{line}");
}
