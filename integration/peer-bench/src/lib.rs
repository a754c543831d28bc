//! Shared parts of the peer-bench client binaries (`bench-rdkafka`, `bench-sdk`): command
//! line, payload corpus, latency histogram, pacing and the one-line JSON result that the
//! driver (`run.py`) parses. The Go program (`franz-go/main.go`) follows the same contract.
//!
//! ```text
//! bench-<client> produce --brokers B --topic T --count N --size 100|1024 --corpus FILE
//!     --acks all|1 --idempotent true|false --compression none|lz4|zstd --linger-ms 5
//!     --batch-size 1000000 --max-in-flight 5 [--rate R] [--api NAME] [--keys K]
//!     [--idle-secs S --idle-rate R] [-X key=value ...]
//! bench-<client> consume --brokers B --topic T --count N [--group G] [--api NAME]
//!     [--idle-exit-ms MS] [--commit-at-exit 0|1] [--idle-secs S] [-X key=value ...]
//! ```
//!
//! `-X key=value` (repeatable) passes a client configuration key as it is, applied after the
//! profile's settings (the driver uses it for the SASL_SSL runs, in each client's own key
//! names). `--keys K` gives record `i` the key `k<i mod K>` (the scale runs; 0 = key-less).
//! `--idle-secs S --idle-rate R` (the burst-then-idle memory run): after the `--count` burst is
//! flushed, keep sending R records/s for S seconds; the JSON then has `burst_end_secs` (since
//! the process' start, to line up with the driver's RSS samples) and `idle_records`.
//! A consumer's `--idle-secs S` (the consumer's burst-then-idle memory run): after reading
//! `--count` records as fast as it can, the consumer keeps polling the (now drained) topic for
//! S more seconds; the JSON then has `burst_end_secs` and `idle_records` (records read while
//! idling: 0 unless someone writes to the topic).
//! `--idle-exit-ms MS` (consumers in a group of several members): stop after MS without a
//! record once at least one arrived (or 30 s after start without any), instead of at `--count`.
//! `--commit-at-exit 1` (the scale runs' groups): one synchronous commit of the positions just
//! before the consumer closes (auto commit stays off).
//!
//! Output: exactly one JSON object on stdout (diagnostics go to stderr).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

/// `BENCH_STALL_SECS=N` (a debugging aid, off by default): starts a thread that prints to
/// stderr when `progress()` (e.g. records acknowledged + failed) has not moved for N seconds,
/// with what `describe()` says about the client then (e.g. its last statistics JSON), once
/// per stall. Stops with the process.
pub fn watch_stalls(
    progress: impl Fn() -> u64 + Send + 'static,
    describe: impl Fn() -> String + Send + 'static,
) {
    let Some(secs) = std::env::var("BENCH_STALL_SECS")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .filter(|s| *s > 0)
    else {
        return;
    };
    std::thread::spawn(move || {
        let (mut last, mut since, mut told) = (progress(), Instant::now(), false);
        loop {
            std::thread::sleep(Duration::from_millis(250));
            let now = progress();
            if now != last {
                if told {
                    eprintln!(
                        "STALL over after {:.1} s at {now}",
                        since.elapsed().as_secs_f64()
                    );
                }
                (last, since, told) = (now, Instant::now(), false);
            } else if !told && since.elapsed() >= Duration::from_secs(secs) {
                told = true;
                eprintln!(
                    "STALL: no progress for {secs} s at {now} ({:.1} s since start): {}",
                    secs_since_process_start(),
                    describe()
                );
            }
        }
    });
}

/// Parsed `--key value` options after the subcommand.
#[derive(Debug, Clone)]
pub struct Args {
    /// `produce` or `consume`.
    pub command: String,
    opts: HashMap<String, String>,
    /// `-X key=value` pairs, in command-line order.
    pub extra: Vec<(String, String)>,
}

impl Args {
    /// Parses `std::env::args()`; exits with a usage message on malformed input.
    pub fn parse() -> Args {
        let mut it = std::env::args().skip(1);
        let command = it
            .next()
            .unwrap_or_else(|| die("missing subcommand (produce|consume)"));
        let mut opts = HashMap::new();
        let mut extra = Vec::new();
        while let Some(k) = it.next() {
            if k == "-X" {
                let kv = it.next().unwrap_or_else(|| die("-X needs key=value"));
                let Some((key, value)) = kv.split_once('=') else {
                    die(&format!("-X {kv:?}: expected key=value"))
                };
                extra.push((key.to_string(), value.to_string()));
                continue;
            }
            let Some(key) = k.strip_prefix("--") else {
                die(&format!("unexpected argument {k:?}"))
            };
            let v = it
                .next()
                .unwrap_or_else(|| die(&format!("--{key} needs a value")));
            opts.insert(key.to_string(), v);
        }
        Args {
            command,
            opts,
            extra,
        }
    }

