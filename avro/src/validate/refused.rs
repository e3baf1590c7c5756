//! Events every consumer must refuse, each the valid example of its type
//! ([`EventType::example`]) with one field broken: one fixture list for the
//! rules' own tests and for the test that runs them through every worker.

use rust_decimal::Decimal;

use crate::events::*;

/// An event with one field no rule accepts, and that field's path.
#[derive(Debug, Clone)]
pub struct RefusedExample {
    /// The path [`super::Invalid::field`] must name.
    pub field: &'static str,
    pub event: Event,
}

/// The order id of every refused example.
const ORDER: &str = "order-refused";

/// The example of `$type` with `$change` applied to it (bound as `$e`).
macro_rules! refused {
    ($type:ident, $field:expr, |$e:ident| $change:expr) => {{
        let Event::$type(mut $e) = EventType::$type.example(ORDER) else {
            unreachable!("the example of a type is an event of that type")
        };
        $change;
        RefusedExample {
            field: $field,
            event: Event::$type($e),
        }
    }};
}

fn price(text: &str) -> Decimal {
    text.parse().expect("a decimal literal")
}

/// Every kind of refusal, for every event type.
pub fn refused_examples() -> Vec<RefusedExample> {
    let mut all = order_events();
    all.extend(stock_events());
    all.extend(payment_events());
    all
}

fn order_events() -> Vec<RefusedExample> {
    let line = |sku: &str, quantity| OrderLine {
        sku: sku.into(),
        quantity,
    };
    vec![
        refused!(OrderPlaced, "customer_id", |e| e.customer_id =
            "mallory\u{7}".into()),
        refused!(OrderPlaced, "customer_id", |e| e.customer_id = "  ".into()),
        refused!(OrderPlaced, "customer_id", |e| e.customer_id =
            "c".repeat(129)),
        refused!(OrderPlaced, "order_id", |e| e.order_id = "o\0".into()),
        refused!(OrderPlaced, "event_id", |e| e.event_id = String::new()),
        refused!(OrderPlaced, "correlation_id", |e| e.correlation_id =
            "x\ny".into()),
        refused!(OrderPlaced, "causation_id", |e| e.causation_id =
            Some(String::new())),
        refused!(OrderPlaced, "items", |e| e.items.clear()),
        refused!(OrderPlaced, "items", |e| e.items =
            vec![line("SKU-1", 1); 51]),
        refused!(OrderPlaced, "items[1].sku", |e| e
            .items
            .push(line("sku-1", 1))),
        refused!(OrderPlaced, "items[0].sku", |e| e.items[0].sku =
            "S".repeat(33)),
        refused!(OrderPlaced, "items[0].quantity", |e| e.items[0].quantity =
            0),
        refused!(OrderPlaced, "items[0].quantity", |e| e.items[0].quantity =
            -5),
        refused!(OrderPlaced, "items[0].quantity", |e| e.items[0].quantity =
            1001),
        refused!(OrderPlaced, "currency", |e| e.currency = "eur".into()),
        refused!(OrderPlaced, "payment_token", |e| e.payment_token =
            String::new()),
        refused!(OrderPlaced, "payment_token_key_id", |e| e
            .payment_token_key_id =
            Some("k\0".into())),
        refused!(OrderConfirmed, "customer_id", |e| e.customer_id =
            "c\u{1b}".into()),
        refused!(OrderConfirmed, "total", |e| e.total = price("-0.01")),
        refused!(OrderConfirmed, "total", |e| e.total = price("1.00001")),
        refused!(OrderConfirmed, "currency", |e| e.currency = "EURO".into()),
        refused!(OrderCancelled, "customer_id", |e| e.customer_id =
            String::new()),
        refused!(OrderCancelled, "reason", |e| e.reason =
            "Out of stock".into()),
        refused!(OrderCancelled, "reason", |e| e.reason =
            "card_declined".into()),
        refused!(OrderCancelled, "detail", |e| e.detail = Some("a\0b".into())),
        refused!(OrderCancelled, "detail", |e| e.detail =
            Some("d".repeat(4097))),
        refused!(OrderCancellationRequested, "requested_by", |e| e
            .requested_by =
            String::new()),
        refused!(OrderCancellationRequested, "customer_id", |e| e
            .customer_id =
            "c\u{7f}".into()),
        refused!(NotificationSent, "final_status", |e| e.final_status =
            "DONE".into()),
        refused!(NotificationSent, "channel", |e| e.channel = "fax".into()),
    ]
}

