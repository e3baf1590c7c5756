-- Inbox rows are pruned by age (CHORUS_INBOX_RETENTION_HOURS), oldest first.
CREATE INDEX IF NOT EXISTS inbox_processed_at ON inbox (processed_at);
-- The age of the oldest unsent outbox row is a metric (chorus_outbox_oldest_seconds).
CREATE INDEX IF NOT EXISTS outbox_unsent_created ON outbox (created_at) WHERE sent_at IS NULL;
-- The relay leases the stale rows it republishes, so it never holds a
-- transaction open across a Kafka round trip and two relays do not send the
-- same rows at once.
ALTER TABLE outbox ADD COLUMN IF NOT EXISTS relayed_at TIMESTAMPTZ;
