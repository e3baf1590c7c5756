//! Given (catalogue, reservation) / when (event) / then (state, events).

use std::collections::BTreeMap;

use chorus_avro::{Envelope, EventType, OrderLine, OrderPlaced, PricedLine, ReleasedLine};

use super::*;
use crate::testing::{adjusted, placed, price};

fn envelope(event_type: EventType) -> Envelope {
    Envelope {
        event_id: format!("id-of-{event_type}"),
        occurred_at: 1_700_000_000_000,
        correlation_id: "corr-1".into(),
        causation_id: Some("cause-1".into()),
    }
}

/// An in-memory catalogue: sku → (available, reserved, sold).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Catalogue(BTreeMap<String, (i32, i32, i32, Decimal)>);

impl Catalogue {
    fn given(rows: &[(&str, &str, i32)]) -> Catalogue {
        Catalogue(
            rows.iter()
                .map(|(sku, p, available)| (sku.to_string(), (*available, 0, 0, price(p))))
                .collect(),
        )
    }

    /// The rows `reserve` gets: those of the order's SKUs that exist.
    fn levels(&self, placed: &OrderPlaced) -> Vec<StockLevel> {
        self.0
            .iter()
            .filter(|(sku, _)| placed.items.iter().any(|i| &i.sku == *sku))
            .map(|(sku, (available, _, _, p))| StockLevel {
                sku: sku.clone(),
                unit_price: *p,
                available: *available,
            })
            .collect()
    }

    fn apply(&mut self, moves: &[StockMove]) {
        for m in moves {
            let row = self.0.get_mut(&m.sku).expect("moves touch known SKUs only");
            row.0 += m.available;
            row.1 += m.reserved;
            row.2 += m.sold;
            assert!(
                row.0 >= 0 && row.1 >= 0 && row.2 >= 0,
                "negative stock: {row:?}"
            );
        }
    }

    fn counters(&self, sku: &str) -> (i32, i32, i32) {
        let (a, r, s, _) = self.0[sku];
        (a, r, s)
    }
}

fn only_event(t: &Transition) -> &Event {
    assert_eq!(t.events.len(), 1, "{:?}", t.events);
    &t.events[0]
}

// ---- StockAdjusted ----

#[test]
fn an_adjustment_with_non_negative_values_is_accepted() {
    assert_eq!(check(&adjusted("SKU-1", 0, "0").into()), Ok(()));
    assert_eq!(check(&adjusted("SKU-1", 10, "19.99").into()), Ok(()));
}

#[test]
fn negative_available_or_price_or_an_empty_sku_can_never_be_applied() {
    assert!(check(&adjusted("SKU-1", -1, "1").into()).is_err());
    assert!(check(&adjusted("SKU-1", 1, "-0.01").into()).is_err());
    assert!(check(&adjusted(" ", 1, "1").into()).is_err());
}

// ---- OrderPlaced: validation ----

#[test]
fn duplicate_sku_lines_are_merged_in_sku_order() {
    let lines = requested_lines(&placed("o1", &[("B", 1), ("A", 2), ("B", 3)])).unwrap();
    assert_eq!(
        lines,
        vec![
            OrderLine {
                sku: "A".into(),
                quantity: 2
            },
            OrderLine {
                sku: "B".into(),
                quantity: 4
            },
        ]
    );
}

#[test]
fn empty_orders_and_non_positive_quantities_are_invalid() {
    assert!(check(&placed("o1", &[]).into()).is_err());
    assert!(check(&placed("o1", &[("A", 0)]).into()).is_err());
    assert!(check(&placed("o1", &[("A", 1), ("B", -2)]).into()).is_err());
    assert_eq!(
        check(&placed("o1", &[("A", 1), ("A", 1000)]).into()),
        Ok(())
    );
}

#[test]
fn an_order_whose_customer_the_other_workers_refuse_is_invalid() {
    let mut order = placed("o1", &[("A", 1)]);
    order.customer_id = "mallory\u{7}".into();
    assert!(check(&order.into()).is_err());
}

// ---- OrderPlaced: decision ----

