//! Test support: event builders; the throwaway, migrated PostgreSQL database
//! is [`chorus_platform::testing::TestDb`].

use chorus_avro::{
    OrderCancelled, OrderConfirmed, OrderLine, OrderPlaced, PaymentFailed, StockAdjusted,
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

pub fn adjusted(sku: &str, available: i32, unit_price: &str) -> StockAdjusted {
    StockAdjusted {
        event_id: new_id(),
        sku: sku.into(),
        occurred_at: 1_700_000_000_000,
        correlation_id: sku.into(),
        causation_id: None,
        name: format!("{sku} widget"),
        available,
        unit_price: price(unit_price),
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
        detail: None,
    }
}

pub fn cancelled(order_id: &str, reason: &str) -> OrderCancelled {
    OrderCancelled {
        event_id: new_id(),
        order_id: order_id.into(),
        occurred_at: 1_700_000_000_000,
        correlation_id: order_id.into(),
        causation_id: None,
        customer_id: "cust-7".into(),
        reason: reason.into(),
        detail: None,
    }
}

pub fn confirmed(order_id: &str) -> OrderConfirmed {
    OrderConfirmed {
        event_id: new_id(),
        order_id: order_id.into(),
        occurred_at: 1_700_000_000_000,
        correlation_id: order_id.into(),
        causation_id: None,
        customer_id: "cust-7".into(),
        total: price("10"),
        currency: "EUR".into(),
    }
}
