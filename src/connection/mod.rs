//! One broker connection: a socket owned by two tasks (a writer and a reader), fed through a
//! bounded channel, with requests pipelined and responses matched in order.
//!
//! - A caller encodes its request into a frame and hands it to the writer with a oneshot for
//!   the reply. The writer stamps the next correlation id, registers the request with the
//!   reader (before writing a byte), then writes the whole frame. A caller that goes away
//!   never leaves a half frame on the wire: only the writer task writes.
//! - The reader parses frames, checks that each answers the oldest in-flight request (Kafka
//!   answers in order per connection) and hands the raw body back to the caller, who decodes.
//! - Any read/write failure, a mismatched correlation id, an oversized frame or an expired
//!   request poisons the connection: every waiter fails (timeouts as [`Error::Timeout`],
//!   others as [`Error::Connection`] with `in_flight: true`), queued requests fail with
//!   `in_flight: false`, and the socket is closed. A poisoned connection is never reused;
//!   [`Endpoint`] opens a new one with backoff.
//! - Dropping every handle closes the socket; dropping a request future is harmless.
//! - Security: the transport is TCP or TLS (`tls.rs`); with SASL, the connection authenticates
//!   (`sasl.rs`) right after ApiVersions, before it is handed out. When the broker limits the
//!   session (KIP-368), the writer re-authenticates at 85..95% of the lifetime: it stops
//!   taking new requests, waits until every in-flight request is answered, runs the SASL
//!   exchange itself, then resumes (callers only wait; nothing fails or is sent twice).

#[cfg(feature = "oidc")]
pub(crate) mod oidc;
pub(crate) mod sasl;
#[cfg(feature = "tls")]
pub(crate) mod tls;
mod transport;

pub use transport::Transport;

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, ApiVersionsRequest, ApiVersionsResponse};
use kafka_protocol::protocol::{Decodable, StrBytes};
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufWriter};
use tokio::sync::{mpsc, oneshot, watch, Mutex};
use tokio::time::Instant;

use crate::backoff::Backoff;
use crate::config::{CommonConfig, SecurityConfig};
use crate::error::{Error, KafkaCode, Result};
use crate::protocol::{self, ApiRequest, BrokerVersions, ClientThrottle, Frame, CORRELATION_ID_OFFSET};

use transport::{ReadHalf, WriteHalf};

/// Settings of a connection and of an [`Endpoint`], derived from the client config
/// ([`CommonConfig`]); `Default` is the key table's defaults.
#[derive(Debug, Clone)]
pub struct ConnectionOptions {
    /// `client.id` sent in every request header.
    pub client_id: Arc<str>,
    /// Client software name sent in ApiVersions v3+.
    pub software_name: String,
    /// Client software version sent in ApiVersions v3+.
    pub software_version: String,
    /// Default bound for one request, from write to response (`request.timeout.ms`).
    pub request_timeout: Duration,
    /// Bound for TCP connect + ApiVersions handshake (`socket.connection.setup.timeout.ms`).
    /// An [`Endpoint`] doubles it after each failed attempt, up to `connect_timeout_max`.
    pub connect_timeout: Duration,
    /// `socket.connection.setup.timeout.max.ms`: the most an [`Endpoint`]'s growing setup
    /// timeout reaches.
    pub connect_timeout_max: Duration,
    /// `reconnect.backoff.ms`: first wait of an [`Endpoint`] before reconnecting after a
    /// failed attempt.
    pub reconnect_backoff: Duration,
    /// `reconnect.backoff.max.ms`: the most that wait grows to.
    pub reconnect_backoff_max: Duration,
    /// `connections.max.idle.ms`: a connection with nothing in flight and nothing written or
    /// read for this long is closed (an [`Endpoint`] reopens it on demand); zero = never.
    pub max_idle: Duration,
    /// Largest response frame accepted (`receive.message.max.bytes`).
    pub max_response_size: usize,
    /// Disable Nagle's algorithm (`socket.nagle.disable`).
    pub nodelay: bool,
    /// Requests that may wait in the connection's queue before `send` waits for room (not a
    /// configuration key).
    pub queue_capacity: usize,
    /// TLS and SASL (`security.protocol`, `ssl.*`, `sasl.*`).
    pub security: SecurityConfig,
}

/// Default of [`ConnectionOptions::queue_capacity`].
const QUEUE_CAPACITY: usize = 1024;

impl From<&CommonConfig> for ConnectionOptions {
    fn from(c: &CommonConfig) -> Self {
        ConnectionOptions {
            client_id: Arc::from(c.client_id.as_str()),
            software_name: c.client_software_name.clone(),
            software_version: c.client_software_version.clone(),
            request_timeout: c.request_timeout,
            connect_timeout: c.socket_connection_setup_timeout,
            connect_timeout_max: c.socket_connection_setup_timeout_max,
            reconnect_backoff: c.reconnect_backoff,
            reconnect_backoff_max: c.reconnect_backoff_max,
            max_idle: c.connections_max_idle,
            max_response_size: c.max_response_size,
            nodelay: c.socket_nodelay,
            queue_capacity: QUEUE_CAPACITY,
            security: c.security.clone(),
        }
    }
}

impl Default for ConnectionOptions {
    fn default() -> Self {
        ConnectionOptions::from(&CommonConfig::with_defaults(Vec::new()))
    }
}

/// A request on its way to the writer.
struct Command {
    frame: Frame,
    expect_response: bool,
    timeout: Duration,
    reply: oneshot::Sender<Result<Bytes>>,
}

/// A written request awaiting its response (owned by the reader).
struct InFlight {
    correlation_id: i32,
    api: ApiKey,
    deadline: Instant,
    timeout: Duration,
    reply: oneshot::Sender<Result<Bytes>>,
}

struct Shared {
    addr: String,
    /// Set once the connection is poisoned or closed.
    dead: AtomicBool,
    /// Set (after `dead`) when it ended cleanly: idle, closed by the client, handles dropped.
    clean: AtomicBool,
    /// Flips to `true` when dead; both tasks watch it.
    dead_tx: watch::Sender<bool>,
    /// Why it died (for errors of later callers).
    reason: std::sync::Mutex<Option<String>>,
    /// When the connection started; `last_active` counts from here.
    epoch: Instant,
    /// Milliseconds from `epoch` to the last request taken by the writer or response
    /// delivered by the reader (`connections.max.idle.ms`).
    last_active: AtomicU64,
    /// Milliseconds from `epoch` until which the broker throttles this connection (0: never
    /// throttled): it answered with `throttle_time_ms` and reads nothing more from the
    /// socket meanwhile (KIP-219), so the writer holds further requests until then
    /// ([`Connection::note_throttle`]).
    throttled_until: AtomicU64,
    /// Requests registered by the writer and not yet answered.
    in_flight: AtomicUsize,
    /// Notified by the reader when `in_flight` drops to zero (re-authentication waits on it).
    drained: tokio::sync::Notify,
    /// When the SASL session should be renewed (set after each authentication).
    reauth_at: watch::Sender<Option<Instant>>,
    /// Set by the reader when the first bytes from the broker are a TLS record.
    tls_reply: AtomicBool,
    /// Set by the reader when the broker sent a TLS alert (e.g. refusing our certificate
    /// after a TLS 1.3 handshake): the typed error of a failed set-up.
    tls_alert: std::sync::Mutex<Option<Error>>,
    /// The broker's versions, once ApiVersions answered (for re-authentication).
    versions: std::sync::OnceLock<Arc<BrokerVersions>>,
    /// Connection metrics (feature `metrics`; nothing without it).
    metrics: crate::observe::ConnMetrics,
    /// The endpoint's statistics counters (`statistics.interval.ms`), shared by its
    /// successive connections.
    counters: Arc<crate::stats::BrokerCounters>,
    /// Set once the connection is set up (a later close counts as a disconnect).
    established: AtomicBool,
}

impl Shared {
    fn touch(&self) {
        let ms = u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_active.store(ms, Ordering::SeqCst);
    }

    /// When the broker's last throttle of the connection ends (or ended); `None`: never
    /// throttled.
    fn throttle_end(&self) -> Option<Instant> {
        let ms = self.throttled_until.load(Ordering::Relaxed);
        (ms > 0).then(|| self.epoch + Duration::from_millis(ms))
    }