#[test]
fn given_enough_stock_when_placed_then_every_line_is_reserved_and_priced() {
    let mut stock = Catalogue::given(&[("A", "19.99", 5), ("B", "2.50", 3)]);
    let order = placed("o1", &[("A", 2), ("B", 3)]);

    let t = reserve(&order, &stock.levels(&order), envelope).unwrap();
    stock.apply(&t.moves);

    assert_eq!(stock.counters("A"), (3, 2, 0));
    assert_eq!(stock.counters("B"), (0, 3, 0));
    assert_eq!(t.reservation.status, ReservationStatus::Reserved);
    assert_eq!(
        t.reservation.lines[0],
        ReservationLine {
            sku: "A".into(),
            quantity: 2,
            unit_price: Some(price("19.99"))
        }
    );
    let Event::StockReserved(e) = only_event(&t) else {
        panic!("{t:?}")
    };
    assert_eq!(e.total, price("47.48"));
    assert_eq!(e.lines.len(), 2);
    assert_eq!(
        e.lines[1],
        PricedLine {
            sku: "B".into(),
            quantity: 3,
            unit_price: price("2.50")
        }
    );
    assert_eq!(
        (e.customer_id.as_str(), e.currency.as_str()),
        ("cust-7", "EUR")
    );
    assert_eq!(e.payment_token, "tok_ok");
    assert_eq!(e.order_id, "o1");
    assert_eq!(e.event_id, "id-of-StockReserved");
    assert_eq!(e.causation_id.as_deref(), Some("cause-1"));
}

#[test]
fn given_duplicate_lines_when_their_sum_exceeds_stock_then_nothing_is_reserved() {
    let stock = Catalogue::given(&[("A", "1", 3)]);
    let order = placed("o1", &[("A", 2), ("A", 2)]);

    let t = reserve(&order, &stock.levels(&order), envelope).unwrap();

    assert!(t.moves.is_empty());
    let Event::StockReservationFailed(e) = only_event(&t) else {
        panic!("{t:?}")
    };
    assert_eq!(
        (e.reason.as_str(), e.skus.clone()),
        ("out_of_stock", vec!["A".to_string()])
    );
    assert_eq!(t.reservation.lines[0].quantity, 4);
}

#[test]
fn given_one_line_short_when_placed_then_no_line_is_reserved_and_only_the_short_skus_are_named() {
    let stock = Catalogue::given(&[("A", "1", 5), ("B", "1", 1), ("C", "1", 0)]);
    let order = placed("o1", &[("A", 1), ("B", 2), ("C", 1)]);

    let t = reserve(&order, &stock.levels(&order), envelope).unwrap();

    assert!(t.moves.is_empty());
    assert_eq!(t.reservation.status, ReservationStatus::Failed);
    assert_eq!(t.reservation.reason.as_deref(), Some("out_of_stock"));
    assert!(t.reservation.lines.iter().all(|l| l.unit_price.is_none()));
    let Event::StockReservationFailed(e) = only_event(&t) else {
        panic!("{t:?}")
    };
    assert_eq!(e.skus, vec!["B".to_string(), "C".to_string()]);
    assert_eq!(e.event_id, "id-of-StockReservationFailed");
}

#[test]
fn given_an_unknown_sku_when_placed_then_unknown_sku_wins_over_out_of_stock() {
    let stock = Catalogue::given(&[("A", "1", 0)]);
    let order = placed("o1", &[("A", 1), ("GHOST", 1), ("NOPE", 1)]);

    let t = reserve(&order, &stock.levels(&order), envelope).unwrap();

    let Event::StockReservationFailed(e) = only_event(&t) else {
        panic!("{t:?}")
    };
    assert_eq!(e.reason, "unknown_sku");
    assert_eq!(e.skus, vec!["GHOST".to_string(), "NOPE".to_string()]);
    assert!(t.moves.is_empty());
}

#[test]
fn given_exactly_the_available_units_when_placed_then_they_are_reserved() {
    let mut stock = Catalogue::given(&[("A", "0.10", 3)]);
    let order = placed("o1", &[("A", 3)]);
    let t = reserve(&order, &stock.levels(&order), envelope).unwrap();
    stock.apply(&t.moves);
    assert_eq!(stock.counters("A"), (0, 3, 0));
    let Event::StockReserved(e) = only_event(&t) else {
        panic!("{t:?}")
    };
    assert_eq!(e.total, price("0.30"));
}

// ---- PaymentFailed / OrderCancelled ----

