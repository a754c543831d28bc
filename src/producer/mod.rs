//! The producer: an async, batching, idempotent and transactional Kafka producer.
//!
//! ```no_run
//! # async fn f() -> kafka_sdk::Result<()> {
//! use kafka_sdk::producer::{Producer, ProducerRecord};
//! use kafka_sdk::ClientConfig;
//!
//! let producer = Producer::new(&ClientConfig::new().with("bootstrap.servers", "127.0.0.1:9092")).await?;
//! // First await: the record is in the buffer (waits while `buffer.memory` is full).
//! let delivery = producer.send(ProducerRecord::new("orders").key("k").value("v")).await?;
//! // Second await: the broker acknowledged it.
//! let meta = delivery.await?;
//! println!("{}-{}@{}", meta.topic, meta.partition, meta.offset);
//! producer.close(std::time::Duration::from_secs(5)).await?;
//! # Ok(()) }
//! ```
//!
//! # Layers and state ownership
//! - [`Producer`] (cheap `Clone`): validates a record, looks up the topic's metadata (cached
//!   snapshot, else a refresh bounded by `max.block.ms`), picks the partition (the
//!   [`Partitioner`]: the one named by the `partitioner` key, see
//!   [`PartitionerKind`](partitioner::PartitionerKind), or your own), takes the record's
//!   bytes from `buffer.memory` (waiting up to what is left of `max.block.ms`, then
//!   [`Error::Timeout`]) and encodes the record into its partition's open batch. Nothing in
//!   `send` holds a lock across an `.await`. The transactional calls (`init_transactions`,
//!   `begin_transaction`, ...) are [`Producer`] methods too; they delegate to the
//!   [`transaction`] module.
//! - The *accumulator* (`accumulator.rs`) owns batching: per partition, one open batch plus a
//!   queue of closed (full) batches, each partition behind its own short `std::sync::Mutex`,
//!   and every readiness rule. A batch closes when the next record would overflow
//!   `batch.size` bytes or `batch.num.messages` records; an open batch becomes ready
//!   `linger.ms` after it was created, or at once while a flush or close runs; a batch never
//!   sent expires `delivery.timeout.ms` after it was created. Key-less records with no
//!   partitioner preference use uniform sticky partitioning (KIP-794): one partition (with a
//!   known leader) until `batch.size` bytes went to it, then another.
//! - The *sender* (`sender.rs`), one task per producer, asks the accumulator which partitions
//!   are ready (`ready`: grouped by leader from the metadata snapshot; unknown leaders trigger
//!   a refresh) and takes their batches (`drain`); it owns everything after a batch leaves the
//!   accumulator: retry queues, per-broker connections and in-flight requests. A broker's
//!   partitions are sent over two connections (lanes: its partitions dealt in turn; lane 0 is the
//!   cluster's connection, lane 1 the sender's own), so the broker can work on one request
//!   while the other lane's is on the wire. It builds at most one Produce request per lane
//!   per free in-flight slot (`max.in.flight.requests.per.connection` per lane), with at most
//!   one batch per partition, round robin over the lane's partitions, total at most
//!   `max.request.size` (a single batch is always allowed). A batch is sealed (compressed,
//!   CRC) and, with idempotence, sequenced when it is first drained. Requests are polled in
//!   the order they were made, so they reach the connection in that order; responses are
//!   handled strictly in order per lane, and a partition's requests all go over its lane. A
//!   batch goes to whichever broker leads its partition when it is
//!   (re)drained; with idempotence, or with `max.in.flight.requests.per.connection=1`
//!   without it, a partition whose leader moved first waits for its requests to the old
//!   leader (so its batches cannot overtake each other). The sender sleeps until something
//!   can change: a linger or backoff ending, a response, a connect, an epoch bump, a
//!   metadata refresh (while a leader is unknown, one per `retry.backoff.ms`), a new
//!   batch, flush or close; it never polls.
//! - *Idempotence* (`idempotence.rs`), owned by the sender: the producer id, epoch, each
//!   partition's sequences and the epoch bump (KIP-360), for idempotent and transactional
//!   producers alike, and the one InitProducerId request both use.
//! - Completion: one shared completion per batch (`delivery.rs`); every [`DeliveryFuture`] of
//!   the batch's records polls it. Completing a batch releases its buffer memory.
//!
//! # Delivery and retries
//! Every failure goes through [`Error::action`]: `Fatal` fails the batch; `Retry`,
//! `RefreshAndRetry` (plus a metadata refresh) and `Ambiguous` (outcome unknown: connection
//! lost with the request in flight, request timeout) re-queue it with exponential backoff
//! `retry.backoff.ms` .. `retry.backoff.max.ms` (±20% jitter), until `retries` attempts or
//! `delivery.timeout.ms` after the batch was created, whichever is first. A batch is never
//! expired while a request carrying it is in flight (the request timeout bounds that); it
//! fails with [`Error::Timeout`] (`in_flight` = whether its outcome is unknown) once it is
//! back. A Produce response that does not decode, or lacks a partition of the request, is
//! ambiguous too (the broker may have written the batch). With `acks=0` nothing is
//! answered: a batch succeeds once written, offsets are -1.
//! `MESSAGE_TOO_LARGE` / `RECORD_LIST_TOO_LARGE` split a batch of several records into two
//! halves sent in its place (again while still too large; not counted as a retry); the
//! halves keep the batch's sequence range (first half at its base sequence, the second
//! where the first ends), so idempotent batches behind it keep theirs, and each record's
//! offset comes from its half's answer. A single record too large fails with the error.
//!
//! # Idempotence rules (default on; implies acks=all)
//! 1. `Producer::new` gets a producer id and epoch with InitProducerId from any broker.
//! 2. A batch gets its partition's next sequence when first drained, and keeps its
//!    (producer id, epoch, sequence) for every re-send; at most 5 batches of a partition are
//!    in flight, all to the same broker (a partition whose leader moved waits for its old
//!    requests first). Until the broker has acknowledged a batch of the partition under the
//!    current producer id, only one is in flight: a broker takes the first batch of an id it
//!    has no state for at any sequence, so a later batch must not overtake a first one that
//!    gets refused with a retriable error.
//! 3. When a partition has batches to re-send, no new batch of it is sent; the re-sends go
//!    one at a time, in sequence order, each only when nothing of the partition is in flight.
//! 4. `DUPLICATE_SEQUENCE_NUMBER` is success (offset -1 when the broker gave none).
//! 5. `OUT_OF_ORDER_SEQUENCE_NUMBER` / `UNKNOWN_PRODUCER_ID` for a batch that is not the
//!    partition's earliest unacknowledged one: an earlier batch failed; re-send in order.
//!    For the earliest one: the broker checked and refused the sequence, so that batch was
//!    definitely not written; the producer bumps its epoch (KIP-360).
//! 6. A batch with a sequence that fails for good (fatal error, retries or delivery timeout
//!    exhausted) leaves a gap, so the producer bumps its epoch too.
//! 7. Epoch bump: no new request is sent until nothing is in flight; then InitProducerId with
//!    the current id and epoch (v3+; for a non-transactional producer the broker answers with
//!    a fresh producer id), every partition's sequence restarts at 0 and the batches waiting
//!    for a re-send are re-stamped (`rewrite_producer_state`) in order.
//! 8. If the bump's InitProducerId keeps failing for `delivery.timeout.ms` (from its first
//!    attempt; or at once with an error that reaches the client), the producer becomes
//!    unusable: pending batches and every later `send` fail with that error
//!    ([`Error::Fatal`] for the time bound); recreate the producer.
//! 9. A batch whose outcome is unknown (a request carrying it timed out or lost its
//!    connection, and no broker answer since settled it) is only ever re-sent with the same
//!    id, epoch and sequence, so the broker can deduplicate it. It is never re-stamped: if an
//!    epoch bump happens while it waits, it fails with an ambiguous [`Error::Timeout`]
//!    (`in_flight: true`) instead.
//!
//! # Transactions (`transactional.id`; see [`transaction`])
//! A transactional producer is idempotent, with these differences to the rules above:
//! - Its producer id and epoch come from `init_transactions` (InitProducerId with the
//!   transactional id at the transaction coordinator), not from `Producer::new`; later epochs
//!   come from the transaction manager (V2: every EndTxn; V1: after an abort that left a
//!   sequence gap). The sender follows them, and restarts every partition's sequences at 0
//!   when they change, which only happens between transactions (nothing in flight).
//! - Rules 5-8 do not apply: a batch that fails for good (including sequence errors and
//!   local expiry) makes the transaction abortable instead of bumping the epoch; the
//!   producer's fatal errors (fenced, ...) make it unusable.
//! - Batches are transactional and Produce requests carry the transactional id; with
//!   transactions V1 a partition's batches wait until AddPartitionsToTxn added it, and
//!   Produce stays at v11.
//! - `send` is only allowed inside a transaction; when the transaction will not commit
//!   (abortable or fatal error, abort running), batches not yet sent fail at once.
//! - A record `send` refuses inside a transaction (its topic does not exist, it is too
//!   large, no room within `max.block.ms`, ...) makes the transaction abortable, as a failed
//!   batch does: it would otherwise commit without that record (Java does the same;
//!   librdkafka fails the commit after a failed delivery). `try_send_borrowed`'s immediate
//!   refusals are librdkafka's `produce()` return codes and leave the transaction as it was.
//!
//! # Closing
//! [`Producer::close`] stops accepting records ([`Error::Closed`]), sends everything pending
//! without waiting for `linger.ms`, and waits for the outcome up to its timeout; past it,
//! batches not yet sent fail with [`Error::Closed`] and batches in flight with an ambiguous
//! [`Error::Timeout`]. A record `send` accepted is always drained: the sender does not stop
//! while a `send` is between its closed check and the append. Dropping the last
//! [`Producer`] handle never blocks: it acts like a close without waiting — the background
//! task goes on delivering what is pending (each batch bounded by `delivery.timeout.ms`)
//! and then stops, so delivery futures still held resolve. If the runtime itself shuts down, pending futures fail with [`Error::Closed`].

