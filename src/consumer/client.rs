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
use super::state::{Chunk, PartState, Shared, State};
use crate::backoff::Deadline;
use crate::cluster::{Cluster, ClusterOptions};
use crate::config::security::OAuthSlot;
use crate::config::OAuthTokenProvider;
use crate::config::{ClientConfig, ConsumerConfig, GroupProtocol};
use crate::error::{ConfigError, Error, KafkaCode, Result};

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
        let marks = fetcher::Marks::of(shared, &st);
        match take_one(&mut st, shared.cfg.enable_auto_offset_store, marks) {
            Some((r, wake)) => {
                drop(st);
                wake.send(shared);
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
        let mut wake = Wake::default();
        {
            let mut st = shared.lock();
            let marks = fetcher::Marks::of(shared, &st);
            while out.len() < max {
                if !st.errors.is_empty() || !st.eof.is_empty() {
                    break;
                }
                match take_one(&mut st, shared.cfg.enable_auto_offset_store, marks) {
                    Some((Ok(m), w)) => {
                        wake.fetchers |= w.fetchers;
                        wake.decoders |= w.decoders;
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
        wake.send(shared);
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
                offsets::commit(&shared, &offsets, deadline, offsets::By::Consumer),
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

/// Whom a take wakes ([`take_one`]).
#[derive(Debug, Default, Clone, Copy)]
struct Wake {
    /// The fetch tasks and the manager ([`Shared::notify_work`]).
    fetchers: bool,
    /// The decodings waiting for room ([`Shared::decode_room`]).
    decoders: bool,
}

impl Wake {
    fn send(self, shared: &Shared) {
        if self.fetchers {
            shared.notify_work();
        } else if self.decoders {
            shared.decode_room.notify_waiters();
        }
    }
}

/// Takes the next event from the state: an error, an EOF, or a message (fetched chunks
/// whole, in the order they arrived: [`Chunk`]), and whom to wake: the fetchers when the
/// take emptied a partition, brought its buffered bytes under its cap
/// ([`fetcher::part_cap`]), or brought the buffered and reserved bytes down to `fetch_at`
/// ([`fetcher::fetch_at`], where a fetch can go out again), so the next fetch overlaps with
/// the application's processing instead of starting only once everything is drained; the
/// decodings when, while one waits, it brought a partition under
/// [`fetcher::DECODE_AHEAD`].
fn take_one(
    st: &mut State,
    auto_store: bool,
    marks: fetcher::Marks,
) -> Option<(Result<Message>, Wake)> {
    let fetch_at = marks.fetch_at;
    if let Some(e) = st.errors.pop_front() {
        return Some((Err(e), Wake::default()));
    }
    if st.closed {
        return Some((Err(Error::Closed), Wake::default()));
    }
    if let Some(e) = &st.fatal {
        return Some((Err(e.clone()), Wake::default()));
    }
    if let Some((tp, off)) = st.eof.pop_front() {
        return Some((
            Err(Error::State(format!("partition EOF: {tp} at offset {off}"))),
            Wake::default(),
        ));
    }
    if st.buffered_bytes == 0 {
        return None;
    }
    if !front_chunk_ready(st) {
        return None;
    }
    let State {
        parts,
        order,
        buffered_bytes,
        fetch_reserved,
        rxmsgs,
        rxbytes,
        ..
    } = st;
    let last = order.front()?.last;
    let p = parts.get_mut(&order.front()?.tp)?;
    let m = p.buffer.pop_front()?;
    let size = m.buffered_size();
    let payload = (m.key().map_or(0, |k| k.len()) + m.value().map_or(0, |v| v.len())) as u64;
    p.rxmsgs += 1;
    p.rxbytes += payload;
    *rxmsgs += 1;
    *rxbytes += payload;
    let under_part_cap = p.buffer_bytes >= marks.part_cap && p.buffer_bytes - size < marks.part_cap;
    let under_decode_ahead =
        p.buffer_bytes >= marks.decode_ahead && p.buffer_bytes - size < marks.decode_ahead;
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
    if p.buffer.front().is_none_or(|n| n.offset > last) {
        order.pop_front();
    }
    if emptied && p.buffer.capacity() > EMPTY_BUFFER_KEEP {
        // A buffer keeps the room of the largest fetch it held (~9,000 messages of 100 B
        // per 1 MiB): every partition of a wide assignment kept ~1 MB of empty slots. The
        // room goes to the next chunk's decode instead (`vec_pool`).
        super::vec_pool::give_back(Vec::from(std::mem::take(&mut p.buffer)));
    }
    *buffered_bytes -= size;
    // Fetch tasks wait while the buffers and the fetches in flight fill the bound.
    let used = *buffered_bytes + *fetch_reserved;
    let under_total_cap = used <= fetch_at && used + size > fetch_at;
    let wake = Wake {
        fetchers: emptied || under_part_cap || under_total_cap,
        decoders: under_decode_ahead,
    };
    Some((Ok(m), wake))
}

/// Brings a chunk that can be delivered now to the front of `st.order`: chunks already
/// delivered (or left behind by a seek, or of a partition no longer assigned) are dropped,
/// chunks of partitions that cannot deliver now (paused, being revoked, waiting for
/// `on_assigned`) go to the back, keeping their order among themselves. `false` when no
/// chunk can be delivered.
fn front_chunk_ready(st: &mut State) -> bool {
    let ready = |p: &PartState| !p.paused && !p.revoking && !p.assigning;
    let mut held = 0;
    while held < st.order.len() {
        let c = &st.order[0];
        match st.parts.get(&c.tp) {
            Some(p) if p.buffer.front().is_some_and(|m| m.offset <= c.last) => {
                if ready(p) {
                    return true;
                }
                st.order.rotate_left(1);
                held += 1;
            }
            _ => {
                st.order.pop_front();
            }
        }
    }
    // Every buffered message is covered by its partition's newest chunk; should that ever
    // not hold, deliver from the partition anyway rather than leave its messages stranded.
    let stranded = st
        .parts
        .iter()
        .filter(|(_, p)| ready(p))
        .find_map(|(tp, p)| p.buffer.back().map(|m| (tp, m.offset)));
    match stranded {
        Some((tp, last)) => {
            debug_assert!(false, "{tp}: buffered messages outside every chunk");
            st.order.push_front(Chunk {
                tp: tp.clone(),
                last,
            });
            true
        }
        None => false,
    }
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
        if let Err(e) = offsets::commit(&shared, &offsets, deadline, offsets::By::Consumer).await {
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
        st.order.push_back(Chunk {
            tp: tp.clone(),
            last: 8_999,
        });
        for _ in 0..9_000 {
            let (m, _) = take_one(&mut st, true, MARKS).expect("a message");
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

    /// A frame (one fetch response's bytes) whose drop is counted.
    struct Frame {
        data: Vec<u8>,
        dropped: Arc<std::sync::atomic::AtomicUsize>,
    }
    impl AsRef<[u8]> for Frame {
        fn as_ref(&self) -> &[u8] {
            &self.data
        }
    }
    impl Drop for Frame {
        fn drop(&mut self) {
            self.dropped
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
    }

    /// Lands `n` messages per partition for `parts` from one shared frame, as one fetch
    /// response's `apply_partition` calls would.
    fn land(st: &mut State, frame: &Bytes, parts: &[(i32, i64)], n: i64) {
        for &(partition, from) in parts {
            let tp = TopicPartition::new("t", partition);
            let p = st.parts.entry(tp.clone()).or_insert_with(|| {
                let mut p = PartState::new(Reset::Policy);
                p.position = Some(from);
                p
            });
            for offset in from..from + n {
                let m = Message {
                    topic: Arc::from("t"),
                    partition,
                    leader_epoch: 0,
                    offset,
                    timestamp: 0,
                    timestamp_type: crate::record::TimestampType::CreateTime,
                    key: None,
                    value: Some(frame.slice(0..8)),
                    headers: Box::new([]),
                };
                let size = m.buffered_size();
                p.buffer_bytes += size;
                st.buffered_bytes += size;
                p.buffer.push_back(m);
            }
            p.fetch_offset = Some(from + n);
            st.order.push_back(Chunk {
                tp,
                last: from + n - 1,
            });
        }
    }

    /// [`fetcher::fetch_at`] of the default 64 MiB bound (a quarter of it free).
    const FETCH_AT: usize = 48 << 20;
    const MARKS: fetcher::Marks = fetcher::Marks {
        fetch_at: FETCH_AT,
        part_cap: usize::MAX,
        decode_ahead: usize::MAX,
    };

    fn take(st: &mut State) -> (i32, i64) {
        let m = take_one(st, true, MARKS).expect("a message").0.unwrap();
        (m.partition(), m.offset())
    }

    /// A new partition's key shares its topic name with the topic's other keys.
    #[test]
    fn partitions_of_one_topic_share_the_name() {
        let mut st = State::default();
        st.part_entry(&TopicPartition::new("t", 3));
        st.part_entry(&TopicPartition::new("s", 0));
        st.part_entry(&TopicPartition::new("t", 1)).paused = true;
        st.part_entry(&TopicPartition::new("u", 1));
        let t: Vec<_> = st.parts.keys().filter(|k| &*k.topic == "t").collect();
        assert_eq!(t.len(), 2);
        assert!(Arc::ptr_eq(&t[0].topic, &t[1].topic));
        assert!(st.parts[&TopicPartition::new("t", 1)].paused);
        assert_eq!(st.parts.len(), 4);
    }

    /// Fetched chunks are delivered whole and in the order they arrived, so a response's
    /// frame is freed once its messages are read. Round robin over partitions (500 in a
    /// row) kept the first response's frame alive while the second one's messages were
    /// delivered: with a wide assignment every response stayed in memory until all of its
    /// partitions were drained.
    #[test]
    fn chunks_are_delivered_whole_in_arrival_order_and_free_their_frame() {
        let dropped = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let frame = |dropped: &Arc<std::sync::atomic::AtomicUsize>| {
            Bytes::from_owner(Frame {
                data: vec![7; 64],
                dropped: dropped.clone(),
            })
        };
        let mut st = State::default();
        let first = frame(&dropped);
        land(&mut st, &first, &[(0, 0), (1, 0)], 600);
        drop(first);
        let second = frame(&dropped);
        land(&mut st, &second, &[(0, 600), (1, 600)], 600);
        drop(second);
        let mut got = Vec::new();
        for _ in 0..1_200 {
            got.push(take(&mut st));
        }
        let want: Vec<(i32, i64)> = (0..600)
            .map(|o| (0, o))
            .chain((0..600).map(|o| (1, o)))
            .collect();
        assert_eq!(
            got, want,
            "the first response's chunks, whole, in arrival order"
        );
        assert_eq!(
            dropped.load(std::sync::atomic::Ordering::SeqCst),
            1,
            "the first response's frame is freed once its messages are read"
        );
        for _ in 0..1_200 {
            take(&mut st);
        }
        assert_eq!(dropped.load(std::sync::atomic::Ordering::SeqCst), 2);
        assert!(take_one(&mut st, true, MARKS).is_none());
        assert!(st.order.is_empty());
        assert_eq!(st.buffered_bytes, 0);
    }

    /// A paused partition's chunk waits while later chunks are delivered, and comes back in
    /// place on resume; a chunk left behind by a seek neither strands nor reorders messages.
    #[test]
    fn paused_and_stale_chunks_keep_every_message_in_partition_order() {
        let frame = Bytes::from(vec![1u8; 64]);
        let mut st = State::default();
        land(&mut st, &frame, &[(0, 0), (1, 0), (2, 0)], 3);
        st.parts
            .get_mut(&TopicPartition::new("t", 0))
            .unwrap()
            .paused = true;
        let got: Vec<_> = (0..6).map(|_| take(&mut st)).collect();
        assert_eq!(got, [(1, 0), (1, 1), (1, 2), (2, 0), (2, 1), (2, 2)]);
        assert!(
            take_one(&mut st, true, MARKS).is_none(),
            "only the paused one is left"
        );
        st.parts
            .get_mut(&TopicPartition::new("t", 0))
            .unwrap()
            .paused = false;
        assert_eq!(take(&mut st), (0, 0));
        // A seek back on partition 0: its buffer is dropped, refetched from offset 0 with a
        // new chunk; the old chunk (up to offset 2) is still queued before it.
        land(&mut st, &frame, &[(1, 3)], 2);
        {
            let p = st.parts.get_mut(&TopicPartition::new("t", 0)).unwrap();
            st.buffered_bytes -= std::mem::take(&mut p.buffer_bytes);
            p.buffer.clear();
        }
        land(&mut st, &frame, &[(0, 0)], 5);
        let got: Vec<_> = (0..7).map(|_| take(&mut st)).collect();
        // The stale chunk delivers partition 0's offsets up to 2, then partition 1's chunk,
        // then the rest of partition 0: every message once, in partition order.
        assert_eq!(
            got,
            [(0, 0), (0, 1), (0, 2), (1, 3), (1, 4), (0, 3), (0, 4)]
        );
        assert!(take_one(&mut st, true, MARKS).is_none());
        assert!(st.order.is_empty());
        assert_eq!(st.buffered_bytes, 0);
    }
}
