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
    /// `commit_sync` calls waiting for the acknowledgements pending when they were made.
    pub commit_waiters: Vec<oneshot::Sender<CommitResults>>,
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

pub(crate) fn wake(wakers: Vec<Waker>) {
    for w in wakers {
        w.wake();
    }
}
