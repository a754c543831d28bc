//! Cluster and transactions: DescribeCluster, ListTransactions, DescribeTransactions.

use kafka_protocol::messages::{
    DescribeClusterRequest, DescribeTransactionsRequest, ListTransactionsRequest, TransactionalId,
};

use super::util::{check, sb};
use super::AdminClient;
use crate::cluster::CoordinatorKind;
use crate::error::{Error, Result};
use crate::types::TopicPartition;

/// A broker of [`ClusterDescription`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterBroker {
    /// Node id.
    pub id: i32,
    /// Advertised host.
    pub host: String,
    /// Advertised port.
    pub port: i32,
    /// Rack, if configured.
    pub rack: Option<String>,
    /// Whether the controller has fenced it.
    pub fenced: bool,
}

/// The answer of [`AdminClient::describe_cluster`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterDescription {
    /// Cluster id.
    pub cluster_id: String,
    /// Node id of the active controller as brokers see it (-1: unknown).
    pub controller_id: i32,
    /// The brokers, sorted by id.
    pub brokers: Vec<ClusterBroker>,
}

/// One transaction of [`AdminClient::list_transactions`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransactionListing {
    /// Transactional id.
    pub transactional_id: String,
    /// Producer id.
    pub producer_id: i64,
    /// State (`Ongoing`, `Empty`, `CompleteCommit`, ...).
    pub state: String,
}

/// One transaction of [`AdminClient::describe_transactions`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransactionDescription {
    /// Transactional id.
    pub transactional_id: String,
    /// State (`Ongoing`, `Empty`, `CompleteCommit`, ...).
    pub state: String,
    /// `transaction.timeout.ms` of the producer.
    pub timeout_ms: i32,
    /// When the open transaction started (ms since the epoch; -1: none open).
    pub start_time_ms: i64,
    /// Producer id.
    pub producer_id: i64,
    /// Producer epoch.
    pub producer_epoch: i16,
    /// The partitions of the open transaction, sorted.
    pub partitions: Vec<TopicPartition>,
    /// Node id of the transaction coordinator.
    pub coordinator: i32,
}

impl AdminClient {
    /// The cluster id, the controller and the brokers (fenced ones included).
    pub async fn describe_cluster(&self) -> Result<ClusterDescription> {
        let req = DescribeClusterRequest::default()
            .with_endpoint_type(1)
            .with_include_fenced_brokers(true);
        let resp = self.any_broker("DescribeCluster", &req).await?;
        check(resp.error_code, resp.error_message.as_ref(), || {
            "DescribeCluster".into()
        })?;
        let mut brokers: Vec<ClusterBroker> = resp
            .brokers
            .iter()
            .map(|b| ClusterBroker {
                id: b.broker_id.0,
                host: b.host.to_string(),
                port: b.port,
                rack: b.rack.as_ref().map(|r| r.to_string()),
                fenced: b.is_fenced,
            })
            .collect();
        brokers.sort_by_key(|b| b.id);
        Ok(ClusterDescription {
            cluster_id: resp.cluster_id.to_string(),
            controller_id: resp.controller_id.0,
            brokers,
        })
    }

    /// The transactions every broker coordinates (optionally only those in `states`, e.g.
    /// `["Ongoing"]`), sorted by transactional id.
    pub async fn list_transactions(&self, states: &[&str]) -> Result<Vec<TransactionListing>> {
        let req = ListTransactionsRequest::default()
            .with_state_filters(states.iter().map(|s| sb(s)).collect())
            .with_duration_filter(-1);
        let mut out = Vec::new();
        for (node, resp) in self.all_brokers("ListTransactions", &req).await? {
            check(resp.error_code, None, || {
                format!("ListTransactions on broker {node}")
            })?;
            out.extend(resp.transaction_states.iter().map(|t| TransactionListing {
                transactional_id: t.transactional_id.0.to_string(),
                producer_id: t.producer_id.0,
                state: t.transaction_state.to_string(),
            }));
        }
        out.sort_by(|a, b| a.transactional_id.cmp(&b.transactional_id));
        Ok(out)
    }

    /// Describes transactions (asking each one's coordinator); one result per transactional
    /// id (in order). An unknown id gets TRANSACTIONAL_ID_NOT_FOUND.
    pub async fn describe_transactions(
        &self,
        ids: &[&str],
    ) -> Result<Vec<(String, Result<TransactionDescription>)>> {
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            let req = DescribeTransactionsRequest::default()
                .with_transactional_ids(vec![TransactionalId(sb(id))]);
            let r = self
                .cluster
                .retry_policy(format!("DescribeTransactions `{id}`"), self.deadline())
                .run_on_coordinator(CoordinatorKind::Transaction, id, |conn| {
                    let req = &req;
                    async move {
                        let resp = conn.send(req).await?;
                        let t = resp.transaction_states.first().ok_or_else(|| {
                            Error::Protocol("DescribeTransactions response without states".into())
                        })?;
                        check(t.error_code, None, || {
                            format!("describe transaction `{id}`")
                        })?;
                        let mut partitions: Vec<TopicPartition> = t
                            .topics
                            .iter()
                            .flat_map(|x| {
                                x.partitions
                                    .iter()
                                    .map(move |p| TopicPartition::new(x.topic.0.as_str(), *p))
                            })
                            .collect();
                        partitions.sort();
                        Ok(TransactionDescription {
                            transactional_id: id.to_string(),
                            state: t.transaction_state.to_string(),
                            timeout_ms: t.transaction_timeout_ms,
                            start_time_ms: t.transaction_start_time_ms,
                            producer_id: t.producer_id.0,
                            producer_epoch: t.producer_epoch,
                            partitions,
                            coordinator: -1,
                        })
                    }
                })
                .await;
            let r = match r {
                Ok(mut d) => {
                    d.coordinator = self
                        .cluster
                        .coordinator(CoordinatorKind::Transaction, id, self.deadline())
                        .await
                        .map_or(-1, |(n, _)| n);
                    Ok(d)
                }
                Err(e) => Err(e),
            };
            out.push((id.to_string(), r));
        }
        Ok(out)
    }
}
