//! Record batch v2 (magic 2) encoding and decoding.
//!
//! Layout of a batch (all integers big-endian):
//!
//! | offset | field                | type |
//! |-------:|----------------------|------|
//! | 0      | baseOffset           | i64  |
//! | 8      | batchLength          | i32 (bytes after this field) |
//! | 12     | partitionLeaderEpoch | i32  |
//! | 16     | magic (2)            | i8   |
//! | 17     | crc (CRC-32C of bytes 21..end) | u32 |
//! | 21     | attributes           | i16  |
//! | 23     | lastOffsetDelta      | i32  |
//! | 27     | baseTimestamp        | i64  |
//! | 35     | maxTimestamp         | i64  |
//! | 43     | producerId           | i64  |
//! | 51     | producerEpoch        | i16  |
//! | 53     | baseSequence         | i32  |
//! | 57     | recordCount          | i32  |
//! | 61     | records (compressed as one blob when a codec is set) | |
//!
//! Each record: `length` varint, `attributes` i8, `timestampDelta` varlong, `offsetDelta`
//! varint, key and value as varint length (-1 = null) + bytes, then a varint header count and
//! headers as varint key length + UTF-8 key, varint value length (-1 = null) + value.
//!
//! [`BatchBuilder`] is the producer side: records are encoded straight into one buffer that
//! already reserves room for the header, so sealing an uncompressed batch copies nothing.
//! [`decode_batches`] is the consumer side: keys, values and headers of decoded records are
//! [`Bytes`] slices of the input (or of the one decompressed buffer of their batch).

use bytes::{BufMut, Bytes, BytesMut};

use super::compression::{self, Compression};
use super::pool::MappedBuf;
use super::varint::{
    read_varint, read_varlong, varint_len, varlong_len, write_varint, write_varlong,
};
use crate::error::{Error, Result};

/// Size of a record batch header (everything before the records).
pub const RECORD_BATCH_OVERHEAD: usize = 61;
/// `baseOffset` + `batchLength`: the part of the header not counted by `batchLength`.
pub const LOG_OVERHEAD: usize = 12;
/// Smallest possible encoded record: every field one byte.
const MIN_RECORD_SIZE: usize = 7;

const PARTITION_LEADER_EPOCH_OFFSET: usize = 12;
const MAGIC_OFFSET: usize = 16;
const CRC_OFFSET: usize = 17;
const ATTRIBUTES_OFFSET: usize = 21;
const LAST_OFFSET_DELTA_OFFSET: usize = 23;
const BASE_TIMESTAMP_OFFSET: usize = 27;
const MAX_TIMESTAMP_OFFSET: usize = 35;
const PRODUCER_ID_OFFSET: usize = 43;
const PRODUCER_EPOCH_OFFSET: usize = 51;
const BASE_SEQUENCE_OFFSET: usize = 53;
const RECORD_COUNT_OFFSET: usize = 57;

const TIMESTAMP_TYPE_FLAG: i16 = 1 << 3;
const TRANSACTIONAL_FLAG: i16 = 1 << 4;
const CONTROL_FLAG: i16 = 1 << 5;
const DELETE_HORIZON_FLAG: i16 = 1 << 6;

/// Header fields chosen when a batch is sealed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchParams {
    /// Codec for the records section.
    pub compression: Compression,
    /// Codec level; `None` for the codec's default.
    pub compression_level: Option<i32>,
    /// Producer id, -1 for none.
    pub producer_id: i64,
    /// Producer epoch, -1 for none.
    pub producer_epoch: i16,
    /// Sequence number of the first record, -1 for none.
    pub base_sequence: i32,
    /// Sets the transactional attribute.
    pub transactional: bool,
    /// Partition leader epoch, -1 for none (brokers overwrite it).
    pub partition_leader_epoch: i32,
    /// Sets the LogAppendTime timestamp type (producers use CreateTime: `false`).
    pub timestamp_type_log_append: bool,
}

impl Default for BatchParams {
    fn default() -> Self {
        BatchParams {
            compression: Compression::None,
            compression_level: None,
            producer_id: -1,
            producer_epoch: -1,
            base_sequence: -1,
            transactional: false,
            partition_leader_epoch: -1,
            timestamp_type_log_append: false,
        }
    }
}

/// Accumulates records of one batch, appended as they arrive, and seals them into an
/// encoded record batch.
///
/// Records are encoded immediately into one buffer (after a reserved 61-byte header), so
/// appending allocates only when that buffer grows, and sealing an uncompressed batch just
/// fills in the header. Offset deltas are record indexes; timestamp deltas are relative to
/// the base timestamp given at creation (they may be negative).
#[derive(Debug)]
pub struct BatchBuilder {
    /// `[header placeholder; 61][records...]`.
    buf: Buf,
    base_timestamp: i64,
    max_timestamp: i64,
    count: i32,
    /// With [`checksum_as_appended`](Self::checksum_as_appended): the records are
    /// checksummed up to here (an offset in `buf`; 0: off)...
    crc_to: usize,
    /// ...and this is their CRC-32C (from the end of the header on).
    crc_records: u32,
}

/// A builder's buffer: on the heap, or a pooled mapping (see [`super::pool`]).
#[derive(Debug)]
enum Buf {
    Heap(BytesMut),
    Mapped(MappedBuf),
}

impl Buf {
    fn capacity(&self) -> usize {
        match self {
            Buf::Heap(b) => b.capacity(),
            Buf::Mapped(m) => m.capacity(),
        }
    }

    /// Extends the buffer by `n` bytes and returns them, all to be written (in a mapping
    /// they hold what an earlier batch left). A mapping too small moves to the heap first.
    #[inline]
    fn extend(&mut self, n: usize) -> &mut [u8] {
        if let Buf::Mapped(m) = self {
            if m.len() + n > m.capacity() {
                *self = Buf::Heap(m.to_heap(n));
            }
        }
        match self {
            Buf::Heap(b) => {
                let start = b.len();
                b.resize(start + n, 0);
                &mut b[start..]
            }
            Buf::Mapped(m) => m.extend(n).expect("room checked above"),
        }
    }

    fn freeze(self) -> Bytes {
        match self {
            Buf::Heap(b) => b.freeze(),
            Buf::Mapped(m) => m.freeze(),
        }
    }
}

impl std::ops::Deref for Buf {
    type Target = [u8];
    #[inline]
    fn deref(&self) -> &[u8] {
        match self {
            Buf::Heap(b) => b,
            Buf::Mapped(m) => m.as_slice(),
        }
    }
}

impl std::ops::DerefMut for Buf {
    #[inline]
    fn deref_mut(&mut self) -> &mut [u8] {
        match self {
            Buf::Heap(b) => b,
            Buf::Mapped(m) => m.as_mut_slice(),
        }
    }
}

/// With [`BatchBuilder::checksum_as_appended`], the records are checksummed every time this
/// many new bytes were appended: while they are still in the CPU's cache, and in pieces
/// large enough for the CRC's three-way parallel loop (the crc32c crate's is 3 x 8 KiB).
const CRC_CHUNK: usize = 3 * 8192;

/// Encoded size of a nullable bytes field (varint length, -1 for null, then the bytes).
#[inline]
fn bytes_field_len(b: Option<&[u8]>) -> usize {
    match b {
        None => 1,
        Some(b) => len_prefix_len(b.len()) + b.len(),
    }
}

/// Size of the varint length prefix of `len` bytes (saturating for absurd lengths, which
/// only serve to make the size too large to be accepted).
#[inline]
fn len_prefix_len(len: usize) -> usize {
    varint_len(i32::try_from(len).unwrap_or(i32::MAX))
}

