-- One row per order, final state and channel: the notification was delivered.
-- A row is inserted before sending and committed only with the delivery (and
-- its NotificationSent event), so a committed row means "delivered, skip".
CREATE TABLE deliveries (
    order_id     TEXT NOT NULL,
    final_status TEXT NOT NULL CHECK (final_status IN ('CONFIRMED', 'CANCELLED')),
    channel      TEXT NOT NULL CHECK (channel IN ('log', 'webhook', 'smtp')),
    -- Deterministic from the three columns above: a resend carries the same id.
    delivery_id  UUID NOT NULL UNIQUE,
    attempts     INT NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    delivered_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (order_id, final_status, channel)
);
