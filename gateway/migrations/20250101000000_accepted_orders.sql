-- Orders the gateway has accepted, keyed by the client's idempotency key
-- within the customer (JWT subject). A row is written before OrderPlaced is
-- produced and marked published after Kafka acknowledged it, so a retry with
-- the same key after a Kafka failure publishes the very same order again.
CREATE TABLE accepted_orders (
    customer_id     TEXT        NOT NULL,
    idempotency_key TEXT        NOT NULL,
    -- SHA-256 (hex) of the validated request; the same key with another body is refused.
    request_hash    TEXT        NOT NULL,
    order_id        UUID        NOT NULL UNIQUE,
    -- [{"sku": "SKU-1", "quantity": 2}, …]
    items           JSONB       NOT NULL,
    currency        TEXT        NOT NULL,
    published       BOOLEAN     NOT NULL DEFAULT FALSE,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (customer_id, idempotency_key)
);

-- Finds orders accepted but never acknowledged by Kafka (ops, a future relay).
CREATE INDEX accepted_orders_unpublished ON accepted_orders (created_at) WHERE NOT published;
