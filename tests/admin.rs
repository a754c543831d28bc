//! Admin client tests against a real broker: one local single-node cluster for the whole
//! file, with the standard authorizer on (so ACLs can be created; the anonymous client is a
//! super user). Each test asserts the effect of the calls it makes, and the lag test compares
//! with Kafka's own `kafka-consumer-groups --describe`.

mod support;

use std::collections::BTreeMap;
use std::process::{Child, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use kafka_sdk::admin::{
    AclBinding, AclBindingFilter, AclOperation, AclPermission, AclResourceType, AdminClient,
    AlterConfigOp, ConfigResource, ConfigSource, ElectionType, GroupDescription, GroupType,
    NewTopic, OffsetSpec, PatternType, ResetSpec,
};
use kafka_sdk::consumer::{CommitMode, Consumer, Offset};
use kafka_sdk::{Error, KafkaCode, Producer, ProducerRecord, TopicPartition};
use kafka_testkit::{ClusterOptions, KafkaCluster};

use support::common::{self, unique};

const WAIT: Duration = Duration::from_secs(60);

fn cluster() -> &'static KafkaCluster {
    static CLUSTER: OnceLock<KafkaCluster> = OnceLock::new();
    CLUSTER.get_or_init(|| {
        let props = [
            (
                "authorizer.class.name",
                "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
            ),
            ("allow.everyone.if.no.acl.found", "true"),
            ("super.users", "User:ANONYMOUS"),
            ("group.initial.rebalance.delay.ms", "0"),
        ];
        KafkaCluster::start(ClusterOptions {
            broker_props: props
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            heap_mb: 384,
            allow_external: false,
            ..ClusterOptions::default()
        })
        .expect("start the admin test cluster")
    })
}

async fn bootstrap() -> String {
    common::blocking(|| cluster().bootstrap()).await
}

async fn admin() -> AdminClient {
    AdminClient::builder(&common::config(&bootstrap().await, &[]))
        .operation_timeout(Duration::from_secs(30))
        .build()
        .await
        .expect("admin connect")
}

fn tp(t: &str, p: i32) -> TopicPartition {
    TopicPartition::new(t, p)
}

/// Produces `n` records to `topic`/`partition` (timestamps `ts0 + i`), acks=all.
async fn produce(bootstrap: &str, topic: &str, partition: i32, n: i64, ts0: i64) {
    let p = Producer::new(&common::config(bootstrap, &[("linger.ms", "1")]))
        .await
        .unwrap();
    let mut futs = Vec::new();
    for i in 0..n {
        futs.push(
            p.send(
                ProducerRecord::new(topic)
                    .partition(partition)
                    .value(format!("v{i}"))
                    .timestamp(ts0 + i),
            )
            .await
            .unwrap(),
        );
    }
    for f in futs {
        f.await.unwrap();
    }
    p.close(Duration::from_secs(10)).await.unwrap();
}

