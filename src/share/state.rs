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
