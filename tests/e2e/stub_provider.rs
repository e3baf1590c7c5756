//! A payment provider speaking the documented HTTP API
//! (`workers/payment/README.md`) on 127.0.0.1:0, for tests that set
//! `CHORUS_PAYMENT_PROVIDER=http`: it records every request, answers an
//! authorization by the token it carries (as scripted, or `authorized`),
//! and takes every void.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use serde_json::{Value, json};

/// How the stub answers an authorization carrying a token.
#[derive(Debug, Clone)]
pub enum Scripted {
    /// This status and body.
    Answer(StatusCode, String),
    /// Nothing for this long (longer than the worker waits), then `authorized`.
    Stall(Duration),
}

/// One request the stub provider received.
#[derive(Debug, Clone)]
pub struct Request {
    pub path: &'static str,
    pub idempotency_key: String,
    pub body: Value,
}

#[derive(Clone)]
pub struct StubProvider {
    /// For `CHORUS_PAYMENT_URL`.
    pub url: String,
    received: Arc<Mutex<Vec<Request>>>,
    /// What an authorization not refused is answered with.
    authorization_id: String,
    /// Token → how its authorizations are answered.
    scripts: Arc<HashMap<String, Scripted>>,
}

impl StubProvider {
    /// A provider that authorizes every request with `authorization_id`,
    /// except those whose token is in `scripts`, answered as scripted.
    pub async fn start(
        authorization_id: String,
        scripts: HashMap<String, Scripted>,
    ) -> StubProvider {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let provider = StubProvider {
            url: format!("http://{}", listener.local_addr().unwrap()),
            received: Arc::default(),
            authorization_id,
            scripts: Arc::new(scripts),
        };
        let app = Router::new()
            .route("/v1/authorizations", post(authorize))
            .route("/v1/voids", post(void))
            .with_state(provider.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        provider
    }

    fn record(&self, path: &'static str, headers: &HeaderMap, body: &Bytes) -> Value {
        let body: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
        self.received.lock().unwrap().push(Request {
            path,
            idempotency_key: headers
                .get("idempotency-key")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_string(),
            body: body.clone(),
        });
        body
    }

    pub fn received(&self) -> Vec<Request> {
        self.received.lock().unwrap().clone()
    }
}

async fn authorize(
    State(provider): State<StubProvider>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, String) {
    let body = provider.record("/v1/authorizations", &headers, &body);
    match body["token"]
        .as_str()
        .and_then(|token| provider.scripts.get(token))
    {
        Some(Scripted::Answer(status, body)) => return (*status, body.clone()),
        Some(Scripted::Stall(pause)) => tokio::time::sleep(*pause).await,
        None => {}
    }
    // serde_json writes a NUL as the JSON escape `\u0000`, as JSON allows.
    let answer = json!({"status": "authorized", "authorization_id": provider.authorization_id});
    (StatusCode::CREATED, answer.to_string())
}

async fn void(State(provider): State<StubProvider>, headers: HeaderMap, body: Bytes) -> StatusCode {
    provider.record("/v1/voids", &headers, &body);
    StatusCode::OK
}
