-- The payment worker voids any authorization whose order it has not seen
-- confirmed within the order's deadline plus a grace period (a forged or
-- orphaned StockReserved never leaves a charge standing). It does so only
-- for partitions it has consumed to the end, so a lagging consumer never
-- voids a confirmed order's charge: every chorus topic has the same
-- partitions and keys, so an order's events share one partition number.
ALTER TABLE payments
    ADD COLUMN order_confirmed BOOLEAN NOT NULL DEFAULT false,
    ADD COLUMN kafka_partition INT;

CREATE INDEX payments_unconfirmed ON payments (created_at)
    WHERE status = 'authorized' AND NOT order_confirmed;
