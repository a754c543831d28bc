//! Partitioners: which partition a record goes to.
//!
//! A [`Partitioner`] either names a partition or returns `None` ("no preference"), in which
//! case the producer applies uniform sticky partitioning (KIP-794) to the record.
//!
//! The built-in partitioners follow librdkafka's `partitioner` names and behaviour; keyed
//! records hash exactly as librdkafka (and, for murmur2, the Java client) do, so records
//! with the same key land on the same partition whichever client wrote them:
//!
//! | name | keyed record | empty key | null key |
//! |------|--------------|-----------|----------|
//! | `murmur2` (default, Java-compatible) | murmur2 | murmur2 of empty | sticky |
//! | `murmur2_random` | murmur2 | murmur2 of empty | sticky |
//! | `consistent` | CRC32 | CRC32 of empty (partition 0) | sticky |
//! | `consistent_random` | CRC32 | sticky | sticky |
//! | `fnv1a` | FNV-1a | FNV-1a of empty | sticky |
//! | `fnv1a_random` | FNV-1a | FNV-1a of empty | sticky |
//! | `random` | random | random | random |
//! | `round_robin` | next partition of the topic | same | same |
//!
//! Null keys go to the sticky partition for every hashing partitioner, as in librdkafka
//! (whose documentation still describes the older "single partition" / "random" placement
//! of null keys; its code has routed them to the sticky partitioner since sticky
//! partitioning was introduced). `murmur2` and `murmur2_random` therefore behave the same
//! here, and so do `fnv1a` and `fnv1a_random`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, RwLock};

/// Chooses the partition of a record.
pub trait Partitioner: Send + Sync + std::fmt::Debug {
    /// Partition for a record of `topic` with `key`, among `partition_count` partitions.
    /// `None` = no preference: the producer then applies uniform sticky partitioning
    /// (KIP-794) for this record.
    fn partition(&self, topic: &str, key: Option<&[u8]>, partition_count: i32) -> Option<i32>;
}

/// The built-in partitioners (librdkafka's `partitioner` values).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum BuiltinPartitioner {
    /// Java-compatible murmur2 of the key (empty keys hashed); null keys sticky. The default.
    #[default]
    Murmur2,
    /// murmur2 of the key; null keys sticky.
    Murmur2Random,
    /// CRC32 of the key (empty key: partition 0); null keys sticky.
    Consistent,
    /// CRC32 of the key; empty and null keys sticky.
    ConsistentRandom,
    /// A uniformly random partition for every record, key ignored.
    Random,
    /// Partitions of each topic in turn, key ignored (Java's `RoundRobinPartitioner`).
    RoundRobin,
    /// FNV-1a of the key (librdkafka/Sarama flavour; empty keys hashed); null keys sticky.
    Fnv1a,
    /// FNV-1a of the key; null keys sticky.
    Fnv1aRandom,
}

impl BuiltinPartitioner {
    /// The librdkafka name (`murmur2`, `consistent_random`, ...).
    pub fn name(self) -> &'static str {
        match self {
            BuiltinPartitioner::Murmur2 => "murmur2",
            BuiltinPartitioner::Murmur2Random => "murmur2_random",
            BuiltinPartitioner::Consistent => "consistent",
            BuiltinPartitioner::ConsistentRandom => "consistent_random",
            BuiltinPartitioner::Random => "random",
            BuiltinPartitioner::RoundRobin => "round_robin",
            BuiltinPartitioner::Fnv1a => "fnv1a",
            BuiltinPartitioner::Fnv1aRandom => "fnv1a_random",
        }
    }
}

/// A shareable instance of a built-in partitioner.
pub fn builtin(kind: BuiltinPartitioner) -> Arc<dyn Partitioner> {
    match kind {
        BuiltinPartitioner::RoundRobin => Arc::new(RoundRobinPartitioner::default()),
        kind => Arc::new(HashPartitioner { kind }),
    }
}

/// Java's partition for a key: `toPositive(murmur2(key)) % n` (seed `0x9747b28c`).
///
/// # Panics
/// When `n <= 0`.
pub fn murmur2_partition(key: &[u8], n: i32) -> i32 {
    assert!(n > 0, "partition count must be positive, got {n}");
    ((murmur2::murmur2(key, murmur2::KAFKA_SEED) as i32) & 0x7fff_ffff) % n
}

/// librdkafka's `consistent` partition: IEEE CRC32 of the key modulo `n`, in unsigned
/// arithmetic.
///
/// # Panics
/// When `n <= 0`.
pub fn crc32_partition(key: &[u8], n: i32) -> i32 {
    assert!(n > 0, "partition count must be positive, got {n}");
    (crc32fast::hash(key) % n as u32) as i32
}

/// librdkafka's 32-bit FNV-1a hash, made to match Sarama's hash partitioner: FNV-1a over the
/// bytes (offset basis 2166136261, prime 16777619), then the absolute value of the hash read
/// as a signed 32-bit integer (`i32::MIN` stays as is).
pub fn fnv1a_hash(key: &[u8]) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for &b in key {
        h ^= b as u32;
        h = h.wrapping_mul(0x0100_0193);
    }
    (h as i32).wrapping_abs() as u32
}

