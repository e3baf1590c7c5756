#!/usr/bin/env bash
# `make run`: the stack, topics, schemas, the four workers and the gateway,
# a demo catalogue; then it says what runs where and how to place an order.
# Ctrl-C stops the services and the stack cleanly.
# CHORUS_REPLICAS=N starts N of each worker (scripts/lib/services.sh).
# CHORUS_STACK_BROKERS=N runs Kafka as a cluster of N brokers (scripts/stack.sh).
# Each service connects as its own Kafka user under the ACLs `chorus acls
# apply` writes (CHORUS_STACK_PRINCIPALS=admin: all as the administrator).
#
# The services are dev-profile builds (target/debug), the very artifacts
# `make test` and `cargo test` use next, so nothing is compiled twice;
# `make bench` and `make chaos` build the optimised release profile.
set -euo pipefail
cd "$(dirname "$0")/.."

source scripts/lib/prerequisites.sh
prerequisites build || exit 1
source scripts/lib/services.sh
step() { printf '==> %s\n' "$*"; }
services_ports_free

# A stack that already runs is used as it is and left running at the end
# (it was started by `make up`); one `make test` is using is not touched.
stack_was_up=0
if bash scripts/stack.sh running >/dev/null; then
  owner=${CHORUS_STACK_DIR:-.stack}/started-by
  read -r _ _ test_pid <"$owner" 2>/dev/null || test_pid=""
  if [[ -n $test_pid ]] && tr '\0' ' ' <"/proc/$test_pid/cmdline" 2>/dev/null | grep -q scripts/test.sh; then
    echo "make run: \`make test\` (pid $test_pid) is using the stack and takes it down when it ends; run \`make run\` after it" >&2
    exit 1
  fi
  stack_was_up=1
fi

# The stack starts while cargo builds: on a fresh clone both take a while,
# and the stack mostly waits for downloads and JVM start-ups.
stack_log=$(mktemp)
bash scripts/stack.sh up >"$stack_log" 2>&1 &
stack_pid=$!
step "build (dev profile; the stack starts meanwhile)"
build_rc=0
cargo build --locked --workspace --bins || build_rc=$?
stack_rc=0
wait "$stack_pid" || stack_rc=$?
cat "$stack_log"
rm -f "$stack_log"
((build_rc == 0 && stack_rc == 0)) || exit 1
bin=${CARGO_TARGET_DIR:-target}/debug
chorus=$bin/chorus

step "topics, ACLs and schemas"
$chorus topics create >/dev/null
$chorus acls apply >/dev/null
$chorus schemas register >/dev/null
$chorus topics list

# A development run: the gateway accepts the public development JWT secret.
export CHORUS_DEV=true
export CHORUS_GATEWAY_URL=$SERVICES_GATEWAY_URL
logs=$SERVICES_LOGS
stop() {
  trap - INT TERM EXIT
  step "stopping services"
  services_stop
  if ((stack_was_up)); then
    step "the stack was running before \`make run\`: left running (\`make down\` stops it)"
  else
    bash scripts/stack.sh down
  fi
}
trap stop INT TERM EXIT

step "services ($SERVICES_REPLICAS of each worker)"
services_start "$bin"
services_wait_ready || exit 1
workers=""
for instance in $(services_instances); do
  [[ $instance == gateway ]] || workers+="${workers:+  }$instance :$(services_port "$instance")"
done

step "demo catalogue"
CHORUS_TOKEN=$($chorus token --sub ops --role admin)
export CHORUS_TOKEN
$chorus stock set SKU-1 --available 100 --price 19.99 --name "Coffee mug" >/dev/null
$chorus stock set SKU-2 --available 20 --price 4.50 --name "Tea towel" >/dev/null
$chorus stock set SKU-3 --available 5 --price 120.00 --name "Desk lamp" >/dev/null
unset CHORUS_TOKEN

cat <<MSG

chorus is running:
  gateway          $SERVICES_GATEWAY_URL   (OpenAPI: $SERVICES_GATEWAY_URL/openapi.json)
                   /readyz /metrics on http://127.0.0.1:$(services_admin_port gateway)
  workers          $workers
                   (/healthz /readyz /metrics on each)
  Kafka            $CHORUS_KAFKA_BROKERS${CHORUS_KAFKA_SECURITY_PROTOCOL:+ ($CHORUS_KAFKA_SECURITY_PROTOCOL)}  (the CLI)
                   $(services_kafka_summary)
  schema registry  ${CHORUS_SCHEMA_REGISTRY_URL:-http://127.0.0.1:8081/apis/ccompat/v7}
  PostgreSQL       127.0.0.1:${CHORUS_STACK_PG_PORT:-55432}
  logs             $logs/chorus-<service>$( ((SERVICES_REPLICAS > 1)) && echo '-<replica>').log

Place an order (demo SKUs: SKU-1, SKU-2, SKU-3; payment tokens tok_ok, tok_decline, tok_unavailable):

  TOKEN=\$($chorus token --sub alice --role customer)
  curl -s -X POST $SERVICES_GATEWAY_URL/v1/orders \\
    -H "Authorization: Bearer \$TOKEN" -H "Idempotency-Key: \$(date +%s%N)" \\
    -H 'Content-Type: application/json' \\
    -d '{"items":[{"sku":"SKU-1","quantity":2}],"currency":"EUR","payment_token":"tok_ok"}'
  curl -s "$SERVICES_GATEWAY_URL/v1/orders/<order_id>?wait=10&seen=PENDING" -H "Authorization: Bearer \$TOKEN"

Or with the CLI:  $chorus order place --sub alice --sku SKU-1:2   then   $chorus order status <order_id> --sub alice --wait
Watch the saga:   $chorus tail orders --follow

Ctrl-C stops everything.
MSG
wait
