//! The HTTP provider against stub providers (axum on 127.0.0.1:0), retried
//! by the handler's retry loop.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use chorus_payment::{
    AuthorizeAnswer, HttpProvider, PaymentAnswer, PaymentCall, PaymentHandler, RetryPolicy,
};
use chorus_runtime::Handler;

use crate::support::answer;

/// What the stub received.
#[derive(Debug, Clone)]
struct Call {
    idempotency_key: Option<String>,
    body: serde_json::Value,
}

/// The stub's answer to its n-th call (0-based): status, delay, body.
type Script = dyn Fn(usize) -> (u16, Duration, &'static str) + Send + Sync;

#[derive(Clone)]
struct Stub {
    calls: Arc<Mutex<Vec<Call>>>,
    script: Arc<Script>,
}

async fn authorize(
    State(stub): State<Stub>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, String) {
    let n = {
        let mut calls = stub.calls.lock().unwrap();
        calls.push(Call {
            idempotency_key: headers
                .get("idempotency-key")
                .map(|v| v.to_str().unwrap().to_string()),
            body: serde_json::from_slice(&body).unwrap(),
        });
        calls.len() - 1
    };
    let (status, delay, reply) = (stub.script)(n);
    tokio::time::sleep(delay).await;
    (StatusCode::from_u16(status).unwrap(), reply.to_string())
}

/// Serves `script` and returns the provider's base URL and the calls it records.
async fn serve(
    script: impl Fn(usize) -> (u16, Duration, &'static str) + Send + Sync + 'static,
) -> (String, Arc<Mutex<Vec<Call>>>) {
    let stub = Stub {
        calls: Arc::default(),
        script: Arc::new(script),
    };
    let calls = stub.calls.clone();
    let app = Router::new()
        .route("/v1/authorizations", post(authorize))
        .route("/v1/voids", post(authorize))
        .with_state(stub);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, calls)
}

fn request() -> PaymentCall {
    PaymentCall::Authorize {
        order_id: "order-7".into(),
        amount: "19.99".parse().unwrap(),
        currency: "EUR".into(),
        token: "tok_ok".into(),
        token_key_id: None,
        traceparent: None,
        cause_event_id: None,
    }
}

/// Makes the authorization call until answered; the answer and the attempts.
async fn ask(provider: HttpProvider, policy: &RetryPolicy) -> (AuthorizeAnswer, u32) {
    let handler = PaymentHandler::new(provider, *policy);
    match answer(handler.calls(), &request()).await {
        (PaymentAnswer::Authorize { answer, attempts }, calls) => {
            assert_eq!(attempts, calls);
            (answer, attempts)
        }
        other => panic!("{other:?}"),
    }
}

const QUICK: RetryPolicy = RetryPolicy {
    max_attempts: 4,
    first_backoff: Duration::from_millis(10),
    max_backoff: Duration::from_millis(40),
};

const AUTHORIZED: &str = r#"{"status":"authorized","authorization_id":"auth_123"}"#;

#[tokio::test]
async fn an_approval_is_an_authorization_and_the_request_is_the_documented_json() {
    let (url, calls) = serve(|_| (201, Duration::ZERO, AUTHORIZED)).await;
    let provider = HttpProvider::new(&url, Duration::from_secs(2)).unwrap();

    let (answer, attempts) = ask(provider, &QUICK).await;

    assert_eq!(
        answer,
        AuthorizeAnswer::Authorized {
            authorization_id: "auth_123".into()
        }
    );
    assert_eq!(attempts, 1);
    let calls = calls.lock().unwrap();
    assert_eq!(calls[0].idempotency_key.as_deref(), Some("order-7"));
    assert_eq!(
        calls[0].body,
        serde_json::json!({"amount": "19.99", "currency": "EUR", "token": "tok_ok", "reference": "order-7"})
    );
}

#[tokio::test]
async fn a_decline_is_final_and_not_retried() {
    let (url, calls) = serve(|_| {
        (
            402,
            Duration::ZERO,
            r#"{"status":"declined","reason":"insufficient_funds"}"#,
        )
    })
    .await;
    let provider = HttpProvider::new(&url, Duration::from_secs(2)).unwrap();

    let (answer, _) = ask(provider, &QUICK).await;

    assert_eq!(
        answer,
        AuthorizeAnswer::Declined {
            detail: "insufficient_funds".into()
        }
    );
    assert_eq!(calls.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn a_503_then_200_is_retried_under_the_same_idempotency_key() {
    let (url, calls) = serve(|n| match n {
        0 => (503, Duration::ZERO, "busy"),
        _ => (200, Duration::ZERO, AUTHORIZED),
    })
    .await;
    let provider = HttpProvider::new(&url, Duration::from_secs(2)).unwrap();

    let (answer, attempts) = ask(provider, &QUICK).await;

    assert!(matches!(answer, AuthorizeAnswer::Authorized { .. }));
    assert_eq!(attempts, 2);
    let keys: Vec<_> = calls
        .lock()
        .unwrap()
        .iter()
        .map(|c| c.idempotency_key.clone())
        .collect();
    assert_eq!(
        keys,
        [Some("order-7".to_string()), Some("order-7".to_string())]
    );
}

#[tokio::test]
async fn a_provider_that_always_times_out_is_unavailable_after_bounded_attempts() {
    let (url, calls) = serve(|_| (200, Duration::from_secs(5), AUTHORIZED)).await;
    let provider = HttpProvider::new(&url, Duration::from_millis(100)).unwrap();

    let (answer, attempts) = ask(provider, &QUICK).await;

    let AuthorizeAnswer::Unavailable { detail } = &answer else {
        panic!("expected unavailable, got {answer:?}");
    };
    assert!(detail.contains("after 4 attempts"), "{detail}");
    assert_eq!(attempts, 4);
    assert_eq!(calls.lock().unwrap().len(), 4);
}

#[tokio::test]
async fn a_provider_that_is_not_listening_is_unavailable() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let provider = HttpProvider::new(&url, Duration::from_millis(500)).unwrap();
    let policy = RetryPolicy {
        max_attempts: 2,
        ..QUICK
    };

    let (answer, attempts) = ask(provider, &policy).await;

    assert!(matches!(answer, AuthorizeAnswer::Unavailable { .. }));
    assert_eq!(attempts, 2);
}

#[tokio::test]
async fn a_void_goes_to_the_documented_endpoint_under_the_order_id() {
    let (url, calls) = serve(|n| match n {
        0 => (503, Duration::ZERO, "busy"),
        _ => (200, Duration::ZERO, r#"{"status":"voided"}"#),
    })
    .await;
    let handler = PaymentHandler::new(
        HttpProvider::new(&url, Duration::from_secs(2)).unwrap(),
        QUICK,
    );
    let void = PaymentCall::Void {
        order_id: "order-7".into(),
        authorization_id: Some("auth_123".into()),
        traceparent: None,
        cause_event_id: None,
    };
    let (answered, attempts) = answer(handler.calls(), &void).await;
    assert_eq!(
        answered,
        PaymentAnswer::Void(chorus_payment::VoidAnswer::Voided)
    );
    assert_eq!(attempts, 2, "a 503 is asked again");
    let calls = calls.lock().unwrap();
    assert_eq!(calls[1].idempotency_key.as_deref(), Some("order-7"));
    assert_eq!(
        calls[1].body,
        serde_json::json!({"reference": "order-7", "authorization_id": "auth_123"})
    );
}
