//! One validation of each event type's content, shared by every consumer:
//! a worker calls [`event`] before it touches any state, so every worker
//! acting on an event accepts it or refuses it alike (an `OrderPlaced` the
//! order worker refuses reserves no stock either). A refusal names the
//! event, its key and the field, and says what the field's rule is.
//!
//! The rules are those of [`fields`], one per kind of field; what the
//! gateway accepts from a client passes them.

use std::fmt::Display;

use rust_decimal::Decimal;

use crate::customer_texts::CancelReason;
use crate::events::*;

pub mod fields;
mod refused;
#[cfg(test)]
mod tests;

pub use fields::fit_detail;
pub use refused::{RefusedExample, refused_examples};

use fields::{
    Rule, amount, authorization_id, available, code, currency, detail, identifier, line_count,
    one_of, payment_token, product_name, quantity, reserved_units, sku, unit_price,
};

/// An event whose content no consumer may apply: which field, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{event_type} {key}: {field} {problem}")]
pub struct Invalid {
    pub event_type: EventType,
    /// The event's key (order id or SKU), escaped and cut short.
    pub key: String,
    /// The field as a path into the event, e.g. `customer_id`, `items[1].quantity`.
    pub field: String,
    /// What the field's rule asks for, and what it got.
    pub problem: String,
}

/// Checks `event`'s content against the rules of its type.
pub fn event(event: &Event) -> Result<(), Invalid> {
    match event {
        Event::OrderPlaced(e) => order_placed(e),
        Event::OrderConfirmed(e) => order_confirmed(e),
        Event::OrderCancelled(e) => order_cancelled(e),
        Event::OrderCancellationRequested(e) => order_cancellation_requested(e),
        Event::StockAdjusted(e) => stock_adjusted(e),
        Event::StockReserved(e) => stock_reserved(e),
        Event::StockReservationFailed(e) => stock_reservation_failed(e),
        Event::StockReleased(e) => stock_released(e),
        Event::PaymentAuthorized(e) => payment_authorized(e),
        Event::PaymentFailed(e) => payment_failed(e),
        Event::PaymentVoided(e) => payment_voided(e),
        Event::NotificationSent(e) => notification_sent(e),
    }
}

pub fn order_placed(e: &OrderPlaced) -> Result<(), Invalid> {
    let at = At::envelope(e, &e.order_id, &e.correlation_id, &e.causation_id)?;
    at.field("order_id", identifier(&e.order_id))?;
    at.field("customer_id", identifier(&e.customer_id))?;
    at.field("items", line_count(e.items.len()))?;
    for (i, line) in e.items.iter().enumerate() {
        at.item("items", i, "sku", sku(&line.sku))?;
        at.item("items", i, "quantity", quantity(line.quantity))?;
    }
    at.field("currency", currency(&e.currency))?;
    at.field("payment_token", payment_token(&e.payment_token))?;
    at.optional("payment_token_key_id", &e.payment_token_key_id, identifier)
}

pub fn order_confirmed(e: &OrderConfirmed) -> Result<(), Invalid> {
    let at = At::envelope(e, &e.order_id, &e.correlation_id, &e.causation_id)?;
    at.field("order_id", identifier(&e.order_id))?;
    at.field("customer_id", identifier(&e.customer_id))?;
    at.field("total", amount(e.total))?;
    at.field("currency", currency(&e.currency))
}

pub fn order_cancelled(e: &OrderCancelled) -> Result<(), Invalid> {
    let at = At::envelope(e, &e.order_id, &e.correlation_id, &e.causation_id)?;
    at.field("order_id", identifier(&e.order_id))?;
    at.field("customer_id", identifier(&e.customer_id))?;
    at.field("reason", reason(&e.reason, CancelReason::ALL))?;
    at.optional("detail", &e.detail, detail)
}

pub fn order_cancellation_requested(e: &OrderCancellationRequested) -> Result<(), Invalid> {
    let at = At::envelope(e, &e.order_id, &e.correlation_id, &e.causation_id)?;
    at.field("order_id", identifier(&e.order_id))?;
    at.field("customer_id", identifier(&e.customer_id))?;
    at.field("requested_by", identifier(&e.requested_by))
}

pub fn stock_adjusted(e: &StockAdjusted) -> Result<(), Invalid> {
    let at = At::envelope(e, &e.sku, &e.correlation_id, &e.causation_id)?;
    at.field("sku", sku(&e.sku))?;
    at.field("name", product_name(&e.name))?;
    at.field("available", available(e.available))?;
    at.field("unit_price", unit_price(e.unit_price))
}

/// Besides each field's rule, the total is what the lines add up to: a
/// reservation is charged for its total.
pub fn stock_reserved(e: &StockReserved) -> Result<(), Invalid> {
    let at = At::envelope(e, &e.order_id, &e.correlation_id, &e.causation_id)?;
    at.field("order_id", identifier(&e.order_id))?;
    at.field("customer_id", identifier(&e.customer_id))?;
    at.field("lines", line_count(e.lines.len()))?;
    for (i, line) in e.lines.iter().enumerate() {
        at.item("lines", i, "sku", sku(&line.sku))?;
        at.item("lines", i, "quantity", reserved_units(line.quantity))?;
        at.item("lines", i, "unit_price", unit_price(line.unit_price))?;
    }
    at.field("total", amount(e.total))?;
    at.field("total", adds_up(&e.lines, e.total))?;
    at.field("currency", currency(&e.currency))?;
    at.field("payment_token", payment_token(&e.payment_token))?;
    at.optional("payment_token_key_id", &e.payment_token_key_id, identifier)
}

