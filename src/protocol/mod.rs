//! Protocol glue over the `kafka-protocol` crate: which request types we speak, in which
//! versions, and how a request becomes a frame and a frame becomes a response. No I/O here.
//!
//! Frame layout (both directions): `i32 size` followed by `size` bytes. A request is
//! `header + body`; the correlation id sits at a fixed place (bytes 8..12 of the frame, after
//! the size, api key and api version) so the connection task can stamp it when it writes.

use std::collections::HashMap;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{self as m, ApiKey, RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};

use crate::error::{Error, Result};

pub mod produce;

pub use produce::{encode_produce, ProduceSpec, ProduceTopic};

/// An encoded request frame: `head` (the size prefix, the header with the correlation id,
/// and the start of the body) followed by the `rest` segments, written in order. Only
/// [`encode_produce`] makes frames with segments (record batches shared, not copied).
#[derive(Debug)]
pub struct Frame {
    pub(crate) head: BytesMut,
    pub(crate) rest: Vec<Bytes>,
}

impl Frame {
    /// Total length in bytes (size prefix included).
    pub fn len(&self) -> usize {
        self.head.len() + self.rest.iter().map(Bytes::len).sum::<usize>()
    }

    /// Whether the frame has no bytes (never true for an encoded request).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The frame's bytes in one buffer (a copy; for tests and tools).
    pub fn to_vec(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(self.len());
        v.extend_from_slice(&self.head);
        for s in &self.rest {
            v.extend_from_slice(s);
        }
        v
    }
}

impl From<BytesMut> for Frame {
    fn from(head: BytesMut) -> Frame {
        Frame {
            head,
            rest: Vec::new(),
        }
    }
}

/// Offset of the correlation id inside an encoded frame (size prefix included).
pub const CORRELATION_ID_OFFSET: usize = 8;

/// A request type this client sends: binds the message to its API key and response type.
pub trait ApiRequest: Encodable + Send + 'static {
    /// The API key.
    const KEY: ApiKey;
    /// The response message.
    type Response: Decodable + ClientThrottle + Send + 'static;
}

/// KIP-219: from some version of each API on, a broker over a client's quota answers at once
/// with `throttle_time_ms` and then reads nothing more from that connection until the
/// throttle ends, expecting the client to hold its requests; before that version (and for the
/// APIs that never switched) it delays the answer itself. The versions are the ones Java's
/// responses give in `shouldClientThrottle`.
pub trait ClientThrottle {
    /// The throttle this answer at `version` asks the client to keep (ms; 0: none).
    fn client_throttle_ms(&self, version: i16) -> i32;
}

macro_rules! api_requests {
    (
        client_throttled { $($req:ident => $resp:ident : $key:ident from $since:literal),* $(,)? }
        broker_throttled { $($req2:ident => $resp2:ident : $key2:ident),* $(,)? }
    ) => {
        $(impl ApiRequest for m::$req {
            const KEY: ApiKey = ApiKey::$key;
            type Response = m::$resp;
        }
        impl ClientThrottle for m::$resp {
            #[inline]
            fn client_throttle_ms(&self, version: i16) -> i32 {
                if version >= $since {
                    self.throttle_time_ms
                } else {
                    0
                }
            }
        })*
        $(impl ApiRequest for m::$req2 {
            const KEY: ApiKey = ApiKey::$key2;
            type Response = m::$resp2;
        }
        impl ClientThrottle for m::$resp2 {
            #[inline]
            fn client_throttle_ms(&self, _version: i16) -> i32 {
                0
            }
        })*

        /// The versions kafka-protocol's request *and* response structs of `key` can encode
        /// and decode. This can be narrower than `ApiKey::valid_versions()` (e.g.
        /// OffsetCommit v10 is listed there but its structs stop at v9).
        fn message_versions(key: ApiKey) -> Option<(i16, i16)> {
            use kafka_protocol::protocol::Message;
            match key {
                $(ApiKey::$key => {
                    let (a, b) = (<m::$req as Message>::VERSIONS, <m::$resp as Message>::VERSIONS);
                    Some((a.min.max(b.min), a.max.min(b.max)))
                })*
                $(ApiKey::$key2 => {
                    let (a, b) = (<m::$req2 as Message>::VERSIONS, <m::$resp2 as Message>::VERSIONS);
                    Some((a.min.max(b.min), a.max.min(b.max)))
                })*
                _ => None,
            }
        }
    };
}

