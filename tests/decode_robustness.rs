//! Decoder robustness on stable Rust (issue 7, item 3): the cargo-fuzz targets of `fuzz/`
//! run here over their committed seed corpora plus thousands of deterministic mutations
//! (bit flips, truncations, negative and huge length fields, splices), and a fake broker
//! feeds mutated response streams to a real [`Connection`].
//!
//! Properties: no input panics, hangs or makes a huge allocation (watched by the
//! harness's global allocator); decompression never returns more than its cap; whatever
//! decodes survives our own encoders (round trips). See `fuzz/README.md` for the
//! libFuzzer side.

#[path = "../fuzz/src/harness.rs"]
mod harness;

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::{self as m, ApiKey};
use kafka_sdk::connection::{Connection, ConnectionOptions};
use kafka_sdk::consumer::assignor::{Assignment, Subscription};
use kafka_sdk::protocol::{client_versions, decode_response};
use kafka_sdk::record::{
    compress, control_record_type, decode_batches, decompress, BatchBuilder, BatchParams,
    Compression, ControlType, DecodeOptions,
};
use kafka_sdk::TopicPartition;
use proptest::prelude::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use harness::{GuardAlloc, CODECS, MAX_DECOMPRESSED};

#[global_allocator]
static GLOBAL: GuardAlloc = GuardAlloc;

// ---------------------------------------------------------------------------------------
// Seeds and mutations
// ---------------------------------------------------------------------------------------

/// The committed seed corpus of a fuzz target, sorted by file name.
fn corpus(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect();
    out.sort();
    assert!(!out.is_empty(), "empty corpus {}", dir.display());
    out
}

const INTERESTING_I32: [i32; 12] = [
    -1,
    -2,
    i32::MIN,
    i32::MAX,
    i32::MAX - 60,
    0x7fff_fff0,
    0,
    1,
    48,
    49,
    0x0100_0000,
    0x4000_0000,
];
const INTERESTING_I16: [i16; 7] = [-1, -2, i16::MIN, i16::MAX, 0, 1, 0x7f00];
/// Varints: zigzag -1, -2, i32::MIN, i32::MAX, a huge unsigned, and a 10-byte varlong.
const INTERESTING_VARINTS: [&[u8]; 7] = [
    &[0x01],
    &[0x03],
    &[0xff, 0xff, 0xff, 0xff, 0x0f],
    &[0xfe, 0xff, 0xff, 0xff, 0x0f],
    &[0xff, 0xff, 0xff, 0xff, 0x07],
    &[0x80, 0x80, 0x80, 0x80, 0x08],
    &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01],
];

/// One deterministic mutation of `seed` (1-4 stacked edits); bytes before `keep` are only
/// touched rarely (selector bytes of the responses target).
fn mutate(rng: &mut fastrand::Rng, seed: &[u8], keep: usize, others: &[Vec<u8>]) -> Vec<u8> {
    let mut d = seed.to_vec();
    for _ in 0..rng.usize(1..=4) {
        let lo = if rng.u8(..) < 16 {
            0
        } else {
            keep.min(d.len())
        };
        let at = |rng: &mut fastrand::Rng, len: usize| {
            if len > lo {
                rng.usize(lo..len)
            } else {
                lo.min(len)
            }
        };
        match rng.u8(0..11) {
            0 if !d.is_empty() => {
                let i = at(rng, d.len());
                if i < d.len() {
                    d[i] ^= 1 << rng.u8(0..8);
                }
            }
            1 if !d.is_empty() => {
                let i = at(rng, d.len());
                if i < d.len() {
                    let any = rng.u8(..);
                    d[i] = *rng
                        .choice(&[0x00, 0x01, 0x7f, 0x80, 0xfe, 0xff, any])
                        .unwrap();
                }
            }
            2 => {
                let cut = at(rng, d.len() + 1);
                d.truncate(cut);
            }
            3 => {
                let v = *rng.choice(&INTERESTING_I32).unwrap();
                let i = at(rng, d.len());
                overwrite(&mut d, i, &v.to_be_bytes());
            }
            4 => {
                let v = *rng.choice(&INTERESTING_I16).unwrap();
                let i = at(rng, d.len());
                overwrite(&mut d, i, &v.to_be_bytes());
            }
            5 => {
                let v = *rng.choice(&INTERESTING_VARINTS).unwrap();
                let i = at(rng, d.len());
                if rng.bool() {
                    overwrite(&mut d, i, v);
                } else {
                    d.splice(i..i, v.iter().copied());
                }
            }
            6 if d.len() > lo => {
                let a = at(rng, d.len());
                let b = (a + rng.usize(1..=16)).min(d.len());
                d.drain(a..b);
            }
            7 if d.len() > lo => {
                let a = at(rng, d.len());
                let b = (a + rng.usize(1..=32)).min(d.len());
                let chunk = d[a..b].to_vec();
                let i = at(rng, d.len());
                d.splice(i..i, chunk);
            }
            8 => {
                let i = at(rng, d.len());
                let n = rng.usize(1..=8);
                d.splice(i..i, (0..n).map(|_| rng.u8(..)));
            }
            9 if !others.is_empty() => {
                let o = rng.choice(others).unwrap();
                let from = rng.usize(0..=o.len());
                let cut = at(rng, d.len() + 1);
                d.truncate(cut);
                d.extend_from_slice(&o[from..]);
            }
            _ => {
                // Repeat the tail: duplicated batches, frames, array elements.
                if d.len() > lo {
                    let a = at(rng, d.len());
                    let tail = d[a..].to_vec();
                    d.extend_from_slice(&tail);
                }
            }
        }
    }
    d
}

