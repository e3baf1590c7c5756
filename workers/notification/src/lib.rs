//! The notification worker: tells the customer about every order's final
//! state (`OrderConfirmed`, `OrderCancelled`) on each configured channel —
//! a structured log line, a signed webhook, an e-mail.
//!
//! Guarantee: exactly one *recorded* notification per order, final state and
//! channel: the `deliveries` row and its `NotificationSent` event exist
//! exactly once. Remote channels are sent outside any transaction, after the
//! intent committed (see [`handler`]); the send itself is at least once, with
//! the same deterministic delivery id on every resend, which webhook
//! receivers dedupe on and mail carries as its `Message-ID`. A delivery that
//! keeps failing transiently is retried, never skipped.

pub mod channels;
pub mod config;
pub mod handler;
pub mod rules;
pub mod signature;
pub mod store;

pub use channels::{Channels, DeliveryError, SmtpChannel, WebhookChannel};
pub use chorus_runtime::retry::RetryPolicy;
pub use config::{NotificationConfig, SmtpConfig, WebhookConfig};
pub use handler::{DeliveryAnswer, NotificationHandler};
pub use rules::{Channel, FinalStatus, OrderOutcome};

/// The notification database's tables (versions from 1001; the runtime's inbox
/// and outbox migrations use the versions below 1000 of the same database).
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!();
