//! One local broker: readiness, topics, leader lookup, tools, pause/resume, restart.

use std::time::{Duration, Instant};

use kafka_testkit::{probe_api_versions, ClusterOptions, KafkaCluster};

fn poll<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

// Runs inside a tokio runtime on purpose: the kit is blocking/std-only and must not try to
// create a nested runtime.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn single_node_lifecycle() {
    let t0 = Instant::now();
    let cluster = KafkaCluster::start(ClusterOptions {
        allow_external: false,
        heap_mb: 384,
        features: vec![("transaction.version".into(), "1".into())],
        ..ClusterOptions::default()
    })
    .expect("start 1-node cluster");
    eprintln!("1-node cluster started in {:.1?}", t0.elapsed());
    assert!(!cluster.external());
    assert_eq!(cluster.node_ids(), vec![1]);
    let bootstrap = cluster.bootstrap();
    assert_eq!(bootstrap, cluster.broker_addr(1));
    assert!(bootstrap.starts_with("127.0.0.1:"));
    assert!(cluster.log_path(1).is_file());

    // ApiVersions round trip.
    let keys = probe_api_versions(&bootstrap, Duration::from_secs(5)).expect("ApiVersions");
    assert!(keys > 40, "only {keys} api keys");

    // Topic + leader.
    cluster
        .create_topic("kt-single", 3, 1, &[("cleanup.policy", "delete")])
        .expect("create topic");
    assert_eq!(cluster.partition_leader("kt-single", 0).unwrap(), Some(1));
    assert_eq!(cluster.partition_leader("kt-single", 2).unwrap(), Some(1));
    assert_eq!(cluster.partition_leader("kt-single", 7).unwrap(), None);
    assert_eq!(cluster.partition_leader("kt-missing", 0).unwrap(), None);
    let dup = cluster.create_topic("kt-single", 1, 1, &[]).unwrap_err();
    assert!(dup.to_string().contains("TopicAlreadyExists"), "{dup}");

    // CLI tool: stdout is clean data.
    let t1 = Instant::now();
    let out = cluster
        .tool_output("topics", &["--bootstrap-server", &bootstrap, "--list"])
        .expect("run topics tool");
    eprintln!("topics --list took {:.1?}", t1.elapsed());
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.lines().any(|l| l == "kt-single"), "{stdout}");

    // The format --feature option took effect.
    let out = cluster
        .tool_output("features", &["--bootstrap-server", &bootstrap, "describe"])
        .expect("run features tool");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout
        .lines()
        .find(|l| l.contains("Feature: transaction.version"))
        .unwrap_or_else(|| panic!("no transaction.version in {stdout}"));
    assert!(line.contains("FinalizedVersionLevel: 1"), "{line}");

    // Pause: the socket accepts but nothing answers.
    cluster.pause(1).expect("pause");
    assert!(probe_api_versions(&bootstrap, Duration::from_millis(1500)).is_err());
    assert!(cluster.pause(1).is_ok(), "pausing twice is harmless");
    cluster.resume(1).expect("resume");
    probe_api_versions(&bootstrap, Duration::from_secs(5)).expect("ApiVersions after resume");

    // Restart: same ports, same data.
    let pid_before = cluster.pid(1).unwrap().unwrap();
    let t2 = Instant::now();
    cluster.restart(1).expect("restart");
    eprintln!("restart took {:.1?}", t2.elapsed());
    assert_ne!(cluster.pid(1).unwrap().unwrap(), pid_before);
    assert_eq!(cluster.bootstrap(), bootstrap);
    probe_api_versions(&bootstrap, Duration::from_secs(5)).expect("ApiVersions after restart");
    poll("leader after restart", Duration::from_secs(20), || {
        (cluster.partition_leader("kt-single", 1).ok()?? == 1).then_some(())
    });

    // Kill + start_node.
    cluster.kill(1).expect("kill");
    assert_eq!(cluster.pid(1).unwrap(), None);
    assert!(probe_api_versions(&bootstrap, Duration::from_millis(500)).is_err());
    assert!(
        cluster.resume(1).is_err(),
        "resume of a dead node must fail"
    );
    cluster.start_node(1).expect("start_node");
    assert!(cluster.start_node(1).is_err(), "already running");
    cluster.wait_ready(Duration::from_secs(10)).expect("ready");
    assert!(matches!(
        cluster.kill(42),
        Err(kafka_testkit::TestkitError::UnknownNode(42))
    ));

    let root = cluster.data_root().unwrap();
    let pid = cluster.pid(1).unwrap().unwrap();
    cluster.stop();
    assert!(!root.exists(), "temp dir removed on stop");
    assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists());
}

#[test]
fn tool_command_without_cluster() {
    let out = kafka_testkit::tool_command("kafka-topics.sh", &["--version"])
        .expect("tool command")
        .output()
        .expect("run");
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout
            .trim_start()
            .starts_with(|c: char| c.is_ascii_digit()),
        "{stdout}"
    );
    assert!(kafka_testkit::tool_command("no-such-tool", &[]).is_err());
}
