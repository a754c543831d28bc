//! A fault-injecting TCP proxy for tests: listens on `127.0.0.1:0`, forwards every accepted
//! connection to one upstream address (a broker's client listener) and injects network faults
//! on demand (see [`NetFault`]).
//!
//! Blocking and std-only, like the rest of the kit: one accept thread per proxy and two pump
//! threads per proxied connection (one per direction). A pump reads a chunk (at most 16 KiB),
//! stamps it with its due time (now + the direction's latency) and writes it once due, paced by
//! the direction's bandwidth limit (shared by all connections of the proxy). Reads and writes
//! use short socket timeouts, so a pump notices a fault change within ~100 ms.
//!
//! Only loopback: the proxy binds 127.0.0.1 and refuses an upstream that is not a loopback
//! address.

use std::collections::VecDeque;
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crate::error::{IoContext, Result, TestkitError};

/// Largest chunk a pump reads (and forwards) at once.
const CHUNK: usize = 16 * 1024;
/// Socket timeout of the pumps' reads and writes: how often they look at the fault state.
const TICK: Duration = Duration::from_millis(100);
/// Bound on connecting to the upstream.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long [`Proxy::apply`] waits for reset connections to be closed.
const RESET_WAIT: Duration = Duration::from_secs(5);
/// Stack size of the pump threads (they only copy bytes).
const PUMP_STACK: usize = 128 * 1024;

/// A network fault (or its removal) applied to a [`Proxy`], or through
/// [`KafkaCluster::net_fault`](crate::KafkaCluster::net_fault) to the proxy in front of a
/// broker of a cluster started with [`ClusterOptions::proxied`](crate::ClusterOptions::proxied).
///
/// Latency and bandwidth stay until [`Heal`](NetFault::Heal) (a later `Latency` or `Bandwidth`
/// replaces the earlier value); `BlackHole` and `Refuse` until `Heal`; `Reset` acts once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NetFault {
    /// Adds this delay to every chunk in both directions.
    Latency(Duration),
    /// Adds `to_upstream` to chunks from the client to the broker and `to_client` to chunks
    /// from the broker to the client.
    LatencyPerDirection {
        /// Delay of client -> broker chunks.
        to_upstream: Duration,
        /// Delay of broker -> client chunks.
        to_client: Duration,
    },
    /// Limits each direction to this many bytes per second (shared by all connections).
    Bandwidth(u64),
    /// Closes every current connection with a TCP RST (SO_LINGER 0) on both sides; new
    /// connections are accepted as usual. Returns once they are closed.
    Reset,
    /// Like `Reset`, and until `Heal` every new connection is accepted and immediately reset
    /// (the client sees "connection reset", as with a crashed host that answers with RST).
    Refuse,
    /// Stops forwarding and stops reading in both directions, keeping the sockets open
    /// (half-open: the peers' writes fill the socket buffers, nothing arrives, nothing
    /// closes). New connections are accepted and black-holed too.
    BlackHole,
    /// Back to normal: no latency, no bandwidth limit, forwarding and accepting again.
    Heal,
}

#[derive(Debug, Default, Clone)]
struct Faults {
    to_upstream: Duration,
    to_client: Duration,
    bandwidth: Option<u64>,
    black_hole: bool,
    refuse: bool,
}

#[derive(Debug, Default)]
struct State {
    faults: Faults,
    /// Incremented by every reset: connections opened before it are closed.
    reset_epoch: u64,
    /// Open connections per epoch they were opened in (only the counts are needed).
    open: Vec<(u64, usize)>,
    shutdown: bool,
    accepted: u64,
}

impl State {
    fn open_before(&self, epoch: u64) -> usize {
        self.open
            .iter()
            .filter(|(e, _)| *e < epoch)
            .map(|(_, n)| n)
            .sum()
    }
}

struct Shared {
    upstream: SocketAddr,
    state: Mutex<State>,
    changed: Condvar,
    /// Bandwidth pacing, per direction (0 = to upstream, 1 = to client): when the link is
    /// free again.
    pace: [Mutex<Instant>; 2],
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A fault-injecting TCP proxy in front of one upstream address, on `127.0.0.1` only.
///
/// One accept thread, and two threads per proxied connection (one per direction); faults
/// ([`NetFault`], applied with [`apply`](Proxy::apply)) take effect within ~100 ms. Dropping
/// the proxy stops accepting and closes every proxied connection.
pub struct Proxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    acceptor: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Proxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Proxy")
            .field("addr", &self.addr)
            .field("upstream", &self.shared.upstream)
            .field("faults", &self.shared.lock().faults)
            .finish()
    }
}

