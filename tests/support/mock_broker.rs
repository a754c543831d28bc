//! An in-process mock Kafka broker on 127.0.0.1, for tests and benchmarks that need a broker
//! but not a real one: fast to start, deterministic, and scriptable with faults.
//!
//! Tests reach it as `support::mock_broker` (after `mod support;`, see `support/mod.rs`);
//! benches, which cannot declare `mod support;`, include this file alone with
//! `#[path = "../tests/support/mock_broker.rs"] mod mock_broker;`.
//!
//! # What it answers
//! - **ApiVersions**: ApiVersions, Metadata, InitProducerId, Produce, and for consumers Fetch,
//!   ListOffsets, OffsetForLeaderEpoch (range settable, or not advertised:
//!   [`MockBroker::offset_for_leader_epoch_versions`]), FindCoordinator, OffsetFetch and
//!   OffsetCommit, each over the version range kafka-protocol's request *and* response
//!   structs support. Any other API closes the connection (as a real broker does with a
//!   request it cannot parse).
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
//! - **Consumer side**: each partition has a leader epoch (Metadata reports it;
//!   [`MockBroker::set_leader_epoch`]) and a log of its own for Fetch, separate from what
//!   Produce counts: [`MockBroker::append`] adds a batch at the current epoch,
//!   [`MockBroker::append_commit_marker`] a control batch, [`MockBroker::unclean_election`]
//!   truncates the log and bumps the epoch, [`MockBroker::delete_records`] moves the log
//!   start. Fetch, ListOffsets and OffsetForLeaderEpoch check the client's
//!   `current_leader_epoch` like a leader (older: FENCED_LEADER_EPOCH, newer:
//!   UNKNOWN_LEADER_EPOCH); Fetch returns whole batches from the fetch offset
//!   (OFFSET_OUT_OF_RANGE outside the log) and holds an empty answer for `max_wait_ms`
//!   (at most 300 ms); OffsetForLeaderEpoch answers from the log as a broker's epoch cache
//!   does, unless [`MockBroker::answer_epoch`] scripted the answer. FindCoordinator names
//!   node 0; OffsetFetch / OffsetCommit keep committed offsets with their leader epochs,
//!   without generation checks (for manually assigned consumers).
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
    ApiKey, ApiVersionsRequest, ApiVersionsResponse, BrokerId, FetchRequest, FetchResponse,
    FindCoordinatorRequest, FindCoordinatorResponse, InitProducerIdRequest, InitProducerIdResponse,
    ListOffsetsRequest, ListOffsetsResponse, MetadataRequest, MetadataResponse,
    OffsetCommitRequest, OffsetCommitResponse, OffsetFetchRequest, OffsetFetchResponse,
    OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse, ProduceRequest, ProduceResponse,
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
    pub const OFFSET_OUT_OF_RANGE: i16 = 1;
    pub const FENCED_LEADER_EPOCH: i16 = 74;
    pub const UNKNOWN_LEADER_EPOCH: i16 = 75;
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
    /// One row per partition asked for, with the mock's answer; the request's `min_bytes`.
    Fetch {
        partitions: Vec<FetchedPartition>,
        min_bytes: i32,
    },
    /// One row per partition: (topic, partition, timestamp, current leader epoch sent, error).
    ListOffsets {
        partitions: Vec<(String, i32, i64, i32, i16)>,
    },
    /// One row per partition asked for, with the mock's answer.
    OffsetForLeaderEpoch {
        partitions: Vec<EpochQuery>,
    },
    FindCoordinator,
    /// (topic, partition) rows asked for.
    OffsetFetch {
        group: String,
    },
    /// One row per partition: (topic, partition, offset, committed leader epoch).
    OffsetCommit {
        group: String,
        offsets: Vec<(String, i32, i64, i32)>,
    },
}

/// One partition of a Fetch request as the mock saw it, with its answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchedPartition {
    pub topic: String,
    pub partition: i32,
    pub fetch_offset: i64,
    /// The `current_leader_epoch` the client sent (-1: none).
    pub current_leader_epoch: i32,
    pub error_code: i16,
    /// Records returned.
    pub records: usize,
}

/// One Fetch request's session fields as the mock saw them, with its answer (logged only
/// with [`MockBroker::fetch_sessions`] on).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionFetch {
    pub node: i32,
    pub session_id: i32,
    pub session_epoch: i32,
    /// (topic, partition, fetch offset) rows the request carried.
    pub partitions: Vec<(String, i32, i64)>,
    /// (topic, partition) rows it asked to forget.
    pub forgotten: Vec<(String, i32)>,
    /// The answer: top-level error code and session id.
    pub error_code: i16,
    pub answered_session_id: i32,
}

/// A fetch session the mock keeps (KIP-227).
#[derive(Debug, Clone, Default)]
struct MockSession {
    /// Epoch the next incremental request must carry.
    next_epoch: i32,
    /// (topic, partition) -> (fetch offset, current leader epoch, partition max bytes).
    parts: BTreeMap<(String, i32), (i64, i32, i32)>,
}

