//! Completion of batches and the futures users await.
//!
//! One [`Completion`] per batch, shared (`Arc`) by the [`DeliveryFuture`]s of all the batch's
//! records: completing a batch is one store plus waking the futures that polled it; no
//! per-record channel is allocated.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll, Waker};

use bytes::Bytes;

use crate::error::Result;
use crate::record::batch::{decode_batches, DecodeOptions, Header, KeptRecords, RawRecord, Record};

use super::record::RecordMetadata;

/// What the broker said about a whole batch.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BatchAck {
    /// Offset of the batch's first record; -1 when unknown (acks=0, duplicates).
    pub base_offset: i64,
    /// Log append time when the topic uses it, else -1.
    pub log_append_time: i64,
}

/// The outcome of one batch: one result for all its records, or, for a batch the sender
/// split (the broker refused it as too large) or one whose invalid records the broker
/// named (KIP-467), one per piece.
#[derive(Debug)]
pub(crate) enum Outcome {
    Whole(Result<BatchAck>),
    /// Pieces as (offset delta of the piece's first record in the batch, its result),
    /// ordered by delta; the first piece starts at 0.
    Split(Vec<(i32, Result<BatchAck>)>),
}

impl Outcome {
    /// Where the record at `offset_delta` of the batch was written, or why it failed.
    #[inline]
    fn written(&self, offset_delta: i32) -> std::result::Result<WrittenAt, &crate::Error> {
        match self.for_record(offset_delta) {
            (Err(e), _) => Err(e),
            (Ok(ack), start) => Ok(WrittenAt {
                offset: if ack.base_offset < 0 {
                    -1
                } else {
                    ack.base_offset + i64::from(offset_delta - start)
                },
                log_append_time: (ack.log_append_time >= 0).then_some(ack.log_append_time),
            }),
        }
    }

    /// The first failure among the batch's pieces (`None`: every record was written).
    pub(crate) fn first_error(&self) -> Option<&crate::Error> {
        match self {
            Outcome::Whole(r) => r.as_ref().err(),
            Outcome::Split(pieces) => pieces.iter().find_map(|(_, r)| r.as_ref().err()),
        }
    }

    /// The result of the record at `offset_delta` of the batch, and the delta of the first
    /// record of its piece.
    fn for_record(&self, offset_delta: i32) -> (&Result<BatchAck>, i32) {
        match self {
            Outcome::Whole(r) => (r, 0),
            Outcome::Split(pieces) => {
                let i = pieces
                    .partition_point(|(start, _)| *start <= offset_delta)
                    .saturating_sub(1);
                let (start, r) = &pieces[i];
                (r, *start)
            }
        }
    }
}

/// A record's outcome as a producer's delivery-report handler sees it: for each record
/// whose [`DeliveryFuture`] was handed back with [`DeliveryFuture::report`], once the
/// record is acknowledged or failed (see
/// [`ProducerBuilder::delivery_handler`](super::ProducerBuilder::delivery_handler)).
#[derive(Debug, Clone, Copy)]
pub struct DeliveryReport<'a> {
    /// The topic.
    pub topic: &'a str,
    /// The partition.
    pub partition: i32,
    /// What the application passed to [`DeliveryFuture::report`] for this record.
    pub opaque: u64,
    /// The timestamp the record was appended with (its create time; see
    /// [`WrittenAt::log_append_time`] for the broker's).
    pub timestamp: i64,
    /// Where the record was written, or why it failed.
    pub result: std::result::Result<WrittenAt, &'a crate::Error>,
}

/// A producer's delivery-report handler (see
/// [`ProducerBuilder::delivery_handler`](super::ProducerBuilder::delivery_handler)).
pub type DeliveryHandler = Arc<dyn Fn(&DeliveryReport<'_>) + Send + Sync>;

/// A producer's handler, where it is kept (`Debug` without the closure).
#[derive(Clone, Default)]
pub(crate) struct HandlerSlot(pub Option<DeliveryHandler>);

impl std::fmt::Debug for HandlerSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "Some(handler)"
        } else {
            "None"
        })
    }
}

/// The records of a batch reported to the handler, as (offset delta, timestamp, opaque).
type Reports = Mutex<Vec<(i32, i64, u64)>>;

/// The shared completion of one batch.
#[derive(Debug)]
pub(crate) struct Completion {
    pub topic: Arc<str>,
    pub partition: i32,
    result: OnceLock<Outcome>,
    wakers: Mutex<Vec<Waker>>,
    /// The producer's delivery-report handler, if it has one.
    handler: HandlerSlot,
    /// The records handed to the handler ([`DeliveryFuture::report`]) before the outcome.
    reports: Reports,
    /// The records' `send` spans, closed at completion.
    spans: crate::observe::RecordSpans,
    /// The encoded records of the batch's failed pieces as (offset delta of the piece's
    /// first record, uncompressed or compressed batch), kept only by a producer built with
    /// [`keep_failed_records`](super::ProducerBuilder::keep_failed_records), for
    /// [`DeliveryFuture::failed_record`].
    failed: Mutex<Vec<(i32, Bytes)>>,
    /// Those pieces decoded, once (by the first `failed_record` after completion: every
    /// record of a failed batch asks, and decoding the batch for each would cost
    /// records x batch size).
    decoded: OnceLock<Vec<(i32, Vec<Record>)>>,
    /// The whole batch's records, uncompressed, kept only by a producer built with
    /// [`keep_records`](super::ProducerBuilder::keep_records) (set when the batch is sealed,
    /// before it completes), for [`DeliveryFuture::batch_records`].
    kept: OnceLock<Bytes>,
}

