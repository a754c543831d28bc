//! rust-rdkafka side of the peer comparison (librdkafka built from source by `cmake-build`).
//!
//! Producer APIs (`--api`): `future` (FutureProducer: `send_result`, delivery futures awaited
//! by a collector task), `base` (BaseProducer polled from the sending thread), `threaded`
//! (ThreadedProducer, librdkafka's callbacks served by its polling thread).
//! Consumer APIs: `stream` (StreamConsumer), `base` (BaseConsumer polled in a loop).
//! See `peer_bench` (lib.rs) for the command line and output.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures::StreamExt;
use hdrhistogram::Histogram;
use peer_bench::{
    die, latency_histogram, secs_since_process_start, Args, ConsumeResult, ConsumeSpec, Pacer,
    ProduceResult, ProduceSpec, Timeline,
};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer, StreamConsumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{
    BaseProducer, BaseRecord, DeliveryResult, FutureProducer, FutureRecord, Producer,
    ProducerContext, ThreadedProducer,
};
use rdkafka::{ClientContext, Message, Offset, TopicPartitionList};

fn producer_config(s: &ProduceSpec) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", &s.brokers)
        .set("acks", &s.acks)
        .set("enable.idempotence", s.idempotent.to_string())
        .set(
            "max.in.flight.requests.per.connection",
            s.max_in_flight.to_string(),
        )
        .set("linger.ms", s.linger_ms.to_string())
        .set("batch.size", s.batch_size.to_string())
        .set("compression.type", &s.compression);
    for (k, v) in &s.extra {
        c.set(k, v);
    }
    c
}

/// The record's send time, read once per record: its latency starts there and its
/// timestamp is that time, as in the kafka-sdk and franz-go rows (two clock reads per record
/// in every row, the second at the acknowledgement; a record without a timestamp would make
/// the client read the clock a third time: ~5 % of a row's CPU on this machine).
#[derive(Clone, Copy)]
struct Clock {
    origin: SystemTime,
    origin_ms: i64,
}

impl Clock {
    fn new() -> Clock {
        let origin = SystemTime::now();
        let origin_ms = origin
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        Clock { origin, origin_ms }
    }

    /// Now, in ns since the origin.
    fn now_ns(&self) -> u64 {
        SystemTime::now()
            .duration_since(self.origin)
            .map_or(0, |d| d.as_nanos() as u64)
    }

    /// The timestamp (ms since the epoch) of a time in ns since the origin.
    fn timestamp(&self, ns: u64) -> i64 {
        self.origin_ms + (ns / 1_000_000) as i64
    }
}

/// Delivery callback state of the BaseProducer/ThreadedProducer runs. The opaque of each
/// record is its send time in ns since the clock's origin (no allocation per record).
struct Ctx {
    clock: Clock,
    acked: AtomicU64,
    failed: AtomicU64,
    hist: Mutex<Histogram<u64>>,
    first_error: Mutex<Option<String>>,
    /// `BENCH_TIMELINE_MS` (see `peer_bench::Timeline`).
    timeline: Mutex<Option<Timeline>>,
    /// The last statistics JSON (with `-X statistics.interval.ms=...`; for `BENCH_STALL_SECS`).
    last_stats: Mutex<Option<String>>,
}

impl ClientContext for Ctx {
    fn stats_raw(&self, statistics: &[u8]) {
        *self.last_stats.lock().unwrap() = Some(String::from_utf8_lossy(statistics).into_owned());
    }
}

/// `BENCH_STALL_SECS` (see `peer_bench::watch_stalls`) for a callback-based producer.
fn watch(ctx: &std::sync::Arc<Ctx>) {
    let (a, b) = (ctx.clone(), ctx.clone());
    peer_bench::watch_stalls(
        move || a.acked.load(Ordering::Relaxed) + a.failed.load(Ordering::Relaxed),
        move || {
            b.last_stats
                .lock()
                .unwrap()
                .clone()
                .unwrap_or_else(|| "no statistics (set -X statistics.interval.ms)".into())
        },
    );
}

