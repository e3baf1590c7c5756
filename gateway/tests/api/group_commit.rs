//! Group commit under concurrency, against the real PostgreSQL: many
//! simultaneous POSTs, with distinct keys, repeated keys, keys reused with
//! another body and keys written by an earlier batch, share batches and keep
//! every guarantee of one order at a time.

use std::collections::{BTreeMap, BTreeSet};

use axum::http::StatusCode;
use chorus_avro::Event;
use serde_json::{Value, json};

use crate::helpers::{TestApp, customer, order_body};

fn body(quantity: i64) -> Value {
    let mut body = order_body();
    body["items"][0]["quantity"] = json!(quantity);
    body
}

/// What one attempt sent (its quantity) and got: the status, the order id or null.
type Answer = (i64, StatusCode, Value);

/// `(count, sum)` of the batch-size histogram.
fn batches(metrics: &str) -> (u64, u64) {
    let value = |name: &str| {
        metrics
            .lines()
            .find_map(|line| line.strip_prefix(name)?.trim().parse::<f64>().ok())
            .unwrap_or_else(|| panic!("no {name} in {metrics}")) as u64
    };
    (
        value("chorus_gateway_order_batch_size_count"),
        value("chorus_gateway_order_batch_size_sum"),
    )
}

#[tokio::test]
async fn simultaneous_posts_share_batches_and_keep_every_guarantee() {
    let app = TestApp::spawn().await;
    // Keys an earlier batch wrote: answered from their rows.
    let mut earlier = BTreeMap::new();
    for k in 0..5 {
        let key = format!("key-{k}");
        let response = app
            .post_order(&customer("alice"), Some(&key), &body(2))
            .await;
        assert_eq!(response.status, StatusCode::ACCEPTED, "{}", response.text);
        earlier.insert(key, response.json()["order_id"].clone());
    }
    let published_before = app.publisher.published().len();

    // 3 customers × 12 keys, each key sent four times: thrice with one body,
    // once (third) with another.
    let mut attempts = Vec::new();
    for who in ["alice", "bob", "carol"] {
        for k in 0..12 {
            for quantity in [2, 2, 3, 2] {
                attempts.push((who, format!("key-{k}"), quantity));
            }
        }
    }
    let tokens: BTreeMap<&str, String> = ["alice", "bob", "carol"]
        .into_iter()
        .map(|who| (who, customer(who)))
        .collect();
    let bodies: BTreeMap<i64, Value> = [(2, body(2)), (3, body(3))].into();
    let responses =
        futures::future::join_all(attempts.iter().map(|(who, key, quantity)| {
            app.post_order(&tokens[who], Some(key), &bodies[quantity])
        }))
        .await;

    let mut by_key: BTreeMap<(&str, &str), Vec<Answer>> = BTreeMap::new();
    for ((who, key, quantity), response) in attempts.iter().zip(&responses) {
        let order_id = match response.status {
            StatusCode::ACCEPTED => response.json()["order_id"].clone(),
            StatusCode::UNPROCESSABLE_ENTITY => {
                assert_eq!(response.error(response.status).0, "idempotency_key_reused");
                Value::Null
            }
            other => panic!("{other}: {}", response.text),
        };
        by_key
            .entry((who, key))
            .or_default()
            .push((*quantity, response.status, order_id));
    }
    let mut order_ids = BTreeSet::new();
    for ((who, key), answers) in &by_key {
        // One body won the key; its every attempt got the one order, the
        // other body's a 422.
        let accepted: Vec<&Answer> = answers
            .iter()
            .filter(|(_, status, _)| *status == StatusCode::ACCEPTED)
            .collect();
        let winner = accepted.first().expect("an accepted attempt").0;
        for (quantity, status, order_id) in answers {
            if *quantity == winner {
                assert_eq!(*status, StatusCode::ACCEPTED, "{who} {key}");
                assert_eq!(order_id, &accepted[0].2, "{who} {key}: one order");
            } else {
                assert_eq!(*status, StatusCode::UNPROCESSABLE_ENTITY, "{who} {key}");
            }
        }
        if *who == "alice"
            && let Some(id) = earlier.get(*key)
        {
            assert_eq!(
                (winner, &accepted[0].2),
                (2, id),
                "{key} was written before"
            );
        }
        order_ids.insert(accepted[0].2.as_str().unwrap().to_string());
    }
    assert_eq!(order_ids.len(), 36, "one order per (customer, key)");

    // Each new order published once; the earlier ones not again.
    let published: Vec<Event> = app.publisher.published()[published_before..]
        .iter()
        .map(|(event, _)| event.clone())
        .collect();
    assert_eq!(published.len(), 36 - earlier.len());
    let published_ids: BTreeSet<String> = published.iter().map(|e| e.key().to_string()).collect();
    assert_eq!(
        published_ids.len(),
        published.len(),
        "no order published twice"
    );
    assert!(published_ids.is_subset(&order_ids));

    // Every row is marked published, and every order readable at once.
    let unpublished: i64 =
        sqlx::query_scalar("SELECT count(*) FROM accepted_orders WHERE NOT published")
            .fetch_one(app.pool())
            .await
            .unwrap();
    assert_eq!(unpublished, 0);
    for ((who, _), answers) in &by_key {
        let order_id = answers.iter().find_map(|(_, _, id)| id.as_str()).unwrap();
        let response = app
            .get(&format!("/v1/orders/{order_id}"), Some(&tokens[who]))
            .await;
        assert_eq!(response.status, StatusCode::OK, "{}", response.text);
    }

    // Requests really shared batches: fewer batches than attempts.
    let (count, sum) = batches(&app.get("/metrics", None).await.text);
    assert_eq!(sum, (earlier.len() + attempts.len()) as u64);
    assert!(count < sum, "{count} batches for {sum} attempts");
}

#[tokio::test]
async fn a_kafka_failure_fails_the_whole_batch_and_retries_publish_the_same_orders() {
    let app = TestApp::spawn().await;
    app.publisher.set_failing(true);
    let alice = customer("alice");
    let body = order_body();
    let keys: Vec<String> = (0..20).map(|k| format!("key-{k}")).collect();
    let failed = futures::future::join_all(
        keys.iter()
            .map(|key| app.post_order(&alice, Some(key), &body)),
    )
    .await;
    for response in &failed {
        assert_eq!(
            response.error(StatusCode::SERVICE_UNAVAILABLE).0,
            "unavailable"
        );
    }
    let rows: Vec<(String, uuid::Uuid, bool)> = sqlx::query_as(
        "SELECT idempotency_key, order_id, published FROM accepted_orders ORDER BY idempotency_key",
    )
    .fetch_all(app.pool())
    .await
    .unwrap();
    assert_eq!(rows.len(), 20);
    assert!(rows.iter().all(|(_, _, published)| !published));

    app.publisher.set_failing(false);
    let retried = futures::future::join_all(
        keys.iter()
            .map(|key| app.post_order(&alice, Some(key), &body)),
    )
    .await;
    let written: BTreeMap<String, String> = rows
        .into_iter()
        .map(|(key, order_id, _)| (key, order_id.to_string()))
        .collect();
    for (key, response) in keys.iter().zip(&retried) {
        assert_eq!(response.status, StatusCode::ACCEPTED, "{}", response.text);
        assert_eq!(
            response.json()["order_id"],
            written[key],
            "{key}: the same order"
        );
    }
    assert_eq!(app.publisher.published().len(), 20);
}
