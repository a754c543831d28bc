//! TEMPORARY stand-ins for the agreed interfaces of the `record` branch (`BatchBuilder`,
//! `BatchParams`, `rewrite_producer_state`, `Partitioner`), so the producer builds and runs
//! before that branch lands on main. Uncompressed batches only. Deleted once
//! `crate::record` and `crate::producer::partitioner` exist.

use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};

use crate::error::{Error, Result};

/// Size of a record batch v2 header.
pub const RECORD_BATCH_OVERHEAD: usize = 61;

/// Compression codec (stand-in).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Compression {
    /// None.
    #[default]
    None,
    /// gzip.
    Gzip,
    /// snappy.
    Snappy,
    /// lz4.
    Lz4,
    /// zstd.
    Zstd,
}

/// Batch-level settings applied when sealing.
#[derive(Debug, Clone, Copy)]
pub struct BatchParams {
    /// Codec.
    pub compression: Compression,
    /// Codec level.
    pub compression_level: Option<i32>,
    /// Producer id (-1 none).
    pub producer_id: i64,
    /// Producer epoch (-1 none).
    pub producer_epoch: i16,
    /// Base sequence (-1 none).
    pub base_sequence: i32,
    /// Transactional bit.
    pub transactional: bool,
    /// Partition leader epoch.
    pub partition_leader_epoch: i32,
    /// Log-append-time bit.
    pub timestamp_type_log_append: bool,
}

fn varint_len(v: i64) -> usize {
    let mut z = ((v << 1) ^ (v >> 63)) as u64;
    let mut n = 1;
    while z >= 0x80 {
        z >>= 7;
        n += 1;
    }
    n
}

fn put_varint(buf: &mut BytesMut, v: i64) {
    let mut z = ((v << 1) ^ (v >> 63)) as u64;
    while z >= 0x80 {
        buf.put_u8((z as u8) | 0x80);
        z >>= 7;
    }
    buf.put_u8(z as u8);
}

fn bytes_len(b: Option<&[u8]>) -> usize {
    match b {
        None => varint_len(-1),
        Some(b) => varint_len(b.len() as i64) + b.len(),
    }
}

fn put_bytes(buf: &mut BytesMut, b: Option<&[u8]>) {
    match b {
        None => put_varint(buf, -1),
        Some(b) => {
            put_varint(buf, b.len() as i64);
            buf.put_slice(b);
        }
    }
}

/// Accumulates records of one batch (stand-in).
#[derive(Debug)]
pub struct BatchBuilder {
    base_timestamp: i64,
    max_timestamp: i64,
    count: usize,
    records: BytesMut,
}

impl BatchBuilder {
    /// A builder whose timestamps are relative to `base_timestamp`.
    pub fn new(base_timestamp: i64, capacity_hint: usize) -> Self {
        BatchBuilder {
            base_timestamp,
            max_timestamp: base_timestamp,
            count: 0,
            records: BytesMut::with_capacity(capacity_hint.min(1 << 20)),
        }
    }

    /// Encoded size of one record (length prefix included).
    pub fn record_size(
        ts_delta: i64,
        offset_delta: i32,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[(&str, Option<&[u8]>)],
    ) -> usize {
        let body = Self::body_size(ts_delta, offset_delta, key, value, headers);
        varint_len(body as i64) + body
    }

    fn body_size(
        ts_delta: i64,
        offset_delta: i32,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[(&str, Option<&[u8]>)],
    ) -> usize {
        let mut n = 1 + varint_len(ts_delta) + varint_len(offset_delta as i64);
        n += bytes_len(key) + bytes_len(value) + varint_len(headers.len() as i64);
        for (k, v) in headers {
            n += bytes_len(Some(k.as_bytes())) + bytes_len(*v);
        }
        n
    }

    /// Appends a record; returns its encoded size.
    pub fn append(
        &mut self,
        ts: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[(&str, Option<&[u8]>)],
    ) -> usize {
        let ts_delta = ts - self.base_timestamp;
        let od = self.count as i32;
        let body = Self::body_size(ts_delta, od, key, value, headers);
        let before = self.records.len();
        put_varint(&mut self.records, body as i64);
        self.records.put_u8(0);
        put_varint(&mut self.records, ts_delta);
        put_varint(&mut self.records, od as i64);
        put_bytes(&mut self.records, key);
        put_bytes(&mut self.records, value);
        put_varint(&mut self.records, headers.len() as i64);
        for (k, v) in headers {
            put_bytes(&mut self.records, Some(k.as_bytes()));
            put_bytes(&mut self.records, *v);
        }
        self.count += 1;
        self.max_timestamp = self.max_timestamp.max(ts);
        self.records.len() - before
    }