    /// Until when the broker throttles the connection, if it still does.
    fn throttled(&self) -> Option<Instant> {
        self.throttle_end().filter(|until| *until > Instant::now())
    }

    /// When request `r` in flight times out: its deadline, or, when the broker throttled
    /// the connection after `r` was written, `request.timeout.ms` after the throttle ends
    /// (a throttled broker reads nothing meanwhile, so `r` waits unread behind it).
    fn deadline_of(&self, r: &InFlight) -> Instant {
        match self.throttle_end() {
            Some(until) if until > r.deadline - r.timeout => r.deadline.max(until + r.timeout),
            _ => r.deadline,
        }
    }

    /// When the connection counts as idle if nothing happens before.
    fn idle_at(&self, max_idle: Duration) -> Instant {
        self.epoch + Duration::from_millis(self.last_active.load(Ordering::SeqCst)) + max_idle
    }

    /// Ends the connection because something failed (the broker closed it, a read or
    /// write error, a protocol violation): a set-up connection lost this way makes its
    /// endpoint "down" for client events.
    fn poison(&self, reason: impl Into<String>) {
        self.end(reason.into(), false);
    }

    /// Ends the connection cleanly (idle, closed by the client, every handle dropped).
    fn retire(&self, reason: impl Into<String>) {
        self.end(reason.into(), true);
    }

    fn end(&self, reason: String, clean: bool) {
        if !self.dead.swap(true, Ordering::SeqCst) {
            self.clean.store(clean, Ordering::SeqCst);
            self.metrics.closed();
            if self.established.swap(false, Ordering::SeqCst) {
                self.counters.disconnected();
                if let Some(w) = self.counters.watch.get() {
                    if clean {
                        w.idle();
                    } else {
                        w.down(&Error::Connection {
                            broker: self.addr.clone(),
                            reason: reason.clone(),
                            in_flight: false,
                        });
                    }
                }
            }
            tracing::debug!(broker = %self.addr, %reason, "connection closed");
            *self.reason.lock().unwrap_or_else(|p| p.into_inner()) = Some(reason);
        }
        let _ = self.dead_tx.send(true);
    }

    fn reason(&self) -> String {
        self.reason
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
            .unwrap_or_else(|| "connection closed".into())
    }

    fn conn_error(&self, in_flight: bool) -> Error {
        Error::Connection {
            broker: self.addr.clone(),
            reason: self.reason(),
            in_flight,
        }
    }
}

/// A live, pipelined connection to one broker. Cheap to clone; the socket closes when the
/// last clone is dropped or the connection is poisoned.
#[derive(Clone)]
pub struct Connection {
    tx: mpsc::Sender<Command>,
    shared: Arc<Shared>,
    versions: Arc<BrokerVersions>,
    opts: Arc<ConnectionOptions>,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("addr", &self.shared.addr)
            .field("dead", &self.is_closed())
            .finish()
    }
}

impl Connection {
    /// Connects to `addr`, starts the socket tasks and performs the ApiVersions handshake,
    /// all within `opts.connect_timeout`.
    pub async fn connect(addr: &str, opts: ConnectionOptions) -> Result<Connection> {
        Connection::connect_counted(addr, opts, Arc::default()).await
    }

    /// [`Connection::connect`], counting into an endpoint's statistics `counters`.
    pub(crate) async fn connect_counted(
        addr: &str,
        opts: ConnectionOptions,
        counters: Arc<crate::stats::BrokerCounters>,
    ) -> Result<Connection> {
        let timeout = opts.connect_timeout;
        let opts = Arc::new(opts);
        let fut = async {
            let transport = Transport::connect(
                addr,
                &counters.next_address,
                timeout,
                opts.nodelay,
                &opts.security,
            )
            .await?;
            let conn = Connection::start(addr, transport, opts.clone(), counters);
            let versions = match conn.handshake().await {
                Ok(v) => Arc::new(v),
                Err(e) => return Err(conn.setup_error(e)),
            };
            let _ = conn.shared.versions.set(versions.clone());
            let conn = Connection { versions, ..conn };
            if let Some(sasl) = &opts.security.sasl {
                let session =
                    sasl::authenticate(&mut ConnExchange(&conn), sasl, &conn.versions).await;
                match session {
                    Ok(s) => conn.schedule_reauth(s.lifetime),
                    Err(e) => {
                        if matches!(e, Error::Authentication { .. }) {
                            conn.shared.metrics.auth_failed();
                        }
                        conn.close();
                        return Err(e);
                    }
                }
            }
            if !conn.is_closed() {
                conn.shared.established.store(true, Ordering::SeqCst);
                conn.shared.counters.connected();
            }
            Ok::<_, Error>(conn)
        };
        match tokio::time::timeout(timeout, fut).await {
            Ok(r) => r,
            Err(_) => Err(Error::Connection {
                broker: addr.to_string(),
                reason: format!(
                    "connection set-up (TCP, {}ApiVersions{}) not completed within socket.connection.setup.timeout.ms ({}ms)",
                    if opts.security.tls.is_some() { "TLS, " } else { "" },
                    if opts.security.sasl.is_some() { ", SASL" } else { "" },
                    timeout.as_millis()
                ),
                in_flight: false,
            }),
        }
    }

    /// A failed ApiVersions on a new connection: a TLS answer to our plaintext request means
    /// the listener needs `ssl` / `sasl_ssl`.
    fn setup_error(&self, e: Error) -> Error {
        if let Some(tls) = self
            .shared
            .tls_alert
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
        {
            return tls;
        }
        if self.shared.tls_reply.load(Ordering::SeqCst) {
            return Error::Tls {
                broker: self.shared.addr.clone(),
                failure: crate::error::TlsFailure::NotTls,
                reason: "the broker answered with TLS to a plaintext request: set security.protocol to ssl or sasl_ssl".into(),
            };
        }
        e
    }

    /// Schedules re-authentication at 85..95% of the session `lifetime` (as Java does).
    fn schedule_reauth(&self, lifetime: Option<Duration>) {
        let at = lifetime.map(|l| Instant::now() + reauth_delay(l));
        self.shared.reauth_at.send_replace(at);
    }

    /// Spawns the reader and writer tasks over an established transport (no handshake).
    fn start(
        addr: &str,
        transport: Transport,
        opts: Arc<ConnectionOptions>,
        counters: Arc<crate::stats::BrokerCounters>,
    ) -> Connection {
        let low_water = transport.low_water();
        let (read, write) = transport.into_split();
        let (tx, rx) = mpsc::channel(opts.queue_capacity.max(1));
        let (reg_tx, reg_rx) = mpsc::unbounded_channel();
        let (dead_tx, dead_rx) = watch::channel(false);
        let (reauth_tx, reauth_rx) = watch::channel(None);
        let shared = Arc::new(Shared {
            addr: addr.to_string(),
            dead: AtomicBool::new(false),
            clean: AtomicBool::new(false),
            dead_tx,
            reason: std::sync::Mutex::new(None),
            epoch: Instant::now(),
            last_active: AtomicU64::new(0),
            throttled_until: AtomicU64::new(0),
            in_flight: AtomicUsize::new(0),
            drained: tokio::sync::Notify::new(),
            reauth_at: reauth_tx,
            tls_reply: AtomicBool::new(false),
            tls_alert: std::sync::Mutex::new(None),
            versions: std::sync::OnceLock::new(),
            metrics: crate::observe::ConnMetrics::opened(&opts.client_id, addr),
            counters,
            established: AtomicBool::new(false),
        });
        let (ws, wt) = (Arc::downgrade(&shared), tx.downgrade());
        shared.counters.register(Box::new(move || {
            let s = ws.upgrade().filter(|s| !s.dead.load(Ordering::Relaxed))?;
            let t = wt.upgrade()?;
            Some((
                t.max_capacity() - t.capacity(),
                s.in_flight.load(Ordering::Relaxed),
            ))
        }));
        tokio::spawn(writer_task(
            write,
            rx,
            reg_tx,
            shared.clone(),
            dead_rx.clone(),
            reauth_rx,
            opts.clone(),
        ));
        tokio::spawn(reader_task(
            read,
            reg_rx,
            shared.clone(),
            dead_rx,
            opts.max_response_size,
            low_water,
        ));
        Connection {
            tx,
            shared,
            versions: Arc::new(BrokerVersions::default()),
            opts,
        }
    }

