-- Webhooks and e-mails are sent outside any transaction: a deliveries row is
-- first the intent (`pending`, leased to the process that sends it, with
-- what to send), then the result (`delivered`, or `failed` when the
-- receiver refused it for good). The log channel is written `delivered` at
-- once. Still one row per order, final state and channel.
ALTER TABLE deliveries
    ADD COLUMN status TEXT NOT NULL DEFAULT 'delivered'
        CHECK (status IN ('pending', 'delivered', 'failed')),
    ADD COLUMN error TEXT,
    -- the order's outcome as the channel tells it (JSON), kept for a resend
    ADD COLUMN outcome JSONB,
    -- the final-state event that asked: NotificationSent is caused by it
    ADD COLUMN cause_event_id TEXT,
    ADD COLUMN correlation_id TEXT,
    ADD COLUMN traceparent TEXT,
    ADD COLUMN lease_until TIMESTAMPTZ,
    ALTER COLUMN delivered_at DROP NOT NULL,
    ALTER COLUMN delivered_at DROP DEFAULT;

CREATE INDEX deliveries_pending ON deliveries (lease_until) WHERE status = 'pending';
