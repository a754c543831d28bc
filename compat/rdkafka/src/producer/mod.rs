//! Producers: [`FutureProducer`] (async delivery), [`BaseProducer`] (delivery callbacks served
//! by `poll`) and [`ThreadedProducer`] (a thread polls for you), with the [`Producer`] trait
//! (flush, in-flight count, transactions).
//!
//! All three sit on one [`kafka_sdk::Producer`]. A record handed to `send` goes through one
//! ordered queue per producer to a task on the facade's runtime that appends records to
//! kafka-sdk in call order (so per-partition order is the order of the `send` calls, as in
//! librdkafka), then awaits each record's acknowledgement.

use std::marker::PhantomData;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use kafka_sdk::{ProducerRecord, RecordMetadata};
use tokio::sync::{mpsc, oneshot};

use crate::client::{Client, ClientContext, Source};
use crate::config::ClientConfig;
use crate::consumer::ConsumerGroupMetadata;
use crate::error::{KafkaError, KafkaResult, RDKafkaError, RDKafkaErrorCode};
use crate::message::{OwnedHeaders, Timestamp};
use crate::rt;
use crate::topic_partition_list::TopicPartitionList;
use crate::util::{IntoOpaque, Timeout};

pub mod base_producer;
pub mod future_producer;

#[doc(inline)]
pub use self::base_producer::{BaseProducer, BaseRecord, DeliveryResult, ThreadedProducer};
#[doc(inline)]
pub use self::future_producer::{
    Delivery, DeliveryFuture, FutureProducer, FutureProducerContext, FutureRecord,
    OwnedDeliveryResult,
};

/// Callbacks of a producer: the delivery report of each record.
pub trait ProducerContext<Part: Partitioner = NoCustomPartitioner>: ClientContext {
    /// The value passed along with each record to its delivery report.
    type DeliveryOpaque: IntoOpaque;

    /// A record was acknowledged or failed. Called from `poll` (the caller's thread for
    /// [`BaseProducer`], the polling thread for [`ThreadedProducer`]).
    fn delivery(&self, delivery_result: &DeliveryResult<'_>, delivery_opaque: Self::DeliveryOpaque);

    /// A custom partitioner, used for records without an explicit partition.
    fn get_custom_partitioner(&self) -> Option<&Part> {
        None
    }
}

/// "Unassigned partition": let the producer choose.
pub const PARTITION_UA: i32 = -1;

/// A custom partitioner.
pub trait Partitioner {
    /// The partition for a record of `topic_name` with `key`; [`PARTITION_UA`] lets the
    /// producer choose.
    fn partition(
        &self,
        topic_name: &str,
        key: Option<&[u8]>,
        partition_cnt: i32,
        is_partition_available: impl Fn(i32) -> bool,
    ) -> i32;
}

/// The "no custom partitioner" placeholder.
#[derive(Clone, Debug, Default)]
pub struct NoCustomPartitioner {}

impl Partitioner for NoCustomPartitioner {
    fn partition(
        &self,
        _topic_name: &str,
        _key: Option<&[u8]>,
        _partition_cnt: i32,
        _is_partition_available: impl Fn(i32) -> bool,
    ) -> i32 {
        PARTITION_UA
    }
}

/// The producer context with no callbacks.
#[derive(Clone, Copy, Debug, Default)]
pub struct DefaultProducerContext;

impl ClientContext for DefaultProducerContext {}

impl ProducerContext for DefaultProducerContext {
    type DeliveryOpaque = ();

    fn delivery(&self, _: &DeliveryResult<'_>, _: Self::DeliveryOpaque) {}
}

/// Which queues `purge` empties. kafka-sdk cannot take records back once accepted, so
/// `purge` only logs a warning (see MIGRATING_FROM_RDKAFKA.md).
#[derive(Clone, Copy, Debug, Default)]
pub struct PurgeConfig {
    queue: bool,
    inflight: bool,
    non_blocking: bool,
}

impl PurgeConfig {
    /// Purge records not yet sent.
    pub fn queue(mut self) -> Self {
        self.queue = true;
        self
    }

