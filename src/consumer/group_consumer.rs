//! KIP-848 consumer group membership (`group.protocol=consumer`), in one background task per
//! consumer.
//!
//! The broker assigns partitions; the member heartbeats (ConsumerGroupHeartbeat) at the
//! interval the coordinator gives, with a member id it generated itself (a UUID, KIP-1082)
//! and the member epoch the coordinator hands out. Every heartbeat carries the subscription
//! (topic names, or the regex the broker resolves, `SubscribedTopicRegex`, RE2/J syntax), the
//! server-side assignor (`group.remote.assignor`) and the partitions the member owns. An
//! answer may carry a new target assignment (topic ids): the task *reconciles* towards it —
//! topic ids are named through metadata (an id not known yet waits for a refresh), partitions
//! leaving are revoked first (no longer delivered, stored offsets committed with auto commit,
//! `on_revoked`, dropped), then new ones are added (not fetched until `on_assigned` returned)
//! — and the next heartbeat, sent at once, acknowledges by listing what it owns now.
//!
//! The listener guarantees are the classic ones (`group.rs`): each callback runs in a task
//! of its own ([`Running`]) while this task keeps heartbeating; what those heartbeats find out
//! (a new target, fenced, fatal) is acted on once the callback returned; close waits for a
//! callback in progress instead of cutting it off.
//!
//! FENCED_MEMBER_EPOCH / UNKNOWN_MEMBER_ID: the partitions are lost (`on_lost`, no commit)
//! and the member rejoins at epoch 0 with the same member id. A coordinator that moved or is
//! not available is looked up again. `max.poll.interval.ms` without `recv`: the member gives
//! its partitions up, leaves (epoch -1, or -2 for a static member, whose assignment the
//! coordinator keeps for the session timeout) and rejoins at the next `recv`, as Java's.
//! Close revokes and leaves the same way.
//!
//! Commits are tagged with (member id, member epoch) through the same [`GroupInfo`]
//! (`generation` = member epoch) the classic protocol uses; see `offsets.rs` for the epoch
//! rules (STALE_MEMBER_EPOCH is retried with the next heartbeat's epoch).
//!
//! [`GroupInfo`]: super::state::GroupInfo

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kafka_protocol::messages::consumer_group_heartbeat_request::TopicPartitions;
use kafka_protocol::messages::{
    ApiKey, ConsumerGroupHeartbeatRequest, ConsumerGroupHeartbeatResponse, GroupId, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;
use uuid::Uuid;

use super::group::{Callback, Running};
use super::handle::ConsumerHandle;
use super::listener::RebalanceListener;
use super::offsets;
use super::state::{PartState, Reset, Shared, SubscriptionSpec};
use crate::backoff::{Backoff, Deadline};
use crate::cluster::CoordinatorKind;
use crate::connection::Connection;
use crate::error::{Error, ErrorAction, KafkaCode, Result};
use crate::types::TopicPartition;

/// Member epoch of a dynamic member leaving the group.
const LEAVE_EPOCH: i32 = -1;
/// Member epoch of a static member leaving the group (temporarily: the coordinator keeps its
/// assignment for the session timeout, for the next member with its `group.instance.id`).
const STATIC_LEAVE_EPOCH: i32 = -2;

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

/// A client-generated member id (KIP-1082): a random (version 4) UUID.
pub(crate) fn new_member_id() -> String {
    let mut bytes = [0u8; 16];
    for b in &mut bytes {
        *b = fastrand::u8(..);
    }
    uuid::Builder::from_random_bytes(bytes)
        .into_uuid()
        .to_string()
}

/// What heartbeats found out that the task must act on.
#[derive(Debug)]
enum Fault {
    /// FENCED_MEMBER_EPOCH / UNKNOWN_MEMBER_ID: partitions lost, rejoin at epoch 0.
    Fenced(Error),
    /// A callback or commit ran past `max.poll.interval.ms`: leave until the next `recv`.
    TooSlow,
    /// Stop: reported to the application.
    Fatal(Error),
}

/// What the heartbeats learn, behind a short std mutex so that heartbeats can be sent while
/// a callback runs (the task is then borrowed shared).
struct Hb {
    /// Member epoch (0: joining).
    epoch: i32,
    /// Heartbeat interval the coordinator asked for.
    interval: Duration,
    /// The latest target assignment (topic id -> partitions).
    target: BTreeMap<Uuid, BTreeSet<i32>>,
    /// Bumped with every assignment received.
    target_seq: u64,
    /// The first fault heartbeats reported while a callback or commit ran.
    fault: Option<Fault>,
}

/// Which kind of subscription the member joined with (a change of kind rejoins).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Names,
    Regex,
}