/// librdkafka's `fnv1a` partition: [`fnv1a_hash`] modulo `n`, in unsigned arithmetic.
///
/// # Panics
/// When `n <= 0`.
pub fn fnv1a_partition(key: &[u8], n: i32) -> i32 {
    assert!(n > 0, "partition count must be positive, got {n}");
    (fnv1a_hash(key) % n as u32) as i32
}

/// The stateless built-in partitioners.
#[derive(Debug)]
struct HashPartitioner {
    kind: BuiltinPartitioner,
}

impl Partitioner for HashPartitioner {
    fn partition(&self, _topic: &str, key: Option<&[u8]>, n: i32) -> Option<i32> {
        if n <= 0 {
            return None;
        }
        match (self.kind, key) {
            (BuiltinPartitioner::Random, _) => Some(fastrand::i32(0..n)),
            (_, None) => None,
            (BuiltinPartitioner::Murmur2 | BuiltinPartitioner::Murmur2Random, Some(k)) => {
                Some(murmur2_partition(k, n))
            }
            (BuiltinPartitioner::Consistent, Some(k)) => Some(crc32_partition(k, n)),
            (BuiltinPartitioner::ConsistentRandom, Some(k)) => {
                (!k.is_empty()).then(|| crc32_partition(k, n))
            }
            (BuiltinPartitioner::Fnv1a | BuiltinPartitioner::Fnv1aRandom, Some(k)) => {
                Some(fnv1a_partition(k, n))
            }
            (BuiltinPartitioner::RoundRobin, Some(_)) => {
                unreachable!("round robin has its own type")
            }
        }
    }
}

/// Java's `RoundRobinPartitioner`: one counter per topic, key ignored.
#[derive(Debug, Default)]
struct RoundRobinPartitioner {
    counters: RwLock<HashMap<String, Arc<AtomicU32>>>,
}

impl RoundRobinPartitioner {
    fn next(&self, topic: &str) -> u32 {
        if let Some(c) = self
            .counters
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(topic)
        {
            return c.fetch_add(1, Ordering::Relaxed);
        }
        let counter = self
            .counters
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .entry(topic.to_owned())
            .or_default()
            .clone();
        counter.fetch_add(1, Ordering::Relaxed)
    }
}

