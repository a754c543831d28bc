//! The admin client: topics (`mod.rs`), configs and partitions (`configs.rs`), groups,
//! committed offsets, offset resets and consumer lag (`groups.rs`), per-partition offsets,
//! record deletion, producers, leader elections and log dirs (`offsets.rs`), ACLs
//! (`acls.rs`), the cluster and transactions (`cluster.rs`); shared helpers (the
//! per-leader dispatch with retries) in `util.rs`.
//!
//! Every operation is bounded by the operation timeout, retries through the one
//! `RetryPolicy` of `src/cluster/retry.rs` (errors classified by
//! [`Error::classify`]), and answers per resource where the request names several: one
//! failed topic, partition or group does not fail the call.
//!
//! Topic creation and deletion return once the change is visible in the cluster metadata
//! (all partitions have leaders / the topic is gone), bounded by the operation timeout, so a
//! caller can use a topic right after creating it.

use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::delete_topics_request::DeleteTopicState;
use kafka_protocol::messages::{ApiKey, CreateTopicsRequest, DeleteTopicsRequest, TopicName};
use kafka_protocol::protocol::StrBytes;

use crate::backoff::{Backoff, Deadline};
use crate::cluster::{Cluster, ClusterOptions, TopicMeta};
use crate::config::security::OAuthSlot;
use crate::config::ClientConfig;
use crate::config::OAuthTokenProvider;
use crate::error::{Error, KafkaCode, Result};
use crate::metadata::{BrokerMetadata, Metadata, TopicMetadata};

mod acls;
mod cluster;
mod configs;
mod features;
mod groups;
mod offsets;
mod quotas;
mod reassign;
mod scram;
mod share_offsets;
mod util;

pub use acls::{
    AclBinding, AclBindingFilter, AclOperation, AclPermission, AclResourceType, PatternType,
};
pub use cluster::{ClusterBroker, ClusterDescription, TransactionDescription, TransactionListing};
pub use configs::{AlterConfigOp, ConfigEntry, ConfigResource, ConfigResourceType, ConfigSource};
pub use features::{FeatureMetadata, FeatureUpgrade};
pub use groups::{
    GroupDescription, GroupLag, GroupListing, GroupType, MemberDescription, PartitionLag, ResetSpec,
};
pub use offsets::{ElectionType, ListedOffsetInfo, LogDirDescription, OffsetSpec, ProducerState};
pub use quotas::{QuotaAlteration, QuotaEntity, QuotaFilter, QuotaMatch};
pub use reassign::PartitionReassignment;
pub use scram::{ScramAlteration, ScramCredentialInfo};

/// A topic to create.
#[derive(Debug, Clone)]
pub struct NewTopic {
    /// Topic name.
    pub name: String,
    /// Partition count (-1: the broker's `num.partitions`).
    pub partitions: i32,
    /// Replication factor (-1: the broker's `default.replication.factor`).
    pub replication_factor: i16,
    /// Topic configs (`cleanup.policy`, `min.insync.replicas`, ...).
    pub configs: Vec<(String, String)>,
}

impl NewTopic {
    /// A topic with `partitions` partitions and `replication_factor` replicas.
    pub fn new(name: impl Into<String>, partitions: i32, replication_factor: i16) -> Self {
        NewTopic {
            name: name.into(),
            partitions,
            replication_factor,
            configs: Vec::new(),
        }
    }

    /// Adds a topic config.
    pub fn config(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.configs.push((key.into(), value.into()));
        self
    }
}

/// The admin client. Cheap to clone.
#[derive(Debug, Clone)]
pub struct AdminClient {
    cluster: Cluster,
    timeout: Duration,
}

/// Builds an [`AdminClient`] with options that are not configuration keys.
#[derive(Debug)]
#[must_use]
pub struct AdminClientBuilder {
    config: ClientConfig,
    timeout: Option<Duration>,
    oauth: OAuthSlot,
    lazy: bool,
}

impl AdminClientBuilder {
    /// Gets OAUTHBEARER tokens from `provider` (for `sasl.mechanism=OAUTHBEARER`; wins over
    /// `sasl.oauthbearer.config`). Asked on every new connection and re-authentication.
    pub fn oauth_token_provider(mut self, provider: Arc<dyn OAuthTokenProvider>) -> Self {
        self.oauth = OAuthSlot(Some(provider));
        self
    }

    /// Bounds each admin operation by `timeout` (default: `request.timeout.ms`).
    pub fn operation_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// With `true`, [`build`](Self::build) does not wait for the cluster (as librdkafka and
    /// the Java client): it returns once the configuration is valid and bootstraps in the
    /// background; each operation then waits for the cluster within its own timeout. Off by
    /// default: `build` then fails when no broker answers. The rdkafka drop-in uses it.
    pub fn lazy_bootstrap(mut self, lazy: bool) -> Self {
        self.lazy = lazy;
        self
    }