/// Fetch session state of the mock (see [`MockBroker::fetch_sessions`]).
#[derive(Debug, Clone, Default)]
struct MockSessions {
    slots: usize,
    next_id: i32,
    open: BTreeMap<i32, MockSession>,
    log: Vec<SessionFetch>,
}

/// One partition of an OffsetForLeaderEpoch request as the mock saw it, with its answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EpochQuery {
    pub topic: String,
    pub partition: i32,
    /// The client's view of the current leader epoch.
    pub current_leader_epoch: i32,
    /// The epoch whose end offset is asked for.
    pub leader_epoch: i32,
    /// The answer: error code, epoch, end offset.
    pub answer: (i16, i32, i64),
}

/// A scripted OffsetForLeaderEpoch answer for one partition (see
/// [`MockBroker::answer_epoch`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EpochAnswer {
    pub topic: String,
    pub partition: i32,
    pub error_code: i16,
    pub leader_epoch: i32,
    pub end_offset: i64,
}

/// One batch of a partition's log: its base offset, leader epoch and record values.
#[derive(Debug, Clone)]
struct LogBatch {
    base: i64,
    epoch: i32,
    values: Vec<Bytes>,
    /// A transaction marker (control batch; one record, a COMMIT).
    control: bool,
}

/// The log Fetch serves for one partition (independent of what Produce appends).
#[derive(Debug, Clone, Default)]
struct PartLog {
    /// Log start offset.
    start: i64,
    batches: Vec<LogBatch>,
}

impl PartLog {
    fn end(&self) -> i64 {
        self.batches
            .last()
            .map_or(self.start, |b| b.base + b.values.len() as i64)
    }
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
    /// Consumer side: the record log of each partition Fetch serves (see [`PartLog`]).
    logs: HashMap<(String, i32), PartLog>,
    /// Leader epoch per partition (0 unless set or bumped).
    leader_epochs: HashMap<(String, i32), i32>,
    /// Scripted OffsetForLeaderEpoch answers, consumed in order by the partition they name.
    epoch_answers: VecDeque<EpochAnswer>,
    /// The OffsetForLeaderEpoch versions advertised (`None`: the default range; `Some(None)`:
    /// not advertised at all).
    offset_for_leader_epoch_versions: Option<Option<(i16, i16)>>,
    /// Committed offsets: (group, topic, partition) -> (offset, leader epoch).
    committed: HashMap<(String, String, i32), (i64, i32)>,
    /// Fetch sessions (`None`: sessionless, every answer has session id 0).
    sessions: Option<MockSessions>,
    /// Produce refuses a partition's records larger than this with MESSAGE_TOO_LARGE (as
    /// a topic's `max.message.bytes`); `None`: no limit.
    max_message_bytes: Option<usize>,
    /// Every Produce to these nodes is answered after this delay (a slow broker).
    slow_produce: HashMap<i32, Duration>,
}

impl State {
    fn leader_epoch(&self, topic: &str, partition: i32) -> i32 {
        self.leader_epochs
            .get(&(topic.to_string(), partition))
            .copied()
            .unwrap_or(0)
    }

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
    /// OUT_OF_ORDER_SEQUENCE_NUMBER, an older epoch INVALID_PRODUCER_EPOCH. As on a real
    /// broker, the first batch of a producer id the partition has no state for is accepted
    /// at any sequence (a transactional one only at 0), so a client that lets a later batch
    /// overtake a refused first one gets it written out of order.
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

    /// Consumer side: appends one batch of records (`values`) to the log Fetch serves for
    /// `topic`-`partition`, stamped with the partition's current leader epoch; returns the
    /// batch's base offset.
    pub fn append(&self, topic: &str, partition: i32, values: &[&str]) -> i64 {
        let mut st = self.shared.state();
        let epoch = st.leader_epoch(topic, partition);
        let log = st.logs.entry((topic.to_string(), partition)).or_default();
        let base = log.end();
        log.batches.push(LogBatch {
            base,
            epoch,
            values: values
                .iter()
                .map(|v| Bytes::copy_from_slice(v.as_bytes()))
                .collect(),
            control: false,
        });
        base
    }

    /// Appends a transaction COMMIT marker (a control batch of one record, which consumers
    /// do not deliver) at the partition's current leader epoch; returns its offset.
    pub fn append_commit_marker(&self, topic: &str, partition: i32) -> i64 {
        let mut st = self.shared.state();
        let epoch = st.leader_epoch(topic, partition);
        let log = st.logs.entry((topic.to_string(), partition)).or_default();
        let base = log.end();
        log.batches.push(LogBatch {
            base,
            epoch,
            // Marker value: version 0, coordinator epoch 0.
            values: vec![Bytes::from_static(&[0, 0, 0, 0, 0, 0])],
            control: true,
        });
        base
    }

    /// End offset of the log Fetch serves for `topic`-`partition`.
    pub fn fetch_log_end(&self, topic: &str, partition: i32) -> i64 {
        let st = self.shared.state();
        st.logs
            .get(&(topic.to_string(), partition))
            .map_or(0, PartLog::end)
    }

