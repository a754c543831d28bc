//! `statistics.interval.ms` against the test kit's broker: a producer and consumers (classic
//! group, KIP-848 group, assign mode) emit snapshots on the interval whose counters match
//! what the run did and what the admin API says; dropping a client stops the emission.

mod support;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kafka_sdk::admin::{AdminClient, OffsetSpec};
use kafka_sdk::consumer::{CommitMode, Consumer, Offset};
use kafka_sdk::stats::Statistics;
use kafka_sdk::{Producer, ProducerRecord, TopicPartition};

use support::common::{self, unique};

const N: usize = 300;

type Seen = Arc<Mutex<Vec<Arc<Statistics>>>>;

fn collector() -> (Seen, impl Fn(Arc<Statistics>) + Send + Sync + 'static) {
    let seen: Seen = Arc::default();
    let s = seen.clone();
    (seen, move |st| s.lock().unwrap().push(st))
}

/// Waits (bounded) until a snapshot collected in `seen` satisfies `f`, and returns it.
async fn wait_for(seen: &Seen, what: &str, f: impl Fn(&Statistics) -> bool) -> Arc<Statistics> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(s) = seen.lock().unwrap().iter().rev().find(|s| f(s)) {
            return s.clone();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no snapshot with {what}; last: {:#?}",
            seen.lock().unwrap().last()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The median gap between consecutive snapshots (from their `ts`).
fn median_gap(seen: &Seen) -> Duration {
    let s = seen.lock().unwrap();
    let mut gaps: Vec<i64> = s.windows(2).map(|w| w[1].ts - w[0].ts).collect();
    gaps.sort();
    Duration::from_micros(gaps[gaps.len() / 2] as u64)
}

/// After the client is dropped: the watch channel closes and the handler is not called
/// again.
async fn assert_stops(seen: &Seen, mut rx: kafka_sdk::stats::StatisticsReceiver) {
    let closed = tokio::time::timeout(Duration::from_secs(20), async {
        while rx.changed().await.is_ok() {}
    })
    .await;
    assert!(closed.is_ok(), "statistics channel still open after drop");
    let n = seen.lock().unwrap().len();
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(seen.lock().unwrap().len(), n, "snapshots after drop");
}

fn partition_sum(
    s: &Statistics,
    topic: &str,
    f: impl Fn(&kafka_sdk::stats::PartitionStats) -> u64,
) -> u64 {
    s.topics
        .get(topic)
        .map(|t| t.partitions.values().map(f).sum())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn producer_and_group_consumer_statistics() {
    let bs = kafka_testkit::shared().bootstrap();
    let topic = unique("stats");
    common::create_topic(&bs, &topic, 2).await;

    // --- producer ---
    let (pseen, handler) = collector();
    let producer = Producer::builder(&common::config(
        &bs,
        &[("statistics.interval.ms", "200"), ("linger.ms", "5")],
    ))
    .statistics_handler(handler)
    .build()
    .await
    .unwrap();
    let prx = producer.subscribe_statistics();
    let mut per_partition: BTreeMap<i32, u64> = BTreeMap::new();
    let mut futs = Vec::new();
    for i in 0..N {
        let r = ProducerRecord::new(topic.as_str())
            .key(format!("k{i}"))
            .value(format!("value-{i}"));
        futs.push(producer.send(r).await.unwrap());
    }
    for f in futs {
        let m = f.await.unwrap();
        *per_partition.entry(m.partition).or_default() += 1;
    }
    let s = wait_for(&pseen, "txmsgs == N and nothing queued", |s| {
        s.txmsgs == N as u64 && s.msg_cnt == 0
    })
    .await;
    assert_eq!(s.client_type, "producer");
    assert!(s.txmsg_bytes > 0 && s.tx > 0 && s.rx > 0 && s.tx_bytes > 0 && s.rx_bytes > 0);
    assert_eq!(s.msg_size, 0, "{s:#?}");
    assert!(s.msg_size_max > 0);
    assert_eq!(partition_sum(&s, &topic, |p| p.txmsgs), N as u64);
    for (p, n) in &per_partition {
        let ps = &s.topics[&topic].partitions[p];
        assert_eq!(ps.txmsgs, *n, "partition {p}: {ps:#?}");
        assert!(ps.leader >= 0 && ps.broker == ps.leader);
    }
    let eos = s.eos.as_ref().expect("idempotent producer has eos");
    assert_eq!(eos.idemp_state, "Assigned");
    assert!(eos.producer_id >= 0 && eos.producer_epoch >= 0, "{eos:?}");
    let up = s
        .brokers
        .values()
        .find(|b| b.nodeid >= 0 && b.state == "UP")
        .unwrap_or_else(|| panic!("no UP broker: {:#?}", s.brokers));
    assert!(up.name.ends_with(&format!("/{}", up.nodeid)));
    assert!(
        up.connects >= 1 && up.req.get("Produce").copied().unwrap_or(0) > 0,
        "{up:#?}"
    );
    // rtt windows are per snapshot: some snapshot of the run saw responses.
    wait_for(&pseen, "a broker rtt cnt > 0", |s| {
        s.brokers
            .values()
            .any(|b| b.rtt.cnt > 0 && b.rtt.min <= b.rtt.avg && b.rtt.avg <= b.rtt.max)
    })
    .await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while pseen.lock().unwrap().len() < 8 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "fewer than 8 snapshots in 30 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let gap = median_gap(&pseen);
    assert!(
        gap >= Duration::from_millis(150) && gap <= Duration::from_millis(1500),
        "median gap {gap:?} for a 200 ms interval"
    );
    drop(producer);
    assert_stops(&pseen, prx).await;

    // --- classic group consumer ---
    let group = unique("stats-group");
    let (cseen, handler) = collector();
    let consumer = Consumer::builder(&common::config(
        &bs,
        &[
            ("group.id", &group),
            ("auto.offset.reset", "earliest"),
            ("enable.auto.commit", "false"),
            ("statistics.interval.ms", "200"),
        ],
    ))
    .statistics_handler(handler)
    .build()
    .await
    .unwrap();
    let crx = consumer.subscribe_statistics();
    consumer.subscribe(&[topic.as_str()]).unwrap();
    let mut got = 0;
    let mut bytes = 0u64;
    while got < N {
        let m = tokio::time::timeout(Duration::from_secs(60), consumer.recv())
            .await
            .expect("records within 60 s")
            .unwrap();
        bytes += (m.key().map_or(0, |k| k.len()) + m.value().map_or(0, |v| v.len())) as u64;
        got += 1;
    }
    consumer.commit(CommitMode::Sync).await.unwrap();
    let admin = AdminClient::new(&common::config(&bs, &[])).await.unwrap();
    let committed = admin.list_group_offsets(&group).await.unwrap();
    let tps: Vec<TopicPartition> = (0..2)
        .map(|p| TopicPartition::new(topic.as_str(), p))
        .collect();
    let ends = admin
        .list_offsets(
            tps.iter()
                .map(|tp| (tp.clone(), OffsetSpec::Latest))
                .collect(),
        )
        .await
        .unwrap();
    let positions = consumer.position();
    let s = wait_for(&cseen, "rxmsgs == N, committed, group up", |s| {
        s.rxmsgs == N as u64
            && s.cgrp.as_ref().is_some_and(|g| g.state == "up")
            && s.topics.get(&topic).is_some_and(|t| {
                t.partitions.values().all(|p| p.committed_offset >= 0) && t.partitions.len() == 2
            })
    })
    .await;
    assert_eq!(s.client_type, "consumer");
    assert_eq!(s.rxmsg_bytes, bytes);
    assert_eq!(partition_sum(&s, &topic, |p| p.rxmsgs), N as u64);
    let g = s.cgrp.as_ref().unwrap();
    assert_eq!(g.assignment_size, 2, "{g:?}");
    assert_eq!(g.join_state, "steady");
    assert!(g.rebalance_cnt >= 1, "{g:?}");
    for (tp, end) in ends {
        let end = end.unwrap().offset;
        let ps = &s.topics[&topic].partitions[&tp.partition];
        let admin_committed = committed
            .get(&tp)
            .copied()
            .flatten()
            .expect("committed offset");
        assert_eq!(ps.committed_offset, admin_committed, "{tp}: {ps:#?}");
        assert_eq!(ps.hi_offset, end, "{tp}: {ps:#?}");
        assert_eq!(ps.consumer_lag, end - admin_committed, "{tp}: {ps:#?}");
        assert_eq!(ps.consumer_lag, 0);
        assert_eq!(ps.fetch_state, "active");
        assert_eq!(ps.lo_offset, 0);
        let pos = positions
            .iter()
            .find(|(t, _)| *t == tp)
            .and_then(|(_, p)| *p);
        assert_eq!(Some(ps.app_offset), pos, "{tp}");
        assert_eq!(ps.rxmsgs, per_partition[&tp.partition]);
    }
    wait_for(&cseen, "a broker rtt cnt > 0 with fetches", |s| {
        s.brokers
            .values()
            .any(|b| b.rtt.cnt > 0 && b.req.get("Fetch").copied().unwrap_or(0) > 0)
    })
    .await;
    // A snapshot on demand, whatever the interval.
    let now = consumer.statistics();
    assert_eq!(now.rxmsgs, N as u64);
    drop(consumer);
    assert_stops(&cseen, crx).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kip848_and_assign_mode_statistics() {
    let bs = kafka_testkit::shared().bootstrap();
    let topic = unique("stats848");
    common::create_topic(&bs, &topic, 2).await;
    let producer = Producer::new(&common::config(&bs, &[])).await.unwrap();
    for p in 0..2 {
        for i in 0..5 {
            producer
                .send_and_wait(
                    ProducerRecord::new(topic.as_str())
                        .partition(p)
                        .value(format!("v{i}")),
                )
                .await
                .unwrap();
        }
    }
    // Interval 0: no emission, but `statistics()` works.
    let s = producer.statistics();
    assert_eq!(s.txmsgs, 10);
    assert!(producer.subscribe_statistics().borrow().is_none());

    let (seen, handler) = collector();
    let consumer = Consumer::builder(&common::config(
        &bs,
        &[
            ("group.id", &unique("stats848-group")),
            ("group.protocol", "consumer"),
            ("auto.offset.reset", "earliest"),
            ("statistics.interval.ms", "200"),
        ],
    ))
    .statistics_handler(handler)
    .build()
    .await
    .unwrap();
    consumer.subscribe(&[topic.as_str()]).unwrap();
    for _ in 0..10 {
        tokio::time::timeout(Duration::from_secs(60), consumer.recv())
            .await
            .expect("records within 60 s")
            .unwrap();
    }
    let s = wait_for(
        &seen,
        "KIP-848 group up with 2 partitions and 10 records",
        |s| {
            s.rxmsgs == 10
                && s.cgrp
                    .as_ref()
                    .is_some_and(|g| g.state == "up" && g.assignment_size == 2)
        },
    )
    .await;
    assert!(s.cgrp.as_ref().unwrap().rebalance_cnt >= 1);
    drop(consumer);

    // Assign mode: no group object; partitions and positions are there.
    let (seen, handler) = collector();
    let consumer = Consumer::builder(&common::config(&bs, &[("statistics.interval.ms", "200")]))
        .statistics_handler(handler)
        .build()
        .await
        .unwrap();
    consumer
        .assign(vec![(
            TopicPartition::new(topic.as_str(), 1),
            Offset::Beginning,
        )])
        .unwrap();
    for _ in 0..5 {
        tokio::time::timeout(Duration::from_secs(60), consumer.recv())
            .await
            .expect("records within 60 s")
            .unwrap();
    }
    let s = wait_for(&seen, "assign-mode partition at 5", |s| {
        s.topics
            .get(&topic)
            .and_then(|t| t.partitions.get(&1))
            .is_some_and(|p| p.app_offset == 5 && p.hi_offset == 5 && p.rxmsgs == 5)
    })
    .await;
    assert!(s.cgrp.is_none());
    let p = &s.topics[&topic].partitions[&1];
    assert_eq!(p.committed_offset, kafka_sdk::stats::OFFSET_INVALID);
    assert_eq!(p.consumer_lag, -1);
}
