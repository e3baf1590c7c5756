//! The inventory worker as the consumer loop sees it: decode → lock → rules →
//! write back, all inside the loop's transaction, so an event's stock moves,
//! its reservation row and the events it emits commit together or not at all.

use chorus_avro::{Envelope, Event, EventType, OrderPlaced, Topic};
use chorus_runtime::{HandleError, Handler};
use sqlx::PgConnection;

use crate::rules::{self, Invalid, Reservation, StockMove, Transition};
use crate::store;

/// Catalogue and reservations: reserves stock for placed orders, releases it
/// on compensation, sells it on confirmation.
#[derive(Debug, Default, Clone)]
pub struct InventoryHandler {
    // Stateless today; the private field keeps construction to `default()`.
    _private: (),
}

impl Handler for InventoryHandler {
    fn name(&self) -> &'static str {
        "inventory"
    }

    fn topics(&self) -> &'static [Topic] {
        &[Topic::InventoryCommands, Topic::Orders, Topic::Payments]
    }

    fn handles(&self, event_type: EventType) -> bool {
        matches!(
            event_type,
            EventType::StockAdjusted
                | EventType::OrderPlaced
                | EventType::PaymentFailed
                | EventType::OrderCancelled
                | EventType::OrderConfirmed
        )
    }

    /// An order locks its SKUs in sorted order, but a batch of several orders
    /// would hold the first order's SKUs while locking the next one's, in an
    /// order a concurrent batch may reverse: one event per transaction here.
    fn batchable(&self) -> bool {
        false
    }

    async fn handle(
        &self,
        conn: &mut PgConnection,
        event: &Event,
    ) -> Result<Vec<Event>, HandleError> {
        let envelope = |event_type: EventType| Envelope::caused_by(event, event_type);
        match event {
            Event::StockAdjusted(adjusted) => {
                rules::check_adjustment(adjusted).map_err(permanent)?;
                store::upsert_stock(conn, adjusted).await?;
                Ok(vec![])
            }
            Event::OrderPlaced(placed) => reserve(conn, placed, envelope).await,
            Event::PaymentFailed(failed) => {
                let current = store::lock_reservation(conn, &failed.order_id).await?;
                let next =
                    rules::release(&failed.order_id, current.as_ref(), &failed.reason, envelope);
                save(conn, &failed.order_id, current.as_ref(), next).await
            }
            Event::OrderCancelled(cancelled) => {
                let current = store::lock_reservation(conn, &cancelled.order_id).await?;
                let next = rules::release(
                    &cancelled.order_id,
                    current.as_ref(),
                    &cancelled.reason,
                    envelope,
                );
                save(conn, &cancelled.order_id, current.as_ref(), next).await
            }
            Event::OrderConfirmed(confirmed) => {
                let current = store::lock_reservation(conn, &confirmed.order_id).await?;
                let next = rules::sell(current.as_ref());
                save(conn, &confirmed.order_id, current.as_ref(), next).await
            }
            _ => Ok(vec![]),
        }
    }
}

async fn reserve(
    conn: &mut PgConnection,
    placed: &OrderPlaced,
    envelope: impl Fn(EventType) -> Envelope,
) -> Result<Vec<Event>, HandleError> {
    let lines = rules::requested_lines(placed).map_err(permanent)?;
    if store::reservation_exists(conn, &placed.order_id).await? {
        // A re-send under a new event id: the order was answered already.
        tracing::debug!(order_id = %placed.order_id, "order already answered; ignoring OrderPlaced");
        return Ok(vec![]);
    }
    let skus: Vec<String> = lines.into_iter().map(|l| l.sku).collect();
    let stock = store::lock_stock(conn, &skus).await?;
    let next = rules::reserve(placed, &stock, envelope).map_err(permanent)?;
    save(conn, &placed.order_id, None, Some(next)).await
}

/// Writes a transition: the reservation row, then the stock moves, and returns
/// its events. `current` is the reservation the transition started from.
async fn save(
    conn: &mut PgConnection,
    order_id: &str,
    current: Option<&Reservation>,
    next: Option<Transition>,
) -> Result<Vec<Event>, HandleError> {
    let Some(next) = next else {
        return Ok(vec![]);
    };
    if current.is_some() {
        store::update_reservation(conn, order_id, &next.reservation).await?;
    } else if !store::insert_reservation(conn, order_id, &next.reservation).await? {
        // Another partition's event created the row after we looked; the
        // retry sees it and decides again from there.
        return Err(HandleError::Transient(format!(
            "reservation of order {order_id} was written concurrently"
        )));
    }
    move_stock(conn, &next.moves).await?;
    Ok(next.events)
}

async fn move_stock(conn: &mut PgConnection, moves: &[StockMove]) -> Result<(), HandleError> {
    if moves.is_empty() {
        return Ok(());
    }
    // Reserving locked the rows already; releasing and selling lock them here,
    // in the same SKU order, before touching them.
    let skus: Vec<String> = moves.iter().map(|m| m.sku.clone()).collect();
    let locked = store::lock_stock(conn, &skus).await?;
    let changed = store::apply_moves(conn, moves).await?;
    if locked.len() != moves.len() || changed != moves.len() as u64 {
        return Err(HandleError::Permanent(format!(
            "catalogue rows missing for {skus:?}: {} of {} found",
            locked.len(),
            moves.len()
        )));
    }
    Ok(())
}

fn permanent(invalid: Invalid) -> HandleError {
    HandleError::Permanent(invalid.0)
}