fn overwrite(d: &mut Vec<u8>, at: usize, v: &[u8]) {
    for (i, b) in v.iter().enumerate() {
        match d.get_mut(at + i) {
            Some(x) => *x = *b,
            None => d.push(*b),
        }
    }
}

/// Walks the batches of `data` by their length fields and recomputes each CRC, so that
/// mutations reach past the CRC check.
fn fix_crcs(data: &mut [u8]) {
    let mut pos = 0;
    while data.len() - pos >= 61 {
        let len = i32::from_be_bytes(data[pos + 8..pos + 12].try_into().unwrap());
        if len < 49 {
            return;
        }
        let end = (pos + 12 + len as usize).min(data.len());
        let crc = crc32c::crc32c(&data[pos + 21..end]);
        data[pos + 17..pos + 21].copy_from_slice(&crc.to_be_bytes());
        pos = end;
    }
}

/// Runs `f` over the seeds and `per_seed` mutations of each (deterministic).
fn run_mutations(
    seeds: &[Vec<u8>],
    per_seed: usize,
    keep: usize,
    seed: u64,
    mut post: impl FnMut(&mut fastrand::Rng, &mut Vec<u8>),
    f: impl Fn(&[u8]),
) -> usize {
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut n = 0;
    for s in seeds {
        f(s);
        n += 1;
        for _ in 0..per_seed {
            let mut d = mutate(&mut rng, s, keep, seeds);
            post(&mut rng, &mut d);
            f(&d);
            n += 1;
        }
    }
    n
}

fn seeds_of(target: &str) -> Vec<Vec<u8>> {
    corpus(target).into_iter().map(|(_, d)| d).collect()
}

// ---------------------------------------------------------------------------------------
// Record batches
// ---------------------------------------------------------------------------------------

fn sample_batch(codec: Compression, n: usize, params: BatchParams) -> Bytes {
    let mut b = BatchBuilder::new(1_000, 64);
    for i in 0..n {
        let v = format!("value-{i}");
        b.append(
            1_000 + i as i64,
            Some(format!("k{i}").as_bytes()),
            Some(v.as_bytes()),
            &[("h", Some(b"x".as_slice()))],
        );
    }
    b.seal(&BatchParams {
        compression: codec,
        ..params
    })
    .unwrap()
}

/// A transaction marker (control batch) of producer `pid` at `base_offset`.
fn control_batch(pid: i64, kind: ControlType, base_offset: i64) -> Vec<u8> {
    let mut b = BatchBuilder::new(1_000, 16);
    let key = [0, 0, 0, matches!(kind, ControlType::Commit) as u8];
    b.append(1_000, Some(&key), Some(&[0, 0, 0, 0, 0, 0]), &[]);
    let mut out = b
        .seal(&BatchParams {
            producer_id: pid,
            producer_epoch: 0,
            transactional: true,
            ..BatchParams::default()
        })
        .unwrap()
        .to_vec();
    out[0..8].copy_from_slice(&base_offset.to_be_bytes());
    out[22] |= 1 << 5; // control flag (low byte of the attributes)
    fix_crcs(&mut out);
    out
}

