//! Producer settings and their cross-field rules.

use std::time::Duration;

use super::common::CommonConfig;
use super::keys::*;
use super::resolve::Resolved;
use crate::error::{ConfigError, Result};

/// Compression codec of produced batches (`compression.type`, alias `compression.codec`):
/// the record layer's codec enum itself, parsed (`FromStr`) with the key table's spellings.
pub use crate::record::Compression;

/// Acknowledgements the partition leader waits for before answering a produce request
/// (`acks`, alias `request.required.acks`). Parses (`FromStr`) and prints (`Display`,
/// [`name`](Self::name)) as the key table spells it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Acks {
    /// `0`: no response at all.
    None,
    /// `1`: the leader wrote the records.
    Leader,
    /// `all` or `-1`: every in-sync replica has the records.
    All,
}

impl Acks {
    /// The `acks` field of a Produce request: 0, 1 or -1.
    pub fn as_i16(self) -> i16 {
        match self {
            Acks::None => 0,
            Acks::Leader => 1,
            Acks::All => -1,
        }
    }
}

/// How records are mapped to partitions (`partitioner`, alias `partitioner.class`): the one
/// partitioner enum, used by the config and by [`crate::producer::partitioner::builtin`].
///
/// The librdkafka names mean what librdkafka's CONFIGURATION.md says; a `_random` name sends
/// NULL-key records to a "random" partition, which here is *uniform sticky* partitioning
/// (KIP-794, as the Java producer): one partition until `batch.size` bytes went to it, then
/// another. The other hashing names map NULL keys to a single partition (the hash of the
/// empty key). Keyed records hash exactly as librdkafka (and, for murmur2, the Java client)
/// do, so the same key lands on the same partition whichever client wrote it.
///
/// | name | keyed record | empty key | NULL key |
/// |------|--------------|-----------|----------|
/// | `murmur2_random` (default) | murmur2 | murmur2 of empty | sticky |
/// | `murmur2` | murmur2 | murmur2 of empty | murmur2 of empty (one partition) |
/// | `consistent` | CRC32 | CRC32 of empty = partition 0 | partition 0 |
/// | `consistent_random` | CRC32 | sticky | sticky |
/// | `fnv1a` | FNV-1a | FNV-1a of empty | FNV-1a of empty (one partition) |
/// | `fnv1a_random` | FNV-1a | FNV-1a of empty | sticky |
/// | `random` | random per record | random per record | random per record |
/// | `round_robin` | next partition of the topic | same | same |
///
/// The default is the `partitioner` row of the key table ([`super::keys`]), `murmur2_random`:
/// what the Java producer does (murmur2 for keyed records, uniform sticky for NULL keys);
/// [`Default`] reads it from there. [`FromStr`](std::str::FromStr) accepts every spelling the
/// key table lists (librdkafka names, Java class names, any case).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PartitionerKind {
    /// `murmur2`: Java-compatible murmur2 hash of the key; NULL keys all go to one partition
    /// (the hash of the empty key).
    Murmur2,
    /// `murmur2_random` (the default; also Java's
    /// `org.apache.kafka.clients.producer.internals.DefaultPartitioner`): murmur2 hash of the
    /// key (empty keys hashed), NULL keys uniform sticky. What the Java producer does.
    Murmur2Random,
    /// `consistent`: CRC32 hash of the key; empty and NULL keys all go to one partition
    /// (CRC32 of the empty key: partition 0).
    Consistent,
    /// `consistent_random` (librdkafka's default): CRC32 of the key; empty and NULL keys
    /// uniform sticky.
    ConsistentRandom,
    /// `random`: every record to a uniformly random partition, key ignored.
    Random,
    /// `round_robin` (also `org.apache.kafka.clients.producer.RoundRobinPartitioner`): each
    /// record to the next partition of its topic, key ignored.
    RoundRobin,
    /// `fnv1a`: FNV-1a hash of the key (librdkafka/Sarama-compatible); NULL keys all go to
    /// one partition (the hash of the empty key).
    Fnv1a,
    /// `fnv1a_random`: FNV-1a hash of the key (empty keys hashed); NULL keys uniform sticky.
    Fnv1aRandom,
}

