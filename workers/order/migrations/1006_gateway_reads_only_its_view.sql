-- The gateway's read-only role reads what the gateway serves and nothing
-- else: the order_status view (an order, a list of orders, the long-poll's
-- status reads). Never the orders table, the inbox or the outbox. Stacks
-- set up before this granted it SELECT on every table of the schema (and,
-- by default privileges, on every table created later); both go here.
-- A view reads its tables with its owner's rights: the grant on the view
-- is all the gateway needs.
DO $$
BEGIN
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'chorus_gateway_ro') THEN
        REVOKE ALL ON ALL TABLES IN SCHEMA public FROM chorus_gateway_ro;
        REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM chorus_gateway_ro;
        ALTER DEFAULT PRIVILEGES IN SCHEMA public REVOKE ALL ON TABLES FROM chorus_gateway_ro;
        GRANT SELECT ON order_status TO chorus_gateway_ro;
    END IF;
END
$$;
