//! Record batch tests: cross-checks against kafka-protocol's encoder and decoder in both
//! directions, property-based round trips and malformed-input tests.

use bytes::{BufMut, Bytes, BytesMut};
use indexmap::IndexMap;
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::{
    Compression as KpCompression, Record as KpRecord, RecordBatchDecoder, RecordBatchEncoder,
    RecordEncodeOptions, TimestampType as KpTimestampType,
};
use proptest::prelude::*;

use super::*;
use crate::error::{Error, Result};

const ALL: [Compression; 5] = [
    Compression::None,
    Compression::Gzip,
    Compression::Snappy,
    Compression::Lz4,
    Compression::Zstd,
];

/// The codecs this build has (all of them with the default features).
fn enabled() -> impl Iterator<Item = Compression> {
    ALL.into_iter().filter(|c| c.is_enabled())
}

/// A record as the tests describe it.
#[derive(Debug, Clone, PartialEq)]
struct TRec {
    ts: i64,
    key: Option<Vec<u8>>,
    value: Option<Vec<u8>>,
    headers: Vec<(String, Option<Vec<u8>>)>,
}

impl TRec {
    fn append_to(&self, b: &mut BatchBuilder) -> usize {
        let headers: Vec<(&str, Option<&[u8]>)> = self
            .headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_deref()))
            .collect();
        b.append(
            self.ts,
            self.key.as_deref(),
            self.value.as_deref(),
            &headers,
        )
    }

    fn matches(&self, r: &Record) -> bool {
        r.timestamp == self.ts
            && r.key.as_deref() == self.key.as_deref()
            && r.value.as_deref() == self.value.as_deref()
            && r.headers.len() == self.headers.len()
            && r.headers
                .iter()
                .zip(&self.headers)
                .all(|(h, (k, v))| h.key_str().unwrap() == k && h.value.as_deref() == v.as_deref())
    }
}

fn sample_records() -> Vec<TRec> {
    vec![
        TRec {
            ts: 1_700_000_000_000,
            key: Some(b"key-0".to_vec()),
            value: Some(b"value-0".to_vec()),
            headers: vec![],
        },
        TRec {
            ts: 1_700_000_000_005,
            key: None,
            value: Some(b"null key".to_vec()),
            headers: vec![("h1".into(), Some(b"v1".to_vec()))],
        },
        TRec {
            ts: 1_699_999_999_000, // before the base timestamp: negative delta
            key: Some(b"k".to_vec()),
            value: None,
            headers: vec![
                ("null-valued".into(), None),
                ("empty-valued".into(), Some(vec![])),
                ("".into(), Some(b"empty key".to_vec())),
            ],
        },
        TRec {
            ts: 1_700_000_000_010,
            key: Some(vec![]),
            value: Some(vec![]),
            headers: vec![("ünïcödé".into(), Some(vec![0, 255, 7]))],
        },
        TRec {
            ts: 1_700_000_000_010,
            key: None,
            value: None,
            headers: vec![],
        },
        TRec {
            ts: 1_700_000_001_000,
            key: Some(vec![b'x'; 300]),
            value: Some((0..20_000u32).map(|i| (i % 97) as u8).collect()),
            headers: vec![],
        },
    ]
}

fn build(records: &[TRec], base_ts: i64, params: &BatchParams) -> Bytes {
    let mut b = BatchBuilder::new(base_ts, 0);
    for r in records {
        r.append_to(&mut b);
    }
    b.seal(params).unwrap()
}

fn params(compression: Compression) -> BatchParams {
    BatchParams {
        compression,
        compression_level: None,
        producer_id: 4242,
        producer_epoch: 7,
        base_sequence: 1000,
        transactional: true,
        partition_leader_epoch: 3,
        timestamp_type_log_append: false,
    }
}

fn decode_all(data: Bytes) -> Result<Vec<RecordBatch>> {
    decode_batches(data, &DecodeOptions::default()).collect()
}

fn kp_codec(c: Compression) -> KpCompression {
    match c {
        Compression::None => KpCompression::None,
        Compression::Gzip => KpCompression::Gzip,
        Compression::Snappy => KpCompression::Snappy,
        Compression::Lz4 => KpCompression::Lz4,
        Compression::Zstd => KpCompression::Zstd,
    }
}

