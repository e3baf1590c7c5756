//! One filled-in example of every event type: what `chorus example <Type>`
//! prints as a starting point for `chorus produce`, and what the contract
//! tests round-trip through the real registry and broker.

use rust_decimal::Decimal;

use crate::customer_texts::CancelReason;
use crate::events::*;

impl EventType {
    /// A complete, valid example of this event type for `order_id`.
    pub fn example(self, order_id: &str) -> Event {
        let event_id = uuid::Uuid::new_v4().to_string();
        let occurred_at = 1_767_225_600_000; // 2026-01-01T00:00:00Z
        let correlation_id = order_id.to_string();
        let causation_id = Some(uuid::Uuid::new_v4().to_string());
        let order_id = order_id.to_string();
        let price = Decimal::new(1999, 2);
        let customer_id = "alice".to_string();
        let currency = "EUR".to_string();
        match self {
            EventType::OrderPlaced => OrderPlaced {
                event_id,
                order_id,
                occurred_at,
                correlation_id,
                causation_id: None,
                customer_id,
                items: vec![OrderLine {
                    sku: "SKU-1".into(),
                    quantity: 2,
                }],
                currency,
                payment_token: "tok_ok".into(),
                payment_token_key_id: None,
            }
            .into(),
            EventType::OrderConfirmed => OrderConfirmed {
                event_id,
                order_id,
                occurred_at,
                correlation_id,
                causation_id,
                customer_id,
                total: price * Decimal::TWO,
                currency,
            }
            .into(),
            EventType::OrderCancelled => OrderCancelled {
                event_id,
                order_id,
                occurred_at,
                correlation_id,
                causation_id,
                customer_id,
                reason: CancelReason::OutOfStock.code().into(),
                detail: CancelReason::OutOfStock.detail(),
            }
            .into(),
            EventType::OrderCancellationRequested => OrderCancellationRequested {
                event_id,
                order_id,
                occurred_at,
                correlation_id,
                causation_id: None,
                customer_id: customer_id.clone(),
                requested_by: customer_id,
            }
            .into(),
            EventType::StockAdjusted => StockAdjusted {
                event_id,
                sku: "SKU-1".into(),
                occurred_at,
                correlation_id: "SKU-1".into(),
                causation_id: None,
                name: "Mug".into(),
                available: 100,
                unit_price: price,
            }
            .into(),
            EventType::StockReserved => StockReserved {
                event_id,
                order_id,
                occurred_at,
                correlation_id,
                causation_id,
                customer_id,
                lines: vec![PricedLine {
                    sku: "SKU-1".into(),
                    quantity: 2,
                    unit_price: price,
                }],
                total: price * Decimal::TWO,
                currency,
                payment_token: "tok_ok".into(),
                payment_token_key_id: None,
            }
            .into(),
            EventType::StockReservationFailed => StockReservationFailed {
                event_id,
                order_id,
                occurred_at,
                correlation_id,
                causation_id,
                reason: "unknown_sku".into(),
                skus: vec!["SKU-404".into()],
            }
            .into(),
            EventType::StockReleased => StockReleased {
                event_id,
                order_id,
                occurred_at,
                correlation_id,
                causation_id,
                lines: vec![ReleasedLine {
                    sku: "SKU-1".into(),
                    quantity: 2,
                }],
                reason: "payment_declined".into(),
            }
            .into(),
            EventType::PaymentAuthorized => PaymentAuthorized {
                event_id,
                order_id,
                occurred_at,
                correlation_id,
                causation_id,
                amount: price * Decimal::TWO,
                currency,
                authorization_id: "auth_123".into(),
            }
            .into(),
            EventType::PaymentFailed => PaymentFailed {
                event_id,
                order_id,
                occurred_at,
                correlation_id,
                causation_id,
                amount: price * Decimal::TWO,
                currency,
                reason: CancelReason::PaymentDeclined.code().into(),
                detail: CancelReason::PaymentDeclined.detail(),
            }
            .into(),
            EventType::PaymentVoided => PaymentVoided {
                event_id,
                order_id,
                occurred_at,
                correlation_id,
                causation_id,
                authorization_id: Some("auth_123".into()),
                amount: price * Decimal::TWO,
                currency,
                reason: "customer_cancelled".into(),
            }
            .into(),
            EventType::NotificationSent => NotificationSent {
                event_id,
                order_id,
                occurred_at,
                correlation_id,
                causation_id,
                customer_id,
                final_status: "CONFIRMED".into(),
                channel: "log".into(),
            }
            .into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use apache_avro::Schema;
    use apache_avro::reader::datum::GenericDatumReader;
    use apache_avro::writer::datum::GenericDatumWriter;

    use super::*;

    /// Each example encodes with its own schema and decodes back equal,
    /// which proves the Rust type and the `.avsc` agree field for field.
    #[test]
    fn every_rust_type_matches_its_schema() {
        for &t in EventType::ALL {
            let schema = Schema::parse_str(t.schema_text()).unwrap_or_else(|e| panic!("{t}: {e}"));
            assert_eq!(schema.name().unwrap().fullname(None), t.full_name());
            let event = t.example("order-1");
            let value = apache_avro::to_value(&event)
                .unwrap()
                .resolve(&schema)
                .unwrap();
            let bytes = GenericDatumWriter::builder(&schema)
                .build()
                .unwrap()
                .write_value_to_vec(value)
                .unwrap();
            let back = GenericDatumReader::builder(&schema)
                .build()
                .unwrap()
                .read_value(&mut bytes.as_slice())
                .unwrap();
            assert_eq!(Event::from_avro(t, &back).unwrap(), event, "{t}");
            assert_eq!(event.event_type(), t);
        }
    }

    #[test]
    fn json_round_trips_every_example() {
        for &t in EventType::ALL {
            let event = t.example("order-2");
            let text = crate::event_to_json(&event).to_string();
            assert_eq!(crate::event_from_json(t, &text).unwrap(), event, "{t}");
        }
    }
}