/// Writes a nullable bytes field at the start of `out`, returning its size.
#[inline]
fn write_bytes_field(out: &mut [u8], b: Option<&[u8]>) -> usize {
    match b {
        None => {
            out[0] = 0x01; // zigzag(-1)
            1
        }
        Some(b) => {
            let n = write_varint(out, b.len() as i32);
            out[n..n + b.len()].copy_from_slice(b);
            n + b.len()
        }
    }
}

impl BatchBuilder {
    /// A new, empty batch whose records' timestamps are stored relative to `base_timestamp`.
    /// `capacity_hint` is the expected size in bytes of the encoded records.
    pub fn new(base_timestamp: i64, capacity_hint: usize) -> Self {
        let mut buf = BytesMut::with_capacity(RECORD_BATCH_OVERHEAD + capacity_hint);
        buf.put_bytes(0, RECORD_BATCH_OVERHEAD);
        Self::in_buf(base_timestamp, Buf::Heap(buf))
    }

    /// A new, empty batch built in a buffer of a [`BufferPool`](super::BufferPool), which
    /// the sealed batch keeps until its last `Bytes` is dropped. Records that outgrow the
    /// buffer move the batch to the heap (one copy).
    pub fn in_pooled(base_timestamp: i64, mut buf: MappedBuf) -> Self {
        match buf.extend(RECORD_BATCH_OVERHEAD) {
            // Written in full by `write_header` (but the CRC, written after it).
            Some(_) => Self::in_buf(base_timestamp, Buf::Mapped(buf)),
            None => Self::new(base_timestamp, 0),
        }
    }

    fn in_buf(base_timestamp: i64, buf: Buf) -> Self {
        BatchBuilder {
            buf,
            base_timestamp,
            max_timestamp: i64::MIN,
            count: 0,
            crc_to: 0,
            crc_records: 0,
        }
    }

    /// Checksums the records as they are appended, in pieces of 24 KiB while they are still
    /// in the CPU's cache, instead of all at once at [`seal`](Self::seal): for a batch sealed
    /// without compression (a compressed batch's CRC covers the compressed bytes, so it gains
    /// nothing). A batch of ~1 MB sealed long after its first records were written is mostly
    /// out of the cache by then: at 1 KiB records the CRC at seal ran at a third of its
    /// cached speed (perf, peer benchmark). The sealed batch is the same byte for byte.
    pub fn checksum_as_appended(mut self) -> Self {
        self.crc_to = self.buf.len();
        self
    }

    /// Encoded size of a record's key, value and headers: the part of its size that does not
    /// depend on where it lands in a batch. Compute it once per record and pass it to
    /// [`BatchBuilder::record_size_with_payload`] and [`BatchBuilder::append_with_payload_size`].
    #[inline]
    pub fn payload_size(
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[(&str, Option<&[u8]>)],
    ) -> usize {
        let mut size =
            bytes_field_len(key) + bytes_field_len(value) + len_prefix_len(headers.len());
        for (k, v) in headers {
            size += len_prefix_len(k.len()) + k.len() + bytes_field_len(*v);
        }
        size
    }

    /// Size of a record without its length prefix.
    #[inline]
    fn body_size(timestamp_delta: i64, offset_delta: i32, payload_size: usize) -> usize {
        1 // attributes
            + varlong_len(timestamp_delta)
            + varint_len(offset_delta)
            + payload_size
    }

    /// Exact encoded size of a record (including its length prefix), for deciding whether it
    /// fits a batch or a request before appending it.
    pub fn record_size(
        timestamp_delta: i64,
        offset_delta: i32,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[(&str, Option<&[u8]>)],
    ) -> usize {
        Self::record_size_with_payload(
            timestamp_delta,
            offset_delta,
            Self::payload_size(key, value, headers),
        )
    }

    /// [`BatchBuilder::record_size`] from a [`BatchBuilder::payload_size`].
    #[inline]
    pub fn record_size_with_payload(
        timestamp_delta: i64,
        offset_delta: i32,
        payload_size: usize,
    ) -> usize {
        let body = Self::body_size(timestamp_delta, offset_delta, payload_size);
        len_prefix_len(body) + body
    }

    /// [`BatchBuilder::record_size`] of a record appended next to this batch with `timestamp`.
    pub fn next_record_size(
        &self,
        timestamp: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[(&str, Option<&[u8]>)],
    ) -> usize {
        Self::record_size(
            timestamp.wrapping_sub(self.base_timestamp),
            self.count,
            key,
            value,
            headers,
        )
    }

    /// Appends a record and returns the number of encoded bytes added.
    ///
    /// # Panics
    /// When the record cannot be encoded at all: its encoded size exceeds `i32::MAX` bytes,
    /// or the batch already holds `i32::MAX` records. Callers enforce far smaller limits
    /// (`max.request.size`, `batch.size`) with [`BatchBuilder::record_size`] beforehand.
    pub fn append(
        &mut self,
        timestamp: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[(&str, Option<&[u8]>)],
    ) -> usize {
        let payload_size = Self::payload_size(key, value, headers);
        self.append_with_payload_size(timestamp, key, value, headers, payload_size)
    }

    /// [`BatchBuilder::append`] with the record's [`BatchBuilder::payload_size`] already
    /// computed (the producer computes it once for its size checks).
    ///
    /// # Panics
    /// As [`BatchBuilder::append`]; in debug builds also when `payload_size` is not the
    /// record's payload size.
    pub fn append_with_payload_size(
        &mut self,
        timestamp: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[(&str, Option<&[u8]>)],
        payload_size: usize,
    ) -> usize {
        debug_assert_eq!(payload_size, Self::payload_size(key, value, headers));
        assert!(
            self.count < i32::MAX,
            "record batch is full (i32::MAX records)"
        );
        let timestamp_delta = timestamp.wrapping_sub(self.base_timestamp);
        let offset_delta = self.count;
        let body = Self::body_size(timestamp_delta, offset_delta, payload_size);
        assert!(
            body <= i32::MAX as usize,
            "record of {body} bytes cannot be encoded"
        );
        let total = varint_len(body as i32) + body;
        // Grow once, then write every field into the new slice: cheaper than a chain of
        // `put_slice` calls, each re-checking capacity.
        let out = self.buf.extend(total);
        let mut p = write_varint(out, body as i32);
        out[p] = 0; // record attributes (unused)
        p += 1;
        p += write_varlong(&mut out[p..], timestamp_delta);
        p += write_varint(&mut out[p..], offset_delta);
        p += write_bytes_field(&mut out[p..], key);
        p += write_bytes_field(&mut out[p..], value);
        p += write_varint(&mut out[p..], headers.len() as i32);
        for (k, v) in headers {
            p += write_varint(&mut out[p..], k.len() as i32);
            out[p..p + k.len()].copy_from_slice(k.as_bytes());
            p += k.len();
            p += write_bytes_field(&mut out[p..], *v);
        }
        debug_assert_eq!(p, total);

        self.count += 1;
        self.max_timestamp = self.max_timestamp.max(timestamp);
        if self.crc_to > 0 && self.buf.len() - self.crc_to >= CRC_CHUNK {
            self.crc_records = crc32c::crc32c_append(self.crc_records, &self.buf[self.crc_to..]);
            self.crc_to = self.buf.len();
        }
        total
    }

    /// Bytes the batch's buffer holds before it has to grow (header included).
    pub fn capacity(&self) -> usize {
        self.buf.capacity()
    }

    /// Number of records appended.
    pub fn len(&self) -> usize {
        self.count as usize
    }

    /// `true` when no record was appended.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Size in bytes of the batch if sealed without compression: the 61-byte header plus the
    /// encoded records.
    pub fn size_bytes(&self) -> usize {
        self.buf.len()
    }

