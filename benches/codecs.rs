//! Compression codecs (gzip, snappy, lz4, zstd; default levels, as the producer uses them)
//! on the shared payload corpus: the uncompressed records section of a batch of
//! 1,000 x 100 B and of 100 x 1 KiB corpus records, i.e. exactly what a producer compresses.
//!
//! `cargo bench --bench codecs`. Throughput is in uncompressed bytes; the compression ratio of
//! each codec is printed once per input (stderr).

mod common;

use bytes::{Bytes, BytesMut};
use common::{RecordSet, BASE_TS};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use kafka_sdk::record::{
    compress, decompress, BatchBuilder, BatchParams, Compression, RECORD_BATCH_OVERHEAD,
};
use std::hint::black_box;

const CODECS: [Compression; 4] = [
    Compression::Gzip,
    Compression::Snappy,
    Compression::Lz4,
    Compression::Zstd,
];

/// The records section (batch minus its 61-byte header) of an uncompressed batch of `set`.
fn records_section(set: &RecordSet) -> Bytes {
    let mut b = BatchBuilder::new(BASE_TS, 0);
    for (i, v) in set.values.iter().enumerate() {
        b.append(BASE_TS + i as i64, None, Some(v), &[]);
    }
    let batch = b.seal(&BatchParams::default()).expect("seal");
    batch.slice(RECORD_BATCH_OVERHEAD..)
}

fn compress_to_vec(codec: Compression, input: &[u8]) -> BytesMut {
    let mut out = BytesMut::with_capacity(input.len() / 2 + 64);
    compress(codec, None, input, &mut out).expect("compress");
    out
}

fn codecs(c: &mut Criterion) {
    for set in [
        RecordSet::new(1000, 100, false),
        RecordSet::new(100, 1024, false),
    ] {
        let input = records_section(&set);
        for codec in CODECS {
            let compressed = compress_to_vec(codec, &input).freeze();
            eprintln!(
                "codecs: {codec} on {} ({} B): {} B compressed, ratio {:.2}",
                set.name,
                input.len(),
                compressed.len(),
                input.len() as f64 / compressed.len() as f64
            );
            let mut g = c.benchmark_group(format!("codec/{codec}"));
            g.throughput(Throughput::Bytes(input.len() as u64));
            g.bench_function(format!("compress/{}", set.name), |b| {
                b.iter(|| black_box(compress_to_vec(codec, &input)))
            });
            let max = input.len();
            g.bench_function(format!("decompress/{}", set.name), |b| {
                b.iter(|| {
                    let out = decompress(codec, &compressed, max).expect("decompress");
                    assert_eq!(out.len(), max);
                    out
                })
            });
            g.finish();
        }
    }
}

criterion_group!(benches, codecs);
criterion_main!(benches);
