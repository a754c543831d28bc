//! Classic consumer group membership, in one background task per consumer.
//!
//! The task owns the member id, generation, chosen protocol and the set of partitions the
//! member owns; it shares only what commits need (generation, member id) through
//! [`Shared::group`]. It joins (FindCoordinator, JoinGroup with the MEMBER_ID_REQUIRED round
//! trip, the leader runs the assignor, SyncGroup), applies the assignment, then heartbeats
//! every `heartbeat.interval.ms` until something asks for a rebalance: the coordinator (REBALANCE_IN_PROGRESS), a subscription change, a
//! partition count change seen by the leader, or a cooperative revocation. It never depends
//! on the application calling `recv`, except for `max.poll.interval.ms`: when `recv` has not
//! been called for that long the member leaves the group, and rejoins at the next `recv`.
//!
//! Listener callbacks run in a task of their own, which the membership task waits for while
//! it keeps heartbeating (as it does during revoke-time commits), like Java's heartbeat
//! thread: a callback may outlast `session.timeout.ms`, not `max.poll.interval.ms`. What those
//! heartbeats find out (rebalance, fenced, fatal) is acted on once the callback returned.
//! Partitions being assigned are not fetched until `on_assigned` returned (`assigning`).
//! A close that drops the main loop mid-callback finds the callback in `Member::running`,
//! waits for it and finishes its bookkeeping: no callback is cut off or run twice.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::leave_group_request::MemberIdentity;
use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use kafka_protocol::messages::{
    ApiKey, GroupId, HeartbeatRequest, JoinGroupRequest, JoinGroupResponse, LeaveGroupRequest,
    SyncGroupRequest,
};
use kafka_protocol::protocol::StrBytes;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;

use super::assignor::{
    assignor, Assignment, Assignor, MemberInfo, RebalanceProtocol, Subscription,
};
use super::handle::ConsumerHandle;
use super::listener::RebalanceListener;
use super::offsets;
use super::state::{Shared, SubscriptionSpec};
use crate::backoff::{Backoff, Deadline};
use crate::cluster::CoordinatorKind;
use crate::config::AssignmentStrategy;
use crate::connection::Connection;
use crate::error::{Error, ErrorAction, KafkaCode, Result};
use crate::types::TopicPartition;

/// Version of the consumer protocol subscription/assignment bytes we send.
const CONSUMER_PROTOCOL_VERSION: i16 = 3;

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

/// Why the heartbeat loop ended.
enum Next {
    Rejoin,
    PollTimeout,
    Fatal(Error),
}

/// A listener callback (also run by the KIP-848 membership, `group_consumer.rs`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Callback {
    Assigned,
    Revoked,
    Lost,
}

/// The partition hand-back steps both membership tasks (classic, this file; KIP-848,
/// `group_consumer.rs`) take the same way: an orderly revocation and a loss. Each task
/// supplies its state, its generation check, its heartbeating commit and its listener call.
pub(super) trait HandBack {
    /// The consumer's shared state.
    fn shared(&self) -> &Arc<Shared>;
    /// The consumer handle (stored offsets).
    fn handle(&self) -> &ConsumerHandle;
    /// The partitions the member owns.
    fn owned(&mut self) -> &mut BTreeSet<TopicPartition>;
    /// Whether the member is in a generation (epoch) a revoke-time commit can carry.
    fn in_generation(&self) -> bool;
    /// Commits `offsets` while heartbeating (a fault the heartbeats find is kept).
    async fn commit_heartbeating(
        &mut self,
        offsets: BTreeMap<TopicPartition, (i64, Option<i32>)>,
    ) -> Result<()>;
    /// Runs a listener callback to completion (heartbeating, except for `on_lost`).
    async fn call_listener(&mut self, kind: Callback, tps: &[TopicPartition]);

    /// Orderly revocation: stop delivering, commit (auto commit), `on_revoked`, drop.
    async fn revoke(&mut self, tps: &[TopicPartition], commit: bool) {
        if tps.is_empty() {
            return;
        }
        self.stop_delivering(tps);
        if commit && self.shared().cfg.enable_auto_commit && self.in_generation() {
            let only: BTreeSet<TopicPartition> = tps.iter().cloned().collect();
            let offsets = self.handle().stored_offsets(Some(&only));
            if let Err(e) = self.commit_heartbeating(offsets).await {
                tracing::warn!(error = %e, "commit of revoked partitions failed");
            }
        }
        self.call_listener(Callback::Revoked, tps).await;
        self.drop_partitions(tps);
    }

    /// Partitions lost (generation fenced / member removed): `on_lost`, drop, no commit.
    async fn lose(&mut self, tps: &[TopicPartition]) {
        if tps.is_empty() {
            return;
        }
        self.stop_delivering(tps);
        self.shared().set_group_info(|g| {
            g.joined = false;
            g.generation = -1;
            g.rebalancing = false;
        });
        self.call_listener(Callback::Lost, tps).await;
        self.drop_partitions(tps);
    }

    /// Stops delivering `tps`' records (buffered ones included) while they are revoked.
    fn stop_delivering(&self, tps: &[TopicPartition]) {
        let mut st = self.shared().lock();
        for tp in tps {
            if let Some(p) = st.parts.get_mut(tp) {
                p.revoking = true;
            }
        }
    }

