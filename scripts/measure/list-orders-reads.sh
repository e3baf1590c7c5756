#!/usr/bin/env bash
# GET /v1/orders at 1,000,000 orders: a scratch database migrated like the
# order database (workers/order/migrations, applied in order with psql), a
# million orders, then the gateway's list statement (prepared, as sqlx runs
# it) under EXPLAIN ANALYZE, 7 runs per case, the median reported.
# Run from the repository; ADMIN is a role with CREATEDB. Drops its database.
set -euo pipefail
# shellcheck source=scripts/measure/scratch-order-db.sh
source "$(dirname "$0")/scratch-order-db.sh"
scratch_order_db chorus_list_bench '100[1-4]'

# 1,000,000 orders over ~14 hours, two per timestamp (as a batch records
# them): one customer in ten is `whale` (100,000 orders), the rest spread
# over 20,000 customers (~45 each); 90 % CONFIRMED, 8 % CANCELLED, 1 %
# PENDING, 1 % RESERVED; rows as wide as the worker writes them.
start=$(date +%s.%N)
q <<'SQL'
INSERT INTO orders (order_id, customer_id, currency, items, reserved_lines, total,
                    authorization_id, authorized_amount, status, history,
                    deadline_at, last_event, last_event_at, created_at, updated_at)
SELECT gen_random_uuid()::text,
       CASE WHEN g % 10 = 0 THEN 'whale' ELSE 'customer-' || (g % 20000) END,
       'EUR',
       '[{"sku": "MUG-1", "quantity": 2}, {"sku": "TEA-7", "quantity": 1}]',
       '[{"sku": "MUG-1", "quantity": 2, "unit_price": "9.50"}, {"sku": "TEA-7", "quantity": 1, "unit_price": "4.25"}]',
       23.25, 'auth-' || g, 23.25, s.status,
       jsonb_build_array(jsonb_build_object('status', 'PENDING', 'at', '2026-12-01T10:00:00.000Z'),
                         jsonb_build_object('status', 'RESERVED', 'at', '2026-12-01T10:00:00.010Z'),
                         jsonb_build_object('status', s.status, 'at', '2026-12-01T10:00:00.020Z')),
       t.at + interval '60 s', 'PaymentAuthorized', t.at, t.at, t.at
FROM generate_series(1, 1000000) AS g
CROSS JOIN LATERAL (SELECT now() - ((1000000 - g) / 2) * interval '100 ms' AS at) AS t
CROSS JOIN LATERAL (SELECT CASE WHEN g % 100 < 90 THEN 'CONFIRMED' WHEN g % 100 < 98 THEN 'CANCELLED'
                                WHEN g % 100 = 98 THEN 'PENDING' ELSE 'RESERVED' END AS status) AS s;
SQL
echo "insert 1,000,000 orders: $(awk "BEGIN{printf \"%.1f\", $(date +%s.%N) - $start}") s"
start=$(date +%s.%N)
q -1 -f workers/order/migrations/1005_order_list.sql
echo "migration 1005 (three indexes) on 1,000,000 orders: $(awk "BEGIN{printf \"%.1f\", $(date +%s.%N) - $start}") s"
q -c "VACUUM ANALYZE orders"
q -At -c "SELECT string_agg(relname || ' ' || pg_size_pretty(pg_relation_size(oid)), ', ' ORDER BY relname) FROM pg_class WHERE relname IN ('orders', 'orders_pkey', 'orders_by_customer', 'orders_by_created', 'orders_by_status')" | sed 's/^/sizes: /'

# The keys of the 90,000th order of `whale` and the 900,000th of everyone's:
# where a deep page's cursor points.
key() { q -At -F' ' -c "SELECT created_at, order_id FROM order_status $1 ORDER BY created_at DESC, order_id DESC OFFSET $2 LIMIT 1"; }
read -r wd wt wid < <(key "WHERE customer_id = 'whale'" 90000)
read -r ad at aid < <(key "" 900000)
WHALE_AT="$wd $wt"; ALL_AT="$ad $at"

