//! The payment worker: authorizes the total of every `StockReserved` with a
//! payment provider and answers `PaymentAuthorized` or `PaymentFailed`.
//!
//! Guarantee: a customer is charged at most once per order, ever, and no
//! charge stands for a cancelled order. The order id is the provider's
//! idempotency key (a retried or replayed call returns the first
//! authorization); the `payments` row, the intent written before any call,
//! stops any later event from asking again; an `OrderCancelled` voids a
//! standing authorization and keeps a later one from being asked for.

pub mod config;
pub mod handler;
pub mod provider;
pub mod rules;
pub mod store;
pub mod token;

pub use chorus_runtime::retry::RetryPolicy;
pub use config::{PaymentConfig, ProviderChoice};
pub use handler::{PaymentAnswer, PaymentCalls, PaymentHandler};
pub use provider::{
    Authorization, AuthorizationRequest, ConfiguredProvider, HttpProvider, PaymentProvider,
    ProviderError, SandboxProvider, VoidRequest, Voided,
};
pub use rules::{AuthorizeAnswer, Payment, PaymentCall, VoidAnswer};

/// The payment database's tables (versions from 1001; the runtime's inbox and
/// outbox migrations use the versions below 1000 of the same database).
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!();