fn record_seeds() -> Vec<Vec<u8>> {
    let mut seeds = seeds_of("record_batches");
    for codec in CODECS {
        seeds.push(sample_batch(codec, 4, BatchParams::default()).to_vec());
    }
    let mut dup = Vec::new();
    dup.extend_from_slice(&sample_batch(Compression::None, 2, BatchParams::default()));
    dup.extend(control_batch(11, ControlType::Abort, 2));
    dup.extend(control_batch(11, ControlType::Abort, 3));
    seeds.push(dup);
    seeds
}

#[test]
fn record_batches_seeds_and_mutations() {
    let seeds = record_seeds();
    let n = run_mutations(
        &seeds,
        600,
        0,
        0x5eed_0001,
        |rng, d| {
            if rng.bool() {
                fix_crcs(d)
            }
        },
        harness::fuzz_record_batches,
    );
    assert!(n > 10_000, "{n}");
}

#[test]
fn record_batch_header_fields_with_negative_and_huge_values() {
    // Every i32 header field, every interesting value, CRC fixed so the field is used.
    for codec in CODECS {
        let base = sample_batch(codec, 3, BatchParams::default()).to_vec();
        for field in [8usize, 12, 23, 53, 57] {
            for v in INTERESTING_I32 {
                let mut d = base.clone();
                d[field..field + 4].copy_from_slice(&v.to_be_bytes());
                fix_crcs(&mut d);
                harness::fuzz_record_batches(&d);
            }
        }
        for attrs in [-1i16, 5, 6, 7, 0x20, 0x27, i16::MIN] {
            let mut d = base.clone();
            d[21..23].copy_from_slice(&attrs.to_be_bytes());
            fix_crcs(&mut d);
            harness::fuzz_record_batches(&d);
        }
    }
}

#[test]
fn record_fields_with_negative_and_huge_varints() {
    // One uncompressed record `len attrs ts_delta offset_delta key value headers`; replace
    // each varint of it in turn by each interesting varint.
    let base = sample_batch(Compression::None, 1, BatchParams::default()).to_vec();
    let rec = &base[61..];
    // Positions of the record's varint fields, found by walking it.
    let mut fields = Vec::new();
    let mut p = 0;
    let varint = |p: &mut usize| {
        let start = *p;
        while rec[*p] & 0x80 != 0 {
            *p += 1;
        }
        *p += 1;
        (start, *p)
    };
    // (field, may a -1 there still decode, may any value there decode)
    fields.push((varint(&mut p), false, false)); // length
    p += 1; // attributes
    fields.push((varint(&mut p), true, true)); // timestamp delta
    fields.push((varint(&mut p), true, true)); // offset delta
    fields.push((varint(&mut p), true, false)); // key length (-1: null)
    p += 2; // "k0"
    fields.push((varint(&mut p), true, false)); // value length (-1: null)
    p += 7; // "value-0"
    fields.push((varint(&mut p), false, false)); // header count
    fields.push((varint(&mut p), false, false)); // header key length (null is invalid)
    p += 1;
    fields.push((varint(&mut p), true, false)); // header value length (-1: null)
    p += 1;
    assert_eq!(p, rec.len(), "walked the whole record");
    for ((a, b), null_ok, any_ok) in fields {
        for v in INTERESTING_VARINTS {
            let mut d = base[..61 + a].to_vec();
            d.extend_from_slice(v);
            d.extend_from_slice(&base[61 + b..]);
            let len = (d.len() - 12) as i32;
            d[8..12].copy_from_slice(&len.to_be_bytes());
            fix_crcs(&mut d);
            harness::fuzz_record_batches(&d);
            let r: Result<Vec<_>, _> =
                decode_batches(Bytes::from(d), &DecodeOptions::default()).collect();
            let may_decode = any_ok || (null_ok && v == [0x01]);
            if !may_decode {
                assert!(r.is_err(), "field {a}..{b} = {v:?} decoded");
            }
        }
    }
}