    #[cfg(test)]
    pub(crate) fn buf_capacity(&self) -> usize {
        self.buf.capacity()
    }

    /// The base timestamp given at creation.
    pub fn base_timestamp(&self) -> i64 {
        self.base_timestamp
    }

    /// The largest timestamp appended so far (`None` while empty).
    pub fn max_timestamp(&self) -> Option<i64> {
        (self.count > 0).then_some(self.max_timestamp)
    }

    /// Encodes the batch: header, records (compressed as `params` say) and CRC, with base
    /// offset 0 (the broker assigns offsets).
    ///
    /// Errors with [`Error::InvalidArgument`] for an empty batch, an invalid compression
    /// level, or a batch larger than `i32::MAX` bytes after compression.
    pub fn seal(self, params: &BatchParams) -> Result<Bytes> {
        if self.count == 0 {
            return Err(Error::InvalidArgument(
                "cannot seal an empty record batch".into(),
            ));
        }
        let (crc_to, crc_records) = (self.crc_to, self.crc_records);
        let (mut buf, running) = match params.compression {
            Compression::None => (self.buf, crc_to > 0),
            codec => {
                let records = &self.buf[RECORD_BATCH_OVERHEAD..];
                let mut out =
                    BytesMut::with_capacity(RECORD_BATCH_OVERHEAD + records.len() / 2 + 64);
                out.put_bytes(0, RECORD_BATCH_OVERHEAD);
                compression::compress(codec, params.compression_level, records, &mut out)?;
                (Buf::Heap(out), false)
            }
        };
        write_header(&mut buf, self.count, self.base_timestamp, self.max_timestamp, params)?;
        let crc = if running {
            // The header's CRC, then the records' (the running one, plus what was appended
            // since its last piece), combined.
            let records = crc32c::crc32c_append(crc_records, &buf[crc_to..]);
            super::crc::combine(
                crc32c::crc32c(&buf[ATTRIBUTES_OFFSET..RECORD_BATCH_OVERHEAD]),
                records,
                buf.len() - RECORD_BATCH_OVERHEAD,
            )
        } else {
            crc32c::crc32c(&buf[ATTRIBUTES_OFFSET..])
        };
        buf[CRC_OFFSET..ATTRIBUTES_OFFSET].copy_from_slice(&crc.to_be_bytes());
        Ok(buf.freeze())
    }

    /// [`seal`](Self::seal), also handing back the records uncompressed as one batch (what
    /// [`KeptRecords`] reads), for a producer that keeps its batches' records until their
    /// delivery reports are served: without compression the sealed batch itself (shared,
    /// nothing copied); with compression the builder's own buffer with an uncompressed
    /// header (no copy, no CRC: it never goes on the wire). The records stay readable when
    /// sealing fails (an invalid compression level, say); `None` only for an empty batch.
    pub fn seal_keeping(self, params: &BatchParams) -> (Result<Bytes>, Option<Bytes>) {
        if self.count == 0 || params.compression == Compression::None {
            let sealed = self.seal(params);
            let kept = sealed.as_ref().ok().cloned();
            return (sealed, kept);
        }
        let plain = BatchParams {
            compression: Compression::None,
            ..*params
        };
        let (count, base, max) = (self.count, self.base_timestamp, self.max_timestamp);
        let mut buf = self.buf;
        if let Err(e) = write_header(&mut buf, count, base, max, &plain) {
            return (Err(e), None);
        }
        let kept = buf.freeze();
        let records = &kept[RECORD_BATCH_OVERHEAD..];
        let mut out = BytesMut::with_capacity(RECORD_BATCH_OVERHEAD + records.len() / 2 + 64);
        out.put_bytes(0, RECORD_BATCH_OVERHEAD);
        let sealed = compression::compress(
            params.compression,
            params.compression_level,
            records,
            &mut out,
        )
        .and_then(|()| write_header(&mut out[..], count, base, max, params))
        .map(|()| {
            let crc = crc32c::crc32c(&out[ATTRIBUTES_OFFSET..]);
            out[CRC_OFFSET..ATTRIBUTES_OFFSET].copy_from_slice(&crc.to_be_bytes());
            out.freeze()
        });
        (sealed, Some(kept))
    }
}

/// Fills in the header of a batch of `count` (> 0) records in `buf` (header placeholder
/// then the records section), all but the CRC, with base offset 0.
fn write_header(
    buf: &mut [u8],
    count: i32,
    base_timestamp: i64,
    max_timestamp: i64,
    params: &BatchParams,
) -> Result<()> {
    let batch_length = i32::try_from(buf.len() - LOG_OVERHEAD).map_err(|_| {
        Error::InvalidArgument(format!(
            "record batch of {} bytes exceeds the protocol limit",
            buf.len()
        ))
    })?;
    let mut attributes = params.compression.attribute_bits();
    if params.timestamp_type_log_append {
        attributes |= TIMESTAMP_TYPE_FLAG;
    }
    if params.transactional {
        attributes |= TRANSACTIONAL_FLAG;
    }
    let h = &mut buf[..RECORD_BATCH_OVERHEAD];
    h[0..8].copy_from_slice(&0i64.to_be_bytes());
    h[8..12].copy_from_slice(&batch_length.to_be_bytes());
    h[12..16].copy_from_slice(&params.partition_leader_epoch.to_be_bytes());
    h[MAGIC_OFFSET] = 2;
    // The CRC is computed over the rest and written after; zero until then (a pooled
    // buffer holds an earlier batch's bytes here).
    h[CRC_OFFSET..ATTRIBUTES_OFFSET].fill(0);
    h[21..23].copy_from_slice(&attributes.to_be_bytes());
    h[23..27].copy_from_slice(&(count - 1).to_be_bytes());
    h[27..35].copy_from_slice(&base_timestamp.to_be_bytes());
    h[35..43].copy_from_slice(&max_timestamp.to_be_bytes());
    h[43..51].copy_from_slice(&params.producer_id.to_be_bytes());
    h[51..53].copy_from_slice(&params.producer_epoch.to_be_bytes());
    h[53..57].copy_from_slice(&params.base_sequence.to_be_bytes());
    h[57..61].copy_from_slice(&count.to_be_bytes());
    Ok(())
}

/// The records of one uncompressed batch as the producer sealed it
/// ([`BatchBuilder::seal_keeping`]), read one by one from any record on (the producer's
/// batches have no gaps: a record's offset delta is its index). Keys, values and headers
/// share the batch's buffer. Reading stops at the first record that does not decode
/// (never for a batch built by [`BatchBuilder`]).
#[derive(Debug, Clone)]
pub struct KeptRecords {
    data: Bytes,
    /// Where the next record starts in `data`.
    pos: usize,
    /// Index of the next record.
    next: i32,
    count: i32,
    base_timestamp: i64,
    /// Records come without their headers (see [`KeptRecords::skip_headers`]).
    skip_headers: bool,
}

impl KeptRecords {
    /// The records of `batch` (one uncompressed batch, header included), from the first.
    /// `None` when it is not one (too short, compressed).
    pub fn new(batch: Bytes) -> Option<KeptRecords> {
        if batch.len() < RECORD_BATCH_OVERHEAD
            || batch[MAGIC_OFFSET] != 2
            || Compression::from_attributes(be_i16(&batch, ATTRIBUTES_OFFSET)).ok()?
                != Compression::None
        {
            return None;
        }
        Some(KeptRecords {
            count: be_i32(&batch, RECORD_COUNT_OFFSET).max(0),
            base_timestamp: be_i64(&batch, BASE_TIMESTAMP_OFFSET),
            data: batch,
            pos: RECORD_BATCH_OVERHEAD,
            next: 0,
            skip_headers: false,
        })
    }

