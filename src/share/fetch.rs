//! The fetch driver: ShareFetch and ShareAcknowledge with one share session per leader
//! broker (KIP-932).
//!
//! One task, in rounds. A round starts when a `recv` waits on an empty buffer (then every
//! leader of an assigned partition gets a ShareFetch, with the acknowledgements for its
//! partitions piggy-backed), or when acknowledgements are pending (a ShareAcknowledge per
//! leader). The requests of a round go out concurrently, each on the driver's own
//! connection to that broker (a ShareFetch may wait `fetch.max.wait.ms` there).
//!
//! A share session per broker: the first request (epoch 0) opens it and lists every
//! partition; later ones (epoch 1, 2, ... wrapping to 1) list only the partitions added or
//! carrying acknowledgements, and forget those no longer assigned. Acknowledgements cannot
//! open a session: they wait for the next round once it is open. Any request error resets
//! the session (epoch 0) and puts its acknowledgements back in the queue: the broker applied
//! none of them, or (connection lost in flight) applying one again only yields
//! INVALID_RECORD_STATE. Closing sends the last acknowledgements with epoch -1.
//!
//! The acquired ranges of a response decide what is handed out: records outside them are
//! dropped, and acquired offsets without a record (transaction markers, compacted records)
//! are acknowledged as gaps so the share-partition can move on.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use kafka_protocol::messages::{
    share_acknowledge_request as sa, share_fetch_request as sf, share_fetch_response, ApiKey,
    ShareAcknowledgeRequest, ShareFetchRequest,
};
use kafka_protocol::protocol::StrBytes;
use tokio::sync::oneshot;
use uuid::Uuid;

use super::record::{ack_batches, Part, ShareRecord, GAP};
use super::state::{wake, CommitResults, Shared};
use crate::backoff::Backoff;
use crate::connection::Connection;
use crate::consumer::Message;
use crate::error::{Error, ErrorAction, KafkaCode, Result};
use crate::record::{self, DecodeOptions};
use crate::types::TopicPartition;

type Acks = BTreeMap<Part, BTreeMap<i64, i8>>;

/// `group.share.record.lock.duration.ms`'s default, used when a response states no lock
/// duration.
const DEFAULT_LOCK_MS: u64 = 30_000;

/// One share session with one broker.
#[derive(Default)]
struct Session {
    /// Next epoch to send: 0 opens a session.
    epoch: i32,
    /// Partitions in the session.
    parts: BTreeSet<Part>,
    /// The driver's own connection to the broker.
    conn: Option<Connection>,
}

impl Session {
    fn advance(&mut self) {
        self.epoch = if self.epoch == i32::MAX {
            1
        } else {
            self.epoch + 1
        };
    }

    fn reset(&mut self, drop_connection: bool) {
        self.epoch = 0;
        self.parts.clear();
        if drop_connection {
            self.conn = None;
        }
    }
}

/// What one round does.
struct Plan {
    fetch: bool,
    parts: BTreeSet<Part>,
    unresolved: bool,
    acks: Acks,
    /// `ack_seq` when the acknowledgements were taken.
    acks_upto: u64,
}

/// What one broker's requests of a round brought back.
#[derive(Default)]
struct Outcome {
    records: Vec<ShareRecord>,
    gaps: Acks,
    ack_results: CommitResults,
    /// Acknowledgements to send again (their request failed or could not be sent yet).
    requeue: Acks,
    errors: Vec<Error>,
    refresh: bool,
    /// A request went out (the round waited for a broker, so the next can follow at once).
    sent: bool,
}

