//! [`ConsumerHandle`]: every consumer operation except receiving (subscribe/assign, seek,
//! pause, positions, stored offsets, commits, committed offsets, watermarks,
//! offsets_for_times, group metadata). It sits below the membership task (`group.rs`) and the
//! rebalance listener, which both receive it, and below [`Consumer`](super::Consumer), which
//! dereferences to it; it depends only on the shared state and the offset helpers.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tracing::Instrument;

use super::message::{CommitMode, CommitResult, Message, Offset, Watermarks};
use super::offsets;
use super::state::{Shared, SubscriptionSpec};
use crate::backoff::Deadline;
use crate::error::{ConfigError, Error, Result};
use crate::types::{validate_topic_name, ConsumerGroupMetadata, TopicPartition};

/// The consumer's own view of one assigned partition's lag, from its position and the
/// watermarks of the last fetch response (no request is sent).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerLag {
    /// The partition.
    pub partition: TopicPartition,
    /// The position (next offset to receive); `None` while it is looked up.
    pub position: Option<i64>,
    /// The high watermark of the last fetch response (`None` before the first one).
    pub high_watermark: Option<i64>,
    /// The last stable offset of the last fetch response (`None` before the first one).
    pub last_stable_offset: Option<i64>,
    /// Records left to receive: up to the last stable offset under `read_committed`, up to
    /// the high watermark otherwise; `None` while position or watermarks are unknown.
    pub lag: Option<i64>,
}

/// Every consumer operation except receiving. Cheap to clone; stays valid (failing with
/// [`Error::Closed`]) after the consumer is closed.
///
/// ```no_run
/// # async fn f(consumer: kafka_sdk::Consumer) -> kafka_sdk::Result<()> {
/// use std::time::Duration;
/// use kafka_sdk::{CommitMode, Offset, TopicPartition};
///
/// let handle = consumer.handle(); // e.g. for a task that commits or seeks
/// let tp = TopicPartition::new("orders", 0);
/// handle.assign(vec![(tp.clone(), Offset::Beginning)])?;
/// let message = consumer.recv().await?;
/// handle.store_offset_from_message(&message)?; // processed
/// handle.commit_stored(CommitMode::Sync).await?;
/// let end = handle.fetch_watermarks(&tp, Duration::from_secs(5)).await?.high;
/// println!("lag {}", end - message.offset() - 1);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct ConsumerHandle {
    pub(crate) shared: Arc<Shared>,
}

impl std::fmt::Debug for ConsumerHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConsumerHandle")
            .field("group_id", &self.shared.cfg.group_id)
            .finish()
    }
}

impl ConsumerHandle {
    /// A statistics snapshot now (whatever `statistics.interval.ms`); see [`crate::stats`].
    /// Resets the broker rtt windows. After close the snapshot has only the header.
    pub fn statistics(&self) -> crate::stats::Statistics {
        self.shared.statistics().unwrap_or_else(|| {
            let created = std::time::Instant::now() - self.shared.epoch.elapsed();
            crate::stats::header(
                &self.shared.cfg.common.client_id,
                "consumer",
                created,
                self.shared.instance,
            )
        })
    }

    /// A subscription to this consumer's client events from now on: a broker down or back,
    /// every broker down (see [`crate::events`]).
    pub fn subscribe_events(&self) -> crate::events::ClientEvents {
        self.shared.cluster.subscribe_events()
    }

    /// The snapshots taken every `statistics.interval.ms` (the newest; `None` before the
    /// first). `changed()` fails once the consumer is closed or dropped.
    pub fn subscribe_statistics(&self) -> crate::stats::StatisticsReceiver {
        match self.shared.stats_rx.get() {
            Some(rx) => rx.clone(),
            None => tokio::sync::watch::channel(None).1,
        }
    }

    fn check_open(&self) -> Result<()> {
        if self.shared.is_shutdown() {
            return Err(Error::Closed);
        }
        Ok(())
    }

