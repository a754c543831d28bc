//! [`ShareConsumer`] and [`ShareConsumerBuilder`]: subscribe, receive, acknowledge, commit,
//! close.

use std::future::poll_fn;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use tokio::sync::oneshot;

use super::fetch;
use super::membership;
use super::record::{AcknowledgeType, ShareRecord};
use super::state::{CommitResults, CommitWaiter, Shared, State};
use crate::cluster::{Cluster, ClusterOptions};
use crate::config::{ClientConfig, ShareAcknowledgementMode, ShareConsumerConfig};
use crate::error::{Error, Result};
use crate::types::{validate_topic_name, TopicPartition};

/// A member of a KIP-932 share group ("queues for Kafka"): the group's members share the
/// records of its topics' partitions, each record going to one member at a time, acquired
/// for a limited time and acknowledged record by record.
///
/// ```no_run
/// # async fn f() -> kafka_sdk::Result<()> {
/// use kafka_sdk::{AcknowledgeType, ClientConfig, ShareConsumer};
/// let config = ClientConfig::new()
///     .with("bootstrap.servers", "127.0.0.1:9092")
///     .with("group.id", "work-queue")
///     .with("share.acknowledgement.mode", "explicit");
/// let consumer = ShareConsumer::new(&config).await?;
/// consumer.subscribe(&["jobs"])?;
/// loop {
///     let record = consumer.recv().await?;
///     let ok = record.value().is_some(); // process it
///     let ack = if ok { AcknowledgeType::Accept } else { AcknowledgeType::Reject };
///     consumer.acknowledge(&record, ack)?;
///     # break;
/// }
/// consumer.commit_sync().await?;
/// consumer.close().await?;
/// # Ok(()) }
/// ```
///
/// Background tasks run on the tokio runtime: the group heartbeat (membership, assignment
/// by the broker) and the fetch driver (ShareFetch / ShareAcknowledge with a share session
/// per broker). [`close`](Self::close) releases the records the consumer holds and leaves
/// the group; dropping it stops the tasks without blocking, and the records it held come
/// back to the group after their acquisition lock (`group.share.record.lock.duration.ms`).
pub struct ShareConsumer {
    shared: Arc<Shared>,
    fetch_close: Option<oneshot::Sender<oneshot::Sender<()>>>,
    leave: Option<oneshot::Sender<oneshot::Sender<()>>>,
}

impl std::fmt::Debug for ShareConsumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShareConsumer")
            .field("group_id", &self.shared.cfg.group_id)
            .field("member_id", &self.shared.member_id)
            .finish()
    }
}

/// Builds a [`ShareConsumer`] (no options beyond the configuration keys yet; the builder
/// keeps the constructor shape of the other clients).
#[must_use]
#[derive(Debug)]
pub struct ShareConsumerBuilder {
    config: ClientConfig,
}

impl ShareConsumerBuilder {
    /// Validates the configuration (`group.id` is required), bootstraps and starts the
    /// background tasks.
    pub async fn build(self) -> Result<ShareConsumer> {
        ShareConsumer::start(self.config.share_consumer()?).await
    }
}

impl ShareConsumer {
    /// Connects a share consumer configured by `config` (see
    /// [`ShareConsumerConfig`](crate::config::ShareConsumerConfig) for the keys it reads).
    pub async fn new(config: &ClientConfig) -> Result<ShareConsumer> {
        ShareConsumer::builder(config).build().await
    }

    /// A builder, with the same shape as the other clients'.
    pub fn builder(config: &ClientConfig) -> ShareConsumerBuilder {
        ShareConsumerBuilder {
            config: config.clone(),
        }
    }

    async fn start(cfg: ShareConsumerConfig) -> Result<ShareConsumer> {
        let cluster = Cluster::connect(ClusterOptions::from(&cfg.consumer.common)).await?;
        let shared = Arc::new(Shared::new(cluster, cfg));
        let (fetch_tx, fetch_rx) = oneshot::channel();
        let (leave_tx, leave_rx) = oneshot::channel();
        tokio::spawn(fetch::run(shared.clone(), fetch_rx));
        tokio::spawn(membership::run(shared.clone(), leave_rx));
        Ok(ShareConsumer {
            shared,
            fetch_close: Some(fetch_tx),
            leave: Some(leave_tx),
        })
    }

    /// The member id this consumer generated (a UUID) and the group knows it by.
    pub fn member_id(&self) -> &str {
        &self.shared.member_id
    }

    /// The share group (`group.id`).
    pub fn group_id(&self) -> &str {
        &self.shared.cfg.group_id
    }

