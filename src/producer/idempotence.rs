//! The producer id, epoch and sequences: the one InitProducerId request, and the state the
//! sender stamps batches with (id, epoch, each partition's next sequence and the sequences
//! not yet acknowledged) including epoch bumps (KIP-360).
//!
//! Both producers use it: the idempotent one gets its id from any broker
//! ([`init_idempotent`]) and bumps its own epoch; the transactional one gets its id (and,
//! V1, epoch bumps after an abort) from the transaction coordinator (the transaction module
//! calls [`init_producer_id`] inside its coordinator retry loop), and the sender moves to
//! each new id/epoch with [`Idempotence::reset`]. See the rules in [`crate::producer`].

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use kafka_protocol::messages::{ApiKey, InitProducerIdRequest, ProducerId, TransactionalId};
use kafka_protocol::protocol::StrBytes;
use tokio::time::Instant;

use crate::backoff::Deadline;
use crate::cluster::Cluster;
use crate::connection::Connection;
use crate::error::{Error, KafkaCode, Result};

use super::accumulator::Tp;

/// A producer id and its epoch; `(-1, -1)` = none yet.
pub(crate) type PidEpoch = (i64, i16);

/// Who asks for a producer id.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Initiator<'a> {
    /// An idempotent producer (no transactional id; any broker answers).
    Idempotent,
    /// A transactional producer (sent to its transaction coordinator).
    Transactional {
        /// `transactional.id`.
        id: &'a str,
        /// `transaction.timeout.ms`.
        timeout: Duration,
    },
}

/// InitProducerId on `conn`: a new producer id and epoch, or with `current` (v3+, KIP-360)
/// the next epoch of that id (a non-transactional producer may get a fresh id instead).
pub(crate) async fn init_producer_id(
    conn: &Connection,
    who: Initiator<'_>,
    current: Option<PidEpoch>,
    timeout: Duration,
) -> Result<PidEpoch> {
    let v = conn.version_for(ApiKey::InitProducerId)?;
    let (pid, epoch) = match current {
        Some(c) if v >= 3 => c,
        _ => (-1, -1),
    };
    let (txn_id, txn_timeout) = match who {
        Initiator::Idempotent => (None, 60_000),
        Initiator::Transactional { id, timeout } => (
            Some(TransactionalId(StrBytes::from_string(id.to_string()))),
            timeout.as_millis().min(i32::MAX as u128) as i32,
        ),
    };
    let req = InitProducerIdRequest::default()
        .with_transactional_id(txn_id)
        .with_transaction_timeout_ms(txn_timeout)
        .with_producer_id(ProducerId(pid))
        .with_producer_epoch(epoch);
    let resp = conn.send_version(&req, v, timeout).await?;
    if let Some(code) = KafkaCode(resp.error_code).err() {
        return Err(Error::broker(
            code,
            match who {
                Initiator::Idempotent => "InitProducerId".to_string(),
                Initiator::Transactional { id, .. } => {
                    format!("InitProducerId for transactional id `{id}`")
                }
            },
        ));
    }
    Ok((resp.producer_id.0, resp.producer_epoch))
}

/// An idempotent (non-transactional) producer's id from any broker, retried until
/// `deadline` (`current`: the id and epoch to bump).
pub(crate) async fn init_idempotent(
    cluster: &Cluster,
    current: Option<PidEpoch>,
    timeout: Duration,
    deadline: Deadline,
) -> Result<PidEpoch> {
    cluster
        .retry("InitProducerId", deadline, true, || async {
            let conn = cluster.any_connection().await?;
            init_producer_id(&conn, Initiator::Idempotent, current, timeout).await
        })
        .await
}

/// Kafka sequences wrap from `i32::MAX` to 0.
fn seq_add(seq: i32, n: i32) -> i32 {
    ((seq as i64 + n as i64) % (i32::MAX as i64 + 1)) as i32
}

/// One partition's sequences.
#[derive(Debug, Default)]
struct PartSeq {
    next: i32,
    /// Sequences assigned and not yet completed, in assignment order.
    outstanding: VecDeque<i32>,
    /// The producer id of the last batch of this partition the broker acknowledged, and when.
    acked: Option<(i64, Instant)>,
}

/// How long after its last acknowledged batch a partition's leader is still taken to hold
/// state for the producer id. Brokers drop an idle producer's state after
/// `producer.id.expiration.ms` (1 day by default, configurable much lower); a partition idle
/// for longer than this sends its next batch alone again, which costs one round trip.
const PRODUCER_STATE_FRESH: Duration = Duration::from_secs(600);

