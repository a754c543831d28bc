//! [`FutureProducer`]: `send` returns when the record was acknowledged (or failed).

use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures_channel::oneshot;

use super::{
    produce_error, Core, Direct, NoCustomPartitioner, OnDone, Partitioner, Parts, Producer,
    ProducerContext, PurgeConfig, NO_TIMESTAMP,
};
use crate::client::{Client, ClientContext, DefaultClientContext, OAuthToken};
use crate::config::{ClientConfig, FromClientConfig, FromClientConfigAndContext, RDKafkaLogLevel};
use crate::consumer::ConsumerGroupMetadata;
use crate::error::{KafkaError, KafkaResult, RDKafkaErrorCode};
use crate::message::{OwnedHeaders, OwnedMessage, Timestamp, ToBytes};
use crate::producer::DeliveryResult;
use crate::statistics::Statistics;
use crate::topic_partition_list::TopicPartitionList;
use crate::util::{AsyncRuntime, DefaultRuntime, Timeout};

/// A record for [`FutureProducer`], borrowing its key and payload.
#[derive(Debug)]
pub struct FutureRecord<'a, K: ToBytes + ?Sized, P: ToBytes + ?Sized> {
    /// The topic.
    pub topic: &'a str,
    /// The partition; `None` lets the partitioner choose.
    pub partition: Option<i32>,
    /// The payload.
    pub payload: Option<&'a P>,
    /// The key.
    pub key: Option<&'a K>,
    /// The timestamp (ms since the epoch); `None` = now.
    pub timestamp: Option<i64>,
    /// The headers.
    pub headers: Option<OwnedHeaders>,
}

impl<'a, K: ToBytes + ?Sized, P: ToBytes + ?Sized> FutureRecord<'a, K, P> {
    /// A record for `topic`.
    pub fn to(topic: &'a str) -> FutureRecord<'a, K, P> {
        FutureRecord {
            topic,
            partition: None,
            payload: None,
            key: None,
            timestamp: None,
            headers: None,
        }
    }

    /// Sets the partition.
    pub fn partition(mut self, partition: i32) -> Self {
        self.partition = Some(partition);
        self
    }

    /// Sets the payload.
    pub fn payload(mut self, payload: &'a P) -> Self {
        self.payload = Some(payload);
        self
    }

    /// Sets the key.
    pub fn key(mut self, key: &'a K) -> Self {
        self.key = Some(key);
        self
    }

    /// Sets the timestamp.
    pub fn timestamp(mut self, timestamp: i64) -> Self {
        self.timestamp = Some(timestamp);
        self
    }

    /// Sets the headers.
    pub fn headers(mut self, headers: OwnedHeaders) -> Self {
        self.headers = Some(headers);
        self
    }

    fn parts(&self) -> Parts<'_> {
        Parts::of(
            self.topic,
            self.partition,
            self.key,
            self.payload,
            self.timestamp,
            self.headers.clone(),
        )
    }

    /// An owned copy, for a `send` that has to wait before it can queue the record.
    fn to_owned_parts(&self) -> OwnedParts {
        OwnedParts {
            topic: self.topic.to_string(),
            partition: self.partition,
            key: self.key.map(|k| k.to_bytes().to_vec()),
            payload: self.payload.map(|p| p.to_bytes().to_vec()),
            timestamp: self.timestamp,
            headers: self.headers.clone(),
        }
    }
}

/// A record's parts owned, while `send` waits for room under `queue.buffering.max.messages`.
struct OwnedParts {
    topic: String,
    partition: Option<i32>,
    key: Option<Vec<u8>>,
    payload: Option<Vec<u8>>,
    timestamp: Option<i64>,
    headers: Option<OwnedHeaders>,
}

impl OwnedParts {
    fn parts(&self) -> Parts<'_> {
        Parts {
            topic: &self.topic,
            partition: self.partition,
            key: self.key.as_deref(),
            payload: self.payload.as_deref(),
            timestamp: self.timestamp,
            headers: self.headers.clone(),
        }
    }

    fn into_message(self) -> OwnedMessage {
        OwnedMessage::new(
            self.payload,
            self.key,
            self.topic,
            self.timestamp
                .map_or(Timestamp::NotAvailable, Timestamp::CreateTime),
            self.partition.unwrap_or(-1),
            -1001,
            self.headers,
        )
    }
}

