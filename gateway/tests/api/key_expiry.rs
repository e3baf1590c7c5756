//! Idempotency keys expire after their window: the `accepted_orders` rows
//! older than it are deleted (in batches, however many there are), younger
//! ones are kept, so a retried POST within the window answers the order it
//! placed and the same key after the window places a new one. Against the
//! real PostgreSQL.

use std::time::{Duration, Instant};

use axum::http::StatusCode;
use sqlx::PgPool;

use crate::helpers::{TestApp, customer, order_body, settings};

async fn count(pool: &PgPool, filter: &str) -> i64 {
    sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT count(*) FROM accepted_orders WHERE {filter}"
    )))
    .fetch_one(pool)
    .await
    .unwrap()
}

#[tokio::test]
async fn keys_older_than_the_window_expire_and_younger_ones_still_answer_their_order() {
    let mut settings = settings(1000, 1000);
    settings.key_expiry.window = Duration::from_secs(3600);
    // Expiry passes start now and again every 100 ms.
    settings.key_expiry.every = Duration::from_millis(100);
    let app = TestApp::spawn_with(settings).await;
    let pool = app.pool().clone();
    let alice = customer("alice");
    let old = app.post_order(&alice, Some("old-key"), &order_body()).await;
    assert_eq!(old.status, StatusCode::ACCEPTED, "{}", old.text);
    let young = app
        .post_order(&alice, Some("young-key"), &order_body())
        .await;
    assert_eq!(young.status, StatusCode::ACCEPTED, "{}", young.text);

    // Two and a half batches of keys past the window, and ours among them;
    // one just inside it.
    let batches = chorus_gateway::key_expiry::BATCH * 5 / 2;
    sqlx::query(
        "INSERT INTO accepted_orders \
           (customer_id, idempotency_key, request_hash, order_id, items, currency, published, created_at) \
         SELECT 'bob', 'key-' || n, 'h', gen_random_uuid(), '[]', 'EUR', TRUE, \
                now() - interval '2 hours' - n * interval '1 second' \
         FROM generate_series(1, $1) AS n",
    )
    .bind(batches)
    .execute(&pool)
    .await
    .unwrap();
    sqlx::query(
        "UPDATE accepted_orders SET created_at = now() - interval '61 minutes' \
         WHERE idempotency_key = 'old-key'",
    )
    .execute(&pool)
    .await
    .unwrap();
    sqlx::query(
        "UPDATE accepted_orders SET created_at = now() - interval '50 minutes' \
         WHERE idempotency_key = 'young-key'",
    )
    .execute(&pool)
    .await
    .unwrap();

    let deadline = Instant::now() + Duration::from_secs(20);
    while count(&pool, "created_at < now() - interval '1 hour'").await > 0 {
        assert!(Instant::now() < deadline, "expired keys are still there");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(count(&pool, "TRUE").await, 1, "only the young key is kept");

    // Within the window: the same order, not published again.
    let retried = app
        .post_order(&alice, Some("young-key"), &order_body())
        .await;
    assert_eq!(retried.status, StatusCode::ACCEPTED, "{}", retried.text);
    assert_eq!(retried.json()["order_id"], young.json()["order_id"]);
    // After it: the key is free again and places a new order.
    let reused = app.post_order(&alice, Some("old-key"), &order_body()).await;
    assert_eq!(reused.status, StatusCode::ACCEPTED, "{}", reused.text);
    assert_ne!(reused.json()["order_id"], old.json()["order_id"]);
    assert_eq!(app.publisher.published().len(), 3);
}

#[tokio::test]
async fn expired_keys_are_found_through_an_index_on_their_creation_time() {
    let app = TestApp::spawn().await;
    let indexes: Vec<String> =
        sqlx::query_scalar("SELECT indexdef FROM pg_indexes WHERE tablename = 'accepted_orders'")
            .fetch_all(app.pool())
            .await
            .unwrap();
    assert!(
        indexes
            .iter()
            .any(|i| i.ends_with("USING btree (created_at)")),
        "{indexes:?}"
    );
}
