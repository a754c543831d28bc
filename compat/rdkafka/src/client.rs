//! [`ClientContext`] (callbacks shared by every client) and [`Client`] (what
//! `Producer::client` / `Consumer::client` return).

use std::sync::Arc;
use std::time::Duration;

use crate::config::RDKafkaLogLevel;
use crate::error::{KafkaError, KafkaResult, RDKafkaErrorCode};
use crate::metadata::Metadata;
use crate::rt;
use crate::statistics::Statistics;
use crate::util::Timeout;

/// An OAuth bearer token (kept for API compatibility: kafka-sdk has no OAUTHBEARER support
/// yet, so `generate_oauth_token` is never called).
#[derive(Debug, Clone)]
pub struct OAuthToken {
    /// The token.
    pub token: String,
    /// The principal name.
    pub principal_name: String,
    /// Expiry, in ms since the epoch.
    pub lifetime_ms: i64,
}

/// Callbacks shared by every client.
///
/// `log` is not called: kafka-sdk logs through `tracing` directly (route it with a
/// `tracing` subscriber). With `statistics.interval.ms` > 0, producers and consumers call
/// `stats_raw` with librdkafka's statistics JSON on that interval (the default parses it and
/// calls `stats`); unlike rdkafka, where `BaseProducer` / `BaseConsumer` deliver it from
/// `poll`, every client calls it from a background callback thread of the facade's runtime,
/// as rdkafka's `FutureProducer` / `StreamConsumer` do. `error` is called, from a callback
/// thread, for what a producer's or consumer's background work runs into: a broker down
/// (`BrokerTransportFailure`, ...) and every broker down (`AllBrokersDown`), once per outage.
pub trait ClientContext: Send + Sync {
    /// Whether `generate_oauth_token` should be used (no effect here).
    const ENABLE_REFRESH_OAUTH_TOKEN: bool = false;

    /// A log line (never called: kafka-sdk logs through `tracing`).
    fn log(&self, level: RDKafkaLogLevel, fac: &str, log_message: &str) {
        match level {
            RDKafkaLogLevel::Emerg
            | RDKafkaLogLevel::Alert
            | RDKafkaLogLevel::Critical
            | RDKafkaLogLevel::Error => tracing::error!(target: "rdkafka", "{fac} {log_message}"),
            RDKafkaLogLevel::Warning => tracing::warn!(target: "rdkafka", "{fac} {log_message}"),
            RDKafkaLogLevel::Notice | RDKafkaLogLevel::Info => {
                tracing::info!(target: "rdkafka", "{fac} {log_message}")
            }
            RDKafkaLogLevel::Debug => tracing::debug!(target: "rdkafka", "{fac} {log_message}"),
        }
    }

    /// A statistics snapshot.
    fn stats(&self, statistics: Statistics) {
        tracing::info!("client statistics: {statistics:?}");
    }

    /// A statistics snapshot as JSON; the default parses it and calls `stats`.
    fn stats_raw(&self, statistics: &[u8]) {
        match serde_json::from_slice(statistics) {
            Ok(s) => self.stats(s),
            Err(e) => tracing::error!("statistics JSON does not parse: {e}"),
        }
    }

    /// An error no call returned.
    fn error(&self, error: KafkaError, reason: &str) {
        tracing::error!("kafka client error: {error}: {reason}");
    }

    /// An OAuth token (never called here).
    fn generate_oauth_token(
        &self,
        _oauthbearer_config: Option<&str>,
    ) -> Result<OAuthToken, Box<dyn std::error::Error>> {
        Err("OAUTHBEARER is not supported by kafka-sdk".into())
    }
}

/// Hands every statistics snapshot of `rx` to `context.stats_raw` as librdkafka's JSON, on
/// a callback thread, until the client is dropped or closed (the channel closes).
pub(crate) fn forward_stats<C: ClientContext + 'static>(
    mut rx: kafka_sdk::stats::StatisticsReceiver,
    context: Arc<C>,
) {
    rt::handle().spawn(async move {
        while rx.changed().await.is_ok() {
            let Some(s) = rx.borrow_and_update().clone() else {
                continue;
            };
            let ctx = context.clone();
            rt::callback(move || ctx.stats_raw(&Statistics::to_json(&s))).await;
        }
    });
}