    /// Validates the configuration and bootstraps (see
    /// [`lazy_bootstrap`](Self::lazy_bootstrap) for not waiting for the cluster).
    ///
    /// Admin metadata requests never auto-create topics, whatever `allow.auto.create.topics`
    /// says.
    pub async fn build(self) -> Result<AdminClient> {
        let mut cfg = self.config.admin()?;
        self.oauth.apply(&mut cfg.common.security);
        let mut opts = ClusterOptions::from(&cfg.common);
        opts.allow_auto_create_topics = false;
        let timeout = self.timeout.unwrap_or(opts.connection.request_timeout);
        let cluster = if self.lazy {
            Cluster::connect_lazily(opts)?
        } else {
            Cluster::connect(opts).await?
        };
        Ok(AdminClient { cluster, timeout })
    }
}

impl AdminClient {
    /// Builds an admin client from a config map (`bootstrap.servers`, timeouts, ...) and
    /// bootstraps it.
    ///
    /// ```no_run
    /// # async fn f() -> kafka_sdk::Result<()> {
    /// use kafka_sdk::{AdminClient, ClientConfig, NewTopic};
    /// let admin = AdminClient::new(&ClientConfig::new().with("bootstrap.servers", "127.0.0.1:9092")).await?;
    /// admin.create_topic(NewTopic::new("orders", 6, 3).config("cleanup.policy", "compact")).await?;
    /// println!("{:?}", admin.list_topics(false).await?);
    /// # Ok(()) }
    /// ```
    pub async fn new(config: &ClientConfig) -> Result<AdminClient> {
        AdminClient::builder(config).build().await
    }

    /// A builder, for the operation timeout.
    pub fn builder(config: &ClientConfig) -> AdminClientBuilder {
        AdminClientBuilder {
            config: config.clone(),
            timeout: None,
            oauth: OAuthSlot::default(),
            lazy: false,
        }
    }

    /// Cluster metadata: brokers and `topic`, or every topic when `topic` is `None`; bounded
    /// by the operation timeout.
    pub async fn fetch_metadata(&self, topic: Option<&str>) -> Result<Metadata> {
        crate::metadata::fetch(&self.cluster, topic, self.timeout).await
    }

    /// A subscription to this client's events from now on: a broker down or back, every
    /// broker down (see [`crate::events`]).
    pub fn subscribe_events(&self) -> crate::events::ClientEvents {
        self.cluster.subscribe_events()
    }

    /// The cluster id.
    pub async fn cluster_id(&self) -> Result<Option<String>> {
        let snap = self.cluster.refresh().await?;
        Ok(snap.cluster_id.clone())
    }

    /// The brokers of the cluster, sorted by node id.
    pub async fn brokers(&self) -> Result<Vec<BrokerMetadata>> {
        let snap = self.cluster.refresh().await?;
        Ok(snap.brokers.values().map(BrokerMetadata::from).collect())
    }

    /// Creates one topic and waits until all its partitions have leaders.
    pub async fn create_topic(&self, topic: NewTopic) -> Result<()> {
        let mut r = self.create_topics(vec![topic]).await?;
        r.pop().map(|(_, r)| r).unwrap_or(Ok(()))
    }

    /// Creates topics; one result per topic (in order). Each created topic is awaited in the
    /// metadata. TOPIC_ALREADY_EXISTS is reported as an error for that topic.
    pub async fn create_topics(&self, topics: Vec<NewTopic>) -> Result<Vec<(String, Result<()>)>> {
        for t in &topics {
            crate::validate_topic_name(&t.name)?;
        }
        let deadline = Deadline::after(self.timeout);
        let req = CreateTopicsRequest::default()
            .with_timeout_ms(self.timeout.as_millis().min(i32::MAX as u128) as i32)
            .with_topics(
                topics
                    .iter()
                    .map(|t| {
                        CreatableTopic::default()
                            .with_name(TopicName(StrBytes::from_string(t.name.clone())))
                            .with_num_partitions(t.partitions)
                            .with_replication_factor(t.replication_factor)
                            .with_configs(
                                t.configs
                                    .iter()
                                    .map(|(k, v)| {
                                        CreatableTopicConfig::default()
                                            .with_name(StrBytes::from_string(k.clone()))
                                            .with_value(Some(StrBytes::from_string(v.clone())))
                                    })
                                    .collect(),
                            )
                    })
                    .collect(),
            );
        let resp = self
            .cluster
            .retry_policy("CreateTopics", deadline)
            .run(|| async {
                let conn = self.cluster.any_connection().await?;
                conn.version_for(ApiKey::CreateTopics)?;
                let resp = conn.send(&req).await?;
                // A topic error that the classification retries (e.g. NOT_CONTROLLER) retries
                // the whole request; the others are reported per topic below.
                if let Some(e) = resp.topics.iter().find_map(|r| {
                    let e = Error::broker(KafkaCode(r.error_code).err()?, "CreateTopics");
                    e.is_retriable().then_some(e)
                }) {
                    return Err(e);
                }
                Ok(resp)
            })
            .await?;
        let mut out = Vec::with_capacity(topics.len());
        for t in &topics {
            let r = resp
                .topics
                .iter()
                .find(|r| r.name.0.as_str() == t.name)
                .ok_or_else(|| {
                    Error::Protocol(format!("CreateTopics response lacks `{}`", t.name))
                });
            let res = match r {
                Err(e) => Err(e),
                Ok(r) => match KafkaCode(r.error_code).err() {
                    Some(code) => Err(Error::broker(
                        code,
                        format!(
                            "create topic `{}`{}",
                            t.name,
                            r.error_message
                                .as_ref()
                                .map(|m| format!(": {}", m.as_str()))
                                .unwrap_or_default()
                        ),
                    )),
                    None => self
                        .cluster
                        .topic_metadata(&t.name, deadline)
                        .await
                        .map(|_| ()),
                },
            };
            out.push((t.name.clone(), res));
        }
        Ok(out)
    }

