//! Record batch v2 encode and decode: kafka-sdk's `BatchBuilder` / `decode_batches` next to
//! kafka-protocol's `RecordBatchEncoder` / `RecordBatchDecoder` (the reference), on
//! 1,000 x 100 B and 100 x 1 KiB corpus records, without and with two headers per record.
//!
//! `cargo bench --bench record` (add `-- --quick` for a fast pass). Throughput is in records.
//! Wall-clock numbers are noisy on a loaded machine; `python3 benches/callgrind.py` counts
//! instructions per record instead (stable under load).

mod common;

use bytes::{Bytes, BytesMut};
use common::{RecordSet, BASE_TS, TRACE_HEADER, TRACE_VALUE, TYPE_HEADER, TYPE_VALUE};
use criterion::{criterion_group, BatchSize, Criterion, Throughput};
use indexmap::IndexMap;
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::{
    Compression as KpCompression, Record as KpRecord, RecordBatchDecoder, RecordBatchEncoder,
    RecordEncodeOptions, TimestampType as KpTimestampType,
};
use kafka_sdk::record::{
    decode_batches, rewrite_producer_state, BatchBuilder, BatchParams, DecodeOptions,
};
use std::hint::black_box;

const HEADERS: [(&str, Option<&[u8]>); 2] = [
    (TRACE_HEADER, Some(TRACE_VALUE)),
    (TYPE_HEADER, Some(TYPE_VALUE)),
];

fn headers_of(set: &RecordSet) -> &'static [(&'static str, Option<&'static [u8]>)] {
    if set.headers {
        &HEADERS
    } else {
        &[]
    }
}

/// Exact encoded size of the set's records (the capacity hint a producer sizing its batch
/// buffer from `batch.size` would give; computed outside the timed loop).
fn records_size(set: &RecordSet) -> usize {
    let h = headers_of(set);
    set.values
        .iter()
        .enumerate()
        .map(|(i, v)| BatchBuilder::record_size(i as i64, i as i32, None, Some(v), h))
        .sum()
}

/// kafka-sdk: append every record, then seal (header + CRC-32C).
fn sdk_encode(set: &RecordSet, hint: usize) -> Bytes {
    let h = headers_of(set);
    let mut b = BatchBuilder::new(BASE_TS, hint);
    for (i, v) in set.values.iter().enumerate() {
        b.append(BASE_TS + i as i64, None, Some(v), h);
    }
    b.seal(&BatchParams::default()).expect("seal")
}

/// The same records as kafka-protocol `Record`s (built outside the timed loop, as a
/// kafka-protocol user holds them).
fn kp_records(set: &RecordSet) -> Vec<KpRecord> {
    set.values
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let mut headers = IndexMap::new();
            for (k, val) in headers_of(set) {
                headers.insert(StrBytes::from_static_str(k), val.map(Bytes::from_static));
            }
            KpRecord {
                transactional: false,
                control: false,
                delete_horizon: false,
                partition_leader_epoch: -1,
                producer_id: -1,
                producer_epoch: -1,
                timestamp_type: KpTimestampType::Creation,
                offset: i as i64,
                // offset - sequence must be constant for one batch; base sequence -1.
                sequence: i as i32 - 1,
                timestamp: BASE_TS + i as i64,
                key: None,
                value: Some(v.clone()),
                headers,
            }
        })
        .collect()
}

fn kp_encode(records: &[KpRecord], cap: usize) -> BytesMut {
    let mut buf = BytesMut::with_capacity(cap);
    RecordBatchEncoder::encode(
        &mut buf,
        records.iter(),
        &RecordEncodeOptions {
            version: 2,
            compression: KpCompression::None,
        },
    )
    .expect("kafka-protocol encode");
    buf
}

fn encode(c: &mut Criterion) {
    let mut g = c.benchmark_group("record/encode");
    for set in RecordSet::standard() {
        let n = set.values.len();
        let hint = records_size(&set);
        g.throughput(Throughput::Elements(n as u64));
        g.bench_function(format!("kafka-sdk/{}", set.name), |b| {
            b.iter(|| black_box(sdk_encode(&set, hint)))
        });
        let kp = kp_records(&set);
        // Same bytes as ours (both encoders are deterministic for these inputs).
        assert_eq!(
            kp_encode(&kp, hint + 64).len(),
            sdk_encode(&set, hint).len()
        );
        g.bench_function(format!("kafka-protocol/{}", set.name), |b| {
            b.iter(|| black_box(kp_encode(&kp, hint + 64)))
        });
    }
    g.finish();
}

