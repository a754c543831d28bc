//! [`BaseProducer`] (delivery reports served by `poll`) and [`ThreadedProducer`].

use std::collections::VecDeque;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::task::{Context, Poll};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use kafka_sdk::RecordMetadata;

use super::{
    copy, produce_error, Appended, Core, DefaultProducerContext, NoCustomPartitioner, OnDone,
    Partitioner, Parts, Producer, ProducerContext, PurgeConfig, RecordCopy, Sent, Sink,
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
}

impl<'a, K: ToBytes + ?Sized, P: ToBytes + ?Sized> BaseRecord<'a, K, P, ()> {
    /// A record for `topic`.
    pub fn to(topic: &'a str) -> BaseRecord<'a, K, P, ()> {
        BaseRecord::with_opaque_to(topic, ())
    }
}

/// A record kafka-sdk refused at once (its own copy, the topic's name, the error).
struct Refused<D> {
    rec: RecordCopy,
    topic: Arc<str>,
    error: KafkaError,
    opaque: D,
}

/// Consecutive records of one kafka-sdk batch appended on the calling thread (the common
/// case): one entry per batch, not per record. Their key, payload and timestamp are read
/// back from the batch kafka-sdk keeps (`keep_records`) when their reports are served: no
/// copy per record; per record only its opaque (nothing for `()`) and its headers when it
/// has some.
struct Run<D> {
    /// The delivery future of the run's first record: its batch's shared completion (the
    /// kept records, every record's outcome), registered with the reports' waker.
    first: kafka_sdk::DeliveryFuture,
    /// The opaques of the run's records, in append order (the records are the batch's
    /// `first.batch_index()..` + this many).
    opaques: Vec<D>,
    /// The caller's headers of the run's records that had some (`Some`, also empty), by
    /// place in the run: rdkafka's report shows the caller's headers, and a record without
    /// any shows `None`.
    headers: Vec<(u32, OwnedHeaders)>,
}

impl<D> Run<D> {
    /// The batch index the run's next record must have.
    fn next_index(&self) -> i64 {
        i64::from(self.first.batch_index()) + self.opaques.len() as i64
    }

    /// Whether `d` is the run's next record.
    #[inline]
    fn continues(&self, d: &kafka_sdk::DeliveryFuture) -> bool {
        d.same_batch(&self.first) && self.next_index() == i64::from(d.batch_index())
    }

    #[inline]
    fn push(&mut self, opaque: D, headers: Option<OwnedHeaders>) {
        if let Some(h) = headers {
            let at = u32::try_from(self.opaques.len()).unwrap_or(u32::MAX);
            self.headers.push((at, h));
        }
        self.opaques.push(opaque);
    }
}

/// An entry of a partition's FIFO.
enum Entry<D> {
    Run(Run<D>),
    /// A record that waited in the lane (it has its own copy already), with its delivery
    /// future.
    Copied {
        rec: RecordCopy,
        delivery: kafka_sdk::DeliveryFuture,
        opaque: D,
    },
}

impl<D> Entry<D> {
    fn delivery(&self) -> &kafka_sdk::DeliveryFuture {
        match self {
            Entry::Run(r) => &r.first,
            Entry::Copied { delivery, .. } => delivery,
        }
    }

