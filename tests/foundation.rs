//! Foundation tests against a real Apache Kafka broker (started by kafka-testkit, or the
//! cluster named by KAFKA_BOOTSTRAP_SERVERS): version negotiation, metadata, admin, pipelining,
//! timeouts on a paused broker, recovery after a restart, cancellation safety, bad config.

mod support;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{ApiKey, MetadataRequest, TopicName};
use kafka_protocol::protocol::StrBytes;
use kafka_sdk::admin::{AdminClient, NewTopic};
use kafka_sdk::cluster::{Cluster, ClusterOptions};
use kafka_sdk::connection::{Connection, ConnectionOptions};
use kafka_sdk::{ClientConfig, Error, KafkaCode};
use kafka_testkit::{ClusterOptions as KitOptions, KafkaCluster};

use support::common::unique;

fn bootstrap() -> String {
    kafka_testkit::shared().bootstrap()
}

/// A connection of its own to the first bootstrap broker of the shared cluster.
async fn connect_first() -> Connection {
    let bs = bootstrap();
    let addr = bs.split(',').next().unwrap();
    Connection::connect(addr, ConnectionOptions::default())
        .await
        .unwrap()
}

/// Metadata for all topics, never creating one.
fn all_topics_metadata() -> MetadataRequest {
    MetadataRequest::default()
        .with_topics(None)
        .with_allow_auto_topic_creation(false)
}

/// `Cluster::connect` to `addr` with connection setup and request timeouts of `timeout_ms`,
/// expected to fail: the error and how long the attempt took.
async fn connect_err(addr: &str, timeout_ms: &str) -> (Error, Duration) {
    let cfg = ClientConfig::new()
        .with("bootstrap.servers", addr)
        .with("socket.connection.setup.timeout.ms", timeout_ms)
        .with("request.timeout.ms", timeout_ms)
        .common()
        .unwrap();
    let start = Instant::now();
    let err = Cluster::connect(ClusterOptions::from(&cfg))
        .await
        .unwrap_err();
    (err, start.elapsed())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn version_negotiation_uses_min_of_client_and_broker() {
    let conn = connect_first().await;
    let v = conn.versions();
    // The handshake itself used ApiVersions v3+ (Kafka 4 supports >= 3), so the broker
    // reported its ranges and finalized features.
    let (_, api_versions_max) = v.broker_range(ApiKey::ApiVersions).unwrap();
    assert!(api_versions_max >= 3);
    assert!(
        v.feature("metadata.version").is_some(),
        "finalized features missing"
    );
    for key in [
        ApiKey::Produce,
        ApiKey::Fetch,
        ApiKey::Metadata,
        ApiKey::FindCoordinator,
        ApiKey::CreateTopics,
        ApiKey::JoinGroup,
    ] {
        let (_, client_max) = kafka_sdk::protocol::client_versions(key).unwrap();
        let (_, broker_max) = v.broker_range(key).unwrap();
        assert_eq!(
            conn.version_for(key).unwrap(),
            client_max.min(broker_max),
            "{key:?}"
        );
    }
    // Produce and Fetch stay below the topic-id versions on purpose.
    assert!(conn.version_for(ApiKey::Produce).unwrap() <= 12);
    assert!(conn.version_for(ApiKey::Fetch).unwrap() <= 12);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_describe_delete_topic() {
    let admin = AdminClient::new(&ClientConfig::new().with("bootstrap.servers", bootstrap()))
        .await
        .unwrap();
    assert!(admin.cluster_id().await.unwrap().is_some());
    let brokers = admin.brokers().await.unwrap();
    assert!(!brokers.is_empty());
    let name = unique("foundation-topic");
    admin
        .create_topic(NewTopic::new(&name, 4, 1).config("retention.ms", "3600000"))
        .await
        .unwrap();
    let desc = admin.describe_topics(&[&name]).await.unwrap();
    assert_eq!(desc.len(), 1);
    let d = &desc[0];
    assert_eq!(d.name, name);
    assert!(
        d.id.is_some_and(|id| !id.is_nil()),
        "topic id should be set"
    );
    assert_eq!(d.partitions.len(), 4);
    let broker_ids: HashSet<i32> = brokers.iter().map(|b| b.node_id).collect();
    for (i, p) in d.partitions.iter().enumerate() {
        assert_eq!(p.partition, i as i32);
        assert!(
            p.leader.is_some_and(|l| broker_ids.contains(&l)),
            "leader {:?} unknown",
            p.leader
        );
        assert_eq!(p.replicas.len(), 1);
        assert_eq!(p.isr, p.replicas);
        assert!(p.leader_epoch.is_some_and(|e| e >= 0));
    }
    assert!(admin.list_topics(false).await.unwrap().contains(&name));

    // Creating it again is a typed broker error.
    let err = admin
        .create_topic(NewTopic::new(&name, 1, 1))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(KafkaCode::TOPIC_ALREADY_EXISTS), "{err}");

    let res = admin.delete_topics(&[&name]).await.unwrap();
    assert!(res[0].1.is_ok(), "{res:?}");
    assert!(!admin.list_topics(false).await.unwrap().contains(&name));
    let err = admin.describe_topics(&[&name]).await.unwrap_err();
    assert!(matches!(err, Error::UnknownTopicOrPartition(_)), "{err}");

    // Bad names never reach the broker.
    let err = admin
        .create_topic(NewTopic::new("bad name!", 1, 1))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidArgument(_)), "{err}");
}

