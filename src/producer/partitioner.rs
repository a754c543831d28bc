//! Partitioners: which partition a record goes to.
//!
//! A [`Partitioner`] either names a partition or returns `None` ("no preference"), in which
//! case the producer applies uniform sticky partitioning (KIP-794) to the record: one
//! partition (with a known leader) until `batch.size` bytes went to it, then another.
//!
//! The built-in partitioners are named by [`PartitionerKind`] (the `partitioner` key); its
//! docs have the table of what each name does with keyed, empty-key and NULL-key records.
//! In short, following librdkafka's CONFIGURATION.md: `murmur2`, `consistent` and `fnv1a`
//! send NULL-key records to a single partition (the hash of the empty key);
//! `murmur2_random` (the default, Java's behaviour), `consistent_random` and `fnv1a_random`
//! send them to the sticky partition; `consistent_random` also treats an empty key as
//! NULL (as librdkafka does); `random` picks a random partition for every record and
//! `round_robin` the topic's next one.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, RwLock};

pub use crate::config::PartitionerKind;

/// Chooses the partition of a record.
pub trait Partitioner: Send + Sync + std::fmt::Debug {
    /// Partition for a record of `topic` with `key`, among `partition_count` partitions.
    /// `None` = no preference: the producer then applies uniform sticky partitioning
    /// (KIP-794) for this record.
    fn partition(&self, topic: &str, key: Option<&[u8]>, partition_count: i32) -> Option<i32>;
}

