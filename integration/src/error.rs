//! The kit's error type.

/// Everything that can go wrong while fetching jars, starting brokers or talking to them.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TestkitError {
    /// No `java` executable was found (neither `$JAVA_HOME/bin/java` nor on `PATH`).
    #[error(
        "java not found on PATH: install a Java 17+ runtime \
         (Debian: apt-get install -y openjdk-17-jre-headless)"
    )]
    JavaNotFound,
    /// No `mvn` executable was found on `PATH`; it is needed once to fetch the Kafka jars.
    #[error(
        "mvn not found on PATH: install Apache Maven to fetch the Kafka jars \
         (Debian: apt-get install -y maven)"
    )]
    MavenNotFound,
    /// Maven could not resolve or copy the Kafka jars.
    #[error("fetching the Kafka {version} jars with Maven failed: {detail}")]
    Fetch {
        /// The Kafka version that was requested.
        version: String,
        /// What Maven printed (last lines) or what was missing afterwards.
        detail: String,
    },
    /// The operation needs a locally started broker, but the cluster came from
    /// `KAFKA_BOOTSTRAP_SERVERS` (or a container).
    #[error("node control unavailable for an external cluster")]
    External,
    /// The node id is not part of this cluster.
    #[error("unknown node id {0}")]
    UnknownNode(i32),
    /// The node is not in the state the operation needs (e.g. resuming a node that is not paused).
    #[error("node {node}: {detail}")]
    NodeState {
        /// The node id.
        node: i32,
        /// What was wrong.
        detail: String,
    },
    /// A broker did not become ready, or exited, while starting. The message carries the
    /// log file path and its last lines.
    #[error("{0}")]
    Startup(String),
    /// The tool name is not one the kit knows.
    #[error("unknown tool {name:?}; known tools: {known}")]
    UnknownTool {
        /// The requested name.
        name: String,
        /// Comma-separated list of known tool names.
        known: String,
    },
    /// A Kafka request failed (connection, timeout, decoding or an error code).
    #[error("kafka request to {addr} failed: {detail}")]
    Protocol {
        /// The broker address the request was sent to (or a list of them).
        addr: String,
        /// What went wrong.
        detail: String,
    },
    /// Waiting for a condition ran out of time.
    #[error("timed out: {0}")]
    Timeout(String),
    /// An I/O error, with what the kit was doing.
    #[error("{context}: {source}")]
    Io {
        /// What the kit was doing.
        context: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// Security material or settings: generating certificates failed, or a secured-cluster
    /// helper was used on a cluster (or with a user) it does not apply to.
    #[error("security: {0}")]
    Security(String),
    /// The testcontainers backend failed or is unavailable.
    #[error("testcontainers: {0}")]
    Container(String),
}

/// Shorthand result type of the kit.
pub type Result<T> = std::result::Result<T, TestkitError>;

pub(crate) trait IoContext<T> {
    fn ctx(self, context: impl FnOnce() -> String) -> Result<T>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn ctx(self, context: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|source| TestkitError::Io {
            context: context(),
            source,
        })
    }
}