    /// Purge records in flight.
    pub fn inflight(mut self) -> Self {
        self.inflight = true;
        self
    }

    /// Do not wait.
    pub fn non_blocking(mut self) -> Self {
        self.non_blocking = true;
        self
    }
}

/// The common producer calls.
pub trait Producer<C = DefaultProducerContext, Part = NoCustomPartitioner>
where
    Part: Partitioner,
    C: ProducerContext<Part>,
{
    /// The client.
    fn client(&self) -> &Client<C>;

    /// The context.
    fn context(&self) -> &Arc<C> {
        self.client().context()
    }

    /// Records accepted whose delivery was not reported yet.
    fn in_flight_count(&self) -> i32;

    /// Sends every queued record and waits for their delivery reports (serving them, for
    /// [`BaseProducer`]).
    fn flush<T: Into<Timeout>>(&self, timeout: T) -> KafkaResult<()>;

    /// Not supported: logs a warning (kafka-sdk cannot take accepted records back).
    fn purge(&self, flags: PurgeConfig);

    /// Registers the transactional id and fences older producers.
    fn init_transactions<T: Into<Timeout>>(&self, timeout: T) -> KafkaResult<()>;

    /// Starts a transaction.
    fn begin_transaction(&self) -> KafkaResult<()>;

    /// Adds a consumer's offsets to the transaction.
    fn send_offsets_to_transaction<T: Into<Timeout>>(
        &self,
        offsets: &TopicPartitionList,
        cgm: &ConsumerGroupMetadata,
        timeout: T,
    ) -> KafkaResult<()>;

    /// Commits the transaction (after sending every record of it).
    fn commit_transaction<T: Into<Timeout>>(&self, timeout: T) -> KafkaResult<()>;

    /// Aborts the transaction.
    fn abort_transaction<T: Into<Timeout>>(&self, timeout: T) -> KafkaResult<()>;
}

/// A record taken from a `BaseRecord` / `FutureRecord`, with copies of its parts kept for the
/// delivery report.
pub(crate) struct Outgoing {
    pub(crate) topic: String,
    pub(crate) partition: Option<i32>,
    pub(crate) key: Option<Bytes>,
    pub(crate) payload: Option<Bytes>,
    pub(crate) timestamp: Option<i64>,
    pub(crate) headers: Option<OwnedHeaders>,
}

impl Outgoing {
    fn record(&self) -> ProducerRecord {
        let mut r = ProducerRecord::new(self.topic.as_str())
            .opt_key(self.key.clone())
            .opt_value(self.payload.clone());
        if let Some(p) = self.partition.filter(|p| *p >= 0) {
            r = r.partition(p);
        }
        if let Some(t) = self.timestamp {
            r = r.timestamp(t);
        }
        if let Some(h) = &self.headers {
            r = r.headers(h.clone().into_sdk());
        }
        r
    }

    pub(crate) fn timestamp(&self) -> Timestamp {
        self.timestamp
            .map_or(Timestamp::NotAvailable, Timestamp::CreateTime)
    }
}

pub(crate) type Done = Box<dyn FnOnce(Outgoing, Result<RecordMetadata, KafkaError>) + Send>;

enum Job {
    Send {
        out: Outgoing,
        done: Done,
    },
    /// Answered once every earlier record was appended.
    Barrier(oneshot::Sender<()>),
}

/// The kafka-sdk producer, its ordered submission queue and the in-flight count.
pub(crate) struct Core {
    pub(crate) producer: kafka_sdk::Producer,
    queue: mpsc::UnboundedSender<Job>,
    pub(crate) in_flight: Arc<AtomicUsize>,
    max_messages: usize,
    purge_warned: AtomicBool,
}

/// Adapts a context's custom partitioner to kafka-sdk's.
struct PartAdapter<C, Part> {
    context: Arc<C>,
    _part: PhantomData<fn() -> Part>,
}

impl<C, Part> std::fmt::Debug for PartAdapter<C, Part> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("custom partitioner of the producer context")
    }
}

