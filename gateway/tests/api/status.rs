//! Reading an order: read-your-writes right after the 202, the read model
//! once it has the order, 404 to anyone but its owner or an admin, long-poll.

use std::time::{Duration, Instant};

use axum::http::StatusCode;

use crate::helpers::{TestApp, admin, customer, order_body, settings};

async fn place(app: &TestApp, sub: &str) -> String {
    let response = app
        .post_order(&customer(sub), Some("key-1"), &order_body())
        .await;
    assert_eq!(response.status, StatusCode::ACCEPTED, "{}", response.text);
    response.json()["order_id"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn right_after_its_202_an_order_is_pending_to_its_owner() {
    let app = TestApp::spawn().await;
    let order_id = place(&app, "alice").await;
    let response = app
        .get(&format!("/v1/orders/{order_id}"), Some(&customer("alice")))
        .await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.text);
    let body = response.json();
    assert_eq!(body["order_id"], order_id);
    assert_eq!(body["status"], "PENDING");
    assert!(body["reason"].is_null());
    assert!(body["total"].is_null());
    assert_eq!(body["currency"], "EUR");
    assert_eq!(
        body["items"],
        serde_json::json!([{"sku": "SKU-1", "quantity": 2, "unit_price": null}])
    );
    assert_eq!(body["history"][0]["status"], "PENDING");
    assert!(body["history"][0]["at"].as_str().unwrap().ends_with('Z'));
    assert!(body["cancellation"].is_null());
    let mut keys: Vec<&String> = body.as_object().unwrap().keys().collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "cancellation",
            "currency",
            "history",
            "items",
            "order_id",
            "reason",
            "status",
            "total"
        ]
    );
}

#[tokio::test]
async fn the_read_model_wins_once_it_has_the_order() {
    let app = TestApp::spawn().await;
    let order_id = place(&app, "alice").await;
    app.set_order_status(&order_id, "alice", "CONFIRMED").await;
    let body = app
        .get(&format!("/v1/orders/{order_id}"), Some(&customer("alice")))
        .await
        .json();
    assert_eq!(body["status"], "CONFIRMED");
    assert_eq!(body["total"], "39.98");
    assert_eq!(body["items"][0]["unit_price"], "19.99");
    assert_eq!(body["history"][1]["status"], "CONFIRMED");
}

#[tokio::test]
async fn another_customers_order_is_404_but_an_admin_sees_it() {
    let app = TestApp::spawn().await;
    let order_id = place(&app, "alice").await;
    let path = format!("/v1/orders/{order_id}");
    let response = app.get(&path, Some(&customer("mallory"))).await;
    assert_eq!(response.error(StatusCode::NOT_FOUND).0, "not_found");
    assert_eq!(app.get(&path, Some(&admin())).await.status, StatusCode::OK);
    // Also once the read model has it.
    app.set_order_status(&order_id, "alice", "CONFIRMED").await;
    assert_eq!(
        app.get(&path, Some(&customer("mallory"))).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(app.get(&path, Some(&admin())).await.status, StatusCode::OK);
    // Unknown ids are the same 404.
    let unknown = format!("/v1/orders/{}", uuid::Uuid::new_v4());
    assert_eq!(
        app.get(&unknown, Some(&customer("alice"))).await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn a_long_poll_returns_as_soon_as_the_status_changes() {
    let app = TestApp::spawn().await;
    let order_id = place(&app, "alice").await;
    let writer = async {
        tokio::time::sleep(Duration::from_millis(400)).await;
        app.set_order_status(&order_id, "alice", "RESERVED").await;
    };
    let started = Instant::now();
    let alice = customer("alice");
    let path = format!("/v1/orders/{order_id}?wait=20&seen=PENDING");
    let (response, ()) = tokio::join!(app.get(&path, Some(&alice)), writer);
    let elapsed = started.elapsed();
    assert_eq!(response.json()["status"], "RESERVED");
    assert!(elapsed >= Duration::from_millis(400), "{elapsed:?}");
    assert!(elapsed < Duration::from_secs(5), "{elapsed:?}");
}

#[tokio::test]
async fn a_long_poll_answers_the_current_state_when_the_wait_ends() {
    let app = TestApp::spawn().await;
    let order_id = place(&app, "alice").await;
    let alice = customer("alice");
    let started = Instant::now();
    let response = app
        .get(
            &format!("/v1/orders/{order_id}?wait=1&seen=PENDING"),
            Some(&alice),
        )
        .await;
    assert_eq!(response.status, StatusCode::OK);
    assert_eq!(response.json()["status"], "PENDING");
    assert!(started.elapsed() >= Duration::from_secs(1));

    // A status other than `seen`, or a final one, answers at once.
    app.set_order_status(&order_id, "alice", "CANCELLED").await;
    for seen in ["PENDING", "CANCELLED"] {
        let started = Instant::now();
        let response = app
            .get(
                &format!("/v1/orders/{order_id}?wait=30&seen={seen}"),
                Some(&alice),
            )
            .await;
        assert_eq!(response.json()["status"], "CANCELLED");
        assert!(started.elapsed() < Duration::from_secs(2), "seen={seen}");
    }
}

#[tokio::test]
async fn a_long_poll_answers_at_once_when_the_gateway_shuts_down() {
    let app = TestApp::spawn().await;
    let order_id = place(&app, "alice").await;
    let shutdown = app.state.shutdown_token();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(200)).await;
        shutdown.cancel();
    });
    let started = Instant::now();
    let response = app
        .get(
            &format!("/v1/orders/{order_id}?wait=30&seen=PENDING"),
            Some(&customer("alice")),
        )
        .await;
    assert_eq!(response.json()["status"], "PENDING");
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn many_long_polls_wake_only_for_their_own_order() {
    let mut settings = settings(1000, 1000);
    settings.limits.long_polls_per_subject = 32;
    let app = TestApp::spawn_with(settings).await;
    let changing = place(&app, "alice").await;
    let quiet = {
        let response = app
            .post_order(&customer("alice"), Some("key-2"), &order_body())
            .await;
        response.json()["order_id"].as_str().unwrap().to_string()
    };
    let alice = customer("alice");
    let poll = |order_id: String, wait: u64| {
        let app = &app;
        let alice = &alice;
        async move {
            let started = Instant::now();
            let path = format!("/v1/orders/{order_id}?wait={wait}&seen=PENDING");
            let status = app.get(&path, Some(alice)).await.json()["status"].clone();
            (status, started.elapsed())
        }
    };
    let waiters = futures::future::join_all(
        (0..10)
            .map(|_| poll(changing.clone(), 20))
            .chain((0..10).map(|_| poll(quiet.clone(), 2))),
    );
    let change = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        app.set_order_status(&changing, "alice", "CANCELLED").await;
    };
    let (results, ()) = tokio::join!(waiters, change);
    for (status, elapsed) in &results[..10] {
        assert_eq!(status, "CANCELLED");
        assert!(*elapsed < Duration::from_secs(5), "{elapsed:?}");
    }
    for (status, elapsed) in &results[10..] {
        assert_eq!(status, "PENDING");
        assert!(*elapsed >= Duration::from_secs(2), "{elapsed:?}");
    }
}

