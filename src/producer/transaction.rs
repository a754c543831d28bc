//! Transactions (KIP-98), consumer offsets in transactions with group metadata (KIP-447) and
//! both coordinator protocols: V1 and V2 (KIP-890).
//!
//! ```no_run
//! # async fn f() -> kafka_sdk::Result<()> {
//! use kafka_sdk::producer::{Producer, ProducerRecord};
//! use kafka_sdk::ClientConfig;
//!
//! let producer = Producer::new(
//!     &ClientConfig::new()
//!         .with("bootstrap.servers", "127.0.0.1:9092")
//!         .with("transactional.id", "orders-enricher-0"),
//! )
//! .await?;
//! producer.init_transactions().await?;
//! producer.begin_transaction()?;
//! producer.send(ProducerRecord::new("orders").value("v")).await?;
//! match producer.commit_transaction().await {
//!     Ok(()) => {}
//!     Err(e) if e.txn_requires_abort() => producer.abort_transaction().await?,
//!     Err(e) => return Err(e), // fatal: create a new producer
//! }
//! # Ok(()) }
//! ```
//!
//! # State machine
//! [`TransactionState`]: `Uninitialized` -(init_transactions)-> `Ready` -(begin_transaction)->
//! `InTransaction` -(commit_transaction)-> `Committing` -> `Ready`, or -(abort_transaction)->
//! `Aborting` -> `Ready`. A failed record or transactional request moves `InTransaction` /
//! `Committing` to `AbortableError` (only `abort_transaction` is allowed; every other call
//! returns the error that caused it); a fatal error (fenced, not authorised, ...) moves any
//! state to `FatalError`, and every later call returns that error: the producer must be
//! recreated. A call in the wrong state fails with [`Error::State`] naming the state.
//! A commit or abort that ran out of time (`max.block.ms`) stays `Committing` / `Aborting`
//! and may be called again; it resumes where it stopped.
//!
//! # Protocol
//! - `init_transactions`: FindCoordinator(transaction) + InitProducerId(transactional id,
//!   `transaction.timeout.ms`); the coordinator fences older producers of the same id and
//!   aborts their open transaction. The protocol is chosen here: V2 when the coordinator
//!   finalizes `transaction.version >= 2` and speaks Produce v12 and EndTxn v5, else V1.
//! - Produce requests carry the transactional id and transactional batches. V1 caps Produce
//!   at v11 and sends AddPartitionsToTxn (from the sender task, batched) before the first
//!   batch of each partition new to the transaction; no batch of a partition is sent before
//!   its add succeeded. V2 sends no AddPartitionsToTxn: the partition leader adds it.
//! - `send_offsets_to_transaction`: V1 = AddOffsetsToTxn (transaction coordinator), then
//!   TxnOffsetCommit (group coordinator, <= v4); V2 = TxnOffsetCommit v5 only, like the Java
//!   client (`TransactionManager.sendOffsetsToTransaction`).
//! - commit: flush (every record of the transaction acknowledged; one that failed, or one
//!   `send` refused, makes the commit fail as abortable), then EndTxn(commit). abort: records not yet sent fail, the
//!   ones in flight are awaited, then EndTxn(abort). EndTxn is skipped when nothing reached
//!   the coordinator (V1: no partition or offsets added; V2: no send and no offsets).
//! - Epochs: V2's EndTxn (v5) returns the next producer id and epoch, which every
//!   transaction then uses (sequences restart at 0). V1 keeps the epoch, except after an
//!   abort of a transaction in which a sequenced batch failed (a sequence gap): then
//!   InitProducerId with the current id and epoch bumps it (KIP-360).
//! - Errors: [`Error::txn_action`] classifies; retriable ones (coordinator moves,
//!   CONCURRENT_TRANSACTIONS, ...) are retried inside the call with backoff until
//!   `max.block.ms`.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use kafka_protocol::messages::add_partitions_to_txn_request::AddPartitionsToTxnTopic;
use kafka_protocol::messages::txn_offset_commit_request::{
    TxnOffsetCommitRequestPartition, TxnOffsetCommitRequestTopic,
};
use kafka_protocol::messages::{
    AddOffsetsToTxnRequest, AddPartitionsToTxnRequest, ApiKey, EndTxnRequest, GroupId, ProducerId,
    TopicName, TransactionalId, TxnOffsetCommitRequest,
};
use kafka_protocol::protocol::StrBytes;

