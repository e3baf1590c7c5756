//! The limits as a client meets them, in process with a real database: a
//! customer's orders not yet final are capped (429 `open_order_limit`, a
//! retry of a placed order still answered), long-polls are capped per
//! subject and in all (429 `long_poll_limit` with `Retry-After`, another
//! customer still served), requests in flight are capped (503 `overloaded`)
//! and timed out (408 `request_timeout`), and a client address's rate is
//! limited before any token is read (429 `address_rate_limited`).

use std::net::SocketAddr;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use chorus_gateway::Settings;
use chorus_gateway::limits::client_addr::PeerAddr;
use serde_json::Value;

use crate::helpers::{TestApp, TestResponse, customer, order_body, settings};

fn with_limits(change: impl FnOnce(&mut chorus_gateway::limits::Limits)) -> Settings {
    let mut settings = settings(1000, 1000);
    change(&mut settings.limits);
    settings
}

/// Places an order for `who` under `key` and returns its id.
async fn place(app: &TestApp, who: &str, key: &str) -> String {
    let response = app
        .post_order(&customer(who), Some(key), &order_body())
        .await;
    assert_eq!(response.status, StatusCode::ACCEPTED, "{}", response.text);
    response.json()["order_id"].as_str().unwrap().to_string()
}

fn retry_after(response: &TestResponse) -> u64 {
    response
        .headers
        .get("retry-after")
        .unwrap_or_else(|| panic!("no Retry-After: {}", response.text))
        .to_str()
        .unwrap()
        .parse()
        .unwrap()
}

fn long_poll(order_id: &str, wait: u64) -> String {
    format!("/v1/orders/{order_id}?wait={wait}&seen=PENDING")
}

/// Over the cap of open orders: 429 naming the limit; answered again.
pub(crate) async fn open_order_refusal() -> TestResponse {
    let app = TestApp::spawn_with(with_limits(|l| l.open_orders_per_customer = 1)).await;
    let first = place(&app, "alice", "k1").await;
    app.set_order_status(&first, "alice", "PENDING").await;
    app.post_order(&customer("alice"), Some("k2"), &order_body())
        .await
}

