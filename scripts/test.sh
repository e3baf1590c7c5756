#!/usr/bin/env bash
# `make test`: brings the stack up, builds once, runs every test of the
# workspace against it, and takes the stack down again even when a test fails.
set -euo pipefail
cd "$(dirname "$0")/.."

started=$(date +%s)
bash scripts/stack.sh up
trap 'bash scripts/stack.sh down' EXIT

step() { printf '==> %s\n' "$*"; }
step "build (debug, all targets)"
cargo build --workspace --all-targets --locked
step "cargo test --workspace"
# The end-to-end suite runs the `chorus` binary built above.
CHORUS_BIN="$PWD/target/debug/chorus" cargo test --workspace --locked -- --test-threads "${CHORUS_TEST_THREADS:-2}"
step "tests passed in $(( $(date +%s) - started ))s"
