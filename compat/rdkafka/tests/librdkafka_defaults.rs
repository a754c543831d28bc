//! librdkafka's defaults where kafka-sdk's own (Java's) differ, seen through the broker: a
//! service that switched to the drop-in and sets none of these keys must see what it saw with
//! rdkafka. Against the test kit's shared broker (which allows topic auto-creation).
//! - `isolation.level` is `read_committed`: records of an aborted transaction are not read;
//! - `allow.auto.create.topics` is `false` for consumers: subscribing to a missing topic does
//!   not create it.
//!
//! The other defaults (delivery timeout, batch size, client id, CRC checks, assignors) are
//! checked on the configuration itself (unit test in src/config.rs).

mod common;
use common::{bootstrap, unique};

use std::time::{Duration, Instant};

use kafka_sdk::admin::{AdminClient, NewTopic};
use kafka_sdk::{ClientConfig, Producer, ProducerRecord};
use kafka_sdk_rdkafka::config::ClientConfig as RdConfig;
use kafka_sdk_rdkafka::consumer::{BaseConsumer, Consumer as _};
use kafka_sdk_rdkafka::message::Message;
use kafka_sdk_rdkafka::topic_partition_list::{Offset as RdOffset, TopicPartitionList};

fn native_config() -> ClientConfig {
    ClientConfig::new().with("bootstrap.servers", bootstrap())
}

/// A consumer configured as a service that relies on librdkafka's defaults would configure it.
fn rd_consumer(group: &str) -> BaseConsumer {
    let mut c = RdConfig::new();
    c.set("bootstrap.servers", bootstrap())
        .set("group.id", group)
        .set("enable.auto.commit", "false");
    c.create().expect("create the drop-in consumer")
}

async fn send_in_transaction(p: &Producer, topic: &str, values: &[&str]) {
    let mut futs = Vec::new();
    for v in values {
        futs.push(
            p.send(
                ProducerRecord::new(topic)
                    .partition(0)
                    .value(v.as_bytes().to_vec()),
            )
            .await
            .expect("send"),
        );
    }
    for f in futs {
        f.await.expect("delivered");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_of_an_aborted_transaction_are_not_read_by_default() {
    let topic = unique("defaults-txn");
    let admin = AdminClient::new(&native_config()).await.unwrap();
    admin
        .create_topic(NewTopic::new(&topic, 1, 1))
        .await
        .unwrap();
    let p = Producer::new(
        &native_config()
            .with("transactional.id", unique("defaults-txn-id"))
            .with("linger.ms", "1"),
    )
    .await
    .unwrap();
    p.init_transactions().await.unwrap();
    p.begin_transaction().unwrap();
    send_in_transaction(&p, &topic, &["aborted-1", "aborted-2", "aborted-3"]).await;
    p.abort_transaction().await.unwrap();
    p.begin_transaction().unwrap();
    send_in_transaction(&p, &topic, &["committed-1", "committed-2"]).await;
    p.commit_transaction().await.unwrap();

    let topic2 = topic.clone();
    let got = tokio::task::spawn_blocking(move || {
        let c = rd_consumer(&unique("defaults-txn-g"));
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(&topic2, 0, RdOffset::Beginning)
            .unwrap();
        c.assign(&tpl).unwrap();
        let mut got = Vec::new();
        // The committed records, then a further second in which an aborted one could show.
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut quiet_until: Option<Instant> = None;
        while Instant::now() < deadline && quiet_until.is_none_or(|q| Instant::now() < q) {
            if let Some(m) = c.poll(Duration::from_millis(100)) {
                let m = m.expect("no consumer error");
                got.push(String::from_utf8(m.payload().unwrap().to_vec()).unwrap());
            }
            if got.len() >= 2 && quiet_until.is_none() {
                quiet_until = Some(Instant::now() + Duration::from_secs(1));
            }
        }
        got
    })
    .await
    .unwrap();
    assert_eq!(got, ["committed-1", "committed-2"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribing_to_a_missing_topic_does_not_create_it() {
    let topic = unique("defaults-missing");
    let t = topic.clone();
    tokio::task::spawn_blocking(move || {
        let c = rd_consumer(&unique("defaults-missing-g"));
        c.subscribe(&[&t]).unwrap();
        let until = Instant::now() + Duration::from_secs(3);
        while Instant::now() < until {
            if let Some(Ok(m)) = c.poll(Duration::from_millis(100)) {
                panic!(
                    "a record from a topic that does not exist: {:?}",
                    m.offset()
                );
            }
        }
    })
    .await
    .unwrap();
    let admin = AdminClient::new(&native_config()).await.unwrap();
    let topics = admin.list_topics(false).await.unwrap();
    assert!(
        !topics.contains(&topic),
        "the consumer created {topic} (librdkafka's consumers do not by default)"
    );
}