impl Proxy {
    /// Starts a proxy on `127.0.0.1:0` forwarding to `upstream` (a loopback `ip:port`).
    pub fn start(upstream: SocketAddr) -> Result<Proxy> {
        if !upstream.ip().is_loopback() {
            return Err(TestkitError::Startup(format!(
                "the proxy only forwards to loopback addresses, not {upstream}"
            )));
        }
        let listener =
            TcpListener::bind("127.0.0.1:0").ctx(|| "binding the proxy port".to_string())?;
        let addr = listener
            .local_addr()
            .ctx(|| "reading the proxy port".to_string())?;
        let shared = Arc::new(Shared {
            upstream,
            state: Mutex::new(State::default()),
            changed: Condvar::new(),
            pace: [Mutex::new(Instant::now()), Mutex::new(Instant::now())],
        });
        let acceptor = thread::Builder::new()
            .name(format!("testkit-proxy-{}", addr.port()))
            .spawn({
                let shared = shared.clone();
                move || accept_loop(listener, shared)
            })
            .ctx(|| "spawning the proxy thread".to_string())?;
        Ok(Proxy {
            addr,
            shared,
            acceptor: Some(acceptor),
        })
    }

    /// The address clients connect to (`127.0.0.1:<port>`).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The address the proxy forwards to.
    pub fn upstream(&self) -> SocketAddr {
        self.shared.upstream
    }

    /// Number of connections accepted so far.
    pub fn accepted(&self) -> u64 {
        self.shared.lock().accepted
    }

    /// Number of proxied connections currently open.
    pub fn open_connections(&self) -> usize {
        self.shared.lock().open.iter().map(|(_, n)| n).sum()
    }

    /// Applies a fault (or heals). `Reset` and `Refuse` return once the connections open
    /// before the call are closed (bounded by a few seconds).
    pub fn apply(&self, fault: NetFault) {
        let mut st = self.shared.lock();
        let f = &mut st.faults;
        let mut reset = false;
        match fault {
            NetFault::Latency(d) => {
                f.to_upstream = d;
                f.to_client = d;
            }
            NetFault::LatencyPerDirection {
                to_upstream,
                to_client,
            } => {
                f.to_upstream = to_upstream;
                f.to_client = to_client;
            }
            NetFault::Bandwidth(b) => f.bandwidth = Some(b.max(1)),
            NetFault::Reset => reset = true,
            NetFault::Refuse => {
                f.refuse = true;
                reset = true;
            }
            NetFault::BlackHole => f.black_hole = true,
            NetFault::Heal => *f = Faults::default(),
        }
        if reset {
            st.reset_epoch += 1;
        }
        let epoch = st.reset_epoch;
        self.shared.changed.notify_all();
        if reset {
            let deadline = Instant::now() + RESET_WAIT;
            while st.open_before(epoch) > 0 {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    break;
                }
                st = self
                    .shared
                    .changed
                    .wait_timeout(st, left)
                    .unwrap_or_else(|p| p.into_inner())
                    .0;
            }
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        {
            let mut st = self.shared.lock();
            st.shutdown = true;
            self.shared.changed.notify_all();
        }
        // Wake the blocking accept.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(a) = self.acceptor.take() {
            let _ = a.join();
        }
    }
}

/// Closes `stream` with an RST: SO_LINGER 0, then the last descriptor is dropped.
fn set_rst_on_close(stream: &TcpStream) {
    let _ = socket2::SockRef::from(stream).set_linger(Some(Duration::ZERO));
}

fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    for conn in listener.incoming() {
        let (refuse, epoch) = {
            let mut st = shared.lock();
            if st.shutdown {
                return;
            }
            st.accepted += 1;
            (st.faults.refuse, st.reset_epoch)
        };
        let Ok(client) = conn else {
            // EMFILE and the like: do not spin.
            thread::sleep(Duration::from_millis(10));
            continue;
        };
        if refuse {
            set_rst_on_close(&client);
            continue;
        }
        // Connecting upstream may take a while (a stopped broker): not on the accept thread.
        let shared2 = shared.clone();
        let spawned = thread::Builder::new()
            .name("testkit-proxy-conn".into())
            .stack_size(PUMP_STACK)
            .spawn(move || connect_and_pump(client, shared2, epoch));
        if spawned.is_err() {
            thread::sleep(Duration::from_millis(10));
        }
    }
}

/// Registers a connection as open in `epoch`; the guard unregisters it.
struct OpenGuard {
    shared: Arc<Shared>,
    epoch: u64,
}

impl OpenGuard {
    fn new(shared: Arc<Shared>, epoch: u64) -> OpenGuard {
        {
            let mut st = shared.lock();
            match st.open.iter_mut().find(|(e, _)| *e == epoch) {
                Some(slot) => slot.1 += 1,
                None => st.open.push((epoch, 1)),
            }
        }
        OpenGuard { shared, epoch }
    }
}

impl Drop for OpenGuard {
    fn drop(&mut self) {
        let mut st = self.shared.lock();
        if let Some(slot) = st.open.iter_mut().find(|(e, _)| *e == self.epoch) {
            slot.1 -= 1;
        }
        st.open.retain(|(_, n)| *n > 0);
        self.shared.changed.notify_all();
    }
}

fn connect_and_pump(client: TcpStream, shared: Arc<Shared>, epoch: u64) {
    let upstream = match TcpStream::connect_timeout(&shared.upstream, CONNECT_TIMEOUT) {
        Ok(s) => s,
        Err(_) => {
            // Like a refused connection: the client sees its connection reset.
            set_rst_on_close(&client);
            return;
        }
    };
    let setup = |s: &TcpStream| {
        s.set_nodelay(true)?;
        s.set_read_timeout(Some(TICK))?;
        s.set_write_timeout(Some(TICK))
    };
    if setup(&client).is_err() || setup(&upstream).is_err() {
        set_rst_on_close(&client);
        return;
    }
    let (Ok(client2), Ok(upstream2)) = (client.try_clone(), upstream.try_clone()) else {
        set_rst_on_close(&client);
        return;
    };
    // One guard per pump: the connection counts as open until both pumps are gone.
    let guard = Arc::new(OpenGuard::new(shared.clone(), epoch));
    let dead = Arc::new(AtomicBool::new(false));
    let up = {
        let shared = shared.clone();
        let guard = guard.clone();
        let dead = dead.clone();
        thread::Builder::new()
            .name("testkit-proxy-up".into())
            .stack_size(PUMP_STACK)
            .spawn(move || {
                pump(client2, upstream2, &shared, &dead, epoch, 0);
                drop(guard);
            })
    };
    if up.is_err() {
        set_rst_on_close(&client);
        set_rst_on_close(&upstream);
        return;
    }
    pump(upstream, client, &shared, &dead, epoch, 1);
    drop(guard);
}

/// Why a pump stopped.
enum Stop {
    /// The source closed (EOF): pass the half-close on.
    Eof,
    /// A socket error, a reset fault or shutdown: close both sides with RST.
    Abort,
}

