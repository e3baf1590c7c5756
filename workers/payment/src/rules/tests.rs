//! Given (the payment so far) / when (an event or an answer) / then (its
//! state, its events, the call it asks for) — compensation paths included.

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
            sku: "SKU-1".into(),
            quantity: 1,
            unit_price: total.parse().unwrap(),
        }],
        total: total.parse().unwrap(),
        currency: "EUR".into(),
        payment_token: "sealed-token".into(),
        payment_token_key_id: Some("k1".into()),
    }
}

fn asked() -> Payment {
    on_stock_reserved(None, &stock_reserved("19.99"), Some("tp".into()))
        .unwrap()
        .unwrap()
        .payment
}

fn names(events: &[Event]) -> Vec<&'static str> {
    events.iter().map(|e| e.event_type().name()).collect()
}

#[test]
fn given_a_reservation_then_the_authorization_is_asked_for_with_the_sealed_token() {
    let step = on_stock_reserved(None, &stock_reserved("19.99"), None)
        .unwrap()
        .unwrap();
    assert_eq!(step.payment.status, Status::Authorizing);
    assert!(step.events.is_empty());
    let Some(PaymentCall::Authorize {
        order_id,
        amount,
        token,
        token_key_id,
        ..
    }) = step.call
    else {
        panic!("{:?}", step.call)
    };
    assert_eq!(order_id, "o-1");
    assert_eq!(amount.to_string(), "19.99");
    assert_eq!(
        (token.as_str(), token_key_id.as_deref()),
        ("sealed-token", Some("k1"))
    );
}

#[test]
fn given_an_intent_taken_up_after_a_restart_then_its_call_names_the_event_that_asked() {
    let reserved = stock_reserved("19.99");
    let payment = asked();
    let Some(PaymentCall::Authorize { cause_event_id, .. }) = PaymentCall::pending(&payment) else {
        panic!("an authorizing payment asks for an authorization")
    };
    assert_eq!(cause_event_id.as_deref(), Some(reserved.event_id.as_str()));
}

#[test]
fn given_any_payment_then_another_reservation_asks_nothing() {
    for status in Status::ALL {
        let current = Payment { status, ..asked() };
        assert_eq!(
            on_stock_reserved(Some(&current), &stock_reserved("1.00"), None),
            Ok(None),
            "{status:?}"
        );
    }
}

#[test]
fn given_a_negative_total_then_it_can_never_be_charged() {
    assert!(on_stock_reserved(None, &stock_reserved("-1.00"), None).is_err());
}

#[test]
fn given_a_sku_or_customer_no_order_can_have_then_it_is_never_charged() {
    let mut huge_sku = stock_reserved("1.00");
    huge_sku.lines[0].sku = "A".repeat(10_000);
    let mut nul_customer = stock_reserved("1.00");
    nul_customer.customer_id = "c\0-1".into();
    for (field, reserved) in [("lines[0].sku", huge_sku), ("customer_id", nul_customer)] {
        let refused = on_stock_reserved(None, &reserved, None).unwrap_err();
        assert!(refused.contains(field), "{field}: {refused}");
        assert_eq!(check(&reserved.into()), Err(refused));
    }
}

#[test]
fn given_any_payment_then_a_reservation_no_order_can_have_is_still_refused() {
    let mut wrong_total = stock_reserved("1.00");
    wrong_total.total = "2.00".parse().unwrap();
    assert!(on_stock_reserved(Some(&asked()), &wrong_total, None).is_err());
}

#[test]
fn when_authorized_then_payment_authorized_for_the_total_and_the_token_is_dropped() {
    let answer = AuthorizeAnswer::Authorized {
        authorization_id: "auth-1".into(),
    };
    let step = on_authorize_answer(&asked(), &answer, 2).unwrap();
    assert_eq!(step.payment.status, Status::Authorized);
    assert_eq!(step.payment.token, None);
    assert_eq!(step.payment.attempts, 2);
    assert_eq!(step.call, None);
    let [Event::PaymentAuthorized(e)] = step.events.as_slice() else {
        panic!("{:?}", step.events)
    };
    assert_eq!(
        (e.amount.to_string().as_str(), e.authorization_id.as_str()),
        ("19.99", "auth-1")
    );
    assert_eq!(e.causation_id.as_deref(), Some("e-1"));
    // The same answer again (a call made twice) changes nothing.
    assert_eq!(on_authorize_answer(&step.payment, &answer, 1), None);
}

#[test]
fn when_authorized_with_an_id_no_consumer_accepts_then_it_is_voided_by_key_and_never_announced() {
    for id in [String::new(), "auth\0".to_string(), "a".repeat(257)] {
        let answer = AuthorizeAnswer::Authorized {
            authorization_id: id.clone(),
        };
        let step = on_authorize_answer(&asked(), &answer, 1).unwrap();
        assert_eq!(step.payment.status, Status::Voiding, "{id:?}");
        assert!(step.events.is_empty(), "{:?}", step.events);
        assert_eq!(
            step.call,
            Some(PaymentCall::Void {
                order_id: "o-1".into(),
                authorization_id: None,
                traceparent: Some("tp".into()),
                cause_event_id: step.payment.cause_event_id.clone(),
            })
        );
        let done = on_void_answer(&step.payment, VoidAnswer::Voided).unwrap();
        assert_eq!(done.payment.status, Status::Unavailable);
        for event in &done.events {
            assert_eq!(chorus_avro::validate::event(event), Ok(()), "{event:?}");
        }
    }
}

