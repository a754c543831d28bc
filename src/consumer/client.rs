//! The application-facing [`Consumer`]: starts the background tasks (fetch manager,
//! membership task, auto commit), receives messages (`recv`, batches, `Stream`) and closes.
//! Every other operation lives on [`ConsumerHandle`] (`handle.rs`), which `Consumer`
//! dereferences to.

use std::future::poll_fn;
use std::ops::Deref;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_core::Stream;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use super::fetcher;
use super::group;
use super::group_consumer;
use super::handle::ConsumerHandle;
use super::listener::RebalanceListener;
use super::message::Message;
use super::offsets;
use super::state::{PartState, Shared, State};
use crate::backoff::Deadline;
use crate::cluster::{Cluster, ClusterOptions};
use crate::config::security::OAuthSlot;
use crate::config::OAuthTokenProvider;
use crate::config::{ClientConfig, ConsumerConfig, GroupProtocol};
use crate::error::{ConfigError, Error, KafkaCode, Result};
use crate::types::TopicPartition;

/// A Kafka consumer: assign partitions or subscribe as a group member, then
/// [`recv`](Consumer::recv) messages.
///
/// Everything but receiving lives on [`ConsumerHandle`], which `Consumer` dereferences to
/// (so `consumer.commit(..)`, `consumer.seek(..)` work directly) and which the rebalance
/// listener receives.
///
/// Background tasks (fetchers, group membership, auto commit) run on the tokio runtime
/// independently of `recv`. [`Consumer::close`] commits (with auto commit), leaves the group
/// and stops them within a bound; dropping the consumer stops them at once without blocking
/// and without leaving the group (the group notices after `session.timeout.ms`).
pub struct Consumer {
    handle: ConsumerHandle,
    close_tx: Option<mpsc::Sender<oneshot::Sender<()>>>,
}

impl std::fmt::Debug for Consumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Consumer")
            .field("group_id", &self.handle.shared.cfg.group_id)
            .finish()
    }
}

/// Builds a [`Consumer`] with options that are not configuration keys.
///
/// ```no_run
/// # async fn f(listener: std::sync::Arc<dyn kafka_sdk::RebalanceListener>) -> kafka_sdk::Result<()> {
/// use kafka_sdk::{ClientConfig, Consumer};
/// let config = ClientConfig::new()
///     .with("bootstrap.servers", "127.0.0.1:9092")
///     .with("group.id", "billing");
/// let consumer = Consumer::builder(&config).rebalance_listener(listener).build().await?;
/// # Ok(()) }
/// ```
#[must_use]
pub struct ConsumerBuilder {
    config: ClientConfig,
    listener: Option<Arc<dyn RebalanceListener>>,
    oauth: OAuthSlot,
    stats_handler: Option<crate::stats::Handler>,
    lazy: bool,
}

impl std::fmt::Debug for ConsumerBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConsumerBuilder")
            .field("config", &self.config)
            .field("listener", &self.listener.is_some())
            .finish()
    }
}

impl ConsumerBuilder {
    /// Gets OAUTHBEARER tokens from `provider` (for `sasl.mechanism=OAUTHBEARER`; wins over
    /// `sasl.oauthbearer.config`). Asked on every new connection and re-authentication.
    pub fn oauth_token_provider(mut self, provider: Arc<dyn OAuthTokenProvider>) -> Self {
        self.oauth = OAuthSlot(Some(provider));
        self
    }

    /// Calls `listener` around every rebalance of the group (assigned / revoked / lost);
    /// see [`RebalanceListener`].
    pub fn rebalance_listener(mut self, listener: Arc<dyn RebalanceListener>) -> Self {
        self.listener = Some(listener);
        self
    }

    /// Calls `handler` with every statistics snapshot (`statistics.interval.ms` > 0), on the
    /// statistics task: keep it short. See [`crate::stats`].
    pub fn statistics_handler(
        mut self,
        handler: impl Fn(Arc<crate::stats::Statistics>) + Send + Sync + 'static,
    ) -> Self {
        self.stats_handler = Some(Arc::new(handler));
        self
    }

    /// With `true`, [`build`](Self::build) does not wait for the cluster (as librdkafka and
    /// the Java client): it returns once the configuration is valid, and the consumer
    /// bootstraps in the background; fetching, group membership and commits wait and retry
    /// as they do when the cluster goes away later. Off by default: `build` then fails when
    /// no broker answers. The rdkafka drop-in uses it (rdkafka's `create()` never waits for
    /// the cluster).
    pub fn lazy_bootstrap(mut self, lazy: bool) -> Self {
        self.lazy = lazy;
        self
    }

