//! An in-process mock Kafka broker on 127.0.0.1, for tests and benchmarks that need a broker
//! but not a real one: fast to start, deterministic, and scriptable with faults.
//!
//! Tests reach it as `support::mock_broker` (after `mod support;`, see `support/mod.rs`);
//! benches, which cannot declare `mod support;`, include this file alone with
//! `#[path = "../tests/support/mock_broker.rs"] mod mock_broker;`.
//!
//! # What it answers
//! - **ApiVersions**: ApiVersions, Metadata, InitProducerId and Produce, each over the version
//!   range kafka-protocol's request *and* response structs support. Any other API closes the
//!   connection (as a real broker does with a request it cannot parse).
//! - **Metadata**: its brokers (one, node [`MockBroker::NODE_ID`], or several from
//!   [`MockBroker::start_nodes`], each its own listener over one shared state); node 0 leads
//!   every partition unless [`MockBroker::set_leader`] moved it (or took its leader away:
//!   leader -1, LEADER_NOT_AVAILABLE); unknown topics get UNKNOWN_TOPIC_OR_PARTITION.
//! - **InitProducerId**: a new producer id with epoch 0, or — when the request carries a
//!   producer id and epoch, as an idempotent producer's KIP-360 bump does — see
//!   [`InitPidMode`].
//! - **Produce**: a node that does not lead a partition answers NOT_LEADER_OR_FOLLOWER for
//!   it; otherwise acknowledges at once. The records are not decoded; only the batch header is
//!   read (producer id, epoch, base sequence, record count) to assign offsets (each partition's
//!   log end grows by the batch's record count) and, for idempotent batches, to check
//!   sequences like a broker does (see [`MockBroker::validate_sequences`]).
//!
//! # Faults
//! [`MockBroker::inject`] queues a [`Fault`]. Each request consumes the first queued fault
//! that matches it (same API; for a partition-scoped Produce fault, a request that carries
//! that partition), so a test can script "the first Produce to partition 0 answers
//! UNKNOWN_PRODUCER_ID, the next InitProducerId answers COORDINATOR_LOAD_IN_PROGRESS" and
//! everything else behaves normally. Besides error codes a fault can delay, withhold the
//! answer, close the connection, leave a partition out of a Produce answer
//! ([`Fault::omit_partition`]) or answer with an undecodable body ([`Fault::garbage`]);
//! [`MockBroker::fail_bumps`] makes every epoch-bump InitProducerId fail. Responses are written in request order per connection,
//! so a delayed response delays the ones behind it, as with a real broker.
//!
//! # Observing
//! Every request is logged ([`MockBroker::requests`]) with what the mock answered, so tests
//! can assert on the exact sequence of InitProducerId calls, epochs and sequences.
//! [`MockBroker::produced`] lists just the Produce batches.
#![allow(dead_code)] // each test or bench uses a different part

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, ApiVersionsResponse, BrokerId, InitProducerIdRequest,
    InitProducerIdResponse, MetadataRequest, MetadataResponse, ProduceRequest, ProduceResponse,
    ProducerId, RequestHeader, ResponseHeader, TopicName,
};
use kafka_protocol::protocol::{Decodable, Encodable, Message, StrBytes};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// Kafka error codes the mock uses or tests commonly inject.
pub mod code {
    pub const NONE: i16 = 0;
    pub const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
    pub const NOT_LEADER_OR_FOLLOWER: i16 = 6;
    pub const LEADER_NOT_AVAILABLE: i16 = 5;
    pub const REQUEST_TIMED_OUT: i16 = 7;
    pub const MESSAGE_TOO_LARGE: i16 = 10;
    pub const COORDINATOR_LOAD_IN_PROGRESS: i16 = 14;
    pub const NOT_ENOUGH_REPLICAS: i16 = 19;
    pub const UNSUPPORTED_VERSION: i16 = 35;
    pub const OUT_OF_ORDER_SEQUENCE_NUMBER: i16 = 45;
    pub const DUPLICATE_SEQUENCE_NUMBER: i16 = 46;
    pub const INVALID_PRODUCER_EPOCH: i16 = 47;
    pub const INVALID_PRODUCER_ID_MAPPING: i16 = 49;
    pub const UNKNOWN_PRODUCER_ID: i16 = 59;
}

/// How InitProducerId answers a request that carries an existing producer id and epoch (an
/// idempotent producer bumping its epoch, KIP-360). A request without one (-1/-1) always
/// gets a fresh producer id with epoch 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InitPidMode {
    /// Same producer id, epoch + 1, when the given epoch is the id's current one (else
    /// INVALID_PRODUCER_EPOCH; an id the mock never issued gets INVALID_PRODUCER_ID_MAPPING).
    /// This is what the transaction coordinator does for a transactional id.
    BumpEpoch,
    /// A fresh producer id with epoch 0, ignoring the given id: what Kafka brokers do for a
    /// producer without a transactional id.
    NewId,
}

