-- kafka-sdk-outbox: the outbox table. `{table}` is replaced by the table name.
CREATE TABLE IF NOT EXISTS {table} (
    -- Relay order: rows are published in id order within each lane (hash of aggregate_id).
    id            BIGSERIAL PRIMARY KEY,
    -- Sent as the `message-id` header; the inbox uses it to drop duplicates.
    message_id    UUID NOT NULL DEFAULT gen_random_uuid() UNIQUE,
    topic         TEXT NOT NULL,
    -- The record key: every event of one aggregate goes to one partition, in order.
    aggregate_id  TEXT NOT NULL,
    payload       BYTEA,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp(),
    -- Transactional relay only: the Kafka transaction (lane batch number) carrying the row.
    kafka_batch   BIGINT
);
-- Wakes the relays (LISTEN {table}) when a transaction that inserted rows commits.
CREATE OR REPLACE FUNCTION {table}_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('{table}', '');
    RETURN NULL;
END
$$;
DROP TRIGGER IF EXISTS {table}_notify ON {table};
CREATE TRIGGER {table}_notify AFTER INSERT ON {table}
    FOR EACH STATEMENT EXECUTE FUNCTION {table}_notify();
