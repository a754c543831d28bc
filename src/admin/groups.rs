//! Groups: list, describe (classic, consumer and share groups, with members and
//! assignments), delete; committed offsets: list, alter, delete, and the reset tool's
//! operations.
//!
//! Describing: the group coordinator is asked with ConsumerGroupDescribe (KIP-848 consumer
//! groups) first; a group that is not of that type (GROUP_ID_NOT_FOUND) is asked with the
//! classic DescribeGroups, then with ShareGroupDescribe. A group none of them knows gets
//! GROUP_ID_NOT_FOUND.

use std::collections::BTreeMap;

use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_delete_request::{
    OffsetDeleteRequestPartition, OffsetDeleteRequestTopic,
};
use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestGroup;
use kafka_protocol::messages::{
    ApiKey, ConsumerGroupDescribeRequest, DeleteGroupsRequest, DescribeGroupsRequest,
    ListGroupsRequest, OffsetCommitRequest, OffsetDeleteRequest, OffsetFetchRequest,
    ShareGroupDescribeRequest,
};

use super::offsets::OffsetSpec;
use kafka_protocol::protocol::StrBytes;

use super::util::{check, gid, sb, topic_name};
use super::AdminClient;
use crate::cluster::CoordinatorKind;
use crate::error::{Error, KafkaCode, Result};
use crate::protocol::ApiRequest;
use crate::types::TopicPartition;

/// The type of a group.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum GroupType {
    /// A classic group (JoinGroup/SyncGroup protocol).
    Classic,
    /// A KIP-848 consumer group.
    Consumer,
    /// A KIP-932 share group.
    Share,
    /// Another type (e.g. `streams`), as the broker named it.
    Other(String),
}

impl GroupType {
    fn parse(s: &str) -> GroupType {
        match s.to_ascii_lowercase().as_str() {
            "classic" => GroupType::Classic,
            "consumer" => GroupType::Consumer,
            "share" => GroupType::Share,
            _ => GroupType::Other(s.to_string()),
        }
    }
}

/// One group of [`AdminClient::list_groups`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupListing {
    /// Group id.
    pub group_id: String,
    /// Protocol type (`consumer` for consumer groups, empty for some others).
    pub protocol_type: String,
    /// State (`Stable`, `Empty`, ...), as the coordinator names it.
    pub state: String,
    /// Group type (`None` when the broker is too old to say).
    pub group_type: Option<GroupType>,
    /// Node id of the coordinator that listed it.
    pub coordinator: i32,
}

/// A member of a described group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberDescription {
    /// Member id.
    pub member_id: String,
    /// Static membership id (`group.instance.id`).
    pub group_instance_id: Option<String>,
    /// The member's `client.id`.
    pub client_id: String,
    /// The member's host as the coordinator saw it.
    pub client_host: String,
    /// The partitions assigned to it.
    pub assignment: Vec<TopicPartition>,
    /// Consumer groups: the partitions the coordinator is moving it towards.
    pub target_assignment: Option<Vec<TopicPartition>>,
    /// Consumer and share groups: the member epoch.
    pub member_epoch: Option<i32>,
}

/// A described group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupDescription {
    /// Group id.
    pub group_id: String,
    /// Its type.
    pub group_type: GroupType,
    /// State (`Stable`, `Empty`, `Dead`, ...), as the coordinator names it.
    pub state: String,
    /// Classic groups: protocol type (`consumer`...).
    pub protocol_type: String,
    /// The assignor (classic: the chosen protocol; consumer/share: the server assignor).
    pub assignor: String,
    /// Consumer and share groups: the group epoch.
    pub group_epoch: Option<i32>,
    /// Members and their assignments.
    pub members: Vec<MemberDescription>,
    /// Node id of the coordinator.
    pub coordinator: i32,
}

impl GroupDescription {
    /// Whether the group has no active member (`Empty` or `Dead`): only then may its offsets
    /// be reset, as the Java tool requires.
    pub fn is_inactive(&self) -> bool {
        self.members.is_empty()
            && matches!(
                self.state.to_ascii_lowercase().as_str(),
                "empty" | "dead" | ""
            )
    }
}