/// The topic's `retention.ms` entry once `ok` holds (within [`WAIT`]).
async fn retention_when(
    admin: &AdminClient,
    res: &ConfigResource,
    ok: impl Fn(&kafka_sdk::admin::ConfigEntry) -> bool,
) -> kafka_sdk::admin::ConfigEntry {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let r = admin
            .describe_configs(std::slice::from_ref(res))
            .await
            .unwrap();
        let e = r[0].1.as_ref().unwrap();
        let e = e.iter().find(|e| e.name == "retention.ms").unwrap().clone();
        if ok(&e) {
            return e;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "config never changed: {e:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn partitions_configs_and_cluster() {
    let admin = admin().await;
    let topic = unique("adm-cfg");
    admin
        .create_topic(NewTopic::new(&topic, 2, 1))
        .await
        .unwrap();

    // Create partitions: grows the topic; a missing topic fails alone.
    let missing = unique("adm-missing");
    let r = admin
        .create_partitions(&[(&topic, 4), (&missing, 3)])
        .await
        .unwrap();
    assert!(r[0].1.is_ok(), "{:?}", r[0]);
    let e = r[1].1.as_ref().unwrap_err();
    assert_eq!(e.code(), Some(KafkaCode::UNKNOWN_TOPIC_OR_PARTITION), "{e}");
    let d = admin.describe_topics(&[&topic]).await.unwrap();
    assert_eq!(d[0].partitions.len(), 4);

    // Describe and alter topic configs.
    let res = ConfigResource::topic(&topic);
    let get = |entries: &[kafka_sdk::admin::ConfigEntry], k: &str| {
        entries.iter().find(|e| e.name == k).cloned().unwrap()
    };
    let before = admin
        .describe_configs(std::slice::from_ref(&res))
        .await
        .unwrap();
    let entries = before[0].1.as_ref().unwrap();
    let ret = get(entries, "retention.ms");
    assert_eq!(ret.source, ConfigSource::Default);
    let r = admin
        .incremental_alter_configs(vec![(
            res.clone(),
            vec![AlterConfigOp::Set("retention.ms".into(), "123456".into())],
        )])
        .await
        .unwrap();
    r[0].1.as_ref().unwrap();
    // The change reaches the broker through the metadata log: await it.
    let ret = retention_when(&admin, &res, |e| e.source == ConfigSource::DynamicTopic).await;
    assert_eq!(ret.value.as_deref(), Some("123456"));
    admin
        .incremental_alter_configs(vec![(
            res.clone(),
            vec![AlterConfigOp::Delete("retention.ms".into())],
        )])
        .await
        .unwrap()[0]
        .1
        .as_ref()
        .unwrap();
    let back = retention_when(&admin, &res, |e| e.source == ConfigSource::Default).await;
    assert_eq!(back.value.as_deref(), Some("604800000"));
    // An invalid value fails that resource only.
    let r = admin
        .incremental_alter_configs(vec![(
            res.clone(),
            vec![AlterConfigOp::Set("retention.ms".into(), "soon".into())],
        )])
        .await
        .unwrap();
    assert!(r[0].1.is_err());

    // The cluster, and a broker's configs asked of that broker.
    let c = admin.describe_cluster().await.unwrap();
    assert_eq!(c.brokers.len(), 1);
    assert_eq!(
        Some(c.cluster_id.clone()),
        admin.cluster_id().await.unwrap()
    );
    let id = c.brokers[0].id;
    let b = admin
        .describe_configs(&[ConfigResource::broker(id)])
        .await
        .unwrap();
    let entries = b[0].1.as_ref().unwrap();
    let e = get(entries, "group.initial.rebalance.delay.ms");
    assert_eq!(
        (e.value.as_deref(), e.source),
        (Some("0"), ConfigSource::StaticBroker)
    );

    // Log dirs hold the topic's replicas.
    let dirs = admin.describe_log_dirs(&[id]).await.unwrap();
    let dirs = dirs[0].1.as_ref().unwrap();
    let held: Vec<&TopicPartition> = dirs
        .iter()
        .flat_map(|d| d.replicas.iter().map(|r| &r.0))
        .filter(|t| *t.topic == topic)
        .collect();
    assert_eq!(held.len(), 4, "{dirs:?}");

    // Preferred election on a partition already led by its preferred replica: success.
    let r = admin
        .elect_leaders(ElectionType::Preferred, Some(&[tp(&topic, 0)]))
        .await
        .unwrap();
    assert_eq!(r.len(), 1);
    assert!(r[0].1.is_ok(), "{r:?}");
}

#[tokio::test]
async fn offsets_and_delete_records() {
    let admin = admin().await;
    let bs = bootstrap().await;
    let topic = unique("adm-off");
    admin
        .create_topic(NewTopic::new(&topic, 2, 1))
        .await
        .unwrap();
    let ts0 = 1_700_000_000_000;
    produce(&bs, &topic, 0, 10, ts0).await;

    let missing = unique("adm-nope");
    let r = admin
        .list_offsets(vec![
            (tp(&topic, 0), OffsetSpec::Latest),
            (tp(&topic, 1), OffsetSpec::Latest),
            (tp(&missing, 0), OffsetSpec::Latest),
        ])
        .await
        .unwrap();
    // A missing topic fails alone.
    assert_eq!(r.len(), 3);
    assert_eq!(r[0].1.as_ref().unwrap().offset, 10);
    assert_eq!(r[1].1.as_ref().unwrap().offset, 0);
    assert!(
        matches!(r[2].1, Err(Error::UnknownTopicOrPartition(_))),
        "{:?}",
        r[2]
    );
    // The same partition twice is an invalid argument.
    let e = admin
        .list_offsets(vec![
            (tp(&topic, 0), OffsetSpec::Earliest),
            (tp(&topic, 0), OffsetSpec::Latest),
        ])
        .await
        .unwrap_err();
    assert!(matches!(e, Error::InvalidArgument(_)), "{e}");

    let q = |spec| vec![(tp(&topic, 0), spec)];
    let off = |r: Vec<(
        TopicPartition,
        kafka_sdk::Result<kafka_sdk::admin::ListedOffsetInfo>,
    )>| { r[0].1.as_ref().unwrap().offset };
    assert_eq!(
        off(admin.list_offsets(q(OffsetSpec::Earliest)).await.unwrap()),
        0
    );
    assert_eq!(
        off(admin.list_offsets(q(OffsetSpec::Latest)).await.unwrap()),
        10
    );
    assert_eq!(
        off(admin
            .list_offsets(q(OffsetSpec::Timestamp(ts0 + 5)))
            .await
            .unwrap()),
        5
    );
    let max = admin
        .list_offsets(q(OffsetSpec::MaxTimestamp))
        .await
        .unwrap();
    let max = max[0].1.as_ref().unwrap();
    assert_eq!((max.offset, max.timestamp), (9, ts0 + 9));
    assert_eq!(
        off(admin
            .list_offsets(q(OffsetSpec::Timestamp(ts0 + 100)))
            .await
            .unwrap()),
        -1
    );

    // Delete records: the log start moves; a missing partition fails alone.
    let r = admin
        .delete_records(vec![(tp(&topic, 0), 4), (tp(&topic, 7), 1)])
        .await
        .unwrap();
    assert_eq!(*r[0].1.as_ref().unwrap(), 4);
    assert!(
        matches!(r[1].1, Err(Error::UnknownTopicOrPartition(_))),
        "{:?}",
        r[1]
    );
    assert_eq!(
        off(admin.list_offsets(q(OffsetSpec::Earliest)).await.unwrap()),
        4
    );
    // Beyond the high watermark: OFFSET_OUT_OF_RANGE for that partition.
    let r = admin
        .delete_records(vec![(tp(&topic, 0), 99)])
        .await
        .unwrap();
    assert_eq!(
        r[0].1.as_ref().unwrap_err().code(),
        Some(KafkaCode::OFFSET_OUT_OF_RANGE)
    );
}

#[tokio::test]
async fn acls_create_describe_delete() {
    let admin = admin().await;
    let principal = format!("User:{}", unique("alice"));
    let topic = unique("adm-acl");
    let acl = AclBinding {
        resource_type: AclResourceType::Topic,
        resource_name: topic.clone(),
        pattern_type: PatternType::Literal,
        principal: principal.clone(),
        host: "*".into(),
        operation: AclOperation::Read,
        permission: AclPermission::Allow,
    };
    let prefixed = AclBinding {
        pattern_type: PatternType::Prefixed,
        operation: AclOperation::Write,
        permission: AclPermission::Deny,
        ..acl.clone()
    };
    let r = admin
        .create_acls(&[acl.clone(), prefixed.clone()])
        .await
        .unwrap();
    assert!(r.iter().all(|r| r.is_ok()), "{r:?}");
    let filter = AclBindingFilter {
        principal: Some(principal.clone()),
        ..AclBindingFilter::any()
    };
    // ACL changes go through the controller: await them in the broker's view.
    let deadline = tokio::time::Instant::now() + WAIT;
    let mut seen = admin.describe_acls(&filter).await.unwrap();
    while seen.len() < 2 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
        seen = admin.describe_acls(&filter).await.unwrap();
    }
    let mut want = vec![acl.clone(), prefixed.clone()];
    want.sort();
    assert_eq!(seen, want);

    let deleted = admin
        .delete_acls(&[AclBindingFilter::exact(&acl)])
        .await
        .unwrap();
    assert_eq!(deleted[0].as_ref().unwrap(), &vec![acl.clone()]);
    let mut seen = admin.describe_acls(&filter).await.unwrap();
    while seen.len() > 1 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
        seen = admin.describe_acls(&filter).await.unwrap();
    }
    assert_eq!(seen, vec![prefixed.clone()]);
    let deleted = admin
        .delete_acls(std::slice::from_ref(&filter))
        .await
        .unwrap();
    assert_eq!(deleted[0].as_ref().unwrap(), &vec![prefixed]);
}

