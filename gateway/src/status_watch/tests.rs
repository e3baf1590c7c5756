//! The watch without a database: reads are begun and finished by hand.

use super::*;

fn row(order_id: &str, status: &str, updated_at: DateTime<Utc>) -> OrderStatusRow {
    OrderStatusRow::for_test(order_id, "alice", status, updated_at)
}

fn at(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(1_700_000_000_000 + ms).unwrap()
}

#[test]
fn a_new_subscriptions_first_read_returns_the_row_whatever_it_is() {
    let hub = Arc::new(StatusWatch::default());
    let mut sub = hub.subscribe("o1", None);
    assert!(sub.fresh().is_none());
    let read = hub.begin_read().unwrap();
    assert_eq!(read.query(), (vec!["o1"], vec![None]));
    hub.finish_read(&read, vec![row("o1", "PENDING", at(1))]);
    let fresh = sub.fresh().unwrap().unwrap();
    assert_eq!(fresh.status, "PENDING");
    assert_eq!(sub.confirmed_row().unwrap().status, "PENDING");
    // Later reads ask for changes since that row only.
    let read = hub.begin_read().unwrap();
    assert_eq!(read.query().1, vec![Some(at(1))]);
}

#[test]
fn a_full_read_without_a_row_says_the_read_model_lacks_the_order() {
    let hub = Arc::new(StatusWatch::default());
    let mut sub = hub.subscribe("o1", None);
    let read = hub.begin_read().unwrap();
    hub.finish_read(&read, vec![]);
    assert!(matches!(sub.fresh(), Some(None)));
    assert!(sub.confirmed_row().is_none());
    // Until a row appears, every read asks for it whatever it is.
    let read = hub.begin_read().unwrap();
    assert_eq!(read.query().1, vec![None]);
}

#[test]
fn a_starting_point_is_never_answered_only_its_changes_are() {
    let hub = Arc::new(StatusWatch::default());
    let known = Arc::new(row("o1", "RESERVED", at(5)));
    let mut sub = hub.subscribe(
        "o1",
        Some(Since {
            updated_at: at(5),
            row: Some(known.clone()),
        }),
    );
    let read = hub.begin_read().unwrap();
    assert_eq!(read.query().1, vec![Some(at(5))]);
    // Not before a read confirmed it, even at the deadline.
    assert!(sub.confirmed_row().is_none());
    // Unchanged: nothing to answer, but it is now confirmed current.
    hub.finish_read(&read, vec![]);
    assert!(sub.fresh().is_none());
    assert_eq!(sub.confirmed_row().unwrap().updated_at, at(5));
    // A change is.
    let read = hub.begin_read().unwrap();
    hub.finish_read(&read, vec![row("o1", "CONFIRMED", at(9))]);
    assert_eq!(sub.fresh().unwrap().unwrap().status, "CONFIRMED");
}

#[test]
fn a_starting_point_without_its_row_is_never_an_answer_at_the_deadline() {
    let hub = Arc::new(StatusWatch::default());
    let sub = hub.subscribe(
        "o1",
        Some(Since {
            updated_at: at(5),
            row: None,
        }),
    );
    let read = hub.begin_read().unwrap();
    hub.finish_read(&read, vec![]);
    assert!(sub.confirmed_row().is_none());
}

#[test]
fn a_read_begun_before_a_subscription_never_answers_it() {
    let hub = Arc::new(StatusWatch::default());
    let mut first = hub.subscribe("o1", None);
    let early = hub.begin_read().unwrap();
    let mut second = hub.subscribe(
        "o1",
        Some(Since {
            updated_at: at(1),
            row: None,
        }),
    );
    hub.finish_read(&early, vec![row("o1", "RESERVED", at(3))]);
    assert_eq!(first.fresh().unwrap().unwrap().status, "RESERVED");
    assert!(second.fresh().is_none());
    assert!(second.confirmed_row().is_none());
    // The next read returns the current row for the second subscriber
    // (its starting point is ignored: the entry was already watched).
    let read = hub.begin_read().unwrap();
    assert_eq!(read.query().1, vec![None]);
    hub.finish_read(&read, vec![row("o1", "RESERVED", at(3))]);
    assert_eq!(second.fresh().unwrap().unwrap().status, "RESERVED");
}

#[test]
fn an_answer_for_a_dropped_watch_does_not_reach_a_new_one() {
    let hub = Arc::new(StatusWatch::default());
    let old = hub.subscribe("o1", None);
    let read = hub.begin_read().unwrap();
    drop(old);
    let mut new = hub.subscribe(
        "o1",
        Some(Since {
            updated_at: at(1),
            row: None,
        }),
    );
    hub.finish_read(&read, vec![row("o1", "RESERVED", at(3))]);
    assert!(new.fresh().is_none());
    // Its starting point still stands.
    let read = hub.begin_read().unwrap();
    assert_eq!(read.query().1, vec![Some(at(1))]);
}

#[test]
fn a_failed_full_read_is_made_again() {
    let hub = Arc::new(StatusWatch::default());
    let _sub = hub.subscribe("o1", None);
    hub.finish_read(
        &hub.begin_read().unwrap(),
        vec![row("o1", "PENDING", at(1))],
    );
    let _joined = hub.subscribe("o1", None);
    let read = hub.begin_read().unwrap();
    assert_eq!(read.query().1, vec![None]);
    hub.fail_read(&read);
    assert_eq!(hub.begin_read().unwrap().query().1, vec![None]);
}

#[test]
fn one_read_covers_every_watched_order_and_none_when_nobody_waits() {
    let hub = Arc::new(StatusWatch::default());
    assert!(hub.begin_read().is_none());
    let subs: Vec<_> = (0..50)
        .map(|i| hub.subscribe(&format!("o{i}"), None))
        .collect();
    assert_eq!(hub.begin_read().unwrap().len(), 50);
    drop(subs);
    assert!(hub.begin_read().is_none());
}

#[test]
fn rows_read_are_remembered_with_their_owner() {
    let hub = Arc::new(StatusWatch::default());
    let id = uuid::Uuid::new_v4().to_string();
    let _sub = hub.subscribe(&id, None);
    hub.finish_read(
        &hub.begin_read().unwrap(),
        vec![row(&id, "RESERVED", at(2))],
    );
    let known = hub.known().get(id.parse().unwrap()).unwrap();
    assert_eq!(&*known.owner, "alice");
    assert_eq!(known.last_read.unwrap().status, "RESERVED");
}

#[test]
fn the_tick_is_short_while_few_orders_are_watched_and_grows_with_them() {
    assert_eq!(interval(1), MIN_INTERVAL);
    assert_eq!(interval(100), MIN_INTERVAL);
    assert_eq!(interval(200), Duration::from_millis(10));
    assert_eq!(interval(500), MAX_INTERVAL);
    assert_eq!(interval(100_000), MAX_INTERVAL);
}
