//! The order's business rules as pure functions. Events arrive in any order
//! across topics, so an order is a set of facts (placed, reserved, …) recorded
//! as they come, and its status is derived from the facts alone. The final
//! event (`OrderConfirmed` / `OrderCancelled`) is emitted on the one
//! transition into a final status, which is never left again.
//!
//! No I/O and no clock: the caller passes the time and the envelopes.

use chorus_avro::{CancelReason, Envelope, Event, EventType, OrderCancelled, OrderConfirmed};
use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};

mod facts;
#[cfg(test)]
mod tests;

pub use facts::{
    Authorized, CancellationRequested, Fact, Facts, PaymentDeclined, Placed, ReservationFailed,
    Reserved, fact_of,
};

/// `OrderCancelled.reason` when the customer (or an admin) asked.
pub const CUSTOMER_CANCELLED: &str = CancelReason::CustomerCancelled.code();
/// `OrderCancelled.reason` when the order's deadline passed.
pub const TIMEOUT: &str = CancelReason::Timeout.code();

/// Content that can never be applied: the message belongs in the dead-letter topic.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Invalid(pub String);

/// The order's status as the storefront sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    Pending,
    Reserved,
    Confirmed,
    /// `detail` is the reason's fixed text ([`CancelReason`]), never what a
    /// failed step or a cancellation request said.
    Cancelled {
        reason: String,
        detail: Option<String>,
    },
}

impl Status {
    pub fn name(&self) -> &'static str {
        match self {
            Status::Pending => "PENDING",
            Status::Reserved => "RESERVED",
            Status::Confirmed => "CONFIRMED",
            Status::Cancelled { .. } => "CANCELLED",
        }
    }

    pub fn is_final(&self) -> bool {
        matches!(self, Status::Confirmed | Status::Cancelled { .. })
    }
}

/// One status change, as the gateway shows it: `{"status":"PENDING","at":"…Z"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryEntry {
    pub status: String,
    #[serde(with = "millis")]
    pub at: DateTime<Utc>,
}

/// RFC 3339 in UTC with milliseconds, e.g. `2026-11-23T18:00:00.123Z`.
mod millis {
    use super::*;

    pub fn serialize<S: serde::Serializer>(at: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&at.to_rfc3339_opts(SecondsFormat::Millis, true))
    }

    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        let text = String::deserialize(d)?;
        DateTime::parse_from_rfc3339(&text)
            .map(|at| at.with_timezone(&Utc))
            .map_err(serde::de::Error::custom)
    }
}

/// What became of a request to cancel the order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cancellation {
    /// The order was not final: it was cancelled.
    Accepted,
    /// The order was already confirmed: it stays so.
    Rejected,
}

impl Cancellation {
    pub fn as_str(self) -> &'static str {
        match self {
            Cancellation::Accepted => "accepted",
            Cancellation::Rejected => "rejected",
        }
    }

    pub fn parse(s: &str) -> Option<Cancellation> {
        match s {
            "accepted" => Some(Cancellation::Accepted),
            "rejected" => Some(Cancellation::Rejected),
            _ => None,
        }
    }
}

/// An order: its facts, and the status derived from them with its history.
/// `status` is `None` until `placed` is known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Order {
    pub order_id: String,
    pub facts: Facts,
    pub status: Option<Status>,
    pub history: Vec<HistoryEntry>,
    pub cancellation: Option<Cancellation>,
    /// When the order is due to be final (set with `placed`).
    pub deadline_at: Option<DateTime<Utc>>,
}

impl Order {
    pub fn new(order_id: impl Into<String>) -> Order {
        Order {
            order_id: order_id.into(),
            facts: Facts::default(),
            status: None,
            history: vec![],
            cancellation: None,
            deadline_at: None,
        }
    }
}

/// The status the facts imply. Nothing is decided before `placed` is known:
/// the final events need the customer.
pub fn derive_status(facts: &Facts) -> Option<Status> {
    facts.placed.as_ref()?;
    Some(if let Some(failed) = &facts.reservation_failed {
        cancelled(&failed.reason)
    } else if let Some(declined) = &facts.payment_failed {
        cancelled(&declined.reason)
    } else if facts.cancellation_requested.is_some() {
        cancelled(CUSTOMER_CANCELLED)
    } else if facts.timed_out {
        cancelled(TIMEOUT)
    } else if facts.reserved.is_some() && facts.payment_authorized.is_some() {
        Status::Confirmed
    } else if facts.reserved.is_some() {
        Status::Reserved
    } else {
        Status::Pending
    })
}

