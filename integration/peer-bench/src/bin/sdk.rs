//! kafka-sdk side of the peer comparison: the same profiles through the public API
//! (`kafka_sdk::producer::Producer`, `kafka_sdk::consumer::Consumer`), plus `create-topic`
//! and `delete-topic` (kafka-sdk's `AdminClient`), used by the driver for a fresh topic per run.
//!
//! Producer API `sdk`: `send(record).await` per record (the first await only buffers), each
//! delivery future handed to a collector task awaiting them in order. Producer API `report`:
//! the same sends, each delivery future handed back with `report(send time)` to the
//! producer's delivery handler (`ProducerBuilder::delivery_handler`), which counts and
//! times the outcomes on the producer's sender task (as rust-rdkafka's and franz-go's
//! harnesses do with their delivery callbacks): no future and no collector per record.
//! Consumer APIs (feature `sdk-consumer`, turned on by the driver once
//! `kafka_sdk::consumer::Consumer` exists): `recv` (one `recv().await` per record) and
//! `batch` (`recv_batch`). Without the feature, consume prints `"status":"pending"`.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use kafka_sdk::admin::{AdminClient, NewTopic};
use kafka_sdk::producer::{DeliveryFuture, Producer, ProducerRecord};
use kafka_sdk::ClientConfig;
use peer_bench::{die, latency_histogram, Args, ConsumeSpec, ProduceResult, ProduceSpec};

/// What the delivery handler of API `report` counts.
struct Reported {
    acked: u64,
    failed: u64,
    first_error: Option<String>,
    hist: hdrhistogram::Histogram<u64>,
    timeline: Option<peer_bench::Timeline>,
}

