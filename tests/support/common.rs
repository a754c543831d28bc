//! Helpers shared by the broker-backed test files (`support::common`, see `support/mod.rs`).
//! Not every file uses every helper.
#![allow(dead_code)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use kafka_sdk::admin::{AdminClient, NewTopic};
use kafka_sdk::consumer::Consumer;
use kafka_sdk::{ClientConfig, Offset, TopicPartition};

/// A name no other test (in this or another test process) uses: `prefix`, the process id,
/// a per-process counter and the clock.
pub fn unique(prefix: &str) -> String {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let n = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!(
        "{prefix}-{}-{}-{}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed),
        n % 1_000_000_000
    )
}

/// A client config for `bootstrap` with the `extra` keys set.
pub fn config(bootstrap: &str, extra: &[(&str, &str)]) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", bootstrap);
    for (k, v) in extra {
        c.set(*k, *v);
    }
    c
}

/// A consumer of the cluster at `bootstrap` (with the `extra` keys) assigned partition 0 of
/// `topic` from its first offset.
pub async fn reader_of_partition_0(
    bootstrap: &str,
    topic: &str,
    extra: &[(&str, &str)],
) -> Consumer {
    let c = Consumer::new(&config(bootstrap, extra)).await.unwrap();
    c.assign(vec![(TopicPartition::new(topic, 0), Offset::Beginning)])
        .unwrap();
    c
}

/// Creates `topic` (replication factor 1) on the cluster at `bootstrap`; panics on failure.
pub async fn create_topic(bootstrap: &str, topic: &str, partitions: i32) {
    let admin = AdminClient::new(&config(bootstrap, &[])).await.unwrap();
    admin
        .create_topic(NewTopic::new(topic, partitions, 1))
        .await
        .unwrap_or_else(|e| panic!("create topic {topic}: {e}"));
}

/// Runs blocking work (Java tools, process control) off the async runtime.
pub async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.expect("blocking task")
}

/// Sets dynamic configs `conf` (`key=value,...`) of entity `name` of `entity_type`
/// (`clients`, `groups`, `topics`, ...) with Kafka's `kafka-configs` tool; panics when the
/// tool fails.
pub async fn alter_configs(
    cluster: &'static kafka_testkit::KafkaCluster,
    entity_type: &str,
    name: &str,
    conf: &str,
) {
    let (entity_type, name, conf) = (entity_type.to_string(), name.to_string(), conf.to_string());
    let out = blocking(move || {
        let b = cluster.bootstrap();
        cluster.tool_output(
            "configs",
            &[
                "--bootstrap-server",
                &b,
                "--alter",
                "--entity-type",
                &entity_type,
                "--entity-name",
                &name,
                "--add-config",
                &conf,
            ],
        )
    })
    .await
    .expect("kafka-configs");
    assert!(
        out.status.success(),
        "kafka-configs: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Deletes the records of `topic`/`partition` before offset `before` (the log start moves
/// to `before`) with Kafka's `kafka-delete-records` tool; panics when the tool fails.
/// Blocking: call it through [`blocking`].
pub fn delete_records(
    cluster: &kafka_testkit::KafkaCluster,
    topic: &str,
    partition: i32,
    before: i64,
) {
    let path = std::env::temp_dir().join(format!("{}.json", unique("delete-records")));
    let json = format!(
        r#"{{"partitions":[{{"topic":"{topic}","partition":{partition},"offset":{before}}}],"version":1}}"#
    );
    std::fs::write(&path, json).expect("write offset json");
    let bootstrap = cluster.bootstrap();
    let out = cluster
        .tool_output(
            "delete-records",
            &[
                "--bootstrap-server",
                &bootstrap,
                "--offset-json-file",
                path.to_str().expect("utf-8 temp path"),
            ],
        )
        .expect("run kafka-delete-records");
    let _ = std::fs::remove_file(&path);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains(&format!("low_watermark: {before}")),
        "kafka-delete-records failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A tracing layer that keeps the fields (`{:?}`-formatted, by name) of every event of one
/// target, e.g. kafka-sdk's timing events.
#[derive(Clone)]
pub struct TargetEvents {
    target: &'static str,
    events: std::sync::Arc<std::sync::Mutex<Vec<std::collections::HashMap<String, String>>>>,
}

impl TargetEvents {
    /// Keeps the events of `target`.
    pub fn new(target: &'static str) -> TargetEvents {
        TargetEvents {
            target,
            events: Default::default(),
        }
    }

    /// Field `name` of a kept `event` as a number; panics (naming the event) when it is
    /// missing or not a number.
    pub fn num(event: &std::collections::HashMap<String, String>, name: &str) -> u64 {
        event
            .get(name)
            .unwrap_or_else(|| panic!("no {name} in {event:?}"))
            .parse()
            .unwrap_or_else(|e| panic!("{name} in {event:?}: {e}"))
    }

    /// The events kept so far, oldest first.
    pub fn events(&self) -> Vec<std::collections::HashMap<String, String>> {
        self.events.lock().unwrap().clone()
    }
}

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for TargetEvents {
    fn on_event(&self, e: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        if e.metadata().target() != self.target {
            return;
        }
        let mut fields = std::collections::HashMap::new();
        e.record(&mut |f: &tracing::field::Field, v: &dyn std::fmt::Debug| {
            fields.insert(f.name().to_string(), format!("{v:?}"));
        });
        self.events.lock().unwrap().push(fields);
    }
}