/// One row of `kafka-consumer-groups --describe`: topic, partition -> (current offset,
/// log end offset, lag) with `None` for `-`.
type JavaRow = (Option<i64>, i64, Option<i64>);

async fn java_describe(group: &str) -> BTreeMap<TopicPartition, JavaRow> {
    let bs = bootstrap().await;
    let group = group.to_string();
    let out = common::blocking(move || {
        cluster()
            .tool_output(
                "consumer-groups",
                &["--bootstrap-server", &bs, "--describe", "--group", &group],
            )
            .expect("run kafka-consumer-groups")
    })
    .await;
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let num = |s: &str| s.parse::<i64>().ok();
    let mut rows = BTreeMap::new();
    for line in stdout.lines() {
        let cols: Vec<&str> = line.split_whitespace().collect();
        if cols.len() < 6 || cols[0] == "GROUP" {
            continue;
        }
        let Some(p) = num(cols[2]) else { continue };
        rows.insert(
            tp(cols[1], p as i32),
            (
                num(cols[3]),
                num(cols[4]).expect("log end offset"),
                num(cols[5]),
            ),
        );
    }
    rows
}

#[tokio::test]
async fn group_lag_offsets_reset_and_transactions() {
    let admin = admin().await;
    let bs = bootstrap().await;
    let topic = unique("adm-lag");
    let group = unique("adm-group");
    admin
        .create_topic(NewTopic::new(&topic, 6, 1))
        .await
        .unwrap();
    for p in 0..6 {
        produce(&bs, &topic, p, 10 + p as i64, 1_700_000_000_000).await;
    }

    // Committed offsets on 6 partitions (the group is empty: an admin commit).
    let commits: Vec<(TopicPartition, i64)> = (0..6).map(|p| (tp(&topic, p), p as i64)).collect();
    let r = admin.alter_group_offsets(&group, &commits).await.unwrap();
    assert!(r.iter().all(|(_, r)| r.is_ok()), "{r:?}");
    let listed = admin.list_group_offsets(&group).await.unwrap();
    assert_eq!(listed.len(), 6);
    assert_eq!(listed[&tp(&topic, 3)], Some(3));

    // An open transaction on partition 0: the last stable offset stays at its first record.
    let txn_id = unique("adm-txn");
    let tx = Producer::new(&common::config(
        &bs,
        &[("transactional.id", txn_id.as_str()), ("linger.ms", "1")],
    ))
    .await
    .unwrap();
    tx.init_transactions().await.unwrap();
    tx.begin_transaction().unwrap();
    for i in 0..3 {
        tx.send(
            ProducerRecord::new(topic.as_str())
                .partition(0)
                .value(format!("t{i}")),
        )
        .await
        .unwrap()
        .await
        .unwrap();
    }

    let lag = admin.consumer_group_lag(&group).await.unwrap();
    assert_eq!(lag.partitions.len(), 6);
    let p0 = &lag.partitions[0];
    assert_eq!(p0.partition, tp(&topic, 0));
    assert_eq!((p0.log_end_offset, p0.last_stable_offset), (13, 10));
    assert_eq!((p0.lag, p0.lag_read_committed), (Some(13), Some(10)));
    let java = java_describe(&group).await;
    let ours: BTreeMap<TopicPartition, JavaRow> = lag
        .partitions
        .iter()
        .map(|p| (p.partition.clone(), (p.committed, p.log_end_offset, p.lag)))
        .collect();
    assert_eq!(ours, java, "ours vs kafka-consumer-groups --describe");
    assert_eq!(
        lag.total_lag(),
        java.values().filter_map(|r| r.2).sum::<i64>()
    );

    // The open transaction, seen by the producer and transaction calls.
    let prods = admin.describe_producers(&[tp(&topic, 0)]).await.unwrap();
    let prods = prods[0].1.as_ref().unwrap();
    assert!(
        prods.iter().any(|s| s.current_txn_start_offset == Some(10)),
        "{prods:?}"
    );
    let listed = admin.list_transactions(&["Ongoing"]).await.unwrap();
    assert!(
        listed.iter().any(|t| t.transactional_id == txn_id),
        "{listed:?}"
    );
    let d = admin
        .describe_transactions(&[&txn_id, "adm-no-such-txn"])
        .await
        .unwrap();
    let t = d[0].1.as_ref().unwrap();
    assert_eq!(t.state, "Ongoing");
    assert_eq!(t.partitions, vec![tp(&topic, 0)]);
    assert_eq!(
        d[1].1.as_ref().unwrap_err().code(),
        Some(KafkaCode::TRANSACTIONAL_ID_NOT_FOUND)
    );

    // The consumer's own lag view: read_committed stops at the last stable offset (10),
    // read_uncommitted sees the high watermark (13).
    for (isolation, receive, want) in [("read_committed", 10, 0), ("read_uncommitted", 1, 12)] {
        let c = Consumer::new(&common::config(&bs, &[("isolation.level", isolation)]))
            .await
            .unwrap();
        c.handle()
            .assign(vec![(tp(&topic, 0), Offset::Beginning)])
            .unwrap();
        for _ in 0..receive {
            tokio::time::timeout(WAIT, c.recv()).await.unwrap().unwrap();
        }
        let lag = c.handle().lag();
        assert_eq!(lag.len(), 1);
        let l = &lag[0];
        assert_eq!(l.position, Some(receive), "{isolation}: {l:?}");
        assert_eq!(
            (l.high_watermark, l.last_stable_offset, l.lag),
            (Some(13), Some(10), Some(want)),
            "{isolation}: {l:?}"
        );
        c.close().await.unwrap();
    }
    tx.abort_transaction().await.unwrap();

    // A live classic member: described with its assignment; resets are refused.
    let consumer = Consumer::new(&common::config(
        &bs,
        &[
            ("group.id", group.as_str()),
            ("client.id", "adm-lag-client"),
            ("auto.offset.reset", "earliest"),
            ("enable.auto.commit", "false"),
        ],
    ))
    .await
    .unwrap();
    consumer.handle().subscribe(&[&topic]).unwrap();
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let m = tokio::time::timeout(WAIT, consumer.recv())
            .await
            .unwrap()
            .unwrap();
        let _ = m;
        if consumer.handle().assignment().len() == 6 {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "no assignment");
    }
    let d = admin.describe_group(&group).await.unwrap();
    assert_eq!(d.group_type, GroupType::Classic);
    assert_eq!(d.state, "Stable");
    assert_eq!(d.members.len(), 1);
    assert_eq!(d.members[0].client_id, "adm-lag-client");
    assert_eq!(d.members[0].assignment.len(), 6);
    let listing = admin.list_groups(&[]).await.unwrap();
    assert!(listing.iter().any(|g| g.group_id == group), "{listing:?}");
    let lag = admin.consumer_group_lag(&group).await.unwrap();
    assert!(lag
        .partitions
        .iter()
        .all(|p| p.owner.as_ref().is_some_and(|o| o.1 == "adm-lag-client")));
    let e = admin
        .reset_group_offsets(&group, &[&topic], ResetSpec::Earliest, false)
        .await
        .unwrap_err();
    assert!(matches!(e, Error::State(_)), "{e}");
    let e = admin.delete_groups(&[&group]).await.unwrap()[0]
        .1
        .clone()
        .unwrap_err();
    assert_eq!(e.code(), Some(KafkaCode::NON_EMPTY_GROUP), "{e}");
    consumer.handle().commit(CommitMode::Sync).await.unwrap();
    consumer.close().await.unwrap();

    // Resets on the now empty group.
    let before = admin.list_group_offsets(&group).await.unwrap();
    let plan = admin
        .reset_group_offsets(&group, &[&topic], ResetSpec::Earliest, true)
        .await
        .unwrap();
    assert!(plan.iter().all(|(_, o)| *o == 0), "{plan:?}");
    assert_eq!(
        admin.list_group_offsets(&group).await.unwrap(),
        before,
        "dry run"
    );
    admin
        .reset_group_offsets(&group, &[&topic], ResetSpec::Offset(2), false)
        .await
        .unwrap();
    let now = admin.list_group_offsets(&group).await.unwrap();
    assert!(now.values().all(|o| *o == Some(2)), "{now:?}");
    admin
        .reset_group_offsets(&group, &[&topic], ResetSpec::ShiftBy(-5), false)
        .await
        .unwrap();
    let now = admin.list_group_offsets(&group).await.unwrap();
    assert!(
        now.values().all(|o| *o == Some(0)),
        "clamped to the log start: {now:?}"
    );
    admin
        .reset_group_offsets(&group, &[&topic], ResetSpec::Latest, false)
        .await
        .unwrap();
    let now = admin.list_group_offsets(&group).await.unwrap();
    // Partition 0's end is past the aborted transaction's marker.
    assert_eq!(now[&tp(&topic, 0)], Some(14));
    assert_eq!(now[&tp(&topic, 5)], Some(15));
    admin
        .reset_group_offsets(
            &group,
            &[&topic],
            ResetSpec::Timestamp(1_700_000_000_000 + 7),
            false,
        )
        .await
        .unwrap();
    let now = admin.list_group_offsets(&group).await.unwrap();
    assert_eq!(now[&tp(&topic, 4)], Some(7));

    // Delete one partition's offset, then the group.
    let r = admin
        .delete_group_offsets(&group, &[tp(&topic, 1)])
        .await
        .unwrap();
    assert!(r[0].1.is_ok(), "{r:?}");
    let now = admin.list_group_offsets(&group).await.unwrap();
    assert!(!now.contains_key(&tp(&topic, 1)), "{now:?}");
    let r = admin.delete_groups(&[&group]).await.unwrap();
    assert!(r[0].1.is_ok(), "{r:?}");
    let e = admin.describe_group(&group).await;
    match e {
        Err(e) => assert_eq!(e.code(), Some(KafkaCode::GROUP_ID_NOT_FOUND), "{e}"),
        Ok(d) => assert_eq!(d.state, "Dead", "{d:?}"),
    }
}

