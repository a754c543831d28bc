//! The outbox table: schema and the insert helper.

use tokio_postgres::Transaction;

use crate::{check_name, run_migration, Result};

const OUTBOX_SQL: &str = include_str!("../sql/outbox.sql");

/// An outbox table (default name `kafka_outbox`).
#[derive(Debug, Clone)]
pub struct Outbox {
    pub(crate) table: String,
}

/// One event to publish: the topic, the aggregate id (the record key, which keeps the
/// events of one aggregate in order on one partition) and the payload.
#[derive(Debug, Clone)]
pub struct OutboxEvent {
    topic: String,
    aggregate_id: String,
    payload: Option<Vec<u8>>,
}

impl OutboxEvent {
    /// An event for `topic` about aggregate `aggregate_id`, without payload.
    pub fn new(topic: impl Into<String>, aggregate_id: impl Into<String>) -> Self {
        OutboxEvent {
            topic: topic.into(),
            aggregate_id: aggregate_id.into(),
            payload: None,
        }
    }

    /// Sets the record value.
    pub fn payload(mut self, payload: impl Into<Vec<u8>>) -> Self {
        self.payload = Some(payload.into());
        self
    }
}

impl Default for Outbox {
    fn default() -> Self {
        Outbox {
            table: "kafka_outbox".to_string(),
        }
    }
}

impl Outbox {
    /// An outbox in table `table` (a plain lower-case identifier, else
    /// [`OutboxError::InvalidName`](crate::OutboxError::InvalidName)).
    pub fn new(table: &str) -> Result<Self> {
        check_name(table)?;
        Ok(Outbox {
            table: table.to_string(),
        })
    }

    /// The table name.
    pub fn table(&self) -> &str {
        &self.table
    }

    /// The migration SQL for this table (the script shipped with the crate, `sql/outbox.sql`).
    pub fn migration_sql(&self) -> String {
        OUTBOX_SQL.replace("{table}", &self.table)
    }

    /// Creates the table, its insert trigger (NOTIFY) and function if missing. Idempotent;
    /// concurrent calls are serialised.
    pub async fn migrate(&self, client: &mut tokio_postgres::Client) -> Result<()> {
        run_migration(client, &self.table, OUTBOX_SQL).await
    }

    /// Inserts `event` in the caller's open transaction and returns its message id. The row
    /// becomes visible to the relay when (and only if) the transaction commits.
    pub async fn insert(&self, tx: &Transaction<'_>, event: &OutboxEvent) -> Result<String> {
        if event.topic.is_empty() {
            return Err(crate::OutboxError::InvalidArgument(
                "outbox event with an empty topic".to_string(),
            ));
        }
        let row = tx
            .query_one(
                &format!(
                    "INSERT INTO {} (topic, aggregate_id, payload) VALUES ($1, $2, $3) \
                     RETURNING message_id::text",
                    self.table
                ),
                &[&event.topic, &event.aggregate_id, &event.payload],
            )
            .await?;
        Ok(row.get(0))
    }

    /// The number of rows not yet published (and deleted) by a relay.
    pub async fn pending(&self, client: &impl tokio_postgres::GenericClient) -> Result<i64> {
        let row = client
            .query_one(&format!("SELECT count(*) FROM {}", self.table), &[])
            .await?;
        Ok(row.get(0))
    }
}
