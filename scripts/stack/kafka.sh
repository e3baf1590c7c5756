# shellcheck shell=bash disable=SC2154,SC2153 # the variables and helpers are scripts/stack.sh's
# The stack's Kafka: a KRaft cluster of BROKERS (CHORUS_STACK_BROKERS, 1 to 9)
# combined broker+controller nodes as plain processes. Sourced by
# scripts/stack.sh, whose helpers (say, fail, launch, running, …) it uses.
#
# Node i (1-based, node.id i) listens on the base ports + 100 (i - 1): client
# (PLAINTEXT) 9092, controller 9093, SASL_PLAINTEXT 9094, JMX 9999 for node 1,
# 9192 / 9193 / 9194 / 10099 for node 2, and so on.
#   one broker   pid and log `kafka`, storage .stack/kafka/{server.properties,data},
#                a dynamic quorum of one (`format --standalone`)
#   N brokers    pid and log `kafka-<i>`, storage .stack/kafka/brokers-N/node-<i>/
#                (so a one-broker and a three-broker storage coexist), a static
#                voter set formatted with one shared cluster id; replication
#                factor min(3, N), min.insync.replicas 2 from three brokers on
#                (1 with two), for the internal topics too; a broker that stops
#                heartbeating is fenced after 6 s, so its partitions move within seconds.

SCRAM_USERS=("$SASL_USERNAME" chorus-gateway chorus-order chorus-inventory chorus-payment chorus-notification)
# The operator's password may be set (CHORUS_STACK_SASL_PASSWORD); a
# service's is its name (development credentials).
scram_password() { if [[ $1 == "$SASL_USERNAME" ]]; then echo "$SASL_PASSWORD"; else echo "$1"; fi; }

node_port() { echo $(($1 + 100 * ($2 - 1))); }
node_name() { if ((BROKERS == 1)); then echo kafka; else echo "kafka-$1"; fi; }
# The storage of this cluster size: node directories, SCRAM marker.
kafka_storage() { if ((BROKERS == 1)); then echo "$KAFKA_DIR"; else echo "$KAFKA_DIR/brokers-$BROKERS"; fi; }
node_dir() { if ((BROKERS == 1)); then echo "$KAFKA_DIR"; else echo "$(kafka_storage)/node-$1"; fi; }
node_addr() { echo "127.0.0.1:$(node_port "$KAFKA_PORT" "$1")"; }
node_sasl_addr() { echo "127.0.0.1:$(node_port "$KAFKA_SASL_PORT" "$1")"; }
node_controller_addr() { echo "127.0.0.1:$(node_port "$KAFKA_CONTROLLER_PORT" "$1")"; }
node_jmx_port() { node_port "$KAFKA_JMX_PORT" "$1"; }
kafka_nodes() { seq 1 "$BROKERS"; }
# kafka_addrs [sasl]: every node's client (or SASL) address, comma-separated.
kafka_addrs() {
  local i out=""
  for i in $(kafka_nodes); do
    if [[ ${1:-} == sasl ]]; then out+=,$(node_sasl_addr "$i"); else out+=,$(node_addr "$i"); fi
  done
  echo "${out#,}"
}
kafka_summary() {
  if ((BROKERS == 1)); then echo "1 broker"; else echo "$BROKERS brokers, replication factor $(kafka_rf), min.insync.replicas $(kafka_min_isr)"; fi
}
kafka_rf() { echo $((BROKERS < 3 ? BROKERS : 3)); }
kafka_min_isr() { echo $((BROKERS < 3 ? 1 : 2)); }

kafka_libs_ready() { [[ -f $KAFKA_LIB/.complete ]] && cmp -s "$KAFKA_LIB/.complete" "$HERE/kafka-pom.xml"; }