/// Where [`AdminClient::reset_group_offsets`] moves each partition's committed offset, as in
/// `kafka-consumer-groups --reset-offsets`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResetSpec {
    /// The log start offset.
    Earliest,
    /// The log end offset.
    Latest,
    /// The first offset whose timestamp is at least this (ms since the epoch); the log end
    /// when there is none.
    Timestamp(i64),
    /// The committed offset (or, without one, the log end) moved by this many records.
    ShiftBy(i64),
    /// This offset.
    Offset(i64),
}

/// One partition of [`AdminClient::consumer_group_lag`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionLag {
    /// The partition.
    pub partition: TopicPartition,
    /// The committed offset (`None`: the group committed none).
    pub committed: Option<i64>,
    /// The log end offset (high watermark).
    pub log_end_offset: i64,
    /// The last stable offset (what a read_committed consumer can read up to).
    pub last_stable_offset: i64,
    /// `log_end_offset - committed` (`None` without a committed offset), as
    /// `kafka-consumer-groups --describe` reports it.
    pub lag: Option<i64>,
    /// `last_stable_offset - committed`: the lag of a read_committed consumer.
    pub lag_read_committed: Option<i64>,
    /// The member that owns the partition: member id, client id, host.
    pub owner: Option<(String, String, String)>,
}

/// Lag of a consumer group: per partition (sorted) and the total.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupLag {
    /// The group.
    pub group_id: String,
    /// The group's state.
    pub state: String,
    /// One row per partition with a committed offset or an owner, sorted.
    pub partitions: Vec<PartitionLag>,
}

impl GroupLag {
    /// The sum of the known lags.
    pub fn total_lag(&self) -> i64 {
        self.partitions.iter().filter_map(|p| p.lag).sum()
    }
}

fn tps<'a>(topic: &str, parts: &'a [i32]) -> impl Iterator<Item = TopicPartition> + 'a {
    let t: std::sync::Arc<str> = topic.into();
    parts
        .iter()
        .map(move |p| TopicPartition::new(t.clone(), *p))
}

/// Picks the error code and message of a describe response's first group.
type FirstGroupError<Resp> = fn(&Resp) -> Option<(i16, Option<&StrBytes>)>;

impl AdminClient {
    /// The node id of the group's coordinator (cached by the cluster), -1 if unknown.
    async fn coordinator_id(&self, group: &str) -> i32 {
        self.cluster
            .coordinator(CoordinatorKind::Group, group, self.deadline())
            .await
            .map_or(-1, |(n, _)| n)
    }

    /// Lists the groups of every broker (optionally only those of `types`, e.g.
    /// `["consumer"]`), sorted by id.
    pub async fn list_groups(&self, types: &[&str]) -> Result<Vec<GroupListing>> {
        let req =
            ListGroupsRequest::default().with_types_filter(types.iter().map(|t| sb(t)).collect());
        let answers = self.all_brokers("ListGroups", &req).await?;
        let mut out = Vec::new();
        for (node, resp) in answers {
            check(resp.error_code, None, || {
                format!("ListGroups on broker {node}")
            })?;
            for g in resp.groups {
                let group_type =
                    (!g.group_type.is_empty()).then(|| GroupType::parse(&g.group_type));
                if !types.is_empty()
                    && group_type
                        .as_ref()
                        .is_some_and(|t| !types.iter().any(|x| GroupType::parse(x) == *t))
                {
                    continue;
                }
                out.push(GroupListing {
                    group_id: g.group_id.0.to_string(),
                    protocol_type: g.protocol_type.to_string(),
                    state: g.group_state.to_string(),
                    group_type,
                    coordinator: node,
                });
            }
        }
        out.sort_by(|a, b| a.group_id.cmp(&b.group_id));
        Ok(out)
    }

    /// Describes groups of any type; one result per group (in order). A group that does not
    /// exist gets a GROUP_ID_NOT_FOUND broker error.
    pub async fn describe_groups(
        &self,
        groups: &[&str],
    ) -> Result<Vec<(String, Result<GroupDescription>)>> {
        let mut out = Vec::with_capacity(groups.len());
        for g in groups {
            out.push((g.to_string(), self.describe_group(g).await));
        }
        Ok(out)
    }