#[tokio::test]
async fn a_customers_orders_not_yet_final_are_capped() {
    let app = TestApp::spawn_with(with_limits(|l| l.open_orders_per_customer = 2)).await;
    let one = place(&app, "alice", "k1").await;
    let two = place(&app, "alice", "k2").await;
    // The order service has recorded both (one still PENDING, one RESERVED).
    app.set_order_status(&one, "alice", "PENDING").await;
    app.set_order_status(&two, "alice", "RESERVED").await;

    let refused = app
        .post_order(&customer("alice"), Some("k3"), &order_body())
        .await;
    assert_eq!(
        refused.error(StatusCode::TOO_MANY_REQUESTS).0,
        "open_order_limit"
    );
    let message = refused.json()["error"]["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(message.contains("2 orders not yet final"), "{message}");
    assert!(retry_after(&refused) >= 1);
    // A retry of an order already placed is no new order: its 202 again.
    let again = app
        .post_order(&customer("alice"), Some("k1"), &order_body())
        .await;
    assert_eq!(again.status, StatusCode::ACCEPTED, "{}", again.text);
    assert_eq!(again.json()["order_id"], Value::from(one.clone()));
    // Other customers are not held to alice's orders.
    place(&app, "bob", "k1").await;
    // Once one of hers is final, she may place another.
    app.set_order_status(&one, "alice", "CONFIRMED").await;
    place(&app, "alice", "k3").await;
}

/// A long-poll of `who` held for `wait` seconds while `then` runs.
async fn while_polling<T>(
    app: &TestApp,
    who: &str,
    order_id: &str,
    then: impl std::future::Future<Output = T>,
) -> (TestResponse, T) {
    let token = customer(who);
    let path = long_poll(order_id, 2);
    let poll = app.get(&path, Some(&token));
    let later = async {
        tokio::time::sleep(Duration::from_millis(200)).await;
        then.await
    };
    tokio::join!(poll, later)
}

/// A second long-poll of one subject over a cap of one.
pub(crate) async fn long_poll_refusal() -> TestResponse {
    let app = TestApp::spawn_with(with_limits(|l| l.long_polls_per_subject = 1)).await;
    let order = place(&app, "alice", "k1").await;
    let alice = customer("alice");
    let (_, refused) = while_polling(
        &app,
        "alice",
        &order,
        app.get(&long_poll(&order, 2), Some(&alice)),
    )
    .await;
    refused
}

#[tokio::test]
async fn long_polls_are_capped_per_subject_and_in_all() {
    let app = TestApp::spawn_with(with_limits(|l| {
        l.long_polls = 2;
        l.long_polls_per_subject = 1;
    }))
    .await;
    let mine = place(&app, "alice", "k1").await;
    let bobs = place(&app, "bob", "k1").await;
    let carols = place(&app, "carol", "k1").await;
    let (alice, bob, carol) = (customer("alice"), customer("bob"), customer("carol"));
    let (held, (second, others)) = while_polling(&app, "alice", &mine, async {
        let second = app.get(&long_poll(&mine, 2), Some(&alice)).await;
        // Bob is served while alice is at her cap; with his, the total is reached.
        let bobs_path = long_poll(&bobs, 1);
        let (bobs_poll, carols_refused) = tokio::join!(app.get(&bobs_path, Some(&bob)), async {
            tokio::time::sleep(Duration::from_millis(200)).await;
            app.get(&long_poll(&carols, 1), Some(&carol)).await
        });
        // A plain read is no long-poll and is served.
        let read = app.get(&format!("/v1/orders/{mine}"), Some(&alice)).await;
        (second, (bobs_poll, carols_refused, read))
    })
    .await;
    assert_eq!(held.status, StatusCode::OK, "{}", held.text);
    assert_eq!(
        second.error(StatusCode::TOO_MANY_REQUESTS).0,
        "long_poll_limit"
    );
    assert_eq!(retry_after(&second), 1);
    let (bobs_poll, carols_refused, read) = others;
    assert_eq!(bobs_poll.status, StatusCode::OK, "{}", bobs_poll.text);
    assert_eq!(
        carols_refused.error(StatusCode::TOO_MANY_REQUESTS).0,
        "long_poll_limit"
    );
    assert_eq!(read.status, StatusCode::OK, "{}", read.text);
    // Once they have answered, places are free again.
    let after = app.get(&long_poll(&mine, 0), Some(&alice)).await;
    assert_eq!(after.status, StatusCode::OK);
}

/// A request while the only place in flight is taken by a long-poll.
pub(crate) async fn overloaded_refusal() -> TestResponse {
    let app = TestApp::spawn_with(with_limits(|l| {
        l.max_in_flight = 1;
        l.long_polls = 1;
    }))
    .await;
    let order = place(&app, "alice", "k1").await;
    let (_, refused) = while_polling(
        &app,
        "alice",
        &order,
        app.get("/v1/orders/not-an-order", Some(&customer("bob"))),
    )
    .await;
    refused
}

#[tokio::test]
async fn requests_beyond_the_places_in_flight_answer_503_overloaded() {
    let refused = overloaded_refusal().await;
    assert_eq!(
        refused.error(StatusCode::SERVICE_UNAVAILABLE).0,
        "overloaded"
    );
    assert_eq!(retry_after(&refused), 1);
}

/// A long-poll outlasting a short request timeout.
pub(crate) async fn timed_out() -> TestResponse {
    let app = TestApp::spawn_with(with_limits(|l| {
        l.request_timeout = Duration::from_millis(300)
    }))
    .await;
    let order = place(&app, "alice", "k1").await;
    app.get(&long_poll(&order, 2), Some(&customer("alice")))
        .await
}

#[tokio::test]
async fn a_request_over_the_timeout_answers_408() {
    let response = timed_out().await;
    assert_eq!(
        response.error(StatusCode::REQUEST_TIMEOUT).0,
        "request_timeout"
    );
}

/// Requests from one address, past its rate, without any token.
pub(crate) async fn address_refusal() -> TestResponse {
    let app = TestApp::without_db_with(with_limits(|l| {
        l.addr_rate_per_sec = 1;
        l.addr_rate_burst = 2;
    }));
    let from = |addr: &str| {
        let mut request = Request::get("/v1/orders/not-an-order")
            .body(Body::empty())
            .unwrap();
        request
            .extensions_mut()
            .insert(PeerAddr(addr.parse::<SocketAddr>().unwrap()));
        request
    };
    for _ in 0..2 {
        let unauthenticated = app.send(from("198.51.100.7:40000")).await;
        assert_eq!(unauthenticated.status, StatusCode::UNAUTHORIZED);
    }
    let refused = app.send(from("198.51.100.7:40001")).await;
    // Another address has its own budget.
    let other = app.send(from("203.0.113.5:40000")).await;
    assert_eq!(other.status, StatusCode::UNAUTHORIZED);
    refused
}

#[tokio::test]
async fn an_address_past_its_rate_is_refused_before_its_token_is_read() {
    let refused = address_refusal().await;
    assert_eq!(
        refused.error(StatusCode::TOO_MANY_REQUESTS).0,
        "address_rate_limited"
    );
    assert!(retry_after(&refused) >= 1);
}
