//! Configs and partitions: DescribeConfigs, IncrementalAlterConfigs, CreatePartitions.

use kafka_protocol::messages::create_partitions_request::CreatePartitionsTopic;
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::incremental_alter_configs_request::{
    AlterConfigsResource, AlterableConfig,
};
use kafka_protocol::messages::{
    CreatePartitionsRequest, DescribeConfigsRequest, IncrementalAlterConfigsRequest,
};

use super::util::{check, sb, topic_name};
use super::AdminClient;
use crate::error::{Error, Result};

/// The kind of a config resource (the protocol's resource type).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum ConfigResourceType {
    /// A topic.
    Topic,
    /// A broker (name: its node id; empty: the cluster-wide default).
    Broker,
    /// A broker's loggers.
    BrokerLogger,
    /// A consumer or share group (KIP-848 group configs).
    Group,
    /// Client metrics subscriptions (KIP-714).
    ClientMetrics,
}

impl ConfigResourceType {
    fn code(self) -> i8 {
        match self {
            ConfigResourceType::Topic => 2,
            ConfigResourceType::Broker => 4,
            ConfigResourceType::BrokerLogger => 8,
            ConfigResourceType::ClientMetrics => 16,
            ConfigResourceType::Group => 32,
        }
    }
}

/// A resource whose configs are described or altered.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConfigResource {
    /// Its kind.
    pub kind: ConfigResourceType,
    /// Its name (topic name, broker id, group id...).
    pub name: String,
}

impl ConfigResource {
    /// A topic's configs.
    pub fn topic(name: impl Into<String>) -> Self {
        ConfigResource {
            kind: ConfigResourceType::Topic,
            name: name.into(),
        }
    }

    /// A broker's configs.
    pub fn broker(id: i32) -> Self {
        ConfigResource {
            kind: ConfigResourceType::Broker,
            name: id.to_string(),
        }
    }

    /// A group's configs.
    pub fn group(name: impl Into<String>) -> Self {
        ConfigResource {
            kind: ConfigResourceType::Group,
            name: name.into(),
        }
    }

    /// The broker a request about this resource must go to, if any.
    fn broker_id(&self) -> Option<i32> {
        match self.kind {
            ConfigResourceType::Broker | ConfigResourceType::BrokerLogger => self.name.parse().ok(),
            _ => None,
        }
    }
}

impl std::fmt::Display for ConfigResource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?} `{}`", self.kind, self.name)
    }
}

/// Where a config value comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigSource {
    /// Set on the topic (or group).
    DynamicTopic,
    /// Set dynamically for this broker.
    DynamicBroker,
    /// Set dynamically as the cluster-wide broker default.
    DynamicDefaultBroker,
    /// From the broker's `server.properties`.
    StaticBroker,
    /// The built-in default.
    Default,
    /// Set dynamically for the broker's loggers.
    DynamicBrokerLogger,
    /// A client metrics or group config.
    DynamicClientMetrics,
    /// A group config.
    DynamicGroup,
    /// A source code this client does not know.
    Unknown(i8),
}

impl From<i8> for ConfigSource {
    fn from(v: i8) -> Self {
        match v {
            1 => ConfigSource::DynamicTopic,
            2 => ConfigSource::DynamicBroker,
            3 => ConfigSource::DynamicDefaultBroker,
            4 => ConfigSource::StaticBroker,
            5 => ConfigSource::Default,
            6 => ConfigSource::DynamicBrokerLogger,
            7 => ConfigSource::DynamicClientMetrics,
            8 => ConfigSource::DynamicGroup,
            v => ConfigSource::Unknown(v),
        }
    }
}

/// One config entry of a described resource.
#[derive(Clone, PartialEq, Eq)]
pub struct ConfigEntry {
    /// Config name.
    pub name: String,
    /// Its value (`None` when unset, or for a sensitive config: brokers never send those).
    pub value: Option<String>,
    /// Where the value comes from.
    pub source: ConfigSource,
    /// Whether it cannot be altered.
    pub read_only: bool,
    /// Whether it is sensitive (passwords, keys).
    pub sensitive: bool,
}

