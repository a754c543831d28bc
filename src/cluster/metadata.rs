//! The cluster metadata snapshot: brokers, topics (with ids), partitions, leaders, epochs.
//! Immutable once built; readers share it through an `Arc`.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use kafka_protocol::messages::MetadataResponse;
use tokio::time::Instant;
use uuid::Uuid;

use crate::error::KafkaCode;

/// One broker as the cluster advertises it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerMeta {
    /// Node id.
    pub node_id: i32,
    /// Advertised host.
    pub host: String,
    /// Advertised port.
    pub port: i32,
    /// Rack, if configured.
    pub rack: Option<String>,
}

impl BrokerMeta {
    /// `host:port`.
    pub fn addr(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }
}

/// One partition of a topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionMeta {
    /// Partition index.
    pub partition: i32,
    /// Leader node id, or -1 when there is none right now.
    pub leader: i32,
    /// Leader epoch (-1 if unknown).
    pub leader_epoch: i32,
    /// Replica node ids.
    pub replicas: Vec<i32>,
    /// In-sync replica node ids.
    pub isr: Vec<i32>,
    /// Offline replica node ids.
    pub offline: Vec<i32>,
    /// Partition-level error reported by the broker (e.g. LEADER_NOT_AVAILABLE).
    pub error: Option<KafkaCode>,
}

/// One topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicMeta {
    /// Topic name.
    pub name: Arc<str>,
    /// Topic id (nil when the broker did not send one).
    pub id: Uuid,
    /// Whether Kafka uses it internally (`__consumer_offsets`, ...).
    pub is_internal: bool,
    /// Topic-level error (e.g. UNKNOWN_TOPIC_OR_PARTITION when it does not exist).
    pub error: Option<KafkaCode>,
    /// Partitions sorted by index.
    pub partitions: Vec<PartitionMeta>,
}

impl TopicMeta {
    /// The partition with index `p`, if the topic has it.
    pub fn partition(&self, p: i32) -> Option<&PartitionMeta> {
        match self.partitions.get(p as usize) {
            Some(pm) if pm.partition == p => Some(pm),
            _ => self.partitions.iter().find(|pm| pm.partition == p),
        }
    }

    /// Number of partitions.
    pub fn partition_count(&self) -> i32 {
        self.partitions.len() as i32
    }

    /// `true` when every partition currently has a leader.
    pub fn all_leaders_known(&self) -> bool {
        !self.partitions.is_empty() && self.partitions.iter().all(|p| p.leader >= 0)
    }
}

/// An immutable view of the cluster at one point in time.
#[derive(Debug, Clone)]
pub struct MetadataSnapshot {
    /// Cluster id.
    pub cluster_id: Option<String>,
    /// Controller id as reported (in KRaft, a broker chosen by the broker answering).
    pub controller_id: i32,
    /// Brokers by node id.
    pub brokers: BTreeMap<i32, BrokerMeta>,
    /// Topics by name (only the topics fetched so far, or all after a full refresh).
    pub topics: HashMap<Arc<str>, Arc<TopicMeta>>,
    /// When this snapshot was fetched (`None` before the first fetch).
    pub fetched_at: Option<Instant>,
}

impl Default for MetadataSnapshot {
    fn default() -> Self {
        MetadataSnapshot {
            cluster_id: None,
            controller_id: -1,
            brokers: BTreeMap::new(),
            topics: HashMap::new(),
            fetched_at: None,
        }
    }
}

impl MetadataSnapshot {
    /// A topic's metadata, if fetched.
    pub fn topic(&self, name: &str) -> Option<&Arc<TopicMeta>> {
        self.topics.get(name)
    }

    /// Leader node id of a partition, when known.
    pub fn leader(&self, topic: &str, partition: i32) -> Option<i32> {
        self.topic(topic)?
            .partition(partition)
            .map(|p| p.leader)
            .filter(|l| *l >= 0)
    }

