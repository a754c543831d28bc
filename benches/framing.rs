//! Request framing: encoding a Produce request (10 partitions, one ~16 KiB batch each, as the
//! producer's sender builds it) and decoding a Fetch response (10 partitions, one batch of
//! 1,000 x 100 B corpus records each), at the versions kafka-sdk negotiates (v12 for both).
//!
//! `cargo bench --bench framing`.

mod common;

use bytes::{BufMut, Bytes, BytesMut};
use common::{RecordSet, BASE_TS};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use kafka_protocol::messages::fetch_response::FetchResponse;
use kafka_protocol::messages::produce_request::{
    PartitionProduceData, ProduceRequest, TopicProduceData,
};
use kafka_protocol::messages::{ApiKey, TopicName};
use kafka_protocol::protocol::StrBytes;
use kafka_sdk::protocol::{client_versions, decode_response, encode_request};
use kafka_sdk::record::{decode_batches, BatchBuilder, BatchParams, DecodeOptions};
use std::hint::black_box;

const PARTITIONS: i32 = 10;
const TOPIC: &str = "events";

/// A sealed batch of 100 B corpus records filling up to `target` bytes.
fn batch_of_size(target: usize) -> Bytes {
    let values = RecordSet::new(10_000, 100, false).values;
    let mut b = BatchBuilder::new(BASE_TS, target);
    for (i, v) in values.iter().enumerate() {
        let ts = BASE_TS + i as i64;
        if b.size_bytes() + b.next_record_size(ts, None, Some(v), &[]) > target {
            break;
        }
        b.append(ts, None, Some(v), &[]);
    }
    b.seal(&BatchParams::default()).expect("seal")
}

fn produce_request(batch: &Bytes) -> ProduceRequest {
    let partitions = (0..PARTITIONS)
        .map(|p| {
            PartitionProduceData::default()
                .with_index(p)
                .with_records(Some(batch.clone()))
        })
        .collect();
    ProduceRequest::default()
        .with_acks(-1)
        .with_timeout_ms(30_000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(TopicName(StrBytes::from_static_str(TOPIC)))
            .with_partition_data(partitions)])
}

fn produce(c: &mut Criterion) {
    let version = client_versions(ApiKey::Produce).expect("produce").1;
    let batch = batch_of_size(16 * 1024);
    let mut g = c.benchmark_group("framing/produce_request");
    let frame_len = encode_request(&produce_request(&batch), version, "bench")
        .expect("encode")
        .len();
    g.throughput(Throughput::Bytes(frame_len as u64));
    // The request struct is built per iteration, as the sender does (cloning a `Bytes` is a
    // reference-count increment).
    g.bench_function(format!("encode/v{version}/10x16KiB"), |b| {
        b.iter(|| {
            let req = produce_request(&batch);
            black_box(encode_request(&req, version, "bench").expect("encode"))
        })
    });
    g.finish();
}

/// Unsigned varint (compact lengths and tagged-field counts of flexible versions).
fn put_uvarint(buf: &mut BytesMut, mut v: u32) {
    while v >= 0x80 {
        buf.put_u8((v as u8) | 0x80);
        v >>= 7;
    }
    buf.put_u8(v as u8);
}

/// A Fetch v12 response body (response header v1 + message, no size prefix) with
/// `PARTITIONS` partitions of one batch each, written by hand: kafka-sdk builds
/// kafka-protocol with the `client` feature only, which has no response encoders. The bench
/// decodes it and checks every record, so a mistake here fails loudly.
fn fetch_response_body(version: i16, batch: &Bytes) -> Bytes {
    assert_eq!(version, 12, "hand-written Fetch response layout is v12");
    let mut buf = BytesMut::new();
    buf.put_i32(7); // correlation id
    put_uvarint(&mut buf, 0); // header tagged fields
    buf.put_i32(0); // throttle_time_ms
    buf.put_i16(0); // error_code
    buf.put_i32(0); // session_id
    put_uvarint(&mut buf, 1 + 1); // responses: 1 topic
    put_uvarint(&mut buf, TOPIC.len() as u32 + 1);
    buf.put_slice(TOPIC.as_bytes());
    put_uvarint(&mut buf, PARTITIONS as u32 + 1);
    for p in 0..PARTITIONS {
        buf.put_i32(p); // partition_index
        buf.put_i16(0); // error_code
        buf.put_i64(1_000_000); // high_watermark
        buf.put_i64(1_000_000); // last_stable_offset
        buf.put_i64(0); // log_start_offset
        put_uvarint(&mut buf, 0); // aborted_transactions: null
        buf.put_i32(-1); // preferred_read_replica
        put_uvarint(&mut buf, batch.len() as u32 + 1); // records
        buf.put_slice(batch);
        put_uvarint(&mut buf, 0); // partition tagged fields
    }
    put_uvarint(&mut buf, 0); // topic tagged fields
    put_uvarint(&mut buf, 0); // response tagged fields
    buf.freeze()
}

fn fetch(c: &mut Criterion) {
    let version = client_versions(ApiKey::Fetch).expect("fetch").1;
    let set = RecordSet::new(1000, 100, false);
    let mut b = BatchBuilder::new(BASE_TS, 128 * 1024);
    for (i, v) in set.values.iter().enumerate() {
        b.append(BASE_TS + i as i64, None, Some(v), &[]);
    }
    let batch = b.seal(&BatchParams::default()).expect("seal");
    let body = fetch_response_body(version, &batch);
    let records = PARTITIONS as u64 * set.values.len() as u64;
    let opts = DecodeOptions::default();

    let mut g = c.benchmark_group("framing/fetch_response");
    g.throughput(Throughput::Elements(records));
    // The message only (records stay as shared `Bytes`).
    g.bench_function(format!("decode/v{version}/10x1000x100B/message"), |b| {
        b.iter(|| {
            black_box(
                decode_response::<FetchResponse>(ApiKey::Fetch, version, body.clone())
                    .expect("decode"),
            )
        })
    });
    // Message plus every record batch: the consumer's whole decode path.
    g.bench_function(format!("decode/v{version}/10x1000x100B/records"), |b| {
        b.iter(|| {
            let resp = decode_response::<FetchResponse>(ApiKey::Fetch, version, body.clone())
                .expect("decode");
            let mut n = 0u64;
            for t in resp.responses {
                for p in t.partitions {
                    for batch in decode_batches(p.records.unwrap_or_default(), &opts) {
                        n += batch.expect("batch").records.len() as u64;
                    }
                }
            }
            assert_eq!(n, records);
            n
        })
    });
    g.finish();
}

criterion_group!(benches, produce, fetch);
criterion_main!(benches);