/// What a fault does instead of (or before) the normal answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FaultAction {
    /// Answer with this error code: for Produce, in every partition of the request (or only
    /// the targeted partition, see [`Fault::produce_partition`]); for InitProducerId in the
    /// response's error code; for Metadata in every requested topic.
    Error(i16),
    /// Answer normally (after the fault's delay).
    Normal,
    /// Never answer this request; the connection stays open (responses behind it are stuck,
    /// as with a hung broker).
    NoResponse,
    /// Close the connection instead of answering.
    Disconnect,
    /// Produce only: the request is handled normally (batches appended) but the response
    /// leaves out the targeted partition (or every partition without a target).
    OmitPartition,
    /// The request is handled normally (Produce batches appended) but the response body is
    /// bytes that do not decode (the frame and response header are valid).
    Garbage,
}

/// A scripted deviation for one request. Build with the constructors, adjust with
/// [`Fault::after`], queue with [`MockBroker::inject`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    /// The API whose next request this fault applies to.
    pub api: ApiKey,
    /// Produce only: the partition the fault is for (`None`: the whole request).
    pub partition: Option<(String, i32)>,
    /// What happens.
    pub action: FaultAction,
    /// Wait this long before answering (or closing).
    pub delay: Duration,
}

impl Fault {
    /// The next request of `api` answers `error_code`.
    pub fn error(api: ApiKey, error_code: i16) -> Fault {
        Fault {
            api,
            partition: None,
            action: FaultAction::Error(error_code),
            delay: Duration::ZERO,
        }
    }

    /// The next Produce request answers `error_code` for every partition in it.
    pub fn produce(error_code: i16) -> Fault {
        Fault::error(ApiKey::Produce, error_code)
    }

    /// The next Produce request that carries `topic`-`partition` answers `error_code` for that
    /// partition (and normally for the others). The rejected batch is not appended.
    pub fn produce_partition(topic: &str, partition: i32, error_code: i16) -> Fault {
        Fault {
            partition: Some((topic.to_string(), partition)),
            ..Fault::produce(error_code)
        }
    }

    /// The next request of `api` is never answered.
    pub fn no_response(api: ApiKey) -> Fault {
        Fault {
            action: FaultAction::NoResponse,
            ..Fault::error(api, 0)
        }
    }

    /// The connection carrying the next request of `api` is closed instead of answering.
    pub fn disconnect(api: ApiKey) -> Fault {
        Fault {
            action: FaultAction::Disconnect,
            ..Fault::error(api, 0)
        }
    }

    /// The next request of `api` is answered normally, but only after `delay`.
    pub fn delay(api: ApiKey, delay: Duration) -> Fault {
        Fault {
            action: FaultAction::Normal,
            delay,
            ..Fault::error(api, 0)
        }
    }

    /// The next Produce request carrying `topic`-`partition` is applied, but its response
    /// lacks that partition.
    pub fn omit_partition(topic: &str, partition: i32) -> Fault {
        Fault {
            partition: Some((topic.to_string(), partition)),
            action: FaultAction::OmitPartition,
            ..Fault::produce(0)
        }
    }

    /// The next request of `api` is applied, but answered with an undecodable body.
    pub fn garbage(api: ApiKey) -> Fault {
        Fault {
            action: FaultAction::Garbage,
            ..Fault::error(api, 0)
        }
    }

    /// Waits `delay` before acting.
    pub fn after(mut self, delay: Duration) -> Fault {
        self.delay = delay;
        self
    }
}

/// One batch of a Produce request as the mock saw it, with its answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProducedBatch {
    pub topic: String,
    pub partition: i32,
    /// From the batch header (-1 for a non-idempotent batch).
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
    pub record_count: i32,
    /// Whether the batch has the transactional attribute.
    pub transactional: bool,
    /// Size of the partition's records field.
    pub bytes: usize,
    /// What the mock answered for this partition.
    pub error_code: i16,
    /// Offset given to the batch's first record (-1 when refused).
    pub base_offset: i64,
}

/// What a logged request was, with the interesting fields and the mock's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequestBody {
    ApiVersions,
    /// Requested topics (`None`: all).
    Metadata {
        topics: Option<Vec<String>>,
    },
    InitProducerId {
        transactional_id: Option<String>,
        /// The id and epoch the client sent (-1/-1 for a new producer).
        producer_id: i64,
        producer_epoch: i16,
        /// The answer: error code, producer id, epoch.
        error_code: i16,
        new_producer_id: i64,
        new_epoch: i16,
    },
    Produce {
        acks: i16,
        transactional_id: Option<String>,
        batches: Vec<ProducedBatch>,
    },
}