    /// Sets the leader epoch of `topic`-`partition` (Metadata reports it; Fetch, ListOffsets
    /// and OffsetForLeaderEpoch check the client's `current_leader_epoch` against it:
    /// older gets FENCED_LEADER_EPOCH, newer UNKNOWN_LEADER_EPOCH).
    pub fn set_leader_epoch(&self, topic: &str, partition: i32, epoch: i32) {
        self.shared
            .state()
            .leader_epochs
            .insert((topic.to_string(), partition), epoch);
    }

    /// The leader epoch of `topic`-`partition`.
    pub fn leader_epoch(&self, topic: &str, partition: i32) -> i32 {
        self.shared.state().leader_epoch(topic, partition)
    }

    /// An unclean leader election: the new leader's log ends at `truncate_to` (records from
    /// there on are gone) and the leader epoch goes up by one. Records appended afterwards
    /// carry the new epoch and reuse the truncated offsets.
    pub fn unclean_election(&self, topic: &str, partition: i32, truncate_to: i64) {
        let mut st = self.shared.state();
        let epoch = st.leader_epoch(topic, partition) + 1;
        st.leader_epochs
            .insert((topic.to_string(), partition), epoch);
        let log = st.logs.entry((topic.to_string(), partition)).or_default();
        log.batches.retain(|b| b.base < truncate_to);
        if let Some(last) = log.batches.last_mut() {
            let keep = (truncate_to - last.base).max(0) as usize;
            last.values.truncate(keep);
        }
        log.batches.retain(|b| !b.values.is_empty());
    }

    /// Deletes the records before `offset` (the log start moves there), as retention does.
    pub fn delete_records(&self, topic: &str, partition: i32, offset: i64) {
        let mut st = self.shared.state();
        let log = st.logs.entry((topic.to_string(), partition)).or_default();
        log.start = offset.min(log.end());
        let start = log.start;
        for b in &mut log.batches {
            let drop = (start - b.base).clamp(0, b.values.len() as i64) as usize;
            b.values.drain(..drop);
            b.base += drop as i64;
        }
        log.batches.retain(|b| !b.values.is_empty());
    }

    /// Queues an OffsetForLeaderEpoch answer for a partition: the next query for it gets this
    /// instead of the answer computed from the log.
    pub fn answer_epoch(&self, answer: EpochAnswer) {
        self.shared.state().epoch_answers.push_back(answer);
    }

    /// The OffsetForLeaderEpoch versions the mock advertises (`None`: the API is not
    /// advertised, as an old broker).
    pub fn offset_for_leader_epoch_versions(&self, versions: Option<(i16, i16)>) {
        self.shared.state().offset_for_leader_epoch_versions = Some(versions);
    }

    /// The committed offset and leader epoch of `group` for `topic`-`partition`.
    pub fn committed(&self, group: &str, topic: &str, partition: i32) -> Option<(i64, i32)> {
        self.shared
            .state()
            .committed
            .get(&(group.to_string(), topic.to_string(), partition))
            .copied()
    }

    /// Sets the committed offset (and its leader epoch, -1: none) of `group`.
    pub fn commit(&self, group: &str, topic: &str, partition: i32, offset: i64, epoch: i32) {
        self.shared.state().committed.insert(
            (group.to_string(), topic.to_string(), partition),
            (offset, epoch),
        );
    }

    /// Turns on fetch sessions (KIP-227) with `slots` cache slots: a full Fetch (epoch 0)
    /// creates a session while a slot is free (else it is answered with session id 0, as a
    /// broker whose `max.incremental.fetch.session.cache.slots` are taken), an incremental
    /// one is checked (FETCH_SESSION_ID_NOT_FOUND, INVALID_FETCH_SESSION_EPOCH), applies its
    /// partitions and forgotten topics, and is answered with the session's partitions that
    /// returned records or an error; epoch -1 closes the session. Off by default (every
    /// answer sessionless).
    pub fn fetch_sessions(&self, slots: usize) {
        let mut st = self.shared.state();
        let s = st.sessions.get_or_insert_with(MockSessions::default);
        s.slots = slots;
    }

    /// Produce refuses a partition's record batch larger than `bytes` with
    /// MESSAGE_TOO_LARGE, as a broker does above a topic's `max.message.bytes` (`None`: no
    /// limit, the default).
    pub fn max_message_bytes(&self, bytes: Option<usize>) {
        self.shared.state().max_message_bytes = bytes;
    }

    /// Makes node `node` a slow broker: every Produce it receives is answered after `delay`
    /// (`None`: normal again). Responses stay in order per connection, so its requests queue.
    pub fn slow_produce(&self, node: i32, delay: Option<Duration>) {
        let mut st = self.shared.state();
        match delay {
            Some(d) => st.slow_produce.insert(node, d),
            None => st.slow_produce.remove(&node),
        };
    }

    /// Forgets every open fetch session (as a broker that evicted them, or restarted): the
    /// next incremental Fetch gets FETCH_SESSION_ID_NOT_FOUND.
    pub fn evict_fetch_sessions(&self) {
        if let Some(s) = self.shared.state().sessions.as_mut() {
            s.open.clear();
        }
    }