/// Runs until `close` asks for the last round (and gets its answer) or the consumer is
/// dropped.
pub(crate) async fn run(shared: Arc<Shared>, mut close: oneshot::Receiver<oneshot::Sender<()>>) {
    let mut sessions: HashMap<i32, Session> = HashMap::new();
    let opts = &shared.cluster.options().connection;
    let mut backoff = Backoff::new(
        opts.reconnect_backoff.max(Duration::from_millis(50)),
        opts.reconnect_backoff_max.max(Duration::from_millis(500)),
    );
    loop {
        // Decompression buffers unused for a while go back to the allocator (at most once a
        // second; a round ends at least every few seconds, also when idle).
        record::out_pool::trim(std::time::Instant::now());
        match close.try_recv() {
            Ok(done) => {
                last_round(&shared, &mut sessions).await;
                let _ = done.send(());
                return;
            }
            Err(oneshot::error::TryRecvError::Closed) => return,
            Err(oneshot::error::TryRecvError::Empty) => {}
        }
        let notified = shared.work.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        let plan = plan_round(&shared);
        let Some(plan) = plan else {
            tokio::select! {
                _ = notified => {}
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                r = &mut close => {
                    if let Ok(done) = r {
                        last_round(&shared, &mut sessions).await;
                        let _ = done.send(());
                    }
                    return;
                }
            }
            continue;
        };
        if plan.unresolved {
            // An assigned topic id is not in the metadata yet.
            let _ = shared.cluster.refresh().await;
        }
        let failed = round(&shared, &mut sessions, plan).await;
        if failed {
            let delay = backoff.next_delay();
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                r = &mut close => {
                    if let Ok(done) = r {
                        last_round(&shared, &mut sessions).await;
                        let _ = done.send(());
                    }
                    return;
                }
            }
        } else {
            backoff.reset();
        }
    }
}

/// The assigned partitions with their names (from the metadata), and whether an id is
/// unknown there.
fn assigned_parts(shared: &Shared, assignment: &HashMap<Uuid, Vec<i32>>) -> (BTreeSet<Part>, bool) {
    let snap = shared.cluster.metadata();
    let mut parts = BTreeSet::new();
    let mut unresolved = false;
    for (id, ps) in assignment {
        match snap.topics.values().find(|t| t.id == *id) {
            Some(t) => {
                for p in ps {
                    parts.insert(Part {
                        tp: TopicPartition::new(t.name.clone(), *p),
                        id: *id,
                    });
                }
            }
            None => unresolved = true,
        }
    }
    (parts, unresolved)
}

fn plan_round(shared: &Shared) -> Option<Plan> {
    let mut st = shared.lock();
    let (parts, unresolved) = assigned_parts(shared, &st.assignment);
    let fetch = st.demand && st.buffer.is_empty() && !parts.is_empty();
    if !fetch && st.pending.is_empty() {
        if unresolved && st.demand {
            return Some(Plan {
                fetch: false,
                parts,
                unresolved,
                acks: Acks::new(),
                acks_upto: st.ack_done,
            });
        }
        return None;
    }
    Some(Plan {
        fetch,
        parts,
        unresolved,
        acks: std::mem::take(&mut st.pending),
        acks_upto: st.ack_seq,
    })
}

/// A round's acknowledgements by where they go ([`route_acks`]).
#[derive(Default)]
struct Routed {
    /// To their partition's leader.
    by_node: BTreeMap<i32, Acks>,
    /// Back to the queue: no leader known yet, the partition still assigned (or the
    /// assignment not resolved yet); sent once metadata knows the leader.
    later: Acks,
    /// Answered with an error: no leader known and the partition no longer assigned (its
    /// topic deleted, say), so no round would ever send them.
    failed: CommitResults,
}

/// Routes a round's acknowledgements ([`Routed`]); `leader` from the metadata, `assigned`
/// and `unresolved` as [`assigned_parts`] gives them.
fn route_acks(
    acks: Acks,
    leader: impl Fn(&Part) -> Option<i32>,
    assigned: &BTreeSet<Part>,
    unresolved: bool,
) -> Routed {
    let mut r = Routed::default();
    for (p, a) in acks {
        match leader(&p) {
            Some(n) => {
                r.by_node.entry(n).or_default().insert(p, a);
            }
            None if unresolved || assigned.contains(&p) => {
                r.later.insert(p, a);
            }
            None => {
                let e = Error::State(format!(
                    "acknowledgements for {} not sent: the partition has no known leader \
                     and is no longer assigned to this consumer",
                    p.tp
                ));
                r.failed.insert(p.tp.clone(), Err(e));
            }
        }
    }
    r
}