/// 1,000 requests pipelined on one connection; each response must be the answer to its own
/// request (each asks about a different topic name).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousand_concurrent_requests_on_one_connection() {
    let conn = connect_first().await;
    let mut tasks = Vec::new();
    for i in 0..1000 {
        let conn = conn.clone();
        tasks.push(tokio::spawn(async move {
            let name = format!("no-such-topic-{i}");
            let req = MetadataRequest::default()
                .with_topics(Some(vec![MetadataRequestTopic::default()
                    .with_name(Some(TopicName(StrBytes::from_string(name.clone()))))]))
                .with_allow_auto_topic_creation(false);
            let resp = conn.send(&req).await.unwrap();
            assert_eq!(resp.topics.len(), 1);
            let t = &resp.topics[0];
            assert_eq!(t.name.as_ref().unwrap().0.as_str(), name);
            assert_eq!(
                KafkaCode(t.error_code),
                KafkaCode::UNKNOWN_TOPIC_OR_PARTITION
            );
            i
        }));
    }
    let mut seen = HashSet::new();
    for t in tasks {
        seen.insert(t.await.unwrap());
    }
    assert_eq!(seen.len(), 1000);
    assert!(!conn.is_closed());
}

/// Dropping request futures at any point (before write, in flight) leaves the connection
/// usable: no half frame on the wire, no stuck waiter.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_request_futures_leave_connection_usable() {
    let conn = connect_first().await;
    let req = all_topics_metadata();
    for delay_us in [0u64, 10, 50, 100, 200, 500, 1000, 2000, 5000] {
        for _ in 0..5 {
            let fut = conn.send(&req);
            // Cancel after `delay_us`: depending on timing, before the write, mid-flight or
            // after the response arrived.
            let _ = tokio::time::timeout(Duration::from_micros(delay_us), fut).await;
        }
        let resp = conn.send(&req).await.expect("connection still usable");
        assert!(!resp.brokers.is_empty());
    }
    assert!(!conn.is_closed());
}