    /// Subscribes to `topics` as a member of `group.id` (replacing a previous subscription).
    /// Assignment happens in the background; messages arrive once partitions are assigned.
    pub fn subscribe(&self, topics: &[&str]) -> Result<()> {
        self.check_open()?;
        if self.shared.cfg.group_id.is_none() {
            return Err(ConfigError::Missing {
                key: "group.id".into(),
            }
            .into());
        }
        if topics.is_empty() {
            return Err(Error::InvalidArgument(
                "subscribe needs at least one topic (use unsubscribe to stop)".into(),
            ));
        }
        for t in topics {
            validate_topic_name(t)?;
        }
        self.set_subscription(SubscriptionSpec::Topics(
            topics.iter().map(|t| t.to_string()).collect(),
        ))
    }

    /// Subscribes to every topic whose whole name matches the regular expression `pattern`
    /// (`regex` crate syntax). New matching topics are picked up at the next metadata check
    /// (every `metadata.max.age.ms`).
    pub fn subscribe_regex(&self, pattern: &str) -> Result<()> {
        self.check_open()?;
        if self.shared.cfg.group_id.is_none() {
            return Err(ConfigError::Missing {
                key: "group.id".into(),
            }
            .into());
        }
        let re = regex::Regex::new(&format!("^(?:{pattern})$")).map_err(|e| {
            Error::InvalidArgument(format!("invalid topic pattern `{pattern}`: {e}"))
        })?;
        self.set_subscription(SubscriptionSpec::Pattern(re))
    }

    fn set_subscription(&self, spec: SubscriptionSpec) -> Result<()> {
        {
            let mut st = self.shared.lock();
            if st.manual && !st.parts.is_empty() {
                return Err(Error::State(
                    "cannot subscribe while partitions are assigned manually; unassign first"
                        .into(),
                ));
            }
            st.manual = false;
            st.subscription = spec;
        }
        self.shared
            .resubscribe
            .send_modify(|v| *v = v.wrapping_add(1));
        Ok(())
    }

    /// Leaves the group's subscription: revokes every partition and leaves the group.
    pub fn unsubscribe(&self) -> Result<()> {
        self.check_open()?;
        self.shared.lock().subscription = SubscriptionSpec::None;
        self.shared
            .resubscribe
            .send_modify(|v| *v = v.wrapping_add(1));
        Ok(())
    }

    /// Assigns partitions manually (no group membership), each starting at the given
    /// [`Offset`]. Replaces a previous manual assignment; partitions kept keep their
    /// position unless a new offset is given. Topics are validated here; unknown topics or
    /// partitions are reported by `recv` as [`Error::UnknownTopicOrPartition`].
    pub fn assign(&self, partitions: Vec<(TopicPartition, Offset)>) -> Result<()> {
        self.check_open()?;
        for (tp, o) in &partitions {
            validate_topic_name(&tp.topic)?;
            if tp.partition < 0 {
                return Err(Error::InvalidArgument(format!(
                    "negative partition in {tp}"
                )));
            }
            if let Offset::Offset(x) | Offset::OffsetTail(x) = o {
                if *x < 0 {
                    return Err(Error::InvalidArgument(format!(
                        "offset {x} for {tp} is negative"
                    )));
                }
            }
        }
        {
            let mut st = self.shared.lock();
            if !matches!(st.subscription, SubscriptionSpec::None) {
                return Err(Error::State(
                    "cannot assign partitions manually while subscribed; unsubscribe first".into(),
                ));
            }
            st.manual = true;
            let keep: BTreeSet<TopicPartition> =
                partitions.iter().map(|(tp, _)| tp.clone()).collect();
            let gone: Vec<TopicPartition> = st
                .parts
                .keys()
                .filter(|tp| !keep.contains(*tp))
                .cloned()
                .collect();
            for tp in gone {
                st.remove(&tp);
            }
            let auto_store = self.shared.cfg.enable_auto_offset_store;
            for (tp, o) in partitions {
                let freed = st.part_entry(&tp).seek(o, auto_store);
                st.buffered_bytes -= freed;
            }
        }
        self.track_assigned_topics();
        self.shared.notify_work();
        Ok(())
    }

    /// Removes every manually assigned partition.
    pub fn unassign(&self) -> Result<()> {
        self.assign(Vec::new())
    }

    pub(crate) fn track_assigned_topics(&self) {
        let topics: BTreeSet<String> = self
            .shared
            .lock()
            .parts
            .keys()
            .map(|tp| tp.topic.to_string())
            .collect();
        self.shared
            .cluster
            .track_topics(topics.iter().map(|s| s.as_str()));
    }