fn reserved_order(stock: &mut Catalogue, items: &[(&str, i32)]) -> Reservation {
    let order = placed("o1", items);
    let t = reserve(&order, &stock.levels(&order), envelope).unwrap();
    stock.apply(&t.moves);
    t.reservation
}

#[test]
fn given_a_held_reservation_when_payment_fails_then_it_is_released_once() {
    let mut stock = Catalogue::given(&[("A", "5", 4), ("B", "1", 1)]);
    let held = reserved_order(&mut stock, &[("A", 3), ("B", 1)]);

    let t = release("o1", Some(&held), "payment_declined", envelope).unwrap();
    stock.apply(&t.moves);

    assert_eq!(stock.counters("A"), (4, 0, 0));
    assert_eq!(stock.counters("B"), (1, 0, 0));
    assert_eq!(t.reservation.status, ReservationStatus::Released);
    assert_eq!(t.reservation.reason.as_deref(), Some("payment_declined"));
    let Event::StockReleased(e) = only_event(&t) else {
        panic!("{t:?}")
    };
    assert_eq!(e.reason, "payment_declined");
    assert_eq!(e.order_id, "o1");
    assert_eq!(
        e.lines,
        vec![
            ReleasedLine {
                sku: "A".into(),
                quantity: 3
            },
            ReleasedLine {
                sku: "B".into(),
                quantity: 1
            },
        ]
    );

    // The OrderCancelled that follows the PaymentFailed finds nothing held.
    assert_eq!(
        release("o1", Some(&t.reservation), "payment_declined", envelope),
        None
    );
}

#[test]
fn given_a_reservation_that_holds_nothing_when_cancelled_then_nothing_happens() {
    let mut stock = Catalogue::given(&[("A", "5", 1)]);
    let order = placed("o1", &[("A", 2)]);
    let failed = reserve(&order, &stock.levels(&order), envelope)
        .unwrap()
        .reservation;
    assert_eq!(release("o1", Some(&failed), "out_of_stock", envelope), None);

    let held = reserved_order(&mut stock, &[("A", 1)]);
    let sold = sell(Some(&held)).unwrap().reservation;
    assert_eq!(
        release("o1", Some(&sold), "customer_request", envelope),
        None
    );
}

#[test]
fn given_no_reservation_when_cancelled_then_a_tombstone_is_left_and_nothing_is_emitted() {
    let t = release("o9", None, "payment_declined", envelope).unwrap();
    assert!(t.events.is_empty() && t.moves.is_empty());
    assert_eq!(t.reservation.status, ReservationStatus::Released);
    assert!(t.reservation.lines.is_empty());
    // A second cancellation finds the tombstone and does nothing.
    assert_eq!(release("o9", Some(&t.reservation), "x", envelope), None);
}

// ---- OrderConfirmed ----

#[test]
fn given_a_held_reservation_when_confirmed_then_the_units_are_sold_silently() {
    let mut stock = Catalogue::given(&[("A", "5", 4)]);
    let held = reserved_order(&mut stock, &[("A", 3)]);

    let t = sell(Some(&held)).unwrap();
    stock.apply(&t.moves);

    assert_eq!(stock.counters("A"), (1, 0, 3));
    assert!(t.events.is_empty());
    assert_eq!(t.reservation.status, ReservationStatus::Sold);
    // Sold is final: neither a second confirmation nor a cancellation moves stock.
    assert_eq!(sell(Some(&t.reservation)), None);
    assert_eq!(release("o1", Some(&t.reservation), "late", envelope), None);
}

#[test]
fn confirming_an_order_without_a_held_reservation_does_nothing() {
    assert_eq!(sell(None), None);
    for status in [ReservationStatus::Failed, ReservationStatus::Released] {
        let r = Reservation {
            status,
            lines: vec![],
            reason: None,
        };
        assert_eq!(sell(Some(&r)), None);
    }
}

#[test]
fn statuses_round_trip_through_their_names() {
    for status in [
        ReservationStatus::Reserved,
        ReservationStatus::Failed,
        ReservationStatus::Released,
        ReservationStatus::Sold,
    ] {
        assert_eq!(ReservationStatus::parse(status.as_str()), Some(status));
    }
    assert_eq!(ReservationStatus::parse("pending"), None);
}