use crate::backoff::Deadline;
use crate::cluster::{Cluster, CoordinatorKind};
use crate::connection::Connection;
use crate::error::{Error, KafkaCode, Result, TxnAction};
use crate::types::TopicPartition;

use super::accumulator::Accumulator;
use super::idempotence::{init_producer_id, Initiator};
#[cfg(doc)]
use super::Producer;
use crate::config::ProducerConfig;

/// Topic and partition as the sender keys them.
pub(crate) type Tp = (Arc<str>, i32);

/// The state of a transactional producer (see the [module docs](self)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransactionState {
    /// `init_transactions` has not completed yet.
    Uninitialized,
    /// Initialised, no transaction open.
    Ready,
    /// A transaction is open: `send` and `send_offsets_to_transaction` are allowed.
    InTransaction,
    /// `commit_transaction` is running (or ran out of time and may be called again).
    Committing,
    /// `abort_transaction` is running (or ran out of time and may be called again).
    Aborting,
    /// The transaction cannot commit; only `abort_transaction` is allowed.
    AbortableError,
    /// The producer is unusable and must be recreated.
    FatalError,
}

pub use crate::types::ConsumerGroupMetadata;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PartStatus {
    /// V1: must be added with AddPartitionsToTxn before its batches are sent.
    Pending,
    /// V1: an AddPartitionsToTxn carrying it is in flight.
    Adding,
    /// Part of the transaction: its batches may be sent.
    Added,
}

#[derive(Debug)]
struct Inner {
    state: TransactionState,
    /// The error behind `AbortableError` / `FatalError`.
    error: Option<Error>,
    pid: i64,
    epoch: i16,
    v2: bool,
    parts: HashMap<Tp, PartStatus>,
    /// Something of this transaction reached (or, V2, may have reached) the coordinator:
    /// EndTxn is needed.
    started: bool,
    /// V1: a sequenced batch failed; bump the epoch after the abort.
    bump_required: bool,
    /// AddPartitionsToTxn requests in flight.
    adding: usize,
    /// Incremented per transaction; stale AddPartitionsToTxn results are ignored.
    txn_seq: u64,
}

/// Transaction state shared by the [`Producer`] handles and the sender task (std mutex,
/// never held across an `.await`).
#[derive(Debug)]
pub(crate) struct Txn {
    pub(crate) id: String,
    timeout: Duration,
    inner: Mutex<Inner>,
    /// Serialises init/commit/abort/send_offsets.
    op: tokio::sync::Mutex<()>,
    /// `send` calls between their state check and the end of their append.
    appending: AtomicUsize,
}

/// Held by `send` from its state check until the record is in the accumulator.
pub(crate) struct AppendGuard<'a>(&'a Txn);

