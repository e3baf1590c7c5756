//! Placing orders: 202 after publishing, idempotent retries per subject,
//! 422 for a reused key, 503 (and a later successful retry) when Kafka fails.

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use chorus_avro::Event;
use serde_json::json;

use crate::helpers::{TestApp, customer, order_body, payment_keys, settings};
use crate::spans;

#[tokio::test]
async fn an_order_is_accepted_once_published() {
    let app = TestApp::spawn().await;
    let traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let request = Request::builder()
        .method(Method::POST)
        .uri("/v1/orders")
        .header("authorization", format!("Bearer {}", customer("alice")))
        .header("content-type", "application/json")
        .header("idempotency-key", "key-1")
        .header("traceparent", traceparent)
        .body(Body::from(
            json!({"items":[{"sku":"SKU-1","quantity":2},{"sku":"SKU-2","quantity":1}],"currency":"EUR","payment_token":"tok_ok"}).to_string(),
        ))
        .unwrap();
    let response = app.send(request).await;
    assert_eq!(response.status, StatusCode::ACCEPTED, "{}", response.text);
    let body = response.json();
    let order_id = body["order_id"].as_str().unwrap().to_string();
    assert_eq!(body["status"], "PENDING");
    assert_eq!(body["status_url"], format!("/v1/orders/{order_id}"));
    assert_eq!(
        response.headers["location"],
        format!("/v1/orders/{order_id}")
    );

    let published = app.publisher.published();
    assert_eq!(published.len(), 1);
    let (Event::OrderPlaced(event), sent_traceparent) = &published[0] else {
        panic!("{published:?}")
    };
    assert_eq!(event.order_id, order_id);
    assert_eq!(event.customer_id, "alice");
    assert_eq!(event.correlation_id, order_id);
    assert_eq!(event.causation_id, None);
    assert_eq!(event.currency, "EUR");
    // The payment token travels sealed for the payment service, bound to its order.
    assert_ne!(event.payment_token, "tok_ok");
    let keys = payment_keys();
    let key_id = event.payment_token_key_id.as_deref().expect("a key id");
    assert_eq!(key_id, keys.current_key_id());
    assert_eq!(
        keys.open(&order_id, key_id, &event.payment_token).unwrap(),
        "tok_ok"
    );
    assert_eq!(event.items.len(), 2);
    assert_eq!(
        (event.items[0].sku.as_str(), event.items[0].quantity),
        ("SKU-1", 2)
    );
    let expected_id =
        chorus_gateway::routes::orders::order_placed_event_id(order_id.parse().unwrap());
    assert_eq!(event.event_id, expected_id.to_string());
    // The caller's trace continues into Kafka: the event's parent is the
    // request's span, `POST /v1/orders` with the order id, itself a child
    // of the caller's span.
    assert!(sent_traceparent.starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-"));
    let request_span = spans::finished(|s| {
        s.name == "POST /v1/orders"
            && spans::attribute(s, "order_id").as_deref() == Some(order_id.as_str())
    });
    let [request_span] = request_span.as_slice() else {
        panic!("one request span for the order: {request_span:?}")
    };
    assert_eq!(
        request_span.span_context.trace_id().to_string(),
        "4bf92f3577b34da6a3ce929d0e0e4736"
    );
    assert_eq!(request_span.parent_span_id.to_string(), "00f067aa0ba902b7");
    assert_eq!(
        sent_traceparent,
        &format!(
            "00-4bf92f3577b34da6a3ce929d0e0e4736-{}-01",
            request_span.span_context.span_id()
        )
    );

    let published: bool =
        sqlx::query_scalar("SELECT published FROM accepted_orders WHERE order_id = $1::uuid")
            .bind(&order_id)
            .fetch_one(app.pool())
            .await
            .unwrap();
    assert!(published);
}

#[tokio::test]
async fn the_same_key_and_body_answer_the_same_order() {
    let app = TestApp::spawn().await;
    let alice = customer("alice");
    let first = app.post_order(&alice, Some("key-1"), &order_body()).await;
    assert_eq!(first.status, StatusCode::ACCEPTED);
    // Same content, other field order: the same request.
    let reordered =
        json!({"payment_token":"tok_ok","currency":"EUR","items":[{"quantity":2,"sku":"SKU-1"}]});
    let again = app.post_order(&alice, Some("key-1"), &reordered).await;
    assert_eq!(again.status, StatusCode::ACCEPTED);
    assert_eq!(first.json()["order_id"], again.json()["order_id"]);
    assert_eq!(app.publisher.published().len(), 1, "published once");

    let other_key = app.post_order(&alice, Some("key-2"), &order_body()).await;
    assert_ne!(first.json()["order_id"], other_key.json()["order_id"]);
}

#[tokio::test]
async fn the_same_key_with_another_body_is_422() {
    let app = TestApp::spawn().await;
    let alice = customer("alice");
    let first = app.post_order(&alice, Some("key-1"), &order_body()).await;
    assert_eq!(first.status, StatusCode::ACCEPTED);
    let mut other = order_body();
    other["items"][0]["quantity"] = json!(3);
    let response = app.post_order(&alice, Some("key-1"), &other).await;
    let (code, field) = response.error(StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!((code.as_str(), field), ("idempotency_key_reused", None));
    other["items"][0]["quantity"] = json!(2);
    other["payment_token"] = json!("tok_other");
    let response = app.post_order(&alice, Some("key-1"), &other).await;
    response.error(StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(app.publisher.published().len(), 1);
}

#[tokio::test]
async fn idempotency_keys_are_scoped_to_the_subject() {
    let app = TestApp::spawn().await;
    let alice = app
        .post_order(&customer("alice"), Some("key-1"), &order_body())
        .await;
    let mut other = order_body();
    other["currency"] = json!("USD");
    let bob = app
        .post_order(&customer("bob"), Some("key-1"), &other)
        .await;
    assert_eq!(alice.status, StatusCode::ACCEPTED);
    assert_eq!(bob.status, StatusCode::ACCEPTED, "{}", bob.text);
    assert_ne!(alice.json()["order_id"], bob.json()["order_id"]);
}

#[tokio::test]
async fn a_kafka_failure_is_503_and_a_retry_with_the_same_key_publishes() {
    let app = TestApp::spawn().await;
    let alice = customer("alice");
    app.publisher.set_failing(true);
    let response = app.post_order(&alice, Some("key-1"), &order_body()).await;
    assert_eq!(
        response.error(StatusCode::SERVICE_UNAVAILABLE).0,
        "unavailable"
    );
    assert!(response.headers.contains_key("retry-after"));
    let (order_id, published): (uuid::Uuid, bool) = sqlx::query_as(
        "SELECT order_id, published FROM accepted_orders WHERE idempotency_key = 'key-1'",
    )
    .fetch_one(app.pool())
    .await
    .unwrap();
    assert!(!published, "the row stays unpublished");
    // Not acknowledged, so not an order the client was told about.
    let status = app
        .get(&format!("/v1/orders/{order_id}"), Some(&alice))
        .await;
    assert_eq!(status.status, StatusCode::NOT_FOUND);

    app.publisher.set_failing(false);
    let retry = app.post_order(&alice, Some("key-1"), &order_body()).await;
    assert_eq!(retry.status, StatusCode::ACCEPTED, "{}", retry.text);
    assert_eq!(retry.json()["order_id"], order_id.to_string());
    let published = app.publisher.published();
    assert_eq!(published.len(), 1);
    assert_eq!(published[0].0.key(), order_id.to_string());
}

#[tokio::test]
async fn concurrent_retries_of_one_key_agree_on_one_order() {
    let app = TestApp::spawn().await;
    let alice = customer("alice");
    let body = order_body();
    let attempts = (0..8).map(|_| app.post_order(&alice, Some("key-1"), &body));
    let responses = futures::future::join_all(attempts).await;
    let ids: std::collections::HashSet<String> = responses
        .iter()
        .map(|r| {
            assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text);
            r.json()["order_id"].as_str().unwrap().to_string()
        })
        .collect();
    assert_eq!(ids.len(), 1);
    // Re-publishes (if any) carry the same event id, so downstream dedupes them.
    let event_ids: std::collections::HashSet<String> = app
        .publisher
        .published()
        .iter()
        .map(|(e, _)| e.event_id().to_string())
        .collect();
    assert_eq!(event_ids.len(), 1);
}

#[tokio::test]
async fn without_a_key_development_sends_the_token_unsealed() {
    let mut settings = settings(1000, 1000);
    settings.payment_tokens = None;
    let app = TestApp::spawn_with(settings).await;
    let response = app
        .post_order(&customer("alice"), Some("key-1"), &order_body())
        .await;
    assert_eq!(response.status, StatusCode::ACCEPTED, "{}", response.text);
    let published = app.publisher.published();
    let (Event::OrderPlaced(event), _) = &published[0] else {
        panic!("{published:?}")
    };
    assert_eq!(event.payment_token, "tok_ok");
    assert_eq!(event.payment_token_key_id, None);
}
