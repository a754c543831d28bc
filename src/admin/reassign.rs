//! Partition reassignments (KIP-455): AlterPartitionReassignments and
//! ListPartitionReassignments, what `kafka-reassign-partitions --execute / --verify /
//! --cancel` do. The controller moves the replicas in the background; the answer only says
//! whether the reassignment was accepted.

use std::collections::BTreeMap;

use kafka_protocol::messages::alter_partition_reassignments_request::{
    ReassignablePartition, ReassignableTopic,
};
use kafka_protocol::messages::list_partition_reassignments_request::ListPartitionReassignmentsTopics;
use kafka_protocol::messages::{
    AlterPartitionReassignmentsRequest, BrokerId, ListPartitionReassignmentsRequest,
};

use super::util::{check, in_request_order, topic_name};
use super::AdminClient;
use crate::error::{Error, Result};
use crate::types::TopicPartition;

/// A reassignment in progress, as the controller lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionReassignment {
    /// The replicas now: the old and the new set while the move runs.
    pub replicas: Vec<i32>,
    /// Replicas being added.
    pub adding: Vec<i32>,
    /// Replicas being removed.
    pub removing: Vec<i32>,
}

impl AdminClient {
    /// Moves the replicas of partitions: for each, the new replica list (its first broker
    /// is the preferred leader), or `None` to cancel a reassignment in progress. One result
    /// per partition, in order: accepted, or why not (e.g. a broker id that does not
    /// exist). The move itself runs after the answer; follow it with
    /// [`list_partition_reassignments`](Self::list_partition_reassignments).
    pub async fn alter_partition_reassignments(
        &self,
        moves: &[(TopicPartition, Option<Vec<i32>>)],
    ) -> Result<Vec<(TopicPartition, Result<()>)>> {
        let mut by_topic: BTreeMap<&str, Vec<ReassignablePartition>> = BTreeMap::new();
        for (tp, replicas) in moves {
            if replicas.as_ref().is_some_and(Vec::is_empty) {
                return Err(Error::InvalidArgument(format!(
                    "the new replica list of {tp} is empty (None cancels a reassignment)"
                )));
            }
            by_topic.entry(&tp.topic).or_default().push(
                ReassignablePartition::default()
                    .with_partition_index(tp.partition)
                    .with_replicas(
                        replicas
                            .as_ref()
                            .map(|r| r.iter().map(|b| BrokerId(*b)).collect()),
                    ),
            );
        }
        let req = AlterPartitionReassignmentsRequest::default()
            .with_timeout_ms(self.timeout_ms())
            .with_allow_replication_factor_change(true)
            .with_topics(
                by_topic
                    .into_iter()
                    .map(|(t, ps)| {
                        ReassignableTopic::default()
                            .with_name(topic_name(t))
                            .with_partitions(ps)
                    })
                    .collect(),
            );
        let resp = self.any_broker("AlterPartitionReassignments", &req).await?;
        check(resp.error_code, resp.error_message.as_ref(), || {
            "AlterPartitionReassignments".into()
        })?;
        let mut answers: BTreeMap<TopicPartition, Result<()>> = BTreeMap::new();
        for t in &resp.responses {
            for p in &t.partitions {
                let tp = TopicPartition::new(t.name.0.as_str(), p.partition_index);
                let r = check(p.error_code, p.error_message.as_ref(), || {
                    format!("reassign {tp}")
                });
                answers.insert(tp, r);
            }
        }
        in_request_order(
            "AlterPartitionReassignments",
            moves.iter().map(|(tp, _)| tp.clone()),
            &answers,
        )
    }

    /// The reassignments in progress, of `partitions` (every partition when empty).
    pub async fn list_partition_reassignments(
        &self,
        partitions: &[TopicPartition],
    ) -> Result<BTreeMap<TopicPartition, PartitionReassignment>> {
        let mut by_topic: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
        for tp in partitions {
            by_topic.entry(&tp.topic).or_default().push(tp.partition);
        }
        let req = ListPartitionReassignmentsRequest::default()
            .with_timeout_ms(self.timeout_ms())
            .with_topics((!partitions.is_empty()).then(|| {
                by_topic
                    .into_iter()
                    .map(|(t, ps)| {
                        ListPartitionReassignmentsTopics::default()
                            .with_name(topic_name(t))
                            .with_partition_indexes(ps)
                    })
                    .collect()
            }));
        let resp = self.any_broker("ListPartitionReassignments", &req).await?;
        check(resp.error_code, resp.error_message.as_ref(), || {
            "ListPartitionReassignments".into()
        })?;
        let ids = |v: &[BrokerId]| v.iter().map(|b| b.0).collect::<Vec<i32>>();
        let mut out = BTreeMap::new();
        for t in &resp.topics {
            for p in &t.partitions {
                out.insert(
                    TopicPartition::new(t.name.0.as_str(), p.partition_index),
                    PartitionReassignment {
                        replicas: ids(&p.replicas),
                        adding: ids(&p.adding_replicas),
                        removing: ids(&p.removing_replicas),
                    },
                );
            }
        }
        Ok(out)
    }
}