/// rdkafka's `OwnedMessage` of a record not delivered, from the caller's parts.
fn parts_message(parts: &Parts<'_>) -> OwnedMessage {
    OwnedMessage::new(
        parts.payload.map(<[u8]>::to_vec),
        parts.key.map(<[u8]>::to_vec),
        parts.topic.to_string(),
        parts
            .timestamp
            .map_or(Timestamp::NotAvailable, Timestamp::CreateTime),
        parts.partition.unwrap_or(-1),
        -1001,
        parts.headers.clone(),
    )
}

/// Where and when a record was written.
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
pub struct Delivery {
    /// The partition.
    pub partition: i32,
    /// The offset.
    pub offset: i64,
    /// The timestamp.
    pub timestamp: Timestamp,
}

/// The outcome of [`FutureProducer::send`]: the delivery, or the error and the message.
pub type OwnedDeliveryResult = Result<Delivery, (KafkaError, OwnedMessage)>;

/// The context of a [`FutureProducer`]: wraps the user's [`ClientContext`].
#[derive(Clone)]
pub struct FutureProducerContext<C: ClientContext + 'static> {
    wrapped_context: C,
}

impl<C: ClientContext + 'static> ClientContext for FutureProducerContext<C> {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, log_message: &str) {
        self.wrapped_context.log(level, fac, log_message)
    }

    fn stats(&self, statistics: Statistics) {
        self.wrapped_context.stats(statistics)
    }

    fn stats_raw(&self, statistics: &[u8]) {
        self.wrapped_context.stats_raw(statistics)
    }

    fn error(&self, error: KafkaError, reason: &str) {
        self.wrapped_context.error(error, reason)
    }

    fn generate_oauth_token(
        &self,
        oauthbearer_config: Option<&str>,
    ) -> Result<OAuthToken, Box<dyn std::error::Error>> {
        self.wrapped_context
            .generate_oauth_token(oauthbearer_config)
    }
}

impl<C: ClientContext + 'static, Part: Partitioner> ProducerContext<Part>
    for FutureProducerContext<C>
{
    type DeliveryOpaque = ();

    fn delivery(&self, _: &DeliveryResult<'_>, _: ()) {}
}

/// Where the reaper sends a record's outcome.
type DeliverySender = oneshot::Sender<OwnedDeliveryResult>;

/// A future of a record's outcome (from [`FutureProducer::send_result`]).
///
/// In the common case it wraps kafka-sdk's own delivery future (one shared completion per
/// batch) with the partition and timestamp asked for; the error result takes the record's
/// key, payload and headers from the failed batch kafka-sdk keeps
/// (`DeliveryFuture::failed_record`): no channel, task or copy of the record per record. A record that had to wait before kafka-sdk took it (topic metadata,
/// `buffer.memory`) gets its outcome through a channel instead.
#[must_use = "Futures do nothing unless polled"]
pub struct DeliveryFuture {
    state: State,
    /// The producer's count of outcomes handed out (see `Core::in_flight_count`).
    finished: Arc<AtomicU64>,
}

impl Drop for DeliveryFuture {
    fn drop(&mut self) {
        // An outcome known but never taken counts as handed out (kafka-sdk's own count
        // covers it too, a moment later).
        if let State::Native(d, _) = &self.state {
            if d.is_done() {
                self.finished.fetch_add(1, Ordering::SeqCst);
            }
        }
    }
}

enum State {
    /// kafka-sdk took the record: its future, and what the error result needs besides key
    /// and payload (`None` for `FutureProducer::send`, which still holds the caller's
    /// record and builds the error result from it).
    Native(kafka_sdk::DeliveryFuture, Option<Asked>),
    /// The record waits in the ordered lane; the reaper sends its outcome.
    Lane(oneshot::Receiver<OwnedDeliveryResult>),
    /// Known at once (kafka-sdk refused the record); `None` once taken. Boxed (a rare
    /// path): the result is large, and every move of a `DeliveryFuture` copies the whole
    /// enum.
    Ready(Option<Box<OwnedDeliveryResult>>),
}

/// What `send_result`'s error result shows besides what kafka-sdk keeps: the partition and
/// timestamp asked for, and whether the record had headers. Key, payload and headers are
/// not kept per record: kafka-sdk keeps a failed batch's records (the facade builds its
/// producer with `keep_failed_records`) and hands the failed one back
/// (`DeliveryFuture::failed_record`), so only the rare failure pays (a decode of its batch);
/// the caller's headers are dropped once appended, as kafka-sdk's own `send` does.
pub(crate) struct Asked {
    /// The timestamp asked for; [`NO_TIMESTAMP`]: none.
    timestamp: i64,
    /// The partition asked for; -1: none.
    partition: i32,
    /// The record had headers (maybe none in them): the error result's message has them.
    had_headers: bool,
}

impl Asked {
    fn take(parts: &Parts<'_>) -> Asked {
        Asked {
            timestamp: parts.timestamp.unwrap_or(NO_TIMESTAMP),
            partition: parts.partition.unwrap_or(-1),
            had_headers: parts.headers.is_some(),
        }
    }

    fn timestamp(&self) -> Timestamp {
        if self.timestamp == NO_TIMESTAMP {
            Timestamp::NotAvailable
        } else {
            Timestamp::CreateTime(self.timestamp)
        }
    }

    /// rdkafka's message of the failed record: key, payload and headers as kafka-sdk
    /// appended them (from the failed batch it kept).
    fn failed_message(self, d: &kafka_sdk::DeliveryFuture) -> OwnedMessage {
        let (key, payload, headers) = match d.failed_record() {
            Some(r) => (
                r.key.map(|k| k.to_vec()),
                r.value.map(|v| v.to_vec()),
                self.had_headers.then(|| OwnedHeaders::from_sdk(r.headers)),
            ),
            None => (None, None, self.had_headers.then(OwnedHeaders::new)),
        };
        OwnedMessage::new(
            payload,
            key,
            d.topic().to_string(),
            self.timestamp(),
            self.partition,
            -1001,
            headers,
        )
    }
}

impl std::fmt::Debug for DeliveryFuture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = match &self.state {
            State::Native(d, _) => {
                if d.is_done() {
                    "done"
                } else {
                    "in flight"
                }
            }
            State::Lane(_) => "waiting to be queued",
            State::Ready(_) => "failed at once",
        };
        f.debug_struct("DeliveryFuture")
            .field("state", &state)
            .finish()
    }
}