mod accumulator;
pub(crate) mod delivery;
mod idempotence;
pub mod partitioner;
mod record;
mod sender;
pub mod transaction;

pub use crate::record::batch::RawRecord;
pub use delivery::{
    BatchRecord, BatchRecordRef, BatchRecords, DeliveryFuture, DeliveryHandler, DeliveryReport,
    FailedRecord, WrittenAt,
};
pub use partitioner::Partitioner;
pub use record::{ProducerRecord, RecordMetadata};
pub use transaction::{ConsumerGroupMetadata, TransactionState};

/// A record whose parts are borrowed, for [`Producer::try_send_borrowed`] (the batch copies
/// them when the record is appended, so nothing needs to be owned).
#[derive(Debug, Clone, Copy)]
pub struct BorrowedRecord<'a> {
    /// The topic.
    pub topic: &'a str,
    /// The partition; `None` lets the partitioner choose.
    pub partition: Option<i32>,
    /// The key.
    pub key: Option<&'a [u8]>,
    /// The value (`None`: a tombstone).
    pub value: Option<&'a [u8]>,
    /// The timestamp (ms since the epoch); `None`: taken when the record is appended.
    pub timestamp: Option<i64>,
    /// The headers, in order.
    pub headers: &'a [(&'a str, Option<&'a [u8]>)],
}

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use crate::backoff::Deadline;
use crate::cluster::{Cluster, ClusterOptions, TopicMeta};
use crate::config::security::OAuthSlot;
use crate::config::OAuthTokenProvider;
use crate::config::{ClientConfig, ProducerConfig};
use crate::error::{Error, KafkaCode, Result};
use crate::types::TopicPartition;

use crate::record::{BatchBuilder, RECORD_BATCH_OVERHEAD};
use accumulator::{Accumulator, Route};
use sender::Sender;
use transaction::Txn;

/// A Kafka producer. Cheap to clone; all clones share one buffer and one background task.
///
/// ```no_run
/// # async fn f() -> kafka_sdk::Result<()> {
/// use std::time::Duration;
/// use kafka_sdk::{ClientConfig, Producer, ProducerRecord};
///
/// let config = ClientConfig::new()
///     .with("bootstrap.servers", "127.0.0.1:9092")
///     .with("linger.ms", "10")
///     .with("compression.type", "lz4");
/// let producer = Producer::new(&config).await?;
/// // The first await: accepted into the buffer. The returned future: the broker's ack.
/// let delivery = producer
///     .send(ProducerRecord::new("orders").key("customer-42").value("{\"total\": 10}"))
///     .await?;
/// let meta = delivery.await?;
/// println!("{}/{}@{}", meta.topic, meta.partition, meta.offset);
/// producer.close(Duration::from_secs(10)).await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Producer {
    inner: Arc<Inner>,
}

