#!/usr/bin/env bash
# `make bench`: on release builds, in one go, with the same stack:
#   1. the stack (left as found: started and stopped here only if it was down),
#      topics, schemas, the five services (gateway without a practical rate limit)
#   2. a warm-up load, then idle memory (VmRSS) of every service
#   3. the ceilings: `chorus bench kafka` and `chorus bench pg`
#   4. a closed-loop ramp over concurrencies up to 1024, each step with enough
#      orders for a steady state; then `chorus load` closed-loop at the best of
#      them (maximum throughput), with its cost counters (write commits and
#      reads in PostgreSQL), the CPU seconds of every process during it and the
#      Kafka requests the brokers served (their JMX counters, summed over
#      the CHORUS_STACK_BROKERS brokers from CHORUS_STACK_KAFKA_JMX_PORT on)
#   5. `chorus load` open-loop at half that throughput, for a fixed duration;
#      then shorter open-loop runs at a tenth, a quarter, three quarters and
#      all of it: the curve of latency against offered rate
#   6. peak memory (VmHWM); bench/results/<timestamp>.json and .md, the
#      markdown table on stdout, and the total duration
# CHORUS_REPLICAS=N runs N of each worker (scripts/lib/services.sh);
# CHORUS_STACK_BROKERS=N a Kafka cluster of N brokers (scripts/stack.sh).
# CHORUS_BENCH_BIN_DIR=DIR runs the binaries already built in DIR (e.g.
# target/debug to try the script out) instead of building release ones.
# Sizes can be changed through CHORUS_BENCH_* (see below); the defaults keep
# the whole run to about 4 minutes on a 2-core machine with warm release
# builds (at most about 7 when the largest ramp steps overload it).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/prerequisites.sh
prerequisites build || exit 1
source scripts/lib/services.sh

began=$(date +%s)
step() { printf '\n==> %s\n' "$*"; }

# Unset, the main closed run places max(4000, 6 × its concurrency) orders.
CLOSED_ORDERS=${CHORUS_BENCH_CLOSED_ORDERS:-}
RAMP=${CHORUS_BENCH_RAMP:-96 192 384 768 1024}
# Each ramp step places max(this, 4 × its concurrency) orders.
RAMP_ORDERS=${CHORUS_BENCH_RAMP_ORDERS:-600}
RAMP_ORDER_TIMEOUT=${CHORUS_BENCH_RAMP_ORDER_TIMEOUT:-30}
OPEN_SECS=${CHORUS_BENCH_OPEN_SECS:-60}
CURVE_SECS=${CHORUS_BENCH_CURVE_SECS:-20}
CURVE=${CHORUS_BENCH_CURVE:-0.1 0.25 0.75 1.0}
BIN_DIR=${CHORUS_BENCH_BIN_DIR:-}
WARMUP_ORDERS=${CHORUS_BENCH_WARMUP_ORDERS:-300}
KAFKA_MESSAGES=${CHORUS_BENCH_KAFKA_MESSAGES:-500000}
PG_SECS=${CHORUS_BENCH_PG_SECS:-10}
MIX=${CHORUS_BENCH_MIX:-decline=0.1,out-of-stock=0.1}

stamp=$(date -u +%Y%m%dT%H%M%SZ)
results=bench/results
work=$results/$stamp.parts
mkdir -p "$work"

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
# The stack is left as it was found: brought down at the end only if none of it ran.
stack_ports=("${CHORUS_STACK_KAFKA_PORT:-9092}" "${CHORUS_STACK_REGISTRY_PORT:-8081}" "${CHORUS_STACK_PG_PORT:-55432}")
stack_dir=${CHORUS_STACK_DIR:-.stack}
stack_was_up=0
for port in "${stack_ports[@]}"; do port_open "$port" && stack_was_up=1; done
services_ports_free

