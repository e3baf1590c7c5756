//! The order worker: the saga's state machine and the gateway's read model.
//!
//! Guarantee: whatever order the saga's events arrive in (a payment event may
//! overtake `OrderPlaced`), an order reaches at most one final status, never
//! leaves it, and announces it (`OrderConfirmed` / `OrderCancelled`) exactly
//! once: the order row is locked per event, and the fact, the status and the
//! emitted event commit in the consumer loop's one transaction.

pub mod handler;
pub mod rules;
pub mod store;

#[cfg(test)]
mod testing;

pub use handler::OrderHandler;

/// The `orders` table and the `order_status` view (versions from 1001; the
/// runtime's inbox and outbox live below 1000 in the same database).
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!();
