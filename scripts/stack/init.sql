-- Roles and databases of the chorus stack. Idempotent: safe to run again.
-- Run as a superuser with psql (it uses \gexec and \connect):
--   native:  scripts/stack.sh up runs it on every start
--   docker:  compose/postgres-init/10-chorus.sh runs it on the first start
\set ON_ERROR_STOP on

-- Admin role for tests and tools: creates its own databases and roles.
DO $$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'chorus') THEN
    CREATE ROLE chorus LOGIN CREATEDB CREATEROLE PASSWORD 'chorus';
  END IF;
END
$$;

-- One login role and one database per service, the password equal to the
-- role name (a local test box; never reuse these anywhere else).
DO $$
DECLARE
  svc text;
BEGIN
  FOREACH svc IN ARRAY ARRAY['chorus_order', 'chorus_inventory', 'chorus_payment', 'chorus_notification', 'chorus_gateway', 'chorus_gateway_ro']
  LOOP
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = svc) THEN
      EXECUTE format('CREATE ROLE %I LOGIN PASSWORD %L', svc, svc);
    END IF;
  END LOOP;
END
$$;

-- CREATE DATABASE cannot run inside a DO block: generate it and \gexec.
SELECT format('CREATE DATABASE %I OWNER %I', d, d)
FROM unnest(ARRAY['chorus_order', 'chorus_inventory', 'chorus_payment', 'chorus_notification', 'chorus_gateway']) AS d
WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = d)
\gexec

-- Only the owning role (and the admin) may connect to a service database.
REVOKE CONNECT, TEMPORARY ON DATABASE chorus_order, chorus_inventory, chorus_payment, chorus_notification, chorus_gateway FROM PUBLIC;
GRANT CONNECT, TEMPORARY ON DATABASE chorus_order TO chorus_order;
GRANT CONNECT, TEMPORARY ON DATABASE chorus_inventory TO chorus_inventory;
GRANT CONNECT, TEMPORARY ON DATABASE chorus_payment TO chorus_payment;
GRANT CONNECT, TEMPORARY ON DATABASE chorus_notification TO chorus_notification;
GRANT CONNECT, TEMPORARY ON DATABASE chorus_gateway TO chorus_gateway;
GRANT CONNECT ON DATABASE chorus_order, chorus_inventory, chorus_payment, chorus_notification, chorus_gateway TO chorus;

-- The gateway reads the order service's read model and the inventory
-- service's stock levels (views those services create and grant it SELECT
-- on, in their migrations), nothing else: no table, no outbox.
GRANT CONNECT ON DATABASE chorus_order, chorus_inventory TO chorus_gateway_ro;

\connect chorus_order
-- Since PostgreSQL 15 only the database owner may create in schema public;
-- make that explicit for older servers too.
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
GRANT USAGE, CREATE ON SCHEMA public TO chorus_order;
GRANT USAGE ON SCHEMA public TO chorus_gateway_ro;
-- Stacks set up before granted it every table, now and to come: both are
-- taken back on every start (as by the order service's migration 1006), in
-- one transaction with the grant of the view, so a running gateway never
-- finds it missing.
ALTER DEFAULT PRIVILEGES FOR ROLE chorus_order IN SCHEMA public
  REVOKE ALL ON TABLES FROM chorus_gateway_ro;
DO $$
BEGIN
  REVOKE ALL ON ALL TABLES IN SCHEMA public FROM chorus_gateway_ro;
  IF to_regclass('public.order_status') IS NOT NULL THEN
    GRANT SELECT ON order_status TO chorus_gateway_ro;
  END IF;
END
$$;

\connect chorus_inventory
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
GRANT USAGE, CREATE ON SCHEMA public TO chorus_inventory;
GRANT USAGE ON SCHEMA public TO chorus_gateway_ro;
ALTER DEFAULT PRIVILEGES FOR ROLE chorus_inventory IN SCHEMA public
  REVOKE ALL ON TABLES FROM chorus_gateway_ro;
DO $$
BEGIN
  REVOKE ALL ON ALL TABLES IN SCHEMA public FROM chorus_gateway_ro;
  IF to_regclass('public.stock_levels') IS NOT NULL THEN
    GRANT SELECT ON stock_levels TO chorus_gateway_ro;
  END IF;
END
$$;

\connect chorus_payment
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
GRANT USAGE, CREATE ON SCHEMA public TO chorus_payment;

\connect chorus_notification
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
GRANT USAGE, CREATE ON SCHEMA public TO chorus_notification;

\connect chorus_gateway
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
GRANT USAGE, CREATE ON SCHEMA public TO chorus_gateway;

-- Statements executed per database, for `chorus load`'s cost counters (the
-- view answers where the server preloads the library, as scripts/stack.sh's does).
\connect postgres
CREATE EXTENSION IF NOT EXISTS pg_stat_statements;
-- The admin role reads every role's counts.
GRANT pg_read_all_stats TO chorus;