impl<C, Part> kafka_sdk::Partitioner for PartAdapter<C, Part>
where
    C: ProducerContext<Part> + 'static,
    Part: Partitioner + 'static,
{
    fn partition(&self, topic: &str, key: Option<&[u8]>, partition_count: i32) -> Option<i32> {
        let p = self.context.get_custom_partitioner()?;
        let chosen = p.partition(topic, key, partition_count, |_| true);
        (0..partition_count).contains(&chosen).then_some(chosen)
    }
}

impl Core {
    /// Builds the kafka-sdk producer (on the facade's runtime) and starts the submitter.
    pub(crate) fn new<C, Part>(config: &ClientConfig, context: &Arc<C>) -> KafkaResult<Core>
    where
        C: ProducerContext<Part> + 'static,
        Part: Partitioner + 'static,
    {
        let sdk = config.to_sdk();
        let custom = context.get_custom_partitioner().is_some();
        let adapter: Arc<dyn kafka_sdk::Partitioner> = Arc::new(PartAdapter::<C, Part> {
            context: context.clone(),
            _part: PhantomData,
        });
        let producer = rt::block(async move {
            let mut b = kafka_sdk::Producer::builder(&sdk);
            if custom {
                b = b.partitioner(adapter);
            }
            b.build().await
        })
        .map_err(|e| config.creation_error(e))?;
        let max_messages = config
            .get("queue.buffering.max.messages")
            .and_then(|v| v.parse::<usize>().ok())
            .filter(|n| *n > 0)
            .unwrap_or(100_000);
        crate::client::forward_stats(producer.subscribe_statistics(), context.clone());
        let (tx, rx) = mpsc::unbounded_channel();
        rt::handle().spawn(submitter(producer.clone(), rx));
        Ok(Core {
            producer,
            queue: tx,
            in_flight: Arc::new(AtomicUsize::new(0)),
            max_messages,
            purge_warned: AtomicBool::new(false),
        })
    }

    pub(crate) fn source(&self) -> Source {
        Source::Producer(self.producer.clone())
    }

    /// Whether `queue.buffering.max.messages` records are in flight (librdkafka's
    /// `QueueFull`).
    pub(crate) fn is_full(&self) -> bool {
        self.in_flight.load(Ordering::Relaxed) >= self.max_messages
    }

    /// Queues `out` behind every earlier record; `done` gets its outcome (also when the
    /// producer is gone).
    pub(crate) fn enqueue(&self, out: Outgoing, done: Done) {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        if let Err(e) = self.queue.send(Job::Send { out, done }) {
            if let Job::Send { out, done, .. } = e.0 {
                done(
                    out,
                    Err(KafkaError::MessageProduction(
                        RDKafkaErrorCode::DestroyBroker,
                    )),
                );
            }
        }
    }

    /// Waits until every record queued before this call was appended to kafka-sdk.
    async fn barrier(queue: mpsc::UnboundedSender<Job>) {
        let (tx, rx) = oneshot::channel();
        if queue.send(Job::Barrier(tx)).is_ok() {
            let _ = rx.await;
        }
    }

    /// Appends everything queued, asks kafka-sdk to send it now, and waits up to `limit`
    /// until `idle()` holds.
    pub(crate) fn flush_until(
        &self,
        limit: Timeout,
        mut idle: impl FnMut() -> bool,
    ) -> KafkaResult<()> {
        let queue = self.queue.clone();
        let producer = self.producer.clone();
        rt::handle().spawn(async move {
            Core::barrier(queue).await;
            producer.flush().await;
        });
        let deadline = limit.duration().map(|d| Instant::now() + d);
        rt::blocking(|| loop {
            if idle() {
                return Ok(());
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Err(KafkaError::Flush(RDKafkaErrorCode::TimedOutQueue));
            }
            std::thread::sleep(Duration::from_millis(1));
        })
    }