    /// Reads the records without their headers (each comes with none: for a reader that
    /// has them already, no vector built per record).
    pub fn skip_headers(mut self) -> KeptRecords {
        self.skip_headers = true;
        self
    }

    /// The index of the record `next` returns.
    pub fn position(&self) -> i32 {
        self.next
    }

    /// How many records are left to read (the batch's record count less
    /// [`position`](Self::position)).
    pub fn remaining(&self) -> usize {
        usize::try_from(self.count - self.next).unwrap_or(0)
    }

    /// Moves to the record at `index` (forward only, skipping records by their length
    /// prefix); `false` when there is no such record (or it lies behind).
    pub fn seek(&mut self, index: i32) -> bool {
        if index < self.next || index >= self.count {
            return false;
        }
        while self.next < index {
            let mut p = self.pos;
            let Ok(len) = read_varint(&self.data, &mut p) else {
                self.next = self.count;
                return false;
            };
            match usize::try_from(len).ok().and_then(|l| p.checked_add(l)) {
                Some(end) if end <= self.data.len() => self.pos = end,
                _ => {
                    self.next = self.count;
                    return false;
                }
            }
            self.next += 1;
        }
        true
    }
}

impl KeptRecords {
    /// The next record read in place: only its length prefix is read here; its fields are
    /// decoded when asked for ([`RawRecord`]), from this batch's buffer (no reference count
    /// taken, nothing copied). Moves on like [`Iterator::next`] (`None` at the end, or at a
    /// record whose length does not fit the batch).
    #[inline]
    pub fn next_raw(&mut self) -> Option<RawRecord<'_>> {
        if self.next >= self.count {
            return None;
        }
        let mut p = self.pos;
        let end = varint_at(&self.data, &mut p)
            .and_then(|len| usize::try_from(len).ok())
            .and_then(|len| p.checked_add(len))
            .filter(|&e| e <= self.data.len());
        let Some(end) = end else {
            self.next = self.count;
            return None;
        };
        self.pos = end;
        self.next += 1;
        Some(RawRecord {
            body: &self.data[p..end],
            base_timestamp: self.base_timestamp,
        })
    }
}

/// One record of a producer's uncompressed batch, read in place (see
/// `BatchRecords::next_in_place`): each accessor decodes its field from the record's bytes
/// when called (a few varints), and key and value borrow the batch's buffer. A record that
/// does not decode (never one the producer wrote) reads as having a null key and value and
/// the batch's base timestamp.
#[derive(Clone, Copy, Debug)]
pub struct RawRecord<'a> {
    /// The record after its length prefix.
    body: &'a [u8],
    base_timestamp: i64,
}

impl<'a> RawRecord<'a> {
    /// The timestamp the record was appended with (ms since the epoch).
    #[inline]
    pub fn timestamp(&self) -> i64 {
        let mut p = 1; // attributes
        varint_at(self.body, &mut p).map_or(self.base_timestamp, |d| {
            self.base_timestamp.wrapping_add(d)
        })
    }

    /// Where the key's length prefix starts (after attributes, timestamp and offset deltas).
    #[inline(always)]
    fn key_at(&self) -> Option<usize> {
        let mut p = 1;
        varint_at(self.body, &mut p)?;
        varint_at(self.body, &mut p)?;
        Some(p)
    }

    /// A nullable bytes field at `p`: `Some(None)` for null, `None` when it does not fit.
    #[inline(always)]
    fn field(&self, p: &mut usize) -> Option<Option<&'a [u8]>> {
        let len = varint_at(self.body, p)?;
        if len < 0 {
            return (len == -1).then_some(None);
        }
        let start = *p;
        let stop = start
            .checked_add(usize::try_from(len).ok()?)
            .filter(|&s| s <= self.body.len())?;
        *p = stop;
        Some(Some(&self.body[start..stop]))
    }

    /// The key; `None` when null.
    #[inline]
    pub fn key(&self) -> Option<&'a [u8]> {
        let mut p = self.key_at()?;
        self.field(&mut p).flatten()
    }

    /// The value; `None` when null.
    #[inline]
    pub fn value(&self) -> Option<&'a [u8]> {
        let mut p = self.key_at()?;
        self.field(&mut p)?;
        self.field(&mut p).flatten()
    }

    /// Key and value, decoded together (one pass over the record's head).
    #[inline]
    pub fn key_value(&self) -> (Option<&'a [u8]>, Option<&'a [u8]>) {
        let Some(mut p) = self.key_at() else {
            return (None, None);
        };
        let Some(key) = self.field(&mut p) else {
            return (None, None);
        };
        (key, self.field(&mut p).flatten())
    }
}

impl KeptRecords {
    /// Decodes the record at `pos`: a reader of the producer's own encoding (no error
    /// texts, every length checked against the record's bounds); `None` at the first
    /// inconsistency.
    #[inline]
    fn decode_next(&mut self) -> Option<Record> {
        let data = &self.data[..];
        let mut p = self.pos;
        let len = usize::try_from(varint_at(data, &mut p)?).ok()?;
        let end = p.checked_add(len).filter(|&e| e <= data.len())?;
        let d = &data[..end];
        p += 1; // attributes
        let timestamp_delta = varint_at(d, &mut p)?;
        let _offset_delta = varint_at(d, &mut p)?;
        let key = self.field_at(end, &mut p)?;
        let value = self.field_at(end, &mut p)?;
        let mut headers = Vec::new();
        if !self.skip_headers {
            let n = usize::try_from(varint_at(d, &mut p)?).ok()?;
            // Each header takes at least two bytes.
            if n > end.saturating_sub(p) / 2 {
                return None;
            }
            headers.reserve_exact(n);
            for _ in 0..n {
                let key = self.field_at(end, &mut p)??;
                let value = self.field_at(end, &mut p)?;
                headers.push(Header { key, value });
            }
            if p != end {
                return None;
            }
        }
        self.pos = end;
        let offset = i64::from(self.next);
        self.next += 1;
        Some(Record {
            offset,
            timestamp: self.base_timestamp.wrapping_add(timestamp_delta),
            key,
            value,
            headers,
        })
    }

    /// A nullable bytes field at `p`, within the record ending at `end`: `Some(None)` for
    /// null, `None` when it does not fit.
    #[inline(always)]
    fn field_at(&self, end: usize, p: &mut usize) -> Option<Option<Bytes>> {
        let len = varint_at(&self.data[..end], p)?;
        if len < 0 {
            return (len == -1).then_some(None);
        }
        let start = *p;
        let stop = start
            .checked_add(usize::try_from(len).ok()?)
            .filter(|&s| s <= end)?;
        *p = stop;
        Some(Some(self.data.slice(start..stop)))
    }
}

/// A zigzag varint (up to 64 bits) at `pos` of `b`; `None` when cut short or too long.
/// (Always inlined: five per record, mostly one byte each.)
#[inline(always)]
fn varint_at(b: &[u8], pos: &mut usize) -> Option<i64> {
    let first = *b.get(*pos)?;
    if first < 0x80 {
        // One byte (a null or short key's length, small deltas): most fields.
        *pos += 1;
        return Some(i64::from(first >> 1) ^ -i64::from(first & 1));
    }
    let mut n: u64 = 0;
    let mut shift = 0u32;
    loop {
        let byte = *b.get(*pos)?;
        *pos += 1;
        n |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Some((n >> 1) as i64 ^ -((n & 1) as i64));
        }
        shift += 7;
        if shift > 63 {
            return None;
        }
    }
}

