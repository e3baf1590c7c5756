//! Asking to cancel an order: its owner or an admin gets 202 with the
//! order's view and an `OrderCancellationRequested` on Kafka; anyone else a
//! 404; an order already final a 409 `already_final`.

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use chorus_avro::Event;

use crate::helpers::{TestApp, TestResponse, admin, customer, order_body};

async fn place(app: &TestApp, sub: &str) -> String {
    let response = app
        .post_order(&customer(sub), Some("key-1"), &order_body())
        .await;
    assert_eq!(response.status, StatusCode::ACCEPTED, "{}", response.text);
    response.json()["order_id"].as_str().unwrap().to_string()
}

async fn cancel(app: &TestApp, order_id: &str, token: &str) -> TestResponse {
    let request = Request::builder()
        .method(Method::POST)
        .uri(format!("/v1/orders/{order_id}/cancel"))
        .header("authorization", format!("Bearer {token}"))
        .body(Body::empty())
        .unwrap();
    app.send(request).await
}

fn cancellations(app: &TestApp) -> Vec<chorus_avro::OrderCancellationRequested> {
    app.publisher
        .published()
        .into_iter()
        .filter_map(|(event, _)| match event {
            Event::OrderCancellationRequested(e) => Some(e),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn the_owner_or_an_admin_may_ask_and_gets_the_current_view() {
    let app = TestApp::spawn().await;
    let order_id = place(&app, "alice").await;
    let response = cancel(&app, &order_id, &customer("alice")).await;
    assert_eq!(response.status, StatusCode::ACCEPTED, "{}", response.text);
    let view = response.json();
    assert_eq!(view["order_id"], order_id);
    assert_eq!(view["status"], "PENDING");
    assert!(view["cancellation"].is_null(), "{view}");

    let response = cancel(&app, &order_id, &admin()).await;
    assert_eq!(response.status, StatusCode::ACCEPTED, "{}", response.text);
    let requests = cancellations(&app);
    assert_eq!(requests.len(), 2);
    for (request, by) in requests.iter().zip(["alice", "ops"]) {
        assert_eq!(request.order_id, order_id);
        assert_eq!(request.correlation_id, order_id);
        assert_eq!(request.customer_id, "alice", "the order's owner");
        assert_eq!(request.requested_by, by);
    }
    // Asking again is the same request downstream.
    cancel(&app, &order_id, &customer("alice")).await;
    let requests = cancellations(&app);
    assert_eq!(requests[2].event_id, requests[0].event_id);
    assert_ne!(requests[1].event_id, requests[0].event_id);
}

#[tokio::test]
async fn anyone_else_gets_404_and_nothing_is_emitted() {
    let app = TestApp::spawn().await;
    let order_id = place(&app, "alice").await;
    let response = cancel(&app, &order_id, &customer("mallory")).await;
    assert_eq!(response.error(StatusCode::NOT_FOUND).0, "not_found");
    let unknown = uuid::Uuid::new_v4().to_string();
    let response = cancel(&app, &unknown, &customer("alice")).await;
    assert_eq!(response.error(StatusCode::NOT_FOUND).0, "not_found");
    let response = cancel(&app, &order_id, "not-a-token").await;
    response.error(StatusCode::UNAUTHORIZED);
    assert!(cancellations(&app).is_empty());
}

#[tokio::test]
async fn a_final_order_is_409_already_final() {
    let app = TestApp::spawn().await;
    for status in ["CONFIRMED", "CANCELLED"] {
        let order_id = place(&app, &format!("alice-{status}")).await;
        app.set_order_status(&order_id, &format!("alice-{status}"), status)
            .await;
        let response = cancel(&app, &order_id, &admin()).await;
        let (code, field) = response.error(StatusCode::CONFLICT);
        assert_eq!((code.as_str(), field), ("already_final", None));
    }
    assert!(cancellations(&app).is_empty());
    // Not final yet in the read model: accepted.
    let order_id = place(&app, "bob").await;
    app.set_order_status(&order_id, "bob", "RESERVED").await;
    let response = cancel(&app, &order_id, &customer("bob")).await;
    assert_eq!(response.status, StatusCode::ACCEPTED, "{}", response.text);
    assert_eq!(response.json()["status"], "RESERVED");
}

#[tokio::test]
async fn kafka_down_is_503() {
    let app = TestApp::spawn().await;
    let order_id = place(&app, "alice").await;
    app.publisher.set_failing(true);
    let response = cancel(&app, &order_id, &customer("alice")).await;
    assert_eq!(
        response.error(StatusCode::SERVICE_UNAVAILABLE).0,
        "unavailable"
    );
}

#[tokio::test]
async fn the_view_shows_what_became_of_the_request() {
    let app = TestApp::spawn().await;
    let order_id = place(&app, "alice").await;
    app.set_order_status(&order_id, "alice", "CONFIRMED").await;
    app.set_cancellation(&order_id, "rejected").await;
    let view = app
        .get(&format!("/v1/orders/{order_id}"), Some(&customer("alice")))
        .await
        .json();
    assert_eq!(view["status"], "CONFIRMED");
    assert_eq!(view["cancellation"], "rejected");
}
