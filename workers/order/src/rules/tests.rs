//! Given (facts so far) / when (event) / then (status, history, events) —
//! in every arrival order the topics allow.

use chrono::TimeZone;

use super::*;
use crate::testing::{
    authorized, payment_failed, placed, price, reservation_failed, stock_reserved,
};

fn envelope(event_type: EventType) -> Envelope {
    Envelope {
        event_id: format!("id-of-{event_type}"),
        occurred_at: 1_700_000_000_000,
        correlation_id: "o1".into(),
        causation_id: Some("cause-1".into()),
    }
}

fn at(second: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 23, 18, 0, second).unwrap()
}

fn fact(event: impl Into<Event>) -> Fact {
    fact_of(&event.into()).unwrap().expect("an order fact").1
}

/// Applies `events` in turn; returns the order and everything it emitted.
fn given(events: Vec<Event>) -> (Order, Vec<Event>) {
    let mut order = Order::new("o1");
    let mut emitted = vec![];
    for (i, event) in events.into_iter().enumerate() {
        if let Some((next, events)) = apply(&order, fact(event), at(i as u32), envelope) {
            order = next;
            emitted.extend(events);
        }
    }
    (order, emitted)
}

fn statuses(order: &Order) -> Vec<&str> {
    order.history.iter().map(|h| h.status.as_str()).collect()
}

fn placed_o1() -> Event {
    placed("o1", &[("A", 2), ("B", 1)]).into()
}
fn reserved_o1() -> Event {
    stock_reserved("o1", &[("A", 2, "19.99"), ("B", 1, "5.00")]).into()
}
fn authorized_o1() -> Event {
    authorized("o1", "44.98").into()
}
fn declined_o1() -> Event {
    payment_failed("o1", "payment_declined").into()
}

// ---- the happy path ----

#[test]
fn placed_then_reserved_then_authorized_confirms_once() {
    let (order, emitted) = given(vec![placed_o1()]);
    assert_eq!(order.status, Some(Status::Pending));
    assert!(emitted.is_empty());

    let (order, emitted) = given(vec![placed_o1(), reserved_o1()]);
    assert_eq!(order.status, Some(Status::Reserved));
    assert!(emitted.is_empty());

    let (order, emitted) = given(vec![placed_o1(), reserved_o1(), authorized_o1()]);
    assert_eq!(order.status, Some(Status::Confirmed));
    assert_eq!(statuses(&order), ["PENDING", "RESERVED", "CONFIRMED"]);
    assert_eq!(order.history[2].at, at(2));
    let [Event::OrderConfirmed(e)] = emitted.as_slice() else {
        panic!("{emitted:?}")
    };
    assert_eq!(e.customer_id, "cust-7");
    assert_eq!(e.total, price("44.98"));
    assert_eq!(e.currency, "EUR");
    assert_eq!(e.order_id, "o1");
    assert_eq!(e.event_id, "id-of-OrderConfirmed");
}

#[test]
fn every_arrival_order_of_the_happy_path_confirms_once_with_the_same_history() {
    let orders: [[fn() -> Event; 3]; 6] = [
        [placed_o1, reserved_o1, authorized_o1],
        [placed_o1, authorized_o1, reserved_o1],
        [reserved_o1, placed_o1, authorized_o1],
        [reserved_o1, authorized_o1, placed_o1],
        [authorized_o1, placed_o1, reserved_o1],
        [authorized_o1, reserved_o1, placed_o1],
    ];
    for arrival in orders {
        let (order, emitted) = given(arrival.iter().map(|e| e()).collect());
        assert_eq!(order.status, Some(Status::Confirmed));
        assert_eq!(names(&emitted), ["OrderConfirmed"]);
        assert_eq!(statuses(&order), ["PENDING", "RESERVED", "CONFIRMED"]);
    }
}

