//! What every example shares: the connection arguments (`--brokers`, `-X key=value`), the
//! client configs built from them, an optional local Kafka, test data, and the frame around
//! the delivery-semantics examples' consume loops.
//!
//! Included by each example with `mod common;` (cargo does not build `examples/common/` as an
//! example of its own). Not every example uses every item.
#![allow(dead_code)]

use std::error::Error;
use std::process::{ExitCode, Stdio};
use std::time::Duration;

use clap::{CommandFactory, FromArgMatches};
use kafka_sdk::admin::{AdminClient, NewTopic};
use kafka_sdk::consumer::{Consumer, Message};
use kafka_sdk::ClientConfig;

/// The error type of the examples' `run` functions.
pub type BoxError = Box<dyn Error + Send + Sync>;

/// Connection arguments, flattened into each example's clap `Args` with
/// `#[command(flatten)]`.
#[derive(clap::Args, Debug, Clone)]
pub struct Connection {
    /// Bootstrap servers (host:port[,host:port...]). Default: $KAFKA_BOOTSTRAP_SERVERS, else a
    /// local Kafka started through kafka-testkit (needs Java 17+ and Maven).
    #[arg(long, value_name = "SERVERS")]
    pub brokers: Option<String>,
    /// A client config key, like kcat: `-X key=value` or `-Xkey=value`, repeatable, any key
    /// kafka-sdk knows (Java or librdkafka spelling). Overrides the example's own settings.
    #[arg(short = 'X', value_name = "KEY=VALUE", value_parser = parse_key_value)]
    pub config: Vec<(String, String)>,
}

/// Parses one `-X` argument: `key=value`, split at the first `=` (a value may contain `=`).
fn parse_key_value(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_string(), v.to_string())),
        Some(_) => Err(format!("`{s}` has no key before `=` (expected key=value)")),
        None => Err(format!("`{s}` has no `=` (expected key=value)")),
    }
}

/// The command line of an example that takes only the connection arguments.
#[derive(clap::Parser, Debug)]
struct ConnectionOnly {
    #[command(flatten)]
    conn: Connection,
}

impl Connection {
    /// Parses a command line of only the connection arguments (`--help` shows `about`);
    /// exits with clap's message on a bad command line.
    pub fn parse_alone(about: &'static str) -> Connection {
        let matches = ConnectionOnly::command().about(about).get_matches();
        match ConnectionOnly::from_arg_matches(&matches) {
            Ok(args) => args.conn,
            Err(e) => e.exit(),
        }
    }

    /// The `-X` pairs as command-line arguments again, for passing them on to a child process.
    pub fn x_args(&self) -> Vec<String> {
        self.config
            .iter()
            .flat_map(|(k, v)| ["-X".to_string(), format!("{k}={v}")])
            .collect()
    }

    /// The `-X` pairs alone, in order; a later spelling of a key replaces an earlier one.
    fn overrides(&self) -> ClientConfig {
        let mut cfg = ClientConfig::new();
        for (k, v) in &self.config {
            // `remove` drops every spelling of the key (`linger.ms` and
            // `queue.buffering.max.ms`), so the last `-X` wins, as in kcat.
            cfg.remove(k);
            cfg.set(k, v);
        }
        cfg
    }

    /// The bootstrap servers to use: `-X bootstrap.servers` (any spelling; like every `-X` it
    /// wins), else `--brokers`, else `$KAFKA_BOOTSTRAP_SERVERS`; `None` means "start a local
    /// Kafka".
    pub fn bootstrap(&self) -> Option<String> {
        self.overrides()
            .get("bootstrap.servers")
            .map(str::to_string)
            .or_else(|| self.brokers.clone())
            .or_else(|| std::env::var("KAFKA_BOOTSTRAP_SERVERS").ok())
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
    }

    /// Resolves the cluster: the given one, or a local single-node Kafka started through
    /// kafka-testkit (kept running until the returned [`Kafka`] is dropped).
    pub async fn connect(&self) -> Result<Kafka, BoxError> {
        let overrides = self.overrides();
        if let Some(bootstrap) = self.bootstrap() {
            return Ok(Kafka {
                bootstrap,
                overrides,
                local: None,
            });
        }
        // Check the -X keys and values before spending seconds on a broker start. This is
        // kafka-sdk's own validation of every key present (the placeholder address is never
        // contacted); building the clients validates again with the example's keys.
        overrides
            .clone()
            .with("bootstrap.servers", "localhost:9092")
            .common()?;
        eprintln!("no --brokers: starting a local Kafka through kafka-testkit ...");
        let cluster = tokio::task::spawn_blocking(|| {
            kafka_testkit::KafkaCluster::start(kafka_testkit::ClusterOptions {
                allow_external: false,
                ..Default::default()
            })
        })
        .await??;
        Ok(Kafka {
            bootstrap: cluster.bootstrap(),
            overrides,
            local: Some(cluster),
        })
    }
}