    /// Validates the configuration, bootstraps and starts the background tasks (fetchers,
    /// group membership, auto commit); see [`lazy_bootstrap`](Self::lazy_bootstrap) for not
    /// waiting for the cluster.
    pub async fn build(self) -> Result<Consumer> {
        let mut cfg = self.config.consumer()?;
        self.oauth.apply(&mut cfg.common.security);
        Consumer::start(cfg, self.listener, self.stats_handler, self.lazy).await
    }
}

impl Deref for Consumer {
    type Target = ConsumerHandle;
    fn deref(&self) -> &ConsumerHandle {
        &self.handle
    }
}

impl Consumer {
    /// Connects a consumer configured by `config` (see [`crate::config`] for the keys).
    /// Fails when the configuration is invalid or no bootstrap broker answers within the
    /// connection setup timeout.
    ///
    /// ```no_run
    /// # async fn f() -> kafka_sdk::Result<()> {
    /// use kafka_sdk::{ClientConfig, Consumer};
    /// let config = ClientConfig::new()
    ///     .with("bootstrap.servers", "127.0.0.1:9092")
    ///     .with("group.id", "billing");
    /// let consumer = Consumer::new(&config).await?;
    /// consumer.subscribe(&["invoices"])?;
    /// while let Ok(message) = consumer.recv().await {
    ///     println!("{}@{}: {:?}", message.partition(), message.offset(), message.value());
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn new(config: &ClientConfig) -> Result<Consumer> {
        Consumer::builder(config).build().await
    }

    /// A builder, for the options that are not configuration keys (a rebalance listener).
    pub fn builder(config: &ClientConfig) -> ConsumerBuilder {
        ConsumerBuilder {
            config: config.clone(),
            listener: None,
            oauth: OAuthSlot::default(),
            stats_handler: None,
            lazy: false,
        }
    }

    async fn start(
        cfg: ConsumerConfig,
        listener: Option<Arc<dyn RebalanceListener>>,
        stats_handler: Option<crate::stats::Handler>,
        lazy: bool,
    ) -> Result<Consumer> {
        if let Some(g) = &cfg.group_id {
            if g.is_empty() {
                return Err(ConfigError::InvalidValue {
                    key: "group.id".into(),
                    value: String::new(),
                    expected: "a non-empty group id".into(),
                }
                .into());
            }
        }
        let opts = ClusterOptions::from(&cfg.common);
        let cluster = if lazy {
            Cluster::connect_lazily(opts)?
        } else {
            Cluster::connect(opts).await?
        };
        let shared = Shared::new(cluster, cfg);
        let (stats_tx, stats_rx) = tokio::sync::watch::channel(None);
        let _ = shared.stats_rx.set(stats_rx);
        crate::stats::spawn(
            shared.cfg.common.statistics_interval,
            Arc::downgrade(&shared),
            Shared::statistics,
            stats_handler,
            stats_tx,
        );
        let handle = ConsumerHandle {
            shared: shared.clone(),
        };
        tokio::spawn(fetcher::manager(shared.clone()));
        let mut close_tx = None;
        if shared.cfg.group_id.is_some() {
            let (tx, rx) = mpsc::channel(1);
            close_tx = Some(tx);
            match shared.cfg.group_protocol {
                GroupProtocol::Classic => {
                    tokio::spawn(group::run(handle.clone(), listener, rx));
                }
                GroupProtocol::Consumer => {
                    tokio::spawn(group_consumer::run(handle.clone(), listener, rx));
                }
            }
            if shared.cfg.enable_auto_commit {
                tokio::spawn(auto_commit_task(shared.clone()));
            }
        }
        Ok(Consumer { handle, close_tx })
    }

    /// The handle for operations other than receiving (cloneable, `Send + Sync`).
    pub fn handle(&self) -> ConsumerHandle {
        self.handle.clone()
    }

    /// Receives the next message (or error). Cancellation safe: a message is removed from
    /// the buffer only when this future returns it.
    ///
    /// Errors are per-event (an unknown topic, a partition stopped by `auto.offset.reset =
    /// none`, a fatal group error, ...); the consumer keeps working after most of them, except
    /// after [`Error::Closed`] and fatal group errors (e.g. FENCED_INSTANCE_ID).
    pub async fn recv(&self) -> Result<Message> {
        poll_fn(|cx| self.poll_recv(cx)).await
    }