fn decode(c: &mut Criterion) {
    let mut g = c.benchmark_group("record/decode");
    let opts = DecodeOptions::default();
    for set in RecordSet::standard() {
        let n = set.values.len();
        let batch = sdk_encode(&set, records_size(&set));
        g.throughput(Throughput::Elements(n as u64));
        g.bench_function(format!("kafka-sdk/{}", set.name), |b| {
            b.iter(|| {
                let mut records = 0;
                for batch in decode_batches(batch.clone(), &opts) {
                    records += batch.expect("decode").records.len();
                }
                assert_eq!(records, n);
                records
            })
        });
        g.bench_function(format!("kafka-protocol/{}", set.name), |b| {
            b.iter(|| {
                let mut buf = batch.clone();
                let set = RecordBatchDecoder::decode(&mut buf).expect("kafka-protocol decode");
                assert_eq!(set.records.len(), n);
                set.records.len()
            })
        });
    }
    g.finish();
}

/// Re-stamping producer id/epoch/sequence of a sealed batch (epoch bumps): a CRC over the
/// whole batch, so it scales with the batch size.
fn rewrite(c: &mut Criterion) {
    let mut g = c.benchmark_group("record/rewrite_producer_state");
    for set in [
        RecordSet::new(1000, 100, false),
        RecordSet::new(100, 1024, false),
    ] {
        let batch = sdk_encode(&set, records_size(&set));
        g.throughput(Throughput::Bytes(batch.len() as u64));
        g.bench_function(format!("kafka-sdk/{}", set.name), |b| {
            b.iter_batched_ref(
                || batch.to_vec(),
                |buf| rewrite_producer_state(buf, 42, 1, 1000).expect("rewrite"),
                BatchSize::SmallInput,
            )
        });
    }
    g.finish();
}

criterion_group!(benches, encode, decode, rewrite);

/// Instruction-count mode for callgrind (`benches/callgrind.py`): with
/// `RECORD_BENCH_CASE=<encode|decode>/<kafka-sdk|kafka-protocol>/<set>` and
/// `RECORD_BENCH_ITERS=<n>`, runs that one case n times without criterion and exits.
/// Instructions per record are the difference of two runs with different n, divided by
/// the extra records, so setup costs cancel out.
fn instruction_count_mode() -> bool {
    let Ok(case) = std::env::var("RECORD_BENCH_CASE") else {
        return false;
    };
    let iters: usize = std::env::var("RECORD_BENCH_ITERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10);
    let mut parts = case.splitn(3, '/');
    let (op, lib, name) = (
        parts.next().unwrap_or(""),
        parts.next().unwrap_or(""),
        parts.next().unwrap_or(""),
    );
    let set = RecordSet::standard()
        .into_iter()
        .find(|s| s.name == name)
        .unwrap_or_else(|| panic!("unknown record set {name:?}"));
    let n = set.values.len();
    let hint = records_size(&set);
    let batch = sdk_encode(&set, hint);
    let kp = kp_records(&set);
    let opts = DecodeOptions::default();
    let mut total = 0usize;
    for _ in 0..iters {
        total += match (op, lib) {
            ("encode", "kafka-sdk") => black_box(sdk_encode(&set, hint)).len(),
            ("encode", "kafka-protocol") => black_box(kp_encode(&kp, hint + 64)).len(),
            ("decode", "kafka-sdk") => decode_batches(black_box(batch.clone()), &opts)
                .map(|b| b.expect("decode").records.len())
                .sum(),
            ("decode", "kafka-protocol") => {
                RecordBatchDecoder::decode(&mut black_box(batch.clone()))
                    .expect("decode")
                    .records
                    .len()
            }
            _ => panic!("unknown case {case:?}"),
        };
    }
    println!("{case}: {iters} iterations x {n} records ({total})");
    true
}

fn main() {
    if instruction_count_mode() {
        return;
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
