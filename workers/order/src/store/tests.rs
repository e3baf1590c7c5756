//! The migrations, the SQL and the gateway's view against a real PostgreSQL,
//! through the handler, each test in a database of its own. They fail when
//! PostgreSQL is down.

use std::sync::Arc;

use chorus_avro::Event;
use chorus_platform::testing::TestDb;
use chorus_runtime::{HandleError, Handler, apply_one};
use serde_json::{Value, json};
use tokio::task::JoinSet;

use super::*;
use crate::OrderHandler;
use crate::testing::{
    authorized, payment_failed, placed, price, reservation_failed, stock_reserved,
};

/// Handles one event in its own committed transaction, as the consumer loop does.
async fn handle(db: &TestDb, event: impl Into<Event>) -> Result<Vec<Event>, HandleError> {
    let mut tx = db.pool.begin().await?;
    let (out, _) = apply_one(&OrderHandler::default(), &mut tx, &event.into()).await?;
    tx.commit().await?;
    Ok(out)
}

fn names(events: &[Event]) -> Vec<&'static str> {
    events.iter().map(|e| e.event_type().name()).collect()
}

/// The gateway's row, as JSON, without the timestamps.
async fn status_row(db: &TestDb, order_id: &str) -> Option<Value> {
    sqlx::query_scalar(
        "SELECT to_jsonb(s) - 'updated_at' - 'history' - 'created_at' - 'deadline_at' - 'last_event_at'
         FROM order_status AS s WHERE order_id = $1",
    )
    .bind(order_id)
    .fetch_optional(&db.pool)
    .await
    .unwrap()
}

