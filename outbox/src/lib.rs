//! # kafka-sdk-outbox
//!
//! The transactional **outbox** and the idempotent **inbox** for services that write to
//! PostgreSQL *and* Kafka, on top of [`kafka_sdk`] and [`tokio_postgres`].
//!
//! * [`Outbox`]: the service writes its business change and an outbox row in ONE database
//!   transaction ([`Outbox::insert`]); a [`Relay`] reads the rows in order, publishes them
//!   (idempotent producer, or one Kafka transaction per batch) with the row's message id in
//!   the [`MESSAGE_ID_HEADER`] header, and deletes them only after the broker acknowledged
//!   them. A committed row reaches Kafka at least once, in order per aggregate (the record
//!   key); a rolled-back row never does. With a transactional relay, `read_committed`
//!   consumers see each row exactly once, across relay crashes.
//! * [`Inbox`]: a consumer runs the handler inside a database transaction that first inserts
//!   the message id (an existing id is a duplicate, skipped), commits it, and only then
//!   stores and commits the Kafka offset. At-least-once delivery plus the inbox applies each
//!   message's effect exactly once. A failing handler sends the message to a dead-letter
//!   table and the partition moves on.
//!
//! ```no_run
//! use kafka_sdk_outbox::{Outbox, OutboxEvent, Relay, RelayConfig};
//! # async fn demo(db: &mut tokio_postgres::Client) -> Result<(), kafka_sdk_outbox::OutboxError> {
//! let outbox = Outbox::new("outbox")?;
//! outbox.migrate(db).await?;
//! let tx = db.transaction().await?;
//! tx.execute("INSERT INTO orders (id) VALUES ($1)", &[&"o-1"]).await?;
//! outbox.insert(&tx, &OutboxEvent::new("orders", "o-1").payload(b"created".to_vec())).await?;
//! tx.commit().await?;
//!
//! let kafka = kafka_sdk::ClientConfig::new().with("bootstrap.servers", "127.0.0.1:9092");
//! let relay = Relay::spawn(&outbox, RelayConfig::new("postgres://app@127.0.0.1/app", kafka));
//! // ... later
//! relay.shutdown().await?;
//! # Ok(()) }
//! ```
//!
//! The relay needs `gen_random_uuid()` (PostgreSQL 13+).
#![deny(unsafe_code)]
#![warn(missing_docs)]

mod inbox;
mod outbox;
mod relay;

pub use inbox::{HandlerError, Inbox, MessageIdSource, Outcome};
pub use outbox::{Outbox, OutboxEvent};
pub use relay::{Relay, RelayConfig, RelayHandle};

/// The header carrying the outbox row's message id (a UUID, as text). The inbox reads it by
/// default.
pub const MESSAGE_ID_HEADER: &str = "message-id";

/// What can go wrong in the outbox, the relay or the inbox.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OutboxError {
    /// A table name that is not a plain lower-case SQL identifier.
    #[error(
        "invalid table name {0:?}: use 1 to 48 characters a-z, 0-9 and _, starting with a letter or _"
    )]
    InvalidName(String),
    /// An argument or setting out of range.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// A database error (connection, SQL, constraint).
    #[error("database: {0}")]
    Database(#[from] tokio_postgres::Error),
    /// A Kafka client error.
    #[error("kafka: {0}")]
    Kafka(#[from] kafka_sdk::Error),
    /// The relay task ended abnormally (panicked or was cancelled).
    #[error("relay task: {0}")]
    Task(String),
}

/// Result with [`OutboxError`].
pub type Result<T, E = OutboxError> = std::result::Result<T, E>;

/// Checks that `name` can be pasted into SQL as an identifier (no quoting needed).
pub(crate) fn check_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 48
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && !name.starts_with(|c: char| c.is_ascii_digit());
    if ok {
        Ok(())
    } else {
        Err(OutboxError::InvalidName(name.to_string()))
    }
}

/// Runs a migration script (with `{table}` replaced) in one transaction, serialised against
/// concurrent runs by a transaction-level advisory lock.
pub(crate) async fn run_migration(
    client: &mut tokio_postgres::Client,
    table: &str,
    script: &str,
) -> Result<()> {
    let tx = client.transaction().await?;
    tx.execute(
        "SELECT pg_advisory_xact_lock($1::int8)",
        &[&i64::from(lock_class(table))],
    )
    .await?;
    tx.batch_execute(&script.replace("{table}", table)).await?;
    tx.commit().await?;
    Ok(())
}

/// A stable 31-bit number derived from a table name: the advisory lock class of its relays.
pub(crate) fn lock_class(table: &str) -> i32 {
    // FNV-1a, folded to a positive i32.
    let mut h: u32 = 0x811c_9dc5;
    for b in table.bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    (h & 0x3fff_ffff) as i32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked() {
        for good in ["outbox", "_x", "orders_outbox_2"] {
            assert!(check_name(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "Outbox",
            "2x",
            "a-b",
            "a;drop table x",
            "a b",
            &"x".repeat(49),
        ] {
            let e = check_name(bad).unwrap_err();
            assert!(e.to_string().contains("invalid table name"), "{e}");
        }
    }

    #[test]
    fn lock_class_is_stable_and_positive() {
        assert_eq!(lock_class("outbox"), lock_class("outbox"));
        assert_ne!(lock_class("outbox"), lock_class("outbox2"));
        assert!(lock_class("zzzz") >= 0);
    }
}
