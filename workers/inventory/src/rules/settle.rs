//! What ends a held reservation: compensation gives it back, confirmation sells it.

use chorus_avro::{Envelope, EventType, ReleasedLine, StockReleased};

use super::{Reservation, ReservationStatus, StockMove, Transition};

/// Compensation (PaymentFailed, OrderCancelled): gives a held reservation back
/// exactly once. A reservation already failed, released or sold holds
/// nothing, so nothing happens.
///
/// A cancellation that overtakes its order (none yet) leaves a `released`
/// tombstone, so the late `OrderPlaced` finds the order answered and reserves
/// nothing that would never be given back.
pub fn release(
    order_id: &str,
    current: Option<&Reservation>,
    reason: &str,
    envelope: impl Fn(EventType) -> Envelope,
) -> Option<Transition> {
    let Some(current) = current else {
        return Some(Transition {
            reservation: Reservation {
                status: ReservationStatus::Released,
                lines: vec![],
                reason: Some(reason.to_string()),
            },
            moves: vec![],
            events: vec![],
        });
    };
    if current.status != ReservationStatus::Reserved {
        return None;
    }
    let env = envelope(EventType::StockReleased);
    let event = StockReleased {
        event_id: env.event_id,
        order_id: order_id.to_string(),
        occurred_at: env.occurred_at,
        correlation_id: env.correlation_id,
        causation_id: env.causation_id,
        lines: current
            .lines
            .iter()
            .map(|l| ReleasedLine {
                sku: l.sku.clone(),
                quantity: l.quantity,
            })
            .collect(),
        reason: reason.to_string(),
    };
    Some(Transition {
        reservation: Reservation {
            status: ReservationStatus::Released,
            lines: current.lines.clone(),
            reason: Some(reason.to_string()),
        },
        moves: current
            .lines
            .iter()
            .map(|l| StockMove {
                sku: l.sku.clone(),
                available: l.quantity,
                reserved: -l.quantity,
                sold: 0,
            })
            .collect(),
        events: vec![event.into()],
    })
}

/// OrderConfirmed: the held units leave with the order. Emits nothing.
pub fn sell(current: Option<&Reservation>) -> Option<Transition> {
    let current = current.filter(|r| r.status == ReservationStatus::Reserved)?;
    Some(Transition {
        reservation: Reservation {
            status: ReservationStatus::Sold,
            lines: current.lines.clone(),
            reason: None,
        },
        moves: current
            .lines
            .iter()
            .map(|l| StockMove {
                sku: l.sku.clone(),
                available: 0,
                reserved: -l.quantity,
                sold: l.quantity,
            })
            .collect(),
        events: vec![],
    })
}