type BumpFut = Pin<Box<dyn Future<Output = Result<PidEpoch>> + Send>>;

/// The id, epoch and sequences the sender stamps batches with (owned by the sender task).
pub(crate) struct Idempotence {
    current: PidEpoch,
    seqs: HashMap<Tp, PartSeq>,
    bump_needed: bool,
    bumping: Option<BumpFut>,
    bump_retry_at: Instant,
    /// When the first InitProducerId of the wanted bump started.
    bump_started: Option<Instant>,
}

impl Idempotence {
    /// Starts at `current` (`(-1, -1)` for a transactional producer before
    /// `init_transactions`).
    pub fn new(current: PidEpoch) -> Idempotence {
        Idempotence {
            current,
            seqs: HashMap::new(),
            bump_needed: false,
            bumping: None,
            bump_retry_at: Instant::now(),
            bump_started: None,
        }
    }

    /// The producer id and epoch batches are stamped with now.
    pub fn current(&self) -> PidEpoch {
        self.current
    }

    /// The base sequence the partition's next batch gets.
    pub fn next_sequence(&self, tp: &Tp) -> i32 {
        self.seqs.get(tp).map_or(0, |s| s.next)
    }

    /// A batch of `records` records got `base_seq` (= [`next_sequence`](Self::next_sequence)).
    pub fn assigned(&mut self, tp: &Tp, base_seq: i32, records: i32) {
        let s = match self.seqs.get_mut(tp) {
            Some(s) => s,
            None => self.seqs.entry(tp.clone()).or_default(),
        };
        s.outstanding.push_back(base_seq);
        s.next = seq_add(base_seq, records);
    }

    /// The batch with base sequence `seq` was split: its second piece starts `first_records`
    /// later and is outstanding right after it (the partition's next sequence is unchanged).
    pub fn split(&mut self, tp: &Tp, seq: i32, first_records: i32) {
        if let Some(s) = self.seqs.get_mut(tp) {
            if let Some(pos) = s.outstanding.iter().position(|x| *x == seq) {
                s.outstanding.insert(pos + 1, seq_add(seq, first_records));
            }
        }
    }

    /// Whether `seq` is the partition's earliest sequence not acknowledged yet.
    pub fn is_earliest(&self, tp: &Tp, seq: i32) -> bool {
        self.seqs
            .get(tp)
            .and_then(|s| s.outstanding.front().copied())
            == Some(seq)
    }

    /// The broker acknowledged a batch of the partition under the current producer id: it
    /// now holds state for that id, so it checks every later batch's sequence.
    pub fn acked(&mut self, tp: &Tp, now: Instant) {
        let pid = self.current.0;
        if let Some(s) = self.seqs.get_mut(tp) {
            s.acked = Some((pid, now));
        }
    }

    /// Whether the partition's leader is known to hold state for the current producer id.
    /// Until it does, a batch must go alone: a broker takes the first batch of a producer
    /// id it has no state for at any sequence, so a later batch sent behind a first one
    /// that gets refused (say NOT_LEADER_OR_FOLLOWER just after the partition was created)
    /// would be written before it. Once the id is known, the broker refuses every batch
    /// that does not follow the log, and a new epoch of it must start at sequence 0 —
    /// unless the partition was idle long enough for the broker to drop the id's state
    /// (see [`PRODUCER_STATE_FRESH`]).
    pub fn broker_knows(&self, tp: &Tp, now: Instant) -> bool {
        self.seqs
            .get(tp)
            .and_then(|s| s.acked)
            .is_some_and(|(pid, at)| {
                pid == self.current.0 && now.saturating_duration_since(at) < PRODUCER_STATE_FRESH
            })
    }

    /// The batch with `seq` completed (negative: it had none).
    pub fn forget(&mut self, tp: &Tp, seq: i32) {
        if seq < 0 {
            return;
        }
        if let Some(s) = self.seqs.get_mut(tp) {
            if let Some(pos) = s.outstanding.iter().position(|x| *x == seq) {
                s.outstanding.remove(pos);
            }
        }
    }

    /// A new id/epoch: every partition's sequences restart at 0.
    pub fn reset(&mut self, new: PidEpoch) {
        self.current = new;
        for s in self.seqs.values_mut() {
            s.next = 0;
            s.outstanding.clear();
        }
    }

    /// A sequence gap or a refused sequence: the epoch must be bumped.
    pub fn request_bump(&mut self) {
        self.bump_needed = true;
    }

