//! Messages and headers with rdkafka's shapes, over kafka-sdk's zero-copy
//! [`kafka_sdk::Message`].

use std::fmt;
use std::marker::PhantomData;
use std::time::SystemTime;

use bytes::Bytes;

pub use crate::producer::base_producer::DeliveryResult;

/// A message timestamp.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Timestamp {
    /// The message has no timestamp.
    NotAvailable,
    /// Set by the producer.
    CreateTime(i64),
    /// Set by the broker when it appended the message.
    LogAppendTime(i64),
}

impl Timestamp {
    /// The milliseconds since the epoch, when there is a timestamp.
    pub fn to_millis(self) -> Option<i64> {
        match self {
            Timestamp::NotAvailable => None,
            Timestamp::CreateTime(-1) | Timestamp::LogAppendTime(-1) => None,
            Timestamp::CreateTime(t) | Timestamp::LogAppendTime(t) => Some(t),
        }
    }

    /// A creation timestamp of now.
    pub fn now() -> Timestamp {
        Timestamp::from(SystemTime::now())
    }
}

impl From<i64> for Timestamp {
    fn from(ms: i64) -> Timestamp {
        Timestamp::CreateTime(ms)
    }
}

impl From<SystemTime> for Timestamp {
    fn from(t: SystemTime) -> Timestamp {
        Timestamp::CreateTime(crate::util::millis_to_epoch(t))
    }
}

/// A header: a key and an optional value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header<'a, V> {
    /// The key.
    pub key: &'a str,
    /// The value; `None` is a null value.
    pub value: Option<V>,
}

/// Read access to a list of headers.
pub trait Headers {
    /// How many headers there are.
    fn count(&self) -> usize;

    /// The header at `idx`; panics when out of bounds (as rdkafka).
    fn get(&self, idx: usize) -> Header<'_, &[u8]> {
        self.try_get(idx).unwrap_or_else(|| {
            panic!(
                "header index {idx} out of bounds ({} headers)",
                self.count()
            )
        })
    }

    /// The header at `idx` with its value converted; panics when out of bounds.
    fn get_as<V>(&self, idx: usize) -> Result<Header<'_, &V>, V::Error>
    where
        V: FromBytes + ?Sized,
    {
        let h = self.get(idx);
        parse(h)
    }

    /// The header at `idx`, `None` when out of bounds.
    fn try_get(&self, idx: usize) -> Option<Header<'_, &[u8]>>;

    /// The header at `idx` with its value converted, `None` when out of bounds.
    fn try_get_as<V>(&self, idx: usize) -> Option<Result<Header<'_, &V>, V::Error>>
    where
        V: FromBytes + ?Sized,
    {
        self.try_get(idx).map(parse)
    }

    /// Iterates over the headers.
    fn iter(&self) -> HeadersIter<'_, Self>
    where
        Self: Sized,
    {
        HeadersIter {
            headers: self,
            next: 0,
        }
    }
}

fn parse<'a, V: FromBytes + ?Sized>(
    h: Header<'a, &'a [u8]>,
) -> Result<Header<'a, &'a V>, V::Error> {
    Ok(Header {
        key: h.key,
        value: match h.value {
            Some(v) => Some(V::from_bytes(v)?),
            None => None,
        },
    })
}

/// Iterator over [`Headers`].
#[derive(Debug)]
pub struct HeadersIter<'a, H> {
    headers: &'a H,
    next: usize,
}

impl<'a, H: Headers> Iterator for HeadersIter<'a, H> {
    type Item = Header<'a, &'a [u8]>;

    fn next(&mut self) -> Option<Header<'a, &'a [u8]>> {
        let h = self.headers.try_get(self.next)?;
        self.next += 1;
        Some(h)
    }
}

/// Headers of a received message (or the borrowed view of [`OwnedHeaders`]).
#[derive(Clone, Default)]
pub struct BorrowedHeaders {
    repr: Repr,
}

