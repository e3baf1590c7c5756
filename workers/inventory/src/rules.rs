//! The inventory's business rules as pure functions: what an event does to the
//! catalogue and to an order's reservation, and which events that emits.
//!
//! No I/O and no clock: the caller loads (and locks) the state, passes the
//! envelope of anything emitted, and writes back what comes out.

use chorus_avro::{Event, StockAdjusted};
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
            FailureReason::UnknownSku => "unknown_sku",
            FailureReason::OutOfStock => "out_of_stock",
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

/// A catalogue adjustment sets absolute values, so only its own content can be wrong.
pub fn check_adjustment(adjusted: &StockAdjusted) -> Result<(), Invalid> {
    if let Some(problem) = chorus_avro::sku_problem(&adjusted.sku) {
        return Err(Invalid(format!("StockAdjusted: {problem}")));
    }
    if adjusted.name.chars().count() > 200 {
        return Err(Invalid(format!(
            "StockAdjusted {}: the name is longer than 200 characters",
            adjusted.sku
        )));
    }
    if adjusted.available < 0 {
        return Err(Invalid(format!(
            "StockAdjusted {}: available {} is negative",
            adjusted.sku, adjusted.available
        )));
    }
    if adjusted.unit_price < Decimal::ZERO {
        return Err(Invalid(format!(
            "StockAdjusted {}: unit_price {} is negative",
            adjusted.sku, adjusted.unit_price
        )));
    }
    Ok(())
}