    /// ApiVersions: try our highest version; on UNSUPPORTED_VERSION the broker answers in v0
    /// with its own range, and we retry with the best common version.
    async fn handshake(&self) -> Result<BrokerVersions> {
        let (_, our_max) = protocol::client_versions(ApiKey::ApiVersions).unwrap_or((0, 3));
        let mut version = our_max;
        for _ in 0..2 {
            let req = ApiVersionsRequest::default()
                .with_client_software_name(StrBytes::from_string(self.opts.software_name.clone()))
                .with_client_software_version(StrBytes::from_string(
                    self.opts.software_version.clone(),
                ));
            let frame = protocol::encode_request(&req, version, &self.opts.client_id)?;
            let body = self
                .round_trip(frame.into(), true, self.opts.request_timeout)
                .await?;
            // The header of ApiVersions responses is always v0 (correlation id only), so the
            // error code is at a fixed place whatever the version.
            let code = if body.len() >= 6 {
                i16::from_be_bytes([body[4], body[5]])
            } else {
                return Err(Error::Protocol("ApiVersions response too short".into()));
            };
            if code == KafkaCode::UNSUPPORTED_VERSION.0 {
                let v0: ApiVersionsResponse =
                    protocol::decode_response(ApiKey::ApiVersions, 0, body)?;
                let broker_max = v0
                    .api_keys
                    .iter()
                    .find(|k| k.api_key == ApiKey::ApiVersions as i16)
                    .map(|k| k.max_version)
                    .unwrap_or(0);
                if broker_max >= version {
                    break;
                }
                version = broker_max.min(our_max);
                continue;
            }
            let resp: ApiVersionsResponse =
                protocol::decode_response(ApiKey::ApiVersions, version, body)?;
            if let Some(code) = KafkaCode(resp.error_code).err() {
                return Err(Error::broker(code, "ApiVersions"));
            }
            tracing::debug!(broker = %self.shared.addr, version, "ApiVersions handshake done");
            return Ok(BrokerVersions::from_response(&resp));
        }
        Err(Error::Protocol(format!(
            "broker {} rejected every ApiVersions version",
            self.shared.addr
        )))
    }

    /// The `client.id` this connection puts in request headers.
    pub fn client_id(&self) -> &str {
        &self.opts.client_id
    }

    /// The broker address (`host:port`).
    pub fn addr(&self) -> &str {
        &self.shared.addr
    }

    /// The broker's API versions and finalized features.
    pub fn versions(&self) -> &BrokerVersions {
        &self.versions
    }

    /// The version that will be used for `key` on this connection.
    pub fn version_for(&self, key: ApiKey) -> Result<i16> {
        self.versions.negotiate(key)
    }

    /// `true` once the connection is poisoned or closed; it will never work again.
    pub fn is_closed(&self) -> bool {
        self.shared.dead.load(Ordering::SeqCst)
    }

    /// `true` once the connection ended cleanly (idle for `connections.max.idle.ms`, closed
    /// by the client): nothing went wrong with the broker, so a new connection needs no
    /// metadata refresh. `false` while open and after a failure.
    pub fn closed_cleanly(&self) -> bool {
        self.shared.clean.load(Ordering::SeqCst)
    }

    /// Closes the connection; in-flight requests fail.
    pub fn close(&self) {
        self.shared.retire("closed by client");
    }

    /// Notes a response's `throttle_time_ms` (client quotas, KIP-219): the broker reads
    /// nothing more from this connection for that long, so requests made meanwhile wait in
    /// the client, their `timeout` counted from when they are written (as in Java's
    /// client), and the requests already written wait unread: their timeout counts from the
    /// throttle's end. Every answer [`send`](Self::send), [`send_version`](Self::send_version)
    /// and [`send_frame`](Self::send_frame) decode is noted here (byte-rate quotas on Produce
    /// and Fetch, request-rate quotas on every API), from the version on which the broker
    /// expects the client to keep the throttle ([`ClientThrottle`]); before it, and for the
    /// APIs that never switched (the KIP-848 and share heartbeats, ShareFetch, ...), the
    /// broker delays the answer itself.
    pub fn note_throttle(&self, throttle_ms: i32) {
        if throttle_ms <= 0 {
            return;
        }
        let until = self.shared.epoch.elapsed() + Duration::from_millis(throttle_ms as u64);
        let ms = u64::try_from(until.as_millis()).unwrap_or(u64::MAX).max(1);
        self.shared.throttled_until.fetch_max(ms, Ordering::Relaxed);
        self.shared.counters.throttled(throttle_ms);
        tracing::debug!(broker = %self.shared.addr, throttle_ms, "throttled by the broker (quota)");
    }

    /// Sends `req` at the negotiated version and awaits its response, bounded by
    /// `request.timeout.ms`.
    pub async fn send<R: ApiRequest>(&self, req: &R) -> Result<R::Response> {
        let version = self.version_for(R::KEY)?;
        self.send_version(req, version, self.opts.request_timeout)
            .await
    }

    /// Sends `req` at an explicit `version`, bounded by `timeout` from when it is written.
    pub async fn send_version<R: ApiRequest>(
        &self,
        req: &R,
        version: i16,
        timeout: Duration,
    ) -> Result<R::Response> {
        let frame = protocol::encode_request(req, version, &self.opts.client_id)?;
        let body = self.round_trip(frame.into(), true, timeout).await?;
        let resp: R::Response = protocol::decode_response(R::KEY, version, body)?;
        self.note_throttle(resp.client_throttle_ms(version));
        Ok(resp)
    }

    /// Sends an already encoded request `frame` of API `key` at `version` (e.g. from
    /// [`protocol::encode_produce`]) and awaits its response, bounded by `timeout` from when
    /// it is written.
    pub async fn send_frame<T: Decodable + ClientThrottle>(
        &self,
        key: ApiKey,
        frame: Frame,
        version: i16,
        timeout: Duration,
    ) -> Result<T> {
        let body = self.round_trip(frame, true, timeout).await?;
        let resp: T = protocol::decode_response(key, version, body)?;
        self.note_throttle(resp.client_throttle_ms(version));
        Ok(resp)
    }

    /// Writes an already encoded request `frame` the broker will not answer (Produce with
    /// acks=0). Resolves once the frame has been written to the socket.
    pub async fn send_frame_no_response(&self, frame: Frame) -> Result<()> {
        self.round_trip(frame, false, self.opts.request_timeout)
            .await
            .map(|_| ())
    }

    /// Sends a request the broker will not answer (Produce with acks=0). Resolves once the
    /// frame has been written to the socket.
    pub async fn send_no_response<R: ApiRequest>(&self, req: &R, version: i16) -> Result<()> {
        let frame = protocol::encode_request(req, version, &self.opts.client_id)?;
        self.round_trip(frame.into(), false, self.opts.request_timeout)
            .await
            .map(|_| ())
    }

    /// Queues an encoded frame and awaits the raw response body (or write completion).
    async fn round_trip(
        &self,
        frame: Frame,
        expect_response: bool,
        timeout: Duration,
    ) -> Result<Bytes> {
        if self.is_closed() {
            return Err(self.shared.conn_error(false));
        }
        let (reply_tx, reply_rx) = oneshot::channel();
        let cmd = Command {
            frame,
            expect_response,
            timeout,
            reply: reply_tx,
        };
        // Waiting for queue room counts against the same bound as the request itself.
        let overall = timeout + Duration::from_millis(50);
        let fut = async {
            self.tx
                .send(cmd)
                .await
                .map_err(|_| self.shared.conn_error(false))?;
            match reply_rx.await {
                Ok(r) => r,
                // Dropped without an answer: the writer never got to it.
                Err(_) => Err(self.shared.conn_error(false)),
            }
        };
        tokio::pin!(fut);
        let mut bound = Instant::now() + overall;
        loop {
            match tokio::time::timeout_at(bound, &mut fut).await {
                Ok(r) => return r,
                Err(_) => match self.shared.throttled() {
                    // Held by the writer while the broker throttles the connection: the
                    // request's own bound starts when it is written.
                    Some(until) if until + overall > bound => bound = until + overall,
                    _ => {
                        return Err(Error::timeout(
                            format!("request to {}", self.shared.addr),
                            timeout,
                            true,
                        ))
                    }
                },
            }
        }
    }
}

