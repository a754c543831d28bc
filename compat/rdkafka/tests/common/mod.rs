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