impl Completion {
    #[cfg(test)]
    pub(crate) fn new(topic: Arc<str>, partition: i32) -> Arc<Completion> {
        Completion::with_handler(topic, partition, HandlerSlot::default())
    }

    /// A batch's completion; `handler`: the producer's delivery-report handler.
    pub(crate) fn with_handler(
        topic: Arc<str>,
        partition: i32,
        handler: HandlerSlot,
    ) -> Arc<Completion> {
        Arc::new(Completion {
            topic,
            partition,
            result: OnceLock::new(),
            wakers: Mutex::new(Vec::new()),
            handler,
            reports: Mutex::new(Vec::new()),
            spans: Default::default(),
            failed: Mutex::new(Vec::new()),
            decoded: OnceLock::new(),
            kept: OnceLock::new(),
        })
    }

    /// Keeps the batch's records (uncompressed, as [`KeptRecords`] reads them) before
    /// completing it (see [`DeliveryFuture::batch_records`]); the first call wins.
    pub(crate) fn keep_records(&self, batch: Bytes) {
        let _ = self.kept.set(batch);
    }

    /// Keeps the encoded batch (or piece of a split batch, whose first record has offset
    /// delta `start`) that failed, before completing it (see
    /// [`DeliveryFuture::failed_record`]).
    pub(crate) fn keep_failed(&self, start: i32, data: Bytes) {
        self.failed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push((start, data));
    }

    /// Sets the outcome (first call wins) and wakes every waiting future.
    pub(crate) fn complete(&self, r: Result<BatchAck>) {
        self.complete_with(Outcome::Whole(r));
    }

    /// Sets the outcome of a split batch: one result per piece, as (offset delta of the
    /// piece's first record, result), in any order (see [`Outcome::Split`]).
    pub(crate) fn complete_split(&self, mut pieces: Vec<(i32, Result<BatchAck>)>) {
        pieces.sort_by_key(|(start, _)| *start);
        self.complete_with(Outcome::Split(pieces));
    }

    /// Sets the outcome, whole or in pieces (in any order).
    pub(crate) fn complete_outcome(&self, outcome: Outcome) {
        match outcome {
            Outcome::Whole(r) => self.complete(r),
            Outcome::Split(pieces) => self.complete_split(pieces),
        }
    }

    fn complete_with(&self, outcome: Outcome) {
        if self.result.set(outcome).is_ok() {
            let outcome = self.result.get().expect("just set");
            self.spans.finish(|delta| outcome.for_record(delta));
            if self.handler.0.is_some() {
                let reports =
                    std::mem::take(&mut *self.reports.lock().unwrap_or_else(|p| p.into_inner()));
                for (delta, ts, opaque) in reports {
                    self.report(outcome, delta, ts, opaque);
                }
            }
            let wakers =
                std::mem::take(&mut *self.wakers.lock().unwrap_or_else(|p| p.into_inner()));
            for w in wakers {
                w.wake();
            }
        }
    }

    pub(crate) fn is_done(&self) -> bool {
        self.result.get().is_some()
    }

    /// Calls the handler for the record at `delta` (the outcome is known). A panicking
    /// handler is logged and does not stop the reports of the batch's other records, nor
    /// the sender task that completes batches.
    fn report(&self, outcome: &Outcome, delta: i32, timestamp: i64, opaque: u64) {
        let Some(h) = &self.handler.0 else { return };
        let report = DeliveryReport {
            topic: &self.topic,
            partition: self.partition,
            opaque,
            timestamp,
            result: outcome.written(delta),
        };
        if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| h(&report))).is_err() {
            tracing::error!(
                topic = %self.topic,
                partition = self.partition,
                opaque,
                "the producer's delivery handler panicked"
            );
        }
    }

    /// Polls for the outcome; `slot` remembers where this poller's waker is stored
    /// ([`NO_SLOT`] before the first time it waits).
    pub(crate) fn poll_result(&self, cx: &mut Context<'_>, slot: &mut u32) -> Poll<&Outcome> {
        if let Some(r) = self.result.get() {
            return Poll::Ready(r);
        }
        let mut wakers = self.wakers.lock().unwrap_or_else(|p| p.into_inner());
        // Re-check under the lock: `complete` sets the result before taking the wakers.
        if let Some(r) = self.result.get() {
            return Poll::Ready(r);
        }
        match wakers.get_mut(*slot as usize) {
            Some(w) if *slot != NO_SLOT => {
                if !w.will_wake(cx.waker()) {
                    *w = cx.waker().clone();
                }
            }
            _ => {
                *slot = u32::try_from(wakers.len()).unwrap_or(NO_SLOT);
                wakers.push(cx.waker().clone());
            }
        }
        Poll::Pending
    }
}

