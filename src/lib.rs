//! # kafka-sdk
//!
//! A pure-Rust, async (tokio) client for Apache Kafka.
//!
//! Layers, each depending only on the ones below (see DESIGN.md):
//! - [`protocol`] and [`record`]: kafka-protocol glue, framing, record batches, compression (no I/O);
//! - [`connection`]: one task owns one socket, pipelined requests;
//! - [`cluster`]: metadata, broker pool, coordinators, backoff with deadlines;
//! - [`admin`] (and later the producer and consumer): the user-facing clients.
//!
//! [`config`] and [`error`] are used by every layer.
#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod admin;
pub mod backoff;
pub mod cluster;
pub mod config;
pub mod connection;
pub mod consumer;
pub mod error;
pub mod producer;
pub mod protocol;
pub mod record;
pub mod types;

pub use config::ClientConfig;
pub use error::{ConfigError, Error, ErrorAction, KafkaCode, Result, TxnAction};
pub use types::{validate_topic_name, TopicPartition};