/// One round; `true` when a request failed or none could be sent (the caller backs off).
async fn round(shared: &Arc<Shared>, sessions: &mut HashMap<i32, Session>, plan: Plan) -> bool {
    let snap = shared.cluster.metadata();
    let leader = |p: &Part| snap.leader(&p.tp.topic, p.tp.partition);
    let mut by_node: BTreeMap<i32, (BTreeSet<Part>, Acks)> = BTreeMap::new();
    let mut outcome = Outcome::default();
    let mut assigned: BTreeMap<i32, BTreeSet<Part>> = BTreeMap::new();
    for p in &plan.parts {
        match leader(p) {
            Some(n) => {
                assigned.entry(n).or_default().insert(p.clone());
            }
            None => outcome.refresh |= plan.fetch,
        }
    }
    if plan.fetch {
        for (n, parts) in &assigned {
            by_node.entry(*n).or_default().0 = parts.clone();
        }
    }
    let acks_upto = plan.acks_upto;
    let routed = route_acks(plan.acks, leader, &plan.parts, plan.unresolved);
    for (n, acks) in routed.by_node {
        by_node.entry(n).or_default().1 = acks;
    }
    outcome.refresh |= !routed.later.is_empty();
    outcome.requeue = routed.later;
    outcome.ack_results = routed.failed;
    let fetch_wait = shared.cfg.consumer.fetch_max_wait;
    let mut tasks = Vec::new();
    for (node, (mut parts, acks)) in by_node {
        let mut session = sessions.remove(&node).unwrap_or_default();
        let mut wait = fetch_wait;
        if parts.is_empty() && !acks.is_empty() && session.epoch == 0 {
            // Acknowledgements need an open share session: open one with a ShareFetch that
            // does not wait (what it acquires is handed out by the next receive, or
            // released at close).
            parts = assigned.get(&node).cloned().unwrap_or_default();
            wait = Duration::ZERO;
        }
        let shared = shared.clone();
        tasks.push(async move {
            let out = node_round(&shared, node, &mut session, parts, acks, wait).await;
            (node, session, out)
        });
    }
    let results = futures_util::future::join_all(tasks).await;
    for (node, session, out) in results {
        sessions.insert(node, session);
        outcome.records.extend(out.records);
        for (p, g) in out.gaps {
            outcome.gaps.entry(p).or_default().extend(g);
        }
        outcome.ack_results.extend(out.ack_results);
        for (p, a) in out.requeue {
            outcome.requeue.entry(p).or_default().extend(a);
        }
        outcome.errors.extend(out.errors);
        outcome.refresh |= out.refresh;
        outcome.sent |= out.sent;
    }
    // A round that sent nothing (every partition it wanted without a known leader, or an
    // assigned topic not in the metadata yet) would be planned again at once: back off too.
    let failed = !outcome.errors.is_empty() || !outcome.sent;
    for e in &outcome.errors {
        tracing::debug!(member = %shared.member_id, error = %e, "share fetch round failed");
    }
    if outcome.refresh {
        let _ = shared.cluster.refresh().await;
    }
    // Errors the application should see (not the ones retried here).
    let report: Vec<Error> = outcome
        .errors
        .iter()
        .filter(|e| e.action() == ErrorAction::Fatal)
        .cloned()
        .collect();
    let got_records = !outcome.records.is_empty();
    let wakers = {
        let mut st = shared.lock();
        st.round_answered(
            acks_upto,
            &outcome.ack_results,
            outcome.requeue,
            outcome.gaps,
        );
        if got_records {
            st.buffer.extend(outcome.records);
            st.demand = false;
        }
        if let Some(e) = report.into_iter().next() {
            if !matches!(st.error, Some((_, true))) {
                st.error = Some((e, false));
            }
        }
        if got_records || st.error.is_some() {
            std::mem::take(&mut st.waiters)
        } else {
            Vec::new()
        }
    };
    wake(wakers);
    failed
}

/// A connection of the driver's own to `node` (a ShareFetch may wait on it).
async fn connection(shared: &Shared, node: i32, session: &mut Session) -> Result<Connection> {
    if let Some(c) = session.conn.as_ref().filter(|c| !c.is_closed()) {
        return Ok(c.clone());
    }
    session.reset(true);
    let c = shared.cluster.own_connection(node).await?;
    session.conn = Some(c.clone());
    Ok(c)
}

/// Whether a request error means the session is gone (or unknown) on the broker.
fn resets_session(e: &Error) -> bool {
    !matches!(e, Error::Broker { code, .. } if *code == KafkaCode::INVALID_RECORD_STATE)
}