/// Flushes what the writer buffered, unless the connection dies first; `false` when the
/// writer must stop (dead, or the write failed and poisoned the connection).
async fn flush_or_stop(
    w: &mut BufWriter<WriteHalf>,
    dead_rx: &mut watch::Receiver<bool>,
    shared: &Shared,
) -> bool {
    let res = tokio::select! {
        biased;
        _ = dead_rx.wait_for(|d| *d) => return false,
        r = w.flush() => r,
    };
    if let Err(e) = res {
        shared.poison(format!("write failed: {e}"));
        return false;
    }
    true
}

async fn writer_task(
    write: WriteHalf,
    mut rx: mpsc::Receiver<Command>,
    reg_tx: mpsc::UnboundedSender<InFlight>,
    shared: Arc<Shared>,
    mut dead_rx: watch::Receiver<bool>,
    mut reauth_rx: watch::Receiver<Option<Instant>>,
    opts: Arc<ConnectionOptions>,
) {
    let max_idle = opts.max_idle;
    let mut reauth_at: Option<Instant> = None;
    let mut w = BufWriter::with_capacity(64 * 1024, write);
    let mut next_id: i32 = 0;
    // Bytes written into `w` but not flushed: the flush is deferred while more requests are
    // queued (bursts share syscalls), and done here once the queue is empty, whatever became
    // of the queued requests (a cancelled one is skipped without writing anything).
    let mut unflushed = false;
    loop {
        if unflushed && rx.is_empty() {
            if !flush_or_stop(&mut w, &mut dead_rx, &shared).await {
                break;
            }
            unflushed = false;
        }
        // KIP-368: due for re-authentication; no new request is taken meanwhile.
        if reauth_at.is_some_and(|at| Instant::now() >= at) {
            reauth_at = None;
            let res =
                reauthenticate(&mut w, &mut next_id, &reg_tx, &shared, &mut dead_rx, &opts).await;
            match res {
                Ok(()) => {
                    unflushed = false;
                    continue;
                }
                Err(e) => {
                    if matches!(e, Error::Authentication { .. }) {
                        shared.metrics.auth_failed();
                    }
                    shared.poison(format!("re-authentication failed: {e}"));
                    break;
                }
            }
        }
        // `connections.max.idle.ms`: only the writer takes new requests, so when its idle
        // timer fires with nothing in flight no request can be half registered; a caller
        // racing with the close gets a not-in-flight connection error (safe to retry).
        let idle_at = (!max_idle.is_zero()).then(|| shared.idle_at(max_idle));
        let cmd = tokio::select! {
            biased;
            _ = dead_rx.wait_for(|d| *d) => break,
            // KIP-368: due for re-authentication (done at the top of the loop).
            _ = async {
                match reauth_at {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            } => continue,
            r = reauth_rx.changed() => {
                if r.is_ok() {
                    reauth_at = *reauth_rx.borrow_and_update();
                }
                continue;
            }
            c = rx.recv() => match c {
                Some(c) => c,
                None => { shared.retire("all handles dropped"); break; }
            },
            _ = async {
                match idle_at {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            } => {
                if shared.in_flight.load(Ordering::SeqCst) > 0 {
                    shared.touch(); // A request in flight (a parked fetch) is activity.
                } else if Instant::now() >= shared.idle_at(max_idle) {
                    shared.retire(format!(
                        "idle for {}ms (connections.max.idle.ms)",
                        max_idle.as_millis()
                    ));
                    break;
                }
                continue;
            }
        };
        shared.touch();
        if let Some(until) = shared.throttled() {
            // The broker throttles this connection (quota): it would not read the request
            // before `until`, and its timeout would run meanwhile. What is buffered goes
            // out first (already registered, its timer running).
            if unflushed {
                if !flush_or_stop(&mut w, &mut dead_rx, &shared).await {
                    break;
                }
                unflushed = false;
            }
            tokio::select! {
                biased;
                _ = dead_rx.wait_for(|d| *d) => break,
                _ = tokio::time::sleep_until(until) => {}
            }
        }
        if cmd.reply.is_closed() {
            continue; // The caller gave up before we wrote anything: skip it entirely.
        }
        let Command {
            mut frame,
            expect_response,
            timeout,
            reply,
        } = cmd;
        let id = next_id;
        let Some(api) = stamp(&mut frame, &mut next_id) else {
            let _ = reply.send(Err(Error::InvalidArgument("frame too short".into())));
            continue;
        };
        let no_reply = if expect_response {
            let entry = InFlight {
                correlation_id: id,
                api,
                deadline: Instant::now() + timeout,
                timeout,
                reply,
            };
            shared.in_flight.fetch_add(1, Ordering::SeqCst);
            if reg_tx.send(entry).is_err() {
                break; // Reader is gone: the connection is dead.
            }
            None
        } else {
            Some(reply)
        };
        let res = tokio::select! {
            biased;
            _ = dead_rx.wait_for(|d| *d) => break,
            r = async {
                // Counted as sent before the first byte goes out: once bytes are on the
                // socket the broker may answer (even before a large frame's last segment
                // is written), and whoever gets that answer must find the request counted.
                let len = frame.len();
                shared.metrics.sent(|| len);
                shared.counters.sent(api as i16, len);
                w.write_all(&frame.head).await?;
                // Large segments (record batches) bypass the buffer: `BufWriter` writes a
                // slice at least as large as its capacity straight to the socket.
                for seg in &frame.rest {
                    w.write_all(seg).await?;
                }
                // Flush when nothing else is queued right now, so bursts share syscalls;
                // otherwise the top of the loop flushes once the queue is empty.
                let flush = rx.is_empty();
                if flush {
                    w.flush().await?;
                }
                Ok::<_, std::io::Error>(!flush)
            } => r,
        };
        match res {
            Ok(deferred) => {
                unflushed = deferred;
                if let Some(reply) = no_reply {
                    let _ = reply.send(Ok(Bytes::new()));
                }
            }
            Err(e) => {
                shared.counters.write_failed();
                shared.poison(format!("write failed: {e}"));
                if let Some(reply) = no_reply {
                    let _ = reply.send(Err(shared.conn_error(true)));
                }
                break;
            }
        }
    }
    // Queued commands are dropped here: their callers see a connection error (not in flight).
    rx.close();
    while let Ok(cmd) = rx.try_recv() {
        let _ = cmd.reply.send(Err(shared.conn_error(false)));
    }
}

async fn reader_task(
    mut read: ReadHalf,
    mut reg_rx: mpsc::UnboundedReceiver<InFlight>,
    shared: Arc<Shared>,
    mut dead_rx: watch::Receiver<bool>,
    max_response_size: usize,
    mut low_water: transport::LowWater,
) {
    let mut buf = BytesMut::with_capacity(64 * 1024);
    let mut inflight: VecDeque<InFlight> = VecDeque::new();
    let mut timed_out: Option<InFlight> = None;
    let mut first = true;
    loop {
        // A TLS record (alert or handshake: content type 20..=23, version 3.x) where the
        // first response's size should be: the listener speaks TLS.
        if first && buf.len() >= 2 {
            first = false;
            if (0x14..=0x17).contains(&buf[0]) && buf[1] == 0x03 {
                shared.tls_reply.store(true, Ordering::SeqCst);
                shared.poison("the broker answered with TLS (set security.protocol to ssl or sasl_ssl)");
                break;
            }
        }
        // Deliver every complete frame in the buffer.
        match next_frame(&mut buf, max_response_size) {
            Err(e) => {
                shared.poison(e);
                break;
            }
            Ok(Some(body)) => {
                shared.metrics.received(body.len());
                while let Ok(e) = reg_rx.try_recv() {
                    inflight.push_back(e);
                }
                let id = match protocol::response_correlation_id(&body) {
                    Ok(id) => id,
                    Err(e) => {
                        shared.poison(e.to_string());
                        break;
                    }
                };
                match inflight.pop_front() {
                    Some(req) if req.correlation_id == id => {
                        shared.touch();
                        let sent = req.deadline - req.timeout;
                        shared
                            .counters
                            .received(body.len(), Instant::now().saturating_duration_since(sent));
                        if shared.in_flight.fetch_sub(1, Ordering::SeqCst) == 1 {
                            shared.drained.notify_waiters();
                        }
                        let _ = req.reply.send(Ok(body));
                    }
                    Some(req) => {
                        shared.poison(format!(
                            "response correlation id {id} does not match the oldest request ({:?}, id {})",
                            req.api, req.correlation_id
                        ));
                        inflight.push_front(req);
                        break;
                    }
                    None => {
                        shared.poison(format!("unsolicited response with correlation id {id}"));
                        break;
                    }
                }
                continue;
            }
            Ok(None) => {}
        }
        // A large frame still coming: wake up once much of it is there (`LowWater`).
        low_water.frame_rest(frame_rest(&buf));
        let deadline = inflight.front().map(|r| shared.deadline_of(r));
        tokio::select! {
            biased;
            _ = dead_rx.wait_for(|d| *d) => break,
            e = reg_rx.recv() => match e {
                Some(e) => inflight.push_back(e),
                None => { shared.poison("writer stopped"); break; }
            },
            _ = async {
                match deadline {
                    Some(d) => tokio::time::sleep_until(d).await,
                    None => std::future::pending().await,
                }
            } => {
                if inflight.front().is_some_and(|r| shared.deadline_of(r) > Instant::now()) {
                    continue; // Throttled meanwhile: a later deadline.
                }
                let req = inflight.pop_front().expect("deadline implies a request");
                shared.counters.timed_out();
                shared.poison(format!(
                    "{:?} request timed out after {}ms (request.timeout.ms)",
                    req.api,
                    req.timeout.as_millis()
                ));
                timed_out = Some(req);
                break;
            }
            r = read.read_buf(&mut buf) => match r {
                Ok(0) => { shared.poison("connection closed by broker"); break; }
                Ok(_) => {}
                Err(e) => {
                    #[cfg(feature = "tls")]
                    if let Some(tls) = tls::alert_error(&shared.addr, &e) {
                        *shared.tls_alert.lock().unwrap_or_else(|p| p.into_inner()) = Some(tls);
                    }
                    shared.poison(format!("read failed: {e}"));
                    break;
                }
            },
        }
    }
    // Fail everything still waiting. The registration channel may still hold entries the
    // writer registered just before the end.
    shared.poison("connection closed");
    if let Some(req) = timed_out {
        let _ = req.reply.send(Err(Error::timeout(
            format!("{:?} request to {}", req.api, shared.addr),
            req.timeout,
            true,
        )));
    }
    reg_rx.close();
    while let Ok(e) = reg_rx.try_recv() {
        inflight.push_back(e);
    }
    for req in inflight {
        let _ = req.reply.send(Err(shared.conn_error(true)));
    }
}

/// Stamps the next correlation id into `frame` and returns its API (`None`: frame too short).
fn stamp(frame: &mut Frame, next_id: &mut i32) -> Option<ApiKey> {
    if frame.head.len() < CORRELATION_ID_OFFSET + 4 {
        return None;
    }
    let id = *next_id;
    *next_id = next_id.wrapping_add(1).max(0);
    let head = &mut frame.head;
    let api =
        ApiKey::try_from(i16::from_be_bytes([head[4], head[5]])).unwrap_or(ApiKey::ApiVersions);
    head[CORRELATION_ID_OFFSET..CORRELATION_ID_OFFSET + 4].copy_from_slice(&id.to_be_bytes());
    Some(api)
}

/// When to re-authenticate a session of `lifetime`: at a random 85..95% of it (Java's
/// window), so the connections of a client do not all renew at once.
/// Never sooner than 100 ms: a broker granting (nearly) no session must not make the writer
/// spin; it closes the connection instead, and the endpoint reconnects with backoff.
fn reauth_delay(lifetime: Duration) -> Duration {
    lifetime
        .mul_f64(0.85 + fastrand::f64() * 0.10)
        .max(Duration::from_millis(100))
}

/// The initial SASL exchange, through the connection's normal request path.
struct ConnExchange<'a>(&'a Connection);

impl sasl::Exchange for ConnExchange<'_> {
    fn client_id(&self) -> &str {
        &self.0.opts.client_id
    }

    async fn exchange(&mut self, frame: Frame) -> Result<Bytes> {
        self.0
            .round_trip(frame, true, self.0.opts.request_timeout)
            .await
    }
}