struct Member {
    shared: Arc<Shared>,
    handle: ConsumerHandle,
    listener: Option<Arc<dyn RebalanceListener>>,
    group_id: String,
    instance_id: Option<String>,
    member_id: String,
    hb: Mutex<Hb>,
    /// The partitions the member owns (and reports in every heartbeat).
    owned: BTreeSet<TopicPartition>,
    /// Topic names of the ids seen in assignments.
    names: HashMap<Uuid, String>,
    /// The target reconciled last (`target_seq`).
    reconciled_seq: u64,
    /// Topic ids of the target that metadata could not name yet.
    unresolved: bool,
    /// The subscription kind sent since the last join.
    joined_kind: Option<Kind>,
    /// The listener callback in progress, if any.
    running: Option<Running>,
    /// An error was reported for the current outage (report once).
    reported: bool,
}

/// The membership task. Ends on shutdown (drop: no leave) or on a close request (revoke,
/// leave, then acknowledge).
pub(crate) async fn run(
    handle: ConsumerHandle,
    listener: Option<Arc<dyn RebalanceListener>>,
    mut close_rx: mpsc::Receiver<oneshot::Sender<()>>,
) {
    let shared = handle.shared.clone();
    let mut m = Member {
        group_id: shared.cfg.group_id.clone().unwrap_or_default(),
        instance_id: shared.cfg.group_instance_id.clone(),
        member_id: new_member_id(),
        shared: shared.clone(),
        handle,
        listener,
        hb: Mutex::new(Hb {
            epoch: 0,
            interval: Duration::from_secs(5),
            target: BTreeMap::new(),
            target_seq: 0,
            fault: None,
        }),
        owned: BTreeSet::new(),
        names: HashMap::new(),
        reconciled_seq: 0,
        unresolved: false,
        joined_kind: None,
        running: None,
        reported: false,
    };
    let ack = {
        let main = m.main_loop();
        tokio::select! {
            _ = main => None,
            ack = close_rx.recv() => ack,
            _ = shared.shutdown_signal() => None,
        }
    };
    if let Some(ack) = ack {
        m.leave_on_close().await;
        let _ = ack.send(());
    }
}

impl Member {
    fn hb(&self) -> std::sync::MutexGuard<'_, Hb> {
        self.hb.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn epoch(&self) -> i32 {
        self.hb().epoch
    }

    fn in_group(&self) -> bool {
        self.epoch() > 0 || !self.owned.is_empty()
    }

    fn subscription_kind(&self) -> Option<Kind> {
        match self.shared.lock().subscription {
            SubscriptionSpec::None => None,
            SubscriptionSpec::Topics(_) => Some(Kind::Names),
            SubscriptionSpec::Pattern(_) => Some(Kind::Regex),
        }
    }