fn our_codec(c: KpCompression) -> Compression {
    match c {
        KpCompression::None => Compression::None,
        KpCompression::Gzip => Compression::Gzip,
        KpCompression::Snappy => Compression::Snappy,
        KpCompression::Lz4 => Compression::Lz4,
        KpCompression::Zstd => Compression::Zstd,
    }
}

fn kp_decode(data: Bytes) -> kafka_protocol::records::RecordSet {
    let mut buf = data;
    RecordBatchDecoder::decode_with_custom_compression(
        &mut buf,
        Some(|b: &mut Bytes, c: KpCompression| -> anyhow::Result<Bytes> {
            Ok(decompress(our_codec(c), b, 1 << 30)?)
        }),
    )
    .unwrap()
}

#[test]
fn our_encoder_their_decoder() {
    let recs = sample_records();
    let base_ts = recs[0].ts;
    for c in enabled() {
        let p = params(c);
        let data = build(&recs, base_ts, &p);
        let set = kp_decode(data);
        assert_eq!(set.compression, kp_codec(c));
        assert_eq!(set.version, 2);
        assert_eq!(set.records.len(), recs.len());
        for (i, (theirs, ours)) in set.records.iter().zip(&recs).enumerate() {
            assert_eq!(theirs.offset, i as i64, "{c}");
            assert_eq!(theirs.timestamp, ours.ts, "{c} record {i}");
            assert_eq!(theirs.key.as_deref(), ours.key.as_deref());
            assert_eq!(theirs.value.as_deref(), ours.value.as_deref());
            assert_eq!(theirs.producer_id, 4242);
            assert_eq!(theirs.producer_epoch, 7);
            assert_eq!(theirs.sequence, 1000 + i as i32);
            assert_eq!(theirs.partition_leader_epoch, 3);
            assert!(theirs.transactional);
            assert!(!theirs.control);
            assert_eq!(theirs.timestamp_type, KpTimestampType::Creation);
            assert_eq!(theirs.headers.len(), ours.headers.len());
            for (k, v) in &ours.headers {
                let got = theirs
                    .headers
                    .get(&StrBytes::from_string(k.clone()))
                    .unwrap();
                assert_eq!(got.as_deref(), v.as_deref());
            }
        }
    }
}

fn to_kp(recs: &[TRec], base_offset: i64, transactional: bool) -> Vec<KpRecord> {
    recs.iter()
        .enumerate()
        .map(|(i, r)| KpRecord {
            transactional,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: 9,
            producer_id: 77,
            producer_epoch: 2,
            timestamp_type: KpTimestampType::Creation,
            offset: base_offset + i as i64,
            sequence: 55 + i as i32,
            timestamp: r.ts,
            key: r.key.clone().map(Bytes::from),
            value: r.value.clone().map(Bytes::from),
            headers: r
                .headers
                .iter()
                .map(|(k, v)| (StrBytes::from_string(k.clone()), v.clone().map(Bytes::from)))
                .collect::<IndexMap<_, _>>(),
        })
        .collect()
}

fn kp_encode(records: &[KpRecord], c: Compression) -> Bytes {
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode_with_custom_compression(
        &mut buf,
        records,
        &RecordEncodeOptions {
            version: 2,
            compression: kp_codec(c),
        },
        Some(
            |records: &mut BytesMut, out: &mut BytesMut, kc: KpCompression| -> anyhow::Result<()> {
                let mut tmp = BytesMut::new();
                compress(our_codec(kc), None, records, &mut tmp)?;
                out.put_slice(&tmp);
                Ok(())
            },
        ),
    )
    .unwrap();
    buf.freeze()
}

#[test]
fn their_encoder_our_decoder() {
    let recs = sample_records();
    for c in enabled() {
        for transactional in [false, true] {
            let kp = to_kp(&recs, 1_000_000, transactional);
            let data = kp_encode(&kp, c);
            let batches = decode_all(data).unwrap();
            assert_eq!(batches.len(), 1);
            let b = &batches[0];
            assert_eq!(b.compression(), c);
            assert_eq!(b.base_offset, 1_000_000);
            assert_eq!(b.last_offset_delta, recs.len() as i32 - 1);
            assert_eq!(b.next_offset(), 1_000_000 + recs.len() as i64);
            assert_eq!(b.producer_id, 77);
            assert_eq!(b.producer_epoch, 2);
            assert_eq!(b.base_sequence, 55);
            assert_eq!(b.partition_leader_epoch, 9);
            assert_eq!(b.is_transactional(), transactional);
            assert!(!b.is_control());
            assert_eq!(b.timestamp_type(), TimestampType::CreateTime);
            assert_eq!(b.max_timestamp, recs.iter().map(|r| r.ts).max().unwrap());
            assert_eq!(b.records.len(), recs.len());
            for (i, (r, t)) in b.records.iter().zip(&recs).enumerate() {
                assert_eq!(r.offset, 1_000_000 + i as i64);
                assert!(t.matches(r), "{c}: record {i}: {r:?} vs {t:?}");
            }
        }
    }
}

