//! A provider's answer the payment worker cannot keep leaves no charge
//! standing: an authorization id PostgreSQL refuses (a NUL inside it), or
//! one it stores but no consumer accepts (longer than the shared rule
//! allows), is voided by the idempotency key (the order id) and the order
//! ends CANCELLED `payment_unavailable` with its stock released, without
//! waiting for its deadline and without the worker dying.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use chorus_avro::validate::fields::MAX_AUTHORIZATION_ID_BYTES;
use chorus_tests::saga::{Saga, sku};
use serde_json::{Value, json};

/// One request the stub provider received.
#[derive(Debug, Clone)]
struct Request {
    path: &'static str,
    idempotency_key: String,
    body: Value,
}

#[derive(Clone)]
struct Provider {
    received: Arc<Mutex<Vec<Request>>>,
    /// What every authorization is answered with.
    authorization_id: String,
}

impl Provider {
    fn record(&self, path: &'static str, headers: &HeaderMap, body: &Bytes) {
        self.received.lock().unwrap().push(Request {
            path,
            idempotency_key: headers
                .get("idempotency-key")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_string(),
            body: serde_json::from_slice(body).unwrap_or(Value::Null),
        });
    }

    fn received(&self) -> Vec<Request> {
        self.received.lock().unwrap().clone()
    }
}

async fn authorize(
    State(provider): State<Provider>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, String) {
    provider.record("/v1/authorizations", &headers, &body);
    // serde_json writes a NUL as the JSON escape `\u0000`, as JSON allows.
    let answer = json!({"status": "authorized", "authorization_id": provider.authorization_id});
    (StatusCode::CREATED, answer.to_string())
}

async fn void(State(provider): State<Provider>, headers: HeaderMap, body: Bytes) -> StatusCode {
    provider.record("/v1/voids", &headers, &body);
    StatusCode::OK
}

/// A provider speaking the documented HTTP API on 127.0.0.1:0 that
/// authorizes every request with `authorization_id` and takes every void.
async fn provider(authorization_id: String) -> (String, Provider) {
    let provider = Provider {
        received: Arc::default(),
        authorization_id,
    };
    let app = Router::new()
        .route("/v1/authorizations", post(authorize))
        .route("/v1/voids", post(void))
        .with_state(provider.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, provider)
}

/// The payment row's status once it is no longer waiting for a call (or
/// after 30 s).
async fn settled_payment(saga: &Saga, order_id: &str) -> Option<(String, Option<String>)> {
    let db = saga.db("payment").await;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let row: Option<(String, Option<String>)> =
            sqlx::query_as("SELECT status, authorization_id FROM payments WHERE order_id = $1")
                .bind(order_id)
                .fetch_optional(&db)
                .await
                .unwrap();
        let open = row
            .as_ref()
            .is_none_or(|(status, _)| status == "authorizing" || status == "voiding");
        if !open || Instant::now() >= deadline {
            return row;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Places one order against a provider that authorizes with
/// `authorization_id` and checks that it ends as designed.
async fn an_answer_that_cannot_be_kept_is_voided(authorization_id: String) {
    let (url, provider) = provider(authorization_id).await;
    // A deadline short enough that an order left waiting would end as
    // `timeout` well within the wait below, instead of passing slowly.
    let mut saga = Saga::start_with(&[
        ("CHORUS_PAYMENT_PROVIDER", "http"),
        ("CHORUS_PAYMENT_URL", url.as_str()),
        ("CHORUS_ORDER_DEADLINE_SECS", "8"),
    ])
    .await;
    let toaster = sku("TOASTER");
    saga.set_stock(&toaster, 5, "30.00").await;

    let order_id = saga.place_ok("hazel", &[(&toaster, 2)], "tok_ok").await;
    let order = saga
        .wait_final("hazel", &order_id, Duration::from_secs(60))
        .await;

    assert_eq!(
        (order["status"].as_str(), order["reason"].as_str()),
        (Some("CANCELLED"), Some("payment_unavailable")),
        "{order}\nprovider saw: {:?}\npayment log:\n{}",
        provider.received(),
        saga.log("payment")
    );
    let received = provider.received();
    assert!(
        received
            .iter()
            .any(|r| r.path == "/v1/authorizations" && r.idempotency_key == order_id),
        "the provider was asked to authorize {order_id}: {received:?}"
    );
    let voids: Vec<&Request> = received
        .iter()
        .filter(|r| r.path == "/v1/voids" && r.idempotency_key == order_id)
        .collect();
    assert!(
        !voids.is_empty(),
        "no void asked under the key {order_id}: {received:?}"
    );
    assert_eq!(voids[0].body["reference"], order_id.as_str(), "{voids:?}");
    assert_eq!(
        saga.settled_stock(&toaster).await,
        (5, 0, 0),
        "the reserved stock is released"
    );
    assert_eq!(
        settled_payment(&saga, &order_id).await,
        Some(("unavailable".to_string(), None)),
        "the payment row"
    );
    // The worker is still the process the test started, and ready.
    saga.wait_ready("payment").await;
}

#[tokio::test]
async fn an_authorization_id_postgres_refuses_is_voided_and_the_order_cancelled() {
    an_answer_that_cannot_be_kept_is_voided("auth_\u{0}_nul".to_string()).await;
}

#[tokio::test]
async fn an_authorization_id_longer_than_the_shared_rule_is_voided_and_the_order_cancelled() {
    an_answer_that_cannot_be_kept_is_voided("a".repeat(MAX_AUTHORIZATION_ID_BYTES + 1)).await;
}
