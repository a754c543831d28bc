//! Producers: [`FutureProducer`] (async delivery), [`BaseProducer`] (delivery callbacks served
//! by `poll`) and [`ThreadedProducer`] (a thread polls for you), with the [`Producer`] trait
//! (flush, in-flight count, transactions).
//!
//! All three sit on one [`kafka_sdk::Producer`] and share one submission path: `send`
//! appends the record to kafka-sdk on the calling thread when kafka-sdk would not wait, else
//! through an ordered slow lane, so per-partition order is the order of the `send` calls, as
//! in librdkafka (see `Core`). Outcomes: a [`FutureProducer`]'s [`DeliveryFuture`] wraps
//! kafka-sdk's own delivery future (a reaper task on the facade's runtime awaits only the
//! records that went through the lane); a [`BaseProducer`] files kafka-sdk's delivery
//! futures in per-partition FIFOs as they are appended and serves the finished ones in
//! `poll`, on the caller's thread. No channel, task or thread hand-off per record.

use std::collections::VecDeque;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use std::cell::RefCell;

use bytes::{Bytes, BytesMut};
use kafka_sdk::producer::{BorrowedRecord, WouldWait};
use kafka_sdk::{ProducerRecord, RecordMetadata};
use tokio::sync::{oneshot, Notify};

use crate::client::{Client, ClientContext, Source};
use crate::config::ClientConfig;
use crate::consumer::ConsumerGroupMetadata;
use crate::error::{KafkaError, KafkaResult, RDKafkaError, RDKafkaErrorCode};
use crate::message::{OwnedHeaders, OwnedMessage, Timestamp, ToBytes};
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

/// librdkafka's default `queue.buffering.max.kbytes` (1 GiB).
const LIBRDKAFKA_MAX_KBYTES: &str = "1048576";

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

/// A record's own copy of what its delivery report or error result shows, taken from a
/// `BaseRecord` / `FutureRecord` (rdkafka hands the message back, so it outlives the
/// caller's borrow). Not the topic: kafka-sdk's delivery future names it, and the lane
/// keeps it beside ([`Outgoing`]). Key and payload are one piece of a shared chunk, split
/// only when a message is built; the struct stays small because every move of a
/// [`DeliveryFuture`] or a FIFO entry copies it (64 bytes: with kafka-sdk's delivery
/// future, a [`DeliveryFuture`] stays within the size the compiler moves without a
/// `memcpy` call).
pub(crate) struct RecordCopy {
    /// The key followed by the payload.
    data: Bytes,
    /// The timestamp asked for; [`NO_TIMESTAMP`]: none.
    timestamp: i64,
    /// Boxed: only records with headers pay for them.
    headers: Option<Box<OwnedHeaders>>,
    /// (A key cannot be longer: Kafka's length fields are 32-bit, and kafka-sdk refuses a
    /// record above `max.request.size` before anything is copied.)
    key_len: u32,
    /// The partition asked for; negative: none.
    pub(crate) partition: i32,
    has_key: bool,
    has_payload: bool,
}

/// [`RecordCopy::timestamp`] of a record without one.
pub(crate) const NO_TIMESTAMP: i64 = i64::MIN;

impl RecordCopy {
    fn key_len(&self) -> usize {
        (self.key_len as usize).min(self.data.len())
    }

    fn key(&self) -> Option<&[u8]> {
        self.has_key.then(|| &self.data[..self.key_len()])
    }

    fn payload(&self) -> Option<&[u8]> {
        self.has_payload.then(|| &self.data[self.key_len()..])
    }

    /// The timestamp asked for, if any.
    fn timestamp_ms(&self) -> Option<i64> {
        (self.timestamp != NO_TIMESTAMP).then_some(self.timestamp)
    }

    fn headers(&self) -> Option<&OwnedHeaders> {
        self.headers.as_deref()
    }

    /// The partition asked for, if any.
    pub(crate) fn partition(&self) -> Option<i32> {
        (self.partition >= 0).then_some(self.partition)
    }

    pub(crate) fn timestamp(&self) -> Timestamp {
        self.timestamp_ms()
            .map_or(Timestamp::NotAvailable, Timestamp::CreateTime)
    }

    /// Key, payload and headers, taken apart (no copy: key and payload share the piece).
    #[inline]
    pub(crate) fn into_parts(self) -> (Option<Bytes>, Option<Bytes>, Option<OwnedHeaders>) {
        let key_len = self.key_len();
        let mut data = self.data;
        let key = self.has_key.then(|| data.split_to(key_len));
        let payload = self.has_payload.then_some(data);
        (key, payload, self.headers.map(|h| *h))
    }

    /// The parts as rdkafka's `OwnedMessage` of a record not delivered (key and payload
    /// copied out).
    pub(crate) fn owned_message(&self, topic: &str) -> OwnedMessage {
        OwnedMessage::new(
            self.payload().map(<[u8]>::to_vec),
            self.key().map(<[u8]>::to_vec),
            topic.to_string(),
            self.timestamp(),
            self.partition,
            -1001,
            self.headers().cloned(),
        )
    }
}

/// A record waiting in the lane (or awaited by the reaper): its copy with the topic's
/// shared name.
pub(crate) struct Outgoing {
    pub(crate) topic: Arc<str>,
    pub(crate) rec: RecordCopy,
}