    /// A required string option.
    pub fn str(&self, key: &str) -> String {
        self.opts
            .get(key)
            .cloned()
            .unwrap_or_else(|| die(&format!("--{key} is required")))
    }

    /// An optional string option.
    pub fn opt(&self, key: &str) -> Option<String> {
        self.opts.get(key).cloned()
    }

    /// A string option with a default.
    pub fn str_or(&self, key: &str, default: &str) -> String {
        self.opt(key).unwrap_or_else(|| default.to_string())
    }

    /// A numeric option with a default.
    pub fn num<T: std::str::FromStr>(&self, key: &str, default: T) -> T {
        match self.opts.get(key) {
            None => default,
            Some(v) => v
                .parse()
                .unwrap_or_else(|_| die(&format!("--{key}: bad number {v:?}"))),
        }
    }
}

/// Prints an error and exits with status 2.
pub fn die(msg: &str) -> ! {
    eprintln!("error: {msg}");
    std::process::exit(2)
}

/// Settings of a producer run (every profile setting is passed explicitly to each client).
#[derive(Debug, Clone)]
pub struct ProduceSpec {
    pub brokers: String,
    pub topic: String,
    pub count: u64,
    pub size: usize,
    /// `all` or `1`.
    pub acks: String,
    pub idempotent: bool,
    /// `none`, `lz4` or `zstd`.
    pub compression: String,
    pub linger_ms: u64,
    pub batch_size: usize,
    pub max_in_flight: u32,
    /// Records per second, 0 = as fast as possible.
    pub rate: u64,
    /// Record values: the corpus lines of exactly `size` bytes, cycled.
    pub values: Vec<Vec<u8>>,
    /// Number of distinct keys (`k0`..), 0 = key-less records.
    pub keys: u64,
    /// Burst-then-idle mode: seconds of idle sending after the burst (0 = off).
    pub idle_secs: u64,
    /// Records per second while idling.
    pub idle_rate: u64,
    /// `-X key=value` client settings, applied last.
    pub extra: Vec<(String, String)>,
}

impl ProduceSpec {
    /// From the command line.
    pub fn from_args(a: &Args) -> ProduceSpec {
        let size: usize = a.num("size", 100);
        let corpus = a.str("corpus");
        let text = std::fs::read_to_string(&corpus)
            .unwrap_or_else(|e| die(&format!("reading corpus {corpus}: {e}")));
        let values: Vec<Vec<u8>> = text.lines().map(|l| l.as_bytes().to_vec()).collect();
        if values.is_empty() || values.iter().any(|v| v.len() != size) {
            die(&format!(
                "corpus {corpus} must hold lines of exactly {size} bytes"
            ));
        }
        ProduceSpec {
            brokers: a.str("brokers"),
            topic: a.str("topic"),
            count: a.num("count", 100_000),
            size,
            acks: a.str_or("acks", "all"),
            idempotent: a.str_or("idempotent", "true") == "true",
            compression: a.str_or("compression", "none"),
            linger_ms: a.num("linger-ms", 5),
            batch_size: a.num("batch-size", 1_000_000),
            max_in_flight: a.num("max-in-flight", 5),
            rate: a.num("rate", 0),
            values,
            keys: a.num("keys", 0),
            idle_secs: a.num("idle-secs", 0),
            idle_rate: a.num("idle-rate", 10),
            extra: a.extra.clone(),
        }
    }

    /// The key of record `i` (`None` when key-less).
    pub fn key(&self, i: u64) -> Option<Vec<u8>> {
        (self.keys > 0).then(|| format!("k{}", i % self.keys).into_bytes())
    }

    /// The value of record `i` (the corpus, cycled).
    pub fn value(&self, i: u64) -> &[u8] {
        &self.values[(i % self.values.len() as u64) as usize]
    }

    /// Records sent in the idle phase of a burst-then-idle run.
    pub fn idle_count(&self) -> u64 {
        self.idle_secs * self.idle_rate
    }
}