impl std::fmt::Debug for ConfigEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let value = if self.sensitive {
            self.value.as_ref().map(|_| "<redacted>")
        } else {
            self.value.as_deref()
        };
        f.debug_struct("ConfigEntry")
            .field("name", &self.name)
            .field("value", &value)
            .field("source", &self.source)
            .field("read_only", &self.read_only)
            .field("sensitive", &self.sensitive)
            .finish()
    }
}

/// One change of an incremental config alteration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AlterConfigOp {
    /// Sets `key` to `value`.
    Set(String, String),
    /// Removes `key` (back to the default).
    Delete(String),
    /// Appends `value` to the list config `key`.
    Append(String, String),
    /// Removes `value` from the list config `key`.
    Subtract(String, String),
}

impl AlterConfigOp {
    fn to_wire(&self) -> AlterableConfig {
        let (op, k, v) = match self {
            AlterConfigOp::Set(k, v) => (0, k, Some(v)),
            AlterConfigOp::Delete(k) => (1, k, None),
            AlterConfigOp::Append(k, v) => (2, k, Some(v)),
            AlterConfigOp::Subtract(k, v) => (3, k, Some(v)),
        };
        AlterableConfig::default()
            .with_name(sb(k))
            .with_config_operation(op)
            .with_value(v.map(|v| sb(v)))
    }
}

impl AdminClient {
    /// Describes the configs of `resources`; one result per resource (in order). Broker
    /// resources are asked of that broker, the others of any broker.
    pub async fn describe_configs(
        &self,
        resources: &[ConfigResource],
    ) -> Result<Vec<(ConfigResource, Result<Vec<ConfigEntry>>)>> {
        let mut out = Vec::with_capacity(resources.len());
        for r in resources {
            let req = DescribeConfigsRequest::default().with_resources(vec![
                DescribeConfigsResource::default()
                    .with_resource_type(r.kind.code())
                    .with_resource_name(sb(&r.name))
                    .with_configuration_keys(None),
            ]);
            let what = format!("DescribeConfigs {r}");
            let resp = match r.broker_id() {
                Some(id) => {
                    self.cluster
                        .retry_policy(&what, self.deadline())
                        .run(|| async { self.cluster.broker(id).await?.send(&req).await })
                        .await
                }
                None => self.any_broker(&what, &req).await,
            };
            let res = resp.and_then(|resp| {
                let x = resp.results.first().ok_or_else(|| {
                    Error::Protocol(format!("DescribeConfigs response lacks {r}"))
                })?;
                check(x.error_code, x.error_message.as_ref(), || {
                    format!("describe configs of {r}")
                })?;
                Ok(x.configs
                    .iter()
                    .map(|c| ConfigEntry {
                        name: c.name.to_string(),
                        value: c.value.as_ref().map(|v| v.to_string()),
                        source: ConfigSource::from(c.config_source),
                        read_only: c.read_only,
                        sensitive: c.is_sensitive,
                    })
                    .collect())
            });
            out.push((r.clone(), res));
        }
        Ok(out)
    }

    /// Alters configs incrementally (KIP-339): only the named keys change. One result per
    /// resource (in order).
    pub async fn incremental_alter_configs(
        &self,
        changes: Vec<(ConfigResource, Vec<AlterConfigOp>)>,
    ) -> Result<Vec<(ConfigResource, Result<()>)>> {
        let mut out = Vec::with_capacity(changes.len());
        for (r, ops) in changes {
            let req = IncrementalAlterConfigsRequest::default().with_resources(vec![
                AlterConfigsResource::default()
                    .with_resource_type(r.kind.code())
                    .with_resource_name(sb(&r.name))
                    .with_configs(ops.iter().map(AlterConfigOp::to_wire).collect()),
            ]);
            let what = format!("IncrementalAlterConfigs {r}");
            let resp = match r.broker_id() {
                Some(id) => {
                    self.cluster
                        .retry_policy(&what, self.deadline())
                        .run(|| async { self.cluster.broker(id).await?.send(&req).await })
                        .await
                }
                None => self.any_broker(&what, &req).await,
            };
            let res = resp.and_then(|resp| {
                let x = resp.responses.first().ok_or_else(|| {
                    Error::Protocol(format!("IncrementalAlterConfigs response lacks {r}"))
                })?;
                check(x.error_code, x.error_message.as_ref(), || {
                    format!("alter configs of {r}")
                })
            });
            out.push((r, res));
        }
        Ok(out)
    }

