//! Client quotas (KIP-546): DescribeClientQuotas and AlterClientQuotas, what Kafka's
//! `kafka-configs --entity-type users/clients/ips` does.

use std::collections::BTreeMap;

use kafka_protocol::messages::alter_client_quotas_request::{EntityData, EntryData, OpData};
use kafka_protocol::messages::describe_client_quotas_request::ComponentData;
use kafka_protocol::messages::{AlterClientQuotasRequest, DescribeClientQuotasRequest};

use super::util::{check, sb};
use super::AdminClient;
use crate::error::{Error, Result};

/// The entity a client quota applies to: one or more (type, name) parts, e.g. a user, a
/// client id, a user and client id together, an IP address. A part without a name is that
/// type's default entity (the quota of every user without one of its own, ...).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct QuotaEntity {
    /// (entity type: `user`, `client-id` or `ip`; name, `None` for the default), sorted by
    /// type.
    pub parts: Vec<(String, Option<String>)>,
}

impl QuotaEntity {
    /// The entity of one part.
    fn one(entity_type: &str, name: Option<&str>) -> QuotaEntity {
        QuotaEntity {
            parts: vec![(entity_type.to_string(), name.map(str::to_string))],
        }
    }

    /// A user principal's name (`None`: the default user).
    pub fn user(name: Option<&str>) -> QuotaEntity {
        QuotaEntity::one("user", name)
    }

    /// A client id (`None`: the default client id).
    pub fn client_id(name: Option<&str>) -> QuotaEntity {
        QuotaEntity::one("client-id", name)
    }

    /// An IP address (`None`: the default IP); only `connection_creation_rate` applies.
    pub fn ip(address: Option<&str>) -> QuotaEntity {
        QuotaEntity::one("ip", address)
    }

    /// This entity and a client id (e.g. a user's quota for one of its client ids).
    pub fn and_client_id(mut self, name: Option<&str>) -> QuotaEntity {
        self.parts
            .push(("client-id".to_string(), name.map(str::to_string)));
        self.parts.sort();
        self
    }

    /// From an answer's (type, name) parts.
    fn from_wire<'a>(parts: impl Iterator<Item = (&'a str, Option<&'a str>)>) -> QuotaEntity {
        let mut parts: Vec<(String, Option<String>)> = parts
            .map(|(t, n)| (t.to_string(), n.map(str::to_string)))
            .collect();
        parts.sort();
        QuotaEntity { parts }
    }

    fn wire(&self) -> Vec<EntityData> {
        self.parts
            .iter()
            .map(|(t, n)| {
                EntityData::default()
                    .with_entity_type(sb(t))
                    .with_entity_name(n.as_deref().map(sb))
            })
            .collect()
    }
}

impl std::fmt::Display for QuotaEntity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, (t, n)) in self.parts.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            match n {
                Some(n) => write!(f, "{t}={n}")?,
                None => write!(f, "{t}=<default>")?,
            }
        }
        Ok(())
    }
}

/// One change of a [`QuotaEntity`]'s quotas: keys set to a value, keys removed.
#[derive(Debug, Clone, PartialEq)]
pub struct QuotaAlteration {
    /// The entity.
    pub entity: QuotaEntity,
    /// (quota key, value; `None` removes the key), e.g. `producer_byte_rate`,
    /// `consumer_byte_rate`, `request_percentage`, `controller_mutation_rate`,
    /// `connection_creation_rate`.
    pub ops: Vec<(String, Option<f64>)>,
}

impl QuotaAlteration {
    /// No change yet for `entity`.
    pub fn new(entity: QuotaEntity) -> QuotaAlteration {
        QuotaAlteration {
            entity,
            ops: Vec::new(),
        }
    }

    /// Sets quota `key` to `value`.
    pub fn set(mut self, key: &str, value: f64) -> QuotaAlteration {
        self.ops.push((key.to_string(), Some(value)));
        self
    }

    /// Removes quota `key`.
    pub fn remove(mut self, key: &str) -> QuotaAlteration {
        self.ops.push((key.to_string(), None));
        self
    }
}

/// How a [`QuotaFilter`] component matches an entity part of its type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QuotaMatch {
    /// That name.
    Exact(String),
    /// The type's default entity.
    Default,
    /// Any name, the default included.
    Any,
}

