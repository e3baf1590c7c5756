//! Given facts, when checked, then the verdict: each invariant on a campaign
//! that kept it and on one that broke it.

use super::*;
use crate::chaos::check::facts::*;
use crate::chaos::poison::PoisonRecord;

const T0: i64 = 1_767_225_600_000;

fn order(id: &str, status: &str, lines: &[(&str, i64)]) -> OrderFact {
    OrderFact {
        order_id: id.into(),
        status: status.into(),
        reason: (status == "CANCELLED").then(|| "payment_declined".to_string()),
        total: Some("10.00".parse().unwrap()),
        created_at: T0 + 1_000,
        updated_at: T0 + 2_000,
        reserved: true,
        lines: lines.iter().map(|(s, q)| (s.to_string(), *q)).collect(),
    }
}

fn accepted(id: &str) -> Accepted {
    Accepted {
        order_id: id.into(),
        published: true,
        created_at: T0 + 500,
    }
}

fn call(id: &str, kind: CallKind, at: i64) -> CallFact {
    CallFact {
        key: id.into(),
        kind,
        at,
    }
}

fn charge(id: &str, voided: bool) -> ChargeFact {
    ChargeFact {
        order_id: id.into(),
        amount: "10.00".parse().unwrap(),
        voided,
    }
}

fn delivery(id: &str, status: &str) -> DeliveryFact {
    DeliveryFact {
        order_id: id.into(),
        final_status: status.into(),
        channel: "log".into(),
        status: "delivered".into(),
    }
}

/// A campaign that kept every invariant: a confirmed and a cancelled order
/// of SKU A (stock 10 set before both), notified once each.
fn kept() -> Facts {
    Facts {
        accepted: vec![accepted("o1"), accepted("o2")],
        orders: vec![
            order("o1", "CONFIRMED", &[("A", 3)]),
            order("o2", "CANCELLED", &[("A", 2)]),
        ],
        stock: vec![StockFact {
            sku: "A".into(),
            available: 7,
            reserved: 0,
            sold: 3,
        }],
        adjustments: [(
            "A".to_string(),
            Adjustment {
                available: 10,
                at: T0,
            },
        )]
        .into(),
        charges: vec![charge("o1", false), charge("o2", true)],
        void_marker: true,
        // o1 authorized; o2 authorized, then voided when it was cancelled.
        calls: vec![
            call("o1", CallKind::Authorize, T0 + 1_100),
            call("o2", CallKind::Authorize, T0 + 1_200),
            call("o2", CallKind::Void, T0 + 1_900),
        ],
        deliveries: vec![delivery("o1", "CONFIRMED"), delivery("o2", "CANCELLED")],
        sent: vec![],
        dead_letters: vec![],
        poison: None,
        designed_from: Some(T0),
    }
}

fn violations(verdict: &Verdict) -> Vec<&str> {
    verdict.violations.iter().map(String::as_str).collect()
}

#[test]
fn a_campaign_that_kept_everything_passes_everything() {
    for verdict in all(&kept()) {
        assert!(verdict.ok, "{}: {:?}", verdict.name, verdict.violations);
    }
}

#[test]
fn an_accepted_order_still_pending_or_missing_breaks_finality() {
    let mut facts = kept();
    facts.orders[1].status = "RESERVED".into();
    facts.accepted.push(accepted("o3"));
    facts.accepted.push(Accepted {
        order_id: "o4".into(),
        published: false,
        created_at: T0,
    });
    let verdict = accepted_orders_final(&facts);
    assert_eq!(
        violations(&verdict),
        [
            "order o2 accepted, still RESERVED",
            "order o3 accepted, unknown to the read model"
        ]
    );
    assert_eq!(verdict.figures["never published"], 1);
}

#[test]
fn stock_must_add_up_to_the_adjustment() {
    let mut facts = kept();
    facts.stock[0].available = 8;
    let verdict = stock_conserved(&facts);
    assert!(!verdict.ok);
    assert!(
        violations(&verdict)[0].starts_with("A: available 8 + reserved 0 + sold 3 ≠ 10"),
        "{verdict:?}"
    );

    let mut facts = kept();
    facts.stock[0].sold = 4;
    facts.stock[0].available = 6;
    assert_eq!(
        violations(&stock_conserved(&facts)),
        ["A: sold 4 but CONFIRMED orders hold 3"]
    );

    let mut facts = kept();
    facts.stock[0].reserved = 2;
    facts.stock[0].available = 5;
    assert_eq!(
        violations(&stock_conserved(&facts)),
        ["A: 2 units still reserved"]
    );
}