    /// Grows topics to the given partition counts; one result per topic (in order). Each
    /// success is awaited in the metadata (all new partitions have leaders).
    pub async fn create_partitions(
        &self,
        new_counts: &[(&str, i32)],
    ) -> Result<Vec<(String, Result<()>)>> {
        let req = CreatePartitionsRequest::default()
            .with_timeout_ms(self.timeout_ms())
            .with_topics(
                new_counts
                    .iter()
                    .map(|(t, n)| {
                        CreatePartitionsTopic::default()
                            .with_name(topic_name(t))
                            .with_count(*n)
                            .with_assignments(None)
                    })
                    .collect(),
            );
        let resp = self.any_broker("CreatePartitions", &req).await?;
        let deadline = self.deadline();
        let mut out = Vec::with_capacity(new_counts.len());
        for (t, n) in new_counts {
            let res = match resp.results.iter().find(|r| r.name.0.as_str() == *t) {
                None => Err(Error::Protocol(format!(
                    "CreatePartitions response lacks `{t}`"
                ))),
                Some(r) => match check(r.error_code, r.error_message.as_ref(), || {
                    format!("create partitions of `{t}`")
                }) {
                    Err(e) => Err(e),
                    Ok(()) => self.await_partitions(t, *n, deadline).await,
                },
            };
            out.push((t.to_string(), res));
        }
        Ok(out)
    }

    async fn await_partitions(
        &self,
        topic: &str,
        count: i32,
        deadline: crate::backoff::Deadline,
    ) -> Result<()> {
        let mut poll = self
            .cluster
            .retry_policy(format!("partitions of `{topic}`"), deadline)
            .backoff(crate::backoff::Backoff::new(
                std::time::Duration::from_millis(50),
                std::time::Duration::from_millis(500),
            ));
        loop {
            let snap = self.cluster.refresh_topics(&[topic]).await?;
            if snap
                .topic(topic)
                .is_some_and(|t| t.partition_count() >= count && t.all_leaders_known())
            {
                return Ok(());
            }
            poll.failed(Error::timeout(
                format!("{count} partitions of `{topic}` to show in metadata"),
                self.timeout,
                false,
            ))
            .await?;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sensitive_values_are_not_in_debug() {
        let e = ConfigEntry {
            name: "ssl.key.password".into(),
            value: Some("hunter2".into()),
            source: ConfigSource::from(2),
            read_only: false,
            sensitive: true,
        };
        let s = format!("{e:?}");
        assert!(!s.contains("hunter2") && s.contains("redacted"), "{s}");
        let plain = ConfigEntry {
            sensitive: false,
            ..e
        };
        assert!(format!("{plain:?}").contains("hunter2"));
    }

    #[test]
    fn wire_codes() {
        assert_eq!(ConfigSource::from(1), ConfigSource::DynamicTopic);
        assert_eq!(ConfigSource::from(42), ConfigSource::Unknown(42));
        assert_eq!(ConfigResource::broker(3).broker_id(), Some(3));
        assert_eq!(ConfigResource::topic("3").broker_id(), None);
        let w = AlterConfigOp::Delete("retention.ms".into()).to_wire();
        assert_eq!((w.config_operation, w.value), (1, None));
    }
}
