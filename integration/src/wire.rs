//! Minimal blocking Kafka request/response over `std::net::TcpStream`, encoded with
//! `kafka-protocol`. Used for readiness probes, metadata and topic creation only.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, ApiVersionsResponse, CreateTopicsRequest, CreateTopicsResponse,
    MetadataRequest, MetadataResponse, RequestHeader, ResponseHeader, TopicName,
};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, StrBytes};

use crate::error::{Result, TestkitError};

/// Metadata request version used by the kit (flexible, supported by Kafka 3.x and 4.x).
const METADATA_VERSION: i16 = 12;
/// CreateTopics request version used by the kit.
const CREATE_TOPICS_VERSION: i16 = 7;

fn proto_err(addr: &str, detail: impl Into<String>) -> TestkitError {
    TestkitError::Protocol {
        addr: addr.to_string(),
        detail: detail.into(),
    }
}

fn resolve(addr: &str) -> Result<SocketAddr> {
    addr.to_socket_addrs()
        .map_err(|e| proto_err(addr, format!("cannot resolve: {e}")))?
        .next()
        .ok_or_else(|| proto_err(addr, "address resolved to nothing"))
}

/// Sends one request and reads its response. Every socket operation is bounded by `timeout`.
pub(crate) fn round_trip<Req, Resp>(
    addr: &str,
    api_key: ApiKey,
    req: &Req,
    version: i16,
    timeout: Duration,
) -> Result<Resp>
where
    Req: Encodable + HeaderVersion,
    Resp: Decodable + HeaderVersion,
{
    let sock = resolve(addr)?;
    let mut stream = TcpStream::connect_timeout(&sock, timeout)
        .map_err(|e| proto_err(addr, format!("connect: {e}")))?;
    stream
        .set_read_timeout(Some(timeout))
        .and_then(|_| stream.set_write_timeout(Some(timeout)))
        .and_then(|_| stream.set_nodelay(true))
        .map_err(|e| proto_err(addr, format!("socket options: {e}")))?;

    let correlation_id = 7;
    let header = RequestHeader::default()
        .with_request_api_key(api_key as i16)
        .with_request_api_version(version)
        .with_correlation_id(correlation_id)
        .with_client_id(Some(StrBytes::from_static_str("kafka-testkit")));
    let mut body = BytesMut::new();
    header
        .encode(&mut body, Req::header_version(version))
        .and_then(|_| req.encode(&mut body, version))
        .map_err(|e| proto_err(addr, format!("encode: {e}")))?;
    let mut frame = BytesMut::with_capacity(body.len() + 4);
    frame.put_i32(body.len() as i32);
    frame.put_slice(&body);
    stream
        .write_all(&frame)
        .map_err(|e| proto_err(addr, format!("write: {e}")))?;

    let mut len = [0u8; 4];
    stream
        .read_exact(&mut len)
        .map_err(|e| proto_err(addr, format!("read response size: {e}")))?;
    let len = i32::from_be_bytes(len);
    if !(0..=64 * 1024 * 1024).contains(&len) {
        return Err(proto_err(addr, format!("bad response size {len}")));
    }
    let mut buf = vec![0u8; len as usize];
    stream
        .read_exact(&mut buf)
        .map_err(|e| proto_err(addr, format!("read response: {e}")))?;
    let mut buf = Bytes::from(buf);
    let resp_header = ResponseHeader::decode(&mut buf, Resp::header_version(version))
        .map_err(|e| proto_err(addr, format!("decode response header: {e}")))?;
    if resp_header.correlation_id != correlation_id {
        return Err(proto_err(
            addr,
            format!(
                "correlation id {} != {correlation_id}",
                resp_header.correlation_id
            ),
        ));
    }
    Resp::decode(&mut buf, version).map_err(|e| proto_err(addr, format!("decode response: {e}")))
}

/// ApiVersions v0 round trip; returns the response (error code checked).
pub(crate) fn api_versions(addr: &str, timeout: Duration) -> Result<ApiVersionsResponse> {
    let resp: ApiVersionsResponse = round_trip(
        addr,
        ApiKey::ApiVersions,
        &ApiVersionsRequest::default(),
        0,
        timeout,
    )?;
    if resp.error_code != 0 {
        return Err(proto_err(
            addr,
            format!("ApiVersions error code {}", resp.error_code),
        ));
    }
    Ok(resp)
}

/// Metadata for the given topics (`None` = all topics).
pub(crate) fn metadata(
    addr: &str,
    topics: Option<&[&str]>,
    timeout: Duration,
) -> Result<MetadataResponse> {
    use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
    let topics = topics.map(|ts| {
        ts.iter()
            .map(|t| {
                MetadataRequestTopic::default()
                    .with_name(Some(TopicName(StrBytes::from_string(t.to_string()))))
            })
            .collect()
    });
    let req = MetadataRequest::default()
        .with_topics(topics)
        .with_allow_auto_topic_creation(false);
    round_trip(addr, ApiKey::Metadata, &req, METADATA_VERSION, timeout)
}

