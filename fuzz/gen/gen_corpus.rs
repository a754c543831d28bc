//! Writes the seed corpora under `fuzz/corpus/<target>/`: valid inputs for every target,
//! built with kafka-sdk's own encoders and (for responses) kafka-protocol's response
//! encoders, which need its `broker` feature (enabled in this crate only).
//!
//! Run from `fuzz/`: `cargo run --bin gen_corpus` (deterministic; rerunning rewrites the
//! same files).

use std::fs;
use std::path::{Path, PathBuf};

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::{
    self as m, api_versions_response::ApiVersion, fetch_response, metadata_response,
    produce_response, ApiKey, BrokerId, ResponseHeader, TopicName,
};
use kafka_protocol::protocol::{Encodable, StrBytes};
use kafka_sdk::consumer::assignor::{Assignment, Subscription};
use kafka_sdk::protocol::client_versions;
use kafka_sdk::record::{compress, BatchBuilder, BatchParams, Compression};
use kafka_sdk::TopicPartition;
use kafka_sdk_fuzz::harness::{response_selector, CODECS, RESPONSE_APIS};

fn corpus_dir(target: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("corpus")
        .join(target);
    fs::create_dir_all(&dir).expect("create corpus dir");
    dir
}

fn write(target: &str, name: &str, data: &[u8]) {
    fs::write(corpus_dir(target).join(name), data).expect("write seed");
}

fn s(x: &str) -> StrBytes {
    StrBytes::from_string(x.to_string())
}

// ---------------------------------------------------------------------------------------
// Record batches
// ---------------------------------------------------------------------------------------

fn batch(codec: Compression, n: usize, params: BatchParams) -> Bytes {
    let mut b = BatchBuilder::new(1_700_000_000_000, 256);
    for i in 0..n {
        let key = format!("key-{i}");
        let value = format!("value {i} {}", "x".repeat(i * 7 % 40));
        let headers: Vec<(&str, Option<&[u8]>)> = match i % 3 {
            0 => vec![],
            1 => vec![("h", Some(b"v".as_slice()))],
            _ => vec![("trace", None), ("é", Some(b"".as_slice()))],
        };
        let key = (i % 4 != 3).then_some(key.as_bytes());
        let value = (i % 5 != 4).then_some(value.as_bytes());
        b.append(1_700_000_000_000 + i as i64 * 3 - 2, key, value, &headers);
    }
    b.seal(&BatchParams {
        compression: codec,
        ..params
    })
    .expect("seal")
}

/// Sets attribute bits (control, log-append-time...) and recomputes the CRC.
fn with_attributes(batch: &Bytes, bits: i16, base_offset: i64) -> Bytes {
    let mut b = batch.to_vec();
    b[0..8].copy_from_slice(&base_offset.to_be_bytes());
    let attrs = i16::from_be_bytes([b[21], b[22]]) | bits;
    b[21..23].copy_from_slice(&attrs.to_be_bytes());
    let crc = crc32c(&b[21..]);
    b[17..21].copy_from_slice(&crc.to_be_bytes());
    Bytes::from(b)
}

