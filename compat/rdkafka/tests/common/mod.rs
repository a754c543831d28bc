//! Helpers shared by the drop-in's broker-backed tests.

use std::time::{SystemTime, UNIX_EPOCH};

/// The test kit's shared broker (started on first use).
#[allow(dead_code)] // not every test file uses both helpers
pub fn bootstrap() -> String {
    kafka_testkit::shared().bootstrap()
}

/// A name no other run uses: `prefix`, the process id and the clock's nanoseconds.
#[allow(dead_code)]
pub fn unique(prefix: &str) -> String {
    let n = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{prefix}-{}-{}", std::process::id(), n % 1_000_000_000_000)
}

/// Creates `topic` on the shared broker (replication factor 1) with the topic configs
/// `configs`, through kafka-sdk's native admin client; panics on failure.
#[allow(dead_code)]
pub async fn create_topic(topic: &str, partitions: i32, configs: &[(&str, &str)]) {
    let admin = kafka_sdk::AdminClient::new(
        &kafka_sdk::ClientConfig::new().with("bootstrap.servers", bootstrap()),
    )
    .await
    .expect("admin client");
    let mut t = kafka_sdk::admin::NewTopic::new(topic, partitions, 1);
    for (k, v) in configs {
        t = t.config(*k, *v);
    }
    admin.create_topic(t).await.expect("create topic");
}
