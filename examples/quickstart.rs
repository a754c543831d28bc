//! Quickstart: connect to Kafka, show the cluster, create and describe a topic, produce a few
//! keyed records with headers, consume them back in a consumer group and commit.
//!
//! ```text
//! cargo run --example quickstart                      # starts a local Kafka via kafka-testkit
//! cargo run --example quickstart -- --brokers host:9092
//! KAFKA_BOOTSTRAP_SERVERS=host:9092 cargo run --example quickstart
//! cargo run --example quickstart -- --brokers host:9092 -X client.id=demo -X linger.ms=20
//! ```

mod common;

use std::process::ExitCode;
use std::time::Duration;

use kafka_sdk::admin::{AdminClient, NewTopic};
use kafka_sdk::consumer::{CommitMode, Consumer};
use kafka_sdk::producer::{Producer, ProducerRecord};
use kafka_sdk::ClientConfig;

#[tokio::main]
async fn main() -> ExitCode {
    let about = "kafka-sdk quickstart: admin, produce, consume and commit round trip";
    common::exit(run(common::Connection::parse_alone(about)).await)
}

async fn run(conn: common::Connection) -> Result<(), common::BoxError> {
    // Use the given cluster, or start a throwaway local one (Java 17+ and Maven needed).
    let kafka = conn.connect().await?;
    println!("bootstrap: {}", kafka.bootstrap());

    // bootstrap.servers, this client.id, then any -X key=value from the command line.
    let own = ClientConfig::new().with("client.id", "kafka-sdk-quickstart");
    let config = kafka.config(own.clone());
    let admin = AdminClient::new(&config).await?;

    println!(
        "cluster id: {}",
        admin.cluster_id().await?.unwrap_or_default()
    );
    for b in admin.brokers().await? {
        println!("broker {} at {}:{}", b.node_id, b.host, b.port);
    }

    let topic = format!("quickstart-{}", std::process::id());
    admin
        .create_topic(NewTopic::new(&topic, 3, 1).config("retention.ms", "600000"))
        .await?;
    for t in admin.describe_topics(&[&topic]).await? {
        let id = t.id.map(|id| id.to_string()).unwrap_or_default();
        println!("topic {} (id {id}):", t.name);
        for p in &t.partitions {
            println!(
                "  partition {} leader {:?} epoch {:?} replicas {:?} isr {:?}",
                p.partition, p.leader, p.leader_epoch, p.replicas, p.isr
            );
        }
    }

    // Produce: the first await is acceptance into the buffer, the second the broker's ack.
    let producer = Producer::new(&config).await?;
    let mut deliveries = Vec::new();
    for (i, user) in ["alice", "bob", "carol", "alice"].iter().enumerate() {
        let record = ProducerRecord::new(topic.as_str())
            .key(user.to_string())
            .value(format!("order #{i} for {user}"))
            .header("source", Some("quickstart"));
        deliveries.push(producer.send(record).await?);
    }
    for d in deliveries {
        let m = d.await?;
        println!(
            "produced to {}-{} at offset {}",
            m.topic, m.partition, m.offset
        );
    }
    producer.close(Duration::from_secs(10)).await?;

    // Consume them back as a member of a consumer group, then commit what was processed.
    let consumer = Consumer::new(
        &kafka.config(
            own.with("group.id", "quickstart-group")
                .with("auto.offset.reset", "earliest")
                .with("enable.auto.commit", "false"),
        ),
    )
    .await?;
    consumer.subscribe(&[topic.as_str()])?;
    for _ in 0..4 {
        let m = tokio::time::timeout(Duration::from_secs(60), consumer.recv()).await??;
        let key = String::from_utf8_lossy(m.key().map(|k| k.as_ref()).unwrap_or_default());
        let value = String::from_utf8_lossy(m.payload().unwrap_or_default());
        let source = m
            .header("source")
            .flatten()
            .map(|v| String::from_utf8_lossy(v).to_string());
        println!(
            "consumed {}-{}@{}: {key} => {value} (source: {})",
            m.topic(),
            m.partition(),
            m.offset(),
            source.unwrap_or_default()
        );
    }
    consumer.commit(CommitMode::Sync).await?;
    for (tp, offset) in consumer.committed(None, Duration::from_secs(10)).await? {
        println!("committed {tp}: next offset {}", offset.unwrap_or(-1));
    }
    consumer.close().await?;

    admin.delete_topics(&[&topic]).await?;
    println!("deleted {topic}; done");
    // Give the local broker (if any) a moment to flush logs before the kit stops it on drop.
    tokio::time::sleep(Duration::from_millis(10)).await;
    Ok(())
}