impl Outgoing {
    fn record(&self) -> ProducerRecord {
        let rec = &self.rec;
        let mut r = ProducerRecord::new(self.topic.clone())
            .opt_key(rec.key().map(|k| rec.data.slice_ref(k)))
            .opt_value(rec.payload().map(|v| rec.data.slice_ref(v)));
        if let Some(p) = rec.partition() {
            r = r.partition(p);
        }
        if let Some(t) = rec.timestamp_ms() {
            r = r.timestamp(t);
        }
        if let Some(h) = rec.headers() {
            r = r.headers(h.clone().into_sdk());
        }
        r
    }
}

/// The parts of a record as the caller's `BaseRecord` / `FutureRecord` holds them.
pub(crate) struct Parts<'a> {
    pub(crate) topic: &'a str,
    pub(crate) partition: Option<i32>,
    pub(crate) key: Option<&'a [u8]>,
    pub(crate) payload: Option<&'a [u8]>,
    pub(crate) timestamp: Option<i64>,
    pub(crate) headers: Option<OwnedHeaders>,
}

impl<'a> Parts<'a> {
    /// The parts of a caller's record: key and payload as their bytes, the rest as given.
    #[inline]
    pub(crate) fn of<K: ToBytes + ?Sized, P: ToBytes + ?Sized>(
        topic: &'a str,
        partition: Option<i32>,
        key: Option<&'a K>,
        payload: Option<&'a P>,
        timestamp: Option<i64>,
        headers: Option<OwnedHeaders>,
    ) -> Parts<'a> {
        Parts {
            topic,
            partition,
            key: key.map(|k| k.to_bytes()),
            payload: payload.map(|p| p.to_bytes()),
            timestamp,
            headers,
        }
    }
}

/// A record with its outcome (with the broker's log append time, when its topic stamps
/// records that way) and the producer kind's tag (the delivery opaque of a
/// [`BaseProducer`], the sender of a [`DeliveryFuture`]).
pub(crate) type Finished<T> = (
    Outgoing,
    Result<(RecordMetadata, Option<i64>), KafkaError>,
    T,
);

/// Hands finished records to the producer kind (called on the facade's runtime, once per
/// group of records finished together; drains the vector). The second argument is the
/// producer's in-flight count.
pub(crate) type OnDone<T> = Box<dyn FnMut(&mut Vec<Finished<T>>, &AtomicUsize) + Send>;

/// What became of a record given to `Core::append`.
pub(crate) enum Appended<F> {
    /// kafka-sdk took it (or refused it at once) on the calling thread; the tag is unused.
    Now(Sending, F),
    /// It waits in the lane with its copy and its tag.
    Queued,
    /// No room (`QueueFull`): nothing taken, the tag handed back.
    Full(F),
}

/// [`Appended`] without the tag (`Core::submit_direct`).
pub(crate) enum Direct {
    /// kafka-sdk took it (or refused it at once).
    Sent(Sending),
    /// It waits in the lane.
    Queued,
    /// No room (`QueueFull`): nothing taken.
    Full,
}

/// kafka-sdk's `send` of one record: its delivery future, or why it failed at once (boxed:
/// a rare path, and every move of a [`Sent`] copies the whole result; 40 bytes instead of
/// 80 keeps a `Sent` within the size the compiler moves without a `memcpy` call).
pub(crate) type Sending = Result<kafka_sdk::DeliveryFuture, Box<KafkaError>>;

/// A record appended to kafka-sdk (or refused by it), on its way to the reaper (or to the
/// producer kind's [`Sink`]).
pub(crate) struct Sent<T> {
    /// The topic's shared name: always for a record from the lane or one refused at once;
    /// `None` for one appended on the calling thread (its delivery future names the topic).
    pub(crate) topic: Option<Arc<str>>,
    pub(crate) rec: RecordCopy,
    pub(crate) sent: Sending,
    pub(crate) tag: T,
}

/// Takes each record as soon as kafka-sdk took it (or refused it), in append order, instead
/// of the reaper: for a producer kind that awaits the outcomes itself ([`BaseProducer`]
/// serves them in `poll`). Called with the lane locked, on whichever thread appended.
pub(crate) type Sink<T> = Box<dyn Fn(Sent<T>) + Send + Sync>;

/// An entry of the lane.
enum Job<T> {
    /// A record to append: kafka-sdk's `send` would have waited (metadata, memory), or
    /// earlier records still wait in the lane (their order must hold).
    Send { out: Outgoing, tag: T },
    /// Answered once every earlier record was appended.
    Barrier(oneshot::Sender<()>),
}

/// Records not appended yet, in call order, with the submitter's state. Whoever holds the
/// lock appends from the front while kafka-sdk takes records without waiting (a caller in
/// `append`, or the submitter); the submitter awaits a front record that has to wait.
struct Lane<T> {
    state: Mutex<LaneState<T>>,
    /// Wakes the submitter: the front record has to wait, or the producer is gone.
    wake: Notify,
}

struct LaneState<T> {
    jobs: VecDeque<Job<T>>,
    /// The submitter is awaiting the `send` of a record it took from the front: nobody
    /// else appends meanwhile.
    busy: bool,
    /// A caller found the front record has to wait and woke the submitter, which clears
    /// this when it next looks: until then callers only queue (no attempt per record to
    /// append a front that cannot be appended yet).
    stalled: bool,
    /// The producer is gone: the submitter ends once the lane is empty.
    closed: bool,
    /// The last topic name, shared by its records (no allocation per record; under the
    /// lane's lock, which `append` takes anyway).
    last_topic: Option<Arc<str>>,
}