    /// The partitions currently assigned (manually or by the group).
    pub fn assignment(&self) -> Vec<TopicPartition> {
        self.shared
            .lock()
            .parts
            .iter()
            .filter(|(_, p)| !p.revoking)
            .map(|(tp, _)| tp.clone())
            .collect()
    }

    fn not_assigned(tp: &TopicPartition) -> Error {
        Error::NotAssigned(tp.clone())
    }

    /// Moves the position of an assigned partition: the next message received from it is the
    /// one at `offset`. An absolute offset outside the log is handled by `auto.offset.reset`
    /// (with `none`, `recv` reports OFFSET_OUT_OF_RANGE).
    ///
    /// The seek wins over everything decided before it: messages already buffered for the
    /// partition are dropped, and the answers of fetches and position lookups started before
    /// it are ignored when they arrive.
    ///
    /// Position and commits: after a seek to an absolute offset the position is that offset
    /// at once; after a seek that needs a lookup ([`Offset::Beginning`], [`Offset::End`],
    /// [`Offset::Stored`], [`Offset::OffsetTail`], [`Offset::Timestamp`]) the partition has
    /// no position ([`position_of`](Self::position_of) is `None`) until the lookup answers,
    /// so [`commit`](Self::commit) leaves it out meanwhile (as Java's consumer does) and never
    /// commits the position from before the seek. With `enable.auto.offset.store` the stored
    /// offset follows the seek the same way (the target, or nothing until the next message).
    ///
    /// Errors: [`Error::NotAssigned`] when the partition is not assigned to this consumer
    /// (Java throws `IllegalStateException`), e.g. because a rebalance revoked it after
    /// [`assignment`](Self::assignment) listed it; in a group, catch it and go on (a
    /// partition assigned again starts from the committed offset). While a rebalance is
    /// revoking the partition (during the listener's `on_revoked`, which may seek) it is still
    /// assigned and the seek succeeds, but it ends with the revocation. [`Error::InvalidArgument`]
    /// for a negative offset, [`Error::Closed`] after close.
    pub fn seek(&self, tp: &TopicPartition, offset: Offset) -> Result<()> {
        self.check_open()?;
        if let Offset::Offset(x) | Offset::OffsetTail(x) = offset {
            if x < 0 {
                return Err(Error::InvalidArgument(format!(
                    "cannot seek {tp} to negative offset {x}"
                )));
            }
        }
        {
            let mut st = self.shared.lock();
            let auto_store = self.shared.cfg.enable_auto_offset_store;
            let p = st.parts.get_mut(tp).ok_or_else(|| Self::not_assigned(tp))?;
            let freed = p.seek(offset, auto_store);
            st.buffered_bytes -= freed;
        }
        self.shared.notify_work();
        Ok(())
    }

    /// Stops fetching and delivering the given assigned partitions (their buffers are kept).
    /// [`Error::NotAssigned`] (and nothing paused) when one of them is not assigned.
    pub fn pause(&self, partitions: &[TopicPartition]) -> Result<()> {
        self.set_paused(partitions, true)
    }

    /// Resumes paused partitions ([`Error::NotAssigned`] as for [`pause`](Self::pause)).
    pub fn resume(&self, partitions: &[TopicPartition]) -> Result<()> {
        self.set_paused(partitions, false)
    }

    fn set_paused(&self, partitions: &[TopicPartition], paused: bool) -> Result<()> {
        self.check_open()?;
        let w = {
            let mut st = self.shared.lock();
            if let Some(tp) = partitions.iter().find(|tp| !st.parts.contains_key(*tp)) {
                return Err(Self::not_assigned(tp));
            }
            for tp in partitions {
                if let Some(p) = st.parts.get_mut(tp) {
                    p.paused = paused;
                }
            }
            st.take_waiters()
        };
        Shared::wake(w);
        self.shared.notify_work();
        Ok(())
    }

    /// The partitions currently paused.
    pub fn paused(&self) -> Vec<TopicPartition> {
        self.shared
            .lock()
            .parts
            .iter()
            .filter(|(_, p)| p.paused)
            .map(|(tp, _)| tp.clone())
            .collect()
    }