/// How a [`BorrowedHeaders`] holds its headers.
#[derive(Clone)]
enum Repr {
    /// Built by the caller ([`OwnedHeaders`]), or received with a key that is not UTF-8
    /// (converted lossily, once).
    Owned(Vec<(String, Option<Bytes>)>),
    /// A received message's headers as kafka-sdk decoded them: no copy, no allocation.
    /// Every key was checked to be UTF-8 when the message was converted.
    Received(Box<[kafka_sdk::consumer::Header]>),
}

impl Default for Repr {
    fn default() -> Repr {
        Repr::Owned(Vec::new())
    }
}

impl BorrowedHeaders {
    /// A received message's headers (`headers` not empty), kept as kafka-sdk decoded them
    /// when every key is UTF-8, else converted (keys lossily, as before).
    fn received(headers: Box<[kafka_sdk::consumer::Header]>) -> BorrowedHeaders {
        let repr = if headers.iter().all(|h| std::str::from_utf8(&h.key).is_ok()) {
            Repr::Received(headers)
        } else {
            Repr::Owned(headers.iter().map(owned_pair).collect())
        };
        BorrowedHeaders { repr }
    }

    /// The header at `idx` as a key and a value.
    fn pair(&self, idx: usize) -> Option<(&str, Option<&[u8]>)> {
        match &self.repr {
            Repr::Owned(list) => list.get(idx).map(|(k, v)| (k.as_str(), v.as_deref())),
            // Checked when received: `from_utf8` cannot fail here.
            Repr::Received(list) => list.get(idx).map(|h| {
                (
                    std::str::from_utf8(&h.key).unwrap_or(""),
                    h.value.as_deref(),
                )
            }),
        }
    }

    /// The headers as an owned list (a copy of the pairs; values shared).
    fn to_list(&self) -> Vec<(String, Option<Bytes>)> {
        match &self.repr {
            Repr::Owned(list) => list.clone(),
            Repr::Received(list) => list.iter().map(owned_pair).collect(),
        }
    }

    /// The owned list, taken out (received headers converted).
    fn take_list(&mut self) -> Vec<(String, Option<Bytes>)> {
        match std::mem::take(&mut self.repr) {
            Repr::Owned(list) => list,
            Repr::Received(list) => list.iter().map(owned_pair).collect(),
        }
    }

    /// An owned copy.
    pub fn detach(&self) -> OwnedHeaders {
        OwnedHeaders(BorrowedHeaders {
            repr: Repr::Owned(self.to_list()),
        })
    }
}

/// A received header as an owned pair (the key lossily as UTF-8, the value shared).
fn owned_pair(h: &kafka_sdk::consumer::Header) -> (String, Option<Bytes>) {
    (
        String::from_utf8_lossy(&h.key).into_owned(),
        h.value.clone(),
    )
}

impl Headers for BorrowedHeaders {
    fn count(&self) -> usize {
        match &self.repr {
            Repr::Owned(list) => list.len(),
            Repr::Received(list) => list.len(),
        }
    }

    fn try_get(&self, idx: usize) -> Option<Header<'_, &[u8]>> {
        self.pair(idx).map(|(key, value)| Header { key, value })
    }
}

impl PartialEq for BorrowedHeaders {
    fn eq(&self, other: &BorrowedHeaders) -> bool {
        self.count() == other.count() && (0..self.count()).all(|i| self.pair(i) == other.pair(i))
    }
}

impl Eq for BorrowedHeaders {}

impl fmt::Debug for BorrowedHeaders {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries((0..self.count()).filter_map(|i| self.pair(i)))
            .finish()
    }
}

/// Headers owned by the caller, e.g. to attach to a record being produced.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OwnedHeaders(BorrowedHeaders);

impl OwnedHeaders {
    /// No headers.
    pub fn new() -> OwnedHeaders {
        OwnedHeaders::default()
    }