async fn history(db: &TestDb, order_id: &str) -> Vec<String> {
    let history: Value = sqlx::query_scalar("SELECT history FROM order_status WHERE order_id = $1")
        .bind(order_id)
        .fetch_one(&db.pool)
        .await
        .unwrap();
    history
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["status"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn the_view_shows_placed_orders_in_the_gateways_shape() {
    TestDb::ensure_role("chorus_gateway_ro").await;
    let db = TestDb::create(&[&crate::MIGRATOR]).await;
    let columns: Vec<String> = sqlx::query_scalar(
        "SELECT column_name::text FROM information_schema.columns
         WHERE table_name = 'order_status' ORDER BY ordinal_position",
    )
    .fetch_all(&db.pool)
    .await
    .unwrap();
    let expected = [
        "order_id",
        "customer_id",
        "status",
        "reason",
        "currency",
        "total",
        "items",
        "history",
        "updated_at",
        "cancellation",
        "created_at",
        "deadline_at",
        "last_event",
        "last_event_at",
    ];
    assert_eq!(columns, expected);

    // A payment fact alone makes a row, but no order the gateway can see.
    handle(&db, authorized("o1", "44.98")).await.unwrap();
    assert_eq!(status_row(&db, "o1").await, None);

    handle(&db, placed("o1", &[("A", 2), ("B", 1), ("A", 1)]))
        .await
        .unwrap();
    let pending = json!({
        "order_id": "o1", "customer_id": "cust-7", "status": "PENDING", "reason": null,
        "currency": "EUR", "total": null, "cancellation": null, "last_event": "OrderPlaced",
        "items": [
            {"sku": "A", "quantity": 2, "unit_price": null},
            {"sku": "B", "quantity": 1, "unit_price": null},
            {"sku": "A", "quantity": 1, "unit_price": null},
        ],
    });
    assert_eq!(status_row(&db, "o1").await, Some(pending));

    let out = handle(
        &db,
        stock_reserved("o1", &[("A", 3, "19.99"), ("B", 1, "5.00")]),
    )
    .await;
    assert_eq!(names(&out.unwrap()), ["OrderConfirmed"]);
    let confirmed = json!({
        "order_id": "o1", "customer_id": "cust-7", "status": "CONFIRMED", "reason": null,
        "currency": "EUR", "total": 64.97, "cancellation": null, "last_event": "StockReserved",
        "items": [
            {"sku": "A", "quantity": 2, "unit_price": "19.99"},
            {"sku": "B", "quantity": 1, "unit_price": "5.00"},
            {"sku": "A", "quantity": 1, "unit_price": "19.99"},
        ],
    });
    assert_eq!(status_row(&db, "o1").await, Some(confirmed));
    assert_eq!(
        history(&db, "o1").await,
        ["PENDING", "RESERVED", "CONFIRMED"]
    );
    let at: String =
        sqlx::query_scalar("SELECT history -> 0 ->> 'at' FROM order_status WHERE order_id = 'o1'")
            .fetch_one(&db.pool)
            .await
            .unwrap();
    assert!(
        at.len() == 24 && at.ends_with('Z') && at.as_bytes()[19] == b'.',
        "{at}"
    );

    // The gateway's read-only role reads the view and nothing else.
    let privilege = |table, what| db.has_table_privilege("chorus_gateway_ro", table, what);
    assert!(
        privilege("order_status", "SELECT").await,
        "the gateway role cannot read order_status"
    );
    assert!(
        !privilege("order_status", "INSERT").await,
        "the gateway role may write order_status"
    );
    assert!(
        !privilege("orders", "SELECT").await,
        "the gateway role reads orders directly"
    );
}

#[tokio::test]
async fn every_fact_survives_the_round_trip_through_the_table() {
    let db = TestDb::create(&[&crate::MIGRATOR]).await;
    for event in [
        Event::from(placed("o1", &[("A", 1)])),
        stock_reserved("o1", &[("A", 1, "0.10")]).into(),
        reservation_failed("o1", "out_of_stock", &["A", "B"]).into(),
        authorized("o1", "0.10").into(),
        payment_failed("o1", "payment_declined").into(),
    ] {
        handle(&db, event).await.unwrap();
    }
    let mut conn = db.pool.acquire().await.unwrap();
    let order = lock_orders(&mut conn, &["o1"])
        .await
        .unwrap()
        .remove("o1")
        .unwrap();
    assert_eq!(order.facts.placed.as_ref().unwrap().customer_id, "cust-7");
    assert_eq!(order.facts.reserved.as_ref().unwrap().total, price("0.10"));
    assert_eq!(
        order.facts.reservation_failed.as_ref().unwrap().skus,
        ["A", "B"]
    );
    assert_eq!(
        order
            .facts
            .payment_authorized
            .as_ref()
            .unwrap()
            .authorization_id,
        "auth-1"
    );
    let declined = order.facts.payment_failed.as_ref().unwrap();
    assert_eq!(declined.detail.as_deref(), Some("card declined"));
    let cancelled = Status::Cancelled {
        reason: "out_of_stock".into(),
        detail: chorus_avro::CancelReason::OutOfStock.detail(),
    };
    assert_eq!(order.status, Some(cancelled));
    let statuses: Vec<&str> = order.history.iter().map(|h| h.status.as_str()).collect();
    assert_eq!(statuses, ["PENDING", "RESERVED", "CANCELLED"]);
    let reason: Option<String> =
        sqlx::query_scalar("SELECT reason FROM order_status WHERE order_id = 'o1'")
            .fetch_one(&db.pool)
            .await
            .unwrap();
    assert_eq!(reason.as_deref(), Some("out_of_stock"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_of_one_order_racing_from_different_topics_confirm_it_once() {
    let db = Arc::new(TestDb::create(&[&crate::MIGRATOR]).await);
    let mut tasks = JoinSet::new();
    for i in 0..10 {
        let order_id = format!("o{i}");
        let events: [Event; 3] = [
            placed(&order_id, &[("A", 1)]).into(),
            stock_reserved(&order_id, &[("A", 1, "2.00")]).into(),
            authorized(&order_id, "2.00").into(),
        ];
        for event in events {
            let db = db.clone();
            tasks.spawn(async move { handle(&db, event).await });
        }
    }
    let mut emitted = vec![];
    while let Some(result) = tasks.join_next().await {
        emitted.extend(result.unwrap().expect("no event fails"));
    }
    assert_eq!(names(&emitted), ["OrderConfirmed"; 10]);
    for i in 0..10 {
        let order_id = format!("o{i}");
        let row = status_row(&db, &order_id).await.unwrap();
        assert_eq!(
            (&row["status"], &row["total"]),
            (&json!("CONFIRMED"), &json!(2.00))
        );
        assert_eq!(
            history(&db, &order_id).await,
            ["PENDING", "RESERVED", "CONFIRMED"]
        );
    }
}

#[tokio::test]
async fn a_declined_payment_cancels_and_later_facts_change_nothing() {
    let db = TestDb::create(&[&crate::MIGRATOR]).await;
    handle(&db, placed("o1", &[("A", 1)])).await.unwrap();
    handle(&db, stock_reserved("o1", &[("A", 1, "2.00")]))
        .await
        .unwrap();
    let out = handle(&db, payment_failed("o1", "payment_declined"))
        .await
        .unwrap();
    let [Event::OrderCancelled(e)] = out.as_slice() else {
        panic!("{out:?}")
    };
    assert_eq!(e.reason, "payment_declined");

    assert!(
        handle(&db, authorized("o1", "2.00"))
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        handle(&db, payment_failed("o1", "payment_declined"))
            .await
            .unwrap()
            .is_empty()
    );
    let row = status_row(&db, "o1").await.unwrap();
    assert_eq!(
        (&row["status"], &row["reason"]),
        (&json!("CANCELLED"), &json!("payment_declined"))
    );
    assert_eq!(
        history(&db, "o1").await,
        ["PENDING", "RESERVED", "CANCELLED"]
    );
}

#[tokio::test]
async fn invalid_orders_are_permanent_and_ignored_events_write_nothing() {
    let db = TestDb::create(&[&crate::MIGRATOR]).await;
    let result = handle(&db, placed("o1", &[("A", 0)])).await;
    assert!(
        matches!(result, Err(HandleError::Permanent(_))),
        "{result:?}"
    );

    let (_, emitted) = {
        let out = handle(&db, placed("o2", &[("A", 1)])).await.unwrap();
        let cancel = handle(&db, reservation_failed("o2", "unknown_sku", &["A"]))
            .await
            .unwrap();
        (out, cancel)
    };
    // The order worker's own output comes back on its topics: no effect.
    let mut tx = db.pool.begin().await.unwrap();
    let (again, _) = apply_one(&OrderHandler::default(), &mut tx, &emitted[0])
        .await
        .unwrap();
    assert!(again.is_empty());
    tx.commit().await.unwrap();
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM orders")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(rows, 1, "only o2");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_overdue_order_is_cancelled_once_however_many_replicas_tick() {
    let db = Arc::new(TestDb::create(&[&crate::MIGRATOR]).await);
    // Placed long ago (the builders' occurred_at is in 2023): overdue at once.
    for i in 0..20 {
        handle(&db, placed(&format!("late-{i}"), &[("A", 1)]))
            .await
            .unwrap();
    }
    handle(&db, placed("done", &[("A", 1)])).await.unwrap();
    handle(&db, stock_reserved("done", &[("A", 1, "1.00")]))
        .await
        .unwrap();
    handle(&db, authorized("done", "1.00")).await.unwrap();

    let mut ticks = JoinSet::new();
    for _ in 0..4 {
        let db = db.clone();
        ticks.spawn(async move {
            let handler = OrderHandler::new(std::time::Duration::from_secs(60));
            let mut tx = db.pool.begin().await.unwrap();
            let emitted = handler.tick(&mut tx).await.unwrap();
            tx.commit().await.unwrap();
            emitted
        });
    }
    let mut cancelled = Vec::new();
    while let Some(emitted) = ticks.join_next().await {
        for event in emitted.unwrap() {
            let Event::OrderCancelled(e) = event else {
                panic!("{event:?}")
            };
            assert_eq!(e.reason, "timeout");
            cancelled.push(e.order_id);
        }
    }
    cancelled.sort();
    let mut expected: Vec<String> = (0..20).map(|i| format!("late-{i}")).collect();
    expected.sort();
    assert_eq!(
        cancelled, expected,
        "each overdue order once, the confirmed one never"
    );
    let row = status_row(&db, "late-3").await.unwrap();
    assert_eq!(
        (&row["status"], &row["reason"], &row["last_event"]),
        (&json!("CANCELLED"), &json!("timeout"), &json!("deadline"))
    );
    // Nothing is left to cancel.
    let mut tx = db.pool.begin().await.unwrap();
    assert!(
        OrderHandler::default()
            .tick(&mut tx)
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn cancellation_requests_are_recorded_in_the_read_model() {
    TestDb::ensure_role("chorus_gateway_ro").await;
    let db = TestDb::create(&[&crate::MIGRATOR]).await;
    let request = |order_id: &str| chorus_avro::OrderCancellationRequested {
        event_id: uuid::Uuid::new_v4().to_string(),
        order_id: order_id.into(),
        occurred_at: 1_700_000_000_000,
        correlation_id: order_id.into(),
        causation_id: None,
        customer_id: "cust-7".into(),
        requested_by: "cust-7".into(),
    };
    handle(&db, placed("open", &[("A", 1)])).await.unwrap();
    let out = handle(&db, request("open")).await.unwrap();
    assert_eq!(names(&out), ["OrderCancelled"]);
    handle(&db, placed("shipped", &[("A", 1)])).await.unwrap();
    handle(&db, stock_reserved("shipped", &[("A", 1, "1.00")]))
        .await
        .unwrap();
    handle(&db, authorized("shipped", "1.00")).await.unwrap();
    assert!(handle(&db, request("shipped")).await.unwrap().is_empty());

    let open = status_row(&db, "open").await.unwrap();
    assert_eq!(
        (&open["status"], &open["reason"], &open["cancellation"]),
        (
            &json!("CANCELLED"),
            &json!("customer_cancelled"),
            &json!("accepted")
        )
    );
    let shipped = status_row(&db, "shipped").await.unwrap();
    assert_eq!(
        (&shipped["status"], &shipped["cancellation"]),
        (&json!("CONFIRMED"), &json!("rejected"))
    );
}
