//! Produce requests encoded without copying record batches.
//!
//! A Produce request is mostly record batches that already sit in their own buffers (sealed
//! by the accumulator). Encoding it through kafka-protocol's `ProduceRequest` copies every
//! batch into the frame; [`encode_produce`] instead writes the small fields itself and
//! returns a [`Frame`] whose segments reference the batches, so the connection writes them
//! straight from where they are (one copy fewer per byte, and no second buffer of the
//! request's size while it is in flight). Versions 3..=12 (v13 names topics by id, which
//! this client does not negotiate). The byte stream equals kafka-protocol's encoding of the
//! same request; the tests below hold it to that.

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::ApiKey;
use kafka_protocol::protocol::Encodable;

use super::Frame;
use crate::error::{Error, Result};

/// One topic of a Produce request: its name and `(partition, batch bytes)` pairs.
#[derive(Debug, Clone)]
pub struct ProduceTopic<'a> {
    /// The topic name.
    pub name: &'a str,
    /// Partition index and the encoded record batches for it.
    pub partitions: Vec<(i32, Bytes)>,
}

/// The fields of a Produce request (v3..=12).
#[derive(Debug, Clone)]
pub struct ProduceSpec<'a> {
    /// Transactional id (transactional producers only).
    pub transactional_id: Option<&'a str>,
    /// 0, 1 or -1 (all).
    pub acks: i16,
    /// How long the broker may wait for replication, in milliseconds.
    pub timeout_ms: i32,
    /// The topics with their partitions' batches.
    pub topics: Vec<ProduceTopic<'a>>,
}

/// Batches at least this large travel as their own frame segment; smaller ones are copied
/// next to the fields around them (a segment costs more than copying a few hundred bytes).
const SEGMENT_MIN: usize = 4096;

fn too_long(what: &str) -> Error {
    Error::InvalidArgument(format!("cannot encode Produce: {what} is too long"))
}

fn put_uvarint(buf: &mut BytesMut, mut v: u64) {
    while v >= 0x80 {
        buf.put_u8((v as u8) | 0x80);
        v >>= 7;
    }
    buf.put_u8(v as u8);
}

fn put_str(buf: &mut BytesMut, s: Option<&str>, flexible: bool) -> Result<()> {
    match (s, flexible) {
        (None, true) => put_uvarint(buf, 0),
        (None, false) => buf.put_i16(-1),
        (Some(s), true) => {
            put_uvarint(buf, s.len() as u64 + 1);
            buf.put_slice(s.as_bytes());
        }
        (Some(s), false) => {
            let n = i16::try_from(s.len()).map_err(|_| too_long("a string"))?;
            buf.put_i16(n);
            buf.put_slice(s.as_bytes());
        }
    }
    Ok(())
}

fn put_count(buf: &mut BytesMut, n: usize, flexible: bool) -> Result<()> {
    if flexible {
        put_uvarint(buf, n as u64 + 1);
    } else {
        buf.put_i32(i32::try_from(n).map_err(|_| too_long("an array"))?);
    }
    Ok(())
}

