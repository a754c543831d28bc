//! `kafka-testkit` command line: start a cluster, run a Kafka CLI tool, or pre-fetch jars.

use std::io::Write;
use std::process::ExitCode;

use kafka_testkit::{ClusterOptions, KafkaCluster, TOOLS};

fn usage() -> String {
    let mut s = String::from(
        "kafka-testkit: real Apache Kafka brokers for kafka-sdk tests

USAGE:
  kafka-testkit up [--nodes 1|3] [--version V] [--heap MB] [--prop K=V]... [--feature K=V]...
      Start a local cluster, print `BOOTSTRAP=<servers>` on stdout, run until SIGINT/SIGTERM.
      [--security plaintext|ssl|mtls|sasl_plaintext|sasl_ssl] [--max-reauth-ms N]
      [--bad-tls-listeners] (then also EXPIRED_TLS=<addrs> and WRONG_HOST_TLS=<addrs>)
      secures the client listener; then `CA=<ca.pem>` (TLS) and one
      `USER=<mechanism>:<name>:<password>` line per user and PLAIN/SCRAM mechanism (SASL; super user
      first) follow the BOOTSTRAP line.
      --feature is passed to `kafka-storage format` (e.g. --feature share.version=1).
      [--jvm-opt OPT]... adds a JVM option to each broker; --kafka-gc adds the garbage
      collector options of Kafka's start scripts (G1, MaxGCPauseMillis=20; benchmarks).
  kafka-testkit tool <name> [args...]
      Run a Kafka CLI tool from the cached jars (stdio inherited, exit status passed on).
  kafka-testkit fetch-jars [--version V]
      Make sure the Kafka jars are in the cache (prints their directory).
  kafka-testkit --help

TOOLS (name -> main class; `kafka-<name>.sh` also accepted):
",
    );
    for (name, class) in TOOLS {
        s.push_str(&format!("  {name:<22} {class}\n"));
    }
    s.push_str(
        "
ENVIRONMENT:
  KAFKA_TESTKIT_VERSION    Kafka version (default 4.3.1, falls back to 4.2.1)
  KAFKA_TESTKIT_CACHE_DIR  jar cache root (default: <user cache>/kafka-sdk)
  KAFKA_TESTKIT_LIBS       use this jar directory as is (no Maven)
  KAFKA_TESTKIT_KEEP=1     keep cluster temp dirs (logs) after stopping
",
    );
    s
}

fn value<'a>(
    args: &mut impl Iterator<Item = &'a String>,
    flag: &str,
) -> Result<&'a String, String> {
    args.next().ok_or_else(|| format!("{flag} needs a value"))
}

fn key_value(s: &str, flag: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .ok_or_else(|| format!("{flag} expects K=V, got {s:?}"))
}

fn up(rest: &[String]) -> Result<ExitCode, String> {
    let mut opts = ClusterOptions {
        allow_external: false,
        ..ClusterOptions::default()
    };
    let mut it = rest.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--nodes" => {
                opts.nodes = value(&mut it, arg)?
                    .parse()
                    .map_err(|e| format!("--nodes: {e}"))?
            }
            "--version" => opts.kafka_version = Some(value(&mut it, arg)?.clone()),
            "--heap" => {
                opts.heap_mb = value(&mut it, arg)?
                    .parse()
                    .map_err(|e| format!("--heap: {e}"))?
            }
            "--jvm-opt" => opts.jvm_opts.push(value(&mut it, arg)?.clone()),
            "--kafka-gc" => opts.jvm_opts.extend(
                kafka_testkit::KAFKA_SCRIPT_JVM_OPTS
                    .iter()
                    .map(|o| o.to_string()),
            ),
            "--prop" => opts
                .broker_props
                .push(key_value(value(&mut it, arg)?, arg)?),
            "--feature" => opts.features.push(key_value(value(&mut it, arg)?, arg)?),
            "--security" => opts.security = value(&mut it, arg)?.parse()?,
            "--bad-tls-listeners" => opts.bad_tls_listeners = true,
            "--max-reauth-ms" => {
                opts.max_reauth = Some(std::time::Duration::from_millis(
                    value(&mut it, arg)?
                        .parse()
                        .map_err(|e| format!("--max-reauth-ms: {e}"))?,
                ))
            }
            other => return Err(format!("unknown option {other:?} for `up`")),
        }
    }
    // Register the handlers first so a signal during startup is not lost.
    let mut signals = signal_hook::iterator::Signals::new([
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGTERM,
    ])
    .map_err(|e| format!("installing signal handlers: {e}"))?;
    let started = std::time::Instant::now();
    let cluster = KafkaCluster::start(opts).map_err(|e| e.to_string())?;
    eprintln!(
        "kafka-testkit: {} node(s) ready in {:.1?} (dir {})",
        cluster.node_ids().len(),
        started.elapsed(),
        cluster
            .data_root()
            .map(|p| p.display().to_string())
            .unwrap_or_default()
    );
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "BOOTSTRAP={}", cluster.bootstrap()).map_err(|e| e.to_string())?;
        for line in kafka_testkit::security_lines(&cluster) {
            writeln!(out, "{line}").map_err(|e| e.to_string())?;
        }
        out.flush().map_err(|e| e.to_string())?;
    }
    let sig = signals.forever().next();
    eprintln!("kafka-testkit: got signal {sig:?}, stopping");
    cluster.stop();
    Ok(ExitCode::SUCCESS)
}

fn tool(rest: &[String]) -> Result<ExitCode, String> {
    let (name, args) = rest
        .split_first()
        .ok_or_else(|| "tool needs a name; see --help".to_string())?;
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let status = kafka_testkit::tool_command(name, &args)
        .map_err(|e| e.to_string())?
        .status()
        .map_err(|e| format!("running {name}: {e}"))?;
    Ok(match status.code() {
        Some(c) => ExitCode::from(c.clamp(0, 255) as u8),
        None => {
            use std::os::unix::process::ExitStatusExt;
            ExitCode::from(128u8.saturating_add(status.signal().unwrap_or(0) as u8))
        }
    })
}

fn fetch_jars(rest: &[String]) -> Result<ExitCode, String> {
    let mut version = kafka_testkit::default_version();
    let mut it = rest.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--version" => version = value(&mut it, arg)?.clone(),
            other => return Err(format!("unknown option {other:?} for `fetch-jars`")),
        }
    }
    let started = std::time::Instant::now();
    let dir = kafka_testkit::jars_dir(&version).map_err(|e| e.to_string())?;
    kafka_testkit::java_path().map_err(|e| e.to_string())?;
    eprintln!("kafka-testkit: jars ready in {:.1?}", started.elapsed());
    println!("{}", dir.display());
    Ok(ExitCode::SUCCESS)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("up") => up(&args[1..]),
        Some("tool") => tool(&args[1..]),
        Some("fetch-jars") => fetch_jars(&args[1..]),
        Some("--help" | "-h" | "help") => {
            print!("{}", usage());
            return ExitCode::SUCCESS;
        }
        Some(other) => Err(format!("unknown command {other:?}\n\n{}", usage())),
        None => Err(usage()),
    };
    match result {
        Ok(code) => code,
        Err(msg) => {
            eprintln!("kafka-testkit: {msg}");
            ExitCode::from(2)
        }
    }
}
