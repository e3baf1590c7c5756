# chorus: `make run` runs the system, `make test` passes the tests, on a fresh machine.
SHELL := /bin/bash
.DEFAULT_GOAL := help

.PHONY: help up down status run test bench chaos build lint fmt

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-8s %s\n", $$1, $$2}'

up: ## Start Kafka, the schema registry and PostgreSQL (Docker if available, else local processes)
	@bash scripts/stack.sh up

down: ## Stop exactly what `make up` started
	@bash scripts/stack.sh down

status: ## Show what the stack is running
	@bash scripts/stack.sh status

run: ## The stack, topics, schemas, the four workers and the gateway (dev builds, reused by make test), a demo catalogue; Ctrl-C stops it all
	@bash scripts/run.sh

test: ## Stack up, every test of the workspace, stack down (even on failure)
	@bash scripts/test.sh

bench: ## Release builds under load: sagas/s and latency beside the Kafka and PostgreSQL ceilings (BENCHMARKS.md)
	@bash scripts/bench.sh

chaos: ## Release builds under faults (worker SIGKILLs, Kafka kill -9, PostgreSQL restart, registry outage, poison), then the invariant check (BENCHMARKS.md)
	@bash scripts/chaos.sh

build: ## Debug build of every crate and binary
	cargo build --workspace --all-targets

lint: ## rustfmt check and clippy with warnings as errors
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings

fmt: ## Format the code
	cargo fmt --all
