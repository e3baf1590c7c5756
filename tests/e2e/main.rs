//! End-to-end tests against the real stack: Kafka, the schema registry and
//! PostgreSQL started by `make up` (or `make test`). Each test uses its own
//! topic namespace, so tests never see each other's messages.

mod binary_env;
mod chaos;
mod cli;
mod cli_gateway;
mod compose;
mod compose_check;
mod consumer_fenced;
mod contract;
mod corrupt;
mod dlq;
mod gateway_limits;
mod gateway_process;
mod gateway_reads;
mod kafka_acls;
mod list_orders;
mod logs;
mod metrics_named;
mod otlp;
mod payment_orphans;
mod payment_sandbox_batches;
mod pg_privileges;
mod provider_answers;
mod registry_misrouted;
mod rolling_restart;
mod runtime_calls;
mod runtime_loop;
mod runtime_outbox;
mod runtime_supervision;
mod saga_ends;
mod saga_faults;
mod saga_paths;
mod sagas_stuck;
mod sasl;
mod schemas;
mod stack;
mod trace;
mod trace_scale;
mod traces;
mod validation;
mod webhook_receiver;
mod webhook_redrive;
