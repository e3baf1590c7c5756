#!/usr/bin/env bash
# `make chaos`: one fault campaign against the real stack and release builds,
# then an invariant check; a table on stdout and bench/results/chaos-<time>.json.
#
#   1. release build; the stack (left as found, as `make bench` does; Kafka
#      with CHORUS_STACK_BROKERS brokers, 1 unless set); topics, ACLs,
#      schemas; CHORUS_REPLICAS (2) of each worker and the gateway, each on
#      its own Kafka user (scripts/lib/services.sh)
#   2. `chorus load`: CHORUS_CHAOS_ORDERS (10,000) orders through the gateway,
#      open loop at CHORUS_CHAOS_RATE (40) orders/s, with declined payments and
#      out-of-stock lines; an order not final CHORUS_CHAOS_ORDER_TIMEOUT (60)
#      s after it was due counts as timed out in the load's figures (the
#      invariant check still finds out whether it ended). Open loop, so that
#      stalled sagas cannot hold the load back and the campaign has a bound.
#   3. while it offers orders:
#      - every CHORUS_CHAOS_KILL_EVERY (5) seconds a random worker process is
#        SIGKILLed and started again (paused while Kafka or PostgreSQL is down,
#        so that a start-up against a dead broker is not mistaken for a crash)
#      - `chorus chaos poison`: CHORUS_CHAOS_POISON (1,000) poison messages
#        over every input topic
#      - a Kafka kill -9 (once the poison is in), started again
#        CHORUS_CHAOS_KAFKA_DOWN s later (5 with one broker, 20 with a
#        cluster): the one broker, or, with three brokers or more, the one
#        that leads the most partitions of the namespace's topics (the others
#        take its partitions over: no order may be refused with 503 for Kafka)
#      - one PostgreSQL restart
#      - one schema-registry outage of CHORUS_CHAOS_REGISTRY_OUTAGE (20) s,
#        during which a worker is restarted (its schema cache starts cold)
#      - a rolling restart, once the faults above are over and at least
#        CHORUS_CHAOS_ROLLING_AT (100) s into the load: each worker replica,
#        then the gateway, stopped with SIGTERM (a clean exit is required),
#        started again and waited ready, CHORUS_CHAOS_ROLLING_EVERY (8) s of
#        orders between two. Every order accepted from its start on must end
#        with the fate its input designed: no `timeout`, no
#        `payment_unavailable` (the check's --designed-fates-from)
#   4. waits until every consumer group has caught up, every outbox is empty
#      and the calls a SIGKILL interrupted have been taken up again (their
#      lease, CHORUS_CHAOS_CALL_LEASE = chorus_runtime::calls::LEASE, 10 s,
#      has run out); at most CHORUS_CHAOS_SETTLE_MAX (420) s
#   5. `chorus chaos check --poison …`: the invariants, read from topics and
#      databases
#   6. whether any service process exited without the driver killing it
# Exit status 0 only when the check passed, everything settled, no process
# exited on its own and every SIGTERM ended its process cleanly. A worker's
# log stays in .stack/logs/chorus-<worker>-<i>.log.
# Each replica runs under a stable CHORUS_INSTANCE_ID (<instance>) and health
# port across its restarts, as a deployment gives it, so its group.instance.id
# (static membership, the workers' default; scripts/lib/services.sh) is kept:
# one restarted after a SIGKILL takes its partitions back without a rebalance. CHORUS_STATIC_MEMBERSHIP=false runs the
# campaign with dynamic membership, where every SIGKILL stalls its consumer
# group until the dead member's session times out (BENCHMARKS.md).
set -euo pipefail
cd "$(dirname "$0")/.."

export CHORUS_REPLICAS=${CHORUS_REPLICAS:-2}
export CHORUS_STATIC_MEMBERSHIP=${CHORUS_STATIC_MEMBERSHIP:-true}
source scripts/lib/prerequisites.sh
prerequisites build || exit 1
source scripts/lib/services.sh
source scripts/lib/chaos_report.sh
services_check_config