    /// No headers, with room for `capacity`.
    pub fn new_with_capacity(capacity: usize) -> OwnedHeaders {
        OwnedHeaders(BorrowedHeaders {
            repr: Repr::Owned(Vec::with_capacity(capacity)),
        })
    }

    /// Appends a header.
    pub fn insert<V>(mut self, header: Header<'_, &V>) -> OwnedHeaders
    where
        V: ToBytes + ?Sized,
    {
        let mut list = self.0.take_list();
        list.push((
            header.key.to_string(),
            header.value.map(|v| Bytes::copy_from_slice(v.to_bytes())),
        ));
        self.0.repr = Repr::Owned(list);
        self
    }

    /// The borrowed view.
    pub fn as_borrowed(&self) -> &BorrowedHeaders {
        &self.0
    }

    pub(crate) fn into_sdk(mut self) -> Vec<(String, Option<Bytes>)> {
        self.0.take_list()
    }

    /// Headers from kafka-sdk's decoded ones (keys as UTF-8: a producer's header keys are
    /// `&str`; the values shared, not copied).
    pub(crate) fn from_sdk(headers: Vec<kafka_sdk::consumer::Header>) -> OwnedHeaders {
        OwnedHeaders(BorrowedHeaders {
            repr: Repr::Owned(
                headers
                    .into_iter()
                    .map(|h| (String::from_utf8_lossy(&h.key).into_owned(), h.value))
                    .collect(),
            ),
        })
    }

    /// The headers as borrowed pairs (kafka-sdk's `BorrowedRecord`).
    pub(crate) fn refs(&self) -> Vec<(&str, Option<&[u8]>)> {
        self.refs_iter().collect()
    }

    /// The headers as borrowed pairs, one by one.
    pub(crate) fn refs_iter(&self) -> impl ExactSizeIterator<Item = (&str, Option<&[u8]>)> {
        let h = &self.0;
        (0..h.count()).map(move |i| h.pair(i).unwrap_or(("", None)))
    }
}

impl Headers for OwnedHeaders {
    fn count(&self) -> usize {
        self.0.count()
    }

    fn try_get(&self, idx: usize) -> Option<Header<'_, &[u8]>> {
        self.0.try_get(idx)
    }
}

/// A message: read access shared by [`BorrowedMessage`] and [`OwnedMessage`].
pub trait Message {
    /// The headers' type.
    type Headers: Headers;

    /// The key, if any.
    fn key(&self) -> Option<&[u8]>;

    /// The payload (value), if any.
    fn payload(&self) -> Option<&[u8]>;

    /// The topic.
    fn topic(&self) -> &str;

    /// The partition.
    fn partition(&self) -> i32;

    /// The offset.
    fn offset(&self) -> i64;

    /// The timestamp.
    fn timestamp(&self) -> Timestamp;

    /// The payload converted (e.g. to `str`).
    fn payload_view<P: ?Sized + FromBytes>(&self) -> Option<Result<&P, P::Error>> {
        self.payload().map(P::from_bytes)
    }

    /// The key converted (e.g. to `str`).
    fn key_view<K: ?Sized + FromBytes>(&self) -> Option<Result<&K, K::Error>> {
        self.key().map(K::from_bytes)
    }

    /// The headers, `None` when there are none.
    fn headers(&self) -> Option<&Self::Headers>;
}

/// A message received by a consumer (or handed to a delivery callback). It owns its data
/// (shared, zero-copy buffers); the lifetime ties it to its client as in rdkafka.
// Kept at 128 bytes or less (a test checks), like kafka-sdk's `Message`: it is moved out of
// `poll` / `recv` per message, and larger moves become `memcpy` calls. Hence the timestamp
// as milliseconds and a kind instead of a `Timestamp` (16 bytes).
pub struct BorrowedMessage<'a> {
    body: Body<'a>,
    /// `None`: the message has no headers (a received message: none on the wire).
    headers: Option<BorrowedHeaders>,
    offset: i64,
    /// Milliseconds since the epoch, read with `timestamp_kind`.
    timestamp_ms: i64,
    partition: i32,
    timestamp_kind: TimestampKind,
    _client: PhantomData<&'a ()>,
}