/// Which entities [`AdminClient::describe_client_quotas`] returns.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct QuotaFilter {
    /// (entity type, how its part matches); an empty list matches every entity.
    pub components: Vec<(String, QuotaMatch)>,
    /// Only entities without parts of other types than the components' (`strict`); else
    /// entities that have more parts match too.
    pub strict: bool,
}

impl QuotaFilter {
    /// Every entity with quotas.
    pub fn all() -> QuotaFilter {
        QuotaFilter::default()
    }

    /// Adds a component: the entity's part of `entity_type` must match `m`.
    pub fn with(mut self, entity_type: &str, m: QuotaMatch) -> QuotaFilter {
        self.components.push((entity_type.to_string(), m));
        self
    }

    /// Only entities made of the components' types.
    pub fn strict(mut self) -> QuotaFilter {
        self.strict = true;
        self
    }
}

impl AdminClient {
    /// The quotas of the entities matching `filter`, by entity (quota key -> value).
    pub async fn describe_client_quotas(
        &self,
        filter: &QuotaFilter,
    ) -> Result<BTreeMap<QuotaEntity, BTreeMap<String, f64>>> {
        let req = DescribeClientQuotasRequest::default()
            .with_components(
                filter
                    .components
                    .iter()
                    .map(|(t, m)| {
                        let (match_type, name) = match m {
                            QuotaMatch::Exact(n) => (0, Some(sb(n))),
                            QuotaMatch::Default => (1, None),
                            QuotaMatch::Any => (2, None),
                        };
                        ComponentData::default()
                            .with_entity_type(sb(t))
                            .with_match_type(match_type)
                            .with_match(name)
                    })
                    .collect(),
            )
            .with_strict(filter.strict);
        let resp = self.any_broker("DescribeClientQuotas", &req).await?;
        check(resp.error_code, resp.error_message.as_ref(), || {
            "DescribeClientQuotas".into()
        })?;
        let mut out = BTreeMap::new();
        for e in resp.entries.unwrap_or_default() {
            let entity = QuotaEntity::from_wire(
                e.entity
                    .iter()
                    .map(|p| (p.entity_type.as_str(), p.entity_name.as_deref())),
            );
            let values = e
                .values
                .iter()
                .map(|v| (v.key.to_string(), v.value))
                .collect();
            out.insert(entity, values);
        }
        Ok(out)
    }

    /// Applies `alterations` (`validate_only`: the brokers check them and change nothing);
    /// one result per alteration, in order.
    pub async fn alter_client_quotas(
        &self,
        alterations: &[QuotaAlteration],
        validate_only: bool,
    ) -> Result<Vec<(QuotaEntity, Result<()>)>> {
        let req = AlterClientQuotasRequest::default()
            .with_entries(
                alterations
                    .iter()
                    .map(|a| {
                        EntryData::default().with_entity(a.entity.wire()).with_ops(
                            a.ops
                                .iter()
                                .map(|(k, v)| {
                                    OpData::default()
                                        .with_key(sb(k))
                                        .with_value(v.unwrap_or_default())
                                        .with_remove(v.is_none())
                                })
                                .collect(),
                        )
                    })
                    .collect(),
            )
            .with_validate_only(validate_only);
        let resp = self.any_broker("AlterClientQuotas", &req).await?;
        // The answer is per entity, in no particular order (the controller keeps a map).
        let answers: BTreeMap<QuotaEntity, Result<()>> = resp
            .entries
            .iter()
            .map(|r| {
                let entity = QuotaEntity::from_wire(
                    r.entity
                        .iter()
                        .map(|p| (p.entity_type.as_str(), p.entity_name.as_deref())),
                );
                let res = check(r.error_code, r.error_message.as_ref(), || {
                    format!("alter the client quotas of {entity}")
                });
                (entity, res)
            })
            .collect();
        alterations
            .iter()
            .map(|a| {
                let mut key = a.entity.clone();
                key.parts.sort();
                match answers.get(&key) {
                    Some(r) => Ok((a.entity.clone(), r.clone())),
                    None => Err(Error::Protocol(format!(
                        "AlterClientQuotas did not answer for {}",
                        a.entity
                    ))),
                }
            })
            .collect()
    }
}