    fn delivery_mut(&mut self) -> &mut kafka_sdk::DeliveryFuture {
        match self {
            Entry::Run(r) => &mut r.first,
            Entry::Copied { delivery, .. } => delivery,
        }
    }
}

/// One FIFO per partition (indexed by partition).
type PartitionFifos<D> = Vec<VecDeque<Entry<D>>>;

/// Records whose delivery report was not served yet, in one FIFO per partition (append
/// order), owned by the producer and served by `poll` on the caller's thread (no other
/// thread touches a record on its way).
struct Pending<D> {
    /// Per topic (shared name), per partition.
    fifos: Vec<(Arc<str>, PartitionFifos<D>)>,
    /// Records kafka-sdk refused at once.
    failed: VecDeque<Refused<D>>,
    /// `poll`'s vector of finished entries, kept between calls (no growing a new one for
    /// every batch).
    spare: Vec<Served<D>>,
}

/// A finished entry on its way to the context, with its topic's shared name.
enum Served<D> {
    Entry(Arc<str>, i32, Entry<D>),
    Refused(Refused<D>),
}

impl<D> Pending<D> {
    /// The FIFO of `d`'s topic and partition.
    #[inline]
    fn fifo(
        &mut self,
        d: &kafka_sdk::DeliveryFuture,
        topic: Option<&Arc<str>>,
    ) -> &mut VecDeque<Entry<D>> {
        let name = d.topic();
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
                let t = topic.cloned().unwrap_or_else(|| Arc::from(name));
                self.fifos.push((t, Vec::new()));
                self.fifos.len() - 1
            }
        };
        let parts = &mut self.fifos[i].1;
        let p = usize::try_from(d.partition()).unwrap_or(0);
        if parts.len() <= p {
            parts.resize_with(p + 1, VecDeque::new);
        }
        &mut parts[p]
    }

    /// Files a record kafka-sdk took on the calling thread: into its FIFO's last run when it
    /// continues it (the common case: a push of its opaque), else into a new run. `true`
    /// when a new run's batch had already completed (no waker will say so: the caller
    /// signals it).
    #[inline]
    fn file(
        &mut self,
        d: kafka_sdk::DeliveryFuture,
        opaque: D,
        headers: Option<OwnedHeaders>,
        waker: &std::task::Waker,
    ) -> bool {
        let fifo = self.fifo(&d, None);
        if let Some(Entry::Run(run)) = fifo.back_mut() {
            if run.continues(&d) {
                // No signal needed even when the batch is done already: its completion
                // bumped the count, and no `poll` looked at the FIFOs since (under this
                // lock), or the run would have been served and gone.
                run.push(opaque, headers);
                return false;
            }
        }
        file_slow(fifo, d, opaque, headers, waker)
    }

    /// Files a record that waited in the lane (or that kafka-sdk refused), with its copy.
    /// `true` when `poll` has something new without a waker saying so.
    fn add(&mut self, s: Sent<D>, waker: &std::task::Waker) -> bool {
        let Sent {
            topic,
            rec,
            sent,
            tag,
        } = s;
        match sent {
            Ok(mut delivery) => {
                let ready = register(&mut delivery, waker);
                self.fifo(&delivery, topic.as_ref())
                    .push_back(Entry::Copied {
                        rec,
                        delivery,
                        opaque: tag,
                    });
                ready
            }
            Err(e) => {
                self.failed.push_back(Refused {
                    rec,
                    topic: topic.unwrap_or_else(|| Arc::from("")),
                    error: *e,
                    opaque: tag,
                });
                true
            }
        }
    }

    /// Moves the finished entries at the head of each FIFO (and the refused records) to
    /// `batch`.
    fn take_done(&mut self, batch: &mut Vec<Served<D>>) {
        if !self.failed.is_empty() {
            batch.extend(self.failed.drain(..).map(Served::Refused));
        }
        for (topic, parts) in self.fifos.iter_mut() {
            for (p, fifo) in parts.iter_mut().enumerate() {
                while let Some(front) = fifo.front() {
                    if !front.delivery().is_done() {
                        break;
                    }
                    let Some(front) = fifo.front_mut() else { break };
                    let d = front.delivery_mut();
                    // kafka-sdk's shared name of the topic from now on (`fifo` then finds the
                    // topic by address); once per batch.
                    let noop = &mut Context::from_waker(std::task::Waker::noop());
                    if let Poll::Ready(Ok(m)) = Pin::new(d).poll(noop) {
                        if !Arc::ptr_eq(topic, &m.topic) {
                            *topic = m.topic;
                        }
                    }
                    if let Some(e) = fifo.pop_front() {
                        batch.push(Served::Entry(topic.clone(), p as i32, e));
                    }
                }
            }
        }
    }
}

/// Polls a new FIFO entry's delivery future once with the reports' waker, so that its
/// batch's completion bumps the reports' count and wakes a waiting `poll`; `true` when it
/// is done already (no waker will fire: the caller signals it).
fn register(d: &mut kafka_sdk::DeliveryFuture, waker: &std::task::Waker) -> bool {
    Pin::new(d).poll(&mut Context::from_waker(waker)).is_ready()
}