/// Topic, key and payload of a [`BorrowedMessage`]: owned (shared buffers) for a received
/// message, or read in place from a produced batch's buffer for a delivery report (only
/// for the callback's duration: no reference count taken per record, key and payload
/// decoded when asked for).
enum Body<'a> {
    Owned {
        topic: std::sync::Arc<str>,
        key: Option<Bytes>,
        payload: Option<Bytes>,
    },
    InBatch {
        topic: &'a str,
        record: kafka_sdk::producer::RawRecord<'a>,
    },
}

/// The kind of a [`BorrowedMessage`]'s timestamp (a [`Timestamp`] without its value).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum TimestampKind {
    NotAvailable,
    CreateTime,
    LogAppendTime,
}

impl fmt::Debug for BorrowedMessage<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Message {{ topic: {}, partition: {}, offset: {}, timestamp: {:?} }}",
            self.topic(),
            self.partition,
            self.offset,
            self.timestamp()
        )
    }
}

impl<'a> BorrowedMessage<'a> {
    /// The facade's message for kafka-sdk's `m`: its parts moved (the topic's shared name
    /// too: no reference count taken and given back), its headers kept as kafka-sdk
    /// decoded them (none: nothing to convert). Nothing is allocated.
    #[inline]
    pub(crate) fn from_sdk(m: kafka_sdk::Message) -> BorrowedMessage<'static> {
        let parts = m.into_all_parts();
        let timestamp_kind = if parts.timestamp < 0 {
            TimestampKind::NotAvailable
        } else if parts.timestamp_type == kafka_sdk::TimestampType::LogAppendTime {
            TimestampKind::LogAppendTime
        } else {
            TimestampKind::CreateTime
        };
        let mut message = BorrowedMessage {
            body: Body::Owned {
                topic: parts.topic,
                key: parts.key,
                payload: parts.value,
            },
            headers: None,
            offset: parts.offset,
            timestamp_ms: parts.timestamp,
            partition: parts.partition,
            timestamp_kind,
            _client: PhantomData,
        };
        // Headers last: the message is whole (in its final place) if converting them
        // unwinds, so the common path moves each part once.
        if parts.headers.is_empty() {
            // An empty boxed slice owns no allocation: nothing to free, so skip its drop
            // glue (a call per message otherwise).
            std::mem::forget(parts.headers);
        } else {
            message.headers = Some(BorrowedHeaders::received(parts.headers));
        }
        message
    }

    pub(crate) fn produced(
        topic: std::sync::Arc<str>,
        partition: i32,
        offset: i64,
        timestamp: Timestamp,
        key: Option<Bytes>,
        payload: Option<Bytes>,
        headers: Option<OwnedHeaders>,
    ) -> BorrowedMessage<'static> {
        let (timestamp_kind, timestamp_ms) = match timestamp {
            Timestamp::NotAvailable => (TimestampKind::NotAvailable, -1),
            Timestamp::CreateTime(t) => (TimestampKind::CreateTime, t),
            Timestamp::LogAppendTime(t) => (TimestampKind::LogAppendTime, t),
        };
        BorrowedMessage {
            body: Body::Owned {
                topic,
                key,
                payload,
            },
            headers: headers.map(|h| h.0),
            offset,
            timestamp_ms,
            partition,
            timestamp_kind,
            _client: PhantomData,
        }
    }

    /// A delivery report's message read in place from its batch (see [`Body::InBatch`]):
    /// the record's own timestamp unless the broker stamped it (`log_append_time`).
    #[inline]
    pub(crate) fn in_batch(
        topic: &'a str,
        partition: i32,
        offset: i64,
        record: kafka_sdk::producer::RawRecord<'a>,
        log_append_time: Option<i64>,
        headers: Option<OwnedHeaders>,
    ) -> BorrowedMessage<'a> {
        let (timestamp_kind, timestamp_ms) = match log_append_time {
            Some(t) => (TimestampKind::LogAppendTime, t),
            None => (TimestampKind::CreateTime, record.timestamp()),
        };
        BorrowedMessage {
            body: Body::InBatch { topic, record },
            headers: headers.map(|h| h.0),
            offset,
            timestamp_ms,
            partition,
            timestamp_kind,
            _client: PhantomData,
        }
    }

    /// The key's length in bytes (0 without a key).
    pub fn key_len(&self) -> usize {
        self.key().map_or(0, <[u8]>::len)
    }

    /// The payload's length in bytes (0 without a payload).
    pub fn payload_len(&self) -> usize {
        self.payload().map_or(0, <[u8]>::len)
    }

    /// An owned copy that outlives the client.
    pub fn detach(&self) -> OwnedMessage {
        OwnedMessage {
            payload: self.payload().map(<[u8]>::to_vec),
            key: self.key().map(<[u8]>::to_vec),
            topic: self.topic().to_string(),
            timestamp: self.timestamp(),
            partition: self.partition,
            offset: self.offset,
            headers: self.headers.as_ref().map(|h| h.detach()),
        }
    }
}