#[test]
fn nothing_is_decided_before_the_order_is_placed() {
    let (order, emitted) = given(vec![authorized_o1(), reserved_o1()]);
    assert_eq!(order.status, None);
    assert!(order.history.is_empty() && emitted.is_empty());
    assert!(order.facts.reserved.is_some() && order.facts.payment_authorized.is_some());

    let (order, emitted) = given(vec![authorized_o1(), reserved_o1(), placed_o1()]);
    assert_eq!(statuses(&order), ["PENDING", "RESERVED", "CONFIRMED"]);
    assert_eq!(names(&emitted), ["OrderConfirmed"]);
}

// ---- compensations ----

#[test]
fn a_failed_reservation_cancels_with_its_fixed_text_not_the_skus() {
    let (order, emitted) = given(vec![
        placed_o1(),
        reservation_failed("o1", "out_of_stock", &["A", "B"]).into(),
    ]);
    let cancelled = Status::Cancelled {
        reason: "out_of_stock".into(),
        detail: CancelReason::OutOfStock.detail(),
    };
    assert_eq!(order.status, Some(cancelled));
    assert_eq!(statuses(&order), ["PENDING", "CANCELLED"]);
    let [Event::OrderCancelled(e)] = emitted.as_slice() else {
        panic!("{emitted:?}")
    };
    assert_eq!(
        (e.reason.as_str(), e.detail.as_deref()),
        ("out_of_stock", Some(CancelReason::OutOfStock.text()))
    );
    assert_eq!(e.customer_id, "cust-7");
    assert_eq!(e.event_id, "id-of-OrderCancelled");
}

#[test]
fn an_unknown_sku_arriving_before_the_order_cancels_when_it_is_placed() {
    let (order, emitted) = given(vec![
        reservation_failed("o1", "unknown_sku", &["GHOST"]).into(),
        placed_o1(),
    ]);
    assert_eq!(statuses(&order), ["PENDING", "CANCELLED"]);
    let [Event::OrderCancelled(e)] = emitted.as_slice() else {
        panic!("{emitted:?}")
    };
    assert_eq!(
        (e.reason.as_str(), e.detail.as_deref()),
        ("unknown_sku", Some(CancelReason::UnknownSku.text()))
    );
}

#[test]
fn a_failed_payment_cancels_with_its_reason() {
    let (order, emitted) = given(vec![placed_o1(), reserved_o1(), declined_o1()]);
    assert_eq!(statuses(&order), ["PENDING", "RESERVED", "CANCELLED"]);
    let [Event::OrderCancelled(e)] = emitted.as_slice() else {
        panic!("{emitted:?}")
    };
    assert_eq!(e.reason, "payment_declined");
    // Not the provider's "card declined": the customer reads the fixed text.
    assert_eq!(
        e.detail.as_deref(),
        Some(CancelReason::PaymentDeclined.text())
    );

    let unavailable: Event = payment_failed("o1", "payment_unavailable").into();
    let (order, _) = given(vec![unavailable, placed_o1(), reserved_o1()]);
    assert!(
        matches!(order.status, Some(Status::Cancelled { ref reason, .. }) if reason == "payment_unavailable")
    );
    assert_eq!(
        statuses(&order),
        ["PENDING", "CANCELLED"],
        "final before reserved arrived"
    );
}

#[test]
fn every_arrival_order_of_a_declined_payment_cancels_exactly_once() {
    let orders: [[fn() -> Event; 3]; 6] = [
        [placed_o1, reserved_o1, declined_o1],
        [placed_o1, declined_o1, reserved_o1],
        [reserved_o1, placed_o1, declined_o1],
        [reserved_o1, declined_o1, placed_o1],
        [declined_o1, placed_o1, reserved_o1],
        [declined_o1, reserved_o1, placed_o1],
    ];
    for arrival in orders {
        let (order, emitted) = given(arrival.iter().map(|e| e()).collect());
        assert_eq!(order.status.as_ref().map(Status::name), Some("CANCELLED"));
        assert_eq!(names(&emitted), ["OrderCancelled"]);
    }
}