impl PartitionerKind {
    /// Every built-in partitioner, in the key table's order.
    pub const ALL: [PartitionerKind; 8] = [
        PartitionerKind::Murmur2,
        PartitionerKind::Murmur2Random,
        PartitionerKind::Consistent,
        PartitionerKind::ConsistentRandom,
        PartitionerKind::Random,
        PartitionerKind::RoundRobin,
        PartitionerKind::Fnv1a,
        PartitionerKind::Fnv1aRandom,
    ];
}

impl Default for PartitionerKind {
    /// The key table's default for `partitioner` (`murmur2_random`).
    fn default() -> Self {
        PARTITIONER
            .def
            .default
            .and_then(|d| d.parse().ok())
            .expect("the key table's partitioner default names a partitioner")
    }
}

/// Producer settings. Built by [`ClientConfig::producer`](super::ClientConfig::producer),
/// which applies the Java producer's cross-field rules (see the module docs).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProducerConfig {
    /// Connection and metadata settings.
    pub common: CommonConfig,
    /// `acks` (alias `request.required.acks`): `0`, `1`, `all`/`-1`; default `all`.
    pub acks: Acks,
    /// `linger.ms` (alias `queue.buffering.max.ms`), default 5, at most 900000.
    pub linger: Duration,
    /// `batch.size`, default 16384 (Java's; librdkafka's is 1000000), at least 1; capped at
    /// `max.request.size` (a batch never needs more than one request).
    pub batch_size: usize,
    /// `batch.num.messages` (librdkafka), default 10000: most records per batch.
    pub batch_num_messages: usize,
    /// `buffer.memory`, default 33554432; or `queue.buffering.max.kbytes` × 1024.
    pub buffer_memory: usize,
    /// `queue.buffering.max.messages` (librdkafka), default 100000 as in librdkafka: cap on
    /// buffered records (sent records count until acknowledged); `None` when set to 0.
    pub queue_buffering_max_messages: Option<usize>,
    /// `max.block.ms`, default 60000.
    pub max_block: Duration,
    /// `max.request.size` (alias `message.max.bytes`), default 1048576 as in Java: the
    /// largest Produce request (a request's batches, over all its partitions, fit in it; its
    /// first batch always goes), and so also the largest record. With `batch.size` near it
    /// every request carries one batch; raising it lets one request carry several
    /// partitions' batches (fewer requests for the broker to handle).
    pub max_request_size: usize,
    /// `compression.type` (alias `compression.codec`), default `none`.
    pub compression: Compression,
    /// `compression.level`: `None` when unset or -1 (codec default). Checked against the
    /// codec: gzip 0..=9, lz4 0..=12, zstd -131072..=22, snappy none.
    pub compression_level: Option<i32>,
    /// `enable.idempotence`, default `true`; turned off when only defaulted and
    /// `acks`/`max.in.flight.requests.per.connection`/`retries` are incompatible.
    pub enable_idempotence: bool,
    /// `max.in.flight.requests.per.connection` (alias `max.in.flight`), default 5, at least 1.
    pub max_in_flight: usize,
    /// `retries` (alias `message.send.max.retries`), default 2147483647.
    pub retries: u32,
    /// `delivery.timeout.ms` (alias `message.timeout.ms`), default 120000.
    pub delivery_timeout: Duration,
    /// `partitioner` (alias `partitioner.class`); default: see [`PartitionerKind`].
    pub partitioner: PartitionerKind,
    /// `sticky.partitioning.linger.ms` (librdkafka), default 10.
    pub sticky_partitioning_linger: Duration,
    /// `transactional.id`; when set, idempotence is on.
    pub transactional_id: Option<String>,
    /// `transaction.timeout.ms`, default 60000.
    pub transaction_timeout: Duration,
    /// `partitioner.ignore.keys`, default `false`.
    pub partitioner_ignore_keys: bool,
    /// `partitioner.adaptive.partitioning.enable`, default `true`.
    pub partitioner_adaptive: bool,
    /// `partitioner.availability.timeout.ms`, default 0 (off).
    pub partitioner_availability_timeout: Duration,
}

/// Java's limit on in-flight requests for the idempotent producer.
const MAX_IN_FLIGHT_FOR_IDEMPOTENCE: usize = 5;