impl Message for BorrowedMessage<'_> {
    type Headers = BorrowedHeaders;

    #[inline]
    fn key(&self) -> Option<&[u8]> {
        match &self.body {
            Body::Owned { key, .. } => key.as_deref(),
            Body::InBatch { record, .. } => record.key(),
        }
    }

    #[inline]
    fn payload(&self) -> Option<&[u8]> {
        match &self.body {
            Body::Owned { payload, .. } => payload.as_deref(),
            Body::InBatch { record, .. } => record.value(),
        }
    }

    #[inline]
    fn topic(&self) -> &str {
        match &self.body {
            Body::Owned { topic, .. } => topic,
            Body::InBatch { topic, .. } => topic,
        }
    }

    fn partition(&self) -> i32 {
        self.partition
    }

    fn offset(&self) -> i64 {
        self.offset
    }

    fn timestamp(&self) -> Timestamp {
        match self.timestamp_kind {
            TimestampKind::NotAvailable => Timestamp::NotAvailable,
            TimestampKind::CreateTime => Timestamp::CreateTime(self.timestamp_ms),
            TimestampKind::LogAppendTime => Timestamp::LogAppendTime(self.timestamp_ms),
        }
    }

    fn headers(&self) -> Option<&BorrowedHeaders> {
        self.headers.as_ref()
    }
}

/// A message owned by the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnedMessage {
    payload: Option<Vec<u8>>,
    key: Option<Vec<u8>>,
    topic: String,
    timestamp: Timestamp,
    partition: i32,
    offset: i64,
    headers: Option<OwnedHeaders>,
}

impl OwnedMessage {
    /// Builds a message from its parts.
    pub fn new(
        payload: Option<Vec<u8>>,
        key: Option<Vec<u8>>,
        topic: String,
        timestamp: Timestamp,
        partition: i32,
        offset: i64,
        headers: Option<OwnedHeaders>,
    ) -> OwnedMessage {
        OwnedMessage {
            payload,
            key,
            topic,
            timestamp,
            partition,
            offset,
            headers,
        }
    }

    /// Takes the headers out.
    pub fn detach_headers(&mut self) -> Option<OwnedHeaders> {
        self.headers.take()
    }

    /// Replaces the headers.
    pub fn replace_headers(mut self, headers: Option<OwnedHeaders>) -> Self {
        self.headers = headers;
        self
    }

    /// Replaces the payload.
    pub fn set_payload(mut self, payload: Option<Vec<u8>>) -> Self {
        self.payload = payload;
        self
    }

    /// Replaces the key.
    pub fn set_key(mut self, key: Option<Vec<u8>>) -> Self {
        self.key = key;
        self
    }

    /// Replaces the topic.
    pub fn set_topic(mut self, topic: String) -> Self {
        self.topic = topic;
        self
    }

