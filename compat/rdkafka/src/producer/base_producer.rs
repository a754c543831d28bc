//! [`BaseProducer`] (delivery reports served by `poll`) and [`ThreadedProducer`].

use std::collections::VecDeque;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::task::{Context, Poll};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use kafka_sdk::RecordMetadata;

use super::{
    produce_error, Core, DefaultProducerContext, NoCustomPartitioner, OnDone, Partitioner, Parts,
    Producer, ProducerContext, PurgeConfig, RecordCopy, Sent, Sink,
};
use crate::client::{Client, ClientContext};
use crate::config::{ClientConfig, FromClientConfig, FromClientConfigAndContext};
use crate::consumer::ConsumerGroupMetadata;
use crate::error::{KafkaError, KafkaResult, RDKafkaErrorCode};
use crate::message::{BorrowedMessage, OwnedHeaders, Timestamp, ToBytes};
use crate::rt;
use crate::topic_partition_list::TopicPartitionList;
use crate::util::{IntoOpaque, Timeout};

/// The outcome of a record, handed to [`ProducerContext::delivery`]: the delivered message
/// (with its partition and offset), or the error and the message.
pub type DeliveryResult<'a> = Result<BorrowedMessage<'a>, (KafkaError, BorrowedMessage<'a>)>;

/// A record for [`BaseProducer`] / [`ThreadedProducer`], borrowing its key and payload.
#[derive(Debug)]
pub struct BaseRecord<'a, K: ToBytes + ?Sized = (), P: ToBytes + ?Sized = (), D: IntoOpaque = ()> {
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
    /// The value handed to the delivery callback.
    pub delivery_opaque: D,
}

