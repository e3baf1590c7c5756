//! What a worker plugs into the shared consumer loop: its topics and one
//! `handle` that applies an event inside the loop's transaction.
//!
//! The loop opens the transaction, records the event id in the inbox (a
//! duplicate is skipped before `handle` runs), calls `handle`, writes the
//! returned events to the outbox, and commits — all or nothing.

use std::future::Future;

use chorus_avro::{Event, EventType, Topic};
use sqlx::PgConnection;

/// Why an event could not be applied, which decides what the loop does next.
#[derive(Debug, thiserror::Error)]
pub enum HandleError {
    /// Can never succeed (invalid content): the message goes to the dead-letter topic.
    #[error("permanent: {0}")]
    Permanent(String),
    /// May succeed later (database or provider down): retried with backoff, never skipped.
    #[error("transient: {0}")]
    Transient(String),
}

impl From<sqlx::Error> for HandleError {
    fn from(e: sqlx::Error) -> Self {
        // Constraint violations are bugs in the data, not in the weather;
        // anything else (connection, pool, serialization) may pass.
        match &e {
            sqlx::Error::Database(db)
                if db.is_check_violation() || db.is_foreign_key_violation() =>
            {
                HandleError::Permanent(e.to_string())
            }
            _ => HandleError::Transient(e.to_string()),
        }
    }
}

/// A worker's business logic as seen by the consumer loop.
pub trait Handler: Send + Sync + 'static {
    /// Short name: the consumer group suffix, log and metric label (`inventory`).
    fn name(&self) -> &'static str;

    /// The topics this worker consumes.
    fn topics(&self) -> &'static [Topic];

    /// Whether `handle` acts on events of this type. Events it does not act
    /// on (other services' events sharing a topic) are acknowledged without
    /// opening a transaction.
    fn handles(&self, event_type: EventType) -> bool {
        let _ = event_type;
        true
    }

    /// Whether several events may be applied in one transaction. A handler
    /// whose events lock rows that other events of the same batch may lock in
    /// another order (inventory: the SKUs of several orders) says no, so
    /// concurrent batches cannot deadlock.
    fn batchable(&self) -> bool {
        true
    }

    /// Applies `event` using `conn`, which is inside the loop's transaction,
    /// and returns the events to emit. Events of types the worker does not
    /// care about return `Ok(vec![])`.
    fn handle(
        &self,
        conn: &mut PgConnection,
        event: &Event,
    ) -> impl Future<Output = Result<Vec<Event>, HandleError>> + Send;
}
