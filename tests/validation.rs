//! Every worker accepts and refuses the same events. The shared validation's
//! refused examples (each a valid event with one field broken) and the valid
//! example of each type run through what each worker applies to an event
//! before it touches any state, for every event type the worker's handler
//! says it handles.

use chorus_avro::validate::refused_examples;
use chorus_avro::{Event, EventType};
use chorus_runtime::{Env, Handler};

/// One worker: the event types its handler takes, and its verdict on an
/// event's content (`Err` with the reason it is dead-lettered with).
struct Worker {
    name: &'static str,
    handles: Box<dyn Fn(EventType) -> bool>,
    check: fn(&Event) -> Result<(), String>,
}

fn order(event: &Event) -> Result<(), String> {
    chorus_order::rules::fact_of(event)
        .map(|_| ())
        .map_err(|invalid| invalid.0)
}

fn inventory(event: &Event) -> Result<(), String> {
    chorus_inventory::rules::check(event).map_err(|invalid| invalid.0)
}

/// The handler's check, then the rule that decides a charge.
fn payment(event: &Event) -> Result<(), String> {
    chorus_payment::rules::check(event)?;
    match event {
        Event::StockReserved(reserved) => {
            chorus_payment::rules::on_stock_reserved(None, reserved, None).map(|_| ())
        }
        _ => Ok(()),
    }
}

fn notification(event: &Event) -> Result<(), String> {
    chorus_notification::rules::check(event)
}

fn workers() -> Vec<Worker> {
    let order_handler = chorus_order::OrderHandler::default();
    let inventory_handler = chorus_inventory::InventoryHandler::default();
    // Never connected: only asked which event types it handles.
    let pool = sqlx::PgPool::connect_lazy("postgres://nobody@127.0.0.1:1/none").unwrap();
    let payment_handler = chorus_payment::PaymentHandler::new(
        chorus_payment::SandboxProvider::new(pool),
        chorus_payment::RetryPolicy::default(),
    );
    let config = chorus_notification::NotificationConfig::from_env(&Env::from_pairs(&[])).unwrap();
    let notification_handler =
        chorus_notification::NotificationHandler::from_config(&config).unwrap();
    vec![
        Worker {
            name: "order",
            handles: Box::new(move |t| order_handler.handles(t)),
            check: order,
        },
        Worker {
            name: "inventory",
            handles: Box::new(move |t| inventory_handler.handles(t)),
            check: inventory,
        },
        Worker {
            name: "payment",
            handles: Box::new(move |t| payment_handler.handles(t)),
            check: payment,
        },
        Worker {
            name: "notification",
            handles: Box::new(move |t| notification_handler.handles(t)),
            check: notification,
        },
    ]
}

/// The workers that handle `event_type`.
fn consumers(workers: &[Worker], event_type: EventType) -> Vec<&Worker> {
    workers.iter().filter(|w| (w.handles)(event_type)).collect()
}

#[tokio::test]
async fn every_worker_refuses_every_refused_example_it_handles_with_the_same_reason() {
    let workers = workers();
    let mut refusals = 0;
    for refused in refused_examples() {
        let event_type = refused.event.event_type();
        let reasons: Vec<(&str, String)> = consumers(&workers, event_type)
            .iter()
            .map(|w| {
                let reason = (w.check)(&refused.event).expect_err(&format!(
                    "the {} worker accepts a {event_type} with a bad {}",
                    w.name, refused.field
                ));
                (w.name, reason)
            })
            .collect();
        for (name, reason) in &reasons {
            assert!(reason.contains(refused.field), "{name}: {reason}");
            assert_eq!(reason, &reasons[0].1, "{name} and {}", reasons[0].0);
        }
        refusals += reasons.len();
    }
    assert!(refusals > 50, "only {refusals} refusals were tried");
}

#[tokio::test]
async fn every_worker_accepts_the_valid_example_of_every_type_it_handles() {
    let workers = workers();
    for &event_type in EventType::ALL {
        let example = event_type.example("order-valid");
        for worker in consumers(&workers, event_type) {
            assert_eq!(
                (worker.check)(&example),
                Ok(()),
                "{} {event_type}",
                worker.name
            );
        }
    }
}

/// The case: an order whose customer id the order and payment
/// workers refuse must be refused by the inventory too, or its stock stays
/// reserved for an order that never gets a status.
#[tokio::test]
async fn an_order_and_a_reservation_no_order_can_have_are_refused_by_each_of_their_consumers() {
    let workers = workers();
    let Event::OrderPlaced(mut placed) = EventType::OrderPlaced.example("o-ctl") else {
        unreachable!()
    };
    placed.customer_id = "mallory\u{7}".into();
    let placed = Event::from(placed);
    let names: Vec<&str> = consumers(&workers, EventType::OrderPlaced)
        .iter()
        .map(|w| w.name)
        .collect();
    assert_eq!(names, ["order", "inventory"]);
    for worker in consumers(&workers, EventType::OrderPlaced) {
        assert!((worker.check)(&placed).is_err(), "{}", worker.name);
    }

    let Event::StockReserved(mut reserved) = EventType::StockReserved.example("o-sku") else {
        unreachable!()
    };
    reserved.lines[0].sku = "not a sku".into();
    let reserved = Event::from(reserved);
    let names: Vec<&str> = consumers(&workers, EventType::StockReserved)
        .iter()
        .map(|w| w.name)
        .collect();
    assert_eq!(names, ["order", "payment"]);
    for worker in consumers(&workers, EventType::StockReserved) {
        assert!((worker.check)(&reserved).is_err(), "{}", worker.name);
    }
}
