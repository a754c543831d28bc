//! # kafka-sdk-rdkafka
//!
//! rust-rdkafka 0.39's API on top of [kafka-sdk](kafka_sdk), a pure-Rust Kafka client: no
//! librdkafka, no C toolchain. A service switches with one line of its `Cargo.toml`:
//!
//! ```toml
//! rdkafka = { package = "kafka-sdk-rdkafka", version = "0.1" }
//! ```
//!
//! and keeps its `use rdkafka::...` code. The module tree mirrors rdkafka's
//! ([`config`], [`producer`], [`consumer`], [`message`], [`topic_partition_list`],
//! [`client`], [`error`], [`util`], [`admin`], [`metadata`], [`statistics`]); each type is a
//! thin layer over kafka-sdk's `Producer`, `Consumer` and `AdminClient`, built from the same
//! configuration keys (kafka-sdk knows librdkafka's names).
//!
//! ## Synchronous calls and the runtime
//!
//! kafka-sdk is async (tokio). This crate owns one process-wide tokio runtime on two threads
//! of its own (`kafka-sdk-rdkafka`), where every client and its background tasks live. A
//! synchronous call of rdkafka's API (`ClientConfig::create`, `BaseConsumer::poll`,
//! `commit` with `CommitMode::Sync`, `fetch_metadata`, `committed`, `flush`, the
//! transactional calls...) sends its work to that runtime and blocks the calling thread on a
//! channel until it is done: it never runs `block_on` inside the caller's runtime, so it
//! cannot deadlock it, whatever runtime (or none) the caller uses (`BaseConsumer::poll` waits
//! by parking the calling thread until kafka-sdk's fetcher wakes it). Called on a worker of a
//! multi-thread tokio runtime, it waits inside `tokio::task::block_in_place`, so that
//! runtime's other tasks move to other workers meanwhile; on a current-thread runtime the
//! runtime waits for the call, as it would with rdkafka. The async calls (`FutureProducer::send`,
//! `StreamConsumer::recv`, the admin calls) can be awaited from any executor, and
//! `StreamConsumer::recv` is cancel-safe. Context callbacks (rebalances, commits) run on
//! blocking threads of that runtime, so they may call the synchronous API. Queuing a record
//! (`BaseProducer::send`, `FutureProducer::send_result`) never blocks: it is appended on the
//! calling thread when kafka-sdk need not wait (metadata known, buffer memory free), else it
//! waits in an ordered lane that a task of that runtime completes.
//!
//! Differences from rdkafka (what is not supported, behaviour that differs) are listed in
//! MIGRATING_FROM_RDKAFKA.md at the root of kafka-sdk's repository.
#![deny(unsafe_code)]
#![warn(missing_docs)]

mod rt;

pub mod admin;
pub mod client;
pub mod config;
pub mod consumer;
pub mod error;
pub mod message;
pub mod metadata;
pub mod producer;
pub mod statistics;
pub mod topic_partition_list;
pub mod types;
pub mod util;

pub use crate::client::ClientContext;
pub use crate::config::ClientConfig;
pub use crate::message::{Message, Timestamp};
pub use crate::statistics::Statistics;
pub use crate::topic_partition_list::{Offset, TopicPartitionList};
pub use crate::util::IntoOpaque;

#[cfg(test)]
mod tests {
    use super::*;

    fn send_sync<T: Send + Sync>() {}
    fn send<T: Send>(_: &T) {}

    /// Services share clients across tasks and spawn their futures, as with rdkafka.
    /// Compiled, never run: the async calls' futures are `Send` (spawnable).
    #[allow(dead_code)]
    fn futures_are_send(p: &producer::FutureProducer, c: &consumer::StreamConsumer) {
        send(&p.send(
            producer::FutureRecord::<str, str>::to("t"),
            util::Timeout::Never,
        ));
        send(&c.recv());
    }

    #[test]
    fn clients_are_send_and_sync() {
        send_sync::<producer::FutureProducer>();
        send_sync::<producer::BaseProducer>();
        send_sync::<producer::ThreadedProducer<producer::DefaultProducerContext>>();
        send_sync::<consumer::StreamConsumer>();
        send_sync::<consumer::BaseConsumer>();
        send_sync::<admin::AdminClient>();
        send_sync::<TopicPartitionList>();
        send_sync::<error::KafkaError>();
    }
}