ORDERS=${CHORUS_CHAOS_ORDERS:-10000}
POISON=${CHORUS_CHAOS_POISON:-1000}
RATE=${CHORUS_CHAOS_RATE:-40}
ORDER_TIMEOUT=${CHORUS_CHAOS_ORDER_TIMEOUT:-60}
KILL_EVERY=${CHORUS_CHAOS_KILL_EVERY:-5}
REGISTRY_OUTAGE=${CHORUS_CHAOS_REGISTRY_OUTAGE:-20}
BROKERS=$CHORUS_STACK_BROKERS # scripts/stack.sh env, read by services.sh
KAFKA_DOWN=${CHORUS_CHAOS_KAFKA_DOWN:-$( ((BROKERS >= 3)) && echo 20 || echo 5)}
SETTLE_MAX=${CHORUS_CHAOS_SETTLE_MAX:-420}
# chorus_runtime::calls::LEASE: a provider call or webhook a SIGKILL left
# unanswered is made again (or voided) once its lease has run out.
CALL_LEASE=${CHORUS_CHAOS_CALL_LEASE:-10}
MIX=${CHORUS_CHAOS_MIX:-decline=0.1,out-of-stock=0.1}
# Seconds after the load starts at which each one-off fault begins.
POISON_AT=${CHORUS_CHAOS_POISON_AT:-5}
KAFKA_AT=${CHORUS_CHAOS_KAFKA_AT:-15}
POSTGRES_AT=${CHORUS_CHAOS_POSTGRES_AT:-45}
REGISTRY_AT=${CHORUS_CHAOS_REGISTRY_AT:-70}
ROLLING_AT=${CHORUS_CHAOS_ROLLING_AT:-100}
ROLLING_EVERY=${CHORUS_CHAOS_ROLLING_EVERY:-8}
for var in ORDERS POISON RATE ORDER_TIMEOUT KILL_EVERY REGISTRY_OUTAGE KAFKA_DOWN SETTLE_MAX CALL_LEASE POISON_AT KAFKA_AT POSTGRES_AT REGISTRY_AT ROLLING_AT ROLLING_EVERY; do
  [[ ${!var} =~ ^[0-9]+$ ]] || { echo "CHORUS_CHAOS_$var=${!var} must be a whole number" >&2; exit 2; }
done
((REGISTRY_OUTAGE >= 15)) || { echo "CHORUS_CHAOS_REGISTRY_OUTAGE=$REGISTRY_OUTAGE: the campaign needs at least 15 s" >&2; exit 2; }
((RATE > 0)) || { echo "CHORUS_CHAOS_RATE must be at least 1" >&2; exit 2; }
OFFER_SECS=$(awk -v n="$ORDERS" -v r="$RATE" 'BEGIN { printf "%.3f", n / r }')

began=$(date +%s)
stamp=$(date -u +%Y%m%dT%H%M%SZ)
results=bench/results
work=$results/chaos-$stamp.parts
mkdir -p "$work"
events=$work/events.jsonl # one JSON object per thing the driver did or saw
: >"$events"

