//! Partition-level operations sent to each partition's leader: ListOffsets, DeleteRecords,
//! DescribeProducers; and ElectLeaders, DescribeLogDirs.

use std::collections::{BTreeMap, HashMap};

use kafka_protocol::messages::delete_records_request::{
    DeleteRecordsPartition, DeleteRecordsTopic,
};
use kafka_protocol::messages::describe_log_dirs_request::DescribableLogDirTopic;
use kafka_protocol::messages::describe_producers_request::TopicRequest;
use kafka_protocol::messages::elect_leaders_request::TopicPartitions;
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::{
    BrokerId, DeleteRecordsRequest, DescribeLogDirsRequest, DescribeProducersRequest,
    ElectLeadersRequest, ListOffsetsRequest,
};

use super::util::{check, topic_name, LeaderAnswers};
use super::AdminClient;
use crate::config::IsolationLevel;
use crate::error::{Error, Result};
use crate::types::TopicPartition;

/// Which offset [`AdminClient::list_offsets`] asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OffsetSpec {
    /// The log start offset.
    Earliest,
    /// The log end offset (high watermark; the last stable offset under read_committed).
    Latest,
    /// The offset of the record with the largest timestamp (KIP-734).
    MaxTimestamp,
    /// The first offset whose timestamp is at least this (ms since the epoch); -1 when none.
    Timestamp(i64),
}

impl OffsetSpec {
    fn wire(self) -> i64 {
        match self {
            OffsetSpec::Earliest => -2,
            OffsetSpec::Latest => -1,
            OffsetSpec::MaxTimestamp => -3,
            OffsetSpec::Timestamp(t) => t,
        }
    }
}

/// One answer of [`AdminClient::list_offsets`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListedOffsetInfo {
    /// The offset (-1 when no record matches a timestamp query).
    pub offset: i64,
    /// The record's timestamp (timestamp queries), -1 otherwise.
    pub timestamp: i64,
    /// The leader epoch of that offset, if known.
    pub leader_epoch: Option<i32>,
}

/// A producer with state on a partition (DescribeProducers).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProducerState {
    /// Producer id.
    pub producer_id: i64,
    /// Producer epoch.
    pub producer_epoch: i32,
    /// Last sequence number written.
    pub last_sequence: i32,
    /// Timestamp of its last write (ms).
    pub last_timestamp: i64,
    /// Coordinator epoch of its last transaction marker (-1: none).
    pub coordinator_epoch: i32,
    /// First offset of its open transaction on this partition, if one is open.
    pub current_txn_start_offset: Option<i64>,
}

/// The kind of leader election.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ElectionType {
    /// Move leadership back to the preferred (first) replica.
    Preferred,
    /// Elect an out-of-sync replica when no in-sync one is available (may lose data).
    Unclean,
}

/// A log directory of a broker (DescribeLogDirs).
#[derive(Debug, Clone)]
pub struct LogDirDescription {
    /// Absolute path of the directory.
    pub path: String,
    /// The directory's error (e.g. KAFKA_STORAGE_ERROR for an offline dir).
    pub error: Option<Error>,
    /// Partition replicas stored there, with their size in bytes and lag behind the leader.
    pub replicas: Vec<(TopicPartition, i64, i64)>,
    /// Total bytes of the volume (-1: unknown).
    pub total_bytes: i64,
    /// Usable bytes of the volume (-1: unknown).
    pub usable_bytes: i64,
}

impl AdminClient {
    /// Offsets per partition (read_uncommitted); one result per partition (in order).
    pub async fn list_offsets(
        &self,
        queries: Vec<(TopicPartition, OffsetSpec)>,
    ) -> Result<Vec<(TopicPartition, Result<ListedOffsetInfo>)>> {
        self.list_offsets_isolated(queries, IsolationLevel::ReadUncommitted)
            .await
    }