/// Whether a failed ShareFetch / ShareAcknowledge asks for fresh metadata before the next
/// round: a lost connection, a code that says so, and a failure the broker does not explain
/// (UNKNOWN_SERVER_ERROR: Kafka 4.3 answers so while the session holds a deleted topic's
/// partition, and only the metadata tells the client the topic is gone). Not the session
/// errors (a new session mends them) or a rejected acknowledgement.
fn refreshes_metadata(e: &Error) -> bool {
    match e {
        Error::Connection { .. } => true,
        Error::Broker { code, .. } => {
            *code == KafkaCode::UNKNOWN_SERVER_ERROR || e.action() == ErrorAction::RefreshAndRetry
        }
        _ => false,
    }
}

/// The requests of one round to one broker: acknowledgements for partitions not fetched
/// first (ShareAcknowledge), then the ShareFetch with the rest piggy-backed, or only a
/// ShareAcknowledge when nothing is fetched.
async fn node_round(
    shared: &Shared,
    node: i32,
    session: &mut Session,
    parts: BTreeSet<Part>,
    mut acks: Acks,
    wait: Duration,
) -> Outcome {
    let mut out = Outcome::default();
    let conn = match connection(shared, node, session).await {
        Ok(c) => c,
        Err(e) => {
            // Failed like a request would (an answer for `commit_sync`), sent again later.
            for p in acks.keys() {
                out.ack_results.insert(p.tp.clone(), Err(e.clone()));
            }
            out.requeue = acks;
            out.errors.push(e);
            out.refresh = true;
            return out;
        }
    };
    // Acknowledgements for partitions this fetch does not include (or all of them when
    // nothing is fetched) go by ShareAcknowledge, once the session is open.
    let (piggy, alone): (Acks, Acks) = std::mem::take(&mut acks)
        .into_iter()
        .partition(|(p, _)| parts.contains(p) && session.epoch > 0);
    if !alone.is_empty() {
        if session.epoch == 0 && parts.is_empty() {
            // No session and nothing assigned on this broker to open one with: the broker
            // releases these records when their locks expire.
            let e = Error::State(format!(
                "no share session with broker {node} to send acknowledgements on (its \
                 partitions are no longer assigned)"
            ));
            for p in alone.keys() {
                out.ack_results.insert(p.tp.clone(), Err(e.clone()));
            }
        } else if session.epoch == 0 {
            out.requeue.extend(alone);
        } else {
            out.sent = true;
            match share_acknowledge(shared, &conn, &alone, session.epoch).await {
                Ok(results) => {
                    session.advance();
                    out.ack_results.extend(results);
                }
                Err(e) => {
                    if resets_session(&e) {
                        session.reset(matches!(
                            e,
                            Error::Connection { .. } | Error::Timeout { .. }
                        ));
                    }
                    for p in alone.keys() {
                        out.ack_results.insert(p.tp.clone(), Err(e.clone()));
                    }
                    out.requeue.extend(alone);
                    out.requeue.extend(piggy);
                    out.refresh |= refreshes_metadata(&e);
                    out.errors.push(e);
                    return out;
                }
            }
        }
    }
    if parts.is_empty() {
        out.requeue.extend(piggy);
        return out;
    }
    out.sent = true;
    if let Err(e) = share_fetch(shared, &conn, session, &parts, &piggy, wait, &mut out).await {
        if resets_session(&e) {
            session.reset(matches!(
                e,
                Error::Connection { .. } | Error::Timeout { .. }
            ));
        }
        for p in piggy.keys() {
            out.ack_results.insert(p.tp.clone(), Err(e.clone()));
        }
        out.requeue.extend(piggy);
        out.refresh |= refreshes_metadata(&e);
        out.errors.push(e);
    }
    out
}

fn batches_of(acks: &BTreeMap<i64, i8>) -> Vec<sf::AcknowledgementBatch> {
    ack_batches(acks)
        .into_iter()
        .map(|b| {
            sf::AcknowledgementBatch::default()
                .with_first_offset(b.first)
                .with_last_offset(b.last)
                .with_acknowledge_types(b.types)
        })
        .collect()
}