/// The writer's own request path while it re-authenticates (no other request is taken).
struct WriterExchange<'a> {
    w: &'a mut BufWriter<WriteHalf>,
    next_id: &'a mut i32,
    reg_tx: &'a mpsc::UnboundedSender<InFlight>,
    shared: &'a Shared,
    opts: &'a ConnectionOptions,
}

impl sasl::Exchange for WriterExchange<'_> {
    fn client_id(&self) -> &str {
        &self.opts.client_id
    }

    async fn exchange(&mut self, mut frame: Frame) -> Result<Bytes> {
        let id = *self.next_id;
        let api = stamp(&mut frame, self.next_id)
            .ok_or_else(|| Error::InvalidArgument("frame too short".into()))?;
        let (reply, rx) = oneshot::channel();
        let timeout = self.opts.request_timeout;
        self.shared.in_flight.fetch_add(1, Ordering::SeqCst);
        self.reg_tx
            .send(InFlight {
                correlation_id: id,
                api,
                deadline: Instant::now() + timeout,
                timeout,
                reply,
            })
            .map_err(|_| self.shared.conn_error(false))?;
        let written = async {
            self.w.write_all(&frame.head).await?;
            for seg in &frame.rest {
                self.w.write_all(seg).await?;
            }
            self.w.flush().await
        }
        .await;
        if let Err(e) = written {
            self.shared.poison(format!("write failed: {e}"));
            return Err(self.shared.conn_error(true));
        }
        // The reader answers or fails it (its deadline is the request timeout).
        rx.await.unwrap_or_else(|_| Err(self.shared.conn_error(true)))
    }
}

/// Successful re-authentications (KIP-368) of every connection of the process.
static REAUTHENTICATIONS: AtomicU64 = AtomicU64::new(0);

/// How many times connections of this process re-authenticated on the same socket (KIP-368);
/// for tests and diagnostics.
pub fn reauthentications() -> u64 {
    REAUTHENTICATIONS.load(Ordering::Relaxed)
}

/// KIP-368 re-authentication, run by the writer: flush, wait until nothing is in flight,
/// authenticate again, schedule the next one.
async fn reauthenticate(
    w: &mut BufWriter<WriteHalf>,
    next_id: &mut i32,
    reg_tx: &mpsc::UnboundedSender<InFlight>,
    shared: &Arc<Shared>,
    dead_rx: &mut watch::Receiver<bool>,
    opts: &Arc<ConnectionOptions>,
) -> Result<()> {
    let Some(sasl) = &opts.security.sasl else {
        return Ok(());
    };
    w.flush()
        .await
        .map_err(|e| Error::Connection {
            broker: shared.addr.clone(),
            reason: format!("write failed: {e}"),
            in_flight: true,
        })?;
    loop {
        let drained = shared.drained.notified();
        tokio::pin!(drained);
        drained.as_mut().enable();
        if shared.in_flight.load(Ordering::SeqCst) == 0 {
            break;
        }
        tokio::select! {
            _ = dead_rx.wait_for(|d| *d) => return Err(shared.conn_error(false)),
            _ = drained => {}
        }
    }
    let versions = shared.versions.get().cloned().unwrap_or_default();
    let mut ex = WriterExchange {
        w,
        next_id,
        reg_tx,
        shared,
        opts,
    };
    let session = sasl::authenticate(&mut ex, sasl, &versions).await?;
    REAUTHENTICATIONS.fetch_add(1, Ordering::Relaxed);
    tracing::debug!(broker = %shared.addr, lifetime = ?session.lifetime, "re-authenticated");
    shared
        .reauth_at
        .send_replace(session.lifetime.map(|l| Instant::now() + reauth_delay(l)));
    Ok(())
}