    /// Polls for the next message; the basis of [`Consumer::recv`] and the [`Stream`].
    ///
    /// Takes part in tokio's cooperative scheduling like tokio's own channels: a task whose
    /// budget is used up gets `Pending` (and is woken at once), so a loop over buffered
    /// messages lets the consumer's fetch task, and the worker's other tasks, run.
    pub fn poll_recv(&self, cx: &mut Context<'_>) -> Poll<Result<Message>> {
        // Without this, on a runtime with one worker thread the fetch task only ran once the
        // buffer was empty: the next fetch was sent only then, and the loop waited for it.
        let coop = std::task::ready!(tokio::task::coop::poll_proceed(cx));
        let shared = &self.shared;
        shared.touch_poll();
        let mut st = shared.lock();
        let max_run = shared.cfg.max_poll_records.max(1);
        let caps = Caps::of(shared, st.parts.len());
        match take_one(&mut st, shared.cfg.enable_auto_offset_store, max_run, caps) {
            Some((r, wake_work)) => {
                drop(st);
                if wake_work {
                    shared.notify_work();
                }
                if let Ok(m) = &r {
                    let size = m.key().map_or(0, |k| k.len()) + m.value().map_or(0, |v| v.len());
                    crate::observe::consumer_received(
                        &shared.cfg.common.client_id,
                        m.topic(),
                        size,
                    );
                    crate::observe::received(
                        m,
                        &shared.cfg.common.client_id,
                        shared.cfg.group_id.as_deref(),
                    );
                }
                coop.made_progress();
                Poll::Ready(r)
            }
            None => {
                if !st.waiters.iter().any(|w| w.will_wake(cx.waker())) {
                    st.waiters.push(cx.waker().clone());
                }
                Poll::Pending
            }
        }
    }

    /// Receives up to `max` messages: waits up to `timeout` for the first one, then takes
    /// whatever else is already buffered without waiting. Returns an empty vector on
    /// timeout. An error is returned only when it comes first (later ones stay queued).
    pub async fn recv_batch(&self, max: usize, timeout: Duration) -> Result<Vec<Message>> {
        let mut out = Vec::new();
        if max == 0 {
            return Ok(out);
        }
        match tokio::time::timeout(timeout, self.recv()).await {
            Err(_) => return Ok(out),
            Ok(r) => out.push(r?),
        }
        let shared = &self.shared;
        let mut wake = false;
        {
            let mut st = shared.lock();
            let caps = Caps::of(shared, st.parts.len());
            while out.len() < max {
                if !st.errors.is_empty() || !st.eof.is_empty() {
                    break;
                }
                match take_one(
                    &mut st,
                    shared.cfg.enable_auto_offset_store,
                    usize::MAX,
                    caps,
                ) {
                    Some((Ok(m), w)) => {
                        wake |= w;
                        out.push(m);
                    }
                    Some((Err(e), _)) => {
                        st.errors.push_front(e);
                        break;
                    }
                    None => break,
                }
            }
        }
        if wake {
            shared.notify_work();
        }
        Ok(out)
    }

    /// The consumer as a [`Stream`] of messages (ends never; errors are items).
    pub fn stream(&self) -> MessageStream<'_> {
        MessageStream { consumer: self }
    }

    /// Closes the consumer within `request.timeout.ms`: commits the stored offsets (with
    /// auto commit), waits for a listener callback in progress to return, runs the
    /// listener's `on_revoked` for the partitions still owned, leaves the group (dynamic
    /// members) and stops every task. Never hangs, even when the brokers are gone.
    pub async fn close(self) -> Result<()> {
        let t = self.shared.cfg.common.request_timeout;
        self.close_with_timeout(t).await
    }

    /// [`Consumer::close`] with an explicit bound.
    pub async fn close_with_timeout(mut self, timeout: Duration) -> Result<()> {
        let deadline = Deadline::after(timeout);
        let shared = self.shared.clone();
        let mut result = Ok(());
        if shared.cfg.group_id.is_some() && shared.cfg.enable_auto_commit {
            let offsets = self.handle.stored_offsets(None);
            let r = tokio::time::timeout(
                deadline.remaining(),
                offsets::commit(&shared, &offsets, deadline),
            )
            .await
            .unwrap_or_else(|_| Err(Error::timeout("commit on close", timeout, true)));
            if let Err(e) = r {
                tracing::warn!(error = %e, "commit on close failed");
                result = Err(e);
            }
        }
        if let Some(tx) = self.close_tx.take() {
            let (ack_tx, ack_rx) = oneshot::channel();
            if tx.send(ack_tx).await.is_ok() {
                let _ = tokio::time::timeout(deadline.remaining(), ack_rx).await;
            }
        }
        shared.lock().closed = true;
        let _ = shared.shutdown.send(true);
        let w = shared.lock().take_waiters();
        Shared::wake(w);
        result
    }
}