/// Starts a Java console (share) consumer of `topic` in `group` with client id `client`;
/// `class` is the tool's main class.
async fn java_member(class: &str, topic: &str, group: &str, client: &str, extra: &[&str]) -> Child {
    let bs = bootstrap().await;
    let mut args: Vec<String> = [
        "--bootstrap-server",
        &bs,
        "--topic",
        topic,
        "--group",
        group,
        "--consumer-property",
        &format!("client.id={client}"),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.extend(extra.iter().map(|s| s.to_string()));
    let class = class.to_string();
    common::blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        cluster()
            .tool(&class, &args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start a Java consumer")
    })
    .await
}

/// Describes `group` until its first member has `n` partitions (within 90 s).
async fn await_member(admin: &AdminClient, group: &str, n: usize) -> GroupDescription {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
    loop {
        match admin.describe_group(group).await {
            Ok(d) if d.members.first().is_some_and(|m| m.assignment.len() == n) => return d,
            r => {
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "never described: {r:?}"
                );
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
        }
    }
}

/// A KIP-848 consumer group (a Java console consumer with `group.protocol=consumer`) is
/// described through ConsumerGroupDescribe and a share group (Java console share consumer)
/// through ShareGroupDescribe, each with its member and assignment.
#[tokio::test]
async fn consumer_and_share_groups_are_described() {
    let admin = admin().await;
    let topic = unique("adm-848");
    let group = unique("adm-848-group");
    let share_group = unique("adm-share-group");
    admin
        .create_topic(NewTopic::new(&topic, 3, 1))
        .await
        .unwrap();
    let mut consumer = java_member(
        "console-consumer",
        &topic,
        &group,
        "adm-848-client",
        &["--consumer-property", "group.protocol=consumer"],
    )
    .await;
    let mut share = java_member(
        "org.apache.kafka.tools.consumer.ConsoleShareConsumer",
        &topic,
        &share_group,
        "adm-share-client",
        &[],
    )
    .await;
    let d = await_member(&admin, &group, 3).await;
    let s = await_member(&admin, &share_group, 3).await;
    for c in [&mut consumer, &mut share] {
        let _ = c.kill();
        let _ = c.wait();
    }
    assert_eq!(d.group_type, GroupType::Consumer);
    assert_eq!(d.members[0].client_id, "adm-848-client");
    assert!(d.group_epoch.is_some_and(|e| e > 0));
    assert_eq!(d.members[0].target_assignment.as_ref().unwrap().len(), 3);
    let listing = admin.list_groups(&["consumer"]).await.unwrap();
    let g = listing
        .iter()
        .find(|g| g.group_id == group)
        .expect("listed");
    assert_eq!(g.group_type, Some(GroupType::Consumer));
    assert_eq!(s.group_type, GroupType::Share);
    assert_eq!(s.members[0].client_id, "adm-share-client");
    assert_eq!(
        s.members[0].assignment,
        (0..3).map(|p| tp(&topic, p)).collect::<Vec<_>>()
    );
    let listing = admin.list_groups(&["share"]).await.unwrap();
    assert!(
        listing.iter().any(|g| g.group_id == share_group),
        "{listing:?}"
    );
    assert!(!listing.iter().any(|g| g.group_id == group), "{listing:?}");

    // A group nobody knows.
    let e = admin.describe_group(&unique("adm-ghost")).await;
    match e {
        Err(e) => assert_eq!(e.code(), Some(KafkaCode::GROUP_ID_NOT_FOUND), "{e}"),
        Ok(d) => assert_eq!(d.state, "Dead", "{d:?}"),
    }
}