impl<'a, K: ToBytes + ?Sized, P: ToBytes + ?Sized, D: IntoOpaque> BaseRecord<'a, K, P, D> {
    /// A record for `topic` carrying `delivery_opaque`.
    pub fn with_opaque_to(topic: &'a str, delivery_opaque: D) -> BaseRecord<'a, K, P, D> {
        BaseRecord {
            topic,
            partition: None,
            payload: None,
            key: None,
            timestamp: None,
            headers: None,
            delivery_opaque,
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

    /// Sets the topic.
    pub fn topic(mut self, topic: &'a str) -> Self {
        self.topic = topic;
        self
    }

    /// Sets the delivery opaque.
    pub fn delivery_opaque(mut self, delivery_opaque: D) -> Self {
        self.delivery_opaque = delivery_opaque;
        self
    }

    fn into_parts(self) -> (Parts<'a>, D) {
        (
            Parts {
                topic: self.topic,
                partition: self.partition,
                key: self.key.map(|k| k.to_bytes()),
                payload: self.payload.map(|p| p.to_bytes()),
                timestamp: self.timestamp,
                headers: self.headers,
            },
            self.delivery_opaque,
        )
    }
}

impl<'a, K: ToBytes + ?Sized, P: ToBytes + ?Sized> BaseRecord<'a, K, P, ()> {
    /// A record for `topic`.
    pub fn to(topic: &'a str) -> BaseRecord<'a, K, P, ()> {
        BaseRecord::with_opaque_to(topic, ())
    }
}

/// A finished record: kafka-sdk's metadata (which names the topic), or the error with the
/// topic (boxed: a rare path, and each report is moved a few times on its way; 112 bytes
/// instead of 160 keeps those moves inline instead of `memcpy` calls).
struct Report<D> {
    rec: RecordCopy,
    result: Result<RecordMetadata, Box<(KafkaError, Arc<str>)>>,
    opaque: D,
}

/// A record kafka-sdk took, with its delivery future (the FIFO's topic is its topic).
struct Waiting<D> {
    rec: RecordCopy,
    delivery: kafka_sdk::DeliveryFuture,
    opaque: D,
}

/// One FIFO per partition (indexed by partition).
type PartitionFifos<D> = Vec<VecDeque<Waiting<D>>>;

/// Records whose delivery report was not served yet: kafka-sdk's delivery futures in one
/// FIFO per partition (append order), owned by the producer and served by `poll` on the
/// caller's thread (no other thread touches a record on its way).
struct Pending<D> {
    /// Per topic (shared name), per partition.
    fifos: Vec<(Arc<str>, PartitionFifos<D>)>,
    /// Records kafka-sdk refused at once.
    failed: VecDeque<Report<D>>,
    /// `poll`'s vector of finished records, kept between calls (no growing a new one for
    /// every batch).
    spare: Vec<Report<D>>,
}

impl<D> Pending<D> {
    /// Files a record kafka-sdk took (or refused); `true` when `poll` has to look again
    /// (its FIFO was empty, so no waker of a waiting `poll` is with it).
    fn add(&mut self, s: Sent<D>) -> bool {
        let Sent {
            topic,
            rec,
            sent,
            tag,
        } = s;
        let delivery = match sent {
            Ok(d) => d,
            Err(e) => {
                self.failed.push_back(Report {
                    rec,
                    result: Err(Box::new((*e, topic.unwrap_or_else(|| Arc::from(""))))),
                    opaque: tag,
                });
                return true;
            }
        };
        let name = delivery.topic();
        // The same allocation first (no compare of the names): once a topic's first report
        // was served, its FIFOs hold kafka-sdk's own shared name (see `take_done`), and
        // holding it keeps that allocation from being reused for another name.
        let i = match self
            .fifos
            .iter()
            .position(|(t, _)| std::ptr::eq(t.as_ptr(), name.as_ptr()) && t.len() == name.len())
            .or_else(|| self.fifos.iter().position(|(t, _)| **t == *name))
        {
            Some(i) => i,
            None => {
                let t = topic.unwrap_or_else(|| Arc::from(name));
                self.fifos.push((t, Vec::new()));
                self.fifos.len() - 1
            }
        };
        let parts = &mut self.fifos[i].1;
        let p = usize::try_from(delivery.partition()).unwrap_or(0);
        if parts.len() <= p {
            parts.resize_with(p + 1, VecDeque::new);
        }
        let fifo = &mut parts[p];
        fifo.push_back(Waiting {
            rec,
            delivery,
            opaque: tag,
        });
        fifo.len() == 1
    }

    /// Moves the finished records at the head of each FIFO to `batch`. With `cx`, the
    /// first unfinished record of each FIFO registers its waker (to wait for the next
    /// completion); without, only finished records are touched.
    fn take_done(&mut self, batch: &mut Vec<Report<D>>, mut cx: Option<&mut Context<'_>>) {
        if !self.failed.is_empty() {
            // (Checked first: `poll(0)` after every `send` mostly finds nothing here, and an
            // empty drain still costs a guard per call.)
            batch.extend(self.failed.drain(..));
        }
        for (topic, parts) in self.fifos.iter_mut() {
            for fifo in parts.iter_mut() {
                while let Some(front) = fifo.front_mut() {
                    let r = match cx.as_deref_mut() {
                        Some(cx) => Pin::new(&mut front.delivery).poll(cx),
                        None if front.delivery.is_done() => Pin::new(&mut front.delivery)
                            .poll(&mut Context::from_waker(std::task::Waker::noop())),
                        None => Poll::Pending,
                    };
                    let Poll::Ready(r) = r else { break };
                    if let Ok(m) = &r {
                        // kafka-sdk's shared name of the topic from now on (`add` then finds
                        // the topic by address).
                        if !Arc::ptr_eq(topic, &m.topic) {
                            *topic = m.topic.clone();
                        }
                    }
                    if let Some(w) = fifo.pop_front() {
                        batch.push(Report {
                            rec: w.rec,
                            result: r.map_err(|e| Box::new((produce_error(&e), topic.clone()))),
                            opaque: w.opaque,
                        });
                    }
                }
            }
        }
    }
}

/// The most finished records `poll`'s kept vector holds room for (a batch of 100 B records
/// of the default `batch.size` is about 10,000).
const SPARE_MAX: usize = 16 * 1024;

/// Wakes a `poll` waiting for the next completion (the waker of the FIFOs' fronts).
#[derive(Default)]
struct Signal {
    fired: Mutex<bool>,
    cv: Condvar,
}

impl std::task::Wake for Signal {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        *self.fired.lock().unwrap_or_else(|p| p.into_inner()) = true;
        self.cv.notify_all();
    }
}

struct Reports<D> {
    pending: Mutex<Pending<D>>,
    signal: Arc<Signal>,
    waker: std::task::Waker,
}

/// The message a delivery report shows, from the record's copy (taken apart: no reference
/// count touched per field) and kafka-sdk's metadata (its topic name moved), or the topic
/// of a record that failed.
#[inline]
fn delivered_message(
    rec: RecordCopy,
    meta: Result<RecordMetadata, Arc<str>>,
) -> BorrowedMessage<'static> {
    let (topic, partition, offset, timestamp) = match meta {
        Ok(m) => (
            m.topic,
            m.partition,
            m.offset,
            if m.timestamp >= 0 {
                Timestamp::CreateTime(m.timestamp)
            } else {
                rec.timestamp()
            },
        ),
        Err(topic) => (topic, rec.partition, -1001, rec.timestamp()),
    };
    let (key, payload, headers) = rec.into_parts();
    BorrowedMessage::produced(topic, partition, offset, timestamp, key, payload, headers)
}

/// A producer whose delivery reports are served by [`BaseProducer::poll`] (call it
/// regularly, or use [`ThreadedProducer`]).
pub struct BaseProducer<C = DefaultProducerContext, Part = NoCustomPartitioner>
where
    Part: Partitioner,
    C: ProducerContext<Part>,
{
    client: Client<C>,
    core: Arc<Core<C::DeliveryOpaque>>,
    reports: Arc<Reports<C::DeliveryOpaque>>,
    _part: PhantomData<fn() -> Part>,
}

impl FromClientConfig for BaseProducer<DefaultProducerContext> {
    fn from_config(config: &ClientConfig) -> KafkaResult<BaseProducer<DefaultProducerContext>> {
        BaseProducer::from_config_and_context(config, DefaultProducerContext)
    }
}

impl<C, Part> FromClientConfigAndContext<C> for BaseProducer<C, Part>
where
    Part: Partitioner + 'static,
    C: ProducerContext<Part> + 'static,
{
    fn from_config_and_context(config: &ClientConfig, context: C) -> KafkaResult<Self> {
        let context = Arc::new(context);
        let signal = Arc::new(Signal::default());
        let reports = Arc::new(Reports {
            pending: Mutex::new(Pending {
                fifos: Vec::new(),
                failed: VecDeque::new(),
                spare: Vec::new(),
            }),
            waker: std::task::Waker::from(signal.clone()),
            signal,
        });
        let to = reports.clone();
        // Records come straight to the FIFOs as kafka-sdk takes them; the reaper has
        // nothing to do.
        let sink: Sink<C::DeliveryOpaque> = Box::new(move |sent| {
            let mut p = to.pending.lock().unwrap_or_else(|p| p.into_inner());
            let look = p.add(sent);
            drop(p);
            if look {
                to.waker.wake_by_ref();
            }
        });
        let on_done: OnDone<C::DeliveryOpaque> = Box::new(|_, _| {});
        let core = Arc::new(Core::new::<C, Part>(
            config,
            &context,
            on_done,
            None,
            Some(sink),
        )?);
        Ok(BaseProducer {
            client: Client::new(context, core.source()),
            core,
            reports,
            _part: PhantomData,
        })
    }
}

impl<C, Part> BaseProducer<C, Part>
where
    Part: Partitioner,
    C: ProducerContext<Part>,
{
    /// Serves delivery reports: waits up to `timeout` for the first one, then serves every
    /// report already there, calling [`ProducerContext::delivery`] on this thread.
    pub fn poll<T: Into<Timeout>>(&self, timeout: T) {
        let timeout = timeout.into().duration();
        let zero = timeout == Some(Duration::ZERO);
        let mut batch = {
            let mut pending = self.lock_pending();
            let mut batch = std::mem::take(&mut pending.spare);
            pending.take_done(&mut batch, None);
            if batch.is_empty() {
                // Nothing yet: the vector stays (no second lock to give it back).
                pending.spare = std::mem::take(&mut batch);
            }
            batch
        };
        let deadline = match timeout {
            Some(d) if batch.is_empty() && !zero => Some(Instant::now() + d),
            _ => None,
        };
        while batch.is_empty() && !zero {
            // Register with the first unfinished record of each FIFO, then wait for a
            // completion (or a record filed into an empty FIFO) without spinning.
            *self
                .reports
                .signal
                .fired
                .lock()
                .unwrap_or_else(|p| p.into_inner()) = false;
            let mut cx = Context::from_waker(&self.reports.waker);
            self.lock_pending().take_done(&mut batch, Some(&mut cx));
            if !batch.is_empty() {
                break;
            }
            let wait = match deadline {
                Some(d) => {
                    let now = Instant::now();
                    if now >= d {
                        break;
                    }
                    d - now
                }
                None => Duration::from_secs(3600),
            };
            let signal = &self.reports.signal;
            rt::blocking(|| {
                let fired = signal.fired.lock().unwrap_or_else(|p| p.into_inner());
                let _ = signal
                    .cv
                    .wait_timeout_while(fired, wait, |f| !*f)
                    .unwrap_or_else(|p| p.into_inner());
            });
        }
        if batch.capacity() == 0 {
            return;
        }
        for r in batch.drain(..) {
            let result: DeliveryResult<'_> = match r.result {
                Ok(meta) => Ok(delivered_message(r.rec, Ok(meta))),
                Err(e) => {
                    let (e, topic) = *e;
                    Err((e, delivered_message(r.rec, Err(topic))))
                }
            };
            self.client.context().delivery(&result, r.opaque);
            self.core.in_flight.fetch_sub(1, Ordering::Relaxed);
        }
        // The vector back for the next call (a concurrent `poll` may have left its own; a
        // very large one is not kept).
        if batch.capacity() <= SPARE_MAX {
            let mut pending = self.lock_pending();
            if pending.spare.capacity() < batch.capacity() {
                pending.spare = batch;
            }
        }
    }

    fn lock_pending(&self) -> std::sync::MutexGuard<'_, Pending<C::DeliveryOpaque>> {
        self.reports
            .pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    /// Queues a record. Fails at once with `QueueFull` (handing the record back) when
    /// `queue.buffering.max.messages` records are in flight; the delivery report comes
    /// through [`BaseProducer::poll`].
    #[allow(clippy::result_large_err, clippy::type_complexity)]
    pub fn send<'a, K, P>(
        &self,
        record: BaseRecord<'a, K, P, C::DeliveryOpaque>,
    ) -> Result<(), (KafkaError, BaseRecord<'a, K, P, C::DeliveryOpaque>)>
    where
        K: ToBytes + ?Sized,
        P: ToBytes + ?Sized,
    {
        if self.core.is_full() {
            return Err((
                KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull),
                record,
            ));
        }
        if record.topic.is_empty() {
            return Err((
                KafkaError::MessageProduction(RDKafkaErrorCode::InvalidArgument),
                record,
            ));
        }
        let (parts, opaque) = record.into_parts();
        self.core.submit(parts, opaque);
        Ok(())
    }
}

