-- One row per order, ever: whether it was charged, and if not why. Its
-- existence is what stops a second charge for the same order.
CREATE TABLE payments (
    order_id         TEXT PRIMARY KEY,
    amount           NUMERIC NOT NULL CHECK (amount >= 0),
    currency         TEXT NOT NULL,
    status           TEXT NOT NULL CHECK (status IN ('authorized', 'declined', 'unavailable')),
    authorization_id TEXT,
    reason           TEXT,
    attempts         INT NOT NULL CHECK (attempts >= 1),
    created_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    CHECK ((status = 'authorized') = (authorization_id IS NOT NULL))
);