#[test]
fn our_round_trip_every_codec() {
    let recs = sample_records();
    for c in enabled() {
        let data = build(&recs, recs[0].ts, &params(c));
        let batches = decode_all(data.clone()).unwrap();
        assert_eq!(batches.len(), 1);
        let b = &batches[0];
        assert_eq!(b.compression(), c);
        assert_eq!(b.base_offset, 0);
        assert_eq!(b.base_timestamp, recs[0].ts);
        assert_eq!(
            (b.producer_id, b.producer_epoch, b.base_sequence),
            (4242, 7, 1000)
        );
        assert!(b.is_transactional());
        assert_eq!(b.size_bytes, data.len());
        for (r, t) in b.records.iter().zip(&recs) {
            assert!(t.matches(r), "{c}: {r:?} vs {t:?}");
        }
        if c == Compression::None {
            // Zero-copy: the value is a view into the input buffer.
            let v = b.records[0].value.as_ref().unwrap();
            let range = data.as_ptr() as usize..data.as_ptr() as usize + data.len();
            assert!(range.contains(&(v.as_ptr() as usize)));
        }
    }
}

#[test]
fn batch_header_layout() {
    let mut b = BatchBuilder::new(500, 64);
    b.append(400, Some(b"a"), Some(b"b"), &[]);
    b.append(900, None, Some(b"c"), &[]);
    let data = b
        .seal(&BatchParams {
            timestamp_type_log_append: true,
            ..BatchParams::default()
        })
        .unwrap();
    assert_eq!(&data[0..8], &[0; 8]);
    assert_eq!(
        i32::from_be_bytes(data[8..12].try_into().unwrap()) as usize,
        data.len() - 12
    );
    assert_eq!(&data[12..16], &(-1i32).to_be_bytes());
    assert_eq!(data[16], 2);
    assert_eq!(
        u32::from_be_bytes(data[17..21].try_into().unwrap()),
        crc32c::crc32c(&data[21..])
    );
    assert_eq!(i16::from_be_bytes([data[21], data[22]]), 0b1000);
    assert_eq!(&data[23..27], &1i32.to_be_bytes());
    assert_eq!(&data[27..35], &500i64.to_be_bytes());
    assert_eq!(&data[35..43], &900i64.to_be_bytes());
    assert_eq!(&data[43..51], &(-1i64).to_be_bytes());
    assert_eq!(&data[51..53], &(-1i16).to_be_bytes());
    assert_eq!(&data[53..57], &(-1i32).to_be_bytes());
    assert_eq!(&data[57..61], &2i32.to_be_bytes());
    // LogAppendTime: every record carries the batch's max timestamp.
    let batches = decode_all(data).unwrap();
    assert_eq!(batches[0].timestamp_type(), TimestampType::LogAppendTime);
    assert!(batches[0].records.iter().all(|r| r.timestamp == 900));
}

#[test]
fn record_size_is_exact() {
    let recs = sample_records();
    let base = recs[0].ts;
    let mut b = BatchBuilder::new(base, 0);
    let mut total = RECORD_BATCH_OVERHEAD;
    assert_eq!(b.size_bytes(), total);
    assert!(b.is_empty());
    for (i, r) in recs.iter().enumerate() {
        let headers: Vec<(&str, Option<&[u8]>)> = r
            .headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_deref()))
            .collect();
        let predicted = BatchBuilder::record_size(
            r.ts - base,
            i as i32,
            r.key.as_deref(),
            r.value.as_deref(),
            &headers,
        );
        assert_eq!(
            b.next_record_size(r.ts, r.key.as_deref(), r.value.as_deref(), &headers),
            predicted
        );
        let added = r.append_to(&mut b);
        assert_eq!(added, predicted, "record {i}");
        total += added;
        assert_eq!(b.size_bytes(), total);
        assert_eq!(b.len(), i + 1);
    }
    assert_eq!(
        b.seal(&BatchParams::default()).unwrap().len(),
        total,
        "uncompressed batch size is size_bytes()"
    );
}

