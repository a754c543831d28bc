//! The Java consumer protocol bytes: `ConsumerProtocolSubscription` and
//! `ConsumerProtocolAssignment` (versions 0..=3), each prefixed by an `i16` version, as
//! produced by Java's `ConsumerProtocol`.
//!
//! Written by hand rather than through kafka-protocol's generated types so that decoding can
//! follow Java exactly: a version above 3 is read with the version-3 layout (unknown trailing
//! fields ignored), trailing bytes are ignored, and no length prefix can trigger a large
//! allocation or a panic.
//!
//! Layout (classic, non-flexible encoding): strings `i16` length + UTF-8, nullable `-1`;
//! bytes `i32` length, nullable `-1`; arrays `i32` count.
//!
//! ```text
//! Subscription => version:i16 topics:[string] user_data:bytes?
//!                 owned_partitions:[topic:string partitions:[i32]]   (v1+)
//!                 generation_id:i32                                  (v2+)
//!                 rack_id:string?                                    (v3+)
//! Assignment   => version:i16 assigned_partitions:[topic:string partitions:[i32]] user_data:bytes?
//! ```

use bytes::{BufMut, Bytes, BytesMut};

use super::{Assignment, Subscription};
use crate::error::{Error, Result};
use crate::TopicPartition;

/// Highest `ConsumerProtocolSubscription` / `ConsumerProtocolAssignment` version known.
pub(crate) const HIGHEST_VERSION: i16 = 3;

impl Subscription {
    /// Encodes the subscription at `version` (clamped to `0..=3`; Java clamps higher versions to
    /// its highest one as well), prefixed by the version.
    ///
    /// Like Java's `ConsumerProtocol.serializeSubscription`, topics are written sorted and owned
    /// partitions sorted by topic then partition, grouped by topic. Fields the version does not
    /// have are left out.
    ///
    /// # Panics
    ///
    /// If a topic or the rack id is longer than `i16::MAX` bytes (not representable in the
    /// protocol; Java throws as well).
    pub fn encode(&self, version: i16) -> Bytes {
        let version = version.clamp(0, HIGHEST_VERSION);
        let mut buf = BytesMut::with_capacity(64);
        buf.put_i16(version);

        let mut topics: Vec<&str> = self.topics.iter().map(String::as_str).collect();
        topics.sort_by(|a, b| super::java_cmp(a, b));
        put_len_i32(&mut buf, topics.len());
        for t in topics {
            put_string(&mut buf, t);
        }
        put_nullable_bytes(&mut buf, self.user_data.as_deref());
        if version >= 1 {
            let mut owned: Vec<&TopicPartition> = self.owned_partitions.iter().collect();
            owned.sort_by(|a, b| {
                super::java_cmp(&a.topic, &b.topic).then(a.partition.cmp(&b.partition))
            });
            put_topic_partitions(&mut buf, owned.into_iter());
        }
        if version >= 2 {
            buf.put_i32(self.generation_id);
        }
        if version >= 3 {
            put_nullable_string(&mut buf, self.rack_id.as_deref());
        }
        buf.freeze()
    }

    /// Decodes a version-prefixed subscription.
    ///
    /// Versions above 3 are read with the version-3 layout and any further bytes are ignored
    /// (Java's forward compatibility rule); fields the version lacks get their defaults
    /// (`owned_partitions` empty, `generation_id` `-1`, `rack_id` `None`). An empty rack id
    /// decodes to `None`. Negative versions, truncated input and impossible lengths fail with
    /// [`Error::Protocol`].
    pub fn decode(bytes: &[u8]) -> Result<Subscription> {
        let mut r = Reader::new(bytes, "subscription");
        let version = r.version()?;
        let n = r.array_len(2)?;
        let mut topics = Vec::with_capacity(n);
        for _ in 0..n {
            topics.push(r.string()?);
        }
        let user_data = r.nullable_bytes()?;
        let owned_partitions = if version >= 1 {
            r.topic_partitions()?
        } else {
            Vec::new()
        };
        let generation_id = if version >= 2 { r.i32()? } else { -1 };
        let rack_id = if version >= 3 {
            r.nullable_string()?.filter(|s| !s.is_empty())
        } else {
            None
        };
        Ok(Subscription {
            topics,
            user_data,
            owned_partitions,
            generation_id,
            rack_id,
        })
    }
}

impl Assignment {
    /// Encodes the assignment at `version` (clamped to `0..=3`; the layout is the same for all
    /// of them), prefixed by the version.
    ///
    /// Like Java's `ConsumerProtocol.serializeAssignment`, partitions are grouped by topic in
    /// order of the topic's first appearance, keeping their order within the topic.
    ///
    /// # Panics
    ///
    /// If a topic name is longer than `i16::MAX` bytes (not representable in the protocol).
    pub fn encode(&self, version: i16) -> Bytes {
        let version = version.clamp(0, HIGHEST_VERSION);
        let mut buf = BytesMut::with_capacity(64);
        buf.put_i16(version);
        let mut groups: Vec<(&str, Vec<i32>)> = Vec::new();
        for tp in &self.partitions {
            match groups.iter_mut().find(|(t, _)| *t == &*tp.topic) {
                Some((_, ps)) => ps.push(tp.partition),
                None => groups.push((&tp.topic, vec![tp.partition])),
            }
        }
        put_len_i32(&mut buf, groups.len());
        for (topic, parts) in groups {
            put_string(&mut buf, topic);
            put_len_i32(&mut buf, parts.len());
            for p in parts {
                buf.put_i32(p);
            }
        }
        put_nullable_bytes(&mut buf, self.user_data.as_deref());
        buf.freeze()
    }

