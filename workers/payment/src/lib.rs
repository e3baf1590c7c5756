//! The payment worker: authorizes the total of every `StockReserved` with a
//! payment provider and answers `PaymentAuthorized` or `PaymentFailed`.
//!
//! Guarantee: a customer is charged at most once per order, ever. The order id
//! is the provider's idempotency key (a retried or replayed call returns the
//! first authorization), and the `payments` row written in the same
//! transaction as the outbox event stops any later event from asking again.

pub mod config;
pub mod handler;
pub mod provider;
pub mod retry;
pub mod rules;
pub mod store;

pub use chorus_runtime::retry::RetryPolicy;
pub use config::{PaymentConfig, ProviderChoice};
pub use handler::PaymentHandler;
pub use provider::{
    Authorization, AuthorizationRequest, ConfiguredProvider, HttpProvider, PaymentProvider,
    ProviderError, SandboxProvider,
};
pub use retry::authorize_with_retries;
pub use rules::{Charge, PaymentOutcome};

/// The payment database's tables (versions from 1001; the runtime's inbox and
/// outbox migrations use the versions below 1000 of the same database).
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!();
