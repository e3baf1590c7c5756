//! The payment rules, pure: what a `StockReserved`, an `OrderCancelled` or
//! the provider's answer does to an order's payment, which call it asks for
//! and which events it emits. No I/O, no async, no clock.
//!
//! An order's payment moves through: nothing → `authorizing` (the intent;
//! the provider is called) → `authorized` | `declined` | (not answered in
//! time) `voiding` → `unavailable`. A cancellation voids a standing
//! authorization (`voiding` → `voided`), marks one being asked for so its
//! answer is voided at once, and before any authorization leaves a
//! `cancelled` tombstone so a late `StockReserved` is never charged. No
//! charge stands for a cancelled order.

use chorus_avro::validate;
use chorus_avro::{
    CancelReason, Envelope, Event, EventType, PaymentAuthorized, PaymentFailed, PaymentVoided,
    StockReserved,
};
use rust_decimal::Decimal;

/// `PaymentFailed.reason` when the provider said no.
pub const PAYMENT_DECLINED: &str = CancelReason::PaymentDeclined.code();
/// `PaymentFailed.reason` when the payment could not be completed: the
/// provider could not be reached after every attempt, its answer could not
/// be kept, or the payment token could not be opened.
pub const PAYMENT_UNAVAILABLE: &str = CancelReason::PaymentUnavailable.code();

/// Where an order's payment stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Authorizing,
    Authorized,
    Declined,
    Unavailable,
    Voiding,
    Voided,
    Cancelled,
}

impl Status {
    pub const ALL: [Status; 7] = [
        Status::Authorizing,
        Status::Authorized,
        Status::Declined,
        Status::Unavailable,
        Status::Voiding,
        Status::Voided,
        Status::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Authorizing => "authorizing",
            Status::Authorized => "authorized",
            Status::Declined => "declined",
            Status::Unavailable => "unavailable",
            Status::Voiding => "voiding",
            Status::Voided => "voided",
            Status::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<Status> {
        Status::ALL.into_iter().find(|status| status.as_str() == s)
    }
}

/// An order's payment: the `payments` row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payment {
    pub order_id: String,
    pub amount: Decimal,
    pub currency: String,
    pub status: Status,
    pub authorization_id: Option<String>,
    /// Why it was declined, or what went wrong, as the provider (or the
    /// worker) said it: for operators; the customer reads a fixed text.
    pub reason: Option<String>,
    /// Calls made to the provider.
    pub attempts: i32,
    /// The payment token as it came (sealed when `token_key_id` is set),
    /// kept only while the authorization is asked for.
    pub token: Option<String>,
    pub token_key_id: Option<String>,
    /// The order was cancelled (this reason) while the authorization was asked for.
    pub cancel_reason: Option<String>,
    /// Why the authorization is (being) voided.
    pub void_reason: Option<String>,
    /// The `StockReserved` that asked; the answer events are caused by it.
    pub cause_event_id: Option<String>,
    pub correlation_id: Option<String>,
    /// The W3C trace context of the message that asked.
    pub traceparent: Option<String>,
}

/// A call to the provider the worker must make.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PaymentCall {
    Authorize {
        order_id: String,
        amount: Decimal,
        currency: String,
        token: String,
        token_key_id: Option<String>,
        traceparent: Option<String>,
        /// The event that asked for the payment (its `StockReserved`).
        cause_event_id: Option<String>,
    },
    Void {
        order_id: String,
        authorization_id: Option<String>,
        traceparent: Option<String>,
        cause_event_id: Option<String>,
    },
}

impl PaymentCall {
    pub fn order_id(&self) -> &str {
        match self {
            PaymentCall::Authorize { order_id, .. } | PaymentCall::Void { order_id, .. } => {
                order_id
            }
        }
    }

    /// The call a payment waiting for one needs (its intent), if any.
    pub fn pending(payment: &Payment) -> Option<PaymentCall> {
        match payment.status {
            Status::Authorizing => Some(PaymentCall::Authorize {
                order_id: payment.order_id.clone(),
                amount: payment.amount,
                currency: payment.currency.clone(),
                token: payment.token.clone().unwrap_or_default(),
                token_key_id: payment.token_key_id.clone(),
                traceparent: payment.traceparent.clone(),
                cause_event_id: payment.cause_event_id.clone(),
            }),
            Status::Voiding => Some(PaymentCall::Void {
                order_id: payment.order_id.clone(),
                authorization_id: payment.authorization_id.clone(),
                traceparent: payment.traceparent.clone(),
                cause_event_id: payment.cause_event_id.clone(),
            }),
            _ => None,
        }
    }
}