impl<T> Lane<T> {
    fn lock(&self) -> std::sync::MutexGuard<'_, LaneState<T>> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl<T> LaneState<T> {
    /// The shared name of `topic`.
    fn topic(&mut self, topic: &str) -> Arc<str> {
        match &self.last_topic {
            Some(t) if **t == *topic => t.clone(),
            _ => {
                let t: Arc<str> = Arc::from(topic);
                self.last_topic = Some(t.clone());
                t
            }
        }
    }

    /// Appends from the front while kafka-sdk takes records without waiting; `true` when
    /// the front record has to wait (for the submitter).
    fn drain(&mut self, producer: &kafka_sdk::Producer, inbox: &Inbox<T>) -> bool {
        while let Some(job) = self.jobs.front() {
            if let Job::Send { out, .. } = job {
                let Some(sent) = try_send(producer, out) else {
                    return true;
                };
                if let Some(Job::Send { out, tag }) = self.jobs.pop_front() {
                    inbox.push_from_lane(Sent {
                        topic: Some(out.topic),
                        rec: out.rec,
                        sent,
                        tag,
                    });
                }
            } else if let Some(Job::Barrier(tx)) = self.jobs.pop_front() {
                let _ = tx.send(());
            }
        }
        false
    }
}

/// kafka-sdk's `send` of `out` if it does not wait (its `try_send_borrowed`, from the
/// record's own copy); `None` when it would (nothing taken).
fn try_send(producer: &kafka_sdk::Producer, out: &Outgoing) -> Option<Sending> {
    try_send_borrowed(
        producer,
        &out.topic,
        out.rec.partition(),
        out.rec.key(),
        out.rec.payload(),
        out.rec.timestamp_ms(),
        out.rec.headers(),
    )
    .ok()
}

/// kafka-sdk's `try_send_borrowed` of the record of `parts` (borrowing the caller's key and
/// payload): `Err` naming what kafka-sdk would wait for (nothing taken).
#[inline]
fn try_send_parts(producer: &kafka_sdk::Producer, parts: &Parts<'_>) -> Result<Sending, WouldWait> {
    try_send_borrowed(
        producer,
        parts.topic,
        parts.partition,
        parts.key,
        parts.payload,
        parts.timestamp,
        parts.headers.as_ref(),
    )
}

/// kafka-sdk's `try_send_borrowed` of one record's parts (a negative partition: the
/// partitioner chooses); `Err` naming what kafka-sdk would wait for (nothing taken).
#[inline]
fn try_send_borrowed(
    producer: &kafka_sdk::Producer,
    topic: &str,
    partition: Option<i32>,
    key: Option<&[u8]>,
    value: Option<&[u8]>,
    timestamp: Option<i64>,
    headers: Option<&OwnedHeaders>,
) -> Result<Sending, WouldWait> {
    with_header_refs(headers, |headers| {
        producer
            .try_send_borrowed(BorrowedRecord {
                topic,
                partition: partition.filter(|p| *p >= 0),
                key,
                value,
                timestamp,
                headers,
            })
            .map(|r| r.map_err(|e| Box::new(produce_error(&e))))
    })
}

/// Calls `f` with the headers as borrowed pairs (kafka-sdk's `BorrowedRecord`): on the
/// stack for up to [`STACK_HEADERS`] of them (no allocation per record with headers), else
/// in a vector.
#[inline]
fn with_header_refs<R>(
    headers: Option<&OwnedHeaders>,
    f: impl FnOnce(&[(&str, Option<&[u8]>)]) -> R,
) -> R {
    match headers {
        None => f(&[]),
        Some(h) if h.refs_iter().len() <= STACK_HEADERS => {
            let mut stack: [(&str, Option<&[u8]>); STACK_HEADERS] = [("", None); STACK_HEADERS];
            let n = h.refs_iter().len();
            for (slot, pair) in stack.iter_mut().zip(h.refs_iter()) {
                *slot = pair;
            }
            f(&stack[..n])
        }
        Some(h) => f(&h.refs()),
    }
}

/// Most headers of a record borrowed on the stack for kafka-sdk's `BorrowedRecord`.
const STACK_HEADERS: usize = 8;

/// Size of the chunks the records' copies are cut from.
const ARENA_CHUNK: usize = 64 * 1024;
/// Key plus payload above this get an allocation of their own (a chunk holds at least 16).
const ARENA_MAX: usize = ARENA_CHUNK / 16;

thread_local! {
    /// What is left of this thread's current chunk.
    static ARENA: RefCell<BytesMut> = RefCell::new(BytesMut::new());
}