/// The cluster an example talks to, and the `-X` settings for every client it builds.
pub struct Kafka {
    bootstrap: String,
    overrides: ClientConfig,
    /// The local Kafka started for this run, if any; dropping it stops the broker.
    local: Option<kafka_testkit::KafkaCluster>,
}

impl Kafka {
    /// The bootstrap servers.
    pub fn bootstrap(&self) -> &str {
        &self.bootstrap
    }

    /// Whether the broker was started by this example (so it holds no data yet).
    pub fn is_local(&self) -> bool {
        self.local.is_some()
    }

    /// A client config: `bootstrap.servers`, then the example's own keys `own`, then the `-X`
    /// pairs, which replace the example's value of the same key under any spelling.
    pub fn config(&self, own: ClientConfig) -> ClientConfig {
        let mut cfg = ClientConfig::new().with("bootstrap.servers", &self.bootstrap);
        for (k, v) in own.iter() {
            cfg.set(k, v);
        }
        for (k, v) in self.overrides.iter() {
            cfg.remove(k);
            cfg.set(k, v);
        }
        cfg
    }

    /// Creates `topic` with `partitions` partitions (cluster-default replication) through
    /// kafka-sdk's admin client and waits for its leaders.
    pub async fn create_topic(&self, topic: &str, partitions: i32) -> Result<(), BoxError> {
        let admin = AdminClient::new(&self.config(ClientConfig::new())).await?;
        admin
            .create_topic(NewTopic::new(topic, partitions, -1))
            .await?;
        Ok(())
    }

    /// Writes `count` records of 100 bytes to `topic` with the Java `producer-perf` tool (from
    /// the kit's cached jars; the `-X` pairs are for kafka-sdk and are not passed to it).
    pub async fn fill_topic(&self, topic: &str, count: u64) -> Result<(), BoxError> {
        eprintln!("writing {count} records to {topic} with producer-perf ...");
        let args: Vec<String> = [
            "--topic",
            topic,
            "--num-records",
            &count.to_string(),
            "--record-size",
            "100",
            "--throughput",
            "-1",
            "--producer-props",
            &format!("bootstrap.servers={}", self.bootstrap),
            "linger.ms=5",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let out = tokio::task::spawn_blocking(move || {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            kafka_testkit::tool_command("producer-perf", &args)?
                .stdin(Stdio::null())
                .output()
                .map_err(BoxError::from)
        })
        .await??;
        if !out.status.success() {
            return Err(format!(
                "producer-perf failed: {}",
                String::from_utf8_lossy(&out.stderr)
            )
            .into());
        }
        Ok(())
    }
}

/// Runs a delivery-semantics example (at-most-once, at-least-once) around its consume loop:
/// parses the connection arguments, creates a 3-partition topic holding 1000 records (Java
/// perf tool), and subscribes a consumer in a new group to it (earliest offset,
/// `enable.auto.commit=false`). `consume(consumer, 1000)` does the example's work and returns
/// (records processed, value bytes); then the committed offsets are read, the consumer closed
/// and the summary line `processed=<n> value_bytes=<n> committed=<offsets>` printed.
pub async fn semantics_main(
    about: &'static str,
    example: &str,
    consume: impl AsyncFnOnce(&Consumer, u64) -> Result<(u64, u64), BoxError>,
) -> ExitCode {
    const RECORDS: u64 = 1000;
    let run = async {
        let kafka = Connection::parse_alone(about).connect().await?;
        let topic = format!("kafka-sdk-{example}-{}", std::process::id());
        kafka.create_topic(&topic, 3).await?;
        kafka.fill_topic(&topic, RECORDS).await?;
        let consumer = Consumer::new(
            &kafka.config(
                ClientConfig::new()
                    .with("group.id", format!("{topic}-group"))
                    .with("auto.offset.reset", "earliest")
                    .with("enable.auto.commit", "false"),
            ),
        )
        .await?;
        consumer.subscribe(&[&topic])?;

        let (processed, value_bytes) = consume(&consumer, RECORDS).await?;

        let committed = consumer.committed(None, Duration::from_secs(10)).await?;
        consumer.close().await?;
        println!("processed={processed} value_bytes={value_bytes} committed={committed:?}");
        Ok(())
    };
    exit(run.await)
}

/// The application's work on one record in the delivery-semantics examples: add up the
/// value bytes.
pub fn process(m: &Message, total: &mut u64) {
    *total += m.value().map_or(0, |v| v.len() as u64);
}

/// Ends `main`: prints the error of a failed run (configuration errors included) and exits
/// with status 1, or exits with 0.
pub fn exit(result: Result<(), BoxError>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