    /// Subscribes to `topics`, replacing the previous subscription (an empty list
    /// unsubscribes and leaves the group). The group coordinator assigns the partitions.
    pub fn subscribe(&self, topics: &[&str]) -> Result<()> {
        for t in topics {
            validate_topic_name(t)?;
        }
        self.shared.cluster.track_topics(topics.iter().copied());
        {
            let mut st = self.shared.lock();
            st.subscription = topics.iter().map(|t| t.to_string()).collect();
            st.subscription_version += 1;
        }
        self.shared.membership.notify_one();
        Ok(())
    }

    /// Drops the subscription and leaves the group (records held stay held until
    /// acknowledged or their lock expires).
    pub fn unsubscribe(&self) -> Result<()> {
        self.subscribe(&[])
    }

    /// The subscribed topics, sorted.
    pub fn subscription(&self) -> Vec<String> {
        self.shared.lock().subscription.iter().cloned().collect()
    }

    /// The partitions the group coordinator assigned to this member (those whose topic is
    /// in the client's metadata), sorted. Other members may be assigned the same ones.
    pub fn assignment(&self) -> Vec<TopicPartition> {
        let assignment = self.shared.lock().assignment.clone();
        let snap = self.shared.cluster.metadata();
        let mut out: Vec<TopicPartition> = assignment
            .iter()
            .filter_map(|(id, ps)| {
                let t = snap.topics.values().find(|t| t.id == *id)?;
                Some(ps.iter().map(|p| TopicPartition::new(t.name.clone(), *p)))
            })
            .flatten()
            .collect();
        out.sort();
        out
    }

    /// Receives the next record. In implicit mode, every record handed out before is
    /// accepted first. Cancellation safe: a record is handed out only when this returns it.
    ///
    /// Errors: [`Error::Closed`] after `close`; broker errors of the group or of a
    /// partition (a fatal one, e.g. the group id belonging to a consumer group, is returned
    /// by every later call).
    pub async fn recv(&self) -> Result<ShareRecord> {
        let mut v = poll_fn(|cx| self.poll_take(cx, 1)).await?;
        v.pop()
            .ok_or_else(|| Error::State("share consumer returned no record".into()))
    }

    /// Receives the records at hand, at least one and at most `max.poll.records` (waiting
    /// for the first). In implicit mode, every record handed out before is accepted first.
    pub async fn recv_batch(&self) -> Result<Vec<ShareRecord>> {
        let max = self.shared.cfg.consumer.max_poll_records.max(1);
        poll_fn(|cx| self.poll_take(cx, max)).await
    }

    fn poll_take(&self, cx: &mut Context<'_>, max: usize) -> Poll<Result<Vec<ShareRecord>>> {
        let shared = &self.shared;
        if shared.is_closing() {
            return Poll::Ready(Err(Error::Closed));
        }
        let mut st = shared.lock();
        if let Some((e, sticky)) = &st.error {
            let e = e.clone();
            if !*sticky {
                st.error = None;
            }
            return Poll::Ready(Err(e));
        }
        let mut notify = self.implicit() && accept_delivered(&mut st);
        let now = Instant::now();
        let mut out = Vec::new();
        while out.len() < max {
            match st.buffer.pop_front() {
                // Its lock has expired: the group hands it out again, do not process it.
                Some(r) if r.lock_expires <= now => continue,
                Some(r) => {
                    st.delivered
                        .entry(r.part())
                        .or_default()
                        .insert(r.message.offset);
                    out.push(r);
                }
                None => break,
            }
        }
        let res = if out.is_empty() {
            st.demand = true;
            if !st.waiters.iter().any(|w| w.will_wake(cx.waker())) {
                st.waiters.push(cx.waker().clone());
            }
            notify = true;
            Poll::Pending
        } else {
            Poll::Ready(Ok(out))
        };
        drop(st);
        if notify {
            shared.work.notify_one();
        }
        res
    }

    fn implicit(&self) -> bool {
        self.shared.cfg.acknowledgement_mode == ShareAcknowledgementMode::Implicit
    }