impl ProducerContext for Ctx {
    type DeliveryOpaque = usize;

    fn delivery(&self, result: &DeliveryResult<'_>, sent_at_ns: usize) {
        match result {
            Ok(_) => {
                self.acked.fetch_add(1, Ordering::Relaxed);
                let now = self.clock.now_ns();
                let us = (now.saturating_sub(sent_at_ns as u64) / 1000).max(1);
                let _ = self.hist.lock().unwrap().record(us);
                if let Some(t) = self.timeline.lock().unwrap().as_mut() {
                    t.record(sent_at_ns as u64 / 1000, us);
                }
            }
            Err((e, _)) => {
                self.failed.fetch_add(1, Ordering::Relaxed);
                self.first_error
                    .lock()
                    .unwrap()
                    .get_or_insert_with(|| e.to_string());
            }
        }
    }
}

fn new_ctx() -> Ctx {
    Ctx {
        clock: Clock::new(),
        acked: AtomicU64::new(0),
        failed: AtomicU64::new(0),
        hist: Mutex::new(latency_histogram()),
        first_error: Mutex::new(None),
        timeline: Mutex::new(Timeline::from_env()),
        last_stats: Mutex::new(None),
    }
}

fn is_queue_full(e: &KafkaError) -> bool {
    *e == KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull)
}

/// `sent` and the acknowledged count include the warm-up record; the clock and the latency
/// histogram do not.
fn finish(ctx: &Ctx, api: &str, s: &ProduceSpec, sent: u64, started: Instant) -> ProduceResult {
    if let Some(t) = ctx.timeline.lock().unwrap().as_ref() {
        t.print(&format!("rdkafka-{api}"));
    }
    ProduceResult {
        client: "rdkafka".into(),
        api: api.into(),
        sent,
        acked: ctx.acked.load(Ordering::Relaxed),
        failed: ctx.failed.load(Ordering::Relaxed) + (s.count + 1 - sent),
        secs: started.elapsed().as_secs_f64(),
        burst_end_secs: None,
        idle_records: 0,
        size: s.size,
        first_error: ctx.first_error.lock().unwrap().clone(),
        hist: Some(ctx.hist.lock().unwrap().clone()),
    }
}

/// BaseProducer, polled from the sending thread: `poll(0)` after every send (each poll serves
/// one event), and while the queue is full or the next paced record is not due yet.
fn produce_base(s: &ProduceSpec) -> ProduceResult {
    let p: BaseProducer<Ctx> = producer_config(s)
        .create_with_context(new_ctx())
        .unwrap_or_else(|e| die(&format!("creating BaseProducer: {e}")));
    let ctx = p.context().clone();
    watch(&ctx);
    // Warm-up: one record acknowledged before the clock starts (connection, producer id).
    p.send(
        BaseRecord::<(), [u8], usize>::with_opaque_to(&s.topic, 0).payload(s.values[0].as_slice()),
    )
    .unwrap_or_else(|(e, _)| die(&format!("warm-up send: {e}")));
    p.flush(Duration::from_secs(60))
        .unwrap_or_else(|e| die(&format!("warm-up flush: {e}")));
    std::thread::sleep(peer_bench::start_delay());
    ctx.hist.lock().unwrap().reset();
    let started = Instant::now();
    let mut sent = 1 + base_send_range(&p, &ctx, s, s.rate, 0..s.count);
    p.flush(Duration::from_secs(120))
        .unwrap_or_else(|e| eprintln!("flush: {e}"));
    p.poll(Duration::ZERO);
    let secs = started.elapsed().as_secs_f64();
    let mut burst_end_secs = None;
    if s.idle_secs > 0 {
        burst_end_secs = Some(secs_since_process_start());
        sent += base_send_range(&p, &ctx, s, s.idle_rate, s.count..s.count + s.idle_count());
        p.flush(Duration::from_secs(120))
            .unwrap_or_else(|e| eprintln!("flush: {e}"));
        p.poll(Duration::ZERO);
    }
    let mut r = finish(&ctx, "base", s, sent, started);
    r.secs = secs;
    if let Some(t) = burst_end_secs {
        r.burst_end_secs = Some(t);
        r.idle_records = s.idle_count();
        // `finish` counts records of the burst only as expected.
        r.failed = ctx.failed.load(Ordering::Relaxed) + (s.count + s.idle_count() + 1 - sent);
    }
    r
}