/// The record's own copy of `parts` (what a delivery report or error result shows). Key and
/// payload are copied once, together, into a piece of the calling thread's current chunk
/// (no allocation per record: a chunk is freed once every record cut from it is dropped;
/// a large record gets its own allocation). Takes the headers out of `parts`.
pub(crate) fn copy(parts: &mut Parts<'_>) -> RecordCopy {
    let key = parts.key.unwrap_or_default();
    let payload = parts.payload.unwrap_or_default();
    let total = key.len() + payload.len();
    let data = if total == 0 {
        Bytes::new()
    } else if total > ARENA_MAX {
        let mut v = Vec::with_capacity(total);
        v.extend_from_slice(key);
        v.extend_from_slice(payload);
        Bytes::from(v)
    } else {
        ARENA.with(|a| {
            let mut a = a.borrow_mut();
            if a.capacity() - a.len() < total {
                *a = BytesMut::with_capacity(ARENA_CHUNK);
            }
            if !key.is_empty() {
                a.extend_from_slice(key);
            }
            if !payload.is_empty() {
                a.extend_from_slice(payload);
            }
            a.split().freeze()
        })
    };
    RecordCopy {
        data,
        timestamp: parts.timestamp.unwrap_or(NO_TIMESTAMP),
        headers: parts.headers.take().map(Box::new),
        key_len: u32::try_from(key.len()).unwrap_or(u32::MAX),
        partition: parts.partition.unwrap_or(-1),
        has_key: parts.key.is_some(),
        has_payload: parts.payload.is_some(),
    }
}

/// Records appended, for the reaper. Pushing wakes the reaper only when the inbox was
/// empty; while records are in flight the reaper collects new ones every [`REAP_TICK`].
struct Inbox<T> {
    items: Mutex<Vec<Sent<T>>>,
    notify: Notify,
    /// The submitter ended: nothing more comes.
    closed: AtomicBool,
    /// Records waiting in the lane (not appended to kafka-sdk yet).
    in_lane: AtomicUsize,
    /// Records kafka-sdk took (all paths): with its `completed_records`, the records in
    /// flight whether or not anyone awaits their outcome.
    appended: AtomicU64,
    /// Where records go instead of `items` (the reaper then has nothing to do).
    sink: Option<Sink<T>>,
}

/// How often the reaper collects new records while others are in flight (it wakes at once
/// when one of those finishes, and at once for the first record after an idle time).
const REAP_TICK: Duration = Duration::from_millis(1);

impl<T> Inbox<T> {
    fn push(&self, s: Sent<T>) {
        if let Some(sink) = &self.sink {
            return sink(s);
        }
        let mut items = self.items.lock().unwrap_or_else(|p| p.into_inner());
        let was_empty = items.is_empty();
        items.push(s);
        drop(items);
        if was_empty {
            self.notify.notify_one();
        }
    }

    /// `push` for a record that waited in the lane: counts it appended, then out of the
    /// lane (in that order, so that `Core::in_flight_count` never misses it).
    fn push_from_lane(&self, s: Sent<T>) {
        if s.sent.is_ok() {
            self.appended.fetch_add(1, Ordering::SeqCst);
        }
        self.push(s);
        self.in_lane.fetch_sub(1, Ordering::SeqCst);
    }

    fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
        self.notify.notify_one();
    }
}

/// The kafka-sdk producer and the one submission path of all three producer kinds.
///
/// `append` runs on the caller's thread: while the lane is empty (no lock taken: see
/// there) it calls kafka-sdk's `try_send_borrowed`, which appends the record from the
/// caller's slices without waiting in the common case (topic metadata known,
/// `buffer.memory` free); the producer kind keeps what its delivery report or error result
/// needs (a [`FutureProducer`]'s `send_result`: the partition, timestamp and headers asked
/// for, key and payload from kafka-sdk's kept failed batch; a [`BaseProducer`]: nothing
/// per record, its reports read the records back from kafka-sdk's kept batches). When
/// kafka-sdk would wait, a copy of the record stays in
/// the lane (call order) and the submitter task awaits its `send`; records submitted
/// meanwhile queue behind it (callers stop trying the front once it is known to wait), and
/// whoever next finds the lane free (a caller, or the submitter once its record is in)
/// appends them at once while kafka-sdk does not wait, so the lane does not stay in the way
/// of a fast caller. A record appended on the calling thread goes back to the caller with
/// its delivery future (`append`, `submit_direct`); one appended from the lane, with its
/// copy ([`RecordCopy`]), goes to the producer kind's [`Sink`] ([`BaseProducer`]), else to
/// the reaper task, which keeps one FIFO per partition, wakes when a batch
/// finishes (or every [`REAP_TICK`] to collect new records) and hands finished records to
/// the producer kind's [`OnDone`] in groups.
pub(crate) struct Core<T: Send + 'static> {
    pub(crate) producer: kafka_sdk::Producer,
    lane: Arc<Lane<T>>,
    inbox: Arc<Inbox<T>>,
    pub(crate) in_flight: Arc<AtomicUsize>,
    /// `in_flight_count` counts on kafka-sdk's side, with this count of outcomes the
    /// producer kind handed out (see there).
    native_count: Option<Arc<AtomicU64>>,
    max_messages: usize,
    purge_warned: AtomicBool,
}

impl<T: Send + 'static> Drop for Core<T> {
    fn drop(&mut self) {
        self.lane.lock().closed = true;
        self.lane.wake.notify_one();
    }
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