    /// Acknowledges one record this consumer received and has not acknowledged yet
    /// (explicit mode only): `Accept`, `Release` (delivered again, with a higher delivery
    /// count) or `Reject` (never delivered again). The acknowledgement goes to the broker
    /// with the next request (at once when no fetch is due); [`commit_sync`](Self::commit_sync)
    /// waits for the outcome.
    pub fn acknowledge(&self, record: &ShareRecord, ack: AcknowledgeType) -> Result<()> {
        if self.implicit() {
            return Err(Error::State(
                "acknowledge needs share.acknowledgement.mode=explicit (implicit mode \
                 accepts every record at the next receive)"
                    .into(),
            ));
        }
        let part = record.part();
        {
            let mut st = self.shared.lock();
            let held = st
                .delivered
                .get_mut(&part)
                .is_some_and(|s| s.remove(&record.message.offset));
            if !held {
                return Err(Error::State(format!(
                    "record {}@{} is not held by this consumer (acknowledged already, or \
                     not received from it)",
                    part.tp, record.message.offset
                )));
            }
            if st.delivered.get(&part).is_some_and(|s| s.is_empty()) {
                st.delivered.remove(&part);
            }
            st.queue_ack(part, record.message.offset, ack.code());
        }
        self.shared.work.notify_one();
        Ok(())
    }

    /// Sends the acknowledgements made so far (in implicit mode: accepts every record
    /// handed out first) and waits for the broker's answer, bounded by
    /// `request.timeout.ms`. Returns the outcome of every partition acknowledged (one
    /// waiting for a leader or a share session is waited for within the bound): `Ok` means
    /// the broker took them; an error from the broker (e.g. INVALID_RECORD_STATE after the
    /// lock expired) means they did not take effect, and the records may be delivered
    /// again; a connection error or timeout leaves it unknown (they are sent again in the
    /// background).
    pub async fn commit_sync(&self) -> Result<CommitResults> {
        if self.shared.is_closing() {
            return Err(Error::Closed);
        }
        let rx = {
            let mut st = self.shared.lock();
            if self.implicit() {
                accept_delivered(&mut st);
            }
            if st.ack_done >= st.ack_seq {
                return Ok(CommitResults::new());
            }
            let (tx, rx) = oneshot::channel();
            let target = st.ack_seq;
            st.commit_waiters.push(CommitWaiter {
                target,
                results: CommitResults::new(),
                tx,
            });
            rx
        };
        self.shared.work.notify_one();
        let bound = self.shared.cluster.options().connection.request_timeout
            + self.shared.cfg.consumer.fetch_max_wait;
        match tokio::time::timeout(bound, rx).await {
            Ok(Ok(results)) => Ok(results),
            Ok(Err(_)) => Err(Error::Closed),
            Err(_) => Err(Error::timeout("share acknowledgement commit", bound, true)),
        }
    }

    /// Like [`commit_sync`](Self::commit_sync) without waiting: the acknowledgements go out
    /// at once; failures are logged (`tracing`, debug level).
    pub fn commit_async(&self) {
        {
            let mut st = self.shared.lock();
            if self.implicit() {
                accept_delivered(&mut st);
            }
        }
        self.shared.work.notify_one();
    }

    /// Closes the consumer within `request.timeout.ms`: releases the records it holds and
    /// has not handed out (in explicit mode also those handed out and not acknowledged; in
    /// implicit mode those are accepted, as the next receive would), sends the pending
    /// acknowledgements and closes the share sessions, then leaves the group (epoch -1).
    pub async fn close(mut self) -> Result<()> {
        self.shared.closing.store(true, Ordering::Release);
        let bound = self.shared.cluster.options().connection.request_timeout;
        let deadline = tokio::time::Instant::now() + bound;
        wake_all(&self.shared);
        if let Some(tx) = self.fetch_close.take() {
            let (done, rx) = oneshot::channel();
            if tx.send(done).is_ok() {
                let _ = tokio::time::timeout_at(deadline, rx).await;
            }
        }
        if let Some(tx) = self.leave.take() {
            let (done, rx) = oneshot::channel();
            if tx.send(done).is_ok() {
                let left = tokio::time::timeout_at(deadline, rx).await;
                if left.is_err() {
                    return Err(Error::timeout("leaving the share group", bound, true));
                }
            }
        }
        Ok(())
    }
}

impl Drop for ShareConsumer {
    fn drop(&mut self) {
        // Dropping the senders stops the tasks; nothing is sent to the brokers.
        self.shared.closing.store(true, Ordering::Release);
        wake_all(&self.shared);
    }
}

fn wake_all(shared: &Shared) {
    let wakers = std::mem::take(&mut shared.lock().waiters);
    super::state::wake(wakers);
    shared.work.notify_one();
    shared.membership.notify_one();
}

/// Implicit mode: every record handed out and not acknowledged is accepted. `true` when
/// there was one.
fn accept_delivered(st: &mut State) -> bool {
    if st.delivered.is_empty() {
        return false;
    }
    let accept = AcknowledgeType::Accept.code();
    for (p, offsets) in std::mem::take(&mut st.delivered) {
        for o in offsets {
            st.queue_ack(p.clone(), o, accept);
        }
    }
    true
}