/// Sends records `range` (paced at `rate`, 0 = as fast as possible) through a BaseProducer
/// polled from this thread; returns how many were sent.
fn base_send_range(
    p: &BaseProducer<Ctx>,
    ctx: &Ctx,
    s: &ProduceSpec,
    rate: u64,
    range: std::ops::Range<u64>,
) -> u64 {
    let pacer = Pacer::new(rate);
    let mut sent = 0;
    for (n, i) in range.enumerate() {
        if let Some(due) = pacer.due(n as u64) {
            loop {
                let now = Instant::now();
                if now >= due {
                    break;
                }
                p.poll((due - now).min(Duration::from_millis(1)));
            }
        }
        let key = s.key(i);
        let t0 = ctx.clock.now_ns();
        let mut rec = BaseRecord::<[u8], [u8], usize>::with_opaque_to(&s.topic, t0 as usize)
            .payload(s.value(i))
            .timestamp(ctx.clock.timestamp(t0));
        if let Some(k) = &key {
            rec = rec.key(k.as_slice());
        }
        loop {
            match p.send(rec) {
                Ok(()) => break,
                Err((e, r)) if is_queue_full(&e) => {
                    p.poll(Duration::from_millis(1));
                    rec = r;
                }
                Err((e, _)) => die(&format!("send: {e}")),
            }
        }
        sent += 1;
        p.poll(Duration::ZERO);
    }
    sent
}

/// ThreadedProducer: librdkafka's delivery callbacks are served by its polling thread.
fn produce_threaded(s: &ProduceSpec) -> ProduceResult {
    let p: ThreadedProducer<Ctx> = producer_config(s)
        .create_with_context(new_ctx())
        .unwrap_or_else(|e| die(&format!("creating ThreadedProducer: {e}")));
    let ctx = p.context().clone();
    watch(&ctx);
    p.send(
        BaseRecord::<(), [u8], usize>::with_opaque_to(&s.topic, 0).payload(s.values[0].as_slice()),
    )
    .unwrap_or_else(|(e, _)| die(&format!("warm-up send: {e}")));
    p.flush(Duration::from_secs(60))
        .unwrap_or_else(|e| die(&format!("warm-up flush: {e}")));
    std::thread::sleep(peer_bench::start_delay());
    ctx.hist.lock().unwrap().reset();
    let started = Instant::now();
    let pacer = Pacer::new(s.rate);
    let mut sent = 1;
    for i in 0..s.count {
        pacer.wait_blocking(i);
        let value = &s.values[(i % s.values.len() as u64) as usize];
        let t0 = ctx.clock.now_ns();
        let mut rec = BaseRecord::<(), [u8], usize>::with_opaque_to(&s.topic, t0 as usize)
            .payload(value.as_slice())
            .timestamp(ctx.clock.timestamp(t0));
        loop {
            match p.send(rec) {
                Ok(()) => break,
                Err((e, r)) if is_queue_full(&e) => {
                    std::thread::sleep(Duration::from_micros(500));
                    rec = r;
                }
                Err((e, _)) => die(&format!("send: {e}")),
            }
        }
        sent += 1;
    }
    p.flush(Duration::from_secs(120))
        .unwrap_or_else(|e| eprintln!("flush: {e}"));
    finish(&ctx, "threaded", s, sent, started)
}