fn top_error(code: i16, msg: Option<&StrBytes>, what: &str, node: &str, epoch: i32) -> Result<()> {
    match KafkaCode(code).err() {
        None => Ok(()),
        Some(code) => Err(Error::broker(
            code,
            format!(
                "{what} to {node}, share session epoch {epoch}{}",
                msg.map(|m| format!(": {}", m.as_str())).unwrap_or_default()
            ),
        )),
    }
}

async fn share_acknowledge(
    shared: &Shared,
    conn: &Connection,
    acks: &Acks,
    epoch: i32,
) -> Result<CommitResults> {
    let mut topics: BTreeMap<Uuid, Vec<sa::AcknowledgePartition>> = BTreeMap::new();
    for (p, a) in acks {
        let batches = ack_batches(a)
            .into_iter()
            .map(|b| {
                sa::AcknowledgementBatch::default()
                    .with_first_offset(b.first)
                    .with_last_offset(b.last)
                    .with_acknowledge_types(b.types)
            })
            .collect();
        topics.entry(p.id).or_default().push(
            sa::AcknowledgePartition::default()
                .with_partition_index(p.tp.partition)
                .with_acknowledgement_batches(batches),
        );
    }
    let req = ShareAcknowledgeRequest::default()
        .with_group_id(Some(
            StrBytes::from_string(shared.cfg.group_id.clone()).into(),
        ))
        .with_member_id(Some(StrBytes::from_string(shared.member_id.clone())))
        .with_share_session_epoch(epoch)
        .with_topics(
            topics
                .into_iter()
                .map(|(id, ps)| {
                    sa::AcknowledgeTopic::default()
                        .with_topic_id(id)
                        .with_partitions(ps)
                })
                .collect(),
        );
    let resp = conn.send(&req).await?;
    top_error(
        resp.error_code,
        resp.error_message.as_ref(),
        "ShareAcknowledge",
        conn.addr(),
        epoch,
    )?;
    let names: HashMap<(Uuid, i32), &Part> =
        acks.keys().map(|p| ((p.id, p.tp.partition), p)).collect();
    let mut results = CommitResults::new();
    for t in resp.responses {
        for pd in t.partitions {
            let Some(p) = names.get(&(t.topic_id, pd.partition_index)) else {
                continue;
            };
            let r = match KafkaCode(pd.error_code).err() {
                None => Ok(()),
                Some(code) => Err(Error::broker(
                    code,
                    format!(
                        "ShareAcknowledge {}{}",
                        p.tp,
                        pd.error_message
                            .as_ref()
                            .map(|m| format!(": {}", m.as_str()))
                            .unwrap_or_default()
                    ),
                )),
            };
            results.insert(p.tp.clone(), r);
        }
    }
    Ok(results)
}