struct Inner {
    acc: Arc<Accumulator>,
    cluster: Cluster,
    s: Arc<ProducerConfig>,
    partitioner: Arc<dyn Partitioner>,
    /// The partitioner is the user's (the builder's): user code, never run under the
    /// accumulator's locks.
    custom_partitioner: bool,
    ignore_keys: bool,
    /// Transaction state (`transactional.id` set).
    txn: Option<Arc<Txn>>,
    /// The newest statistics snapshot (`statistics.interval.ms`).
    stats_rx: crate::stats::StatisticsReceiver,
    /// When the producer was created and its instance number (statistics).
    created: std::time::Instant,
    instance: u64,
}

impl Inner {
    /// The producer's statistics snapshot.
    fn statistics(&self) -> crate::stats::Statistics {
        use crate::stats::EosStats;
        let s = &self.s;
        let mut st =
            crate::stats::header(&s.common.client_id, "producer", self.created, self.instance);
        let acc = &self.acc;
        st.msg_size = acc.used_memory() as u64;
        st.msg_size_max = s.buffer_memory as u64;
        st.msg_max = s.queue_buffering_max_messages.unwrap_or(0) as u64;
        let snap = self.cluster.metadata();
        let mut queued_total = 0u64;
        for (topic, p, n, bytes) in acc.queued() {
            queued_total += n as u64;
            let e = partition_entry(&mut st, &snap, &topic, p);
            e.msgq_cnt = n as i64;
            e.msgq_bytes = bytes as u64;
        }
        for ((topic, p), (n, bytes)) in acc.stats.per_partition() {
            let e = partition_entry(&mut st, &snap, &topic, p);
            e.txmsgs = n;
            e.txbytes = bytes;
        }
        st.msg_cnt = queued_total + acc.stats.in_flight();
        (st.txmsgs, st.txmsg_bytes) = acc.stats.totals();
        for b in self.cluster.broker_stats() {
            st.brokers.insert(b.name.clone(), b);
        }
        crate::stats::add_broker_totals(&mut st);
        if s.enable_idempotence {
            let age = i64::try_from(self.created.elapsed().as_millis()).unwrap_or(i64::MAX);
            let (mut pid, mut epoch, cnt, pid_age) = acc.stats.pid();
            let (txn_state, may_enq) = match &self.txn {
                Some(t) => {
                    let (p, e) = t.pid_epoch();
                    (pid, epoch) = (p, i64::from(e));
                    let state = t.state();
                    (
                        match state {
                            TransactionState::Uninitialized => "Init",
                            TransactionState::Ready => "Ready",
                            TransactionState::InTransaction => "InTransaction",
                            TransactionState::Committing => "CommittingTransaction",
                            TransactionState::Aborting => "AbortingTransaction",
                            TransactionState::AbortableError => "AbortableError",
                            TransactionState::FatalError => "FatalError",
                        },
                        state == TransactionState::InTransaction,
                    )
                }
                None => ("Init", true),
            };
            st.eos = Some(EosStats {
                idemp_state: if pid >= 0 { "Assigned" } else { "Init" }.into(),
                idemp_stateage: if self.txn.is_some() { age } else { pid_age },
                txn_state: txn_state.into(),
                txn_stateage: age,
                txn_may_enq: may_enq,
                producer_id: pid,
                producer_epoch: epoch,
                epoch_cnt: if self.txn.is_some() {
                    i64::from(pid >= 0)
                } else {
                    cnt as i64
                },
            });
        }
        st
    }
}

/// The snapshot's entry of a partition, made (with its leader from `snap`) if new.
fn partition_entry<'a>(
    st: &'a mut crate::stats::Statistics,
    snap: &crate::cluster::metadata::MetadataSnapshot,
    topic: &str,
    p: i32,
) -> &'a mut crate::stats::PartitionStats {
    let t = st
        .topics
        .entry(topic.to_string())
        .or_insert_with(|| crate::stats::TopicStats {
            topic: topic.to_string(),
            ..Default::default()
        });
    t.partitions.entry(p).or_insert_with(|| {
        let leader = snap.leader(topic, p).unwrap_or(-1);
        crate::stats::PartitionStats {
            partition: p,
            broker: leader,
            leader,
            ..Default::default()
        }
    })
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Last handle gone: stop accepting, let the sender finish pending work and stop.
        self.acc.close();
    }
}

impl std::fmt::Debug for Producer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Producer")
            .field("bootstrap", &self.inner.s.common.bootstrap_servers)
            .field("closed", &self.inner.acc.is_closing())
            .finish()
    }
}

/// Builds a [`Producer`] with options that are not configuration keys (a custom
/// partitioner).
///
/// ```no_run
/// # async fn f() -> kafka_sdk::Result<()> {
/// use std::sync::Arc;
/// use kafka_sdk::{ClientConfig, Partitioner, Producer};
///
/// /// Every record of a tenant to the partition the tenant id names.
/// #[derive(Debug)]
/// struct ByTenant;
/// impl Partitioner for ByTenant {
///     fn partition(&self, _topic: &str, key: Option<&[u8]>, partitions: i32) -> Option<i32> {
///         let tenant: i32 = std::str::from_utf8(key?).ok()?.parse().ok()?;
///         Some(tenant.rem_euclid(partitions))
///     }
/// }
///
/// let config = ClientConfig::new().with("bootstrap.servers", "127.0.0.1:9092");
/// let producer = Producer::builder(&config).partitioner(Arc::new(ByTenant)).build().await?;
/// # Ok(()) }
/// ```
#[must_use]
pub struct ProducerBuilder {
    config: ClientConfig,
    partitioner: Option<Arc<dyn Partitioner>>,
    oauth: OAuthSlot,
    stats_handler: Option<crate::stats::Handler>,
    keep_failed: bool,
    keep_records: bool,
    lazy: bool,
    delivery_handler: Option<DeliveryHandler>,
}

impl ProducerBuilder {
    /// Calls `handler` with the outcome of every record whose delivery future is handed
    /// back with [`DeliveryFuture::report`] (as librdkafka's delivery-report callback, or a
    /// Java `send` callback): once per record, when it is acknowledged or fails, on the
    /// producer's sender task. The handler must return quickly and must not block (it holds
    /// up the completion of other batches meanwhile); a panic in it is caught and logged.
    /// Records whose futures are awaited or dropped are not reported. The producer keeps
    /// the handler, so a handler that holds the producer (e.g. to send failed records
    /// again) keeps it alive for good: hand such records to a task through a channel.
    pub fn delivery_handler(mut self, handler: DeliveryHandler) -> Self {
        self.delivery_handler = Some(handler);
        self
    }