    /// Forgets `tps`: removed from the consumer's state and from the owned set.
    fn drop_partitions(&mut self, tps: &[TopicPartition]) {
        let shared = self.shared().clone();
        let mut st = shared.lock();
        for tp in tps {
            st.remove(tp);
            self.owned().remove(tp);
        }
    }
}

/// A listener callback running in a task of its own, so that nothing (not even `close`,
/// which drops the membership task's main loop) cuts it off half-way, and the partitions it
/// runs for: `close` waits for it and finishes its bookkeeping instead of calling it again.
pub(super) struct Running {
    pub(super) kind: Callback,
    pub(super) partitions: Vec<TopicPartition>,
    /// Becomes `true` when the callback returned (the sender is dropped if it panicked).
    pub(super) done: watch::Receiver<bool>,
}

impl Running {
    /// Starts `kind` of `listener` for `tps` in a task of its own (so that the membership task
    /// can heartbeat, and a dropped membership future cannot cancel user code).
    pub(super) fn spawn(
        listener: Arc<dyn RebalanceListener>,
        handle: ConsumerHandle,
        kind: Callback,
        tps: &[TopicPartition],
    ) -> Running {
        let (done_tx, done) = watch::channel(false);
        let partitions = tps.to_vec();
        tokio::spawn(async move {
            match kind {
                Callback::Assigned => listener.on_assigned(&handle, &partitions).await,
                Callback::Revoked => listener.on_revoked(&handle, &partitions).await,
                Callback::Lost => listener.on_lost(&handle, &partitions).await,
            }
            let _ = done_tx.send(true);
        });
        Running {
            kind,
            partitions: tps.to_vec(),
            done,
        }
    }

    /// Resolves when the callback returned (or panicked).
    pub(super) async fn wait(mut done: watch::Receiver<bool>) {
        if done.wait_for(|d| *d).await.is_err() {
            tracing::warn!("a rebalance listener callback panicked");
        }
    }
}

/// What the heartbeats sent while a callback or a revoke-time commit ran found out; the
/// membership task acts on it once that work is over.
#[derive(Debug)]
enum HbFault {
    /// REBALANCE_IN_PROGRESS: rejoin.
    Rebalance,
    /// The member is out of its generation (fenced, or its session surely expired): its
    /// partitions are lost.
    Fenced { forget_member_id: bool },
    /// The work ran past `max.poll.interval.ms`: heartbeats stopped; leave and rejoin at the
    /// next `recv`, as when the application stops polling.
    TooSlow,
    /// FENCED_INSTANCE_ID or another fatal error.
    Fatal(Error),
}

/// Outcome of one join attempt.
enum JoinError {
    /// Try again after a backoff (coordinator moved, transient error).
    Retry(Error),
    /// Try again at once (member id changed, rebalance restarted).
    RetryNow,
    /// Stop: the error is reported to the application.
    Fatal(Error),
}

struct Member {
    shared: Arc<Shared>,
    handle: ConsumerHandle,
    listener: Option<Arc<dyn RebalanceListener>>,
    group_id: String,
    instance_id: Option<String>,
    member_id: String,
    generation: i32,
    protocol: Option<String>,
    leader: bool,
    owned: BTreeSet<TopicPartition>,
    assignors: Vec<Arc<dyn Assignor>>,
    cooperative: bool,
    /// Topics (and their partition counts) the leader assigned from.
    assigned_counts: BTreeMap<String, i32>,
    /// Every topic some member subscribes to (leader only).
    group_topics: BTreeSet<String>,
    /// Topics this member joined with.
    joined_topics: BTreeSet<String>,
    /// A cooperative revocation happened: rejoin at once.
    rejoin_now: bool,
    /// An error was reported for the current outage (report once).
    reported: bool,
    /// Dedicated coordinator connection (node id, connection).
    conn: std::sync::Mutex<Option<(i32, Connection)>>,
    /// The listener callback in progress, if any (see [`Running`]).
    running: Option<Running>,
    /// What heartbeats found out while a callback or commit ran (first fault wins).
    hb_fault: Option<HbFault>,
}