/// A request the mock received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    /// The node whose listener received it.
    pub node: i32,
    pub api_key: ApiKey,
    pub version: i16,
    pub correlation_id: i32,
    /// Which accepted connection it came on (0, 1, ...).
    pub connection: usize,
    pub body: RequestBody,
    /// The fault applied to it, if any.
    pub fault: Option<Fault>,
}

/// Idempotence state of one producer id on one partition.
#[derive(Debug, Clone)]
struct ProducerSeq {
    epoch: i16,
    next_seq: i32,
    /// The last appended batches: (base sequence, record count, base offset).
    recent: VecDeque<(i32, i32, i64)>,
}

#[derive(Debug, Default)]
struct State {
    topics: BTreeMap<String, i32>,
    log: Vec<Received>,
    log_requests: bool,
    faults: VecDeque<Fault>,
    /// Log end offset per partition.
    log_end: HashMap<(String, i32), i64>,
    /// Producer sequence state per (topic, partition, producer id).
    seqs: HashMap<(String, i32, i64), ProducerSeq>,
    validate_sequences: bool,
    /// Current epoch of every producer id issued.
    epochs: HashMap<i64, i16>,
    next_producer_id: i64,
    init_pid_mode: Option<InitPidMode>,
    /// Every InitProducerId that carries a producer id (an epoch bump) answers this code.
    bump_error: Option<i16>,
    /// Leader overrides per partition (-1: no leader); others are led by node 0.
    leaders: HashMap<(String, i32), i32>,
    connections: usize,
}

impl State {
    fn leader(&self, topic: &str, partition: i32) -> i32 {
        self.leaders
            .get(&(topic.to_string(), partition))
            .copied()
            .unwrap_or(MockBroker::NODE_ID)
    }
}

struct Shared {
    /// Listener address of node `i` at index `i` (node 0 = `addr`).
    addrs: Vec<SocketAddr>,
    state: Mutex<State>,
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The mock broker. Stops (closing its listener and connections) when dropped.
pub struct MockBroker {
    shared: Arc<Shared>,
    tasks: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl Drop for MockBroker {
    fn drop(&mut self) {
        for t in self
            .tasks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain(..)
        {
            t.abort();
        }
    }
}

/// Size of the batch header fields the mock reads (see `src/record/batch.rs` for the layout).
const BATCH_HEADER: usize = 61;

impl MockBroker {
    /// The node id the mock reports for itself.
    pub const NODE_ID: i32 = 0;
    /// The first producer id InitProducerId hands out.
    pub const FIRST_PRODUCER_ID: i64 = 1000;

    /// Starts a mock on an ephemeral port of 127.0.0.1 that knows `topics` (name, partition
    /// count), logs every request, validates sequences and bumps epochs
    /// ([`InitPidMode::BumpEpoch`]). Must be called inside a tokio runtime.
    pub async fn start(topics: &[(&str, i32)]) -> MockBroker {
        Self::start_nodes(1, topics).await
    }

    /// Like [`start`](Self::start), with `nodes` brokers (node ids 0..nodes, one listener
    /// each, one shared state). Node 0 leads every partition unless
    /// [`set_leader`](Self::set_leader) says otherwise; a Produce to a node that does not lead
    /// the partition gets NOT_LEADER_OR_FOLLOWER.
    pub async fn start_nodes(nodes: i32, topics: &[(&str, i32)]) -> MockBroker {
        let mut listeners = Vec::new();
        for _ in 0..nodes.max(1) {
            listeners.push(
                TcpListener::bind("127.0.0.1:0")
                    .await
                    .expect("bind mock broker"),
            );
        }
        let addrs: Vec<SocketAddr> = listeners
            .iter()
            .map(|l| l.local_addr().expect("local addr"))
            .collect();
        let state = State {
            topics: topics.iter().map(|(t, n)| (t.to_string(), *n)).collect(),
            log_requests: true,
            validate_sequences: true,
            next_producer_id: Self::FIRST_PRODUCER_ID,
            init_pid_mode: Some(InitPidMode::BumpEpoch),
            ..State::default()
        };
        let shared = Arc::new(Shared {
            addrs,
            state: Mutex::new(state),
        });
        let tasks: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        for (node, listener) in listeners.into_iter().enumerate() {
            let (s, t) = (shared.clone(), tasks.clone());
            let accept = tokio::spawn(async move {
                loop {
                    let Ok((stream, _)) = listener.accept().await else {
                        return;
                    };
                    let _ = stream.set_nodelay(true);
                    let conn = {
                        let mut st = s.state();
                        st.connections += 1;
                        st.connections - 1
                    };
                    let handle = tokio::spawn(serve(s.clone(), stream, conn, node as i32));
                    let mut tasks = t.lock().unwrap_or_else(|e| e.into_inner());
                    tasks.retain(|h| !h.is_finished());
                    tasks.push(handle);
                }
            });
            tasks.lock().unwrap().push(accept);
        }
        MockBroker { shared, tasks }
    }