/// Seconds since this process started (from /proc/self/stat's start time and the boot
/// time), so a client's phase marks line up with the driver's RSS samples; falls back to
/// the time since the first call.
pub fn secs_since_process_start() -> f64 {
    fn from_proc() -> Option<f64> {
        let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
        let after = stat.rsplit_once(')')?.1;
        // Field 22 (starttime) is the 20th after the ")".
        let start_ticks: f64 = after.split_whitespace().nth(19)?.parse().ok()?;
        let uptime: f64 = std::fs::read_to_string("/proc/uptime")
            .ok()?
            .split_whitespace()
            .next()?
            .parse()
            .ok()?;
        // CLK_TCK is 100 on every Linux this runs on.
        Some(uptime - start_ticks / 100.0)
    }
    static T0: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    from_proc().unwrap_or_else(|| T0.get_or_init(Instant::now).elapsed().as_secs_f64())
}

/// Latency runs: with `BENCH_START_AT_MS=N`, a producer starts its measured window (after
/// its warm-up record) only once its process is N ms old, so every client's first measured
/// records are sent at the same age of the client: librdkafka's warm-up record alone takes
/// about half a second, kafka-sdk's a few ms, and without this the start-up tails of the
/// clients were compared at different moments. Returns how long to wait now (zero without
/// the variable or when the process is already older).
pub fn start_delay() -> Duration {
    let Some(ms) = std::env::var("BENCH_START_AT_MS")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
    else {
        return Duration::ZERO;
    };
    let age = secs_since_process_start();
    Duration::from_secs_f64((ms as f64 / 1000.0 - age).max(0.0))
}

/// Settings of a consumer run.
#[derive(Debug, Clone)]
pub struct ConsumeSpec {
    pub brokers: String,
    pub topic: String,
    pub count: u64,
    /// Consumer group; `None` = assign all partitions from offset 0 without a group.
    pub group: Option<String>,
    /// Number of partitions of the topic (assigned when there is no group).
    pub partitions: i32,
    /// Stop after this long without a record (0 = read exactly `count`).
    pub idle_exit_ms: u64,
    /// `--commit-at-exit 1` with a group: the member commits its positions (one synchronous
    /// commit) just before it closes, and never before; so a member that takes over a
    /// partition when its reader stops does not read it again from offset 0. Always false
    /// without a group.
    pub commit_at_exit: bool,
    /// `-X key=value` client settings, applied last.
    pub extra: Vec<(String, String)>,
    /// Burst-then-idle mode: seconds of polling after `count` records were read (0 = off).
    pub idle_secs: u64,
}

impl ConsumeSpec {
    /// From the command line.
    pub fn from_args(a: &Args) -> ConsumeSpec {
        let group = a.opt("group").filter(|g| !g.is_empty());
        ConsumeSpec {
            brokers: a.str("brokers"),
            topic: a.str("topic"),
            count: a.num("count", 100_000),
            commit_at_exit: group.is_some() && a.num::<u32>("commit-at-exit", 0) != 0,
            group,
            partitions: a.num("partitions", 3),
            idle_exit_ms: a.num("idle-exit-ms", 0),
            extra: a.extra.clone(),
            idle_secs: a.num("idle-secs", 0),
        }
    }

    /// Reading time: from the first record to now, or to the last record in
    /// `--idle-exit-ms` mode.
    pub fn reading_secs(&self, first: Instant, last: Option<Instant>) -> f64 {
        match last {
            Some(l) if self.idle_exit_ms > 0 => (l - first).as_secs_f64(),
            _ => first.elapsed().as_secs_f64(),
        }
    }

    /// Burst-then-idle runs, called when the burst is read: when it ended (seconds since the
    /// process started) and until when to keep polling; `None` without `--idle-secs`.
    pub fn idle_phase(&self) -> Option<(f64, Instant)> {
        (self.idle_secs > 0).then(|| {
            (
                secs_since_process_start(),
                Instant::now() + Duration::from_secs(self.idle_secs),
            )
        })
    }

    /// Notes a record's arrival in a consumer loop: the time of the first record always, of
    /// the last one only with `--idle-exit-ms` (the only use of it). A clock read per record
    /// was ~7 % of a consumer's CPU at 100 B; every client's loop uses this.
    pub fn note_time(&self, first: &mut Option<Instant>, last: &mut Option<Instant>) {
        if first.is_none() {
            *first = Some(Instant::now());
        }
        if self.idle_exit_ms > 0 {
            *last = Some(Instant::now());
        }
    }

    /// Whether a consumer loop is done: `count` records read, or (with `--idle-exit-ms`) no
    /// record for that long after the first one, or none at all 30 s after `created`.
    pub fn done(&self, received: u64, last: Option<Instant>, created: Instant) -> bool {
        if self.idle_exit_ms == 0 {
            return received >= self.count;
        }
        let quiet = Duration::from_millis(self.idle_exit_ms);
        match last {
            Some(t) => received >= self.count || t.elapsed() >= quiet,
            None => created.elapsed() >= Duration::from_secs(30).max(quiet),
        }
    }
}

