//! Share group (KIP-932) tests against a real Kafka 4.3 broker: one cluster for the whole
//! file, started with `share.version=1` and share-group limits low enough for short lock
//! durations and fast heartbeats. Each test has its own topic and group; the group's
//! `share.auto.offset.reset` is set to `earliest` and its `share.record.lock.duration.ms`
//! per test through IncrementalAlterConfigs on the group resource.

mod support;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use kafka_protocol::messages::incremental_alter_configs_request::{
    AlterConfigsResource, AlterableConfig,
};
use kafka_protocol::messages::IncrementalAlterConfigsRequest;
use kafka_protocol::protocol::StrBytes;
use kafka_sdk::cluster::{Cluster, ClusterOptions};
use kafka_sdk::{
    AcknowledgeType, ClientConfig, Error, KafkaCode, Producer, ProducerRecord, ShareConsumer,
    ShareRecord, TopicPartition,
};
use kafka_testkit::{ClusterOptions as KitOptions, KafkaCluster};

use support::common::{self, unique, TargetEvents};

/// The file's cluster: share groups on, the group limits lowered so tests can use a lock
/// duration of a few seconds and a 500 ms heartbeat.
fn cluster() -> &'static KafkaCluster {
    static CLUSTER: OnceLock<KafkaCluster> = OnceLock::new();
    CLUSTER.get_or_init(|| {
        let props = [
            ("group.share.min.record.lock.duration.ms", "1000"),
            ("group.share.record.lock.duration.ms", "15000"),
            ("group.share.min.heartbeat.interval.ms", "500"),
            ("group.share.heartbeat.interval.ms", "500"),
        ];
        KafkaCluster::start(KitOptions {
            broker_props: props
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            features: vec![("share.version".into(), "1".into())],
            allow_external: false,
            ..KitOptions::default()
        })
        .expect("start the share-group cluster")
    })
}

fn bootstrap() -> String {
    cluster().bootstrap()
}

/// A share group with `share.auto.offset.reset=earliest` and the given lock duration.
async fn share_group(lock_ms: u64) -> String {
    let group = unique("share-g");
    let lock = lock_ms.to_string();
    set_group_configs(
        &group,
        &[
            ("share.auto.offset.reset", "earliest"),
            ("share.record.lock.duration.ms", &lock),
        ],
    )
    .await;
    group
}

/// Sets group-level configs of `group` (IncrementalAlterConfigs on the GROUP resource).
async fn set_group_configs(group: &str, configs: &[(&str, &str)]) {
    let cluster = Cluster::connect(ClusterOptions::new(vec![bootstrap()]))
        .await
        .unwrap();
    let req = IncrementalAlterConfigsRequest::default().with_resources(vec![
        AlterConfigsResource::default()
            .with_resource_type(32) // GROUP
            .with_resource_name(StrBytes::from_string(group.to_string()))
            .with_configs(
                configs
                    .iter()
                    .map(|(k, v)| {
                        AlterableConfig::default()
                            .with_name(StrBytes::from_string(k.to_string()))
                            .with_config_operation(0)
                            .with_value(Some(StrBytes::from_string(v.to_string())))
                    })
                    .collect(),
            ),
    ]);
    let conn = cluster.any_connection().await.unwrap();
    let resp = conn.send(&req).await.unwrap();
    for r in resp.responses {
        assert_eq!(r.error_code, 0, "group config: {:?}", r.error_message);
    }
}

async fn topic(partitions: i32) -> String {
    let t = unique("share-t");
    common::create_topic(&bootstrap(), &t, partitions).await;
    t
}

fn share_config(group: &str, extra: &[(&str, &str)]) -> ClientConfig {
    let mut c = common::config(&bootstrap(), &[("group.id", group)]);
    for (k, v) in extra {
        c.set(*k, *v);
    }
    c
}

async fn consumer(group: &str, topic: &str, extra: &[(&str, &str)]) -> ShareConsumer {
    let c = ShareConsumer::new(&share_config(group, extra))
        .await
        .expect("share consumer");
    c.subscribe(&[topic]).unwrap();
    c
}