// ---- final is final; repeats change nothing ----

#[test]
fn a_final_status_is_never_left_and_never_announced_twice() {
    let (confirmed, _) = given(vec![placed_o1(), reserved_o1(), authorized_o1()]);
    let (after, emitted) = apply(&confirmed, fact(declined_o1()), at(9), envelope).unwrap();
    assert_eq!(after.status, Some(Status::Confirmed));
    assert_eq!(after.history, confirmed.history);
    assert!(emitted.is_empty());
    assert!(
        after.facts.payment_failed.is_some(),
        "the late fact is kept"
    );

    let (cancelled, _) = given(vec![placed_o1(), declined_o1()]);
    for late in [reserved_o1(), authorized_o1()] {
        let (after, emitted) = apply(&cancelled, fact(late), at(9), envelope).unwrap();
        assert_eq!(after.status, cancelled.status);
        assert!(emitted.is_empty());
    }
}

#[test]
fn a_fact_stated_again_changes_nothing_and_the_first_statement_wins() {
    let (order, _) = given(vec![placed_o1(), reserved_o1()]);
    for again in [placed("o1", &[("Z", 9)]).into(), reserved_o1()] {
        assert_eq!(apply(&order, fact(again), at(9), envelope), None);
    }
    assert_eq!(order.facts.placed.unwrap().items[0].sku, "A");
}

// ---- what the order listens to ----

#[test]
fn invalid_orders_can_never_be_applied() {
    assert!(fact_of(&placed("o1", &[]).into()).is_err());
    assert!(fact_of(&placed("o1", &[("A", 1), ("B", 0)]).into()).is_err());
    assert!(fact_of(&placed("o1", &[("A", -1)]).into()).is_err());
}

#[test]
fn reservations_no_order_can_have_are_never_applied() {
    let huge_sku = "A".repeat(10_000);
    assert!(fact_of(&stock_reserved("o1", &[(&huge_sku, 1, "1.00")]).into()).is_err());
    let mut nul_customer = stock_reserved("o1", &[("A", 1, "1.00")]);
    nul_customer.customer_id = "c\0".into();
    assert!(fact_of(&nul_customer.into()).is_err());
    assert!(fact_of(&stock_reserved("o1", &[("A", 1, "1.00")]).into()).is_ok());
}

#[test]
fn the_orders_own_output_and_informational_events_are_ignored() {
    let (_, emitted) = given(vec![placed_o1(), declined_o1()]);
    let own = emitted[0].clone();
    assert_eq!(fact_of(&own), Ok(None));
    let (_, emitted) = given(vec![placed_o1(), reserved_o1(), authorized_o1()]);
    assert_eq!(fact_of(&emitted[0]), Ok(None));
    let released = chorus_avro::StockReleased {
        event_id: "r".into(),
        order_id: "o1".into(),
        occurred_at: 0,
        correlation_id: "o1".into(),
        causation_id: None,
        lines: vec![],
        reason: "payment_declined".into(),
    };
    assert_eq!(fact_of(&released.into()), Ok(None));
}

#[test]
fn history_entries_serialize_as_the_gateway_reads_them() {
    let entry = HistoryEntry {
        status: "PENDING".into(),
        at: at(0) + chrono::Duration::milliseconds(123),
    };
    let json = serde_json::to_string(&entry).unwrap();
    assert_eq!(
        json,
        r#"{"status":"PENDING","at":"2026-11-23T18:00:00.123Z"}"#
    );
    assert_eq!(serde_json::from_str::<HistoryEntry>(&json).unwrap(), entry);
}

fn names(events: &[Event]) -> Vec<&'static str> {
    events.iter().map(|e| e.event_type().name()).collect()
}

// ---- the order's own ends: cancellation and deadline ----

