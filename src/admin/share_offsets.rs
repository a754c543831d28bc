//! Share-group start offsets (KIP-932): DescribeShareGroupOffsets, AlterShareGroupOffsets
//! and DeleteShareGroupOffsets at the group coordinator, what `kafka-share-groups
//! --describe / --reset-offsets / --delete-offsets` do. A share group's offset per partition
//! is its *start offset*: records below it are all acknowledged or archived.

use std::collections::BTreeMap;

use kafka_protocol::messages::alter_share_group_offsets_request::{
    AlterShareGroupOffsetsRequestPartition, AlterShareGroupOffsetsRequestTopic,
};
use kafka_protocol::messages::delete_share_group_offsets_request::DeleteShareGroupOffsetsRequestTopic;
use kafka_protocol::messages::describe_share_group_offsets_request::DescribeShareGroupOffsetsRequestGroup;
use kafka_protocol::messages::{
    AlterShareGroupOffsetsRequest, DeleteShareGroupOffsetsRequest, DescribeShareGroupOffsetsRequest,
};

use super::util::{check, gid, in_request_order, topic_name};
use super::AdminClient;
use crate::cluster::CoordinatorKind;
use crate::error::{Error, Result};
use crate::types::TopicPartition;

impl AdminClient {
    /// The start offsets of share group `group` on every partition it has state for,
    /// sorted (`None`: the partition has no start offset yet).
    pub async fn list_share_group_offsets(
        &self,
        group: &str,
    ) -> Result<BTreeMap<TopicPartition, Option<i64>>> {
        let req = DescribeShareGroupOffsetsRequest::default().with_groups(vec![
            DescribeShareGroupOffsetsRequestGroup::default()
                .with_group_id(gid(group))
                .with_topics(None),
        ]);
        self.cluster
            .retry_policy(
                format!("DescribeShareGroupOffsets `{group}`"),
                self.deadline(),
            )
            .run_on_coordinator(CoordinatorKind::Group, group, |conn| {
                let req = &req;
                async move {
                    let resp = conn.send(req).await?;
                    let g = resp.groups.first().ok_or_else(|| {
                        Error::Protocol("DescribeShareGroupOffsets response without groups".into())
                    })?;
                    check(g.error_code, g.error_message.as_ref(), || {
                        format!("the share offsets of `{group}`")
                    })?;
                    let mut out = BTreeMap::new();
                    for t in &g.topics {
                        for p in &t.partitions {
                            let tp =
                                TopicPartition::new(t.topic_name.0.as_str(), p.partition_index);
                            check(p.error_code, p.error_message.as_ref(), || {
                                format!("the share offset of {tp} in `{group}`")
                            })?;
                            out.insert(tp, (p.start_offset >= 0).then_some(p.start_offset));
                        }
                    }
                    Ok(out)
                }
            })
            .await
    }

    /// Sets start offsets of share group `group`, which must have no members (as the reset
    /// tool requires: NON_EMPTY_GROUP otherwise); one result per partition, in order.
    pub async fn alter_share_group_offsets(
        &self,
        group: &str,
        offsets: &[(TopicPartition, i64)],
    ) -> Result<Vec<(TopicPartition, Result<()>)>> {
        let mut by_topic: BTreeMap<&str, Vec<AlterShareGroupOffsetsRequestPartition>> =
            BTreeMap::new();
        for (tp, off) in offsets {
            if *off < 0 {
                return Err(Error::InvalidArgument(format!(
                    "share start offset {off} for {tp} is negative"
                )));
            }
            by_topic.entry(&tp.topic).or_default().push(
                AlterShareGroupOffsetsRequestPartition::default()
                    .with_partition_index(tp.partition)
                    .with_start_offset(*off),
            );
        }
        let req = AlterShareGroupOffsetsRequest::default()
            .with_group_id(gid(group))
            .with_topics(
                by_topic
                    .into_iter()
                    .map(|(t, ps)| {
                        AlterShareGroupOffsetsRequestTopic::default()
                            .with_topic_name(topic_name(t))
                            .with_partitions(ps)
                    })
                    .collect(),
            );
        self.cluster
            .retry_policy(format!("AlterShareGroupOffsets `{group}`"), self.deadline())
            .run_on_coordinator(CoordinatorKind::Group, group, |conn| {
                let req = &req;
                async move {
                    let resp = conn.send(req).await?;
                    check(resp.error_code, resp.error_message.as_ref(), || {
                        format!("alter the share offsets of `{group}`")
                    })?;
                    let mut answers: BTreeMap<TopicPartition, Result<()>> = BTreeMap::new();
                    for t in &resp.responses {
                        for p in &t.partitions {
                            let tp =
                                TopicPartition::new(t.topic_name.0.as_str(), p.partition_index);
                            let r = check(p.error_code, p.error_message.as_ref(), || {
                                format!("alter the share offset of {tp} in `{group}`")
                            });
                            answers.insert(tp, r);
                        }
                    }
                    in_request_order(
                        "AlterShareGroupOffsets",
                        offsets.iter().map(|(tp, _)| tp.clone()),
                        &answers,
                    )
                }
            })
            .await
    }

    /// Deletes the start offsets of share group `group` on every partition of `topics` (the
    /// group must have no members, or none subscribed to them); one result per topic.
    pub async fn delete_share_group_offsets(
        &self,
        group: &str,
        topics: &[&str],
    ) -> Result<Vec<(String, Result<()>)>> {
        let req = DeleteShareGroupOffsetsRequest::default()
            .with_group_id(gid(group))
            .with_topics(
                topics
                    .iter()
                    .map(|t| {
                        DeleteShareGroupOffsetsRequestTopic::default()
                            .with_topic_name(topic_name(t))
                    })
                    .collect(),
            );
        self.cluster
            .retry_policy(
                format!("DeleteShareGroupOffsets `{group}`"),
                self.deadline(),
            )
            .run_on_coordinator(CoordinatorKind::Group, group, |conn| {
                let req = &req;
                async move {
                    let resp = conn.send(req).await?;
                    check(resp.error_code, resp.error_message.as_ref(), || {
                        format!("delete the share offsets of `{group}`")
                    })?;
                    let answers: BTreeMap<&str, Result<()>> = resp
                        .responses
                        .iter()
                        .map(|t| {
                            let r = check(t.error_code, t.error_message.as_ref(), || {
                                format!(
                                    "delete the share offsets of topic `{}` in `{group}`",
                                    t.topic_name.0.as_str()
                                )
                            });
                            (t.topic_name.0.as_str(), r)
                        })
                        .collect();
                    in_request_order::<_, _, str, _>(
                        "DeleteShareGroupOffsets",
                        topics.iter().map(|t| t.to_string()),
                        &answers,
                    )
                }
            })
            .await
    }
}