/// Client quotas (KIP-546), as `kafka-configs --entity-type users/clients` sets them: a
/// user's quota for one client id and the default client id's, described by exact, default
/// and any-name filters (strict or not); `validate_only` changes nothing; a removed key goes;
/// an unknown quota key fails that entity only, naming it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_quotas_set_describe_and_remove() {
    use kafka_sdk::admin::{QuotaAlteration, QuotaEntity, QuotaFilter, QuotaMatch};
    let a = admin().await;
    let user = unique("quota-user");
    let pair = QuotaEntity::user(Some(&user)).and_client_id(Some("app"));
    let default_client = QuotaEntity::client_id(None);
    let described = |filter: QuotaFilter| {
        let a = &a;
        async move { a.describe_client_quotas(&filter).await.unwrap() }
    };
    // The brokers apply the controller's metadata a moment after the answer.
    async fn until<F, Fut>(what: &str, mut check: F)
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        while !check().await {
            assert!(tokio::time::Instant::now() < deadline, "{what}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    let only_user = || QuotaFilter::all().with("user", QuotaMatch::Exact(user.clone()));

    // validate_only: accepted, nothing stored.
    let check = QuotaAlteration::new(pair.clone()).set("producer_byte_rate", 1.0e6);
    let r = a.alter_client_quotas(&[check], true).await.unwrap();
    r[0].1.as_ref().expect("valid");
    let r = a
        .alter_client_quotas(
            &[
                QuotaAlteration::new(pair.clone())
                    .set("producer_byte_rate", 1.0e6)
                    .set("consumer_byte_rate", 2.0e6),
                QuotaAlteration::new(default_client.clone()).set("request_percentage", 50.0),
            ],
            false,
        )
        .await
        .unwrap();
    assert_eq!(r.len(), 2);
    assert!(r.iter().all(|(_, res)| res.is_ok()), "{r:?}");
    until("the user's pair is described", || async {
        let m = described(only_user()).await;
        m.get(&pair).map(|v| v.len()) == Some(2) && m.len() == 1
    })
    .await;
    // Strict: an entity of the user alone would match, the pair (user + client id) does not.
    assert!(described(only_user().strict()).await.is_empty());
    let defaults = described(
        QuotaFilter::all()
            .with("client-id", QuotaMatch::Default)
            .strict(),
    )
    .await;
    assert_eq!(
        defaults
            .get(&default_client)
            .and_then(|v| v.get("request_percentage")),
        Some(&50.0),
        "{defaults:?}"
    );
    let any = described(QuotaFilter::all().with("client-id", QuotaMatch::Any)).await;
    assert!(
        any.contains_key(&pair) && any.contains_key(&default_client),
        "{any:?}"
    );

    // Remove one key, then the rest; an unknown key fails its entity only.
    let r = a
        .alter_client_quotas(
            &[
                QuotaAlteration::new(pair.clone()).remove("producer_byte_rate"),
                QuotaAlteration::new(QuotaEntity::user(Some("someone-else")))
                    .set("no_such_quota", 1.0),
            ],
            false,
        )
        .await
        .unwrap();
    r[0].1.as_ref().expect("removed");
    let e = r[1].1.as_ref().expect_err("unknown key");
    assert!(e.to_string().contains("someone-else"), "{e}");
    until("one key left", || async {
        described(only_user()).await.get(&pair).map(|v| v.len()) == Some(1)
    })
    .await;
    a.alter_client_quotas(
        &[
            QuotaAlteration::new(pair.clone()).remove("consumer_byte_rate"),
            QuotaAlteration::new(default_client.clone()).remove("request_percentage"),
        ],
        false,
    )
    .await
    .unwrap();
    until("nothing left", || async {
        described(only_user()).await.is_empty()
    })
    .await;
}

/// `fetch_metadata(Some(topic))` asks the cluster each time, as Java's `describeTopics` and
/// librdkafka's `rd_kafka_metadata` do: after partitions are added (or a replica moved) it
/// shows the change, not the first answer the client kept. The producer's and consumer's
/// `fetch_metadata` too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetch_metadata_shows_the_cluster_now() {
    let a = admin().await;
    let b = bootstrap().await;
    let topic = unique("md-now");
    a.create_topic(NewTopic::new(topic.as_str(), 1, 1))
        .await
        .unwrap();
    let p = Producer::new(&common::config(&b, &[])).await.unwrap();
    let c = Consumer::new(&common::config(&b, &[])).await.unwrap();
    let count = |m: kafka_sdk::Metadata| m.topics[0].partitions.len();
    assert_eq!(count(a.fetch_metadata(Some(&topic)).await.unwrap()), 1);
    assert_eq!(count(p.fetch_metadata(Some(&topic)).await.unwrap()), 1);
    assert_eq!(count(c.fetch_metadata(Some(&topic)).await.unwrap()), 1);
    for (_, r) in a.create_partitions(&[(&topic, 3)]).await.unwrap() {
        r.unwrap();
    }
    // The brokers learn the new partitions from the controller a moment later.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let counts = (
            count(a.fetch_metadata(Some(&topic)).await.unwrap()),
            count(p.fetch_metadata(Some(&topic)).await.unwrap()),
            count(c.fetch_metadata(Some(&topic)).await.unwrap()),
        );
        if counts == (3, 3, 3) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "admin, producer, consumer still see {counts:?} partitions"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Cluster features (KIP-584), as `kafka-features describe / upgrade` see them: the
