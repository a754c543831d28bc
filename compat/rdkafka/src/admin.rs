//! [`AdminClient`] over kafka-sdk's admin client: topics (create, delete), partitions
//! (create), configs (describe, alter: sent as incremental sets), groups (delete), records
//! (delete). Explicit replica placement and `validate_only` answer `NotImplemented` (see
//! MIGRATING_FROM_RDKAFKA.md).

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use crate::client::{Client, ClientContext, DefaultClientContext, Source};
use crate::config::{ClientConfig, FromClientConfig, FromClientConfigAndContext};
use crate::error::{code_of, KafkaError, KafkaResult, RDKafkaErrorCode};
use crate::rt;
use crate::topic_partition_list::{Offset, TopicPartitionList};
use crate::util::Timeout;
use kafka_sdk::admin as sdk;

/// The outcome of one topic: its name, or its name and the error.
pub type TopicResult = Result<String, (String, RDKafkaErrorCode)>;

/// The outcome of one group.
pub type GroupResult = Result<String, (String, RDKafkaErrorCode)>;

/// Replica assignment: for each partition, its replicas' node ids.
pub type PartitionAssignment<'a> = &'a [&'a [i32]];

/// How replicas of a new topic are placed.
#[derive(Debug, Clone, Copy)]
pub enum TopicReplication<'a> {
    /// This many replicas per partition, placed by the cluster.
    Fixed(i32),
    /// Explicit placement (not supported by kafka-sdk's admin client: rejected).
    Variable(PartitionAssignment<'a>),
}

/// A topic to create.
#[derive(Debug)]
pub struct NewTopic<'a> {
    /// The name.
    pub name: &'a str,
    /// The partition count (`-1` = the broker's default).
    pub num_partitions: i32,
    /// Replica placement.
    pub replication: TopicReplication<'a>,
    /// Topic configs.
    pub config: Vec<(&'a str, &'a str)>,
}

impl<'a> NewTopic<'a> {
    /// A topic named `name`.
    pub fn new(
        name: &'a str,
        num_partitions: i32,
        replication: TopicReplication<'a>,
    ) -> NewTopic<'a> {
        NewTopic {
            name,
            num_partitions,
            replication,
            config: Vec::new(),
        }
    }

    /// Sets a topic config.
    pub fn set(mut self, key: &'a str, value: &'a str) -> NewTopic<'a> {
        self.config.push((key, value));
        self
    }
}

/// New partitions for a topic.
#[derive(Debug)]
pub struct NewPartitions<'a> {
    /// The topic.
    pub topic_name: &'a str,
    /// The partition count wanted.
    pub new_partition_count: usize,
    /// Replica placement of the new partitions.
    pub assignment: Option<PartitionAssignment<'a>>,
}