api_requests! {
    client_throttled {
        ProduceRequest => ProduceResponse: Produce from 6,
        FetchRequest => FetchResponse: Fetch from 8,
        ListOffsetsRequest => ListOffsetsResponse: ListOffsets from 3,
        MetadataRequest => MetadataResponse: Metadata from 6,
        OffsetCommitRequest => OffsetCommitResponse: OffsetCommit from 4,
        OffsetFetchRequest => OffsetFetchResponse: OffsetFetch from 4,
        FindCoordinatorRequest => FindCoordinatorResponse: FindCoordinator from 2,
        JoinGroupRequest => JoinGroupResponse: JoinGroup from 3,
        HeartbeatRequest => HeartbeatResponse: Heartbeat from 2,
        LeaveGroupRequest => LeaveGroupResponse: LeaveGroup from 2,
        SyncGroupRequest => SyncGroupResponse: SyncGroup from 2,
        DescribeGroupsRequest => DescribeGroupsResponse: DescribeGroups from 2,
        ListGroupsRequest => ListGroupsResponse: ListGroups from 2,
        ApiVersionsRequest => ApiVersionsResponse: ApiVersions from 2,
        CreateTopicsRequest => CreateTopicsResponse: CreateTopics from 3,
        DeleteTopicsRequest => DeleteTopicsResponse: DeleteTopics from 2,
        DeleteRecordsRequest => DeleteRecordsResponse: DeleteRecords from 1,
        InitProducerIdRequest => InitProducerIdResponse: InitProducerId from 1,
        AddPartitionsToTxnRequest => AddPartitionsToTxnResponse: AddPartitionsToTxn from 1,
        AddOffsetsToTxnRequest => AddOffsetsToTxnResponse: AddOffsetsToTxn from 1,
        EndTxnRequest => EndTxnResponse: EndTxn from 1,
        TxnOffsetCommitRequest => TxnOffsetCommitResponse: TxnOffsetCommit from 1,
        DescribeConfigsRequest => DescribeConfigsResponse: DescribeConfigs from 2,
        AlterConfigsRequest => AlterConfigsResponse: AlterConfigs from 1,
        IncrementalAlterConfigsRequest => IncrementalAlterConfigsResponse: IncrementalAlterConfigs from 0,
        CreatePartitionsRequest => CreatePartitionsResponse: CreatePartitions from 1,
        DeleteGroupsRequest => DeleteGroupsResponse: DeleteGroups from 1,
        OffsetDeleteRequest => OffsetDeleteResponse: OffsetDelete from 0,
        CreateAclsRequest => CreateAclsResponse: CreateAcls from 1,
        DescribeAclsRequest => DescribeAclsResponse: DescribeAcls from 1,
        DeleteAclsRequest => DeleteAclsResponse: DeleteAcls from 1,
        ElectLeadersRequest => ElectLeadersResponse: ElectLeaders from 0,
        DescribeLogDirsRequest => DescribeLogDirsResponse: DescribeLogDirs from 1,
        DescribeUserScramCredentialsRequest => DescribeUserScramCredentialsResponse: DescribeUserScramCredentials from 0,
        AlterUserScramCredentialsRequest => AlterUserScramCredentialsResponse: AlterUserScramCredentials from 0,
        AlterPartitionReassignmentsRequest => AlterPartitionReassignmentsResponse: AlterPartitionReassignments from 0,
        ListPartitionReassignmentsRequest => ListPartitionReassignmentsResponse: ListPartitionReassignments from 0,
    }
    broker_throttled {
        OffsetForLeaderEpochRequest => OffsetForLeaderEpochResponse: OffsetForLeaderEpoch,
        DescribeClusterRequest => DescribeClusterResponse: DescribeCluster,
        SaslHandshakeRequest => SaslHandshakeResponse: SaslHandshake,
        SaslAuthenticateRequest => SaslAuthenticateResponse: SaslAuthenticate,
        ShareGroupHeartbeatRequest => ShareGroupHeartbeatResponse: ShareGroupHeartbeat,
        ShareFetchRequest => ShareFetchResponse: ShareFetch,
        ShareAcknowledgeRequest => ShareAcknowledgeResponse: ShareAcknowledge,
        ConsumerGroupHeartbeatRequest => ConsumerGroupHeartbeatResponse: ConsumerGroupHeartbeat,
        ConsumerGroupDescribeRequest => ConsumerGroupDescribeResponse: ConsumerGroupDescribe,
        ShareGroupDescribeRequest => ShareGroupDescribeResponse: ShareGroupDescribe,
        DescribeProducersRequest => DescribeProducersResponse: DescribeProducers,
        DescribeTransactionsRequest => DescribeTransactionsResponse: DescribeTransactions,
        ListTransactionsRequest => ListTransactionsResponse: ListTransactions,
        DescribeClientQuotasRequest => DescribeClientQuotasResponse: DescribeClientQuotas,
        AlterClientQuotasRequest => AlterClientQuotasResponse: AlterClientQuotas,
        DescribeShareGroupOffsetsRequest => DescribeShareGroupOffsetsResponse: DescribeShareGroupOffsets,
        AlterShareGroupOffsetsRequest => AlterShareGroupOffsetsResponse: AlterShareGroupOffsets,
        DeleteShareGroupOffsetsRequest => DeleteShareGroupOffsetsResponse: DeleteShareGroupOffsets,
        UpdateFeaturesRequest => UpdateFeaturesResponse: UpdateFeatures,
    }
}