impl Drop for Consumer {
    fn drop(&mut self) {
        // Never blocks: tasks see the flag and stop; no LeaveGroup is sent.
        self.shared.shutdown.send_replace(true);
        let w = {
            let mut st = self.shared.lock();
            st.closed = true;
            st.take_waiters()
        };
        Shared::wake(w);
    }
}

/// Prefetch bounds `take_one` compares against to decide whether to wake the fetchers.
#[derive(Clone, Copy)]
struct Caps {
    partition: usize,
    /// [`fetcher::fetch_at`].
    fetch_at: usize,
}

impl Caps {
    fn of(shared: &Shared, partitions: usize) -> Caps {
        Caps {
            partition: fetcher::partition_cap(shared, partitions),
            fetch_at: fetcher::fetch_at(shared),
        }
    }
}

/// Takes the next event from the state: an error, an EOF, or a message (round robin over
/// partitions, up to `max_run` in a row from one partition). The `bool` says whether the
/// fetchers should be woken: the take emptied a partition, or brought its buffer under its
/// prefetch bound (or the total to where a fetch can go out again), so the next fetch
/// overlaps with the application's processing instead of starting only once everything is
/// drained.
fn take_one(
    st: &mut State,
    auto_store: bool,
    max_run: usize,
    caps: Caps,
) -> Option<(Result<Message>, bool)> {
    if let Some(e) = st.errors.pop_front() {
        return Some((Err(e), false));
    }
    if st.closed {
        return Some((Err(Error::Closed), false));
    }
    if let Some(e) = &st.fatal {
        return Some((Err(e.clone()), false));
    }
    if let Some((tp, off)) = st.eof.pop_front() {
        return Some((
            Err(Error::State(format!("partition EOF: {tp} at offset {off}"))),
            false,
        ));
    }
    if st.buffered_bytes == 0 {
        return None;
    }
    let ready = |p: &PartState| !p.buffer.is_empty() && !p.paused && !p.revoking && !p.assigning;
    // Stay on the current partition for up to max_run messages (the common case: no
    // `TopicPartition` clone).
    let stay = st.cursor_run < max_run
        && st
            .cursor
            .as_ref()
            .and_then(|c| st.parts.get(c))
            .is_some_and(ready);
    if !stay {
        let next = match &st.cursor {
            Some(c) => st
                .parts
                .range::<TopicPartition, _>((
                    std::ops::Bound::Excluded(c),
                    std::ops::Bound::Unbounded,
                ))
                .chain(st.parts.range::<TopicPartition, _>(..=c))
                .find(|(_, p)| ready(p))
                .map(|(tp, _)| tp.clone()),
            None => st
                .parts
                .iter()
                .find(|(_, p)| ready(p))
                .map(|(tp, _)| tp.clone()),
        };
        st.cursor = Some(next?);
        st.cursor_run = 0;
    }
    let State {
        parts,
        cursor,
        cursor_run,
        buffered_bytes,
        fetch_reserved,
        rxmsgs,
        rxbytes,
        ..
    } = st;
    let p = parts.get_mut(cursor.as_ref()?)?;
    let m = p.buffer.pop_front()?;
    let size = m.buffered_size();
    let payload = (m.key().map_or(0, |k| k.len()) + m.value().map_or(0, |v| v.len())) as u64;
    p.rxmsgs += 1;
    p.rxbytes += payload;
    *rxmsgs += 1;
    *rxbytes += payload;
    p.buffer_bytes -= size;
    // The last buffered message: the position moves to the fetch offset, past any control
    // batches after the message, with the epoch of the last batch passed (KIP-320).
    let (next, epoch) = match p.fetch_offset.filter(|_| p.buffer.is_empty()) {
        Some(f) => (f, p.fetch_epoch.or(m.leader_epoch())),
        None => (m.offset + 1, m.leader_epoch()),
    };
    p.position = Some(next);
    p.position_epoch = epoch;
    if auto_store {
        p.stored = Some((next, epoch));
    }
    let emptied = p.buffer.is_empty();
    if emptied && p.buffer.capacity() > EMPTY_BUFFER_KEEP {
        // A buffer keeps the room of the largest fetch it held (~9,000 messages of 100 B
        // per 1 MiB): every partition of a wide assignment kept ~1 MB of empty slots.
        p.buffer = std::collections::VecDeque::new();
    }
    let under_partition_cap =
        p.buffer_bytes < caps.partition && p.buffer_bytes + size >= caps.partition;
    *buffered_bytes -= size;
    // Fetch tasks wait while the buffers and the fetches in flight fill the bound.
    let used = *buffered_bytes + *fetch_reserved;
    let under_total_cap = used <= caps.fetch_at && used + size > caps.fetch_at;
    *cursor_run += 1;
    Some((Ok(m), emptied || under_partition_cap || under_total_cap))
}

