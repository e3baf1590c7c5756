//! Machinery shared by every chorus worker: configuration, Kafka clients,
//! topic administration, and the consumer loop with its inbox/outbox, relay,
//! dead-lettering, retry, telemetry, health endpoints and graceful shutdown.

pub mod app;
mod batch;
pub mod config;
pub mod consumer;
pub mod delivery;
pub mod dlq;
pub mod handler;
pub mod health;
pub mod inbox;
pub mod kafka;
pub mod metrics;
pub mod outbox;
pub mod process;
pub mod relay;
pub mod retry;
pub mod shutdown;
pub mod telemetry;
/// Test support for the workers: a throwaway, migrated PostgreSQL database.
pub mod testing;
pub mod topics;

pub use app::{WorkerContext, run_worker};
/// An error and its sources on one line; one definition for the whole
/// workspace, in `chorus-avro` (which cannot depend on the runtime).
pub use chorus_avro::error_chain;
pub use config::{ConfigError, Env, WorkerConfig};
pub use handler::{HandleError, Handler};
pub use process::{ProcessOutcome, Processor};