/// The versions this client is willing to speak for an API, or `None` if it never sends it.
///
/// kafka-protocol's range for the API, intersected with what its request and response structs
/// support, and capped where a newer version changes semantics we have not implemented yet:
/// - Produce <= 12 and Fetch <= 12: v13 addresses topics by id instead of name.
/// - Metadata >= 4 so auto-creation is explicit.
pub fn client_versions(key: ApiKey) -> Option<(i16, i16)> {
    let r = key.valid_versions();
    let (smin, smax) = message_versions(key)?;
    let (min, max) = (r.min.max(smin), r.max.min(smax));
    Some(match key {
        ApiKey::Produce => (3.max(min), 12.min(max)),
        ApiKey::Fetch => (4.max(min), 12.min(max)),
        ApiKey::Metadata => (4.max(min), max),
        ApiKey::ApiVersions
        | ApiKey::ListOffsets
        | ApiKey::OffsetCommit
        | ApiKey::OffsetFetch
        | ApiKey::FindCoordinator
        | ApiKey::JoinGroup
        | ApiKey::Heartbeat
        | ApiKey::LeaveGroup
        | ApiKey::SyncGroup
        | ApiKey::DescribeGroups
        | ApiKey::ListGroups
        | ApiKey::CreateTopics
        | ApiKey::DeleteTopics
        | ApiKey::DeleteRecords
        | ApiKey::InitProducerId
        | ApiKey::OffsetForLeaderEpoch
        | ApiKey::AddPartitionsToTxn
        | ApiKey::AddOffsetsToTxn
        | ApiKey::EndTxn
        | ApiKey::TxnOffsetCommit
        | ApiKey::DescribeConfigs
        | ApiKey::AlterConfigs
        | ApiKey::IncrementalAlterConfigs
        | ApiKey::CreatePartitions
        | ApiKey::DeleteGroups
        | ApiKey::DescribeCluster
        | ApiKey::OffsetDelete
        | ApiKey::SaslHandshake
        | ApiKey::SaslAuthenticate
        | ApiKey::ShareGroupHeartbeat
        | ApiKey::ShareFetch
        | ApiKey::ShareAcknowledge
        | ApiKey::ConsumerGroupHeartbeat
        | ApiKey::ConsumerGroupDescribe
        | ApiKey::ShareGroupDescribe
        | ApiKey::CreateAcls
        | ApiKey::DescribeAcls
        | ApiKey::DeleteAcls
        | ApiKey::DescribeProducers
        | ApiKey::DescribeTransactions
        | ApiKey::ListTransactions
        | ApiKey::ElectLeaders
        | ApiKey::DescribeLogDirs
        | ApiKey::DescribeClientQuotas
        | ApiKey::AlterClientQuotas
        | ApiKey::DescribeUserScramCredentials
        | ApiKey::AlterUserScramCredentials
        | ApiKey::DescribeShareGroupOffsets
        | ApiKey::AlterShareGroupOffsets
        | ApiKey::DeleteShareGroupOffsets
        | ApiKey::AlterPartitionReassignments
        | ApiKey::ListPartitionReassignments
        | ApiKey::UpdateFeatures => (min, max),
        _ => return None,
    })
}

