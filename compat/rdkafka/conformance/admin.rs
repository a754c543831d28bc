//! Conformance: create a topic with `AdminClient` (3 partitions, replication 1, a topic
//! config), see it in the metadata, grow it to 4 partitions, alter and describe its configs,
//! write 5 records to partition 0 and delete the first 3, commit an offset for a group and
//! delete the group, delete the topic.

#[path = "common.rs"]
mod common;

use std::error::Error;
use std::time::Duration;

use rdkafka::admin::{
    AdminClient, AdminOptions, AlterConfig, NewPartitions, NewTopic, ResourceSpecifier,
    TopicReplication,
};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};

pub use common::Opts;

/// What the program saw.
#[derive(Debug, Default)]
pub struct Report {
    pub created: Vec<String>,
    pub partitions_seen: usize,
    pub grown: Vec<String>,
    pub partitions_after_growth: usize,
    pub altered: usize,
    /// `retention.ms` as described after the alter.
    pub retention_ms: Option<String>,
    /// Partition 0's low watermark as answered by `delete_records`.
    pub low_watermark: Option<i64>,
    pub groups_deleted: Vec<String>,
    pub deleted: Vec<String>,
}

fn partitions(admin: &AdminClient<DefaultClientContext>, topic: &str, want: usize) -> usize {
    // Metadata reaches every broker a moment later: ask until it shows.
    let mut seen = 0;
    for _ in 0..100 {
        let md = admin
            .inner()
            .fetch_metadata(Some(topic), Duration::from_secs(10))
            .expect("metadata");
        seen = md.topics().iter().map(|t| t.partitions().len()).sum();
        if seen >= want {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    seen
}

pub async fn run(o: &Opts) -> Result<Report, Box<dyn Error>> {
    let admin: AdminClient<DefaultClientContext> = o.config(&[]).create()?;
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    let topic =
        NewTopic::new(&o.topic, 3, TopicReplication::Fixed(1)).set("retention.ms", "600000");
    let mut report = Report::default();
    for r in admin.create_topics(&[topic], &opts).await? {
        report
            .created
            .push(r.map_err(|(t, e)| format!("create {t}: {e}"))?);
    }
    report.partitions_seen = partitions(&admin, &o.topic, 3);

    for r in admin
        .create_partitions(&[NewPartitions::new(&o.topic, 4)], &opts)
        .await?
    {
        report
            .grown
            .push(r.map_err(|(t, e)| format!("create partitions {t}: {e}"))?);
    }
    report.partitions_after_growth = partitions(&admin, &o.topic, 4);

    let change = AlterConfig::new(ResourceSpecifier::Topic(&o.topic)).set("retention.ms", "700000");
    for r in admin.alter_configs(&[change], &opts).await? {
        r.map_err(|(s, e)| format!("alter configs {s:?}: {e}"))?;
        report.altered += 1;
    }
    // The broker applies a config change from the metadata log a moment after the change
    // is acknowledged (KRaft): describe until it shows.
    for _ in 0..100 {
        for r in admin
            .describe_configs(&[ResourceSpecifier::Topic(&o.topic)], &opts)
            .await?
        {
            let res = r.map_err(|e| format!("describe configs: {e}"))?;
            report.retention_ms = res.get("retention.ms").and_then(|e| e.value.clone());
        }
        if report.retention_ms.as_deref() == Some("700000") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let producer: FutureProducer = o.config(&[]).create()?;
    for i in 0..5 {
        let key = format!("k{i}");
        producer
            .send(
                FutureRecord::to(&o.topic)
                    .partition(0)
                    .key(&key)
                    .payload("x"),
                Duration::from_secs(30),
            )
            .await
            .map_err(|(e, _)| format!("produce: {e}"))?;
    }
    let mut before = TopicPartitionList::new();
    before.add_partition_offset(&o.topic, 0, Offset::Offset(3))?;
    let after = admin.delete_records(&before, &opts).await?;
    for e in after.elements() {
        e.error()?;
        report.low_watermark = e.offset().to_raw();
    }

    let consumer: BaseConsumer = o.config(&[("group.id", &o.group)]).create()?;
    let mut commit = TopicPartitionList::new();
    commit.add_partition_offset(&o.topic, 0, Offset::Offset(4))?;
    consumer.assign(&commit)?;
    consumer.commit(&commit, CommitMode::Sync)?;
    drop(consumer);
    for r in admin.delete_groups(&[&o.group], &opts).await? {
        report
            .groups_deleted
            .push(r.map_err(|(g, e)| format!("delete group {g}: {e}"))?);
    }

    for r in admin.delete_topics(&[&o.topic], &opts).await? {
        report
            .deleted
            .push(r.map_err(|(t, e)| format!("delete {t}: {e}"))?);
    }
    Ok(report)
}

#[allow(dead_code)]
#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let o = Opts::from_args();
    println!("{:?}", run(&o).await?);
    Ok(())
}