/// Hands the client's events to `context.error`, on a callback thread, as librdkafka's error
/// callback gets them: a broker down as `BrokerTransportFailure` (or `Authentication`,
/// `SSL`, ... by its cause) with `host:port` and the cause in the reason, every broker down
/// as `AllBrokersDown` ("N/N brokers are down"). A broker back is not an error (rdkafka
/// does not report it either). Ends with the client.
pub(crate) fn forward_events<C: ClientContext + 'static>(
    mut rx: kafka_sdk::events::ClientEvents,
    context: Arc<C>,
) {
    use kafka_sdk::events::ClientEvent;
    rt::handle().spawn(async move {
        while let Some(e) = rx.recv().await {
            let (error, reason) = match e {
                // Named as librdkafka names its brokers: `host:port/id` or `/bootstrap`.
                ClientEvent::BrokerDown {
                    broker,
                    node_id,
                    error,
                } => (
                    KafkaError::Global(crate::error::code_of(&error)),
                    match node_id {
                        Some(id) => format!("{broker}/{id}: {error}"),
                        None => format!("{broker}/bootstrap: {error}"),
                    },
                ),
                ClientEvent::AllBrokersDown { brokers } => (
                    KafkaError::Global(RDKafkaErrorCode::AllBrokersDown),
                    format!("{brokers}/{brokers} brokers are down"),
                ),
                _ => continue,
            };
            let ctx = context.clone();
            rt::callback(move || ctx.error(error, &reason)).await;
        }
    });
}

/// The context with every callback at its default.
#[derive(Clone, Copy, Debug, Default)]
pub struct DefaultClientContext;

impl ClientContext for DefaultClientContext {}

/// What a [`Client`] asks metadata questions through.
#[derive(Clone)]
pub(crate) enum Source {
    Producer(kafka_sdk::Producer),
    Consumer(kafka_sdk::ConsumerHandle),
    Admin(Arc<kafka_sdk::AdminClient>),
}

/// A client: its context and the metadata calls every client has.
pub struct Client<C: ClientContext = DefaultClientContext> {
    context: Arc<C>,
    source: Source,
}

/// The bound used for [`Timeout::Never`] by calls that must end.
pub(crate) const NEVER: Duration = Duration::from_secs(365 * 24 * 3600);

impl<C: ClientContext> Client<C> {
    pub(crate) fn new(context: Arc<C>, source: Source) -> Client<C> {
        Client { context, source }
    }

    /// The context.
    pub fn context(&self) -> &Arc<C> {
        &self.context
    }

    /// Metadata of one topic, or of every topic.
    pub fn fetch_metadata<T: Into<Timeout>>(
        &self,
        topic: Option<&str>,
        timeout: T,
    ) -> KafkaResult<Metadata> {
        let source = self.source.clone();
        let topic = topic.map(str::to_string);
        let limit = timeout.into().or(NEVER);
        rt::block(async move {
            let fut = async {
                match &source {
                    Source::Producer(p) => p.fetch_metadata(topic.as_deref()).await,
                    Source::Consumer(c) => c.fetch_metadata(topic.as_deref()).await,
                    Source::Admin(a) => a.fetch_metadata(topic.as_deref()).await,
                }
            };
            match tokio::time::timeout(limit, fut).await {
                Ok(Ok(m)) => Ok(Metadata::from_sdk(m)),
                Ok(Err(e)) => Err(KafkaError::MetadataFetch(crate::error::logged_code(
                    "fetch_metadata",
                    &e,
                ))),
                Err(_) => Err(KafkaError::MetadataFetch(
                    RDKafkaErrorCode::OperationTimedOut,
                )),
            }
        })
    }

    /// Low and high watermarks of a partition (consumers only).
    pub fn fetch_watermarks<T: Into<Timeout>>(
        &self,
        topic: &str,
        partition: i32,
        timeout: T,
    ) -> KafkaResult<(i64, i64)> {
        match &self.source {
            Source::Consumer(c) => {
                crate::consumer::watermarks(c.clone(), topic, partition, timeout.into())
            }
            _ => Err(KafkaError::MetadataFetch(RDKafkaErrorCode::NotImplemented)),
        }
    }

    /// The cluster id, if the metadata carries one.
    pub fn fetch_cluster_id<T: Into<Timeout>>(&self, timeout: T) -> Option<String> {
        let source = self.source.clone();
        let limit = timeout.into().or(NEVER);
        rt::block(async move {
            let fut = async {
                match &source {
                    Source::Producer(p) => p.fetch_metadata(None).await,
                    Source::Consumer(c) => c.fetch_metadata(None).await,
                    Source::Admin(a) => a.fetch_metadata(None).await,
                }
            };
            tokio::time::timeout(limit, fut)
                .await
                .ok()
                .and_then(|r| r.ok())
                .and_then(|m| m.cluster_id)
        })
    }

    /// The client's fatal error, if any (kafka-sdk reports fatal errors through the calls
    /// that hit them: always `None`).
    pub fn fatal_error(&self) -> Option<(RDKafkaErrorCode, String)> {
        None
    }
}