#[test]
fn append_does_not_reallocate_within_capacity() {
    let mut b = BatchBuilder::new(0, 200 * 130);
    let cap = b.buf_capacity();
    let value = [7u8; 100];
    for i in 0..200 {
        b.append(i, Some(b"key"), Some(&value), &[("h", Some(b"v"))]);
    }
    assert_eq!(b.buf_capacity(), cap, "append grew the buffer");
}

#[test]
fn empty_batch_cannot_be_sealed() {
    let e = BatchBuilder::new(0, 0)
        .seal(&BatchParams::default())
        .unwrap_err();
    assert!(matches!(e, Error::InvalidArgument(_)), "{e}");
}

#[test]
fn rewrite_producer_state_patches_header_and_crc() {
    for c in enabled() {
        let data = build(&sample_records(), 0, &params(c));
        let mut bytes = data.to_vec();
        rewrite_producer_state(&mut bytes, 99, 100, 12345).unwrap();
        let b = &decode_all(Bytes::from(bytes.clone())).unwrap()[0];
        assert_eq!(
            (b.producer_id, b.producer_epoch, b.base_sequence),
            (99, 100, 12345)
        );
        assert_eq!(b.records.len(), sample_records().len());
        // kafka-protocol agrees (it checks the CRC too).
        let set = kp_decode(Bytes::from(bytes));
        assert_eq!(set.records[2].sequence, 12347);
        assert_eq!(set.records[0].producer_epoch, 100);
    }
    // Errors instead of panics on bad input.
    assert!(rewrite_producer_state(&mut [0u8; 10], 1, 1, 1).is_err());
    let mut data = build(&sample_records(), 0, &BatchParams::default()).to_vec();
    data[16] = 1;
    let e = rewrite_producer_state(&mut data, 1, 1, 1).unwrap_err();
    assert!(e.to_string().contains("legacy message format v0/v1"), "{e}");
    let mut data = build(&sample_records(), 0, &BatchParams::default()).to_vec();
    let len = data.len();
    assert!(rewrite_producer_state(&mut data[..len - 1], 1, 1, 1).is_err());
}

#[test]
#[cfg(feature = "zstd")]
fn several_batches_and_partial_tail() {
    let recs = sample_records();
    let a = build(&recs[..2], 0, &params(Compression::None));
    let b = build(&recs[2..], 0, &params(Compression::Zstd));
    let mut all = BytesMut::new();
    all.extend_from_slice(&a);
    all.extend_from_slice(&b);
    let whole = all.clone().freeze();
    let batches = decode_all(whole.clone()).unwrap();
    assert_eq!(batches.len(), 2);
    assert_eq!(batches[0].records.len(), 2);
    assert_eq!(batches[1].records.len(), recs.len() - 2);

    // Every cut inside the second batch yields exactly the first one, without error.
    for cut in a.len()..whole.len() {
        let mut it = decode_batches(whole.slice(..cut), &DecodeOptions::default());
        let first = it.next().unwrap().unwrap();
        assert_eq!(first.records.len(), 2);
        assert!(it.next().is_none(), "cut {cut}");
        assert_eq!(it.consumed(), a.len());
        assert_eq!(it.has_partial_batch(), cut > a.len());
    }
}