fn stock_events() -> Vec<RefusedExample> {
    vec![
        refused!(StockAdjusted, "sku", |e| e.sku = " ".into()),
        refused!(StockAdjusted, "name", |e| e.name = String::new()),
        refused!(StockAdjusted, "name", |e| e.name = "n".repeat(201)),
        refused!(StockAdjusted, "name", |e| e.name = "mug\0".into()),
        refused!(StockAdjusted, "available", |e| e.available = -1),
        refused!(StockAdjusted, "available", |e| e.available = 1_000_000_001),
        refused!(StockAdjusted, "unit_price", |e| e.unit_price =
            price("-0.01")),
        refused!(StockAdjusted, "unit_price", |e| e.unit_price =
            price("1000000000")),
        refused!(StockAdjusted, "unit_price", |e| e.unit_price =
            price("0.00001")),
        refused!(StockReserved, "customer_id", |e| e.customer_id =
            "c\0".into()),
        refused!(StockReserved, "order_id", |e| e.order_id = " ".into()),
        refused!(StockReserved, "lines", |e| {
            e.lines.clear();
            e.total = Decimal::ZERO;
        }),
        refused!(StockReserved, "lines[0].sku", |e| e.lines[0].sku =
            "S".repeat(10_000)),
        refused!(StockReserved, "lines[0].quantity", |e| e.lines[0]
            .quantity = 0),
        refused!(StockReserved, "lines[0].unit_price", |e| e.lines[0]
            .unit_price =
            price("-1")),
        refused!(StockReserved, "total", |e| e.total = price("-39.98")),
        refused!(StockReserved, "total", |e| e.total = price("0.01")),
        refused!(StockReserved, "currency", |e| e.currency = String::new()),
        refused!(StockReserved, "payment_token", |e| e.payment_token =
            "t".repeat(4097)),
        refused!(StockReservationFailed, "reason", |e| e.reason =
            String::new()),
        refused!(StockReservationFailed, "reason", |e| e.reason =
            "payment_declined".into()),
        refused!(StockReservationFailed, "skus[0]", |e| e.skus[0] =
            "sku 404".into()),
        refused!(StockReservationFailed, "order_id", |e| e.order_id =
            "o\u{7}".into()),
        refused!(StockReleased, "lines[0].quantity", |e| e.lines[0]
            .quantity = -2),
        refused!(StockReleased, "reason", |e| e.reason =
            "payment-declined".into()),
    ]
}

fn payment_events() -> Vec<RefusedExample> {
    vec![
        refused!(PaymentAuthorized, "amount", |e| e.amount = price("-10.00")),
        refused!(PaymentAuthorized, "authorization_id", |e| e
            .authorization_id =
            String::new()),
        refused!(PaymentAuthorized, "authorization_id", |e| e
            .authorization_id =
            "a".repeat(257)),
        refused!(PaymentAuthorized, "authorization_id", |e| e
            .authorization_id =
            "chaos\0nul".into()),
        refused!(PaymentAuthorized, "currency", |e| e.currency = "€".into()),
        refused!(PaymentFailed, "amount", |e| e.amount = price("-10.00")),
        refused!(PaymentFailed, "reason", |e| e.reason = String::new()),
        refused!(PaymentFailed, "reason", |e| e.reason =
            "out_of_stock".into()),
        refused!(PaymentFailed, "detail", |e| e.detail =
            Some("declined\0".into())),
        refused!(PaymentFailed, "currency", |e| e.currency = "usd".into()),
        refused!(PaymentFailed, "order_id", |e| e.order_id = "o\r".into()),
        refused!(PaymentVoided, "authorization_id", |e| e.authorization_id =
            Some(String::new())),
        refused!(PaymentVoided, "reason", |e| e.reason = String::new()),
    ]
}