/// Send->ack latency histogram in microseconds (1 µs .. 1 h, 3 significant digits).
pub fn latency_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("histogram bounds")
}

/// Opt-in latency timeline for finding where a tail comes from (`BENCH_TIMELINE_MS=N`, not
/// used by run.py): one histogram per N-ms window of *send* time, printed to stderr at the end
/// of the run as `timeline <label> <window start ms> <records> <p50 us> <p99 us> <max us>
/// <canary us>`. Shows whether a tail sits in the first seconds, recurs, or is spread evenly.
/// The canary is a thread of the client's process (same CPU pinning) that sleeps 1 ms in a
/// loop: its largest oversleep in the window. A latency spike with a canary spike of the same
/// size is the process not getting the CPU (machine noise), not the client's own doing.
pub struct Timeline {
    window_us: u64,
    windows: Vec<Histogram<u64>>,
    canary: std::sync::Arc<std::sync::Mutex<Vec<u64>>>,
}

impl Timeline {
    /// A timeline when `BENCH_TIMELINE_MS` is set (> 0).
    pub fn from_env() -> Option<Timeline> {
        let ms: u64 = std::env::var("BENCH_TIMELINE_MS").ok()?.parse().ok()?;
        if ms == 0 {
            return None;
        }
        let window_us = ms * 1000;
        let canary = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let c = canary.clone();
        let origin = Instant::now();
        std::thread::spawn(move || loop {
            let t = Instant::now();
            std::thread::sleep(Duration::from_millis(1));
            let over = (t.elapsed().as_micros() as u64).saturating_sub(1000);
            let w = (origin.elapsed().as_micros() as u64 / window_us) as usize;
            let mut v = c.lock().unwrap();
            if v.len() <= w {
                v.resize(w + 1, 0);
            }
            v[w] = v[w].max(over);
        });
        Some(Timeline {
            window_us,
            windows: Vec::new(),
            canary,
        })
    }

    /// A record sent `sent_us` after the run's start was acknowledged after `latency_us`.
    pub fn record(&mut self, sent_us: u64, latency_us: u64) {
        let w = (sent_us / self.window_us) as usize;
        while self.windows.len() <= w {
            self.windows.push(latency_histogram());
        }
        let _ = self.windows[w].record(latency_us.max(1));
    }

    /// Prints one line per window to stderr.
    pub fn print(&self, label: &str) {
        let canary = self.canary.lock().unwrap().clone();
        for (i, h) in self.windows.iter().enumerate() {
            if h.is_empty() {
                continue;
            }
            eprintln!(
                "timeline {label} {} {} {} {} {} {}",
                i as u64 * self.window_us / 1000,
                h.len(),
                h.value_at_quantile(0.5),
                h.value_at_quantile(0.99),
                h.max(),
                canary.get(i).copied().unwrap_or(0)
            );
        }
    }
}

/// Open-loop pacing for fixed-rate runs: `wait(i)` sleeps (or spins for the last stretch)
/// until record `i` is due. A rate of 0 never waits.
pub struct Pacer {
    start: Instant,
    rate: u64,
}

impl Pacer {
    /// Starts the schedule now.
    pub fn new(rate: u64) -> Pacer {
        Pacer {
            start: Instant::now(),
            rate,
        }
    }

    /// When record `i` is due (`None` when unpaced).
    pub fn due(&self, i: u64) -> Option<Instant> {
        (self.rate > 0)
            .then(|| self.start + Duration::from_nanos(i.saturating_mul(1_000_000_000) / self.rate))
    }

    /// Blocks the thread until record `i` is due.
    pub fn wait_blocking(&self, i: u64) {
        if let Some(due) = self.due(i) {
            loop {
                let now = Instant::now();
                if now >= due {
                    break;
                }
                let left = due - now;
                if left > Duration::from_micros(200) {
                    std::thread::sleep(left - Duration::from_micros(100));
                } else {
                    std::hint::spin_loop();
                }
            }
        }
    }
}

/// Result of a producer run, printed as one JSON line.
#[derive(Debug, Default)]
pub struct ProduceResult {
    pub client: String,
    pub api: String,
    pub sent: u64,
    pub acked: u64,
    pub failed: u64,
    pub secs: f64,
    pub size: usize,
    pub first_error: Option<String>,
    pub hist: Option<Histogram<u64>>,
    /// Burst-then-idle runs: when the burst was flushed (seconds since process start).
    pub burst_end_secs: Option<f64>,
    /// Burst-then-idle runs: records sent while idling (included in `sent`/`acked`).
    pub idle_records: u64,
}