finish() {
  local rc=$?
  trap - INT TERM EXIT
  if ((${#SERVICE_PID[@]})); then
    step "stopping the services"
    services_stop
  fi
  if ((stack_was_up == 0)); then
    step "stopping the stack (it was down when the bench started)"
    bash scripts/stack.sh down || true
  fi
  exit "$rc"
}
trap finish EXIT
trap 'exit 130' INT TERM

# A thousand orders in flight hold a thousand long-polls: a socket each in
# the load and in the gateway, which inherit this limit.
if [[ $(ulimit -Sn) != unlimited ]] && (($(ulimit -Sn) < 8192)); then
  ulimit -Sn "$(ulimit -Hn)" 2>/dev/null || true
  (($(ulimit -Sn) >= 4096)) || echo "warning: ulimit -n is $(ulimit -Sn); concurrency 1024 needs more sockets" >&2
fi

step "stack"
bash scripts/stack.sh up

if [[ -n $BIN_DIR ]]; then
  step "binaries: $BIN_DIR (CHORUS_BENCH_BIN_DIR; not built here)"
  bin=$BIN_DIR
else
  step "build (release)"
  cargo build --release --locked --bins
  bin=target/release
fi
chorus=$bin/chorus

step "topics, ACLs and schemas"
$chorus topics create >/dev/null
$chorus acls apply >/dev/null
$chorus schemas register >/dev/null

step "services ($bin)"
export CHORUS_DEV=true
# The load spreads over many customers, but the bench measures the saga, not the limiter.
export CHORUS_RATE_LIMIT_PER_SEC=${CHORUS_RATE_LIMIT_PER_SEC:-1000000}
# The same for the edge's per-customer caps: one load's customers keep up to
# its concurrency of orders open and long-polled at once.
export CHORUS_GATEWAY_OPEN_ORDERS_PER_CUSTOMER=${CHORUS_GATEWAY_OPEN_ORDERS_PER_CUSTOMER:-1000000}
export CHORUS_GATEWAY_LONG_POLLS_PER_SUBJECT=${CHORUS_GATEWAY_LONG_POLLS_PER_SUBJECT:-2048}
export CHORUS_GATEWAY_URL=$SERVICES_GATEWAY_URL
services_start "$bin"
services_wait_ready

step "warm-up: $WARMUP_ORDERS orders (and the load's catalogue)"
$chorus load --orders "$WARMUP_ORDERS" --concurrency 16 --mix "$MIX" --no-costs \
  --label warm-up --out "$work/warmup.json" >/dev/null

# /proc/<pid>/status fields in kB.
proc_kb() { awk -v f="$2:" '$1 == f { print $2 }' "/proc/$1/status"; }
sleep 3
declare -A idle_kb
for instance in $(services_instances); do idle_kb[$instance]=$(proc_kb "$(services_pid "$instance")" VmRSS); done

step "ceiling: Kafka"
$chorus bench kafka --messages "$KAFKA_MESSAGES" --out "$work/kafka.json"
step "ceiling: PostgreSQL"
$chorus bench pg --seconds "$PG_SECS" --out "$work/pg.json"

# CPU seconds (user + system) of processes, or of PostgreSQL's whole process tree.
hz=$(getconf CLK_TCK)
cpu_ticks() {
  local pid total=0 n
  for pid in "$@"; do
    n=$(awk '{ print $14 + $15 }' "/proc/$pid/stat" 2>/dev/null) || n=0
    total=$((total + ${n:-0}))
  done
  echo "$total"
}
pg_ticks() {
  local root=$1 total=0 pid
  for pid in $root $(ps -o pid= --ppid "$root"); do total=$((total + $(cpu_ticks "$pid"))); done
  echo "$total"
}
declare -A cpu_pid
for instance in $(services_instances); do cpu_pid[$(services_label "$instance")]=$(services_pid "$instance"); done
if [[ -f $stack_dir/pids/registry.pid ]]; then cpu_pid[registry]=$(<"$stack_dir/pids/registry.pid"); fi
# Kafka: the one broker (kafka.pid) or every broker of a cluster (kafka-<i>.pid), summed.
kafka_pids=$(cat "$stack_dir"/pids/kafka.pid "$stack_dir"/pids/kafka-[1-9].pid 2>/dev/null || true)
if [[ -n $kafka_pids ]]; then cpu_pid[kafka]=$(echo $kafka_pids); fi
pg_root=""
if [[ -f $stack_dir/pg/data/postmaster.pid ]]; then pg_root=$(head -n 1 "$stack_dir/pg/data/postmaster.pid"); fi
# shellcheck disable=SC2034  # `into` is a nameref to the caller's associative array
cpu_sample() {
  local -n into=$1
  local name
  # shellcheck disable=SC2086 # cpu_pid[kafka] may list several processes
  for name in "${!cpu_pid[@]}"; do into["$name"]=$(cpu_ticks ${cpu_pid[$name]}); done
  if [[ -n $pg_root ]]; then into["postgres"]=$(pg_ticks "$pg_root"); fi
  # What this shell's finished children used (in this shell, not a subshell): the load generator.
  times >"$work/times"
  into["chorus-load"]=$(awk -v hz="$hz" 'NR == 2 { split($1, u, "m"); split($2, s, "m"); printf "%d", (u[1] * 60 + u[2] + s[1] * 60 + s[2]) * hz }' "$work/times")
}

# Requests the brokers served since they started, by request type ("Produce
# 123"), from their JMX counters, summed over the brokers (broker i's JMX port
# is 100 (i - 1) above the first; a cluster's Fetch includes the followers'
# replication); nothing when JMX cannot be reached (a stack whose broker runs
# without it).
jmx_port=${CHORUS_STACK_KAFKA_JMX_PORT:-9999}
jmx_url="service:jmx:rmi:///jndi/rmi://127.0.0.1:$jmx_port/jmxrmi"
kafka_requests() {
  local i
  for ((i = 0; i < CHORUS_STACK_BROKERS; i++)); do
    timeout 60 bash scripts/stack/kafka-tool.sh jmx --one-time true --report-format csv \
      --jmx-url "service:jmx:rmi:///jndi/rmi://127.0.0.1:$((jmx_port + 100 * i))/jmxrmi" \
      --object-name 'kafka.network:type=RequestMetrics,name=RequestsPerSec,*' --attributes Count 2>/dev/null || true
  done |
    awk -F'"' '/request=Fetch(Consumer|Follower),/ { next } # already counted under Fetch
      match($0, /request=[A-Za-z]+/) { n[substr($0, RSTART + 8, RLENGTH - 8)] += $(NF - 1) }
      END { for (r in n) print r, n[r] }' || true
}

sagas_of() { grep -o '"sagas_per_sec": *[0-9.e+-]*' "$1" | head -n 1 | awk -F': *' '{ print $2 }'; }
max() { echo $(($1 > $2 ? $1 : $2)); }
ramp_args=()
best=0 best_sagas=0
for c in $RAMP; do
  n=$(max "$RAMP_ORDERS" $((4 * c)))
  step "ramp: $n orders at concurrency $c"
  # An order still open after RAMP_ORDER_TIMEOUT s is far past the maximum;
  # waiting the usual 120 s for it would only make an overloaded step long.
  $chorus load --orders "$n" --concurrency "$c" --mix "$MIX" --no-setup --no-costs \
    --order-timeout "$RAMP_ORDER_TIMEOUT" --label "ramp-$c" --out "$work/ramp-$c.json" |
    grep -E 'completed sagas|timeout|rejected|HTTP errors'
  s=$(sagas_of "$work/ramp-$c.json")
  ramp_args+=(--ramp "$work/ramp-$c.json" --meta "ramp_sagas_per_sec.concurrency_$c=$s")
  if awk -v a="$s" -v b="$best_sagas" 'BEGIN { exit !(a > b) }'; then best=$c best_sagas=$s; fi
  # Below half the best so far, the maximum is behind: larger steps only take longer.
  if awk -v a="$s" -v b="$best_sagas" 'BEGIN { exit !(a < b / 2) }'; then
    echo "    (below half of $best_sagas sagas/s: the ramp stops here)"
    break
  fi
done
CONCURRENCY=${CHORUS_BENCH_CONCURRENCY:-$best}
CLOSED_ORDERS=${CLOSED_ORDERS:-$(max 4000 $((6 * CONCURRENCY)))}

step "load: closed loop, $CLOSED_ORDERS orders at concurrency $CONCURRENCY"
declare -A cpu_before cpu_after
cpu_sample cpu_before
kafka_requests >"$work/requests.before"
load_began=$(date +%s.%N)
$chorus load --orders "$CLOSED_ORDERS" --concurrency "$CONCURRENCY" --mix "$MIX" --no-setup \
  --label closed --out "$work/closed.json"
load_secs=$(awk -v a="$(date +%s.%N)" -v b="$load_began" 'BEGIN { printf "%.1f", a - b }')
cpu_sample cpu_after
kafka_requests >"$work/requests.after"
request_args=()
while read -r request count; do
  request_args+=(--meta "kafka_requests.$request=$count")
done < <(awk 'NR == FNR { before[$1] = $2; next } $2 - before[$1] > 0 { print $1, $2 - before[$1] }' \
  "$work/requests.before" "$work/requests.after")
((${#request_args[@]})) || echo "    (Kafka's JMX at $jmx_url did not answer: no request counts)"

sagas=$(sagas_of "$work/closed.json")
rate=$(awk -v s="$sagas" 'BEGIN { r = s / 2; if (r < 1) r = 1; printf "%.1f", r }')
step "load: open loop at $rate orders/s (half of $(printf '%.1f' "$sagas") sagas/s) for $OPEN_SECS s"
$chorus load --rate "$rate" --duration "$OPEN_SECS" --mix "$MIX" --no-setup \
  --label open --out "$work/open.json"
curve_args=()
for fraction in $CURVE; do
  r=$(awk -v s="$sagas" -v f="$fraction" 'BEGIN { r = s * f; if (r < 1) r = 1; printf "%.1f", r }')
  step "latency curve: open loop at $r orders/s ($fraction of the closed loop) for $CURVE_SECS s"
  $chorus load --rate "$r" --duration "$CURVE_SECS" --mix "$MIX" --no-setup --no-costs \
    --label "curve-$fraction" --out "$work/curve-$fraction.json" | grep 'sagas/s' || true
  curve_args+=(--curve "$work/curve-$fraction.json")
done

rss_args=()
for instance in $(services_instances); do
  rss_args+=(--rss "$(services_label "$instance")=${idle_kb[$instance]}:$(proc_kb "$(services_pid "$instance")" VmHWM)")
done
cpu_args=()
for name in "${!cpu_after[@]}"; do
  secs=$(awk -v a="${cpu_after[$name]}" -v b="${cpu_before[$name]:-0}" -v hz="$hz" 'BEGIN { printf "%.2f", (a - b) / hz }')
  cpu_args+=(--meta "cpu_secs.$name=$secs")
done

step "results"
cpu_model=$(awk -F': *' '/^model name/ { print $2; exit }' /proc/cpuinfo)
mem_gib=$(awk '/^MemTotal/ { printf "%.0f", $2 / 1048576 }' /proc/meminfo)
$chorus bench report --kafka "$work/kafka.json" --pg "$work/pg.json" \
  --closed "$work/closed.json" --open "$work/open.json" --curve "$work/open.json" "${curve_args[@]}" \
  "${rss_args[@]}" "${cpu_args[@]}" "${request_args[@]}" "${ramp_args[@]}" \
  --meta "started=$stamp" --meta "commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)" \
  --meta "machine=$(nproc) cores, $cpu_model, ${mem_gib} GiB RAM, $(uname -sr)" \
  --meta "closed_load_wall_secs=$load_secs" --meta "mix=$MIX" --meta "worker_replicas=$SERVICES_REPLICAS" \
  --out "$results/$stamp.json" | tee "$results/$stamp.md"
rm -rf "$work"

printf '\nresults: %s.json (and .md)\n' "$results/$stamp"
total=$(($(date +%s) - began))
printf 'make bench took %dm%02ds\n' $((total / 60)) $((total % 60)) | tee -a "$results/$stamp.md"