    /// The position (next offset to be received) of every assigned partition; `None` while
    /// it is still being looked up.
    pub fn position(&self) -> Vec<(TopicPartition, Option<i64>)> {
        self.shared
            .lock()
            .parts
            .iter()
            .map(|(tp, p)| (tp.clone(), p.position))
            .collect()
    }

    /// The lag of every assigned partition (sorted), as the consumer sees it from its
    /// positions and the watermarks of its fetch responses, like the Java consumer's
    /// `records-lag` metric; for the group's committed lag use
    /// [`AdminClient::consumer_group_lag`](crate::AdminClient::consumer_group_lag).
    pub fn lag(&self) -> Vec<ConsumerLag> {
        let read_committed =
            self.shared.cfg.isolation_level == crate::config::IsolationLevel::ReadCommitted;
        let st = self.shared.lock();
        let mut out: Vec<ConsumerLag> = st
            .parts
            .iter()
            .map(|(tp, p)| {
                let known = |v: i64| (v >= 0).then_some(v);
                let (hw, lso) = (known(p.high_watermark), known(p.last_stable_offset));
                let end = if read_committed { lso } else { hw };
                ConsumerLag {
                    partition: tp.clone(),
                    position: p.position,
                    high_watermark: hw,
                    last_stable_offset: lso,
                    lag: end.zip(p.position).map(|(e, pos)| (e - pos).max(0)),
                }
            })
            .collect();
        drop(st);
        out.sort_by(|a, b| a.partition.cmp(&b.partition));
        out
    }

    /// The position of one assigned partition (`None` while it is looked up, e.g. after a
    /// seek to the beginning); [`Error::NotAssigned`] for a partition not assigned.
    pub fn position_of(&self, tp: &TopicPartition) -> Result<Option<i64>> {
        self.shared
            .lock()
            .parts
            .get(tp)
            .map(|p| p.position)
            .ok_or_else(|| Self::not_assigned(tp))
    }

    /// Stores `offset` (the next offset to read) as the offset the next (auto) commit of
    /// `tp` will commit. Use with `enable.auto.offset.store = false` to commit only what was
    /// processed. [`Error::NotAssigned`] for a partition not assigned.
    pub fn store_offset(&self, tp: &TopicPartition, offset: i64) -> Result<()> {
        self.check_open()?;
        if offset < 0 {
            return Err(Error::InvalidArgument(format!(
                "cannot store negative offset {offset} for {tp}"
            )));
        }
        let mut st = self.shared.lock();
        let p = st.parts.get_mut(tp).ok_or_else(|| Self::not_assigned(tp))?;
        p.stored = Some((offset, None));
        Ok(())
    }

    /// Stores the offset after `msg` (see [`ConsumerHandle::store_offset`]).
    pub fn store_offset_from_message(&self, msg: &Message) -> Result<()> {
        self.check_open()?;
        let tp = msg.topic_partition();
        let mut st = self.shared.lock();
        let p = st
            .parts
            .get_mut(&tp)
            .ok_or_else(|| Self::not_assigned(&tp))?;
        p.stored = Some((msg.offset + 1, msg.leader_epoch()));
        Ok(())
    }

    /// Stored offsets of assigned partitions (all, or those in `only`) that differ from what
    /// this consumer last committed.
    pub(crate) fn stored_offsets(
        &self,
        only: Option<&BTreeSet<TopicPartition>>,
    ) -> BTreeMap<TopicPartition, (i64, Option<i32>)> {
        self.shared
            .lock()
            .parts
            .iter()
            .filter(|(tp, _)| only.is_none_or(|o| o.contains(*tp)))
            .filter_map(|(tp, p)| {
                let (o, e) = p.stored?;
                (p.committed != Some(o)).then(|| (tp.clone(), (o, e)))
            })
            .collect()
    }

