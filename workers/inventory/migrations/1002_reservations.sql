-- One row per order the inventory has answered. Its existence makes a re-sent
-- OrderPlaced a no-op; its status makes a release or a sale happen once.
CREATE TABLE reservations (
    order_id   TEXT PRIMARY KEY,
    status     TEXT NOT NULL CHECK (status IN ('reserved', 'failed', 'released', 'sold')),
    -- [{"sku": "…", "quantity": 2, "unit_price": "19.99" | null}]
    lines      JSONB NOT NULL,
    -- why it failed or was released (out_of_stock, payment_declined, …)
    reason     TEXT,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
