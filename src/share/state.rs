//! State shared by the [`ShareConsumer`](super::ShareConsumer), the fetch driver and the
//! membership task: one `std::sync::Mutex<State>`, never held across an `.await`, and two
//! `Notify`s that wake the tasks (a permit is stored, so no wake-up is lost).

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::task::Waker;

use tokio::sync::{oneshot, Notify};
use uuid::Uuid;

use super::record::{Part, ShareRecord};
use crate::cluster::Cluster;
use crate::config::ShareConsumerConfig;
use crate::error::{Error, Result};
use crate::types::TopicPartition;

/// Per-partition outcome of a commit of acknowledgements.
pub type CommitResults = HashMap<TopicPartition, Result<()>>;

pub(crate) struct Shared {
    pub cluster: Cluster,
    pub cfg: ShareConsumerConfig,
    /// Client-generated member id (a UUID, as KIP-932 asks).
    pub member_id: String,
    state: Mutex<State>,
    /// Wakes the fetch driver (demand, acknowledgements, assignment, close).
    pub work: Notify,
    /// Wakes the membership task (subscription change, close).
    pub membership: Notify,
    /// Set by `close` / drop: the tasks finish.
    pub closing: AtomicBool,
}

/// A `commit_sync` call: the outcomes of every round that completes until `ack_done`
/// reaches `target` are merged into `results`.
pub(crate) struct CommitWaiter {
    pub target: u64,
    pub results: CommitResults,
    pub tx: oneshot::Sender<CommitResults>,
}

#[derive(Default)]
pub(crate) struct State {
    /// Subscribed topic names, sorted.
    pub subscription: BTreeSet<String>,
    /// Bumped by every subscription change (the membership task sends it again).
    pub subscription_version: u64,
    /// The assignment last received from the group coordinator: topic id -> partitions.
    pub assignment: HashMap<Uuid, Vec<i32>>,
    /// Member epoch (0 until joined).
    pub member_epoch: i32,
    /// Acquired records not handed out yet.
    pub buffer: VecDeque<ShareRecord>,
    /// Handed out and not acknowledged yet: partition -> offsets.
    pub delivered: BTreeMap<Part, BTreeSet<i64>>,
    /// Acknowledgements to send: partition -> offset -> acknowledge type.
    pub pending: BTreeMap<Part, BTreeMap<i64, i8>>,
    /// Bumped whenever acknowledgements are added to `pending`.
    pub ack_seq: u64,
    /// Every acknowledgement up to this `ack_seq` has been answered (or given up on).
    pub ack_done: u64,
    /// `commit_sync` calls waiting until `ack_done` reaches the `ack_seq` of their call.
    pub commit_waiters: Vec<CommitWaiter>,
    /// A `recv` is waiting for records.
    pub demand: bool,
    /// Wakers of pending `recv` calls.
    pub waiters: Vec<Waker>,
    /// An error for the next `recv` (fatal ones stay).
    pub error: Option<(Error, bool)>,
}

impl Shared {
    pub(crate) fn new(cluster: Cluster, cfg: ShareConsumerConfig) -> Shared {
        Shared {
            cluster,
            cfg,
            member_id: random_member_id(),
            state: Mutex::new(State::default()),
            work: Notify::new(),
            membership: Notify::new(),
            closing: AtomicBool::new(false),
        }
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn is_closing(&self) -> bool {
        self.closing.load(Ordering::Acquire)
    }

    /// Hands an error to the next `recv` (`sticky`: to every later one too) and wakes it.
    pub(crate) fn report(&self, err: Error, sticky: bool) {
        let wakers = {
            let mut st = self.lock();
            if !matches!(st.error, Some((_, true))) {
                st.error = Some((err, sticky));
            }
            std::mem::take(&mut st.waiters)
        };
        wake(wakers);
    }
}

/// A random (version 4) UUID in its hyphenated text form.
fn random_member_id() -> String {
    let bytes = fastrand::u128(..).to_be_bytes();
    uuid::Builder::from_random_bytes(bytes)
        .into_uuid()
        .hyphenated()
        .to_string()
}

impl State {
    /// Queues an acknowledgement (a newer one for the same offset wins).
    pub(crate) fn queue_ack(&mut self, part: Part, offset: i64, ty: i8) {
        self.pending.entry(part).or_default().insert(offset, ty);
        self.ack_seq += 1;
    }

    /// A round that took the acknowledgements up to `upto` completed with `results`, and
    /// hands back `requeue` (acknowledgements it did not get answered, for a later round:
    /// those that failed have their error in `results`; those it could not send at all, for
    /// want of a leader or of a share session, have nothing there) and `gaps` (releases of
    /// the gaps in what it fetched). Queues both (an offset acknowledged anew meanwhile keeps
    /// the newer one); when some acknowledgement went unanswered, every `commit_sync`
    /// waiting (each made after it) waits for the round that sends it, instead of answering
    /// without its partition; then [`ack_round_done`](Self::ack_round_done).
    pub(crate) fn round_answered(
        &mut self,
        upto: u64,
        results: &CommitResults,
        requeue: impl IntoIterator<Item = (Part, BTreeMap<i64, i8>)>,
        gaps: impl IntoIterator<Item = (Part, BTreeMap<i64, i8>)>,
    ) {
        let mut unanswered = false;
        for (p, a) in requeue {
            unanswered |= !results.contains_key(&p.tp);
            self.queue_again(p, a);
        }
        for (p, a) in gaps {
            self.queue_again(p, a);
        }
        if unanswered {
            let seq = self.ack_seq;
            for w in &mut self.commit_waiters {
                w.target = w.target.max(seq);
            }
        }
        self.ack_round_done(upto, results);
    }