#[allow(clippy::too_many_arguments)]
async fn share_fetch(
    shared: &Shared,
    conn: &Connection,
    session: &mut Session,
    parts: &BTreeSet<Part>,
    acks: &Acks,
    wait: Duration,
    out: &mut Outcome,
) -> Result<()> {
    let cfg = &shared.cfg.consumer;
    let epoch = session.epoch;
    let mut topics: BTreeMap<Uuid, Vec<sf::FetchPartition>> = BTreeMap::new();
    for p in parts {
        let a = acks.get(p);
        if epoch == 0 || !session.parts.contains(p) || a.is_some() {
            topics.entry(p.id).or_default().push(
                sf::FetchPartition::default()
                    .with_partition_index(p.tp.partition)
                    .with_partition_max_bytes(cfg.max_partition_fetch_bytes)
                    .with_acknowledgement_batches(a.map(batches_of).unwrap_or_default()),
            );
        }
    }
    let mut forgotten: BTreeMap<Uuid, Vec<i32>> = BTreeMap::new();
    if epoch > 0 {
        for p in session.parts.difference(parts) {
            forgotten.entry(p.id).or_default().push(p.tp.partition);
        }
    }
    let max_records = cfg.max_poll_records.min(i32::MAX as usize) as i32;
    let req = ShareFetchRequest::default()
        .with_group_id(Some(
            StrBytes::from_string(shared.cfg.group_id.clone()).into(),
        ))
        .with_member_id(Some(StrBytes::from_string(shared.member_id.clone())))
        .with_share_session_epoch(epoch)
        .with_max_wait_ms(wait.as_millis().min(i32::MAX as u128) as i32)
        .with_min_bytes(cfg.fetch_min_bytes)
        .with_max_bytes(cfg.fetch_max_bytes)
        .with_max_records(max_records)
        .with_batch_size(max_records)
        .with_topics(
            topics
                .into_iter()
                .map(|(id, ps)| {
                    sf::FetchTopic::default()
                        .with_topic_id(id)
                        .with_partitions(ps)
                })
                .collect(),
        )
        .with_forgotten_topics_data(
            forgotten
                .into_iter()
                .map(|(id, ps)| {
                    sf::ForgottenTopic::default()
                        .with_topic_id(id)
                        .with_partitions(ps)
                })
                .collect(),
        );
    let version = conn.version_for(ApiKey::ShareFetch)?;
    let sent_at = Instant::now();
    let timeout = shared.cluster.options().connection.request_timeout + wait;
    let resp = conn.send_version(&req, version, timeout).await?;
    top_error(
        resp.error_code,
        resp.error_message.as_ref(),
        "ShareFetch",
        conn.addr(),
        epoch,
    )?;
    session.advance();
    session.parts = parts.clone();
    // The broker states the lock duration; if it does not (0), assume Kafka's default
    // rather than treating every record as expired.
    let lock_ms = match resp.acquisition_lock_timeout_ms {
        ms if ms > 0 => ms as u64,
        _ => DEFAULT_LOCK_MS,
    };
    let lock_expires = sent_at + Duration::from_millis(lock_ms);
    let by_id: HashMap<(Uuid, i32), &Part> =
        parts.iter().map(|p| ((p.id, p.tp.partition), p)).collect();
    let decode_opts = DecodeOptions {
        check_crc: cfg.check_crcs,
        ..DecodeOptions::default()
    };
    for t in resp.responses {
        for pd in t.partitions {
            let Some(p) = by_id.get(&(t.topic_id, pd.partition_index)) else {
                continue;
            };
            if acks.contains_key(*p) {
                let r = match KafkaCode(pd.acknowledge_error_code).err() {
                    None => Ok(()),
                    Some(code) => Err(Error::broker(
                        code,
                        format!(
                            "ShareFetch acknowledgements {}{}",
                            p.tp,
                            pd.acknowledge_error_message
                                .as_ref()
                                .map(|m| format!(": {}", m.as_str()))
                                .unwrap_or_default()
                        ),
                    )),
                };
                out.ack_results.insert(p.tp.clone(), r);
            }
            if let Some(code) = KafkaCode(pd.error_code).err() {
                let e = Error::broker(
                    code,
                    format!(
                        "ShareFetch {}{}",
                        p.tp,
                        pd.error_message
                            .as_ref()
                            .map(|m| format!(": {}", m.as_str()))
                            .unwrap_or_default()
                    ),
                );
                if e.action() == ErrorAction::RefreshAndRetry {
                    out.refresh = true;
                }
                out.errors.push(e);
            }
            let (records, gaps, err) = acquired(p, &pd, lock_expires, &decode_opts);
            out.records.extend(records);
            if !gaps.is_empty() {
                out.gaps.insert((*p).clone(), gaps);
            }
            if let Some(e) = err {
                out.errors.push(e);
            }
        }
    }
    Ok(())
}