/// Copies `from` -> `to` under the fault state; `dir` 0 = client -> upstream, 1 = back.
/// `dead` is shared by the two pumps of a connection: set when one of them aborts, so the
/// other aborts too instead of passing a FIN on.
fn pump(
    mut from: TcpStream,
    mut to: TcpStream,
    shared: &Shared,
    dead: &AtomicBool,
    epoch: u64,
    dir: usize,
) {
    let mut queue: VecDeque<(Instant, Vec<u8>)> = VecDeque::new();
    let mut buf = vec![0u8; CHUNK];
    let mut eof = false;
    let stop = loop {
        // Look at the fault state; wait while black-holed.
        let faults = {
            let mut st = shared.lock();
            loop {
                if st.shutdown || st.reset_epoch != epoch || dead.load(Ordering::SeqCst) {
                    break None;
                }
                if !st.faults.black_hole {
                    break Some(st.faults.clone());
                }
                st = shared
                    .changed
                    .wait_timeout(st, TICK)
                    .unwrap_or_else(|p| p.into_inner())
                    .0;
            }
        };
        let Some(faults) = faults else {
            break Stop::Abort;
        };
        // Write what is due.
        let now = Instant::now();
        if queue.front().is_some_and(|(due, _)| *due <= now) {
            if let Some((_, data)) = queue.pop_front() {
                match write_paced(&mut to, &data, shared, dead, epoch, dir, faults.bandwidth) {
                    Ok(()) => continue,
                    Err(s) => break s,
                }
            }
        }
        if eof {
            if queue.is_empty() {
                break Stop::Eof;
            }
            let wait = queue
                .front()
                .map(|(due, _)| due.saturating_duration_since(now))
                .unwrap_or(TICK)
                .min(TICK);
            thread::sleep(wait);
            continue;
        }
        // Read, at most until the next chunk is due.
        let wait = queue
            .front()
            .map(|(due, _)| due.saturating_duration_since(now))
            .unwrap_or(TICK)
            .clamp(Duration::from_millis(1), TICK);
        if from.set_read_timeout(Some(wait)).is_err() {
            break Stop::Abort;
        }
        match from.read(&mut buf) {
            Ok(0) => eof = true,
            Ok(n) => {
                // The state as of now, not of before the (up to one tick long) read.
                let delay = {
                    let st = shared.lock();
                    if dir == 0 {
                        st.faults.to_upstream
                    } else {
                        st.faults.to_client
                    }
                };
                queue.push_back((Instant::now() + delay, buf[..n].to_vec()));
            }
            Err(e) if is_timeout(&e) || e.kind() == ErrorKind::Interrupted => {}
            Err(_) => break Stop::Abort,
        }
    };
    match stop {
        Stop::Eof => {
            let _ = to.shutdown(Shutdown::Write);
        }
        Stop::Abort => {
            dead.store(true, Ordering::SeqCst);
            set_rst_on_close(&from);
            set_rst_on_close(&to);
            // Wakes the other pump (its read returns 0 or an error) without sending a FIN:
            // the RST goes out when the last descriptor is closed.
            let _ = from.shutdown(Shutdown::Read);
            let _ = to.shutdown(Shutdown::Read);
        }
    }
}

fn is_timeout(e: &std::io::Error) -> bool {
    matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut)
}

/// Writes `data` to `to`, paced by `bandwidth` (bytes/s), retrying on write timeouts while
/// no reset, black hole or shutdown intervenes (a black hole stalls the write until healed).
fn write_paced(
    to: &mut TcpStream,
    mut data: &[u8],
    shared: &Shared,
    dead: &AtomicBool,
    epoch: u64,
    dir: usize,
    bandwidth: Option<u64>,
) -> std::result::Result<(), Stop> {
    if let Some(rate) = bandwidth {
        let cost = Duration::from_secs_f64(data.len() as f64 / rate as f64);
        let start = {
            let mut free = shared.pace[dir].lock().unwrap_or_else(|p| p.into_inner());
            let start = (*free).max(Instant::now());
            *free = start + cost;
            start
        };
        // Sleep in ticks so a reset is noticed.
        while Instant::now() < start {
            if dead.load(Ordering::SeqCst) || aborted(shared, epoch) {
                return Err(Stop::Abort);
            }
            thread::sleep(start.saturating_duration_since(Instant::now()).min(TICK));
        }
    }
    while !data.is_empty() {
        {
            let mut st = shared.lock();
            while st.faults.black_hole && !st.shutdown && st.reset_epoch == epoch {
                st = shared
                    .changed
                    .wait_timeout(st, TICK)
                    .unwrap_or_else(|p| p.into_inner())
                    .0;
            }
            if st.shutdown || st.reset_epoch != epoch || dead.load(Ordering::SeqCst) {
                return Err(Stop::Abort);
            }
        }
        match to.write(data) {
            Ok(0) => return Err(Stop::Abort),
            Ok(n) => data = &data[n..],
            Err(e) if is_timeout(&e) || e.kind() == ErrorKind::Interrupted => {}
            Err(_) => return Err(Stop::Abort),
        }
    }
    Ok(())
}

fn aborted(shared: &Shared, epoch: u64) -> bool {
    let st = shared.lock();
    st.shutdown || st.reset_epoch != epoch
}