impl<'a> NewPartitions<'a> {
    /// Grow `topic_name` to `new_partition_count` partitions.
    pub fn new(topic_name: &'a str, new_partition_count: usize) -> NewPartitions<'a> {
        NewPartitions {
            topic_name,
            new_partition_count,
            assignment: None,
        }
    }

    /// Sets the replica placement.
    pub fn assign(mut self, assignment: PartitionAssignment<'a>) -> NewPartitions<'a> {
        self.assignment = Some(assignment);
        self
    }
}

/// A config resource.
#[derive(Copy, Clone, Debug, Eq, PartialEq)]
pub enum ResourceSpecifier<'a> {
    /// A topic.
    Topic(&'a str),
    /// A consumer group.
    Group(&'a str),
    /// A broker.
    Broker(i32),
}

/// An owned [`ResourceSpecifier`].
#[derive(Debug, Eq, PartialEq, Clone)]
pub enum OwnedResourceSpecifier {
    /// A topic.
    Topic(String),
    /// A consumer group.
    Group(String),
    /// A broker.
    Broker(i32),
}

impl From<&ResourceSpecifier<'_>> for OwnedResourceSpecifier {
    fn from(s: &ResourceSpecifier<'_>) -> OwnedResourceSpecifier {
        match s {
            ResourceSpecifier::Topic(t) => OwnedResourceSpecifier::Topic(t.to_string()),
            ResourceSpecifier::Group(g) => OwnedResourceSpecifier::Group(g.to_string()),
            ResourceSpecifier::Broker(b) => OwnedResourceSpecifier::Broker(*b),
        }
    }
}

/// Config changes for one resource.
#[derive(Debug)]
pub struct AlterConfig<'a> {
    /// The resource.
    pub specifier: ResourceSpecifier<'a>,
    /// The configs to set.
    pub entries: HashMap<&'a str, &'a str>,
}

impl<'a> AlterConfig<'a> {
    /// Changes for `specifier`.
    pub fn new(specifier: ResourceSpecifier<'_>) -> AlterConfig<'_> {
        AlterConfig {
            specifier,
            entries: HashMap::new(),
        }
    }

    /// Sets a config.
    pub fn set(mut self, key: &'a str, value: &'a str) -> AlterConfig<'a> {
        self.entries.insert(key, value);
        self
    }
}

/// The outcome of one `describe_configs` resource.
pub type ConfigResourceResult = Result<ConfigResource, RDKafkaErrorCode>;

/// Where a config value comes from.
#[derive(Debug, Eq, PartialEq)]
pub enum ConfigSource {
    /// Unknown (or a source librdkafka has no name for, such as a group config).
    Unknown,
    /// Set on the topic.
    DynamicTopic,
    /// Set dynamically for this broker.
    DynamicBroker,
    /// Set dynamically as the cluster-wide broker default.
    DynamicDefaultBroker,
    /// From the broker's static configuration.
    StaticBroker,
    /// The built-in default.
    Default,
}

/// One config of a [`ConfigResource`].
#[derive(Debug, Eq, PartialEq)]
pub struct ConfigEntry {
    /// Its name.
    pub name: String,
    /// Its value (`None` when unset or sensitive).
    pub value: Option<String>,
    /// Where the value comes from.
    pub source: ConfigSource,
    /// Whether it cannot be altered.
    pub is_read_only: bool,
    /// Whether it has its default value.
    pub is_default: bool,
    /// Whether it is sensitive.
    pub is_sensitive: bool,
}

/// A resource and its configs.
#[derive(Debug)]
pub struct ConfigResource {
    /// The resource.
    pub specifier: OwnedResourceSpecifier,
    /// Its configs.
    pub entries: Vec<ConfigEntry>,
}

impl ConfigResource {
    /// The configs by name.
    pub fn entry_map(&self) -> HashMap<&str, &ConfigEntry> {
        self.entries.iter().map(|e| (e.name.as_str(), e)).collect()
    }

    /// The config named `name`.
    pub fn get(&self, name: &str) -> Option<&ConfigEntry> {
        self.entries.iter().find(|e| e.name == name)
    }
}

/// The outcome of one `alter_configs` resource.
pub type AlterConfigsResult =
    Result<OwnedResourceSpecifier, (OwnedResourceSpecifier, RDKafkaErrorCode)>;

/// Options of an admin call.
#[derive(Default, Debug, Clone)]
pub struct AdminOptions {
    request_timeout: Option<Timeout>,
    operation_timeout: Option<Timeout>,
    validate_only: bool,
    broker_id: Option<i32>,
}

impl AdminOptions {
    /// Default options.
    pub fn new() -> AdminOptions {
        AdminOptions::default()
    }

    /// Overall timeout of the call.
    pub fn request_timeout<T: Into<Timeout>>(mut self, timeout: Option<T>) -> Self {
        self.request_timeout = timeout.map(Into::into);
        self
    }

    /// How long the brokers may take to finish the operation.
    pub fn operation_timeout<T: Into<Timeout>>(mut self, timeout: Option<T>) -> Self {
        self.operation_timeout = timeout.map(Into::into);
        self
    }

    /// Only validate (not supported by kafka-sdk's admin client: the call fails).
    pub fn validate_only(mut self, validate_only: bool) -> Self {
        self.validate_only = validate_only;
        self
    }

    /// The broker to send the request to (no effect: kafka-sdk picks the controller).
    pub fn broker_id<T: Into<Option<i32>>>(mut self, broker_id: T) -> Self {
        self.broker_id = broker_id.into();
        self
    }

    fn limit(&self) -> Duration {
        let t = |o: Option<Timeout>| o.and_then(Timeout::duration);
        t(self.request_timeout)
            .or(t(self.operation_timeout))
            .unwrap_or(Duration::from_secs(60))
    }
}

/// An admin client.
pub struct AdminClient<C: ClientContext = DefaultClientContext> {
    admin: Arc<kafka_sdk::AdminClient>,
    client: Client<C>,
}

impl<C: ClientContext> fmt::Debug for AdminClient<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AdminClient")
    }
}