    /// Commits the current position of every assigned partition (what `recv` has returned
    /// so far). `Sync` waits for the coordinator; `Async` returns at once.
    ///
    /// That includes a record still being processed: in a
    /// [`RebalanceListener::on_revoked`](super::RebalanceListener::on_revoked), which runs
    /// while the application may be processing, use
    /// [`commit_stored`](Self::commit_stored) with offsets stored after processing instead.
    ///
    /// A commit belongs to the generation the member is in when it is made: it is never
    /// sent under a later one (ILLEGAL_GENERATION once the member has moved on); during a
    /// rebalance it waits for the new generation, and fails with
    /// [`Error::NotAssigned`] when a partition was taken away meanwhile.
    pub async fn commit(&self, mode: CommitMode) -> Result<()> {
        self.check_open()?;
        let offsets: BTreeMap<TopicPartition, (i64, Option<i32>)> = self
            .shared
            .lock()
            .parts
            .iter()
            .filter(|(_, p)| !p.revoking || p.position.is_some())
            .filter_map(|(tp, p)| p.position.map(|o| (tp.clone(), (o, p.position_epoch))))
            .collect();
        self.commit_map(offsets, mode).await
    }

    /// Commits the stored offsets (see [`ConsumerHandle::store_offset`]); this is what auto
    /// commit does periodically and on revocation. With `enable.auto.offset.store=false` and
    /// offsets stored after processing, this commits exactly what was processed: the commit
    /// to make in [`RebalanceListener::on_revoked`](super::RebalanceListener::on_revoked).
    pub async fn commit_stored(&self, mode: CommitMode) -> Result<()> {
        self.check_open()?;
        let offsets = self.stored_offsets(None);
        self.commit_map(offsets, mode).await
    }

    /// Commits the offset after `msg`, with the message's leader epoch (as Java commits the
    /// epoch of the record the offset follows, so a consumer restarting from it can detect
    /// a log truncation, KIP-320). [`Error::NotAssigned`] for a partition not assigned.
    pub async fn commit_message(&self, msg: &Message, mode: CommitMode) -> Result<()> {
        self.check_open()?;
        let tp = msg.topic_partition();
        if !self.shared.lock().parts.contains_key(&tp) {
            return Err(Self::not_assigned(&tp));
        }
        let map = BTreeMap::from([(tp, (msg.offset + 1, msg.leader_epoch()))]);
        self.commit_map(map, mode).await
    }

    /// Commits explicit offsets (each the *next* offset to read). Every partition must be
    /// assigned to this consumer, else [`Error::NotAssigned`].
    pub async fn commit_offsets(
        &self,
        offsets: impl IntoIterator<Item = (TopicPartition, i64)>,
        mode: CommitMode,
    ) -> Result<()> {
        self.commit_explicit(offsets, true, mode).await
    }

    /// Commits explicit offsets (each the *next* offset to read) of any partitions, assigned
    /// to this consumer or not, as librdkafka's and Java's commit of explicit offsets do
    /// (e.g. a group member committing for partitions it does not own, a consumer with no
    /// assignment). The commit carries the member's generation as
    /// [`commit_offsets`](Self::commit_offsets) does; that one refuses unassigned partitions.
    pub async fn commit_offsets_unchecked(
        &self,
        offsets: impl IntoIterator<Item = (TopicPartition, i64)>,
        mode: CommitMode,
    ) -> Result<()> {
        self.commit_explicit(offsets, false, mode).await
    }

    async fn commit_explicit(
        &self,
        offsets: impl IntoIterator<Item = (TopicPartition, i64)>,
        assigned_only: bool,
        mode: CommitMode,
    ) -> Result<()> {
        self.check_open()?;
        let mut map = BTreeMap::new();
        {
            let st = self.shared.lock();
            for (tp, o) in offsets {
                if assigned_only && !st.parts.contains_key(&tp) {
                    return Err(Self::not_assigned(&tp));
                }
                if o < 0 {
                    return Err(Error::InvalidArgument(format!(
                        "cannot commit negative offset {o} for {tp}"
                    )));
                }
                map.insert(tp, (o, None));
            }
        }
        self.commit_map(map, mode).await
    }