    /// Describes one group (see [`describe_groups`](Self::describe_groups)).
    pub async fn describe_group(&self, group: &str) -> Result<GroupDescription> {
        let not_found = |e: &Error| e.code() == Some(KafkaCode::GROUP_ID_NOT_FOUND);
        match self.describe_consumer_group(group).await {
            Err(e) if not_found(&e) => {}
            Err(Error::UnsupportedApi { .. }) => {}
            r => return r,
        }
        let classic = self.describe_classic_group(group).await;
        match &classic {
            Err(e) if not_found(e) => {}
            Ok(d) if d.state.eq_ignore_ascii_case("dead") => {}
            _ => return classic,
        }
        match self.describe_share_group(group).await {
            Err(e) if not_found(&e) => classic,
            Err(Error::UnsupportedApi { .. }) => classic,
            r => r,
        }
    }

    /// Sends a describe request about one group to the group's coordinator (retried as
    /// every coordinator request) and checks its group's error: `first` gives the error code
    /// and message of the response's first group, `None` when it has none.
    async fn describe_one<R>(
        &self,
        group: &str,
        req: R,
        first: FirstGroupError<R::Response>,
    ) -> Result<R::Response>
    where
        R: ApiRequest + Sync,
    {
        let api = format!("{:?}", R::KEY);
        self.cluster
            .retry_policy(format!("{api} `{group}`"), self.deadline())
            .run_on_coordinator(CoordinatorKind::Group, group, |conn| {
                let (req, api) = (&req, &api);
                async move {
                    let resp = conn.send(req).await?;
                    let (code, message) = first(&resp)
                        .ok_or_else(|| Error::Protocol(format!("{api} response without groups")))?;
                    check(code, message, || {
                        format!("describe group `{group}` ({api})")
                    })?;
                    Ok(resp)
                }
            })
            .await
    }

    async fn describe_consumer_group(&self, group: &str) -> Result<GroupDescription> {
        let req = ConsumerGroupDescribeRequest::default().with_group_ids(vec![gid(group)]);
        let resp = self
            .describe_one(group, req, |r| {
                r.groups
                    .first()
                    .map(|g| (g.error_code, g.error_message.as_ref()))
            })
            .await?;
        let node = self.coordinator_id(group).await;
        let g = &resp.groups[0];
        let decode =
            |a: &kafka_protocol::messages::consumer_group_describe_response::Assignment| {
                let mut v: Vec<TopicPartition> = a
                    .topic_partitions
                    .iter()
                    .flat_map(|t| tps(t.topic_name.0.as_str(), &t.partitions).collect::<Vec<_>>())
                    .collect();
                v.sort();
                v
            };
        Ok(GroupDescription {
            group_id: group.to_string(),
            group_type: GroupType::Consumer,
            state: g.group_state.to_string(),
            protocol_type: "consumer".into(),
            assignor: g.assignor_name.to_string(),
            group_epoch: Some(g.group_epoch),
            members: g
                .members
                .iter()
                .map(|m| MemberDescription {
                    member_id: m.member_id.to_string(),
                    group_instance_id: m.instance_id.as_ref().map(|s| s.to_string()),
                    client_id: m.client_id.to_string(),
                    client_host: m.client_host.to_string(),
                    assignment: decode(&m.assignment),
                    target_assignment: Some(decode(&m.target_assignment)),
                    member_epoch: Some(m.member_epoch),
                })
                .collect(),
            coordinator: node,
        })
    }

    async fn describe_share_group(&self, group: &str) -> Result<GroupDescription> {
        let req = ShareGroupDescribeRequest::default().with_group_ids(vec![gid(group)]);
        let resp = self
            .describe_one(group, req, |r| {
                r.groups
                    .first()
                    .map(|g| (g.error_code, g.error_message.as_ref()))
            })
            .await?;
        let node = self.coordinator_id(group).await;
        let g = &resp.groups[0];
        Ok(GroupDescription {
            group_id: group.to_string(),
            group_type: GroupType::Share,
            state: g.group_state.to_string(),
            protocol_type: "share".into(),
            assignor: g.assignor_name.to_string(),
            group_epoch: Some(g.group_epoch),
            members: g
                .members
                .iter()
                .map(|m| {
                    let mut assignment: Vec<TopicPartition> = m
                        .assignment
                        .topic_partitions
                        .iter()
                        .flat_map(|t| {
                            tps(t.topic_name.0.as_str(), &t.partitions).collect::<Vec<_>>()
                        })
                        .collect();
                    assignment.sort();
                    MemberDescription {
                        member_id: m.member_id.to_string(),
                        group_instance_id: None,
                        client_id: m.client_id.to_string(),
                        client_host: m.client_host.to_string(),
                        assignment,
                        target_assignment: None,
                        member_epoch: Some(m.member_epoch),
                    }
                })
                .collect(),
            coordinator: node,
        })
    }

