-- The sandbox payment provider's own books. It stands in for an external
-- provider, so it writes them on its own connection, never inside a worker's
-- transaction: a rolled-back handler does not un-charge the customer.

-- One charge per idempotency key (the order id), ever.
CREATE TABLE sandbox_charges (
    idempotency_key  TEXT PRIMARY KEY,
    amount           NUMERIC NOT NULL,
    currency         TEXT NOT NULL,
    authorization_id TEXT NOT NULL UNIQUE,
    created_at       TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Every call the sandbox received, answered or not.
CREATE TABLE sandbox_calls (
    id              BIGSERIAL PRIMARY KEY,
    idempotency_key TEXT NOT NULL,
    token           TEXT NOT NULL,
    at              TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX sandbox_calls_by_key ON sandbox_calls (idempotency_key);
