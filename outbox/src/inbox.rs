//! The inbox: exactly-once effects from at-least-once delivery.
//!
//! Per message, in ONE database transaction: insert the message id into the inbox table (an
//! id already there is a duplicate: skipped), run the handler, commit. Only then is the
//! message's offset stored and (periodically, asynchronously) committed to Kafka. A crash
//! anywhere re-delivers the message; its id is then either absent (the transaction never
//! committed: processed again, first time for the database) or present (skipped). Two
//! consumers holding the same message at once (during a rebalance) serialise on the
//! id's primary key: the second waits for the first's transaction, then sees a conflict.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use kafka_sdk::{CommitMode, Consumer, Message};
use tokio_postgres::{Client, Transaction};

use crate::{check_name, run_migration, Result, MESSAGE_ID_HEADER};

const INBOX_SQL: &str = include_str!("../sql/inbox.sql");

/// The error a handler returns: the message goes to the dead-letter table with its text.
pub type HandlerError = Box<dyn std::error::Error + Send + Sync>;

/// Where the inbox takes a message's id from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MessageIdSource {
    /// The value of this header (UTF-8), or `topic-partition-offset` when the header is
    /// missing. The default, with [`MESSAGE_ID_HEADER`], which the outbox relay sets.
    Header(String),
    /// `topic-partition-offset`: dedupes redeliveries of one record, not a producer's
    /// retries or a relay's re-publication (those are new records).
    TopicPartitionOffset,
}

impl Default for MessageIdSource {
    fn default() -> Self {
        MessageIdSource::Header(MESSAGE_ID_HEADER.to_string())
    }
}

/// What happened to one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The handler ran and its transaction committed.
    Processed,
    /// The id was already in the inbox: skipped.
    Duplicate,
    /// The handler failed; the message is in the dead-letter table with this error.
    DeadLettered(String),
}

/// Called after a message's database transaction committed and before its offset is
/// stored (metrics, tests).
pub type CommitHook = Arc<dyn Fn(&Message, &Outcome) + Send + Sync>;

/// An inbox table (default `kafka_inbox`) and its dead-letter table (`<table>_dead_letter`).
#[derive(Clone)]
pub struct Inbox {
    table: String,
    id_source: MessageIdSource,
    batch: usize,
    after_commit: Option<CommitHook>,
}

impl std::fmt::Debug for Inbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inbox")
            .field("table", &self.table)
            .field("id_source", &self.id_source)
            .field("batch", &self.batch)
            .finish_non_exhaustive()
    }
}

impl Default for Inbox {
    fn default() -> Self {
        Inbox {
            table: "kafka_inbox".to_string(),
            id_source: MessageIdSource::default(),
            batch: 100,
            after_commit: None,
        }
    }
}

impl Inbox {
    /// An inbox in table `table` (a plain lower-case identifier, else
    /// [`OutboxError::InvalidName`](crate::OutboxError::InvalidName)).
    pub fn new(table: &str) -> Result<Self> {
        check_name(table)?;
        Ok(Inbox {
            table: table.to_string(),
            ..Default::default()
        })
    }

    /// Where message ids come from (default: the [`MESSAGE_ID_HEADER`] header).
    pub fn id_source(mut self, source: MessageIdSource) -> Self {
        self.id_source = source;
        self
    }

    /// Messages read per `recv_batch` in [`Inbox::run`] (default 100, at least 1).
    pub fn batch_size(mut self, n: usize) -> Self {
        self.batch = n.max(1);
        self
    }

    /// A hook called after each message's database commit, before its offset is stored.
    pub fn after_commit(mut self, hook: CommitHook) -> Self {
        self.after_commit = Some(hook);
        self
    }

    /// The table name (the dead-letter table is `<table>_dead_letter`).
    pub fn table(&self) -> &str {
        &self.table
    }

    /// The migration SQL for this inbox (the script shipped with the crate, `sql/inbox.sql`).
    pub fn migration_sql(&self) -> String {
        INBOX_SQL.replace("{table}", &self.table)
    }

    /// Creates the inbox and dead-letter tables if missing. Idempotent.
    pub async fn migrate(&self, client: &mut Client) -> Result<()> {
        run_migration(client, &self.table, INBOX_SQL).await
    }

    /// The id of `msg` under this inbox's [`MessageIdSource`].
    pub fn message_id(&self, msg: &Message) -> String {
        if let MessageIdSource::Header(h) = &self.id_source {
            if let Some(Some(v)) = msg.header(h) {
                if let Ok(s) = std::str::from_utf8(v) {
                    return s.to_string();
                }
            }
        }
        format!("{}-{}-{}", msg.topic(), msg.partition(), msg.offset())
    }

