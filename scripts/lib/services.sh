# shellcheck shell=bash
# The five chorus services (four workers and the gateway) as background
# processes of the sourcing script, logs in .stack/logs/chorus-<service>.log.
# Sourced by scripts/run.sh and scripts/bench.sh from the repository root:
#
#   services_ports_free                 fails, naming it, if a service port is taken
#   services_start [BIN_DIR]            starts them (default target/release) with the caller's environment
#   services_wait_ready                 waits for every /readyz; fails naming the first that is not ready
#   services_pid NAME                   the PID of a started service (order, …, gateway)
#   services_stop                       TERM, then wait for each

SERVICES=(order inventory payment notification gateway)
SERVICE_PORTS=(9101 9102 9103 9104 8000)
SERVICES_LOGS=.stack/logs
SERVICE_PIDS=()

services_ports_free() {
  local port
  for port in "${SERVICE_PORTS[@]}"; do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      echo "port $port is already in use (is \`make run\` still running?); stop it first" >&2
      return 1
    fi
  done
}

services_start() {
  local bin=${1:-target/release} svc
  mkdir -p "$SERVICES_LOGS"
  SERVICE_PIDS=()
  for svc in "${SERVICES[@]}"; do
    "$bin/chorus-$svc" >"$SERVICES_LOGS/chorus-$svc.log" 2>&1 &
    SERVICE_PIDS+=("$!")
  done
}

services_wait_ready() {
  local port
  for port in "${SERVICE_PORTS[@]}"; do
    for _ in $(seq 1 150); do
      curl -fs -o /dev/null "http://127.0.0.1:$port/readyz" && break
      sleep 0.2
    done
    curl -fsS -o /dev/null "http://127.0.0.1:$port/readyz" || {
      echo "a service on port $port did not become ready; see $SERVICES_LOGS/chorus-*.log" >&2
      return 1
    }
  done
}

services_pid() {
  local i
  for i in "${!SERVICES[@]}"; do
    if [[ ${SERVICES[$i]} == "$1" ]]; then
      echo "${SERVICE_PIDS[$i]:-}"
      return 0
    fi
  done
  return 1
}

services_stop() {
  local pid
  for pid in "${SERVICE_PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${SERVICE_PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  SERVICE_PIDS=()
}
