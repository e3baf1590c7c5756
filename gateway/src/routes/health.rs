//! `/healthz` (the process serves), `/readyz` (every dependency answers:
//! Kafka, the schema registry, each database) and `/metrics`.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use chorus_platform::health;
use serde_json::{Value, json};

use crate::AppState;

pub async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

/// 200 when every dependency answers; otherwise 503 naming each one that
/// failed, in the error shape plus a `checks` map of all of them.
pub async fn readyz(State(state): State<AppState>) -> Response {
    let (mut checks, databases) = tokio::join!(
        state.inner.publisher.readiness(),
        state.inner.store.readiness()
    );
    checks.extend(databases);
    let failed: Vec<String> = checks
        .iter()
        .filter_map(|(name, result)| result.as_ref().err().map(|e| format!("{name}: {e}")))
        .collect();
    let report = health::report(&checks);
    if failed.is_empty() {
        (
            StatusCode::OK,
            Json(json!({"status": "ready", "checks": report})),
        )
            .into_response()
    } else {
        let body = json!({
            "error": {"code": "not_ready", "message": failed.join("; "), "field": null},
            "checks": report,
        });
        (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response()
    }
}

pub async fn metrics(State(state): State<AppState>) -> Response {
    (
        [(CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        state.inner.metrics.render(),
    )
        .into_response()
}
