//! The drop-in against a SASL_SSL broker of the test kit, configured with librdkafka's key
//! spellings as an rdkafka service writes them (`security.protocol=SASL_SSL`,
//! `sasl.mechanisms`, `sasl.username`, `sasl.password`, `ssl.ca.location`): the admin client
//! creates a topic, a `FutureProducer` writes to it and a `StreamConsumer` in a group reads
//! it back; a wrong password is an authentication error, not a hang.

use std::time::{Duration, Instant};

use kafka_sdk_rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use kafka_sdk_rdkafka::config::ClientConfig;
use kafka_sdk_rdkafka::consumer::{Consumer, StreamConsumer};
use kafka_sdk_rdkafka::error::KafkaError;
use kafka_sdk_rdkafka::message::Message;
use kafka_sdk_rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use kafka_sdk_rdkafka::util::Timeout;
use kafka_testkit::{KafkaCluster, Security, SUPER_USER};

fn cluster() -> &'static KafkaCluster {
    kafka_testkit::shared_secured(Security::SaslSsl)
}

/// librdkafka spellings, password as given.
fn config(password: &str) -> ClientConfig {
    let c = cluster();
    let ca = c.ca_path().expect("the SASL_SSL cluster has a CA");
    let mut cfg = ClientConfig::new();
    cfg.set("bootstrap.servers", c.bootstrap())
        .set("security.protocol", "SASL_SSL")
        .set("sasl.mechanisms", "SCRAM-SHA-256")
        .set("sasl.username", SUPER_USER)
        .set("sasl.password", password)
        .set("ssl.ca.location", ca.to_string_lossy());
    cfg
}

fn password() -> String {
    cluster().user(SUPER_USER).unwrap().password.clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn produce_and_consume_over_sasl_ssl_with_librdkafka_keys() {
    let topic = format!("secured-{}", std::process::id());
    let admin: AdminClient<_> = config(&password()).create().expect("admin client");
    let created = admin
        .create_topics(
            &[NewTopic::new(&topic, 1, TopicReplication::Fixed(1))],
            &AdminOptions::new(),
        )
        .await
        .expect("create_topics");
    assert!(created.iter().all(|r| r.is_ok()), "{created:?}");

    let producer: FutureProducer = config(&password()).create().expect("producer");
    for i in 0..10 {
        let value = format!("secured-{i}");
        producer
            .send(
                FutureRecord::<(), _>::to(&topic).payload(&value),
                Duration::from_secs(10),
            )
            .await
            .unwrap_or_else(|(e, _)| panic!("record {i}: {e}"));
    }
    producer
        .flush(Timeout::After(Duration::from_secs(10)))
        .unwrap();

    let mut cc = config(&password());
    cc.set("group.id", format!("secured-g-{}", std::process::id()))
        .set("auto.offset.reset", "earliest");
    let consumer: StreamConsumer = cc.create().expect("consumer");
    consumer.subscribe(&[&topic]).unwrap();
    let mut got = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while got.len() < 10 && Instant::now() < deadline {
        let m = tokio::time::timeout(Duration::from_secs(5), consumer.recv()).await;
        if let Ok(m) = m {
            let m = m.expect("no consumer error");
            got.push(String::from_utf8(m.payload().unwrap().to_vec()).unwrap());
        }
    }
    let want: Vec<String> = (0..10).map(|i| format!("secured-{i}")).collect();
    assert_eq!(got, want);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_password_is_an_error_not_a_hang() {
    // As rdkafka: `create()` does not connect, so it succeeds; the first call that needs
    // the cluster says why it cannot have it (librdkafka's local `Authentication` code).
    let producer: FutureProducer = config("not-the-password")
        .create()
        .expect("create() does not connect");
    let t0 = Instant::now();
    let res = tokio::task::spawn_blocking(move || {
        producer
            .client()
            .fetch_metadata(None, Duration::from_secs(20))
            .map(|_| ())
    })
    .await
    .unwrap();
    let err: KafkaError = res.expect_err("metadata with a wrong password");
    assert!(
        t0.elapsed() < Duration::from_secs(20),
        "took {:?} to fail: {err}",
        t0.elapsed()
    );
    assert!(
        format!("{err}").to_lowercase().contains("auth"),
        "not an authentication error: {err}"
    );
}
