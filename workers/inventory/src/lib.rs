//! The inventory worker: the catalogue and each order's reservation.
//!
//! Guarantee: an order's lines are reserved all together or not at all, a
//! reservation is released or sold at most once, and no counter of the
//! catalogue ever goes negative, under any concurrency. Catalogue rows are
//! locked in SKU order (no deadlocks); the state change and the events it
//! emits commit in the consumer loop's one transaction (see `chorus_runtime`).

pub mod handler;
pub mod rules;
pub mod store;

#[cfg(test)]
mod testing;

pub use handler::InventoryHandler;

/// The inventory's tables and its `stock_levels` view (versions from 1001;
/// the runtime's inbox and outbox live below 1000 in the same database).
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!();
