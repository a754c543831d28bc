//! `kafka-testkit`: real Apache Kafka brokers for the tests of kafka-sdk and of the services
//! built on it (or on any Kafka client).
//!
//! The kit runs KRaft brokers (1 or 3 combined broker+controller nodes) as local JVMs from
//! Kafka jars that Maven fetches once into a user cache, on free loopback ports, and gives
//! tests control over them (kill, pause, resume, restart), plus the Kafka CLI tools. With
//! [`ClusterOptions::proxied`] clients reach each broker through a fault-injecting [`Proxy`]
//! ([`KafkaCluster::net_fault`]: latency, bandwidth limit, reset, black hole, heal).
//! It is blocking and std-only, so it can be called from inside tokio tests (the probes use
//! `std::net::TcpStream` with timeouts).
//!
//! [`ClusterOptions::security`] secures the client listener (SSL, mTLS, SASL_PLAINTEXT or
//! SASL_SSL with PLAIN, SCRAM-SHA-256/512 and unsecured OAUTHBEARER) with a test PKI made by
//! `rcgen`, the users `admin` (super), `alice` and `bob`, and the `StandardAuthorizer`; see
//! [`KafkaCluster::client_config`], [`KafkaCluster::java_client_properties`] and
//! [`KafkaCluster::add_acls`].
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
//!
//! # Using it in a service's own tests
//!
//! Add it as a dev-dependency (Unix only; it manages broker processes with signals):
//!
//! ```toml
//! [dev-dependencies]
//! kafka-testkit = "0.1"
//! # or, to prefer one Docker container when a Docker engine answers:
//! # kafka-testkit = { version = "0.1", features = ["testcontainers"] }
//! ```
//!
//! then start a cluster in the test and point the code under test at its bootstrap string:
//!
//! ```no_run
//! # fn connect_my_service(_bootstrap: &str) {}
//! #[test]
//! fn orders_are_published() {
//!     // One single-node cluster shared by every test of this test binary.
//!     let cluster = kafka_testkit::shared();
//!     cluster.create_topic("orders", 3, 1, &[]).unwrap();
//!     connect_my_service(&cluster.bootstrap());
//!     // ... produce / consume through the service, assert on what arrives ...
//! }
//! ```
//!
//! The machine running the tests needs Java 17+, and Maven for the first run, which fetches
//! the Kafka jars into the user cache (`KAFKA_TESTKIT_CACHE_DIR`, default
//! `~/.cache/kafka-sdk`). CI can fetch them ahead of the tests with the bundled command line
//! (`cargo install kafka-testkit`, then `kafka-testkit fetch-jars`), or skip the local brokers
//! altogether by setting `KAFKA_BOOTSTRAP_SERVERS` to an existing cluster.
#![deny(unsafe_code)]
#![warn(missing_docs)]

mod cluster;
#[cfg(feature = "testcontainers")]
mod container;
mod error;
mod jars;
mod postgres;
mod proxy;
mod security;
mod wire;

pub use cluster::{shared, shared_secured, ClusterOptions, KafkaCluster, KAFKA_SCRIPT_JVM_OPTS};
pub use error::{Result, TestkitError};
pub use jars::{
    cache_root, default_version, jars_dir, java_path, tool_class, tool_command,
    DEFAULT_KAFKA_VERSION, FALLBACK_KAFKA_VERSION, TOOLS,
};
pub use postgres::{postgres_bin_dir, PostgresServer, POSTGRES_USER};
pub use proxy::{NetFault, Proxy};
pub use security::{
    java_jaas_config, Acl, AclOperation, AclResource, BadTls, SaslMechanism, Security, TlsFiles,
    User, CLIENT_KEY_PASSWORD, SUPER_USER, USER_NAMES, WRONG_HOST_NAME,
};

/// Sends an ApiVersions (v0) request to `addr` and returns the number of API keys the broker
/// advertises. Handy as a raw liveness probe in tests.
pub fn probe_api_versions(addr: &str, timeout: std::time::Duration) -> Result<usize> {
    wire::api_versions(addr, timeout).map(|r| r.api_keys.len())
}

/// The lines `kafka-testkit up` prints after `BOOTSTRAP=` for a secured cluster:
/// `CA=<path>` (TLS), then `USER=<mechanism>:<name>:<password>` for each user (super user
/// first) and each password mechanism (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512; SASL only).
/// OAUTHBEARER has no credentials to print: any unsecured token is accepted and its `sub`
/// is the principal. With [`ClusterOptions::bad_tls_listeners`], last come
/// `EXPIRED_TLS=<addrs>` and `WRONG_HOST_TLS=<addrs>` ([`KafkaCluster::bad_tls_addr`]).
/// Empty for a plaintext cluster.
pub fn security_lines(cluster: &KafkaCluster) -> Vec<String> {
    let mut lines = Vec::new();
    if let Some(ca) = cluster.ca_path() {
        lines.push(format!("CA={}", ca.display()));
    }
    if cluster.security().sasl() {
        for u in cluster.users() {
            for m in SaslMechanism::ALL {
                if m != SaslMechanism::OAuthBearer {
                    lines.push(format!("USER={}:{}:{}", m.name(), u.name, u.password));
                }
            }
        }
    }
    for (key, which) in [
        ("EXPIRED_TLS", BadTls::Expired),
        ("WRONG_HOST_TLS", BadTls::WrongHost),
    ] {
        let addrs: Option<Vec<String>> = cluster
            .node_ids()
            .into_iter()
            .map(|n| cluster.bad_tls_addr(n, which).ok())
            .collect();
        if let Some(addrs) = addrs.filter(|a| !a.is_empty()) {
            lines.push(format!("{key}={}", addrs.join(",")));
        }
    }
    lines
}