    /// Gets OAUTHBEARER tokens from `provider` (for `sasl.mechanism=OAUTHBEARER`; wins over
    /// `sasl.oauthbearer.config`). Asked on every new connection and re-authentication.
    pub fn oauth_token_provider(mut self, provider: Arc<dyn OAuthTokenProvider>) -> Self {
        self.oauth = OAuthSlot(Some(provider));
        self
    }

    /// Uses `partitioner` instead of the one named by the `partitioner` key. It is asked for
    /// every record without an explicit partition; returning `None` means "sticky".
    pub fn partitioner(mut self, partitioner: Arc<dyn Partitioner>) -> Self {
        self.partitioner = Some(partitioner);
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

    /// Keeps the encoded records of a batch that fails (until its last
    /// [`DeliveryFuture`] is dropped), so that [`DeliveryFuture::failed_record`] can hand a
    /// failed record back without the caller keeping a copy of every record it sends (as
    /// librdkafka-style APIs that return the message with the error need). Off by default:
    /// a failed batch's memory is then freed at once.
    pub fn keep_failed_records(mut self, keep: bool) -> Self {
        self.keep_failed = keep;
        self
    }

    /// Keeps every batch's records, uncompressed, with the batch's shared completion until
    /// the last of its [`DeliveryFuture`]s is dropped, so that
    /// [`DeliveryFuture::batch_records`] can hand each record (key, value, headers,
    /// timestamp) back with its outcome, a batch at a time: for librdkafka-style delivery
    /// reports, which show the message, without the caller keeping a copy of every record
    /// (librdkafka itself keeps each message until its report was served). Without
    /// compression this keeps the batch as sent (nothing copied); with compression the
    /// batch's buffer from before compressing it (nothing decompressed to read it back).
    /// Off by default: a batch's memory is then freed once it completes.
    pub fn keep_records(mut self, keep: bool) -> Self {
        self.keep_records = keep;
        self
    }

    /// With `true`, [`build`](Self::build) does not wait for the cluster (as librdkafka and
    /// the Java client): it returns once the configuration is valid, and the producer
    /// bootstraps and (idempotent) gets its producer id in the background, retrying until
    /// the cluster answers. Records sent meanwhile wait for their topic's metadata as after
    /// any metadata loss (at most `max.block.ms` in `send`), then for the producer id, and
    /// fail by `delivery.timeout.ms` if the cluster stays away; an error that ends the
    /// producer (e.g. refused authorization of InitProducerId) fails the records and every
    /// later `send`. Off by default: `build` then fails when no broker answers. The rdkafka
    /// drop-in uses it, because rdkafka's `create()` never waits for the cluster.
    pub fn lazy_bootstrap(mut self, lazy: bool) -> Self {
        self.lazy = lazy;
        self
    }

    /// Validates the configuration, bootstraps, gets a producer id when idempotent, and
    /// starts the background task (see [`lazy_bootstrap`](Self::lazy_bootstrap) for not
    /// waiting for the cluster).
    pub async fn build(self) -> Result<Producer> {
        let mut s = self.config.producer()?;
        self.oauth.apply(&mut s.common.security);
        let s = Arc::new(s);
        let cfg = &*s;
        let opts = ClusterOptions::from(&cfg.common);
        let cluster = if self.lazy {
            Cluster::connect_lazily(opts)?
        } else {
            Cluster::connect(opts).await?
        };
        let txn = cfg
            .transactional_id
            .clone()
            .map(|id| Arc::new(Txn::new(id, cfg.transaction_timeout)));
        // A transactional producer gets its id in `init_transactions`; a lazy idempotent one
        // from its sender, before its first batch.
        let pid = if s.enable_idempotence && txn.is_none() && self.lazy {
            Some((-1, -1))
        } else if s.enable_idempotence && txn.is_none() {
            let (pid, epoch) = idempotence::init_idempotent(
                &cluster,
                None,
                s.common.request_timeout,
                Deadline::after(s.max_block),
            )
            .await?;
            tracing::debug!(producer_id = pid, epoch, "idempotent producer initialised");
            Some((pid, epoch))
        } else {
            None
        };
        let mut acc = Accumulator::new(&s);
        acc.handler = delivery::HandlerSlot(self.delivery_handler);
        let acc = Arc::new(acc);
        let mut sender = Sender::new(acc.clone(), cluster.clone(), s.clone(), pid, txn.clone());
        sender.keep_failed = self.keep_failed;
        sender.keep_records = self.keep_records;
        if self.lazy {
            sender.request_producer_id();
        }
        tokio::spawn(sender.run());
        let custom_partitioner = self.partitioner.is_some();
        let partitioner = self
            .partitioner
            .unwrap_or_else(|| partitioner::builtin(cfg.partitioner));
        let ignore_keys = cfg.partitioner_ignore_keys;
        let (stats_tx, stats_rx) = tokio::sync::watch::channel(None);
        let interval = s.common.statistics_interval;
        let inner = Arc::new(Inner {
            acc,
            cluster,
            s,
            partitioner,
            custom_partitioner,
            ignore_keys,
            txn,
            stats_rx,
            created: std::time::Instant::now(),
            instance: crate::stats::next_instance(),
        });
        crate::stats::spawn(
            interval,
            Arc::downgrade(&inner),
            |i: &Inner| (!i.acc.is_closing()).then(|| i.statistics()),
            self.stats_handler,
            stats_tx,
        );
        Ok(Producer { inner })
    }
}

/// `buffer.memory` bytes (and a `queue.buffering.max.messages` slot) taken by a `send` that
/// has not appended its record yet: given back when dropped (an error return, or the `send`
/// future dropped while it waits), kept by [`keep`](Self::keep) at the append.
struct Reservation<'a> {
    acc: &'a Accumulator,
    bytes: usize,
    record: bool,
}

impl Reservation<'_> {
    /// The append took them over.
    fn keep(&mut self) {
        self.bytes = 0;
        self.record = false;
    }
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        if self.bytes > 0 {
            self.acc.release(self.bytes);
        }
        if self.record {
            self.acc.release_records(1);
        }
    }
}

