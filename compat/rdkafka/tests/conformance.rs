//! The conformance programs (compat/rdkafka/conformance/, written against rdkafka 0.39's
//! API) run through the drop-in crate against the test kit's broker, and their results are
//! checked with kafka-sdk's native API: counts, offsets, committed offsets.
//!
//! One shared broker (`kafka_testkit::shared()`); each test uses its own topics and groups.

mod common;
use common::{bootstrap, unique};

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use kafka_sdk::admin::{AdminClient, NewTopic};
use kafka_sdk::{ClientConfig, Consumer, Offset, Producer, ProducerRecord, TopicPartition};
use kafka_sdk_rdkafka_conformance as conformance;

fn config(extra: &[(&str, &str)]) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", bootstrap());
    for (k, v) in extra {
        c.set(*k, *v);
    }
    c
}

async fn create_topic(topic: &str, partitions: i32) {
    let admin = AdminClient::new(&config(&[])).await.unwrap();
    admin
        .create_topic(NewTopic::new(topic, partitions, 1))
        .await
        .unwrap_or_else(|e| panic!("create topic {topic}: {e}"));
}

/// Writes `n` keyed records with the native producer.
async fn produce_native(topic: &str, n: usize) {
    let p = Producer::new(&config(&[])).await.unwrap();
    let mut pending = Vec::new();
    for i in 0..n {
        let r = ProducerRecord::new(topic)
            .key(format!("n{i}"))
            .value(format!("native-{i}"));
        pending.push(p.send(r).await.unwrap());
    }
    for d in pending {
        d.await.unwrap();
    }
}

/// The partitions of `topic` and their high watermarks, through the native consumer.
async fn high_watermarks(topic: &str) -> BTreeMap<i32, i64> {
    let c = Consumer::new(&config(&[])).await.unwrap();
    let parts = c.partitions_for(topic).await.unwrap();
    let mut out = BTreeMap::new();
    for p in parts {
        let tp = TopicPartition::new(topic, p.partition);
        let w = c
            .fetch_watermarks(&tp, Duration::from_secs(30))
            .await
            .unwrap();
        out.insert(p.partition, w.high);
    }
    out
}

/// Reads `topic` from the beginning with the native consumer until `expect` records came,
/// then until nothing more comes for a second; returns (key, partition) of each.
async fn read_native(topic: &str, expect: usize, extra: &[(&str, &str)]) -> Vec<(String, i32)> {
    let c = Consumer::new(&config(extra)).await.unwrap();
    let parts = c.partitions_for(topic).await.unwrap();
    c.assign(
        parts
            .iter()
            .map(|p| (TopicPartition::new(topic, p.partition), Offset::Beginning))
            .collect(),
    )
    .unwrap();
    let mut seen = Vec::new();
    loop {
        let wait = if seen.len() < expect {
            Duration::from_secs(60)
        } else {
            Duration::from_secs(1)
        };
        match tokio::time::timeout(wait, c.recv()).await {
            Ok(m) => {
                let m = m.unwrap();
                let key = m
                    .key()
                    .map(|k| String::from_utf8_lossy(k).into_owned())
                    .unwrap_or_default();
                seen.push((key, m.partition()));
            }
            Err(_) if seen.len() >= expect => return seen,
            Err(_) => panic!("only {} of {expect} records of {topic} read", seen.len()),
        }
    }
}

/// Committed offsets of `group` for `topic`, through the native consumer.
async fn committed_native(group: &str, topic: &str) -> BTreeMap<i32, i64> {
    let c = Consumer::new(&config(&[("group.id", group)]))
        .await
        .unwrap();
    let parts: Vec<TopicPartition> = c
        .partitions_for(topic)
        .await
        .unwrap()
        .iter()
        .map(|p| TopicPartition::new(topic, p.partition))
        .collect();
    c.committed(Some(&parts), Duration::from_secs(30))
        .await
        .unwrap()
        .into_iter()
        .filter_map(|(tp, o)| o.map(|o| (tp.partition, o)))
        .collect()
}

