//! Test support: event builders; the throwaway, migrated PostgreSQL database
//! is [`chorus_platform::testing::TestDb`].

use chorus_avro::{
    OrderLine, OrderPlaced, PaymentAuthorized, PaymentFailed, PricedLine, StockReservationFailed,
    StockReserved,
};
use rust_decimal::Decimal;

pub fn price(s: &str) -> Decimal {
    s.parse().expect("a decimal literal")
}

fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

pub fn placed(order_id: &str, items: &[(&str, i32)]) -> OrderPlaced {
    OrderPlaced {
        event_id: new_id(),
        order_id: order_id.into(),
        occurred_at: 1_700_000_000_000,
        correlation_id: order_id.into(),
        causation_id: None,
        customer_id: "cust-7".into(),
        items: items
            .iter()
            .map(|(sku, quantity)| OrderLine {
                sku: sku.to_string(),
                quantity: *quantity,
            })
            .collect(),
        currency: "EUR".into(),
        payment_token: "tok_ok".into(),
        payment_token_key_id: None,
    }
}

/// Priced at `unit_price` per unit, total computed.
pub fn stock_reserved(order_id: &str, lines: &[(&str, i32, &str)]) -> StockReserved {
    let lines: Vec<PricedLine> = lines
        .iter()
        .map(|(sku, quantity, unit_price)| PricedLine {
            sku: sku.to_string(),
            quantity: *quantity,
            unit_price: price(unit_price),
        })
        .collect();
    StockReserved {
        event_id: new_id(),
        order_id: order_id.into(),
        occurred_at: 1_700_000_000_000,
        correlation_id: order_id.into(),
        causation_id: None,
        customer_id: "cust-7".into(),
        total: lines
            .iter()
            .map(|l| Decimal::from(l.quantity) * l.unit_price)
            .sum(),
        lines,
        currency: "EUR".into(),
        payment_token: "tok_ok".into(),
        payment_token_key_id: None,
    }
}

pub fn reservation_failed(order_id: &str, reason: &str, skus: &[&str]) -> StockReservationFailed {
    StockReservationFailed {
        event_id: new_id(),
        order_id: order_id.into(),
        occurred_at: 1_700_000_000_000,
        correlation_id: order_id.into(),
        causation_id: None,
        reason: reason.into(),
        skus: skus.iter().map(|s| s.to_string()).collect(),
    }
}

pub fn authorized(order_id: &str, amount: &str) -> PaymentAuthorized {
    PaymentAuthorized {
        event_id: new_id(),
        order_id: order_id.into(),
        occurred_at: 1_700_000_000_000,
        correlation_id: order_id.into(),
        causation_id: None,
        amount: price(amount),
        currency: "EUR".into(),
        authorization_id: "auth-1".into(),
    }
}

pub fn payment_failed(order_id: &str, reason: &str) -> PaymentFailed {
    PaymentFailed {
        event_id: new_id(),
        order_id: order_id.into(),
        occurred_at: 1_700_000_000_000,
        correlation_id: order_id.into(),
        causation_id: None,
        amount: price("10"),
        currency: "EUR".into(),
        reason: reason.into(),
        detail: Some("card declined".into()),
    }
}