#[test]
fn units_sold_before_the_adjustment_count_towards_its_total() {
    let mut facts = kept();
    // An earlier run sold 5 of A, then A was adjusted to 10 again.
    let mut earlier = order("o0", "CONFIRMED", &[("A", 5)]);
    earlier.created_at = T0 - 60_000;
    earlier.updated_at = T0 - 59_000;
    facts.orders.push(earlier);
    facts.stock[0].sold = 8;
    facts.charges.push(charge("o0", false));
    facts
        .calls
        .push(call("o0", CallKind::Authorize, T0 - 59_500));
    facts.deliveries.push(delivery("o0", "CONFIRMED"));
    let verdict = stock_conserved(&facts);
    assert!(verdict.ok, "{verdict:?}");
    assert_eq!(verdict.figures["totals checked"], 1);
}

#[test]
fn an_order_in_flight_across_the_adjustment_leaves_the_total_unchecked() {
    let mut facts = kept();
    facts.orders[0].created_at = T0 - 500;
    facts.stock[0].available = 999;
    let verdict = stock_conserved(&facts);
    assert!(verdict.ok, "{verdict:?}");
    assert_eq!(
        verdict.figures["unchecked: orders in flight at the adjustment"],
        1
    );
    facts.adjustments.clear();
    assert_eq!(
        stock_conserved(&facts).figures["unchecked: no adjustment on record"],
        1
    );
}

#[test]
fn a_charge_standing_for_a_cancelled_order_or_a_confirmed_one_uncharged_is_caught() {
    let mut facts = kept();
    facts.charges[1].voided = false;
    assert_eq!(
        violations(&one_standing_charge(&facts)),
        ["order o2 cancelled (payment_declined), charge standing"]
    );
    let mut facts = kept();
    facts.charges.remove(0);
    assert_eq!(
        violations(&one_standing_charge(&facts)),
        ["order o1 confirmed without a standing charge"]
    );
    let mut facts = kept();
    facts.charges[0].amount = "11.00".parse().unwrap();
    assert_eq!(
        violations(&one_standing_charge(&facts)),
        ["order o1 confirmed for 10.00, charged 11.00"]
    );
    let mut facts = kept();
    facts.charges.push(charge("ghost", false));
    assert_eq!(
        violations(&one_standing_charge(&facts)),
        ["order ghost charged, unknown to the read model"]
    );
}

#[test]
fn the_providers_call_log_shows_what_its_one_row_per_key_cannot() {
    // A confirmed order the provider was never asked to authorize.
    let mut facts = kept();
    facts.calls.remove(0);
    assert_eq!(
        violations(&one_standing_charge(&facts)),
        ["order o1 confirmed, the provider was never asked to authorize it"]
    );
    // A confirmed order asked to void (its charge still standing).
    let mut facts = kept();
    facts.calls.push(call("o1", CallKind::Void, T0 + 3_000));
    assert_eq!(
        violations(&one_standing_charge(&facts)),
        ["order o1 confirmed, the provider was asked to void it 1 times"]
    );
    // An order asked to authorize after its void.
    let mut facts = kept();
    facts
        .calls
        .push(call("o2", CallKind::Authorize, T0 + 60_000));
    assert_eq!(
        violations(&one_standing_charge(&facts)),
        ["order o2: the provider was asked to authorize it after its void"]
    );
    // The same key asked again before any void (a crash lost the answer):
    // one authorization, counted.
    let mut facts = kept();
    facts
        .calls
        .push(call("o1", CallKind::Authorize, T0 + 1_500));
    let verdict = one_standing_charge(&facts);
    assert!(verdict.ok, "{verdict:?}");
    assert_eq!(
        verdict.figures["orders asked to authorize more than once"],
        1
    );
    assert_eq!(verdict.figures["authorize calls"], 3);
    assert_eq!(verdict.figures["void calls"], 1);
}

