//! Machinery shared by every chorus worker: configuration, Kafka clients,
//! topic administration, and the consumer loop with its inbox/outbox, relay,
//! dead-lettering, retry, telemetry, health endpoints and graceful shutdown.

pub mod config;
pub mod handler;
pub mod kafka;
pub mod topics;

pub use config::{ConfigError, Env, WorkerConfig};
pub use handler::{HandleError, Handler};