impl Iterator for KeptRecords {
    type Item = Record;

    /// The next record (its `offset` is its index in the batch, its timestamp the one it
    /// was appended with).
    #[inline]
    fn next(&mut self) -> Option<Record> {
        if self.next >= self.count {
            return None;
        }
        let r = self.decode_next();
        if r.is_none() {
            self.next = self.count;
        }
        r
    }
}

/// Checks that `batch` starts with a complete magic-2 batch header and returns the batch's
/// total size (`12 + batchLength`).
fn checked_batch_size(batch: &[u8]) -> Result<usize> {
    if batch.len() < RECORD_BATCH_OVERHEAD {
        return Err(Error::Protocol(format!(
            "record batch of {} bytes is shorter than its {RECORD_BATCH_OVERHEAD}-byte header",
            batch.len()
        )));
    }
    check_magic(batch[MAGIC_OFFSET] as i8)?;
    let batch_length = be_i32(batch, 8);
    let size = LOG_OVERHEAD as i64 + batch_length as i64;
    if size < RECORD_BATCH_OVERHEAD as i64 || size > batch.len() as i64 {
        return Err(Error::Protocol(format!(
            "record batch length {batch_length} is inconsistent with the {} bytes given",
            batch.len()
        )));
    }
    Ok(size as usize)
}

/// Overwrites producer id, epoch and base sequence in an encoded batch and recomputes its
/// CRC, without re-encoding the records (for epoch bumps and re-sequencing of batches that
/// were not sent yet).
///
/// `batch` must start with one complete magic-2 batch (it may be followed by more bytes,
/// which are left alone).
pub fn rewrite_producer_state(
    batch: &mut [u8],
    producer_id: i64,
    producer_epoch: i16,
    base_sequence: i32,
) -> Result<()> {
    let size = checked_batch_size(batch)?;
    batch[PRODUCER_ID_OFFSET..PRODUCER_EPOCH_OFFSET].copy_from_slice(&producer_id.to_be_bytes());
    batch[PRODUCER_EPOCH_OFFSET..BASE_SEQUENCE_OFFSET]
        .copy_from_slice(&producer_epoch.to_be_bytes());
    batch[BASE_SEQUENCE_OFFSET..RECORD_COUNT_OFFSET].copy_from_slice(&base_sequence.to_be_bytes());
    let crc = crc32c::crc32c(&batch[ATTRIBUTES_OFFSET..size]);
    batch[CRC_OFFSET..ATTRIBUTES_OFFSET].copy_from_slice(&crc.to_be_bytes());
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Decoding
// ---------------------------------------------------------------------------------------

/// Options of [`decode_batches`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodeOptions {
    /// Verify each batch's CRC-32C (Java's `check.crcs`, on by default).
    pub check_crc: bool,
    /// Largest decompressed records section accepted for one batch (decompression-bomb
    /// defence); larger ones are an error.
    pub max_decompressed: usize,
}

impl Default for DecodeOptions {
    /// CRC checks on; at most 256 MiB of decompressed records per batch.
    fn default() -> Self {
        DecodeOptions {
            check_crc: true,
            max_decompressed: 256 << 20,
        }
    }
}

/// What a record's timestamp means (attribute bit 3 of its batch).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TimestampType {
    /// Set by the producer.
    CreateTime,
    /// Set by the broker when appending to the log.
    LogAppendTime,
}

/// Kind of a control record (transaction markers).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ControlType {
    /// Transaction aborted (type 0).
    Abort,
    /// Transaction committed (type 1).
    Commit,
}

/// The kind of a control record, from its key (`version` i16, `type` i16): `None` when the
/// key is too short or names a type other than abort/commit.
pub fn control_record_type(key: &[u8]) -> Option<ControlType> {
    if key.len() < 4 || i16::from_be_bytes([key[0], key[1]]) < 0 {
        return None;
    }
    match i16::from_be_bytes([key[2], key[3]]) {
        0 => Some(ControlType::Abort),
        1 => Some(ControlType::Commit),
        _ => None,
    }
}

/// A record header. The key is kept as the raw bytes of the wire (UTF-8 by protocol, not
/// validated on decode): see [`Header::key_str`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Header {
    /// Header key (UTF-8 by protocol).
    pub key: Bytes,
    /// Header value; `None` when null.
    pub value: Option<Bytes>,
}

impl Header {
    /// The key as a string; a protocol error when it is not valid UTF-8.
    pub fn key_str(&self) -> Result<&str> {
        std::str::from_utf8(&self.key)
            .map_err(|e| Error::Protocol(format!("record header key is not valid UTF-8: {e}")))
    }
}

/// A decoded record. `key`, `value` and header fields share the fetched (or decompressed)
/// buffer; nothing is copied per record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Absolute offset (batch base offset + offset delta).
    pub offset: i64,
    /// Timestamp: base timestamp + delta, or the batch's max timestamp for LogAppendTime.
    pub timestamp: i64,
    /// Key; `None` when null.
    pub key: Option<Bytes>,
    /// Value; `None` when null.
    pub value: Option<Bytes>,
    /// Headers in wire order (an empty `Vec` does not allocate).
    pub headers: Vec<Header>,
}

/// A decoded record batch with its records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordBatch {
    /// Offset of the first record (as assigned by the broker).
    pub base_offset: i64,
    /// Leader epoch of the partition leader that appended the batch (-1 if unknown).
    pub partition_leader_epoch: i32,
    /// Raw attributes (codec, timestamp type, transactional, control, delete horizon).
    pub attributes: i16,
    /// Offset delta of the last record (may exceed the record count after compaction).
    pub last_offset_delta: i32,
    /// Timestamp the record deltas are relative to (the delete horizon when that flag is set).
    pub base_timestamp: i64,
    /// Largest timestamp in the batch (the log append time for LogAppendTime batches).
    pub max_timestamp: i64,
    /// Producer id (-1 for none).
    pub producer_id: i64,
    /// Producer epoch (-1 for none).
    pub producer_epoch: i16,
    /// Sequence number of the first record (-1 for none).
    pub base_sequence: i32,
    /// Encoded size of the batch in the input, log overhead included.
    pub size_bytes: usize,
    /// The records, decoded eagerly.
    pub records: Vec<Record>,
}

impl RecordBatch {
    /// The records' codec.
    pub fn compression(&self) -> Compression {
        // Validated while decoding.
        Compression::from_attributes(self.attributes).unwrap_or(Compression::None)
    }

    /// `true` when the batch belongs to a transaction.
    pub fn is_transactional(&self) -> bool {
        self.attributes & TRANSACTIONAL_FLAG != 0
    }

    /// `true` for batches of control records (transaction markers).
    pub fn is_control(&self) -> bool {
        self.attributes & CONTROL_FLAG != 0
    }

    /// `true` when `base_timestamp` holds a delete horizon (set by log compaction).
    pub fn has_delete_horizon(&self) -> bool {
        self.attributes & DELETE_HORIZON_FLAG != 0
    }

    /// Meaning of the records' timestamps.
    pub fn timestamp_type(&self) -> TimestampType {
        if self.attributes & TIMESTAMP_TYPE_FLAG != 0 {
            TimestampType::LogAppendTime
        } else {
            TimestampType::CreateTime
        }
    }

    /// Offset following the batch: `base_offset + last_offset_delta + 1`.
    pub fn next_offset(&self) -> i64 {
        self.base_offset
            .saturating_add(self.last_offset_delta as i64)
            .saturating_add(1)
    }

    /// Offset of the last record of the batch (`base_offset + last_offset_delta`).
    pub fn last_offset(&self) -> i64 {
        self.base_offset
            .saturating_add(self.last_offset_delta as i64)
    }
}