#[test]
fn duplicate_abort_markers_decode_as_two_control_batches() {
    let mut data = Vec::new();
    let mut txn = sample_batch(
        Compression::Zstd,
        3,
        BatchParams {
            producer_id: 11,
            producer_epoch: 0,
            base_sequence: 0,
            transactional: true,
            ..BatchParams::default()
        },
    )
    .to_vec();
    fix_crcs(&mut txn);
    data.extend(txn);
    data.extend(control_batch(11, ControlType::Abort, 3));
    data.extend(control_batch(11, ControlType::Abort, 4));
    // And an abort marker for a producer that never wrote anything here.
    data.extend(control_batch(99, ControlType::Abort, 5));
    let batches: Vec<_> = decode_batches(Bytes::from(data.clone()), &DecodeOptions::default())
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(batches.len(), 4);
    for b in &batches[1..] {
        assert!(b.is_control() && b.is_transactional());
        assert_eq!(
            control_record_type(b.records[0].key.as_ref().unwrap()),
            Some(ControlType::Abort)
        );
    }
    assert_eq!(batches[1].producer_id, batches[2].producer_id);
    // Control records with short, negative-version or unknown-type keys.
    for key in [
        &[][..],
        &[0, 0, 0],
        &[0xff, 0xff, 0, 0],
        &[0, 0, 0x7f, 0xff],
    ] {
        let mut b = BatchBuilder::new(0, 8);
        b.append(0, Some(key), None, &[]);
        let mut d = b.seal(&BatchParams::default()).unwrap().to_vec();
        d[22] |= 1 << 5;
        fix_crcs(&mut d);
        let batch = decode_batches(Bytes::from(d), &DecodeOptions::default())
            .next()
            .unwrap()
            .unwrap();
        assert_eq!(
            control_record_type(batch.records[0].key.as_ref().unwrap()),
            None
        );
    }
    harness::fuzz_record_batches(&data);
}

// ---------------------------------------------------------------------------------------
// Decompression
// ---------------------------------------------------------------------------------------

#[test]
fn decompress_seeds_and_mutations() {
    let seeds = seeds_of("decompress");
    let n = run_mutations(
        &seeds,
        400,
        1,
        0x5eed_0002,
        |_, _| {},
        harness::fuzz_decompress,
    );
    assert!(n > 6_000, "{n}");
}

#[test]
fn decompression_bombs_stop_at_the_cap() {
    let zeros = vec![0u8; 3 << 20];
    for codec in CODECS {
        let mut packed = BytesMut::new();
        compress(codec, None, &zeros, &mut packed).unwrap();
        for cap in [0, 1, 1000, MAX_DECOMPRESSED, zeros.len() - 1] {
            let r = decompress(codec, &packed, cap);
            assert!(r.is_err(), "{codec} cap {cap}: {} bytes", r.unwrap().len());
        }
        assert_eq!(
            decompress(codec, &packed, zeros.len()).unwrap().len(),
            zeros.len()
        );
        // The same bomb inside a batch: an error, not 3 MiB of records.
        let mut b = BatchBuilder::new(0, 8);
        b.append(0, None, Some(&zeros), &[]);
        let batch = b
            .seal(&BatchParams {
                compression: codec,
                ..BatchParams::default()
            })
            .unwrap();
        let opts = DecodeOptions {
            check_crc: true,
            max_decompressed: MAX_DECOMPRESSED,
        };
        if codec != Compression::None {
            assert!(decode_batches(batch, &opts).next().unwrap().is_err());
        }
    }
}

// ---------------------------------------------------------------------------------------
// Responses
// ---------------------------------------------------------------------------------------

#[test]
fn responses_seeds_decode() {
    for (name, data) in corpus("responses") {
        let (key, version, body) = harness::select_response(&data).unwrap();
        assert!(
            harness::decode_any_response(key, version, Bytes::copy_from_slice(body)),
            "seed {name} does not decode as {key:?} v{version}"
        );
    }
}

#[test]
fn responses_seeds_and_mutations() {
    let seeds = seeds_of("responses");
    let n = run_mutations(
        &seeds,
        120,
        2,
        0x5eed_0003,
        |_, _| {},
        harness::fuzz_responses,
    );
    assert!(n > 15_000, "{n}");
}

#[test]
fn responses_every_truncation() {
    for data in seeds_of("responses") {
        let (key, version, body) = harness::select_response(&data).unwrap();
        for cut in 0..body.len() {
            assert!(
                !harness::decode_any_response(key, version, Bytes::copy_from_slice(&body[..cut])),
                "{key:?} v{version}: a {cut}-byte prefix of a {}-byte response decoded",
                body.len()
            );
        }
    }
}