    /// Queues acknowledgements handed back by a round, but not over a newer one for the
    /// same offset.
    fn queue_again(&mut self, p: Part, acks: BTreeMap<i64, i8>) {
        for (o, t) in acks {
            if !self.pending.get(&p).is_some_and(|m| m.contains_key(&o)) {
                self.queue_ack(p.clone(), o, t);
            }
        }
    }

    /// A round that took the acknowledgements up to `upto` completed with `results`:
    /// merges them into every waiter and answers those whose acknowledgements are all done.
    pub(crate) fn ack_round_done(&mut self, upto: u64, results: &CommitResults) {
        self.ack_done = self.ack_done.max(upto);
        let done = self.ack_done;
        for w in std::mem::take(&mut self.commit_waiters) {
            let mut w = w;
            for (tp, r) in results {
                w.results.insert(tp.clone(), r.clone());
            }
            if w.target <= done {
                let _ = w.tx.send(w.results);
            } else {
                self.commit_waiters.push(w);
            }
        }
    }
}

pub(crate) fn wake(wakers: Vec<Waker>) {
    for w in wakers {
        w.wake();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(n: i32) -> Part {
        Part {
            tp: TopicPartition::new("t", n),
            id: Uuid::nil(),
        }
    }

    /// A state holding accepts of `acks` (partition, offset) and a `commit_sync` made after
    /// them, waiting on the returned receiver.
    fn acks_and_a_commit(acks: &[(i32, i64)]) -> (State, oneshot::Receiver<CommitResults>) {
        let mut st = State::default();
        for &(p, o) in acks {
            st.queue_ack(part(p), o, 1);
        }
        let (tx, rx) = oneshot::channel();
        st.commit_waiters.push(CommitWaiter {
            target: st.ack_seq,
            results: CommitResults::new(),
            tx,
        });
        (st, rx)
    }

    /// The round that would send an acknowledgement cannot (its partition has no known
    /// leader, or no share session is open yet) and hands it back: a `commit_sync` made
    /// after it waits for the round that sends it, and gets its partition's outcome, rather
    /// than an answer without that partition (seen in a chaos run: accepts whose partition
    /// was missing from the results).
    #[test]
    fn a_commit_waits_for_acknowledgements_handed_back_to_a_later_round() {
        let (mut st, mut rx) = acks_and_a_commit(&[(0, 5), (1, 9)]);
        // Round 1 takes both; partition 1's goes out and is answered, partition 0's is
        // handed back unsent.
        let upto = st.ack_seq;
        let mut taken = std::mem::take(&mut st.pending);
        let back = taken.remove_entry(&part(0)).unwrap();
        let mut answered = CommitResults::new();
        answered.insert(part(1).tp, Ok(()));
        st.round_answered(upto, &answered, [back], []);
        assert!(
            rx.try_recv().is_err(),
            "answered before partition 0's acknowledgement was sent"
        );
        assert_eq!(st.pending.get(&part(0)).map(|m| m.len()), Some(1));
        // Round 2 sends it.
        let upto = st.ack_seq;
        st.pending.clear();
        let mut answered = CommitResults::new();
        answered.insert(part(0).tp, Ok(()));
        st.round_answered(upto, &answered, [], []);
        let results = rx
            .try_recv()
            .expect("answered once every acknowledgement was");
        assert!(matches!(results.get(&part(0).tp), Some(Ok(()))));
        assert!(matches!(results.get(&part(1).tp), Some(Ok(()))));
    }

    /// What a round hands back that was answered (a failed acknowledgement, its error in the
    /// results) or that the application did not acknowledge (the releases of fetched gaps)
    /// does not hold a `commit_sync` back.
    #[test]
    fn a_commit_is_answered_when_only_failed_acknowledgements_and_gaps_come_back() {
        let (mut st, mut rx) = acks_and_a_commit(&[(0, 5)]);
        let upto = st.ack_seq;
        let back = std::mem::take(&mut st.pending).into_iter();
        let mut answered = CommitResults::new();
        answered.insert(part(0).tp, Err(Error::State("refused".into())));
        let gap = (part(1), BTreeMap::from([(3, 2)]));
        st.round_answered(upto, &answered, back, [gap]);
        let results = rx.try_recv().expect("answered with the failure");
        assert!(matches!(results.get(&part(0).tp), Some(Err(_))));
        // Both are sent again by the next round.
        assert_eq!(st.pending.len(), 2);
    }
}