    async fn main_loop(&mut self) {
        let mut bo = Backoff::new(
            self.shared.cfg.common.retry_backoff,
            self.shared.cfg.common.retry_backoff_max,
        );
        let mut resub = self.shared.resubscribe.subscribe();
        let mut next_hb = Instant::now();
        let mut resolve_at = Instant::now();
        loop {
            resub.borrow_and_update();
            let kind = self.subscription_kind();
            if kind.is_none() || (self.joined_kind.is_some() && kind != self.joined_kind) {
                // Unsubscribed, or switched between names and a regex: give everything up
                // and leave; a new subscription joins afresh.
                if self.in_group() {
                    let owned = self.owned_list();
                    self.revoke(&owned, true).await;
                    self.send_leave().await;
                }
                self.reset_membership();
                if kind.is_none() {
                    let _ = resub.changed().await;
                    continue;
                }
                next_hb = Instant::now();
            }
            self.joined_kind = kind;
            if self.poll_expired() {
                if self.in_group() {
                    tracing::warn!(
                        group = %self.group_id,
                        "max.poll.interval.ms exceeded without recv: leaving the group until the next recv"
                    );
                    self.leave_until_polled().await;
                }
                while self.poll_expired() {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                next_hb = Instant::now();
                continue;
            }
            // Reconcile towards the latest target (a new one, or ids not named before).
            let seq = self.hb().target_seq;
            let retry_names = self.unresolved && Instant::now() >= resolve_at;
            if (seq != self.reconciled_seq || retry_names) && self.reconcile().await {
                // Acknowledge at once.
                next_hb = Instant::now();
            }
            if self.unresolved && Instant::now() >= resolve_at {
                // Ids metadata could not name: look again after a while.
                resolve_at = Instant::now() + self.shared.cfg.common.retry_backoff_max;
            }
            let fault = self.hb().fault.take();
            if let Some(fault) = fault {
                match fault {
                    Fault::Fenced(e) => {
                        tracing::info!(group = %self.group_id, error = %e, "fenced: partitions lost, rejoining");
                        let was_member = self.in_group();
                        self.fenced().await;
                        // Rejoin at once, unless the join itself was refused (back off).
                        next_hb = Instant::now();
                        if !was_member {
                            next_hb += bo.next_delay();
                        }
                    }
                    Fault::TooSlow => {
                        tracing::warn!(
                            group = %self.group_id,
                            "a rebalance callback ran past max.poll.interval.ms: leaving the group until the next recv"
                        );
                        self.leave_until_polled().await;
                    }
                    Fault::Fatal(e) => {
                        self.fatal(e).await;
                        return;
                    }
                }
                continue;
            }
            if self.hb().target_seq != self.reconciled_seq {
                // A heartbeat during the reconciliation brought a newer target.
                continue;
            }
            tokio::select! {
                _ = tokio::time::sleep_until(next_hb) => {}
                r = resub.changed() => {
                    if r.is_ok() {
                        // The subscription changed: tell the coordinator now.
                        next_hb = Instant::now();
                    }
                    continue;
                }
                _ = tokio::time::sleep_until(resolve_at), if self.unresolved => continue,
            }
            match self.heartbeat().await {
                Ok(()) => {
                    bo.reset();
                    self.reported = false;
                    next_hb = Instant::now() + self.hb().interval;
                }
                Err(e) => match self.fault_of(e) {
                    Ok(retry) => {
                        tracing::debug!(group = %self.group_id, error = %retry, "heartbeat failed; retrying");
                        if bo.attempts() >= 5 && !self.reported {
                            self.reported = true;
                            self.shared.push_error(retry);
                        }
                        next_hb = Instant::now() + bo.next_delay();
                    }
                    Err(fault) => {
                        self.hb().fault = Some(fault);
                    }
                },
            }
        }
    }

    /// Sorts a heartbeat failure: `Ok(e)` to retry after a backoff (the coordinator is
    /// looked up again when it may have moved), `Err(fault)` to act on.
    fn fault_of(&self, e: Error) -> std::result::Result<Error, Fault> {
        match e.code() {
            Some(KafkaCode::FENCED_MEMBER_EPOCH | KafkaCode::UNKNOWN_MEMBER_ID) => {
                Err(Fault::Fenced(e))
            }
            _ if e.action() == ErrorAction::Fatal => Err(Fault::Fatal(e)),
            _ => {
                if matches!(
                    e.action(),
                    ErrorAction::RefreshAndRetry | ErrorAction::Ambiguous
                ) {
                    self.coordinator_gone();
                }
                Ok(e)
            }
        }
    }

    fn poll_expired(&self) -> bool {
        self.shared
            .since_last_poll()
            .is_some_and(|d| d > self.shared.cfg.max_poll_interval)
    }

    fn leave_epoch(&self) -> i32 {
        if self.instance_id.is_some() {
            STATIC_LEAVE_EPOCH
        } else {
            LEAVE_EPOCH
        }
    }

    /// Back to "not a member": epoch 0 (same member id), no target, nothing to commit with.
    fn reset_membership(&mut self) {
        let seq = {
            let mut hb = self.hb();
            hb.epoch = 0;
            hb.target.clear();
            hb.target_seq
        };
        self.reconciled_seq = seq;
        self.unresolved = false;
        self.joined_kind = None;
        self.shared.set_group_info(|g| {
            g.generation = -1;
            g.member_id.clear();
            g.joined = false;
            g.rebalancing = false;
        });
    }

    /// Publishes the epoch for commits (`generation` = member epoch).
    fn publish_epoch(&self, epoch: i32) {
        let current = self.shared.group_info();
        if current.generation == epoch && current.joined == (epoch > 0) {
            return;
        }
        self.shared.set_group_info(|g| {
            g.generation = if epoch > 0 { epoch } else { -1 };
            g.member_id = if epoch > 0 {
                self.member_id.clone()
            } else {
                String::new()
            };
            g.joined = epoch > 0;
            g.rebalancing = false;
        });
    }

    /// Gives the partitions up without committing (the application is not keeping up),
    /// leaves, and waits for the next `recv` to rejoin.
    async fn leave_until_polled(&mut self) {
        let owned = self.owned_list();
        self.revoke(&owned, false).await;
        self.send_leave().await;
        self.reset_membership();
    }

    async fn fatal(&mut self, e: Error) {
        tracing::error!(group = %self.group_id, error = %e, "fatal group error");
        let owned = self.owned_list();
        self.lose(&owned).await;
        self.reset_membership();
        let w = {
            let mut st = self.shared.lock();
            st.fatal = Some(e);
            st.take_waiters()
        };
        Shared::wake(w);
    }

    /// Fenced: every owned partition is lost; the member rejoins at epoch 0, same member id.
    async fn fenced(&mut self) {
        let owned = self.owned_list();
        self.lose(&owned).await;
        self.reset_membership();
    }

    async fn coordinator(&self) -> Result<Connection> {
        let deadline = Deadline::after(self.shared.cfg.common.request_timeout);
        let (_, conn) = self
            .shared
            .cluster
            .coordinator(CoordinatorKind::Group, &self.group_id, deadline)
            .await?;
        Ok(conn)
    }

    fn coordinator_gone(&self) {
        self.shared
            .cluster
            .invalidate_coordinator(CoordinatorKind::Group, &self.group_id);
    }

    /// The request of one heartbeat at `epoch` (a negative epoch: leave).
    fn request(&self, epoch: i32) -> ConsumerGroupHeartbeatRequest {
        let req = ConsumerGroupHeartbeatRequest::default()
            .with_group_id(GroupId(s(&self.group_id)))
            .with_member_id(s(&self.member_id))
            .with_member_epoch(epoch)
            .with_instance_id(self.instance_id.as_deref().map(s));
        if epoch < 0 {
            return req;
        }
        let cfg = &self.shared.cfg;
        let spec = self.shared.lock().subscription.clone();
        let (names, regex) = match &spec {
            SubscriptionSpec::Topics(t) => {
                self.shared
                    .cluster
                    .track_topics(t.iter().map(|s| s.as_str()));
                (
                    Some(t.iter().map(|t| TopicName(s(t))).collect::<Vec<_>>()),
                    None,
                )
            }
            SubscriptionSpec::Pattern(re) => (None, Some(s(re.as_str()))),
            SubscriptionSpec::None => (Some(Vec::new()), None),
        };
        let mut by_topic: BTreeMap<Uuid, Vec<i32>> = BTreeMap::new();
        let ids: HashMap<&str, Uuid> = self.names.iter().map(|(id, n)| (n.as_str(), *id)).collect();
        for tp in &self.owned {
            if let Some(id) = ids.get(&*tp.topic) {
                by_topic.entry(*id).or_default().push(tp.partition);
            }
        }
        req.with_rack_id(cfg.common.client_rack.as_deref().map(s))
            .with_rebalance_timeout_ms(
                cfg.max_poll_interval.as_millis().min(i32::MAX as u128) as i32
            )
            .with_subscribed_topic_names(names)
            .with_subscribed_topic_regex(regex)
            .with_server_assignor(cfg.group_remote_assignor.as_deref().map(s))
            .with_topic_partitions(Some(
                by_topic
                    .into_iter()
                    .map(|(id, ps)| {
                        TopicPartitions::default()
                            .with_topic_id(id)
                            .with_partitions(ps)
                    })
                    .collect(),
            ))
    }

    /// Sends one heartbeat and takes in its answer (epoch, interval, target assignment).
    async fn heartbeat(&self) -> Result<()> {
        let epoch = self.epoch();
        let req = self.request(epoch);
        let conn = self.coordinator().await?;
        let version = conn.version_for(ApiKey::ConsumerGroupHeartbeat)?;
        let resp: ConsumerGroupHeartbeatResponse = conn
            .send_version(&req, version, self.shared.cfg.common.request_timeout)
            .await?;
        if let Some(code) = KafkaCode(resp.error_code).err() {
            return Err(Error::broker(
                code,
                format!(
                    "ConsumerGroupHeartbeat `{}` (member `{}`, epoch {epoch}){}",
                    self.group_id,
                    self.member_id,
                    resp.error_message
                        .as_ref()
                        .map(|m| format!(": {}", m.as_str()))
                        .unwrap_or_default()
                ),
            ));
        }
        if let Some(id) = resp.member_id.as_ref().filter(|id| !id.is_empty()) {
            if id.as_str() != self.member_id {
                // v0 brokers assign the id; v1 echoes ours.
                return Err(Error::Protocol(format!(
                    "ConsumerGroupHeartbeat: the coordinator answered for member `{}`, not `{}`",
                    id.as_str(),
                    self.member_id
                )));
            }
        }
        {
            let mut hb = self.hb();
            hb.epoch = resp.member_epoch;
            if resp.heartbeat_interval_ms > 0 {
                hb.interval = Duration::from_millis(resp.heartbeat_interval_ms as u64);
            }
            if let Some(a) = &resp.assignment {
                hb.target = a
                    .topic_partitions
                    .iter()
                    .map(|t| (t.topic_id, t.partitions.iter().copied().collect()))
                    .collect();
                hb.target_seq += 1;
            }
        }
        self.publish_epoch(resp.member_epoch);
        if epoch == 0 {
            tracing::info!(group = %self.group_id, member = %self.member_id, epoch = resp.member_epoch, "joined (consumer protocol)");
        }
        Ok(())
    }

    /// Leaves the group (epoch -1, or -2 for a static member). Best effort.
    async fn send_leave(&self) {
        if self.epoch() <= 0 {
            return;
        }
        let r: Result<()> = async {
            let conn = self.coordinator().await?;
            let version = conn.version_for(ApiKey::ConsumerGroupHeartbeat)?;
            let resp = conn
                .send_version(
                    &self.request(self.leave_epoch()),
                    version,
                    self.shared.cfg.common.request_timeout,
                )
                .await?;
            match KafkaCode(resp.error_code).err() {
                None => Ok(()),
                Some(code) => Err(Error::broker(code, "ConsumerGroupHeartbeat (leave)")),
            }
        }
        .await;
        match r {
            Ok(()) => {
                tracing::debug!(group = %self.group_id, member = %self.member_id, "left group")
            }
            Err(e) => {
                tracing::debug!(group = %self.group_id, error = %e, "leaving the group failed")
            }
        }
    }

    /// Names the target's topic ids (metadata, then a listing of every topic for ids not
    /// known yet). Returns the target as partitions, and whether some id stayed unknown.
    async fn resolve(
        &mut self,
        target: &BTreeMap<Uuid, BTreeSet<i32>>,
    ) -> (BTreeSet<TopicPartition>, bool) {
        let missing = |names: &HashMap<Uuid, String>| -> Vec<Uuid> {
            target
                .keys()
                .filter(|id| !names.contains_key(id))
                .copied()
                .collect()
        };
        if !missing(&self.names).is_empty() {
            let snap = self.shared.cluster.metadata();
            for t in snap.topics.values() {
                if target.contains_key(&t.id) && !t.id.is_nil() {
                    self.names.insert(t.id, t.name.to_string());
                }
            }
        }
        if !missing(&self.names).is_empty() {
            match self.shared.cluster.fetch_all_topics().await {
                Ok(all) => {
                    for t in all {
                        if target.contains_key(&t.id) && !t.id.is_nil() {
                            self.names.insert(t.id, t.name.to_string());
                        }
                    }
                }
                Err(e) => {
                    tracing::debug!(error = %e, "listing topics to name assigned topic ids failed")
                }
            }
        }
        let still = missing(&self.names);
        if !still.is_empty() {
            tracing::debug!(group = %self.group_id, ids = ?still, "assigned topic ids not in metadata yet");
            self.shared.refresh_metadata_soon();
        }
        let tps = target
            .iter()
            .filter_map(|(id, ps)| Some((self.names.get(id)?, ps)))
            .flat_map(|(name, ps)| {
                ps.iter()
                    .map(move |p| TopicPartition::new(name.as_str(), *p))
            })
            .collect();
        (tps, !still.is_empty())
    }

    /// Reconciles the owned partitions with the latest target: revoke first, then assign.
    /// Returns whether the owned partitions changed (to acknowledge at once).
    async fn reconcile(&mut self) -> bool {
        let (seq, target) = {
            let hb = self.hb();
            (hb.target_seq, hb.target.clone())
        };
        if self.epoch() <= 0 {
            self.reconciled_seq = seq;
            return false;
        }
        let (target, unresolved) = self.resolve(&target).await;
        self.unresolved = unresolved;
        self.reconciled_seq = seq;
        let revoked: Vec<TopicPartition> = self.owned.difference(&target).cloned().collect();
        let added: Vec<TopicPartition> = target.difference(&self.owned).cloned().collect();
        if revoked.is_empty() && added.is_empty() {
            return false;
        }
        tracing::info!(group = %self.group_id, epoch = self.epoch(), ?added, ?revoked, "reconciling the assignment");
        self.revoke(&revoked, true).await;
        if self.hb().fault.is_some() {
            // Fenced or too slow meanwhile: the main loop acts on it; nothing is added.
            return true;
        }
        self.assign(&added).await;
        true
    }

    /// Adds partitions: not fetched until `on_assigned` returned, owned (acknowledged) after.
    async fn assign(&mut self, added: &[TopicPartition]) {
        if added.is_empty() {
            return;
        }
        let gate = self.listener.is_some();
        {
            let mut st = self.shared.lock();
            for tp in added {
                st.parts
                    .entry(tp.clone())
                    .or_insert_with(|| PartState::new(Reset::Committed))
                    .assigning = gate;
            }
        }
        self.handle.track_assigned_topics();
        self.shared.notify_work();
        self.call_listener(Callback::Assigned, added).await;
        self.assigned(added);
    }

    /// `on_assigned` returned: the partitions are owned and may be fetched.
    fn assigned(&mut self, tps: &[TopicPartition]) {
        {
            let mut st = self.shared.lock();
            for tp in tps {
                if let Some(p) = st.parts.get_mut(tp) {
                    p.assigning = false;
                }
            }
        }
        self.owned.extend(tps.iter().cloned());
        self.shared.notify_work();
    }

    /// Orderly revocation: stop delivering, commit (auto commit), `on_revoked`, drop.
    async fn revoke(&mut self, tps: &[TopicPartition], commit: bool) {
        if tps.is_empty() {
            return;
        }
        self.stop_delivering(tps);
        if commit && self.shared.cfg.enable_auto_commit && self.epoch() > 0 {
            let only: BTreeSet<TopicPartition> = tps.iter().cloned().collect();
            let offsets = self.handle.stored_offsets(Some(&only));
            let deadline = Deadline::after(self.shared.cfg.common.request_timeout);
            let r = self
                .with_heartbeats(offsets::commit(&self.shared, &offsets, deadline))
                .await;
            if let Err(e) = r {
                tracing::warn!(error = %e, "commit of revoked partitions failed");
            }
        }
        self.call_listener(Callback::Revoked, tps).await;
        self.drop_partitions(tps);
    }

    /// Partitions lost: `on_lost`, drop, no commit.
    async fn lose(&mut self, tps: &[TopicPartition]) {
        if tps.is_empty() {
            return;
        }
        self.stop_delivering(tps);
        self.shared.set_group_info(|g| {
            g.joined = false;
            g.generation = -1;
            g.rebalancing = false;
        });
        self.call_listener(Callback::Lost, tps).await;
        self.drop_partitions(tps);
    }

    fn stop_delivering(&self, tps: &[TopicPartition]) {
        let mut st = self.shared.lock();
        for tp in tps {
            if let Some(p) = st.parts.get_mut(tp) {
                p.revoking = true;
            }
        }
    }

    fn owned_list(&self) -> Vec<TopicPartition> {
        self.owned.iter().cloned().collect()
    }

    fn drop_partitions(&mut self, tps: &[TopicPartition]) {
        let mut st = self.shared.lock();
        for tp in tps {
            st.remove(tp);
            self.owned.remove(tp);
        }
    }

    /// Runs a listener callback to completion in a task of its own and waits for it,
    /// heartbeating meanwhile (except for `on_lost`: the member is out of the group).
    async fn call_listener(&mut self, kind: Callback, tps: &[TopicPartition]) {
        let Some(listener) = self.listener.clone() else {
            return;
        };
        let (done_tx, done) = watch::channel(false);
        let handle = self.handle.clone();
        let partitions = tps.to_vec();
        tokio::spawn(async move {
            match kind {
                Callback::Assigned => listener.on_assigned(&handle, &partitions).await,
                Callback::Revoked => listener.on_revoked(&handle, &partitions).await,
                Callback::Lost => listener.on_lost(&handle, &partitions).await,
            }
            let _ = done_tx.send(true);
        });
        self.running = Some(Running {
            kind,
            partitions: tps.to_vec(),
            done: done.clone(),
        });
        if kind == Callback::Lost {
            Running::wait(done).await;
        } else {
            self.with_heartbeats(Running::wait(done)).await;
        }
        self.running = None;
    }

    /// Runs `work` while heartbeating at the coordinator's interval; a fault the heartbeats
    /// find (fenced, fatal, past `max.poll.interval.ms`) is kept for the main loop, which
    /// acts on it once the work is over. A new target is kept too (reconciled next).
    async fn with_heartbeats<T>(&self, work: impl Future<Output = T>) -> T {
        if self.epoch() <= 0 {
            return work.await;
        }
        let mut work = std::pin::pin!(work);
        tokio::select! {
            out = &mut work => out,
            fault = self.keep_alive() => {
                {
                    let mut hb = self.hb();
                    if hb.fault.is_none() {
                        hb.fault = Some(fault);
                    }
                }
                work.await
            }
        }
    }

    /// Heartbeats until one says the member must stop.
    async fn keep_alive(&self) -> Fault {
        let started = Instant::now();
        let mut bo = Backoff::new(
            self.shared.cfg.common.retry_backoff,
            self.shared.cfg.common.retry_backoff_max,
        );
        let mut next_hb = Instant::now() + self.hb().interval;
        loop {
            tokio::time::sleep_until(next_hb).await;
            if started.elapsed() > self.shared.cfg.max_poll_interval {
                return Fault::TooSlow;
            }
            match self.heartbeat().await {
                Ok(()) => {
                    bo.reset();
                    next_hb = Instant::now() + self.hb().interval;
                }
                Err(e) => match self.fault_of(e) {
                    Ok(e) => {
                        tracing::debug!(group = %self.group_id, error = %e, "heartbeat failed");
                        next_hb = Instant::now() + bo.next_delay();
                    }
                    Err(fault) => return fault,
                },
            }
        }
    }

    /// On close: let a callback in progress finish, revoke everything owned (the close path
    /// already committed), and leave.
    async fn leave_on_close(&mut self) {
        if let Some(r) = self.running.take() {
            let waited = tokio::select! {
                _ = self.with_heartbeats(Running::wait(r.done)) => true,
                _ = self.shared.shutdown_signal() => false,
            };
            if !waited {
                return;
            }
            match r.kind {
                Callback::Assigned => self.assigned(&r.partitions),
                Callback::Revoked | Callback::Lost => self.drop_partitions(&r.partitions),
            }
        }
        // Partitions whose `on_assigned` never started (close during a commit) are dropped.
        let gated: Vec<TopicPartition> = {
            let st = self.shared.lock();
            st.parts
                .iter()
                .filter(|(tp, p)| p.assigning && !self.owned.contains(*tp))
                .map(|(tp, _)| tp.clone())
                .collect()
        };
        self.drop_partitions(&gated);
        let owned = self.owned_list();
        if self.epoch() > 0 {
            self.revoke(&owned, false).await;
        } else {
            self.lose(&owned).await;
        }
        self.send_leave().await;
        self.reset_membership();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn member_ids_are_random_uuids() {
        let a = new_member_id();
        let b = new_member_id();
        assert_ne!(a, b);
        let u = Uuid::parse_str(&a).unwrap();
        assert_eq!(u.get_version_num(), 4);
    }
}
