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
            sku: "sku-1".into(),
            quantity: 1,
            unit_price: total.parse().unwrap(),
        }],
        total: total.parse().unwrap(),
        currency: "EUR".into(),
        payment_token: token.into(),
        payment_token_key_id: None,
    }
}