/// A broker's supported version range per API plus its finalized features, learned from
/// ApiVersions at connection time.
#[derive(Debug, Clone, Default)]
pub struct BrokerVersions {
    ranges: HashMap<i16, (i16, i16)>,
    /// Finalized feature levels (e.g. `transaction.version`, `metadata.version`).
    pub finalized_features: HashMap<String, i16>,
}

impl BrokerVersions {
    /// Builds the table from an ApiVersions response.
    pub fn from_response(resp: &m::ApiVersionsResponse) -> Self {
        let ranges = resp
            .api_keys
            .iter()
            .map(|k| (k.api_key, (k.min_version, k.max_version)))
            .collect();
        let finalized_features = resp
            .finalized_features
            .iter()
            .map(|f| (f.name.as_str().to_string(), f.max_version_level))
            .collect();
        BrokerVersions {
            ranges,
            finalized_features,
        }
    }

    /// The broker's range for an API, if it supports it at all.
    pub fn broker_range(&self, key: ApiKey) -> Option<(i16, i16)> {
        self.ranges.get(&(key as i16)).copied()
    }

    /// The version to use: min(client max, broker max), provided the ranges overlap.
    pub fn negotiate(&self, key: ApiKey) -> Result<i16> {
        let (cmin, cmax) = client_versions(key).ok_or_else(|| Error::UnsupportedApi {
            api: format!("{key:?}"),
            client_min: -1,
            client_max: -1,
        })?;
        let unsupported = || Error::UnsupportedApi {
            api: format!("{key:?}"),
            client_min: cmin,
            client_max: cmax,
        };
        let (bmin, bmax) = self.broker_range(key).ok_or_else(unsupported)?;
        let v = cmax.min(bmax);
        if v < cmin.max(bmin) {
            return Err(unsupported());
        }
        Ok(v)
    }

    /// A finalized feature level, e.g. `transaction.version`.
    pub fn feature(&self, name: &str) -> Option<i16> {
        self.finalized_features.get(name).copied()
    }
}

/// The request header of `key` at `version` (correlation id 0) and the header's version.
fn request_header(key: ApiKey, version: i16, client_id: &str) -> (RequestHeader, i16) {
    let header = RequestHeader::default()
        .with_request_api_key(key as i16)
        .with_request_api_version(version)
        .with_correlation_id(0)
        .with_client_id(Some(StrBytes::from_string(client_id.to_string())));
    (header, key.request_header_version(version))
}

/// Encodes a full request frame (size prefix included) with correlation id 0; the connection
/// stamps the real id at [`CORRELATION_ID_OFFSET`] when it writes the frame.
pub fn encode_request<R: ApiRequest>(req: &R, version: i16, client_id: &str) -> Result<BytesMut> {
    let (header, header_version) = request_header(R::KEY, version, client_id);
    let size = header
        .compute_size(header_version)
        .and_then(|h| req.compute_size(version).map(|b| h + b))
        .map_err(|e| {
            Error::InvalidArgument(format!("cannot encode {:?} v{version}: {e}", R::KEY))
        })?;
    let mut buf = BytesMut::with_capacity(4 + size);
    buf.put_i32(size as i32);
    header
        .encode(&mut buf, header_version)
        .and_then(|_| req.encode(&mut buf, version))
        .map_err(|e| {
            Error::InvalidArgument(format!("cannot encode {:?} v{version}: {e}", R::KEY))
        })?;
    debug_assert_eq!(buf.len(), 4 + size);
    Ok(buf)
}

/// Reads the correlation id of a response frame body (size prefix already removed).
pub fn response_correlation_id(body: &[u8]) -> Result<i32> {
    if body.len() < 4 {
        return Err(Error::Protocol(format!(
            "response of {} bytes is too short for a header",
            body.len()
        )));
    }
    Ok(i32::from_be_bytes([body[0], body[1], body[2], body[3]]))
}

