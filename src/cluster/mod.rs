//! The cluster layer: bootstrap, the metadata snapshot and its refreshes, the broker pool
//! (one [`Endpoint`] per node id), group/transaction coordinator lookup with a cache, and the
//! one retry policy ([`RetryPolicy`], in `retry.rs`) that consults [`Error::classify`].
//!
//! Ownership: [`Cluster`] is a cheap `Clone` handle over one `Inner`. The snapshot lives in a
//! `watch` channel (readers clone an `Arc`); refreshes are serialised by an async mutex and
//! coalesced (a caller that waited behind a refresh which started after its request uses that
//! result). A background task refreshes every `metadata.max.age.ms` and stops when the last
//! handle is dropped.

pub mod metadata;
mod retry;

pub use metadata::{BrokerMeta, MetadataSnapshot, PartitionMeta, TopicMeta};
pub use retry::RetryPolicy;

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Weak};

use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{FindCoordinatorRequest, MetadataRequest, TopicName};
use kafka_protocol::protocol::StrBytes;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::backoff::Deadline;
use crate::config::CommonConfig;
use crate::connection::{Connection, ConnectionOptions, Endpoint};
use crate::events::{ClientEvents, EventHub};
use crate::error::{Error, KafkaCode, Result};

/// Settings of the cluster layer: the common client config itself, plus the connection
/// options derived from it once. The common settings are read through `Deref`
/// (`opts.retry_backoff`, `opts.metadata_max_age`, `opts.allow_auto_create_topics`, ...);
/// connection settings live in [`connection`](Self::connection) (changing `common` afterwards
/// does not change them).
#[derive(Debug, Clone)]
pub struct ClusterOptions {
    /// The settings shared by every client (`bootstrap_servers`, backoffs, metadata age,
    /// topic auto-creation, ...).
    pub common: CommonConfig,
    /// Settings for every broker connection, derived from `common`.
    pub connection: ConnectionOptions,
}

impl ClusterOptions {
    /// The key table's defaults for everything but the bootstrap list (`host:port` entries,
    /// taken as given).
    pub fn new(bootstrap: Vec<String>) -> Self {
        ClusterOptions::from(&CommonConfig::with_defaults(bootstrap))
    }
}

impl From<&CommonConfig> for ClusterOptions {
    fn from(c: &CommonConfig) -> Self {
        ClusterOptions {
            connection: ConnectionOptions::from(c),
            common: c.clone(),
        }
    }
}

impl std::ops::Deref for ClusterOptions {
    type Target = CommonConfig;

    fn deref(&self) -> &CommonConfig {
        &self.common
    }
}

impl std::ops::DerefMut for ClusterOptions {
    fn deref_mut(&mut self) -> &mut CommonConfig {
        &mut self.common
    }
}

/// Which coordinator to find.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CoordinatorKind {
    /// A consumer group's coordinator.
    Group,
    /// A transactional id's coordinator.
    Transaction,
}

impl CoordinatorKind {
    fn key_type(self) -> i8 {
        match self {
            CoordinatorKind::Group => 0,
            CoordinatorKind::Transaction => 1,
        }
    }
}

struct Inner {
    opts: ClusterOptions,
    snapshot: watch::Sender<Arc<MetadataSnapshot>>,
    /// Bumped after every new snapshot: lets hot paths keep what they derived from a
    /// snapshot until this changes, without touching the watch channel.
    generation: std::sync::atomic::AtomicU64,
    /// Serialises refreshes; holds the instant the last refresh *started*.
    refresh_lock: tokio::sync::Mutex<Option<Instant>>,
    /// Topics any user of this cluster asked about (refreshed together).
    topics: std::sync::Mutex<BTreeSet<Arc<str>>>,
    /// Endpoints by node id; bootstrap endpoints use negative ids (-1, -2, ...).
    endpoints: std::sync::Mutex<HashMap<i32, Arc<Endpoint>>>,
    coordinators: std::sync::Mutex<HashMap<(CoordinatorKind, String), i32>>,
    /// Client events of this cluster's endpoints ([`crate::events`]).
    events: EventHub,
}

/// A new endpoint for `addr` (node `id`; negative: a bootstrap entry) whose state feeds
/// `events`.
fn watched_endpoint(
    id: i32,
    addr: String,
    opts: &ConnectionOptions,
    events: &EventHub,
) -> Arc<Endpoint> {
    let ep = Endpoint::new(addr, opts.clone());
    let node_id = (id >= 0).then_some(id);
    let _ = ep.counters().watch.set(events.watch(ep.addr(), node_id));
    Arc::new(ep)
}

