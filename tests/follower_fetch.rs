//! Fetching from the closest replica (KIP-392) against a real 3-node cluster whose brokers
//! sit in racks `rack-1` .. `rack-3` and choose read replicas with Kafka's
//! `RackAwareReplicaSelector`. The consumer's `client.rack` names a follower's rack: the
//! leader names that follower as the partition's read replica, and the records come from it.
//! When the follower dies the consumer goes back to the leader and nothing is lost.
//! Local brokers only (racks and the selector are broker settings).

mod support;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use kafka_sdk::admin::{AdminClient, NewTopic};
use kafka_sdk::consumer::Consumer;
use kafka_sdk::producer::{Producer, ProducerRecord};
use kafka_testkit::{ClusterOptions, KafkaCluster};

use support::common::{self, unique};

fn start() -> KafkaCluster {
    KafkaCluster::start(ClusterOptions {
        nodes: 3,
        broker_props: vec![
            ("broker.rack".into(), "rack-{node}".into()),
            (
                "replica.selector.class".into(),
                "org.apache.kafka.common.replica.RackAwareReplicaSelector".into(),
            ),
            // A dead follower leaves the brokers the leader may name within seconds.
            ("broker.session.timeout.ms".into(), "3000".into()),
            ("broker.heartbeat.interval.ms".into(), "500".into()),
        ],
        heap_mb: 384,
        allow_external: false,
        ..ClusterOptions::default()
    })
    .expect("start a 3-node cluster with racks")
}

/// Fetch requests sent to each broker so far (the consumer's statistics).
fn fetches(c: &Consumer) -> BTreeMap<i32, u64> {
    c.statistics()
        .brokers
        .values()
        .filter(|b| b.nodeid >= 0)
        .map(|b| (b.nodeid, b.req.get("Fetch").copied().unwrap_or(0)))
        .collect()
}

async fn produce(p: &Producer, topic: &str, from: usize, n: usize) {
    let mut acks = Vec::new();
    for i in from..from + n {
        let r = ProducerRecord::new(topic)
            .partition(0)
            .value(format!("v{i}"));
        acks.push(p.send(r).await.unwrap());
    }
    for a in acks {
        a.await.unwrap();
    }
}

/// Receives `n` records and checks they are `v{from}` .. in order.
async fn receive(c: &Consumer, from: usize, n: usize, within: Duration) {
    let deadline = tokio::time::Instant::now() + within;
    for i in from..from + n {
        let m = tokio::time::timeout_at(deadline, c.recv())
            .await
            .unwrap_or_else(|_| panic!("record {i} not received within {within:?}"))
            .unwrap();
        assert_eq!(
            m.value().map(|v| &v[..]),
            Some(format!("v{i}").as_bytes()),
            "record {i}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_consumer_fetches_from_the_replica_in_its_rack() {
    let cluster = Arc::new(common::blocking(start).await);
    let bs = cluster.bootstrap();
    let topic = unique("follower");
    let admin = AdminClient::new(&common::config(&bs, &[])).await.unwrap();
    admin
        .create_topics(vec![NewTopic::new(topic.as_str(), 1, 3)])
        .await
        .unwrap();
    let meta = admin.describe_topics(&[topic.as_str()]).await.unwrap();
    let part = &meta[0].partitions[0];
    let leader = part.leader.expect("a leader");
    let follower = *part.replicas.iter().find(|r| **r != leader).unwrap();
    let producer = Producer::new(&common::config(&bs, &[("acks", "all")]))
        .await
        .unwrap();
    let n = 2_000;
    produce(&producer, &topic, 0, n).await;

    let rack = format!("rack-{follower}");
    let extra = [("client.rack", rack.as_str()), ("fetch.max.wait.ms", "100")];
    let c = common::reader_of_partition_0(&bs, &topic, &extra).await;
    receive(&c, 0, n, Duration::from_secs(60)).await;
    let seen = fetches(&c);
    let from_follower = seen.get(&follower).copied().unwrap_or(0);
    let from_leader = seen.get(&leader).copied().unwrap_or(0);
    assert!(
        from_follower > 0,
        "no fetch went to the follower {follower} in {rack}: {seen:?} (leader {leader})"
    );
    // The leader is asked once (it names the replica); a few more if the follower had not
    // caught up when asked.
    assert!(
        from_leader <= 5,
        "the leader {leader} served {from_leader} fetches: {seen:?}"
    );

    // The follower dies: fetches go back to the leader and nothing is lost.
    common::blocking({
        let cluster = cluster.clone();
        move || cluster.kill(follower)
    })
    .await
    .unwrap();
    produce(&producer, &topic, n, 500).await;
    receive(&c, n, 500, Duration::from_secs(60)).await;
    let after = fetches(&c);
    assert!(
        after.get(&leader).copied().unwrap_or(0) > from_leader,
        "no fetch from the leader after the follower died: {after:?}"
    );
    drop(c);
    drop(producer);
}
