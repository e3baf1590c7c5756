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
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use crate::AppState;
use crate::error::{ErrorCode, ErrorDetail};

/// `{"status":"ok"}`.
#[derive(Serialize, ToSchema)]
pub struct Health {
    #[schema(value_type = String, example = "ok")]
    status: &'static str,
}

/// Each dependency: `"ok"` or `"unavailable"`; with `error` naming the ones that failed.
#[derive(Serialize, ToSchema)]
pub struct ReadinessReport {
    /// `ready` when every dependency answers.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, example = "ready")]
    status: Option<&'static str>,
    /// Names the dependencies that failed (code `not_ready`).
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<ErrorDetail>,
    #[schema(value_type = std::collections::BTreeMap<String, String>)]
    checks: Value,
}

/// Liveness: the process serves
#[utoipa::path(
    get,
    path = "/healthz",
    operation_id = "healthz",
    tag = "operations",
    responses((status = 200, description = "Alive", body = Health)),
)]
pub async fn healthz() -> Json<Health> {
    Json(Health { status: "ok" })
}

/// Readiness: Kafka, the schema registry and every database answer
///
/// 200 when every dependency answers; otherwise 503 naming each one that
/// failed, in the error shape plus a `checks` map of all of them (`"ok"` or
/// `"unavailable"`). Served on the admin address (CHORUS_ADMIN_ADDR,
/// 127.0.0.1:9100 by default), not on the API address.
#[utoipa::path(
    get,
    path = "/readyz",
    operation_id = "readyz",
    tag = "operations",
    responses(
        (status = 200, description = "Ready", body = ReadinessReport),
        (status = 503, description = "Not ready", body = ReadinessReport,
         headers(("Retry-After" = u64, description = "Seconds"))),
    ),
)]
pub async fn readyz(State(state): State<AppState>) -> Response {
    let checks = state.inner.readiness.checks().await;
    let failed: Vec<&str> = checks
        .iter()
        .filter(|(_, result)| result.is_err())
        .map(|(name, _)| *name)
        .collect();
    let checks = Value::Object(health::report(&checks));
    if failed.is_empty() {
        let body = ReadinessReport {
            status: Some("ready"),
            error: None,
            checks,
        };
        (StatusCode::OK, Json(body)).into_response()
    } else {
        let body = ReadinessReport {
            status: None,
            error: Some(ErrorDetail {
                code: ErrorCode::NotReady,
                message: format!("not ready: {} unavailable", failed.join(", ")),
                field: None,
            }),
            checks,
        };
        (
            StatusCode::SERVICE_UNAVAILABLE,
            [(RETRY_AFTER, "1")],
            Json(body),
        )
            .into_response()
    }
}

/// Prometheus metrics
///
/// Served on the admin address (CHORUS_ADMIN_ADDR, 127.0.0.1:9100 by
/// default), not on the API address.
#[utoipa::path(
    get,
    path = "/metrics",
    operation_id = "metrics",
    tag = "operations",
    responses((status = 200, description = "Prometheus text format", body = String, content_type = "text/plain")),
)]
pub async fn metrics(State(state): State<AppState>) -> Response {
    (
        [(CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        state.inner.metrics.render(),
    )
        .into_response()
}