/// Decodes a response body (size prefix removed) of API `key` at `version`.
///
/// The whole body must be consumed; trailing bytes are a protocol error (they mean we and
/// the broker disagree about the version).
pub fn decode_response<T: Decodable>(key: ApiKey, version: i16, mut body: Bytes) -> Result<T> {
    let header_version = key.response_header_version(version);
    let _header = ResponseHeader::decode(&mut body, header_version)
        .map_err(|e| Error::Protocol(format!("bad {key:?} v{version} response header: {e}")))?;
    let resp = T::decode(&mut body, version)
        .map_err(|e| Error::Protocol(format!("bad {key:?} v{version} response: {e}")))?;
    if body.has_remaining() {
        return Err(Error::Protocol(format!(
            "{key:?} v{version} response has {} unexpected trailing bytes",
            body.remaining()
        )));
    }
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::api_versions_response::ApiVersion;

    #[test]
    fn frame_has_size_and_correlation_slot() {
        let req = m::MetadataRequest::default();
        let f = encode_request(&req, 9, "cid").unwrap();
        let size = i32::from_be_bytes(f[0..4].try_into().unwrap()) as usize;
        assert_eq!(size + 4, f.len());
        assert_eq!(i16::from_be_bytes([f[4], f[5]]), ApiKey::Metadata as i16);
        assert_eq!(i16::from_be_bytes([f[6], f[7]]), 9);
        assert_eq!(&f[8..12], &[0, 0, 0, 0]);
    }

    #[test]
    fn client_throttle_from_the_kip_219_versions() {
        let produce = m::ProduceResponse::default().with_throttle_time_ms(700);
        assert_eq!(produce.client_throttle_ms(5), 0, "v5: the broker delays the answer");
        assert_eq!(produce.client_throttle_ms(6), 700);
        let metadata = m::MetadataResponse::default().with_throttle_time_ms(300);
        assert_eq!(metadata.client_throttle_ms(5), 0);
        assert_eq!(metadata.client_throttle_ms(12), 300);
        let share = m::ShareFetchResponse::default().with_throttle_time_ms(300);
        assert_eq!(share.client_throttle_ms(1), 0, "ShareFetch never switched");
    }

    #[test]
    fn negotiation_picks_min_of_maxima() {
        let resp = m::ApiVersionsResponse::default().with_api_keys(vec![
            ApiVersion::default()
                .with_api_key(ApiKey::Produce as i16)
                .with_min_version(0)
                .with_max_version(11),
            ApiVersion::default()
                .with_api_key(ApiKey::Fetch as i16)
                .with_min_version(0)
                .with_max_version(17),
            ApiVersion::default()
                .with_api_key(ApiKey::Metadata as i16)
                .with_min_version(0)
                .with_max_version(3),
        ]);
        let v = BrokerVersions::from_response(&resp);
        assert_eq!(v.negotiate(ApiKey::Produce).unwrap(), 11);
        assert_eq!(v.negotiate(ApiKey::Fetch).unwrap(), 12);
        // Broker max 3 is below our minimum 4 for Metadata.
        assert!(matches!(
            v.negotiate(ApiKey::Metadata),
            Err(Error::UnsupportedApi { .. })
        ));
        // Not advertised at all.
        assert!(v.negotiate(ApiKey::EndTxn).is_err());
    }

    #[test]
    fn client_versions_fit_the_message_structs() {
        use kafka_protocol::protocol::Message;
        assert_eq!(client_versions(ApiKey::OffsetCommit).unwrap().1, 9);
        assert_eq!(client_versions(ApiKey::OffsetFetch).unwrap().1, 9);
        let (_, max) = client_versions(ApiKey::JoinGroup).unwrap();
        assert!(max <= <m::JoinGroupRequest as Message>::VERSIONS.max);
        // Every API we speak can encode a default request at both ends of our range.
        for key in [
            ApiKey::Metadata,
            ApiKey::ApiVersions,
            ApiKey::FindCoordinator,
            ApiKey::Heartbeat,
        ] {
            let (min, max) = client_versions(key).unwrap();
            assert!(min <= max, "{key:?}");
        }
        let (min, max) = client_versions(ApiKey::Metadata).unwrap();
        for v in [min, max] {
            encode_request(&m::MetadataRequest::default(), v, "c").unwrap();
        }
    }

    #[test]
    fn trailing_bytes_are_rejected() {
        let mut body = BytesMut::new();
        body.put_i32(7); // correlation id, header v0
        body.put_i16(0); // error code
        body.put_i32(0); // api keys array (v0)
        body.put_u8(0xff);
        let r: Result<m::ApiVersionsResponse> =
            decode_response(ApiKey::ApiVersions, 0, body.freeze());
        assert!(matches!(r, Err(Error::Protocol(_))));
    }
}