/// Iterates the record batches in `data` (the `records` field of a fetch response
/// partition). Batches are decoded one by one as the iterator advances.
///
/// A partial batch at the end (brokers may cut the last one) ends the iteration without an
/// error; [`BatchIter::consumed`] then tells how many bytes made whole batches. Errors: a
/// declared batch length that is negative or shorter than a header, a legacy (magic 0/1) or
/// unknown magic, a CRC mismatch (with `check_crc`), and records inconsistent with the
/// bytes. After an error the iterator ends.
pub fn decode_batches(data: Bytes, opts: &DecodeOptions) -> BatchIter {
    BatchIter {
        data,
        pos: 0,
        opts: *opts,
        done: false,
    }
}

/// The offset after the last whole batch in `data` (the `records` of a fetch response
/// partition), read from the batch headers alone: no record is decoded and no CRC checked.
/// `None` when `data` holds no whole batch or a header [`decode_batches`] would reject comes
/// first (negative or too short a length, a magic other than 2); a partial batch at the end
/// is skipped as `decode_batches` skips it. For the records it decodes without an error,
/// `decode_batches` returns batches ending at this offset.
pub fn next_offset_after(data: &[u8]) -> Option<i64> {
    let mut next = None;
    for batch in whole_batches(data) {
        let end = batch_end(batch.ok()?);
        next = Some(next.map_or(end, |n: i64| n.max(end)));
    }
    next
}

/// How many records the whole batches in `data` that end after offset `from` hold, read
/// from their headers (no record decoded): what a consumer sizes its decoded vector with, so
/// that the vector is not grown by doubling. Control batches do not count. A header's count
/// is trusted only as far as the batch's bytes could hold it (7 bytes per uncompressed
/// record, one byte per record compressed), so a corrupt count cannot reserve more than the
/// data could decode to. Stops at the first header [`decode_batches`] would reject.
pub fn records_after(data: &[u8], from: i64) -> usize {
    whole_batches(data)
        .map_while(Result::ok)
        .filter(|b| batch_end(b) > from && be_i16(b, ATTRIBUTES_OFFSET) & CONTROL_FLAG == 0)
        .map(|b| {
            let count = usize::try_from(be_i32(b, RECORD_COUNT_OFFSET)).unwrap_or(0);
            let body = b.len() - RECORD_BATCH_OVERHEAD;
            let uncompressed = matches!(
                Compression::from_attributes(be_i16(b, ATTRIBUTES_OFFSET)),
                Ok(Compression::None)
            );
            count.min(if uncompressed { body / MIN_RECORD_SIZE } else { body })
        })
        .sum()
}

/// The first whole batch of `data`, read from its header: its length in bytes and whether
/// it is compressed; `None` when `data` does not start with one ([`records_after`]'s rules).
pub fn leading_batch(data: &[u8]) -> Option<(usize, bool)> {
    let b = whole_batches(data).next()?.ok()?;
    let compressed = !matches!(
        Compression::from_attributes(be_i16(b, ATTRIBUTES_OFFSET)),
        Ok(Compression::None)
    );
    Some((b.len(), compressed))
}

/// The whole batches at the start of `data`, walked by their headers alone (no record
/// decoded, no CRC checked): each batch's bytes, or `Err(())` for a header
/// [`decode_batches`] would reject (negative or too short a length, a magic other than 2),
/// after which nothing more is read. A partial batch at the end ends the walk, as
/// `decode_batches` skips it.
fn whole_batches(data: &[u8]) -> impl Iterator<Item = std::result::Result<&[u8], ()>> + '_ {
    let mut pos = 0;
    let mut rejected = false;
    std::iter::from_fn(move || {
        if rejected || data.len() - pos < RECORD_BATCH_OVERHEAD {
            return None;
        }
        let rest = &data[pos..];
        let batch_length = be_i32(rest, 8);
        if rest[MAGIC_OFFSET] != 2 || batch_length < (RECORD_BATCH_OVERHEAD - LOG_OVERHEAD) as i32 {
            rejected = true;
            return Some(Err(()));
        }
        let size = LOG_OVERHEAD + batch_length as usize;
        if rest.len() < size {
            return None;
        }
        pos += size;
        Some(Ok(&rest[..size]))
    })
}

/// The offset after a batch's last record, from its header.
fn batch_end(batch: &[u8]) -> i64 {
    be_i64(batch, 0)
        .saturating_add(be_i32(batch, LAST_OFFSET_DELTA_OFFSET) as i64)
        .saturating_add(1)
}

/// Iterator returned by [`decode_batches`].
#[derive(Debug, Clone)]
pub struct BatchIter {
    data: Bytes,
    pos: usize,
    opts: DecodeOptions,
    done: bool,
}

impl BatchIter {
    /// Number of input bytes taken by the batches returned so far.
    pub fn consumed(&self) -> usize {
        self.pos
    }

    /// `true` once the iterator has ended with input left over that does not form a whole
    /// batch (a batch cut off by the broker's size limit).
    pub fn has_partial_batch(&self) -> bool {
        self.done && self.pos < self.data.len()
    }

    fn next_batch(&mut self) -> Option<Result<RecordBatch>> {
        let rest = &self.data[self.pos..];
        if rest.len() < LOG_OVERHEAD {
            return None;
        }
        let batch_length = be_i32(rest, 8);
        if rest.len() > MAGIC_OFFSET {
            if let Err(e) = check_magic(rest[MAGIC_OFFSET] as i8) {
                return Some(Err(e));
            }
        }
        if batch_length < (RECORD_BATCH_OVERHEAD - LOG_OVERHEAD) as i32 {
            return Some(Err(Error::Protocol(format!(
                "record batch at byte {} declares length {batch_length}, less than a batch header",
                self.pos
            ))));
        }
        let size = LOG_OVERHEAD + batch_length as usize;
        if rest.len() < size {
            return None; // partial trailing batch
        }
        let batch = self.data.slice(self.pos..self.pos + size);
        self.pos += size;
        Some(decode_batch(batch, &self.opts))
    }
}

impl Iterator for BatchIter {
    type Item = Result<RecordBatch>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let item = self.next_batch();
        if !matches!(item, Some(Ok(_))) {
            self.done = true;
        }
        item
    }
}

fn check_magic(magic: i8) -> Result<()> {
    match magic {
        2 => Ok(()),
        0 | 1 => Err(Error::Protocol(format!(
            "legacy message format v0/v1 is not supported (magic {magic})"
        ))),
        m => Err(Error::Protocol(format!("unknown record batch magic {m}"))),
    }
}

#[inline]
fn be_i16(b: &[u8], at: usize) -> i16 {
    i16::from_be_bytes([b[at], b[at + 1]])
}

#[inline]
fn be_i32(b: &[u8], at: usize) -> i32 {
    i32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

#[inline]
fn be_i64(b: &[u8], at: usize) -> i64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    i64::from_be_bytes(a)
}

