//! Three combined broker+controller nodes: failover after killing a partition leader.

use std::time::{Duration, Instant};

use kafka_testkit::{probe_api_versions, ClusterOptions, KafkaCluster};

fn poll<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(250));
    }
}

#[test]
fn three_node_failover() {
    let t0 = Instant::now();
    let cluster = KafkaCluster::start(ClusterOptions {
        nodes: 3,
        allow_external: false,
        heap_mb: 320,
        // Three JVMs starting at once on a 2-core machine can be slow under load.
        startup_timeout: Duration::from_secs(120),
        ..ClusterOptions::default()
    })
    .expect("start 3-node cluster");
    eprintln!("3-node cluster started in {:.1?}", t0.elapsed());
    assert_eq!(cluster.node_ids(), vec![1, 2, 3]);
    assert_eq!(cluster.bootstrap().split(',').count(), 3);
    for id in cluster.node_ids() {
        probe_api_versions(&cluster.broker_addr(id), Duration::from_secs(5)).expect("probe");
    }

    cluster
        .create_topic("kt-rf3", 1, 3, &[("min.insync.replicas", "2")])
        .expect("create RF-3 topic");
    let leader = cluster
        .partition_leader("kt-rf3", 0)
        .unwrap()
        .expect("leader");

    let out = cluster
        .tool_output(
            "metadata-quorum",
            &[
                "--bootstrap-server",
                &cluster.bootstrap(),
                "describe",
                "--status",
            ],
        )
        .expect("metadata-quorum");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    assert!(stdout.contains("CurrentVoters"), "{stdout}");

    let t1 = Instant::now();
    cluster.kill(leader).expect("kill leader");
    let new_leader = poll("a new leader", Duration::from_secs(45), || {
        cluster
            .partition_leader("kt-rf3", 0)
            .ok()
            .flatten()
            .filter(|&l| l != leader)
    });
    eprintln!(
        "leader moved {leader} -> {new_leader} in {:.1?}",
        t1.elapsed()
    );

    cluster.start_node(leader).expect("start killed node");
    cluster
        .wait_ready(Duration::from_secs(10))
        .expect("all ready");
    probe_api_versions(&cluster.broker_addr(leader), Duration::from_secs(5)).expect("probe");
    eprintln!("total {:.1?}", t0.elapsed());
}
