//! The inventory's business rules as pure functions: what an event does to the
//! catalogue and to an order's reservation, and which events that emits.
//!
//! No I/O and no clock: the caller loads (and locks) the state, passes the
//! envelope of anything emitted, and writes back what comes out.

use chorus_avro::{CancelReason, Event};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

mod reserve;
mod settle;
#[cfg(test)]
mod tests;

pub use reserve::{requested_lines, reserve};
pub use settle::{release, sell};

/// Content that can never be applied: the message belongs in the dead-letter topic.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Invalid(pub String);

/// Why an order got no stock (the `reason` of `StockReservationFailed`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureReason {
    UnknownSku,
    OutOfStock,
}

impl FailureReason {
    pub fn as_str(self) -> &'static str {
        match self {
            FailureReason::UnknownSku => CancelReason::UnknownSku.code(),
            FailureReason::OutOfStock => CancelReason::OutOfStock.code(),
        }
    }
}

/// Where an order's reservation stands. Only `Reserved` still holds stock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReservationStatus {
    Reserved,
    Failed,
    Released,
    Sold,
}

impl ReservationStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ReservationStatus::Reserved => "reserved",
            ReservationStatus::Failed => "failed",
            ReservationStatus::Released => "released",
            ReservationStatus::Sold => "sold",
        }
    }

    pub fn parse(s: &str) -> Option<ReservationStatus> {
        [
            ReservationStatus::Reserved,
            ReservationStatus::Failed,
            ReservationStatus::Released,
            ReservationStatus::Sold,
        ]
        .into_iter()
        .find(|status| status.as_str() == s)
    }
}

/// One SKU of a reservation; the price is known once the stock was reserved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReservationLine {
    pub sku: String,
    pub quantity: i32,
    pub unit_price: Option<Decimal>,
}

/// The inventory's answer to one order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reservation {
    pub status: ReservationStatus,
    pub lines: Vec<ReservationLine>,
    /// Why it failed or was released.
    pub reason: Option<String>,
}

/// A catalogue row as a reservation sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StockLevel {
    pub sku: String,
    pub unit_price: Decimal,
    pub available: i32,
}

/// Units moved between the counters of one catalogue row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StockMove {
    pub sku: String,
    pub available: i32,
    pub reserved: i32,
    pub sold: i32,
}

/// A reservation's next state, the stock it moves and the events it emits.
#[derive(Debug, Clone, PartialEq)]
pub struct Transition {
    pub reservation: Reservation,
    pub moves: Vec<StockMove>,
    pub events: Vec<Event>,
}

/// The validation every consumer shares ([`chorus_avro::validate`]),
/// applied to every event before it touches any row: the inventory reserves
/// no stock for an order the order and payment workers refuse.
pub fn check(event: &Event) -> Result<(), Invalid> {
    chorus_avro::validate::event(event).map_err(|invalid| Invalid(invalid.to_string()))
}