impl Future for DeliveryFuture {
    type Output = Result<OwnedDeliveryResult, oneshot::Canceled>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        match &mut this.state {
            State::Native(d, asked) => match d.poll_written(cx) {
                Poll::Ready(r) => {
                    let r = match r {
                        Ok(w) => Ok(delivery(
                            d.partition(),
                            w.offset,
                            w.log_append_time,
                            d.timestamp(),
                            asked
                                .as_ref()
                                .map_or(Timestamp::NotAvailable, Asked::timestamp),
                        )),
                        Err(e) => Err((
                            produce_error(&e),
                            match asked.take() {
                                Some(a) => a.failed_message(d),
                                None => placeholder_message(),
                            },
                        )),
                    };
                    // Counted before the caller sees it, so that `in_flight_count` is 0 once
                    // every outcome was awaited (kafka-sdk counts the batch a moment after
                    // completing it).
                    this.finished.fetch_add(1, Ordering::SeqCst);
                    this.state = State::Ready(None);
                    Poll::Ready(Ok(r))
                }
                Poll::Pending => Poll::Pending,
            },
            State::Lane(rx) => Pin::new(rx).poll(cx),
            State::Ready(r) => Poll::Ready(match r.take() {
                Some(r) => Ok(*r),
                None => Err(oneshot::Canceled),
            }),
        }
    }
}

/// rdkafka's delivery of an acknowledged record: the broker's time when it stamped the
/// record (`log_append_time`, as librdkafka reports it), else the record's own (`own`, or
/// `asked` when it had none).
fn delivery(
    partition: i32,
    offset: i64,
    log_append_time: Option<i64>,
    own: i64,
    asked: Timestamp,
) -> Delivery {
    Delivery {
        partition,
        offset,
        timestamp: if let Some(t) = log_append_time {
            Timestamp::LogAppendTime(t)
        } else if own >= 0 {
            Timestamp::CreateTime(own)
        } else {
            asked
        },
    }
}

/// The message of an error result whose record the caller still holds
/// (`FutureProducer::send` replaces it with one built from that record).
fn placeholder_message() -> OwnedMessage {
    OwnedMessage::new(
        None,
        None,
        String::new(),
        Timestamp::NotAvailable,
        -1,
        -1,
        None,
    )
}

/// A producer whose `send` is a future of the record's outcome. Cheap to clone.
pub struct FutureProducer<C = DefaultClientContext, R = DefaultRuntime, Part = NoCustomPartitioner>
where
    Part: Partitioner,
    C: ClientContext + 'static,
{
    client: Arc<Client<FutureProducerContext<C>>>,
    core: Arc<Core<DeliverySender>>,
    /// Outcomes handed out (see `Core::in_flight_count`).
    finished: Arc<AtomicU64>,
    _marker: PhantomData<fn() -> (R, Part)>,
}