#[test]
fn malformed_batches_are_errors() {
    let good = build(&sample_records(), 0, &BatchParams::default());

    // Legacy magic.
    for magic in [0u8, 1] {
        let mut m = good.to_vec();
        m[16] = magic;
        let e = decode_all(Bytes::from(m)).unwrap_err();
        assert!(
            e.to_string()
                .contains("legacy message format v0/v1 is not supported"),
            "{e}"
        );
    }
    let mut m = good.to_vec();
    m[16] = 3;
    assert!(decode_all(Bytes::from(m))
        .unwrap_err()
        .to_string()
        .contains("magic"));

    // Negative and too-small lengths.
    for len in [-1i32, i32::MIN, 0, 48] {
        let mut m = good.to_vec();
        m[8..12].copy_from_slice(&len.to_be_bytes());
        assert!(decode_all(Bytes::from(m)).is_err(), "length {len}");
    }

    // CRC mismatch, and the same batch accepted with check_crc off.
    let mut m = good.to_vec();
    let at = m.len() - 100;
    m[at] ^= 0x01; // inside the last record's value
    let e = decode_all(Bytes::from(m.clone())).unwrap_err();
    assert!(e.to_string().contains("CRC mismatch"), "{e}");
    let lax = DecodeOptions {
        check_crc: false,
        ..DecodeOptions::default()
    };
    assert!(decode_batches(Bytes::from(m), &lax).all(|b| b.is_ok()));

    // Record count larger than the bytes allow, and smaller than the records present.
    for count in [1_000_000i32, 2, -1] {
        let mut m = good.to_vec();
        m[57..61].copy_from_slice(&count.to_be_bytes());
        let crc = crc32c::crc32c(&m[21..]);
        m[17..21].copy_from_slice(&crc.to_be_bytes());
        assert!(decode_all(Bytes::from(m)).is_err(), "count {count}");
    }

    // Unknown codec.
    let mut m = good.to_vec();
    m[22] = 6;
    let crc = crc32c::crc32c(&m[21..]);
    m[17..21].copy_from_slice(&crc.to_be_bytes());
    let e = decode_all(Bytes::from(m)).unwrap_err();
    assert!(e.to_string().contains("unknown compression codec"), "{e}");

    // The iterator stops after an error.
    let mut m = good.to_vec();
    m[16] = 0;
    m.extend_from_slice(&good);
    let mut it = decode_batches(Bytes::from(m), &DecodeOptions::default());
    assert!(it.next().unwrap().is_err());
    assert!(it.next().is_none());
}

#[test]
#[cfg(feature = "lz4")]
fn empty_batch_from_compaction_decodes() {
    let mut m = build(&sample_records()[..1], 0, &params(Compression::Lz4)).to_vec();
    m.truncate(RECORD_BATCH_OVERHEAD);
    m[8..12].copy_from_slice(&((RECORD_BATCH_OVERHEAD - 12) as i32).to_be_bytes());
    m[57..61].copy_from_slice(&0i32.to_be_bytes());
    let crc = crc32c::crc32c(&m[21..]);
    m[17..21].copy_from_slice(&crc.to_be_bytes());
    let b = &decode_all(Bytes::from(m)).unwrap()[0];
    assert!(b.records.is_empty());
    assert_eq!(b.next_offset(), 1);
}

#[test]
#[cfg(feature = "zstd")]
fn decompression_cap_applies_per_batch() {
    let recs = vec![TRec {
        ts: 0,
        key: None,
        value: Some(vec![0u8; 200_000]),
        headers: vec![],
    }];
    let data = build(&recs, 0, &params(Compression::Zstd));
    assert!(data.len() < 1000);
    let opts = DecodeOptions {
        check_crc: true,
        max_decompressed: 100_000,
    };
    let e = decode_batches(data.clone(), &opts)
        .next()
        .unwrap()
        .unwrap_err();
    assert!(
        e.to_string().contains("exceeds the cap of 100000 bytes"),
        "{e}"
    );
    assert!(decode_all(data).is_ok());
}

/// A fetched batch compressed with a codec this build lacks decodes to the typed
/// `CodecDisabled` error (not a panic, not an anonymous protocol error).
#[test]
#[cfg(not(all(
    feature = "gzip",
    feature = "snappy",
    feature = "lz4",
    feature = "zstd"
)))]
fn batch_with_disabled_codec_is_a_typed_error() {
    let good = build(&sample_records(), 0, &params(Compression::None));
    for c in ALL.into_iter().filter(|c| !c.is_enabled()) {
        let mut m = good.to_vec();
        m[22] = c.attribute_bits() as u8;
        let crc = crc32c::crc32c(&m[21..]);
        m[17..21].copy_from_slice(&crc.to_be_bytes());
        match decode_all(Bytes::from(m)).unwrap_err() {
            Error::CodecDisabled { codec, feature } => {
                assert_eq!(codec, c.name());
                assert_eq!(feature, c.name());
            }
            other => panic!("{c}: expected CodecDisabled, got {other:?}"),
        }
    }
}