    async fn describe_classic_group(&self, group: &str) -> Result<GroupDescription> {
        let req = DescribeGroupsRequest::default().with_groups(vec![gid(group)]);
        let resp = self
            .describe_one(group, req, |r| {
                r.groups
                    .first()
                    .map(|g| (g.error_code, g.error_message.as_ref()))
            })
            .await?;
        let node = self.coordinator_id(group).await;
        let g = &resp.groups[0];
        let consumer = g.protocol_type.as_str() == "consumer";
        let mut members = Vec::with_capacity(g.members.len());
        for m in &g.members {
            let assignment = if consumer && !m.member_assignment.is_empty() {
                let mut v = crate::consumer::assignor::Assignment::decode(&m.member_assignment)
                    .map_err(|e| {
                        Error::Protocol(format!(
                            "assignment of member `{}` of group `{group}`: {e}",
                            m.member_id.as_str()
                        ))
                    })?
                    .partitions;
                v.sort();
                v
            } else {
                Vec::new()
            };
            members.push(MemberDescription {
                member_id: m.member_id.to_string(),
                group_instance_id: m.group_instance_id.as_ref().map(|s| s.to_string()),
                client_id: m.client_id.to_string(),
                client_host: m.client_host.to_string(),
                assignment,
                target_assignment: None,
                member_epoch: None,
            });
        }
        Ok(GroupDescription {
            group_id: group.to_string(),
            group_type: GroupType::Classic,
            state: g.group_state.to_string(),
            protocol_type: g.protocol_type.to_string(),
            assignor: g.protocol_data.to_string(),
            group_epoch: None,
            members,
            coordinator: node,
        })
    }

    /// Deletes groups (they must have no active member); one result per group (in order).
    pub async fn delete_groups(&self, groups: &[&str]) -> Result<Vec<(String, Result<()>)>> {
        let mut out = Vec::with_capacity(groups.len());
        for g in groups {
            let req = DeleteGroupsRequest::default().with_groups_names(vec![gid(g)]);
            let r = self
                .cluster
                .retry_policy(format!("DeleteGroups `{g}`"), self.deadline())
                .run_on_coordinator(CoordinatorKind::Group, g, |conn| {
                    let req = &req;
                    async move {
                        let resp = conn.send(req).await?;
                        let r = resp.results.first().ok_or_else(|| {
                            Error::Protocol("DeleteGroups response without results".into())
                        })?;
                        check(r.error_code, None, || format!("delete group `{g}`"))
                    }
                })
                .await;
            out.push((g.to_string(), r));
        }
        Ok(out)
    }

    /// The committed offsets of a group (all its partitions), sorted; `None` where the
    /// group has no offset.
    pub async fn list_group_offsets(
        &self,
        group: &str,
    ) -> Result<BTreeMap<TopicPartition, Option<i64>>> {
        self.cluster
            .retry_policy(format!("OffsetFetch `{group}`"), self.deadline())
            .run_on_coordinator(CoordinatorKind::Group, group, |conn| async move {
                let version = conn.version_for(ApiKey::OffsetFetch)?;
                let mut req = OffsetFetchRequest::default();
                if version >= 8 {
                    req = req.with_groups(vec![OffsetFetchRequestGroup::default()
                        .with_group_id(gid(group))
                        .with_topics(None)]);
                } else {
                    req = req.with_group_id(gid(group)).with_topics(None);
                }
                let resp = conn.send_version(&req, version, self.timeout).await?;
                let mut out = BTreeMap::new();
                let mut row = |t: &str, p: i32, off: i64, code: i16| -> Result<()> {
                    check(code, None, || format!("OffsetFetch {t}-{p} of `{group}`"))?;
                    out.insert(TopicPartition::new(t, p), (off >= 0).then_some(off));
                    Ok(())
                };
                if version >= 8 {
                    let g = resp.groups.first().ok_or_else(|| {
                        Error::Protocol("OffsetFetch response without groups".into())
                    })?;
                    check(g.error_code, None, || format!("OffsetFetch of `{group}`"))?;
                    for t in &g.topics {
                        for p in &t.partitions {
                            row(
                                t.name.0.as_str(),
                                p.partition_index,
                                p.committed_offset,
                                p.error_code,
                            )?;
                        }
                    }
                } else {
                    check(resp.error_code, None, || {
                        format!("OffsetFetch of `{group}`")
                    })?;
                    for t in &resp.topics {
                        for p in &t.partitions {
                            row(
                                t.name.0.as_str(),
                                p.partition_index,
                                p.committed_offset,
                                p.error_code,
                            )?;
                        }
                    }
                }
                Ok(out)
            })
            .await
    }

