-- no-transaction
-- Idempotency keys expire: rows older than CHORUS_IDEMPOTENCY_WINDOW_HOURS
-- (24 h by default) are deleted oldest first, a small batch at a time, through
-- this index. Built CONCURRENTLY (hence outside a transaction) so that a
-- deploy onto a large table does not hold back POSTs while it builds.
CREATE INDEX CONCURRENTLY IF NOT EXISTS accepted_orders_created_at
    ON accepted_orders (created_at);