#[tokio::test]
async fn another_customers_long_poll_on_an_order_just_accepted_is_404_at_once() {
    let app = TestApp::spawn().await;
    let order_id = place(&app, "alice").await;
    let path = format!("/v1/orders/{order_id}?wait=30&seen=PENDING");
    let started = Instant::now();
    let response = app.get(&path, Some(&customer("mallory"))).await;
    assert_eq!(response.error(StatusCode::NOT_FOUND).0, "not_found");
    assert!(started.elapsed() < Duration::from_secs(2));
    // The same 404 as for an id nobody placed.
    let unknown = format!("/v1/orders/{}?wait=30&seen=PENDING", uuid::Uuid::new_v4());
    let other = app.get(&unknown, Some(&customer("mallory"))).await;
    assert_eq!(other.status, StatusCode::NOT_FOUND);
    assert_eq!(
        response.json()["error"]["message"]
            .as_str()
            .unwrap()
            .replace(&order_id, "ID"),
        other.json()["error"]["message"]
            .as_str()
            .unwrap()
            .replace(unknown.split(['/', '?']).nth(3).unwrap(), "ID")
    );
    // An admin may wait on it.
    let response = app
        .get(
            &format!("/v1/orders/{order_id}?wait=1&seen=PENDING"),
            Some(&admin()),
        )
        .await;
    assert_eq!(response.json()["status"], "PENDING");
}

#[tokio::test]
async fn a_long_poll_seeing_another_status_than_pending_before_the_read_model_has_it_answers_at_once()
 {
    let app = TestApp::spawn().await;
    let order_id = place(&app, "alice").await;
    let started = Instant::now();
    let response = app
        .get(
            &format!("/v1/orders/{order_id}?wait=30&seen=RESERVED"),
            Some(&customer("alice")),
        )
        .await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.text);
    assert_eq!(response.json()["status"], "PENDING");
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn a_status_read_earlier_is_never_the_answer_only_a_read_after_the_request_is() {
    let app = TestApp::spawn().await;
    let order_id = place(&app, "alice").await;
    let alice = customer("alice");
    // The poller reads RESERVED and the gateway remembers it.
    let writer = async {
        tokio::time::sleep(Duration::from_millis(200)).await;
        app.set_order_status(&order_id, "alice", "RESERVED").await;
    };
    let path = format!("/v1/orders/{order_id}?wait=20&seen=PENDING");
    let (response, ()) = tokio::join!(app.get(&path, Some(&alice)), writer);
    assert_eq!(response.json()["status"], "RESERVED");
    // It moves on while nobody watches.
    app.set_order_status(&order_id, "alice", "CONFIRMED").await;
    for seen in ["PENDING", "RESERVED", "CONFIRMED"] {
        let started = Instant::now();
        let response = app
            .get(
                &format!("/v1/orders/{order_id}?wait=30&seen={seen}"),
                Some(&alice),
            )
            .await;
        assert_eq!(response.json()["status"], "CONFIRMED", "seen={seen}");
        assert!(started.elapsed() < Duration::from_secs(2), "seen={seen}");
    }
}

#[tokio::test]
async fn an_order_another_gateway_accepted_is_read_then_watched() {
    let app = TestApp::spawn().await;
    let order_id = uuid::Uuid::new_v4().to_string();
    app.set_order_status(&order_id, "alice", "RESERVED").await;
    let path = format!("/v1/orders/{order_id}?wait=20&seen=RESERVED");
    assert_eq!(
        app.get(&path, Some(&customer("mallory"))).await.status,
        StatusCode::NOT_FOUND
    );
    let writer = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        app.set_order_status(&order_id, "alice", "CONFIRMED").await;
    };
    let alice = customer("alice");
    let started = Instant::now();
    let (response, ()) = tokio::join!(app.get(&path, Some(&alice)), writer);
    assert_eq!(response.json()["status"], "CONFIRMED");
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert!(started.elapsed() < Duration::from_secs(5));
    // Read once, its owner is remembered: still 404 to anyone else.
    assert_eq!(
        app.get(&path, Some(&customer("mallory"))).await.status,
        StatusCode::NOT_FOUND
    );
}