    /// Commits `offsets` for a group that has no active member (as the reset tool does);
    /// one result per partition (in order). The coordinator refuses the commit while the
    /// group has members.
    pub async fn alter_group_offsets(
        &self,
        group: &str,
        offsets: &[(TopicPartition, i64)],
    ) -> Result<Vec<(TopicPartition, Result<()>)>> {
        let mut by_topic: BTreeMap<&str, Vec<OffsetCommitRequestPartition>> = BTreeMap::new();
        for (tp, off) in offsets {
            if *off < 0 {
                return Err(Error::InvalidArgument(format!(
                    "offset {off} for {tp} is negative"
                )));
            }
            by_topic.entry(&tp.topic).or_default().push(
                OffsetCommitRequestPartition::default()
                    .with_partition_index(tp.partition)
                    .with_committed_offset(*off)
                    .with_committed_leader_epoch(-1),
            );
        }
        let req = OffsetCommitRequest::default()
            .with_group_id(gid(group))
            .with_generation_id_or_member_epoch(-1)
            .with_member_id(sb(""))
            .with_retention_time_ms(-1)
            .with_topics(
                by_topic
                    .into_iter()
                    .map(|(t, ps)| {
                        OffsetCommitRequestTopic::default()
                            .with_name(topic_name(t))
                            .with_partitions(ps)
                    })
                    .collect(),
            );
        let resp = self
            .cluster
            .retry_policy(format!("OffsetCommit `{group}`"), self.deadline())
            .run_on_coordinator(CoordinatorKind::Group, group, |conn| {
                let req = &req;
                async move {
                    let resp = conn.send(req).await?;
                    // A coordinator-level failure (moved, loading) shows on every partition.
                    if let Some(e) = resp
                        .topics
                        .iter()
                        .flat_map(|t| &t.partitions)
                        .find_map(|p| {
                            let e = Error::broker(KafkaCode(p.error_code).err()?, "OffsetCommit");
                            (e.is_retriable()).then_some(e)
                        })
                    {
                        return Err(e);
                    }
                    Ok(resp)
                }
            })
            .await?;
        Ok(offsets
            .iter()
            .map(|(tp, _)| {
                let r = resp
                    .topics
                    .iter()
                    .filter(|t| t.name.0.as_str() == &*tp.topic)
                    .flat_map(|t| &t.partitions)
                    .find(|p| p.partition_index == tp.partition)
                    .ok_or_else(|| Error::Protocol(format!("OffsetCommit response lacks {tp}")))
                    .and_then(|p| {
                        check(p.error_code, None, || {
                            format!("commit offset of {tp} for group `{group}`")
                        })
                    });
                (tp.clone(), r)
            })
            .collect())
    }

