//! # kafka-sdk
//!
//! A pure-Rust, async (tokio) client for Apache Kafka: a [`Producer`] (batching, compression,
//! idempotence, transactions), a [`Consumer`] (fetching, offsets, consumer groups with
//! rebalance listeners), a [`ShareConsumer`] (KIP-932 share groups: records acquired and
//! acknowledged one by one) and an [`AdminClient`].
//!
//! Every client is built the same way: `X::new(&config).await` from a [`ClientConfig`] (the
//! string keys of the Java client and librdkafka), or `X::builder(&config)` for the extras
//! (a custom partitioner, a rebalance listener, an operation timeout) and then `.build().await`.
//!
//! ```no_run
//! use kafka_sdk::{ClientConfig, CommitMode, Consumer, Producer, ProducerRecord};
//!
//! # async fn demo() -> kafka_sdk::Result<()> {
//! let mut config = ClientConfig::new();
//! config.set("bootstrap.servers", "127.0.0.1:9092").set("group.id", "demo");
//!
//! let producer = Producer::new(&config).await?;
//! let delivery = producer.send(ProducerRecord::new("events").key("k").value("v")).await?;
//! let meta = delivery.await?; // acknowledged by the broker
//! println!("written at {}/{}", meta.partition, meta.offset);
//!
//! let consumer = Consumer::new(&config).await?;
//! consumer.subscribe(&["events"])?;
//! let message = consumer.recv().await?;
//! println!("read {:?}", message.value());
//! consumer.commit(CommitMode::Sync).await?;
//! # Ok(()) }
//! ```
//!
//! Layers, each depending only on the ones below (see DESIGN.md): protocol glue and record
//! batches (no I/O); connections (one task owns a socket); the cluster (metadata, broker pool,
//! coordinators, retries); the clients ([`producer`], [`consumer`], [`admin`]). Only the
//! clients and their types are public API. The layers below are internal; the
//! `unstable-internals` feature exposes them, without semver guarantees, for fuzzing and
//! benchmarks.
// One exception, measured and commented: `connection::transport::set_rcvlowat`.
#![deny(unsafe_code)]
#![warn(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

/// Declares internal layers: `pub` (hidden from docs, no semver promise) with the
/// `unstable-internals` feature, crate-private otherwise.
macro_rules! internal_modules {
    ($($(#[$meta:meta])* $name:ident;)*) => {$(
        $(#[$meta])*
        #[cfg(feature = "unstable-internals")]
        #[doc(hidden)]
        pub mod $name;
        $(#[$meta])*
        #[cfg(not(feature = "unstable-internals"))]
        // Items kept for the unstable API (fuzz targets, benches, tests) are unused here.
        #[allow(dead_code, unused_imports)]
        pub(crate) mod $name;
    )*};
}

internal_modules! {
    /// Exponential backoff with jitter, deadlines.
    backoff;
    /// Metadata snapshot, broker pool, coordinators, the retry loop.
    cluster;
    /// One task owns one socket; pipelined requests.
    connection;
    /// kafka-protocol glue: versions, framing, request/response encoding.
    protocol;
    /// Record batch v2 codec and compression codecs.
    record;
}

pub mod admin;
pub mod config;
pub mod consumer;
pub mod error;
pub mod events;
pub mod metadata;
mod observe;
pub mod producer;
pub mod share;
pub mod stats;
mod types;

pub use admin::{AdminClient, AdminClientBuilder, NewTopic};
pub use config::ClientConfig;
pub use consumer::{
    CommitMode, Consumer, ConsumerHandle, Header, Message, Offset, RebalanceListener, TimestampType,
};
pub use error::{ConfigError, Error, KafkaCode, Result};
pub use metadata::{BrokerMetadata, Metadata, PartitionMetadata, TopicMetadata};
pub use producer::{DeliveryFuture, Partitioner, Producer, ProducerRecord, RecordMetadata};
pub use share::{AcknowledgeType, ShareConsumer, ShareConsumerBuilder, ShareRecord};
pub use types::{validate_topic_name, ConsumerGroupMetadata, TopicPartition};