/// FutureProducer: `send_result` (retried after a short sleep while librdkafka's queue is
/// full), each delivery future handed to a collector task that awaits them in order.
async fn produce_future(s: &ProduceSpec) -> ProduceResult {
    let p: FutureProducer = producer_config(s)
        .create()
        .unwrap_or_else(|e| die(&format!("creating FutureProducer: {e}")));
    let (tx, mut rx) =
        tokio::sync::mpsc::unbounded_channel::<(u64, rdkafka::producer::DeliveryFuture)>();
    let clock = Clock::new();
    // The collector runs outside tokio's coop budget (same for every future-based client):
    // with it, a turn drained at most the budget's 128 outcomes, and against a sending loop
    // that yields as often (kafka-sdk's `send` takes part in the budget) an unpaced run's
    // backlog never shrank (bench-sdk, C-lz4 / 1 KiB: 1.46M outcomes queued, ~90 MB of
    // harness memory counted as the client's RSS, and the lag counted as latency).
    let collector = tokio::spawn(tokio::task::unconstrained(async move {
        let mut hist = latency_histogram();
        let (mut acked, mut failed, mut first_error) = (0u64, 0u64, None);
        while let Some((t0, fut)) = rx.recv().await {
            match fut.await {
                Ok(Ok(_)) => {
                    acked += 1;
                    let us = clock.now_ns().saturating_sub(t0) / 1000;
                    let _ = hist.record(us.max(1));
                }
                Ok(Err((e, _))) => {
                    failed += 1;
                    first_error.get_or_insert_with(|| e.to_string());
                }
                Err(_) => {
                    failed += 1;
                    first_error.get_or_insert_with(|| "delivery future canceled".to_string());
                }
            }
        }
        (acked, failed, hist, first_error)
    }));
    // Warm-up: one record acknowledged before the clock starts (connection, producer id).
    match p
        .send(
            FutureRecord::<(), [u8]>::to(&s.topic).payload(s.values[0].as_slice()),
            Duration::from_secs(60),
        )
        .await
    {
        Ok(_) => {}
        Err((e, _)) => die(&format!("warm-up: {e}")),
    }
    tokio::time::sleep(peer_bench::start_delay()).await;
    let started = Instant::now();
    let pacer = Pacer::new(s.rate);
    let mut sent = 1;
    // QueueFull answers waited out (`BENCH_DEBUG_QUEUE=1` prints the count).
    let mut full_waits = 0u64;
    for i in 0..s.count {
        if let Some(due) = pacer.due(i) {
            if due > Instant::now() {
                tokio::time::sleep_until(due.into()).await;
            }
        }
        let key = s.key(i);
        let t0 = clock.now_ns();
        let mut rec = FutureRecord::<[u8], [u8]>::to(&s.topic)
            .payload(s.value(i))
            .timestamp(clock.timestamp(t0));
        if let Some(k) = &key {
            rec = rec.key(k.as_slice());
        }
        let fut = loop {
            match p.send_result(rec) {
                Ok(f) => break f,
                Err((e, r)) if is_queue_full(&e) => {
                    full_waits += 1;
                    tokio::time::sleep(Duration::from_millis(1)).await;
                    rec = r;
                }
                Err((e, _)) => die(&format!("send: {e}")),
            }
        };
        sent += 1;
        let _ = tx.send((t0, fut));
    }
    if std::env::var_os("BENCH_DEBUG_QUEUE").is_some() {
        eprintln!("QueueFull waits {full_waits}");
    }
    drop(tx);
    p.flush(Duration::from_secs(120))
        .unwrap_or_else(|e| eprintln!("flush: {e}"));
    let (acked, failed, hist, first_error) = collector.await.expect("collector");
    ProduceResult {
        client: "rdkafka".into(),
        api: "future".into(),
        sent,
        acked: acked + 1, // + the warm-up record
        failed: failed + (s.count + 1 - sent),
        secs: started.elapsed().as_secs_f64(),
        size: s.size,
        first_error,
        hist: Some(hist),
        burst_end_secs: None,
        idle_records: 0,
    }
}

