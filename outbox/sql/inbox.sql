-- kafka-sdk-outbox: the inbox tables. `{table}` is replaced by the table name.
CREATE TABLE IF NOT EXISTS {table} (
    -- The message id (the outbox's `message-id` header, or topic-partition-offset).
    message_id    TEXT PRIMARY KEY,
    topic         TEXT NOT NULL,
    kafka_partition INTEGER NOT NULL,
    kafka_offset  BIGINT NOT NULL,
    -- 'processed' or 'dead_letter'.
    status        TEXT NOT NULL,
    received_at   TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX IF NOT EXISTS {table}_received_at ON {table} (received_at);
-- Messages whose handler failed, with the error; their partition moved on.
CREATE TABLE IF NOT EXISTS {table}_dead_letter (
    id            BIGSERIAL PRIMARY KEY,
    message_id    TEXT NOT NULL,
    topic         TEXT NOT NULL,
    kafka_partition INTEGER NOT NULL,
    kafka_offset  BIGINT NOT NULL,
    key           BYTEA,
    payload       BYTEA,
    error         TEXT NOT NULL,
    failed_at     TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp()
);