/// A COMMIT transaction marker at `offset`, as kafka-protocol (and a broker) writes it.
fn commit_marker(offset: i64) -> KpRecord {
    KpRecord {
        transactional: true,
        control: true,
        delete_horizon: false,
        partition_leader_epoch: 0,
        producer_id: 5,
        producer_epoch: 1,
        timestamp_type: KpTimestampType::Creation,
        offset,
        sequence: -1,
        timestamp: 123,
        key: Some(Bytes::from_static(&[0, 0, 0, 1])),
        value: Some(Bytes::from_static(&[0, 0, 0, 0, 0, 0])),
        headers: IndexMap::new(),
    }
}

#[test]
fn control_records() {
    assert_eq!(control_record_type(&[0, 0, 0, 0]), Some(ControlType::Abort));
    assert_eq!(
        control_record_type(&[0, 0, 0, 1]),
        Some(ControlType::Commit)
    );
    assert_eq!(control_record_type(&[0, 0, 0, 2]), None);
    assert_eq!(control_record_type(&[0, 0, 0]), None);
    assert_eq!(control_record_type(&[0xff, 0xff, 0, 1]), None);

    // A control batch written by kafka-protocol (as a broker would write a marker).
    let data = kp_encode(&[commit_marker(40)], Compression::None);
    let b = &decode_all(data).unwrap()[0];
    assert!(b.is_control() && b.is_transactional());
    assert_eq!(
        control_record_type(b.records[0].key.as_ref().unwrap()),
        Some(ControlType::Commit)
    );
}

#[test]
fn every_truncation_and_byte_flip_is_handled() {
    let mut rng = fastrand::Rng::with_seed(2024);
    for c in enabled() {
        let data = build(&sample_records()[..5], 10, &params(c));
        for cut in 0..data.len() {
            // A cut batch is a partial batch: no records, no error, no panic.
            let got: Vec<_> =
                decode_batches(data.slice(..cut), &DecodeOptions::default()).collect();
            assert!(got.iter().all(|r| r.is_ok()), "{c} cut {cut}");
        }
        for check_crc in [true, false] {
            let opts = DecodeOptions {
                check_crc,
                max_decompressed: 1 << 20,
            };
            for _ in 0..2000 {
                let mut m = data.to_vec();
                for _ in 0..rng.usize(1..4) {
                    let i = rng.usize(0..m.len());
                    m[i] = if rng.bool() {
                        rng.u8(..)
                    } else {
                        m[i] ^ (1 << rng.u8(0..8))
                    };
                }
                for r in decode_batches(Bytes::from(m), &opts) {
                    let _ = r;
                }
            }
        }
    }
    // Truncating the records section while keeping the header consistent is an error.
    let data = build(&sample_records(), 10, &BatchParams::default());
    for keep in RECORD_BATCH_OVERHEAD..data.len() {
        let mut m = data[..keep].to_vec();
        m[8..12].copy_from_slice(&((keep - 12) as i32).to_be_bytes());
        let crc = crc32c::crc32c(&m[21..]);
        m[17..21].copy_from_slice(&crc.to_be_bytes());
        assert!(decode_all(Bytes::from(m)).is_err(), "kept {keep}");
    }
}

#[test]
fn thousand_records_of_100_bytes() {
    let value = [0xabu8; 100];
    let mut b = BatchBuilder::new(1_000, 1_000 * 120);
    for i in 0..1_000i64 {
        let key = (i as u32).to_be_bytes();
        b.append(1_000 + i, Some(&key), Some(&value), &[]);
    }
    assert_eq!(b.len(), 1_000);
    for c in enabled() {
        let mut b2 = BatchBuilder::new(1_000, 1_000 * 120);
        for i in 0..1_000i64 {
            b2.append(
                1_000 + i,
                Some(&(i as u32).to_be_bytes()),
                Some(&value),
                &[],
            );
        }
        let data = b2.seal(&params(c)).unwrap();
        let batches = decode_all(data).unwrap();
        assert_eq!(batches.len(), 1);
        let recs = &batches[0].records;
        assert_eq!(recs.len(), 1_000);
        for (i, r) in recs.iter().enumerate() {
            assert_eq!(r.offset, i as i64);
            assert_eq!(r.timestamp, 1_000 + i as i64);
            assert_eq!(r.key.as_deref(), Some(&(i as u32).to_be_bytes()[..]));
            assert_eq!(r.value.as_deref(), Some(&value[..]));
            assert!(r.headers.is_empty());
        }
    }
    let data = b.seal(&BatchParams::default()).unwrap();
    assert_eq!(decode_all(data).unwrap()[0].records.len(), 1_000);
}

