//! The order worker as the consumer loop sees it: decode the fact an event
//! states → lock the order row → rules → write back, inside the loop's
//! transaction, so the recorded fact, the new status and the final event
//! commit together or not at all.

use chorus_avro::{Envelope, Event, EventType, Topic};
use chorus_runtime::{HandleError, Handler};
use sqlx::PgConnection;

use crate::rules;
use crate::store;

/// The order state machine: records what the saga's events state about an
/// order, derives its status, announces the final one.
#[derive(Debug, Default, Clone)]
pub struct OrderHandler {
    // Stateless today; the private field keeps construction to `default()`.
    _private: (),
}

impl Handler for OrderHandler {
    fn name(&self) -> &'static str {
        "order"
    }

    fn topics(&self) -> &'static [Topic] {
        &[Topic::Orders, Topic::Inventory, Topic::Payments]
    }

    fn handles(&self, event_type: EventType) -> bool {
        matches!(
            event_type,
            EventType::OrderPlaced
                | EventType::StockReserved
                | EventType::StockReservationFailed
                | EventType::PaymentAuthorized
                | EventType::PaymentFailed
        )
    }

    async fn handle(
        &self,
        conn: &mut PgConnection,
        event: &Event,
    ) -> Result<Vec<Event>, HandleError> {
        let fact = rules::fact_of(event).map_err(|invalid| HandleError::Permanent(invalid.0))?;
        let Some((order_id, fact)) = fact else {
            return Ok(vec![]);
        };
        let order = store::lock_order(conn, order_id).await?;
        let envelope = |event_type: EventType| Envelope::caused_by(event, event_type);
        let Some((next, events)) = rules::apply(&order, fact, chrono::Utc::now(), envelope) else {
            tracing::debug!(order_id, "fact known already; nothing changes");
            return Ok(vec![]);
        };
        store::save_order(conn, &next).await?;
        if next.status != order.status {
            let status = next.status.as_ref().map(rules::Status::name);
            tracing::info!(order_id, status, "order status changed");
        }
        Ok(events)
    }
}
