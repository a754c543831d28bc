//! Client events (`kafka_sdk::events`) against real brokers: what a client's background work
//! runs into that no call returns. An owned single-node cluster whose broker this file kills
//! and starts again, and a port nothing listens on.

mod support;

use std::time::Duration;

use kafka_sdk::events::{ClientEvent, ClientEvents};
use kafka_sdk::{ClientConfig, Error, Producer, ProducerRecord};
use kafka_testkit::{ClusterOptions, KafkaCluster};

/// The next event within `within`, or a panic naming `what`.
async fn next(events: &mut ClientEvents, within: Duration, what: &str) -> ClientEvent {
    match tokio::time::timeout(within, events.recv()).await {
        Ok(Some(e)) => e,
        Ok(None) => panic!("{what}: the subscription ended"),
        Err(_) => panic!("{what}: no event within {within:?}"),
    }
}

/// An endpoint: `host:port` and node id (`None`: a bootstrap address).
type Endpoint = (String, Option<i32>);

/// Events until `AllBrokersDown` (the `BrokerDown`s before it), within `within`.
async fn until_all_down(events: &mut ClientEvents, within: Duration) -> (Vec<Endpoint>, usize) {
    let mut down = Vec::new();
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match next(events, left, "AllBrokersDown").await {
            ClientEvent::BrokerDown {
                broker,
                node_id,
                error,
            } => {
                assert!(
                    matches!(error, Error::Connection { .. }),
                    "{broker}: {error:?}"
                );
                down.push((broker, node_id));
            }
            ClientEvent::AllBrokersDown { brokers } => return (down, brokers),
            other => panic!("before AllBrokersDown: {other:?}"),
        }
    }
}

/// A producer connected to a broker that dies: each of its endpoints (the bootstrap entry
/// and the broker) reports `BrokerDown` once, then `AllBrokersDown` comes once (not again
/// for every reconnect attempt while the broker stays down); when the broker is back,
/// `BrokerUp` comes and records flow again. A subscriber made during the outage starts with
/// it. With the broker up, nothing is reported.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_down_all_down_and_back() {
    let cluster = KafkaCluster::start(ClusterOptions {
        allow_external: false,
        ..Default::default()
    })
    .expect("own cluster");
    let bs = cluster.bootstrap();
    let topic = "events-t";
    cluster.create_topic(topic, 1, 1, &[]).unwrap();
    let cfg = ClientConfig::new()
        .with("bootstrap.servers", &bs)
        .with("reconnect.backoff.ms", "50")
        .with("reconnect.backoff.max.ms", "200")
        .with("delivery.timeout.ms", "120000");
    let producer = Producer::new(&cfg).await.unwrap();
    let mut events = producer.subscribe_events();
    producer
        .send_and_wait(ProducerRecord::new(topic).value("before"))
        .await
        .unwrap();
    assert!(
        events.try_recv().is_none(),
        "nothing while the broker is up"
    );

    let node = cluster.node_ids()[0];
    cluster.kill(node).unwrap();
    // A record sent now waits for the broker (its request needs a connection).
    let pending = producer
        .send(ProducerRecord::new(topic).value("during"))
        .await
        .unwrap();
    let (down, brokers) = until_all_down(&mut events, Duration::from_secs(30)).await;
    assert!(!down.is_empty() && brokers >= 1, "{down:?} {brokers}");
    let mut sorted = down.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(
        sorted.len(),
        down.len(),
        "one BrokerDown per endpoint: {down:?}"
    );
    // Reconnect attempts keep failing (every 200 ms at most): no event again for an endpoint
    // already down and no second AllBrokersDown. An endpoint not tried before the outage
    // (e.g. the bootstrap address, tried by a later metadata refresh) goes down for the first
    // time and may report that once (the module's documented states; CI saw an event here
    // once, not printed then).
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut reported = down.clone();
    while let Some(e) = events.try_recv() {
        match e {
            ClientEvent::BrokerDown {
                broker, node_id, ..
            } if !reported.contains(&(broker.clone(), node_id)) => {
                reported.push((broker, node_id));
            }
            other => panic!("reported once per outage: {other:?} after {down:?}"),
        }
    }
    let mut late = producer.subscribe_events();
    let (late_down, _) = until_all_down(&mut late, Duration::from_secs(1)).await;
    assert!(
        !late_down.is_empty(),
        "a late subscriber starts with the outage"
    );

    cluster.start_node(node).unwrap();
    match next(&mut events, Duration::from_secs(60), "BrokerUp").await {
        ClientEvent::BrokerUp { broker, node_id } => {
            assert!(
                down.contains(&(broker.clone(), node_id)),
                "{broker} {node_id:?}"
            )
        }
        other => panic!("after the restart: {other:?}"),
    }
    let meta = tokio::time::timeout(Duration::from_secs(60), pending)
        .await
        .expect("the waiting record is delivered after the restart")
        .unwrap();
    assert_eq!(&*meta.topic, topic);
}

/// A lazily built client whose bootstrap address refuses connections reports the address
/// down and then every broker down, to a subscriber made right after the build (the first
/// attempt may have failed already).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_bootstrap_is_all_brokers_down() {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap().to_string();
    drop(l);
    let cfg = ClientConfig::new()
        .with("bootstrap.servers", &addr)
        .with("reconnect.backoff.max.ms", "200");
    let producer = Producer::builder(&cfg)
        .lazy_bootstrap(true)
        .build()
        .await
        .unwrap();
    let mut events = producer.subscribe_events();
    let (down, brokers) = until_all_down(&mut events, Duration::from_secs(20)).await;
    assert_eq!((down, brokers), (vec![(addr, None)], 1));
}