/// The acquired records of one partition, the acquired offsets without a record (to be
/// acknowledged as gaps), and a decoding error (records before it are kept; the acquired
/// offsets after it come back after their lock).
pub(crate) fn acquired(
    p: &Part,
    pd: &share_fetch_response::PartitionData,
    lock_expires: Instant,
    opts: &DecodeOptions,
) -> (Vec<ShareRecord>, BTreeMap<i64, i8>, Option<Error>) {
    let mut ranges: Vec<(i64, i64, i16)> = pd
        .acquired_records
        .iter()
        .filter(|a| a.first_offset <= a.last_offset)
        .map(|a| (a.first_offset, a.last_offset, a.delivery_count))
        .collect();
    ranges.sort_unstable();
    let mut out = Vec::new();
    let mut seen: BTreeSet<i64> = BTreeSet::new();
    let mut err = None;
    if !ranges.is_empty() {
        let data = pd.records.clone().unwrap_or_default();
        for batch in record::decode_batches(data, opts) {
            let batch = match batch {
                Ok(b) => b,
                Err(e) => {
                    err = Some(Error::Protocol(format!("{} share fetch: {e}", p.tp)));
                    break;
                }
            };
            if batch.is_control() {
                continue;
            }
            let ts_type = batch.timestamp_type();
            let epoch = batch.partition_leader_epoch.max(-1);
            for r in batch.records {
                let i = ranges.partition_point(|(_, last, _)| *last < r.offset);
                let Some(&(first, _, count)) = ranges.get(i) else {
                    continue;
                };
                if r.offset < first || !seen.insert(r.offset) {
                    continue;
                }
                out.push(ShareRecord {
                    message: Message::from_record(&p.tp, r, ts_type, epoch),
                    topic_id: p.id,
                    delivery_count: count.max(0) as u16,
                    lock_expires,
                });
            }
        }
    }
    let mut gaps = BTreeMap::new();
    if err.is_none() {
        for &(first, last, _) in &ranges {
            for o in first..=last {
                if !seen.contains(&o) {
                    gaps.insert(o, GAP);
                }
            }
        }
    }
    (out, gaps, err)
}