impl ProduceResult {
    /// The JSON line (msgs/s and MB/s derived from acknowledged records; MB = 10^6 bytes).
    pub fn to_json(&self) -> String {
        let (p50, p99, p999, max) = match &self.hist {
            Some(h) if !h.is_empty() => (
                h.value_at_quantile(0.5),
                h.value_at_quantile(0.99),
                h.value_at_quantile(0.999),
                h.max(),
            ),
            _ => (0, 0, 0, 0),
        };
        let secs = self.secs.max(1e-9);
        let idle = match self.burst_end_secs {
            Some(t) => format!(
                ",\"burst_end_secs\":{t:.3},\"idle_records\":{}",
                self.idle_records
            ),
            None => String::new(),
        };
        format!(
            "{{\"status\":\"ok\",\"role\":\"produce\",\"client\":\"{}\",\"api\":\"{}\",\"sent\":{},\"acked\":{},\"failed\":{},\"secs\":{:.4},\"msgs_per_sec\":{:.1},\"mb_per_sec\":{:.3},\"p50_us\":{p50},\"p99_us\":{p99},\"p999_us\":{p999},\"max_us\":{max},\"first_error\":{}{idle}}}",
            self.client,
            self.api,
            self.sent,
            self.acked,
            self.failed,
            self.secs,
            self.acked as f64 / secs,
            self.acked as f64 * self.size as f64 / 1e6 / secs,
            json_str_opt(self.first_error.as_deref()),
        )
    }
}

/// Result of a consumer run, printed as one JSON line.
#[derive(Debug, Default)]
pub struct ConsumeResult {
    pub client: String,
    pub api: String,
    pub received: u64,
    pub bytes: u64,
    /// From the first record received to the last one (steady-state reading).
    pub secs: f64,
    /// From creating the consumer to the first record (connect, join, first fetch).
    pub startup_secs: f64,
    /// `--idle-exit-ms` runs: per partition, the offset after the last record read (the
    /// scale runs check these against the high watermarks).
    pub ends: Ends,
    /// Burst-then-idle runs (`--idle-secs`): when the `count` records were read (seconds
    /// since the process started) and the records read while idling.
    pub idle: Option<(f64, u64)>,
}

/// Per partition, one past the highest offset read.
#[derive(Debug, Default, Clone)]
pub struct Ends(HashMap<i32, i64>);

impl Ends {
    /// Notes that `offset` of `partition` was read.
    pub fn note(&mut self, partition: i32, offset: i64) {
        let e = self.0.entry(partition).or_insert(0);
        *e = (*e).max(offset + 1);
    }

    fn json(&self) -> String {
        let mut v: Vec<_> = self.0.iter().collect();
        v.sort();
        let items: Vec<String> = v.iter().map(|(p, e)| format!("[{p},{e}]")).collect();
        format!(",\"ends\":[{}]", items.join(","))
    }
}

impl ConsumeResult {
    /// The JSON line (rates over `secs`).
    pub fn to_json(&self) -> String {
        let secs = self.secs.max(1e-9);
        format!(
            "{{\"status\":\"ok\",\"role\":\"consume\",\"client\":\"{}\",\"api\":\"{}\",\"received\":{},\"bytes\":{},\"secs\":{:.4},\"startup_secs\":{:.4},\"msgs_per_sec\":{:.1},\"mb_per_sec\":{:.3}{}{}}}",
            self.client,
            self.api,
            self.received,
            self.bytes,
            self.secs,
            self.startup_secs,
            self.received as f64 / secs,
            self.bytes as f64 / 1e6 / secs,
            if self.ends.0.is_empty() {
                String::new()
            } else {
                self.ends.json()
            },
            match self.idle {
                Some((t, n)) => format!(",\"burst_end_secs\":{t:.3},\"idle_records\":{n}"),
                None => String::new(),
            },
        )
    }
}

/// The JSON line of a client/profile that cannot run yet.
pub fn pending_json(client: &str, role: &str, why: &str) -> String {
    format!(
        "{{\"status\":\"pending\",\"role\":\"{role}\",\"client\":\"{client}\",\"reason\":{}}}",
        json_str(why)
    )
}

/// A JSON string literal.
pub fn json_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn json_str_opt(s: Option<&str>) -> String {
    s.map(json_str).unwrap_or_else(|| "null".into())
}