    /// `host:port` for `bootstrap.servers` (node 0).
    pub fn bootstrap(&self) -> String {
        self.shared.addrs[0].to_string()
    }

    /// `host:port` of node `node`.
    pub fn node_addr(&self, node: i32) -> String {
        self.shared.addrs[node as usize].to_string()
    }

    /// Makes `node` the leader of `topic`-`partition` (`None`: no leader; Metadata reports
    /// LEADER_NOT_AVAILABLE with leader -1 and every node refuses Produce to it with
    /// NOT_LEADER_OR_FOLLOWER).
    pub fn set_leader(&self, topic: &str, partition: i32, node: Option<i32>) {
        self.shared
            .state()
            .leaders
            .insert((topic.to_string(), partition), node.unwrap_or(-1));
    }

    /// Every InitProducerId that carries a producer id (an epoch bump) answers `code`
    /// (`None`: answer normally again).
    pub fn fail_bumps(&self, code: Option<i16>) {
        self.shared.state().bump_error = code;
    }

    /// Adds (or resizes) a topic.
    pub fn create_topic(&self, name: &str, partitions: i32) {
        self.shared
            .state()
            .topics
            .insert(name.to_string(), partitions);
    }

    /// Keeps (default) or stops keeping the request log. Benchmarks turn it off so memory
    /// does not grow with the iterations.
    pub fn log_requests(&self, on: bool) {
        self.shared.state().log_requests = on;
    }

    /// Checks idempotent batches' sequences like a broker (default on): per partition and
    /// producer id, a batch must carry the next expected sequence of the current epoch, or
    /// sequence 0 with a newer epoch; a repeat of one of the last 5 batches is answered as a
    /// duplicate (success with the original offset); anything else gets
    /// OUT_OF_ORDER_SEQUENCE_NUMBER, an older epoch INVALID_PRODUCER_EPOCH.
    pub fn validate_sequences(&self, on: bool) {
        self.shared.state().validate_sequences = on;
    }

    /// How InitProducerId answers an epoch bump (default [`InitPidMode::BumpEpoch`]).
    pub fn init_pid_mode(&self, mode: InitPidMode) {
        self.shared.state().init_pid_mode = Some(mode);
    }

    /// Queues a fault (consumed by the first matching request, in queue order).
    pub fn inject(&self, fault: Fault) {
        self.shared.state().faults.push_back(fault);
    }

    /// Faults not consumed yet.
    pub fn pending_faults(&self) -> Vec<Fault> {
        self.shared.state().faults.iter().cloned().collect()
    }

    /// Every request received so far, in arrival order.
    pub fn requests(&self) -> Vec<Received> {
        self.shared.state().log.clone()
    }

    /// Every Produce batch received so far, in arrival order, with the mock's answers.
    pub fn produced(&self) -> Vec<ProducedBatch> {
        self.shared
            .state()
            .log
            .iter()
            .flat_map(|r| match &r.body {
                RequestBody::Produce { batches, .. } => batches.clone(),
                _ => Vec::new(),
            })
            .collect()
    }