/// Metadata v12 (flexible) whose `topics` compact array claims u32::MAX - 1 entries, and
/// Metadata v4 whose `brokers` array claims i32::MAX entries, each in a few bytes.
fn oversized_array_responses() -> Vec<(ApiKey, i16, Bytes)> {
    let mut flexible = vec![0, 0, 0, 7, 0]; // correlation id, header tagged fields
    flexible.extend_from_slice(&[0, 0, 0, 0]); // throttle time
    flexible.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0x0f]); // brokers: u32::MAX - 1
    let mut classic = vec![0, 0, 0, 7]; // correlation id
    classic.extend_from_slice(&[0, 0, 0, 0]); // throttle time
    classic.extend_from_slice(&i32::MAX.to_be_bytes()); // brokers
    vec![
        (ApiKey::Metadata, 12, Bytes::from(flexible)),
        (ApiKey::Metadata, 4, Bytes::from(classic)),
    ]
}

#[test]
fn oversized_array_count_is_an_error() {
    for (key, version, body) in oversized_array_responses() {
        let r = decode_response::<m::MetadataResponse>(key, version, body);
        assert!(r.is_err());
    }
}

/// Regression test for the kafka-protocol 0.18.0 decoder pre-allocating arrays from the
/// count on the wire (a few bytes asked for hundreds of GiB: the allocator refused and the
/// process aborted). Fixed by the patched copy in `vendor/kafka-protocol` (PATCHED.md).
#[test]
fn kafka_protocol_array_count_does_not_preallocate() {
    for (key, version, body) in oversized_array_responses() {
        let (_, largest) = harness::largest_allocation(|| {
            decode_response::<m::MetadataResponse>(key, version, body)
        });
        assert!(
            largest < harness::HUGE_ALLOCATION,
            "{key:?} v{version}: a {largest}-byte allocation for a 13-byte response"
        );
    }
}

/// An lz4 frame that declares 4 MiB blocks (as franz-go writes its frames) but carries little
/// data in each block is decoded with room for what its blocks hold, not a whole declared
/// block per block: 2,000 one-byte blocks once made as many 4 MiB zero-fills (8 GB written),
/// and a 4 MiB buffer for one byte of output.
#[test]
#[cfg(feature = "lz4")]
fn lz4_frames_of_large_declared_blocks_take_what_their_data_needs() {
    use std::hash::Hasher;
    // Header: magic, FLG (version 01, independent blocks), BD (4 MiB blocks), checksum.
    let (flg, bd) = (0x60u8, 0x70u8);
    let mut h = twox_hash::XxHash32::with_seed(0);
    h.write(&[flg, bd]);
    let mut frame = vec![0x04, 0x22, 0x4d, 0x18, flg, bd, (h.finish_32() >> 8) as u8];
    // Each block: one literal byte (token 0x10), compressed (high bit of the length clear).
    for _ in 0..2_000 {
        frame.extend_from_slice(&2u32.to_le_bytes());
        frame.extend_from_slice(&[0x10, b'x']);
    }
    frame.extend_from_slice(&0u32.to_le_bytes());
    let (out, largest) =
        harness::largest_allocation(|| decompress(Compression::Lz4, &frame, 1 << 20));
    assert_eq!(&out.unwrap()[..], &b"x".repeat(2_000)[..]);
    assert!(
        largest < 1 << 20,
        "a {largest}-byte allocation for 2,000 bytes of output"
    );
}

// ---------------------------------------------------------------------------------------
// Consumer protocol
// ---------------------------------------------------------------------------------------