/// The membership task. Ends on shutdown (drop: no LeaveGroup) or on a close request
/// (revoke + LeaveGroup, then acknowledge).
pub(crate) async fn run(
    handle: ConsumerHandle,
    listener: Option<Arc<dyn RebalanceListener>>,
    mut close_rx: mpsc::Receiver<oneshot::Sender<()>>,
) {
    let shared = handle.shared.clone();
    let mut assignors: Vec<_> = shared
        .cfg
        .assignment_strategies
        .iter()
        .map(|&s| assignor(s))
        .collect();
    if assignors.is_empty() {
        // Only a hand-built `ConsumerConfig` can get here (the key refuses an empty list).
        assignors.push(assignor(AssignmentStrategy::Range));
    }
    let cooperative = assignors
        .iter()
        .all(|a| a.protocol() == RebalanceProtocol::Cooperative);
    let mut m = Member {
        group_id: shared.cfg.group_id.clone().unwrap_or_default(),
        instance_id: shared.cfg.group_instance_id.clone(),
        shared: shared.clone(),
        handle,
        listener,
        member_id: String::new(),
        generation: -1,
        protocol: None,
        leader: false,
        owned: BTreeSet::new(),
        assignors,
        cooperative,
        assigned_counts: BTreeMap::new(),
        group_topics: BTreeSet::new(),
        joined_topics: BTreeSet::new(),
        rejoin_now: false,
        reported: false,
        conn: std::sync::Mutex::new(None),
        running: None,
        hb_fault: None,
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
    async fn main_loop(&mut self) {
        let mut bo = Backoff::new(
            self.shared.cfg.common.retry_backoff,
            self.shared.cfg.common.retry_backoff_max,
        );
        let mut resub = self.shared.resubscribe.subscribe();
        loop {
            resub.borrow_and_update();
            // What to join with.
            let topics = match self.subscribed_topics().await {
                Ok(Some(t)) => t,
                Ok(None) => {
                    // Not subscribed: give up partitions and membership, then wait.
                    if !self.owned.is_empty() || !self.member_id.is_empty() {
                        // No rebalance is going to end: commits (the revocation's) must
                        // not wait for one.
                        self.shared.set_group_info(|g| g.rebalancing = false);
                        let owned = self.owned_list();
                        self.revoke(&owned, true).await;
                        self.send_leave("unsubscribed").await;
                        self.reset_membership();
                    }
                    let _ = resub.changed().await;
                    continue;
                }
                Err(e) => {
                    tracing::debug!(error = %e, "topic listing for the subscription failed");
                    tokio::time::sleep(bo.next_delay()).await;
                    continue;
                }
            };
            // max.poll.interval.ms: wait for the application to poll again.
            while self.poll_expired() {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            if !self.cooperative && !self.owned.is_empty() {
                let owned = self.owned_list();
                self.revoke(&owned, true).await;
            }
            // Whatever heartbeats found out during an eager revocation, the join finds out
            // again (a rebalance in progress is why we join).
            self.hb_fault = None;
            let started = crate::observe::stamp();
            match self.join(&topics).await {
                Ok(assignment) => {
                    bo.reset();
                    self.reported = false;
                    self.joined_topics = topics;
                    self.apply_assignment(assignment).await;
                    self.shared.rebalanced();
                    crate::observe::consumer_rebalanced(
                        &self.shared.cfg.common.client_id,
                        started,
                        self.owned.len(),
                    );
                }
                Err(JoinError::RetryNow) => continue,
                Err(JoinError::Retry(e)) => {
                    tracing::debug!(group = %self.group_id, error = %e, "join failed; retrying");
                    if bo.attempts() >= 5 && !self.reported {
                        // Tell the application once per outage; keep trying.
                        self.reported = true;
                        self.shared.push_error(e);
                    }
                    tokio::time::sleep(bo.next_delay()).await;
                    continue;
                }
                Err(JoinError::Fatal(e)) => {
                    self.fatal(e).await;
                    return;
                }
            }
            if let Some(fault) = self.hb_fault.take() {
                // Heartbeats sent while the listener ran say the generation moved on.
                self.rejoin_now = false;
                tracing::info!(group = %self.group_id, ?fault, "heartbeat during a rebalance callback");
                match fault {
                    HbFault::Rebalance => {}
                    HbFault::Fenced { forget_member_id } => self.fenced(forget_member_id).await,
                    HbFault::TooSlow => {
                        tracing::warn!(
                            group = %self.group_id,
                            "a rebalance callback ran past max.poll.interval.ms: leaving the group until the next recv"
                        );
                        self.leave_until_polled("rebalance callback exceeded max.poll.interval.ms")
                            .await;
                    }
                    HbFault::Fatal(e) => {
                        self.fatal(e).await;
                        return;
                    }
                }
                continue;
            }
            if self.rejoin_now {
                self.rejoin_now = false;
                continue;
            }
            match self.heartbeat_loop(&mut resub).await {
                Next::Rejoin => {}
                Next::PollTimeout => {
                    tracing::warn!(
                        group = %self.group_id,
                        "max.poll.interval.ms exceeded without recv: leaving the group until the next recv"
                    );
                    self.leave_until_polled("consumer poll timeout has expired")
                        .await;
                }
                Next::Fatal(e) => {
                    self.fatal(e).await;
                    return;
                }
            }
        }
    }

    /// Gives up the partitions (no commit: the application is not keeping up) and leaves the
    /// group (dynamic members); the main loop rejoins once the application polls again.
    async fn leave_until_polled(&mut self, reason: &str) {
        let owned = self.owned_list();
        self.revoke(&owned, false).await;
        if self.instance_id.is_none() {
            self.send_leave(reason).await;
        }
        self.reset_membership();
    }

    fn poll_expired(&self) -> bool {
        self.shared
            .since_last_poll()
            .is_some_and(|d| d > self.shared.cfg.max_poll_interval)
    }

    async fn fatal(&mut self, e: Error) {
        tracing::error!(group = %self.group_id, error = %e, "fatal group error");
        self.shared.set_group_info(|g| g.rebalancing = false);
        let owned = self.owned_list();
        self.lose(&owned).await;
        let w = {
            let mut st = self.shared.lock();
            st.fatal = Some(e);
            st.take_waiters()
        };
        Shared::wake(w);
    }

    fn reset_membership(&mut self) {
        if self.instance_id.is_none() {
            self.member_id.clear();
        }
        self.generation = -1;
        self.shared.set_group_info(|g| {
            g.generation = -1;
            g.member_id.clear();
            g.joined = false;
            g.rebalancing = false;
        });
    }

    /// The topics to join with: `None` when not subscribed.
    async fn subscribed_topics(&self) -> Result<Option<BTreeSet<String>>> {
        let spec = self.shared.lock().subscription.clone();
        match spec {
            SubscriptionSpec::None => Ok(None),
            SubscriptionSpec::Topics(t) => {
                self.shared
                    .cluster
                    .track_topics(t.iter().map(|s| s.as_str()));
                Ok(Some(t))
            }
            SubscriptionSpec::Pattern(re) => {
                let all = self.shared.cluster.fetch_all_topics().await?;
                let t: BTreeSet<String> = all
                    .iter()
                    .filter(|t| !t.is_internal && t.error.is_none() && re.is_match(&t.name))
                    .map(|t| t.name.to_string())
                    .collect();
                self.shared
                    .cluster
                    .track_topics(t.iter().map(|s| s.as_str()));
                Ok(Some(t))
            }
        }
    }

    /// The membership task's own connection to the coordinator. JoinGroup can be held by
    /// the broker for the whole rebalance and brokers answer one connection's requests in
    /// order, so membership requests never share the pooled connection that commits,
    /// offset lookups and metadata use.
    async fn coordinator(&self) -> Result<Connection> {
        let deadline = Deadline::after(self.shared.cfg.common.request_timeout);
        let (node, pooled) = self
            .shared
            .cluster
            .coordinator(CoordinatorKind::Group, &self.group_id, deadline)
            .await?;
        let cached = self
            .conn
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .filter(|(n, c)| *n == node && !c.is_closed())
            .map(|(_, c)| c.clone());
        if let Some(c) = cached {
            return Ok(c);
        }
        let conn = Connection::connect_counted(
            pooled.addr(),
            self.shared.cluster.options().connection.clone(),
            self.shared.cluster.broker_counters(node),
        )
        .await?;
        *self.conn.lock().unwrap_or_else(|p| p.into_inner()) = Some((node, conn.clone()));
        Ok(conn)
    }

    fn coordinator_gone(&self) {
        self.shared
            .cluster
            .invalidate_coordinator(CoordinatorKind::Group, &self.group_id);
        if let Some((_, c)) = self.conn.lock().unwrap_or_else(|p| p.into_inner()).take() {
            c.close();
        }
    }

    /// Classifies a join/sync/heartbeat failure.
    fn classify(&mut self, e: Error) -> JoinError {
        match e.code() {
            Some(KafkaCode::MEMBER_ID_REQUIRED) => JoinError::RetryNow,
            Some(KafkaCode::REBALANCE_IN_PROGRESS) => JoinError::RetryNow,
            Some(KafkaCode::UNKNOWN_MEMBER_ID) | Some(KafkaCode::ILLEGAL_GENERATION) => {
                JoinError::RetryNow
            }
            Some(KafkaCode::FENCED_INSTANCE_ID) => JoinError::Fatal(e),
            Some(KafkaCode::NOT_COORDINATOR) | Some(KafkaCode::COORDINATOR_NOT_AVAILABLE) => {
                self.coordinator_gone();
                JoinError::Retry(e)
            }
            _ => match e.action() {
                ErrorAction::Fatal => JoinError::Fatal(e),
                _ => {
                    if matches!(e, Error::Connection { .. } | Error::Timeout { .. }) {
                        self.coordinator_gone();
                    }
                    JoinError::Retry(e)
                }
            },
        }
    }

    fn join_timeout(&self) -> Duration {
        let c = &self.shared.cfg;
        c.common
            .request_timeout
            .max(c.max_poll_interval + Duration::from_secs(5))
    }

    /// JoinGroup + SyncGroup. Returns this member's assigned partitions.
    async fn join(&mut self, topics: &BTreeSet<String>) -> Result<Vec<TopicPartition>, JoinError> {
        let conn = self.coordinator().await.map_err(|e| self.classify(e))?;
        let version = conn
            .version_for(ApiKey::JoinGroup)
            .map_err(JoinError::Fatal)?;
        let owned: Vec<TopicPartition> = if self.cooperative {
            self.owned_list()
        } else {
            Vec::new()
        };
        let protocols = self
            .assignors
            .iter()
            .map(|a| {
                let sub = Subscription {
                    topics: topics.iter().cloned().collect(),
                    user_data: a.subscription_user_data(&owned, self.generation),
                    owned_partitions: owned.clone(),
                    generation_id: self.generation,
                    rack_id: self.shared.cfg.common.client_rack.clone(),
                };
                JoinGroupRequestProtocol::default()
                    .with_name(s(a.name()))
                    .with_metadata(sub.encode(CONSUMER_PROTOCOL_VERSION))
            })
            .collect();
        let cfg = &self.shared.cfg;
        let req = JoinGroupRequest::default()
            .with_group_id(GroupId(s(&self.group_id)))
            .with_session_timeout_ms(cfg.session_timeout.as_millis() as i32)
            .with_rebalance_timeout_ms(cfg.max_poll_interval.as_millis() as i32)
            .with_member_id(s(&self.member_id))
            .with_group_instance_id(self.instance_id.as_deref().map(s))
            .with_protocol_type(s("consumer"))
            .with_protocols(protocols);
        tracing::debug!(group = %self.group_id, member = %self.member_id, "JoinGroup");
        let resp: JoinGroupResponse = conn
            .send_version(&req, version, self.join_timeout())
            .await
            .map_err(|e| self.classify(e))?;
        match KafkaCode(resp.error_code) {
            KafkaCode::NONE => {}
            KafkaCode::MEMBER_ID_REQUIRED => {
                self.member_id = resp.member_id.to_string();
                return Err(JoinError::RetryNow);
            }
            code @ (KafkaCode::UNKNOWN_MEMBER_ID | KafkaCode::ILLEGAL_GENERATION) => {
                self.fenced(forgets_member_id(
                    ApiKey::JoinGroup,
                    code,
                    self.instance_id.is_some(),
                ))
                .await;
                return Err(JoinError::RetryNow);
            }
            code => {
                return Err(self.classify(Error::broker(
                    code,
                    format!("JoinGroup `{}`", self.group_id),
                )))
            }
        }
        self.generation = resp.generation_id;
        // The generation commits are tagged with is over (the coordinator refuses it from
        // now on), the new one is not applied yet: commits wait for it (`offsets::commit`).
        self.shared.set_group_info(|g| g.rebalancing = true);
        self.member_id = resp.member_id.to_string();
        self.protocol = resp.protocol_name.as_ref().map(|p| p.to_string());
        self.leader = resp.leader.as_str() == resp.member_id.as_str();
        tracing::debug!(
            group = %self.group_id,
            generation = self.generation,
            member = %self.member_id,
            leader = self.leader,
            protocol = ?self.protocol,
            "joined"
        );
        let assignments = if self.leader && !resp.skip_assignment {
            self.assign(&resp).await.map_err(JoinError::Fatal)?
        } else {
            if self.leader {
                // A static leader rejoining a stable group (KIP-814): no assignment to
                // compute, but it keeps watching the partition counts of the group's topics.
                let mut topics = BTreeSet::new();
                for m in &resp.members {
                    if let Ok(sub) = Subscription::decode(&m.metadata) {
                        topics.extend(sub.topics);
                    }
                }
                self.assigned_counts = self.partition_counts(&topics).await;
                self.group_topics = topics;
            }
            Vec::new()
        };
        let sync_version = conn
            .version_for(ApiKey::SyncGroup)
            .map_err(JoinError::Fatal)?;
        let req = SyncGroupRequest::default()
            .with_group_id(GroupId(s(&self.group_id)))
            .with_generation_id(self.generation)
            .with_member_id(s(&self.member_id))
            .with_group_instance_id(self.instance_id.as_deref().map(s))
            .with_protocol_type(Some(s("consumer")))
            .with_protocol_name(self.protocol.as_deref().map(s))
            .with_assignments(assignments);
        let resp = conn
            .send_version(&req, sync_version, self.join_timeout())
            .await
            .map_err(|e| self.classify(e))?;
        match KafkaCode(resp.error_code) {
            KafkaCode::NONE => {}
            KafkaCode::UNKNOWN_MEMBER_ID | KafkaCode::ILLEGAL_GENERATION => {
                let code = KafkaCode(resp.error_code);
                self.fenced(forgets_member_id(
                    ApiKey::SyncGroup,
                    code,
                    self.instance_id.is_some(),
                ))
                .await;
                return Err(JoinError::RetryNow);
            }
            code => {
                return Err(self.classify(Error::broker(
                    code,
                    format!("SyncGroup `{}`", self.group_id),
                )))
            }
        }
        let assignment = if resp.assignment.is_empty() {
            Assignment::default()
        } else {
            Assignment::decode(&resp.assignment).map_err(JoinError::Fatal)?
        };
        Ok(assignment.partitions)
    }

    /// Leader: runs the chosen assignor over every member's subscription.
    async fn assign(
        &mut self,
        resp: &JoinGroupResponse,
    ) -> Result<Vec<SyncGroupRequestAssignment>> {
        let name = self.protocol.clone().unwrap_or_default();
        let assignor = self
            .assignors
            .iter()
            .find(|a| a.name() == name)
            .cloned()
            .ok_or_else(|| {
                Error::Protocol(format!("coordinator chose unknown assignor `{name}`"))
            })?;
        let mut members = Vec::with_capacity(resp.members.len());
        let mut topics: BTreeSet<String> = BTreeSet::new();
        for m in &resp.members {
            let sub = Subscription::decode(&m.metadata)?;
            topics.extend(sub.topics.iter().cloned());
            members.push(MemberInfo {
                member_id: m.member_id.to_string(),
                group_instance_id: m.group_instance_id.as_ref().map(|g| g.to_string()),
                subscription: sub,
            });
        }
        let counts = self.partition_counts(&topics).await;
        let result = assignor.assign(&counts, &members)?;
        self.assigned_counts = counts;
        self.group_topics = topics;
        tracing::debug!(group = %self.group_id, assignor = name, ?result, "assigned");
        Ok(result
            .into_iter()
            .map(|(member, a)| {
                SyncGroupRequestAssignment::default()
                    .with_member_id(s(&member))
                    .with_assignment(a.encode(CONSUMER_PROTOCOL_VERSION))
            })
            .collect())
    }

    /// Partition counts of the topics that exist (refreshing metadata first).
    async fn partition_counts(&self, topics: &BTreeSet<String>) -> BTreeMap<String, i32> {
        let names: Vec<&str> = topics.iter().map(|s| s.as_str()).collect();
        let snap = match self.shared.cluster.refresh_topics(&names).await {
            Ok(s) => s,
            Err(_) => self.shared.cluster.metadata(),
        };
        counts_of(&snap, topics)
    }

    /// Applies the assignment received in SyncGroup.
    async fn apply_assignment(&mut self, assigned: Vec<TopicPartition>) {
        let new: BTreeSet<TopicPartition> = assigned.into_iter().collect();
        let revoked: Vec<TopicPartition> = self.owned.difference(&new).cloned().collect();
        // Partitions leaving are marked before the new generation is published: a commit
        // that waited for it must not take it for theirs (see `offsets::commit`).
        self.stop_delivering(&revoked);
        self.shared.set_group_info(|g| {
            g.generation = self.generation;
            g.member_id = self.member_id.clone();
            g.joined = true;
            g.rebalancing = false;
        });
        let added: Vec<TopicPartition> = new.difference(&self.owned).cloned().collect();
        tracing::info!(
            group = %self.group_id,
            generation = self.generation,
            ?added,
            ?revoked,
            "assignment received"
        );
        if !revoked.is_empty() {
            // Cooperative: give up only what moved, then rejoin so it can be reassigned.
            self.revoke(&revoked, true).await;
            self.rejoin_now = true;
        }
        // New partitions are not fetched before `on_assigned` returned (it may seek them);
        // their committed offsets can be looked up meanwhile (a seek discards the answer).
        let gate = self.listener.is_some();
        {
            let mut st = self.shared.lock();
            for tp in &added {
                st.part_entry(tp).assigning = gate;
            }
        }
        self.owned = new;
        self.handle.track_assigned_topics();
        self.shared.notify_work();
        self.call_listener(Callback::Assigned, &added).await;
        self.assigned(&added);
    }

    /// `on_assigned` returned: the partitions may be fetched.
    fn assigned(&self, tps: &[TopicPartition]) {
        {
            let mut st = self.shared.lock();
            for tp in tps {
                if let Some(p) = st.parts.get_mut(tp) {
                    p.assigning = false;
                }
            }
        }
        self.shared.notify_work();
    }

    /// Keeps the first fault heartbeats reported while a callback or commit ran.
    fn note_fault(&mut self, fault: Option<HbFault>) {
        if self.hb_fault.is_none() {
            self.hb_fault = fault;
        }
    }

    /// Runs `work` (a listener callback or a revoke-time commit) while heartbeating every
    /// `heartbeat.interval.ms`, as Java's heartbeat thread does: a callback longer than
    /// `session.timeout.ms` must not get the member expelled. Only `max.poll.interval.ms`
    /// bounds the work; past it heartbeats stop ([`HbFault::TooSlow`]). Returns the work's
    /// output and what the heartbeats found out, for the caller to act on afterwards.
    async fn with_heartbeats<T>(&self, work: impl Future<Output = T>) -> (T, Option<HbFault>) {
        if self.generation < 0 || self.member_id.is_empty() {
            return (work.await, None);
        }
        let mut work = std::pin::pin!(work);
        let rebalance = AtomicBool::new(false);
        let stopped = tokio::select! {
            out = &mut work => Ok(out),
            fault = self.keep_alive(&rebalance) => Err(fault),
        };
        match stopped {
            Ok(out) => (
                out,
                rebalance
                    .load(Ordering::Relaxed)
                    .then_some(HbFault::Rebalance),
            ),
            Err(fault) => (work.await, Some(fault)),
        }
    }

    /// Heartbeats until one says the member must stop (the result); a rebalance in progress
    /// is noted in `rebalance` and heartbeats go on (they keep the session alive while the
    /// coordinator waits for the member to rejoin).
    async fn keep_alive(&self, rebalance: &AtomicBool) -> HbFault {
        let cfg = &self.shared.cfg;
        let started = Instant::now();
        let mut last_ok = Instant::now();
        let mut next_hb = Instant::now() + cfg.heartbeat_interval;
        loop {
            tokio::time::sleep_until(next_hb).await;
            if started.elapsed() > cfg.max_poll_interval {
                return HbFault::TooSlow;
            }
            next_hb = Instant::now() + cfg.heartbeat_interval;
            let e = match self.heartbeat().await {
                Ok(()) => {
                    last_ok = Instant::now();
                    continue;
                }
                Err(e) => e,
            };
            match e.code() {
                Some(KafkaCode::REBALANCE_IN_PROGRESS) => {
                    last_ok = Instant::now();
                    rebalance.store(true, Ordering::Relaxed);
                }
                Some(KafkaCode::ILLEGAL_GENERATION) => {
                    return HbFault::Fenced {
                        forget_member_id: false,
                    }
                }
                Some(KafkaCode::UNKNOWN_MEMBER_ID) => {
                    return HbFault::Fenced {
                        forget_member_id: self.instance_id.is_none(),
                    }
                }
                Some(KafkaCode::FENCED_INSTANCE_ID) => return HbFault::Fatal(e),
                _ if e.action() == ErrorAction::Fatal => return HbFault::Fatal(e),
                _ => {
                    tracing::debug!(group = %self.group_id, error = %e, "heartbeat failed");
                    self.coordinator_gone();
                    next_hb = Instant::now() + cfg.common.retry_backoff;
                    if last_ok.elapsed() > cfg.session_timeout {
                        return HbFault::Fenced {
                            forget_member_id: self.instance_id.is_none(),
                        };
                    }
                }
            }
        }
    }

    /// The member is no longer in its generation (fenced, removed, or its session surely
    /// expired): every owned partition is lost (`on_lost`, no commit) and the generation is
    /// forgotten, and the member id too when `forget_member_id`, before rejoining.
    async fn fenced(&mut self, forget_member_id: bool) {
        let owned = self.owned_list();
        self.lose(&owned).await;
        if forget_member_id {
            self.member_id.clear();
        }
        self.generation = -1;
    }

    /// The owned partitions, as a list to revoke or lose.
    fn owned_list(&self) -> Vec<TopicPartition> {
        self.owned.iter().cloned().collect()
    }

    async fn heartbeat_loop(&mut self, resub: &mut tokio::sync::watch::Receiver<u64>) -> Next {
        let cfg = self.shared.cfg.clone();
        let mut meta = self.shared.cluster.watch_metadata();
        meta.borrow_and_update();
        let regex = matches!(
            self.shared.lock().subscription,
            SubscriptionSpec::Pattern(_)
        );
        let mut next_topic_check = Instant::now() + cfg.common.metadata_max_age;
        let mut next_hb = Instant::now() + cfg.heartbeat_interval;
        let mut last_ok = Instant::now();
        // The leader asks again for subscribed topics that do not exist (yet), with backoff
        // up to `retry.backoff.max.ms` (as Java's consumer does), instead of waiting for the
        // periodic refresh: a topic created after the group formed is assigned in seconds.
        let missing_backoff =
            crate::backoff::Backoff::new(cfg.common.retry_backoff, cfg.common.retry_backoff_max);
        let mut missing_attempt = 0u32;
        let mut next_missing_check = Instant::now() + missing_backoff.delay_for(0);
        loop {
            let missing = self.leader && self.group_topics.len() > self.assigned_counts.len();
            tokio::select! {
                _ = tokio::time::sleep_until(next_missing_check), if missing => {
                    missing_attempt = missing_attempt.saturating_add(1);
                    next_missing_check = Instant::now() + missing_backoff.delay_for(missing_attempt);
                    let topics: Vec<&str> = self
                        .group_topics
                        .iter()
                        .filter(|t| !self.assigned_counts.contains_key(*t))
                        .map(String::as_str)
                        .collect();
                    tracing::debug!(group = %self.group_id, ?topics, "subscribed topics missing: asking for their metadata");
                    // A new answer wakes `meta.changed()` below, which compares the counts.
                    let _ = self.shared.cluster.refresh_topics(&topics).await;
                    continue;
                }
                _ = tokio::time::sleep_until(next_hb) => {}
                r = resub.changed() => {
                    if r.is_ok() {
                        return Next::Rejoin;
                    }
                }
                _ = meta.changed() => {
                    if self.leader {
                        let snap = self.shared.cluster.metadata();
                        if counts_of(&snap, &self.group_topics) != self.assigned_counts {
                            tracing::info!(group = %self.group_id, "partition counts changed: rebalancing");
                            return Next::Rejoin;
                        }
                    }
                    continue;
                }
                _ = tokio::time::sleep_until(next_topic_check), if regex => {
                    next_topic_check = Instant::now() + cfg.common.metadata_max_age;
                    if let Ok(Some(t)) = self.subscribed_topics().await {
                        if t != self.joined_topics {
                            return Next::Rejoin;
                        }
                    }
                    continue;
                }
            }
            if self.poll_expired() {
                return Next::PollTimeout;
            }
            next_hb = Instant::now() + cfg.heartbeat_interval;
            match self.heartbeat().await {
                Ok(()) => last_ok = Instant::now(),
                Err(e) => match e.code() {
                    Some(KafkaCode::REBALANCE_IN_PROGRESS) => return Next::Rejoin,
                    Some(KafkaCode::ILLEGAL_GENERATION) | Some(KafkaCode::UNKNOWN_MEMBER_ID) => {
                        tracing::info!(group = %self.group_id, error = %e, "fenced from the group: partitions lost");
                        let code = e.code().unwrap_or(KafkaCode::NONE);
                        let forget =
                            forgets_member_id(ApiKey::Heartbeat, code, self.instance_id.is_some());
                        self.fenced(forget).await;
                        return Next::Rejoin;
                    }
                    Some(KafkaCode::FENCED_INSTANCE_ID) => return Next::Fatal(e),
                    _ => {
                        tracing::debug!(group = %self.group_id, error = %e, "heartbeat failed");
                        if e.action() == ErrorAction::Fatal {
                            return Next::Fatal(e);
                        }
                        self.coordinator_gone();
                        next_hb = Instant::now() + cfg.common.retry_backoff;
                        if last_ok.elapsed() > cfg.session_timeout {
                            // The coordinator has surely expired us by now.
                            self.fenced(self.instance_id.is_none()).await;
                            return Next::Rejoin;
                        }
                    }
                },
            }
        }
    }

    async fn heartbeat(&self) -> Result<()> {
        let conn = self.coordinator().await?;
        let req = HeartbeatRequest::default()
            .with_group_id(GroupId(s(&self.group_id)))
            .with_generation_id(self.generation)
            .with_member_id(s(&self.member_id))
            .with_group_instance_id(self.instance_id.as_deref().map(s));
        let resp = conn.send(&req).await?;
        match KafkaCode(resp.error_code).err() {
            None => Ok(()),
            Some(code) => Err(Error::broker(
                code,
                format!("Heartbeat `{}`", self.group_id),
            )),
        }
    }

    async fn send_leave(&self, reason: &str) {
        if self.instance_id.is_some() || self.member_id.is_empty() {
            return;
        }
        let r: Result<()> = async {
            let conn = self.coordinator().await?;
            let version = conn.version_for(ApiKey::LeaveGroup)?;
            let mut req = LeaveGroupRequest::default().with_group_id(GroupId(s(&self.group_id)));
            if version >= 3 {
                req = req.with_members(vec![MemberIdentity::default()
                    .with_member_id(s(&self.member_id))
                    .with_reason(Some(s(reason)))]);
            } else {
                req = req.with_member_id(s(&self.member_id));
            }
            let resp = conn
                .send_version(&req, version, self.shared.cfg.common.request_timeout)
                .await?;
            let code = resp
                .members
                .iter()
                .map(|m| m.error_code)
                .find(|c| *c != 0)
                .unwrap_or(resp.error_code);
            match KafkaCode(code).err() {
                None => Ok(()),
                Some(code) => Err(Error::broker(code, "LeaveGroup")),
            }
        }
        .await;
        match r {
            Ok(()) => {
                tracing::debug!(group = %self.group_id, member = %self.member_id, "left group")
            }
            Err(e) => tracing::debug!(group = %self.group_id, error = %e, "LeaveGroup failed"),
        }
    }

    /// On close: `on_revoked` for everything owned, then LeaveGroup (dynamic members only).
    async fn leave_on_close(&mut self) {
        // A rebalance cut short by the close does not end: commits must not wait for it.
        self.shared.set_group_info(|g| g.rebalancing = false);
        if let Some(r) = self.running.take() {
            // The close came in the middle of a callback: it runs to completion (bounded by
            // the close: past its bound the shutdown flag ends the wait), exactly once.
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
        let owned = self.owned_list();
        // The close path already committed the stored offsets.
        if !owned.is_empty() {
            if self.generation >= 0 {
                self.revoke(&owned, false).await;
            } else {
                self.lose(&owned).await;
            }
        }
        self.send_leave("the consumer is being closed").await;
        self.reset_membership();
    }
}

/// Whether a member fenced by `code` in the answer to `api` (JoinGroup, SyncGroup,
/// Heartbeat) forgets its member id before rejoining. As Java's `AbstractCoordinator`: only
/// when the coordinator does not know it (UNKNOWN_MEMBER_ID), static members included (they
/// rejoin with an empty member id and their `group.instance.id`); after ILLEGAL_GENERATION
/// the member id is still valid, only the generation is over.
/// (`_api` and `_is_static` do not matter: they are named so every call site states them.)
fn forgets_member_id(_api: ApiKey, code: KafkaCode, _is_static: bool) -> bool {
    code == KafkaCode::UNKNOWN_MEMBER_ID
}

fn counts_of(
    snap: &crate::cluster::MetadataSnapshot,
    topics: &BTreeSet<String>,
) -> BTreeMap<String, i32> {
    topics
        .iter()
        .filter_map(|t| {
            let m = snap.topic(t)?;
            (m.error.is_none() && m.partition_count() > 0).then(|| (t.clone(), m.partition_count()))
        })
        .collect()
}

impl HandBack for Member {
    fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    fn handle(&self) -> &ConsumerHandle {
        &self.handle
    }

    fn owned(&mut self) -> &mut BTreeSet<TopicPartition> {
        &mut self.owned
    }

    fn in_generation(&self) -> bool {
        self.generation >= 0
    }

    async fn commit_heartbeating(
        &mut self,
        offsets: BTreeMap<TopicPartition, (i64, Option<i32>)>,
    ) -> Result<()> {
        let deadline = Deadline::after(self.shared.cfg.common.request_timeout);
        let (r, fault) = self
            .with_heartbeats(offsets::commit(
                &self.shared,
                &offsets,
                deadline,
                offsets::By::Consumer,
            ))
            .await;
        self.note_fault(fault);
        r
    }

    /// Runs a listener callback to completion in a task of its own and waits for it; while
    /// it runs (except `on_lost`: the member is out of its generation) the membership task
    /// keeps heartbeating (see [`Member::with_heartbeats`]). If the main loop is dropped
    /// meanwhile (close), [`Member::running`] lets `leave_on_close` wait for the callback
    /// and finish its bookkeeping.
    async fn call_listener(&mut self, kind: Callback, tps: &[TopicPartition]) {
        let Some(listener) = self.listener.clone() else {
            return;
        };
        let running = Running::spawn(listener, self.handle.clone(), kind, tps);
        let done = running.done.clone();
        self.running = Some(running);
        if kind == Callback::Lost {
            Running::wait(done).await;
        } else {
            let ((), fault) = self.with_heartbeats(Running::wait(done)).await;
            self.note_fault(fault);
        }
        self.running = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The three places that learn the member was fenced agree, as in Java's
    /// `AbstractCoordinator`: the member id is forgotten exactly when the coordinator does not
    /// know it (UNKNOWN_MEMBER_ID), for static members too (they rejoin with an empty member
    /// id and their `group.instance.id`, which the coordinator maps to a new member id);
    /// ILLEGAL_GENERATION only ends the generation: the member id is still valid.
    #[test]
    fn forgets_the_member_id_only_when_the_coordinator_does_not_know_it() {
        for api in [ApiKey::JoinGroup, ApiKey::SyncGroup, ApiKey::Heartbeat] {
            for is_static in [false, true] {
                assert!(
                    forgets_member_id(api, KafkaCode::UNKNOWN_MEMBER_ID, is_static),
                    "{api:?} UNKNOWN_MEMBER_ID static={is_static}"
                );
                assert!(
                    !forgets_member_id(api, KafkaCode::ILLEGAL_GENERATION, is_static),
                    "{api:?} ILLEGAL_GENERATION static={is_static}"
                );
            }
        }
    }
}
