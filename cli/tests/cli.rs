//! The `kafka-sdk` binary run as a process against the test kit's broker (one shared
//! single-node cluster): produce -> consume round trip, lag, offset resets then consume,
//! records delete, metadata, topics, groups, and one-line errors.

use std::io::Write;
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};

fn unique(prefix: &str) -> String {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    )
}

/// Runs `kafka-sdk -b <cluster> args...` with `stdin`; returns the output.
fn run(args: &[&str], stdin: &str) -> Output {
    let bs = kafka_testkit::shared().bootstrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_kafka-sdk"))
        .arg("-b")
        .arg(&bs)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start kafka-sdk");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

/// Runs and expects success; returns stdout.
fn ok(args: &[&str], stdin: &str) -> String {
    let out = run(args, stdin);
    assert!(
        out.status.success(),
        "kafka-sdk {args:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn json(args: &[&str]) -> serde_json::Value {
    let mut a = vec!["--json"];
    a.extend_from_slice(args);
    serde_json::from_str(ok(&a, "").trim()).expect("one JSON value")
}

#[test]
fn produce_consume_round_trip_and_topics() {
    let topic = unique("cli-rt");
    ok(
        &[
            "topics",
            "create",
            "--topic",
            &topic,
            "--partitions",
            "3",
            "--replication-factor",
            "1",
        ],
        "",
    );
    let lines: Vec<String> = (0..30).map(|i| format!("k{i}:value {i}")).collect();
    ok(
        &["produce", "--topic", &topic, "-K", ":", "-H", "src=cli"],
        &(lines.join("\n") + "\n"),
    );
    let out = ok(
        &[
            "consume",
            "--topic",
            &topic,
            "--from-beginning",
            "--exit-at-end",
            "--format",
            "%k=%s|%h|%t\\n",
        ],
        "",
    );
    let mut got: Vec<&str> = out.lines().collect();
    got.sort();
    let mut want: Vec<String> = (0..30)
        .map(|i| format!("k{i}=value {i}|src=cli|{topic}"))
        .collect();
    want.sort();
    assert_eq!(got, want);

    // --count and --json.
    let out = ok(
        &[
            "--json",
            "consume",
            "--topic",
            &topic,
            "--from-beginning",
            "--count",
            "2",
        ],
        "",
    );
    let msgs: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(msgs.len(), 2);
    assert!(msgs[0]["value"].as_str().unwrap().starts_with("value "));

    // Metadata, describe, alter.
    let md = json(&["metadata", "--topic", &topic]);
    assert_eq!(md["topics"][0]["partitions"].as_array().unwrap().len(), 3);
    ok(
        &[
            "topics",
            "alter",
            "--topic",
            &topic,
            "--partitions",
            "4",
            "--config",
            "retention.ms=99999",
        ],
        "",
    );
    let d = json(&["topics", "describe", "--topic", &topic]);
    assert_eq!(d[0]["partitions"].as_array().unwrap().len(), 4);
    ok(&["topics", "delete", "--topic", &topic], "");

    // Errors: one line on stderr, non-zero exit.
    let out = run(&["topics", "delete", "--topic", &topic], "");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(err.starts_with("error: "), "{err}");
    let out = Command::new(env!("CARGO_BIN_EXE_kafka-sdk"))
        .args(["-b", "127.0.0.1:1", "-X", "no.such.key=1", "metadata"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no.such.key"), "{err}");
}

#[test]
fn lag_reset_then_consume_and_records_delete() {
    let topic = unique("cli-lag");
    let group = unique("cli-group");
    ok(
        &[
            "topics",
            "create",
            "--topic",
            &topic,
            "--partitions",
            "1",
            "--replication-factor",
            "1",
        ],
        "",
    );
    let lines: String = (0..10).map(|i| format!("r{i}\n")).collect();
    ok(&["produce", "--topic", &topic], &lines);

    // A group consumes 4 records and commits.
    let out = ok(
        &[
            "consume",
            "--topic",
            &topic,
            "--group",
            &group,
            "--from-beginning",
            "--count",
            "4",
        ],
        "",
    );
    assert_eq!(out, "r0\nr1\nr2\nr3\n");
    let lag = json(&["lag", "--group", &group]);
    assert_eq!(lag["total_lag"], 6, "{lag}");
    assert_eq!(lag["partitions"][0]["lag"], 6);
    assert_eq!(lag["partitions"][0]["committed"], 4);
    let table = ok(&["lag", "--group", &group], "");
    assert!(table.contains("total lag: 6"), "{table}");
    let watch = ok(
        &[
            "lag",
            "--group",
            &group,
            "--watch",
            "--interval-ms",
            "100",
            "--iterations",
            "2",
        ],
        "",
    );
    assert!(watch.contains("TREND"), "{watch}");

    // Dry run changes nothing; a reset to offset 8 leaves 2 records.
    let plan = json(&[
        "offsets",
        "reset",
        "--group",
        &group,
        "--to-earliest",
        "--dry-run",
    ]);
    assert_eq!(plan["partitions"][0]["offset"], 0);
    assert_eq!(json(&["lag", "--group", &group])["total_lag"], 6);
    ok(
        &["offsets", "reset", "--group", &group, "--to-offset", "8"],
        "",
    );
    assert_eq!(json(&["lag", "--group", &group])["total_lag"], 2);
    let out = ok(
        &[
            "consume",
            "--topic",
            &topic,
            "--group",
            &group,
            "--exit-at-end",
        ],
        "",
    );
    assert_eq!(out, "r8\nr9\n");
    assert_eq!(json(&["lag", "--group", &group])["total_lag"], 0);
    ok(
        &["offsets", "reset", "--group", &group, "--shift-by", "-3"],
        "",
    );
    assert_eq!(json(&["lag", "--group", &group])["total_lag"], 3);

    // Groups list / describe.
    let groups = json(&["groups", "list"]);
    assert!(groups
        .as_array()
        .unwrap()
        .iter()
        .any(|g| g["group"] == group.as_str()));
    let d = json(&["groups", "describe", "--group", &group]);
    assert_eq!(d["state"], "Empty");

    // Records delete moves the log start.
    let r = json(&[
        "records",
        "delete",
        "--topic",
        &topic,
        "--partition",
        "0",
        "--before",
        "5",
    ]);
    assert_eq!(r["low_watermark"], 5);
    let out = ok(
        &[
            "consume",
            "--topic",
            &topic,
            "--from-beginning",
            "--exit-at-end",
        ],
        "",
    );
    assert_eq!(out, "r5\nr6\nr7\nr8\nr9\n");
    ok(&["groups", "delete", "--group", &group], "");
}

/// `features` lists the cluster's feature levels; `quotas alter` sets and removes a client
/// id's quotas and `quotas describe` shows them (text and JSON); a non-numeric value and an
/// alteration without an entity are one-line errors.
#[test]
fn features_and_quotas() {
    let text = ok(&["features"], "");
    assert!(
        text.lines().any(|l| l.starts_with("metadata.version")),
        "{text}"
    );
    let f = json(&["features"]);
    assert!(f["finalized_epoch"].as_i64().unwrap() >= 0, "{f}");

    let client = unique("cli-quota");
    ok(
        &[
            "quotas",
            "alter",
            "--client-id",
            &client,
            "--set",
            "producer_byte_rate=1048576",
            "--set",
            "consumer_byte_rate=2097152",
        ],
        "",
    );
    // The brokers learn the quota from the controller a moment later.
    let described = || json(&["quotas", "describe", "--client-id", &client]);
    let mut d = described();
    for _ in 0..50 {
        if d.as_array().is_some_and(|a| !a.is_empty()) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
        d = described();
    }
    assert_eq!(d[0]["entity"], format!("client-id={client}"), "{d}");
    assert_eq!(d[0]["quotas"]["producer_byte_rate"], 1048576.0, "{d}");
    assert_eq!(d[0]["quotas"]["consumer_byte_rate"], 2097152.0, "{d}");
    let text = ok(&["quotas", "describe", "--client-id", &client], "");
    assert!(text.contains("producer_byte_rate=1048576"), "{text}");
    ok(
        &[
            "quotas",
            "alter",
            "--client-id",
            &client,
            "--remove",
            "producer_byte_rate",
            "--remove",
            "consumer_byte_rate",
        ],
        "",
    );
    let bad = run(
        &[
            "quotas",
            "alter",
            "--client-id",
            &client,
            "--set",
            "producer_byte_rate=fast",
        ],
        "",
    );
    assert!(!bad.status.success());
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(
        err.contains("not a number") && err.lines().count() == 1,
        "{err}"
    );
    let bad = run(&["quotas", "alter", "--set", "producer_byte_rate=1"], "");
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--client-id"));
}
