#!/bin/sh
# Runs once, on the first start of an empty data volume (docker-entrypoint
# runs /docker-entrypoint-initdb.d/*). The SQL is shared with the native
# stack (scripts/stack/init.sql, mounted at /chorus/init.sql).
set -eu
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres -f /chorus/init.sql
