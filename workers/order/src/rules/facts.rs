//! What each saga event states about its order, and whether the order cares.

use chorus_avro::{Event, OrderLine, PricedLine};
use rust_decimal::Decimal;

use super::Invalid;

/// `OrderPlaced`: who ordered what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placed {
    pub customer_id: String,
    pub items: Vec<OrderLine>,
    pub currency: String,
}

/// `StockReserved`: the priced lines and the total to charge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reserved {
    pub lines: Vec<PricedLine>,
    pub total: Decimal,
}

/// `StockReservationFailed`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReservationFailed {
    pub reason: String,
    pub skus: Vec<String>,
}

/// `PaymentAuthorized`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorized {
    pub authorization_id: String,
    pub amount: Decimal,
}

/// `PaymentFailed`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentDeclined {
    pub reason: String,
    pub detail: Option<String>,
}

/// `OrderCancellationRequested`: someone asked to cancel the order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CancellationRequested {
    pub requested_by: String,
}

/// One thing an event (or the deadline) states about its order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fact {
    Placed(Placed),
    Reserved(Reserved),
    ReservationFailed(ReservationFailed),
    PaymentAuthorized(Authorized),
    PaymentFailed(PaymentDeclined),
    CancellationRequested(CancellationRequested),
    /// The order's deadline passed (the order worker's own clock).
    TimedOut,
}

/// What is known about an order so far; each fact is recorded once, the
/// first statement of it wins.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Facts {
    pub placed: Option<Placed>,
    pub reserved: Option<Reserved>,
    pub reservation_failed: Option<ReservationFailed>,
    pub payment_authorized: Option<Authorized>,
    pub payment_failed: Option<PaymentDeclined>,
    pub cancellation_requested: Option<CancellationRequested>,
    pub timed_out: bool,
}

/// The order and fact an event states; `None` for events the order ignores
/// (its own output and informational ones). An event it acts on is first
/// checked by the validation every consumer shares, so the order refuses
/// exactly what the inventory and payment workers refuse.
pub fn fact_of(event: &Event) -> Result<Option<(&str, Fact)>, Invalid> {
    let fact = match event {
        Event::OrderPlaced(e) => {
            let placed = Placed {
                customer_id: e.customer_id.clone(),
                items: e.items.clone(),
                currency: e.currency.clone(),
            };
            (e.order_id.as_str(), Fact::Placed(placed))
        }
        Event::StockReserved(e) => {
            let reserved = Reserved {
                lines: e.lines.clone(),
                total: e.total,
            };
            (e.order_id.as_str(), Fact::Reserved(reserved))
        }
        Event::StockReservationFailed(e) => {
            let failed = ReservationFailed {
                reason: e.reason.clone(),
                skus: e.skus.clone(),
            };
            (e.order_id.as_str(), Fact::ReservationFailed(failed))
        }
        Event::PaymentAuthorized(e) => {
            let authorized = Authorized {
                authorization_id: e.authorization_id.clone(),
                amount: e.amount,
            };
            (e.order_id.as_str(), Fact::PaymentAuthorized(authorized))
        }
        Event::PaymentFailed(e) => {
            let declined = PaymentDeclined {
                reason: e.reason.clone(),
                detail: e.detail.clone(),
            };
            (e.order_id.as_str(), Fact::PaymentFailed(declined))
        }
        Event::OrderCancellationRequested(e) => {
            let requested = CancellationRequested {
                requested_by: e.requested_by.clone(),
            };
            (e.order_id.as_str(), Fact::CancellationRequested(requested))
        }
        _ => return Ok(None),
    };
    chorus_avro::validate::event(event).map_err(|invalid| Invalid(invalid.to_string()))?;
    Ok(Some(fact))
}