/// A waker slot not taken yet ([`Completion::poll_result`]).
pub(crate) const NO_SLOT: u32 = u32::MAX;

/// Resolves when the broker acknowledged (or the producer gave up on) one record.
///
/// Returned by [`Producer::send`](super::Producer::send). Dropping it does not cancel the
/// send: the record is delivered (or fails) all the same.
///
/// ```no_run
/// # async fn f(producer: &kafka_sdk::Producer) -> kafka_sdk::Result<()> {
/// use kafka_sdk::ProducerRecord;
/// // Accept many records into the buffer first, then wait for their acknowledgements.
/// let mut pending = Vec::new();
/// for i in 0..100 {
///     pending.push(producer.send(ProducerRecord::new("events").value(format!("event {i}"))).await?);
/// }
/// for delivery in pending {
///     let meta = delivery.await?;
///     assert!(meta.offset >= 0);
/// }
/// # Ok(()) }
/// ```
#[derive(Debug)]
#[must_use = "a DeliveryFuture tells whether the record was delivered; dropping it does not cancel the send"]
pub struct DeliveryFuture {
    completion: Arc<Completion>,
    timestamp: i64,
    offset_delta: i32,
    /// Where this future's waker sits in the completion's list ([`NO_SLOT`]: nowhere yet).
    /// A `u32` rather than an `Option<usize>`: an application keeps one future per record
    /// in flight (up to `queue.buffering.max.messages`, 100,000 by default), and the future
    /// is 24 bytes instead of 40.
    slot: u32,
}

impl DeliveryFuture {
    pub(crate) fn new(completion: Arc<Completion>, offset_delta: i32, timestamp: i64) -> Self {
        DeliveryFuture {
            completion,
            offset_delta,
            timestamp,
            slot: NO_SLOT,
        }
    }

    /// The partition the record was assigned to.
    pub fn partition(&self) -> i32 {
        self.completion.partition
    }

    /// The topic.
    pub fn topic(&self) -> &str {
        &self.completion.topic
    }

    /// Keeps the record's `send` span open until the batch completes.
    pub(crate) fn trace(&self, span: tracing::Span) {
        let c = &self.completion;
        c.spans.attach(self.offset_delta, c.partition, span, || {
            c.result.get().map(|o| {
                let (r, start) = o.for_record(self.offset_delta);
                (r.clone(), start)
            })
        });
    }

    /// Hands the record's outcome to the producer's delivery-report handler instead of
    /// awaiting it: the handler is called once with a [`DeliveryReport`] carrying `opaque`
    /// (e.g. an index into the application's own table, or when the record was sent) when
    /// the record is acknowledged or fails, on the producer's sender task (or at once, on
    /// this thread, if the outcome is already known). Keeps 24 bytes per record in flight
    /// instead of this future. For a producer without a
    /// [`delivery_handler`](super::ProducerBuilder::delivery_handler) the outcome is
    /// dropped, as when the future is.
    ///
    /// ```no_run
    /// # async fn f(config: &kafka_sdk::ClientConfig) -> kafka_sdk::Result<()> {
    /// use std::sync::atomic::{AtomicU64, Ordering};
    /// use std::sync::Arc;
    /// use kafka_sdk::{Producer, ProducerRecord};
    /// let failed = Arc::new(AtomicU64::new(0));
    /// let seen = failed.clone();
    /// let producer = Producer::builder(config)
    ///     .delivery_handler(Arc::new(move |r: &kafka_sdk::producer::DeliveryReport<'_>| {
    ///         if r.result.is_err() {
    ///             seen.fetch_add(1, Ordering::Relaxed);
    ///         }
    ///     }))
    ///     .build()
    ///     .await?;
    /// for i in 0..1000u64 {
    ///     producer.send(ProducerRecord::new("events").value(format!("event {i}"))).await?.report(i);
    /// }
    /// producer.flush().await;
    /// println!("{} failed", failed.load(Ordering::Relaxed));
    /// # Ok(()) }
    /// ```
    pub fn report(self, opaque: u64) {
        let c = &*self.completion;
        if c.handler.0.is_none() {
            return;
        }
        let mut reports = c.reports.lock().unwrap_or_else(|p| p.into_inner());
        // Checked under the lock: `complete_with` sets the outcome before taking the list.
        match c.result.get() {
            None => reports.push((self.offset_delta, self.timestamp, opaque)),
            Some(outcome) => {
                drop(reports);
                c.report(outcome, self.offset_delta, self.timestamp, opaque);
            }
        }
    }