/// Encodes a Produce request at `version` (3..=12) as a frame (size prefix included,
/// correlation id 0 — the connection stamps it) whose large batches are shared, not copied.
pub fn encode_produce(spec: &ProduceSpec<'_>, version: i16, client_id: &str) -> Result<Frame> {
    if !(3..=12).contains(&version) {
        return Err(Error::InvalidArgument(format!(
            "cannot encode Produce v{version} (supported: v3..=v12)"
        )));
    }
    let flexible = version >= 9;
    let (header, header_version) = super::request_header(ApiKey::Produce, version, client_id);
    let small: usize = spec
        .topics
        .iter()
        .map(|t| 16 + t.name.len() + t.partitions.len() * 16)
        .sum();
    let mut head = BytesMut::with_capacity(64 + client_id.len() + small);
    head.put_i32(0); // size, patched below
    header
        .encode(&mut head, header_version)
        .map_err(|e| Error::InvalidArgument(format!("cannot encode Produce header: {e}")))?;
    let mut rest: Vec<Bytes> = Vec::new();
    let mut buf = head;
    put_str(&mut buf, spec.transactional_id, flexible)?;
    buf.put_i16(spec.acks);
    buf.put_i32(spec.timeout_ms);
    put_count(&mut buf, spec.topics.len(), flexible)?;
    // The first segment (with the size and correlation id) stays in `head`; later ones are
    // split off `buf` as they end.
    let mut head: Option<BytesMut> = None;
    for t in &spec.topics {
        put_str(&mut buf, Some(t.name), flexible)?;
        put_count(&mut buf, t.partitions.len(), flexible)?;
        for (index, records) in &t.partitions {
            buf.put_i32(*index);
            if flexible {
                put_uvarint(&mut buf, records.len() as u64 + 1);
            } else {
                buf.put_i32(i32::try_from(records.len()).map_err(|_| too_long("a batch"))?);
            }
            if records.len() >= SEGMENT_MIN {
                let piece = buf.split();
                match head {
                    None => head = Some(piece),
                    Some(_) => rest.push(piece.freeze()),
                }
                rest.push(records.clone());
            } else {
                buf.put_slice(records);
            }
            if flexible {
                put_uvarint(&mut buf, 0); // partition tagged fields
            }
        }
        if flexible {
            put_uvarint(&mut buf, 0); // topic tagged fields
        }
    }
    if flexible {
        put_uvarint(&mut buf, 0); // request tagged fields
    }
    let mut head = match head {
        None => buf,
        Some(h) => {
            if !buf.is_empty() {
                rest.push(buf.freeze());
            }
            h
        }
    };
    let total = head.len() + rest.iter().map(Bytes::len).sum::<usize>() - 4;
    let size = i32::try_from(total).map_err(|_| too_long("the request"))?;
    head[..4].copy_from_slice(&size.to_be_bytes());
    Ok(Frame { head, rest })
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
    use kafka_protocol::messages::{ProduceRequest, TopicName, TransactionalId};
    use kafka_protocol::protocol::StrBytes;

    fn reference(spec: &ProduceSpec<'_>, version: i16) -> Vec<u8> {
        let req = ProduceRequest::default()
            .with_transactional_id(
                spec.transactional_id
                    .map(|s| TransactionalId(StrBytes::from_string(s.to_string()))),
            )
            .with_acks(spec.acks)
            .with_timeout_ms(spec.timeout_ms)
            .with_topic_data(
                spec.topics
                    .iter()
                    .map(|t| {
                        TopicProduceData::default()
                            .with_name(TopicName(StrBytes::from_string(t.name.to_string())))
                            .with_partition_data(
                                t.partitions
                                    .iter()
                                    .map(|(i, b)| {
                                        PartitionProduceData::default()
                                            .with_index(*i)
                                            .with_records(Some(b.clone()))
                                    })
                                    .collect(),
                            )
                    })
                    .collect(),
            );
        super::super::encode_request(&req, version, "client-1")
            .unwrap()
            .to_vec()
    }

    fn batch(n: usize, seed: u8) -> Bytes {
        (0..n)
            .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
            .collect::<Vec<u8>>()
            .into()
    }

    #[test]
    fn same_bytes_as_kafka_protocol_for_every_version() {
        let long_name = "t".repeat(200);
        let specs = [
            ProduceSpec {
                transactional_id: None,
                acks: -1,
                timeout_ms: 30_000,
                topics: vec![ProduceTopic {
                    name: "a",
                    partitions: vec![(0, batch(100, 1))],
                }],
            },
            ProduceSpec {
                transactional_id: Some("txn-7"),
                acks: 1,
                timeout_ms: 5,
                topics: vec![
                    ProduceTopic {
                        name: "orders",
                        partitions: vec![
                            (2, batch(70_000, 2)),
                            (0, batch(10, 3)),
                            (1, batch(SEGMENT_MIN, 4)),
                        ],
                    },
                    ProduceTopic {
                        name: &long_name,
                        partitions: vec![(5, batch(SEGMENT_MIN - 1, 5)), (6, batch(9_000, 6))],
                    },
                ],
            },
            ProduceSpec {
                transactional_id: None,
                acks: 0,
                timeout_ms: 1,
                topics: vec![],
            },
        ];
        for spec in &specs {
            for v in 3..=12 {
                let f = encode_produce(spec, v, "client-1").unwrap();
                assert_eq!(f.to_vec(), reference(spec, v), "v{v} {spec:?}");
                assert_eq!(f.len(), reference(spec, v).len());
            }
        }
    }

    #[test]
    fn large_batches_are_shared_not_copied() {
        let big = batch(100_000, 9);
        let spec = ProduceSpec {
            transactional_id: None,
            acks: -1,
            timeout_ms: 1000,
            topics: vec![ProduceTopic {
                name: "a",
                partitions: vec![(0, big.clone()), (1, batch(8, 1)), (2, big.clone())],
            }],
        };
        let f = encode_produce(&spec, 9, "c").unwrap();
        let shared = f
            .rest
            .iter()
            .filter(|s| s.as_ptr() == big.as_ptr() && s.len() == big.len())
            .count();
        assert_eq!(shared, 2, "both large batches travel by reference");
        assert!(f.head.len() < 100);
    }

    #[test]
    fn unsupported_versions_are_errors() {
        let spec = ProduceSpec {
            transactional_id: None,
            acks: 1,
            timeout_ms: 1,
            topics: vec![],
        };
        assert!(encode_produce(&spec, 2, "c").is_err());
        assert!(encode_produce(&spec, 13, "c").is_err());
    }
}