/// The size field of the frame at the start of `buf` (`None`: not received yet).
fn frame_size(buf: &[u8]) -> Option<i32> {
    buf.get(..4)
        .map(|h| i32::from_be_bytes([h[0], h[1], h[2], h[3]]))
}

/// Bytes of the frame at the start of `buf` not received yet (0: no frame started).
fn frame_rest(buf: &[u8]) -> usize {
    frame_size(buf).map_or(0, |size| {
        (4 + size.max(0) as usize).saturating_sub(buf.len())
    })
}

/// Splits one complete frame body off `buf`, if there is one.
fn next_frame(buf: &mut BytesMut, max: usize) -> std::result::Result<Option<Bytes>, String> {
    let Some(size) = frame_size(buf) else {
        return Ok(None);
    };
    if size < 0 || size as usize > max {
        return Err(format!(
            "response frame size {size} outside 0..={max} (receive.message.max.bytes)"
        ));
    }
    let size = size as usize;
    if buf.len() < 4 + size {
        buf.reserve(4 + size - buf.len());
        return Ok(None);
    }
    buf.advance(4);
    Ok(Some(buf.split_to(size).freeze()))
}

/// A broker address plus the connection to it, opened lazily (and again after a failure or
/// an idle close). Like the Java client, after a failed attempt the next one waits the
/// reconnect backoff (`reconnect.backoff.ms` .. `reconnect.backoff.max.ms`) and gets a longer
/// setup timeout (`socket.connection.setup.timeout.ms` doubled per failed attempt, ±20%
/// jitter, at most `socket.connection.setup.timeout.max.ms`); a success resets both.
#[derive(Debug)]
pub struct Endpoint {
    addr: String,
    opts: ConnectionOptions,
    /// Statistics counters of every connection this endpoint opens.
    counters: Arc<crate::stats::BrokerCounters>,
    state: Mutex<EndpointState>,
}

#[derive(Debug)]
struct EndpointState {
    conn: Option<Connection>,
    backoff: Backoff,
    setup_timeout: Backoff,
    next_attempt: Option<Instant>,
    last_error: Option<Error>,
}

impl Endpoint {
    /// An endpoint for `addr`; nothing is opened until [`Endpoint::get`].
    pub fn new(addr: impl Into<String>, opts: ConnectionOptions) -> Endpoint {
        Endpoint {
            addr: addr.into(),
            state: Mutex::new(EndpointState {
                conn: None,
                backoff: Backoff::new(opts.reconnect_backoff, opts.reconnect_backoff_max),
                setup_timeout: Backoff::new(opts.connect_timeout, opts.connect_timeout_max),
                next_attempt: None,
                last_error: None,
            }),
            opts,
            counters: Arc::default(),
        }
    }

    /// Statistics of this endpoint as broker `node_id` (negative: a bootstrap entry); resets
    /// the rtt window. Never waits: while a connection attempt holds the endpoint the state
    /// is `"CONNECT"`.
    pub(crate) fn stats(&self, node_id: i32) -> crate::stats::BrokerStats {
        let mut b = self.counters.snapshot();
        let (live, outbuf, waitresp) = self.counters.live();
        let state = if live > 0 {
            "UP"
        } else {
            match self.state.try_lock() {
                Ok(st) if st.last_error.is_some() || b.connects > 0 => "DOWN",
                Ok(_) => "INIT",
                Err(_) => "CONNECT",
            }
        };
        b.name = if node_id < 0 {
            format!("{}/bootstrap", self.addr)
        } else {
            format!("{}/{node_id}", self.addr)
        };
        b.nodeid = node_id;
        b.nodename = self.addr.clone();
        b.state = state.into();
        b.outbuf_cnt = outbuf as i64;
        b.waitresp_cnt = waitresp as i64;
        b
    }

    /// The address.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// The statistics counters of this endpoint's connections.
    pub(crate) fn counters(&self) -> Arc<crate::stats::BrokerCounters> {
        self.counters.clone()
    }

    /// The current live connection, if any, without connecting.
    pub async fn current(&self) -> Option<Connection> {
        let st = self.state.lock().await;
        st.conn.clone().filter(|c| !c.is_closed())
    }

    /// A live connection: the current one, or a new one. While the broker keeps failing,
    /// attempts are spaced by the reconnect backoff: a call inside the backoff window waits
    /// for it (one attempt at a time per endpoint; concurrent callers share the result).
    pub async fn get(&self) -> Result<Connection> {
        let mut st = self.state.lock().await;
        if let Some(c) = &st.conn {
            if !c.is_closed() {
                return Ok(c.clone());
            }
            st.conn = None;
        }
        if let Some(at) = st.next_attempt {
            tokio::time::sleep_until(at).await;
        }
        let opts = ConnectionOptions {
            // Jitter may go above the maximum; the maximum is a bound (as in Java).
            connect_timeout: st
                .setup_timeout
                .next_delay()
                .min(self.opts.connect_timeout_max.max(self.opts.connect_timeout)),
            ..self.opts.clone()
        };
        match Connection::connect_counted(&self.addr, opts, self.counters.clone()).await {
            Ok(c) => {
                st.backoff.reset();
                st.setup_timeout.reset();
                st.next_attempt = None;
                st.last_error = None;
                st.conn = Some(c.clone());
                if let Some(w) = self.counters.watch.get() {
                    w.up();
                }
                Ok(c)
            }
            Err(e) => {
                let delay = st.backoff.next_delay();
                tracing::debug!(broker = %self.addr, error = %e, ?delay, "connect failed");
                st.next_attempt = Some(Instant::now() + delay);
                st.last_error = Some(e.clone());
                if let Some(w) = self.counters.watch.get() {
                    w.down(&e);
                }
                Err(e)
            }
        }
    }

    /// Drops the current connection (e.g. after a protocol error above this layer).
    pub async fn reset(&self) {
        let mut st = self.state.lock().await;
        if let Some(c) = st.conn.take() {
            c.close();
        }
    }

