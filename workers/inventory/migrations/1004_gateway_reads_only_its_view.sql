-- The gateway's read-only role reads what the gateway serves and nothing
-- else: the stock_levels view (an admin's stock reads). Never the
-- catalogue, the reservations, the inbox or the outbox. Stacks set up
-- before this granted it SELECT, by default privileges, on every table
-- created; that goes here. A view reads its tables with its owner's
-- rights: the grant on the view is all the gateway needs.
DO $$
BEGIN
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'chorus_gateway_ro') THEN
        REVOKE ALL ON ALL TABLES IN SCHEMA public FROM chorus_gateway_ro;
        REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM chorus_gateway_ro;
        ALTER DEFAULT PRIVILEGES IN SCHEMA public REVOKE ALL ON TABLES FROM chorus_gateway_ro;
        GRANT SELECT ON stock_levels TO chorus_gateway_ro;
    END IF;
END
$$;