/// A handle to the cluster: metadata, connections, coordinators. Cheap to clone.
#[derive(Clone)]
pub struct Cluster {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("bootstrap", &self.inner.opts.bootstrap_servers)
            .finish()
    }
}

impl Cluster {
    /// Bootstraps: fetches metadata from the first bootstrap broker that answers. Fails with
    /// the last connection error when none answers within `socket.connection.setup.timeout.ms`
    /// per attempt, bounded overall by `request.timeout.ms` + the connection setup timeout.
    pub async fn connect(opts: ClusterOptions) -> Result<Cluster> {
        let cluster = Cluster::unconnected(opts)?;
        let deadline = Deadline::after(
            cluster.inner.opts.connection.request_timeout
                + cluster.inner.opts.connection.connect_timeout,
        );
        cluster.refresh_with_deadline(deadline).await?;
        tokio::spawn(periodic_refresh(Arc::downgrade(&cluster.inner)));
        Ok(cluster)
    }

    /// A cluster handle that bootstraps in the background (as librdkafka and the Java client
    /// do): returns at once, without waiting for any broker, so a client can be created
    /// while the cluster is unreachable. The first metadata fetch starts now; until one
    /// succeeds the snapshot is empty, and whoever needs metadata refreshes (and waits) as
    /// after any failure. Fails only for a missing `bootstrap.servers`. Needs a tokio
    /// runtime (it spawns the refresh tasks).
    pub fn connect_lazily(opts: ClusterOptions) -> Result<Cluster> {
        let cluster = Cluster::unconnected(opts)?;
        let weak = Arc::downgrade(&cluster.inner);
        tokio::spawn(async move {
            let Some(inner) = weak.upgrade() else { return };
            if let Err(e) = (Cluster { inner }).refresh().await {
                tracing::warn!(error = %e, "bootstrap failed (no broker answered); retried when metadata is needed");
            }
        });
        tokio::spawn(periodic_refresh(Arc::downgrade(&cluster.inner)));
        Ok(cluster)
    }

    /// The handle with its bootstrap endpoints and an empty metadata snapshot.
    fn unconnected(opts: ClusterOptions) -> Result<Cluster> {
        if opts.bootstrap_servers.is_empty() {
            return Err(crate::error::ConfigError::Missing {
                key: "bootstrap.servers".into(),
            }
            .into());
        }
        let events = EventHub::new();
        let endpoints = opts
            .bootstrap_servers
            .iter()
            .enumerate()
            .map(|(i, addr)| {
                let id = -(i as i32) - 1;
                (
                    id,
                    watched_endpoint(id, addr.clone(), &opts.connection, &events),
                )
            })
            .collect();
        let (snapshot, _) = watch::channel(Arc::new(MetadataSnapshot::default()));
        let inner = Arc::new(Inner {
            opts,
            snapshot,
            generation: std::sync::atomic::AtomicU64::new(0),
            refresh_lock: tokio::sync::Mutex::new(None),
            topics: std::sync::Mutex::new(BTreeSet::new()),
            endpoints: std::sync::Mutex::new(endpoints),
            coordinators: std::sync::Mutex::new(HashMap::new()),
            events,
        });
        Ok(Cluster { inner })
    }

    /// A subscription to this cluster's client events (see [`crate::events`]).
    pub fn subscribe_events(&self) -> ClientEvents {
        self.inner.events.subscribe()
    }

    /// The options in use.
    pub fn options(&self) -> &ClusterOptions {
        &self.inner.opts
    }

    /// The current metadata snapshot.
    pub fn metadata(&self) -> Arc<MetadataSnapshot> {
        self.inner.snapshot.borrow().clone()
    }

    /// A number that changes after every new metadata snapshot. Read it *before*
    /// [`metadata`](Self::metadata): what is derived from that snapshot is then at least as new
    /// as the generation it is cached under.
    pub fn metadata_generation(&self) -> u64 {
        self.inner
            .generation
            .load(std::sync::atomic::Ordering::Acquire)
    }

    /// A receiver that sees every new snapshot.
    pub fn watch_metadata(&self) -> watch::Receiver<Arc<MetadataSnapshot>> {
        self.inner.snapshot.subscribe()
    }

