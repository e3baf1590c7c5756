#!/usr/bin/env bash
# What migration 1005's indexes cost the order worker's writes: 10,000
# status changes (200 statements of 50 rows, as the worker's batched
# UPDATE), on 1,000,000 orders, with and without the three indexes.
set -euo pipefail
# shellcheck source=scripts/measure/scratch-order-db.sh
source "$(dirname "$0")/scratch-order-db.sh"
scratch_order_db chorus_list_writes '100[1-5]'
q -c "INSERT INTO orders (order_id, customer_id, currency, items, status, created_at)
      SELECT gen_random_uuid()::text, 'customer-' || (g % 20000), 'EUR', '[{\"sku\": \"MUG-1\", \"quantity\": 2}]',
             'CONFIRMED', now() - (1000000 - g) * interval '50 ms'
      FROM generate_series(1, 1000000) AS g"
q -c "VACUUM ANALYZE orders"
q -c "CREATE TABLE ids AS SELECT order_id, row_number() OVER () AS n FROM (SELECT order_id FROM orders ORDER BY random() LIMIT 40000) AS r"
run() {
  local from=$1 setup=$2
  q <<SQL | grep -o 'Time: [0-9.]* ms' | tail -1
$setup
\timing on
DO \$\$ BEGIN FOR i IN 0..199 LOOP
  UPDATE orders SET status = 'CANCELLED', updated_at = now()
  WHERE order_id IN (SELECT order_id FROM ids WHERE n > $from + i * 50 AND n <= $from + (i + 1) * 50);
END LOOP; END \$\$;
SQL
}
for round in 1 2; do
  echo "round $round, with the indexes:    $(run $(( (round - 1) * 10000 )) '')"
  echo "round $round, without the indexes: $(run $(( 20000 + (round - 1) * 10000 )) 'BEGIN; DROP INDEX orders_by_customer, orders_by_created, orders_by_status;')"
done