/// What [`Producer::send`] waited for and holds for its next no-wait attempt. The room it
/// holds is given back when it is dropped (an error return, or the `send` future dropped
/// while it waits for something else).
struct Waited<'a> {
    /// The topic's metadata, fetched.
    meta: Option<Arc<TopicMeta>>,
    /// `buffer.memory` bytes and a `queue.buffering.max.messages` slot taken.
    room: Reservation<'a>,
}

impl<'a> Waited<'a> {
    fn new(acc: &'a Accumulator) -> Self {
        Waited {
            meta: None,
            room: Reservation {
                acc,
                bytes: 0,
                record: false,
            },
        }
    }

    /// Takes back the room `held` has, for the next attempt.
    fn keep_from(&mut self, held: &mut Reservation<'_>) {
        self.room.bytes = std::mem::take(&mut held.bytes);
        self.room.record = std::mem::take(&mut held.record);
    }
}

/// What a no-wait `send` attempt would have had to wait for.
/// What [`Producer::try_send_borrowed`] would have had to wait for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WouldWait {
    /// The topic's metadata (not in the producer's metadata yet).
    Metadata,
    /// Room in `buffer.memory`.
    Memory,
    /// A slot under `queue.buffering.max.messages`.
    Records,
}

enum Blocked {
    /// The topic's metadata.
    Metadata,
    /// Metadata showing this partition of the topic, the record's own (`send` only):
    /// partitions added since the snapshot was taken.
    Partition(i32),
    /// This many bytes of `buffer.memory`.
    Memory(usize),
    /// A slot under `queue.buffering.max.messages`.
    Records,
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

impl Producer {
    /// Creates a producer from a configuration map (see [`crate::config`] for the keys):
    /// bootstraps and, when idempotent, gets a producer id.
    pub async fn new(config: &ClientConfig) -> Result<Producer> {
        Producer::builder(config).build().await
    }

    /// A builder, for a custom partitioner.
    pub fn builder(config: &ClientConfig) -> ProducerBuilder {
        ProducerBuilder {
            config: config.clone(),
            partitioner: None,
            oauth: OAuthSlot::default(),
            stats_handler: None,
            keep_failed: false,
            keep_records: false,
            delivery_handler: None,
            lazy: false,
        }
    }

    /// A statistics snapshot now (whatever `statistics.interval.ms`); see [`crate::stats`].
    /// Resets the broker rtt windows.
    pub fn statistics(&self) -> crate::stats::Statistics {
        self.inner.statistics()
    }

    /// How many records have their outcome (acknowledged or failed) since the producer was
    /// created, counted when their batch completes, whether or not anyone awaits their
    /// [`DeliveryFuture`]. With a count of records appended, gives the records still in
    /// flight (the rdkafka facade's `in_flight_count`).
    pub fn completed_records(&self) -> u64 {
        self.inner.acc.stats.completed()
    }

    /// The snapshots taken every `statistics.interval.ms` (the newest; `None` before the
    /// first). `changed()` fails once the producer is closed or dropped.
    pub fn subscribe_statistics(&self) -> crate::stats::StatisticsReceiver {
        self.inner.stats_rx.clone()
    }

    /// A subscription to this producer's client events from now on: a broker down or back,
    /// every broker down (see [`crate::events`]).
    pub fn subscribe_events(&self) -> crate::events::ClientEvents {
        self.inner.cluster.subscribe_events()
    }

    /// The partitions of `topic` with their leaders and replicas, waiting up to
    /// `max.block.ms` for the topic's metadata (Java's `partitionsFor`). A topic that does not
    /// exist gives [`Error::UnknownTopicOrPartition`] (or is created, when the broker
    /// auto-creates topics and `allow.auto.create.topics` is true).
    pub async fn partitions_for(&self, topic: &str) -> Result<Vec<crate::PartitionMetadata>> {
        crate::metadata::partitions_for(&self.inner.cluster, topic, self.inner.s.max_block).await
    }

    /// Cluster metadata: brokers and `topic` (waiting up to `max.block.ms` for it), or every
    /// topic when `topic` is `None` (rdkafka's `fetch_metadata`).
    pub async fn fetch_metadata(&self, topic: Option<&str>) -> Result<crate::Metadata> {
        crate::metadata::fetch(&self.inner.cluster, topic, self.inner.s.max_block).await
    }