    async fn commit_map(
        &self,
        offsets: BTreeMap<TopicPartition, (i64, Option<i32>)>,
        mode: CommitMode,
    ) -> Result<()> {
        if self.shared.cfg.group_id.is_none() {
            return Err(ConfigError::Missing {
                key: "group.id".into(),
            }
            .into());
        }
        let deadline = Deadline::after(self.shared.cfg.common.request_timeout);
        let cfg = &self.shared.cfg;
        let span = crate::observe::commit_span(
            &cfg.common.client_id,
            cfg.group_id.as_deref(),
            offsets.len(),
        );
        match mode {
            CommitMode::Sync => {
                let started = std::time::Instant::now();
                let r = offsets::commit(&self.shared, &offsets, deadline, offsets::By::Application)
                    .instrument(span.clone())
                    .await;
                crate::observe::span_result(&span, &r);
                let cid = &self.shared.cfg.common.client_id;
                crate::observe::consumer_commit(cid, started.elapsed(), r.is_ok());
                r
            }
            CommitMode::Async => {
                let shared = self.shared.clone();
                // The commit belongs to the generation it is made in, not to the one the
                // task finds when it runs.
                let built_in = shared.group_info();
                tokio::spawn(async move {
                    let started = std::time::Instant::now();
                    let result = offsets::commit_as(
                        &shared,
                        &offsets,
                        deadline,
                        built_in,
                        offsets::By::Application,
                    )
                    .instrument(span.clone())
                    .await;
                    crate::observe::span_result(&span, &result);
                    let cid = &shared.cfg.common.client_id;
                    crate::observe::consumer_commit(cid, started.elapsed(), result.is_ok());
                    if let Err(e) = &result {
                        tracing::warn!(error = %e, "async commit failed");
                    }
                    shared.report_commit(CommitResult {
                        offsets: offsets
                            .iter()
                            .map(|(tp, (o, _))| (tp.clone(), *o))
                            .collect(),
                        result,
                    });
                });
                Ok(())
            }
        }
    }

    /// A channel receiving the result of every later [`CommitMode::Async`] commit (replaces
    /// an earlier channel).
    pub fn commit_results(&self) -> mpsc::UnboundedReceiver<CommitResult> {
        let (tx, rx) = mpsc::unbounded_channel();
        *self
            .shared
            .commit_results
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = Some(tx);
        rx
    }

    /// The group's committed offsets of `partitions` (default: the assignment); `None`
    /// where nothing is committed. Bounded by `timeout`.
    pub async fn committed(
        &self,
        partitions: Option<&[TopicPartition]>,
        timeout: Duration,
    ) -> Result<Vec<(TopicPartition, Option<i64>)>> {
        self.check_open()?;
        let tps: Vec<TopicPartition> = match partitions {
            Some(p) => p.to_vec(),
            None => self.assignment(),
        };
        if tps.is_empty() {
            return Ok(Vec::new());
        }
        let map = offsets::fetch_committed(&self.shared, &tps, Deadline::after(timeout)).await?;
        Ok(tps
            .into_iter()
            .map(|tp| {
                let o = map.get(&tp).copied().flatten().map(|(o, _)| o);
                (tp, o)
            })
            .collect())
    }

    /// Low (log start) and high watermarks of any partition, asked from its leader.
    ///
    /// The query carries this consumer's `isolation.level`, as Java's `endOffsets` does: with
    /// `read_committed` the high mark is the last stable offset (the first offset of the
    /// oldest open transaction), which reaches a committed transaction's end only once its
    /// commit marker is written, shortly after the producer's `commit_transaction` returns.
    pub async fn fetch_watermarks(
        &self,
        tp: &TopicPartition,
        timeout: Duration,
    ) -> Result<Watermarks> {
        self.check_open()?;
        let deadline = Deadline::after(timeout);
        let q = [(tp.clone(), -2), (tp.clone(), -1)];
        // Two queries for one partition cannot share a request: ask twice.
        let low = offsets::list_offsets(&self.shared, &q[..1], deadline).await?;
        let high = offsets::list_offsets(&self.shared, &q[1..], deadline).await?;
        let get = |m: std::collections::HashMap<TopicPartition, Result<offsets::ListedOffset>>| {
            m.into_iter()
                .next()
                .map(|(_, r)| r)
                .unwrap_or_else(|| Err(Error::Protocol("ListOffsets: no answer".into())))
        };
        Ok(Watermarks {
            low: get(low)?.offset,
            high: get(high)?.offset,
        })
    }