    /// Adds topics to the set refreshed with every metadata request.
    pub fn track_topics<'a>(&self, topics: impl IntoIterator<Item = &'a str>) {
        let mut set = self.inner.topics.lock().unwrap_or_else(|p| p.into_inner());
        for t in topics {
            if !set.contains(t) {
                set.insert(Arc::from(t));
            }
        }
    }

    /// Stops refreshing a topic.
    pub fn untrack_topic(&self, topic: &str) {
        self.inner
            .topics
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(topic);
    }

    /// Refreshes metadata of the tracked topics (coalescing with a refresh already running),
    /// bounded by `request.timeout.ms`.
    pub async fn refresh(&self) -> Result<Arc<MetadataSnapshot>> {
        self.refresh_with_deadline(Deadline::after(self.inner.opts.connection.request_timeout))
            .await
    }

    /// Tracks `topics` and refreshes.
    pub async fn refresh_topics(&self, topics: &[&str]) -> Result<Arc<MetadataSnapshot>> {
        self.track_topics(topics.iter().copied());
        self.refresh().await
    }

    async fn refresh_with_deadline(&self, deadline: Deadline) -> Result<Arc<MetadataSnapshot>> {
        let requested_at = Instant::now();
        let mut last = self.inner.refresh_lock.lock().await;
        if let Some(started) = *last {
            if started >= requested_at {
                // A refresh that began after we asked has just finished: use it.
                return Ok(self.metadata());
            }
        }
        *last = Some(Instant::now());
        let topics: Vec<Arc<str>> = self
            .inner
            .topics
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .cloned()
            .collect();
        let req = MetadataRequest::default()
            .with_topics(Some(
                topics
                    .iter()
                    .map(|t| {
                        MetadataRequestTopic::default()
                            .with_name(Some(TopicName(StrBytes::from_string(t.to_string()))))
                    })
                    .collect(),
            ))
            .with_allow_auto_topic_creation(self.inner.opts.allow_auto_create_topics);
        let resp = self
            .retry("metadata refresh", deadline, false, || async {
                let conn = self.any_connection().await?;
                conn.send(&req).await
            })
            .await?;
        if let Some(code) = KafkaCode(resp.error_code).err() {
            return Err(Error::broker(code, "Metadata"));
        }
        let next = Arc::new(self.metadata().merge(&resp, false));
        self.sync_endpoints(&next);
        tracing::debug!(
            brokers = next.brokers.len(),
            topics = next.topics.len(),
            "metadata refreshed"
        );
        self.inner.snapshot.send_replace(next.clone());
        self.inner
            .generation
            .fetch_add(1, std::sync::atomic::Ordering::Release);
        Ok(next)
    }

    /// Fetches metadata of *all* topics (for listing and regex subscriptions) without adding
    /// them to the tracked set. Returns the topics of the response only.
    pub async fn fetch_all_topics(&self) -> Result<Vec<Arc<TopicMeta>>> {
        let full = self
            .fetch_all(self.inner.opts.connection.request_timeout)
            .await?;
        let mut topics: Vec<_> = full.topics.values().cloned().collect();
        topics.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(topics)
    }

    /// Fetches metadata of *all* topics, as [`fetch_all_topics`](Self::fetch_all_topics)
    /// does, and returns the whole answer: its brokers, cluster id and controller too (the
    /// cached snapshot may not have them yet, e.g. while a lazily started client's first
    /// refresh is under way). Retries within `within` (a broker's throttle, KIP-219, holds
    /// the request in the client and counts against it).
    pub async fn fetch_all(&self, within: std::time::Duration) -> Result<MetadataSnapshot> {
        let deadline = Deadline::after(within);
        let req = MetadataRequest::default()
            .with_topics(None)
            .with_allow_auto_topic_creation(false);
        let resp = self
            .retry("metadata (all topics)", deadline, false, || async {
                let conn = self.any_connection().await?;
                conn.send(&req).await
            })
            .await?;
        let full = MetadataSnapshot::default().merge(&resp, true);
        // Brokers may have changed too: keep the endpoint map current.
        self.sync_endpoints(&full);
        Ok(full)
    }

    /// Metadata of one topic, refreshing until the topic exists with leaders for all its
    /// partitions, or `deadline` passes. A topic the cluster reports as unknown after the
    /// deadline gives [`Error::UnknownTopicOrPartition`].
    pub async fn topic_metadata(&self, topic: &str, deadline: Deadline) -> Result<Arc<TopicMeta>> {
        self.topic_metadata_with(topic, 0, deadline).await
    }

    /// [`topic_metadata`](Self::topic_metadata) that also waits for the topic to have at
    /// least `partitions` partitions (partitions added since the snapshot was taken). Past
    /// the deadline with fewer: [`Error::UnknownTopicOrPartition`] naming the count.
    pub async fn topic_metadata_with(
        &self,
        topic: &str,
        partitions: i32,
        deadline: Deadline,
    ) -> Result<Arc<TopicMeta>> {
        self.track_topics([topic]);
        let usable = |t: &Arc<TopicMeta>| {
            t.error.is_none() && t.all_leaders_known() && t.partition_count() >= partitions
        };
        let cached = || self.metadata().topic(topic).filter(|t| usable(t)).cloned();
        if let Some(t) = cached() {
            return Ok(t);
        }
        let mut retry = self
            .retry_policy(format!("metadata of topic `{topic}`"), deadline)
            .refresh_metadata(false); // each attempt refreshes
        loop {
            let snap = match self.refresh_with_deadline(deadline).await {
                Ok(s) => s,
                Err(e) if deadline.expired() => return Err(e),
                Err(_) => self.metadata(),
            };
            // Not there yet: a non-retriable topic error ends the wait at once; at the
            // deadline the last of these errors is returned.
            let err = match snap.topic(topic) {
                Some(t) if usable(t) => return Ok(t.clone()),
                Some(t) if t.error.is_none() && t.partition_count() < partitions => {
                    Some(Error::UnknownTopicOrPartition(format!(
                        "topic `{topic}` has {} partitions, not {partitions}",
                        t.partition_count()
                    )))
                }
                Some(t) => match t.error {
                    Some(KafkaCode::UNKNOWN_TOPIC_OR_PARTITION) | None => None,
                    Some(code) => Some(Error::broker(code, format!("metadata of topic `{topic}`"))),
                },
                None => None,
            };
            retry
                .failed(err.unwrap_or_else(|| {
                    Error::UnknownTopicOrPartition(format!(
                        "topic `{topic}` not found in the cluster metadata"
                    ))
                }))
                .await?;
            // Someone else may have refreshed meanwhile.
            if let Some(t) = cached() {
                return Ok(t);
            }
        }
    }

    /// Keeps one endpoint per advertised broker (replacing it if the address changed).
    fn sync_endpoints(&self, snap: &MetadataSnapshot) {
        let mut eps = self
            .inner
            .endpoints
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        for (id, b) in &snap.brokers {
            let addr = b.addr();
            let stale = eps.get(id).is_none_or(|e| e.addr() != addr);
            if stale {
                eps.insert(
                    *id,
                    watched_endpoint(*id, addr, &self.inner.opts.connection, &self.inner.events),
                );
            }
        }
    }

    /// Statistics of every broker endpoint (bootstrap entries included), for
    /// `statistics.interval.ms` snapshots; resets their rtt windows.
    pub(crate) fn broker_stats(&self) -> Vec<crate::stats::BrokerStats> {
        let eps = self.endpoints();
        eps.iter().map(|(id, ep)| ep.stats(*id)).collect()
    }

    /// Every endpoint (bootstrap entries have negative ids), copied out of the lock.
    fn endpoints(&self) -> Vec<(i32, Arc<Endpoint>)> {
        self.inner
            .endpoints
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|(k, v)| (*k, v.clone()))
            .collect()
    }

    /// The statistics counters of broker `node_id`'s endpoint (fresh ones when the broker
    /// is not known), for connections opened outside the endpoint (consumer fetch / group).
    pub(crate) fn broker_counters(&self, node_id: i32) -> Arc<crate::stats::BrokerCounters> {
        self.endpoint(node_id)
            .map(|e| e.counters())
            .unwrap_or_default()
    }

    fn endpoint(&self, node_id: i32) -> Option<Arc<Endpoint>> {
        self.inner
            .endpoints
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&node_id)
            .cloned()
    }

    /// A connection to broker `node_id` (opened if needed). Unknown node ids trigger one
    /// metadata refresh first.
    pub async fn broker(&self, node_id: i32) -> Result<Connection> {
        let ep = match self.endpoint(node_id) {
            Some(ep) => ep,
            None => {
                let _ = self.refresh().await;
                self.endpoint(node_id).ok_or_else(|| Error::Connection {
                    broker: format!("node {node_id}"),
                    reason: "broker not in cluster metadata".into(),
                    in_flight: false,
                })?
            }
        };
        ep.get().await
    }

    /// A new connection of the caller's own to broker `node_id`, not the shared one of
    /// [`broker`](Self::broker): for requests that must not queue behind others on the
    /// shared connection (the consumer's fetch lanes, the producer's second lane, the share
    /// consumer's ShareFetch, which a broker may hold). Counted in the broker's statistics;
    /// the caller keeps it, and decides when to try again after a failure.
    pub(crate) async fn own_connection(&self, node_id: i32) -> Result<Connection> {
        let addr = match self.metadata().brokers.get(&node_id) {
            Some(b) => b.addr(),
            None => {
                return Err(Error::Connection {
                    broker: format!("node {node_id}"),
                    reason: "broker not in cluster metadata".into(),
                    in_flight: false,
                })
            }
        };
        Connection::connect_counted(
            &addr,
            self.options().connection.clone(),
            self.broker_counters(node_id),
        )
        .await
    }

    /// A connection to any broker: a live one if there is one, else the first that accepts a
    /// connection (known brokers first, in random order, then the bootstrap list).
    pub async fn any_connection(&self) -> Result<Connection> {
        let mut eps = self.endpoints();
        // Known brokers first (non-negative ids), shuffled; bootstrap entries last.
        eps.sort_by_key(|(id, _)| (*id < 0, (crate::backoff::random_unit() * 1e6) as u64));
        for (_, ep) in &eps {
            if let Some(c) = ep.current().await {
                return Ok(c);
            }
        }
        let mut last = None;
        for (_, ep) in &eps {
            match ep.get().await {
                Ok(c) => return Ok(c),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| Error::Connection {
            broker: "any".into(),
            reason: "no brokers known".into(),
            in_flight: false,
        }))
    }

    /// Leader node id and a connection to it, refreshing metadata when the leader is
    /// unknown, bounded by `deadline`.
    pub async fn leader(
        &self,
        topic: &str,
        partition: i32,
        deadline: Deadline,
    ) -> Result<(i32, Connection)> {
        let meta = self.topic_metadata(topic, deadline).await?;
        let p = meta.partition(partition).ok_or_else(|| {
            Error::UnknownTopicOrPartition(format!(
                "partition {partition} of topic `{topic}` (it has {})",
                meta.partition_count()
            ))
        })?;
        let leader = p.leader;
        Ok((leader, self.broker(leader).await?))
    }

    /// The coordinator for a group or transactional id (cached until invalidated), with a
    /// connection to it. Retries COORDINATOR_NOT_AVAILABLE / LOAD_IN_PROGRESS / NOT_COORDINATOR
    /// with backoff until `deadline`.
    pub async fn coordinator(
        &self,
        kind: CoordinatorKind,
        key: &str,
        deadline: Deadline,
    ) -> Result<(i32, Connection)> {
        let cached = self
            .inner
            .coordinators
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&(kind, key.to_string()))
            .copied();
        if let Some(node) = cached {
            match self.broker(node).await {
                Ok(c) => return Ok((node, c)),
                Err(_) => self.invalidate_coordinator(kind, key),
            }
        }
        let node = self
            .retry("FindCoordinator", deadline, true, || async {
                let conn = self.any_connection().await?;
                let version =
                    conn.version_for(kafka_protocol::messages::ApiKey::FindCoordinator)?;
                let mut req = FindCoordinatorRequest::default().with_key_type(kind.key_type());
                if version >= 4 {
                    req = req.with_coordinator_keys(vec![StrBytes::from_string(key.to_string())]);
                } else {
                    req = req.with_key(StrBytes::from_string(key.to_string()));
                }
                let resp = conn
                    .send_version(&req, version, self.inner.opts.connection.request_timeout)
                    .await?;
                let (code, node, msg) = if version >= 4 {
                    let c = resp.coordinators.first().ok_or_else(|| {
                        Error::Protocol("FindCoordinator response without coordinators".into())
                    })?;
                    (c.error_code, c.node_id.0, c.error_message.clone())
                } else {
                    (resp.error_code, resp.node_id.0, resp.error_message.clone())
                };
                if let Some(code) = KafkaCode(code).err() {
                    let ctx = format!(
                        "FindCoordinator {kind:?} `{key}`{}",
                        msg.map(|m| format!(": {}", m.as_str())).unwrap_or_default()
                    );
                    return Err(Error::broker(code, ctx));
                }
                Ok(node)
            })
            .await?;
        self.inner
            .coordinators
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert((kind, key.to_string()), node);
        let conn = self.broker(node).await?;
        Ok((node, conn))
    }

    /// Forgets a cached coordinator (after NOT_COORDINATOR and the like).
    pub fn invalidate_coordinator(&self, kind: CoordinatorKind, key: &str) {
        self.inner
            .coordinators
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&(kind, key.to_string()));
    }
}

/// Refreshes every `metadata.max.age.ms` while any handle lives.
async fn periodic_refresh(inner: Weak<Inner>) {
    loop {
        let age = match inner.upgrade() {
            Some(i) => i.opts.metadata_max_age,
            None => return,
        };
        tokio::time::sleep(age).await;
        let Some(inner) = inner.upgrade() else { return };
        let cluster = Cluster { inner };
        if let Err(e) = cluster.refresh().await {
            tracing::debug!(error = %e, "periodic metadata refresh failed");
        }
    }
}
