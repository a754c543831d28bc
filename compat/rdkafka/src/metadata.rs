//! Cluster metadata with rdkafka's accessors, built from kafka-sdk's [`kafka_sdk::Metadata`].

use std::fmt;

use crate::types::RDKafkaRespErr;

/// A broker.
#[derive(Clone)]
pub struct MetadataBroker {
    id: i32,
    host: String,
    port: i32,
}

impl MetadataBroker {
    /// The node id.
    pub fn id(&self) -> i32 {
        self.id
    }

    /// The host name.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The port.
    pub fn port(&self) -> i32 {
        self.port
    }
}

impl fmt::Debug for MetadataBroker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MetadataBroker")
            .field("id", &self.id)
            .field("host", &self.host)
            .field("port", &self.port)
            .finish()
    }
}

/// A partition.
#[derive(Clone)]
pub struct MetadataPartition {
    id: i32,
    leader: i32,
    replicas: Vec<i32>,
    isr: Vec<i32>,
}

impl MetadataPartition {
    /// The partition id.
    pub fn id(&self) -> i32 {
        self.id
    }

    /// The leader's node id (`-1` without a leader).
    pub fn leader(&self) -> i32 {
        self.leader
    }

    /// The partition's error (kafka-sdk retries errors away: always `None`).
    pub fn error(&self) -> Option<RDKafkaRespErr> {
        None
    }

    /// The replicas' node ids.
    pub fn replicas(&self) -> &[i32] {
        &self.replicas
    }

    /// The in-sync replicas' node ids.
    pub fn isr(&self) -> &[i32] {
        &self.isr
    }
}

impl fmt::Debug for MetadataPartition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MetadataPartition")
            .field("id", &self.id)
            .field("leader", &self.leader)
            .field("replicas", &self.replicas)
            .field("isr", &self.isr)
            .finish()
    }
}

/// A topic.
#[derive(Clone)]
pub struct MetadataTopic {
    name: String,
    partitions: Vec<MetadataPartition>,
}

impl MetadataTopic {
    /// The name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The partitions, by id.
    pub fn partitions(&self) -> &[MetadataPartition] {
        &self.partitions
    }

    /// The topic's error (kafka-sdk reports an unknown topic as an error of the call: always
    /// `None`).
    pub fn error(&self) -> Option<RDKafkaRespErr> {
        None
    }
}

impl fmt::Debug for MetadataTopic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MetadataTopic")
            .field("name", &self.name)
            .field("partitions", &self.partitions)
            .finish()
    }
}

/// A metadata snapshot.
#[derive(Clone)]
pub struct Metadata {
    orig_broker_id: i32,
    orig_broker_name: String,
    brokers: Vec<MetadataBroker>,
    topics: Vec<MetadataTopic>,
}

impl Metadata {
    pub(crate) fn from_sdk(m: kafka_sdk::Metadata) -> Metadata {
        let brokers: Vec<MetadataBroker> = m
            .brokers
            .iter()
            .map(|b| MetadataBroker {
                id: b.node_id,
                host: b.host.clone(),
                port: b.port,
            })
            .collect();
        let (orig_broker_id, orig_broker_name) = brokers.first().map_or((-1, String::new()), |b| {
            (b.id, format!("{}:{}/{}", b.host, b.port, b.id))
        });
        let topics = m
            .topics
            .into_iter()
            .map(|t| {
                let mut partitions: Vec<MetadataPartition> = t
                    .partitions
                    .into_iter()
                    .map(|p| MetadataPartition {
                        id: p.partition,
                        leader: p.leader.unwrap_or(-1),
                        replicas: p.replicas,
                        isr: p.isr,
                    })
                    .collect();
                partitions.sort_by_key(|p| p.id);
                MetadataTopic {
                    name: t.name,
                    partitions,
                }
            })
            .collect();
        Metadata {
            orig_broker_id,
            orig_broker_name,
            brokers,
            topics,
        }
    }

    /// The id of the broker that answered (here: the first broker listed).
    pub fn orig_broker_id(&self) -> i32 {
        self.orig_broker_id
    }

    /// The name of the broker that answered (`host:port/id`).
    pub fn orig_broker_name(&self) -> &str {
        &self.orig_broker_name
    }

    /// The brokers.
    pub fn brokers(&self) -> &[MetadataBroker] {
        &self.brokers
    }

    /// The topics.
    pub fn topics(&self) -> &[MetadataTopic] {
        &self.topics
    }
}

impl fmt::Debug for Metadata {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Metadata")
            .field("orig_broker_name", &self.orig_broker_name)
            .field("brokers", &self.brokers)
            .field("topics", &self.topics)
            .finish()
    }
}