#[test]
fn whatever_the_provider_answered_the_failure_carries_only_the_fixed_text() {
    let raw = format!("declined by db-7.internal:5432\n{}", "x".repeat(10_000));
    let step = on_authorize_answer(
        &asked(),
        &AuthorizeAnswer::Declined {
            detail: raw.clone(),
        },
        1,
    )
    .unwrap();
    assert_eq!(step.payment.status, Status::Declined);
    // What the provider said stays with the payment, for operators.
    assert_eq!(step.payment.reason.as_deref(), Some(raw.as_str()));
    let [Event::PaymentFailed(e)] = step.events.as_slice() else {
        panic!("{:?}", step.events)
    };
    assert_eq!(chorus_avro::validate::payment_failed(e), Ok(()));
    assert_eq!(e.reason, PAYMENT_DECLINED);
    assert_eq!(
        e.detail.as_deref(),
        Some(CancelReason::PaymentDeclined.text())
    );
}

#[test]
fn when_the_answer_never_arrived_then_it_is_voided_by_key_before_failing() {
    let step = on_authorize_answer(
        &asked(),
        &AuthorizeAnswer::Unavailable {
            detail: "timed out".into(),
        },
        4,
    )
    .unwrap();
    assert_eq!(step.payment.status, Status::Voiding);
    assert!(step.events.is_empty(), "not failed before the void");
    assert_eq!(
        step.call,
        Some(PaymentCall::Void {
            order_id: "o-1".into(),
            authorization_id: None,
            traceparent: Some("tp".into()),
            cause_event_id: step.payment.cause_event_id.clone(),
        })
    );
    // The provider had charged after all: voided, then failed as unavailable.
    let done = on_void_answer(&step.payment, VoidAnswer::Voided).unwrap();
    assert_eq!(done.payment.status, Status::Unavailable);
    assert_eq!(names(&done.events), ["PaymentVoided", "PaymentFailed"]);
    let Event::PaymentFailed(failed) = &done.events[1] else {
        unreachable!()
    };
    assert_eq!(failed.reason, PAYMENT_UNAVAILABLE);
    assert_eq!(
        failed.detail.as_deref(),
        Some(CancelReason::PaymentUnavailable.text()),
        "not the provider's `timed out`"
    );
    // It had not: only the failure.
    let done = on_void_answer(&step.payment, VoidAnswer::NothingToVoid).unwrap();
    assert_eq!(names(&done.events), ["PaymentFailed"]);
}

#[test]
fn given_nothing_when_cancelled_then_a_late_reservation_is_never_charged() {
    let step = on_order_cancelled(None, "o-1", "timeout", None).unwrap();
    assert_eq!(step.payment.status, Status::Cancelled);
    assert_eq!(step.call, None);
    assert_eq!(
        on_stock_reserved(Some(&step.payment), &stock_reserved("5.00"), None),
        Ok(None)
    );
}

#[test]
fn given_an_authorization_when_cancelled_then_it_is_voided() {
    let authorized = on_authorize_answer(
        &asked(),
        &AuthorizeAnswer::Authorized {
            authorization_id: "auth-1".into(),
        },
        1,
    )
    .unwrap()
    .payment;
    let step = on_order_cancelled(Some(&authorized), "o-1", "customer_cancelled", None).unwrap();
    assert_eq!(step.payment.status, Status::Voiding);
    assert_eq!(
        step.call,
        Some(PaymentCall::Void {
            order_id: "o-1".into(),
            authorization_id: Some("auth-1".into()),
            traceparent: Some("tp".into()),
            cause_event_id: step.payment.cause_event_id.clone(),
        })
    );
    let done = on_void_answer(&step.payment, VoidAnswer::Voided).unwrap();
    assert_eq!(done.payment.status, Status::Voided);
    let [Event::PaymentVoided(voided)] = done.events.as_slice() else {
        panic!("{:?}", done.events)
    };
    assert_eq!(voided.authorization_id.as_deref(), Some("auth-1"));
    assert_eq!(voided.reason, "customer_cancelled");
    // Cancelled again: nothing more.
    assert_eq!(
        on_order_cancelled(Some(&done.payment), "o-1", "timeout", None),
        None
    );
}

#[test]
fn given_an_authorization_in_flight_when_cancelled_then_its_answer_is_voided_at_once() {
    let marked = on_order_cancelled(Some(&asked()), "o-1", "timeout", None)
        .unwrap()
        .payment;
    assert_eq!(marked.status, Status::Authorizing);
    assert_eq!(marked.cancel_reason.as_deref(), Some("timeout"));
    let step = on_authorize_answer(
        &marked,
        &AuthorizeAnswer::Authorized {
            authorization_id: "auth-9".into(),
        },
        1,
    )
    .unwrap();
    assert_eq!(step.payment.status, Status::Voiding);
    assert_eq!(names(&step.events), ["PaymentAuthorized"]);
    assert!(matches!(step.call, Some(PaymentCall::Void { .. })));
    // A decline needs no void.
    let declined = on_authorize_answer(
        &marked,
        &AuthorizeAnswer::Declined {
            detail: "no".into(),
        },
        1,
    )
    .unwrap();
    assert_eq!(
        (declined.payment.status, declined.call),
        (Status::Declined, None)
    );
}

#[test]
fn the_same_payment_always_gets_the_same_event_ids() {
    let answer = AuthorizeAnswer::Declined { detail: "x".into() };
    let first = on_authorize_answer(&asked(), &answer, 1).unwrap();
    let again = on_authorize_answer(&asked(), &answer, 1).unwrap();
    assert_eq!(first.events[0].event_id(), again.events[0].event_id());
}