/// `Pending::file` past the common case: `d` does not continue the FIFO's last run (the
/// first record of a batch, one after a record that waited in the lane, or one filed out of
/// append order): a new run at the FIFO's end. Reports come in the order records are filed:
/// each thread's records in its call order, as before. (Between two threads sending to one
/// partition at once, whose records kafka-sdk appended in one order and which arrive here
/// in the other, the reports follow the filing; each still shows its own record.)
#[inline(never)]
fn file_slow<D>(
    fifo: &mut VecDeque<Entry<D>>,
    mut d: kafka_sdk::DeliveryFuture,
    opaque: D,
    headers: Option<OwnedHeaders>,
    waker: &std::task::Waker,
) -> bool {
    let ready = register(&mut d, waker);
    let mut run = Run {
        first: d,
        opaques: Vec::new(),
        headers: Vec::new(),
    };
    run.push(opaque, headers);
    fifo.push_back(Entry::Run(run));
    ready
}

/// The most finished entries `poll`'s kept vector holds room for.
const SPARE_MAX: usize = 1024;

/// Counts completions of batches with records waiting in the FIFOs (and records filed
/// finished), and wakes a `poll` waiting for one: the waker of every FIFO entry.
#[derive(Default)]
struct Signal {
    /// Bumped (after the completion's outcome was set) for each completion of an entry's
    /// batch, each entry filed finished and each refused record: `poll(0)` looks at the
    /// FIFOs only when it moved.
    count: AtomicU64,
    fired: Mutex<bool>,
    cv: Condvar,
}

impl std::task::Wake for Signal {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.count.fetch_add(1, Ordering::Release);
        *self.fired.lock().unwrap_or_else(|p| p.into_inner()) = true;
        self.cv.notify_all();
    }
}

struct Reports<D> {
    pending: Mutex<Pending<D>>,
    signal: Arc<Signal>,
    waker: std::task::Waker,
    /// The signal's count when the FIFOs were last looked at (read before looking).
    seen: AtomicU64,
}

impl<D> Reports<D> {
    fn lock(&self) -> std::sync::MutexGuard<'_, Pending<D>> {
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Files a record kafka-sdk took on the calling thread.
    #[inline]
    fn file(&self, d: kafka_sdk::DeliveryFuture, opaque: D, headers: Option<OwnedHeaders>) {
        let ready = self.lock().file(d, opaque, headers, &self.waker);
        if ready {
            self.waker.wake_by_ref();
        }
    }

    /// The finished entries: `seen` is the signal's count read before (every completion
    /// it counts was visible then, and is served now).
    fn take(&self, seen: u64) -> Vec<Served<D>> {
        let mut pending = self.lock();
        let mut batch = std::mem::take(&mut pending.spare);
        pending.take_done(&mut batch);
        self.seen.fetch_max(seen, Ordering::Relaxed);
        if batch.is_empty() {
            // Nothing yet: the vector stays (no second lock to give it back).
            pending.spare = batch;
            return Vec::new();
        }
        batch
    }
}

/// A record that failed: its topic, partition and the timestamp it was appended with.
type Unwritten = (Arc<str>, i32, Option<i64>);

/// The message a delivery report shows, from the record's copy and kafka-sdk's metadata
/// (its topic name moved; the broker's time when it stamped the record), or for a record
/// that failed its topic, partition and the timestamp it was appended with (if it was: else
/// the one asked for).
fn copied_message(
    rec: RecordCopy,
    meta: Result<(RecordMetadata, Option<i64>), Unwritten>,
) -> BorrowedMessage<'static> {
    let (topic, partition, offset, timestamp) = match meta {
        Ok((m, log_append_time)) => (
            m.topic,
            m.partition,
            m.offset,
            if let Some(t) = log_append_time {
                Timestamp::LogAppendTime(t)
            } else if m.timestamp >= 0 {
                Timestamp::CreateTime(m.timestamp)
            } else {
                rec.timestamp()
            },
        ),
        Err((topic, partition, appended)) => (
            topic,
            partition,
            -1001,
            appended.map_or_else(|| rec.timestamp(), Timestamp::CreateTime),
        ),
    };
    let (key, payload, headers) = rec.into_parts();
    BorrowedMessage::produced(topic, partition, offset, timestamp, key, payload, headers)
}

