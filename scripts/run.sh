#!/usr/bin/env bash
# `make run`: the stack, topics and schemas, then what runs where.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '==> %s\n' "$*"; }
bash scripts/stack.sh up
step "build (release)"
cargo build --release --locked --bin chorus
chorus=target/release/chorus
step "topics"
$chorus topics create
step "schemas"
$chorus schemas register
$chorus topics list
cat <<MSG

chorus infrastructure is up:
  Kafka            127.0.0.1:9092
  schema registry  ${CHORUS_SCHEMA_REGISTRY_URL:-http://127.0.0.1:8081/apis/ccompat/v7}
  PostgreSQL       postgres://chorus:chorus@127.0.0.1:55432/ (one database per service)

Try:
  $chorus example OrderPlaced > /tmp/order.json
  $chorus produce OrderPlaced --file /tmp/order.json
  $chorus tail orders --from-beginning

Stop the stack with: make down
MSG