    /// Puts a record into the buffer. The returned future resolves once the broker
    /// acknowledged the record (or the producer gave up on it).
    ///
    /// Waits while `buffer.memory` is exhausted, `queue.buffering.max.messages` records are
    /// buffered (when set) or the topic's metadata is not known yet, in
    /// total at most `max.block.ms`, then fails with [`Error::Timeout`]. Fails at once with
    /// [`Error::InvalidArgument`] for an invalid topic name or a record larger than
    /// `max.request.size` or `buffer.memory`, with [`Error::UnknownTopicOrPartition`] for a
    /// topic that does not exist or a record's partition the topic does not have (after
    /// `max.block.ms` of refreshing metadata, as partitions may have been added since it was
    /// cached; a negative partition at once), and with
    /// [`Error::Closed`] after [`close`](Self::close). Once the producer is unusable (see
    /// rule 8 of the module docs) it fails with the error that made it so
    /// ([`Error::is_fatal`]). Inside a transaction, a record refused for any of these
    /// reasons (other than the producer's own end) makes the transaction abortable
    /// ([`Error::txn_requires_abort`]).
    ///
    /// `send` takes part in tokio's cooperative scheduling like tokio's own channels: once
    /// the calling task has used up its budget (128 operations on tokio resources), `send`
    /// yields once before buffering the record, so a loop of sends that never has to wait
    /// does not keep the producer's own sender task, or any other task of that worker
    /// thread, from running.
    pub async fn send(&self, mut record: ProducerRecord) -> Result<DeliveryFuture> {
        // A tight loop of sends must let the sender (and the application's other tasks) run:
        // without it, on a runtime with one worker the sender only ran once the buffer was
        // full, so batches left late and every record's latency included a full buffer.
        // Yielding here, before anything is taken, is cancellation-safe.
        tokio::task::coop::consume_budget().await;
        // The common case takes no `.await` that can wait, no clock read but the record's
        // timestamp, one lock on the topic and no hashing but the topic map's fast hash: it
        // is `send_now`, which `try_send_borrowed` runs too. Only what must wait (the first
        // record of a topic, a metadata refresh, a full buffer) comes back here; the
        // `max.block.ms` clock starts when `send` first waits.
        let inner = &*self.inner;
        let s = &*inner.s;
        let mut span =
            crate::observe::produce_span(&s.common.client_id, &record.topic, record.key.as_deref());
        if let Some(span) = &span {
            crate::observe::inject(span, &mut record.headers);
        }
        let headers: Vec<(&str, Option<&[u8]>)> = record
            .headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_deref()))
            .collect();
        let parts = BorrowedRecord {
            topic: &record.topic,
            partition: record.partition,
            key: record.key.as_deref(),
            value: record.value.as_deref(),
            timestamp: record.timestamp,
            headers: &headers,
        };
        let mut wait = Waited::new(&inner.acc);
        let mut deadline = None;
        loop {
            let blocked =
                match self.send_now(parts, Some(&record.topic), &mut span, &mut wait, true) {
                    Ok(done) => return done,
                    Err(blocked) => blocked,
                };
            let dl = *deadline.get_or_insert_with(|| Deadline::after(s.max_block));
            // What fails from here refuses the record.
            let refused = |e| self.refused(e, true);
            match blocked {
                Blocked::Metadata => {
                    let meta = self.topic_meta(&record.topic, None, dl).await;
                    wait.meta = Some(meta.map_err(refused)?);
                }
                Blocked::Partition(p) => {
                    let meta = self.topic_meta(&record.topic, Some(p), dl).await;
                    wait.meta = Some(meta.map_err(refused)?);
                }
                Blocked::Memory(permits) => {
                    if !inner
                        .acc
                        .reserve_until(permits, dl.instant())
                        .await
                        .map_err(refused)?
                    {
                        return Err(refused(Error::timeout(
                            format!(
                                "waiting for {permits} bytes of buffer.memory ({} bytes; max.block.ms)",
                                s.buffer_memory
                            ),
                            s.max_block,
                            false,
                        )));
                    }
                    wait.room.bytes = permits;
                }
                Blocked::Records => {
                    if !inner
                        .acc
                        .reserve_record_until(dl.instant())
                        .await
                        .map_err(refused)?
                    {
                        return Err(refused(Error::timeout(
                            format!(
                                "waiting for room under queue.buffering.max.messages ({} records buffered; max.block.ms)",
                                s.queue_buffering_max_messages.unwrap_or(0)
                            ),
                            s.max_block,
                            false,
                        )));
                    }
                    wait.room.record = true;
                }
            }
        }
    }

    /// [`send`](Self::send) of a record whose parts are borrowed, on the calling thread and
    /// without waiting: `Err` naming what `send` would have to wait for (the topic's
    /// metadata, room in `buffer.memory` or under `queue.buffering.max.messages`), with
    /// nothing taken — then call `send` with an owned record, or report the queue full (as
    /// librdkafka-style APIs do). Otherwise the same outcome as `send`: the record's delivery
    /// future, or the error it fails with at once — except that a record refused here leaves
    /// an open transaction as it was (librdkafka's `produce()` semantics), where `send` makes
    /// it abortable.
    ///
    /// For callers that hold the key and value as borrowed slices (the rdkafka drop-in's
    /// `BaseRecord`/`FutureRecord`): the batch copies them anyway, so no owned copy, no
    /// `ProducerRecord` and no future are built. `headers` are the record's headers in order.
    /// No runtime context is needed.
    pub fn try_send_borrowed(
        &self,
        record: BorrowedRecord<'_>,
    ) -> std::result::Result<Result<DeliveryFuture>, WouldWait> {
        let s = &*self.inner.s;
        let mut span = crate::observe::produce_span(&s.common.client_id, record.topic, record.key);
        let mut injected: Vec<(String, Option<Bytes>)> = Vec::new();
        let mut headers: Vec<(&str, Option<&[u8]>)> = Vec::new();
        let mut record = record;
        if let Some(span) = &span {
            crate::observe::inject(span, &mut injected);
            headers.extend_from_slice(record.headers);
            headers.extend(injected.iter().map(|(k, v)| (k.as_str(), v.as_deref())));
            record.headers = &headers;
        }
        let mut wait = Waited::new(&self.inner.acc);
        self.send_now(record, None, &mut span, &mut wait, false)
            .map_err(|b| match b {
                Blocked::Metadata | Blocked::Partition(_) => WouldWait::Metadata,
                Blocked::Memory(_) => WouldWait::Memory,
                Blocked::Records => WouldWait::Records,
            })
    }

    /// `send` without waiting, shared by [`send`](Self::send) and
    /// [`try_send_borrowed`](Self::try_send_borrowed): the checks, the topic's metadata (cached
    /// for this metadata generation, else the cluster's snapshot, else what `send` fetched:
    /// `wait.meta`), room in `buffer.memory` and `queue.buffering.max.messages` (taken with
    /// `try_acquire`, or already taken by `send`: `wait`), the partition (one lock on the
    /// topic), the append. `Err` names what would have to be waited for; what `wait` holds
    /// stays there for the next attempt, what this call took is given back. On success `span`
    /// moves into the delivery future. `topic_name`: the record's topic as shared, if it is.
    /// `from_send`: `send`'s rules (Java's): a refused record makes the open transaction
    /// abortable (see [`refused`](Self::refused)), and a record for a partition beyond the
    /// cached partition count waits for metadata showing it. Else `try_send_borrowed`'s
    /// (librdkafka's `produce()`): both are refused at once, the transaction left as it was.
    #[inline]
    fn send_now(
        &self,
        record: BorrowedRecord<'_>,
        topic_name: Option<&Arc<str>>,
        span: &mut Option<tracing::Span>,
        wait: &mut Waited<'_>,
        from_send: bool,
    ) -> std::result::Result<Result<DeliveryFuture>, Blocked> {
        let inner = &*self.inner;
        let s = &*inner.s;
        if inner.acc.is_closing() {
            return Ok(Err(Error::Closed));
        }
        if let Some(e) = inner.acc.fatal() {
            return Ok(Err(e));
        }
        if let Some(t) = &inner.txn {
            if let Err(e) = t.check_send() {
                return Ok(Err(e));
            }
        }
        let (key, value, headers) = (record.key, record.value, record.headers);
        let payload_size = BatchBuilder::payload_size(key, value, headers);
        // Deltas are at most 10 + 5 varint bytes; estimate with the worst case.
        let rec_size = BatchBuilder::record_size_with_payload(0, 0, payload_size) + 14;
        let batch_bytes = rec_size + RECORD_BATCH_OVERHEAD;
        if batch_bytes > s.max_request_size {
            return Ok(Err(self.refused(
                Error::InvalidArgument(format!(
                    "record of {batch_bytes} bytes (encoded, with the batch header) exceeds max.request.size ({} bytes)",
                    s.max_request_size
                )),
                from_send,
            )));
        }
        if rec_size > s.buffer_memory {
            return Ok(Err(self.refused(
                Error::InvalidArgument(format!(
                    "record of {rec_size} bytes (encoded) exceeds buffer.memory ({} bytes)",
                    s.buffer_memory
                )),
                from_send,
            )));
        }
        let generation = inner.cluster.metadata_generation();
        // The topic's metadata when it is not cached for this generation: the cluster's
        // snapshot, else what `send` fetched for it; else it must be waited for.
        let uncached = |wait: &mut Waited<'_>| -> Option<Arc<TopicMeta>> {
            inner
                .cluster
                .metadata()
                .topic(record.topic)
                .filter(|t| t.error.is_none() && !t.partitions.is_empty())
                .cloned()
                .or_else(|| wait.meta.take())
        };
        // A topic known to the accumulator had its name validated when it was added.
        let mut fresh = None;
        let topic = match inner.acc.send_topic(record.topic) {
            Some(t) => t,
            None => {
                if let Err(e) = crate::validate_topic_name(record.topic) {
                    return Ok(Err(self.refused(e, from_send)));
                }
                fresh = Some(uncached(wait).ok_or(Blocked::Metadata)?);
                let name = topic_name
                    .cloned()
                    .unwrap_or_else(|| Arc::from(record.topic));
                inner.acc.topic(&name)
            }
        };
        // Room in the buffer (backpressure), given back on every return before the append.
        let mut held = Reservation {
            acc: &inner.acc,
            bytes: std::mem::take(&mut wait.room.bytes),
            record: std::mem::take(&mut wait.room.record),
        };
        if held.bytes == 0 {
            match inner.acc.try_reserve(rec_size) {
                Ok(true) => held.bytes = rec_size,
                Ok(false) => {
                    // What `wait` held goes back to it (the record slot).
                    wait.room.record = std::mem::take(&mut held.record);
                    return Err(Blocked::Memory(rec_size));
                }
                Err(e) => return Ok(Err(e)),
            }
        }
        if !held.record {
            match inner.acc.try_reserve_record() {
                Ok(true) => held.record = true,
                Ok(false) => {
                    wait.room.bytes = std::mem::take(&mut held.bytes);
                    return Err(Blocked::Records);
                }
                Err(e) => return Ok(Err(e)),
            }
        }
        let pkey = if inner.ignore_keys { None } else { key };
        // A custom partitioner is user code: asked here, outside the topic's lock, with the
        // partition count of the topic's metadata. A built-in one is asked under that lock
        // (one lock per record for the metadata check and the partition, sticky or not).
        let preset = match record.partition {
            Some(p) => Some(p),
            None if inner.custom_partitioner => {
                let meta = match fresh.clone().or_else(|| topic.cached_meta(generation)) {
                    Some(m) => m,
                    None => {
                        let Some(m) = uncached(wait) else {
                            wait.keep_from(&mut held);
                            return Err(Blocked::Metadata);
                        };
                        fresh = Some(m.clone());
                        m
                    }
                };
                inner
                    .partitioner
                    .partition(record.topic, pkey, meta.partition_count())
            }
            None => None,
        };
        let choose = |n: i32| {
            if inner.custom_partitioner {
                None
            } else {
                inner.partitioner.partition(record.topic, pkey, n)
            }
        };
        let route = match inner
            .acc
            .route(&topic, generation, fresh, rec_size, preset, choose)
        {
            Route::Stale => match uncached(wait) {
                Some(m) => inner
                    .acc
                    .route(&topic, generation, Some(m), rec_size, preset, choose),
                None => {
                    wait.keep_from(&mut held);
                    return Err(Blocked::Metadata);
                }
            },
            to => to,
        };
        let Route::To {
            partition,
            count: n,
        } = route
        else {
            // Unreachable: metadata was just stored for this generation.
            wait.keep_from(&mut held);
            return Err(Blocked::Metadata);
        };
        if partition < 0 || partition >= n {
            if from_send && partition >= n && record.partition == Some(partition) {
                wait.keep_from(&mut held);
                return Err(Blocked::Partition(partition));
            }
            return Ok(Err(self.refused(
                Error::UnknownTopicOrPartition(format!(
                    "partition {partition} of topic `{}` (it has {n} partitions: 0..={})",
                    record.topic,
                    n - 1
                )),
                from_send,
            )));
        }
        // From here to the append the sender cannot stop (it would leave the record behind).
        let Some(_appending) = inner.acc.begin_append() else {
            return Ok(Err(Error::Closed));
        };
        let ts = record.timestamp.unwrap_or_else(now_ms);
        // Transactional: the state check and the partition's registration happen together
        // with the append (a commit or abort waits for the guard before flushing).
        let _guard = match &inner.txn {
            Some(t) => match t.begin_append(topic.name(), partition) {
                Ok(g) => Some(g),
                Err(e) => return Ok(Err(e)),
            },
            None => None,
        };
        tracing::trace!(topic = %record.topic, partition, "record accepted");
        crate::observe::producer_send(
            &s.common.client_id,
            record.topic,
            key.map_or(0, <[u8]>::len) + value.map_or(0, <[u8]>::len),
        );
        // The batch owns the memory and the record slot from here.
        let permits = held.bytes;
        held.keep();
        let fut = inner.acc.append(
            &topic,
            partition,
            ts,
            key,
            value,
            headers,
            payload_size,
            rec_size,
            permits,
        );
        if let Some(span) = span.take() {
            fut.trace(span);
        }
        Ok(Ok(fut))
    }

    /// `e`, the reason a record was refused before it reached a batch; from `send`, an open
    /// transaction becomes abortable by it (unless it is the producer's own end: closed or
    /// unusable), since it would otherwise commit without the record. The transaction's own
    /// refusals (a `send` outside a transaction) never come here.
    #[cold]
    fn refused(&self, e: Error, from_send: bool) -> Error {
        if let (true, Some(t)) = (from_send, &self.inner.txn) {
            if !e.is_fatal() {
                t.record_refused(&e);
            }
        }
        e
    }

    /// [`send`](Self::send), then waits for the acknowledgement.
    pub async fn send_and_wait(&self, record: ProducerRecord) -> Result<RecordMetadata> {
        self.send(record).await?.await
    }

    /// Sends every buffered record without waiting for `linger.ms`, and waits until every
    /// record accepted before the call has its outcome (success or failure: see each
    /// record's [`DeliveryFuture`]).
    pub async fn flush(&self) {
        self.inner.acc.flush().await;
    }

    /// Stops accepting records, sends everything pending and waits up to `timeout` for the
    /// outcomes. Past `timeout`, what is left fails (not-yet-sent batches with
    /// [`Error::Closed`], in-flight ones with an ambiguous [`Error::Timeout`]) and this
    /// returns [`Error::Timeout`]. Later sends fail with [`Error::Closed`]. Closing twice
    /// is harmless.
    pub async fn close(&self, timeout: Duration) -> Result<()> {
        let acc = &self.inner.acc;
        acc.close();
        let mut stopped = acc.stopped();
        if tokio::time::timeout(timeout, stopped.wait_for(|s| *s))
            .await
            .is_ok()
        {
            return Ok(());
        }
        tracing::warn!(
            timeout_ms = timeout.as_millis() as u64,
            "producer close timed out; failing pending records"
        );
        acc.abort();
        let _ = tokio::time::timeout(Duration::from_secs(5), stopped.wait_for(|s| *s)).await;
        Err(Error::timeout("producer close", timeout, false))
    }

    /// The transaction state, if the producer is transactional.
    fn txn(&self) -> Result<&Txn> {
        self.inner.txn.as_deref().ok_or_else(|| {
            Error::State("not a transactional producer (set `transactional.id`)".into())
        })
    }

    /// The transaction state, or `None` for a producer without `transactional.id`.
    pub fn transaction_state(&self) -> Option<TransactionState> {
        self.inner.txn.as_ref().map(|t| t.state())
    }

    /// Whether the producer uses transactions V2 (KIP-890); known after
    /// [`init_transactions`](Self::init_transactions).
    pub fn transactions_v2(&self) -> Option<bool> {
        self.inner.txn.as_ref().map(|t| t.is_v2())
    }

    /// Registers the `transactional.id` with its coordinator and gets the producer id and
    /// epoch: fences older producers with the same id and waits until their open
    /// transaction is aborted (or committed, if it was committing). Call once, before the
    /// first transaction. Retriable failures are retried until `max.block.ms`; after such a
    /// timeout the call may be repeated.
    pub async fn init_transactions(&self) -> Result<()> {
        self.txn()?.init(&self.inner.cluster, &self.inner.s).await
    }

    /// Starts a transaction (local only: nothing is sent until the first record or offsets).
    pub fn begin_transaction(&self) -> Result<()> {
        self.txn()?.begin()
    }

    /// Adds consumer offsets to the transaction: they are committed for `group` if and only
    /// if the transaction commits. Each offset is the *next* offset to read. With
    /// `group`'s generation and member id (KIP-447), the group coordinator refuses offsets
    /// of a consumer that is no longer a member (the transaction must then be aborted).
    /// Any failure makes the transaction abortable (or the producer fatal).
    pub async fn send_offsets_to_transaction(
        &self,
        offsets: impl IntoIterator<Item = (TopicPartition, i64)>,
        group: &ConsumerGroupMetadata,
    ) -> Result<()> {
        let inner = &*self.inner;
        self.txn()?
            .send_offsets(&inner.cluster, &inner.s, offsets, group)
            .await
    }

    /// Commits the transaction: sends every buffered record, waits until all of them are
    /// acknowledged, then asks the coordinator to commit. Fails as abortable
    /// ([`Error::txn_requires_abort`]) when any record of the transaction failed (including a
    /// local `delivery.timeout.ms` expiry); fatal errors leave the producer unusable. Bounded
    /// by `max.block.ms`; after a timeout the state stays `Committing` and the call may be
    /// repeated.
    pub async fn commit_transaction(&self) -> Result<()> {
        let inner = &*self.inner;
        self.txn()?
            .end(true, &inner.cluster, &inner.s, &inner.acc)
            .await
    }

    /// Aborts the transaction: records not sent yet fail (their [`DeliveryFuture`]s with
    /// [`Error::State`]), records in flight are awaited, then the coordinator writes abort
    /// markers. Allowed in `InTransaction` and `AbortableError`. Bounded by `max.block.ms`;
    /// after a timeout the state stays `Aborting` and the call may be repeated.
    pub async fn abort_transaction(&self) -> Result<()> {
        let inner = &*self.inner;
        self.txn()?
            .end(false, &inner.cluster, &inner.s, &inner.acc)
            .await
    }

    /// Cached metadata of `topic`, or a refresh bounded by `deadline`; with `partition`,
    /// metadata that has that partition (one added since the snapshot was taken).
    async fn topic_meta(
        &self,
        topic: &str,
        partition: Option<i32>,
        deadline: Deadline,
    ) -> Result<Arc<TopicMeta>> {
        let cluster = &self.inner.cluster;
        let count = partition.map_or(1, |p| p + 1);
        if let Some(t) = cluster.metadata().topic(topic) {
            if t.error.is_none() && t.partition_count() >= count {
                return Ok(t.clone());
            }
        }
        match tokio::time::timeout_at(
            deadline.instant() + Duration::from_millis(100),
            cluster.topic_metadata_with(topic, count, deadline),
        )
        .await
        {
            Ok(Ok(t)) => Ok(t),
            Ok(Err(e)) if e.code() == Some(KafkaCode::UNKNOWN_TOPIC_OR_PARTITION) => Err(
                Error::UnknownTopicOrPartition(format!("topic `{topic}` does not exist")),
            ),
            Ok(Err(Error::UnknownTopicOrPartition(m))) if partition.is_some() => {
                Err(Error::UnknownTopicOrPartition(format!(
                    "partition {} of topic `{topic}` not in the metadata within max.block.ms ({m})",
                    count - 1
                )))
            }
            Ok(Err(e)) => Err(e),
            Err(_) => Err(Error::timeout(
                format!("metadata of topic `{topic}` (max.block.ms)"),
                self.inner.s.max_block,
                false,
            )),
        }
    }
}