impl Drop for AppendGuard<'_> {
    fn drop(&mut self) {
        self.0.appending.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Txn {
    pub(crate) fn new(id: String, timeout: Duration) -> Txn {
        Txn {
            id,
            timeout,
            inner: Mutex::new(Inner {
                state: TransactionState::Uninitialized,
                error: None,
                pid: -1,
                epoch: -1,
                v2: false,
                parts: HashMap::new(),
                started: false,
                bump_required: false,
                adding: 0,
                txn_seq: 0,
            }),
            op: tokio::sync::Mutex::new(()),
            appending: AtomicUsize::new(0),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn state(&self) -> TransactionState {
        self.lock().state
    }

    /// Whether the V2 protocol is in use (known after `init_transactions`).
    pub(crate) fn is_v2(&self) -> bool {
        self.lock().v2
    }

    pub(crate) fn pid_epoch(&self) -> (i64, i16) {
        let g = self.lock();
        (g.pid, g.epoch)
    }

    /// `send`'s early check (before waiting for metadata or memory).
    pub(crate) fn check_send(&self) -> Result<()> {
        let g = self.lock();
        match g.state {
            TransactionState::InTransaction => Ok(()),
            s => Err(refuse(&g, s, "send")),
        }
    }

    /// `send`'s final check, atomically with registering the partition; the guard keeps a
    /// commit or abort from flushing before the append is done.
    pub(crate) fn begin_append(&self, topic: &Arc<str>, partition: i32) -> Result<AppendGuard<'_>> {
        let mut g = self.lock();
        if g.state != TransactionState::InTransaction {
            let s = g.state;
            return Err(refuse(&g, s, "send"));
        }
        let v2 = g.v2;
        let status = g.parts.entry((topic.clone(), partition)).or_insert(if v2 {
            PartStatus::Added
        } else {
            PartStatus::Pending
        });
        if v2 {
            *status = PartStatus::Added;
            g.started = true;
        }
        self.appending.fetch_add(1, Ordering::SeqCst);
        Ok(AppendGuard(self))
    }

    /// Waits until no `send` is between its state check and its append.
    async fn wait_appends(&self) {
        while self.appending.load(Ordering::SeqCst) > 0 {
            tokio::task::yield_now().await;
        }
    }

    /// Sender: may a batch of `tp` be sent now?
    pub(crate) fn may_send(&self, tp: &Tp) -> bool {
        let g = self.lock();
        g.state != TransactionState::FatalError && g.parts.get(tp) == Some(&PartStatus::Added)
    }

    /// Sender: the error to fail batches not yet sent with, when the transaction will not
    /// commit (abortable or fatal error, or aborting).
    pub(crate) fn drop_undrained(&self) -> Option<Error> {
        let g = self.lock();
        match g.state {
            TransactionState::AbortableError | TransactionState::FatalError => Some(
                g.error
                    .clone()
                    .unwrap_or_else(|| Error::State(format!("transaction in state {:?}", g.state))),
            ),
            TransactionState::Aborting => Some(aborted_error()),
            _ => None,
        }
    }

    /// Sender (V1): the partitions to add now (marked as being added), with the producer
    /// id, epoch and transaction number to add them under.
    pub(crate) fn take_partitions_to_add(&self) -> Option<(Vec<Tp>, i64, i16, u64)> {
        let mut g = self.lock();
        if g.v2
            || !matches!(
                g.state,
                TransactionState::InTransaction | TransactionState::Committing
            )
        {
            return None;
        }
        let tps: Vec<Tp> = g
            .parts
            .iter_mut()
            .filter(|(_, s)| **s == PartStatus::Pending)
            .map(|(tp, s)| {
                *s = PartStatus::Adding;
                tp.clone()
            })
            .collect();
        if tps.is_empty() {
            return None;
        }
        g.adding += 1;
        Some((tps, g.pid, g.epoch, g.txn_seq))
    }

    /// Sender (V1): outcome of an AddPartitionsToTxn.
    pub(crate) fn partitions_added(&self, tps: &[Tp], txn_seq: u64, r: Result<()>) {
        let mut g = self.lock();
        g.adding = g.adding.saturating_sub(1);
        if g.txn_seq != txn_seq {
            return;
        }
        match r {
            Ok(()) => {
                g.started = true;
                for tp in tps {
                    g.parts.insert(tp.clone(), PartStatus::Added);
                }
                tracing::debug!(transactional_id = %self.id, partitions = tps.len(), "partitions added to the transaction");
            }
            Err(e) => {
                for tp in tps {
                    g.parts.insert(tp.clone(), PartStatus::Pending);
                }
                fail_txn(&mut g, &self.id, e);
            }
        }
    }

    /// `send`: a record of the open transaction was refused before it reached a batch (its
    /// topic does not exist, it is too large, no room for it within `max.block.ms`, ...).
    /// The transaction would commit without it, so it becomes abortable (Java's
    /// `maybeTransitionToErrorState`; librdkafka fails the commit after a failed delivery).
    pub(crate) fn record_refused(&self, err: &Error) {
        let mut g = self.lock();
        if g.state == TransactionState::InTransaction {
            tracing::info!(transactional_id = %self.id, error = %err, "a record of the transaction was refused: it must be aborted");
            g.state = TransactionState::AbortableError;
            g.error = Some(err.clone());
        }
    }

    /// Sender: a batch of the transaction failed for good.
    pub(crate) fn batch_failed(&self, err: &Error) {
        let mut g = self.lock();
        fail_txn(&mut g, &self.id, err.clone());
    }

    /// Sender: a batch that had a sequence failed (V1 then bumps the epoch on abort).
    pub(crate) fn sequence_gap(&self) {
        self.lock().bump_required = true;
    }
}

fn aborted_error() -> Error {
    Error::State("record not delivered: its transaction was aborted".into())
}

/// Moves the transaction to `AbortableError` or `FatalError` (by [`Error::txn_action`]).
/// Errors while aborting are ignored (Java does the same): the abort goes on.
fn fail_txn(g: &mut Inner, id: &str, e: Error) {
    use TransactionState as S;
    if e.txn_action() == TxnAction::Fatal {
        if g.state != S::FatalError {
            tracing::warn!(transactional_id = %id, error = %e, "transactional producer: fatal error");
            g.state = S::FatalError;
            g.error = Some(e);
        }
        return;
    }
    match g.state {
        S::InTransaction | S::Committing => {
            tracing::info!(transactional_id = %id, error = %e, "transaction must be aborted");
            g.state = S::AbortableError;
            g.error = Some(e);
        }
        _ => {}
    }
}

/// The error for a call refused in state `s`: the stored error in the error states (so
/// [`Error::is_fatal`] / [`Error::txn_requires_abort`] keep telling what to do), else a
/// state error naming the state.
fn refuse(g: &Inner, s: TransactionState, op: &str) -> Error {
    match (&g.error, s) {
        (Some(e), TransactionState::AbortableError | TransactionState::FatalError) => {
            let advice = if s == TransactionState::FatalError {
                "the producer is unusable; create a new one"
            } else {
                "abort the transaction"
            };
            match e {
                Error::Broker { code, context } => Error::Broker {
                    code: *code,
                    context: format!(
                        "{op} refused in transaction state {s:?} ({advice}) after: {context}"
                    ),
                },
                other => other.clone(),
            }
        }
        _ => Error::State(format!("cannot {op} in transaction state {s:?}")),
    }
}

/// Runs one coordinator request under the cluster's [`RetryPolicy`]: until it succeeds, fails
/// for good, or `deadline` (`max.block.ms`) passes (then the last error). Everything
/// [`Error::txn_action`] calls `Retry` is retried (every transactional request is safe to
/// repeat), with the coordinator looked up again when it may have moved; no metadata refresh.
///
/// [`RetryPolicy`]: crate::cluster::RetryPolicy
async fn coordinator_call<T, F, Fut>(
    cluster: &Cluster,
    s: &ProducerConfig,
    kind: CoordinatorKind,
    key: &str,
    what: &str,
    deadline: Deadline,
    op: F,
) -> Result<T>
where
    F: FnMut(Connection) -> Fut,
    Fut: Future<Output = Result<T>>,
{
    cluster
        .retry_policy(what, deadline)
        .refresh_metadata(false)
        .bounded_by("max.block.ms", s.max_block)
        .run_on_coordinator(kind, key, op)
        .await
}

fn check(code: i16, what: impl FnOnce() -> String) -> Result<()> {
    match KafkaCode(code).err() {
        Some(code) => Err(Error::broker(code, what())),
        None => Ok(()),
    }
}

fn str_bytes(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_string())
}

/// InitProducerId for a transactional id (`current`: the id and epoch to bump, KIP-360).
/// Returns the producer id, epoch and whether the coordinator speaks transactions V2.
async fn init_pid(
    cluster: &Cluster,
    s: &ProducerConfig,
    txn: &Txn,
    current: Option<(i64, i16)>,
    deadline: Deadline,
) -> Result<(i64, i16, bool)> {
    coordinator_call(
        cluster,
        s,
        CoordinatorKind::Transaction,
        &txn.id,
        "InitProducerId",
        deadline,
        |conn| async move {
            let who = Initiator::Transactional {
                id: &txn.id,
                timeout: txn.timeout,
            };
            let (pid, epoch) =
                init_producer_id(&conn, who, current, s.common.request_timeout).await?;
            let versions = conn.versions();
            let v2 = versions.feature("transaction.version").unwrap_or(0) >= 2
                && versions.negotiate(ApiKey::Produce).is_ok_and(|v| v >= 12)
                && versions.negotiate(ApiKey::EndTxn).is_ok_and(|v| v >= 5);
            Ok((pid, epoch, v2))
        },
    )
    .await
}

/// EndTxn; returns the producer id and epoch to use next (V2: the coordinator's new ones).
async fn end_txn(
    cluster: &Cluster,
    s: &ProducerConfig,
    txn: &Txn,
    commit: bool,
    deadline: Deadline,
) -> Result<(i64, i16)> {
    let (pid, epoch, v2) = {
        let g = txn.lock();
        (g.pid, g.epoch, g.v2)
    };
    let what = if commit {
        "EndTxn(commit)"
    } else {
        "EndTxn(abort)"
    };
    coordinator_call(
        cluster,
        s,
        CoordinatorKind::Transaction,
        &txn.id,
        what,
        deadline,
        |conn| async move {
            let v = conn.version_for(ApiKey::EndTxn)?;
            let v = if v2 { v } else { v.min(4) };
            let req = EndTxnRequest::default()
                .with_transactional_id(TransactionalId(str_bytes(&txn.id)))
                .with_producer_id(ProducerId(pid))
                .with_producer_epoch(epoch)
                .with_committed(commit);
            let resp = conn.send_version(&req, v, s.common.request_timeout).await?;
            check(resp.error_code, || {
                format!("{what} for transactional id `{}`", txn.id)
            })?;
            if v >= 5 && resp.producer_id.0 >= 0 {
                Ok((resp.producer_id.0, resp.producer_epoch))
            } else {
                Ok((pid, epoch))
            }
        },
    )
    .await
}

/// V1: AddPartitionsToTxn (v0..=v3, the client versions) for `tps`, retried until
/// `deadline`. Called by the sender task.
pub(crate) async fn add_partitions(
    cluster: Cluster,
    s: Arc<ProducerConfig>,
    txn: Arc<Txn>,
    tps: Vec<Tp>,
    pid: i64,
    epoch: i16,
) -> Result<()> {
    let deadline = Deadline::after(s.max_block);
    let mut by_topic: HashMap<Arc<str>, Vec<i32>> = HashMap::new();
    for (t, p) in &tps {
        by_topic.entry(t.clone()).or_default().push(*p);
    }
    let topics: Vec<AddPartitionsToTxnTopic> = by_topic
        .iter()
        .map(|(t, ps)| {
            AddPartitionsToTxnTopic::default()
                .with_name(TopicName(str_bytes(t)))
                .with_partitions(ps.clone())
        })
        .collect();
    let topics = &topics;
    let txn = &txn;
    let s = &*s;
    coordinator_call(
        &cluster,
        s,
        CoordinatorKind::Transaction,
        &txn.id,
        "AddPartitionsToTxn",
        deadline,
        |conn| async move {
            let v = conn.version_for(ApiKey::AddPartitionsToTxn)?.min(3);
            let req = AddPartitionsToTxnRequest::default()
                .with_v3_and_below_transactional_id(TransactionalId(str_bytes(&txn.id)))
                .with_v3_and_below_producer_id(ProducerId(pid))
                .with_v3_and_below_producer_epoch(epoch)
                .with_v3_and_below_topics(topics.clone());
            let resp = conn.send_version(&req, v, s.common.request_timeout).await?;
            // OPERATION_NOT_ATTEMPTED (55) only says another partition failed.
            let mut first: Option<Error> = None;
            for t in &resp.results_by_topic_v3_and_below {
                for p in &t.results_by_partition {
                    let code = KafkaCode(p.partition_error_code);
                    if code.is_ok() || code.0 == 55 {
                        continue;
                    }
                    let e = Error::broker(
                        code,
                        format!(
                            "AddPartitionsToTxn {}-{} for transactional id `{}`",
                            t.name.0.as_str(),
                            p.partition_index,
                            txn.id
                        ),
                    );
                    // Report the most severe: fatal over abortable over retriable.
                    let rank = |e: &Error| match e.txn_action() {
                        TxnAction::Fatal => 2,
                        TxnAction::Abortable => 1,
                        TxnAction::Retry => 0,
                    };
                    if first.as_ref().is_none_or(|f| rank(&e) > rank(f)) {
                        first = Some(e);
                    }
                }
            }
            match first {
                Some(e) => Err(e),
                None => Ok(()),
            }
        },
    )
    .await
}

/// The transactional calls; [`Producer`]'s public methods (`init_transactions`, ...) delegate
/// here, and their docs say what each does.
impl Txn {
    /// [`Producer::init_transactions`].
    pub(crate) async fn init(&self, cluster: &Cluster, s: &ProducerConfig) -> Result<()> {
        let txn = self;
        let _op = txn.op.lock().await;
        {
            let g = txn.lock();
            if g.state != TransactionState::Uninitialized {
                return Err(refuse(&g, g.state, "init_transactions"));
            }
        }
        let deadline = Deadline::after(s.max_block);
        match init_pid(cluster, s, txn, None, deadline).await {
            Ok((pid, epoch, v2)) => {
                let mut g = txn.lock();
                g.pid = pid;
                g.epoch = epoch;
                g.v2 = v2;
                g.state = TransactionState::Ready;
                tracing::info!(transactional_id = %txn.id, producer_id = pid, epoch, v2, "transactions initialised");
                Ok(())
            }
            Err(e) => {
                if e.txn_action() == TxnAction::Fatal {
                    let mut g = txn.lock();
                    g.state = TransactionState::FatalError;
                    g.error = Some(e.clone());
                }
                Err(e)
            }
        }
    }

    /// [`Producer::begin_transaction`].
    pub(crate) fn begin(&self) -> Result<()> {
        let txn = self;
        let mut g = txn.lock();
        if g.state != TransactionState::Ready {
            return Err(refuse(&g, g.state, "begin_transaction"));
        }
        g.state = TransactionState::InTransaction;
        g.parts.clear();
        g.started = false;
        g.bump_required = false;
        g.error = None;
        g.txn_seq += 1;
        Ok(())
    }

    /// [`Producer::send_offsets_to_transaction`].
    pub(crate) async fn send_offsets(
        &self,
        cluster: &Cluster,
        s: &ProducerConfig,
        offsets: impl IntoIterator<Item = (TopicPartition, i64)>,
        group: &ConsumerGroupMetadata,
    ) -> Result<()> {
        let txn = self;
        let _op = txn.op.lock().await;
        let (pid, epoch, v2) = {
            let g = txn.lock();
            if g.state != TransactionState::InTransaction {
                return Err(refuse(&g, g.state, "send_offsets_to_transaction"));
            }
            (g.pid, g.epoch, g.v2)
        };
        let mut by_topic: HashMap<Arc<str>, Vec<TxnOffsetCommitRequestPartition>> = HashMap::new();
        for (tp, offset) in offsets {
            if offset < 0 {
                return Err(Error::InvalidArgument(format!(
                    "cannot commit negative offset {offset} for {tp}"
                )));
            }
            by_topic.entry(tp.topic.clone()).or_default().push(
                TxnOffsetCommitRequestPartition::default()
                    .with_partition_index(tp.partition)
                    .with_committed_offset(offset)
                    .with_committed_leader_epoch(-1)
                    .with_committed_metadata(Some(StrBytes::from_static_str(""))),
            );
        }
        if by_topic.is_empty() {
            return Ok(());
        }
        let topics: Vec<TxnOffsetCommitRequestTopic> = by_topic
            .into_iter()
            .map(|(t, ps)| {
                TxnOffsetCommitRequestTopic::default()
                    .with_name(TopicName(str_bytes(&t)))
                    .with_partitions(ps)
            })
            .collect();
        let deadline = Deadline::after(s.max_block);
        let r = async {
            if v2 {
                txn.lock().started = true;
            } else {
                coordinator_call(
                    cluster,
                    s,
                    CoordinatorKind::Transaction,
                    &txn.id,
                    "AddOffsetsToTxn",
                    deadline,
                    |conn| async move {
                        let req = AddOffsetsToTxnRequest::default()
                            .with_transactional_id(TransactionalId(str_bytes(&txn.id)))
                            .with_producer_id(ProducerId(pid))
                            .with_producer_epoch(epoch)
                            .with_group_id(GroupId(str_bytes(&group.group_id)));
                        let resp = conn.send(&req).await?;
                        check(resp.error_code, || {
                            format!(
                                "AddOffsetsToTxn group `{}` for transactional id `{}`",
                                group.group_id, txn.id
                            )
                        })
                    },
                )
                .await?;
                txn.lock().started = true;
            }
            let topics = &topics;
            coordinator_call(
                cluster,
                s,
                CoordinatorKind::Group,
                &group.group_id,
                "TxnOffsetCommit",
                deadline,
                |conn| async move {
                    let v = conn.version_for(ApiKey::TxnOffsetCommit)?;
                    let v = if v2 { v } else { v.min(4) };
                    let req = TxnOffsetCommitRequest::default()
                        .with_transactional_id(TransactionalId(str_bytes(&txn.id)))
                        .with_group_id(GroupId(str_bytes(&group.group_id)))
                        .with_producer_id(ProducerId(pid))
                        .with_producer_epoch(epoch)
                        .with_generation_id(group.generation_id)
                        .with_member_id(str_bytes(&group.member_id))
                        .with_group_instance_id(group.group_instance_id.as_deref().map(str_bytes))
                        .with_topics(topics.clone());
                    let resp = conn.send_version(&req, v, s.common.request_timeout).await?;
                    for t in &resp.topics {
                        for p in &t.partitions {
                            check(p.error_code, || {
                                format!(
                                    "TxnOffsetCommit {}-{} for group `{}`",
                                    t.name.0.as_str(),
                                    p.partition_index,
                                    group.group_id
                                )
                            })?;
                        }
                    }
                    Ok(())
                },
            )
            .await
        }
        .await;
        if let Err(e) = &r {
            // Offsets in an unknown state (even after a retriable failure ran out of time):
            // this transaction must not commit.
            fail_txn(&mut txn.lock(), &txn.id, e.clone());
        }
        r
    }

    /// [`Producer::commit_transaction`] (`commit`) and [`Producer::abort_transaction`].
    pub(crate) async fn end(
        &self,
        commit: bool,
        cluster: &Cluster,
        s: &ProducerConfig,
        acc: &Accumulator,
    ) -> Result<()> {
        use TransactionState as S;
        let txn = self;
        let _op = txn.op.lock().await;
        let op = if commit {
            "commit_transaction"
        } else {
            "abort_transaction"
        };
        {
            let mut g = txn.lock();
            match (commit, g.state) {
                (true, S::InTransaction) => g.state = S::Committing,
                (false, S::InTransaction | S::AbortableError) => g.state = S::Aborting,
                (true, S::Committing) | (false, S::Aborting) => {} // resume after a timeout
                (_, s) => return Err(refuse(&g, s, op)),
            }
        }
        let deadline = Deadline::after(s.max_block);
        // Every record of the transaction must be in the accumulator before the flush.
        txn.wait_appends().await;
        acc.wake();
        if !commit {
            // The sender fails what it has not sent; wait for in-flight AddPartitionsToTxn too
            // (its late result must not land in the next transaction).
            while txn.lock().adding > 0 {
                if !deadline.sleep(Duration::from_millis(5)).await {
                    return Err(Error::timeout(
                        "abort_transaction: waiting for AddPartitionsToTxn (max.block.ms)",
                        s.max_block,
                        true,
                    ));
                }
            }
        }
        if tokio::time::timeout_at(deadline.instant(), acc.flush())
            .await
            .is_err()
        {
            return Err(Error::timeout(
                format!("{op}: waiting for the transaction's records (max.block.ms)"),
                s.max_block,
                true,
            ));
        }
        let (started, v2, bump) = {
            let g = txn.lock();
            if commit && g.state != S::Committing {
                // A record failed (AbortableError) or the producer was fenced (FatalError).
                return Err(refuse(&g, g.state, op));
            }
            if g.state == S::FatalError {
                return Err(refuse(&g, g.state, op));
            }
            (g.started, g.v2, g.bump_required)
        };
        let mut next = txn.pid_epoch();
        if started {
            match end_txn(cluster, s, txn, commit, deadline).await {
                Ok(pe) => next = pe,
                Err(e) => {
                    let mut g = txn.lock();
                    match e.txn_action() {
                        // Ran out of time: stay Committing/Aborting; the call may be repeated.
                        TxnAction::Retry => {}
                        TxnAction::Fatal => fail_txn(&mut g, &txn.id, e.clone()),
                        TxnAction::Abortable => {
                            g.state = S::AbortableError;
                            g.error = Some(e.clone());
                        }
                    }
                    return Err(e);
                }
            }
        }
        if !commit && !v2 && bump {
            // V1: a sequenced batch failed, so its partition has a sequence gap; a new epoch
            // resets the sequences (KIP-360) and fences any late duplicate.
            match init_pid(cluster, s, txn, Some(next), deadline).await {
                Ok((pid, epoch, _)) => {
                    tracing::info!(transactional_id = %txn.id, producer_id = pid, epoch, "producer epoch bumped after abort");
                    next = (pid, epoch);
                }
                Err(e) => {
                    if e.txn_action() == TxnAction::Fatal {
                        fail_txn(&mut txn.lock(), &txn.id, e.clone());
                    }
                    return Err(e);
                }
            }
        }
        let mut g = txn.lock();
        if g.state == S::FatalError {
            return Err(refuse(&g, g.state, op));
        }
        g.pid = next.0;
        g.epoch = next.1;
        g.state = S::Ready;
        g.parts.clear();
        g.started = false;
        g.bump_required = false;
        g.error = None;
        drop(g);
        // The sender picks up the new epoch (and resets sequences) on its next pass.
        acc.wake();
        tracing::debug!(transactional_id = %txn.id, commit, producer_id = next.0, epoch = next.1, "transaction ended");
        Ok(())
    }
}