impl<C, R, Part> Clone for FutureProducer<C, R, Part>
where
    Part: Partitioner,
    C: ClientContext + 'static,
{
    fn clone(&self) -> Self {
        FutureProducer {
            client: self.client.clone(),
            core: self.core.clone(),
            finished: self.finished.clone(),
            _marker: PhantomData,
        }
    }
}

impl<R: AsyncRuntime> FromClientConfig for FutureProducer<DefaultClientContext, R> {
    fn from_config(config: &ClientConfig) -> KafkaResult<FutureProducer<DefaultClientContext, R>> {
        FutureProducer::from_config_and_context(config, DefaultClientContext)
    }
}

impl<C, R> FromClientConfigAndContext<C> for FutureProducer<C, R>
where
    C: ClientContext + 'static,
    R: AsyncRuntime,
{
    fn from_config_and_context(config: &ClientConfig, context: C) -> KafkaResult<Self> {
        let context = Arc::new(FutureProducerContext {
            wrapped_context: context,
        });
        // Only records that waited in the lane come here; the in-flight count is kafka-sdk's.
        let finished = Arc::new(AtomicU64::new(0));
        let counted = finished.clone();
        let on_done: OnDone<DeliverySender> = Box::new(move |done, _| {
            for (out, result, tx) in done.drain(..) {
                // (A failed one may have failed before kafka-sdk took it: not counted.)
                if result.is_ok() {
                    counted.fetch_add(1, Ordering::SeqCst);
                }
                let r = match result {
                    Ok((meta, appended)) => Ok(delivery(
                        meta.partition,
                        meta.offset,
                        appended,
                        meta.timestamp,
                        out.rec.timestamp(),
                    )),
                    Err(e) => Err((e, out.rec.owned_message(&out.topic))),
                };
                let _ = tx.send(r);
            }
        });
        let core = Arc::new(Core::new::<_, NoCustomPartitioner>(
            config,
            &context,
            on_done,
            Some(finished.clone()),
            None,
            false,
        )?);
        Ok(FutureProducer {
            client: Arc::new(Client::new(context, core.source())),
            core,
            finished,
            _marker: PhantomData,
        })
    }
}