impl ProducerConfig {
    pub(crate) fn from_resolved(r: &Resolved) -> Result<ProducerConfig> {
        let common = CommonConfig::from_resolved(r)?;
        let acks = r.get(ACKS);
        let compression = r.get(COMPRESSION_TYPE);
        codec_built(r, compression)?;
        let partitioner = r.get(PARTITIONER);
        let compression_level = compression_level(r, compression)?;
        let max_in_flight = r.get(MAX_IN_FLIGHT_REQUESTS_PER_CONNECTION);
        let retries = r.get(RETRIES);
        let transactional_id = r.get(TRANSACTIONAL_ID);
        let enable_idempotence =
            idempotence(r, acks, max_in_flight, retries, transactional_id.is_some())?;

        let linger = r.get(LINGER_MS);
        let delivery_timeout = delivery_timeout(r, linger, common.request_timeout)?;

        let batch_size = r.get(BATCH_SIZE);
        let buffer_memory = buffer_memory(r)?;
        if buffer_memory < batch_size {
            tracing::warn!(
                buffer_memory,
                batch_size,
                "`buffer.memory` is smaller than `batch.size`: batches will never fill"
            );
        }
        let queue_buffering_max_messages = Some(r.get(QUEUE_BUFFERING_MAX_MESSAGES))
            .filter(|&n| n > 0)
            .map(|n| usize::try_from(n).unwrap_or(usize::MAX));

        let max_request_size = r.get(MAX_REQUEST_SIZE);
        Ok(ProducerConfig {
            acks,
            linger,
            batch_size: batch_size.min(max_request_size),
            batch_num_messages: r.get(BATCH_NUM_MESSAGES),
            buffer_memory,
            queue_buffering_max_messages,
            max_block: r.get(MAX_BLOCK_MS),
            max_request_size,
            compression,
            compression_level,
            enable_idempotence,
            max_in_flight,
            retries,
            delivery_timeout,
            partitioner,
            sticky_partitioning_linger: r.get(STICKY_PARTITIONING_LINGER_MS),
            transactional_id,
            transaction_timeout: r.get(TRANSACTION_TIMEOUT_MS),
            partitioner_ignore_keys: r.get(PARTITIONER_IGNORE_KEYS),
            partitioner_adaptive: r.get(PARTITIONER_ADAPTIVE_PARTITIONING_ENABLE),
            partitioner_availability_timeout: r.get(PARTITIONER_AVAILABILITY_TIMEOUT_MS),
            common,
        })
    }
}

/// Refuses a `compression.type` whose codec's crate feature (same name as the codec) is off
/// in this build.
fn codec_built(r: &Resolved, codec: Compression) -> Result<()> {
    let (name, built) = match codec {
        Compression::None => return Ok(()),
        Compression::Gzip => ("gzip", cfg!(feature = "gzip")),
        Compression::Snappy => ("snappy", cfg!(feature = "snappy")),
        Compression::Lz4 => ("lz4", cfg!(feature = "lz4")),
        Compression::Zstd => ("zstd", cfg!(feature = "zstd")),
    };
    if built {
        return Ok(());
    }
    Err(ConfigError::NotSupported {
        key: r.spelling(COMPRESSION_TYPE).to_string(),
        detail: Some(format!(
            "codec `{name}` needs kafka-sdk's `{name}` feature, which this build does not enable"
        )),
    }
    .into())
}

fn compression_level(r: &Resolved, codec: Compression) -> Result<Option<i32>> {
    let level = r.get(COMPRESSION_LEVEL);
    if level == -1 {
        return Ok(None);
    }
    let (range, allowed): (std::ops::RangeInclusive<i64>, &str) = match codec {
        Compression::None => {
            tracing::debug!(level, "`compression.level` ignored: compression is none");
            return Ok(None);
        }
        Compression::Gzip => (0..=9, "-1 or 0..=9 for gzip"),
        Compression::Lz4 => (0..=12, "-1 or 0..=12 for lz4"),
        Compression::Zstd => (-131_072..=22, "-131072..=22 for zstd"),
        Compression::Snappy => (-1..=-1, "-1 for snappy (it has no levels)"),
    };
    if range.contains(&level) {
        // The table range (-131072..=22) makes the cast lossless.
        Ok(Some(level as i32))
    } else {
        Err(ConfigError::InvalidValue {
            key: r.spelling(COMPRESSION_LEVEL).to_string(),
            value: level.to_string(),
            expected: format!(
                "{allowed} (`{}` is {codec:?})",
                r.spelling(COMPRESSION_TYPE)
            ),
        }
        .into())
    }
}