impl Partitioner for RoundRobinPartitioner {
    fn partition(&self, topic: &str, _key: Option<&[u8]>, n: i32) -> Option<i32> {
        if n <= 0 {
            return None;
        }
        // Java: toPositive(counter.getAndIncrement()) % n.
        Some(((self.next(topic) & 0x7fff_ffff) % n as u32) as i32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [BuiltinPartitioner; 8] = [
        BuiltinPartitioner::Murmur2,
        BuiltinPartitioner::Murmur2Random,
        BuiltinPartitioner::Consistent,
        BuiltinPartitioner::ConsistentRandom,
        BuiltinPartitioner::Random,
        BuiltinPartitioner::RoundRobin,
        BuiltinPartitioner::Fnv1a,
        BuiltinPartitioner::Fnv1aRandom,
    ];

    #[test]
    fn murmur2_java_vectors() {
        // Java's UtilsTest.testMurmur2.
        let cases: &[(&[u8], i32)] = &[
            (b"21", -973932308),
            (b"foobar", -790332482),
            (b"a-little-bit-long-string", -985981536),
            (b"a-little-bit-longer-string", -1486304829),
            (
                b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8",
                -58897971,
            ),
            (b"abc", 479470107),
        ];
        for &(key, hash) in cases {
            assert_eq!(murmur2::murmur2(key, murmur2::KAFKA_SEED) as i32, hash);
            for n in [1, 3, 7, 100, 1000] {
                assert_eq!(murmur2_partition(key, n), (hash & 0x7fff_ffff) % n);
            }
        }
        assert_eq!(murmur2_partition(b"21", 100), 40);
        assert_eq!(murmur2_partition(b"foobar", 100), 66);
        assert_eq!(murmur2_partition(b"21", 3), 0);
    }

    #[test]
    fn crc32_vectors() {
        assert_eq!(crc32fast::hash(b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32_partition(b"123456789", 10), 2);
        // CRC32 above i32::MAX: unsigned modulo, never negative.
        assert_eq!(
            crc32_partition(b"123456789", 7),
            (0xCBF4_3926u32 % 7) as i32
        );
        assert_eq!(crc32_partition(b"", 7), 0);
    }

    #[test]
    fn fnv1a_vectors() {
        // Values of librdkafka's rd_fnv1a unit test (Go's hash/fnv + absolute value).
        let cases: &[(&str, u32)] = &[
            ("kafka", 0x0d33c4e1),
            ("giberish123456789", 0x77a58295),
            ("1234", 0x023bdd03),
            ("234", 0x2dea3cd2),
            ("34", 0x740fa83e),
            ("4", 0x310ca263),
            ("PreAmbleWillBeRemoved,ThePrePartThatIs", 0x65cbd69c),
            ("reAmbleWillBeRemoved,ThePrePartThatIs", 0x6e49c79a),
            ("eAmbleWillBeRemoved,ThePrePartThatIs", 0x69eed356),
            ("AmbleWillBeRemoved,ThePrePartThatIs", 0x6abcc023),
            ("", 0x7ee3623b),
        ];
        for &(key, hash) in cases {
            assert_eq!(fnv1a_hash(key.as_bytes()), hash, "{key:?}");
            assert_eq!(fnv1a_partition(key.as_bytes(), 10), (hash % 10) as i32);
        }
        // Plain FNV-1a of "a" is 0xe40c292c (negative as i32): librdkafka negates it.
        assert_eq!(
            fnv1a_hash(b"a"),
            (0xe40c292cu32 as i32).wrapping_neg() as u32
        );
    }

    #[test]
    fn null_and_empty_keys() {
        let n = 12;
        let p = |k: BuiltinPartitioner, key: Option<&[u8]>| builtin(k).partition("t", key, n);
        use BuiltinPartitioner::*;
        for k in [
            Murmur2,
            Murmur2Random,
            Consistent,
            ConsistentRandom,
            Fnv1a,
            Fnv1aRandom,
        ] {
            assert_eq!(p(k, None), None, "{}", k.name());
        }
        assert_eq!(p(Murmur2, Some(b"")), Some(murmur2_partition(b"", n)));
        assert_eq!(p(Murmur2Random, Some(b"")), Some(murmur2_partition(b"", n)));
        assert_eq!(p(Consistent, Some(b"")), Some(0));
        assert_eq!(p(ConsistentRandom, Some(b"")), None);
        assert_eq!(p(Fnv1a, Some(b"")), Some((0x7ee3623bu32 % 12) as i32));
        assert_eq!(p(Fnv1aRandom, Some(b"")), Some((0x7ee3623bu32 % 12) as i32));
        assert!(p(Random, None).is_some());
        assert!(p(RoundRobin, None).is_some());
        // Keyed records.
        assert_eq!(p(Murmur2, Some(b"21")), Some(murmur2_partition(b"21", n)));
        assert_eq!(
            p(ConsistentRandom, Some(b"k")),
            Some(crc32_partition(b"k", n))
        );
        assert_eq!(p(Fnv1aRandom, Some(b"k")), Some(fnv1a_partition(b"k", n)));
        // No partitions: no answer, no panic.
        for k in ALL {
            assert_eq!(builtin(k).partition("t", Some(b"x"), 0), None);
            assert_eq!(builtin(k).partition("t", Some(b"x"), -1), None);
        }
    }

    #[test]
    fn hashing_is_stable_and_in_range() {
        for k in ALL {
            let p = builtin(k);
            for i in 0..500 {
                let key = format!("key-{i}");
                for n in [1, 2, 5, 64] {
                    let got = p.partition("t", Some(key.as_bytes()), n).unwrap();
                    assert!((0..n).contains(&got), "{} {got}", k.name());
                    if !matches!(
                        k,
                        BuiltinPartitioner::Random | BuiltinPartitioner::RoundRobin
                    ) {
                        assert_eq!(p.partition("t", Some(key.as_bytes()), n), Some(got));
                    }
                }
            }
        }
    }

    #[test]
    fn distribution_is_roughly_uniform() {
        let n = 8;
        let draws = 16_000;
        for k in ALL {
            let p = builtin(k);
            let mut counts = vec![0u32; n as usize];
            for i in 0..draws {
                let key = format!("user-{i}");
                counts[p.partition("t", Some(key.as_bytes()), n).unwrap() as usize] += 1;
            }
            let expected = draws / n as u32;
            for &c in &counts {
                assert!(
                    c > expected * 8 / 10 && c < expected * 12 / 10,
                    "{}: {counts:?}",
                    k.name()
                );
            }
        }
    }

    #[test]
    fn round_robin_cycles_per_topic() {
        let p = builtin(BuiltinPartitioner::RoundRobin);
        let a: Vec<i32> = (0..7).map(|_| p.partition("a", None, 3).unwrap()).collect();
        assert_eq!(a, [0, 1, 2, 0, 1, 2, 0]);
        // Another topic has its own counter.
        let b: Vec<i32> = (0..3)
            .map(|_| p.partition("b", Some(b"k"), 5).unwrap())
            .collect();
        assert_eq!(b, [0, 1, 2]);
        assert_eq!(p.partition("a", None, 3), Some(1));
    }

    #[test]
    fn partitioners_are_shareable() {
        fn assert_send_sync<T: Send + Sync>(_: &T) {}
        let p = builtin(BuiltinPartitioner::default());
        assert_send_sync(&p);
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let p = p.clone();
                std::thread::spawn(move || p.partition("t", Some(b"k"), 10))
            })
            .collect();
        let want = Some(murmur2_partition(b"k", 10));
        for h in handles {
            assert_eq!(h.join().unwrap(), want);
        }
        assert_eq!(BuiltinPartitioner::default().name(), "murmur2");
    }
}