    /// Forgets a requested bump (the new epoch is in place).
    pub fn bump_done(&mut self) {
        self.bump_needed = false;
        self.bump_started = None;
    }

    /// Whether a bump is wanted (nothing new may be sent until it is done).
    pub fn bump_needed(&self) -> bool {
        self.bump_needed
    }

    /// Whether an InitProducerId for a bump is running.
    pub fn is_bumping(&self) -> bool {
        self.bumping.is_some()
    }

    /// Starts the InitProducerId of a wanted bump (call only with nothing in flight).
    /// Returns when to try again if the last attempt failed too recently.
    pub fn start_bump(
        &mut self,
        cluster: &Cluster,
        timeout: Duration,
        now: Instant,
    ) -> Option<Instant> {
        if !self.bump_needed || self.bumping.is_some() {
            return None;
        }
        if now < self.bump_retry_at {
            return Some(self.bump_retry_at);
        }
        self.bump_started.get_or_insert(now);
        let cluster = cluster.clone();
        let cur = self.current;
        if cur.0 < 0 {
            tracing::debug!("requesting a producer id");
        } else {
            tracing::info!(
                producer_id = cur.0,
                epoch = cur.1,
                "bumping the producer epoch (KIP-360)"
            );
        }
        self.bumping = Some(Box::pin(async move {
            init_idempotent(&cluster, Some(cur), timeout, Deadline::after(timeout)).await
        }));
        None
    }

    /// Polls a running bump.
    pub fn poll_bump(&mut self, cx: &mut Context<'_>) -> Poll<Result<PidEpoch>> {
        let Some(f) = self.bumping.as_mut() else {
            return Poll::Pending;
        };
        let r = std::task::ready!(f.as_mut().poll(cx));
        self.bumping = None;
        Poll::Ready(r)
    }

    /// The bump's InitProducerId failed: try again at `at`. Returns how long ago the bump's
    /// first InitProducerId started.
    pub fn bump_failed(&mut self, now: Instant, at: Instant) -> Duration {
        self.bump_retry_at = at;
        now.saturating_duration_since(*self.bump_started.get_or_insert(now))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The broker knows the producer id on a partition once a batch of it was acknowledged
    /// there: not before, not for a new id (a non-transactional bump), not for another
    /// partition, and not after the partition was idle for `PRODUCER_STATE_FRESH`.
    #[test]
    fn broker_knows_an_id_after_an_ack_until_the_partition_idles() {
        let (tp, other): (Tp, Tp) = (("t".into(), 0), ("t".into(), 1));
        let t0 = Instant::now();
        let mut s = Idempotence::new((7, 0));
        s.assigned(&tp, 0, 5);
        assert!(!s.broker_knows(&tp, t0));
        s.acked(&tp, t0);
        assert!(s.broker_knows(&tp, t0 + Duration::from_secs(1)));
        assert!(!s.broker_knows(&other, t0));
        assert!(!s.broker_knows(&tp, t0 + PRODUCER_STATE_FRESH));
        // A new epoch of the same id (transactions): still known.
        s.reset((7, 1));
        assert!(s.broker_knows(&tp, t0 + Duration::from_secs(1)));
        // A new id (an idempotent producer's bump): unknown until acknowledged again.
        s.reset((8, 0));
        assert!(!s.broker_knows(&tp, t0 + Duration::from_secs(1)));
        s.acked(&tp, t0 + Duration::from_secs(2));
        assert!(s.broker_knows(&tp, t0 + Duration::from_secs(3)));
    }

    #[test]
    fn sequences_advance_wrap_and_reset() {
        let tp: Tp = ("t".into(), 0);
        let mut s = Idempotence::new((7, 0));
        assert_eq!(s.next_sequence(&tp), 0);
        s.assigned(&tp, 0, 10);
        assert_eq!(s.next_sequence(&tp), 10);
        s.assigned(&tp, 10, 5);
        assert!(s.is_earliest(&tp, 0) && !s.is_earliest(&tp, 10));
        s.forget(&tp, 0);
        assert!(s.is_earliest(&tp, 10));
        s.assigned(&tp, i32::MAX - 1, 3);
        assert_eq!(s.next_sequence(&tp), 1, "sequences wrap to 0");
        s.reset((7, 1));
        assert_eq!(s.current(), (7, 1));
        assert_eq!(s.next_sequence(&tp), 0);
        assert!(!s.is_earliest(&tp, 10));
        assert_eq!(seq_add(i32::MAX, 1), 0);
    }
}