#[test]
fn an_order_placed_during_restarts_that_timed_out_or_found_payment_unavailable_is_caught() {
    let mut facts = kept();
    for (id, reason) in [
        ("o3", "timeout"),
        ("o4", "payment_unavailable"),
        ("o5", "out_of_stock"),
    ] {
        facts.accepted.push(accepted(id));
        let mut cancelled = order(id, "CANCELLED", &[]);
        cancelled.reason = Some(reason.into());
        facts.orders.push(cancelled);
    }
    // Before the restarts began: the Kafka kill's, not the restarts'.
    let mut early = accepted("o6");
    early.created_at = T0 - 1;
    facts.accepted.push(early);
    let mut timed_out = order("o6", "CANCELLED", &[]);
    timed_out.reason = Some("timeout".into());
    facts.orders.push(timed_out);
    let verdict = designed_fates(&facts).expect("a stretch of restarts named");
    assert_eq!(
        violations(&verdict),
        [
            "order o3 placed during restarts, cancelled timeout",
            "order o4 placed during restarts, cancelled payment_unavailable"
        ]
    );
    assert_eq!(verdict.figures["orders placed during restarts"], 5);
    facts.designed_from = None;
    assert!(designed_fates(&facts).is_none());
}

#[test]
fn notifications_missing_pending_wrong_or_doubled_are_caught() {
    let mut facts = kept();
    facts.deliveries.remove(1);
    facts.deliveries[0].status = "pending".into();
    assert_eq!(
        violations(&one_notification(&facts)),
        [
            "order o1 on log: pending",
            "order o2 CANCELLED never notified on log"
        ]
    );
    let mut facts = kept();
    facts.deliveries.push(delivery("o2", "CONFIRMED"));
    assert_eq!(
        violations(&one_notification(&facts)),
        ["order o2 notified CONFIRMED but is CANCELLED"]
    );
    let mut facts = kept();
    for id in ["e1", "e2"] {
        facts.sent.push(SentFact {
            order_id: "o1".into(),
            final_status: "CONFIRMED".into(),
            channel: "log".into(),
            event_id: id.into(),
        });
    }
    assert_eq!(
        violations(&one_notification(&facts)),
        ["order o1 CONFIRMED on log: 2 distinct NotificationSent"]
    );
}

#[test]
fn only_valid_events_of_real_orders_in_a_dlq_are_violations() {
    let mut facts = kept();
    let dead = |key: &str, valid_event: bool| DeadLetterFact {
        topic: "t.orders.dlq".into(),
        key: Some(key.into()),
        valid_event,
        original: None,
    };
    facts.dead_letters = vec![dead("o1", false), dead("chaos-1", true), dead("o2", true)];
    let verdict = no_real_order_dead_lettered(&facts);
    assert_eq!(violations(&verdict), ["t.orders.dlq: an event of order o2"]);
    assert_eq!(verdict.figures["dead letters"], 3);
}

fn poison(kind: PoisonKind, key: &str, offset: i64, event_type: Option<&str>) -> PoisonRecord {
    PoisonRecord {
        topic: "t.orders".into(),
        partition: 0,
        offset,
        kind,
        key: key.into(),
        event_type: event_type.map(str::to_string),
        detail: "test".into(),
    }
}

#[test]
fn poison_is_dead_lettered_or_rejected_by_a_rule_never_just_gone() {
    let mut facts = kept();
    facts.poison = Some(vec![
        poison(PoisonKind::RandomBytes, "chaos-1", 1, None),
        poison(PoisonKind::HugeSku, "chaos-2", 2, Some("OrderPlaced")),
        poison(
            PoisonKind::NegativeQuantity,
            "CHAOS-SKU",
            3,
            Some("StockAdjusted"),
        ),
        poison(PoisonKind::WrongMagicByte, "chaos-4", 4, None),
        poison(PoisonKind::NulBytes, "chaos-5", 5, Some("OrderPlaced")),
    ]);
    facts.dead_letters.push(DeadLetterFact {
        topic: "t.orders.dlq".into(),
        key: Some("chaos-1".into()),
        valid_event: false,
        original: Some(("t.orders".into(), 0, 1)),
    });
    let mut cancelled = order("chaos-2", "CANCELLED", &[]);
    cancelled.reason = Some("unknown_sku".into());
    let mut timed_out = order("chaos-5", "CANCELLED", &[]);
    timed_out.reason = Some("timeout".into());
    facts.orders.extend([cancelled, timed_out]);
    let verdict = poison_accounted(&facts).expect("poison given");
    assert_eq!(
        violations(&verdict),
        [
            "wrong_magic_byte at t.orders/0:4 (key chaos-4): test",
            "nul_bytes at t.orders/0:5 (key chaos-5): test"
        ]
    );
    assert_eq!(verdict.figures["dead-lettered"], 1);
    assert_eq!(verdict.figures["rejected by a rule"], 2);
    facts.poison = None;
    assert!(poison_accounted(&facts).is_none());
}