    /// Deletes the committed offsets of `partitions` for a group (allowed for topics the
    /// group is not subscribed to); one result per partition (in order).
    pub async fn delete_group_offsets(
        &self,
        group: &str,
        partitions: &[TopicPartition],
    ) -> Result<Vec<(TopicPartition, Result<()>)>> {
        let mut by_topic: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
        for tp in partitions {
            by_topic.entry(&tp.topic).or_default().push(tp.partition);
        }
        let req = OffsetDeleteRequest::default()
            .with_group_id(gid(group))
            .with_topics(
                by_topic
                    .into_iter()
                    .map(|(t, ps)| {
                        OffsetDeleteRequestTopic::default()
                            .with_name(topic_name(t))
                            .with_partitions(
                                ps.into_iter()
                                    .map(|p| {
                                        OffsetDeleteRequestPartition::default()
                                            .with_partition_index(p)
                                    })
                                    .collect(),
                            )
                    })
                    .collect(),
            );
        let resp = self
            .cluster
            .retry_policy(format!("OffsetDelete `{group}`"), self.deadline())
            .run_on_coordinator(CoordinatorKind::Group, group, |conn| {
                let req = &req;
                async move {
                    let resp = conn.send(req).await?;
                    check(resp.error_code, None, || {
                        format!("delete offsets of group `{group}`")
                    })?;
                    Ok(resp)
                }
            })
            .await?;
        Ok(partitions
            .iter()
            .map(|tp| {
                let r = resp
                    .topics
                    .iter()
                    .filter(|t| t.name.0.as_str() == &*tp.topic)
                    .flat_map(|t| &t.partitions)
                    .find(|p| p.partition_index == tp.partition)
                    .ok_or_else(|| Error::Protocol(format!("OffsetDelete response lacks {tp}")))
                    .and_then(|p| {
                        check(p.error_code, None, || {
                            format!("delete offset of {tp} for group `{group}`")
                        })
                    });
                (tp.clone(), r)
            })
            .collect())
    }

    /// Computes (and unless `dry_run`, commits) new committed offsets for a group on
    /// `topics`' partitions (all the group's committed partitions when `topics` is empty),
    /// as `kafka-consumer-groups --reset-offsets` does: the target is clamped to the
    /// partition's `[log start, log end]`. Refused with [`Error::State`] while the group has
    /// active members. Returns the new offset per partition, sorted.
    pub async fn reset_group_offsets(
        &self,
        group: &str,
        topics: &[&str],
        spec: ResetSpec,
        dry_run: bool,
    ) -> Result<Vec<(TopicPartition, i64)>> {
        match self.describe_group(group).await {
            Ok(d) if !d.is_inactive() => {
                return Err(Error::State(format!(
                    "group `{group}` is {} with {} member(s): stop its consumers before resetting offsets",
                    d.state,
                    d.members.len()
                )))
            }
            Ok(_) => {}
            Err(e) if e.code() == Some(KafkaCode::GROUP_ID_NOT_FOUND) => {}
            Err(e) => return Err(e),
        }
        let committed = self.list_group_offsets(group).await?;
        let mut parts: Vec<TopicPartition> = Vec::new();
        if topics.is_empty() {
            parts.extend(committed.keys().cloned());
        } else {
            for t in topics {
                let meta = self.describe_topics(&[t]).await?;
                for p in &meta[0].partitions {
                    parts.push(TopicPartition::new(*t, p.partition));
                }
            }
        }
        parts.sort();
        if parts.is_empty() {
            return Ok(Vec::new());
        }
        let earliest = self.offsets_of(&parts, OffsetSpec::Earliest).await?;
        let latest = self.offsets_of(&parts, OffsetSpec::Latest).await?;
        let by_time = match spec {
            ResetSpec::Timestamp(ts) => {
                Some(self.offsets_of(&parts, OffsetSpec::Timestamp(ts)).await?)
            }
            _ => None,
        };
        let mut out = Vec::with_capacity(parts.len());
        for (i, tp) in parts.iter().enumerate() {
            let (lo, hi) = (earliest[i], latest[i]);
            let target = match spec {
                ResetSpec::Earliest => lo,
                ResetSpec::Latest => hi,
                ResetSpec::Offset(o) => o,
                ResetSpec::ShiftBy(n) => committed
                    .get(tp)
                    .copied()
                    .flatten()
                    .unwrap_or(hi)
                    .saturating_add(n),
                ResetSpec::Timestamp(_) => {
                    let o = by_time.as_ref().map_or(-1, |v| v[i]);
                    if o < 0 {
                        hi
                    } else {
                        o
                    }
                }
            };
            out.push((tp.clone(), target.clamp(lo, hi)));
        }
        if !dry_run {
            for (tp, r) in self.alter_group_offsets(group, &out).await? {
                r.map_err(|e| match e {
                    Error::Broker { code, context } => Error::Broker {
                        code,
                        context: format!("{context} (partition {tp})"),
                    },
                    e => e,
                })?;
            }
        }
        Ok(out)
    }

    /// One offset per partition (in order); the first failure fails the call.
    async fn offsets_of(&self, parts: &[TopicPartition], spec: OffsetSpec) -> Result<Vec<i64>> {
        self.list_offsets(parts.iter().map(|tp| (tp.clone(), spec)).collect())
            .await?
            .into_iter()
            .map(|(_, r)| r.map(|o| o.offset))
            .collect()
    }

