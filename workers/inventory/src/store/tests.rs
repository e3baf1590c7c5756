//! The migrations and the SQL against a real PostgreSQL, through the handler,
//! each test in a database of its own. They fail when PostgreSQL is down.

use chorus_avro::Event;
use chorus_platform::testing::TestDb;
use chorus_runtime::{HandleError, apply_one};
use rust_decimal::Decimal;
use tokio::task::JoinSet;

use crate::InventoryHandler;
use crate::testing::{adjusted, cancelled, confirmed, payment_failed, placed, price};

/// Handles one event in its own committed transaction, as the consumer loop does.
async fn handle(db: &TestDb, event: impl Into<Event>) -> Result<Vec<Event>, HandleError> {
    let mut tx = db.pool.begin().await?;
    let (out, _) = apply_one(&InventoryHandler::default(), &mut tx, &event.into()).await?;
    tx.commit().await?;
    Ok(out)
}

/// (available, reserved, sold, unit_price) from the gateway's view.
async fn level(db: &TestDb, sku: &str) -> (i32, i32, i32, Decimal) {
    sqlx::query_as("SELECT available, reserved, sold, unit_price FROM stock_levels WHERE sku = $1")
        .bind(sku)
        .fetch_one(&db.pool)
        .await
        .unwrap()
}

async fn reservation_status(db: &TestDb, order_id: &str) -> Option<String> {
    sqlx::query_scalar("SELECT status FROM reservations WHERE order_id = $1")
        .bind(order_id)
        .fetch_optional(&db.pool)
        .await
        .unwrap()
}

fn names(events: &[Event]) -> Vec<&'static str> {
    events.iter().map(|e| e.event_type().name()).collect()
}