    /// Processes one message: duplicate check, `handler` and commit in one database
    /// transaction; a handler error rolls that back and records the message as dead-lettered
    /// (inbox row with status `dead_letter` and a row in the dead-letter table), in a second
    /// transaction. Database errors are returned (nothing committed for this message).
    pub async fn process<H>(
        &self,
        client: &mut Client,
        msg: &Message,
        handler: &mut H,
    ) -> Result<Outcome>
    where
        H: AsyncFnMut(&Transaction<'_>, &Message) -> std::result::Result<(), HandlerError>,
    {
        let id = self.message_id(msg);
        let tx = client.transaction().await?;
        let fresh = tx
            .execute(
                &format!(
                    "INSERT INTO {} (message_id, topic, kafka_partition, kafka_offset, status) \
                     VALUES ($1, $2, $3, $4, 'processed') ON CONFLICT (message_id) DO NOTHING",
                    self.table
                ),
                &[&id, &msg.topic(), &msg.partition(), &msg.offset()],
            )
            .await?;
        if fresh == 0 {
            tx.rollback().await?;
            tracing::debug!(message_id = %id, "inbox: duplicate skipped");
            return Ok(Outcome::Duplicate);
        }
        let error = match handler(&tx, msg).await {
            Ok(()) => {
                tx.commit().await?;
                return Ok(Outcome::Processed);
            }
            Err(e) => e.to_string(),
        };
        tx.rollback().await?;
        tracing::warn!(message_id = %id, topic = msg.topic(), partition = msg.partition(), offset = msg.offset(), error = %error, "inbox: handler failed; message dead-lettered");
        let tx = client.transaction().await?;
        let fresh = tx
            .execute(
                &format!(
                    "INSERT INTO {} (message_id, topic, kafka_partition, kafka_offset, status) \
                     VALUES ($1, $2, $3, $4, 'dead_letter') ON CONFLICT (message_id) DO NOTHING",
                    self.table
                ),
                &[&id, &msg.topic(), &msg.partition(), &msg.offset()],
            )
            .await?;
        if fresh == 0 {
            // Another consumer finished this message meanwhile.
            tx.rollback().await?;
            return Ok(Outcome::Duplicate);
        }
        tx.execute(
            &format!(
                "INSERT INTO {}_dead_letter (message_id, topic, kafka_partition, kafka_offset, \
                 key, payload, error) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                self.table
            ),
            &[
                &id,
                &msg.topic(),
                &msg.partition(),
                &msg.offset(),
                &msg.key().map(|k| k.as_ref()),
                &msg.payload(),
                &error,
            ],
        )
        .await?;
        tx.commit().await?;
        Ok(Outcome::DeadLettered(error))
    }

    /// The consume loop: reads batches from `consumer` (subscribed by the caller, with
    /// `enable.auto.commit=false`), [`process`](Inbox::process)es each message, stores its
    /// offset once the database committed, and commits the stored offsets after each batch
    /// (asynchronously; synchronously when `shutdown` completes, which ends the loop).
    /// Returns on shutdown, or with the first database or Kafka error (the offsets of the
    /// messages processed so far are committed first, when possible).
    pub async fn run<H>(
        &self,
        client: &mut Client,
        consumer: &Consumer,
        mut handler: H,
        shutdown: impl Future<Output = ()>,
    ) -> Result<()>
    where
        H: AsyncFnMut(&Transaction<'_>, &Message) -> std::result::Result<(), HandlerError>,
    {
        tokio::pin!(shutdown);
        let result = loop {
            let batch = tokio::select! {
                _ = &mut shutdown => break Ok(()),
                b = consumer.recv_batch(self.batch, Duration::from_millis(500)) => b,
            };
            let batch = match batch {
                Ok(b) => b,
                Err(e) => break Err(e.into()),
            };
            let mut failed = None;
            for m in &batch {
                match self.process(client, m, &mut handler).await {
                    Ok(outcome) => {
                        if let Some(hook) = &self.after_commit {
                            hook(m, &outcome);
                        }
                        // Not assigned any more (revoked meanwhile): the new owner reads it
                        // again and finds it in the inbox.
                        let _ = consumer.store_offset_from_message(m);
                    }
                    Err(e) => {
                        failed = Some(e);
                        break;
                    }
                }
            }
            if let Some(e) = failed {
                break Err(e);
            }
            if !batch.is_empty() {
                if let Err(e) = consumer.commit_stored(CommitMode::Async).await {
                    tracing::debug!(error = %e, "inbox: async offset commit failed; the next one covers it");
                }
            }
        };
        if let Err(e) = consumer.commit_stored(CommitMode::Sync).await {
            tracing::debug!(error = %e, "inbox: final offset commit failed");
        }
        result
    }

    /// Retention: deletes inbox rows received more than `age` ago and returns how many.
    /// Keep `age` well above the longest time a message can be re-delivered (offset commit
    /// interval, rebalance, the producer's or relay's retries), or old duplicates pass.
    pub async fn purge_older_than(&self, client: &Client, age: Duration) -> Result<u64> {
        let secs = age.as_secs_f64();
        let n = client
            .execute(
                &format!(
                    "DELETE FROM {} WHERE received_at < clock_timestamp() - make_interval(secs => $1)",
                    self.table
                ),
                &[&secs],
            )
            .await?;
        Ok(n)
    }

    /// The dead-letter rows: (message id, error), oldest first.
    pub async fn dead_letters(&self, client: &Client) -> Result<Vec<(String, String)>> {
        let rows = client
            .query(
                &format!(
                    "SELECT message_id, error FROM {}_dead_letter ORDER BY id",
                    self.table
                ),
                &[],
            )
            .await?;
        Ok(rows.into_iter().map(|r| (r.get(0), r.get(1))).collect())
    }
}
