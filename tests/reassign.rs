//! Partition reassignments through the admin client (KIP-455) on a real 3-node cluster: a
//! partition's replica moves to another broker while a producer writes to it, the
//! reassignment shows in the list until done, the metadata then names the new replica as
//! leader, and no record is lost. Local brokers only.

mod support;

use std::time::Duration;

use kafka_sdk::admin::{AdminClient, NewTopic};
use kafka_sdk::consumer::{Consumer, Offset};
use kafka_sdk::producer::{Producer, ProducerRecord};
use kafka_sdk::{Error, TopicPartition};
use kafka_testkit::{ClusterOptions, KafkaCluster};

use support::common::{self, unique};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_moves_to_another_broker_without_losing_records() {
    let cluster = common::blocking(|| {
        KafkaCluster::start(ClusterOptions {
            nodes: 3,
            heap_mb: 384,
            allow_external: false,
            ..ClusterOptions::default()
        })
        .expect("start a 3-node cluster")
    })
    .await;
    let b = cluster.bootstrap();
    let admin = AdminClient::new(&common::config(&b, &[])).await.unwrap();
    let topic = unique("reassign");
    admin
        .create_topic(NewTopic::new(topic.as_str(), 1, 1))
        .await
        .unwrap();
    let tp0 = TopicPartition::new(topic.as_str(), 0);
    let replicas_of = || async {
        let md = admin.fetch_metadata(Some(&topic)).await.unwrap();
        let p = &md.topics[0].partitions[0];
        (p.replicas.clone(), p.leader)
    };
    let (before, _) = replicas_of().await;
    assert_eq!(before.len(), 1, "{before:?}");
    let target = (1..=3).find(|n| *n != before[0]).unwrap();

    let p = Producer::new(&common::config(&b, &[("linger.ms", "5")]))
        .await
        .unwrap();
    let mut acks = Vec::new();
    for i in 0..500 {
        let r = ProducerRecord::new(topic.as_str())
            .partition(0)
            .value(format!("v{i}"));
        acks.push(p.send(r).await.unwrap());
    }

    // A broker that does not exist is refused for that partition; the real move accepted.
    let bad = admin
        .alter_partition_reassignments(&[(tp0.clone(), Some(vec![42]))])
        .await
        .unwrap();
    let e = bad[0].1.as_ref().expect_err("no broker 42");
    assert!(matches!(e, Error::Broker { .. }), "{e:?}");
    let r = admin
        .alter_partition_reassignments(&[(tp0.clone(), Some(vec![target]))])
        .await
        .unwrap();
    r[0].1.as_ref().expect("reassignment accepted");
    for i in 500..1000 {
        let r = ProducerRecord::new(topic.as_str())
            .partition(0)
            .value(format!("v{i}"));
        acks.push(p.send(r).await.unwrap());
    }
    // Done when the list is empty and the metadata shows the new replica leading.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let ongoing = admin
            .list_partition_reassignments(std::slice::from_ref(&tp0))
            .await
            .unwrap();
        let (replicas, leader) = replicas_of().await;
        if ongoing.is_empty() && replicas == vec![target] && leader == Some(target) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the move did not finish: {ongoing:?}, replicas {replicas:?}, leader {leader:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    for a in acks {
        a.await.expect("delivered across the move");
    }
    let c = Consumer::new(&common::config(&b, &[])).await.unwrap();
    c.assign(vec![(tp0.clone(), Offset::Beginning)]).unwrap();
    let mut got = Vec::new();
    while got.len() < 1000 {
        let m = tokio::time::timeout(Duration::from_secs(30), c.recv())
            .await
            .expect("records within 30 s")
            .expect("recv");
        got.push(String::from_utf8_lossy(m.value().unwrap()).into_owned());
    }
    let want: Vec<String> = (0..1000).map(|i| format!("v{i}")).collect();
    assert_eq!(
        got, want,
        "every record once, in order, from the new replica"
    );
    // Nothing to cancel any more: the controller says so for that partition.
    let cancel = admin
        .alter_partition_reassignments(&[(tp0.clone(), None)])
        .await
        .unwrap();
    assert!(cancel[0].1.is_err(), "{cancel:?}");
}