/// finalized `metadata.version` and `transaction.version` with the levels the broker
/// supports; an upgrade checked with `validate_only` (nothing changes), an unknown feature
/// and a level above the supported range refused, naming the feature.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn features_described_and_updates_validated() {
    use kafka_sdk::admin::FeatureUpgrade;
    let a = admin().await;
    let f = a.describe_features().await.unwrap();
    assert!(f.finalized_epoch >= 0, "{f:?}");
    let mv = f.finalized["metadata.version"];
    let (_, mv_max) = f.supported["metadata.version"];
    assert!(mv >= 1 && mv <= mv_max, "{f:?}");
    let (_, tv_max) = f.supported["transaction.version"];
    let tv = f.finalized.get("transaction.version").copied().unwrap_or(0);
    assert!(tv <= tv_max, "{f:?}");
    // Checked, not applied.
    let r = a
        .update_features(
            &[("transaction.version", tv_max, FeatureUpgrade::Upgrade)],
            true,
        )
        .await
        .unwrap();
    r[0].1.as_ref().expect("a valid upgrade");
    assert_eq!(
        a.describe_features()
            .await
            .unwrap()
            .finalized
            .get("transaction.version")
            .copied()
            .unwrap_or(0),
        tv,
        "validate_only changed nothing"
    );
    let over = a
        .update_features(
            &[("transaction.version", tv_max + 1, FeatureUpgrade::Upgrade)],
            true,
        )
        .await;
    let e = match over {
        Err(e) => e,
        Ok(r) => r[0]
            .1
            .clone()
            .expect_err("a level above the supported range"),
    };
    assert!(e.to_string().contains("transaction.version"), "{e}");
    let unknown = a
        .update_features(&[("no.such.feature", 1, FeatureUpgrade::Upgrade)], true)
        .await;
    let e = match unknown {
        Err(e) => e,
        Ok(r) => r[0].1.clone().expect_err("an unknown feature"),
    };
    assert!(e.to_string().contains("no.such.feature"), "{e}");
}