    /// `true` once the outcome is known (awaiting will not wait).
    pub fn is_done(&self) -> bool {
        self.completion.is_done()
    }

    /// Once the record is acknowledged: the time the broker appended it at, when its topic
    /// stamps records that way (`message.timestamp.type=LogAppendTime`; then
    /// [`RecordMetadata::timestamp`] is that time). `None` before the outcome, for a failed
    /// record, and when the record keeps its own (create) timestamp.
    pub fn log_append_time(&self) -> Option<i64> {
        let outcome = self.completion.result.get()?;
        outcome.written(self.offset_delta).ok()?.log_append_time
    }

    /// The timestamp the record was appended with (its create time; see
    /// [`log_append_time`](Self::log_append_time) for the broker's).
    pub fn timestamp(&self) -> i64 {
        self.timestamp
    }

    /// Polls for where the record was written, as awaiting the future does, without building
    /// a [`RecordMetadata`] (no copy of the topic's name): for a caller that polls by hand
    /// and already knows the topic and [`partition`](Self::partition), e.g. a wrapper turning
    /// the outcome into a type of its own. The record's timestamp is
    /// [`WrittenAt::log_append_time`] when set, else [`timestamp`](Self::timestamp).
    pub fn poll_written(&mut self, cx: &mut Context<'_>) -> Poll<Result<WrittenAt>> {
        match self.completion.poll_result(cx, &mut self.slot) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(outcome) => {
                Poll::Ready(outcome.written(self.offset_delta).map_err(Clone::clone))
            }
        }
    }

    /// `true` when `other` is a record of the same batch as this one (then both complete
    /// together, and [`batch_records`](Self::batch_records) of the earlier one reads both).
    pub fn same_batch(&self, other: &DeliveryFuture) -> bool {
        Arc::ptr_eq(&self.completion, &other.completion)
    }

    /// The record's index in its batch: 0 for the batch's first record, then one more per
    /// record appended to the same batch (in the order of their appends).
    pub fn batch_index(&self) -> i32 {
        self.offset_delta
    }

    /// Once the outcome is known, the records of this record's batch from this one on (in
    /// append order), each with what its own delivery future resolves to and its key,
    /// value, headers and timestamp as appended, read from the batch (for a producer built
    /// with [`keep_records`](super::ProducerBuilder::keep_records), which keeps every
    /// batch's records, uncompressed, until its last delivery future is dropped: a
    /// librdkafka-style delivery report shows the message without the caller keeping a
    /// copy of each). `None` before the outcome is known, for a producer that does not keep
    /// records, and for a batch that could not be encoded at all (nothing to keep). Reading
    /// a batch's records this way does not need their delivery futures: one future per
    /// batch is enough.
    pub fn batch_records(&self) -> Option<BatchRecords> {
        let c = &self.completion;
        if !c.is_done() {
            return None;
        }
        let mut records = KeptRecords::new(c.kept.get()?.clone())?;
        if !records.seek(self.offset_delta) {
            return None;
        }
        Some(BatchRecords {
            completion: c.clone(),
            records,
        })
    }

    /// The record as it was appended (key, value, headers, timestamp), decoded from its
    /// batch, once the batch failed: for a producer built with
    /// [`keep_failed_records`](super::ProducerBuilder::keep_failed_records), which keeps a
    /// failed batch's encoded records with its completion (instead of the caller keeping a
    /// copy of every record in case it fails). `None` before the outcome is known, when
    /// the record was delivered, when the producer does not keep failed batches, and when
    /// the batch could not be encoded at all (nothing to keep).
    pub fn failed_record(&self) -> Option<FailedRecord> {
        let c = &self.completion;
        // Once complete, the kept pieces are final (they are kept before completing).
        if !c.is_done() {
            return None;
        }
        let decoded = c.decoded.get_or_init(|| {
            let opts = DecodeOptions {
                check_crc: false,
                ..DecodeOptions::default()
            };
            let kept = c.failed.lock().unwrap_or_else(|p| p.into_inner());
            kept.iter()
                .filter_map(|(start, data)| {
                    let batch = decode_batches(data.clone(), &opts).next()?.ok()?;
                    Some((*start, batch.records))
                })
                .collect()
        });
        let (start, records) = decoded
            .iter()
            .filter(|(start, _)| *start <= self.offset_delta)
            .max_by_key(|(start, _)| *start)?;
        // Sealed before sending: the base offset is 0, offsets are deltas in the piece (and
        // a producer's batch has no gaps: the record's index).
        let want = i64::from(self.offset_delta - start);
        let r = usize::try_from(want)
            .ok()
            .and_then(|i| records.get(i))
            .filter(|r| r.offset == want)
            .or_else(|| records.iter().find(|r| r.offset == want))?;
        Some(FailedRecord {
            key: r.key.clone(),
            value: r.value.clone(),
            headers: r.headers.clone(),
            timestamp: r.timestamp,
        })
    }
}

