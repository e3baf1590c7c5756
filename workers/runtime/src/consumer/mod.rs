//! The consumer loop ([`engine`]), the queues it keeps per partition
//! ([`queues`]) and what it hears from librdkafka ([`rebalance`]).

pub mod engine;
pub mod queues;
pub mod rebalance;

pub use engine::{LoopSettings, WorkerConsumer, run};
pub use rebalance::LoopContext;