    /// Deletes topics and waits until the metadata no longer lists them; one result per topic.
    pub async fn delete_topics(&self, names: &[&str]) -> Result<Vec<(String, Result<()>)>> {
        let deadline = Deadline::after(self.timeout);
        let resp = self
            .cluster
            .retry_policy("DeleteTopics", deadline)
            .run(|| async {
                let conn = self.cluster.any_connection().await?;
                let version = conn.version_for(ApiKey::DeleteTopics)?;
                let mut req = DeleteTopicsRequest::default()
                    .with_timeout_ms(self.timeout.as_millis().min(i32::MAX as u128) as i32);
                if version >= 6 {
                    req = req.with_topics(
                        names
                            .iter()
                            .map(|n| {
                                DeleteTopicState::default().with_name(Some(TopicName(
                                    StrBytes::from_string(n.to_string()),
                                )))
                            })
                            .collect(),
                    );
                } else {
                    req = req.with_topic_names(
                        names
                            .iter()
                            .map(|n| TopicName(StrBytes::from_string(n.to_string())))
                            .collect(),
                    );
                }
                conn.send_version(&req, version, self.timeout).await
            })
            .await?;
        let mut out = Vec::with_capacity(names.len());
        for n in names {
            let r = resp
                .responses
                .iter()
                .find(|r| r.name.as_ref().is_some_and(|x| x.0.as_str() == *n));
            let res = match r.map(|r| KafkaCode(r.error_code).err()) {
                None => Err(Error::Protocol(format!(
                    "DeleteTopics response lacks `{n}`"
                ))),
                Some(Some(code)) => Err(Error::broker(code, format!("delete topic `{n}`"))),
                Some(None) => self.await_gone(n, deadline).await,
            };
            self.cluster.untrack_topic(n);
            out.push((n.to_string(), res));
        }
        Ok(out)
    }

    /// Polls the metadata (50..500 ms apart) until `name` is gone; a failed poll ends the
    /// wait, the deadline gives a timeout.
    async fn await_gone(&self, name: &str, deadline: Deadline) -> Result<()> {
        let mut poll = self
            .cluster
            .retry_policy(format!("deletion of topic `{name}`"), deadline)
            .backoff(Backoff::new(
                Duration::from_millis(50),
                Duration::from_millis(500),
            ));
        loop {
            let topics = self.cluster.fetch_all_topics().await?;
            if !topics.iter().any(|t| &*t.name == name) {
                return Ok(());
            }
            poll.failed(Error::timeout(
                format!("deletion of topic `{name}` to show in metadata"),
                self.timeout,
                false,
            ))
            .await?;
        }
    }

    /// Names of all topics, sorted; internal topics only when `include_internal`.
    pub async fn list_topics(&self, include_internal: bool) -> Result<Vec<String>> {
        Ok(self
            .cluster
            .fetch_all_topics()
            .await?
            .iter()
            .filter(|t| include_internal || !t.is_internal)
            .map(|t| t.name.to_string())
            .collect())
    }

    /// Describes topics; a topic that does not exist gives
    /// [`Error::UnknownTopicOrPartition`].
    pub async fn describe_topics(&self, names: &[&str]) -> Result<Vec<TopicMetadata>> {
        let snap = self.cluster.refresh_topics(names).await?;
        for n in names {
            if snap.topic(n).is_none_or(|t| t.error.is_some()) {
                self.cluster.untrack_topic(n);
            }
        }
        names
            .iter()
            .map(|n| {
                let t: &Arc<TopicMeta> = snap.topic(n).ok_or_else(|| {
                    Error::UnknownTopicOrPartition(format!("topic `{n}` not in metadata"))
                })?;
                match t.error {
                    Some(KafkaCode::UNKNOWN_TOPIC_OR_PARTITION) => Err(
                        Error::UnknownTopicOrPartition(format!("topic `{n}` does not exist")),
                    ),
                    Some(code) => Err(Error::broker(code, format!("describe topic `{n}`"))),
                    None => Ok(TopicMetadata::from(t.as_ref())),
                }
            })
            .collect()
    }
}