/// The provider's final answer to an authorization.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthorizeAnswer {
    Authorized {
        authorization_id: String,
    },
    /// `detail`: what the provider said, kept in the payment row and logged.
    Declined {
        detail: String,
    },
    /// Still "not now" when the attempts ran out, or no call could be made
    /// (the token could not be opened): whether an earlier attempt charged
    /// is unknown. `detail`: what went wrong, kept and logged.
    Unavailable {
        detail: String,
    },
}

/// The provider's final answer to a void.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VoidAnswer {
    Voided,
    NothingToVoid,
}

/// A payment's next state, the events it emits and the call it asks for.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    pub payment: Payment,
    pub events: Vec<Event>,
    pub call: Option<PaymentCall>,
}

impl Step {
    fn to(payment: Payment) -> Step {
        let call = PaymentCall::pending(&payment);
        Step {
            payment,
            events: Vec::new(),
            call,
        }
    }
}

/// The validation every consumer shares ([`validate`]), applied to every
/// event before any payment row is locked: the payment worker refuses
/// exactly what the order and inventory workers refuse.
pub fn check(event: &Event) -> Result<(), String> {
    validate::event(event).map_err(|invalid| invalid.to_string())
}

/// `StockReserved`: ask for the authorization, unless the order already has
/// a payment (answered, asked, or cancelled: then nothing happens). `Err`
/// when the event can never be charged: it fails the shared validation
/// (checked here too, as the charge depends on it: its total is what its
/// lines add up to, in a currency, for a customer, with catalogue SKUs).
pub fn on_stock_reserved(
    current: Option<&Payment>,
    reserved: &StockReserved,
    traceparent: Option<String>,
) -> Result<Option<Step>, String> {
    validate::stock_reserved(reserved).map_err(|invalid| invalid.to_string())?;
    if current.is_some() {
        return Ok(None);
    }
    Ok(Some(Step::to(Payment {
        order_id: reserved.order_id.clone(),
        amount: reserved.total,
        currency: reserved.currency.clone(),
        status: Status::Authorizing,
        authorization_id: None,
        reason: None,
        attempts: 0,
        token: Some(reserved.payment_token.clone()),
        token_key_id: reserved.payment_token_key_id.clone(),
        cancel_reason: None,
        void_reason: None,
        cause_event_id: Some(reserved.event_id.clone()),
        correlation_id: Some(reserved.correlation_id.clone()),
        traceparent,
    })))
}

/// `OrderCancelled`: no charge may stand for the order.
pub fn on_order_cancelled(
    current: Option<&Payment>,
    order_id: &str,
    reason: &str,
    traceparent: Option<String>,
) -> Option<Step> {
    let Some(current) = current else {
        // Before any authorization: never authorize it later.
        return Some(Step::to(Payment {
            order_id: order_id.to_string(),
            amount: Decimal::ZERO,
            currency: String::new(),
            status: Status::Cancelled,
            authorization_id: None,
            reason: None,
            attempts: 0,
            token: None,
            token_key_id: None,
            cancel_reason: Some(reason.to_string()),
            void_reason: None,
            cause_event_id: None,
            correlation_id: None,
            traceparent,
        }));
    };
    match current.status {
        // The call in flight is answered as usual; its answer is then voided.
        Status::Authorizing if current.cancel_reason.is_none() => Some(Step {
            payment: Payment {
                cancel_reason: Some(reason.to_string()),
                ..current.clone()
            },
            events: Vec::new(),
            call: None,
        }),
        Status::Authorized => Some(Step::to(Payment {
            status: Status::Voiding,
            void_reason: Some(reason.to_string()),
            cancel_reason: Some(reason.to_string()),
            traceparent: traceparent.or_else(|| current.traceparent.clone()),
            ..current.clone()
        })),
        _ => None,
    }
}

