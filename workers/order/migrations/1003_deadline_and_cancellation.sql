-- Every order ends: a deadline after its OrderPlaced (CHORUS_ORDER_DEADLINE_SECS)
-- cancels it with reason `timeout` if it is not final by then, and a customer
-- may ask to cancel it. Both are facts like the others.
ALTER TABLE orders
    -- when the order is due to be final (set with OrderPlaced)
    ADD COLUMN deadline_at TIMESTAMPTZ,
    -- the deadline passed before the order was final
    ADD COLUMN timed_out_at TIMESTAMPTZ,
    -- OrderCancellationRequested: who asked, and what became of the request
    ADD COLUMN cancellation_requested_by TEXT,
    ADD COLUMN cancellation TEXT CHECK (cancellation IN ('accepted', 'rejected')),
    -- the type of the last saga event applied to the order, and when (for
    -- operators: where a saga that does not end stands)
    ADD COLUMN last_event TEXT,
    ADD COLUMN last_event_at TIMESTAMPTZ;

-- The deadline scan claims due orders with FOR UPDATE SKIP LOCKED through this.
CREATE INDEX orders_due ON orders (deadline_at)
    WHERE status IN ('PENDING', 'RESERVED') AND timed_out_at IS NULL;

-- The read model gains, at the end (a contract with the gateway and the CLI):
-- what became of a cancellation request, when the order was created, when
-- its deadline falls, and the last saga event applied to it.
CREATE OR REPLACE VIEW order_status AS
SELECT
    o.order_id,
    o.customer_id,
    o.status,
    o.reason,
    o.currency,
    o.total,
    COALESCE((
        SELECT jsonb_agg(
                   jsonb_build_object(
                       'sku', item -> 'sku',
                       'quantity', item -> 'quantity',
                       'unit_price', (
                           SELECT line -> 'unit_price'
                           FROM jsonb_array_elements(o.reserved_lines) AS line
                           WHERE line ->> 'sku' = item ->> 'sku'
                           LIMIT 1
                       )
                   )
                   ORDER BY position
               )
        FROM jsonb_array_elements(o.items) WITH ORDINALITY AS placed (item, position)
    ), '[]'::jsonb) AS items,
    o.history,
    o.updated_at,
    o.cancellation,
    o.created_at,
    o.deadline_at,
    o.last_event,
    o.last_event_at
FROM orders AS o
WHERE o.customer_id IS NOT NULL;