    /// Builds the next snapshot from a response. With `full` every topic is replaced; otherwise
    /// only the topics in the response are, and the rest are carried over.
    pub(crate) fn merge(&self, resp: &MetadataResponse, full: bool) -> MetadataSnapshot {
        let brokers = resp
            .brokers
            .iter()
            .map(|b| {
                (
                    b.node_id.0,
                    BrokerMeta {
                        node_id: b.node_id.0,
                        host: b.host.as_str().to_string(),
                        port: b.port,
                        rack: b.rack.as_ref().map(|r| r.as_str().to_string()),
                    },
                )
            })
            .collect();
        let mut topics = if full {
            HashMap::new()
        } else {
            self.topics.clone()
        };
        for t in &resp.topics {
            let Some(name) = t.name.as_ref() else {
                continue;
            };
            let name: Arc<str> = Arc::from(name.0.as_str());
            let mut partitions: Vec<PartitionMeta> = t
                .partitions
                .iter()
                .map(|p| PartitionMeta {
                    partition: p.partition_index,
                    leader: p.leader_id.0,
                    leader_epoch: p.leader_epoch,
                    replicas: p.replica_nodes.iter().map(|b| b.0).collect(),
                    isr: p.isr_nodes.iter().map(|b| b.0).collect(),
                    offline: p.offline_replicas.iter().map(|b| b.0).collect(),
                    error: KafkaCode(p.error_code).err(),
                })
                .collect();
            partitions.sort_by_key(|p| p.partition);
            // KIP-320: a response from a broker whose metadata lags must not roll a partition
            // back to an older leader. Keep what we had where its leader epoch is newer, unless
            // the topic is not the same one (recreated under the same name: a new topic id).
            if let Some(prev) = self.topics.get(&name) {
                let same_topic = prev.id == t.topic_id || prev.id.is_nil() || t.topic_id.is_nil();
                if same_topic {
                    for p in &mut partitions {
                        if let Some(old) = prev.partition(p.partition) {
                            if old.leader_epoch >= 0 && p.leader_epoch < old.leader_epoch {
                                tracing::debug!(
                                    topic = %name,
                                    partition = p.partition,
                                    stale_epoch = p.leader_epoch,
                                    known_epoch = old.leader_epoch,
                                    "metadata with an older leader epoch ignored for this partition"
                                );
                                *p = old.clone();
                            }
                        }
                    }
                }
            }
            topics.insert(
                name.clone(),
                Arc::new(TopicMeta {
                    name,
                    id: t.topic_id,
                    is_internal: t.is_internal,
                    error: KafkaCode(t.error_code).err(),
                    partitions,
                }),
            );
        }
        MetadataSnapshot {
            cluster_id: resp.cluster_id.as_ref().map(|c| c.as_str().to_string()),
            controller_id: resp.controller_id.0,
            brokers,
            topics,
            fetched_at: Some(Instant::now()),
        }
    }
}

#[cfg(test)]
mod tests {
    use kafka_protocol::messages::metadata_response::{
        MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
    };
    use kafka_protocol::messages::{BrokerId, MetadataResponse, TopicName};
    use kafka_protocol::protocol::StrBytes;
    use uuid::Uuid;

    use super::MetadataSnapshot;

    /// A Metadata response naming `topic` (with `id`) whose partition 0 is led by `leader`
    /// at `epoch`.
    fn response(topic: &str, id: Uuid, leader: i32, epoch: i32) -> MetadataResponse {
        MetadataResponse::default()
            .with_brokers(
                [1, 2]
                    .into_iter()
                    .map(|n| {
                        MetadataResponseBroker::default()
                            .with_node_id(BrokerId(n))
                            .with_host(StrBytes::from_static_str("127.0.0.1"))
                            .with_port(9000 + n)
                    })
                    .collect(),
            )
            .with_topics(vec![MetadataResponseTopic::default()
                .with_name(Some(TopicName(StrBytes::from_string(topic.to_string()))))
                .with_topic_id(id)
                .with_partitions(vec![MetadataResponsePartition::default()
                    .with_partition_index(0)
                    .with_leader_id(BrokerId(leader))
                    .with_leader_epoch(epoch)
                    .with_replica_nodes(vec![BrokerId(1), BrokerId(2)])
                    .with_isr_nodes(vec![BrokerId(1), BrokerId(2)])])])
    }

    /// A lagging broker's answer (an older leader epoch) must not roll leadership back (KIP-320:
    /// the client keeps the newest epoch it has seen per partition), in a partial and in a full
    /// refresh.
    #[test]
    fn stale_leader_epoch_does_not_roll_leadership_back() {
        let id = Uuid::from_u128(7);
        let current = MetadataSnapshot::default().merge(&response("t", id, 2, 5), false);
        assert_eq!(current.leader("t", 0), Some(2));
        for full in [false, true] {
            let next = current.merge(&response("t", id, 1, 4), full);
            let p = next.topic("t").unwrap().partition(0).unwrap();
            assert_eq!((p.leader, p.leader_epoch), (2, 5), "full refresh: {full}");
        }
        // A newer epoch (or the same one) is taken.
        let next = current.merge(&response("t", id, 1, 6), false);
        assert_eq!(next.leader("t", 0), Some(1));
        let same = current.merge(&response("t", id, 1, 5), false);
        assert_eq!(same.leader("t", 0), Some(1));
    }

    /// A topic deleted and created again under the same name (a new topic id) starts its
    /// epochs anew: its lower epoch is not stale.
    #[test]
    fn recreated_topic_takes_the_new_epochs() {
        let current =
            MetadataSnapshot::default().merge(&response("t", Uuid::from_u128(7), 2, 5), false);
        let next = current.merge(&response("t", Uuid::from_u128(8), 1, 0), false);
        let p = next.topic("t").unwrap().partition(0).unwrap();
        assert_eq!((p.leader, p.leader_epoch), (1, 0));
    }
}
