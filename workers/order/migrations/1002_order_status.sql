-- The read model the gateway queries with its read-only role: only orders
-- whose OrderPlaced is known, items priced once the stock is reserved.
-- Column names and JSON shapes are a contract with the gateway.
CREATE VIEW order_status AS
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
    o.updated_at
FROM orders AS o
WHERE o.customer_id IS NOT NULL;

-- Databases made by tests may lack the role; the guard keeps migrations
-- working everywhere.
DO $$
BEGIN
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'chorus_gateway_ro') THEN
        GRANT SELECT ON order_status TO chorus_gateway_ro;
    END IF;
END
$$;
