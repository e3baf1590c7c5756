#!/usr/bin/env bash
# `make test`: brings the stack up, builds once, runs every test of the
# workspace against it, and takes the stack down again even when a test fails.
# The build is the dev profile `make run` already built (target/debug): only
# the test targets are compiled on top of it.
# Kafka runs as a cluster of CHORUS_STACK_BROKERS (3) brokers, so the tests
# meet replication factor 3, min.insync.replicas 2 and a broker failing over;
# the tests reach every broker (CHORUS_KAFKA_BROKERS) and their SASL listeners
# (CHORUS_TEST_KAFKA_SASL_BROKERS).
#
# It never stops a stack it did not start: when one already runs from this
# state directory (`make run`, `make up`), it stops at once, touching
# nothing, and says how to go on. While it runs, it marks the stack as its
# own (.stack/started-by), so that `make run` leaves it alone too.
set -euo pipefail
cd "$(dirname "$0")/.."
export CHORUS_STACK_BROKERS=${CHORUS_STACK_BROKERS:-3}
source scripts/lib/prerequisites.sh
prerequisites test || exit 1

started=$(date +%s)
step() { printf '==> %s\n' "$*"; }
if running=$(bash scripts/stack.sh running); then
  cat >&2 <<MSG
make test: a stack is already running from ${CHORUS_STACK_DIR:-.stack} ($(paste -sd, - <<<"$running" | sed 's/,/, /g')),
started by \`make run\` or \`make up\`. make test starts its own stack ($CHORUS_STACK_BROKERS brokers)
and takes it down at the end, so it does not touch this one. Either
  - stop it (Ctrl-C in the terminal of \`make run\`, or \`make down\`) and run \`make test\` again, or
  - run the tests against it yourself, leaving it up:
      eval "\$(bash scripts/stack.sh env)" && CHORUS_KAFKA_BROKERS=\$CHORUS_STACK_KAFKA_BROKERS \\
        CHORUS_TEST_KAFKA_SASL_BROKERS=\$CHORUS_STACK_KAFKA_SASL_BROKERS cargo test --workspace
    (the cluster test needs CHORUS_STACK_BROKERS=3 to have started it)
MSG
  exit 1
fi
owner=${CHORUS_STACK_DIR:-.stack}/started-by
mkdir -p "$(dirname "$owner")"
echo "make test $$" >"$owner"
# The stack starts while cargo builds.
stack_log=$(mktemp)
bash scripts/stack.sh up >"$stack_log" 2>&1 &
stack_pid=$!
trap 'wait "$stack_pid" 2>/dev/null || true; bash scripts/stack.sh down; rm -f "$owner"' EXIT

step "build (dev profile, all targets; the stack starts meanwhile)"
build_rc=0
cargo build --workspace --all-targets --locked || build_rc=$?
stack_rc=0
wait "$stack_pid" || stack_rc=$?
cat "$stack_log"
rm -f "$stack_log"
((build_rc == 0 && stack_rc == 0)) || exit 1
stack_env=$(bash scripts/stack.sh env)
eval "$stack_env"
export CHORUS_KAFKA_BROKERS=$CHORUS_STACK_KAFKA_BROKERS
export CHORUS_TEST_KAFKA_SASL_BROKERS=$CHORUS_STACK_KAFKA_SASL_BROKERS
step "cargo test --workspace (Kafka: $CHORUS_STACK_BROKERS broker(s), $CHORUS_KAFKA_BROKERS)"
# The end-to-end suite runs the `chorus` binary built above.
CHORUS_BIN="$(realpath -m "${CARGO_TARGET_DIR:-target}")/debug/chorus" cargo test --workspace --locked -- --test-threads "${CHORUS_TEST_THREADS:-2}"
step "tests passed in $(( $(date +%s) - started ))s"