fn adds_up(lines: &[PricedLine], total: Decimal) -> Rule {
    let sum = lines.iter().try_fold(Decimal::ZERO, |sum, line| {
        Decimal::from(line.quantity)
            .checked_mul(line.unit_price)
            .and_then(|amount| sum.checked_add(amount))
    });
    match sum {
        Some(sum) if sum == total => Ok(()),
        Some(sum) => Err(format!("must be the lines' total {sum}, got {total}")),
        None => Err("must be the lines' total, which overflows".to_string()),
    }
}

pub fn stock_reservation_failed(e: &StockReservationFailed) -> Result<(), Invalid> {
    let at = At::envelope(e, &e.order_id, &e.correlation_id, &e.causation_id)?;
    at.field("order_id", identifier(&e.order_id))?;
    at.field("reason", reason(&e.reason, CancelReason::STOCK))?;
    if e.skus.len() > fields::MAX_LINES {
        let problem = format!("must name at most {} SKUs", fields::MAX_LINES);
        at.field("skus", Err(problem))?;
    }
    for (i, named) in e.skus.iter().enumerate() {
        at.item("skus", i, "", sku(named))?;
    }
    Ok(())
}

pub fn stock_released(e: &StockReleased) -> Result<(), Invalid> {
    let at = At::envelope(e, &e.order_id, &e.correlation_id, &e.causation_id)?;
    at.field("order_id", identifier(&e.order_id))?;
    at.field("lines", line_count(e.lines.len()))?;
    for (i, line) in e.lines.iter().enumerate() {
        at.item("lines", i, "sku", sku(&line.sku))?;
        at.item("lines", i, "quantity", reserved_units(line.quantity))?;
    }
    at.field("reason", code(&e.reason))
}

pub fn payment_authorized(e: &PaymentAuthorized) -> Result<(), Invalid> {
    let at = At::envelope(e, &e.order_id, &e.correlation_id, &e.causation_id)?;
    at.field("order_id", identifier(&e.order_id))?;
    at.field("amount", amount(e.amount))?;
    at.field("currency", currency(&e.currency))?;
    at.field("authorization_id", authorization_id(&e.authorization_id))
}

pub fn payment_failed(e: &PaymentFailed) -> Result<(), Invalid> {
    let at = At::envelope(e, &e.order_id, &e.correlation_id, &e.causation_id)?;
    at.field("order_id", identifier(&e.order_id))?;
    at.field("amount", amount(e.amount))?;
    at.field("currency", currency(&e.currency))?;
    at.field("reason", reason(&e.reason, CancelReason::PAYMENT))?;
    at.optional("detail", &e.detail, detail)
}

pub fn payment_voided(e: &PaymentVoided) -> Result<(), Invalid> {
    let at = At::envelope(e, &e.order_id, &e.correlation_id, &e.causation_id)?;
    at.field("order_id", identifier(&e.order_id))?;
    at.optional("authorization_id", &e.authorization_id, authorization_id)?;
    at.field("amount", amount(e.amount))?;
    at.field("currency", currency(&e.currency))?;
    at.field("reason", code(&e.reason))
}

pub fn notification_sent(e: &NotificationSent) -> Result<(), Invalid> {
    let at = At::envelope(e, &e.order_id, &e.correlation_id, &e.causation_id)?;
    at.field("order_id", identifier(&e.order_id))?;
    at.field("customer_id", identifier(&e.customer_id))?;
    at.field(
        "final_status",
        one_of(&e.final_status, &["CONFIRMED", "CANCELLED"]),
    )?;
    at.field("channel", one_of(&e.channel, &["log", "webhook", "smtp"]))
}

/// A reason a customer reads: one of `reasons` (see [`CancelReason`]).
/// The `detail` beside it stays free text, so events written before the
/// texts were fixed are still applied; no consumer passes it on.
fn reason<const N: usize>(value: &str, reasons: [CancelReason; N]) -> Rule {
    one_of(value, &CancelReason::codes(reasons))
}

/// The event being checked: turns a rule's answer into an [`Invalid`]
/// naming the field, building the field's path only when it is refused.
struct At {
    event_type: EventType,
    key: String,
}

impl At {
    /// Starts the check of `e` with the envelope's ids, which every event carries.
    fn envelope<E: EventPayload>(
        e: &E,
        key: &str,
        correlation_id: &str,
        causation_id: &Option<String>,
    ) -> Result<At, Invalid> {
        let at = At {
            event_type: E::TYPE,
            key: fields::shown(key),
        };
        at.field("event_id", identifier(e.event_id()))?;
        at.field("correlation_id", identifier(correlation_id))?;
        at.optional("causation_id", causation_id, identifier)?;
        Ok(at)
    }

    fn field(&self, name: impl Display, rule: Rule) -> Result<(), Invalid> {
        rule.map_err(|problem| Invalid {
            event_type: self.event_type,
            key: self.key.clone(),
            field: name.to_string(),
            problem,
        })
    }

    /// `list[index].member`, or `list[index]` for a list of plain values.
    fn item(&self, list: &str, index: usize, member: &str, rule: Rule) -> Result<(), Invalid> {
        let Err(problem) = rule else {
            return Ok(());
        };
        let dot = if member.is_empty() { "" } else { "." };
        self.field(format!("{list}[{index}]{dot}{member}"), Err(problem))
    }

    fn optional(
        &self,
        name: &str,
        value: &Option<String>,
        rule: impl Fn(&str) -> Rule,
    ) -> Result<(), Invalid> {
        match value {
            Some(value) => self.field(name, rule(value)),
            None => Ok(()),
        }
    }
}