/// A producer whose delivery reports are served by [`BaseProducer::poll`] (call it
/// regularly, or use [`ThreadedProducer`]).
///
/// Records are kept as librdkafka keeps them: kafka-sdk holds each batch's records
/// (`keep_records`) until their reports were served, and a report reads its record's key,
/// payload and timestamp back from the batch (no copy per record). Records appended one
/// after another to one batch are one FIFO entry; `poll` looks at the FIFOs only when a
/// batch with waiting records completed since it last looked.
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
            seen: AtomicU64::new(0),
        });
        let to = reports.clone();
        // Records that waited in the lane come to the FIFOs as kafka-sdk takes them (with
        // their copies); the reaper has nothing to do.
        let sink: Sink<C::DeliveryOpaque> = Box::new(move |sent| {
            let look = to.lock().add(sent, &to.waker);
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
            true,
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
        let reports = &*self.reports;
        let signal = &*reports.signal;
        let seen = signal.count.load(Ordering::Acquire);
        let zero = timeout == Some(Duration::ZERO);
        // Nothing completed since the FIFOs were last looked at: nothing to serve. No report
        // is missed: every FIFO entry's batch bumps the count once its outcome is set (the
        // entry's delivery future was polled with the signal's waker when it was filed, or
        // the filing bumped it for a batch already done), and so does each refused record;
        // whoever reads a count and then looks at the FIFOs (under their lock) serves every
        // completion that count includes. A completion counted after that read moves the
        // count past `seen`, so a later `poll` (or `flush`, which polls until nothing is in
        // flight) looks again. (Only `poll(0)` skips; a waiting `poll` always looks.)
        if zero && seen == reports.seen.load(Ordering::Relaxed) {
            return;
        }
        let mut batch = reports.take(seen);
        if batch.is_empty() && !zero {
            let deadline = timeout.map(|d| Instant::now() + d);
            loop {
                // Armed before looking: a completion after the look fires it.
                *signal.fired.lock().unwrap_or_else(|p| p.into_inner()) = false;
                batch = reports.take(signal.count.load(Ordering::Acquire));
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
                rt::blocking(|| {
                    let fired = signal.fired.lock().unwrap_or_else(|p| p.into_inner());
                    let _ = signal
                        .cv
                        .wait_timeout_while(fired, wait, |f| !*f)
                        .unwrap_or_else(|p| p.into_inner());
                });
            }
        }
        if batch.is_empty() {
            return;
        }
        for served in batch.drain(..) {
            let n = match served {
                Served::Entry(topic, partition, Entry::Run(run)) => {
                    self.serve_run(topic, partition, run)
                }
                Served::Entry(
                    topic,
                    partition,
                    Entry::Copied {
                        rec,
                        mut delivery,
                        opaque,
                    },
                ) => {
                    let noop = &mut Context::from_waker(std::task::Waker::noop());
                    let result = match Pin::new(&mut delivery).poll(noop) {
                        Poll::Ready(Ok(meta)) => {
                            let appended = delivery.log_append_time();
                            Ok(copied_message(rec, Ok((meta, appended))))
                        }
                        Poll::Ready(Err(e)) => {
                            // The timestamp it was appended with, from its batch.
                            let ts = delivery
                                .batch_records()
                                .and_then(|mut r| r.next())
                                .map(|r| r.timestamp);
                            Err((
                                produce_error(&e),
                                copied_message(rec, Err((topic, partition, ts))),
                            ))
                        }
                        // (Not reachable: taken because it was done.)
                        Poll::Pending => Err((
                            KafkaError::Canceled,
                            copied_message(rec, Err((topic, partition, None))),
                        )),
                    };
                    self.client.context().delivery(&result, opaque);
                    1
                }
                Served::Refused(r) => {
                    let partition = r.rec.partition;
                    let m = copied_message(r.rec, Err((r.topic, partition, None)));
                    self.client.context().delivery(&Err((r.error, m)), r.opaque);
                    1
                }
            };
            self.core.in_flight.fetch_sub(n, Ordering::Relaxed);
        }
        // The vector back for the next call (a concurrent `poll` may have left its own; a
        // very large one is not kept).
        if batch.capacity() <= SPARE_MAX {
            let mut pending = reports.lock();
            if pending.spare.capacity() < batch.capacity() {
                pending.spare = batch;
            }
        }
    }

    /// Serves the reports of a finished run: each record read back from its batch, with its
    /// outcome; returns how many.
    fn serve_run(&self, topic: Arc<str>, partition: i32, run: Run<C::DeliveryOpaque>) -> usize {
        let Run {
            mut first,
            opaques,
            headers,
        } = run;
        let n = opaques.len();
        let context = self.client.context();
        let mut headers = headers.into_iter().peekable();
        let mut records = first.batch_records();
        // Only if the batch's records could not be read back (never for a batch kafka-sdk
        // encoded: `keep_records` keeps every batch that has records): the outcome of the
        // run's first record, and messages without key and payload.
        let mut fallback: Option<Result<RecordMetadata, kafka_sdk::Error>> = None;
        for (i, opaque) in opaques.into_iter().enumerate() {
            let h = match headers.peek() {
                Some((at, _)) if *at as usize == i => headers.next().map(|(_, h)| h),
                _ => None,
            };
            // Read in place: the message borrows the batch's buffer for the callback.
            let result: DeliveryResult<'_> = match records.as_mut().and_then(|r| r.next_in_place())
            {
                Some(r) => match r.outcome {
                    Ok(w) => Ok(BorrowedMessage::in_batch(
                        &topic,
                        partition,
                        w.offset,
                        r.record,
                        w.log_append_time,
                        h,
                    )),
                    Err(e) => Err((
                        produce_error(e),
                        BorrowedMessage::in_batch(&topic, partition, -1001, r.record, None, h),
                    )),
                },
                None => {
                    let first_result = fallback.get_or_insert_with(|| {
                        let noop = &mut Context::from_waker(std::task::Waker::noop());
                        match Pin::new(&mut first).poll(noop) {
                            Poll::Ready(r) => r,
                            Poll::Pending => Err(kafka_sdk::Error::Closed),
                        }
                    });
                    match first_result {
                        Ok(m) => Ok(BorrowedMessage::produced(
                            m.topic.clone(),
                            m.partition,
                            if m.offset >= 0 {
                                m.offset + i as i64
                            } else {
                                m.offset
                            },
                            Timestamp::NotAvailable,
                            None,
                            None,
                            h,
                        )),
                        Err(e) => Err((
                            produce_error(e),
                            BorrowedMessage::produced(
                                topic.clone(),
                                partition,
                                -1001,
                                Timestamp::NotAvailable,
                                None,
                                None,
                                h,
                            ),
                        )),
                    }
                }
            };
            context.delivery(&result, opaque);
        }
        n
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
        let BaseRecord {
            topic,
            partition,
            payload,
            key,
            timestamp,
            headers,
            delivery_opaque,
        } = record;
        let mut parts = Parts::of(topic, partition, key, payload, timestamp, headers);
        self.core.in_flight.fetch_add(1, Ordering::Relaxed);
        // Appended on this thread (the common case): filed with nothing copied; else it
        // waits in the lane with its copy and the sink files it once kafka-sdk took it.
        match self.core.append(&mut parts, move || delivery_opaque) {
            Appended::Now(Ok(d), tag) => self.reports.file(d, tag(), parts.headers.take()),
            // No room in `queue.buffering.max.kbytes` / `.messages`: the record back, as
            // librdkafka's produce fails.
            Appended::Full(tag) => {
                self.core.in_flight.fetch_sub(1, Ordering::Relaxed);
                return Err((
                    KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull),
                    BaseRecord {
                        topic,
                        partition,
                        payload,
                        key,
                        timestamp,
                        headers: parts.headers.take(),
                        delivery_opaque: tag(),
                    },
                ));
            }
            Appended::Now(Err(e), tag) => {
                let refused = Sent {
                    topic: Some(Arc::from(parts.topic)),
                    rec: copy(&mut parts),
                    sent: Err(e),
                    tag: tag(),
                };
                let look = self.reports.lock().add(refused, &self.reports.waker);
                if look {
                    self.reports.waker.wake_by_ref();
                }
            }
            Appended::Queued => {}
        }
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
