//! Helpers shared by the admin operations: name conversions, per-resource errors, and the
//! per-partition-leader dispatch with retries through the one [`RetryPolicy`].
//!
//! [`RetryPolicy`]: crate::cluster::RetryPolicy

use std::collections::{BTreeMap, HashMap};
use std::future::Future;

use kafka_protocol::messages::TopicName;
use kafka_protocol::protocol::StrBytes;

use super::AdminClient;
use crate::backoff::Deadline;
use crate::connection::Connection;
use crate::error::{Error, ErrorAction, KafkaCode, Result};
use crate::types::TopicPartition;

pub(super) fn topic_name(t: &str) -> TopicName {
    TopicName(StrBytes::from_string(t.to_string()))
}

pub(super) fn sb(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_string())
}

pub(super) fn gid(g: &str) -> kafka_protocol::messages::GroupId {
    kafka_protocol::messages::GroupId(sb(g))
}

/// The error of a per-resource error code (with the broker's message), or `Ok`.
pub(super) fn check(
    code: i16,
    msg: Option<&StrBytes>,
    context: impl FnOnce() -> String,
) -> Result<()> {
    match KafkaCode(code).err() {
        None => Ok(()),
        Some(code) => {
            let mut ctx = context();
            if let Some(m) = msg.filter(|m| !m.is_empty()) {
                ctx.push_str(": ");
                ctx.push_str(m.as_str());
            }
            Err(Error::broker(code, ctx))
        }
    }
}

/// The answer for each of `asked`, in the order asked (from `answers`, keyed as the broker
/// answered); a key the broker did not answer for is a protocol error naming it.
pub(super) fn in_request_order<K, A, Q, T>(
    api: &str,
    asked: impl IntoIterator<Item = K>,
    answers: &BTreeMap<A, Result<T>>,
) -> Result<Vec<(K, Result<T>)>>
where
    K: std::borrow::Borrow<Q> + std::fmt::Display,
    A: std::borrow::Borrow<Q> + Ord,
    Q: Ord + ?Sized,
    T: Clone,
{
    asked
        .into_iter()
        .map(|k| match answers.get(k.borrow()) {
            Some(r) => Ok((k, r.clone())),
            None => Err(Error::Protocol(format!("{api} did not answer for {k}"))),
        })
        .collect()
}

/// The results of one request to one leader, by partition.
pub(super) type LeaderAnswers<T> = HashMap<TopicPartition, Result<T>>;

impl AdminClient {
    /// The deadline of one admin operation.
    pub(super) fn deadline(&self) -> Deadline {
        Deadline::after(self.timeout)
    }

    /// The operation timeout in milliseconds, for the requests' `timeout_ms` fields.
    pub(super) fn timeout_ms(&self) -> i32 {
        self.timeout.as_millis().min(i32::MAX as u128) as i32
    }