/// Decodes one whole batch (`batch` holds exactly its bytes, header included).
fn decode_batch(batch: Bytes, opts: &DecodeOptions) -> Result<RecordBatch> {
    let b = &batch[..];
    debug_assert!(b.len() >= RECORD_BATCH_OVERHEAD);
    let base_offset = be_i64(b, 0);
    let err =
        |what: String| Error::Protocol(format!("record batch at offset {base_offset}: {what}"));

    if opts.check_crc {
        let stored = be_i32(b, CRC_OFFSET) as u32;
        let computed = crc32c::crc32c(&b[ATTRIBUTES_OFFSET..]);
        if stored != computed {
            return Err(err(format!(
                "CRC mismatch (stored {stored:#010x}, computed {computed:#010x})"
            )));
        }
    }
    let attributes = be_i16(b, ATTRIBUTES_OFFSET);
    let codec = Compression::from_attributes(attributes).map_err(|e| err(e.to_string()))?;
    let mut out = RecordBatch {
        base_offset,
        partition_leader_epoch: be_i32(b, PARTITION_LEADER_EPOCH_OFFSET),
        attributes,
        last_offset_delta: be_i32(b, LAST_OFFSET_DELTA_OFFSET),
        base_timestamp: be_i64(b, BASE_TIMESTAMP_OFFSET),
        max_timestamp: be_i64(b, MAX_TIMESTAMP_OFFSET),
        producer_id: be_i64(b, PRODUCER_ID_OFFSET),
        producer_epoch: be_i16(b, PRODUCER_EPOCH_OFFSET),
        base_sequence: be_i32(b, BASE_SEQUENCE_OFFSET),
        size_bytes: b.len(),
        records: Vec::new(),
    };
    let count = be_i32(b, RECORD_COUNT_OFFSET);
    if count < 0 {
        return Err(err(format!("negative record count {count}")));
    }
    if count == 0 {
        // As in the Java client, an empty batch (kept by compaction) has no records to read.
        return Ok(out);
    }
    let data = match codec {
        Compression::None => batch.slice(RECORD_BATCH_OVERHEAD..),
        codec => compression::decompress(codec, &b[RECORD_BATCH_OVERHEAD..], opts.max_decompressed)
            .map_err(|e| match e {
                // Typed, so the caller can tell a build without the codec from corrupt data.
                Error::CodecDisabled { .. } => e,
                e => err(e.to_string()),
            })?,
    };
    let count = count as usize;
    if count > data.len() / MIN_RECORD_SIZE {
        return Err(err(format!(
            "record count {count} does not fit in {} bytes of records",
            data.len()
        )));
    }
    let ctx = RecordCtx {
        base_offset,
        base_timestamp: out.base_timestamp,
        log_append_time: (attributes & TIMESTAMP_TYPE_FLAG != 0).then_some(out.max_timestamp),
    };
    out.records.reserve_exact(count);
    let mut pos = 0;
    for i in 0..count {
        let rec =
            decode_record(&data, &mut pos, &ctx).map_err(|e| err(format!("record {i}: {e}")))?;
        out.records.push(rec);
    }
    if pos != data.len() {
        return Err(err(format!(
            "{} bytes left over after {count} records",
            data.len() - pos
        )));
    }
    Ok(out)
}

struct RecordCtx {
    base_offset: i64,
    base_timestamp: i64,
    log_append_time: Option<i64>,
}

/// Reads a nullable bytes field of `rec` (`data[..end]`) as a slice of `data`.
#[inline]
fn read_bytes_field(
    data: &Bytes,
    end: usize,
    pos: &mut usize,
    what: &str,
) -> std::result::Result<Option<Bytes>, String> {
    let len = read_varint(&data[..end], pos).map_err(|e| format!("{what} length: {e}"))?;
    if len < 0 {
        if len != -1 {
            return Err(format!("invalid {what} length {len}"));
        }
        return Ok(None);
    }
    let start = *pos;
    let stop = start
        .checked_add(len as usize)
        .filter(|&s| s <= end)
        .ok_or_else(|| format!("{what} of {len} bytes overruns the record"))?;
    *pos = stop;
    Ok(Some(data.slice(start..stop)))
}

fn decode_record(
    data: &Bytes,
    pos: &mut usize,
    ctx: &RecordCtx,
) -> std::result::Result<Record, String> {
    let len = read_varint(data, pos).map_err(|e| format!("length: {e}"))?;
    if len < 0 {
        return Err(format!("negative record length {len}"));
    }
    let end = pos
        .checked_add(len as usize)
        .filter(|&e| e <= data.len())
        .ok_or_else(|| {
            format!(
                "record length {len} exceeds the {} bytes left",
                data.len() - *pos
            )
        })?;
    let d = &data[..end];
    // Record attributes: unused.
    if *pos >= end {
        return Err("record ends before its attributes".into());
    }
    *pos += 1;
    let timestamp_delta = read_varlong(d, pos).map_err(|e| format!("timestamp delta: {e}"))?;
    let offset_delta = read_varint(d, pos).map_err(|e| format!("offset delta: {e}"))?;
    let key = read_bytes_field(data, end, pos, "key")?;
    let value = read_bytes_field(data, end, pos, "value")?;
    let header_count = read_varint(d, pos).map_err(|e| format!("header count: {e}"))?;
    if header_count < 0 {
        return Err(format!("negative header count {header_count}"));
    }
    let header_count = header_count as usize;
    // Each header takes at least two bytes (empty key, null value).
    if header_count > (end - *pos) / 2 {
        return Err(format!(
            "header count {header_count} does not fit in the {} bytes left in the record",
            end - *pos
        ));
    }
    let mut headers = Vec::with_capacity(header_count);
    for _ in 0..header_count {
        let key = match read_bytes_field(data, end, pos, "header key")? {
            Some(k) => k,
            None => return Err("null header key".into()),
        };
        let value = read_bytes_field(data, end, pos, "header value")?;
        headers.push(Header { key, value });
    }
    if *pos != end {
        return Err(format!(
            "declared length {len} but its fields end {} bytes earlier",
            end - *pos
        ));
    }
    let offset = ctx
        .base_offset
        .checked_add(offset_delta as i64)
        .ok_or_else(|| format!("offset delta {offset_delta} overflows the base offset"))?;
    let timestamp = match ctx.log_append_time {
        Some(t) => t,
        None => ctx.base_timestamp.wrapping_add(timestamp_delta),
    };
    Ok(Record {
        offset,
        timestamp,
        key,
        value,
        headers,
    })
}

#[cfg(test)]
mod kept_tests {
    use super::*;