    /// Log end offset of a partition (records appended so far).
    pub fn log_end(&self, topic: &str, partition: i32) -> i64 {
        self.shared
            .state()
            .log_end
            .get(&(topic.to_string(), partition))
            .copied()
            .unwrap_or(0)
    }
}

/// The versions the mock speaks for `key`: what both structs support (the client side uses
/// the same crate, so the ranges overlap).
fn versions<Req: Message, Resp: Message>() -> (i16, i16) {
    (
        Req::VERSIONS.min.max(Resp::VERSIONS.min),
        Req::VERSIONS.max.min(Resp::VERSIONS.max),
    )
}

fn supported(key: ApiKey) -> Option<(i16, i16)> {
    Some(match key {
        ApiKey::ApiVersions => versions::<ApiVersionsRequest, ApiVersionsResponse>(),
        ApiKey::Metadata => versions::<MetadataRequest, MetadataResponse>(),
        ApiKey::InitProducerId => versions::<InitProducerIdRequest, InitProducerIdResponse>(),
        ApiKey::Produce => versions::<ProduceRequest, ProduceResponse>(),
        _ => return None,
    })
}

/// What to do with one request.
enum Reply {
    /// Write this frame (size prefix included).
    Frame(Bytes),
    /// Write nothing.
    Nothing,
    /// Close the connection.
    Close,
}

/// Serves one connection: reads frames, answers in order.
async fn serve(shared: Arc<Shared>, mut stream: TcpStream, conn: usize, node: i32) {
    let mut buf = BytesMut::with_capacity(64 * 1024);
    let mut out = BytesMut::with_capacity(4096);
    loop {
        // One whole frame.
        while buf.len() < 4 || buf.len() < 4 + frame_len(&buf) {
            // Room for the whole frame once its size is known (one allocation per big
            // Produce request instead of repeated growth).
            let want = if buf.len() >= 4 {
                4 + frame_len(&buf) - buf.len()
            } else {
                4096
            };
            buf.reserve(want.max(4096));
            match stream.read_buf(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
        let n = frame_len(&buf);
        buf.advance(4);
        let frame = buf.split_to(n).freeze();
        let (reply, delay) = match handle(&shared, frame, conn, node) {
            Ok(r) => r,
            Err(e) => {
                eprintln!("mock broker: closing connection {conn}: {e}");
                return;
            }
        };
        if !delay.is_zero() {
            let _ = stream.write_all(&out).await;
            out.clear();
            tokio::time::sleep(delay).await;
        }
        match reply {
            Reply::Frame(f) => out.extend_from_slice(&f),
            Reply::Nothing => {}
            Reply::Close => {
                let _ = stream.write_all(&out).await;
                return;
            }
        }
        // Answer everything already read before writing (fewer syscalls when pipelined).
        if buf.len() < 4 || buf.len() < 4 + frame_len(&buf) {
            if stream.write_all(&out).await.is_err() {
                return;
            }
            out.clear();
        }
    }
}

fn frame_len(buf: &[u8]) -> usize {
    i32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]).max(0) as usize
}

fn bad(msg: impl std::fmt::Display) -> String {
    msg.to_string()
}

/// Decodes one request, logs it and builds the reply.
fn handle(
    shared: &Shared,
    mut frame: Bytes,
    conn: usize,
    node: i32,
) -> Result<(Reply, Duration), String> {
    if frame.len() < 4 {
        return Err("short request".into());
    }
    let key = i16::from_be_bytes([frame[0], frame[1]]);
    let version = i16::from_be_bytes([frame[2], frame[3]]);
    let api = ApiKey::try_from(key).map_err(|_| format!("unknown API key {key}"))?;
    let Some((min, max)) = supported(api) else {
        return Err(format!("unsupported API {api:?}"));
    };
    let header =
        RequestHeader::decode(&mut frame, api.request_header_version(version)).map_err(bad)?;
    let correlation_id = header.correlation_id;
    let mut st = shared.state();

    if api == ApiKey::ApiVersions {
        // A version we do not speak is answered in v0 with UNSUPPORTED_VERSION and our range.
        let (resp_version, error_code) = if (min..=max).contains(&version) {
            (version, code::NONE)
        } else {
            (0, code::UNSUPPORTED_VERSION)
        };
        let api_keys = [
            ApiKey::ApiVersions,
            ApiKey::Metadata,
            ApiKey::InitProducerId,
            ApiKey::Produce,
        ]
        .into_iter()
        .map(|k| {
            let (lo, hi) = supported(k).expect("supported");
            ApiVersion::default()
                .with_api_key(k as i16)
                .with_min_version(lo)
                .with_max_version(hi)
        })
        .collect();
        let resp = ApiVersionsResponse::default()
            .with_error_code(error_code)
            .with_api_keys(api_keys);
        log(
            &mut st,
            (node, conn),
            api,
            version,
            correlation_id,
            RequestBody::ApiVersions,
            None,
        );
        return Ok((
            Reply::Frame(frame_response(api, resp_version, correlation_id, &resp)?),
            Duration::ZERO,
        ));
    }
    if !(min..=max).contains(&version) {
        return Err(format!("{api:?} v{version} is outside v{min}..=v{max}"));
    }

    let fault = take_fault(&mut st, api, &frame, version);
    let delay = fault.as_ref().map_or(Duration::ZERO, |f| f.delay);
    let error = match fault.as_ref().map(|f| &f.action) {
        Some(FaultAction::Error(c)) => Some(*c),
        _ => None,
    };
    let (body, resp) = match api {
        ApiKey::Metadata => {
            let req = MetadataRequest::decode(&mut frame, version).map_err(bad)?;
            metadata(&st, &shared.addrs, req, error, version, correlation_id)?
        }
        ApiKey::InitProducerId => {
            let req = InitProducerIdRequest::decode(&mut frame, version).map_err(bad)?;
            init_producer_id(&mut st, req, error, version, correlation_id)?
        }
        ApiKey::Produce => {
            let req = ProduceRequest::decode(&mut frame, version).map_err(bad)?;
            let target = fault.as_ref().and_then(|f| f.partition.clone());
            let omit = matches!(
                fault.as_ref().map(|f| &f.action),
                Some(FaultAction::OmitPartition)
            );
            produce(
                &mut st,
                node,
                req,
                (error, target, omit),
                version,
                correlation_id,
            )?
        }
        _ => unreachable!("filtered by `supported`"),
    };
    let reply = match fault.as_ref().map(|f| &f.action) {
        Some(FaultAction::NoResponse) => Reply::Nothing,
        Some(FaultAction::Disconnect) => Reply::Close,
        Some(FaultAction::Garbage) => {
            // A valid frame and response header, then a body that does not decode.
            let header_version = api.response_header_version(version);
            let header = ResponseHeader::default().with_correlation_id(correlation_id);
            let mut out = BytesMut::new();
            let body = [0xffu8; 3];
            let size = header.compute_size(header_version).map_err(bad)? + body.len();
            out.put_i32(size as i32);
            header.encode(&mut out, header_version).map_err(bad)?;
            out.extend_from_slice(&body);
            Reply::Frame(out.freeze())
        }
        _ => match (&body, resp) {
            // acks=0: the broker never answers.
            (RequestBody::Produce { acks: 0, .. }, _) => Reply::Nothing,
            (_, resp) => Reply::Frame(resp),
        },
    };
    log(
        &mut st,
        (node, conn),
        api,
        version,
        correlation_id,
        body,
        fault,
    );
    // Unused request bytes mean we and the client disagree about the format.
    if frame.has_remaining() {
        return Err(format!(
            "{api:?} v{version}: {} trailing request bytes",
            frame.remaining()
        ));
    }
    Ok((reply, delay))
}

fn log(
    st: &mut State,
    (node, connection): (i32, usize),
    api_key: ApiKey,
    version: i16,
    correlation_id: i32,
    body: RequestBody,
    fault: Option<Fault>,
) {
    if st.log_requests {
        st.log.push(Received {
            node,
            api_key,
            version,
            correlation_id,
            connection,
            body,
            fault,
        });
    }
}

/// The first queued fault for this request, removed from the queue.
fn take_fault(st: &mut State, api: ApiKey, body: &Bytes, version: i16) -> Option<Fault> {
    let idx = st.faults.iter().position(|f| {
        f.api == api
            && match &f.partition {
                None => true,
                Some((t, p)) => {
                    // Only a Produce request carrying that partition matches.
                    ProduceRequest::decode(&mut body.clone(), version).is_ok_and(|r| {
                        r.topic_data.iter().any(|td| {
                            td.name.0.as_str() == t
                                && td.partition_data.iter().any(|pd| pd.index == *p)
                        })
                    })
                }
            }
    })?;
    st.faults.remove(idx)
}

/// Encodes a response frame: size, header (the ApiVersions header is always v0), body.
fn frame_response<M: Encodable>(
    api: ApiKey,
    version: i16,
    correlation_id: i32,
    msg: &M,
) -> Result<Bytes, String> {
    let header_version = if api == ApiKey::ApiVersions {
        0
    } else {
        api.response_header_version(version)
    };
    let header = ResponseHeader::default().with_correlation_id(correlation_id);
    let size = header.compute_size(header_version).map_err(bad)?
        + msg.compute_size(version).map_err(bad)?;
    let mut out = BytesMut::with_capacity(4 + size);
    out.put_i32(size as i32);
    header.encode(&mut out, header_version).map_err(bad)?;
    msg.encode(&mut out, version).map_err(bad)?;
    Ok(out.freeze())
}

fn str_bytes(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_string())
}

fn metadata(
    st: &State,
    addrs: &[SocketAddr],
    req: MetadataRequest,
    error: Option<i16>,
    version: i16,
    correlation_id: i32,
) -> Result<(RequestBody, Bytes), String> {
    let requested: Option<Vec<String>> = req.topics.as_ref().map(|ts| {
        ts.iter()
            .filter_map(|t| t.name.as_ref().map(|n| n.0.as_str().to_string()))
            .collect()
    });
    let names: Vec<String> = match &requested {
        Some(r) => r.clone(),
        None => st.topics.keys().cloned().collect(),
    };
    let topics = names
        .iter()
        .map(|name| {
            let t = MetadataResponseTopic::default().with_name(Some(TopicName(str_bytes(name))));
            match (error, st.topics.get(name)) {
                (Some(c), _) => t.with_error_code(c),
                (None, None) => t.with_error_code(code::UNKNOWN_TOPIC_OR_PARTITION),
                (None, Some(&n)) => t.with_partitions(
                    (0..n)
                        .map(|p| {
                            let leader = st.leader(name, p);
                            let replicas = (0..addrs.len() as i32).map(BrokerId).collect();
                            MetadataResponsePartition::default()
                                .with_error_code(if leader < 0 {
                                    code::LEADER_NOT_AVAILABLE
                                } else {
                                    code::NONE
                                })
                                .with_partition_index(p)
                                .with_leader_id(BrokerId(leader))
                                .with_leader_epoch(0)
                                .with_replica_nodes(replicas)
                                .with_isr_nodes(vec![BrokerId(leader.max(0))])
                        })
                        .collect(),
                ),
            }
        })
        .collect();
    let brokers = addrs
        .iter()
        .enumerate()
        .map(|(node, addr)| {
            MetadataResponseBroker::default()
                .with_node_id(BrokerId(node as i32))
                .with_host(str_bytes(&addr.ip().to_string()))
                .with_port(addr.port() as i32)
        })
        .collect();
    let resp = MetadataResponse::default()
        .with_brokers(brokers)
        .with_cluster_id(Some(str_bytes("mock-cluster")))
        .with_controller_id(BrokerId(MockBroker::NODE_ID))
        .with_topics(topics);
    let frame = frame_response(ApiKey::Metadata, version, correlation_id, &resp)?;
    Ok((RequestBody::Metadata { topics: requested }, frame))
}

fn init_producer_id(
    st: &mut State,
    req: InitProducerIdRequest,
    error: Option<i16>,
    version: i16,
    correlation_id: i32,
) -> Result<(RequestBody, Bytes), String> {
    let (pid, epoch) = (req.producer_id.0, req.producer_epoch);
    let fresh = |st: &mut State| {
        let id = st.next_producer_id;
        st.next_producer_id += 1;
        st.epochs.insert(id, 0);
        (code::NONE, id, 0i16)
    };
    let (error_code, new_pid, new_epoch) = match error.or(st.bump_error.filter(|_| pid >= 0)) {
        Some(c) => (c, -1, -1),
        None if pid < 0 => fresh(st),
        None => match st.init_pid_mode.unwrap_or(InitPidMode::BumpEpoch) {
            InitPidMode::NewId => fresh(st),
            InitPidMode::BumpEpoch => match st.epochs.get(&pid).copied() {
                None => (code::INVALID_PRODUCER_ID_MAPPING, -1, -1),
                Some(cur) if cur != epoch => (code::INVALID_PRODUCER_EPOCH, -1, -1),
                Some(cur) => {
                    st.epochs.insert(pid, cur + 1);
                    (code::NONE, pid, cur + 1)
                }
            },
        },
    };
    let resp = InitProducerIdResponse::default()
        .with_error_code(error_code)
        .with_producer_id(ProducerId(new_pid))
        .with_producer_epoch(new_epoch);
    let body = RequestBody::InitProducerId {
        transactional_id: req.transactional_id.map(|t| t.0.as_str().to_string()),
        producer_id: pid,
        producer_epoch: epoch,
        error_code,
        new_producer_id: new_pid,
        new_epoch,
    };
    Ok((
        body,
        frame_response(ApiKey::InitProducerId, version, correlation_id, &resp)?,
    ))
}

/// The batch header fields the mock looks at.
struct BatchHeader {
    producer_id: i64,
    producer_epoch: i16,
    base_sequence: i32,
    record_count: i32,
    transactional: bool,
}

fn batch_header(records: &[u8]) -> Option<BatchHeader> {
    if records.len() < BATCH_HEADER || records[16] != 2 {
        return None;
    }
    let i16_at = |o: usize| i16::from_be_bytes([records[o], records[o + 1]]);
    let i32_at = |o: usize| i32::from_be_bytes(records[o..o + 4].try_into().unwrap());
    let i64_at = |o: usize| i64::from_be_bytes(records[o..o + 8].try_into().unwrap());
    Some(BatchHeader {
        producer_id: i64_at(43),
        producer_epoch: i16_at(51),
        base_sequence: i32_at(53),
        record_count: i32_at(57),
        transactional: i16_at(21) & (1 << 4) != 0,
    })
}

/// Appends one batch (or refuses it) and returns (error code, base offset).
fn append(st: &mut State, topic: &str, partition: i32, h: &BatchHeader) -> (i16, i64) {
    let tp = (topic.to_string(), partition);
    if h.producer_id >= 0 && st.validate_sequences {
        let key = (tp.0.clone(), partition, h.producer_id);
        match st.seqs.get(&key) {
            Some(s) if h.producer_epoch < s.epoch => return (code::INVALID_PRODUCER_EPOCH, -1),
            Some(s) if h.producer_epoch == s.epoch => {
                if let Some(&(_, _, offset)) = s
                    .recent
                    .iter()
                    .find(|(seq, n, _)| *seq == h.base_sequence && *n == h.record_count)
                {
                    return (code::NONE, offset); // duplicate: the original offset
                }
                if h.base_sequence != s.next_seq {
                    return (code::OUT_OF_ORDER_SEQUENCE_NUMBER, -1);
                }
            }
            // Unknown producer, or a newer epoch: the sequence starts at 0.
            _ if h.base_sequence != 0 => return (code::OUT_OF_ORDER_SEQUENCE_NUMBER, -1),
            _ => {}
        }
    }
    let end = st.log_end.entry(tp).or_insert(0);
    let base = *end;
    *end += h.record_count.max(0) as i64;
    if h.producer_id >= 0 && st.validate_sequences {
        let key = (topic.to_string(), partition, h.producer_id);
        let s = st.seqs.entry(key).or_insert(ProducerSeq {
            epoch: h.producer_epoch,
            next_seq: 0,
            recent: VecDeque::new(),
        });
        if s.epoch != h.producer_epoch {
            s.epoch = h.producer_epoch;
            s.recent.clear();
        }
        s.next_seq =
            ((h.base_sequence as i64 + h.record_count as i64) % (i32::MAX as i64 + 1)) as i32;
        s.recent.push_back((h.base_sequence, h.record_count, base));
        if s.recent.len() > 5 {
            s.recent.pop_front();
        }
    }
    (code::NONE, base)
}

/// A Produce fault: the error to answer, the targeted partition, whether to leave the
/// partition out of the response.
type ProduceFault = (Option<i16>, Option<(String, i32)>, bool);

fn produce(
    st: &mut State,
    node: i32,
    req: ProduceRequest,
    (error, target, omit): ProduceFault,
    version: i16,
    correlation_id: i32,
) -> Result<(RequestBody, Bytes), String> {
    let mut batches = Vec::new();
    let mut responses = Vec::with_capacity(req.topic_data.len());
    for td in &req.topic_data {
        let topic = td.name.0.as_str();
        let known = st.topics.get(topic).copied();
        let mut parts = Vec::with_capacity(td.partition_data.len());
        for pd in &td.partition_data {
            let p = pd.index;
            let records = pd.records.as_deref().unwrap_or(&[]);
            let header = batch_header(records);
            let targeted = match &target {
                None => true,
                Some((t, tp)) => t == topic && *tp == p,
            };
            let (error_code, base_offset) = match (error, known, &header) {
                (Some(c), _, _) if targeted => (c, -1),
                (_, Some(n), _) if p >= 0 && p < n && st.leader(topic, p) != node => {
                    (code::NOT_LEADER_OR_FOLLOWER, -1)
                }
                (_, Some(n), Some(h)) if p >= 0 && p < n => append(st, topic, p, h),
                (_, Some(n), None) if p >= 0 && p < n => (code::NONE, {
                    // Not a v2 batch we can read: accept without counting records.
                    st.log_end
                        .get(&(topic.to_string(), p))
                        .copied()
                        .unwrap_or(0)
                }),
                _ => (code::UNKNOWN_TOPIC_OR_PARTITION, -1),
            };
            if !(omit && targeted) {
                parts.push(
                    PartitionProduceResponse::default()
                        .with_index(p)
                        .with_error_code(error_code)
                        .with_base_offset(base_offset)
                        .with_log_append_time_ms(-1)
                        .with_log_start_offset(0),
                );
            }
            if st.log_requests {
                let h = header.unwrap_or(BatchHeader {
                    producer_id: -1,
                    producer_epoch: -1,
                    base_sequence: -1,
                    record_count: 0,
                    transactional: false,
                });
                batches.push(ProducedBatch {
                    topic: topic.to_string(),
                    partition: p,
                    producer_id: h.producer_id,
                    producer_epoch: h.producer_epoch,
                    base_sequence: h.base_sequence,
                    record_count: h.record_count,
                    transactional: h.transactional,
                    bytes: records.len(),
                    error_code,
                    base_offset,
                });
            }
        }
        responses.push(
            TopicProduceResponse::default()
                .with_name(td.name.clone())
                .with_partition_responses(parts),
        );
    }
    let resp = ProduceResponse::default().with_responses(responses);
    let body = RequestBody::Produce {
        acks: req.acks,
        transactional_id: req.transactional_id.map(|t| t.0.as_str().to_string()),
        batches,
    };
    Ok((
        body,
        frame_response(ApiKey::Produce, version, correlation_id, &resp)?,
    ))
}