/// The provider answered the authorization after `attempts` calls. `None`
/// when the payment no longer waits for it (an answer recorded before).
pub fn on_authorize_answer(
    current: &Payment,
    answer: &AuthorizeAnswer,
    attempts: u32,
) -> Option<Step> {
    if current.status != Status::Authorizing {
        return None;
    }
    let answered = Payment {
        token: None,
        token_key_id: None,
        attempts: current
            .attempts
            .saturating_add(i32::try_from(attempts).unwrap_or(i32::MAX)),
        ..current.clone()
    };
    Some(match answer {
        AuthorizeAnswer::Authorized { authorization_id } => {
            if let Err(problem) = validate::fields::authorization_id(authorization_id) {
                // No consumer would accept it in a PaymentAuthorized: the
                // charge is voided by key, as for an answer that never came.
                return Some(Step::to(Payment {
                    status: Status::Voiding,
                    reason: Some(format!("the provider's authorization id {problem}")),
                    void_reason: Some(PAYMENT_UNAVAILABLE.to_string()),
                    ..answered
                }));
            }
            let event = authorized_event(current, authorization_id);
            let next = match &current.cancel_reason {
                // The order was cancelled meanwhile: void what was just granted.
                Some(reason) => Payment {
                    status: Status::Voiding,
                    authorization_id: Some(authorization_id.clone()),
                    void_reason: Some(reason.clone()),
                    ..answered
                },
                None => Payment {
                    status: Status::Authorized,
                    authorization_id: Some(authorization_id.clone()),
                    ..answered
                },
            };
            Step {
                events: vec![event],
                ..Step::to(next)
            }
        }
        AuthorizeAnswer::Declined { detail } => Step {
            events: vec![failed_event(current, CancelReason::PaymentDeclined)],
            ..Step::to(Payment {
                status: Status::Declined,
                reason: Some(detail.clone()),
                ..answered
            })
        },
        // It may have charged without telling us: void by the key first,
        // and fail the payment once nothing can stand.
        AuthorizeAnswer::Unavailable { detail } => Step::to(Payment {
            status: Status::Voiding,
            reason: Some(detail.clone()),
            void_reason: Some(PAYMENT_UNAVAILABLE.to_string()),
            ..answered
        }),
    })
}

/// The provider answered the void. `None` when the payment no longer waits for it.
pub fn on_void_answer(current: &Payment, answer: VoidAnswer) -> Option<Step> {
    if current.status != Status::Voiding {
        return None;
    }
    let unavailable = current.void_reason.as_deref() == Some(PAYMENT_UNAVAILABLE);
    let mut events = Vec::new();
    if answer == VoidAnswer::Voided {
        events.push(voided_event(current));
    }
    if unavailable {
        events.push(failed_event(current, CancelReason::PaymentUnavailable));
    }
    let status = if unavailable {
        Status::Unavailable
    } else {
        Status::Voided
    };
    Some(Step {
        events,
        ..Step::to(Payment {
            status,
            ..current.clone()
        })
    })
}

fn envelope(payment: &Payment, event_type: EventType) -> Envelope {
    let cause = payment
        .cause_event_id
        .clone()
        .unwrap_or_else(|| format!("payment:{}", payment.order_id));
    let correlation = payment
        .correlation_id
        .clone()
        .unwrap_or_else(|| payment.order_id.clone());
    Envelope::caused_by_parts(&cause, &correlation, event_type)
}

fn authorized_event(payment: &Payment, authorization_id: &str) -> Event {
    let env = envelope(payment, EventType::PaymentAuthorized);
    PaymentAuthorized {
        event_id: env.event_id,
        order_id: payment.order_id.clone(),
        occurred_at: env.occurred_at,
        correlation_id: env.correlation_id,
        causation_id: env.causation_id,
        amount: payment.amount,
        currency: payment.currency.clone(),
        authorization_id: authorization_id.to_string(),
    }
    .into()
}

/// The customer reads `reason`'s fixed text; what the provider said stays
/// in the payment row (`Payment::reason`) and the worker's log.
fn failed_event(payment: &Payment, reason: CancelReason) -> Event {
    let env = envelope(payment, EventType::PaymentFailed);
    PaymentFailed {
        event_id: env.event_id,
        order_id: payment.order_id.clone(),
        occurred_at: env.occurred_at,
        correlation_id: env.correlation_id,
        causation_id: env.causation_id,
        amount: payment.amount,
        currency: payment.currency.clone(),
        reason: reason.code().to_string(),
        detail: reason.detail(),
    }
    .into()
}

fn voided_event(payment: &Payment) -> Event {
    let env = envelope(payment, EventType::PaymentVoided);
    PaymentVoided {
        event_id: env.event_id,
        order_id: payment.order_id.clone(),
        occurred_at: env.occurred_at,
        correlation_id: env.correlation_id,
        causation_id: env.causation_id,
        authorization_id: payment.authorization_id.clone(),
        amount: payment.amount,
        currency: payment.currency.clone(),
        reason: payment
            .void_reason
            .clone()
            .unwrap_or_else(|| "order_cancelled".to_string()),
    }
    .into()
}

#[cfg(test)]
mod tests;