/// The records of one batch from a given record on, each with its outcome, read from the
/// batch's buffer one by one (see [`DeliveryFuture::batch_records`]); its `len()` is how
/// many are left, to the batch's last record.
#[derive(Debug)]
pub struct BatchRecords {
    completion: Arc<Completion>,
    records: KeptRecords,
}

/// A record of a batch with its outcome (see [`DeliveryFuture::batch_records`]). Key, value
/// and headers share the batch's buffer (nothing copied per record).
#[derive(Debug, Clone)]
pub struct BatchRecord {
    /// The record's index in its batch (what [`DeliveryFuture::batch_index`] tells).
    pub index: i32,
    /// What the record's [`DeliveryFuture`] resolves to.
    pub result: Result<RecordMetadata>,
    /// The key; `None` when null.
    pub key: Option<Bytes>,
    /// The value; `None` when null.
    pub value: Option<Bytes>,
    /// The headers, in the order they were given.
    pub headers: Vec<Header>,
    /// The record's timestamp (ms since the epoch) as appended.
    pub timestamp: i64,
}

impl ExactSizeIterator for BatchRecords {}

impl BatchRecords {
    /// Reads the records without their headers (each [`BatchRecord`] then has none): for a
    /// caller that kept the records' headers itself, no vector built per record.
    pub fn without_headers(self) -> BatchRecords {
        BatchRecords {
            completion: self.completion,
            records: self.records.skip_headers(),
        }
    }
}

impl BatchRecords {
    /// The next record read in place, with its outcome: like [`Iterator::next`] without
    /// building a [`BatchRecord`] (no reference count taken for its key, value or topic,
    /// nothing decoded until asked for: [`RawRecord`]). For a caller that hands each record
    /// to a callback and drops it before reading the next.
    #[inline]
    pub fn next_in_place(&mut self) -> Option<BatchRecordRef<'_>> {
        let c = &*self.completion;
        let index = self.records.position();
        let record = self.records.next_raw()?;
        let outcome = c.result.get()?.written(index);
        Some(BatchRecordRef {
            index,
            outcome,
            record,
        })
    }
}

/// A record of a batch read in place, with its outcome (see
/// [`BatchRecords::next_in_place`]).
#[derive(Debug, Clone, Copy)]
pub struct BatchRecordRef<'a> {
    /// The record's index in its batch.
    pub index: i32,
    /// Where it was written, or why it failed.
    pub outcome: std::result::Result<WrittenAt, &'a crate::Error>,
    /// The record as appended (its fields decoded when asked for).
    pub record: RawRecord<'a>,
}

impl WrittenAt {
    /// The record's metadata: the broker's time when it stamped the record, else
    /// `own_timestamp` (the one it was appended with).
    #[inline]
    fn metadata(self, c: &Completion, own_timestamp: i64) -> RecordMetadata {
        RecordMetadata {
            topic: c.topic.clone(),
            partition: c.partition,
            offset: self.offset,
            timestamp: self.log_append_time.unwrap_or(own_timestamp),
        }
    }
}

/// Where a record was written (see [`BatchRecordRef`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WrittenAt {
    /// Its offset; -1 when unknown (`acks=0`).
    pub offset: i64,
    /// The broker's time, when the topic stamps records with the time it appends them
    /// (`message.timestamp.type=LogAppendTime`); else `None` (the record's own timestamp
    /// stands).
    pub log_append_time: Option<i64>,
}

impl Iterator for BatchRecords {
    type Item = BatchRecord;

    /// Exact: the batch's records from the current one to its last.
    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = self.records.remaining();
        (n, Some(n))
    }

    #[inline]
    fn next(&mut self) -> Option<BatchRecord> {
        let c = &*self.completion;
        let index = self.records.position();
        let r = self.records.next()?;
        // Done: `batch_records` checked it.
        let outcome = c.result.get()?;
        let result = match outcome.written(index) {
            Err(e) => Err(e.clone()),
            Ok(w) => Ok(w.metadata(c, r.timestamp)),
        };
        Some(BatchRecord {
            index,
            result,
            key: r.key,
            value: r.value,
            headers: r.headers,
            timestamp: r.timestamp,
        })
    }
}

/// A record of a failed batch as it was appended (see [`DeliveryFuture::failed_record`]).
/// Key, value and headers share the batch's buffer (nothing copied per record).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailedRecord {
    /// The key; `None` when null.
    pub key: Option<Bytes>,
    /// The value; `None` when null.
    pub value: Option<Bytes>,
    /// The headers, in the order they were given.
    pub headers: Vec<Header>,
    /// The record's timestamp (ms since the epoch) as appended.
    pub timestamp: i64,
}

impl Future for DeliveryFuture {
    type Output = Result<RecordMetadata>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        this.poll_written(cx)
            .map_ok(|w| w.metadata(&this.completion, this.timestamp))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;
    use crate::record::batch::{BatchBuilder, BatchParams};
    use crate::record::compression::Compression;

