//! The worker runtime: the machinery every chorus worker shares. Its
//! configuration, the consumer loop with its inbox/outbox, relay,
//! dead-lettering and retry, and the worker's HTTP side (health, metrics).
//! What the gateway and the CLI share with the workers (environment,
//! Kafka settings, probes, telemetry) is `chorus-platform`.

pub mod app;
mod batch;
pub mod config;
pub mod consumer;
pub mod delivery;
pub mod dlq;
pub mod handler;
pub mod http;
pub mod inbox;
pub mod metrics;
pub mod outbox;
pub mod process;
pub mod relay;
pub mod retry;

pub use app::{WorkerContext, run_worker};
pub use chorus_avro::error_chain;
pub use chorus_platform::{ConfigError, Env};
pub use config::WorkerConfig;
pub use handler::{HandleError, Handler};
pub use process::{ProcessOutcome, Processor};
