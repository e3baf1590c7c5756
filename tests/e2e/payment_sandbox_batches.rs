//! The payment worker's sandbox provider, under orders placed together:
//! their calls share transactions, and each order is still charged once
//! (confirmed) or not at all (declined).

use std::time::Duration;

use chorus_tests::saga::{Saga, sku};

const ORDERS: usize = 150;

#[tokio::test]
async fn payment_calls_of_orders_placed_together_share_transactions_and_charge_each_order_once() {
    let saga = Saga::start().await;
    let lamp = sku("LAMP");
    saga.set_stock(&lamp, ORDERS as i64, "12.50").await;

    let placed = futures::future::join_all((0..ORDERS).map(|i| {
        let (saga, lamp) = (&saga, &lamp);
        async move {
            let token = if i % 5 == 0 { "tok_decline" } else { "tok_ok" };
            let customer = format!("lamp-buyer-{i}");
            let order_id = saga.place_ok(&customer, &[(lamp, 1)], token).await;
            (customer, order_id, token)
        }
    }))
    .await;
    let finals = futures::future::join_all(placed.iter().map(|(customer, order_id, _)| {
        saga.wait_final(customer, order_id, Duration::from_secs(120))
    }))
    .await;

    let payments = saga.db("payment").await;
    for ((_, order_id, token), order) in placed.iter().zip(&finals) {
        let (calls, charges, standing): (i64, i64, i64) = sqlx::query_as(
            "SELECT (SELECT count(*) FROM sandbox_calls WHERE idempotency_key = $1),
                    count(*), count(*) FILTER (WHERE voided_at IS NULL)
             FROM sandbox_charges WHERE idempotency_key = $1",
        )
        .bind(order_id)
        .fetch_one(&payments)
        .await
        .unwrap();
        assert!(calls >= 1, "{order_id}: the sandbox recorded no call");
        if *token == "tok_ok" {
            assert_eq!(order["status"], "CONFIRMED", "{order}");
            assert_eq!((charges, standing), (1, 1), "{order_id}");
        } else {
            assert_eq!(
                (order["status"].as_str(), order["reason"].as_str()),
                (Some("CANCELLED"), Some("payment_declined")),
                "{order}"
            );
            assert_eq!(charges, 0, "{order_id}");
        }
    }

    // Each row's xmin is the transaction that wrote it: the calls of orders
    // placed together share a few.
    let (calls, transactions): (i64, i64) =
        sqlx::query_as("SELECT count(*), count(DISTINCT xmin::text) FROM sandbox_calls")
            .fetch_one(&payments)
            .await
            .unwrap();
    eprintln!("{calls} sandbox calls in {transactions} transactions");
    assert!(calls >= ORDERS as i64, "{calls}");
    assert!(
        transactions * 3 <= calls,
        "{calls} sandbox calls took {transactions} transactions"
    );
}