/// The "tuned" consumer rows (`--api base-tuned` / `stream-tuned`, issue 18): librdkafka
/// (2.x) stops fetching a partition whose local queue is above `queued.min.messages` (or
/// `queued.max.messages.kbytes`) and retries only after `fetch.queue.backoff.ms` (default
/// 1000 ms), so a consumer that drains 100k records faster than that waits most of the
/// time. These settings remove that wait; `RDKAFKA_TUNED_PROPS="k=v,k=v"` overrides or adds
/// settings for experiments. To be confirmed by the measurement on a quiet machine.
const TUNED_CONSUMER: &[(&str, &str)] = &[
    ("fetch.queue.backoff.ms", "0"),
    ("queued.min.messages", "1000000"),
];

fn consumer_config(s: &ConsumeSpec, tuned: bool) -> ClientConfig {
    let mut c = ClientConfig::new();
    if tuned {
        for (k, v) in TUNED_CONSUMER {
            c.set(*k, *v);
        }
        for kv in std::env::var("RDKAFKA_TUNED_PROPS")
            .unwrap_or_default()
            .split(',')
        {
            if let Some((k, v)) = kv.split_once('=') {
                c.set(k.trim(), v.trim());
            }
        }
    }
    c.set("bootstrap.servers", &s.brokers)
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .set("enable.partition.eof", "false");
    match &s.group {
        Some(g) => c.set("group.id", g),
        // librdkafka wants a group.id even for assign(); it is never used without subscribe.
        None => c.set("group.id", "peer-bench-unused"),
    };
    for (k, v) in &s.extra {
        c.set(k, v);
    }
    c
}

fn setup<C: Consumer<X>, X: rdkafka::consumer::ConsumerContext>(c: &C, s: &ConsumeSpec) {
    match &s.group {
        Some(_) => c
            .subscribe(&[&s.topic])
            .unwrap_or_else(|e| die(&format!("subscribe: {e}"))),
        None => {
            let mut tpl = TopicPartitionList::new();
            for p in 0..s.partitions {
                tpl.add_partition_offset(&s.topic, p, Offset::Beginning)
                    .expect("tpl");
            }
            c.assign(&tpl)
                .unwrap_or_else(|e| die(&format!("assign: {e}")));
        }
    }
}

/// `BENCH_RDKAFKA_STATS=1` (not used by run.py): the consumer's librdkafka statistics JSON
/// (with `-X statistics.interval.ms=...`) printed to stderr as `stats <json>`, e.g. for the
/// brokers' Fetch request counts and round trips (`brokers.*.req.Fetch`, `brokers.*.rtt`).
struct StatsToStderr;

impl ClientContext for StatsToStderr {
    fn stats_raw(&self, statistics: &[u8]) {
        eprintln!("stats {}", String::from_utf8_lossy(statistics));
    }
}

impl rdkafka::consumer::ConsumerContext for StatsToStderr {}

fn consume_base(s: &ConsumeSpec, api: &str) -> ConsumeResult {
    let created = Instant::now();
    if std::env::var_os("BENCH_RDKAFKA_STATS").is_some() {
        let c: BaseConsumer<StatsToStderr> = consumer_config(s, api.ends_with("-tuned"))
            .create_with_context(StatsToStderr)
            .unwrap_or_else(|e| die(&format!("creating BaseConsumer: {e}")));
        return consume_base_with(c, s, api, created);
    }
    let c: BaseConsumer = consumer_config(s, api.ends_with("-tuned"))
        .create()
        .unwrap_or_else(|e| die(&format!("creating BaseConsumer: {e}")));
    consume_base_with(c, s, api, created)
}

fn consume_base_with<X: rdkafka::consumer::ConsumerContext>(
    c: BaseConsumer<X>,
    s: &ConsumeSpec,
    api: &str,
    created: Instant,
) -> ConsumeResult {
    setup(&c, s);
    let (mut received, mut bytes, mut first, mut last) = (0u64, 0u64, None, None);
    let mut ends = peer_bench::Ends::default();
    let track = s.idle_exit_ms > 0;
    while !s.done(received, last, created) {
        match c.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => {
                s.note_time(&mut first, &mut last);
                received += 1;
                if track {
                    ends.note(m.partition(), m.offset());
                }
                bytes += m.payload_len() as u64;
            }
            Some(Err(e)) => eprintln!("consume error: {e}"),
            None => {}
        }
    }
    commit_at_exit(&c, s);
    let first = first.unwrap_or(created);
    let secs = s.reading_secs(first, last);
    // Burst-then-idle: keep polling the drained topic.
    let idle = s.idle_phase().map(|(at, until)| {
        let mut n = 0u64;
        while Instant::now() < until {
            n += u64::from(matches!(c.poll(Duration::from_millis(100)), Some(Ok(_))));
        }
        (at, n)
    });
    ConsumeResult {
        client: "rdkafka".into(),
        api: api.into(),
        received,
        bytes,
        secs,
        startup_secs: (first - created).as_secs_f64(),
        ends,
        idle,
    }
}