async fn produce(s: &ProduceSpec, api: &str) -> ProduceResult {
    let report = match api {
        "sdk" => false,
        "report" => true,
        other => die(&format!("unknown producer API {other:?} (sdk, report)")),
    };
    let mut cfg = ClientConfig::new();
    cfg.set("bootstrap.servers", &s.brokers)
        .set("acks", &s.acks)
        .set("enable.idempotence", s.idempotent.to_string())
        .set(
            "max.in.flight.requests.per.connection",
            s.max_in_flight.to_string(),
        )
        .set("linger.ms", s.linger_ms.to_string())
        .set("batch.size", s.batch_size.to_string())
        .set("compression.type", &s.compression);
    // Extra settings for side experiments (not used by run.py): `SDK_BENCH_PROPS="k=v,k=v"`.
    for kv in std::env::var("SDK_BENCH_PROPS")
        .unwrap_or_default()
        .split(',')
    {
        if let Some((k, v)) = kv.split_once('=') {
            cfg.set(k.trim(), v.trim());
        }
    }
    for (k, v) in &s.extra {
        cfg.set(k, v);
    }
    let origin = SystemTime::now();
    let reported = std::sync::Arc::new(std::sync::Mutex::new(Reported {
        acked: 0,
        failed: 0,
        first_error: None,
        hist: latency_histogram(),
        timeline: peer_bench::Timeline::from_env(),
    }));
    let mut builder = Producer::builder(&cfg);
    if report {
        let state = reported.clone();
        // `opaque`: the send time in microseconds since `origin`.
        builder = builder.delivery_handler(std::sync::Arc::new(
            move |r: &kafka_sdk::producer::DeliveryReport<'_>| {
                let now = SystemTime::now()
                    .duration_since(origin)
                    .map_or(0, |d| d.as_micros() as u64);
                let mut st = state.lock().unwrap_or_else(|p| p.into_inner());
                match r.result {
                    Ok(_) => {
                        st.acked += 1;
                        let us = now.saturating_sub(r.opaque);
                        let _ = st.hist.record(us.max(1));
                        if let Some(t) = &mut st.timeline {
                            t.record(r.opaque, us);
                        }
                    }
                    Err(e) => {
                        st.failed += 1;
                        st.first_error.get_or_insert_with(|| e.to_string());
                    }
                }
            },
        ));
    }
    let producer = builder
        .build()
        .await
        .unwrap_or_else(|e| die(&format!("creating Producer: {e}")));
    let values: Vec<Bytes> = s.values.iter().map(|v| Bytes::copy_from_slice(v)).collect();
    let topic: std::sync::Arc<str> = s.topic.as_str().into();

    // Latency is measured from the record's timestamp, taken here (one clock read) and
    // given to the record, to the acknowledgement (a second read), as franz-go's bench does
    // with the timestamp its client stamps on the record: two clock reads per record for
    // both, not three.
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(SystemTime, DeliveryFuture)>();
    // The collector runs outside tokio's coop budget (same for every future-based client):
    // with it, a turn drained at most the budget's 128 outcomes, and against a sending loop
    // that yields as often (kafka-sdk's `send` takes part in the budget) an unpaced run's
    // backlog never shrank (bench-sdk, C-lz4 / 1 KiB: 1.46M outcomes queued, ~90 MB of
    // harness memory counted as the client's RSS, and the lag counted as latency).
    // `BENCH_DEBUG_QUEUE=1` prints the largest backlog seen.
    let collector = tokio::spawn(tokio::task::unconstrained(async move {
        let mut hist = latency_histogram();
        let mut timeline = peer_bench::Timeline::from_env();
        let (mut acked, mut failed, mut first_error) = (0u64, 0u64, None);
        let mut maxlen = 0usize;
        while let Some((t0, fut)) = rx.recv().await {
            maxlen = maxlen.max(rx.len());
            match fut.await {
                Ok(_) => {
                    acked += 1;
                    let us = t0.elapsed().map_or(0, |d| d.as_micros() as u64);
                    let _ = hist.record(us.max(1));
                    if let Some(t) = &mut timeline {
                        let sent = t0
                            .duration_since(origin)
                            .map_or(0, |d| d.as_micros() as u64);
                        t.record(sent, us);
                    }
                }
                Err(e) => {
                    failed += 1;
                    first_error.get_or_insert_with(|| e.to_string());
                }
            }
        }
        if let Some(t) = &timeline {
            t.print("kafka-sdk");
        }
        if std::env::var_os("BENCH_DEBUG_QUEUE").is_some() {
            eprintln!("collector queue max {maxlen}");
        }
        (acked, failed, hist, first_error)
    }));

    // Warm-up: one record acknowledged before the clock starts (as for every client).
    producer
        .send_and_wait(ProducerRecord::new(topic.clone()).value(values[0].clone()))
        .await
        .unwrap_or_else(|e| die(&format!("warm-up: {e}")));
    tokio::time::sleep(peer_bench::start_delay()).await;
    let started = Instant::now();
    let phase = |rate: u64, range: std::ops::Range<u64>| {
        let (tx, producer, values, topic) = (tx.clone(), &producer, &values, &topic);
        async move {
            let pacer = peer_bench::Pacer::new(rate);
            let (mut sent, mut failed, mut error) = (0u64, 0u64, None::<String>);
            for (n, i) in range.enumerate() {
                if let Some(due) = pacer.due(n as u64) {
                    if due > Instant::now() {
                        tokio::time::sleep_until(due.into()).await;
                    }
                }
                let value = values[(i % values.len() as u64) as usize].clone();
                let t0 = SystemTime::now();
                let ms = t0
                    .duration_since(UNIX_EPOCH)
                    .map_or(0, |d| d.as_millis() as i64);
                let mut rec = ProducerRecord::new(topic.clone())
                    .value(value)
                    .timestamp(ms);
                if let Some(k) = s.key(i) {
                    rec = rec.key(k);
                }
                match producer.send(rec).await {
                    Ok(fut) if report => {
                        sent += 1;
                        fut.report(
                            t0.duration_since(origin)
                                .map_or(0, |d| d.as_micros() as u64),
                        );
                    }
                    Ok(fut) => {
                        sent += 1;
                        let _ = tx.send((t0, fut));
                    }
                    Err(e) => {
                        failed += 1;
                        error.get_or_insert_with(|| e.to_string());
                    }
                }
            }
            (sent, failed, error)
        }
    };
    let (n, send_failed, send_error) = phase(s.rate, 0..s.count).await;
    let mut sent = 1 + n;
    producer.flush().await;
    // The burst's duration (in a burst-then-idle run, the idle phase follows).
    let mut secs = started.elapsed().as_secs_f64();
    let (mut send_failed, mut send_error) = (send_failed, send_error);
    let mut burst_end_secs = None;
    if s.idle_secs > 0 {
        burst_end_secs = Some(peer_bench::secs_since_process_start());
        let (n, f, e) = phase(s.idle_rate, s.count..s.count + s.idle_count()).await;
        sent += n;
        send_failed += f;
        send_error = send_error.or(e);
        producer.flush().await;
    }
    drop(tx);
    let (mut acked, mut failed, mut hist, mut first_error) = collector.await.expect("collector");
    if report {
        // `flush` returned: every batch completed, every report was made.
        let mut st = reported.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(t) = &st.timeline {
            t.print("kafka-sdk");
        }
        acked = st.acked;
        failed = st.failed;
        first_error = st.first_error.take();
        hist = std::mem::replace(&mut st.hist, latency_histogram());
    }
    if burst_end_secs.is_none() {
        secs = started.elapsed().as_secs_f64();
    }
    let _ = producer.close(Duration::from_secs(10)).await;
    ProduceResult {
        client: "kafka-sdk".into(),
        api: if report { "report" } else { "sdk" }.into(),
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

#[cfg(not(feature = "sdk-consumer"))]
async fn consume(_s: &ConsumeSpec, _api: &str) -> String {
    peer_bench::pending_json(
        "kafka-sdk",
        "consume",
        "kafka_sdk::consumer::Consumer is not merged yet (build with --features sdk-consumer once it is)",
    )
}

/// HOOK: written against the consumer branch's API (`Consumer::new`, `assign`/`subscribe`,
/// `recv`, `recv_batch`); compiled only with `--features sdk-consumer`.
#[cfg(feature = "sdk-consumer")]
async fn consume(s: &ConsumeSpec, api: &str) -> String {
    use kafka_sdk::consumer::{Consumer, Offset};
    use kafka_sdk::TopicPartition;
    let mut cfg = ClientConfig::new();
    cfg.set("bootstrap.servers", &s.brokers)
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest");
    if let Some(g) = &s.group {
        cfg.set("group.id", g);
    }
    for (k, v) in &s.extra {
        cfg.set(k, v);
    }
    let created = Instant::now();
    let consumer = Consumer::new(&cfg)
        .await
        .unwrap_or_else(|e| die(&format!("creating Consumer: {e}")));
    let handle = consumer.handle();
    match &s.group {
        Some(_) => handle
            .subscribe(&[s.topic.as_str()])
            .unwrap_or_else(|e| die(&format!("subscribe: {e}"))),
        None => handle
            .assign(
                (0..s.partitions)
                    .map(|p| (TopicPartition::new(s.topic.as_str(), p), Offset::Beginning))
                    .collect(),
            )
            .unwrap_or_else(|e| die(&format!("assign: {e}"))),
    }
    let (mut received, mut bytes, mut first, mut last) = (0u64, 0u64, None, None);
    let mut ends = peer_bench::Ends::default();
    let track = s.idle_exit_ms > 0;
    let mut note = |m: kafka_sdk::Result<kafka_sdk::consumer::Message>,
                    received: &mut u64,
                    last: &mut Option<Instant>| match m {
        Ok(m) => {
            s.note_time(&mut first, last);
            if track {
                ends.note(m.partition(), m.offset());
            }
            *received += 1;
            bytes += m.payload().map_or(0, |p| p.len()) as u64;
        }
        Err(e) => eprintln!("consume error: {e}"),
    };
    while !s.done(received, last, created) {
        match api {
            "recv" if s.idle_exit_ms > 0 => {
                match tokio::time::timeout(Duration::from_millis(100), consumer.recv()).await {
                    Ok(m) => note(m, &mut received, &mut last),
                    Err(_) => continue,
                }
            }
            "recv" => note(consumer.recv().await, &mut received, &mut last),
            _ => match consumer
                .recv_batch(
                    (s.count - received).min(10_000) as usize,
                    Duration::from_millis(100),
                )
                .await
            {
                Ok(v) => {
                    for m in v {
                        note(Ok(m), &mut received, &mut last);
                    }
                }
                Err(e) => note(Err(e), &mut received, &mut last),
            },
        }
    }
    let first = first.unwrap_or(created);
    let secs = s.reading_secs(first, last);
    // Burst-then-idle: keep polling the drained topic (the same calls as the burst's).
    let idle = match s.idle_phase() {
        Some((at, until)) => {
            let mut n = 0u64;
            while Instant::now() < until {
                match api {
                    "recv" => {
                        if let Ok(m) =
                            tokio::time::timeout(Duration::from_millis(100), consumer.recv()).await
                        {
                            n += u64::from(m.is_ok());
                        }
                    }
                    _ => {
                        if let Ok(v) = consumer
                            .recv_batch(10_000, Duration::from_millis(100))
                            .await
                        {
                            n += v.len() as u64;
                        }
                    }
                }
            }
            Some((at, n))
        }
        None => None,
    };
    let r = peer_bench::ConsumeResult {
        client: "kafka-sdk".into(),
        api: api.into(),
        received,
        bytes,
        secs,
        startup_secs: (first - created).as_secs_f64(),
        ends,
        idle,
    };
    if s.commit_at_exit {
        if let Err(e) = handle.commit(kafka_sdk::consumer::CommitMode::Sync).await {
            eprintln!("commit at exit: {e}");
        }
    }
    let _ = consumer.close().await;
    r.to_json()
}

async fn create_topic(a: &Args) -> String {
    let mut cfg = ClientConfig::new();
    cfg.set("bootstrap.servers", a.str("brokers"));
    let admin = AdminClient::new(&cfg)
        .await
        .unwrap_or_else(|e| die(&format!("admin: {e}")));
    let topic = a.str("topic");
    admin
        .create_topic(NewTopic::new(
            &topic,
            a.num("partitions", 3),
            a.num("replication-factor", 1),
        ))
        .await
        .unwrap_or_else(|e| die(&format!("creating topic {topic}: {e}")));
    format!(
        "{{\"status\":\"ok\",\"topic\":{}}}",
        peer_bench::json_str(&topic)
    )
}

async fn delete_topic(a: &Args) -> String {
    let mut cfg = ClientConfig::new();
    cfg.set("bootstrap.servers", a.str("brokers"));
    let admin = AdminClient::new(&cfg)
        .await
        .unwrap_or_else(|e| die(&format!("admin: {e}")));
    let topic = a.str("topic");
    let results = admin
        .delete_topics(&[topic.as_str()])
        .await
        .unwrap_or_else(|e| die(&format!("deleting topic {topic}: {e}")));
    for (name, r) in results {
        if let Err(e) = r {
            die(&format!("deleting topic {name}: {e}"));
        }
    }
    format!(
        "{{\"status\":\"ok\",\"deleted\":{}}}",
        peer_bench::json_str(&topic)
    )
}

/// `BENCH_BATCH_TIMING=1` (not used by run.py): kafka-sdk's `batch acknowledged` debug events
/// (target `kafka_sdk::producer::timing`: per batch, records, bytes, attempts, `queued_us`
/// from its first record to its last Produce request, `request_us` that request's round
/// trip, `total_us`) printed to stderr as `timing <secs since process start> <fields>`, to
/// see whether a latency tail sits before the request or in the broker's answer.
/// `BENCH_FETCH_TIMING=1` does the same for the consumer's `fetch answered` events (target
/// `kafka_sdk::consumer::timing`: per fetch, partitions, `max_bytes`, record `bytes`,
/// `held_us` from the previous answer to this request, `request_us` its round trip).
fn print_timing(targets: &[&'static str]) {
    use std::fmt::Write as _;
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::Layer as _;
    struct Lines;
    impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Lines {
        fn on_event(&self, e: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
            let mut line = String::new();
            e.record(&mut |f: &tracing::field::Field, v: &dyn std::fmt::Debug| {
                if f.name() != "message" {
                    let _ = write!(line, " {}={:?}", f.name(), v);
                }
            });
            eprintln!("timing {:.3}{line}", peer_bench::secs_since_process_start());
        }
    }
    let filter = targets
        .iter()
        .fold(tracing_subscriber::filter::Targets::new(), |f, t| {
            f.with_target(*t, tracing::Level::DEBUG)
        });
    let subscriber = tracing_subscriber::registry().with(Lines.with_filter(filter));
    let _ = tracing::subscriber::set_global_default(subscriber);
}

#[tokio::main]
async fn main() {
    let targets: Vec<&'static str> = [
        ("BENCH_BATCH_TIMING", "kafka_sdk::producer::timing"),
        ("BENCH_FETCH_TIMING", "kafka_sdk::consumer::timing"),
    ]
    .into_iter()
    .filter(|(var, _)| std::env::var_os(var).is_some())
    .map(|(_, target)| target)
    .collect();
    if !targets.is_empty() {
        print_timing(&targets);
    }
    let args = Args::parse();
    let line = match args.command.as_str() {
        "produce" => produce(&ProduceSpec::from_args(&args), &args.str_or("api", "sdk"))
            .await
            .to_json(),
        "consume" => consume(&ConsumeSpec::from_args(&args), &args.str_or("api", "batch")).await,
        "create-topic" => create_topic(&args).await,
        "delete-topic" => delete_topic(&args).await,
        other => die(&format!("unknown command {other:?}")),
    };
    println!("{line}");
}