impl FromClientConfig for AdminClient<DefaultClientContext> {
    fn from_config(config: &ClientConfig) -> KafkaResult<Self> {
        AdminClient::from_config_and_context(config, DefaultClientContext)
    }
}

impl<C: ClientContext> FromClientConfigAndContext<C> for AdminClient<C> {
    fn from_config_and_context(config: &ClientConfig, context: C) -> KafkaResult<Self> {
        let sdk = config.to_sdk(crate::config::Role::Admin);
        // As rdkafka's `create()`: never waits for the cluster (it may be down).
        let admin = rt::block(async move {
            kafka_sdk::AdminClient::builder(&sdk)
                .lazy_bootstrap(true)
                .build()
                .await
        })
        .map_err(|e| config.creation_error(e))?;
        let admin = Arc::new(admin);
        Ok(AdminClient {
            client: Client::new(Arc::new(context), Source::Admin(admin.clone())),
            admin,
        })
    }
}

fn not_implemented<T>(what: &str) -> KafkaResult<T> {
    tracing::warn!("kafka-sdk-rdkafka: {what} is not supported by kafka-sdk's admin client yet");
    Err(KafkaError::AdminOp(RDKafkaErrorCode::NotImplemented))
}

impl<C: ClientContext> AdminClient<C> {
    /// Creates topics; each has its own result.
    pub fn create_topics<'a, I>(
        &self,
        topics: I,
        opts: &AdminOptions,
    ) -> impl Future<Output = KafkaResult<Vec<TopicResult>>> + Send + 'static
    where
        I: IntoIterator<Item = &'a NewTopic<'a>>,
    {
        let mut list = Vec::new();
        let mut bad = None;
        for t in topics {
            let rf = match t.replication {
                TopicReplication::Fixed(n) => n,
                TopicReplication::Variable(_) => {
                    bad = Some("explicit replica assignment");
                    -1
                }
            };
            let Ok(rf) = i16::try_from(rf) else {
                bad = Some("replication factor out of range");
                continue;
            };
            let mut n = kafka_sdk::NewTopic::new(t.name, t.num_partitions, rf);
            for (k, v) in &t.config {
                n = n.config(*k, *v);
            }
            list.push(n);
        }
        if opts.validate_only {
            bad = Some("validate_only");
        }
        let admin = self.admin.clone();
        let limit = opts.limit();
        let run = rt::run_async(async move {
            if let Some(what) = bad {
                return not_implemented(what);
            }
            match within(limit, admin.create_topics(list)).await {
                Err(e) => Err(e),
                Ok(results) => Ok(per_item(results)),
            }
        });
        run
    }

    /// Deletes topics; each has its own result.
    pub fn delete_topics(
        &self,
        topic_names: &[&str],
        opts: &AdminOptions,
    ) -> impl Future<Output = KafkaResult<Vec<TopicResult>>> + Send + 'static {
        let names: Vec<String> = topic_names.iter().map(|s| s.to_string()).collect();
        let admin = self.admin.clone();
        let limit = opts.limit();
        rt::run_async(async move {
            let refs: Vec<&str> = names.iter().map(|s| s.as_str()).collect();
            match within(limit, admin.delete_topics(&refs)).await {
                Err(e) => Err(e),
                Ok(results) => Ok(per_item(results)),
            }
        })
    }

    /// Deletes consumer groups (they must have no active member); each has its own result.
    pub fn delete_groups(
        &self,
        group_names: &[&str],
        opts: &AdminOptions,
    ) -> impl Future<Output = KafkaResult<Vec<GroupResult>>> + Send + 'static {
        let names: Vec<String> = group_names.iter().map(|s| s.to_string()).collect();
        let admin = self.admin.clone();
        let limit = opts.limit();
        let validate_only = opts.validate_only;
        rt::run_async(async move {
            if validate_only {
                return not_implemented("validate_only");
            }
            let refs: Vec<&str> = names.iter().map(|s| s.as_str()).collect();
            match within(limit, admin.delete_groups(&refs)).await {
                Err(e) => Err(e),
                Ok(results) => Ok(per_item(results)),
            }
        })
    }

    /// Grows topics to new partition counts; each topic has its own result. Explicit replica
    /// placement (`NewPartitions::assign`) is not supported: the call fails with
    /// `NotImplemented`.
    pub fn create_partitions<'a, I>(
        &self,
        partitions: I,
        opts: &AdminOptions,
    ) -> impl Future<Output = KafkaResult<Vec<TopicResult>>> + Send + 'static
    where
        I: IntoIterator<Item = &'a NewPartitions<'a>>,
    {
        let mut list: Vec<(String, i32)> = Vec::new();
        let mut bad = None;
        let mut invalid = false;
        for p in partitions {
            if p.assignment.is_some() {
                bad = Some("explicit replica assignment of new partitions");
            }
            match i32::try_from(p.new_partition_count) {
                Ok(n) => list.push((p.topic_name.to_string(), n)),
                Err(_) => invalid = true,
            }
        }
        if opts.validate_only {
            bad = Some("validate_only");
        }
        let admin = self.admin.clone();
        let limit = opts.limit();
        rt::run_async(async move {
            if invalid {
                return Err(KafkaError::AdminOpCreation(
                    "new_partition_count does not fit in an i32".into(),
                ));
            }
            if let Some(what) = bad {
                return not_implemented(what);
            }
            let refs: Vec<(&str, i32)> = list.iter().map(|(t, n)| (t.as_str(), *n)).collect();
            match within(limit, admin.create_partitions(&refs)).await {
                Err(e) => Err(e),
                Ok(results) => Ok(per_item(results)),
            }
        })
    }

    /// Deletes the records before each partition's offset (`Offset::End`: all of them). The
    /// answer holds each partition with its new low watermark, or its error.
    pub fn delete_records(
        &self,
        offsets: &TopicPartitionList,
        opts: &AdminOptions,
    ) -> impl Future<Output = KafkaResult<TopicPartitionList>> + Send + 'static {
        let mut before = Vec::new();
        let mut invalid = None;
        for (tp, o) in offsets.with_offsets() {
            match o {
                Offset::Offset(n) if n >= 0 => before.push((tp, n)),
                Offset::End => before.push((tp, -1)),
                other => invalid = Some(format!("{tp}: offset {other:?} (need an offset or End)")),
            }
        }
        let admin = self.admin.clone();
        let limit = opts.limit();
        rt::run_async(async move {
            if let Some(what) = invalid {
                return Err(KafkaError::AdminOpCreation(format!(
                    "delete_records: invalid offset for {what}"
                )));
            }
            match within(limit, admin.delete_records(before)).await {
                Err(e) => Err(e),
                Ok(results) => {
                    let mut tpl = TopicPartitionList::new();
                    for (tp, r) in &results {
                        let mut e = tpl.add_partition(&tp.topic, tp.partition);
                        if let Ok(low) = r {
                            let _ = e.set_offset(Offset::Offset(*low));
                        }
                    }
                    for (tp, r) in &results {
                        if let Err(e) = r {
                            tpl.set_error(&tp.topic, tp.partition, code_of(e));
                        }
                    }
                    Ok(tpl)
                }
            }
        })
    }

    /// Describes the configs of resources; each has its own result.
    pub fn describe_configs<'a, I>(
        &self,
        configs: I,
        opts: &AdminOptions,
    ) -> impl Future<Output = KafkaResult<Vec<ConfigResourceResult>>> + Send + 'static
    where
        I: IntoIterator<Item = &'a ResourceSpecifier<'a>>,
    {
        let resources: Vec<sdk::ConfigResource> = configs.into_iter().map(to_sdk).collect();
        let admin = self.admin.clone();
        let limit = opts.limit();
        rt::run_async(async move {
            match within(limit, admin.describe_configs(&resources)).await {
                Err(e) => Err(e),
                Ok(results) => Ok(results
                    .into_iter()
                    .map(|(r, res)| match res {
                        Err(e) => Err(code_of(&e)),
                        Ok(entries) => Ok(ConfigResource {
                            specifier: from_sdk(&r),
                            entries: entries.into_iter().map(entry_of).collect(),
                        }),
                    })
                    .collect()),
            }
        })
    }

    /// Sets configs of resources; each resource has its own result. kafka-sdk sends these as
    /// incremental `SET` operations (KIP-339): configs not named keep their values, where
    /// librdkafka's legacy `AlterConfigs` resets them (see MIGRATING_FROM_RDKAFKA.md).
    pub fn alter_configs<'a, I>(
        &self,
        configs: I,
        opts: &AdminOptions,
    ) -> impl Future<Output = KafkaResult<Vec<AlterConfigsResult>>> + Send + 'static
    where
        I: IntoIterator<Item = &'a AlterConfig<'a>>,
    {
        let changes: Vec<(sdk::ConfigResource, Vec<sdk::AlterConfigOp>)> = configs
            .into_iter()
            .map(|c| {
                let ops = c
                    .entries
                    .iter()
                    .map(|(k, v)| sdk::AlterConfigOp::Set(k.to_string(), v.to_string()))
                    .collect();
                (to_sdk(&c.specifier), ops)
            })
            .collect();
        let admin = self.admin.clone();
        let limit = opts.limit();
        let validate_only = opts.validate_only;
        rt::run_async(async move {
            if validate_only {
                return not_implemented("validate_only");
            }
            match within(limit, admin.incremental_alter_configs(changes)).await {
                Err(e) => Err(e),
                Ok(results) => Ok(results
                    .into_iter()
                    .map(|(r, res)| match res {
                        Ok(()) => Ok(from_sdk(&r)),
                        Err(e) => Err((from_sdk(&r), code_of(&e))),
                    })
                    .collect()),
            }
        })
    }

    /// The client.
    pub fn inner(&self) -> &Client<C> {
        &self.client
    }
}

