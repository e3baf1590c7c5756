//! `/healthz` (the process serves), `/readyz` (every dependency answers:
//! Kafka, the schema registry, each database) and `/metrics`. Readiness comes
//! from the shared, cached [`Readiness`](chorus_platform::health::Readiness):
//! a burst of calls costs one round of probes, and an answer names the
//! dependencies that failed, never why (hosts and errors go to the log).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::http::header::{CONTENT_TYPE, RETRY_AFTER};
use axum::response::{IntoResponse, Response};
use chorus_platform::health;
use serde_json::{Value, json};

use crate::AppState;

pub async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

/// 200 when every dependency answers; otherwise 503 naming each one that
/// failed, in the error shape plus a `checks` map of all of them
/// (`"ok"` or `"unavailable"`).
pub async fn readyz(State(state): State<AppState>) -> Response {
    let checks = state.inner.readiness.checks().await;
    let failed: Vec<&str> = checks
        .iter()
        .filter(|(_, result)| result.is_err())
        .map(|(name, _)| *name)
        .collect();
    let report = health::report(&checks);
    if failed.is_empty() {
        (
            StatusCode::OK,
            Json(json!({"status": "ready", "checks": report})),
        )
            .into_response()
    } else {
        let message = format!("not ready: {} unavailable", failed.join(", "));
        let body = json!({
            "error": {"code": "not_ready", "message": message, "field": null},
            "checks": report,
        });
        (
            StatusCode::SERVICE_UNAVAILABLE,
            [(RETRY_AFTER, "1")],
            Json(body),
        )
            .into_response()
    }
}

pub async fn metrics(State(state): State<AppState>) -> Response {
    (
        [(CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        state.inner.metrics.render(),
    )
        .into_response()
}