fn arb_bytes() -> impl Strategy<Value = Option<Vec<u8>>> {
    proptest::option::of(proptest::collection::vec(any::<u8>(), 0..200))
}

fn arb_record() -> impl Strategy<Value = TRec> {
    (
        -1_000_000i64..1_000_000,
        arb_bytes(),
        arb_bytes(),
        proptest::collection::vec(("[a-zé]{0,8}", arb_bytes()), 0..4),
    )
        .prop_map(|(ts, key, value, headers)| TRec {
            ts,
            key,
            value,
            headers,
        })
}

fn arb_codec() -> impl Strategy<Value = Compression> {
    proptest::sample::select(enabled().collect::<Vec<_>>())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn prop_round_trip(
        recs in proptest::collection::vec(arb_record(), 1..30),
        base_ts in any::<i32>(),
        codec in arb_codec(),
        pid in any::<i64>(),
        epoch in any::<i16>(),
        seq in any::<i32>(),
        transactional in any::<bool>(),
    ) {
        let p = BatchParams {
            compression: codec,
            producer_id: pid,
            producer_epoch: epoch,
            base_sequence: seq,
            transactional,
            ..BatchParams::default()
        };
        let data = build(&recs, base_ts as i64, &p);
        let batches = decode_all(data.clone()).unwrap();
        prop_assert_eq!(batches.len(), 1);
        let b = &batches[0];
        prop_assert_eq!((b.producer_id, b.producer_epoch, b.base_sequence), (pid, epoch, seq));
        prop_assert_eq!(b.is_transactional(), transactional);
        prop_assert_eq!(b.compression(), codec);
        prop_assert_eq!(b.records.len(), recs.len());
        for (i, (r, t)) in b.records.iter().zip(&recs).enumerate() {
            prop_assert_eq!(r.offset, i as i64);
            prop_assert!(t.matches(r), "{:?} vs {:?}", r, t);
        }
        // kafka-protocol reads the same batch (header keys may repeat, so compare values only).
        let set = kp_decode(data);
        prop_assert_eq!(set.records.len(), recs.len());
        for (theirs, t) in set.records.iter().zip(&recs) {
            prop_assert_eq!(theirs.timestamp, t.ts);
            prop_assert_eq!(theirs.key.as_deref(), t.key.as_deref());
            prop_assert_eq!(theirs.value.as_deref(), t.value.as_deref());
        }
    }

    #[test]
    fn prop_garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        for r in decode_batches(Bytes::from(bytes), &DecodeOptions::default()) {
            let _ = r;
        }
    }
}

/// A batch built in a pooled buffer, one that an earlier batch left full of other bytes, is
/// byte for byte the batch built on the heap: sealed plainly or compressed, checksummed as
/// appended or at the end, with the records kept or not. Records that outgrow the buffer
/// move the batch to the heap, with the same result.
#[test]
fn pooled_buffers_build_the_same_batches() {
    fn fill(b: &mut BatchBuilder, recs: &[TRec]) {
        for r in recs {
            r.append_to(b);
        }
    }
    let recs = sample_records();
    for (size, moves) in [(64 * 1024, false), (4096, true)] {
        let pool = BufferPool::new(size, 1);
        {
            let mut dirty = pool.take().unwrap();
            let n = dirty.capacity();
            dirty.extend(n).unwrap().fill(0xa5);
        }
        for c in enabled() {
            for as_appended in [false, true] {
                let build = |pooled: bool| {
                    let mut b = if pooled {
                        BatchBuilder::in_pooled(1_700_000_000_000, pool.take().unwrap())
                    } else {
                        BatchBuilder::new(1_700_000_000_000, 0)
                    };
                    if as_appended {
                        b = b.checksum_as_appended();
                    }
                    fill(&mut b, &recs);
                    b
                };
                let (heap, pooled) = (build(false), build(true));
                assert_eq!(pooled.capacity() == pool.buffer_size(), !moves);
                assert_eq!(
                    heap.seal(&params(c)).unwrap(),
                    pooled.seal(&params(c)).unwrap(),
                    "{c:?}, checksum as appended: {as_appended}, buffer {size}"
                );
                let (hs, hk) = build(false).seal_keeping(&params(c));
                let (ps, pk) = build(true).seal_keeping(&params(c));
                assert_eq!(hs.unwrap(), ps.unwrap(), "{c:?} kept");
                assert_eq!(hk, pk, "{c:?} kept records");
                let kept: Vec<_> = KeptRecords::new(pk.unwrap()).unwrap().collect();
                assert_eq!(kept.len(), recs.len());
            }
        }
        assert_eq!(pool.mapped(), 1, "one buffer, reused every time");
        assert_eq!(pool.free(), 1, "back in the pool when the batches are gone");
    }
}

