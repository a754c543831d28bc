//! Conformance: create a topic with `AdminClient` (3 partitions, replication 1, a topic
//! config), see it in the metadata, delete it.

#[path = "common.rs"]
mod common;

use std::error::Error;
use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;

pub use common::Opts;

/// What the program saw.
#[derive(Debug, Default)]
pub struct Report {
    pub created: Vec<String>,
    pub partitions_seen: usize,
    pub deleted: Vec<String>,
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
    // A new topic reaches every broker's metadata a moment later: ask until it shows.
    for _ in 0..100 {
        let md = admin
            .inner()
            .fetch_metadata(Some(&o.topic), Duration::from_secs(10))?;
        report.partitions_seen = md.topics().iter().map(|t| t.partitions().len()).sum();
        if report.partitions_seen > 0 {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
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
