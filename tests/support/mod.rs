//! Test support shared by the integration test files. Each test file is its own crate and
//! pulls this folder in with `mod support;` (the "submodules in integration tests"
//! convention: a folder with a `mod.rs` is not compiled as a test crate of its own). Not
//! every test file uses every module or helper; each module allows dead code for that.
//!
//! - [`common`]: names, configs, topic creation, blocking work (broker-backed tests).
//! - [`raw`]: raw Fetch reads of a partition's batches through the cluster layer.
//! - [`mock_producer`]: an idempotent producer and a send burst against the mock broker.
//! - [`mock_broker`]: the in-process mock broker (also included by `benches/producer_path.rs`
//!   with a `#[path]` attribute, since a bench cannot declare `mod support;`).

pub mod common;
pub mod mock_broker;
pub mod mock_producer;
pub mod raw;
