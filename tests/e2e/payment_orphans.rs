//! No charge stands for an order that does not exist: a well-formed
//! `StockReserved` for an order nobody placed (forged, or orphaned by a lost
//! order) is authorized by the payment worker, which then voids it once the
//! order's deadline plus a grace period passed without the order being
//! confirmed. Real orders' charges, confirmed, stand. Against the real
//! stack, with the deadline and grace shortened.

use std::time::{Duration, Instant};

use chorus_tests::saga::{Saga, sku};
use chorus_tests::{describe, run};
use serde_json::json;

#[tokio::test]
async fn an_authorization_whose_order_was_never_placed_is_voided_and_confirmed_ones_stand() {
    let saga = Saga::start_with(&[
        ("CHORUS_ORDER_DEADLINE_SECS", "3"),
        ("CHORUS_PAYMENT_UNCONFIRMED_GRACE_SECS", "2"),
    ])
    .await;
    let widget = sku("ORPHAN");
    saga.set_stock(&widget, 100, "2.50").await;
    // Real orders, enough to touch every partition of the orders topic.
    let mut real = Vec::new();
    for _ in 0..8 {
        real.push(saga.place_ok("alice", &[(&widget, 1)], "tok_ok").await);
    }
    for order_id in &real {
        let order = saga
            .wait_final("alice", order_id, Duration::from_secs(60))
            .await;
        assert_eq!(order["status"], "CONFIRMED", "{order}");
    }

    let forged = uuid::Uuid::new_v4().to_string();
    let reserved = json!({
        "order_id": forged,
        "customer_id": "mallory",
        "lines": [{"sku": widget, "quantity": 1, "unit_price": "2.50"}],
        "total": "2.50",
        "currency": "EUR",
        "payment_token": "tok_ok",
        "occurred_at": chrono::Utc::now().timestamp_millis(),
    });
    let output =
        run(saga
            .chorus()
            .args(["produce", "StockReserved", "--json", &reserved.to_string()]));
    assert!(output.status.success(), "{}", describe(&output));

    let payments = saga.db("payment").await;
    let charged = Instant::now();
    let voided_after = loop {
        let voided: Option<bool> = sqlx::query_scalar(
            "SELECT voided_at IS NOT NULL FROM sandbox_charges WHERE idempotency_key = $1",
        )
        .bind(&forged)
        .fetch_optional(&payments)
        .await
        .unwrap();
        if voided == Some(true) {
            break charged.elapsed();
        }
        assert!(
            charged.elapsed() < Duration::from_secs(60),
            "the forged order's authorization still stands after 60 s (charged: {voided:?})"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    assert!(
        voided_after >= Duration::from_secs(5),
        "voided only after the deadline and grace (3 + 2 s), not at once: {voided_after:?}"
    );
    let (status, reason): (String, Option<String>) =
        sqlx::query_as("SELECT status, void_reason FROM payments WHERE order_id = $1")
            .bind(&forged)
            .fetch_one(&payments)
            .await
            .unwrap();
    assert_eq!(status, "voided");
    assert_eq!(reason.as_deref(), Some("order_not_confirmed"));

    // The real orders are older than deadline and grace too, but confirmed:
    // their charges stand.
    let standing: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM sandbox_charges WHERE idempotency_key = ANY($1) AND voided_at IS NULL",
    )
    .bind(&real)
    .fetch_one(&payments)
    .await
    .unwrap();
    assert_eq!(
        standing,
        real.len() as i64,
        "every confirmed order's charge stands"
    );
    let voided = saga.tail("payments", &forged);
    assert!(
        voided.iter().any(|e| e["type"] == "PaymentVoided"),
        "a PaymentVoided is published for the forged order: {voided:?}"
    );
}
