# shellcheck shell=bash
# The chorus services as background processes of the sourcing script: each
# of the four workers CHORUS_REPLICAS times (default 1; the replicas of a
# worker share its consumer group and split its partitions) and one gateway.
# Sourced by scripts/run.sh, scripts/bench.sh and scripts/chaos.sh from the
# repository root. The one place that knows names, ports and log files:
#
#   instance   order-1 … order-N, inventory-1 …, notification-N, gateway
#   port       gateway CHORUS_GATEWAY_PORT (8000); worker k (order 1,
#              inventory 2, payment 3, notification 4), replica i:
#              CHORUS_WORKER_PORT_BASE (9100) + k + 10 (i - 1), so one
#              replica each keeps 9101-9104
#   admin port where /readyz and /metrics are served: a worker's own port;
#              the gateway's CHORUS_ADMIN_ADDR, 127.0.0.1 on
#              CHORUS_WORKER_PORT_BASE (9100), the slot the workers leave free
#   log        .stack/logs/chorus-<service>.log with one replica each,
#              chorus-<service>-<i>.log with more (CHORUS_STACK_DIR moves .stack)
#   Kafka      the CLI (and anything else the sourcing script runs) talks to
#              every broker of the stack through its plaintext listener, the
#              administrator (CHORUS_KAFKA_BROKERS, from `scripts/stack.sh env`);
#              each service instance connects through the brokers' SASL
#              listeners as its own user, chorus-<service> (password the same),
#              so the broker's ACLs (`chorus acls apply`) apply to it as in
#              production. Not when the caller set CHORUS_KAFKA_SECURITY_PROTOCOL
#              (its own cluster), nor with CHORUS_STACK_PRINCIPALS=admin (every
#              service through the plaintext listener, as the administrator),
#              nor when the stack has no SASL listener (the Docker stack)
#
#   services_check_config               fails naming the variable if one above is bad
#   services_kafka_summary              how the services connect to Kafka, one line
#   services_ports_free                 fails, naming it, if a service port is taken
#   services_start [BIN_DIR]            starts every instance (default target/release) with the caller's environment
#                                       (and each its own Kafka user, see Kafka above, and a
#                                       development payment-token key, see services_payment_key)
#   services_start_one INSTANCE [BIN_DIR]  (re)starts one, appending to its log
#   services_wait_ready [INSTANCE…]     waits for each /readyz (default all); fails naming the first that is not ready
#   services_instances                  every instance's name, one a line
#   services_port / services_log / services_label INSTANCE   its port, log file, name in reports
#   services_admin_port INSTANCE        the port of its /readyz and /metrics
#   services_pid INSTANCE               the PID of a started instance
#   services_kill INSTANCE              SIGKILL, and reap it
#   services_term INSTANCE              SIGTERM, and wait for it to exit (at most 30 s); its exit status
#   services_stop                       TERM, then wait for each

WORKER_SERVICES=(order inventory payment notification)
SERVICES_REPLICAS=${CHORUS_REPLICAS:-1}
SERVICES_GATEWAY_PORT=${CHORUS_GATEWAY_PORT:-8000}
SERVICES_WORKER_PORT_BASE=${CHORUS_WORKER_PORT_BASE:-9100}
SERVICES_LOGS=${CHORUS_STACK_DIR:-.stack}/logs
# shellcheck disable=SC2034 # for the sourcing scripts
SERVICES_GATEWAY_URL=http://127.0.0.1:$SERVICES_GATEWAY_PORT
declare -A SERVICE_PID=()