impl<C, Part> Producer<C, Part> for BaseProducer<C, Part>
where
    Part: Partitioner,
    C: ProducerContext<Part>,
{
    fn client(&self) -> &Client<C> {
        &self.client
    }

    fn in_flight_count(&self) -> i32 {
        self.core.in_flight.load(Ordering::Relaxed) as i32
    }

    fn flush<T: Into<Timeout>>(&self, timeout: T) -> KafkaResult<()> {
        let in_flight = self.core.in_flight.clone();
        self.core.flush_until(timeout.into(), || {
            self.poll(Duration::ZERO);
            in_flight.load(Ordering::Relaxed) == 0
        })
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

/// A [`BaseProducer`] with a thread of its own that serves delivery reports.
pub struct ThreadedProducer<C, Part: Partitioner = NoCustomPartitioner>
where
    C: ProducerContext<Part> + 'static,
    Part: 'static,
{
    producer: Arc<BaseProducer<C, Part>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl FromClientConfig for ThreadedProducer<DefaultProducerContext, NoCustomPartitioner> {
    fn from_config(config: &ClientConfig) -> KafkaResult<Self> {
        ThreadedProducer::from_config_and_context(config, DefaultProducerContext)
    }
}

impl<C, Part> FromClientConfigAndContext<C> for ThreadedProducer<C, Part>
where
    Part: Partitioner + Send + Sync + 'static,
    C: ProducerContext<Part> + 'static,
{
    fn from_config_and_context(config: &ClientConfig, context: C) -> KafkaResult<Self> {
        let producer = Arc::new(BaseProducer::<C, Part>::from_config_and_context(
            config, context,
        )?);
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let producer = producer.clone();
            let stop = stop.clone();
            std::thread::Builder::new()
                .name("producer polling thread".into())
                .spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        producer.poll(Duration::from_millis(100));
                    }
                })
                .map_err(|e| KafkaError::ClientCreation(format!("polling thread: {e}")))?
        };
        Ok(ThreadedProducer {
            producer,
            stop,
            thread: Some(thread),
        })
    }
}

