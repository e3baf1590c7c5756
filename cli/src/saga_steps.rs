//! The saga as an operator reads it: which service produces each event type,
//! which statuses are final, and what a saga in a given status waits for.
//! One place, so `trace` and `sagas stuck` can never disagree.

use chorus_avro::EventType;

pub const FINAL_STATUSES: [&str; 2] = ["CONFIRMED", "CANCELLED"];

pub fn is_final(status: &str) -> bool {
    FINAL_STATUSES.contains(&status)
}

/// The service that publishes events of this type.
pub fn producing_service(event_type: EventType) -> &'static str {
    match event_type {
        EventType::OrderPlaced
        | EventType::OrderCancellationRequested
        | EventType::StockAdjusted => "gateway",
        EventType::StockReserved | EventType::StockReservationFailed | EventType::StockReleased => {
            "inventory"
        }
        EventType::PaymentAuthorized | EventType::PaymentFailed | EventType::PaymentVoided => {
            "payment"
        }
        EventType::OrderConfirmed | EventType::OrderCancelled => "order",
        EventType::NotificationSent => "notification",
    }
}

/// The step a saga in `status` waits for, or None once it is final.
pub fn waiting_for(status: &str) -> Option<&'static str> {
    match status {
        "PENDING" => Some("inventory: StockReserved or StockReservationFailed"),
        "RESERVED" => Some("payment: PaymentAuthorized or PaymentFailed"),
        s if is_final(s) => None,
        _ => Some("order: a status the order worker derives (unknown status)"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_event_type_has_a_producer() {
        for &event_type in EventType::ALL {
            assert!(!producing_service(event_type).is_empty());
        }
        assert_eq!(producing_service(EventType::OrderPlaced), "gateway");
        assert_eq!(producing_service(EventType::PaymentVoided), "payment");
        assert_eq!(producing_service(EventType::OrderCancelled), "order");
    }

    #[test]
    fn a_final_saga_waits_for_nothing() {
        assert_eq!(waiting_for("CONFIRMED"), None);
        assert_eq!(waiting_for("CANCELLED"), None);
        assert!(waiting_for("PENDING").unwrap().starts_with("inventory"));
        assert!(waiting_for("RESERVED").unwrap().starts_with("payment"));
    }
}