    /// The reconnect backoff bounds this endpoint uses.
    pub fn reconnect_backoff(&self) -> (Duration, Duration) {
        (self.opts.reconnect_backoff, self.opts.reconnect_backoff_max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BufMut;

    #[test]
    fn frames_split_and_bound() {
        let mut b = BytesMut::new();
        b.put_i32(3);
        b.put_slice(b"abc");
        b.put_i32(2);
        b.put_slice(b"d");
        assert_eq!(&next_frame(&mut b, 100).unwrap().unwrap()[..], b"abc");
        assert!(next_frame(&mut b, 100).unwrap().is_none());
        b.put_u8(b'e');
        assert_eq!(&next_frame(&mut b, 100).unwrap().unwrap()[..], b"de");
        let mut b = BytesMut::new();
        b.put_i32(-5);
        assert!(next_frame(&mut b, 100).is_err());
        let mut b = BytesMut::new();
        b.put_i32(101);
        assert!(next_frame(&mut b, 100).is_err());
    }

    /// A fake broker over an in-process TCP listener: answers ApiVersions, then echoes
    /// a canned Metadata-free response shape for ApiVersions again. Exercises poisoning
    /// on a garbage frame without a real broker.
    #[tokio::test]
    async fn garbage_response_poisons_and_fails_waiters() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut hdr = [0u8; 4];
            s.read_exact(&mut hdr).await.unwrap();
            let n = i32::from_be_bytes(hdr) as usize;
            let mut body = vec![0u8; n];
            s.read_exact(&mut body).await.unwrap();
            // Answer with an absurd frame size.
            s.write_all(&(-1i32).to_be_bytes()).await.unwrap();
            tokio::time::sleep(Duration::from_secs(5)).await;
        });
        let opts = ConnectionOptions {
            connect_timeout: Duration::from_secs(2),
            ..Default::default()
        };
        let err = Connection::connect(&addr, opts).await.unwrap_err();
        assert!(
            matches!(
                err,
                Error::Connection {
                    in_flight: true,
                    ..
                }
            ),
            "{err:?}"
        );
        assert!(err.to_string().contains("frame size"), "{err}");
    }

    /// The response frame a fake broker sends to the request with correlation id `corr` (its
    /// 4 bytes): header v0 (the correlation id), then the flexible ApiVersions v3 body: error
    /// code, api_keys (a compact array of one entry, ApiVersions 0..=3, and its empty tag
    /// buffer), throttle time, empty tag buffer.
    fn api_versions_answer(corr: &[u8]) -> BytesMut {
        let mut body = BytesMut::new();
        body.put_slice(corr);
        body.put_i16(0);
        body.put_u8(2);
        body.put_i16(ApiKey::ApiVersions as i16);
        body.put_i16(0);
        body.put_i16(3);
        body.put_u8(0);
        body.put_i32(0);
        body.put_u8(0);
        let mut frame = BytesMut::new();
        frame.put_i32(body.len() as i32);
        frame.put_slice(&body);
        frame
    }

    /// A fake broker on a loopback port: answers every request (after `delay`) with an
    /// ApiVersions v3 response listing ApiVersions 0..=3, unless `answer` is off, in which
    /// case it holds the socket silently. Counts accepted connections.
    async fn fake_broker(delay: Duration) -> (String, Arc<AtomicUsize>, Arc<AtomicBool>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let accepted = Arc::new(AtomicUsize::new(0));
        let answer = Arc::new(AtomicBool::new(true));
        let (acc, ans) = (accepted.clone(), answer.clone());
        tokio::spawn(async move {
            loop {
                let (mut s, _) = listener.accept().await.unwrap();
                acc.fetch_add(1, Ordering::SeqCst);
                let answer = ans.load(Ordering::SeqCst);
                tokio::spawn(async move {
                    let mut size = [0u8; 4];
                    while s.read_exact(&mut size).await.is_ok() {
                        let mut req = vec![0u8; i32::from_be_bytes(size) as usize];
                        if s.read_exact(&mut req).await.is_err() || !answer {
                            tokio::time::sleep(Duration::from_secs(30)).await;
                            return;
                        }
                        tokio::time::sleep(delay).await;
                        if s.write_all(&api_versions_answer(&req[4..8])).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        (addr, accepted, answer)
    }

    async fn ping(conn: &Connection) -> Result<ApiVersionsResponse> {
        let req = ApiVersionsRequest::default();
        conn.send_version(&req, 3, Duration::from_secs(5)).await
    }

    #[tokio::test]
    async fn idle_connection_is_closed_and_reopened_on_demand() {
        let (addr, accepted, _) = fake_broker(Duration::ZERO).await;
        let opts = ConnectionOptions {
            max_idle: Duration::from_millis(300),
            ..Default::default()
        };
        let ep = Endpoint::new(addr, opts);
        let first = ep.get().await.unwrap();
        // Used more often than the idle limit: stays open.
        for _ in 0..4 {
            ping(&first).await.unwrap();
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(!first.is_closed());
        assert_eq!(accepted.load(Ordering::SeqCst), 1);
        // Left alone: closed, and the next request gets a new connection.
        tokio::time::sleep(Duration::from_millis(700)).await;
        assert!(first.is_closed());
        let err = ping(&first).await.unwrap_err();
        assert!(
            matches!(&err, Error::Connection { in_flight: false, reason, .. }
                if reason.contains("connections.max.idle.ms")),
            "{err:?}"
        );
        let second = ep.get().await.unwrap();
        ping(&second).await.unwrap();
        assert!(!second.is_closed());
        assert_eq!(accepted.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_request_in_flight_is_not_idle_and_zero_means_never() {
        // The broker takes longer to answer than the idle limit.
        let (addr, _, _) = fake_broker(Duration::from_millis(500)).await;
        let opts = ConnectionOptions {
            max_idle: Duration::from_millis(100),
            ..Default::default()
        };
        let conn = Connection::connect(&addr, opts).await.unwrap();
        ping(&conn).await.unwrap();
        assert!(!conn.is_closed());

        let (addr, _, _) = fake_broker(Duration::ZERO).await;
        let opts = ConnectionOptions {
            max_idle: Duration::ZERO,
            ..Default::default()
        };
        let conn = Connection::connect(&addr, opts).await.unwrap();
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert!(!conn.is_closed());
        ping(&conn).await.unwrap();
    }

    /// The setup timeout a failed attempt used, from its error.
    fn setup_timeout_ms(e: &Error) -> u128 {
        let text = e.to_string();
        let start = text.rfind('(').unwrap() + 1;
        let end = text[start..].find("ms)").unwrap() + start;
        text[start..end].parse().unwrap()
    }

    #[tokio::test]
    async fn setup_timeout_grows_per_failed_attempt_up_to_the_max() {
        let (addr, _, answer) = fake_broker(Duration::ZERO).await;
        answer.store(false, Ordering::SeqCst);
        let opts = ConnectionOptions {
            connect_timeout: Duration::from_millis(100),
            connect_timeout_max: Duration::from_millis(300),
            reconnect_backoff: Duration::from_millis(1),
            reconnect_backoff_max: Duration::from_millis(1),
            ..Default::default()
        };
        let ep = Endpoint::new(addr, opts);
        let mut used = Vec::new();
        for _ in 0..4 {
            used.push(setup_timeout_ms(&ep.get().await.unwrap_err()));
        }
        // 100ms, then doubled, each ±20%, never above the max.
        assert!((80..=120).contains(&used[0]), "{used:?}");
        assert!((160..=240).contains(&used[1]), "{used:?}");
        assert!((240..=300).contains(&used[2]), "{used:?}");
        assert!((240..=300).contains(&used[3]), "{used:?}");
        // A success resets it to the first value.
        answer.store(true, Ordering::SeqCst);
        let conn = ep.get().await.unwrap();
        answer.store(false, Ordering::SeqCst);
        ep.reset().await;
        assert!(conn.is_closed());
        let again = setup_timeout_ms(&ep.get().await.unwrap_err());
        assert!((80..=120).contains(&again), "{again}");
    }

    #[test]
    fn default_options_are_the_key_table_defaults() {
        let o = ConnectionOptions::default();
        let c = crate::ClientConfig::new()
            .with("bootstrap.servers", "h:1")
            .common()
            .unwrap();
        assert_eq!(o.client_id.as_ref(), c.client_id);
        assert_eq!(o.request_timeout, c.request_timeout);
        assert_eq!(o.connect_timeout, Duration::from_millis(10_000));
        assert_eq!(o.connect_timeout_max, Duration::from_millis(30_000));
        assert_eq!(o.max_idle, Duration::from_millis(540_000));
        assert_eq!(o.reconnect_backoff, c.reconnect_backoff);
        assert_eq!(o.reconnect_backoff_max, c.reconnect_backoff_max);
        assert_eq!(o.max_response_size, c.max_response_size);
        assert!(o.nodelay);
    }

    /// A request whose frame was written but not flushed because another was queued behind
    /// it must still be flushed when that queued request is cancelled before it is written
    /// (the writer used to `continue` past the deferred flush and wait for the next request,
    /// so the first one sat in the buffer until `request.timeout.ms` poisoned the connection).
    #[tokio::test]
    async fn cancelled_queued_request_does_not_hold_back_the_one_before_it() {
        use std::future::Future;
        let (addr, _, _) = fake_broker(Duration::ZERO).await;
        let conn = Connection::connect(&addr, ConnectionOptions::default())
            .await
            .unwrap();
        let req = ApiVersionsRequest::default();
        let timeout = Duration::from_secs(20);
        let mut first = std::pin::pin!(conn.send_version(&req, 3, timeout));
        let mut second = Box::pin(conn.send_version(&req, 3, timeout));
        // Queue both without yielding to the runtime (the test runs on a current-thread
        // runtime): the writer task has not taken either yet.
        std::future::poll_fn(|cx| {
            assert!(first.as_mut().poll(cx).is_pending());
            assert!(second.as_mut().poll(cx).is_pending());
            std::task::Poll::Ready(())
        })
        .await;
        // Cancel the second before the writer gets to it.
        drop(second);
        let start = std::time::Instant::now();
        let answered = tokio::time::timeout(Duration::from_secs(5), first).await;
        assert!(
            matches!(answered, Ok(Ok(_))),
            "first request not answered within 5s (request timeout 20s): {answered:?}"
        );
        assert!(start.elapsed() < Duration::from_secs(5));
        assert!(!conn.is_closed());
        ping(&conn).await.unwrap();
    }

    /// A fake SASL broker: PLAIN with a session of `lifetime_ms`; other requests (ApiVersions
    /// pings) are answered in order after 30 ms. Records, for every SaslHandshake, how many
    /// pings were received and not yet answered when it arrived (KIP-368 wants none).
    async fn fake_sasl_broker(lifetime_ms: i64) -> (String, Arc<std::sync::Mutex<Vec<usize>>>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let handshakes = Arc::new(std::sync::Mutex::new(Vec::new()));
        let hs = handshakes.clone();
        tokio::spawn(async move {
            let (s, _) = listener.accept().await.unwrap();
            let (mut r, mut w) = s.into_split();
            let outstanding = Arc::new(AtomicUsize::new(0));
            let (tx, mut rx) = mpsc::unbounded_channel::<(i16, Vec<u8>)>();
            let out = outstanding.clone();
            tokio::spawn(async move {
                let mut size = [0u8; 4];
                while r.read_exact(&mut size).await.is_ok() {
                    let mut req = vec![0u8; i32::from_be_bytes(size) as usize];
                    if r.read_exact(&mut req).await.is_err() {
                        return;
                    }
                    let api = i16::from_be_bytes([req[0], req[1]]);
                    if api == ApiKey::SaslHandshake as i16 {
                        hs.lock().unwrap().push(out.load(Ordering::SeqCst));
                    } else if api == ApiKey::ApiVersions as i16 {
                        out.fetch_add(1, Ordering::SeqCst);
                    }
                    if tx.send((api, req[4..8].to_vec())).is_err() {
                        return;
                    }
                }
            });
            let mut pings = 0;
            while let Some((api, corr)) = rx.recv().await {
                let mut body = BytesMut::new();
                body.put_slice(&corr);
                if api == ApiKey::ApiVersions as i16 {
                    pings += 1;
                    if pings > 1 {
                        tokio::time::sleep(Duration::from_millis(30)).await;
                    }
                    body.put_i16(0);
                    body.put_u8(4);
                    for (key, max) in [
                        (ApiKey::ApiVersions, 3),
                        (ApiKey::SaslHandshake, 1),
                        (ApiKey::SaslAuthenticate, 2),
                    ] {
                        body.put_i16(key as i16);
                        body.put_i16(0);
                        body.put_i16(max);
                        body.put_u8(0);
                    }
                    body.put_i32(0);
                    body.put_u8(0);
                    outstanding.fetch_sub(1, Ordering::SeqCst);
                } else if api == ApiKey::SaslHandshake as i16 {
                    body.put_i16(0);
                    body.put_i32(1);
                    body.put_i16(5);
                    body.put_slice(b"PLAIN");
                } else {
                    // SaslAuthenticate v2 (flexible): header tags, error, null message, empty
                    // bytes, session lifetime, tags.
                    body.put_u8(0);
                    body.put_i16(0);
                    body.put_u8(0);
                    body.put_u8(1);
                    body.put_i64(lifetime_ms);
                    body.put_u8(0);
                }
                let mut frame = BytesMut::new();
                frame.put_i32(body.len() as i32);
                frame.put_slice(&body);
                if w.write_all(&frame).await.is_err() {
                    return;
                }
            }
        });
        (addr, handshakes)
    }

    /// KIP-368 in the writer: with a 300 ms session and requests pipelined all the time, the
    /// connection re-authenticates several times on the same socket, each time only once no
    /// request is in flight, and no request fails.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn reauthenticates_between_requests_without_failing_any() {
        let (addr, handshakes) = fake_sasl_broker(300).await;
        let cfg = crate::ClientConfig::new()
            .with("bootstrap.servers", addr.as_str())
            .with("security.protocol", "sasl_plaintext")
            .with("sasl.mechanism", "PLAIN")
            .with("sasl.username", "u")
            .with("sasl.password", "p")
            .common()
            .unwrap();
        let conn = Connection::connect(&addr, ConnectionOptions::from(&cfg))
            .await
            .unwrap();
        let t0 = std::time::Instant::now();
        let mut answered = 0;
        while t0.elapsed() < Duration::from_millis(1500) {
            // Four requests in flight at once.
            let (a, b, c, d) = tokio::join!(ping(&conn), ping(&conn), ping(&conn), ping(&conn));
            for r in [a, b, c, d] {
                r.unwrap();
                answered += 1;
            }
        }
        assert!(!conn.is_closed());
        let hs = handshakes.lock().unwrap().clone();
        // The first authentication, then one per ~255..285 ms.
        assert!(hs.len() >= 4, "{hs:?} after {answered} requests");
        assert!(hs.iter().all(|n| *n == 0), "requests in flight at a handshake: {hs:?}");
    }

    /// A request counts as sent in the statistics before its bytes can reach the broker:
    /// a broker that answers as soon as it has read a request's header, while the rest of
    /// a large frame is still being written, must not find the request uncounted once its
    /// response is in the caller's hands (the producer test that counts Produce requests
    /// around a flush once saw the previous request counted after its response).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_request_is_counted_before_its_response_can_arrive() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut size = [0u8; 4];
            while s.read_exact(&mut size).await.is_ok() {
                let n = i32::from_be_bytes(size) as usize;
                // api key, version, correlation id: enough to answer.
                let mut head = [0u8; 8];
                if s.read_exact(&mut head).await.is_err() {
                    return;
                }
                if s.write_all(&api_versions_answer(&head[4..8])).await.is_err() {
                    return;
                }
                // Read the rest of a large request only later: the client's write of it
                // is still blocked when the answer arrives.
                if n > 1 << 20 {
                    tokio::time::sleep(Duration::from_millis(1500)).await;
                }
                let mut rest = vec![0u8; n - 8];
                if s.read_exact(&mut rest).await.is_err() {
                    return;
                }
            }
        });
        let ep = Endpoint::new(addr, ConnectionOptions::default());
        let conn = ep.get().await.unwrap();
        let counted = |ep: &Endpoint| {
            ep.counters()
                .snapshot()
                .req
                .get("ApiVersions")
                .copied()
                .unwrap_or(0)
        };
        assert_eq!(counted(&ep), 1, "the handshake's ApiVersions");
        // An ApiVersions v3 request followed by 16 MiB the fake broker reads late (more
        // than the socket buffers hold); the size prefix covers it all.
        let mut head =
            protocol::encode_request(&ApiVersionsRequest::default(), 3, "t").unwrap();
        let pad = Bytes::from(vec![0u8; 16 << 20]);
        let total = head.len() - 4 + pad.len();
        head[..4].copy_from_slice(&(total as i32).to_be_bytes());
        let frame = Frame {
            head,
            rest: vec![pad],
        };
        let started = std::time::Instant::now();
        let _: ApiVersionsResponse = conn
            .send_frame(ApiKey::ApiVersions, frame, 3, Duration::from_secs(10))
            .await
            .unwrap();
        assert!(
            started.elapsed() < Duration::from_millis(1000),
            "answered while the write was blocked"
        );
        assert_eq!(counted(&ep), 2, "the request is counted once its answer is back");
    }

    #[tokio::test]
    async fn silent_broker_times_out_within_bound() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        tokio::spawn(async move {
            let (_s, _) = listener.accept().await.unwrap();
            tokio::time::sleep(Duration::from_secs(10)).await;
        });
        let opts = ConnectionOptions {
            connect_timeout: Duration::from_millis(300),
            ..Default::default()
        };
        let start = std::time::Instant::now();
        let err = Connection::connect(&addr, opts).await.unwrap_err();
        assert!(start.elapsed() < Duration::from_secs(2));
        assert!(matches!(err, Error::Connection { .. }), "{err:?}");
    }
}
