//! The worker runtime: the machinery every chorus worker shares. Its
//! configuration; the consumer loop (batches across partitions, per-partition
//! order, pause while retrying) with its inbox and outbox (published
//! after commit, republished when left over, pruned), dead-lettering, failure classes and retry; external calls made outside
//! any transaction; periodic work; the worker's HTTP side (health, metrics).
//! What the gateway and the CLI share with the workers (environment, Kafka
//! settings, probes, telemetry) is `chorus-platform`.

pub mod app;
pub mod apply;
pub mod calls;
pub mod config;
pub mod consumer;
pub mod dlq;
pub mod emit;
pub mod failure;
pub mod handler;
pub mod http;
pub mod inbox;
mod kafka_access;
pub mod metrics;
pub mod outbox;
pub mod outbox_publisher;
pub mod outbox_republisher;
pub mod progress;
pub mod pruning;
pub mod retry;
mod span;
pub mod ticks;

pub use app::{WorkerContext, run_worker};
pub use apply::ProcessOutcome;
pub use chorus_avro::error_chain;
pub use chorus_platform::{ConfigError, Env};
pub use config::WorkerConfig;
pub use emit::traceparent;
pub use failure::{Failure, FailureClass};
pub use handler::{
    CallOutcome, Calls, Fallback, HandleError, Handler, Incoming, NoCall, NoCalls, Settling,
    Verdict, apply_one,
};