/// The options of program `$m` (each program carries its own copy of `common.rs`).
macro_rules! opts {
    ($m:ident, $topic:expr, $count:expr, $group:expr) => {
        conformance::$m::Opts::new(&bootstrap(), $topic, $count, $group)
    };
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn produce_future_and_base_producer() {
    let topic = unique("rdk-produce");
    create_topic(&topic, 3).await;
    let o = opts!(produce, &topic, 200, "unused");
    let report = conformance::produce::run(&o).await.unwrap();
    assert_eq!(report.future_acked, 200);
    assert_eq!(report.base_acked, 200);
    assert_eq!(report.base_failed, 0);

    // The native view: 400 records, the last offsets the facade reported are the last ones
    // written, and both producers put a key in the same partition.
    let high = high_watermarks(&topic).await;
    assert_eq!(high.values().sum::<i64>(), 400, "{high:?}");
    for (p, last) in &report.last_offsets {
        assert!(
            *last < high[p],
            "offset {last} reported on {p}, high {}",
            high[p]
        );
    }
    let read = read_native(&topic, 400, &[]).await;
    assert_eq!(read.len(), 400);
    let mut by_key: HashMap<String, Vec<i32>> = HashMap::new();
    for (k, p) in read {
        by_key.entry(k).or_default().push(p);
    }
    assert_eq!(by_key.len(), 200);
    for (k, ps) in &by_key {
        assert_eq!(ps.len(), 2, "{k}");
        assert_eq!(ps[0], ps[1], "key {k} went to two partitions");
    }
    // Keys land where librdkafka's default partitioner (consistent_random) puts them: the
    // native producer with that partitioner agrees on every key.
    let native_topic = unique("rdk-produce-native");
    create_topic(&native_topic, 3).await;
    let p = Producer::new(&config(&[("partitioner", "consistent_random")]))
        .await
        .unwrap();
    for (k, ps) in &by_key {
        let meta = p
            .send_and_wait(ProducerRecord::new(native_topic.as_str()).key(k.clone()))
            .await
            .unwrap();
        assert_eq!(meta.partition, ps[0], "key {k}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_consumer_with_logging_context() {
    let topic = unique("rdk-consume");
    let group = unique("rdk-consume-group");
    create_topic(&topic, 2).await;
    produce_native(&topic, 100).await;
    let report = conformance::consume::run(&opts!(consume, &topic, 100, &group))
        .await
        .unwrap();
    assert_eq!(report.received, 100);
    assert!(
        report.rebalances.iter().any(|r| r == "assign 2"),
        "{:?}",
        report.rebalances
    );
    assert!(report.commit_callbacks >= 1, "commit callback not called");
    let high = high_watermarks(&topic).await;
    assert_eq!(
        report.committed, high,
        "committed (facade) vs high watermarks"
    );
    assert_eq!(committed_native(&group, &topic).await, high);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_least_once_pipeline_with_stored_offsets() {
    let topic = unique("rdk-alo");
    let group = unique("rdk-alo-group");
    create_topic(&topic, 2).await;
    create_topic(&format!("{topic}-out"), 1).await;
    produce_native(&topic, 60).await;
    let report = conformance::at_least_once::run(&opts!(at_least_once, &topic, 60, &group))
        .await
        .unwrap();
    assert_eq!(report.processed, 60);
    let high = high_watermarks(&topic).await;
    assert_eq!(report.committed, high);
    assert_eq!(committed_native(&group, &topic).await, high);
    let out = high_watermarks(&format!("{topic}-out")).await;
    assert_eq!(out.values().sum::<i64>(), 60);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_dump_and_watermarks() {
    let topic = unique("rdk-meta");
    create_topic(&topic, 3).await;
    produce_native(&topic, 30).await;
    let o = opts!(metadata, &topic, 0, "unused");
    let report = tokio::task::spawn_blocking(move || conformance::metadata::run(&o).unwrap())
        .await
        .unwrap();
    let native = Consumer::new(&config(&[])).await.unwrap();
    let md = native.fetch_metadata(None).await.unwrap();
    assert_eq!(report.brokers, md.brokers.len());
    assert_eq!(report.partitions, 3);
    assert_eq!(report.records, 30);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_create_and_delete_topic() {
    let topic = unique("rdk-admin");
    let group = unique("rdk-admin-group");
    let report = conformance::admin::run(&opts!(admin, &topic, 0, &group))
        .await
        .unwrap();
    assert_eq!(report.created, vec![topic.clone()]);
    assert_eq!(report.partitions_seen, 3);
    assert_eq!(report.grown, vec![topic.clone()]);
    assert_eq!(report.partitions_after_growth, 4);
    assert_eq!(report.altered, 1);
    assert_eq!(report.retention_ms.as_deref(), Some("700000"));
    assert_eq!(report.low_watermark, Some(3));
    assert_eq!(report.groups_deleted, vec![group.clone()]);
    assert_eq!(report.deleted, vec![topic.clone()]);
    let admin = AdminClient::new(&config(&[])).await.unwrap();
    assert!(!admin.list_topics(false).await.unwrap().contains(&topic));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transactional_producer_commit_and_abort() {
    let topic = unique("rdk-txn");
    create_topic(&topic, 1).await;
    let report = conformance::transactional::run(&opts!(transactional, &topic, 20, "unused"))
        .await
        .unwrap();
    assert_eq!((report.committed_sent, report.aborted_sent), (20, 20));
    assert_eq!(report.read_committed_seen, 20);
    assert_eq!(report.aborted_seen, 0);
    // The native consumer agrees: 20 committed records, 40 written.
    let committed = read_native(&topic, 20, &[("isolation.level", "read_committed")]).await;
    assert_eq!(committed.len(), 20);
    let all = read_native(&topic, 40, &[("isolation.level", "read_uncommitted")]).await;
    assert_eq!(all.len(), 40);
}

/// rdkafka's synchronous calls made from inside a single-threaded tokio runtime (the
/// caller's only worker) finish: the facade waits on its own runtime, never on the caller's.
#[tokio::test(flavor = "current_thread")]
async fn sync_calls_inside_a_current_thread_runtime_do_not_deadlock() {
    use kafka_sdk_rdkafka::consumer::{BaseConsumer, Consumer};
    use kafka_sdk_rdkafka::producer::{BaseProducer, BaseRecord, Producer};

    let topic = unique("rdk-sync");
    create_topic(&topic, 1).await;
    let started = std::time::Instant::now();
    let mut cfg = kafka_sdk_rdkafka::ClientConfig::new();
    cfg.set("bootstrap.servers", bootstrap());
    let producer: BaseProducer = cfg.create().unwrap();
    for i in 0..10 {
        let v = format!("v{i}");
        producer
            .send(BaseRecord::<str, str>::to(&topic).payload(&v))
            .unwrap();
    }
    producer.flush(Duration::from_secs(30)).unwrap();
    assert_eq!(producer.in_flight_count(), 0);

    let consumer: BaseConsumer = cfg.create().unwrap();
    let md = consumer
        .fetch_metadata(Some(&topic), Duration::from_secs(30))
        .unwrap();
    assert_eq!(md.topics()[0].partitions().len(), 1);
    assert_eq!(
        consumer
            .fetch_watermarks(&topic, 0, Duration::from_secs(30))
            .unwrap(),
        (0, 10)
    );
    let mut tpl = kafka_sdk_rdkafka::TopicPartitionList::new();
    tpl.add_partition_offset(&topic, 0, kafka_sdk_rdkafka::Offset::Beginning)
        .unwrap();
    consumer.assign(&tpl).unwrap();
    let mut got = 0;
    while got < 10 {
        match consumer.poll(Duration::from_secs(30)) {
            Some(Ok(_)) => got += 1,
            other => panic!("poll: {other:?}"),
        }
    }
    assert!(consumer.poll(Duration::from_millis(200)).is_none());
    assert!(started.elapsed() < Duration::from_secs(90));
}

/// `StreamConsumer::recv` dropped before it completes (a timeout racing it) loses no
/// message: every offset arrives once, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelled_recv_loses_no_message() {
    use kafka_sdk_rdkafka::consumer::{Consumer, StreamConsumer};
    use kafka_sdk_rdkafka::Message;

    let topic = unique("rdk-cancel");
    create_topic(&topic, 1).await;
    produce_native(&topic, 200).await;
    let mut cfg = kafka_sdk_rdkafka::ClientConfig::new();
    cfg.set("bootstrap.servers", bootstrap());
    let consumer: StreamConsumer = cfg.create().unwrap();
    let mut tpl = kafka_sdk_rdkafka::TopicPartitionList::new();
    tpl.add_partition_offset(&topic, 0, kafka_sdk_rdkafka::Offset::Beginning)
        .unwrap();
    consumer.assign(&tpl).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let (mut next, mut cancelled) = (0i64, 0);
    while next < 200 {
        assert!(std::time::Instant::now() < deadline, "stuck at {next}");
        match tokio::time::timeout(Duration::from_micros(200), consumer.recv()).await {
            Ok(m) => {
                assert_eq!(m.unwrap().offset(), next);
                next += 1;
            }
            Err(_) => cancelled += 1,
        }
    }
    assert!(
        cancelled > 0,
        "no recv was cancelled; the test proved nothing"
    );
}

/// librdkafka keys: a no-effect one is accepted, an unknown one fails `create()` with
/// `KafkaError::ClientConfig` naming it, a rejected one says why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_errors_name_the_key() {
    use kafka_sdk_rdkafka::error::{KafkaError, RDKafkaConfRes};
    use kafka_sdk_rdkafka::producer::BaseProducer;

    let mut cfg = kafka_sdk_rdkafka::ClientConfig::new();
    cfg.set("bootstrap.servers", bootstrap())
        .set("socket.keepalive.enable", "true")
        .set("broker.address.family", "v4");
    let _ok: BaseProducer = cfg.create().expect("no-effect keys are accepted");

    cfg.set("socket.keepalive.enabled", "true");
    match cfg.create::<BaseProducer>() {
        Err(KafkaError::ClientConfig(RDKafkaConfRes::Unknown, _, key, value)) => {
            assert_eq!(
                (key.as_str(), value.as_str()),
                ("socket.keepalive.enabled", "true")
            )
        }
        other => panic!("{:?}", other.err()),
    }
    cfg.remove("socket.keepalive.enabled");
    cfg.set("dr_msg_cb", "0x1234");
    match cfg.create::<BaseProducer>() {
        Err(KafkaError::ClientConfig(RDKafkaConfRes::Invalid, text, key, _)) => {
            assert_eq!(key, "dr_msg_cb");
            assert!(text.contains("callback"), "{text}");
        }
        other => panic!("{:?}", other.err()),
    }
}

/// A context that replaces `ConsumerContext::rebalance` (rdkafka's raw hook), applies the
/// assignment itself as rdkafka code does, and never calls `pre_rebalance`.
mod raw_rebalance {
    use std::sync::Mutex;

    use kafka_sdk_rdkafka::client::ClientContext;
    use kafka_sdk_rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, Rebalance};
    use kafka_sdk_rdkafka::topic_partition_list::TopicPartitionList;
    use kafka_sdk_rdkafka::types::RDKafkaRespErr;

    #[derive(Default)]
    pub struct RawContext {
        pub events: Mutex<Vec<String>>,
    }

    impl ClientContext for RawContext {}

    impl ConsumerContext for RawContext {
        fn rebalance(
            &self,
            base_consumer: &BaseConsumer<Self>,
            err: RDKafkaRespErr,
            tpl: &mut TopicPartitionList,
        ) {
            let line = match err {
                RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => {
                    base_consumer.assign(tpl).expect("assign inside rebalance");
                    format!("assign {}", tpl.count())
                }
                RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => {
                    base_consumer.unassign().expect("unassign inside rebalance");
                    format!("revoke {}", tpl.count())
                }
                other => format!("error {other:?}"),
            };
            self.events.lock().unwrap().push(line);
        }

        fn pre_rebalance(&self, _: &BaseConsumer<Self>, _: &Rebalance<'_>) {
            self.events.lock().unwrap().push("pre_rebalance".into());
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumer_context_rebalance_replaces_the_default() {
    use kafka_sdk_rdkafka::consumer::{Consumer as _, StreamConsumer};
    use kafka_sdk_rdkafka::ClientConfig as RdConfig;

    let topic = unique("rdk-rawreb");
    let group = unique("rdk-rawreb-group");
    create_topic(&topic, 2).await;
    produce_native(&topic, 20).await;
    let consumer: StreamConsumer<raw_rebalance::RawContext> = RdConfig::new()
        .set("bootstrap.servers", bootstrap())
        .set("group.id", &group)
        .set("auto.offset.reset", "earliest")
        .create_with_context(raw_rebalance::RawContext::default())
        .unwrap();
    consumer.subscribe(&[&topic]).unwrap();
    for _ in 0..20 {
        tokio::time::timeout(Duration::from_secs(60), consumer.recv())
            .await
            .expect("a record within 60 s")
            .unwrap();
    }
    let events = consumer.context().events.lock().unwrap().clone();
    assert!(events.iter().any(|e| e == "assign 2"), "{events:?}");
    assert!(
        !events.iter().any(|e| e == "pre_rebalance"),
        "the override replaces the default, which calls pre_rebalance: {events:?}"
    );
    // The no-op assign inside the callback did not disturb kafka-sdk's own assignment.
    assert_eq!(consumer.assignment().unwrap().count(), 2);
}

/// librdkafka commits any partition given explicitly, assigned to the consumer or not (a
/// consumer that only assigned some partitions, one with no assignment at all, a group
/// member committing a partition of a topic it does not subscribe to). The facade does too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commit_of_unassigned_partitions_as_rdkafka() {
    use kafka_sdk_rdkafka::consumer::{BaseConsumer, CommitMode, Consumer as _};
    use kafka_sdk_rdkafka::{ClientConfig as RdConfig, Offset as RdOffset, TopicPartitionList};

    let topic = unique("rdk-commit-unassigned");
    let other = unique("rdk-commit-other");
    create_topic(&topic, 2).await;
    create_topic(&other, 1).await;
    let group = unique("rdk-commit-unassigned-g");
    let consumer = |group: &str| -> BaseConsumer {
        RdConfig::new()
            .set("bootstrap.servers", bootstrap())
            .set("group.id", group)
            .set("enable.auto.commit", "false")
            .create()
            .unwrap()
    };
    let tpl = |entries: &[(&str, i32, i64)]| {
        let mut l = TopicPartitionList::new();
        for (t, p, o) in entries {
            l.add_partition_offset(t, *p, RdOffset::Offset(*o)).unwrap();
        }
        l
    };
    tokio::task::spawn_blocking(move || {
        // No assignment at all.
        let c = consumer(&group);
        c.commit(&tpl(&[(&topic, 0, 3)]), CommitMode::Sync)
            .expect("commit without an assignment");
        // Partition 0 assigned, partition 1 not.
        let mut assigned = TopicPartitionList::new();
        assigned
            .add_partition_offset(&topic, 0, RdOffset::Beginning)
            .unwrap();
        c.assign(&assigned).unwrap();
        c.commit(&tpl(&[(&topic, 0, 4), (&topic, 1, 7)]), CommitMode::Sync)
            .expect("commit of an assigned and an unassigned partition");
        drop(c);
        // A group member (it owns `topic`'s partitions) commits a partition of `other`.
        let member_group = format!("{group}-member");
        let m = consumer(&member_group);
        m.subscribe(&[topic.as_str()]).unwrap();
        let until = std::time::Instant::now() + Duration::from_secs(60);
        while m.assignment().unwrap().count() == 0 {
            assert!(std::time::Instant::now() < until, "no assignment in 60 s");
            let _ = m.poll(Duration::from_millis(100));
        }
        m.commit(&tpl(&[(&other, 0, 9)]), CommitMode::Sync)
            .expect("a member's commit of a partition it does not own");
        (group, member_group, topic, other)
    })
    .await
    .map(|(group, member_group, topic, other)| async move {
        assert_eq!(
            committed_native(&group, &topic).await,
            BTreeMap::from([(0, 4), (1, 7)])
        );
        assert_eq!(
            committed_native(&member_group, &other).await,
            BTreeMap::from([(0, 9)])
        );
    })
    .unwrap()
    .await;
}

/// Records sent while kafka-sdk waits for a topic's metadata queue behind the first one and
/// are appended in call order: on a one-partition topic, the i-th record sent gets offset i,
/// through `BaseProducer` (delivery reports, in send order) and `FutureProducer`, also when
/// a second, new topic interleaves.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_order_holds_while_metadata_is_awaited() {
    use std::sync::{Arc, Mutex};

    use kafka_sdk_rdkafka::client::ClientContext;
    use kafka_sdk_rdkafka::producer::{
        BaseProducer, BaseRecord, DeliveryResult, FutureProducer, FutureRecord, Producer as _,
        ProducerContext,
    };
    use kafka_sdk_rdkafka::{ClientConfig as RdConfig, Message as _};

    #[derive(Clone, Default)]
    struct Reports(Arc<Mutex<Vec<(String, String, i64)>>>);
    impl ClientContext for Reports {}
    impl ProducerContext for Reports {
        type DeliveryOpaque = ();
        fn delivery(&self, r: &DeliveryResult<'_>, _: ()) {
            let m = r.as_ref().expect("delivered");
            let payload = String::from_utf8(m.payload().unwrap().to_vec()).unwrap();
            self.0
                .lock()
                .unwrap()
                .push((m.topic().to_string(), payload, m.offset()));
        }
    }

    const N: usize = 3000;
    let (a, b, f) = (
        unique("rdk-order-a"),
        unique("rdk-order-b"),
        unique("rdk-order-f"),
    );
    for t in [&a, &b, &f] {
        create_topic(t, 1).await;
    }
    let mut cfg = RdConfig::new();
    cfg.set("bootstrap.servers", bootstrap())
        .set("linger.ms", "1");
    let reports = Reports::default();
    let seen = reports.0.clone();
    let (ta, tb) = (a.clone(), b.clone());
    let base_cfg = cfg.clone();
    tokio::task::spawn_blocking(move || {
        let p: BaseProducer<Reports> = base_cfg.create_with_context(reports).unwrap();
        for i in 0..N {
            // Topic `b` appears for the first time half-way: its metadata is awaited again.
            let topic = if i >= N / 2 && i % 2 == 0 { &tb } else { &ta };
            let payload = i.to_string();
            p.send(BaseRecord::to(topic).payload(&payload).key("k"))
                .map_err(|(e, _)| e)
                .unwrap();
        }
        p.flush(Duration::from_secs(60)).unwrap();
        assert_eq!(p.in_flight_count(), 0);
    })
    .await
    .unwrap();
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), N);
    for t in [&a, &b] {
        let reports: Vec<(u64, i64)> = seen
            .iter()
            .filter(|(topic, _, _)| topic == t)
            .map(|(_, p, o)| (p.parse().unwrap(), *o))
            .collect();
        // Reports per partition come in send order, offsets follow the send order.
        for (i, (_, o)) in reports.iter().enumerate() {
            assert_eq!(*o, i as i64, "{t}: report {i} {reports:?}");
        }
        let sent: Vec<u64> = reports.iter().map(|(p, _)| *p).collect();
        let mut sorted = sent.clone();
        sorted.sort_unstable();
        assert_eq!(sent, sorted, "{t}: records appended out of send order");
    }

    let p: FutureProducer = cfg.create().unwrap();
    let futures: Vec<_> = (0..N)
        .map(|i| {
            let payload = i.to_string();
            p.send_result(FutureRecord::to(&f).payload(&payload).key("k"))
                .map_err(|(e, _)| e)
                .unwrap()
        })
        .collect();
    for (i, fut) in futures.into_iter().enumerate() {
        let d = fut.await.unwrap().map_err(|(e, _)| e).unwrap();
        assert_eq!((d.partition, d.offset), (0, i as i64));
    }
    assert_eq!(p.in_flight_count(), 0);
}

/// `queue.buffering.max.messages` is the facade's: `BaseProducer::send` fails at once with
/// `QueueFull` and hands the record back while that many reports are unserved, and accepts
/// records again once `flush` served them; a `ThreadedProducer` serves every report on its
/// own thread and its drop returns.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queue_full_and_threaded_producer_reports() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    use kafka_sdk_rdkafka::client::ClientContext;
    use kafka_sdk_rdkafka::error::{KafkaError, RDKafkaErrorCode};
    use kafka_sdk_rdkafka::producer::{
        BaseProducer, BaseRecord, DeliveryResult, Producer as _, ProducerContext, ThreadedProducer,
    };
    use kafka_sdk_rdkafka::ClientConfig as RdConfig;

    #[derive(Clone, Default)]
    struct Count(Arc<AtomicUsize>);
    impl ClientContext for Count {}
    impl ProducerContext for Count {
        type DeliveryOpaque = ();
        fn delivery(&self, r: &DeliveryResult<'_>, _: ()) {
            assert!(r.is_ok(), "delivery failed");
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    let topic = unique("rdk-queue-full");
    create_topic(&topic, 1).await;
    let mut cfg = RdConfig::new();
    cfg.set("bootstrap.servers", bootstrap())
        .set("queue.buffering.max.messages", "5")
        .set("linger.ms", "20");
    tokio::task::spawn_blocking(move || {
        let count = Count::default();
        let p: BaseProducer<Count> = cfg.create_with_context(count.clone()).unwrap();
        for i in 0..5 {
            p.send(BaseRecord::<(), String>::to(&topic).payload(&format!("r{i}")))
                .map_err(|(e, _)| e)
                .unwrap();
        }
        let sixth = "r5".to_string();
        match p.send(BaseRecord::<(), String>::to(&topic).payload(&sixth)) {
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                assert_eq!(back.payload, Some(&sixth), "the record is handed back");
            }
            other => panic!("expected QueueFull, got {:?}", other.map_err(|(e, _)| e)),
        }
        p.flush(Duration::from_secs(60)).unwrap();
        assert_eq!(count.0.load(Ordering::SeqCst), 5);
        p.send(BaseRecord::<(), String>::to(&topic).payload(&sixth))
            .map_err(|(e, _)| e)
            .unwrap();
        p.flush(Duration::from_secs(60)).unwrap();
        assert_eq!(
            (count.0.load(Ordering::SeqCst), p.in_flight_count()),
            (6, 0)
        );

        let mut cfg = RdConfig::new();
        cfg.set("bootstrap.servers", bootstrap());
        let served = Count::default();
        let t: ThreadedProducer<Count> = cfg.create_with_context(served.clone()).unwrap();
        for i in 0..100 {
            t.send(BaseRecord::<(), String>::to(&topic).payload(&format!("t{i}")))
                .map_err(|(e, _)| e)
                .unwrap();
        }
        // The polling thread serves the reports; flush only waits for them.
        let until = std::time::Instant::now() + Duration::from_secs(60);
        while served.0.load(Ordering::SeqCst) < 100 {
            assert!(std::time::Instant::now() < until, "reports not served");
            std::thread::sleep(Duration::from_millis(10));
        }
        t.flush(Duration::from_secs(60)).unwrap();
        drop(t);
    })
    .await
    .unwrap();
}

/// FutureProducer: records whose future is dropped unpolled still leave the in-flight count
/// (it comes from kafka-sdk), so `queue.buffering.max.messages` frees up. BaseProducer:
/// `poll(long timeout)` returns as soon as a report is there (woken by the completion, also
/// for a record that first waited for the topic's metadata), not at the timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unawaited_futures_leave_the_count_and_poll_wakes_on_completion() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::time::Instant;

    use kafka_sdk_rdkafka::client::ClientContext;
    use kafka_sdk_rdkafka::error::{KafkaError, RDKafkaErrorCode};
    use kafka_sdk_rdkafka::producer::{
        BaseProducer, BaseRecord, DeliveryResult, FutureProducer, FutureRecord, Producer as _,
        ProducerContext,
    };
    use kafka_sdk_rdkafka::ClientConfig as RdConfig;

    let topic = unique("rdk-unawaited");
    create_topic(&topic, 1).await;
    let mut cfg = RdConfig::new();
    cfg.set("bootstrap.servers", bootstrap())
        .set("queue.buffering.max.messages", "3")
        .set("linger.ms", "20");
    let p: FutureProducer = cfg.create().unwrap();
    for i in 0..3 {
        let fut = p
            .send_result(FutureRecord::<(), String>::to(&topic).payload(&format!("u{i}")))
            .map_err(|(e, _)| e)
            .unwrap();
        drop(fut);
    }
    let fourth = "u3".to_string();
    match p.send_result(FutureRecord::<(), String>::to(&topic).payload(&fourth)) {
        Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
            assert_eq!(back.payload, Some(&fourth), "the record is handed back");
        }
        other => panic!(
            "expected QueueFull, got {:?}",
            other.map(|_| ()).map_err(|(e, _)| e)
        ),
    }
    let until = Instant::now() + Duration::from_secs(60);
    while p.in_flight_count() > 0 {
        assert!(
            Instant::now() < until,
            "dropped futures never left the count"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let delivered = p
        .send_result(FutureRecord::<(), String>::to(&topic).payload(&fourth))
        .map_err(|(e, _)| e)
        .unwrap()
        .await
        .unwrap()
        .map_err(|(e, _)| e)
        .unwrap();
    assert_eq!((delivered.partition, delivered.offset), (0, 3));
    assert_eq!(
        p.in_flight_count(),
        0,
        "the awaited record stayed in the count"
    );

    #[derive(Clone, Default)]
    struct Count(Arc<AtomicUsize>);
    impl ClientContext for Count {}
    impl ProducerContext for Count {
        type DeliveryOpaque = ();
        fn delivery(&self, r: &DeliveryResult<'_>, _: ()) {
            assert!(r.is_ok(), "delivery failed");
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
    let new_topic = unique("rdk-poll-wakes");
    create_topic(&new_topic, 1).await;
    let mut cfg = RdConfig::new();
    cfg.set("bootstrap.servers", bootstrap());
    tokio::task::spawn_blocking(move || {
        let count = Count::default();
        let p: BaseProducer<Count> = cfg.create_with_context(count.clone()).unwrap();
        let start = Instant::now();
        p.poll(Duration::ZERO);
        assert!(start.elapsed() < Duration::from_secs(5), "poll(0) waited");
        // The first record waits for the topic's metadata (slow lane), the second not.
        for (i, _) in (0..2).enumerate() {
            p.send(BaseRecord::<(), String>::to(&new_topic).payload(&format!("w{i}")))
                .map_err(|(e, _)| e)
                .unwrap();
            let start = Instant::now();
            while count.0.load(Ordering::SeqCst) <= i {
                p.poll(Duration::from_secs(120));
                assert!(
                    start.elapsed() < Duration::from_secs(60),
                    "poll waited for its timeout instead of the completion"
                );
            }
        }
        assert_eq!(p.in_flight_count(), 0);
    })
    .await
    .unwrap();
}
