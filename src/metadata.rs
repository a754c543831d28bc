//! Cluster metadata as the clients report it: brokers, topics, partitions, leaders and
//! replicas. Plain data owned by the caller (a copy of the client's current view).
//!
//! [`Producer::partitions_for`](crate::Producer::partitions_for),
//! [`ConsumerHandle::partitions_for`](crate::ConsumerHandle::partitions_for) and
//! [`AdminClient::describe_topics`](crate::AdminClient::describe_topics) return
//! [`TopicMetadata`]; `fetch_metadata` on each client returns a whole [`Metadata`].

use uuid::Uuid;

use crate::cluster::{BrokerMeta, MetadataSnapshot, PartitionMeta, TopicMeta};

/// A view of the cluster: its id, brokers and the topics asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Metadata {
    /// The cluster id, when the broker reported one.
    pub cluster_id: Option<String>,
    /// The controller's node id as reported (in KRaft, a broker the answering broker chose),
    /// `None` when unknown.
    pub controller_id: Option<i32>,
    /// Brokers, sorted by node id.
    pub brokers: Vec<BrokerMetadata>,
    /// Topics, sorted by name.
    pub topics: Vec<TopicMetadata>,
}

/// One broker as the cluster advertises it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct BrokerMetadata {
    /// Node id.
    pub node_id: i32,
    /// Advertised host.
    pub host: String,
    /// Advertised port.
    pub port: i32,
    /// Rack, if the broker has one.
    pub rack: Option<String>,
}

/// One topic.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TopicMetadata {
    /// Topic name.
    pub name: String,
    /// Topic id (`None` when the broker did not send one).
    pub id: Option<Uuid>,
    /// Whether Kafka uses it internally (`__consumer_offsets`, `__transaction_state`).
    pub is_internal: bool,
    /// Partitions, sorted by index.
    pub partitions: Vec<PartitionMetadata>,
}

/// One partition of a topic.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PartitionMetadata {
    /// Partition index.
    pub partition: i32,
    /// Leader's node id; `None` while the partition has no leader.
    pub leader: Option<i32>,
    /// Leader epoch, when the broker reported one.
    pub leader_epoch: Option<i32>,
    /// Replica node ids.
    pub replicas: Vec<i32>,
    /// In-sync replica node ids.
    pub isr: Vec<i32>,
    /// Offline replica node ids.
    pub offline_replicas: Vec<i32>,
}

impl From<&BrokerMeta> for BrokerMetadata {
    fn from(b: &BrokerMeta) -> Self {
        BrokerMetadata {
            node_id: b.node_id,
            host: b.host.clone(),
            port: b.port,
            rack: b.rack.clone(),
        }
    }
}

impl From<&PartitionMeta> for PartitionMetadata {
    fn from(p: &PartitionMeta) -> Self {
        PartitionMetadata {
            partition: p.partition,
            leader: (p.leader >= 0).then_some(p.leader),
            leader_epoch: (p.leader_epoch >= 0).then_some(p.leader_epoch),
            replicas: p.replicas.clone(),
            isr: p.isr.clone(),
            offline_replicas: p.offline.clone(),
        }
    }
}

impl From<&TopicMeta> for TopicMetadata {
    fn from(t: &TopicMeta) -> Self {
        TopicMetadata {
            name: t.name.to_string(),
            id: (!t.id.is_nil()).then_some(t.id),
            is_internal: t.is_internal,
            partitions: t.partitions.iter().map(PartitionMetadata::from).collect(),
        }
    }
}

impl Metadata {
    /// The topic named `name`, if present.
    pub fn topic(&self, name: &str) -> Option<&TopicMetadata> {
        self.topics.iter().find(|t| t.name == name)
    }

    /// The broker with node id `node_id`, if present.
    pub fn broker(&self, node_id: i32) -> Option<&BrokerMetadata> {
        self.brokers.iter().find(|b| b.node_id == node_id)
    }

    /// Builds the public view of `snapshot` limited to `topics` (all topics the snapshot holds
    /// when `None`).
    pub(crate) fn from_snapshot(snapshot: &MetadataSnapshot, topics: Option<&[&str]>) -> Self {
        let mut list: Vec<TopicMetadata> = snapshot
            .topics
            .values()
            .filter(|t| t.error.is_none())
            .filter(|t| topics.is_none_or(|names| names.contains(&t.name.as_ref())))
            .map(|t| TopicMetadata::from(t.as_ref()))
            .collect();
        list.sort_by(|a, b| a.name.cmp(&b.name));
        Metadata {
            cluster_id: snapshot.cluster_id.clone(),
            controller_id: (snapshot.controller_id >= 0).then_some(snapshot.controller_id),
            brokers: snapshot
                .brokers
                .values()
                .map(BrokerMetadata::from)
                .collect(),
            topics: list,
        }
    }
}

impl TopicMetadata {
    /// Number of partitions.
    pub fn partition_count(&self) -> usize {
        self.partitions.len()
    }
}

/// Metadata of `topic` (waiting, until `timeout`, for the topic to exist with leaders for all
/// its partitions), or of every topic when `topic` is `None`. One implementation for the three
/// clients' `fetch_metadata`.
pub(crate) async fn fetch(
    cluster: &crate::cluster::Cluster,
    topic: Option<&str>,
    timeout: std::time::Duration,
) -> crate::Result<Metadata> {
    match topic {
        Some(name) => {
            crate::types::validate_topic_name(name)?;
            let deadline = crate::backoff::Deadline::after(timeout);
            // Asked of the cluster now (as Java's describeTopics and librdkafka's
            // rd_kafka_metadata): the snapshot may predate added partitions or moved
            // replicas. A failed refresh is retried by the wait below, within the deadline.
            let _ =
                tokio::time::timeout(deadline.remaining(), cluster.refresh_topics(&[name])).await;
            cluster.topic_metadata(name, deadline).await?;
            Ok(Metadata::from_snapshot(&cluster.metadata(), Some(&[name])))
        }
        // Brokers, topics and cluster id from the one answer (not the cached snapshot,
        // which a lazily started client may not have filled yet).
        None => Ok(Metadata::from_snapshot(
            &cluster.fetch_all(timeout).await?,
            None,
        )),
    }
}

/// The partitions of `topic` (see [`fetch`]).
pub(crate) async fn partitions_for(
    cluster: &crate::cluster::Cluster,
    topic: &str,
    timeout: std::time::Duration,
) -> crate::Result<Vec<PartitionMetadata>> {
    crate::types::validate_topic_name(topic)?;
    let t = cluster
        .topic_metadata(topic, crate::backoff::Deadline::after(timeout))
        .await?;
    Ok(t.partitions.iter().map(PartitionMetadata::from).collect())
}