/// Runs an admin call within the operation timeout, as rdkafka reports it (a timeout is
/// `OperationTimedOut`, a failure of the whole call its error code).
async fn within<T>(
    limit: std::time::Duration,
    call: impl Future<Output = kafka_sdk::Result<T>>,
) -> KafkaResult<T> {
    match tokio::time::timeout(limit, call).await {
        Err(_) => Err(KafkaError::AdminOp(RDKafkaErrorCode::OperationTimedOut)),
        Ok(r) => r.map_err(|e| KafkaError::AdminOp(code_of(&e))),
    }
}

/// Per-item results of a call on named resources.
fn per_item(
    results: Vec<(String, kafka_sdk::Result<()>)>,
) -> Vec<Result<String, (String, RDKafkaErrorCode)>> {
    results
        .into_iter()
        .map(|(name, r)| match r {
            Ok(()) => Ok(name),
            Err(e) => Err((name, code_of(&e))),
        })
        .collect()
}

fn to_sdk(s: &ResourceSpecifier<'_>) -> sdk::ConfigResource {
    match s {
        ResourceSpecifier::Topic(t) => sdk::ConfigResource::topic(*t),
        ResourceSpecifier::Group(g) => sdk::ConfigResource::group(*g),
        ResourceSpecifier::Broker(b) => sdk::ConfigResource::broker(*b),
    }
}