    /// A record's key and value.
    type Kv<'a> = (Option<&'a [u8]>, Option<&'a [u8]>);

    /// An application keeps one delivery future per record in flight (up to 100,000 by
    /// default): it was 40 bytes with an `Option<usize>` waker slot.
    #[test]
    fn a_delivery_future_is_24_bytes() {
        assert_eq!(std::mem::size_of::<DeliveryFuture>(), 24);
    }

    /// A batch of `records` (timestamps 1,000 + i, one header `n` = i each) and the
    /// parameters to seal it with `compression`.
    fn filled(records: &[Kv<'_>], compression: Compression) -> (BatchBuilder, BatchParams) {
        let mut b = BatchBuilder::new(1_000, 256);
        for (i, (k, v)) in records.iter().enumerate() {
            let h: &[(&str, Option<&[u8]>)] = &[("n", Some(&[i as u8]))];
            b.append(1_000 + i as i64, *k, *v, h);
        }
        let params = BatchParams {
            compression,
            ..BatchParams::default()
        };
        (b, params)
    }

    fn sealed(records: &[Kv<'_>], compression: Compression) -> Bytes {
        let (b, params) = filled(records, compression);
        b.seal(&params).unwrap()
    }

    fn fut(c: &Arc<Completion>, delta: i32) -> DeliveryFuture {
        DeliveryFuture::new(c.clone(), delta, 1_000 + i64::from(delta))
    }

    /// A failed batch kept with its completion gives each future its own record back (key,
    /// value, null ones as `None`, headers, timestamp), also from a compressed batch and
    /// from the pieces of a split batch; nothing without a kept batch.
    #[test]
    fn failed_record_is_decoded_from_the_kept_batch() {
        let recs: [Kv<'_>; 3] = [
            (Some(b"k0"), Some(b"v0")),
            (None, Some(b"v1")),
            (Some(b"k2"), None),
        ];
        #[allow(unused_mut)]
        let mut codecs = vec![Compression::None];
        #[cfg(feature = "lz4")]
        codecs.push(Compression::Lz4);
        for compression in codecs {
            let c = Completion::new(Arc::from("t"), 0);
            let futs: Vec<_> = (0..3).map(|d| fut(&c, d)).collect();
            c.keep_failed(0, sealed(&recs, compression));
            // Not before the outcome is known.
            assert_eq!(futs[0].failed_record(), None);
            c.complete(Err(Error::Closed));
            for (i, f) in futs.iter().enumerate() {
                let r = f.failed_record().expect("kept");
                assert_eq!(r.key.as_deref(), recs[i].0);
                assert_eq!(r.value.as_deref(), recs[i].1);
                assert_eq!(r.timestamp, 1_000 + i as i64);
                assert_eq!(r.headers.len(), 1);
                assert_eq!(r.headers[0].value.as_deref(), Some(&[i as u8][..]));
            }
        }
        // A split batch: only its second piece (records 1 and 2) failed.
        let c = Completion::new(Arc::from("t"), 0);
        c.keep_failed(1, sealed(&recs[1..], Compression::None));
        c.complete_split(vec![
            (
                0,
                Ok(BatchAck {
                    base_offset: 10,
                    log_append_time: -1,
                }),
            ),
            (1, Err(Error::Closed)),
        ]);
        assert_eq!(fut(&c, 0).failed_record(), None);
        assert_eq!(
            fut(&c, 1).failed_record().unwrap().value.as_deref(),
            Some(&b"v1"[..])
        );
        assert_eq!(
            fut(&c, 2).failed_record().unwrap().key.as_deref(),
            Some(&b"k2"[..])
        );
        assert_eq!(fut(&c, 3).failed_record(), None);
        // Nothing kept (the default): no record.
        let c = Completion::new(Arc::from("t"), 0);
        let f = fut(&c, 0);
        c.complete(Err(Error::Closed));
        assert_eq!(f.failed_record(), None);
    }
    /// `batch_records` reads a completed batch's kept records from a future's record on,
    /// each with what its own future resolves to (offsets from the batch's base offset, or
    /// the piece's for a split batch; the record's timestamp, or the log append time; the
    /// error of a failed piece) and its key, value and headers, also from a batch that was
    /// compressed for sending; nothing before completion or without kept records.
    /// `same_batch` / `batch_index` tell a batch's records apart.
    #[test]
    fn batch_records_read_the_kept_batch_with_each_outcome() {
        let recs: [Kv<'_>; 3] = [
            (Some(b"k0"), Some(b"v0")),
            (None, Some(b"v1")),
            (Some(b"k2"), None),
        ];
        let kept = |compression| {
            let (b, params) = filled(&recs, compression);
            let (sealed, kept) = b.seal_keeping(&params);
            sealed.unwrap();
            kept.unwrap()
        };
        #[allow(unused_mut)]
        let mut codecs = vec![Compression::None];
        #[cfg(feature = "lz4")]
        codecs.push(Compression::Lz4);
        for compression in codecs {
            let c = Completion::new(Arc::from("t"), 2);
            let futs: Vec<_> = (0..3).map(|d| fut(&c, d)).collect();
            assert!(futs[0].same_batch(&futs[2]));
            assert_eq!(futs[2].batch_index(), 2);
            c.keep_records(kept(compression));
            assert!(futs[0].batch_records().is_none(), "not before completion");
            assert_eq!(futs[0].log_append_time(), None, "not before completion");
            c.complete(Ok(BatchAck {
                base_offset: 100,
                log_append_time: -1,
            }));
            for (from, f) in futs.iter().enumerate() {
                assert_eq!(f.log_append_time(), None, "create time");
                assert_eq!(f.batch_records().expect("kept").len(), 3 - from);
                let got: Vec<BatchRecord> = f.batch_records().expect("kept").collect();
                assert_eq!(got.len(), 3 - from);
                for r in got {
                    let i = r.index as usize;
                    let meta = r.result.expect("delivered");
                    assert_eq!(
                        (&*meta.topic, meta.partition, meta.offset, meta.timestamp),
                        ("t", 2, 100 + i as i64, 1_000 + i as i64)
                    );
                    assert_eq!((r.key.as_deref(), r.value.as_deref()), recs[i]);
                    assert_eq!(r.timestamp, 1_000 + i as i64);
                    assert_eq!(r.headers[0].value.as_deref(), Some(&[i as u8][..]));
                }
                let mut it = f.batch_records().expect("kept");
                let mut i = from;
                while let Some(r) = it.next_in_place() {
                    assert_eq!(r.index as usize, i);
                    let w = r.outcome.expect("delivered");
                    assert_eq!((w.offset, w.log_append_time), (100 + i as i64, None));
                    assert_eq!(r.record.key_value(), recs[i]);
                    assert_eq!(r.record.timestamp(), 1_000 + i as i64);
                    i += 1;
                }
                assert_eq!(i, 3);
            }
            let other = Completion::new(Arc::from("t"), 2);
            assert!(!futs[0].same_batch(&fut(&other, 0)));
        }
        // A split batch: its first piece (record 0) delivered with log append time, the
        // second (records 1 and 2) failed.
        let c = Completion::new(Arc::from("t"), 0);
        c.keep_records(kept(Compression::None));
        c.complete_split(vec![
            (1, Err(Error::Closed)),
            (
                0,
                Ok(BatchAck {
                    base_offset: 10,
                    log_append_time: 5_000,
                }),
            ),
        ]);
        assert_eq!(fut(&c, 0).log_append_time(), Some(5_000));
        assert_eq!(fut(&c, 1).log_append_time(), None, "failed");
        let got: Vec<BatchRecord> = fut(&c, 0).batch_records().unwrap().collect();
        let meta = got[0].result.as_ref().unwrap();
        assert_eq!((meta.offset, meta.timestamp), (10, 5_000));
        assert_eq!(got[0].timestamp, 1_000);
        assert!(matches!(got[1].result, Err(Error::Closed)));
        assert!(matches!(got[2].result, Err(Error::Closed)));
        assert_eq!(got[2].key.as_deref(), Some(&b"k2"[..]));
        // Read in place: the same records and outcomes.
        let mut it = fut(&c, 0).batch_records().unwrap();
        let mut n = 0;
        while let Some(r) = it.next_in_place() {
            let want = &got[n];
            assert_eq!(r.index, want.index);
            assert_eq!(
                (r.record.key(), r.record.value(), r.record.timestamp()),
                (want.key.as_deref(), want.value.as_deref(), want.timestamp)
            );
            match (&r.outcome, &want.result) {
                (Ok(w), Ok(m)) => {
                    assert_eq!((w.offset, w.log_append_time), (m.offset, Some(m.timestamp)))
                }
                (Err(e), Err(f)) => assert_eq!(e.to_string(), f.to_string()),
                other => panic!("record {n}: {other:?}"),
            }
            n += 1;
        }
        assert_eq!(n, 3);
        assert!(fut(&c, 3).batch_records().is_none(), "no such record");
        // Nothing kept (the default): nothing to read.
        let c = Completion::new(Arc::from("t"), 0);
        let f = fut(&c, 0);
        c.complete(Err(Error::Closed));
        assert!(f.batch_records().is_none());
    }
    /// `poll_written` answers as awaiting does (pending before the outcome; the offset and
    /// log append time of the record's piece, or its error, after) and `timestamp` is the
    /// record's own: what a wrapper needs to build its outcome without a `RecordMetadata`.
    #[test]
    fn poll_written_answers_as_awaiting_does() {
        let waker = std::task::Waker::noop();
        let mut cx = Context::from_waker(waker);
        let c = Completion::new(Arc::from("t"), 1);
        let mut f = fut(&c, 1);
        assert!(f.poll_written(&mut cx).is_pending());
        assert_eq!((f.partition(), f.timestamp()), (1, 1_001));
        c.complete(Ok(BatchAck {
            base_offset: 40,
            log_append_time: -1,
        }));
        match f.poll_written(&mut cx) {
            Poll::Ready(Ok(w)) => assert_eq!((w.offset, w.log_append_time), (41, None)),
            other => panic!("{other:?}"),
        }
        // A split batch: record 0's piece stamped by the broker, record 1's failed.
        let c = Completion::new(Arc::from("t"), 0);
        c.complete_split(vec![
            (
                0,
                Ok(BatchAck {
                    base_offset: 7,
                    log_append_time: 9_000,
                }),
            ),
            (1, Err(Error::Closed)),
        ]);
        match fut(&c, 0).poll_written(&mut cx) {
            Poll::Ready(Ok(w)) => assert_eq!((w.offset, w.log_append_time), (7, Some(9_000))),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            fut(&c, 1).poll_written(&mut cx),
            Poll::Ready(Err(Error::Closed))
        ));
        // Awaiting agrees.
        let meta = ready_now(fut(&c, 0));
        assert_eq!((meta.offset, meta.timestamp), (7, 9_000));
    }

    /// The ready output of a future that is ready at its first poll.
    fn ready_now(mut f: DeliveryFuture) -> RecordMetadata {
        let waker = std::task::Waker::noop();
        let mut cx = Context::from_waker(waker);
        match Pin::new(&mut f).poll(&mut cx) {
            Poll::Ready(r) => r.expect("delivered"),
            Poll::Pending => panic!("not ready"),
        }
    }

    /// A handler that records what it is called with, as (opaque, partition, offset or
    /// error text, timestamp).
    type Seen = Arc<Mutex<Vec<(u64, i32, String, i64)>>>;

    fn recording() -> (DeliveryHandler, Seen) {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let s = seen.clone();
        let h: DeliveryHandler = Arc::new(move |r: &DeliveryReport<'_>| {
            assert_eq!(r.topic, "t");
            let what = match r.result {
                Ok(w) => w.offset.to_string(),
                Err(e) => e.to_string(),
            };
            s.lock()
                .unwrap()
                .push((r.opaque, r.partition, what, r.timestamp));
        });
        (h, seen)
    }