    /// Moves every open session's expected epoch ahead: the next incremental Fetch gets
    /// INVALID_FETCH_SESSION_EPOCH.
    pub fn skew_fetch_session_epochs(&self) {
        if let Some(s) = self.shared.state().sessions.as_mut() {
            for sess in s.open.values_mut() {
                sess.next_epoch += 7;
            }
        }
    }

    /// Every Fetch's session fields so far (with sessions on), in arrival order.
    pub fn session_fetches(&self) -> Vec<SessionFetch> {
        self.shared
            .state()
            .sessions
            .as_ref()
            .map(|s| s.log.clone())
            .unwrap_or_default()
    }

    /// The ids of the fetch sessions open now.
    pub fn open_fetch_sessions(&self) -> Vec<i32> {
        self.shared
            .state()
            .sessions
            .as_ref()
            .map(|s| s.open.keys().copied().collect())
            .unwrap_or_default()
    }

    /// Every Fetch partition row received so far, in arrival order.
    pub fn fetches(&self) -> Vec<FetchedPartition> {
        self.shared
            .state()
            .log
            .iter()
            .flat_map(|r| match &r.body {
                RequestBody::Fetch { partitions, .. } => partitions.clone(),
                _ => Vec::new(),
            })
            .collect()
    }

    /// Every Fetch request received so far, in arrival order: its partitions and `min_bytes`.
    pub fn fetch_requests(&self) -> Vec<(Vec<i32>, i32)> {
        self.shared
            .state()
            .log
            .iter()
            .filter_map(|r| match &r.body {
                RequestBody::Fetch {
                    partitions,
                    min_bytes,
                } => Some((partitions.iter().map(|p| p.partition).collect(), *min_bytes)),
                _ => None,
            })
            .collect()
    }