    /// Records appended.
    pub fn len(&self) -> usize {
        self.count
    }

    /// `true` when empty.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Uncompressed size of the batch so far (header included).
    pub fn size_bytes(&self) -> usize {
        RECORD_BATCH_OVERHEAD + self.records.len()
    }

    /// Builds the batch bytes.
    pub fn seal(&self, p: &BatchParams) -> Result<Bytes> {
        let _ = p.compression_level;
        if p.compression != Compression::None {
            return Err(Error::InvalidArgument(
                "compression not available yet (record layer pending)".into(),
            ));
        }
        let mut b = BytesMut::with_capacity(self.size_bytes());
        b.put_i64(0);
        b.put_i32((self.size_bytes() - 12) as i32);
        b.put_i32(p.partition_leader_epoch);
        b.put_i8(2);
        b.put_u32(0);
        let mut attrs = 0i16;
        if p.transactional {
            attrs |= 0x10;
        }
        if p.timestamp_type_log_append {
            attrs |= 0x08;
        }
        b.put_i16(attrs);
        b.put_i32(self.count as i32 - 1);
        b.put_i64(self.base_timestamp);
        b.put_i64(self.max_timestamp);
        b.put_i64(p.producer_id);
        b.put_i16(p.producer_epoch);
        b.put_i32(p.base_sequence);
        b.put_i32(self.count as i32);
        b.put_slice(&self.records);
        let crc = crc32c::crc32c(&b[21..]);
        b[17..21].copy_from_slice(&crc.to_be_bytes());
        Ok(b.freeze())
    }
}

/// Rewrites producer id, epoch and base sequence of a sealed batch (CRC recomputed).
pub fn rewrite_producer_state(batch: &Bytes, pid: i64, epoch: i16, seq: i32) -> Result<Bytes> {
    if batch.len() < RECORD_BATCH_OVERHEAD {
        return Err(Error::InvalidArgument("batch too short".into()));
    }
    let mut b = BytesMut::from(&batch[..]);
    b[43..51].copy_from_slice(&pid.to_be_bytes());
    b[51..53].copy_from_slice(&epoch.to_be_bytes());
    b[53..57].copy_from_slice(&seq.to_be_bytes());
    let crc = crc32c::crc32c(&b[21..]);
    b[17..21].copy_from_slice(&crc.to_be_bytes());
    Ok(b.freeze())
}

/// Maps records to partitions (stand-in for `producer::partitioner::Partitioner`).
pub trait Partitioner: Send + Sync + std::fmt::Debug {
    /// The partition for a record, or `None` to use sticky partitioning.
    fn partition(&self, topic: &str, key: Option<&[u8]>, partition_count: i32) -> Option<i32>;
}

#[derive(Debug)]
struct Murmur2Random;

impl Partitioner for Murmur2Random {
    fn partition(&self, _topic: &str, key: Option<&[u8]>, n: i32) -> Option<i32> {
        key.map(|k| ((murmur2(k) & 0x7fff_ffff) as i32) % n)
    }
}

fn murmur2(data: &[u8]) -> u32 {
    let seed: u32 = 0x9747_b28c;
    let m: u32 = 0x5bd1_e995;
    let r = 24;
    let len = data.len();
    let mut h: u32 = seed ^ (len as u32);
    let mut chunks = data.chunks_exact(4);
    for c in &mut chunks {
        let mut k = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        k = k.wrapping_mul(m);
        k ^= k >> r;
        k = k.wrapping_mul(m);
        h = h.wrapping_mul(m);
        h ^= k;
    }
    let rem = chunks.remainder();
    if rem.len() >= 3 {
        h ^= (rem[2] as u32) << 16;
    }
    if rem.len() >= 2 {
        h ^= (rem[1] as u32) << 8;
    }
    if !rem.is_empty() {
        h ^= rem[0] as u32;
        h = h.wrapping_mul(m);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(m);
    h ^= h >> 15;
    h
}

/// The default partitioner (stand-in).
pub fn builtin_default() -> Arc<dyn Partitioner> {
    Arc::new(Murmur2Random)
}

#[cfg(test)]
mod tests {
    #[test]
    fn murmur2_matches_java() {
        assert_eq!(super::murmur2(b"21") as i32, -973932308);
    }
}