/// A paused broker (SIGSTOP) makes requests fail with a timeout within request.timeout.ms
/// plus a margin; after SIGCONT the same cluster handle works again. Then a full broker
/// restart: the same client object recovers without user action.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paused_then_restarted_broker() {
    if std::env::var("KAFKA_BOOTSTRAP_SERVERS").is_ok() {
        eprintln!("skipping: node control needs a cluster started by the test kit");
        return;
    }
    let kit = tokio::task::spawn_blocking(|| KafkaCluster::start(KitOptions::default()))
        .await
        .unwrap()
        .unwrap();
    let node = kit.node_ids()[0];
    let cfg = ClientConfig::new()
        .with("bootstrap.servers", kit.bootstrap())
        .with("request.timeout.ms", "2000")
        .with("socket.connection.setup.timeout.ms", "2000")
        .with("reconnect.backoff.ms", "50")
        .with("reconnect.backoff.max.ms", "500")
        .with("retry.backoff.ms", "50")
        .with("retry.backoff.max.ms", "500")
        .common()
        .unwrap();
    let cluster = Cluster::connect(ClusterOptions::from(&cfg)).await.unwrap();
    let conn = cluster.broker(node).await.unwrap();
    let req = all_topics_metadata();
    conn.send(&req).await.unwrap();

    kit.pause(node).unwrap();
    let start = Instant::now();
    let err = conn.send(&req).await.unwrap_err();
    let took = start.elapsed();
    kit.resume(node).unwrap();
    assert!(matches!(err, Error::Timeout { .. }), "{err:?}");
    assert!(took >= Duration::from_millis(1900), "{took:?}");
    assert!(took < Duration::from_millis(4000), "{took:?}");
    // The timed-out connection is poisoned; the cluster handle reconnects by itself.
    assert!(conn.is_closed());
    let conn2 = cluster.broker(node).await.unwrap();
    conn2.send(&req).await.unwrap();

    // An admin client of its own, connected before the restart: it must reconnect too.
    let admin =
        AdminClient::builder(&ClientConfig::new().with("bootstrap.servers", kit.bootstrap()))
            .operation_timeout(Duration::from_secs(30))
            .build()
            .await
            .unwrap();
    let name = unique("restart");
    admin
        .create_topic(NewTopic::new(&name, 2, 1))
        .await
        .unwrap();
    let kit = tokio::task::spawn_blocking(move || {
        kit.restart(node).unwrap();
        kit
    })
    .await
    .unwrap();
    // Same objects, no user action: the retry loop reconnects and refreshes.
    let topics = admin.list_topics(false).await.unwrap();
    assert!(topics.contains(&name), "{topics:?}");
    let desc = admin.describe_topics(&[&name]).await.unwrap();
    assert_eq!(desc[0].partitions.len(), 2);
    drop(kit);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_config_is_named() {
    let err = ClientConfig::new()
        .with("bootstrap.servers", "127.0.0.1:9092")
        .with("linger.mss", "5")
        .producer()
        .unwrap_err();
    assert!(err.to_string().contains("linger.mss"), "{err}");
    let err = ClientConfig::new()
        .with("bootstrap.servers", "127.0.0.1:9092")
        .with("request.timeout.ms", "soon")
        .common()
        .unwrap_err();
    let s = err.to_string();
    assert!(
        s.contains("request.timeout.ms") && s.contains("soon"),
        "{s}"
    );
    let err = ClientConfig::new().common().unwrap_err();
    assert!(err.to_string().contains("bootstrap.servers"), "{err}");
}

/// Unreachable bootstrap: a refused port fails fast with a connection error naming the
/// address; a listener that accepts but never answers fails within the setup timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_bootstrap_fails_within_timeout() {
    // A port with nothing listening.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let addr = format!("127.0.0.1:{port}");
    let (err, took) = connect_err(&addr, "1000").await;
    assert!(took < Duration::from_secs(5), "{took:?}");
    assert!(matches!(err, Error::Connection { .. }), "{err:?}");
    assert!(err.to_string().contains(&addr), "{err}");

    // A silent peer: accepts, never answers the ApiVersions handshake.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let silent = listener.local_addr().unwrap().to_string();
    let hold = tokio::spawn(async move {
        let mut socks = Vec::new();
        while let Ok((s, _)) = listener.accept().await {
            socks.push(s);
        }
    });
    let (err, took) = connect_err(&silent, "800").await;
    assert!(took < Duration::from_secs(4), "{took:?}");
    assert!(err.to_string().contains(&silent), "{err}");
    hold.abort();
}
