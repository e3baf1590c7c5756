//! Event builders for the tests; each test's fresh, migrated database is a
//! [`chorus_platform::testing::TestDb`].

use chorus_avro::{PricedLine, StockReserved};

pub fn stock_reserved(total: &str, token: &str) -> StockReserved {
    let order_id = format!("order-{}", uuid::Uuid::new_v4());
    StockReserved {
        event_id: uuid::Uuid::new_v4().to_string(),
        order_id: order_id.clone(),
        occurred_at: 0,
        correlation_id: order_id,
        causation_id: None,
        customer_id: "customer-1".into(),
        lines: vec![PricedLine {
            sku: "SKU-1".into(),
            quantity: 1,
            unit_price: total.parse().unwrap(),
        }],
        total: total.parse().unwrap(),
        currency: "EUR".into(),
        payment_token: token.into(),
        payment_token_key_id: None,
    }
}

/// The `OrderCancelled` of `order_id`.
pub fn order_cancelled(order_id: &str, reason: &str) -> chorus_avro::OrderCancelled {
    chorus_avro::OrderCancelled {
        event_id: uuid::Uuid::new_v4().to_string(),
        order_id: order_id.into(),
        occurred_at: 0,
        correlation_id: order_id.into(),
        causation_id: None,
        customer_id: "customer-1".into(),
        reason: reason.into(),
        detail: None,
    }
}

/// Makes `call` as the runtime's executor does — attempt after attempt
/// (without its pauses) until the provider answers; the answer and the
/// attempts it took.
pub async fn answer<C: chorus_runtime::Calls>(calls: &C, call: &C::Call) -> (C::Answer, u32) {
    let mut attempt = 1;
    loop {
        match calls.call(call, attempt).await {
            chorus_runtime::CallOutcome::Answered(answer) => return (answer, attempt),
            chorus_runtime::CallOutcome::Retry(_) if attempt < 50 => attempt += 1,
            chorus_runtime::CallOutcome::Retry(why) => panic!("still not answered: {why}"),
        }
    }
}