/// Slots an emptied partition buffer may keep (larger ones are freed).
const EMPTY_BUFFER_KEEP: usize = 64;

/// A [`Stream`] over a consumer's messages (see [`Consumer::stream`]).
#[derive(Debug)]
pub struct MessageStream<'a> {
    consumer: &'a Consumer,
}

impl Stream for MessageStream<'_> {
    type Item = Result<Message>;
    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.consumer.poll_recv(cx).map(Some)
    }
}

impl Stream for Consumer {
    type Item = Result<Message>;
    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.get_mut().poll_recv(cx).map(Some)
    }
}

/// Commits the stored offsets every `auto.commit.interval.ms`.
async fn auto_commit_task(shared: Arc<Shared>) {
    let handle = ConsumerHandle {
        shared: shared.clone(),
    };
    let interval = shared
        .cfg
        .auto_commit_interval
        .max(Duration::from_millis(10));
    let mut next = Instant::now() + interval;
    loop {
        tokio::select! {
            _ = tokio::time::sleep_until(next) => {}
            _ = shared.shutdown_signal() => return,
        }
        next = Instant::now() + interval;
        let offsets = handle.stored_offsets(None);
        if offsets.is_empty() {
            continue;
        }
        let deadline = Deadline::after(shared.cfg.common.request_timeout.min(interval * 4));
        if let Err(e) = offsets::commit(&shared, &offsets, deadline).await {
            if e.code() == Some(KafkaCode::REBALANCE_IN_PROGRESS) {
                tracing::debug!(error = %e, "auto commit skipped during rebalance");
            } else {
                tracing::warn!(error = %e, "auto commit failed");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::consumer::state::Reset;
    use crate::types::TopicPartition;
    use bytes::Bytes;

    /// A partition buffer does not keep the room of its largest fetch once `recv` emptied
    /// it: a consumer of many partitions kept ~1 MB of empty slots per partition (145 MB
    /// RSS after reading 1M records of 100 B from 100 partitions, with 2 MB buffered).
    #[test]
    fn an_emptied_partition_buffer_is_freed() {
        let tp = TopicPartition::new("t", 0);
        let mut st = State::default();
        let mut p = PartState::new(Reset::Policy);
        p.position = Some(0);
        p.fetch_offset = Some(9_000);
        for offset in 0..9_000 {
            let m = Message {
                topic: Arc::from("t"),
                partition: 0,
                leader_epoch: 0,
                offset,
                timestamp: 0,
                timestamp_type: crate::record::TimestampType::CreateTime,
                key: None,
                value: Some(Bytes::from_static(b"value")),
                headers: Box::new([]),
            };
            let size = m.buffered_size();
            p.buffer_bytes += size;
            st.buffered_bytes += size;
            p.buffer.push_back(m);
        }
        assert!(p.buffer.capacity() >= 9_000);
        st.parts.insert(tp.clone(), p);
        let caps = Caps {
            partition: 1 << 20,
            fetch_at: 63 << 20,
        };
        for _ in 0..9_000 {
            let (m, _) = take_one(&mut st, true, 1_000, caps).expect("a message");
            m.unwrap();
        }
        let p = &st.parts[&tp];
        assert!(p.buffer.is_empty());
        assert!(
            p.buffer.capacity() <= EMPTY_BUFFER_KEEP,
            "emptied buffer kept {} slots",
            p.buffer.capacity()
        );
        assert_eq!(st.buffered_bytes, 0);
    }
}