kafka_download() {
  kafka_libs_ready && return 0
  local t0 log="$LOGS/kafka-download.log"
  t0=$(now)
  need mvn "apt-get install maven"
  rm -rf "$KAFKA_LIB"
  rm -f "$KAFKA_DIR"/*.jsa # class-data archives of the old class path
  if ! mvn -B -q -f "$HERE/kafka-pom.xml" \
    dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$KAFKA_LIB" >"$log" 2>&1; then
    fail kafka-download "could not assemble the Kafka class path with Maven"
  fi
  rm -rf "$HERE/target" # copy-dependencies may leave an empty target/ beside the pom
  cp "$HERE/kafka-pom.xml" "$KAFKA_LIB/.complete"
  say "kafka: downloaded Kafka $KAFKA_VERSION class path ($(ls "$KAFKA_LIB"/*.jar | wc -l) jars) ($(since "$t0"))"
}

# kafka_render NODE - server.properties of that node for this stack's
# directory and ports, on stdout. One broker: the template as it is.
kafka_render() {
  local i=$1 voters="" v
  sed -e "s#@LOG_DIRS@#$(node_dir "$i")/data#" -e "s#@KAFKA_PORT@#$(node_port "$KAFKA_PORT" "$i")#g" \
    -e "s#@CONTROLLER_PORT@#$(node_port "$KAFKA_CONTROLLER_PORT" "$i")#g" \
    -e "s#@SASL_PORT@#$(node_port "$KAFKA_SASL_PORT" "$i")#g" \
    "$HERE/kafka-server.properties" |
    if ((BROKERS == 1)); then cat; else
      for v in $(kafka_nodes); do voters+=",$v@$(node_controller_addr "$v")"; done
      local rf isr
      rf=$(kafka_rf) isr=$(kafka_min_isr)
      sed -e "s#^node.id=.*#node.id=$i#" \
        -e "s#^controller.quorum.bootstrap.servers=.*#controller.quorum.voters=${voters#,}#" \
        -e "s#^\(default.replication.factor\|offsets.topic.replication.factor\|transaction.state.log.replication.factor\|share.coordinator.state.topic.replication.factor\)=.*#\1=$rf#" \
        -e "s#^\(min.insync.replicas\|transaction.state.log.min.isr\|share.coordinator.state.topic.min.isr\)=.*#\1=$isr#"
      cat <<EOF

# Node $i of a cluster of $BROKERS (scripts/stack.sh): a broker that stops
# heartbeating (kill -9) is fenced after 6 s instead of 9, and leaves the ISRs,
# so its partitions get new leaders within seconds. The quorum tolerates a
# node stalled for 3 s (a garbage collection or an fsync on a busy disk; all
# nodes share one machine) without an election: its fetch and request
# timeouts are 5 s instead of 2.
broker.session.timeout.ms=6000
broker.heartbeat.interval.ms=1000
controller.quorum.fetch.timeout.ms=5000
controller.quorum.request.timeout.ms=5000
EOF
    fi
}

kafka_config() {
  mkdir -p "$(node_dir "$1")/data"
  kafka_render "$1" >"$(node_dir "$1")/server.properties"
}

# A running broker keeps the configuration it started with; say so when the
# template has changed since (e.g. a listener was added).
kafka_config_current() {
  cmp -s <(kafka_render "$1") "$(node_dir "$1")/server.properties" ||
    say "$(node_name "$1"): running with an older server.properties; \`scripts/stack.sh restart kafka\` applies the new one"
}

# kafka_java_opts NODE - the JVM options of that node, one a line.
kafka_java_opts() {
  # Every node of a cluster holds a replica of every partition (replication
  # factor 3): a day of tests leaves thousands, and 384 MB ran out.
  if ((BROKERS == 1)); then printf '%s\n' -Xms512m -Xmx512m; else printf '%s\n' -Xms1g -Xmx1g; fi
  printf '%s\n' -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35 \
    -XX:+ExplicitGCInvokesConcurrent -XX:MaxInlineLevel=15 -Djava.awt.headless=true
  # JMX without authentication, bound to loopback: the bench reads the
  # broker's request counters (scripts/stack/kafka-tool.sh jmx).
  printf '%s\n' -Dcom.sun.management.jmxremote -Dcom.sun.management.jmxremote.host=127.0.0.1 \
    -Djava.rmi.server.hostname=127.0.0.1 \
    -Dcom.sun.management.jmxremote.port="$(node_jmx_port "$1")" \
    -Dcom.sun.management.jmxremote.rmi.port="$(node_jmx_port "$1")" \
    -Dcom.sun.management.jmxremote.authenticate=false -Dcom.sun.management.jmxremote.ssl=false
}

cluster_id_of() { awk -F= '$1 == "cluster.id" { print $2 }' "$(node_dir "$1")/data/meta.properties" 2>/dev/null || true; }

# kafka_format NODE… - format the storage of each node that has none, with
# the cluster's id (that of a node formatted before, or a new one).
kafka_format() {
  local missing=() i id="" t0 pids=() log
  for i in "$@"; do [[ -f $(node_dir "$i")/data/meta.properties ]] || missing+=("$i"); done
  ((${#missing[@]})) || return 0
  t0=$(now)
  for i in $(kafka_nodes); do
    id=$(cluster_id_of "$i")
    [[ -n $id ]] && break
  done
  # A cluster id is 16 random bytes in unpadded URL-safe base64 (what
  # `StorageTool random-uuid` prints), without paying for a JVM start. Like
  # Kafka's own Uuid.randomUuid, never one starting with '-', which the
  # tool's argument parser would take for an option (1 draw in 64).
  [[ -n $id ]] || id=-
  while [[ $id == -* ]]; do
    id=$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=')
  done
  # One node forms a quorum of itself (--standalone); a cluster's voters are
  # in its server.properties (controller.quorum.voters). The SASL users are
  # not written here: `format --add-scram` takes the password on its command
  # line, where any local user could read it (ps, /proc); kafka_scram_user
  # adds them from files once the brokers run.
  local args=(-t "$id")
  ((BROKERS == 1)) && args+=(--standalone)
  for i in "${missing[@]}"; do
    log=$(node_name "$i")-format
    java -Xmx256m -XX:TieredStopAtLevel=1 -XX:+UseSerialGC \
      -Dlog4j2.configurationFile="$HERE/kafka-tools-log4j2.properties" \
      -cp "$KAFKA_LIB/*" kafka.tools.StorageTool format "${args[@]}" \
      -c "$(node_dir "$i")/server.properties" >"$LOGS/$log.log" 2>&1 &
    pids+=($!)
  done
  for i in "${!pids[@]}"; do
    wait "${pids[$i]}" ||
      fail "$(node_name "${missing[$i]}")-format" "could not format the KRaft storage in $(rel "$(node_dir "${missing[$i]}")/data")"
  done
  local what="storage"
  ((BROKERS == 1)) || what="storage of node ${missing[*]} of $BROKERS"
  say "kafka: formatted $what, cluster id $id ($(since "$t0"))"
}

# What the SASL users were made for: this storage (its cluster id), these
# users, these passwords (a digest of them, not the passwords).
scram_marker() {
  local u all=""
  for u in "${SCRAM_USERS[@]}"; do all+="$u=$(scram_password "$u");"; done
  printf '%s %s %s\n' "$(cluster_id_of 1)" "${SCRAM_USERS[*]}" "$(printf '%s' "$all" | sha256sum | cut -c1-16)"
}

# A new storage (or one whose users were made for other passwords) gets the
# users through the plaintext listener once, as an operator adds them:
# kafka-configs --alter, one user a call (the tool alters one entity at a
# time), all at once. Each password goes in a properties file readable by
# its owner alone (--add-config-file), never on a command line; the file is
# deleted once the user exists.
kafka_scram_user() {
  local file u pids=() secrets=() secret
  file=$(kafka_storage)/scram-user
  [[ -f $file ]] && [[ $(scram_marker) == "$(cat "$file")" ]] && return 0
  for u in "${SCRAM_USERS[@]}"; do
    secret=$(kafka_storage)/scram-$u.properties
    secrets+=("$secret")
    # printf is a shell builtin: the password is on no process's command line.
    (umask 077 && printf 'SCRAM-SHA-512=password=%s\n' "$(scram_password "$u" | sed 's/\\/\\\\/g')" >"$secret")
    "$HERE/kafka-tool.sh" configs --bootstrap-server "$(kafka_addrs)" --alter \
      --add-config-file "$secret" \
      --entity-type users --entity-name "$u" >>"$LOGS/kafka-tool.log" 2>&1 &
    pids+=($!)
  done
  local rc=0
  for u in "${!pids[@]}"; do
    wait "${pids[$u]}" || rc=$((u + 1))
  done
  rm -f "${secrets[@]}"
  ((rc == 0)) || fail kafka-tool "could not add the SASL user ${SCRAM_USERS[rc - 1]}"
  scram_marker >"$file"
  say "kafka: added SASL users ${SCRAM_USERS[*]} (SCRAM-SHA-512)"
}

# kafka_running_size - how many brokers the running Kafka has (nothing when
# none runs), whatever CHORUS_STACK_BROKERS says.
kafka_running_size() {
  if running kafka; then
    echo 1
    return 0
  fi
  local f pid cmd
  for f in "$PIDS"/kafka-[1-9].pid; do
    [[ -f $f ]] || continue
    pid=$(<"$f")
    is_ours "$pid" "$(marker kafka-1)" || continue
    cmd=$(tr '\0' ' ' <"/proc/$pid/cmdline")
    cmd=${cmd#*"$KAFKA_DIR/brokers-"}
    echo "${cmd%%/*}"
    return 0
  done
}

# kafka_pid_names - the pid names of every broker that may run, any size.
kafka_pid_names() {
  local f
  echo kafka
  for f in "$PIDS"/kafka-[1-9].pid; do [[ -f $f ]] && basename "$f" .pid; done
  return 0
}

KAFKA_T0=
KAFKA_STARTED=()
# kafka_start [NODE…] - start those nodes (default all) that are not running.
# A Kafka running with another number of brokers is stopped first.
kafka_start() {
  local size nodes=("$@") todo=() i name
  size=$(kafka_running_size)
  if [[ -n $size && $size != "$BROKERS" ]]; then
    say "kafka: running with $size broker(s) but CHORUS_STACK_BROKERS=$BROKERS; stopping it to start $BROKERS"
    kafka_stop kafka
    nodes=()
  fi
  ((${#nodes[@]})) || mapfile -t nodes < <(kafka_nodes)
  for i in "${nodes[@]}"; do
    name=$(node_name "$i")
    if running "$name"; then
      say "$name: already running (pid $(read_pid "$name"))"
      kafka_config_current "$i"
      continue
    fi
    rm -f "$PIDS/$name.pid"
    port_taken "$name" "$(node_addr "$i")"
    port_taken "$name" "$(node_controller_addr "$i")"
    port_taken "$name" "$(node_sasl_addr "$i")"
    port_taken "$name" "127.0.0.1:$(node_jmx_port "$i")"
    kafka_config "$i"
    todo+=("$i")
  done
  ((${#todo[@]})) || return 0
  KAFKA_T0=$(now)
  kafka_format "${todo[@]}"
  # Application class-data archive (Java 17 has no AutoCreateSharedArchive):
  # the first run writes it when the broker exits, later runs map it, which
  # takes the start from ~3.8 s to ~2.3 s. A stale archive is ignored by the
  # JVM. The nodes of a cluster share it: each writes its own, the first
  # written becomes the archive (a SIGKILLed node writes none).
  local cds opts jsa
  if [[ ! -f $KAFKA_DIR/kafka.jsa ]]; then
    for jsa in "$KAFKA_DIR"/kafka-node-[1-9].jsa; do
      [[ -s $jsa ]] && mv -f "$jsa" "$KAFKA_DIR/kafka.jsa" && break
    done
  fi
  rm -f "$KAFKA_DIR"/kafka-node-[1-9].jsa
  for i in "${todo[@]}"; do
    if [[ -f $KAFKA_DIR/kafka.jsa ]]; then
      cds=(-XX:SharedArchiveFile="$KAFKA_DIR/kafka.jsa")
    elif ((BROKERS == 1)); then
      cds=(-XX:ArchiveClassesAtExit="$KAFKA_DIR/kafka.jsa")
    else
      cds=(-XX:ArchiveClassesAtExit="$KAFKA_DIR/kafka-node-$i.jsa")
    fi
    mapfile -t opts < <(kafka_java_opts "$i")
    launch "$(node_name "$i")" "$(node_dir "$i")" java "${opts[@]}" "${cds[@]}" -Xlog:cds=off -Xlog:cds+dynamic=off \
      -Dlog4j2.configurationFile="$HERE/kafka-log4j2.properties" \
      -Dkafka.logs.dir="$LOGS" \
      -cp "$KAFKA_LIB/*" kafka.Kafka "$(node_dir "$i")/server.properties"
  done
  KAFKA_STARTED=("${todo[@]}")
  echo "$BROKERS" >"$KAFKA_DIR/brokers-started"
}

# kafka_alive NODE… - fail naming the first started node that has exited.
kafka_alive() {
  local i name
  for i in "$@"; do
    name=$(node_name "$i")
    is_ours "$(read_pid "$name")" "$(marker "$name")" || fail "$name" "the broker exited during start-up"
  done
}

# Brokers the cluster's metadata lists as alive (registered and unfenced).
kafka_live_brokers() {
  "$HERE/kafka-tool.sh" broker-api-versions --bootstrap-server "$(kafka_addrs)" 2>>"$LOGS/kafka-tool.log" |
    grep -c '^127\.0\.0\.1:[0-9]* (id: ' || true
}

kafka_wait() {
  [[ -n $KAFKA_T0 ]] || return 0
  local deadline=$((SECONDS + KAFKA_TIMEOUT)) i name addr pids=()
  # Cheap check first: a broker opens its client listener only once it has
  # joined the quorum and caught up with the metadata log...
  for i in "${KAFKA_STARTED[@]}"; do
    name=$(node_name "$i") addr=$(node_addr "$i")
    until port_open "$addr"; do
      kafka_alive "$i"
      ((SECONDS < deadline)) || fail "$name" "no listener on $addr after ${KAFKA_TIMEOUT}s"
      sleep 0.2
    done
  done
  # ...then a real admin request through the client protocol: with a
  # cluster, one that lists every broker as alive.
  if ((BROKERS == 1)); then
    until "$HERE/kafka-tool.sh" topics --bootstrap-server "$KAFKA_ADDR" --list >/dev/null 2>>"$LOGS/kafka-tool.log"; do
      kafka_alive 1
      ((SECONDS < deadline)) || fail kafka "TopicCommand --list against $KAFKA_ADDR kept failing (see also $(rel "$LOGS/kafka-tool.log"))"
      sleep 0.5
    done
  else
    until [[ $(kafka_live_brokers) == "$BROKERS" ]]; do
      kafka_alive "${KAFKA_STARTED[@]}"
      ((SECONDS < deadline)) || fail kafka-tool "the cluster did not list $BROKERS live brokers within ${KAFKA_TIMEOUT}s"
      sleep 0.5
    done
  fi
  for i in "${KAFKA_STARTED[@]}"; do
    port_open "$(node_sasl_addr "$i")" || fail "$(node_name "$i")" "no SASL listener on $(node_sasl_addr "$i")"
    pids+=("$(read_pid "$(node_name "$i")")")
  done
  kafka_scram_user
  if ((BROKERS == 1)); then
    say "kafka: started Kafka $KAFKA_VERSION, pid $(read_pid kafka), $KAFKA_ADDR, SASL $KAFKA_SASL_ADDR ($(since "$KAFKA_T0"))"
  else
    say "kafka: started Kafka $KAFKA_VERSION, node ${KAFKA_STARTED[*]} of $BROKERS (pid ${pids[*]}), $(kafka_addrs), SASL $(kafka_addrs sasl) ($(since "$KAFKA_T0"))"
  fi
}

# kafka_stop [NAME] - stop that broker (kafka-<i>), or every broker of any
# size (kafka, or nothing).
kafka_stop() {
  if [[ -n ${1:-} && $1 != kafka ]]; then
    java_stop "$1"
    return
  fi
  local size
  size=$(kafka_running_size)
  if [[ -z $size ]]; then
    local name
    for name in $(kafka_pid_names); do rm -f "$PIDS/$name.pid"; done
    say "kafka: not running"
  elif ((size == 1)); then
    java_stop kafka
  else
    kafka_stop_cluster "$size"
  fi
}

# kafka_stop_cluster SIZE - SIGTERM to every broker of the cluster at once.
# Each does a controlled shutdown, which the controller quorum must commit:
# once fewer than a majority of the voters are left, those still running can
# never finish it, and get SIGKILL (their logs are on disk; the next start
# recovers them).
kafka_stop_cluster() {
  local size=$1 t0 i name pid alive deadline=$((SECONDS + STOP_TIMEOUT)) lost="" why
  local -A stopping=()
  t0=$(now)
  for ((i = 1; i <= size; i++)); do
    name=kafka-$i
    pid=$(read_pid "$name")
    if [[ -n $pid ]] && is_ours "$pid" "$(marker "$name")"; then
      stopping[$name]=$pid
      kill -TERM "$pid" 2>/dev/null || true
    else
      rm -f "$PIDS/$name.pid"
    fi
  done
  while ((${#stopping[@]})); do
    alive=0
    for name in "${!stopping[@]}"; do
      if kill -0 "${stopping[$name]}" 2>/dev/null; then
        alive=$((alive + 1))
      else
        rm -f "$PIDS/$name.pid"
        say "$name: stopped ($(since "$t0"))"
        unset "stopping[$name]"
      fi
    done
    ((alive)) || break
    if [[ -z $lost ]] && ((2 * alive <= size)); then lost=$SECONDS; fi
    why=""
    if [[ -n $lost ]] && ((SECONDS - lost >= 2)); then why="no controller quorum is left for its controlled shutdown"; fi
    ((SECONDS < deadline)) || why="still alive after ${STOP_TIMEOUT}s"
    if [[ -n $why ]]; then
      for name in "${!stopping[@]}"; do
        say "$name: $why; sending SIGKILL to ${stopping[$name]}"
        kill -KILL "${stopping[$name]}" 2>/dev/null || true
      done
      lost=$((SECONDS + 3600)) deadline=$((SECONDS + 3600))
    fi
    sleep 0.1
  done
}

# kafka_kill [NAME] - SIGKILL to that broker, or to every running one.
kafka_kill() {
  local name pid killed=0
  for name in $(kafka_pid_names); do
    [[ -z ${1:-} || $1 == kafka || $1 == "$name" ]] || continue
    pid=$(read_pid "$name")
    if [[ -z $pid ]] || ! is_ours "$pid" "$(marker "$name")"; then continue; fi
    kill -KILL "$pid"
    while kill -0 "$pid" 2>/dev/null; do sleep 0.05; done
    say "$name: killed (SIGKILL to pid $pid)"
    killed=1
  done
  ((killed)) || say "${1:-kafka}: not running"
}

kafka_status() {
  local size i name pid state
  size=$(kafka_running_size)
  if [[ -n $size && $size != "$BROKERS" ]]; then
    say "kafka: $size brokers run (\`up\` with CHORUS_STACK_BROKERS=$BROKERS would restart Kafka with $BROKERS)"
    BROKERS=$size
  fi
  for i in $(kafka_nodes); do
    name=$(node_name "$i")
    if running "$name"; then
      pid=$(read_pid "$name")
      port_open "$(node_addr "$i")" && state=running || state="running (not answering)"
      printf '%-9s %-24s pid %-8s %s\n' "$name" "$state" "$pid" "$(node_addr "$i"), SASL $(node_sasl_addr "$i")"
    else
      printf '%-9s %-24s %-12s %s\n' "$name" stopped - "$(node_addr "$i"), SASL $(node_sasl_addr "$i")"
    fi
  done
}

# What `scripts/stack.sh env` prints: lines a shell can eval.
kafka_env() {
  printf 'CHORUS_STACK_BROKERS=%s\n' "$BROKERS"
  printf 'CHORUS_STACK_KAFKA_BROKERS=%s\n' "$(kafka_addrs)"
  printf 'CHORUS_STACK_KAFKA_SASL_BROKERS=%s\n' "$(kafka_addrs sasl)"
}