/// A consumer of `group` on `topic` that acknowledges explicitly.
async fn explicit_consumer(group: &str, topic: &str) -> ShareConsumer {
    consumer(group, topic, &[("share.acknowledgement.mode", "explicit")]).await
}

/// Waits until the consumer's assignment is not empty.
async fn assigned(c: &ShareConsumer) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while c.assignment().is_empty() {
        assert!(Instant::now() < deadline, "no share assignment within 60 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Produces `values` to partition 0, one record per batch (so that the group can hand
/// them to different consumers).
async fn produce(topic: &str, values: impl IntoIterator<Item = String>) {
    let p = Producer::new(&common::config(&bootstrap(), &[("linger.ms", "0")]))
        .await
        .unwrap();
    for v in values {
        p.send(ProducerRecord::new(topic).partition(0).value(v))
            .await
            .unwrap()
            .await
            .unwrap();
    }
}

fn value(r: &ShareRecord) -> String {
    String::from_utf8(r.value().unwrap().to_vec()).unwrap()
}

/// Receives one record within `within`, or `None`.
async fn recv_within(c: &ShareConsumer, within: Duration) -> Option<ShareRecord> {
    match tokio::time::timeout(within, c.recv()).await {
        Ok(r) => Some(r.expect("recv")),
        Err(_) => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn consumers_share_one_partition() {
    let (topic, group) = (topic(1).await, share_group(15_000).await);
    let n = 150;
    let mut consumers = Vec::new();
    for _ in 0..3 {
        consumers.push(Arc::new(
            consumer(&group, &topic, &[("max.poll.records", "5")]).await,
        ));
    }
    for c in &consumers {
        assigned(c).await;
    }
    let seen: Arc<Mutex<Vec<(usize, String, u16)>>> = Arc::default();
    let mut tasks = Vec::new();
    for (i, c) in consumers.iter().enumerate() {
        let (c, seen) = (c.clone(), seen.clone());
        tasks.push(tokio::spawn(async move {
            while seen.lock().unwrap().len() < n {
                if let Some(r) = recv_within(&c, Duration::from_millis(200)).await {
                    seen.lock()
                        .unwrap()
                        .push((i, value(&r), r.delivery_count()));
                    // A little work per record, so that the others get their turn.
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            }
        }));
    }
    produce(&topic, (0..n).map(|i| format!("v{i}"))).await;
    let all = async {
        for t in tasks {
            t.await.unwrap();
        }
    };
    tokio::time::timeout(Duration::from_secs(90), all)
        .await
        .expect("every record received within 90 s");
    let seen = seen.lock().unwrap().clone();
    let values: BTreeSet<&String> = seen.iter().map(|(_, v, _)| v).collect();
    assert_eq!(values.len(), n, "every record once");
    assert_eq!(seen.len(), n, "no record delivered twice: {seen:?}");
    assert!(seen.iter().all(|(_, _, d)| *d == 1));
    let per: BTreeMap<usize, usize> = seen.iter().fold(BTreeMap::new(), |mut m, (i, _, _)| {
        *m.entry(*i).or_default() += 1;
        m
    });
    assert_eq!(per.len(), 3, "every consumer got records: {per:?}");
    // Java's share-groups tool lists the three members under the ids they generated.
    let (b, g) = (bootstrap(), group.clone());
    let out = common::blocking(move || {
        cluster().tool_output(
            "share-groups",
            &[
                "--bootstrap-server",
                &b,
                "--describe",
                "--group",
                &g,
                "--members",
            ],
        )
    })
    .await
    .expect("kafka-share-groups");
    let text = String::from_utf8_lossy(&out.stdout);
    for c in &consumers {
        assert!(
            text.contains(c.member_id()),
            "{} not in:\n{text}",
            c.member_id()
        );
    }
    for c in consumers {
        Arc::try_unwrap(c).unwrap().close().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn release_redelivers_and_reject_never() {
    let (topic, group) = (topic(1).await, share_group(15_000).await);
    let c = explicit_consumer(&group, &topic).await;
    assigned(&c).await;
    produce(&topic, (0..10).map(|i| format!("r{i}"))).await;
    // First deliveries: release the even offsets, reject the odd ones.
    let mut first: BTreeMap<i64, u16> = BTreeMap::new();
    let mut second: BTreeMap<i64, u16> = BTreeMap::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while second.len() < 5 {
        assert!(
            Instant::now() < deadline,
            "first {first:?} second {second:?}"
        );
        let Some(r) = recv_within(&c, Duration::from_secs(5)).await else {
            continue;
        };
        let o = r.offset();
        if let std::collections::btree_map::Entry::Vacant(e) = first.entry(o) {
            e.insert(r.delivery_count());
            let ack = if o % 2 == 0 {
                AcknowledgeType::Release
            } else {
                AcknowledgeType::Reject
            };
            c.acknowledge(&r, ack).unwrap();
        } else {
            assert_eq!(o % 2, 0, "rejected offset {o} delivered again");
            second.insert(o, r.delivery_count());
            c.acknowledge(&r, AcknowledgeType::Accept).unwrap();
        }
    }
    assert_eq!(first.len(), 10);
    assert!(first.values().all(|d| *d == 1), "{first:?}");
    assert_eq!(
        second.keys().copied().collect::<Vec<_>>(),
        vec![0, 2, 4, 6, 8]
    );
    assert!(second.values().all(|d| *d == 2), "{second:?}");
    let results = c.commit_sync().await.unwrap();
    assert!(results.values().all(Result::is_ok), "{results:?}");
    // Nothing comes back: accepted and rejected records are done.
    assert!(recv_within(&c, Duration::from_secs(3)).await.is_none());
    c.close().await.unwrap();
}

/// Receives `n` records on `c` (explicit mode, not acknowledged), by offset.
async fn hold(c: &ShareConsumer, n: usize) -> BTreeMap<i64, ShareRecord> {
    let mut held = BTreeMap::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while held.len() < n {
        assert!(Instant::now() < deadline, "held only {:?}", held.keys());
        if let Some(r) = recv_within(c, Duration::from_secs(5)).await {
            held.insert(r.offset(), r);
        }
    }
    held
}

/// Receives `n` records on `c` and accepts them: offset -> delivery count.
async fn take_accept(c: &ShareConsumer, n: usize, within: Duration) -> BTreeMap<i64, u16> {
    let mut got = BTreeMap::new();
    let deadline = Instant::now() + within;
    while got.len() < n {
        assert!(Instant::now() < deadline, "got only {got:?}");
        if let Some(r) = recv_within(c, Duration::from_secs(5)).await {
            got.insert(r.offset(), r.delivery_count());
            c.acknowledge(&r, AcknowledgeType::Accept).unwrap();
        }
    }
    got
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn held_records_come_back_after_the_lock() {
    let lock = Duration::from_secs(3);
    let (topic, group) = (topic(1).await, share_group(lock.as_millis() as u64).await);
    let a = explicit_consumer(&group, &topic).await;
    let b = explicit_consumer(&group, &topic).await;
    assigned(&a).await;
    assigned(&b).await;
    produce(&topic, (0..5).map(|i| format!("d{i}"))).await;
    // A hangs on to the records: alive, connected, never acknowledging.
    let before_acquired = Instant::now();
    let held = hold(&a, 5).await;
    assert!(held.values().all(|r| r.delivery_count() == 1));
    let again = hold(&b, 5).await;
    let waited = before_acquired.elapsed();
    assert_eq!(
        again.keys().collect::<Vec<_>>(),
        held.keys().collect::<Vec<_>>()
    );
    assert!(again.values().all(|r| r.delivery_count() == 2));
    // They came back because the lock ran out, not before.
    assert!(
        waited >= lock - Duration::from_millis(200),
        "back after {waited:?}"
    );
    // A's late acknowledgement is refused by the broker (B holds the record now): reported
    // for its partition by commit_sync.
    let late = held.values().next().unwrap();
    a.acknowledge(late, AcknowledgeType::Accept).unwrap();
    let results = a.commit_sync().await.unwrap();
    let r = results
        .get(&late.topic_partition())
        .expect("a result for the partition");
    assert!(
        matches!(r, Err(e) if e.code() == Some(KafkaCode::INVALID_RECORD_STATE)),
        "{r:?}"
    );
    for r in again.values() {
        b.acknowledge(r, AcknowledgeType::Accept).unwrap();
    }
    let results = b.commit_sync().await.unwrap();
    assert!(results.values().all(Result::is_ok), "{results:?}");
    drop(a);
    b.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_consumer_records_come_back() {
    // A long lock: the broker releases a dead consumer's records when its connection
    // closes, well before the lock would run out.
    let (topic, group) = (topic(1).await, share_group(60_000).await);
    let a = explicit_consumer(&group, &topic).await;
    assigned(&a).await;
    produce(&topic, (0..5).map(|i| format!("k{i}"))).await;
    let held = hold(&a, 5).await;
    // "Killed": dropped without acknowledging, closing the session or leaving.
    drop(a);
    let b = explicit_consumer(&group, &topic).await;
    let again = take_accept(&b, 5, Duration::from_secs(40)).await;
    assert_eq!(
        again.keys().collect::<Vec<_>>(),
        held.keys().collect::<Vec<_>>()
    );
    assert!(again.values().all(|d| *d == 2), "{again:?}");
    b.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_releases_held_records_promptly() {
    // A long lock: the records come back long before it runs out. (The broker also releases
    // a closed connection's records, so this passes without close's releases too;
    // `close_accepts_what_implicit_mode_handed_out` checks close's own acknowledgements.)
    let (topic, group) = (topic(1).await, share_group(60_000).await);
    let a = explicit_consumer(&group, &topic).await;
    assigned(&a).await;
    produce(&topic, (0..6).map(|i| format!("c{i}"))).await;
    // Receive one record (the rest of the fetch stays buffered, also held).
    let first = recv_within(&a, Duration::from_secs(30))
        .await
        .expect("a record");
    assert_eq!(first.delivery_count(), 1);
    let b = explicit_consumer(&group, &topic).await;
    assigned(&b).await;
    let closed_at = Instant::now();
    a.close().await.unwrap();
    let mut got = BTreeMap::new();
    while got.len() < 6 {
        assert!(
            closed_at.elapsed() < Duration::from_secs(30),
            "released records not redelivered promptly: {got:?}"
        );
        if let Some(r) = recv_within(&b, Duration::from_secs(5)).await {
            got.insert(r.offset(), r.delivery_count());
            b.acknowledge(&r, AcknowledgeType::Accept).unwrap();
        }
    }
    assert_eq!(got.get(&first.offset()), Some(&2), "{got:?}");
    b.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_accepts_what_implicit_mode_handed_out() {
    // Implicit mode: close accepts the record handed out (as the next receive would) and
    // releases the rest. Without that final acknowledgement the broker would release every
    // record when the connection closes, and the handed-out one would come back too.
    let (topic, group) = (topic(1).await, share_group(60_000).await);
    produce(&topic, (0..6).map(|i| format!("a{i}"))).await;
    let a = consumer(&group, &topic, &[]).await;
    let first = recv_within(&a, Duration::from_secs(60))
        .await
        .expect("a record");
    a.close().await.unwrap();
    let b = explicit_consumer(&group, &topic).await;
    let got = take_accept(&b, 5, Duration::from_secs(30)).await;
    assert!(!got.contains_key(&first.offset()), "{got:?}");
    assert!(recv_within(&b, Duration::from_secs(3)).await.is_none());
    b.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn implicit_and_explicit_modes() {
    let (topic, group) = (topic(1).await, share_group(15_000).await);
    // Implicit: receiving again accepts what was received; commit_sync accepts the rest.
    let c = consumer(&group, &topic, &[]).await;
    assigned(&c).await;
    produce(&topic, (0..8).map(|i| format!("i{i}"))).await;
    let mut got = BTreeSet::new();
    let mut last = None;
    let deadline = Instant::now() + Duration::from_secs(30);
    while got.len() < 8 {
        assert!(Instant::now() < deadline, "{got:?}");
        if let Some(r) = recv_within(&c, Duration::from_secs(5)).await {
            got.insert(r.offset());
            last = Some(r);
        }
    }
    let last = last.unwrap();
    let e = c.acknowledge(&last, AcknowledgeType::Accept).unwrap_err();
    assert!(matches!(e, Error::State(_)), "{e}");
    let results = c.commit_sync().await.unwrap();
    assert_eq!(results.len(), 1, "{results:?}");
    assert!(results.values().all(Result::is_ok), "{results:?}");
    c.close().await.unwrap();
    // Everything was accepted: a new member gets nothing.
    let d = consumer(&group, &topic, &[]).await;
    assigned(&d).await;
    assert!(recv_within(&d, Duration::from_secs(3)).await.is_none());
    d.close().await.unwrap();

    // Explicit: a record is held until acknowledged; a second acknowledgement is refused.
    let (topic, group) = (self::topic(1).await, share_group(15_000).await);
    let e = explicit_consumer(&group, &topic).await;
    assigned(&e).await;
    produce(&topic, ["x".to_string()]).await;
    let r = recv_within(&e, Duration::from_secs(30))
        .await
        .expect("a record");
    e.acknowledge(&r, AcknowledgeType::Accept).unwrap();
    let err = e.acknowledge(&r, AcknowledgeType::Accept).unwrap_err();
    assert!(matches!(err, Error::State(_)), "{err}");
    let results = e.commit_sync().await.unwrap();
    assert!(results.values().all(Result::is_ok), "{results:?}");
    e.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_group_config_is_a_typed_error() {
    let e = ShareConsumer::new(&common::config(&bootstrap(), &[]))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("group.id"), "{e}");
    let e = ShareConsumer::new(&common::config(
        &bootstrap(),
        &[("group.id", "g"), ("share.acknowledgement.mode", "never")],
    ))
    .await
    .unwrap_err();
    assert!(e.to_string().contains("share.acknowledgement.mode"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_id_of_a_consumer_group_is_a_typed_error() {
    // A classic consumer group owns the id (created by an offset commit).
    let topic = topic(1).await;
    let group = unique("classic-g");
    let classic = kafka_sdk::Consumer::new(&share_config(&group, &[]))
        .await
        .unwrap();
    classic
        .assign(vec![(
            kafka_sdk::TopicPartition::new(topic.as_str(), 0),
            kafka_sdk::Offset::Beginning,
        )])
        .unwrap();
    let mut offsets = HashMap::new();
    offsets.insert(kafka_sdk::TopicPartition::new(topic.as_str(), 0), 0i64);
    classic
        .commit_offsets(offsets, kafka_sdk::CommitMode::Sync)
        .await
        .unwrap();
    classic.close().await.unwrap();
    let c = consumer(&group, &topic, &[]).await;
    let e = tokio::time::timeout(Duration::from_secs(60), c.recv())
        .await
        .expect("an error, not a hang")
        .unwrap_err();
    assert!(e.code().is_some(), "{e}");
    assert!(!e.is_retriable(), "{e}");
    // It stays: every later call says the same.
    let again = tokio::time::timeout(Duration::from_secs(5), c.recv())
        .await
        .expect("an error, not a hang")
        .unwrap_err();
    assert_eq!(again.code(), e.code(), "{again}");
    drop(c);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mixed_with_java_console_share_consumer() {
    let (topic, group) = (topic(1).await, share_group(15_000).await);
    let ours = Arc::new(consumer(&group, &topic, &[("max.poll.records", "5")]).await);
    assigned(&ours).await;
    let mut java = cluster()
        .tool(
            "console-share-consumer",
            &[
                "--bootstrap-server",
                &bootstrap(),
                "--topic",
                &topic,
                "--group",
                &group,
                "--timeout-ms",
                "8000",
                "--command-property",
                "max.poll.records=5",
            ],
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start kafka-console-share-consumer");
    let java_seen: Arc<Mutex<Vec<String>>> = Arc::default();
    let reader = {
        let out = java.stdout.take().unwrap();
        let seen = java_seen.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(out)
                .lines()
                .map_while(std::result::Result::ok)
            {
                seen.lock().unwrap().push(line.trim().to_string());
            }
        })
    };
    let ours_seen: Arc<Mutex<Vec<(String, u16)>>> = Arc::default();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let our_task = {
        let (c, seen, stop) = (ours.clone(), ours_seen.clone(), stop.clone());
        tokio::spawn(async move {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                if let Some(r) = recv_within(&c, Duration::from_millis(200)).await {
                    seen.lock().unwrap().push((value(&r), r.delivery_count()));
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            }
        })
    };
    // Produce until both consumers have received records, then 60 more.
    let mut produced = 0usize;
    let deadline = Instant::now() + Duration::from_secs(90);
    while java_seen.lock().unwrap().is_empty() || ours_seen.lock().unwrap().is_empty() {
        assert!(Instant::now() < deadline, "Java or ours never got a record");
        produce(&topic, (produced..produced + 5).map(|i| format!("m{i}"))).await;
        produced += 5;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    produce(&topic, (produced..produced + 60).map(|i| format!("m{i}"))).await;
    produced += 60;
    let all: BTreeSet<String> = (0..produced).map(|i| format!("m{i}")).collect();
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let mut union: BTreeSet<String> = java_seen.lock().unwrap().iter().cloned().collect();
        union.extend(ours_seen.lock().unwrap().iter().map(|(v, _)| v.clone()));
        if all.is_subset(&union) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "missing {:?}",
            all.difference(&union).collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Java exits on its own after 8 s without records (closing its consumer); its exit
    // status is not what is tested.
    let _ = common::blocking(move || java.wait()).await;
    reader.join().unwrap();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    our_task.await.unwrap();
    let java_seen = java_seen.lock().unwrap().clone();
    let ours_seen = ours_seen.lock().unwrap().clone();
    let java_set: BTreeSet<&String> = java_seen.iter().collect();
    // Each record went to one consumer at a time: a record both got was redelivered (a
    // higher delivery count on our side), never handed to both at once.
    let ours_count: HashMap<&String, u16> = ours_seen.iter().map(|(v, d)| (v, *d)).collect();
    for (v, d) in &ours_count {
        if java_set.contains(v) {
            assert!(*d > 1, "{v} delivered to Java and to us at once");
        }
    }
    assert!(!java_seen.is_empty() && !ours_seen.is_empty());
    Arc::try_unwrap(ours).unwrap().close().await.unwrap();
}

/// A consumer whose assigned topic was deleted (the group's assignment still names it until
/// the next heartbeat, here 10 s away): Kafka 4.3 fails every ShareFetch of a session that
/// holds the deleted partition with UNKNOWN_SERVER_ERROR ("No share partition found ...
/// while releasing acquired topic partitions" in its log). The consumer reports that once,
/// refreshes its metadata, learns the topic is gone and stops fetching it; and while the
/// assignment names a topic the metadata does not know, it waits between metadata
/// requests instead of sending them back to back. Counted while `recv` waits: its errors,
/// and the cluster layer's "metadata refreshed" events. Before, every fetch failed the
/// same way until the heartbeat (an error for each `recv`), and once the metadata did
/// drop the topic the fetch driver's loop refreshed, found nothing to send and went round
/// again at once (hundreds of Metadata requests a second; the same loop ran for
/// partitions without a leader during an election).
#[tokio::test]
async fn a_deleted_topic_costs_one_error_and_no_metadata_storm() {
    use tracing_subscriber::layer::SubscriberExt as _;
    let events = TargetEvents::new("kafka_sdk::cluster");
    // Current-thread runtime: the consumer's tasks run on this thread, under this default
    // subscriber.
    let _guard =
        tracing::subscriber::set_default(tracing_subscriber::registry().with(events.clone()));
    let (topic, group) = (topic(1).await, share_group(15_000).await);
    set_group_configs(&group, &[("share.heartbeat.interval.ms", "10000")]).await;
    produce(&topic, ["one".to_string()]).await;
    let c = consumer(&group, &topic, &[("allow.auto.create.topics", "false")]).await;
    recv_within(&c, Duration::from_secs(60))
        .await
        .expect("the record within 60 s");
    let admin = kafka_sdk::AdminClient::new(&common::config(&bootstrap(), &[]))
        .await
        .unwrap();
    for (name, res) in admin.delete_topics(&[topic.as_str()]).await.unwrap() {
        res.unwrap_or_else(|e| panic!("delete {name}: {e}"));
    }
    let refreshed = |events: &TargetEvents| {
        events
            .events()
            .iter()
            .filter(|e| e.get("message").is_some_and(|m| m == "metadata refreshed"))
            .count()
    };
    let before = refreshed(&events);
    let window = Duration::from_secs(4);
    let end = tokio::time::Instant::now() + window;
    let mut errors = Vec::new();
    while let Ok(r) = tokio::time::timeout_at(end, c.recv()).await {
        match r {
            Ok(r) => panic!("a record from a deleted topic: {r:?}"),
            Err(e) => {
                assert!(!e.is_fatal(), "{e}");
                errors.push(e.to_string());
            }
        }
    }
    let during = refreshed(&events) - before;
    assert!(
        errors.len() <= 1,
        "{} errors in {window:?} for one deleted topic: {errors:?}",
        errors.len()
    );
    // Rounds backing off from 50 ms towards 1 s: ~8 in 4 s, up to two refreshes each (the
    // unresolved assignment before, the acknowledgement still to send after), plus the
    // membership's own. The loop without backoff made 14,371.
    assert!(
        during <= 40,
        "{during} metadata refreshes in {window:?} while the assignment named a deleted topic"
    );
    drop(c);
}

/// Share-group start offsets through the admin client (KIP-932), as `kafka-share-groups
/// --describe / --reset-offsets / --delete-offsets` handle them: the group has a start offset
/// once it consumed; while a member is in the group a reset is refused
/// (NON_EMPTY_GROUP); once empty, a reset to offset 3 makes the next member get offsets 3..
/// again; deleting the topic's offsets leaves the group without any.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn share_group_offsets_listed_reset_and_deleted_by_the_admin_client() {
    let (topic, group) = (topic(1).await, share_group(15_000).await);
    let admin = kafka_sdk::AdminClient::new(&common::config(&bootstrap(), &[]))
        .await
        .unwrap();
    let tp0 = TopicPartition::new(topic.as_str(), 0);
    let c = explicit_consumer(&group, &topic).await;
    assigned(&c).await;
    produce(&topic, (0..10).map(|i| format!("o{i}"))).await;
    let got = take_accept(&c, 10, Duration::from_secs(60)).await;
    assert_eq!(
        got.keys().copied().collect::<Vec<_>>(),
        (0..10).collect::<Vec<i64>>()
    );
    let results = c.commit_sync().await.unwrap();
    assert!(results.values().all(Result::is_ok), "{results:?}");
    // The group has a start offset for the partition (it may trail records accepted at the
    // end of the log: the broker moves it with later state writes).
    let offsets = admin.list_share_group_offsets(&group).await.unwrap();
    assert!(
        matches!(offsets.get(&tp0), Some(Some(o)) if (0..=10).contains(o)),
        "{offsets:?}"
    );
    let busy = admin
        .alter_share_group_offsets(&group, &[(tp0.clone(), 3)])
        .await;
    let refused = match busy {
        Err(e) => e,
        Ok(r) => r[0]
            .1
            .clone()
            .expect_err("a reset with a member in the group"),
    };
    assert_eq!(
        refused.code(),
        Some(KafkaCode::NON_EMPTY_GROUP),
        "{refused}"
    );
    c.close().await.unwrap();

    let r = admin
        .alter_share_group_offsets(&group, &[(tp0.clone(), 3)])
        .await
        .unwrap();
    r[0].1.as_ref().expect("reset of an empty group");
    assert_eq!(
        admin
            .list_share_group_offsets(&group)
            .await
            .unwrap()
            .get(&tp0),
        Some(&Some(3))
    );
    let c = explicit_consumer(&group, &topic).await;
    let again = take_accept(&c, 7, Duration::from_secs(60)).await;
    assert_eq!(
        again.keys().copied().collect::<Vec<_>>(),
        (3..10).collect::<Vec<i64>>()
    );
    c.commit_sync().await.unwrap();
    c.close().await.unwrap();

    let r = admin
        .delete_share_group_offsets(&group, &[topic.as_str()])
        .await
        .unwrap();
    r[0].1.as_ref().expect("offsets deleted");
    let left = admin.list_share_group_offsets(&group).await.unwrap();
    assert!(!left.contains_key(&tp0) || left[&tp0].is_none(), "{left:?}");
}