    /// Replaces the timestamp.
    pub fn set_timestamp(mut self, timestamp: Timestamp) -> Self {
        self.timestamp = timestamp;
        self
    }

    /// Replaces the partition.
    pub fn set_partition(mut self, partition: i32) -> Self {
        self.partition = partition;
        self
    }

    /// Replaces the offset.
    pub fn set_offset(mut self, offset: i64) -> Self {
        self.offset = offset;
        self
    }
}

impl Message for OwnedMessage {
    type Headers = OwnedHeaders;

    fn key(&self) -> Option<&[u8]> {
        self.key.as_deref()
    }

    fn payload(&self) -> Option<&[u8]> {
        self.payload.as_deref()
    }

    fn topic(&self) -> &str {
        &self.topic
    }

    fn partition(&self) -> i32 {
        self.partition
    }

    fn offset(&self) -> i64 {
        self.offset
    }

    fn timestamp(&self) -> Timestamp {
        self.timestamp
    }

    fn headers(&self) -> Option<&OwnedHeaders> {
        self.headers.as_ref()
    }
}

/// Types a payload or key can be viewed as.
pub trait FromBytes {
    /// The conversion error.
    type Error;

    /// Views `bytes` as `Self`.
    fn from_bytes(bytes: &[u8]) -> Result<&Self, Self::Error>;
}

impl FromBytes for [u8] {
    type Error = ();

    fn from_bytes(bytes: &[u8]) -> Result<&Self, ()> {
        Ok(bytes)
    }
}

impl FromBytes for str {
    type Error = std::str::Utf8Error;

    fn from_bytes(bytes: &[u8]) -> Result<&Self, Self::Error> {
        std::str::from_utf8(bytes)
    }
}

/// Types a payload or key can be produced from.
pub trait ToBytes {
    /// The bytes.
    fn to_bytes(&self) -> &[u8];
}

impl ToBytes for [u8] {
    fn to_bytes(&self) -> &[u8] {
        self
    }
}