impl<C, R, Part> FutureProducer<C, R, Part>
where
    Part: Partitioner,
    C: ClientContext + 'static,
    R: AsyncRuntime,
{
    /// Queues the record of `parts`; `keep_asked`: the future keeps what its error result
    /// needs besides key and payload ([`Asked`]; else the error result's message is a
    /// placeholder, for a caller that still holds the record).
    ///
    /// `Err` with the parts handed back when there is no room (`QueueFull`: nothing taken).
    fn queue<'a>(
        &self,
        mut parts: Parts<'a>,
        keep_asked: bool,
    ) -> Result<DeliveryFuture, Parts<'a>> {
        let mut rx = None;
        let state = match self.core.submit_direct(&mut parts, || {
            let (tx, r) = oneshot::channel();
            rx = Some(r);
            tx
        }) {
            Direct::Sent(Ok(d)) => State::Native(d, keep_asked.then(|| Asked::take(&parts))),
            Direct::Sent(Err(e)) => State::Ready(Some(Box::new(Err((*e, parts_message(&parts)))))),
            Direct::Queued => match rx {
                Some(rx) => State::Lane(rx),
                None => State::Ready(None),
            },
            Direct::Full => return Err(parts),
        };
        Ok(DeliveryFuture {
            state,
            finished: self.finished.clone(),
        })
    }

    /// `queue` of an owned copy, retried while there is no room, up to `deadline`:
    /// `QueueFull` after it (with the message).
    async fn queue_held(&self, held: OwnedParts, deadline: Option<Instant>) -> OwnedDeliveryResult {
        loop {
            if !self.core.is_full() {
                if let Ok(fut) = self.queue(held.parts(), true) {
                    return match fut.await {
                        Ok(r) => r,
                        Err(_) => Err((KafkaError::Canceled, held.into_message())),
                    };
                }
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Err((
                    KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull),
                    held.into_message(),
                ));
            }
            // Room comes back as batches complete (1 ms: waiting much longer than the
            // broker's answer would cost throughput).
            R::delay_for(Duration::from_millis(1)).await;
        }
    }

    /// Sends a record and waits for its outcome. `queue_timeout` bounds the wait while
    /// `queue.buffering.max.messages` records are in flight; after it the result is
    /// `QueueFull`. Waiting for topic metadata and for `buffer.memory` is bounded by
    /// `max.block.ms`, delivery by `delivery.timeout.ms` (`message.timeout.ms`).
    pub async fn send<K, P, T>(
        &self,
        record: FutureRecord<'_, K, P>,
        queue_timeout: T,
    ) -> OwnedDeliveryResult
    where
        K: ToBytes + ?Sized,
        P: ToBytes + ?Sized,
        T: Into<Timeout>,
    {
        let start = Instant::now();
        // This future holds the caller's record until the outcome: no copy of it is kept;
        // an error result's message is built from the record.
        if let Ok(fut) = self.queue(record.parts(), false) {
            return match fut.await {
                Ok(Ok(d)) => Ok(d),
                Ok(Err((e, _))) => Err((e, parts_message(&record.parts()))),
                Err(_) => Err((KafkaError::Canceled, parts_message(&record.parts()))),
            };
        }
        // No room: waits for it with a copy (the future holds no borrow of the record).
        let deadline = queue_timeout.into().duration().map(|d| start + d);
        let held = record.to_owned_parts();
        drop(record);
        self.queue_held(held, deadline).await
    }

    /// Queues a record without waiting: `QueueFull` (with the record handed back) when
    /// `queue.buffering.max.messages` records are in flight.
    #[allow(clippy::result_large_err)]
    pub fn send_result<'a, K, P>(
        &self,
        record: FutureRecord<'a, K, P>,
    ) -> Result<DeliveryFuture, (KafkaError, FutureRecord<'a, K, P>)>
    where
        K: ToBytes + ?Sized,
        P: ToBytes + ?Sized,
    {
        // `queue.buffering.max.messages` is checked by `queue` (kafka-sdk's own limit for
        // what it takes, the facade's for the lane).
        let FutureRecord {
            topic,
            partition,
            payload,
            key,
            timestamp,
            headers,
        } = record;
        let parts = Parts::of(topic, partition, key, payload, timestamp, headers);
        // No room in `queue.buffering.max.kbytes` / `.messages`: the record back, as
        // librdkafka's produce fails.
        self.queue(parts, true).map_err(|parts| {
            (
                KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull),
                FutureRecord {
                    topic,
                    partition,
                    payload,
                    key,
                    timestamp,
                    headers: parts.headers,
                },
            )
        })
    }

    /// Nothing to serve: delivery futures complete by themselves. Kept for API
    /// compatibility.
    pub fn poll<T: Into<Timeout>>(&self, timeout: T) {
        let _ = timeout;
    }
}

impl<C, R, Part> Producer<FutureProducerContext<C>, Part> for FutureProducer<C, R, Part>
where
    C: ClientContext + 'static,
    R: AsyncRuntime,
    Part: Partitioner,
{
    fn client(&self) -> &Client<FutureProducerContext<C>> {
        &self.client
    }

    fn in_flight_count(&self) -> i32 {
        i32::try_from(self.core.in_flight_count()).unwrap_or(i32::MAX)
    }

    fn flush<T: Into<Timeout>>(&self, timeout: T) -> KafkaResult<()> {
        let core = self.core.clone();
        self.core
            .flush_until(timeout.into(), move || core.in_flight_count() == 0)
    }

    fn purge(&self, flags: PurgeConfig) {
        self.core.purge(flags)
    }

    fn init_transactions<T: Into<Timeout>>(&self, timeout: T) -> KafkaResult<()> {
        self.core.init_transactions(timeout.into())
    }

    fn begin_transaction(&self) -> KafkaResult<()> {
        self.core.begin_transaction()
    }

    fn send_offsets_to_transaction<T: Into<Timeout>>(
        &self,
        offsets: &TopicPartitionList,
        cgm: &ConsumerGroupMetadata,
        timeout: T,
    ) -> KafkaResult<()> {
        self.core
            .send_offsets_to_transaction(offsets, cgm, timeout.into())
    }

    fn commit_transaction<T: Into<Timeout>>(&self, timeout: T) -> KafkaResult<()> {
        self.core.commit_transaction(timeout.into())
    }

    fn abort_transaction<T: Into<Timeout>>(&self, timeout: T) -> KafkaResult<()> {
        self.core.abort_transaction(timeout.into())
    }
}
