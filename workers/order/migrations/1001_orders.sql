-- One row per order, created by whichever of its events arrives first.
-- The fact columns stay NULL until the event stating that fact arrives; the
-- status is derived from them (see src/rules.rs) and stays NULL until the
-- order itself (OrderPlaced) is known.
CREATE TABLE orders (
    order_id    TEXT PRIMARY KEY,

    -- placed (OrderPlaced)
    customer_id TEXT,
    currency    TEXT,
    items       JSONB,           -- [{"sku": "…", "quantity": 2}] as placed
    -- reserved (StockReserved)
    reserved_lines JSONB,        -- [{"sku": "…", "quantity": 2, "unit_price": "19.99"}]
    total       NUMERIC,
    -- reservation failed (StockReservationFailed)
    reservation_failed_reason TEXT,
    reservation_failed_skus   TEXT[],
    -- payment authorized (PaymentAuthorized)
    authorization_id  TEXT,
    authorized_amount NUMERIC,
    -- payment failed (PaymentFailed)
    payment_failed_reason TEXT,
    payment_failed_detail TEXT,

    -- derived
    status  TEXT CHECK (status IN ('PENDING', 'RESERVED', 'CONFIRMED', 'CANCELLED')),
    reason  TEXT,                -- why it was cancelled
    detail  TEXT,
    history JSONB NOT NULL DEFAULT '[]',  -- [{"status": "PENDING", "at": "…Z"}]

    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),

    CHECK ((customer_id IS NULL) = (status IS NULL))
);