    /// Sends per-partition queries to each partition's leader (`send` gets the connection and
    /// the queries of that leader, and answers per partition). A partition whose answer is
    /// retriable (leader moved, not available, connection failed) is retried after a
    /// metadata refresh and a backoff, until the operation deadline; a fatal answer is that
    /// partition's result. A partition of a topic that does not exist gets
    /// [`Error::UnknownTopicOrPartition`] at once. Results come in input order; a partition
    /// given twice is an [`Error::InvalidArgument`] for the whole call.
    pub(super) async fn per_leader<Q, T, F, Fut>(
        &self,
        what: &str,
        items: Vec<(TopicPartition, Q)>,
        send: F,
    ) -> Result<Vec<(TopicPartition, Result<T>)>>
    where
        Q: Clone,
        F: Fn(Connection, Vec<(TopicPartition, Q)>) -> Fut,
        Fut: Future<Output = Result<LeaderAnswers<T>>>,
    {
        let order: Vec<TopicPartition> = items.iter().map(|(tp, _)| tp.clone()).collect();
        let mut sorted = order.clone();
        sorted.sort();
        if let Some(w) = sorted.windows(2).find(|w| w[0] == w[1]) {
            return Err(Error::InvalidArgument(format!(
                "{what}: partition {} given more than once",
                w[0]
            )));
        }
        let mut done: HashMap<TopicPartition, Result<T>> = HashMap::new();
        let mut pending = items;
        let deadline = self.deadline();
        let mut retry = self
            .cluster
            .retry_policy(what, deadline)
            .refresh_metadata(false);
        loop {
            let mut topics: Vec<&str> = pending.iter().map(|(tp, _)| &*tp.topic).collect();
            topics.sort_unstable();
            topics.dedup();
            let snap = match self.cluster.refresh_topics(&topics).await {
                Ok(s) => s,
                Err(e) if retry.gives_up(&e) => return Err(e),
                Err(e) => {
                    retry.failed(e).await?;
                    continue;
                }
            };
            let mut by_leader: BTreeMap<i32, Vec<(TopicPartition, Q)>> = BTreeMap::new();
            let mut again = Vec::new();
            let mut last: Option<Error> = None;
            for (tp, q) in pending.drain(..) {
                let topic = snap
                    .topic(&tp.topic)
                    .filter(|t| t.error != Some(KafkaCode::UNKNOWN_TOPIC_OR_PARTITION));
                match topic {
                    None => {
                        self.cluster.untrack_topic(&tp.topic);
                        done.insert(
                            tp.clone(),
                            Err(Error::UnknownTopicOrPartition(format!(
                                "{what}: topic `{}` does not exist",
                                tp.topic
                            ))),
                        );
                    }
                    Some(t) => match (t.error, t.partition(tp.partition)) {
                        (Some(code), _) => {
                            let e = Error::broker(code, format!("{what} {tp}"));
                            if e.action() == ErrorAction::Fatal {
                                done.insert(tp, Err(e));
                            } else {
                                last = Some(e);
                                again.push((tp, q));
                            }
                        }
                        (None, None) => {
                            done.insert(
                                tp.clone(),
                                Err(Error::UnknownTopicOrPartition(format!(
                                    "{what}: partition {} of topic `{}` (it has {})",
                                    tp.partition,
                                    tp.topic,
                                    t.partition_count()
                                ))),
                            );
                        }
                        (None, Some(p)) if p.leader < 0 => {
                            last = Some(Error::broker(
                                KafkaCode::LEADER_NOT_AVAILABLE,
                                format!("{what} {tp}"),
                            ));
                            again.push((tp, q));
                        }
                        (None, Some(p)) => by_leader.entry(p.leader).or_default().push((tp, q)),
                    },
                }
            }
            for (leader, qs) in by_leader {
                let answers = match self.cluster.broker(leader).await {
                    Ok(conn) => send(conn, qs.clone()).await,
                    Err(e) => Err(e),
                };
                match answers {
                    Ok(mut answers) => {
                        for (tp, q) in qs {
                            match answers.remove(&tp) {
                                None => {
                                    let e = Error::Protocol(format!(
                                        "{what} response lacks partition {tp}"
                                    ));
                                    done.insert(tp, Err(e));
                                }
                                Some(Err(e)) if e.action() != ErrorAction::Fatal => {
                                    last = Some(e);
                                    again.push((tp, q));
                                }
                                Some(r) => {
                                    done.insert(tp, r);
                                }
                            }
                        }
                    }
                    Err(e) if e.action() == ErrorAction::Fatal => {
                        for (tp, _) in qs {
                            done.insert(tp, Err(e.clone()));
                        }
                    }
                    Err(e) => {
                        last = Some(e);
                        again.extend(qs);
                    }
                }
            }
            if again.is_empty() {
                break;
            }
            let err = last.unwrap_or_else(|| Error::timeout(what, self.timeout, false));
            if let Err(e) = retry.failed(err).await {
                for (tp, _) in again {
                    done.insert(tp, Err(e.clone()));
                }
                break;
            }
            pending = again;
        }
        Ok(order
            .into_iter()
            .map(|tp| {
                let r = done
                    .remove(&tp)
                    .unwrap_or_else(|| Err(Error::Protocol(format!("{what}: no answer for {tp}"))));
                (tp, r)
            })
            .collect())
    }

    /// Sends `req` to every broker of the cluster (each under the retry policy) and returns
    /// each broker's answer.
    pub(super) async fn all_brokers<R>(
        &self,
        what: &str,
        req: &R,
    ) -> Result<Vec<(i32, R::Response)>>
    where
        R: crate::protocol::ApiRequest + Sync,
    {
        let snap = self.cluster.refresh().await?;
        let ids: Vec<i32> = snap.brokers.keys().copied().collect();
        let deadline = self.deadline();
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            let resp = self
                .cluster
                .retry_policy(format!("{what} (broker {id})"), deadline)
                .run(|| async {
                    let conn = self.cluster.broker(id).await?;
                    conn.send(req).await
                })
                .await?;
            out.push((id, resp));
        }
        Ok(out)
    }

    /// Sends `req` to any broker under the retry policy.
    pub(super) async fn any_broker<R>(&self, what: &str, req: &R) -> Result<R::Response>
    where
        R: crate::protocol::ApiRequest + Sync,
    {
        self.cluster
            .retry_policy(what, self.deadline())
            .run(|| async {
                let conn = self.cluster.any_connection().await?;
                conn.send(req).await
            })
            .await
    }
}