    /// The lag of a consumer group per partition: committed offset, log end offset (high
    /// watermark), last stable offset, lag and owner, as `kafka-consumer-groups --describe`
    /// shows them. Partitions assigned to a member without a committed offset are listed
    /// with `committed: None`.
    pub async fn consumer_group_lag(&self, group: &str) -> Result<GroupLag> {
        let (state, members) = match self.describe_group(group).await {
            Ok(d) => (d.state, d.members),
            Err(e) if e.code() == Some(KafkaCode::GROUP_ID_NOT_FOUND) => {
                ("Dead".to_string(), Vec::new())
            }
            Err(e) => return Err(e),
        };
        let committed = self.list_group_offsets(group).await?;
        let mut owners: BTreeMap<TopicPartition, (String, String, String)> = BTreeMap::new();
        for m in &members {
            for tp in &m.assignment {
                owners.insert(
                    tp.clone(),
                    (
                        m.member_id.clone(),
                        m.client_id.clone(),
                        m.client_host.clone(),
                    ),
                );
            }
        }
        let mut parts: Vec<TopicPartition> =
            committed.keys().chain(owners.keys()).cloned().collect();
        parts.sort();
        parts.dedup();
        if parts.is_empty() {
            return Ok(GroupLag {
                group_id: group.to_string(),
                state,
                partitions: Vec::new(),
            });
        }
        let hw = self.offsets_of(&parts, OffsetSpec::Latest).await?;
        let lso = self
            .list_offsets_isolated(
                parts
                    .iter()
                    .map(|tp| (tp.clone(), OffsetSpec::Latest))
                    .collect(),
                crate::config::IsolationLevel::ReadCommitted,
            )
            .await?
            .into_iter()
            .map(|(_, r)| r.map(|o| o.offset))
            .collect::<Result<Vec<i64>>>()?;
        let partitions = parts
            .into_iter()
            .enumerate()
            .map(|(i, tp)| {
                let c = committed.get(&tp).copied().flatten();
                PartitionLag {
                    committed: c,
                    log_end_offset: hw[i],
                    last_stable_offset: lso[i],
                    lag: c.map(|c| (hw[i] - c).max(0)),
                    lag_read_committed: c.map(|c| (lso[i] - c).max(0)),
                    owner: owners.get(&tp).cloned(),
                    partition: tp,
                }
            })
            .collect();
        Ok(GroupLag {
            group_id: group.to_string(),
            state,
            partitions,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group(state: &str, members: usize) -> GroupDescription {
        GroupDescription {
            group_id: "g".into(),
            group_type: GroupType::parse("Consumer"),
            state: state.into(),
            protocol_type: String::new(),
            assignor: String::new(),
            group_epoch: None,
            members: (0..members)
                .map(|i| MemberDescription {
                    member_id: format!("m{i}"),
                    group_instance_id: None,
                    client_id: "c".into(),
                    client_host: "/127.0.0.1".into(),
                    assignment: Vec::new(),
                    target_assignment: None,
                    member_epoch: None,
                })
                .collect(),
            coordinator: 1,
        }
    }

    #[test]
    fn only_memberless_groups_are_inactive() {
        assert_eq!(group("Empty", 0).group_type, GroupType::Consumer);
        assert!(group("Empty", 0).is_inactive());
        assert!(group("Dead", 0).is_inactive());
        assert!(!group("Stable", 1).is_inactive());
        assert!(!group("PreparingRebalance", 0).is_inactive());
        assert_eq!(
            GroupType::parse("streams"),
            GroupType::Other("streams".into())
        );
    }

    #[test]
    fn total_lag_skips_unknown() {
        let row = |lag: Option<i64>| PartitionLag {
            partition: TopicPartition::new("t", 0),
            committed: lag.map(|_| 0),
            log_end_offset: 5,
            last_stable_offset: 5,
            lag,
            lag_read_committed: lag,
            owner: None,
        };
        let l = GroupLag {
            group_id: "g".into(),
            state: "Empty".into(),
            partitions: vec![row(Some(5)), row(None), row(Some(2))],
        };
        assert_eq!(l.total_lag(), 7);
    }
}