/// A shareable instance of a built-in partitioner.
pub fn builtin(kind: PartitionerKind) -> Arc<dyn Partitioner> {
    match kind {
        PartitionerKind::RoundRobin => Arc::new(RoundRobinPartitioner::default()),
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
    kind: PartitionerKind,
}

impl Partitioner for HashPartitioner {
    #[inline]
    fn partition(&self, _topic: &str, key: Option<&[u8]>, n: i32) -> Option<i32> {
        use PartitionerKind as K;
        if n <= 0 {
            return None;
        }
        match (self.kind, key) {
            (K::Random, _) => Some(fastrand::i32(0..n)),
            // `_random` names: NULL keys (and, for consistent_random, empty keys) sticky.
            (K::Murmur2Random | K::ConsistentRandom | K::Fnv1aRandom, None) => None,
            (K::ConsistentRandom, Some([])) => None,
            // Other hashing names: a NULL key hashes as the empty key (one partition).
            (K::Murmur2 | K::Murmur2Random, k) => Some(murmur2_partition(k.unwrap_or(&[]), n)),
            (K::Consistent | K::ConsistentRandom, k) => Some(crc32_partition(k.unwrap_or(&[]), n)),
            (K::Fnv1a | K::Fnv1aRandom, k) => Some(fnv1a_partition(k.unwrap_or(&[]), n)),
            (K::RoundRobin, _) => unreachable!("round robin has its own type"),
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
    use std::collections::HashSet;

    use super::*;

    const ALL: [PartitionerKind; 8] = PartitionerKind::ALL;

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

    /// What a name does with a record: `Some(p)` = always partition `p` for this key,
    /// `None` = the sticky partition.
    fn answers(k: PartitionerKind, key: Option<&[u8]>, n: i32) -> HashSet<Option<i32>> {
        let p = builtin(k);
        (0..200).map(|_| p.partition("t", key, n)).collect()
    }

    #[test]
    fn null_keys_one_partition_or_sticky_per_name() {
        use PartitionerKind::*;
        let n = 12;
        let one = |k, want: i32| {
            assert_eq!(answers(k, None, n), HashSet::from([Some(want)]), "{k}");
        };
        // librdkafka: "NULL keys are mapped to single partition" = the hash of the empty key.
        one(Murmur2, murmur2_partition(b"", n));
        one(Consistent, 0);
        assert_eq!(crc32_partition(b"", n), 0);
        one(Fnv1a, (0x7ee3623bu32 % 12) as i32);
        // "NULL keys are randomly partitioned": uniform sticky (the producer's choice).
        for k in [Murmur2Random, ConsistentRandom, Fnv1aRandom] {
            assert_eq!(answers(k, None, n), HashSet::from([None]), "{k}");
        }
        // random: a random partition per record, spread over all of them.
        let r = answers(Random, None, n);
        assert!(r.len() > n as usize / 2 && !r.contains(&None), "{r:?}");
        // round_robin: the next partition each time.
        let rr = answers(RoundRobin, None, n);
        assert_eq!(rr, (0..n).map(Some).collect::<HashSet<_>>());
    }

    #[test]
    fn empty_keys_per_name() {
        use PartitionerKind::*;
        let n = 12;
        let e: Option<&[u8]> = Some(b"");
        let one = |k, want: i32| {
            assert_eq!(answers(k, e, n), HashSet::from([Some(want)]), "{k}");
        };
        // An empty key is a key: hashed, except by consistent_random (librdkafka checks the
        // key length there, the key pointer in murmur2_random and fnv1a_random).
        one(Murmur2, murmur2_partition(b"", n));
        one(Murmur2Random, murmur2_partition(b"", n));
        one(Consistent, 0);
        one(Fnv1a, (0x7ee3623bu32 % 12) as i32);
        one(Fnv1aRandom, (0x7ee3623bu32 % 12) as i32);
        assert_eq!(answers(ConsistentRandom, e, n), HashSet::from([None]));
        assert!(answers(Random, e, n).len() > n as usize / 2);
    }

    #[test]
    fn keyed_records_per_name() {
        use PartitionerKind::*;
        for n in [1, 3, 12, 100] {
            for i in 0..300 {
                let key = format!("user-{i}");
                let k = Some(key.as_bytes());
                let one = |kind: PartitionerKind, want: i32| {
                    assert_eq!(
                        builtin(kind).partition("t", k, n),
                        Some(want),
                        "{kind} {key}"
                    );
                };
                one(Murmur2, murmur2_partition(key.as_bytes(), n));
                one(Murmur2Random, murmur2_partition(key.as_bytes(), n));
                one(Consistent, crc32_partition(key.as_bytes(), n));
                one(ConsistentRandom, crc32_partition(key.as_bytes(), n));
                one(Fnv1a, fnv1a_partition(key.as_bytes(), n));
                one(Fnv1aRandom, fnv1a_partition(key.as_bytes(), n));
            }
        }
        // Keys are ignored by random and round_robin.
        let keyed: HashSet<Option<i32>> = (0..200)
            .map(|_| builtin(Random).partition("t", Some(b"k"), 12))
            .collect();
        assert!(keyed.len() > 6, "{keyed:?}");
        let rr = builtin(RoundRobin);
        let got: Vec<_> = (0..4).map(|_| rr.partition("t", Some(b"k"), 3)).collect();
        assert_eq!(got, [Some(0), Some(1), Some(2), Some(0)]);
        // No partitions: no answer, no panic.
        for k in ALL {
            for key in [None, Some(&b""[..]), Some(&b"x"[..])] {
                assert_eq!(builtin(k).partition("t", key, 0), None);
                assert_eq!(builtin(k).partition("t", key, -1), None);
            }
        }
    }

    #[test]
    fn names_parse_and_the_default_is_the_key_tables() {
        for k in ALL {
            assert_eq!(k.name().parse::<PartitionerKind>().unwrap(), k);
            assert_eq!(
                k.name().to_uppercase().parse::<PartitionerKind>().unwrap(),
                k
            );
            assert_eq!(k.to_string(), k.name());
        }
        assert_eq!(
            "org.apache.kafka.clients.producer.internals.DefaultPartitioner"
                .parse::<PartitionerKind>()
                .unwrap(),
            PartitionerKind::Murmur2Random
        );
        assert_eq!(
            "org.apache.kafka.clients.producer.RoundRobinPartitioner"
                .parse::<PartitionerKind>()
                .unwrap(),
            PartitionerKind::RoundRobin
        );
        assert!("murmur3".parse::<PartitionerKind>().is_err());
        let table = crate::config::keys::lookup("partitioner").unwrap();
        assert_eq!(table.default, Some("murmur2_random"));
        assert_eq!(PartitionerKind::default(), PartitionerKind::Murmur2Random);
        match table.kind {
            crate::config::Kind::Enum { values, .. } => {
                let names: Vec<&str> = values.iter().map(|v| v.name).collect();
                let ours: Vec<&str> = ALL.iter().map(|k| k.name()).collect();
                assert_eq!(names, ours);
            }
            other => panic!("partitioner is {other:?}"),
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
                    if !matches!(k, PartitionerKind::Random | PartitionerKind::RoundRobin) {
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
        let p = builtin(PartitionerKind::RoundRobin);
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
        let p = builtin(PartitionerKind::default());
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
        assert_eq!(PartitionerKind::default().name(), "murmur2_random");
    }
}
