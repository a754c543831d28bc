//! [`BaseProducer`] (delivery reports served by `poll`) and [`ThreadedProducer`].

use std::collections::VecDeque;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use kafka_sdk::RecordMetadata;

use super::{
    Core, DefaultProducerContext, NoCustomPartitioner, OnDone, Outgoing, Partitioner, Parts,
    Producer, ProducerContext, PurgeConfig,
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

struct Report<D> {
    out: Outgoing,
    result: Result<RecordMetadata, KafkaError>,
    opaque: D,
}

struct Reports<D> {
    queue: Mutex<VecDeque<Report<D>>>,
    ready: Condvar,
}

/// The message a delivery report shows.
pub(crate) fn delivered_message(
    out: &Outgoing,
    meta: Option<&RecordMetadata>,
) -> BorrowedMessage<'static> {
    let (partition, offset, timestamp) = match meta {
        Some(m) => (
            m.partition,
            m.offset,
            if m.timestamp >= 0 {
                Timestamp::CreateTime(m.timestamp)
            } else {
                out.timestamp()
            },
        ),
        None => (out.partition.unwrap_or(-1), -1001, out.timestamp()),
    };
    BorrowedMessage::produced(
        out.topic.clone(),
        partition,
        offset,
        timestamp,
        out.key.clone(),
        out.payload.clone(),
        out.headers.clone(),
    )
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
        let reports = Arc::new(Reports {
            queue: Mutex::new(VecDeque::new()),
            ready: Condvar::new(),
        });
        let sink = reports.clone();
        let on_done: OnDone<C::DeliveryOpaque> = Box::new(move |done, _| {
            let mut q = sink.queue.lock().unwrap_or_else(|p| p.into_inner());
            q.extend(done.drain(..).map(|(out, result, opaque)| Report {
                out,
                result,
                opaque,
            }));
            drop(q);
            sink.ready.notify_all();
        });
        let core = Arc::new(Core::new::<C, Part>(config, &context, on_done, false)?);
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
        let deadline = timeout.into().duration().map(|d| Instant::now() + d);
        let batch: Vec<Report<C::DeliveryOpaque>> = {
            let mut q = self.reports.queue.lock().unwrap_or_else(|p| p.into_inner());
            while q.is_empty() {
                let wait = match deadline {
                    Some(d) => {
                        let now = Instant::now();
                        if now >= d {
                            return;
                        }
                        d - now
                    }
                    None => Duration::from_secs(3600),
                };
                q = rt::blocking(|| {
                    self.reports
                        .ready
                        .wait_timeout(q, wait)
                        .unwrap_or_else(|p| p.into_inner())
                        .0
                });
            }
            q.drain(..).collect()
        };
        for r in batch {
            let result: DeliveryResult<'_> = match r.result {
                Ok(meta) => Ok(delivered_message(&r.out, Some(&meta))),
                Err(e) => Err((e, delivered_message(&r.out, None))),
            };
            self.client.context().delivery(&result, r.opaque);
            self.core.in_flight.fetch_sub(1, Ordering::Relaxed);
        }
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