#[test]
fn next_offset_after_reads_the_headers_as_decode_batches_decodes() {
    let recs = sample_records();
    let mut a = build(&recs[..2], 0, &BatchParams::default()).to_vec();
    let mut b = build(&recs[2..], 0, &params(Compression::None)).to_vec();
    a[..8].copy_from_slice(&100i64.to_be_bytes());
    b[..8].copy_from_slice(&102i64.to_be_bytes());
    let whole: Vec<u8> = a.iter().chain(b.iter()).copied().collect();
    let end = decode_all(Bytes::from(whole.clone()))
        .unwrap()
        .last()
        .unwrap()
        .next_offset();
    assert_eq!(end, 100 + recs.len() as i64);
    assert_eq!(next_offset_after(&whole), Some(end));
    // A partial batch at the end is skipped, as decode_batches skips it.
    for cut in 0..whole.len() {
        let expect = if cut < a.len() { None } else { Some(102) };
        assert_eq!(next_offset_after(&whole[..cut]), expect, "cut {cut}");
    }
    // Headers decode_batches rejects: nothing is read past them.
    let mut legacy = whole.clone();
    legacy[16] = 1;
    assert_eq!(next_offset_after(&legacy), None);
    let mut short = whole.clone();
    short[8..12].copy_from_slice(&10i32.to_be_bytes());
    assert_eq!(next_offset_after(&short), None);
    assert_eq!(next_offset_after(&[]), None);
}

#[test]
fn records_after_counts_what_decode_batches_returns_after_the_offset() {
    let recs = sample_records();
    let mut a = build(&recs[..2], 0, &params(Compression::None)).to_vec();
    let codec = enabled().last().unwrap();
    let mut b = build(&recs[2..], 0, &params(codec)).to_vec();
    a[..8].copy_from_slice(&100i64.to_be_bytes());
    b[..8].copy_from_slice(&102i64.to_be_bytes());
    // A transaction marker after them: a control batch, which the consumer hides.
    let c = kp_encode(&[commit_marker(100 + recs.len() as i64)], Compression::None).to_vec();
    let whole: Vec<u8> = a.iter().chain(&b).chain(&c).copied().collect();
    let batches = decode_all(Bytes::from(whole.clone())).unwrap();
    let data_records = |from: i64| -> usize {
        batches
            .iter()
            .filter(|x| !x.is_control() && x.next_offset() > from)
            .map(|x| x.records.len())
            .sum()
    };
    for from in [0, 100, 101, 102, 107, 200] {
        assert_eq!(records_after(&whole, from), data_records(from), "from {from}");
    }
    assert_eq!(records_after(&whole, 0), recs.len());
    // Partial batches at the end do not count.
    assert_eq!(records_after(&whole[..a.len() + 10], 0), 2);
    assert_eq!(records_after(&[], 0), 0);
    // A corrupt count reserves no more than the batch's bytes could decode to.
    let mut lying = a.clone();
    lying[57..61].copy_from_slice(&i32::MAX.to_be_bytes());
    assert!(records_after(&lying, 0) <= (a.len() - RECORD_BATCH_OVERHEAD) / 7);
    let mut negative = a.clone();
    negative[57..61].copy_from_slice(&(-5i32).to_be_bytes());
    assert_eq!(records_after(&negative, 0), 0);
    // A header decode_batches rejects ends the count.
    let mut legacy = whole.clone();
    legacy[a.len() + 16] = 1;
    assert_eq!(records_after(&legacy, 0), 2);
}
