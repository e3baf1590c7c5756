//! What `chaos check` knows after reading the topics and databases: plain
//! data, so the invariants are pure functions of it and testable on fixtures.

use std::collections::BTreeMap;

use rust_decimal::Decimal;

use crate::chaos::poison::PoisonRecord;

/// A row of the gateway's `accepted_orders`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    pub order_id: String,
    /// Kafka acknowledged its OrderPlaced (the client got its 202).
    pub published: bool,
    /// When the gateway accepted it, UTC milliseconds.
    pub created_at: i64,
}

/// A row of the order read model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderFact {
    pub order_id: String,
    pub status: String,
    pub reason: Option<String>,
    pub total: Option<Decimal>,
    /// UTC milliseconds.
    pub created_at: i64,
    pub updated_at: i64,
    /// Its stock was reserved at some point (RESERVED in its history, or CONFIRMED).
    pub reserved: bool,
    /// (SKU, quantity) as ordered.
    pub lines: Vec<(String, i64)>,
}

/// A catalogue row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StockFact {
    pub sku: String,
    pub available: i64,
    pub reserved: i64,
    pub sold: i64,
}

/// The last valid StockAdjusted of a SKU on the inventory commands topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Adjustment {
    pub available: i64,
    /// Its Kafka timestamp, UTC milliseconds.
    pub at: i64,
}

/// A charge in the sandbox provider's books.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChargeFact {
    pub order_id: String,
    pub amount: Decimal,
    pub voided: bool,
}

/// A call the sandbox provider received (`sandbox_calls`): its own log,
/// written whether or not the call charged anything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallFact {
    /// The idempotency key: the order id.
    pub key: String,
    pub kind: CallKind,
    /// UTC milliseconds.
    pub at: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallKind {
    Authorize,
    Void,
}

/// A row of the notification worker's `deliveries`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryFact {
    pub order_id: String,
    pub final_status: String,
    pub channel: String,
    /// `delivered`, `failed` or `pending` (`delivered` where the table has no status).
    pub status: String,
}

/// A NotificationSent on the notifications topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentFact {
    pub order_id: String,
    pub final_status: String,
    pub channel: String,
    pub event_id: String,
}

/// A message on a dead-letter topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetterFact {
    pub topic: String,
    pub key: Option<String>,
    /// Its payload decodes to a chorus event.
    pub valid_event: bool,
    /// `chorus-original-topic`/`-partition`/`-offset`, when all three are there.
    pub original: Option<(String, i32, i64)>,
}

#[derive(Debug, Clone, Default)]
pub struct Facts {
    pub accepted: Vec<Accepted>,
    pub orders: Vec<OrderFact>,
    pub stock: Vec<StockFact>,
    pub adjustments: BTreeMap<String, Adjustment>,
    pub charges: Vec<ChargeFact>,
    /// The sandbox marks voided charges (`sandbox_charges.voided_at`); without
    /// it every charge counts as standing.
    pub void_marker: bool,
    /// The sandbox's call log, in the order the calls came.
    pub calls: Vec<CallFact>,
    pub deliveries: Vec<DeliveryFact>,
    pub sent: Vec<SentFact>,
    pub dead_letters: Vec<DeadLetterFact>,
    /// What `chaos poison` sent, when given.
    pub poison: Option<Vec<PoisonRecord>>,
    /// When given (`--designed-fates-from`), UTC milliseconds from which the
    /// campaign only stopped and restarted services: an order the gateway
    /// accepted from then on must end with the fate its input designed.
    pub designed_from: Option<i64>,
}