fn cancellation_requested(by: &str) -> Fact {
    Fact::CancellationRequested(CancellationRequested {
        requested_by: by.into(),
    })
}

/// Applies `facts` after `events`, in turn.
fn then_facts(order: Order, facts: Vec<Fact>) -> (Order, Vec<Event>) {
    let mut order = order;
    let mut emitted = vec![];
    for (i, fact) in facts.into_iter().enumerate() {
        if let Some((next, events)) = apply(&order, fact, at(10 + i as u32), envelope) {
            order = next;
            emitted.extend(events);
        }
    }
    (order, emitted)
}

#[test]
fn a_cancellation_before_payment_cancels_as_customer_cancelled_once() {
    let (order, _) = given(vec![placed_o1(), reserved_o1()]);
    let (order, emitted) = then_facts(order, vec![cancellation_requested("cust-7")]);
    assert_eq!(
        order.status,
        Some(Status::Cancelled {
            reason: CUSTOMER_CANCELLED.into(),
            // Not who asked (an admin's subject stays out of it).
            detail: CancelReason::CustomerCancelled.detail()
        })
    );
    assert_eq!(order.cancellation, Some(Cancellation::Accepted));
    let [Event::OrderCancelled(e)] = emitted.as_slice() else {
        panic!("{emitted:?}")
    };
    assert_eq!(e.reason, CUSTOMER_CANCELLED);
    assert_eq!(statuses(&order), ["PENDING", "RESERVED", "CANCELLED"]);
    // Asking again is harmless; the payment answering late changes nothing.
    let (order, emitted) = then_facts(
        order,
        vec![cancellation_requested("cust-7"), fact(authorized_o1())],
    );
    assert!(emitted.is_empty());
    assert_eq!(order.status.as_ref().map(Status::name), Some("CANCELLED"));
}

#[test]
fn a_cancellation_after_confirmation_is_rejected_and_the_order_stays_confirmed() {
    let (order, _) = given(vec![placed_o1(), reserved_o1(), authorized_o1()]);
    let (order, emitted) = then_facts(order, vec![cancellation_requested("cust-7")]);
    assert!(emitted.is_empty());
    assert_eq!(order.status, Some(Status::Confirmed));
    assert_eq!(order.cancellation, Some(Cancellation::Rejected));
    assert_eq!(statuses(&order), ["PENDING", "RESERVED", "CONFIRMED"]);
}

#[test]
fn a_cancellation_of_a_cancelled_order_changes_nothing() {
    let (order, _) = given(vec![placed_o1(), declined_o1()]);
    let (next, emitted) = then_facts(order.clone(), vec![cancellation_requested("cust-7")]);
    assert!(emitted.is_empty());
    assert_eq!(next.status, order.status);
    assert_eq!(next.cancellation, None);
}

#[test]
fn the_deadline_cancels_an_order_not_final_as_timeout_and_never_a_final_one() {
    let (order, _) = given(vec![placed_o1(), reserved_o1()]);
    let (timed_out, emitted) = then_facts(order, vec![Fact::TimedOut]);
    let [Event::OrderCancelled(e)] = emitted.as_slice() else {
        panic!("{emitted:?}")
    };
    assert_eq!(e.reason, TIMEOUT);
    assert_eq!(
        timed_out.status.as_ref().map(Status::name),
        Some("CANCELLED")
    );
    // The authorization answering after the deadline does not confirm it.
    let (after, emitted) = then_facts(timed_out, vec![fact(authorized_o1())]);
    assert!(emitted.is_empty());
    assert_eq!(after.status.as_ref().map(Status::name), Some("CANCELLED"));

    let (confirmed, _) = given(vec![placed_o1(), reserved_o1(), authorized_o1()]);
    let (still, emitted) = then_facts(confirmed, vec![Fact::TimedOut]);
    assert!(emitted.is_empty());
    assert_eq!(still.status, Some(Status::Confirmed));
}
