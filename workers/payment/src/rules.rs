//! The payment rules, pure: what to ask the provider for and which event an
//! outcome becomes. No I/O, no async. The pause between attempts is
//! [`chorus_runtime::retry::RetryPolicy`]'s.

use chorus_avro::{Envelope, Event, EventPayload, PaymentAuthorized, PaymentFailed, StockReserved};
use rust_decimal::Decimal;

use crate::provider::AuthorizationRequest;

/// `PaymentFailed.reason` when the provider said no.
pub const PAYMENT_DECLINED: &str = "payment_declined";
/// `PaymentFailed.reason` when the provider could not be reached after every attempt.
pub const PAYMENT_UNAVAILABLE: &str = "payment_unavailable";

/// What the provider finally answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PaymentOutcome {
    Authorized {
        authorization_id: String,
    },
    Declined {
        detail: String,
    },
    /// Still transiently failing when the attempts ran out.
    Unavailable {
        detail: String,
    },
}

/// An outcome and how many calls it took.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Charge {
    pub outcome: PaymentOutcome,
    pub attempts: u32,
}

/// The request for the provider, or why the event can never be charged.
pub fn authorization_request(reserved: &StockReserved) -> Result<AuthorizationRequest, String> {
    if reserved.total < Decimal::ZERO {
        return Err(format!(
            "order {} has a negative total {}",
            reserved.order_id, reserved.total
        ));
    }
    if reserved.currency.trim().is_empty() {
        return Err(format!("order {} has no currency", reserved.order_id));
    }
    Ok(AuthorizationRequest {
        order_id: reserved.order_id.clone(),
        amount: reserved.total,
        currency: reserved.currency.clone(),
        token: reserved.payment_token.clone(),
    })
}

/// The event answering `reserved` (carried by `cause`) with `outcome`.
pub fn payment_event(cause: &Event, reserved: &StockReserved, outcome: &PaymentOutcome) -> Event {
    let failed = |reason: &str, detail: &str| {
        let envelope = Envelope::caused_by(cause, PaymentFailed::TYPE);
        PaymentFailed {
            event_id: envelope.event_id,
            order_id: reserved.order_id.clone(),
            occurred_at: envelope.occurred_at,
            correlation_id: envelope.correlation_id,
            causation_id: envelope.causation_id,
            amount: reserved.total,
            currency: reserved.currency.clone(),
            reason: reason.to_string(),
            detail: Some(detail.to_string()),
        }
        .into()
    };
    match outcome {
        PaymentOutcome::Authorized { authorization_id } => {
            let envelope = Envelope::caused_by(cause, PaymentAuthorized::TYPE);
            PaymentAuthorized {
                event_id: envelope.event_id,
                order_id: reserved.order_id.clone(),
                occurred_at: envelope.occurred_at,
                correlation_id: envelope.correlation_id,
                causation_id: envelope.causation_id,
                amount: reserved.total,
                currency: reserved.currency.clone(),
                authorization_id: authorization_id.clone(),
            }
            .into()
        }
        PaymentOutcome::Declined { detail } => failed(PAYMENT_DECLINED, detail),
        PaymentOutcome::Unavailable { detail } => failed(PAYMENT_UNAVAILABLE, detail),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chorus_avro::PricedLine;

    fn stock_reserved(total: &str) -> StockReserved {
        StockReserved {
            event_id: "e-1".into(),
            order_id: "o-1".into(),
            occurred_at: 0,
            correlation_id: "o-1".into(),
            causation_id: None,
            customer_id: "c-1".into(),
            lines: vec![PricedLine {
                sku: "sku-1".into(),
                quantity: 1,
                unit_price: total.parse().unwrap(),
            }],
            total: total.parse().unwrap(),
            currency: "EUR".into(),
            payment_token: "tok_ok".into(),
            payment_token_key_id: None,
        }
    }

    #[test]
    fn given_a_reservation_when_asking_then_the_order_id_is_the_key_and_the_total_the_amount() {
        let request = authorization_request(&stock_reserved("19.99")).unwrap();
        assert_eq!(request.idempotency_key(), "o-1");
        assert_eq!(request.amount.to_string(), "19.99");
        assert_eq!(request.currency, "EUR");
        assert_eq!(request.token, "tok_ok");
    }

    #[test]
    fn given_a_negative_total_then_it_can_never_be_charged() {
        assert!(authorization_request(&stock_reserved("-1.00")).is_err());
    }

    #[test]
    fn given_an_authorization_then_payment_authorized_for_the_total() {
        let reserved = stock_reserved("19.99");
        let cause = Event::from(reserved.clone());
        let outcome = PaymentOutcome::Authorized {
            authorization_id: "auth-1".into(),
        };
        let Event::PaymentAuthorized(event) = payment_event(&cause, &reserved, &outcome) else {
            panic!("expected PaymentAuthorized");
        };
        assert_eq!(event.order_id, "o-1");
        assert_eq!(event.amount, reserved.total);
        assert_eq!(event.authorization_id, "auth-1");
        assert_eq!(event.causation_id.as_deref(), Some("e-1"));
        assert_eq!(event.correlation_id, "o-1");
    }

    #[test]
    fn given_a_decline_then_payment_failed_declined_with_the_providers_reason() {
        let reserved = stock_reserved("5.00");
        let cause = Event::from(reserved.clone());
        let outcome = PaymentOutcome::Declined {
            detail: "card declined".into(),
        };
        let Event::PaymentFailed(event) = payment_event(&cause, &reserved, &outcome) else {
            panic!("expected PaymentFailed");
        };
        assert_eq!(event.reason, PAYMENT_DECLINED);
        assert_eq!(event.detail.as_deref(), Some("card declined"));
        assert_eq!(event.amount.to_string(), "5.00");
    }

    #[test]
    fn given_an_unreachable_provider_then_payment_failed_unavailable() {
        let reserved = stock_reserved("5.00");
        let cause = Event::from(reserved.clone());
        let outcome = PaymentOutcome::Unavailable {
            detail: "503".into(),
        };
        let Event::PaymentFailed(event) = payment_event(&cause, &reserved, &outcome) else {
            panic!("expected PaymentFailed");
        };
        assert_eq!(event.reason, PAYMENT_UNAVAILABLE);
    }

    #[test]
    fn the_same_cause_always_gets_the_same_event_id() {
        let reserved = stock_reserved("5.00");
        let cause = Event::from(reserved.clone());
        let outcome = PaymentOutcome::Declined { detail: "x".into() };
        let first = payment_event(&cause, &reserved, &outcome);
        let again = payment_event(&cause, &reserved, &outcome);
        assert_eq!(first.event_id(), again.event_id());
        assert_ne!(first.event_id(), cause.event_id());
    }
}
