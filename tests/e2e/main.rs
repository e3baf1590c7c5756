//! End-to-end tests against the real stack: Kafka, the schema registry and
//! PostgreSQL started by `make up` (or `make test`). Each test uses its own
//! topic namespace, so tests never see each other's messages.

mod cli;
mod contract;
mod corrupt;
mod gateway_process;
mod saga_faults;
mod saga_paths;
mod schemas;
mod stack;