#[test]
fn consumer_protocol_seeds_and_mutations() {
    let seeds = seeds_of("consumer_protocol");
    let n = run_mutations(
        &seeds,
        2_000,
        0,
        0x5eed_0004,
        |_, _| {},
        harness::fuzz_consumer_protocol,
    );
    assert!(n > 15_000, "{n}");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn subscription_round_trips(
        topics in proptest::collection::btree_set("[a-zA-Z0-9._-]{1,20}", 0..6),
        owned in proptest::collection::btree_set(("[a-z]{1,5}", 0i32..100), 0..8),
        user_data in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..40)),
        generation_id in any::<i32>(),
        rack in proptest::option::of("[a-z0-9]{1,8}"),
        version in 0i16..=3,
    ) {
        let s = Subscription {
            topics: topics.into_iter().collect(),
            user_data: user_data.map(Bytes::from),
            owned_partitions: owned.into_iter().map(|(t, p)| TopicPartition::new(t, p)).collect(),
            generation_id,
            rack_id: rack,
        };
        let d = Subscription::decode(&s.encode(version)).unwrap();
        let mut topics_back = d.topics.clone();
        topics_back.sort();
        prop_assert_eq!(topics_back, s.topics.clone());
        prop_assert_eq!(&d.user_data, &s.user_data);
        let mut owned_back = d.owned_partitions.clone();
        owned_back.sort();
        if version >= 1 {
            prop_assert_eq!(owned_back, s.owned_partitions.clone());
        } else {
            prop_assert!(owned_back.is_empty());
        }
        prop_assert_eq!(d.generation_id, if version >= 2 { generation_id } else { -1 });
        prop_assert_eq!(d.rack_id, if version >= 3 { s.rack_id } else { None });
    }

    #[test]
    fn assignment_round_trips(
        parts in proptest::collection::vec(("[a-z]{1,5}", 0i32..100), 0..10),
        user_data in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..40)),
        version in 0i16..=3,
    ) {
        let a = Assignment {
            partitions: parts.into_iter().map(|(t, p)| TopicPartition::new(t, p)).collect(),
            user_data: user_data.map(Bytes::from),
        };
        let d = Assignment::decode(&a.encode(version)).unwrap();
        let (mut x, mut y) = (a.partitions.clone(), d.partitions.clone());
        x.sort();
        y.sort();
        prop_assert_eq!(x, y);
        prop_assert_eq!(d.user_data, a.user_data);
    }

    #[test]
    fn compression_round_trips(
        data in proptest::collection::vec(any::<u8>(), 0..3000),
        repeat in 1usize..20,
        codec in proptest::sample::select(CODECS.to_vec()),
    ) {
        let input = data.repeat(repeat);
        let mut packed = BytesMut::new();
        compress(codec, None, &input, &mut packed).unwrap();
        let out = decompress(codec, &packed, input.len()).unwrap();
        prop_assert_eq!(&out[..], &input[..]);
        if !input.is_empty() {
            prop_assert!(decompress(codec, &packed, input.len() - 1).is_err());
        }
    }
}

// ---------------------------------------------------------------------------------------
// Response streams over a socket
// ---------------------------------------------------------------------------------------

static FRAME_PANICS: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    /// Set on the thread running the frame test's runtime.
    static IN_FRAMES_TEST: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Counts panics on the threads of the frame tests (the connection's tasks run there; a
/// panic in a spawned task would otherwise only drop its channels).
fn count_frame_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let prev = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if IN_FRAMES_TEST.with(|f| f.get()) {
                FRAME_PANICS.fetch_add(1, Ordering::SeqCst);
            }
            prev(info)
        }));
    });
}

/// A response seed's body (selector bytes dropped) as a frame answering `correlation_id`.
fn frame(body: &[u8], correlation_id: i32) -> Vec<u8> {
    let mut b = body.to_vec();
    b[0..4].copy_from_slice(&correlation_id.to_be_bytes());
    let mut f = (b.len() as i32).to_be_bytes().to_vec();
    f.extend(b);
    f
}

fn seed_body(key: ApiKey, version: i16, label: &str) -> Vec<u8> {
    let name = format!("{key:?}-v{version}-{label}");
    corpus("responses")
        .into_iter()
        .find(|(n, _)| *n == name)
        .unwrap_or_else(|| panic!("no seed {name}"))
        .1[2..]
        .to_vec()
}

/// Reads one request frame; returns (api key, version, correlation id).
async fn read_request(s: &mut tokio::net::TcpStream) -> Option<(i16, i16, i32)> {
    let mut hdr = [0u8; 4];
    s.read_exact(&mut hdr).await.ok()?;
    let mut body = vec![0u8; i32::from_be_bytes(hdr) as usize];
    s.read_exact(&mut body).await.ok()?;
    Some((
        i16::from_be_bytes([body[0], body[1]]),
        i16::from_be_bytes([body[2], body[3]]),
        i32::from_be_bytes([body[4], body[5], body[6], body[7]]),
    ))
}