    #[test]
    fn reported_records_reach_the_handler_once_at_completion() {
        let (h, seen) = recording();
        let c = Completion::with_handler(Arc::from("t"), 3, HandlerSlot(Some(h)));
        for delta in 0..3 {
            DeliveryFuture::new(c.clone(), delta, 100 + i64::from(delta)).report(10 + delta as u64);
        }
        // A record whose future is dropped (or awaited) is not reported.
        drop(DeliveryFuture::new(c.clone(), 3, 103));
        assert!(
            seen.lock().unwrap().is_empty(),
            "nothing before the outcome"
        );
        c.complete(Ok(BatchAck {
            base_offset: 40,
            log_append_time: -1,
        }));
        let got = std::mem::take(&mut *seen.lock().unwrap());
        assert_eq!(
            got,
            vec![
                (10, 3, "40".to_string(), 100),
                (11, 3, "41".to_string(), 101),
                (12, 3, "42".to_string(), 102),
            ]
        );
        // Completing again changes nothing; a record reported after the outcome is known
        // is reported at once.
        c.complete(Err(Error::Closed));
        assert!(seen.lock().unwrap().is_empty());
        DeliveryFuture::new(c.clone(), 3, 103).report(13);
        assert_eq!(*seen.lock().unwrap(), vec![(13, 3, "43".to_string(), 103)]);
    }