impl<T: Send + 'static> Core<T> {
    /// Builds the kafka-sdk producer (on the facade's runtime) and starts the submitter and
    /// the reaper, which hands finished records to `on_done`.
    pub(crate) fn new<C, Part>(
        config: &ClientConfig,
        context: &Arc<C>,
        on_done: OnDone<T>,
        native_count: Option<Arc<AtomicU64>>,
        sink: Option<Sink<T>>,
        keep_records: bool,
    ) -> KafkaResult<Core<T>>
    where
        C: ProducerContext<Part> + 'static,
        Part: Partitioner + 'static,
    {
        let mut sdk = config.to_sdk(crate::config::Role::Producer);
        let max_messages = config
            .get("queue.buffering.max.messages")
            .and_then(|v| v.parse::<usize>().ok())
            .filter(|n| *n > 0)
            .unwrap_or(100_000);
        // `queue.buffering.max.messages` (librdkafka fails at once with QueueFull): a
        // producer counting on kafka-sdk's side leaves the records kafka-sdk holds to
        // kafka-sdk's own limit (`try_send_borrowed` answers `WouldWait::Records`: no check
        // of the facade's per record) and checks the lane's records itself; any other
        // counts until its reports are served, so the facade enforces the limit for it
        // alone. Either way kafka-sdk's `send` (the submitter's) waits only before it takes
        // anything, so `append` may drop a `send` that would wait and hand the record to
        // the slow lane.
        if native_count.is_some() {
            sdk.set("queue.buffering.max.messages", max_messages.to_string());
        } else {
            sdk.remove("queue.buffering.max.messages");
        }
        // librdkafka's byte limit by default (`queue.buffering.max.kbytes` = 1 GiB), not
        // kafka-sdk's 32 MiB `buffer.memory`: with the smaller limit, large records filled
        // kafka-sdk's buffer long before `queue.buffering.max.messages` and every record
        // then queued through the slow lane (1 KiB records: about twice the CPU per record).
        if config.get("buffer.memory").is_none()
            && config.get("queue.buffering.max.kbytes").is_none()
        {
            sdk.set("queue.buffering.max.kbytes", LIBRDKAFKA_MAX_KBYTES);
        }
        let custom = context.get_custom_partitioner().is_some();
        let adapter: Arc<dyn kafka_sdk::Partitioner> = Arc::new(PartAdapter::<C, Part> {
            context: context.clone(),
            _part: PhantomData,
        });
        let producer = rt::block(async move {
            // A failed batch's records stay with its completion: `send_result`'s error
            // result takes its key and payload from there (no copy per record). With
            // `keep_records` every batch's records stay until the last delivery future of
            // the batch is dropped (`BaseProducer`'s reports read them from there).
            // As rdkafka's `create()`: never waits for the cluster (it may be down).
            let mut b = kafka_sdk::Producer::builder(&sdk)
                .lazy_bootstrap(true)
                .keep_failed_records(!keep_records)
                .keep_records(keep_records);
            if custom {
                b = b.partitioner(adapter);
            }
            b.build().await
        })
        .map_err(|e| config.creation_error(e))?;
        crate::client::forward_stats(producer.subscribe_statistics(), context.clone());
        crate::client::forward_events(producer.subscribe_events(), context.clone());
        let lane = Arc::new(Lane {
            state: Mutex::new(LaneState {
                jobs: VecDeque::new(),
                busy: false,
                stalled: false,
                closed: false,
                last_topic: None,
            }),
            wake: Notify::new(),
        });
        let in_flight = Arc::new(AtomicUsize::new(0));
        let inbox = Arc::new(Inbox {
            items: Mutex::new(Vec::new()),
            notify: Notify::new(),
            closed: AtomicBool::new(false),
            in_lane: AtomicUsize::new(0),
            appended: AtomicU64::new(0),
            sink,
        });
        rt::handle().spawn(submitter(producer.clone(), lane.clone(), inbox.clone()));
        rt::handle().spawn(reaper(inbox.clone(), on_done, in_flight.clone()));
        Ok(Core {
            producer,
            lane,
            inbox,
            in_flight,
            native_count,
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
        self.in_flight_count() >= self.max_messages
    }

    /// Records accepted and not finished: for a producer counting on kafka-sdk's side
    /// (`native_count`, [`FutureProducer`]), those in the lane plus those kafka-sdk took and
    /// did not complete (also when nobody awaits their future); else the producer kind's own
    /// count (`in_flight`, [`BaseProducer`]: until its delivery report was served).
    ///
    /// kafka-sdk counts a batch's records a moment after completing it, so a record whose
    /// outcome was already handed out may still count there; the producer kind's own count
    /// of outcomes handed out covers those: both are subsets of the finished records, so
    /// the larger of the two never counts a record in flight as finished, and once every
    /// outcome was awaited the count is exactly 0.
    pub(crate) fn in_flight_count(&self) -> usize {
        let Some(handed_out) = &self.native_count else {
            return self.in_flight.load(Ordering::Relaxed);
        };
        // Read in this order so that a record moving from the lane to kafka-sdk, or
        // finishing meanwhile, is counted at least once (appended >= finished).
        let in_lane = self.inbox.in_lane.load(Ordering::SeqCst);
        let done = self
            .producer
            .completed_records()
            .max(handed_out.load(Ordering::SeqCst));
        let appended = self.inbox.appended.load(Ordering::SeqCst);
        in_lane + usize::try_from(appended.saturating_sub(done)).unwrap_or(usize::MAX)
    }

    /// Appends the record of `parts` to kafka-sdk on the calling thread when nothing waits
    /// in the lane before it and kafka-sdk does not wait (its `try_send_borrowed`: the batch
    /// copies key and payload from the caller's slices): returns kafka-sdk's outcome (its
    /// delivery future, or the error it failed with at once) and the unused `tag`; `parts`
    /// stay with the caller, which copies what its delivery report / error result needs.
    /// Else queues a copy in the lane with `tag()` (its outcome then reaches the producer
    /// kind's [`Sink`] or [`OnDone`]) and returns `None`. Records are appended in call order.
    ///
    /// The common case takes no lock: when `in_lane` reads 0 the record goes straight to
    /// kafka-sdk. Why that keeps call order: order is only defined between calls where one
    /// happens before the other (e.g. two calls of one thread), say X before Y. If X was
    /// appended on its caller's thread, that append finished before X returned. If X went to
    /// the lane, X raised `in_lane` before returning, and `in_lane` goes down for X only
    /// after X was appended (`push_from_lane`, after kafka-sdk took it; a record the
    /// submitter awaits (`busy`) still counts). Every record's decrement follows its own
    /// increment, so a 0 read by Y (which sees X's increment or a later value) means X's
    /// decrement came before it: Y's acquiring read then also sees X's append (the
    /// decrements are read-modify-writes, which continue the release sequence), and Y is
    /// appended after X. A non-zero read takes the lane's lock, under which X is either
    /// still queued, awaited by the submitter (`busy`), or appended: Y queues behind it or
    /// follows it. kafka-sdk appends the records of one partition under that partition's
    /// lock, in the order its appends happen.
    ///
    /// When nothing waits in the lane and kafka-sdk has no room (`buffer.memory`, i.e.
    /// `queue.buffering.max.kbytes`, or `queue.buffering.max.messages`), nothing is taken
    /// and the caller gets [`Appended::Full`] back, as librdkafka's produce fails with
    /// `QueueFull`: a record that only waits for room is never copied into the lane, so
    /// the memory bound holds.
    #[inline]
    pub(crate) fn append<F: FnOnce() -> T>(&self, parts: &mut Parts<'_>, tag: F) -> Appended<F> {
        if self.inbox.in_lane.load(Ordering::SeqCst) == 0 {
            match try_send_parts(&self.producer, parts) {
                Ok(sent) => {
                    // (Only a producer counting on kafka-sdk's side reads the count.)
                    if sent.is_ok() && self.native_count.is_some() {
                        self.inbox.appended.fetch_add(1, Ordering::SeqCst);
                    }
                    return Appended::Now(sent, tag);
                }
                Err(WouldWait::Memory | WouldWait::Records) => return Appended::Full(tag),
                Err(_) => {}
            }
        }
        self.append_locked(parts, tag)
    }

    /// `append` past the fast path: under the lane's lock.
    #[inline(never)]
    fn append_locked<F: FnOnce() -> T>(&self, parts: &mut Parts<'_>, tag: F) -> Appended<F> {
        let mut lane = self.lane.lock();
        let front = lane.jobs.is_empty() && !lane.busy;
        if front {
            match try_send_parts(&self.producer, parts) {
                Ok(sent) => {
                    drop(lane);
                    if sent.is_ok() {
                        self.inbox.appended.fetch_add(1, Ordering::SeqCst);
                    }
                    return Appended::Now(sent, tag);
                }
                Err(WouldWait::Memory | WouldWait::Records) => return Appended::Full(tag),
                Err(_) => {}
            }
        }
        // A record for the lane of a producer counting on kafka-sdk's side: checked against
        // `queue.buffering.max.messages` here (kafka-sdk counts only what it took). Other
        // producer kinds count each record before `append`, and check there.
        if self.native_count.is_some() && self.is_full() {
            return Appended::Full(tag);
        }
        self.inbox.in_lane.fetch_add(1, Ordering::SeqCst);
        let out = Outgoing {
            topic: lane.topic(parts.topic),
            rec: copy(parts),
        };
        lane.jobs.push_back(Job::Send { out, tag: tag() });
        // Behind other records: append what kafka-sdk takes now, unless the submitter has
        // the front (busy, or stalled on a record that has to wait).
        if !front && (lane.busy || lane.stalled || !lane.drain(&self.producer, &self.inbox)) {
            return Appended::Queued;
        }
        // The front has to wait: the submitter takes over.
        lane.stalled = true;
        drop(lane);
        self.lane.wake.notify_one();
        Appended::Queued
    }

    /// `append` for a producer kind that keeps no tag for a record kafka-sdk takes at once
    /// (the common case): its delivery future (or why it failed at once) comes back for the
    /// caller to await directly (no reaper, no channel; the caller copies from `parts` what
    /// it needs).
    #[inline]
    pub(crate) fn submit_direct(&self, parts: &mut Parts<'_>, tag: impl FnOnce() -> T) -> Direct {
        match self.append(parts, tag) {
            Appended::Now(sent, _) => Direct::Sent(sent),
            Appended::Queued => Direct::Queued,
            Appended::Full(_) => Direct::Full,
        }
    }

    /// Waits until every record submitted before this call was appended to kafka-sdk.
    fn barrier(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let rx = {
            let mut lane = self.lane.lock();
            if lane.jobs.is_empty() && !lane.busy {
                None
            } else {
                let (tx, rx) = oneshot::channel();
                lane.jobs.push_back(Job::Barrier(tx));
                drop(lane);
                self.lane.wake.notify_one();
                Some(rx)
            }
        };
        async move {
            if let Some(rx) = rx {
                let _ = rx.await;
            }
        }
    }

    /// Appends everything queued, asks kafka-sdk to send it now, and waits up to `limit`
    /// until `idle()` holds. kafka-sdk's flush (open batches ready without their linger
    /// while it runs) ends before this returns, as librdkafka's flush ends with the call: a
    /// record sent afterwards keeps its `linger.ms`. (It ran on until its batches had their
    /// outcomes, also after a timed-out call, and sent later records at once.)
    pub(crate) fn flush_until(
        &self,
        limit: Timeout,
        mut idle: impl FnMut() -> bool,
    ) -> KafkaResult<()> {
        let barrier = self.barrier();
        let producer = self.producer.clone();
        let task = rt::handle().spawn(async move {
            barrier.await;
            producer.flush().await;
        });
        let deadline = limit.duration().map(|d| Instant::now() + d);
        let r = rt::blocking(|| loop {
            if idle() {
                return Ok(());
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Err(KafkaError::Flush(RDKafkaErrorCode::TimedOutQueue));
            }
            std::thread::sleep(Duration::from_millis(1));
        });
        // A cancelled task's join completes after its future (the flush) was dropped.
        task.abort();
        rt::block(async move {
            let _ = task.await;
        });
        r
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
        let wait = barrier.then(|| self.barrier());
        let limit = timeout.duration();
        rt::block(async move {
            let call = async move {
                if let Some(wait) = wait {
                    wait.await;
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

/// Awaits the `send` of each record at the front of the lane that has to wait (metadata,
/// `buffer.memory`, bounded by `max.block.ms`), then appends what follows it while kafka-sdk
/// does not wait; passes the records to the reaper.
async fn submitter<T>(producer: kafka_sdk::Producer, lane: Arc<Lane<T>>, inbox: Arc<Inbox<T>>) {
    loop {
        let front = {
            let mut st = lane.lock();
            st.stalled = false;
            if st.drain(&producer, &inbox) {
                match st.jobs.pop_front() {
                    Some(Job::Send { out, tag }) => {
                        st.busy = true;
                        Some((out, tag))
                    }
                    _ => None,
                }
            } else if st.closed {
                break;
            } else {
                None
            }
        };
        let Some((out, tag)) = front else {
            lane.wake.notified().await;
            continue;
        };
        let sent = producer
            .send(out.record())
            .await
            .map_err(|e| Box::new(produce_error(&e)));
        let mut st = lane.lock();
        st.busy = false;
        inbox.push_from_lane(Sent {
            topic: Some(out.topic),
            rec: out.rec,
            sent,
            tag,
        });
    }
    inbox.close();
}

/// A record whose outcome the reaper awaits.
struct Waiting<T> {
    out: Outgoing,
    delivery: kafka_sdk::DeliveryFuture,
    tag: T,
}

/// Per topic, per partition: records in the order they were appended.
type Lanes<T> = Vec<(Arc<str>, Vec<VecDeque<Waiting<T>>>)>;

/// Moves new records into their partition's FIFO (failed ones straight to `done`).
fn sort_in<T>(items: &mut Vec<Sent<T>>, lanes: &mut Lanes<T>, done: &mut Vec<Finished<T>>) {
    for Sent {
        topic,
        rec,
        sent,
        tag,
    } in items.drain(..)
    {
        // (Records come here from the lane, which names their topic.)
        let topic = topic.unwrap_or_else(|| match &sent {
            Ok(d) => Arc::from(d.topic()),
            Err(_) => Arc::from(""),
        });
        let out = Outgoing { topic, rec };
        let delivery = match sent {
            Ok(d) => d,
            Err(e) => {
                done.push((out, Err(*e), tag));
                continue;
            }
        };
        let i = match lanes
            .iter()
            .position(|(t, _)| Arc::ptr_eq(t, &out.topic) || **t == *out.topic)
        {
            Some(i) => i,
            None => {
                lanes.push((out.topic.clone(), Vec::new()));
                lanes.len() - 1
            }
        };
        let parts = &mut lanes[i].1;
        let p = usize::try_from(delivery.partition()).unwrap_or(0);
        if parts.len() <= p {
            parts.resize_with(p + 1, VecDeque::new);
        }
        parts[p].push_back(Waiting { out, delivery, tag });
    }
}

/// Takes the finished records at the head of each FIFO (registering this task's waker with
/// the first unfinished one); returns how many records are still waiting.
fn harvest<T>(lanes: &mut Lanes<T>, done: &mut Vec<Finished<T>>, cx: &mut Context<'_>) -> usize {
    let mut waiting = 0;
    for (_, parts) in lanes.iter_mut() {
        for lane in parts.iter_mut() {
            while let Some(front) = lane.front_mut() {
                match Pin::new(&mut front.delivery).poll(cx) {
                    Poll::Ready(r) => {
                        let r = match r {
                            Ok(m) => Ok((m, front.delivery.log_append_time())),
                            Err(e) => Err(produce_error(&e)),
                        };
                        if let Some(w) = lane.pop_front() {
                            done.push((w.out, r, w.tag));
                        }
                    }
                    Poll::Pending => break,
                }
            }
            waiting += lane.len();
        }
    }
    waiting
}

/// Awaits the outcomes of appended records, per partition in append order, and hands them
/// to `on_done` in groups.
async fn reaper<T>(inbox: Arc<Inbox<T>>, mut on_done: OnDone<T>, in_flight: Arc<AtomicUsize>) {
    let mut lanes: Lanes<T> = Vec::new();
    let mut items = Vec::new();
    let mut done = Vec::new();
    loop {
        std::mem::swap(
            &mut *inbox.items.lock().unwrap_or_else(|p| p.into_inner()),
            &mut items,
        );
        sort_in(&mut items, &mut lanes, &mut done);
        let waiting =
            std::future::poll_fn(|cx| Poll::Ready(harvest(&mut lanes, &mut done, cx))).await;
        if !done.is_empty() {
            on_done(&mut done, &in_flight);
            done.clear();
        }
        if waiting == 0 {
            if inbox.closed.load(Ordering::SeqCst)
                && inbox
                    .items
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .is_empty()
            {
                break;
            }
            // Idle: the next record (or the end) wakes this task.
            inbox.notify.notified().await;
        } else {
            // A finished batch wakes this task (its waker is with the first waiting record
            // of each partition); new records are collected every tick.
            let mut tick = std::pin::pin!(tokio::time::sleep(REAP_TICK));
            let mut first = true;
            std::future::poll_fn(|cx| {
                if std::mem::take(&mut first) && tick.as_mut().poll(cx).is_pending() {
                    return Poll::Pending;
                }
                Poll::Ready(())
            })
            .await;
        }
    }
}

pub(crate) fn produce_error(e: &kafka_sdk::Error) -> KafkaError {
    KafkaError::MessageProduction(crate::error::logged_code("produce", e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts<'a>(key: Option<&'a [u8]>, payload: Option<&'a [u8]>) -> Parts<'a> {
        Parts {
            topic: "t",
            partition: None,
            key,
            payload,
            timestamp: None,
            headers: None,
        }
    }

    /// A record's copy gives back exactly its key and payload, a missing one as `None` and
    /// an empty one as empty, whether cut from the shared chunk or allocated alone.
    #[test]
    fn record_copy_keeps_key_and_payload_apart() {
        let big = vec![7u8; ARENA_MAX + 1];
        type Case<'a> = (Option<&'a [u8]>, Option<&'a [u8]>);
        let cases: [Case<'_>; 8] = [
            (None, None),
            (Some(b"k"), None),
            (None, Some(b"v")),
            (Some(b"key"), Some(b"value")),
            (Some(b""), Some(b"v")),
            (Some(b"k"), Some(b"")),
            (Some(b""), None),
            (Some(b"k"), Some(&big)),
        ];
        for (key, payload) in cases {
            let rec = copy(&mut parts(key, payload));
            assert_eq!((rec.key(), rec.payload()), (key, payload));
            assert_eq!(rec.partition(), None);
            assert_eq!(rec.timestamp(), Timestamp::NotAvailable);
            let (k, p, h) = rec.into_parts();
            assert_eq!((k.as_deref(), p.as_deref()), (key, payload));
            assert!(h.is_none());
        }
        let headers = OwnedHeaders::new().insert(crate::message::Header {
            key: "h",
            value: Some("v"),
        });
        let mut p = parts(Some(b"k"), Some(b"v"));
        p.partition = Some(2);
        p.timestamp = Some(1234);
        p.headers = Some(headers.clone());
        let rec = copy(&mut p);
        assert_eq!(rec.partition(), Some(2));
        assert_eq!(rec.timestamp(), Timestamp::CreateTime(1234));
        let m = rec.owned_message("t");
        assert_eq!(crate::message::Message::headers(&m), Some(&headers));
        assert_eq!(rec.into_parts().2, Some(headers));
    }

    /// The borrowed header pairs handed to kafka-sdk are the record's headers, in order,
    /// on the stack (up to `STACK_HEADERS`) and past it.
    #[test]
    fn header_refs_are_the_records_headers() {
        with_header_refs(None, |h| assert!(h.is_empty()));
        for n in [
            0,
            1,
            STACK_HEADERS - 1,
            STACK_HEADERS,
            STACK_HEADERS + 1,
            3 * STACK_HEADERS,
        ] {
            let mut headers = OwnedHeaders::new();
            let values: Vec<String> = (0..n).map(|i| format!("value-{i}")).collect();
            for (i, v) in values.iter().enumerate() {
                let key = format!("key-{i}");
                headers = headers.insert(crate::message::Header {
                    key: &key,
                    value: (i % 3 != 1).then_some(v.as_str()),
                });
            }
            let want = headers.refs();
            assert_eq!(want.len(), n);
            with_header_refs(Some(&headers), |h| assert_eq!(h, &want[..], "{n} headers"));
        }
    }

    /// Every move of a `DeliveryFuture` (returned, pushed into a vector, moved into the
    /// awaiting future) copies it: it stays within 128 bytes, which the compiler moves with
    /// a few vector instructions instead of a `memcpy` call.
    #[test]
    fn delivery_future_stays_small() {
        assert!(std::mem::size_of::<RecordCopy>() <= 64);
        assert!(std::mem::size_of::<DeliveryFuture>() <= 128);
    }
}