#[tokio::test]
async fn adjustments_set_the_catalogue_and_the_view_shows_it() {
    TestDb::ensure_role("chorus_gateway_ro").await;
    let db = TestDb::create(&[&crate::MIGRATOR]).await;
    handle(&db, adjusted("A", 5, "19.99")).await.unwrap();
    assert_eq!(level(&db, "A").await, (5, 0, 0, price("19.99")));

    handle(&db, placed("o1", &[("A", 2)])).await.unwrap();
    handle(&db, adjusted("A", 10, "21.00")).await.unwrap();
    assert_eq!(
        level(&db, "A").await,
        (10, 2, 0, price("21.00")),
        "reserved survives"
    );

    let bad = handle(&db, adjusted("A", -1, "1")).await;
    assert!(matches!(bad, Err(HandleError::Permanent(_))), "{bad:?}");

    let columns: Vec<String> = sqlx::query_scalar(
        "SELECT column_name::text FROM information_schema.columns
         WHERE table_name = 'stock_levels' ORDER BY ordinal_position",
    )
    .fetch_all(&db.pool)
    .await
    .unwrap();
    assert_eq!(
        columns,
        ["sku", "name", "available", "reserved", "sold", "unit_price"]
    );
    // The gateway's read-only role reads the view and nothing else.
    let privilege = |table, what| db.has_table_privilege("chorus_gateway_ro", table, what);
    assert!(
        privilege("stock_levels", "SELECT").await,
        "the gateway role cannot read stock_levels"
    );
    assert!(
        !privilege("stock_levels", "INSERT").await,
        "the gateway role may write stock_levels"
    );
    assert!(
        !privilege("catalogue", "SELECT").await,
        "the gateway role reads catalogue directly"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_concurrent_orders_for_the_last_five_units_reserve_exactly_five() {
    let db = TestDb::create(&[&crate::MIGRATOR]).await;
    handle(&db, adjusted("LAST", 5, "3.00")).await.unwrap();

    let db = std::sync::Arc::new(db);
    let mut orders = JoinSet::new();
    for i in 0..20 {
        let db = db.clone();
        orders.spawn(async move { handle(&db, placed(&format!("o{i}"), &[("LAST", 1)])).await });
    }
    let (mut reserved, mut refused) = (0, 0);
    while let Some(result) = orders.join_next().await {
        match names(&result.unwrap().expect("no order fails to be answered")).as_slice() {
            ["StockReserved"] => reserved += 1,
            ["StockReservationFailed"] => refused += 1,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!((reserved, refused), (5, 15));
    assert_eq!(level(&db, "LAST").await, (0, 5, 0, price("3.00")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crossed_orders_for_the_same_skus_never_deadlock() {
    let db = std::sync::Arc::new(TestDb::create(&[&crate::MIGRATOR]).await);
    handle(&db, adjusted("A", 100, "1")).await.unwrap();
    handle(&db, adjusted("B", 100, "1")).await.unwrap();

    let mut orders = JoinSet::new();
    for i in 0..20 {
        let db = db.clone();
        let items = if i % 2 == 0 {
            [("A", 1), ("B", 2)]
        } else {
            [("B", 2), ("A", 1)]
        };
        orders.spawn(async move { handle(&db, placed(&format!("x{i}"), &items)).await });
    }
    while let Some(result) = orders.join_next().await {
        assert_eq!(
            names(&result.unwrap().expect("no deadlock")),
            ["StockReserved"]
        );
    }
    assert_eq!(level(&db, "A").await.0, 80);
    assert_eq!(level(&db, "B").await.0, 60);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_payment_failure_and_the_cancellation_racing_it_release_once() {
    let db = std::sync::Arc::new(TestDb::create(&[&crate::MIGRATOR]).await);
    handle(&db, adjusted("A", 4, "2.50")).await.unwrap();
    let reserved = handle(&db, placed("o1", &[("A", 1), ("A", 2)]))
        .await
        .unwrap();
    let Event::StockReserved(r) = &reserved[0] else {
        panic!("{reserved:?}")
    };
    assert_eq!(r.total, price("7.50"));
    assert_eq!(level(&db, "A").await, (1, 3, 0, price("2.50")));

    let (a, b) = (db.clone(), db.clone());
    let failed =
        tokio::spawn(async move { handle(&a, payment_failed("o1", "payment_declined")).await });
    let cancel = tokio::spawn(async move { handle(&b, cancelled("o1", "payment_declined")).await });
    let mut emitted = failed.await.unwrap().unwrap();
    emitted.extend(cancel.await.unwrap().unwrap());

    assert_eq!(names(&emitted), ["StockReleased"]);
    assert_eq!(level(&db, "A").await, (4, 0, 0, price("2.50")));
    assert_eq!(
        reservation_status(&db, "o1").await.as_deref(),
        Some("released")
    );
}

#[tokio::test]
async fn a_confirmed_order_is_sold_and_a_resent_order_is_ignored() {
    let db = TestDb::create(&[&crate::MIGRATOR]).await;
    handle(&db, adjusted("A", 4, "1")).await.unwrap();
    assert_eq!(
        names(&handle(&db, placed("o1", &[("A", 3)])).await.unwrap()),
        ["StockReserved"]
    );
    assert!(
        handle(&db, placed("o1", &[("A", 3)]))
            .await
            .unwrap()
            .is_empty(),
        "re-send"
    );

    assert!(handle(&db, confirmed("o1")).await.unwrap().is_empty());
    assert_eq!(level(&db, "A").await, (1, 0, 3, price("1")));
    assert_eq!(reservation_status(&db, "o1").await.as_deref(), Some("sold"));
    // Neither a second confirmation nor a late cancellation moves sold stock.
    assert!(handle(&db, confirmed("o1")).await.unwrap().is_empty());
    assert!(
        handle(&db, cancelled("o1", "timeout"))
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(level(&db, "A").await, (1, 0, 3, price("1")));
}

#[tokio::test]
async fn refused_orders_hold_nothing_and_invalid_orders_are_permanent() {
    let db = TestDb::create(&[&crate::MIGRATOR]).await;
    handle(&db, adjusted("A", 1, "1")).await.unwrap();
    let out = handle(&db, placed("o1", &[("A", 2), ("GHOST", 1)]))
        .await
        .unwrap();
    let Event::StockReservationFailed(f) = &out[0] else {
        panic!("{out:?}")
    };
    assert_eq!(
        (f.reason.as_str(), f.skus.as_slice()),
        ("unknown_sku", &["GHOST".to_string()][..])
    );
    assert_eq!(
        reservation_status(&db, "o1").await.as_deref(),
        Some("failed")
    );
    assert!(
        handle(&db, payment_failed("o1", "payment_declined"))
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(level(&db, "A").await, (1, 0, 0, price("1")));

    for bad in [placed("o2", &[]), placed("o3", &[("A", 0)])] {
        let result = handle(&db, bad).await;
        assert!(
            matches!(result, Err(HandleError::Permanent(_))),
            "{result:?}"
        );
    }
    assert_eq!(reservation_status(&db, "o2").await, None);
}

#[tokio::test]
async fn a_cancellation_that_overtakes_its_order_keeps_the_late_order_from_reserving() {
    let db = TestDb::create(&[&crate::MIGRATOR]).await;
    handle(&db, adjusted("A", 2, "1")).await.unwrap();
    assert!(
        handle(&db, cancelled("o1", "customer_cancelled"))
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        handle(&db, placed("o1", &[("A", 2)]))
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(level(&db, "A").await, (2, 0, 0, price("1")));
}