step() { printf '\n==> %s\n' "$*"; }
elapsed() { echo $(($(date +%s) - load_began)); }
# event KIND [JSON fields…]: record it (seconds since the load began) and say it.
event() {
  local kind=$1
  shift
  local fields=${1:+, $1}
  printf '{"at_secs": %d, "event": "%s"%s}\n' "$(elapsed)" "$kind" "$fields" >>"$events"
  printf '    [%4ds] %s %s\n' "$(elapsed)" "$kind" "${1:-}"
}
# stack ARGS…: scripts/stack.sh, indented; a failure is recorded, and the
# campaign goes on to its report.
stack() {
  bash scripts/stack.sh "$@" 2>&1 | sed 's/^/    /' || event stack_command_failed "\"command\": \"$*\""
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
stack_was_up=0
for port in "${CHORUS_STACK_KAFKA_PORT:-9092}" "${CHORUS_STACK_REGISTRY_PORT:-8081}" "${CHORUS_STACK_PG_PORT:-55432}"; do
  port_open "$port" && stack_was_up=1
done
services_ports_free

load_pid="" poison_pid=""
finish() {
  local rc=$?
  trap - INT TERM EXIT
  [[ -n $load_pid ]] && kill "$load_pid" 2>/dev/null
  [[ -n $poison_pid ]] && kill "$poison_pid" 2>/dev/null
  if ((${#SERVICE_PID[@]})); then
    step "stopping the services"
    services_stop
  fi
  if ((stack_was_up == 0)); then
    step "stopping the stack (it was down when the campaign started)"
    bash scripts/stack.sh down || true
  fi
  exit "$rc"
}
trap finish EXIT
trap 'exit 130' INT TERM

step "build (release)"
cargo build --release --locked --bins
bin=target/release
chorus=$bin/chorus

step "stack"
bash scripts/stack.sh up
kafka_addr=$CHORUS_KAFKA_BROKERS # every broker's plaintext listener (services.sh)

step "topics, ACLs and schemas"
$chorus topics create >/dev/null
$chorus acls apply >/dev/null
$chorus schemas register >/dev/null

step "services: $SERVICES_REPLICAS of each worker, one gateway (release builds)"
export CHORUS_DEV=true
export CHORUS_RATE_LIMIT_PER_SEC=${CHORUS_RATE_LIMIT_PER_SEC:-1000000}
# The same for the edge's per-customer caps: one load's customers keep up to
# its concurrency of orders open and long-polled at once.
export CHORUS_GATEWAY_OPEN_ORDERS_PER_CUSTOMER=${CHORUS_GATEWAY_OPEN_ORDERS_PER_CUSTOMER:-1000000}
export CHORUS_GATEWAY_LONG_POLLS_PER_SUBJECT=${CHORUS_GATEWAY_LONG_POLLS_PER_SUBJECT:-2048}
export CHORUS_GATEWAY_URL=$SERVICES_GATEWAY_URL
export CHORUS_PG_ADMIN_URL=${CHORUS_PG_ADMIN_URL:-postgres://chorus:chorus@127.0.0.1:${CHORUS_STACK_PG_PORT:-55432}/postgres}
# The gateway's log grows across runs: this campaign's lines start here.
gateway_log_from=$(wc -l <"$(services_log gateway)" 2>/dev/null || echo 0)
services_start "$bin"
services_wait_ready

workers=()
for instance in $(services_instances); do [[ $instance == gateway ]] || workers+=("$instance"); done

# ------------------------------------------------------------ supervision

declare -A own_exits=() # instance -> how many times it ended without the driver
own_exit_total=0
kills=0
# supervise: a service that is gone although the driver did not kill it
# exited on its own: record its status and the end of its log, start it again.
supervise() {
  local instance pid status
  for instance in $(services_instances); do
    pid=$(services_pid "$instance")
    [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null && continue
    status=0
    [[ -n $pid ]] && { wait "$pid" 2>/dev/null || status=$?; }
    own_exits[$instance]=$((${own_exits[$instance]:-0} + 1))
    own_exit_total=$((own_exit_total + 1))
    event exited_on_its_own "\"instance\": \"$instance\", \"status\": $status"
    tail -n 5 "$(services_log "$instance")" | sed 's/^/      | /'
    services_start_one "$instance" "$bin"
  done
}

# restart INSTANCE: SIGKILL (no flush, no commit) and start it again.
last_kill_at=0
restart() {
  services_kill "$1"
  services_start_one "$1" "$bin"
  kills=$((kills + 1))
  last_kill_at=$(date +%s)
}

random_worker() { echo "${workers[RANDOM % ${#workers[@]}]}"; }

# busiest_leader: the node id of the broker leading the most partitions of
# the namespace's topics, how many it leads and how many there are.
busiest_leader() {
  scripts/stack/kafka-tool.sh topics --bootstrap-server "$kafka_addr" --describe 2>/dev/null |
    awk -v ns="${CHORUS_TOPIC_NAMESPACE:-chorus}." '$1 == "Topic:" && index($2, ns) == 1 && $5 == "Leader:" { n[$6]++; all++ }
      END { for (b in n) if (n[b] > most) { most = n[b]; id = b }; if (id != "") print id, most, all }'
}

# The rolling restart, one instance a step: workers replica by replica, the
# gateway last (services_instances' order).
mapfile -t rolling < <(services_instances)
rolling_next=0 rolling_done=0 next_rolling=0 rolling_restarts=0 unclean_stops=0
designed_from_ms=""
rolling_step() {
  local instance=${rolling[rolling_next]} status=0
  if ((rolling_next == 0)); then
    # From here on only services stop and start: every order accepted from
    # now must end with its designed fate (the check's --designed-fates-from).
    designed_from_ms=$(date +%s%3N)
    event rolling_restart_began
  fi
  services_term "$instance" || status=$?
  if ((status != 0)); then
    unclean_stops=$((unclean_stops + 1))
    event unclean_stop "\"instance\": \"$instance\", \"status\": $status"
    tail -n 5 "$(services_log "$instance")" | sed 's/^/      | /'
  fi
  services_start_one "$instance" "$bin"
  services_wait_ready "$instance" || event not_ready_after_restart "\"instance\": \"$instance\""
  event sigterm_restart "\"instance\": \"$instance\", \"exit_status\": $status"
  rolling_restarts=$((rolling_restarts + 1))
  # Calls a stop left unfinished are taken up again like a SIGKILL's.
  last_kill_at=$(date +%s)
  rolling_next=$((rolling_next + 1))
  next_rolling=$(($(elapsed) + ROLLING_EVERY))
  if ((rolling_next >= ${#rolling[@]})); then
    rolling_done=1
    event rolling_restart_done
  fi
}

# sleep_supervised SECONDS: wait, looking after the services every second.
sleep_supervised() {
  local until=$(($(date +%s) + $1))
  while (($(date +%s) < until)); do
    supervise
    sleep 1
  done
}

# ------------------------------------------------------------ the campaign

step "campaign: $ORDERS orders at $RATE/s for ${OFFER_SECS}s (mix $MIX) under faults"
load_began=$(date +%s)
$chorus load --rate "$RATE" --duration "$OFFER_SECS" --order-timeout "$ORDER_TIMEOUT" --mix "$MIX" \
  --no-costs --quiet --label chaos --out "$work/load.json" >"$work/load.txt" 2>&1 &
load_pid=$!

kafka_down_secs="" kafka_victim="" kafka_victim_led="" postgres_down_secs="" registry_down_secs="" cold_worker=""
poisoned=0 kafka_done=0 postgres_done=0 registry_done=0
next_kill=$KILL_EVERY
load_rc="" poison_rc=""
while true; do
  supervise
  t=$(elapsed)
  if [[ -n $load_pid ]] && ! kill -0 "$load_pid" 2>/dev/null; then
    load_rc=0
    wait "$load_pid" || load_rc=$?
    load_pid=""
    event load_finished "\"exit_status\": $load_rc"
  fi
  if [[ -n $poison_pid ]] && ! kill -0 "$poison_pid" 2>/dev/null; then
    poison_rc=0
    wait "$poison_pid" || poison_rc=$?
    poison_pid=""
    event poison_sent "\"count\": $POISON, \"exit_status\": $poison_rc"
  fi
  if ((!poisoned && t >= POISON_AT)); then
    $chorus chaos poison --count "$POISON" --out "$work/poison.json" >"$work/poison.txt" 2>&1 &
    poison_pid=$!
    poisoned=1
  fi
  # The broker goes down only once the poison is in (its producer would time out).
  if ((!kafka_done && t >= KAFKA_AT && poisoned)) && [[ -z $poison_pid ]]; then
    # One broker: Kafka is gone. A cluster: its busiest leader is.
    kafka_victim=kafka
    if ((BROKERS >= 3)); then
      kafka_victim=kafka-1
      read -r id led all < <(busiest_leader) || true
      if [[ -n ${id:-} ]]; then kafka_victim=kafka-$id kafka_victim_led="$led of $all"; fi
    fi
    event kafka_kill9 "\"broker\": \"$kafka_victim\", \"brokers\": $BROKERS${kafka_victim_led:+, \"leader_of_partitions\": \"$kafka_victim_led\"}"
    down=$(date +%s)
    stack kill "$kafka_victim"
    sleep_supervised "$KAFKA_DOWN"
    stack start "$kafka_victim"
    kafka_down_secs=$(($(date +%s) - down))
    event kafka_back "\"down_secs\": $kafka_down_secs"
    kafka_done=1
    next_kill=$((t + kafka_down_secs + KILL_EVERY))
  elif ((!postgres_done && t >= POSTGRES_AT)); then
    event postgres_restart
    down=$(date +%s)
    stack restart postgres
    postgres_down_secs=$(($(date +%s) - down))
    event postgres_back "\"down_secs\": $postgres_down_secs"
    postgres_done=1
  elif ((!registry_done && t >= REGISTRY_AT)); then
    event registry_stop
    down=$(date +%s)
    stack stop registry
    sleep_supervised 3
    cold_worker=$(random_worker)
    restart "$cold_worker"
    event worker_restarted_cold "\"instance\": \"$cold_worker\""
    sleep_supervised $((REGISTRY_OUTAGE - ($(date +%s) - down)))
    stack start registry
    registry_down_secs=$(($(date +%s) - down))
    event registry_back "\"down_secs\": $registry_down_secs"
    registry_done=1
  elif ((!rolling_done && kafka_done && postgres_done && registry_done && t >= ROLLING_AT && t >= next_rolling)); then
    rolling_step
  elif ((t >= next_kill && t < ${OFFER_SECS%.*})); then
    victim=$(random_worker)
    restart "$victim"
    event worker_sigkill "\"instance\": \"$victim\""
    next_kill=$((t + KILL_EVERY))
  fi
  if [[ -z $load_pid && -z $poison_pid ]] && ((poisoned && kafka_done && postgres_done && registry_done && rolling_done)); then
    break
  fi
  sleep 1
done
load_secs=$(elapsed)
cat "$work/load.txt"

# -------------------------------------------------------------- settling

# Settled: no consumer group of ours lags and no outbox holds unsent rows,
# three times in a row (offsets are committed every second).
lag() {
  scripts/stack/kafka-tool.sh consumer-groups --bootstrap-server "$kafka_addr" --describe --all-groups 2>/dev/null |
    awk -v ns="${CHORUS_TOPIC_NAMESPACE:-chorus}." 'index($1, ns) == 1 && $6 ~ /^[0-9]+$/ { lag += $6 } END { print lag + 0 }'
}
backlog() {
  local instance total=0 n
  for instance in "${workers[@]}"; do
    n=$(curl -fs --max-time 2 "http://127.0.0.1:$(services_port "$instance")/metrics" |
      awk '/^chorus_outbox_backlog/ { s += $NF } END { print s + 0 }') || n=0
    total=$((total + ${n%.*}))
  done
  echo "$total"
}
# Calls a SIGKILL interrupted are taken up again only when their lease runs
# out, so the check waits for that too.
leases_done=$((last_kill_at + CALL_LEASE + 10))
step "settling: consumer lag and outbox backlog to zero, calls leased before the last kill done at $(date -d "@$leases_done" +%T) (at most ${SETTLE_MAX}s)"
settle_began=$(date +%s)
settled=false quiet=0
while (($(date +%s) - settle_began < SETTLE_MAX)); do
  supervise
  l=$(lag) b=$(backlog)
  if ((l == 0 && b == 0)); then quiet=$((quiet + 1)); else quiet=0; fi
  if ((quiet >= 3 && $(date +%s) >= leases_done)); then settled=true; break; fi
  ((quiet > 0 && quiet % 15 != 1)) || printf '    lag %s, outbox backlog %s\n' "$l" "$b"
  sleep 2
done
settle_secs=$(($(date +%s) - settle_began))
supervise

step "invariant check"
# Each database through its owning role (the local stack's development
# credentials), which reads every table of it.
pg=127.0.0.1:${CHORUS_STACK_PG_PORT:-55432}
dbs=()
for svc in gateway order inventory payment notification; do
  dbs+=(--"$svc"-db "postgres://chorus_$svc:chorus_$svc@$pg/chorus_$svc")
done
check_args=(--poison "$work/poison.json" "${dbs[@]}")
[[ -n $designed_from_ms ]] && check_args+=(--designed-fates-from "$designed_from_ms")
check_rc=0
$chorus chaos check "${check_args[@]}" --json >"$work/check.json" 2>"$work/check.err" || check_rc=$?
$chorus chaos check "${check_args[@]}" 2>&1 | sed 's/^/    /' || true

# ----------------------------------------------------------------- report

# A cluster keeps serving while one broker is down: not one order refused
# for Kafka (PostgreSQL's restart may refuse some, as with one broker).
refused_ok=true
((BROKERS >= 3 && $(kafka_503) > 0)) && refused_ok=false
passed=false
[[ $check_rc == 0 && $settled == true && $own_exit_total == 0 && ${poison_rc:-1} == 0 &&
  $rolling_done == 1 && $unclean_stops == 0 && $refused_ok == true ]] && passed=true
total=$(($(date +%s) - began))
cpu_model=$(awk -F': *' '/^model name/ { print $2; exit }' /proc/cpuinfo)
chaos_write_json
chaos_print_table
[[ -s $work/check.err ]] && sed 's/^/    check: /' "$work/check.err"
printf '\nresults: %s.json (and .md); parts in %s\n' "$results/chaos-$stamp" "$work"
[[ $passed == true ]]
