//! One validation of each event's content, shared by every worker, against
//! the real stack: an `OrderPlaced` whose customer id the workers refuse
//! reserves no stock. Its two consumers, the order and inventory workers,
//! each dead-letter it as `rejected` naming the field, and the next order
//! for the same SKU is served as usual.

use std::time::Duration;

use chorus_avro::{Topic, headers};
use chorus_tests::saga::{Saga, sku};
use chorus_tests::{describe, run};
use rdkafka::message::{Headers, Message};
use serde_json::json;

#[tokio::test]
async fn an_order_for_a_customer_the_workers_refuse_reserves_no_stock() {
    let saga = Saga::start().await;
    let mug = sku("MUG");
    saga.set_stock(&mug, 5, "7.00").await;
    let refused = uuid::Uuid::new_v4().to_string();
    let placed = json!({
        "order_id": refused,
        // A control character: no token subject the gateway lets through
        // should carry one, and PostgreSQL or a mail header may break on it.
        "customer_id": "mallory\u{7}",
        "items": [{"sku": mug, "quantity": 2}],
        "currency": "EUR",
        "payment_token": "tok_ok",
        "occurred_at": chrono::Utc::now().timestamp_millis(),
    });
    let output = run(saga
        .chorus()
        .args(["produce", "OrderPlaced", "--json", &placed.to_string()]));
    assert!(output.status.success(), "{}", describe(&output));

    // Both consumers refuse it by the same rule; before the shared rule the
    // inventory reserved its stock and only the order worker refused it.
    let dead = saga
        .stack
        .read(
            &saga.topics.dead_letter(Topic::Orders),
            2,
            Duration::from_secs(60),
        )
        .await;
    let mut groups = Vec::new();
    for message in &dead {
        let header = |name: &str| {
            let headers = message.headers().expect("a dead letter has headers");
            headers
                .iter()
                .find(|h| h.key == name)
                .and_then(|h| h.value)
                .map(|v| String::from_utf8_lossy(v).into_owned())
                .unwrap_or_default()
        };
        assert_eq!(message.key(), Some(refused.as_bytes()));
        assert_eq!(header(headers::ERROR_CLASS), "rejected");
        let why = header(headers::ERROR_MESSAGE);
        assert!(why.contains("customer_id"), "{why}");
        groups.push(header(headers::CONSUMER_GROUP));
    }
    groups.sort();
    let namespace = saga.topics.namespace();
    assert_eq!(
        groups,
        [
            format!("{namespace}.inventory"),
            format!("{namespace}.order")
        ]
    );

    // The stock is untouched by it: the next order takes its unit, and
    // nothing else is reserved or sold.
    let order_id = saga.place_ok("alice", &[(&mug, 1)], "tok_ok").await;
    let order = saga
        .wait_final("alice", &order_id, Duration::from_secs(60))
        .await;
    assert_eq!(order["status"], "CONFIRMED", "{order}");
    assert_eq!(saga.settled_stock(&mug).await, (4, 0, 1));
    let reservations: i64 =
        sqlx::query_scalar("SELECT count(*) FROM reservations WHERE order_id = $1")
            .bind(&refused)
            .fetch_one(&saga.db("inventory").await)
            .await
            .unwrap();
    assert_eq!(reservations, 0, "the refused order holds a reservation");
    let orders: i64 = sqlx::query_scalar("SELECT count(*) FROM orders WHERE order_id = $1")
        .bind(&refused)
        .fetch_one(&saga.db("order").await)
        .await
        .unwrap();
    assert_eq!(orders, 0, "the refused order was recorded");
}