# The stack's brokers (CHORUS_STACK_BROKERS of them, on the ports of
# scripts/stack.sh, a second stack's included): CHORUS_STACK_KAFKA_BROKERS and
# CHORUS_STACK_KAFKA_SASL_BROKERS. The CLI and the services go to them unless
# told otherwise.
services_stack_env() {
  local lines
  lines=$(bash scripts/stack.sh env) || return 1
  eval "$lines"
}
services_stack_env || return 1
export CHORUS_KAFKA_BROKERS=${CHORUS_KAFKA_BROKERS:-$CHORUS_STACK_KAFKA_BROKERS}
SERVICES_PRINCIPALS=${CHORUS_STACK_PRINCIPALS:-per-service}
SERVICES_KAFKA_SASL="" # set by services_start: the services' own users through SASL
if [[ -n ${CHORUS_STACK_REGISTRY_PORT:-} ]]; then
  export CHORUS_SCHEMA_REGISTRY_URL=${CHORUS_SCHEMA_REGISTRY_URL:-http://127.0.0.1:$CHORUS_STACK_REGISTRY_PORT/apis/ccompat/v7}
fi
if [[ -n ${CHORUS_STACK_PG_PORT:-} ]]; then
  export CHORUS_PG_ADMIN_URL=${CHORUS_PG_ADMIN_URL:-postgres://chorus:chorus@127.0.0.1:$CHORUS_STACK_PG_PORT/postgres}
fi

# services_db_env SERVICE: the database URLs of SERVICE on a PostgreSQL at
# CHORUS_STACK_PG_PORT (none otherwise: the services' defaults are the
# usual stack's), as NAME=VALUE words for env.
services_db_env() {
  local port=${CHORUS_STACK_PG_PORT:-} svc=$1
  [[ -n $port ]] || return 0
  local at="127.0.0.1:$port"
  echo "CHORUS_DATABASE_URL=postgres://chorus_$svc:chorus_$svc@$at/chorus_$svc"
  if [[ $svc == gateway ]]; then
    echo "CHORUS_ORDER_DB_URL=postgres://chorus_gateway_ro:chorus_gateway_ro@$at/chorus_order"
    echo "CHORUS_INVENTORY_DB_URL=postgres://chorus_gateway_ro:chorus_gateway_ro@$at/chorus_inventory"
  fi
}

services_check_config() {
  local var
  for var in CHORUS_REPLICAS CHORUS_GATEWAY_PORT CHORUS_WORKER_PORT_BASE; do
    if [[ -n ${!var:-} && ! ${!var} =~ ^[1-9][0-9]*$ ]]; then
      echo "$var=${!var} must be a positive whole number" >&2
      return 1
    fi
  done
  if [[ $SERVICES_PRINCIPALS != per-service && $SERVICES_PRINCIPALS != admin ]]; then
    echo "CHORUS_STACK_PRINCIPALS=$SERVICES_PRINCIPALS must be per-service or admin" >&2
    return 1
  fi
  if ((SERVICES_REPLICAS > 9)); then
    echo "CHORUS_REPLICAS=$SERVICES_REPLICAS: at most 9 replicas of each worker (their ports are 10 apart)" >&2
    return 1
  fi
}

# Every instance, workers first (replica by replica), the gateway last.
services_instances() {
  local i svc
  for ((i = 1; i <= SERVICES_REPLICAS; i++)); do
    for svc in "${WORKER_SERVICES[@]}"; do echo "$svc-$i"; done
  done
  echo gateway
}

# The name reports use: the service's own with one replica each (order), the
# instance's with more (order-2).
services_label() {
  if [[ $1 == gateway || $SERVICES_REPLICAS == 1 ]]; then echo "${1%-[0-9]*}"; else echo "$1"; fi
}

services_port() {
  local svc=${1%-[0-9]*} i=${1##*-} k
  if [[ $1 == gateway ]]; then
    echo "$SERVICES_GATEWAY_PORT"
    return 0
  fi
  for k in "${!WORKER_SERVICES[@]}"; do
    if [[ ${WORKER_SERVICES[$k]} == "$svc" ]]; then
      echo $((SERVICES_WORKER_PORT_BASE + k + 1 + 10 * (i - 1)))
      return 0
    fi
  done
  return 1
}

services_admin_port() {
  if [[ $1 == gateway ]]; then echo "$SERVICES_WORKER_PORT_BASE"; else services_port "$1"; fi
}

services_log() { echo "$SERVICES_LOGS/chorus-$(services_label "$1").log"; }

services_ports_free() {
  services_check_config || return 1
  local instance port
  for instance in $(services_instances); do
    for port in $(services_port "$instance") $(services_admin_port "$instance"); do
      if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
        echo "port $port ($instance) is already in use (is \`make run\` still running?); stop it first" >&2
        return 1
      fi
    done
  done
}

# services_kafka_choose: whether the services connect with their own users
# (SERVICES_KAFKA_SASL), decided once the stack is up.
services_kafka_choose() {
  SERVICES_KAFKA_SASL=""
  [[ -z ${CHORUS_KAFKA_SECURITY_PROTOCOL:-} && $SERVICES_PRINCIPALS == per-service ]] || return 0
  local first=${CHORUS_STACK_KAFKA_SASL_BROKERS%%,*}
  if (exec 3<>"/dev/tcp/${first%:*}/${first##*:}") 2>/dev/null; then
    SERVICES_KAFKA_SASL=$CHORUS_STACK_KAFKA_SASL_BROKERS
  else
    echo "no SASL listener at $first (a Docker stack?): the services connect through $CHORUS_KAFKA_BROKERS as the administrator" >&2
  fi
}

services_kafka_summary() {
  if [[ -n $SERVICES_KAFKA_SASL ]]; then
    echo "each service as chorus-<service> (SCRAM-SHA-512) through $SERVICES_KAFKA_SASL"
  elif [[ -n ${CHORUS_KAFKA_SECURITY_PROTOCOL:-} ]]; then
    echo "as configured: $CHORUS_KAFKA_BROKERS ($CHORUS_KAFKA_SECURITY_PROTOCOL${CHORUS_KAFKA_SASL_USERNAME:+, user $CHORUS_KAFKA_SASL_USERNAME})"
  else
    echo "every service through $CHORUS_KAFKA_BROKERS (plaintext, the administrator)"
  fi
}

# services_kafka_env SERVICE: its own Kafka user, as NAME=VALUE words for env
# (nothing when the services connect as the caller configured).
services_kafka_env() {
  [[ -n $SERVICES_KAFKA_SASL ]] || return 0
  echo "CHORUS_KAFKA_BROKERS=$SERVICES_KAFKA_SASL"
  echo "CHORUS_KAFKA_SECURITY_PROTOCOL=sasl_plaintext"
  echo "CHORUS_KAFKA_SASL_MECHANISM=SCRAM-SHA-512"
  echo "CHORUS_KAFKA_SASL_USERNAME=chorus-$1"
  echo "CHORUS_KAFKA_SASL_PASSWORD=chorus-$1"
}

services_start_one() {
  local instance=$1 bin=${2:-target/release}
  local svc=${instance%-[0-9]*} vars
  mapfile -t vars < <(services_db_env "$svc"; services_kafka_env "$svc")
  # Each worker replica keeps its identity across restarts, as a deployment
  # gives each (and the same health port, services_port): static group
  # membership (on unless CHORUS_STATIC_MEMBERSHIP=false) then takes its
  # partitions back without a rebalance.
  if [[ $instance != gateway ]]; then
    vars+=("CHORUS_INSTANCE_ID=$instance")
  else
    vars+=("CHORUS_ADMIN_ADDR=127.0.0.1:$(services_admin_port gateway)")
  fi
  vars+=("CHORUS_HTTP_ADDR=127.0.0.1:$(services_port "$instance")")
  # Exported by the shell, not passed to env(1): the Kafka and database
  # passwords in them never stand on a command line (ps, /proc/<pid>/cmdline).
  (
    export "${vars[@]}"
    exec "$bin/chorus-$svc"
  ) >>"$(services_log "$instance")" 2>&1 &
  SERVICE_PID[$instance]=$!
}

# Payment tokens are sealed in local runs too: unless CHORUS_PAYMENT_TOKEN_KEY
# is given, a development key made once per state directory (readable by its
# owner only) is exported to the services and to the CLI run beside them.
services_payment_key() {
  [[ -n ${CHORUS_PAYMENT_TOKEN_KEY:-} ]] && return 0
  local file=${CHORUS_STACK_DIR:-.stack}/payment-token.key
  if [[ ! -s $file ]]; then
    mkdir -p "$(dirname "$file")"
    (umask 077 && head -c 32 /dev/urandom | base64 >"$file")
  fi
  CHORUS_PAYMENT_TOKEN_KEY=$(<"$file")
  export CHORUS_PAYMENT_TOKEN_KEY
}

services_start() {
  local bin=${1:-target/release} instance
  services_check_config || return 1
  services_payment_key
  services_kafka_choose
  mkdir -p "$SERVICES_LOGS"
  SERVICE_PID=()
  for instance in $(services_instances); do
    : >"$(services_log "$instance")"
    services_start_one "$instance" "$bin"
  done
}

services_wait_ready() {
  local instance port
  if (($# == 0)); then
    local all
    mapfile -t all < <(services_instances)
    set -- "${all[@]}"
  fi
  for instance in "$@"; do
    port=$(services_admin_port "$instance")
    for _ in $(seq 1 150); do
      curl -fs -o /dev/null "http://127.0.0.1:$port/readyz" && break
      kill -0 "${SERVICE_PID[$instance]:-0}" 2>/dev/null || break
      sleep 0.2
    done
    curl -fsS -o /dev/null "http://127.0.0.1:$port/readyz" 2>/dev/null || {
      echo "$instance (port $port) did not become ready; see $(services_log "$instance")" >&2
      return 1
    }
  done
}

services_pid() { echo "${SERVICE_PID[$1]:-}"; }

services_kill() {
  local pid=${SERVICE_PID[$1]:-}
  [[ -n $pid ]] || return 0
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  unset "SERVICE_PID[$1]"
}

# A clean stop: SIGTERM, then its exit status once it has exited; 124 (after
# a SIGKILL) when it is still running 30 s later.
services_term() {
  local pid=${SERVICE_PID[$1]:-} status=0 waited=0 exited=0
  [[ -n $pid ]] || return 0
  kill -TERM "$pid" 2>/dev/null || true
  while kill -0 "$pid" 2>/dev/null && ((waited < 300)); do
    sleep 0.1
    waited=$((waited + 1))
  done
  if kill -0 "$pid" 2>/dev/null; then
    kill -KILL "$pid" 2>/dev/null || true
    status=124
  fi
  wait "$pid" 2>/dev/null || exited=$?
  ((status == 124)) || status=$exited
  unset "SERVICE_PID[$1]"
  return "$status"
}

services_stop() {
  local pid
  for pid in "${SERVICE_PID[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${SERVICE_PID[@]}"; do wait "$pid" 2>/dev/null || true; done
  SERVICE_PID=()
}