#[derive(Clone, Copy, PartialEq)]
enum Stage {
    /// The mutated bytes answer the ApiVersions handshake.
    Handshake,
    /// The handshake succeeds; the mutated bytes answer a Metadata request.
    Metadata,
}

/// One fake-broker session: answers as `stage` says with `payload` (built by `make` from the
/// request's version and correlation id), then closes the socket or holds it open.
async fn run_frames_case(
    stage: Stage,
    make: impl FnOnce(i16, i32) -> Vec<u8> + Send + 'static,
    hold: bool,
) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let (api_max, handshake_body) = {
        let (_, max) = client_versions(ApiKey::ApiVersions).unwrap();
        (max, seed_body(ApiKey::ApiVersions, max, "full"))
    };
    let broker = tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        let Some((_, version, id)) = read_request(&mut s).await else {
            return;
        };
        assert_eq!(version, api_max);
        let payload = if stage == Stage::Handshake {
            make(version, id)
        } else {
            let _ = s.write_all(&frame(&handshake_body, id)).await;
            let Some((key, version, id)) = read_request(&mut s).await else {
                return;
            };
            assert_eq!(key, ApiKey::Metadata as i16);
            make(version, id)
        };
        let _ = s.write_all(&payload).await;
        if hold {
            tokio::time::sleep(Duration::from_secs(5)).await;
        }
    });
    let timeout = Duration::from_millis(if hold { 300 } else { 2_000 });
    let opts = ConnectionOptions {
        connect_timeout: timeout,
        request_timeout: timeout,
        max_response_size: 1 << 20,
        ..ConnectionOptions::default()
    };
    let start = Instant::now();
    let result = async {
        let conn = Connection::connect(&addr, opts).await?;
        if stage == Stage::Metadata {
            let _: m::MetadataResponse = conn.send(&m::MetadataRequest::default()).await?;
        }
        Ok::<_, kafka_sdk::Error>(())
    }
    .await;
    let elapsed = start.elapsed();
    // Bounded by the connection's own timeouts (twice: handshake and request).
    assert!(
        elapsed < timeout * 2 + Duration::from_secs(2),
        "took {elapsed:?} ({result:?})"
    );
    broker.abort();
    let _ = broker.await;
}

#[test]
fn frames_mutated_response_streams_fail_the_connection() {
    count_frame_panics();
    IN_FRAMES_TEST.with(|f| f.set(true));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let (_, api_max) = client_versions(ApiKey::ApiVersions).unwrap();
        let api_seed = frame(&seed_body(ApiKey::ApiVersions, api_max, "full"), 0);
        let mut rng = fastrand::Rng::with_seed(0x5eed_0005);
        let others = seeds_of("responses");
        for i in 0..700 {
            let hold = i % 100 == 99;
            // Mutated handshake answers (the size prefix and correlation id included).
            let d = mutate(&mut rng, &api_seed, 0, &others);
            run_frames_case(Stage::Handshake, move |_, _| d, hold).await;
            // Mutated Metadata answers at the negotiated version.
            let mut r2 = fastrand::Rng::with_seed(rng.u64(..));
            run_frames_case(
                Stage::Metadata,
                move |version, id| {
                    let seed = frame(&seed_body(ApiKey::Metadata, version, "full"), id);
                    mutate(&mut r2, &seed, 0, &[])
                },
                hold,
            )
            .await;
        }
        // Frames the reader must reject by themselves: negative / oversized size, size zero,
        // a wrong correlation id, and an endless stream of empty frames.
        let fixed: Vec<Vec<u8>> = vec![
            (-1i32).to_be_bytes().to_vec(),
            i32::MIN.to_be_bytes().to_vec(),
            (2i32 << 20).to_be_bytes().to_vec(),
            0i32.to_be_bytes().to_vec(),
            frame(&seed_body(ApiKey::ApiVersions, api_max, "full"), 5),
            [0, 0, 0, 4, 0, 0, 0, 0].repeat(1000),
        ];
        for d in fixed {
            let d2 = d.clone();
            run_frames_case(Stage::Handshake, move |_, _| d2, false).await;
            run_frames_case(Stage::Handshake, move |_, _| d, true).await;
        }
    });
    assert_eq!(
        FRAME_PANICS.load(Ordering::SeqCst),
        0,
        "a connection task panicked"
    );
}