SELECT="SELECT s.order_id::text AS order_id, s.customer_id::text AS customer_id, s.status::text AS status, s.reason::text AS reason, s.currency::text AS currency, s.total::numeric AS total, s.items::jsonb AS items, s.history::jsonb AS history, s.cancellation::text AS cancellation, s.updated_at, s.created_at FROM order_status AS s WHERE TRUE"
ORDER="ORDER BY s.created_at DESC, s.order_id DESC"
# case NAME "PARAMETER TYPES" "CONDITIONS" "ARGUMENTS" [SETUP]: the limit is
# the last parameter and argument (the page and one more, as the gateway asks).
case_() {
  local name=$1 types=$2 where=$3 args=$4 setup=${5:-}
  local n; n=$(( $({ grep -o 'text\|timestamptz' <<<"$types" || true; } | wc -l) + 1 ))
  local sql="$setup
PREPARE l(${types:+$types, }bigint) AS $SELECT $where $ORDER LIMIT \$$n::bigint;"
  for _ in 1 2 3 4 5 6 7; do sql+="
EXPLAIN (ANALYZE, BUFFERS) EXECUTE l($args);"; done
  [[ -n "$setup" ]] && sql+="
ROLLBACK;"
  local out; out=$(q <<<"$sql" 2>&1)
  local median; median=$(grep -o 'Execution Time: [0-9.]*' <<<"$out" | awk '{print $3}' | sort -n | sed -n 4p)
  local plan; plan=$(grep -oE 'Index Scan[a-zA-Z ]* using [a-z_]+|Seq Scan on [a-z_]+|Bitmap Heap Scan on [a-z_]+' <<<"$out" | tail -1)
  local buffers; buffers=$(awk '/QUERY PLAN/{b=""} /Buffers:/ && b=="" {b=$0} END{print b}' <<<"$out" | sed 's/^ *//')
  printf '%-40s %9s ms  %s; %s\n' "$name" "$median" "$plan" "$buffers"
}
echo "case (median of 7 runs)                   time       plan; the last run's buffers"
case_ "customer, first page (limit 20)"     "text" "AND s.customer_id = \$1::text" "'customer-4242', 21"
case_ "whale (100k), first page"            "text" "AND s.customer_id = \$1::text" "'whale', 21"
case_ "whale, page at order 90,000"         "text, timestamptz, text" "AND s.customer_id = \$1::text AND (s.created_at, s.order_id) < (\$2::timestamptz, \$3::text)" "'whale', '$WHALE_AT', '$wid', 21"
case_ "whale, page at 90,000, limit 100"    "text, timestamptz, text" "AND s.customer_id = \$1::text AND (s.created_at, s.order_id) < (\$2::timestamptz, \$3::text)" "'whale', '$WHALE_AT', '$wid', 101"
case_ "whale, status=CANCELLED (10 %)"      "text, text" "AND s.customer_id = \$1::text AND s.status = \$2::text" "'whale', 'CANCELLED', 21"
case_ "whale, status=PENDING (it has none)" "text, text" "AND s.customer_id = \$1::text AND s.status = \$2::text" "'whale', 'PENDING', 21"
case_ "customer, since 1 hour ago"          "text, timestamptz" "AND s.customer_id = \$1::text AND s.created_at >= \$2::timestamptz" "'customer-4242', now() - interval '1 hour', 21"
case_ "admin, everyone's, first page"       "" "" "21"
case_ "admin, everyone's, page at 900,000"  "timestamptz, text" "AND (s.created_at, s.order_id) < (\$1::timestamptz, \$2::text)" "'$ALL_AT', '$aid', 21"
case_ "admin, status=PENDING (1 %)"         "text" "AND s.status = \$1::text" "'PENDING', 21"
echo "-- without migration 1005's indexes (dropped inside a transaction rolled back):"
DROP="BEGIN; DROP INDEX orders_by_customer, orders_by_created, orders_by_status;"
case_ "customer, first page"                "text" "AND s.customer_id = \$1::text" "'customer-4242', 21" "$DROP"
case_ "admin, everyone's, page at 900,000"  "timestamptz, text" "AND (s.created_at, s.order_id) < (\$1::timestamptz, \$2::text)" "'$ALL_AT', '$aid', 21" "$DROP"
case_ "admin, status=PENDING (1 %)"         "text" "AND s.status = \$1::text" "'PENDING', 21" "$DROP"