/// CRC-32C (Castagnoli), bitwise; seeds are small.
fn crc32c(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in data {
        crc ^= byte as u32;
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0x82F6_3B78
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// A transaction marker batch (control record, key `version 0, type`) for `pid`.
fn marker(pid: i64, commit: bool, base_offset: i64) -> Bytes {
    let mut b = BatchBuilder::new(1_700_000_000_000, 32);
    let key = [0, 0, 0, commit as u8];
    let value = [0, 0, 0, 0, 0, 0];
    b.append(1_700_000_000_000, Some(&key), Some(&value), &[]);
    let sealed = b
        .seal(&BatchParams {
            producer_id: pid,
            producer_epoch: 0,
            transactional: true,
            ..BatchParams::default()
        })
        .expect("seal marker");
    with_attributes(&sealed, 1 << 5, base_offset)
}

fn txn_batch(pid: i64, n: usize, base_offset: i64) -> Bytes {
    let b = batch(
        Compression::None,
        n,
        BatchParams {
            producer_id: pid,
            producer_epoch: 0,
            base_sequence: 0,
            transactional: true,
            ..BatchParams::default()
        },
    );
    with_attributes(&b, 0, base_offset)
}

fn concat(parts: &[Bytes]) -> Bytes {
    let mut out = BytesMut::new();
    for p in parts {
        out.extend_from_slice(p);
    }
    out.freeze()
}

/// Record-batch seeds, also used as Fetch response records.
fn record_seeds() -> Vec<(String, Bytes)> {
    let mut out = Vec::new();
    for codec in CODECS {
        out.push((
            format!("{codec}-1"),
            batch(codec, 1, BatchParams::default()),
        ));
        out.push((
            format!("{codec}-12"),
            batch(
                codec,
                12,
                BatchParams {
                    producer_id: 42,
                    producer_epoch: 3,
                    base_sequence: 100,
                    ..BatchParams::default()
                },
            ),
        ));
    }
    let two = concat(&[
        batch(Compression::None, 3, BatchParams::default()),
        with_attributes(&batch(Compression::Lz4, 4, BatchParams::default()), 0, 3),
    ]);
    out.push(("two-batches".into(), two.clone()));
    out.push(("partial-tail".into(), two.slice(..two.len() - 9)));
    out.push((
        "log-append-time".into(),
        batch(
            Compression::None,
            3,
            BatchParams {
                timestamp_type_log_append: true,
                ..BatchParams::default()
            },
        ),
    ));
    // A transaction followed by its abort marker, and the same abort marker twice (a
    // duplicate marker must decode like any other control batch).
    out.push((
        "txn-abort".into(),
        concat(&[txn_batch(7, 3, 0), marker(7, false, 3)]),
    ));
    out.push((
        "txn-duplicate-abort".into(),
        concat(&[txn_batch(7, 2, 0), marker(7, false, 2), marker(7, false, 3)]),
    ));
    out.push((
        "txn-commit-then-abort".into(),
        concat(&[
            txn_batch(8, 2, 0),
            marker(8, true, 2),
            txn_batch(9, 2, 3),
            marker(9, false, 5),
        ]),
    ));
    out
}

// ---------------------------------------------------------------------------------------
// Responses
// ---------------------------------------------------------------------------------------

fn encode_response<T: Encodable>(key: ApiKey, version: i16, msg: &T) -> Option<Vec<u8>> {
    let mut buf = BytesMut::new();
    let header = ResponseHeader::default().with_correlation_id(7);
    header
        .encode(&mut buf, key.response_header_version(version))
        .ok()?;
    msg.encode(&mut buf, version).ok()?;
    let mut out = response_selector(key, version).to_vec();
    out.extend_from_slice(&buf);
    Some(out)
}

fn topic(name: &str) -> TopicName {
    TopicName(s(name))
}

fn metadata() -> m::MetadataResponse {
    m::MetadataResponse::default()
        .with_brokers(vec![
            metadata_response::MetadataResponseBroker::default()
                .with_node_id(BrokerId(1))
                .with_host(s("localhost"))
                .with_port(9092)
                .with_rack(Some(s("r1"))),
            metadata_response::MetadataResponseBroker::default()
                .with_node_id(BrokerId(2))
                .with_host(s("localhost"))
                .with_port(9093),
        ])
        .with_cluster_id(Some(s("cluster")))
        .with_controller_id(BrokerId(1))
        .with_topics(vec![metadata_response::MetadataResponseTopic::default()
            .with_name(Some(topic("orders")))
            .with_partitions(
                (0..3)
                    .map(|p| {
                        metadata_response::MetadataResponsePartition::default()
                            .with_partition_index(p)
                            .with_leader_id(BrokerId(1 + p % 2))
                            .with_leader_epoch(5)
                            .with_replica_nodes(vec![BrokerId(1), BrokerId(2)])
                            .with_isr_nodes(vec![BrokerId(1), BrokerId(2)])
                    })
                    .collect(),
            )])
}

fn fetch(records: Bytes) -> m::FetchResponse {
    m::FetchResponse::default().with_responses(vec![
        fetch_response::FetchableTopicResponse::default()
            .with_topic(topic("orders"))
            .with_partitions(vec![
                fetch_response::PartitionData::default()
                    .with_partition_index(0)
                    .with_high_watermark(100)
                    .with_last_stable_offset(90)
                    .with_aborted_transactions(Some(vec![
                        fetch_response::AbortedTransaction::default()
                            .with_producer_id(m::ProducerId(7))
                            .with_first_offset(0),
                        fetch_response::AbortedTransaction::default()
                            .with_producer_id(m::ProducerId(7))
                            .with_first_offset(0),
                    ]))
                    .with_records(Some(records)),
                fetch_response::PartitionData::default()
                    .with_partition_index(1)
                    .with_error_code(6)
                    .with_records(None),
            ]),
    ])
}

fn produce() -> m::ProduceResponse {
    m::ProduceResponse::default().with_responses(vec![
        produce_response::TopicProduceResponse::default()
            .with_name(topic("orders"))
            .with_partition_responses(vec![
                produce_response::PartitionProduceResponse::default()
                    .with_index(0)
                    .with_base_offset(41)
                    .with_log_append_time_ms(-1),
                produce_response::PartitionProduceResponse::default()
                    .with_index(1)
                    .with_error_code(47)
                    .with_error_message(Some(s("invalid producer epoch"))),
            ]),
    ])
}

fn api_versions() -> m::ApiVersionsResponse {
    m::ApiVersionsResponse::default().with_api_keys(
        RESPONSE_APIS
            .iter()
            .map(|k| {
                let (min, max) = client_versions(*k).unwrap();
                ApiVersion::default()
                    .with_api_key(*k as i16)
                    .with_min_version(min)
                    .with_max_version(max)
            })
            .collect(),
    )
}

fn subscription(version: i16) -> Bytes {
    Subscription {
        topics: vec!["orders".into(), "payments".into()],
        user_data: (version >= 1).then(|| Bytes::from_static(b"\x00\x01ud")),
        owned_partitions: vec![
            TopicPartition::new("orders", 0),
            TopicPartition::new("orders", 2),
            TopicPartition::new("payments", 1),
        ],
        generation_id: 4,
        rack_id: Some("rack-a".into()),
    }
    .encode(version)
}

fn assignment(version: i16) -> Bytes {
    Assignment {
        partitions: vec![
            TopicPartition::new("orders", 1),
            TopicPartition::new("payments", 0),
            TopicPartition::new("orders", 3),
        ],
        user_data: (version % 2 == 1).then(|| Bytes::from_static(b"sticky")),
    }
    .encode(version)
}

fn join_group() -> m::JoinGroupResponse {
    m::JoinGroupResponse::default()
        .with_generation_id(4)
        .with_protocol_type(Some(s("consumer")))
        .with_protocol_name(Some(s("cooperative-sticky")))
        .with_leader(s("member-1"))
        .with_member_id(s("member-1"))
        .with_members(vec![
            m::join_group_response::JoinGroupResponseMember::default()
                .with_member_id(s("member-1"))
                .with_metadata(subscription(3)),
            m::join_group_response::JoinGroupResponseMember::default()
                .with_member_id(s("member-2"))
                .with_group_instance_id(Some(s("static-2")))
                .with_metadata(subscription(0)),
        ])
}

fn sync_group() -> m::SyncGroupResponse {
    m::SyncGroupResponse::default()
        .with_protocol_type(Some(s("consumer")))
        .with_protocol_name(Some(s("range")))
        .with_assignment(assignment(1))
}

fn response_seeds(records: &Bytes) -> usize {
    let mut n = 0;
    for key in RESPONSE_APIS {
        let (min, max) = client_versions(key).unwrap();
        for version in min..=max {
            macro_rules! put {
                ($label:expr, $msg:expr) => {
                    if let Some(data) = encode_response(key, version, &$msg) {
                        write(
                            "responses",
                            &format!("{key:?}-v{version}-{}", $label),
                            &data,
                        );
                        n += 1;
                    }
                };
            }
            match key {
                ApiKey::Produce => {
                    put!("default", m::ProduceResponse::default());
                    put!("full", produce());
                }
                ApiKey::Fetch => {
                    put!("default", m::FetchResponse::default());
                    put!("full", fetch(records.clone()));
                }
                ApiKey::Metadata => {
                    put!("default", m::MetadataResponse::default());
                    put!("full", metadata());
                }
                ApiKey::ApiVersions => put!("full", api_versions()),
                ApiKey::FindCoordinator => put!(
                    "full",
                    m::FindCoordinatorResponse::default()
                        .with_node_id(BrokerId(2))
                        .with_host(s("localhost"))
                        .with_port(9093)
                        .with_coordinators(vec![
                            m::find_coordinator_response::Coordinator::default()
                                .with_key(s("group"))
                                .with_node_id(BrokerId(2))
                                .with_host(s("localhost"))
                                .with_port(9093)
                        ])
                ),
                ApiKey::JoinGroup => put!("full", join_group()),
                ApiKey::SyncGroup => put!("full", sync_group()),
                ApiKey::Heartbeat => put!("default", m::HeartbeatResponse::default()),
                ApiKey::LeaveGroup => put!("default", m::LeaveGroupResponse::default()),
                ApiKey::OffsetCommit => put!("default", m::OffsetCommitResponse::default()),
                ApiKey::OffsetFetch => put!("default", m::OffsetFetchResponse::default()),
                ApiKey::ListOffsets => put!("default", m::ListOffsetsResponse::default()),
                ApiKey::InitProducerId => put!(
                    "full",
                    m::InitProducerIdResponse::default()
                        .with_producer_id(m::ProducerId(7))
                        .with_producer_epoch(3)
                ),
                ApiKey::AddPartitionsToTxn => {
                    put!("default", m::AddPartitionsToTxnResponse::default())
                }
                ApiKey::AddOffsetsToTxn => put!("default", m::AddOffsetsToTxnResponse::default()),
                ApiKey::EndTxn => put!("default", m::EndTxnResponse::default()),
                ApiKey::TxnOffsetCommit => put!("default", m::TxnOffsetCommitResponse::default()),
                ApiKey::CreateTopics => put!("default", m::CreateTopicsResponse::default()),
                ApiKey::DeleteTopics => put!("default", m::DeleteTopicsResponse::default()),
                _ => unreachable!(),
            }
        }
    }
    n
}

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");
    if root.exists() {
        fs::remove_dir_all(&root).expect("clear corpus");
    }

    let records = record_seeds();
    for (name, data) in &records {
        write("record_batches", name, data);
    }

    let text: Vec<u8> = b"the quick brown fox jumps over the lazy dog ".repeat(40);
    let mixed: Vec<u8> = (0..700u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    for (ci, codec) in CODECS.iter().enumerate() {
        for (label, payload) in [("empty", &[][..]), ("text", &text), ("mixed", &mixed)] {
            let mut out = BytesMut::new();
            out.extend_from_slice(&[ci as u8]);
            compress(*codec, None, payload, &mut out).expect("compress");
            write("decompress", &format!("{codec}-{label}"), &out);
        }
    }
    // Raw (non-xerial) snappy: the single block of a xerial stream.
    let mut xerial = BytesMut::new();
    compress(Compression::Snappy, None, &text, &mut xerial).unwrap();
    let mut raw = vec![2u8];
    raw.extend_from_slice(&xerial[20..]);
    write("decompress", "snappy-raw", &raw);

    let fetch_records = concat(&[records[1].1.clone(), records[3].1.clone()]);
    let n = response_seeds(&fetch_records);

    for v in 0..=3 {
        write(
            "consumer_protocol",
            &format!("subscription-v{v}"),
            &subscription(v),
        );
        write(
            "consumer_protocol",
            &format!("assignment-v{v}"),
            &assignment(v),
        );
    }
    let mut future = subscription(3).to_vec();
    future[1] = 9; // a version from the future, read with the v3 layout
    future.extend_from_slice(b"new fields");
    write("consumer_protocol", "subscription-v9", &future);

    println!(
        "wrote {} record batch, {} decompress, {n} response and 9 consumer protocol seeds to {}",
        records.len(),
        CODECS.len() * 3 + 1,
        root.display()
    );
}