    /// Like [`list_offsets`](Self::list_offsets) with an isolation level: under
    /// `ReadCommitted`, [`OffsetSpec::Latest`] is the last stable offset.
    pub async fn list_offsets_isolated(
        &self,
        queries: Vec<(TopicPartition, OffsetSpec)>,
        isolation: IsolationLevel,
    ) -> Result<Vec<(TopicPartition, Result<ListedOffsetInfo>)>> {
        let timeout_ms = self.timeout_ms();
        self.per_leader("ListOffsets", queries, |conn, qs| async move {
            let mut topics: BTreeMap<&str, Vec<ListOffsetsPartition>> = BTreeMap::new();
            for (tp, spec) in &qs {
                topics.entry(&tp.topic).or_default().push(
                    ListOffsetsPartition::default()
                        .with_partition_index(tp.partition)
                        .with_current_leader_epoch(-1)
                        .with_timestamp(spec.wire()),
                );
            }
            let req = ListOffsetsRequest::default()
                .with_replica_id(BrokerId(-1))
                .with_isolation_level(isolation.as_i8())
                .with_timeout_ms(timeout_ms)
                .with_topics(
                    topics
                        .into_iter()
                        .map(|(t, ps)| {
                            ListOffsetsTopic::default()
                                .with_name(topic_name(t))
                                .with_partitions(ps)
                        })
                        .collect(),
                );
            let resp = conn.send(&req).await?;
            let mut out: LeaderAnswers<ListedOffsetInfo> = HashMap::new();
            for t in &resp.topics {
                for p in &t.partitions {
                    let tp = TopicPartition::new(t.name.0.as_str(), p.partition_index);
                    let r = check(p.error_code, None, || format!("ListOffsets {tp}")).map(|_| {
                        ListedOffsetInfo {
                            offset: p.offset,
                            timestamp: p.timestamp,
                            leader_epoch: (p.leader_epoch >= 0).then_some(p.leader_epoch),
                        }
                    });
                    out.insert(tp, r);
                }
            }
            Ok(out)
        })
        .await
    }

    /// Deletes the records before the given offset of each partition (-1: the high
    /// watermark); the answer per partition (in order) is the new log start offset.
    pub async fn delete_records(
        &self,
        before: Vec<(TopicPartition, i64)>,
    ) -> Result<Vec<(TopicPartition, Result<i64>)>> {
        let timeout_ms = self.timeout_ms();
        self.per_leader("DeleteRecords", before, |conn, qs| async move {
            let mut topics: BTreeMap<&str, Vec<DeleteRecordsPartition>> = BTreeMap::new();
            for (tp, off) in &qs {
                topics.entry(&tp.topic).or_default().push(
                    DeleteRecordsPartition::default()
                        .with_partition_index(tp.partition)
                        .with_offset(*off),
                );
            }
            let req = DeleteRecordsRequest::default()
                .with_timeout_ms(timeout_ms)
                .with_topics(
                    topics
                        .into_iter()
                        .map(|(t, ps)| {
                            DeleteRecordsTopic::default()
                                .with_name(topic_name(t))
                                .with_partitions(ps)
                        })
                        .collect(),
                );
            let resp = conn.send(&req).await?;
            let mut out: LeaderAnswers<i64> = HashMap::new();
            for t in &resp.topics {
                for p in &t.partitions {
                    let tp = TopicPartition::new(t.name.0.as_str(), p.partition_index);
                    let r = check(p.error_code, None, || format!("DeleteRecords {tp}"))
                        .map(|_| p.low_watermark);
                    out.insert(tp, r);
                }
            }
            Ok(out)
        })
        .await
    }

    /// The producers with state on each partition (idempotent and transactional ones, with
    /// their open transaction's first offset); one result per partition (in order).
    pub async fn describe_producers(
        &self,
        partitions: &[TopicPartition],
    ) -> Result<Vec<(TopicPartition, Result<Vec<ProducerState>>)>> {
        let items = partitions.iter().map(|tp| (tp.clone(), ())).collect();
        self.per_leader("DescribeProducers", items, |conn, qs| async move {
            let mut topics: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
            for (tp, ()) in &qs {
                topics.entry(&tp.topic).or_default().push(tp.partition);
            }
            let req = DescribeProducersRequest::default().with_topics(
                topics
                    .into_iter()
                    .map(|(t, ps)| {
                        TopicRequest::default()
                            .with_name(topic_name(t))
                            .with_partition_indexes(ps)
                    })
                    .collect(),
            );
            let resp = conn.send(&req).await?;
            let mut out: LeaderAnswers<Vec<ProducerState>> = HashMap::new();
            for t in &resp.topics {
                for p in &t.partitions {
                    let tp = TopicPartition::new(t.name.0.as_str(), p.partition_index);
                    let r = check(p.error_code, p.error_message.as_ref(), || {
                        format!("DescribeProducers {tp}")
                    })
                    .map(|_| {
                        p.active_producers
                            .iter()
                            .map(|s| ProducerState {
                                producer_id: s.producer_id.0,
                                producer_epoch: s.producer_epoch,
                                last_sequence: s.last_sequence,
                                last_timestamp: s.last_timestamp,
                                coordinator_epoch: s.coordinator_epoch,
                                current_txn_start_offset: (s.current_txn_start_offset >= 0)
                                    .then_some(s.current_txn_start_offset),
                            })
                            .collect()
                    });
                    out.insert(tp, r);
                }
            }
            Ok(out)
        })
        .await
    }

