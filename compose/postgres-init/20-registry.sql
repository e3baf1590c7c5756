-- The schema registry's own storage (Apicurio Registry, compose only: the
-- native stack keeps it in an H2 file under .stack). Its role owns its
-- database and reaches no other.
CREATE ROLE chorus_registry LOGIN PASSWORD 'chorus_registry';
CREATE DATABASE chorus_registry OWNER chorus_registry;
REVOKE ALL ON DATABASE chorus_registry FROM PUBLIC;