async fn consume_stream(s: &ConsumeSpec, api: &str) -> ConsumeResult {
    let created = Instant::now();
    let c: StreamConsumer = consumer_config(s, api.ends_with("-tuned"))
        .create()
        .unwrap_or_else(|e| die(&format!("creating StreamConsumer: {e}")));
    setup(&c, s);
    let (mut received, mut bytes, mut first, mut last) = (0u64, 0u64, None, None);
    let mut ends = peer_bench::Ends::default();
    let track = s.idle_exit_ms > 0;
    let mut stream = c.stream();
    while !s.done(received, last, created) {
        let next = if s.idle_exit_ms > 0 {
            match tokio::time::timeout(Duration::from_millis(100), stream.next()).await {
                Ok(n) => n,
                Err(_) => continue,
            }
        } else {
            stream.next().await
        };
        match next {
            Some(Ok(m)) => {
                s.note_time(&mut first, &mut last);
                received += 1;
                if track {
                    ends.note(m.partition(), m.offset());
                }
                bytes += m.payload_len() as u64;
            }
            Some(Err(e)) => eprintln!("consume error: {e}"),
            None => break,
        }
    }
    commit_at_exit(&c, s);
    let first = first.unwrap_or(created);
    ConsumeResult {
        client: "rdkafka".into(),
        api: api.into(),
        received,
        bytes,
        secs: s.reading_secs(first, last),
        startup_secs: (first - created).as_secs_f64(),
        ends,
        idle: None,
    }
}

/// `--commit-at-exit 1`: one synchronous commit of the positions before the consumer closes.
fn commit_at_exit<C: Consumer<X>, X: rdkafka::consumer::ConsumerContext>(c: &C, s: &ConsumeSpec) {
    if s.commit_at_exit {
        if let Err(e) = c.commit_consumer_state(rdkafka::consumer::CommitMode::Sync) {
            eprintln!("commit at exit: {e}");
        }
    }
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let line = match args.command.as_str() {
        "produce" => {
            let s = ProduceSpec::from_args(&args);
            let api = args.str_or("api", "future");
            if s.idle_secs > 0 && api != "base" {
                die("--idle-secs is implemented for --api base only");
            }
            match api.as_str() {
                "future" => produce_future(&s).await.to_json(),
                "base" => tokio::task::block_in_place(|| produce_base(&s)).to_json(),
                "threaded" => tokio::task::block_in_place(|| produce_threaded(&s)).to_json(),
                other => die(&format!("unknown producer api {other:?}")),
            }
        }
        "consume" => {
            let s = ConsumeSpec::from_args(&args);
            let api = args.str_or("api", "stream");
            if s.idle_secs > 0 && !api.starts_with("base") {
                die("a consumer's --idle-secs is implemented for --api base only");
            }
            match api.as_str() {
                api @ ("stream" | "stream-tuned") => consume_stream(&s, api).await.to_json(),
                api @ ("base" | "base-tuned") => {
                    tokio::task::block_in_place(|| consume_base(&s, api)).to_json()
                }
                other => die(&format!("unknown consumer api {other:?}")),
            }
        }
        "version" => format!(
            "{{\"rdkafka\":\"{}\",\"librdkafka\":\"{}\"}}",
            "0.39.0",
            rdkafka::util::get_rdkafka_version().1
        ),
        other => die(&format!("unknown command {other:?}")),
    };
    println!("{line}");
}
