//! `kafka-testkit`: real Apache Kafka brokers for kafka-sdk's tests.
//!
//! The kit runs KRaft brokers (1 or 3 combined broker+controller nodes) as local JVMs from
//! Kafka jars that Maven fetches once into a user cache, on free loopback ports, and gives
//! tests control over them (kill, pause, resume, restart), plus the Kafka CLI tools.
//! It is blocking and std-only, so it can be called from inside tokio tests (the probes use
//! `std::net::TcpStream` with timeouts).
//!
//! Where the cluster comes from:
//! 1. `KAFKA_BOOTSTRAP_SERVERS` set: that cluster is used and nothing is started;
//! 2. feature `testcontainers` on and a Docker engine answers: one container;
//! 3. otherwise local JVMs (needs `java` 17+, and `mvn` for the first fetch).
//!
//! No broker JVM outlives the test process: a small `sh` watchdog per cluster SIGKILLs them
//! (and removes the temp dir) once the process is gone, even if the cluster sits in a
//! `static` or the process aborts.
//!
//! ```no_run
//! use kafka_testkit::{ClusterOptions, KafkaCluster};
//! let cluster = KafkaCluster::start(ClusterOptions::default()).unwrap();
//! cluster.create_topic("t", 3, 1, &[]).unwrap();
//! assert_eq!(cluster.partition_leader("t", 0).unwrap(), Some(1));
//! ```
#![deny(unsafe_code)]
#![warn(missing_docs)]

mod cluster;
#[cfg(feature = "testcontainers")]
mod container;
mod error;
mod jars;
mod wire;

pub use cluster::{shared, ClusterOptions, KafkaCluster};
pub use error::{Result, TestkitError};
pub use jars::{
    cache_root, default_version, jars_dir, java_path, tool_class, tool_command,
    DEFAULT_KAFKA_VERSION, FALLBACK_KAFKA_VERSION, TOOLS,
};

/// Sends an ApiVersions (v0) request to `addr` and returns the number of API keys the broker
/// advertises. Handy as a raw liveness probe in tests.
pub fn probe_api_versions(addr: &str, timeout: std::time::Duration) -> Result<usize> {
    wire::api_versions(addr, timeout).map(|r| r.api_keys.len())
}