    /// (timestamp, key, value, headers) of the test records.
    type Rec = (i64, Option<&'static [u8]>, Option<&'static [u8]>, &'static [(&'static str, Option<&'static [u8]>)]);

    const RECS: [Rec; 5] = [
        (1_000, Some(b"k0"), Some(b"v0"), &[]),
        (990, None, Some(b"v1"), &[("h", Some(b"x")), ("n", None)]),
        (1_005, Some(b"k2"), None, &[]),
        (1_005, Some(b""), Some(b""), &[("", Some(b""))]),
        (2_000, None, None, &[]),
    ];

    fn builder() -> BatchBuilder {
        let mut b = BatchBuilder::new(1_000, 0);
        for (ts, k, v, h) in RECS {
            b.append(ts, k, v, h);
        }
        b
    }

    fn check(r: &Record, i: usize) {
        let (ts, k, v, h) = RECS[i];
        assert_eq!(r.offset, i as i64);
        assert_eq!(r.timestamp, ts, "record {i}");
        assert_eq!((r.key.as_deref(), r.value.as_deref()), (k, v), "record {i}");
        let got: Vec<(&[u8], Option<&[u8]>)> = r
            .headers
            .iter()
            .map(|x| (&x.key[..], x.value.as_deref()))
            .collect();
        let want: Vec<(&[u8], Option<&[u8]>)> = h.iter().map(|(k, v)| (k.as_bytes(), *v)).collect();
        assert_eq!(got, want, "record {i}");
    }

    /// `seal_keeping` seals exactly as `seal` does, with every codec, and hands back the
    /// records uncompressed: `KeptRecords` reads each one (key, value, null ones, headers,
    /// timestamps before and after the base) from the first or from any record on; and
    /// the uncompressed copy is itself a valid batch.
    #[test]
    fn seal_keeping_keeps_the_records_readable_uncompressed() {
        let codecs = [
            Compression::None,
            Compression::Gzip,
            Compression::Snappy,
            Compression::Lz4,
            Compression::Zstd,
        ];
        for codec in codecs.into_iter().filter(|c| c.is_enabled()) {
            let params = BatchParams {
                compression: codec,
                producer_id: 7,
                producer_epoch: 1,
                base_sequence: 40,
                transactional: true,
                ..BatchParams::default()
            };
            let (sealed, kept) = builder().seal_keeping(&params);
            let sealed = sealed.unwrap();
            // (Compressed output is deterministic for a given input.)
            assert_eq!(sealed, builder().seal(&params).unwrap(), "{codec:?}");
            let kept = kept.expect("kept");
            let all: Vec<Record> = KeptRecords::new(kept.clone()).unwrap().collect();
            assert_eq!(all.len(), RECS.len(), "{codec:?}");
            for (i, r) in all.iter().enumerate() {
                check(r, i);
            }
            for from in 0..RECS.len() {
                let mut it = KeptRecords::new(kept.clone()).unwrap();
                assert!(it.seek(from as i32));
                assert_eq!(it.position(), from as i32);
                assert_eq!(it.remaining(), RECS.len() - from);
                let rest: Vec<Record> = it.collect();
                assert_eq!(rest.len(), RECS.len() - from);
                for (j, r) in rest.iter().enumerate() {
                    check(r, from + j);
                }
            }
            // Without headers: the same records, none of their headers.
            let bare: Vec<Record> = KeptRecords::new(kept.clone()).unwrap().skip_headers().collect();
            assert_eq!(bare.len(), RECS.len());
            for (i, r) in bare.iter().enumerate() {
                assert_eq!((r.key.as_deref(), r.value.as_deref()), (RECS[i].1, RECS[i].2));
                assert_eq!((r.offset, r.timestamp), (i as i64, RECS[i].0));
                assert!(r.headers.is_empty());
            }
            let mut it = KeptRecords::new(kept.clone()).unwrap();
            assert!(!it.seek(RECS.len() as i32), "past the last record");
            assert!(it.seek(3));
            assert!(!it.seek(1), "behind");
            let opts = DecodeOptions {
                check_crc: false,
                ..DecodeOptions::default()
            };
            let batch = decode_batches(kept, &opts).next().unwrap().unwrap();
            assert_eq!(batch.compression(), Compression::None);
            assert_eq!(batch.records.len(), RECS.len());
        }
        // Nothing to keep from an empty batch; a compressed batch is not readable as kept.
        let (sealed, kept) = BatchBuilder::new(0, 0).seal_keeping(&BatchParams::default());
        assert!(sealed.is_err() && kept.is_none());
        #[cfg(feature = "lz4")]
        {
            let params = BatchParams {
                compression: Compression::Lz4,
                ..BatchParams::default()
            };
            assert!(KeptRecords::new(builder().seal(&params).unwrap()).is_none());
        }
        assert!(KeptRecords::new(Bytes::from_static(b"short")).is_none());
    }

    /// `next_raw` reads the same records in place: key, value (null ones too) and timestamp
    /// as `KeptRecords::next` decodes them, in order, to the last record; a batch cut short
    /// ends the reading early (no panic), with every record read before the cut whole.
    #[test]
    fn kept_records_read_in_place() {
        let (_, kept) = builder().seal_keeping(&BatchParams::default());
        let kept = kept.unwrap();
        let mut it = KeptRecords::new(kept.clone()).unwrap();
        let mut n = 0;
        while let Some(r) = it.next_raw() {
            let (ts, k, v, _) = RECS[n];
            assert_eq!((r.key(), r.value(), r.timestamp()), (k, v, ts), "record {n}");
            assert_eq!(r.key_value(), (k, v), "record {n}");
            n += 1;
        }
        assert_eq!(n, RECS.len());
        assert_eq!(it.remaining(), 0);
        // From any record on, mixed with `next`.
        let mut it = KeptRecords::new(kept.clone()).unwrap();
        assert!(it.seek(1));
        assert_eq!(it.next_raw().map(|r| r.value()), Some(RECS[1].2));
        let r = it.next().unwrap();
        check(&r, 2);
        for cut in RECORD_BATCH_OVERHEAD..kept.len() {
            let mut it = KeptRecords::new(kept.slice(..cut)).unwrap();
            let mut read = 0;
            while let Some(r) = it.next_raw() {
                assert_eq!(r.key_value(), (RECS[read].1, RECS[read].2), "cut at {cut}");
                read += 1;
            }
            assert!(read < RECS.len(), "cut at {cut}");
        }
    }

    /// A kept batch cut short (never the producer's own) ends the reading, no panic.
    #[test]
    fn kept_records_stop_at_a_broken_record() {
        let (sealed, _) = builder().seal_keeping(&BatchParams::default());
        let sealed = sealed.unwrap();
        for cut in RECORD_BATCH_OVERHEAD..sealed.len() {
            let r = KeptRecords::new(sealed.slice(..cut)).unwrap();
            assert!(r.count() < RECS.len(), "cut at {cut}");
            let mut r = KeptRecords::new(sealed.slice(..cut)).unwrap();
            let _ = r.seek(4);
        }
    }
}

#[cfg(test)]
mod running_crc_tests {
    use super::*;

    /// A batch checksummed as appended seals to the very bytes of one checksummed at seal:
    /// for record sizes that put the 24 KiB pieces' boundaries anywhere (in the middle of
    /// records, right after one), with nothing checksummed yet, exactly one piece and many,
    /// and with a producer id / sequence in the header; a compressed batch ignores it. The
    /// sealed batch passes the decoder's CRC check.
    #[test]
    fn checksum_as_appended_seals_the_same_bytes() {
        let params = BatchParams {
            producer_id: 42,
            producer_epoch: 3,
            base_sequence: 1_000,
            ..BatchParams::default()
        };
        for (value_len, count) in [(100, 1), (100, 300), (1024, 23), (1024, 24), (1024, 200), (8000, 7), (30_000, 3)] {
            let value: Vec<u8> = (0..value_len).map(|i| (i * 7 % 251) as u8).collect();
            let mut plain = BatchBuilder::new(5_000, 0);
            let mut running = BatchBuilder::new(5_000, 0).checksum_as_appended();
            for i in 0..count {
                let key = format!("key-{i}");
                let h: &[(&str, Option<&[u8]>)] = &[("n", Some(&[i as u8]))];
                plain.append(5_000 + i as i64, Some(key.as_bytes()), Some(&value), h);
                running.append(5_000 + i as i64, Some(key.as_bytes()), Some(&value), h);
            }
            let a = plain.seal(&params).unwrap();
            let b = running.seal(&params).unwrap();
            assert_eq!(a, b, "{count} x {value_len} B");
            let decoded: Vec<_> = decode_batches(b, &DecodeOptions::default())
                .collect::<Result<Vec<_>>>()
                .unwrap();
            assert_eq!(decoded.len(), 1);
        }
        #[cfg(feature = "lz4")]
        {
            let lz4 = BatchParams {
                compression: Compression::Lz4,
                ..params
            };
            let mut plain = BatchBuilder::new(0, 0);
            let mut running = BatchBuilder::new(0, 0).checksum_as_appended();
            for i in 0..100 {
                plain.append(i, None, Some(&[9u8; 1000]), &[]);
                running.append(i, None, Some(&[9u8; 1000]), &[]);
            }
            assert_eq!(plain.seal(&lz4).unwrap(), running.seal(&lz4).unwrap());
        }
    }
}