/// The Java producer's idempotence rules (`ProducerConfig.postProcessAndValidateIdempotence`).
fn idempotence(
    r: &Resolved,
    acks: Acks,
    max_in_flight: usize,
    retries: u32,
    transactional: bool,
) -> Result<bool> {
    let explicit = r.is_explicit(ENABLE_IDEMPOTENCE);
    let mut enabled = r.get(ENABLE_IDEMPOTENCE);
    let mut blockers = Vec::new();
    if enabled {
        if acks != Acks::All {
            blockers.push(format!(
                "`{}` must be all (-1), got {}",
                r.spelling(ACKS),
                acks.as_i16()
            ));
        }
        if max_in_flight > MAX_IN_FLIGHT_FOR_IDEMPOTENCE {
            blockers.push(format!(
                "`{}` must be <= {MAX_IN_FLIGHT_FOR_IDEMPOTENCE}, got {max_in_flight}",
                r.spelling(MAX_IN_FLIGHT_REQUESTS_PER_CONNECTION)
            ));
        }
        if retries == 0 {
            blockers.push(format!("`{}` must be > 0, got 0", r.spelling(RETRIES)));
        }
        if !blockers.is_empty() {
            if explicit {
                return Err(ConfigError::Conflict(format!(
                    "`enable.idempotence` = true: {}",
                    blockers.join("; ")
                ))
                .into());
            }
            tracing::info!(
                "idempotence disabled because {} (set `enable.idempotence` explicitly to get \
                 an error instead)",
                blockers.join("; ")
            );
            enabled = false;
        }
    }
    if transactional && !enabled {
        let why = if explicit {
            "`enable.idempotence` = false".to_string()
        } else {
            blockers.join("; ")
        };
        return Err(ConfigError::Conflict(format!(
            "`transactional.id` requires idempotence, which is off: {why}"
        ))
        .into());
    }
    Ok(enabled)
}

/// Java: `delivery.timeout.ms` >= `linger.ms` + `request.timeout.ms`; an explicit value below
/// is an error, a defaulted one is raised. The librdkafka spelling `message.timeout.ms` keeps
/// librdkafka's meaning (a hard bound unrelated to the request timeout) and is taken as is.
fn delivery_timeout(r: &Resolved, linger: Duration, request_timeout: Duration) -> Result<Duration> {
    let delivery = r.get(DELIVERY_TIMEOUT_MS);
    let floor = linger + request_timeout;
    if delivery >= floor {
        return Ok(delivery);
    }
    if !r.is_explicit(DELIVERY_TIMEOUT_MS) {
        tracing::info!(
            "`delivery.timeout.ms` raised from its default {}ms to `linger.ms` + \
             `request.timeout.ms` = {}ms",
            delivery.as_millis(),
            floor.as_millis()
        );
        return Ok(floor);
    }
    if r.spelling(DELIVERY_TIMEOUT_MS) == "message.timeout.ms" {
        tracing::info!(
            "`message.timeout.ms` ({}ms) is below `linger.ms` + `request.timeout.ms` ({}ms): \
             records may expire before their request times out (librdkafka semantics)",
            delivery.as_millis(),
            floor.as_millis()
        );
        return Ok(delivery);
    }
    Err(ConfigError::Conflict(format!(
        "`delivery.timeout.ms` ({}) must be >= `{}` ({}) + `{}` ({})",
        delivery.as_millis(),
        r.spelling(LINGER_MS),
        linger.as_millis(),
        r.spelling(REQUEST_TIMEOUT_MS),
        request_timeout.as_millis()
    ))
    .into())
}

/// `buffer.memory`, or `queue.buffering.max.kbytes` × 1024; both set and different: conflict.
fn buffer_memory(r: &Resolved) -> Result<usize> {
    let bytes = r.get(BUFFER_MEMORY);
    let Some(kib) = r.get(QUEUE_BUFFERING_MAX_KBYTES) else {
        return Ok(usize::try_from(bytes).unwrap_or(usize::MAX));
    };
    let from_kib = kib * 1024;
    if r.is_explicit(BUFFER_MEMORY) && bytes != from_kib {
        return Err(ConfigError::Conflict(format!(
            "`buffer.memory` ({bytes}) and `queue.buffering.max.kbytes` ({kib} KiB = \
             {from_kib} bytes) disagree"
        ))
        .into());
    }
    Ok(usize::try_from(from_kib).unwrap_or(usize::MAX))
}
