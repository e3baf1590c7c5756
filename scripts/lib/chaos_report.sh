# shellcheck shell=bash disable=SC2154 # the variables are scripts/chaos.sh's
# The report of a `make chaos` campaign: bench/results/chaos-<time>.json
# (every figure, the load's and the check's own JSON, the driver's events)
# and the table on stdout and in chaos-<time>.md. Sourced by scripts/chaos.sh,
# whose variables it reads; the one place that knows the report's fields.

# latency: p50, p99 and max of the load's POST → final status, in ms.
latency() {
  local all k
  all=$(load_field latency_ms)
  for k in p50 p99 max; do
    printf '%s %s ' "$k" "$(grep -o "\"$k\": *[0-9.]*" <<<"$all" | awk -F': *' '{ printf "%.0f", $2 }')"
  done
}
# The file's JSON object, or null when there is none.
json_or_null() { if [[ $(head -c 1 "$1" 2>/dev/null) == "{" ]]; then cat "$1"; else echo null; fi; }
# load_field NAME: the load result's top-level object NAME on one line.
load_field() { tr -d '\n' <"$work/load.json" 2>/dev/null | grep -o "\"$1\": *{[^}]*}" | sed -E "s/\"$1\": *//; s/ +/ /g"; }
# HTTP 503 answers the load received (orders refused, or status polls), 0 when none.
http_503() { load_field http_errors | grep -o '"503": *[0-9]*' | awk -F': *' '{ n += $2 } END { print n + 0 }'; }
# Of those, the ones the gateway gave because Kafka did not take the event
# (its log names the dependency of every 503; the others are PostgreSQL's).
kafka_503() {
  tail -n "+$((${gateway_log_from:-0} + 1))" "$(services_log gateway)" 2>/dev/null |
    sed 's/\x1b\[[0-9;]*m//g' | grep -c 'answering 503 dependency="kafka"' || true
}
# The Kafka kill: which broker, for how long, and what it led.
kafka_kill_figure() {
  [[ -n $kafka_down_secs ]] || { echo "not done"; return 0; }
  if ((BROKERS == 1)); then
    echo "$kafka_down_secs (the one broker)"
  else
    echo "$kafka_down_secs ($kafka_victim of $BROKERS${kafka_victim_led:+, leader of $kafka_victim_led ${CHORUS_TOPIC_NAMESPACE:-chorus} partitions})"
  fi
}

chaos_write_json() {
  {
    printf '{\n'
    printf '  "started": "%s",\n  "commit": "%s",\n' "$stamp" "$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
    printf '  "machine": "%s cores, %s",\n' "$(nproc)" "$cpu_model"
    printf '  "passed": %s,\n  "total_secs": %d,\n' "$passed" "$total"
    printf '  "static_membership": %s,\n' "$([[ ${CHORUS_STATIC_MEMBERSHIP:-} == true ]] && echo true || echo false)"
    printf '  "orders": %d,\n  "rate_per_sec": %d,\n  "order_timeout_secs": %d,\n  "mix": "%s",\n  "worker_replicas": %d,\n' \
      "$ORDERS" "$RATE" "$ORDER_TIMEOUT" "$MIX" "$SERVICES_REPLICAS"
    printf '  "load_secs": %d,\n  "load_exit_status": %s,\n' "$load_secs" "${load_rc:-null}"
    printf '  "worker_sigkills": %d,\n' "$kills"
    printf '  "sigterm_restarts": %d,\n  "unclean_stops": %d,\n' "$rolling_restarts" "$unclean_stops"
    printf '  "designed_fates_from_ms": %s,\n' "${designed_from_ms:-null}"
    printf '  "kafka_brokers": %d,\n  "kafka_killed_broker": "%s",\n  "kafka_killed_broker_led_partitions": "%s",\n' \
      "$BROKERS" "$kafka_victim" "$kafka_victim_led"
    printf '  "kafka_down_secs": %s,\n  "postgres_down_secs": %s,\n' "${kafka_down_secs:-null}" "${postgres_down_secs:-null}"
    printf '  "http_503": %d,\n  "http_503_kafka": %d,\n' "$(http_503)" "$(kafka_503)"
    printf '  "registry_down_secs": %s,\n  "worker_restarted_during_registry_outage": "%s",\n' "${registry_down_secs:-null}" "$cold_worker"
    printf '  "poison_messages": %d,\n  "poison_exit_status": %s,\n' "$POISON" "${poison_rc:-null}"
    printf '  "settled": %s,\n  "settle_secs": %d,\n' "$settled" "$settle_secs"
    printf '  "exited_on_their_own": %d,\n' "$own_exit_total"
    printf '  "check_exit_status": %d,\n' "$check_rc"
    printf '  "load": %s,\n' "$(json_or_null "$work/load.json")"
    printf '  "check": %s,\n' "$(json_or_null "$work/check.json")"
    printf '  "events": [\n%s\n  ]\n' "$(sed 's/^/    /; $!s/$/,/' "$events")"
    printf '}\n'
  } >"$results/chaos-$stamp.json"
}

chaos_print_table() {
  fig() { printf '| %-46s | %s |\n' "$1" "$2"; }
  {
    printf '| figure | value |\n|---|---|\n'
    fig "orders offered (open loop, per second)" "$ORDERS ($RATE/s)"
    fig "worker replicas / static group membership" "$SERVICES_REPLICAS of each / ${CHORUS_STATIC_MEMBERSHIP:-false}"
    fig "Kafka brokers" "$BROKERS"
    fig "load: wall seconds / exit status" "$load_secs / ${load_rc:-?}"
    fig "load: completed sagas/s" "$(grep -o '"sagas_per_sec": *[0-9.e+-]*' "$work/load.json" 2>/dev/null | head -n 1 | awk -F': *' '{ printf "%.1f", $2 }')"
    fig "load: orders final within the order timeout" "$(grep -o '"completed": *[0-9]*' "$work/load.json" 2>/dev/null | awk -F': *' '{ print $2 }')"
    fig "load: POST → final status (ms)" "$(latency)"
    fig "load: outcomes" "$(load_field outcomes)"
    fig "load: HTTP errors" "$(load_field http_errors)"
    fig "load: HTTP 503 answers / of them for Kafka" "$(http_503) / $(kafka_503)"
    fig "worker processes SIGKILLed and restarted" "$kills"
    fig "rolling restart: SIGTERMed and restarted / unclean" "$rolling_restarts of ${#rolling[@]} / $unclean_stops"
    fig "Kafka kill -9 → broker back (s)" "$(kafka_kill_figure)"
    fig "PostgreSQL restart (s)" "${postgres_down_secs:-not done}"
    fig "schema registry outage (s) / worker restarted in it" "${registry_down_secs:-not done} / ${cold_worker:-none}"
    fig "poison messages sent / exit status" "$POISON / ${poison_rc:-?}"
    fig "settled (lag 0, outbox 0) / seconds" "$settled / $settle_secs"
    fig "invariant check exit status" "$check_rc"
    fig "processes that exited on their own" "$own_exit_total"
    fig "campaign total (s)" "$total"
    fig "PASSED" "$passed"
  } | tee "$results/chaos-$stamp.md"
}
