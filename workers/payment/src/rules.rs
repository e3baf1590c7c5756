//! The payment rules, pure: what to ask the provider for, how long to wait
//! between attempts, and which event an outcome becomes. No I/O, no async.

use std::time::Duration;

use chorus_avro::{Envelope, Event, EventPayload, PaymentAuthorized, PaymentFailed, StockReserved};
use rust_decimal::Decimal;

use crate::provider::AuthorizationRequest;

/// `PaymentFailed.reason` when the provider said no.
pub const PAYMENT_DECLINED: &str = "payment_declined";
/// `PaymentFailed.reason` when the provider could not be reached after every attempt.
pub const PAYMENT_UNAVAILABLE: &str = "payment_unavailable";

/// How often, and how patiently, a transiently failing provider is asked again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Calls in total, the first included; at least 1.
    pub max_attempts: u32,
    pub first_backoff: Duration,
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 4,
            first_backoff: Duration::from_millis(50),
            max_backoff: Duration::from_secs(1),
        }
    }
}

impl RetryPolicy {
    /// The pause after failed attempt `attempt` (1-based): `first_backoff`
    /// doubled per attempt, never above `max_backoff`.
    pub fn backoff_after(&self, attempt: u32) -> Duration {
        chorus_runtime::retry::backoff(attempt, self.first_backoff, self.max_backoff)
    }

    /// Whether another call may follow failed attempt `attempt`.
    pub fn may_retry_after(&self, attempt: u32) -> bool {
        attempt < self.max_attempts
    }

    /// Every pause of a sequence that fails each time.
    pub fn schedule(&self) -> Vec<Duration> {
        (1..self.max_attempts.max(1))
            .map(|attempt| self.backoff_after(attempt))
            .collect()
    }
}

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
        }
    }

    #[test]
    fn backoff_doubles_from_50ms_and_stops_at_1s() {
        let policy = RetryPolicy::default();
        let ms: Vec<u128> = (1..=7)
            .map(|a| policy.backoff_after(a).as_millis())
            .collect();
        assert_eq!(ms, [50, 100, 200, 400, 800, 1000, 1000]);
        assert_eq!(policy.backoff_after(u32::MAX), Duration::from_secs(1));
    }

    #[test]
    fn four_attempts_pause_three_times() {
        let policy = RetryPolicy::default();
        assert_eq!(
            policy.schedule(),
            [50, 100, 200].map(Duration::from_millis).to_vec()
        );
        assert!(policy.may_retry_after(3));
        assert!(!policy.may_retry_after(4));
        let once = RetryPolicy {
            max_attempts: 1,
            ..policy
        };
        assert!(once.schedule().is_empty());
        assert!(!once.may_retry_after(1));
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