    /// For each partition, the earliest offset whose timestamp is at or after the given one
    /// (ms since the epoch); `None` when there is no such record.
    pub async fn offsets_for_times(
        &self,
        query: Vec<(TopicPartition, i64)>,
        timeout: Duration,
    ) -> Result<Vec<(TopicPartition, Option<i64>)>> {
        self.check_open()?;
        for (tp, ts) in &query {
            if *ts < 0 {
                return Err(Error::InvalidArgument(format!(
                    "negative timestamp {ts} for {tp}"
                )));
            }
        }
        let deadline = Deadline::after(timeout);
        // One request cannot ask about a partition twice: repeated partitions go in rounds.
        let mut rest: Vec<(usize, (TopicPartition, i64))> = query.into_iter().enumerate().collect();
        let mut results: BTreeMap<usize, (TopicPartition, Option<i64>)> = BTreeMap::new();
        while !rest.is_empty() {
            let mut seen = BTreeSet::new();
            let (round, later): (Vec<_>, Vec<_>) = rest
                .into_iter()
                .partition(|(_, (tp, _))| seen.insert(tp.clone()));
            rest = later;
            let q: Vec<(TopicPartition, i64)> = round.iter().map(|(_, q)| q.clone()).collect();
            let answers = offsets::list_offsets(&self.shared, &q, deadline).await?;
            for (i, (tp, _)) in round {
                let r = answers.get(&tp).cloned().unwrap_or_else(|| {
                    Err(Error::Protocol(format!("ListOffsets: no answer for {tp}")))
                })?;
                results.insert(i, (tp, (r.offset >= 0).then_some(r.offset)));
            }
        }
        Ok(results.into_values().collect())
    }

    /// The consumer's group id.
    pub fn group_id(&self) -> Option<&str> {
        self.shared.cfg.group_id.as_deref()
    }

    /// Current group generation and member id (`None` when not in a generation, e.g. while
    /// a rebalance completes: the previous generation is over, the new one not applied).
    pub fn group_membership(&self) -> Option<(i32, String)> {
        let g = self.shared.group_info();
        (g.joined && !g.rebalancing && g.generation >= 0).then_some((g.generation, g.member_id))
    }

    /// The group metadata a transactional producer sends with this consumer's offsets
    /// ([`Producer::send_offsets_to_transaction`](crate::producer::Producer::send_offsets_to_transaction)),
    /// like Java's `KafkaConsumer::groupMetadata`: the group id, the current generation and
    /// member id (`-1` and `""` while the member is not in a generation, e.g. during a
    /// rebalance) and `group.instance.id`. Take it right before sending the offsets: the
    /// coordinator refuses offsets tagged with an older generation, which fences a member
    /// that lost its partitions (KIP-447).
    ///
    /// Errors: [`ConfigError::Missing`] (`group.id`) for a consumer without a group.
    pub fn group_metadata(&self) -> Result<ConsumerGroupMetadata> {
        let group_id = self.shared.cfg.group_id.clone().ok_or_else(|| {
            Error::from(ConfigError::Missing {
                key: "group.id".into(),
            })
        })?;
        let (generation_id, member_id) = self.group_membership().unwrap_or((-1, String::new()));
        Ok(ConsumerGroupMetadata {
            group_id,
            generation_id,
            member_id,
            group_instance_id: self.shared.cfg.group_instance_id.clone(),
        })
    }

    /// The partitions of `topic` with their leaders and replicas, waiting up to
    /// `request.timeout.ms` for the topic's metadata. A topic that does not exist gives
    /// [`Error::UnknownTopicOrPartition`].
    pub async fn partitions_for(&self, topic: &str) -> Result<Vec<crate::PartitionMetadata>> {
        let timeout = self.shared.cfg.common.request_timeout;
        crate::metadata::partitions_for(&self.shared.cluster, topic, timeout).await
    }

    /// Cluster metadata: brokers and `topic`, or every topic when `topic` is `None`
    /// (rdkafka's `fetch_metadata`), bounded by `request.timeout.ms`.
    pub async fn fetch_metadata(&self, topic: Option<&str>) -> Result<crate::Metadata> {
        let timeout = self.shared.cfg.common.request_timeout;
        crate::metadata::fetch(&self.shared.cluster, topic, timeout).await
    }
}