    pub(crate) fn purge(&self, flags: PurgeConfig) {
        if !self.purge_warned.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                ?flags,
                "kafka-sdk-rdkafka: purge is not supported (kafka-sdk cannot take accepted \
                 records back); nothing was purged"
            );
        }
    }

    fn txn_call<F, Fut>(&self, timeout: Timeout, barrier: bool, f: F) -> KafkaResult<()>
    where
        F: FnOnce(kafka_sdk::Producer) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = kafka_sdk::Result<()>> + Send,
    {
        let producer = self.producer.clone();
        let queue = self.queue.clone();
        let limit = timeout.duration();
        rt::block(async move {
            let call = async move {
                if barrier {
                    Core::barrier(queue).await;
                }
                f(producer).await
            };
            let r = match limit {
                Some(l) => match tokio::time::timeout(l, call).await {
                    Ok(r) => r,
                    Err(_) => {
                        return Err(KafkaError::Transaction(RDKafkaError::timed_out()));
                    }
                },
                None => call.await,
            };
            r.map_err(|e| KafkaError::Transaction(RDKafkaError::from_sdk(&e)))
        })
    }

    pub(crate) fn init_transactions(&self, t: Timeout) -> KafkaResult<()> {
        self.txn_call(t, false, |p| async move { p.init_transactions().await })
    }

    pub(crate) fn begin_transaction(&self) -> KafkaResult<()> {
        self.producer
            .begin_transaction()
            .map_err(|e| KafkaError::Transaction(RDKafkaError::from_sdk(&e)))
    }

    pub(crate) fn send_offsets_to_transaction(
        &self,
        offsets: &TopicPartitionList,
        cgm: &ConsumerGroupMetadata,
        t: Timeout,
    ) -> KafkaResult<()> {
        let mut list = Vec::new();
        for (tp, o) in offsets.with_offsets() {
            match o {
                crate::Offset::Offset(n) => list.push((tp, n)),
                other => {
                    return Err(KafkaError::Transaction(RDKafkaError::invalid_arg(format!(
                        "offset {other:?} of {tp} is not an absolute offset"
                    ))))
                }
            }
        }
        let group = cgm.0.clone();
        self.txn_call(t, true, move |p| async move {
            p.send_offsets_to_transaction(list, &group).await
        })
    }

    pub(crate) fn commit_transaction(&self, t: Timeout) -> KafkaResult<()> {
        self.txn_call(t, true, |p| async move { p.commit_transaction().await })
    }

    pub(crate) fn abort_transaction(&self, t: Timeout) -> KafkaResult<()> {
        self.txn_call(t, true, |p| async move { p.abort_transaction().await })
    }
}

/// Appends queued records to kafka-sdk in order, and (in the same task, without a task per
/// record) awaits their outcomes.
async fn submitter(producer: kafka_sdk::Producer, mut rx: mpsc::UnboundedReceiver<Job>) {
    use futures_util::stream::{FuturesUnordered, StreamExt};

    let mut outcomes = FuturesUnordered::new();
    loop {
        tokio::select! {
            biased;
            Some(()) = outcomes.next(), if !outcomes.is_empty() => {}
            job = rx.recv() => match job {
                None => break,
                Some(Job::Barrier(tx)) => {
                    let _ = tx.send(());
                }
                Some(Job::Send { out, done }) => {
                    // Waits for metadata and for `buffer.memory` (bounded by `max.block.ms`).
                    match producer.send(out.record()).await {
                        Ok(delivery) => outcomes.push(async move {
                            let r = delivery.await.map_err(|e| produce_error(&e));
                            done(out, r);
                        }),
                        Err(e) => done(out, Err(produce_error(&e))),
                    }
                }
            },
        }
    }
    while outcomes.next().await.is_some() {}
}

fn produce_error(e: &kafka_sdk::Error) -> KafkaError {
    KafkaError::MessageProduction(crate::error::logged_code("produce", e))
}
