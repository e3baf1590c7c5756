-- The read model the gateway may query with its read-only role.
CREATE VIEW stock_levels AS
SELECT sku, name, available, reserved, sold, unit_price
FROM catalogue;

-- Databases made by tests may lack the role; the guard keeps migrations
-- working everywhere.
DO $$
BEGIN
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'chorus_gateway_ro') THEN
        GRANT SELECT ON stock_levels TO chorus_gateway_ro;
    END IF;
END
$$;