impl<C, Part> ThreadedProducer<C, Part>
where
    Part: Partitioner + 'static,
    C: ProducerContext<Part> + 'static,
{
    /// Queues a record (see [`BaseProducer::send`]).
    #[allow(clippy::result_large_err, clippy::type_complexity)]
    pub fn send<'a, K, P>(
        &self,
        record: BaseRecord<'a, K, P, C::DeliveryOpaque>,
    ) -> Result<(), (KafkaError, BaseRecord<'a, K, P, C::DeliveryOpaque>)>
    where
        K: ToBytes + ?Sized,
        P: ToBytes + ?Sized,
    {
        self.producer.send(record)
    }

    /// Serves delivery reports (the thread does this already).
    pub fn poll<T: Into<Timeout>>(&self, timeout: T) {
        self.producer.poll(timeout)
    }
}

impl<C, Part> Producer<C, Part> for ThreadedProducer<C, Part>
where
    Part: Partitioner + 'static,
    C: ProducerContext<Part> + 'static,
{
    fn client(&self) -> &Client<C> {
        self.producer.client()
    }

    fn in_flight_count(&self) -> i32 {
        self.producer.in_flight_count()
    }

    fn flush<T: Into<Timeout>>(&self, timeout: T) -> KafkaResult<()> {
        self.producer.flush(timeout)
    }

    fn purge(&self, flags: PurgeConfig) {
        self.producer.purge(flags)
    }

    fn init_transactions<T: Into<Timeout>>(&self, timeout: T) -> KafkaResult<()> {
        self.producer.init_transactions(timeout)
    }

    fn begin_transaction(&self) -> KafkaResult<()> {
        self.producer.begin_transaction()
    }

    fn send_offsets_to_transaction<T: Into<Timeout>>(
        &self,
        offsets: &TopicPartitionList,
        cgm: &ConsumerGroupMetadata,
        timeout: T,
    ) -> KafkaResult<()> {
        self.producer
            .send_offsets_to_transaction(offsets, cgm, timeout)
    }

    fn commit_transaction<T: Into<Timeout>>(&self, timeout: T) -> KafkaResult<()> {
        self.producer.commit_transaction(timeout)
    }

    fn abort_transaction<T: Into<Timeout>>(&self, timeout: T) -> KafkaResult<()> {
        self.producer.abort_transaction(timeout)
    }
}

impl<C, Part> Drop for ThreadedProducer<C, Part>
where
    Part: Partitioner + 'static,
    C: ProducerContext<Part> + 'static,
{
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl<C: ClientContext> std::fmt::Debug for Client<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Client")
    }
}
