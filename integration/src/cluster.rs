//! Starting, controlling and stopping a KRaft Kafka cluster of real brokers.

use std::fmt::Write as _;
use std::fs::{self, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write as _};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use crate::error::{IoContext, Result, TestkitError};
use crate::jars::{self, tail};
use crate::proxy::{NetFault, Proxy};
use crate::security::{
    properties_text, Acl, BadTls, SaslMechanism, Security, SecuritySetup, TlsFiles, User,
};
use crate::wire;

/// Line a broker logs once it serves requests.
const READY_LINE: &str = "Kafka Server started";
/// How many times a start is tried with fresh ports when a port was taken meanwhile.
const PORT_ATTEMPTS: usize = 3;
/// Timeout of one probe / metadata request.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a graceful stop (SIGTERM) may take before SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(20);
/// How long `Drop` waits after SIGTERM before SIGKILL.
const DROP_GRACE: Duration = Duration::from_secs(3);

/// log4j2 configuration of the brokers: INFO to stdout, which is redirected to the node log.
const BROKER_LOG4J2: &str = "\
status = warn
name = kafka-testkit-broker
appender.console.type = Console
appender.console.name = STDOUT
appender.console.target = SYSTEM_OUT
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.stdout.ref = STDOUT
";

/// Watches the test process; when it is gone, SIGKILLs every JVM whose pid file is in
/// `$D/pids` and removes `$D` (unless `$D/.keep` exists). Ignores INT/HUP/TERM so a Ctrl-C
/// of the test run does not take it down before it cleaned up.
const REAPER_SCRIPT: &str = r#"trap '' INT HUP TERM
T=$1; D=$2
alive() { kill -0 "$T" 2>/dev/null && ! grep -q '^State:[[:space:]]*Z' "/proc/$T/status" 2>/dev/null; }
while alive; do sleep 1; done
for f in "$D"/pids/*; do [ -f "$f" ] && kill -9 "$(cat "$f")" 2>/dev/null; done
sleep 1
[ -e "$D/.keep" ] || rm -rf "$D"
"#;

/// Options of [`KafkaCluster::start`].
#[derive(Debug, Clone)]
pub struct ClusterOptions {
    /// Number of nodes, each a combined broker + controller: 1 or 3.
    pub nodes: usize,
    /// Kafka version to run; `None` = `$KAFKA_TESTKIT_VERSION` or 4.3.1 (falling back to 4.2.1).
    pub kafka_version: Option<String>,
    /// Extra `server.properties` entries; they override the kit's defaults. `{node}` in a
    /// value becomes the node's id (e.g. `("broker.rack", "rack-{node}")`).
    pub broker_props: Vec<(String, String)>,
    /// Feature levels passed to `kafka-storage format --feature k=v`, e.g.
    /// `("transaction.version", "1")` or `("share.version", "1")` (KIP-932 share groups;
    /// the default level of Kafka 4.3, as `kafka-storage version-mapping` shows).
    pub features: Vec<(String, String)>,
    /// JVM heap (`-Xms`/`-Xmx`) of each broker, in MiB.
    pub heap_mb: u32,
    /// Extra JVM options of each broker (before the main class), e.g. the garbage
    /// collector settings of Kafka's start scripts ([`KAFKA_SCRIPT_JVM_OPTS`]). Empty: the
    /// JVM's own choice, which on a broker limited to one CPU (`taskset`) is the serial
    /// collector.
    pub jvm_opts: Vec<String>,
    /// Bound on starting the cluster (and on each later node start).
    pub startup_timeout: Duration,
    /// Whether `KAFKA_BOOTSTRAP_SERVERS` (and the testcontainers backend) may be used instead
    /// of starting local brokers. Set to `false` for tests that need node control.
    pub allow_external: bool,
    /// Put a fault-injecting [`Proxy`] in front of each broker's client listener (local
    /// clusters only): the broker advertises the proxy's address, so clients reach it only
    /// through the proxy, while inter-broker and controller traffic stay direct (a separate
    /// `INTERNAL` listener). Faults are injected with
    /// [`net_fault`](KafkaCluster::net_fault).
    pub proxied: bool,
    /// Security of the client listener (default [`Security::Plaintext`]). Secured clusters
    /// are always started locally (`KAFKA_BOOTSTRAP_SERVERS` and containers are ignored) and
    /// get a PLAINTEXT `INTERNAL` listener for inter-broker traffic and the kit's own
    /// requests, the users of [`KafkaCluster::users`] and, with TLS, the test PKI of
    /// [`KafkaCluster::tls`].
    pub security: Security,
    /// `connections.max.reauth.ms` of the brokers (KIP-368 re-authentication tests); `None`
    /// keeps Kafka's default (no re-authentication).
    pub max_reauth: Option<Duration>,
    /// With a TLS [`security`](ClusterOptions::security), give each broker two more SSL
    /// listeners serving bad certificates (see [`KafkaCluster::bad_tls_addr`]): `EXPIRED`
    /// (expired certificate) and `WRONG_HOST` (certificate for
    /// [`WRONG_HOST_NAME`](crate::WRONG_HOST_NAME)).
    pub bad_tls_listeners: bool,
}

/// The garbage-collector options Kafka's own start scripts give a broker
/// (`kafka-run-class.sh`'s performance options): G1 with a 20 ms pause goal. Benchmarks pass
/// them (`kafka-testkit up --kafka-gc`) so that the broker pauses as a production broker does.
pub const KAFKA_SCRIPT_JVM_OPTS: &[&str] = &[
    "-XX:+UseG1GC",
    "-XX:MaxGCPauseMillis=20",
    "-XX:InitiatingHeapOccupancyPercent=35",
    "-XX:+ExplicitGCInvokesConcurrent",
];

impl ClusterOptions {
    /// Sets [`security`](ClusterOptions::security).
    pub fn security(mut self, security: Security) -> Self {
        self.security = security;
        self
    }

    /// Sets [`nodes`](ClusterOptions::nodes).
    pub fn nodes(mut self, nodes: usize) -> Self {
        self.nodes = nodes;
        self
    }

    /// Sets [`max_reauth`](ClusterOptions::max_reauth).
    pub fn max_reauth(mut self, max_reauth: Duration) -> Self {
        self.max_reauth = Some(max_reauth);
        self
    }

    /// Adds a broker property (overrides the kit's defaults and security settings).
    pub fn broker_prop(mut self, key: &str, value: &str) -> Self {
        self.broker_props.push((key.to_string(), value.to_string()));
        self
    }
}

impl Default for ClusterOptions {
    fn default() -> Self {
        ClusterOptions {
            nodes: 1,
            kafka_version: None,
            broker_props: Vec::new(),
            features: Vec::new(),
            heap_mb: 512,
            jvm_opts: Vec::new(),
            startup_timeout: Duration::from_secs(60),
            allow_external: true,
            proxied: false,
            security: Security::Plaintext,
            max_reauth: None,
            bad_tls_listeners: false,
        }
    }
}

/// A Kafka cluster for tests: local JVM brokers started by the kit, or an external cluster
/// named by `KAFKA_BOOTSTRAP_SERVERS`.
///
/// Dropping (or [`stop`](KafkaCluster::stop)ping) a local cluster kills its JVMs and removes
/// its temp dir. A watchdog process also kills them when the test process exits without
/// dropping the cluster (e.g. one held in a `static`, a panic or an abort).
pub struct KafkaCluster {
    bootstrap: String,
    backend: Backend,
}

enum Backend {
    External,
    Local(Box<Local>),
    #[cfg(feature = "testcontainers")]
    #[allow(dead_code)]
    Container(crate::container::Container),
}

impl std::fmt::Debug for KafkaCluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match &self.backend {
            Backend::External => "external",
            Backend::Local(_) => "local",
            #[cfg(feature = "testcontainers")]
            Backend::Container(_) => "container",
        };
        f.debug_struct("KafkaCluster")
            .field("bootstrap", &self.bootstrap)
            .field("backend", &kind)
            .finish()
    }
}

struct Local {
    java: PathBuf,
    libs: PathBuf,
    root: PathBuf,
    heap_mb: u32,
    jvm_opts: Vec<String>,
    timeout: Duration,
    nodes: Vec<Node>,
    reaper: Mutex<Option<Child>>,
    /// Users and PKI of a secured cluster.
    security: Option<SecuritySetup>,
}

struct Node {
    id: i32,
    broker_port: u16,
    /// Where the kit's probes go: the PLAINTEXT `INTERNAL` listener of a secured cluster,
    /// else the client listener itself.
    probe_port: u16,
    /// Ports of the `EXPIRED` and `WRONG_HOST` listeners (`bad_tls_listeners`).
    bad_ports: Option<(u16, u16)>,
    /// The proxy in front of the client listener (`ClusterOptions::proxied`).
    proxy: Option<Proxy>,
    props: PathBuf,
    log: PathBuf,
    pidfile: PathBuf,
    proc: Mutex<Proc>,
}

#[derive(Default)]
struct Proc {
    child: Option<Child>,
    paused: bool,
}

impl Node {
    /// The broker's own client listener (the kit's probes use it, past the proxy).
    fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.broker_port)
    }

    /// Where the kit's own requests go (PLAINTEXT).
    fn probe_addr(&self) -> String {
        format!("127.0.0.1:{}", self.probe_port)
    }

    /// The address clients use: the proxy's when proxied.
    fn client_addr(&self) -> String {
        match &self.proxy {
            Some(p) => p.addr().to_string(),
            None => self.addr(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Proc> {
        self.proc.lock().unwrap_or_else(|p| p.into_inner())
    }
}

enum StartFail {
    PortInUse(String),
    Fatal(TestkitError),
}

impl From<TestkitError> for StartFail {
    fn from(e: TestkitError) -> Self {
        StartFail::Fatal(e)
    }
}

/// Sends `sig` to `pid`.
#[allow(unsafe_code)]
fn signal(pid: u32, sig: libc::c_int) -> std::io::Result<()> {
    let pid = libc::pid_t::try_from(pid)
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidInput, "pid out of range"))?;
    // SAFETY: kill(2) has no memory-safety preconditions; the pid is one of our own children
    // that has not been reaped yet (we hold its `Child`), so it cannot have been reused.
    let rc = unsafe { libc::kill(pid, sig) };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Waits (bounded by `limit`) until every thread of `pid` is in the stopped state (`T`) per
/// `/proc/<pid>/task/*/stat`. Best effort: returns silently when `/proc` is unavailable.
fn wait_all_threads_stopped(pid: u32, limit: Duration) {
    let deadline = Instant::now() + limit;
    let all_stopped = || -> Option<bool> {
        let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).ok()?;
        for t in tasks.flatten() {
            let stat = std::fs::read_to_string(t.path().join("stat")).ok()?;
            // The state follows the parenthesised command name.
            let state = stat.rsplit_once(')')?.1.trim_start().chars().next()?;
            if state != 'T' && state != 't' {
                return Some(false);
            }
        }
        Some(true)
    };
    while Instant::now() < deadline {
        match all_stopped() {
            Some(false) => thread::sleep(Duration::from_millis(5)),
            _ => return,
        }
    }
}

/// Waits for `child` to exit for at most `grace`; then SIGKILLs and reaps it.
fn wait_or_kill(child: &mut Child, grace: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + grace;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Some(status),
            Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(50)),
            _ => break,
        }
    }
    let _ = child.kill();
    child.wait().ok()
}

fn free_ports(n: usize) -> Result<Vec<u16>> {
    let listeners = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0"))
        .collect::<std::io::Result<Vec<_>>>()
        .ctx(|| "binding a free loopback port".to_string())?;
    listeners
        .iter()
        .map(|l| l.local_addr().map(|a| a.port()))
        .collect::<std::io::Result<Vec<_>>>()
        .ctx(|| "reading a bound port".to_string())
}

fn read_from(path: &Path, offset: u64) -> String {
    let mut s = String::new();
    if let Ok(mut f) = fs::File::open(path) {
        if f.seek(SeekFrom::Start(offset)).is_ok() {
            let mut buf = Vec::new();
            let _ = f.read_to_end(&mut buf);
            s = String::from_utf8_lossy(&buf).into_owned();
        }
    }
    s
}

fn file_len(path: &Path) -> u64 {
    fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

/// Sets `key=value` in an ordered property list, replacing an earlier value.
fn set_prop(props: &mut Vec<(String, String)>, key: &str, value: String) {
    match props.iter_mut().find(|(k, _)| k == key) {
        Some(slot) => slot.1 = value,
        None => props.push((key.to_string(), value)),
    }
}

impl KafkaCluster {
    /// Starts a cluster (or attaches to one), waits until it is ready and returns it.
    ///
    /// Source order: `KAFKA_BOOTSTRAP_SERVERS` if set (nothing is started; node control
    /// returns [`TestkitError::External`]); else a container when the `testcontainers`
    /// feature is on and a Docker engine answers; else local JVM brokers from the cached
    /// Maven jars (see [`jars_dir`](crate::jars_dir)) on free loopback ports, in a fresh
    /// temp dir. `allow_external = false` skips the first two, and so does a secured
    /// [`security`](ClusterOptions::security) (the kit must make the PKI and the users).
    pub fn start(opts: ClusterOptions) -> Result<KafkaCluster> {
        // A secured cluster needs the kit's own PKI, users and listeners: always local.
        if opts.allow_external && !opts.security.secured() {
            if let Some(servers) = std::env::var("KAFKA_BOOTSTRAP_SERVERS")
                .ok()
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
            {
                let cluster = KafkaCluster {
                    bootstrap: servers,
                    backend: Backend::External,
                };
                cluster.wait_ready(opts.startup_timeout)?;
                return Ok(cluster);
            }
            #[cfg(feature = "testcontainers")]
            if crate::container::docker_available() {
                let container = crate::container::Container::start(&opts)?;
                let cluster = KafkaCluster {
                    bootstrap: container.bootstrap(),
                    backend: Backend::Container(container),
                };
                cluster.wait_ready(opts.startup_timeout)?;
                return Ok(cluster);
            }
        }
        if opts.nodes != 1 && opts.nodes != 3 {
            return Err(TestkitError::Startup(format!(
                "nodes must be 1 or 3, got {}",
                opts.nodes
            )));
        }
        let java = jars::java_path()?;
        let version = opts
            .kafka_version
            .clone()
            .unwrap_or_else(jars::default_version);
        let libs = jars::jars_dir(&version)?;
        let mut attempt = 0;
        loop {
            attempt += 1;
            match Local::start(&opts, &java, &libs) {
                Ok(local) => {
                    let bootstrap = local
                        .nodes
                        .iter()
                        .map(Node::client_addr)
                        .collect::<Vec<_>>()
                        .join(",");
                    return Ok(KafkaCluster {
                        bootstrap,
                        backend: Backend::Local(Box::new(local)),
                    });
                }
                Err(StartFail::PortInUse(msg)) if attempt < PORT_ATTEMPTS => {
                    eprintln!("kafka-testkit: {msg}; retrying with new ports");
                }
                Err(StartFail::PortInUse(msg)) => return Err(TestkitError::Startup(msg)),
                Err(StartFail::Fatal(e)) => return Err(e),
            }
        }
    }

    /// Comma-separated bootstrap servers, e.g. `127.0.0.1:40123,127.0.0.1:40125`.
    pub fn bootstrap(&self) -> String {
        self.bootstrap.clone()
    }

    /// True when the cluster was not started by the kit (`KAFKA_BOOTSTRAP_SERVERS` or a
    /// container); node control is unavailable then.
    pub fn external(&self) -> bool {
        !matches!(self.backend, Backend::Local(_))
    }

    fn local(&self) -> Result<&Local> {
        match &self.backend {
            Backend::Local(l) => Ok(l),
            _ => Err(TestkitError::External),
        }
    }

    /// Node ids of the cluster (1..=n for local clusters; for external clusters the broker
    /// ids from a Metadata request, empty if that fails).
    pub fn node_ids(&self) -> Vec<i32> {
        match &self.backend {
            Backend::Local(l) => l.nodes.iter().map(|n| n.id).collect(),
            _ => self
                .external_brokers()
                .map(|b| b.into_iter().map(|(id, _)| id).collect())
                .unwrap_or_default(),
        }
    }

    fn external_brokers(&self) -> Result<Vec<(i32, String)>> {
        self.with_any_broker(|addr| {
            let md = wire::metadata(addr, Some(&[]), PROBE_TIMEOUT)?;
            Ok(md
                .brokers
                .iter()
                .map(|b| (b.node_id.0, format!("{}:{}", b.host.as_str(), b.port)))
                .collect())
        })
    }

    /// `host:port` of node `node`'s client listener as clients see it (the proxy's address
    /// in a [proxied](ClusterOptions::proxied) cluster).
    ///
    /// # Panics
    /// If the node id is unknown.
    pub fn broker_addr(&self, node: i32) -> String {
        match &self.backend {
            Backend::Local(l) => l
                .node(node)
                .map(Node::client_addr)
                .unwrap_or_else(|e| panic!("kafka-testkit: {e}")),
            _ => self
                .external_brokers()
                .ok()
                .and_then(|bs| bs.into_iter().find(|(id, _)| *id == node))
                .map(|(_, a)| a)
                .unwrap_or_else(|| panic!("kafka-testkit: unknown node id {node}")),
        }
    }

    /// `host:port` of node `node`'s client listener itself, bypassing its proxy (same as
    /// [`broker_addr`](KafkaCluster::broker_addr) when the cluster is not proxied; local
    /// clusters only).
    pub fn direct_addr(&self, node: i32) -> Result<String> {
        Ok(self.local()?.node(node)?.addr())
    }

    /// The proxy in front of node `node` in a [proxied](ClusterOptions::proxied) cluster.
    pub fn proxy(&self, node: i32) -> Result<&Proxy> {
        self.local()?
            .node(node)?
            .proxy
            .as_ref()
            .ok_or_else(|| TestkitError::NodeState {
                node,
                detail: "not proxied (start the cluster with ClusterOptions::proxied)".to_string(),
            })
    }

    /// Injects a network fault between the clients and node `node` (or heals it with
    /// [`NetFault::Heal`]) through its proxy; the cluster must have been started with
    /// [`ClusterOptions::proxied`]. Inter-broker and controller traffic are not affected.
    pub fn net_fault(&self, node: i32, fault: NetFault) -> Result<()> {
        self.proxy(node)?.apply(fault);
        Ok(())
    }

    /// SIGKILLs node `node` (no-op if it is not running). Restart it with
    /// [`start_node`](KafkaCluster::start_node).
    pub fn kill(&self, node: i32) -> Result<()> {
        let local = self.local()?;
        local.kill_node(local.node(node)?, Duration::ZERO);
        Ok(())
    }

    /// SIGSTOPs node `node`: its sockets stay open but it answers nothing.
    pub fn pause(&self, node: i32) -> Result<()> {
        let n = self.local()?.node(node)?;
        let mut p = n.lock();
        let pid = Self::running_pid(node, &mut p)?;
        signal(pid, libc::SIGSTOP).ctx(|| format!("SIGSTOP node {node}"))?;
        p.paused = true;
        // kill(2) returns before every thread has stopped; on a loaded machine a broker
        // thread can still answer a request for a few milliseconds. Wait until all are stopped.
        wait_all_threads_stopped(pid, Duration::from_secs(5));
        Ok(())
    }

    /// SIGCONTs a node paused with [`pause`](KafkaCluster::pause).
    pub fn resume(&self, node: i32) -> Result<()> {
        let n = self.local()?.node(node)?;
        let mut p = n.lock();
        let pid = Self::running_pid(node, &mut p)?;
        signal(pid, libc::SIGCONT).ctx(|| format!("SIGCONT node {node}"))?;
        p.paused = false;
        Ok(())
    }

    fn running_pid(node: i32, p: &mut Proc) -> Result<u32> {
        match p.child.as_mut().map(|c| (c.id(), c.try_wait())) {
            Some((pid, Ok(None))) => Ok(pid),
            _ => Err(TestkitError::NodeState {
                node,
                detail: "not running".to_string(),
            }),
        }
    }

    /// Stops node `node` gracefully (SIGTERM, SIGKILL after 20 s), starts it again with the
    /// same data dir and ports, and waits until it is ready.
    pub fn restart(&self, node: i32) -> Result<()> {
        let local = self.local()?;
        let n = local.node(node)?;
        local.kill_node(n, STOP_GRACE);
        local.start_node(n)
    }

    /// Starts a node that was killed (same data dir and ports) and waits until it is ready.
    pub fn start_node(&self, node: i32) -> Result<()> {
        let local = self.local()?;
        local.start_node(local.node(node)?)
    }

    /// Current leader of `topic`/`partition` according to a Metadata request to a live
    /// broker; `None` if there is no leader (or the topic/partition is unknown).
    pub fn partition_leader(&self, topic: &str, partition: i32) -> Result<Option<i32>> {
        self.with_any_broker(|addr| {
            let md = wire::metadata(addr, Some(&[topic]), PROBE_TIMEOUT)?;
            Ok(md
                .topics
                .iter()
                .filter(|t| t.name.as_ref().map(|n| n.0.as_str()) == Some(topic))
                .flat_map(|t| t.partitions.iter())
                .find(|p| p.partition_index == partition)
                .map(|p| p.leader_id.0)
                .filter(|&id| id >= 0))
        })
    }

    /// Waits until every running (not paused) node answers an ApiVersions request; for an
    /// external cluster, until one bootstrap server does.
    pub fn wait_ready(&self, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        let mut pending = self.live_addrs();
        let external = self.external();
        loop {
            let mut last_err = None;
            pending.retain(|a| match wire::api_versions(a, PROBE_TIMEOUT) {
                Ok(_) => false,
                Err(e) => {
                    last_err = Some(e);
                    true
                }
            });
            // Local: every live node answered. External: at least one bootstrap server did.
            if pending.is_empty() || (external && pending.len() < self.live_addrs().len()) {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(TestkitError::Timeout(format!(
                    "brokers {} not ready after {timeout:?}: {}",
                    pending.join(","),
                    last_err.map(|e| e.to_string()).unwrap_or_default()
                )));
            }
            thread::sleep(Duration::from_millis(200));
        }
    }

    /// Creates a topic with a CreateTopics request, then waits until every live broker's
    /// metadata shows a leader for each partition. `configs` are topic configs such as
    /// `("min.insync.replicas", "2")`.
    pub fn create_topic(
        &self,
        name: &str,
        partitions: i32,
        replication: i16,
        configs: &[(&str, &str)],
    ) -> Result<()> {
        let resp = self.with_any_broker(|addr| {
            wire::create_topic(
                addr,
                name,
                partitions,
                replication,
                configs,
                Duration::from_secs(30),
            )
        })?;
        for t in &resp.topics {
            if t.error_code != 0 {
                return Err(TestkitError::Protocol {
                    addr: self.bootstrap.clone(),
                    detail: format!(
                        "CreateTopics {name}: {}{}",
                        wire::error_name(t.error_code),
                        t.error_message
                            .as_ref()
                            .map(|m| format!(": {}", m.as_str()))
                            .unwrap_or_default()
                    ),
                });
            }
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        for addr in self.live_addrs() {
            loop {
                let ok = wire::metadata(&addr, Some(&[name]), PROBE_TIMEOUT)
                    .map(|md| {
                        md.topics.iter().any(|t| {
                            t.error_code == 0
                                && t.partitions.len() == partitions as usize
                                && t.partitions
                                    .iter()
                                    .all(|p| p.error_code == 0 && p.leader_id.0 >= 0)
                        })
                    })
                    .unwrap_or(false);
                if ok {
                    break;
                }
                if Instant::now() >= deadline {
                    return Err(TestkitError::Timeout(format!(
                        "topic {name} has no leaders in {addr}'s metadata after 30s"
                    )));
                }
                thread::sleep(Duration::from_millis(100));
            }
        }
        Ok(())
    }

    /// A command running the Kafka CLI tool `name` (see [`TOOLS`](crate::TOOLS)) from this
    /// cluster's jars. The bootstrap address is not added: pass
    /// `--bootstrap-server` yourself.
    ///
    /// # Panics
    /// If the tool name is unknown or java/the jars are unavailable; use
    /// [`tool_output`](KafkaCluster::tool_output) or [`tool_command`](crate::tool_command)
    /// for a `Result`.
    pub fn tool(&self, name: &str, args: &[&str]) -> Command {
        self.try_tool(name, args)
            .unwrap_or_else(|e| panic!("kafka-testkit: tool {name}: {e}"))
    }

    fn try_tool(&self, name: &str, args: &[&str]) -> Result<Command> {
        match &self.backend {
            Backend::Local(l) => jars::java_tool(&l.libs, &jars::tool_class(name)?, args),
            _ => jars::tool_command(name, args),
        }
    }

    /// Runs the tool like [`tool`](KafkaCluster::tool) with stdin closed and returns its
    /// captured output (the exit status is not checked).
    pub fn tool_output(&self, name: &str, args: &[&str]) -> Result<Output> {
        self.try_tool(name, args)?
            .stdin(Stdio::null())
            .output()
            .ctx(|| format!("running tool {name}"))
    }

    /// Path of node `node`'s broker log (stdout+stderr of its JVM). The temp dir holding it
    /// is removed on drop unless `KAFKA_TESTKIT_KEEP=1`, or when the start failed. Empty for
    /// an external cluster.
    ///
    /// # Panics
    /// If the node id is unknown for a local cluster.
    pub fn log_path(&self, node: i32) -> PathBuf {
        match &self.backend {
            Backend::Local(l) => l
                .node(node)
                .map(|n| n.log.clone())
                .unwrap_or_else(|e| panic!("kafka-testkit: {e}")),
            _ => PathBuf::new(),
        }
    }

    /// Pid of node `node`'s JVM, if it is running.
    pub fn pid(&self, node: i32) -> Result<Option<u32>> {
        let n = self.local()?.node(node)?;
        let p = n.lock();
        Ok(p.child.as_ref().map(Child::id))
    }

    /// The cluster's temp dir (local clusters only).
    pub fn data_root(&self) -> Option<PathBuf> {
        match &self.backend {
            Backend::Local(l) => Some(l.root.clone()),
            _ => None,
        }
    }

    fn security_setup(&self) -> Result<&SecuritySetup> {
        self.local()?.security.as_ref().ok_or_else(|| {
            TestkitError::Security(
                "the cluster is not secured (start it with ClusterOptions::security)".to_string(),
            )
        })
    }

    /// Security of the client listener ([`Security::Plaintext`] for external clusters).
    pub fn security(&self) -> Security {
        self.security_setup()
            .map(|s| s.security)
            .unwrap_or_default()
    }

    /// The test PKI of a TLS cluster (CA, broker and client certificates, bad material).
    pub fn tls(&self) -> Option<&TlsFiles> {
        self.security_setup().ok().and_then(|s| s.tls.as_ref())
    }

    /// Path of the test CA certificate (PEM) of a TLS cluster: what clients must trust.
    pub fn ca_path(&self) -> Option<PathBuf> {
        self.tls().map(|t| t.ca_cert.clone())
    }

    /// The users of a secured cluster, the super user (`admin`) first, then `alice` and
    /// `bob`; empty for a plaintext or external cluster.
    pub fn users(&self) -> &[User] {
        self.security_setup()
            .map(|s| s.users.as_slice())
            .unwrap_or_default()
    }

    /// The user called `name` (an error naming the known users otherwise).
    pub fn user(&self, name: &str) -> Result<&User> {
        self.security_setup()?.user(name)
    }

    /// kafka-sdk / librdkafka client settings to connect to a SASL cluster as `user` with
    /// `mechanism`: `security.protocol`, `sasl.mechanism`, `sasl.username` and
    /// `sasl.password` (OAUTHBEARER: `sasl.oauthbearer.config=principal=<user>` and
    /// `enable.sasl.oauthbearer.unsecure.jwt=true` instead), and with TLS `ssl.ca.location`.
    /// `bootstrap.servers` is not included (see [`bootstrap`](KafkaCluster::bootstrap)).
    pub fn client_config(
        &self,
        user: &str,
        mechanism: SaslMechanism,
    ) -> Result<Vec<(String, String)>> {
        self.security_setup()?.client_config(user, mechanism)
    }

    /// kafka-sdk / librdkafka client settings for a TLS-only cluster: `security.protocol=ssl`,
    /// `ssl.ca.location` and, for [`Security::SslClientAuth`], `user`'s certificate and key
    /// (`ssl.certificate.location`, `ssl.key.location`).
    pub fn tls_client_config(&self, user: &str) -> Result<Vec<(String, String)>> {
        self.security_setup()?.tls_client_config(user)
    }

    /// Writes a Java client `.properties` file (`security.protocol`, with SASL
    /// `sasl.mechanism` and `sasl.jaas.config`, with TLS `ssl.truststore.type=PEM` and
    /// `ssl.truststore.location`, with mTLS a PEM keystore) for `user` into the cluster dir
    /// and returns its path, for the Java tools' `--command-config`,
    /// `--producer.config` / `--consumer.config`. `mechanism` is ignored unless the
    /// listener is SASL.
    pub fn java_client_properties(&self, user: &str, mechanism: SaslMechanism) -> Result<PathBuf> {
        let sec = self.security_setup()?;
        let props = sec.java_properties(user, mechanism)?;
        let name = if sec.security.sasl() {
            format!(
                "client-{user}-{}.properties",
                mechanism.name().to_ascii_lowercase()
            )
        } else {
            format!("client-{user}.properties")
        };
        let path = self.local()?.root.join(name);
        fs::write(&path, properties_text(&props)).ctx(|| format!("writing {}", path.display()))?;
        Ok(path)
    }

    /// Adds ACLs (CreateAcls on the PLAINTEXT inter-broker listener, whose principal
    /// `User:ANONYMOUS` is a super user), then waits until every live broker's authorizer
    /// shows each of them (DescribeAcls), so a request right after sees them.
    pub fn add_acls(&self, acls: &[Acl]) -> Result<()> {
        self.security_setup()?;
        let bindings: Vec<_> = acls.iter().map(Acl::binding).collect();
        self.with_any_broker(|addr| wire::create_acls(addr, &bindings, Duration::from_secs(30)))?;
        let deadline = Instant::now() + Duration::from_secs(30);
        for addr in self.live_addrs() {
            for b in &bindings {
                while !wire::has_acl(&addr, b, PROBE_TIMEOUT).unwrap_or(false) {
                    if Instant::now() >= deadline {
                        return Err(TestkitError::Timeout(format!(
                            "ACL {b:?} not visible on {addr} after 30s"
                        )));
                    }
                    thread::sleep(Duration::from_millis(50));
                }
            }
        }
        Ok(())
    }

    /// `host:port` of node `node`'s PLAINTEXT `INTERNAL` listener in a secured cluster (the
    /// inter-broker listener; no TLS, no SASL, principal `User:ANONYMOUS`, a super user).
    /// Handy for "TLS client to a plaintext port" tests and as an unauthenticated side
    /// channel. Fails for a plaintext cluster.
    pub fn plaintext_addr(&self, node: i32) -> Result<String> {
        self.security_setup()?;
        Ok(self.local()?.node(node)?.probe_addr())
    }

    /// `host:port` of node `node`'s listener serving a bad certificate (the cluster must have
    /// been started with a TLS [`security`](ClusterOptions::security) and
    /// [`bad_tls_listeners`](ClusterOptions::bad_tls_listeners)). These listeners speak SSL
    /// (no SASL); a client must fail the TLS handshake there.
    pub fn bad_tls_addr(&self, node: i32, which: BadTls) -> Result<String> {
        let n = self.local()?.node(node)?;
        let (expired, wrong) = n.bad_ports.ok_or_else(|| {
            TestkitError::Security(
                "no bad-certificate listeners: start a TLS cluster with \
                 ClusterOptions::bad_tls_listeners"
                    .to_string(),
            )
        })?;
        let port = match which {
            BadTls::Expired => expired,
            BadTls::WrongHost => wrong,
        };
        Ok(format!("127.0.0.1:{port}"))
    }

    /// Stops the cluster (same as dropping it): kills the JVMs (SIGTERM, then SIGKILL after a
    /// few seconds) and removes the temp dir.
    pub fn stop(self) {
        drop(self);
    }

    fn live_addrs(&self) -> Vec<String> {
        match &self.backend {
            Backend::Local(l) => l
                .nodes
                .iter()
                .filter(|n| {
                    let mut p = n.lock();
                    !p.paused
                        && p.child
                            .as_mut()
                            .map(|c| matches!(c.try_wait(), Ok(None)))
                            .unwrap_or(false)
                })
                .map(Node::probe_addr)
                .collect(),
            _ => self
                .bootstrap
                .split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect(),
        }
    }

    fn with_any_broker<T>(&self, mut f: impl FnMut(&str) -> Result<T>) -> Result<T> {
        let addrs = self.live_addrs();
        let mut last = None;
        for addr in &addrs {
            match f(addr) {
                Ok(v) => return Ok(v),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| TestkitError::Protocol {
            addr: self.bootstrap.clone(),
            detail: "no live broker".to_string(),
        }))
    }
}

impl Local {
    fn node(&self, id: i32) -> Result<&Node> {
        self.nodes
            .iter()
            .find(|n| n.id == id)
            .ok_or(TestkitError::UnknownNode(id))
    }

    fn start(
        opts: &ClusterOptions,
        java: &Path,
        libs: &Path,
    ) -> std::result::Result<Local, StartFail> {
        let root = tempfile::Builder::new()
            .prefix("kafka-testkit-")
            .tempdir()
            .ctx(|| "creating the cluster temp dir".to_string())?
            .keep();
        let pids = root.join("pids");
        fs::create_dir_all(&pids).ctx(|| format!("creating {}", pids.display()))?;
        let reaper = Command::new("/bin/sh")
            .arg("-c")
            .arg(REAPER_SCRIPT)
            .arg("kafka-testkit-reaper")
            .arg(std::process::id().to_string())
            .arg(&root)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        let reaper = match reaper {
            Ok(r) => r,
            Err(e) => {
                let _ = fs::remove_dir_all(&root);
                return Err(StartFail::Fatal(TestkitError::Io {
                    context: "spawning the watchdog (/bin/sh)".to_string(),
                    source: e,
                }));
            }
        };
        let mut local = Local {
            java: java.to_path_buf(),
            libs: libs.to_path_buf(),
            root: root.clone(),
            heap_mb: opts.heap_mb,
            jvm_opts: opts.jvm_opts.clone(),
            timeout: opts.startup_timeout,
            nodes: Vec::new(),
            reaper: Mutex::new(Some(reaper)),
            security: None,
        };
        let internal = opts.proxied || opts.security.secured();
        let bad = opts.bad_tls_listeners && opts.security.tls();
        let per_node = 2 + usize::from(internal) + 2 * usize::from(bad);
        let launched = if opts.security.secured() {
            SecuritySetup::new(opts.security, &root).map(|s| local.security = Some(s))
        } else {
            Ok(())
        }
        .map_err(StartFail::from)
        .and_then(|()| free_ports(opts.nodes * per_node).map_err(StartFail::from))
        .and_then(|ports| local.setup_and_launch(opts, &ports));
        match launched {
            Ok(()) => Ok(local),
            Err(StartFail::PortInUse(msg)) => Err(StartFail::PortInUse(msg)),
            Err(StartFail::Fatal(e)) => {
                let _ = fs::write(root.join(".keep"), "");
                Err(StartFail::Fatal(match e {
                    TestkitError::Startup(m) => TestkitError::Startup(format!(
                        "{m}\n(cluster dir kept: {})",
                        root.display()
                    )),
                    other => other,
                }))
            }
        }
    }

    fn setup_and_launch(
        &mut self,
        opts: &ClusterOptions,
        ports: &[u16],
    ) -> std::result::Result<(), StartFail> {
        let n = opts.nodes;
        let multi = n > 1;
        let log4j = self.root.join("log4j2.properties");
        fs::write(&log4j, BROKER_LOG4J2).ctx(|| format!("writing {}", log4j.display()))?;
        let controller_addrs: Vec<String> = (0..n)
            .map(|i| format!("127.0.0.1:{}", ports[2 * i + 1]))
            .collect();
        let cluster_id = jars::kafka_uuid()?;
        let mut initial_controllers = Vec::new();
        for i in 0..n {
            let id = i as i32 + 1;
            let broker_port = ports[2 * i];
            let controller_port = ports[2 * i + 1];
            // Proxied: the client listener advertises the proxy; inter-broker traffic uses a
            // listener of its own, so it never goes through the proxy.
            let proxy = if opts.proxied {
                let upstream = std::net::SocketAddr::from(([127, 0, 0, 1], broker_port));
                Some(Proxy::start(upstream)?)
            } else {
                None
            };
            let secured = opts.security.secured();
            let internal_port = (opts.proxied || secured).then(|| ports[2 * n + i]);
            let bad_ports = (opts.bad_tls_listeners && opts.security.tls())
                .then(|| (ports[3 * n + 2 * i], ports[3 * n + 2 * i + 1]));
            let dir = self.root.join(format!("node-{id}"));
            let data = dir.join("data");
            fs::create_dir_all(&data).ctx(|| format!("creating {}", data.display()))?;
            let rf = if multi { "3" } else { "1" };
            let min_isr = if multi { "2" } else { "1" };
            let mut props: Vec<(String, String)> = Vec::new();
            let mut set = |k: &str, v: String| set_prop(&mut props, k, v);
            set("process.roles", "broker,controller".into());
            set("node.id", id.to_string());
            set(
                "controller.quorum.bootstrap.servers",
                controller_addrs.join(","),
            );
            // The client listener (secured as asked, advertising the proxy when proxied),
            // then an INTERNAL PLAINTEXT listener for inter-broker traffic when proxied or
            // secured, the bad-certificate listeners, and the controller listener.
            let client = if secured {
                opts.security.listener_name()
            } else {
                "PLAINTEXT"
            };
            let advertised_port = proxy.as_ref().map_or(broker_port, |p| p.addr().port());
            let mut listeners = vec![format!("{client}://127.0.0.1:{broker_port}")];
            let mut advertised = vec![format!("{client}://127.0.0.1:{advertised_port}")];
            let mut map = vec![
                "CONTROLLER:PLAINTEXT".to_string(),
                format!("{client}:{}", opts.security.protocol()),
            ];
            let inter = match internal_port {
                Some(internal) => {
                    listeners.push(format!("INTERNAL://127.0.0.1:{internal}"));
                    advertised.push(format!("INTERNAL://127.0.0.1:{internal}"));
                    map.push("INTERNAL:PLAINTEXT".to_string());
                    "INTERNAL"
                }
                None => "PLAINTEXT",
            };
            if let Some((expired, wrong)) = bad_ports {
                for (name, port) in [("EXPIRED", expired), ("WRONG_HOST", wrong)] {
                    listeners.push(format!("{name}://127.0.0.1:{port}"));
                    advertised.push(format!("{name}://127.0.0.1:{port}"));
                    map.push(format!("{name}:SSL"));
                }
            }
            listeners.push(format!("CONTROLLER://127.0.0.1:{controller_port}"));
            advertised.push(format!("CONTROLLER://127.0.0.1:{controller_port}"));
            set("listeners", listeners.join(","));
            set("advertised.listeners", advertised.join(","));
            set("inter.broker.listener.name", inter.into());
            set("listener.security.protocol.map", map.join(","));
            if let Some(sec) = &self.security {
                for (k, v) in sec.broker_props(opts.max_reauth) {
                    set(&k, v);
                }
                if let (Some(tls), Some(_)) = (&sec.tls, bad_ports) {
                    for (l, ks) in [
                        ("expired", &tls.expired_server_cert),
                        ("wrong_host", &tls.wrong_host_cert),
                    ] {
                        set(
                            &format!("listener.name.{l}.ssl.keystore.type"),
                            "PEM".into(),
                        );
                        set(
                            &format!("listener.name.{l}.ssl.keystore.location"),
                            ks.display().to_string(),
                        );
                    }
                }
            } else if let Some(d) = opts.max_reauth {
                set("connections.max.reauth.ms", d.as_millis().to_string());
            }
            set("controller.listener.names", "CONTROLLER".into());
            set("log.dirs", data.display().to_string());
            set("offsets.topic.replication.factor", rf.into());
            set("offsets.topic.num.partitions", "3".into());
            set("transaction.state.log.replication.factor", rf.into());
            set("transaction.state.log.min.isr", min_isr.into());
            set("transaction.state.log.num.partitions", "3".into());
            set(
                "share.coordinator.state.topic.replication.factor",
                rf.into(),
            );
            set("share.coordinator.state.topic.min.isr", min_isr.into());
            set("default.replication.factor", rf.into());
            set("group.initial.rebalance.delay.ms", "0".into());
            set("num.network.threads", "2".into());
            set("num.io.threads", "2".into());
            for (k, v) in &opts.broker_props {
                set(k, v.replace("{node}", &id.to_string()));
            }
            let mut text = String::from("# written by kafka-testkit\n");
            for (k, v) in &props {
                let _ = writeln!(text, "{k}={v}");
            }
            let props_path = dir.join("server.properties");
            fs::write(&props_path, text).ctx(|| format!("writing {}", props_path.display()))?;
            if multi {
                initial_controllers.push(format!(
                    "{id}@127.0.0.1:{controller_port}:{}",
                    jars::kafka_uuid()?
                ));
            }
            self.nodes.push(Node {
                id,
                broker_port,
                probe_port: if secured {
                    internal_port.unwrap_or(broker_port)
                } else {
                    broker_port
                },
                bad_ports,
                proxy,
                props: props_path,
                log: self.root.join(format!("node-{id}.log")),
                pidfile: self.root.join("pids").join(id.to_string()),
                proc: Mutex::new(Proc::default()),
            });
        }

        // Format all nodes in parallel.
        let tools_log4j = jars::tools_log4j_file()?;
        let mut formats = Vec::new();
        for node in &self.nodes {
            let mut cmd = Command::new(&self.java);
            cmd.arg(format!(
                "-Dlog4j2.configurationFile={}",
                tools_log4j.display()
            ))
            .arg("-cp")
            .arg(format!("{}/*", self.libs.display()))
            .arg("kafka.tools.StorageTool")
            .arg("format")
            .arg("-t")
            .arg(&cluster_id)
            .arg("-c")
            .arg(&node.props);
            if multi {
                cmd.arg("--initial-controllers")
                    .arg(initial_controllers.join(","));
            } else {
                cmd.arg("--standalone");
            }
            for (k, v) in &opts.features {
                cmd.arg("--feature").arg(format!("{k}={v}"));
            }
            if let Some(sec) = &self.security {
                cmd.args(sec.format_args());
            }
            cmd.stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped());
            let child = cmd
                .spawn()
                .ctx(|| "running kafka-storage format".to_string())?;
            formats.push((node.id, child));
        }
        let mut failures = Vec::new();
        for (id, child) in formats {
            let out = child
                .wait_with_output()
                .ctx(|| "waiting for kafka-storage format".to_string())?;
            if !out.status.success() {
                failures.push(format!(
                    "node {id}: kafka-storage format exited with {}:\n{}{}",
                    out.status,
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                ));
            }
        }
        if !failures.is_empty() {
            return Err(TestkitError::Startup(failures.join("\n")).into());
        }

        // Launch all nodes concurrently (a multi-node quorum needs a majority up).
        let mut offsets = Vec::new();
        for node in &self.nodes {
            offsets.push(self.spawn(node)?);
        }
        let deadline = Instant::now() + self.timeout;
        for (node, offset) in self.nodes.iter().zip(offsets) {
            if let Err(e) = self.wait_node(node, offset, deadline) {
                self.kill_all(Duration::ZERO);
                return Err(e);
            }
        }
        Ok(())
    }

    /// Spawns node's JVM; returns the log offset where its output starts.
    fn spawn(&self, node: &Node) -> Result<u64> {
        let mut log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&node.log)
            .ctx(|| format!("opening {}", node.log.display()))?;
        let _ = writeln!(log, "==== kafka-testkit: starting node {} ====", node.id);
        let offset = file_len(&node.log);
        let log2 = log
            .try_clone()
            .ctx(|| format!("opening {}", node.log.display()))?;
        let heap = self.heap_mb;
        let child = Command::new("/bin/sh")
            .arg("-c")
            // The pid file is written by the process that then becomes the JVM, so the
            // watchdog can always find it.
            .arg(r#"echo $$ > "$0" && exec "$@""#)
            .arg(&node.pidfile)
            .arg(&self.java)
            .arg(format!("-Xms{heap}m"))
            .arg(format!("-Xmx{heap}m"))
            .arg("-XX:+ExitOnOutOfMemoryError")
            .args(&self.jvm_opts)
            .arg("-Djava.awt.headless=true")
            .arg(format!(
                "-Dlog4j2.configurationFile={}",
                self.root.join("log4j2.properties").display()
            ))
            .arg("-cp")
            .arg(format!("{}/*", self.libs.display()))
            .arg("kafka.Kafka")
            .arg(&node.props)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2)
            .spawn()
            .ctx(|| format!("spawning node {}", node.id))?;
        let mut p = node.lock();
        p.child = Some(child);
        p.paused = false;
        Ok(offset)
    }

    fn wait_node(
        &self,
        node: &Node,
        offset: u64,
        deadline: Instant,
    ) -> std::result::Result<(), StartFail> {
        let mut started = false;
        loop {
            let text = read_from(&node.log, offset);
            if text.contains("Address already in use") {
                return Err(StartFail::PortInUse(format!(
                    "node {} could not bind its ports (Address already in use)",
                    node.id
                )));
            }
            started = started || text.contains(READY_LINE);
            if started && wire::api_versions(&node.probe_addr(), PROBE_TIMEOUT).is_ok() {
                return Ok(());
            }
            let exited = {
                let mut p = node.lock();
                match p.child.as_mut().map(|c| c.try_wait()) {
                    Some(Ok(Some(status))) => Some(status.to_string()),
                    None => Some("no process".to_string()),
                    _ => None,
                }
            };
            let why = match exited {
                Some(status) => Some(format!("exited ({status}) while starting")),
                None if Instant::now() >= deadline => Some(format!(
                    "did not become ready within {:?}{}",
                    self.timeout,
                    if started {
                        " (logged start but ApiVersions failed)"
                    } else {
                        ""
                    }
                )),
                None => None,
            };
            if let Some(why) = why {
                let text = read_from(&node.log, offset);
                if text.contains("Address already in use") {
                    return Err(StartFail::PortInUse(format!(
                        "node {} could not bind its ports (Address already in use)",
                        node.id
                    )));
                }
                return Err(StartFail::Fatal(TestkitError::Startup(format!(
                    "kafka node {} {why}; log: {}\n--- last 30 log lines ---\n{}",
                    node.id,
                    node.log.display(),
                    tail(&text, 30)
                ))));
            }
            thread::sleep(Duration::from_millis(100));
        }
    }

    fn start_node(&self, node: &Node) -> Result<()> {
        {
            let mut p = node.lock();
            if let Some(c) = p.child.as_mut() {
                if matches!(c.try_wait(), Ok(None)) {
                    return Err(TestkitError::NodeState {
                        node: node.id,
                        detail: "already running".to_string(),
                    });
                }
            }
            p.child = None;
        }
        let offset = self.spawn(node)?;
        match self.wait_node(node, offset, Instant::now() + self.timeout) {
            Ok(()) => Ok(()),
            Err(fail) => {
                self.kill_node(node, Duration::ZERO);
                Err(match fail {
                    StartFail::PortInUse(m) => TestkitError::Startup(m),
                    StartFail::Fatal(e) => e,
                })
            }
        }
    }

    /// Stops a node: SIGKILL if `grace` is zero, else SIGTERM and SIGKILL after `grace`.
    fn kill_node(&self, node: &Node, grace: Duration) {
        let mut p = node.lock();
        if let Some(mut child) = p.child.take() {
            if grace.is_zero() {
                let _ = child.kill();
                let _ = child.wait();
            } else {
                let _ = signal(child.id(), libc::SIGCONT);
                let _ = signal(child.id(), libc::SIGTERM);
                wait_or_kill(&mut child, grace);
            }
        }
        p.paused = false;
        let _ = fs::remove_file(&node.pidfile);
    }

    /// Stops every node: SIGTERM to all, then SIGKILL whatever is left after `grace`.
    fn kill_all(&self, grace: Duration) {
        let mut children: Vec<Child> = Vec::new();
        for node in &self.nodes {
            let mut p = node.lock();
            if let Some(child) = p.child.take() {
                if grace.is_zero() {
                    let _ = signal(child.id(), libc::SIGKILL);
                } else {
                    let _ = signal(child.id(), libc::SIGCONT);
                    let _ = signal(child.id(), libc::SIGTERM);
                }
                children.push(child);
            }
            p.paused = false;
        }
        let deadline = Instant::now() + grace;
        for mut child in children {
            wait_or_kill(
                &mut child,
                deadline.saturating_duration_since(Instant::now()),
            );
        }
        for node in &self.nodes {
            let _ = fs::remove_file(&node.pidfile);
        }
    }
}

impl Drop for Local {
    fn drop(&mut self) {
        self.kill_all(DROP_GRACE);
        let keep = self.root.join(".keep").exists()
            || std::env::var("KAFKA_TESTKIT_KEEP").is_ok_and(|v| !v.is_empty() && v != "0");
        if keep {
            eprintln!("kafka-testkit: kept cluster dir {}", self.root.display());
        } else {
            let _ = fs::remove_dir_all(&self.root);
        }
        let reaper = self
            .reaper
            .get_mut()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(mut r) = reaper {
            let _ = r.kill();
            let _ = r.wait();
        }
    }
}

/// The single-node cluster shared by all tests of this process, started on first use with
/// [`ClusterOptions::default`] (so it honours `KAFKA_BOOTSTRAP_SERVERS`). It is never dropped;
/// the watchdog kills its JVM when the process exits.
///
/// # Panics
/// If the cluster cannot be started (every call panics with the same message).
pub fn shared() -> &'static KafkaCluster {
    static SHARED: OnceLock<std::result::Result<KafkaCluster, String>> = OnceLock::new();
    match SHARED
        .get_or_init(|| KafkaCluster::start(ClusterOptions::default()).map_err(|e| e.to_string()))
    {
        Ok(c) => c,
        Err(e) => panic!("kafka-testkit: the shared cluster failed to start: {e}"),
    }
}

/// A single-node cluster with `security` shared by all tests of this process (one per
/// [`Security`] value), started on first use with that security and, for TLS, the
/// [`bad_tls_listeners`](ClusterOptions::bad_tls_listeners). Always local. Never dropped;
/// the watchdog kills its JVM when the process exits. `Security::Plaintext` is
/// [`shared`].
///
/// # Panics
/// If the cluster cannot be started (every call for that security panics with the same
/// message).
pub fn shared_secured(security: Security) -> &'static KafkaCluster {
    const VARIANTS: [Security; 4] = [
        Security::Ssl,
        Security::SslClientAuth,
        Security::SaslPlaintext,
        Security::SaslSsl,
    ];
    static SHARED: [OnceLock<std::result::Result<KafkaCluster, String>>; 4] =
        [const { OnceLock::new() }; 4];
    let Some(i) = VARIANTS.iter().position(|&s| s == security) else {
        return shared();
    };
    let started = SHARED[i].get_or_init(|| {
        KafkaCluster::start(ClusterOptions {
            bad_tls_listeners: security.tls(),
            ..ClusterOptions::default().security(security)
        })
        .map_err(|e| e.to_string())
    });
    match started {
        Ok(c) => c,
        Err(e) => panic!("kafka-testkit: the shared {security} cluster failed to start: {e}"),
    }
}