/// Sends CreateTopics for one topic; returns the response.
pub(crate) fn create_topic(
    addr: &str,
    name: &str,
    partitions: i32,
    replication: i16,
    configs: &[(&str, &str)],
    timeout: Duration,
) -> Result<CreateTopicsResponse> {
    let topic = CreatableTopic::default()
        .with_name(TopicName(StrBytes::from_string(name.to_string())))
        .with_num_partitions(partitions)
        .with_replication_factor(replication)
        .with_configs(
            configs
                .iter()
                .map(|(k, v)| {
                    CreatableTopicConfig::default()
                        .with_name(StrBytes::from_string(k.to_string()))
                        .with_value(Some(StrBytes::from_string(v.to_string())))
                })
                .collect(),
        );
    let req = CreateTopicsRequest::default()
        .with_topics(vec![topic])
        .with_timeout_ms(timeout.as_millis().min(i32::MAX as u128) as i32)
        .with_validate_only(false);
    round_trip(
        addr,
        ApiKey::CreateTopics,
        &req,
        CREATE_TOPICS_VERSION,
        timeout,
    )
}

/// The name of a Kafka error code, for messages.
pub(crate) fn error_name(code: i16) -> String {
    match kafka_protocol::ResponseError::try_from_code(code) {
        Some(e) => format!("{e:?} ({code})"),
        None => "NONE (0)".to_string(),
    }
}

/// CreateAcls / DescribeAcls request version used by the kit (flexible; Kafka 2.8+ and 4.x).
const ACLS_VERSION: i16 = 3;

/// One ACL binding in wire codes (resource type, name, pattern type, principal, operation,
/// permission type); the host is always `*`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AclBinding {
    pub(crate) resource_type: i8,
    pub(crate) resource_name: String,
    pub(crate) pattern_type: i8,
    pub(crate) principal: String,
    pub(crate) operation: i8,
    pub(crate) permission: i8,
}

/// Sends CreateAcls for `acls`; fails on the first error code.
pub(crate) fn create_acls(addr: &str, acls: &[AclBinding], timeout: Duration) -> Result<()> {
    use kafka_protocol::messages::create_acls_request::AclCreation;
    use kafka_protocol::messages::{CreateAclsRequest, CreateAclsResponse};
    let creations = acls
        .iter()
        .map(|a| {
            AclCreation::default()
                .with_resource_type(a.resource_type)
                .with_resource_name(StrBytes::from_string(a.resource_name.clone()))
                .with_resource_pattern_type(a.pattern_type)
                .with_principal(StrBytes::from_string(a.principal.clone()))
                .with_host(StrBytes::from_static_str("*"))
                .with_operation(a.operation)
                .with_permission_type(a.permission)
        })
        .collect();
    let req = CreateAclsRequest::default().with_creations(creations);
    let resp: CreateAclsResponse =
        round_trip(addr, ApiKey::CreateAcls, &req, ACLS_VERSION, timeout)?;
    for (r, a) in resp.results.iter().zip(acls) {
        if r.error_code != 0 {
            return Err(proto_err(
                addr,
                format!(
                    "CreateAcls {a:?}: {}{}",
                    error_name(r.error_code),
                    r.error_message
                        .as_ref()
                        .map(|m| format!(": {}", m.as_str()))
                        .unwrap_or_default()
                ),
            ));
        }
    }
    Ok(())
}

/// Whether the broker at `addr` (its authorizer's current view) has the binding `acl`.
pub(crate) fn has_acl(addr: &str, acl: &AclBinding, timeout: Duration) -> Result<bool> {
    use kafka_protocol::messages::{DescribeAclsRequest, DescribeAclsResponse};
    let req = DescribeAclsRequest::default()
        .with_resource_type_filter(acl.resource_type)
        .with_resource_name_filter(Some(StrBytes::from_string(acl.resource_name.clone())))
        .with_pattern_type_filter(acl.pattern_type)
        .with_principal_filter(Some(StrBytes::from_string(acl.principal.clone())))
        .with_host_filter(None)
        .with_operation(acl.operation)
        .with_permission_type(acl.permission);
    let resp: DescribeAclsResponse =
        round_trip(addr, ApiKey::DescribeAcls, &req, ACLS_VERSION, timeout)?;
    if resp.error_code != 0 {
        return Err(proto_err(
            addr,
            format!("DescribeAcls: {}", error_name(resp.error_code)),
        ));
    }
    Ok(resp.resources.iter().any(|r| !r.acls.is_empty()))
}