impl ToBytes for str {
    fn to_bytes(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl ToBytes for Vec<u8> {
    fn to_bytes(&self) -> &[u8] {
        self
    }
}

impl ToBytes for String {
    fn to_bytes(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl<T: ToBytes + ?Sized> ToBytes for &T {
    fn to_bytes(&self) -> &[u8] {
        (*self).to_bytes()
    }
}

impl ToBytes for () {
    fn to_bytes(&self) -> &[u8] {
        &[]
    }
}

impl<const N: usize> ToBytes for [u8; N] {
    fn to_bytes(&self) -> &[u8] {
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_round_trip() {
        let h = OwnedHeaders::new()
            .insert(Header {
                key: "a",
                value: Some("x"),
            })
            .insert::<str>(Header {
                key: "b",
                value: None,
            });
        assert_eq!(h.count(), 2);
        assert_eq!(h.get(0).value, Some(&b"x"[..]));
        assert_eq!(h.get_as::<str>(0).unwrap().value, Some("x"));
        assert_eq!(h.try_get(1).unwrap().value, None);
        assert!(h.try_get(2).is_none());
        let keys: Vec<&str> = h.iter().map(|h| h.key).collect();
        assert_eq!(keys, ["a", "b"]);
        assert_eq!(h.as_borrowed().detach(), h);
    }

    fn sdk_header(key: &[u8], value: Option<&'static [u8]>) -> kafka_sdk::consumer::Header {
        kafka_sdk::consumer::Header {
            key: Bytes::copy_from_slice(key),
            value: value.map(Bytes::from_static),
        }
    }

    #[test]
    fn received_headers_read_as_converted_ones() {
        let received = BorrowedHeaders::received(
            vec![
                sdk_header(b"trace", Some(b"t-1")),
                sdk_header(b"null", None),
            ]
            .into(),
        );
        // Kept as kafka-sdk decoded them (no per-message conversion)...
        assert!(matches!(received.repr, Repr::Received(_)));
        // ...and read exactly as the converted list would be.
        let expected = OwnedHeaders::new()
            .insert(Header {
                key: "trace",
                value: Some("t-1"),
            })
            .insert::<str>(Header {
                key: "null",
                value: None,
            });
        assert_eq!(received.count(), 2);
        assert_eq!(received.get(0).key, "trace");
        assert_eq!(received.get_as::<str>(0).unwrap().value, Some("t-1"));
        assert_eq!(received.try_get(1).unwrap().key, "null");
        assert_eq!(received.try_get(1).unwrap().value, None);
        assert!(received.try_get(2).is_none());
        assert_eq!(&received, expected.as_borrowed());
        assert_eq!(
            format!("{received:?}"),
            format!("{:?}", expected.as_borrowed())
        );
        // A detached copy is an ordinary owned list: more headers can be added to it.
        let detached = received.detach();
        assert_eq!(detached, expected);
        assert!(matches!(detached.as_borrowed().repr, Repr::Owned(_)));
        let more = detached.insert(Header {
            key: "k",
            value: Some("v"),
        });
        assert_eq!(more.count(), 3);
        assert_eq!(
            more.refs(),
            [
                ("trace", Some(&b"t-1"[..])),
                ("null", None),
                ("k", Some(&b"v"[..]))
            ]
        );
        assert_eq!(more.refs_iter().len(), 3);
        assert_eq!(
            more.into_sdk(),
            [
                ("trace".to_string(), Some(Bytes::from_static(b"t-1"))),
                ("null".to_string(), None),
                ("k".to_string(), Some(Bytes::from_static(b"v"))),
            ]
        );
    }

    #[test]
    fn received_header_keys_that_are_not_utf8_are_converted_lossily() {
        let h = BorrowedHeaders::received(vec![sdk_header(b"\xffk", Some(b"v"))].into());
        assert!(matches!(h.repr, Repr::Owned(_)));
        assert_eq!(h.get(0).key, "\u{fffd}k");
        assert_eq!(h.get(0).value, Some(&b"v"[..]));
    }

    #[test]
    fn produced_messages_keep_their_timestamp_and_headers() {
        for ts in [
            Timestamp::NotAvailable,
            Timestamp::CreateTime(-1),
            Timestamp::CreateTime(1_700_000_000_123),
            Timestamp::LogAppendTime(1_700_000_000_456),
        ] {
            let m = BorrowedMessage::produced("t".into(), 1, 7, ts, None, None, None);
            assert_eq!(m.timestamp(), ts);
            assert!(m.headers().is_none());
            assert_eq!(m.detach().timestamp(), ts);
        }
        // Headers given empty stay `Some` (as the record was sent).
        let m = BorrowedMessage::produced(
            "t".into(),
            1,
            7,
            Timestamp::NotAvailable,
            Some(Bytes::from_static(b"k")),
            Some(Bytes::from_static(b"v")),
            Some(OwnedHeaders::new()),
        );
        assert_eq!(m.headers().map(Headers::count), Some(0));
        assert_eq!(
            (m.topic(), m.partition(), m.offset(), m.key(), m.payload()),
            ("t", 1, 7, Some(&b"k"[..]), Some(&b"v"[..]))
        );
    }

    #[test]
    fn borrowed_message_moves_stay_small() {
        // Moved out of every `poll` / `recv`: kept within kafka-sdk's `Message`'s 128 bytes
        // (larger moves become `memcpy` calls).
        assert!(
            std::mem::size_of::<BorrowedMessage<'static>>() <= 128,
            "BorrowedMessage grew to {} bytes",
            std::mem::size_of::<BorrowedMessage<'static>>()
        );
    }

    #[test]
    fn timestamps() {
        assert_eq!(Timestamp::CreateTime(5).to_millis(), Some(5));
        assert_eq!(Timestamp::NotAvailable.to_millis(), None);
        assert_eq!(Timestamp::from(7), Timestamp::CreateTime(7));
    }
}