/// Closing: releases what the consumer holds and has not handed out (and, in explicit mode,
/// what it handed out without an acknowledgement; in implicit mode those are accepted, as
/// the next receive would have), sends every pending acknowledgement with epoch -1 (which
/// closes the share session) and answers the commits still waiting.
async fn last_round(shared: &Shared, sessions: &mut HashMap<i32, Session>) {
    let implicit =
        shared.cfg.acknowledgement_mode == crate::config::ShareAcknowledgementMode::Implicit;
    let (acks, upto) = {
        let mut st = shared.lock();
        let release = super::record::AcknowledgeType::Release.code();
        let accept = super::record::AcknowledgeType::Accept.code();
        let delivered = std::mem::take(&mut st.delivered);
        for (p, offsets) in delivered {
            for o in offsets {
                st.queue_ack(p.clone(), o, if implicit { accept } else { release });
            }
        }
        let buffer = std::mem::take(&mut st.buffer);
        for r in buffer {
            st.queue_ack(r.part(), r.message.offset, release);
        }
        (std::mem::take(&mut st.pending), st.ack_seq)
    };
    let snap = shared.cluster.metadata();
    let mut by_node: BTreeMap<i32, Acks> = BTreeMap::new();
    for (p, a) in acks {
        if let Some(n) = snap.leader(&p.tp.topic, p.tp.partition) {
            by_node.entry(n).or_default().insert(p, a);
        }
    }
    let mut results = CommitResults::new();
    let mut tasks = Vec::new();
    for (node, session) in sessions.iter_mut() {
        if session.epoch == 0 {
            continue;
        }
        let acks = by_node.remove(node).unwrap_or_default();
        tasks.push(async move {
            let conn = match session.conn.clone().filter(|c| !c.is_closed()) {
                Some(c) => c,
                None => return CommitResults::new(),
            };
            match share_acknowledge(shared, &conn, &acks, -1).await {
                Ok(r) => r,
                Err(e) => {
                    tracing::debug!(error = %e, "closing the share session failed");
                    acks.keys()
                        .map(|p| (p.tp.clone(), Err(e.clone())))
                        .collect()
                }
            }
        });
    }
    for r in futures_util::future::join_all(tasks).await {
        results.extend(r);
    }
    sessions.clear();
    shared.lock().ack_round_done(upto, &results);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{BatchBuilder, BatchParams};
    use kafka_protocol::messages::share_fetch_response::{AcquiredRecords, PartitionData};

    fn batch(base_offset: i64, values: &[&str]) -> bytes::BytesMut {
        let mut b = BatchBuilder::new(1_000, 0);
        for v in values {
            b.append(1_000, None, Some(v.as_bytes()), &[]);
        }
        let sealed = b.seal(&BatchParams::default()).unwrap();
        let mut out = bytes::BytesMut::from(&sealed[..]);
        // The base offset is outside the CRC: the broker sets it when appending.
        out[0..8].copy_from_slice(&base_offset.to_be_bytes());
        out
    }

    fn range(first: i64, last: i64, count: i16) -> AcquiredRecords {
        AcquiredRecords::default()
            .with_first_offset(first)
            .with_last_offset(last)
            .with_delivery_count(count)
    }

    #[test]
    fn only_acquired_records_are_handed_out_and_gaps_acknowledged() {
        let mut data = batch(0, &["v0", "v1", "v2", "v3", "v4"]);
        data.extend_from_slice(&batch(5, &["v5"]));
        let pd = PartitionData::default()
            .with_records(Some(data.freeze()))
            .with_acquired_records(vec![range(4, 7, 3), range(1, 2, 1)]);
        let part = Part {
            tp: TopicPartition::new("t", 0),
            id: Uuid::from_u128(7),
        };
        let lock = Instant::now() + Duration::from_secs(30);
        let (records, gaps, err) = acquired(&part, &pd, lock, &DecodeOptions::default());
        assert!(err.is_none());
        let got: Vec<(i64, u16, String)> = records
            .iter()
            .map(|r| {
                (
                    r.offset(),
                    r.delivery_count(),
                    String::from_utf8(r.value().unwrap().to_vec()).unwrap(),
                )
            })
            .collect();
        assert_eq!(
            got,
            vec![
                (1, 1, "v1".into()),
                (2, 1, "v2".into()),
                (4, 3, "v4".into()),
                (5, 3, "v5".into()),
            ]
        );
        assert!(records.iter().all(|r| r.topic_id == part.id));
        // Offset 6 and 7 were acquired but hold no record: acknowledged as gaps.
        assert_eq!(gaps, [(6, GAP), (7, GAP)].into_iter().collect());
    }

    #[test]
    fn a_corrupt_batch_is_an_error_and_no_gaps_are_guessed() {
        let mut data = batch(0, &["v0", "v1"]);
        let n = data.len();
        data[n - 1] ^= 0xff; // breaks the CRC
        let pd = PartitionData::default()
            .with_records(Some(data.freeze()))
            .with_acquired_records(vec![range(0, 1, 1)]);
        let part = Part {
            tp: TopicPartition::new("t", 0),
            id: Uuid::from_u128(7),
        };
        let (records, gaps, err) = acquired(&part, &pd, Instant::now(), &DecodeOptions::default());
        assert!(records.is_empty());
        assert!(gaps.is_empty(), "{gaps:?}");
        assert!(matches!(err, Some(Error::Protocol(_))), "{err:?}");
    }

    #[test]
    fn session_epochs_wrap_to_one() {
        let mut s = Session {
            epoch: i32::MAX,
            ..Session::default()
        };
        s.advance();
        assert_eq!(s.epoch, 1);
        s.reset(false);
        assert_eq!(s.epoch, 0);
        s.advance();
        assert_eq!(s.epoch, 1);
    }

    /// Acknowledgements go to their leader; without one they wait for the next round while
    /// the partition is assigned (or the assignment is not resolved yet), and are answered
    /// with an error once it is not: nothing would ever send them, and a `commit_sync`
    /// would wait for them until its bound.
    #[test]
    fn acknowledgements_without_a_leader_wait_only_while_assigned() {
        let part = |n| Part {
            tp: TopicPartition::new("t", n),
            id: Uuid::nil(),
        };
        let acks: Acks = (0..3)
            .map(|n| (part(n), BTreeMap::from([(7, 1)])))
            .collect();
        let leader = |p: &Part| (p.tp.partition == 0).then_some(4);
        let assigned: BTreeSet<Part> = [part(0), part(1)].into();
        let r = route_acks(acks.clone(), leader, &assigned, false);
        assert_eq!(r.by_node.get(&4).map(|a| a.len()), Some(1));
        assert!(r.later.contains_key(&part(1)) && r.later.len() == 1);
        assert!(matches!(
            r.failed.get(&part(2).tp),
            Some(Err(Error::State(_)))
        ));
        assert_eq!(r.failed.len(), 1);
        // The assignment not resolved yet: partition 2 may still be this consumer's.
        let r = route_acks(acks, leader, &assigned, true);
        assert_eq!(r.later.len(), 2);
        assert!(r.failed.is_empty());
    }
}