/// Cancelled for `reason` (validated to be one of the set), with its fixed
/// text: the SKUs that were short, what the provider said and who asked for
/// a cancellation stay in the facts and the saga's events, for operators.
fn cancelled(reason: &str) -> Status {
    Status::Cancelled {
        reason: reason.to_string(),
        detail: CancelReason::parse(reason).and_then(CancelReason::detail),
    }
}

/// Records `fact` and moves the order to the status the facts now imply,
/// returning the events of that move. `None` when the fact was known already
/// (a re-sent event): nothing changes.
pub fn apply(
    order: &Order,
    fact: Fact,
    at: DateTime<Utc>,
    envelope: impl Fn(EventType) -> Envelope,
) -> Option<(Order, Vec<Event>)> {
    let mut next = order.clone();
    let cancellation = matches!(fact, Fact::CancellationRequested(_));
    if !record(&mut next.facts, fact) {
        return None;
    }
    if order.status.as_ref().is_some_and(Status::is_final) {
        // Final is final; a late fact is kept for the record only. A request
        // to cancel a confirmed order is recorded as rejected; one for an
        // order cancelled already changes nothing.
        if cancellation && order.status == Some(Status::Confirmed) {
            next.cancellation = Some(Cancellation::Rejected);
        }
        return Some((next, vec![]));
    }
    let derived = derive_status(&next.facts);
    if derived == order.status {
        return Some((next, vec![]));
    }
    let Some(status) = derived else {
        return Some((next, vec![]));
    };
    // History follows the saga's steps, not the arrival order of their
    // events: every order starts PENDING and passes RESERVED when its stock
    // was reserved, even if the payment's answer overtook the reservation.
    let mut steps = vec![Status::Pending];
    if next.facts.reserved.is_some() && status != Status::Pending {
        steps.push(Status::Reserved);
    }
    if status.is_final() {
        steps.push(status.clone());
    }
    let recorded = match order.status {
        None => 0,
        Some(Status::Pending) => 1,
        Some(_) => 2,
    };
    next.history
        .extend(steps.iter().skip(recorded).map(|step| HistoryEntry {
            status: step.name().to_string(),
            at,
        }));
    let events = final_event(&next, &status, envelope).into_iter().collect();
    if matches!(&status, Status::Cancelled { reason, .. } if reason == CUSTOMER_CANCELLED) {
        next.cancellation = Some(Cancellation::Accepted);
    }
    next.status = Some(status);
    Some((next, events))
}

/// Stores a fact unless it is known already; true if it was new.
fn record(facts: &mut Facts, fact: Fact) -> bool {
    fn set<T>(slot: &mut Option<T>, value: T) -> bool {
        let new = slot.is_none();
        if new {
            *slot = Some(value);
        }
        new
    }
    match fact {
        Fact::Placed(f) => set(&mut facts.placed, f),
        Fact::Reserved(f) => set(&mut facts.reserved, f),
        Fact::ReservationFailed(f) => set(&mut facts.reservation_failed, f),
        Fact::PaymentAuthorized(f) => set(&mut facts.payment_authorized, f),
        Fact::PaymentFailed(f) => set(&mut facts.payment_failed, f),
        Fact::CancellationRequested(f) => set(&mut facts.cancellation_requested, f),
        Fact::TimedOut => !std::mem::replace(&mut facts.timed_out, true),
    }
}

fn final_event(
    order: &Order,
    status: &Status,
    envelope: impl Fn(EventType) -> Envelope,
) -> Option<Event> {
    let placed = order.facts.placed.as_ref()?;
    match status {
        Status::Confirmed => {
            let reserved = order.facts.reserved.as_ref()?;
            let env = envelope(EventType::OrderConfirmed);
            Some(
                OrderConfirmed {
                    event_id: env.event_id,
                    order_id: order.order_id.clone(),
                    occurred_at: env.occurred_at,
                    correlation_id: env.correlation_id,
                    causation_id: env.causation_id,
                    customer_id: placed.customer_id.clone(),
                    total: reserved.total,
                    currency: placed.currency.clone(),
                }
                .into(),
            )
        }
        Status::Cancelled { reason, detail } => {
            let env = envelope(EventType::OrderCancelled);
            Some(
                OrderCancelled {
                    event_id: env.event_id,
                    order_id: order.order_id.clone(),
                    occurred_at: env.occurred_at,
                    correlation_id: env.correlation_id,
                    causation_id: env.causation_id,
                    customer_id: placed.customer_id.clone(),
                    reason: reason.clone(),
                    detail: detail.clone(),
                }
                .into(),
            )
        }
        Status::Pending | Status::Reserved => None,
    }
}