    /// Decodes a version-prefixed assignment.
    ///
    /// Empty input decodes to an empty assignment (the coordinator hands out empty assignment
    /// bytes in some error cases). Versions above 3 are read with the version-3 layout and
    /// trailing bytes are ignored. Negative versions, truncated input and impossible lengths
    /// fail with [`Error::Protocol`].
    pub fn decode(bytes: &[u8]) -> Result<Assignment> {
        if bytes.is_empty() {
            return Ok(Assignment::default());
        }
        let mut r = Reader::new(bytes, "assignment");
        r.version()?;
        let partitions = r.topic_partitions()?;
        let user_data = r.nullable_bytes()?;
        Ok(Assignment {
            partitions,
            user_data,
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Writing.

fn put_len_i32(buf: &mut BytesMut, len: usize) {
    buf.put_i32(i32::try_from(len).expect("collection longer than i32::MAX"));
}

pub(crate) fn put_string(buf: &mut BytesMut, s: &str) {
    // Kafka strings are at most i16::MAX bytes; longer ones cannot be represented.
    let len = i16::try_from(s.len()).expect("string longer than i16::MAX bytes");
    buf.put_i16(len);
    buf.put_slice(s.as_bytes());
}

fn put_nullable_string(buf: &mut BytesMut, s: Option<&str>) {
    match s {
        Some(s) => put_string(buf, s),
        None => buf.put_i16(-1),
    }
}

fn put_nullable_bytes(buf: &mut BytesMut, b: Option<&[u8]>) {
    match b {
        Some(b) => {
            put_len_i32(buf, b.len());
            buf.put_slice(b);
        }
        None => buf.put_i32(-1),
    }
}

/// Writes `[topic:string partitions:[i32]]` for partitions already grouped by topic (equal
/// topics adjacent).
pub(crate) fn put_topic_partitions<'a>(
    buf: &mut BytesMut,
    tps: impl Iterator<Item = &'a TopicPartition>,
) {
    let mut groups: Vec<(&str, Vec<i32>)> = Vec::new();
    for tp in tps {
        match groups.last_mut() {
            Some((t, ps)) if *t == &*tp.topic => ps.push(tp.partition),
            _ => groups.push((&tp.topic, vec![tp.partition])),
        }
    }
    put_len_i32(buf, groups.len());
    for (topic, parts) in groups {
        put_string(buf, topic);
        put_len_i32(buf, parts.len());
        for p in parts {
            buf.put_i32(p);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Reading.

/// A bounds-checked reader over classic Kafka primitives. Every failure is an
/// [`Error::Protocol`]; nothing here panics or allocates more than the input could hold.
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    what: &'static str,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8], what: &'static str) -> Self {
        Reader { buf, what }
    }

    fn err(&self, detail: &str) -> Error {
        Error::Protocol(format!(
            "malformed consumer protocol {}: {detail}",
            self.what
        ))
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if self.buf.len() < n {
            return Err(self.err("truncated"));
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }

    fn i16(&mut self) -> Result<i16> {
        let b = self.take(2)?;
        Ok(i16::from_be_bytes([b[0], b[1]]))
    }

    pub(crate) fn i32(&mut self) -> Result<i32> {
        let b = self.take(4)?;
        Ok(i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// The version prefix: negative versions are rejected, versions above the highest known
    /// one are read as the highest known one.
    fn version(&mut self) -> Result<i16> {
        let v = self.i16()?;
        if v < 0 {
            return Err(self.err(&format!("unsupported version {v}")));
        }
        Ok(v.min(HIGHEST_VERSION))
    }

    /// A non-nullable array count whose elements take at least `min_elem` bytes each.
    pub(crate) fn array_len(&mut self, min_elem: usize) -> Result<usize> {
        let n = self.i32()?;
        if n < 0 {
            return Err(self.err("null array in a non-nullable field"));
        }
        let n = n as usize;
        if n.saturating_mul(min_elem) > self.buf.len() {
            return Err(self.err(&format!(
                "array of {n} elements but only {} bytes left",
                self.buf.len()
            )));
        }
        Ok(n)
    }

    fn string_body(&mut self, len: i16) -> Result<String> {
        let b = self.take(len as usize)?;
        // Java decodes with replacement of invalid sequences; do the same.
        Ok(String::from_utf8_lossy(b).into_owned())
    }

    pub(crate) fn string(&mut self) -> Result<String> {
        let len = self.i16()?;
        if len < 0 {
            return Err(self.err("null string in a non-nullable field"));
        }
        self.string_body(len)
    }

    fn nullable_string(&mut self) -> Result<Option<String>> {
        let len = self.i16()?;
        if len < 0 {
            return Ok(None);
        }
        self.string_body(len).map(Some)
    }

    fn nullable_bytes(&mut self) -> Result<Option<Bytes>> {
        let len = self.i32()?;
        if len < 0 {
            return Ok(None);
        }
        let b = self.take(len as usize)?;
        Ok(Some(Bytes::copy_from_slice(b)))
    }

    /// `[topic:string partitions:[i32]]`, flattened.
    pub(crate) fn topic_partitions(&mut self) -> Result<Vec<TopicPartition>> {
        let n = self.array_len(6)?;
        let mut out = Vec::new();
        for _ in 0..n {
            let topic: std::sync::Arc<str> = self.string()?.into();
            let m = self.array_len(4)?;
            out.reserve(m);
            for _ in 0..m {
                out.push(TopicPartition {
                    topic: topic.clone(),
                    partition: self.i32()?,
                });
            }
        }
        Ok(out)
    }
}
