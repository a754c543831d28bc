//! Partitioners: the keyed hash functions (murmur2 = Java's default, CRC32 = librdkafka's
//! `consistent`, FNV-1a) and the built-in `Partitioner` objects as the producer calls them
//! (trait object, topic name, key), on 1,000 realistic keys (`user-<id>` / UUID-like).
//!
//! `cargo bench --bench partitioner`. Throughput is in keys.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use kafka_sdk::producer::partitioner::{
    builtin, crc32_partition, fnv1a_partition, murmur2_partition, PartitionerKind,
};
use std::hint::black_box;

const PARTITIONS: i32 = 12;

/// A keyed partition function: `(key, partition count) -> partition`.
type PartitionFn = fn(&[u8], i32) -> i32;

/// 1,000 keys: half short user ids, half 36-byte UUID-like strings (deterministic).
fn keys() -> Vec<Vec<u8>> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..1000)
        .map(|i| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            if i % 2 == 0 {
                format!("user-{}", x % 10_000_000).into_bytes()
            } else {
                let h = format!("{x:016x}{:016x}", x.rotate_left(29));
                format!(
                    "{}-{}-{}-{}-{}",
                    &h[0..8],
                    &h[8..12],
                    &h[12..16],
                    &h[16..20],
                    &h[20..32]
                )
                .into_bytes()
            }
        })
        .collect()
}

fn hashes(c: &mut Criterion) {
    let keys = keys();
    let mut g = c.benchmark_group("partitioner/hash");
    g.throughput(Throughput::Elements(keys.len() as u64));
    let fns: [(&str, PartitionFn); 3] = [
        ("murmur2", murmur2_partition),
        ("crc32", crc32_partition),
        ("fnv1a", fnv1a_partition),
    ];
    for (name, f) in fns {
        g.bench_function(name, |b| {
            b.iter(|| {
                keys.iter()
                    .map(|k| f(black_box(k), PARTITIONS) as i64)
                    .sum::<i64>()
            })
        });
    }
    g.finish();
}

fn builtins(c: &mut Criterion) {
    let keys = keys();
    let mut g = c.benchmark_group("partitioner/builtin");
    g.throughput(Throughput::Elements(keys.len() as u64));
    for kind in [
        PartitionerKind::Murmur2,
        PartitionerKind::Consistent,
        PartitionerKind::Fnv1a,
        PartitionerKind::Random,
        PartitionerKind::RoundRobin,
    ] {
        let p = builtin(kind);
        g.bench_function(format!("{}/keyed", kind.name()), |b| {
            b.iter(|| {
                keys.iter()
                    .map(|k| {
                        p.partition("events", Some(black_box(k)), PARTITIONS)
                            .unwrap_or(-1) as i64
                    })
                    .sum::<i64>()
            })
        });
    }
    // Key-less records: the default partitioner answers "no preference" (sticky partitioning).
    let p = builtin(PartitionerKind::Murmur2Random);
    g.bench_function("murmur2_random/null-key", |b| {
        b.iter(|| {
            (0..keys.len())
                .map(|_| {
                    p.partition("events", black_box(None), PARTITIONS)
                        .unwrap_or(-1) as i64
                })
                .sum::<i64>()
        })
    });
    g.finish();
}

criterion_group!(benches, hashes, builtins);
criterion_main!(benches);
