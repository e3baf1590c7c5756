# shellcheck shell=bash
# Sourced by the list-orders measurements, from the repository root:
#   scratch_order_db NAME GLOB   a database of its own (NAME_<pid>, dropped
#                                when the script exits) made by ADMIN (a role
#                                with CREATEDB), with the order service's
#                                migrations matching GLOB applied in order,
#                                each in one transaction as sqlx applies them
#   q ARGS…                      psql on it, stopping at the first error
# The password travels in PGPASSWORD, never on psql's command line.
scratch_order_db() {
  local f userinfo
  ADMIN=${ADMIN:-postgres://chorus:chorus@127.0.0.1:55432/postgres}
  if [[ $ADMIN =~ ^(postgres(ql)?://)([^:@/]+):([^@/]*)@(.*)$ ]]; then
    userinfo=${BASH_REMATCH[4]}
    export PGPASSWORD=$userinfo
    ADMIN=${BASH_REMATCH[1]}${BASH_REMATCH[3]}@${BASH_REMATCH[5]}
  fi
  DB=$1_$$
  URL=${ADMIN%/*}/$DB
  psql "$ADMIN" -qc "CREATE DATABASE $DB"
  trap 'psql "$ADMIN" -qc "DROP DATABASE IF EXISTS $DB WITH (FORCE)"' EXIT
  for f in workers/order/migrations/$2_*.sql; do q -1 -f "$f"; done
}
q() { psql "$URL" -X -q -v ON_ERROR_STOP=1 "$@"; }