    /// Elects leaders for `partitions` (`None`: every partition, preferred elections only);
    /// one result per partition the controller answered for. ELECTION_NOT_NEEDED (the
    /// preferred replica already leads) counts as success.
    pub async fn elect_leaders(
        &self,
        kind: ElectionType,
        partitions: Option<&[TopicPartition]>,
    ) -> Result<Vec<(TopicPartition, Result<()>)>> {
        let parts = partitions.map(|ps| {
            let mut by_topic: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
            for tp in ps {
                by_topic.entry(&tp.topic).or_default().push(tp.partition);
            }
            by_topic
                .into_iter()
                .map(|(t, ps)| {
                    TopicPartitions::default()
                        .with_topic(topic_name(t))
                        .with_partitions(ps)
                })
                .collect()
        });
        let req = ElectLeadersRequest::default()
            .with_election_type(match kind {
                ElectionType::Preferred => 0,
                ElectionType::Unclean => 1,
            })
            .with_topic_partitions(parts)
            .with_timeout_ms(self.timeout_ms());
        let resp = self.any_broker("ElectLeaders", &req).await?;
        check(resp.error_code, None, || "ElectLeaders".into())?;
        let mut out = Vec::new();
        for t in &resp.replica_election_results {
            for p in &t.partition_result {
                let tp = TopicPartition::new(t.topic.0.as_str(), p.partition_id);
                let r = match check(p.error_code, p.error_message.as_ref(), || {
                    format!("elect leader of {tp}")
                }) {
                    Err(e) if e.code() == Some(crate::error::KafkaCode::ELECTION_NOT_NEEDED) => {
                        Ok(())
                    }
                    r => r,
                };
                out.push((tp, r));
            }
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }

    /// The log directories of each of `brokers`, with the replicas they hold; one result
    /// per broker (in order).
    pub async fn describe_log_dirs(
        &self,
        brokers: &[i32],
    ) -> Result<Vec<(i32, Result<Vec<LogDirDescription>>)>> {
        let req =
            DescribeLogDirsRequest::default().with_topics(None::<Vec<DescribableLogDirTopic>>);
        let mut out = Vec::with_capacity(brokers.len());
        for &id in brokers {
            let r = self
                .cluster
                .retry_policy(format!("DescribeLogDirs (broker {id})"), self.deadline())
                .run(|| async { self.cluster.broker(id).await?.send(&req).await })
                .await
                .and_then(|resp| {
                    check(resp.error_code, None, || {
                        format!("DescribeLogDirs on broker {id}")
                    })?;
                    Ok(resp
                        .results
                        .iter()
                        .map(|d| LogDirDescription {
                            path: d.log_dir.to_string(),
                            error: check(d.error_code, None, || {
                                format!("log dir {} of broker {id}", d.log_dir.as_str())
                            })
                            .err(),
                            replicas: d
                                .topics
                                .iter()
                                .flat_map(|t| {
                                    t.partitions.iter().map(move |p| {
                                        (
                                            TopicPartition::new(
                                                t.name.0.as_str(),
                                                p.partition_index,
                                            ),
                                            p.partition_size,
                                            p.offset_lag,
                                        )
                                    })
                                })
                                .collect(),
                            total_bytes: d.total_bytes,
                            usable_bytes: d.usable_bytes,
                        })
                        .collect())
                });
            out.push((id, r));
        }
        Ok(out)
    }
}