fn from_sdk(r: &sdk::ConfigResource) -> OwnedResourceSpecifier {
    match r.kind {
        sdk::ConfigResourceType::Broker | sdk::ConfigResourceType::BrokerLogger => {
            OwnedResourceSpecifier::Broker(r.name.parse().unwrap_or(-1))
        }
        sdk::ConfigResourceType::Group => OwnedResourceSpecifier::Group(r.name.clone()),
        _ => OwnedResourceSpecifier::Topic(r.name.clone()),
    }
}

fn entry_of(e: sdk::ConfigEntry) -> ConfigEntry {
    let source = match e.source {
        sdk::ConfigSource::DynamicTopic => ConfigSource::DynamicTopic,
        sdk::ConfigSource::DynamicBroker => ConfigSource::DynamicBroker,
        sdk::ConfigSource::DynamicDefaultBroker => ConfigSource::DynamicDefaultBroker,
        sdk::ConfigSource::StaticBroker => ConfigSource::StaticBroker,
        sdk::ConfigSource::Default => ConfigSource::Default,
        _ => ConfigSource::Unknown,
    };
    ConfigEntry {
        is_default: source == ConfigSource::Default,
        name: e.name,
        value: e.value,
        source,
        is_read_only: e.read_only,
        is_sensitive: e.sensitive,
    }
}