    #[test]
    fn a_split_batch_reports_each_piece_and_a_panicking_handler_stops_nothing() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let s = seen.clone();
        let h: DeliveryHandler = Arc::new(move |r: &DeliveryReport<'_>| {
            if r.opaque == 1 {
                panic!("handler bug");
            }
            s.lock().unwrap().push((
                r.opaque,
                r.result.map(|w| w.offset).map_err(|e| e.to_string()),
            ));
        });
        let c = Completion::with_handler(Arc::from("t"), 0, HandlerSlot(Some(h)));
        for delta in 0..4 {
            DeliveryFuture::new(c.clone(), delta, 0).report(delta as u64);
        }
        c.complete_split(vec![
            (2, Err(Error::Closed)),
            (
                0,
                Ok(BatchAck {
                    base_offset: 7,
                    log_append_time: -1,
                }),
            ),
        ]);
        assert_eq!(
            *seen.lock().unwrap(),
            vec![
                (0, Ok(7)),
                (2, Err(Error::Closed.to_string())),
                (3, Err(Error::Closed.to_string())),
            ]
        );
    }

    #[test]
    fn without_a_handler_report_keeps_nothing() {
        let c = Completion::new(Arc::from("t"), 0);
        DeliveryFuture::new(c.clone(), 0, 0).report(1);
        assert!(c.reports.lock().unwrap().is_empty());
    }
}