    /// Every OffsetForLeaderEpoch partition row received so far, in arrival order.
    pub fn epoch_queries(&self) -> Vec<EpochQuery> {
        self.shared
            .state()
            .log
            .iter()
            .flat_map(|r| match &r.body {
                RequestBody::OffsetForLeaderEpoch { partitions } => partitions.clone(),
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
        ApiKey::Fetch => versions::<FetchRequest, FetchResponse>(),
        ApiKey::ListOffsets => versions::<ListOffsetsRequest, ListOffsetsResponse>(),
        ApiKey::OffsetForLeaderEpoch => {
            versions::<OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse>()
        }
        ApiKey::FindCoordinator => versions::<FindCoordinatorRequest, FindCoordinatorResponse>(),
        ApiKey::OffsetFetch => versions::<OffsetFetchRequest, OffsetFetchResponse>(),
        ApiKey::OffsetCommit => versions::<OffsetCommitRequest, OffsetCommitResponse>(),
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
        let epoch_versions = st.offset_for_leader_epoch_versions;
        let api_keys = [
            ApiKey::ApiVersions,
            ApiKey::Metadata,
            ApiKey::InitProducerId,
            ApiKey::Produce,
            ApiKey::Fetch,
            ApiKey::ListOffsets,
            ApiKey::OffsetForLeaderEpoch,
            ApiKey::FindCoordinator,
            ApiKey::OffsetFetch,
            ApiKey::OffsetCommit,
        ]
        .into_iter()
        .filter_map(|k| match (k, epoch_versions) {
            (ApiKey::OffsetForLeaderEpoch, Some(v)) => v.map(|v| (k, v)),
            _ => supported(k).map(|v| (k, v)),
        })
        .map(|(k, (lo, hi))| {
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
    let mut delay = fault.as_ref().map_or(Duration::ZERO, |f| f.delay);
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
        ApiKey::Fetch => {
            let req = FetchRequest::decode(&mut frame, version).map_err(bad)?;
            let (body, resp, idle) = fetch(&mut st, node, req, error, version, correlation_id)?;
            if let Some(wait) = idle.filter(|_| fault.is_none()) {
                delay = wait;
            }
            (body, resp)
        }
        ApiKey::ListOffsets => {
            let req = ListOffsetsRequest::decode(&mut frame, version).map_err(bad)?;
            list_offsets(&mut st, node, req, error, version, correlation_id)?
        }
        ApiKey::OffsetForLeaderEpoch => {
            let req = OffsetForLeaderEpochRequest::decode(&mut frame, version).map_err(bad)?;
            offset_for_leader_epoch(&mut st, node, req, error, version, correlation_id)?
        }
        ApiKey::FindCoordinator => {
            let req = FindCoordinatorRequest::decode(&mut frame, version).map_err(bad)?;
            find_coordinator(&shared.addrs, req, error, version, correlation_id)?
        }
        ApiKey::OffsetFetch => {
            let req = OffsetFetchRequest::decode(&mut frame, version).map_err(bad)?;
            offset_fetch(&mut st, req, error, version, correlation_id)?
        }
        ApiKey::OffsetCommit => {
            let req = OffsetCommitRequest::decode(&mut frame, version).map_err(bad)?;
            offset_commit(&mut st, req, error, version, correlation_id)?
        }
        _ => unreachable!("filtered by `supported`"),
    };
    if api == ApiKey::Produce {
        if let Some(d) = st.slow_produce.get(&node) {
            delay = delay.max(*d);
        }
    }
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
                                .with_leader_epoch(st.leader_epoch(name, p))
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
            // A newer epoch of a known producer: the sequence restarts at 0.
            Some(_) if h.base_sequence != 0 => return (code::OUT_OF_ORDER_SEQUENCE_NUMBER, -1),
            Some(_) => {}
            // A producer id the partition has no state for: like a broker (its state may
            // have expired), any sequence is taken as the start, except in a transaction
            // (transactions V2 verify that the sequence starts at 0).
            None if h.transactional && h.base_sequence != 0 => {
                return (code::OUT_OF_ORDER_SEQUENCE_NUMBER, -1)
            }
            None => {}
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
                (_, Some(n), _)
                    if p >= 0
                        && p < n
                        && st.max_message_bytes.is_some_and(|m| records.len() > m) =>
                {
                    (code::MESSAGE_TOO_LARGE, -1)
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

/// The epoch check of a leader: the client's `current_leader_epoch` (-1: no check) against
/// the partition's.
fn epoch_check(st: &State, topic: &str, partition: i32, current: i32) -> i16 {
    let epoch = st.leader_epoch(topic, partition);
    if current < 0 || current == epoch {
        code::NONE
    } else if current < epoch {
        code::FENCED_LEADER_EPOCH
    } else {
        code::UNKNOWN_LEADER_EPOCH
    }
}

/// The partition check every leader-addressed request makes: known partition, led by this
/// node, same leader epoch.
fn leader_check(st: &State, node: i32, topic: &str, partition: i32, current: i32) -> i16 {
    match st.topics.get(topic) {
        Some(&n) if partition >= 0 && partition < n => {
            if st.leader(topic, partition) != node {
                code::NOT_LEADER_OR_FOLLOWER
            } else {
                epoch_check(st, topic, partition, current)
            }
        }
        _ => code::UNKNOWN_TOPIC_OR_PARTITION,
    }
}

/// Encodes the batches of `log` from `from` on (whole batches, as a broker returns them).
fn encode_log(log: &PartLog, from: i64, max_bytes: usize) -> Result<(Bytes, usize), String> {
    use kafka_protocol::records::{
        Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
    };
    let mut out = BytesMut::new();
    let mut n = 0;
    for b in log
        .batches
        .iter()
        .filter(|b| b.base + b.values.len() as i64 > from)
    {
        if n > 0 && out.len() >= max_bytes {
            break;
        }
        let records: Vec<Record> = b
            .values
            .iter()
            .enumerate()
            .map(|(i, v)| Record {
                transactional: b.control,
                control: b.control,
                delete_horizon: false,
                partition_leader_epoch: b.epoch,
                producer_id: if b.control { 1 } else { -1 },
                producer_epoch: if b.control { 0 } else { -1 },
                timestamp_type: TimestampType::Creation,
                offset: b.base + i as i64,
                sequence: -1,
                timestamp: 1_700_000_000_000 + b.base + i as i64,
                // Control record key: version 0, type 1 (COMMIT).
                key: b.control.then(|| Bytes::from_static(&[0, 0, 0, 1])),
                value: Some(v.clone()),
                headers: Default::default(),
            })
            .collect();
        RecordBatchEncoder::encode(
            &mut out,
            &records,
            &RecordEncodeOptions {
                version: 2,
                compression: Compression::None,
            },
        )
        .map_err(bad)?;
        n += b.values.len();
    }
    Ok((out.freeze(), n))
}

/// Fetch: each partition's records from its fetch offset (see [`MockBroker::append`]). When
/// nothing was returned and nothing failed, the third value asks to hold the answer for
/// the request's `max_wait_ms` (capped at 300 ms), as a broker waits for data.
fn fetch(
    st: &mut State,
    node: i32,
    req: FetchRequest,
    error: Option<i16>,
    version: i16,
    correlation_id: i32,
) -> Result<(RequestBody, Bytes, Option<Duration>), String> {
    // What to serve: (topic, partition, fetch offset, current leader epoch, max bytes), and
    // whether partitions without news are left out (incremental session answers).
    let asked: Vec<(String, i32, i64, i32, i32)> = req
        .topics
        .iter()
        .flat_map(|t| {
            t.partitions.iter().map(|p| {
                (
                    t.topic.0.to_string(),
                    p.partition,
                    p.fetch_offset,
                    p.current_leader_epoch,
                    p.partition_max_bytes,
                )
            })
        })
        .collect();
    let (serve, only_news, session_id, top_error) = match st.sessions.as_mut() {
        Some(s) if version >= 7 => fetch_session(s, node, &req, asked.clone()),
        _ => (asked, false, 0, 0),
    };
    let mut rows = Vec::new();
    let mut topics: Vec<kafka_protocol::messages::fetch_response::FetchableTopicResponse> =
        Vec::new();
    let mut anything = false;
    for (topic, partition, fetch_offset, current, max_bytes) in serve {
        let mut code = error.unwrap_or_else(|| leader_check(st, node, &topic, partition, current));
        let log = st
            .logs
            .get(&(topic.clone(), partition))
            .cloned()
            .unwrap_or_default();
        if code == code::NONE && (fetch_offset < log.start || fetch_offset > log.end()) {
            code = code::OFFSET_OUT_OF_RANGE;
        }
        let (records, n) = if code == code::NONE {
            encode_log(&log, fetch_offset, max_bytes.max(1) as usize)?
        } else {
            (Bytes::new(), 0)
        };
        anything |= n > 0 || code != code::NONE;
        rows.push(FetchedPartition {
            topic: topic.clone(),
            partition,
            fetch_offset,
            current_leader_epoch: current,
            error_code: code,
            records: n,
        });
        if only_news && n == 0 && code == code::NONE {
            continue;
        }
        if topics.last().is_none_or(|t| t.topic.0.as_str() != topic) {
            topics.push(
                kafka_protocol::messages::fetch_response::FetchableTopicResponse::default()
                    .with_topic(TopicName(StrBytes::from_string(topic.clone()))),
            );
        }
        if let Some(t) = topics.last_mut() {
            t.partitions.push(
                kafka_protocol::messages::fetch_response::PartitionData::default()
                    .with_partition_index(partition)
                    .with_error_code(code)
                    .with_high_watermark(log.end())
                    .with_last_stable_offset(log.end())
                    .with_log_start_offset(log.start)
                    .with_records(Some(records)),
            );
        }
    }
    let resp = FetchResponse::default()
        .with_error_code(top_error)
        .with_session_id(session_id)
        .with_responses(topics);
    let idle = (!anything && top_error == code::NONE)
        .then(|| Duration::from_millis(req.max_wait_ms.clamp(0, 300) as u64));
    Ok((
        RequestBody::Fetch {
            partitions: rows,
            min_bytes: req.min_bytes,
        },
        frame_response(ApiKey::Fetch, version, correlation_id, &resp)?,
        idle,
    ))
}

/// The session side of a Fetch (KIP-227, see [`MockBroker::fetch_sessions`]): the
/// partitions to serve, whether to answer only those with news, the session id to answer
/// and a top-level error code.
#[allow(clippy::type_complexity)]
fn fetch_session(
    s: &mut MockSessions,
    node: i32,
    req: &FetchRequest,
    asked: Vec<(String, i32, i64, i32, i32)>,
) -> (Vec<(String, i32, i64, i32, i32)>, bool, i32, i16) {
    let forgotten: Vec<(String, i32)> = req
        .forgotten_topics_data
        .iter()
        .flat_map(|t| t.partitions.iter().map(|p| (t.topic.0.to_string(), *p)))
        .collect();
    let (id, epoch) = (req.session_id, req.session_epoch);
    let out = if epoch == -1 || epoch == 0 {
        if id != 0 {
            s.open.remove(&id);
        }
        let mut answered = 0;
        if epoch == 0 && s.open.len() < s.slots {
            s.next_id += 1;
            answered = s.next_id;
            let parts = asked
                .iter()
                .map(|(t, p, o, e, m)| ((t.clone(), *p), (*o, *e, *m)))
                .collect();
            s.open.insert(
                answered,
                MockSession {
                    next_epoch: 1,
                    parts,
                },
            );
        }
        (asked.clone(), false, answered, 0)
    } else {
        match s.open.get_mut(&id) {
            None => (Vec::new(), false, 0, 70),
            Some(sess) if sess.next_epoch != epoch => (Vec::new(), false, 0, 71),
            Some(sess) => {
                sess.next_epoch = if epoch == i32::MAX { 1 } else { epoch + 1 };
                for (t, p, o, e, m) in &asked {
                    sess.parts.insert((t.clone(), *p), (*o, *e, *m));
                }
                for f in &forgotten {
                    sess.parts.remove(f);
                }
                let serve = sess
                    .parts
                    .iter()
                    .map(|((t, p), (o, e, m))| (t.clone(), *p, *o, *e, *m))
                    .collect();
                (serve, true, id, 0)
            }
        }
    };
    s.log.push(SessionFetch {
        node,
        session_id: id,
        session_epoch: epoch,
        partitions: asked
            .iter()
            .map(|(t, p, o, _, _)| (t.clone(), *p, *o))
            .collect(),
        forgotten,
        error_code: out.3,
        answered_session_id: out.2,
    });
    out
}

/// ListOffsets: -2 = log start, anything else = log end, with the current leader epoch.
fn list_offsets(
    st: &mut State,
    node: i32,
    req: ListOffsetsRequest,
    error: Option<i16>,
    version: i16,
    correlation_id: i32,
) -> Result<(RequestBody, Bytes), String> {
    use kafka_protocol::messages::list_offsets_response::{
        ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
    };
    let mut rows = Vec::new();
    let mut topics = Vec::new();
    for t in &req.topics {
        let topic = t.name.0.as_str();
        let mut parts = Vec::new();
        for p in &t.partitions {
            let code = error.unwrap_or_else(|| {
                leader_check(st, node, topic, p.partition_index, p.current_leader_epoch)
            });
            let log = st
                .logs
                .get(&(topic.to_string(), p.partition_index))
                .cloned()
                .unwrap_or_default();
            let offset = if p.timestamp == -2 {
                log.start
            } else {
                log.end()
            };
            rows.push((
                topic.to_string(),
                p.partition_index,
                p.timestamp,
                p.current_leader_epoch,
                code,
            ));
            let ok = code == code::NONE;
            parts.push(
                ListOffsetsPartitionResponse::default()
                    .with_partition_index(p.partition_index)
                    .with_error_code(code)
                    .with_timestamp(-1)
                    .with_offset(if ok { offset } else { -1 })
                    .with_leader_epoch(if ok {
                        st.leader_epoch(topic, p.partition_index)
                    } else {
                        -1
                    }),
            );
        }
        topics.push(
            ListOffsetsTopicResponse::default()
                .with_name(t.name.clone())
                .with_partitions(parts),
        );
    }
    let resp = ListOffsetsResponse::default().with_topics(topics);
    Ok((
        RequestBody::ListOffsets { partitions: rows },
        frame_response(ApiKey::ListOffsets, version, correlation_id, &resp)?,
    ))
}

/// The end offset of `epoch` in a log, as a broker's leader epoch cache answers it: the
/// current epoch ends at the log end; an older one where the next epoch starts (an epoch
/// older than every one in the log: the requested epoch with the first start offset); an
/// epoch newer than the current one is undefined (-1, -1).
fn epoch_end(log: &PartLog, current: i32, epoch: i32) -> (i32, i64) {
    // (epoch, start offset) of every epoch in the log, then the current one.
    let mut starts: Vec<(i32, i64)> = Vec::new();
    for b in &log.batches {
        if starts.last().is_none_or(|(e, _)| *e != b.epoch) {
            starts.push((b.epoch, b.base));
        }
    }
    if starts.last().is_none_or(|(e, _)| *e < current) {
        starts.push((current, log.end()));
    }
    if epoch < 0 {
        return (-1, -1);
    }
    if epoch == current {
        return (current, log.end());
    }
    let Some(&(_, higher_start)) = starts.iter().find(|(e, _)| *e > epoch) else {
        return (-1, -1);
    };
    match starts.iter().rev().find(|(e, _)| *e <= epoch) {
        Some(&(floor, _)) => (floor, higher_start),
        None => (epoch, higher_start),
    }
}

fn offset_for_leader_epoch(
    st: &mut State,
    node: i32,
    req: OffsetForLeaderEpochRequest,
    error: Option<i16>,
    version: i16,
    correlation_id: i32,
) -> Result<(RequestBody, Bytes), String> {
    use kafka_protocol::messages::offset_for_leader_epoch_response::{
        EpochEndOffset, OffsetForLeaderTopicResult,
    };
    let mut rows = Vec::new();
    let mut topics = Vec::new();
    for t in &req.topics {
        let topic = t.topic.0.as_str();
        let mut parts = Vec::new();
        for p in &t.partitions {
            let scripted = st
                .epoch_answers
                .iter()
                .position(|a| a.topic == topic && a.partition == p.partition)
                .and_then(|i| st.epoch_answers.remove(i));
            let answer = match (error, scripted) {
                (Some(c), _) => (c, -1, -1),
                (None, Some(a)) => (a.error_code, a.leader_epoch, a.end_offset),
                (None, None) => {
                    match leader_check(st, node, topic, p.partition, p.current_leader_epoch) {
                        code::NONE => {
                            let log = st
                                .logs
                                .get(&(topic.to_string(), p.partition))
                                .cloned()
                                .unwrap_or_default();
                            let current = st.leader_epoch(topic, p.partition);
                            let (e, end) = epoch_end(&log, current, p.leader_epoch);
                            (code::NONE, e, end)
                        }
                        c => (c, -1, -1),
                    }
                }
            };
            rows.push(EpochQuery {
                topic: topic.to_string(),
                partition: p.partition,
                current_leader_epoch: p.current_leader_epoch,
                leader_epoch: p.leader_epoch,
                answer,
            });
            parts.push(
                EpochEndOffset::default()
                    .with_partition(p.partition)
                    .with_error_code(answer.0)
                    .with_leader_epoch(answer.1)
                    .with_end_offset(answer.2),
            );
        }
        topics.push(
            OffsetForLeaderTopicResult::default()
                .with_topic(t.topic.clone())
                .with_partitions(parts),
        );
    }
    let resp = OffsetForLeaderEpochResponse::default().with_topics(topics);
    Ok((
        RequestBody::OffsetForLeaderEpoch { partitions: rows },
        frame_response(ApiKey::OffsetForLeaderEpoch, version, correlation_id, &resp)?,
    ))
}

/// FindCoordinator: node 0 coordinates every group (and transactional id).
fn find_coordinator(
    addrs: &[SocketAddr],
    req: FindCoordinatorRequest,
    error: Option<i16>,
    version: i16,
    correlation_id: i32,
) -> Result<(RequestBody, Bytes), String> {
    use kafka_protocol::messages::find_coordinator_response::Coordinator;
    let addr = addrs[0];
    let code = error.unwrap_or(code::NONE);
    let node = if code == code::NONE {
        MockBroker::NODE_ID
    } else {
        -1
    };
    let mut resp = FindCoordinatorResponse::default();
    if version >= 4 {
        resp = resp.with_coordinators(
            req.coordinator_keys
                .iter()
                .map(|k| {
                    Coordinator::default()
                        .with_key(k.clone())
                        .with_node_id(BrokerId(node))
                        .with_host(str_bytes(&addr.ip().to_string()))
                        .with_port(addr.port() as i32)
                        .with_error_code(code)
                })
                .collect(),
        );
    } else {
        resp = resp
            .with_error_code(code)
            .with_node_id(BrokerId(node))
            .with_host(str_bytes(&addr.ip().to_string()))
            .with_port(addr.port() as i32);
    }
    Ok((
        RequestBody::FindCoordinator,
        frame_response(ApiKey::FindCoordinator, version, correlation_id, &resp)?,
    ))
}

/// OffsetFetch: the committed offsets and leader epochs (-1 / -1 when none).
fn offset_fetch(
    st: &mut State,
    req: OffsetFetchRequest,
    error: Option<i16>,
    version: i16,
    correlation_id: i32,
) -> Result<(RequestBody, Bytes), String> {
    use kafka_protocol::messages::offset_fetch_response::{
        OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions,
        OffsetFetchResponseTopic, OffsetFetchResponseTopics,
    };
    let code = error.unwrap_or(code::NONE);
    let lookup = |group: &str, topic: &str, p: i32| {
        st.committed
            .get(&(group.to_string(), topic.to_string(), p))
            .copied()
            .unwrap_or((-1, -1))
    };
    let (group, resp) = if version >= 8 {
        let g = req.groups.first().ok_or("OffsetFetch without groups")?;
        let group = g.group_id.0.as_str().to_string();
        let topics = g
            .topics
            .iter()
            .flatten()
            .map(|t| {
                OffsetFetchResponseTopics::default()
                    .with_name(t.name.clone())
                    .with_partitions(
                        t.partition_indexes
                            .iter()
                            .map(|&p| {
                                let (o, e) = lookup(&group, t.name.0.as_str(), p);
                                OffsetFetchResponsePartitions::default()
                                    .with_partition_index(p)
                                    .with_committed_offset(o)
                                    .with_committed_leader_epoch(e)
                                    .with_metadata(Some(str_bytes("")))
                            })
                            .collect(),
                    )
            })
            .collect();
        let resp =
            OffsetFetchResponse::default().with_groups(vec![OffsetFetchResponseGroup::default()
                .with_group_id(g.group_id.clone())
                .with_error_code(code)
                .with_topics(topics)]);
        (group, resp)
    } else {
        let group = req.group_id.0.as_str().to_string();
        let topics = req
            .topics
            .iter()
            .flatten()
            .map(|t| {
                OffsetFetchResponseTopic::default()
                    .with_name(t.name.clone())
                    .with_partitions(
                        t.partition_indexes
                            .iter()
                            .map(|&p| {
                                let (o, e) = lookup(&group, t.name.0.as_str(), p);
                                OffsetFetchResponsePartition::default()
                                    .with_partition_index(p)
                                    .with_committed_offset(o)
                                    .with_committed_leader_epoch(e)
                                    .with_metadata(Some(str_bytes("")))
                            })
                            .collect(),
                    )
            })
            .collect();
        let resp = OffsetFetchResponse::default()
            .with_error_code(code)
            .with_topics(topics);
        (group, resp)
    };
    Ok((
        RequestBody::OffsetFetch { group },
        frame_response(ApiKey::OffsetFetch, version, correlation_id, &resp)?,
    ))
}

/// OffsetCommit: stores every offset with its leader epoch (no generation checks: for
/// consumers with manually assigned partitions).
fn offset_commit(
    st: &mut State,
    req: OffsetCommitRequest,
    error: Option<i16>,
    version: i16,
    correlation_id: i32,
) -> Result<(RequestBody, Bytes), String> {
    use kafka_protocol::messages::offset_commit_response::{
        OffsetCommitResponsePartition, OffsetCommitResponseTopic,
    };
    let group = req.group_id.0.as_str().to_string();
    let code = error.unwrap_or(code::NONE);
    let mut rows = Vec::new();
    let mut topics = Vec::new();
    for t in &req.topics {
        let topic = t.name.0.as_str();
        let mut parts = Vec::new();
        for p in &t.partitions {
            rows.push((
                topic.to_string(),
                p.partition_index,
                p.committed_offset,
                p.committed_leader_epoch,
            ));
            if code == code::NONE {
                st.committed.insert(
                    (group.clone(), topic.to_string(), p.partition_index),
                    (p.committed_offset, p.committed_leader_epoch),
                );
            }
            parts.push(
                OffsetCommitResponsePartition::default()
                    .with_partition_index(p.partition_index)
                    .with_error_code(code),
            );
        }
        topics.push(
            OffsetCommitResponseTopic::default()
                .with_name(t.name.clone())
                .with_partitions(parts),
        );
    }
    let resp = OffsetCommitResponse::default().with_topics(topics);
    Ok((
        RequestBody::OffsetCommit {
            group,
            offsets: rows,
        },
        frame_response(ApiKey::OffsetCommit, version, correlation_id, &resp)?,
    ))
}
