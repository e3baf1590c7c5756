//! The worker's HTTP side: `/healthz` (the process runs), `/readyz` (Kafka,
//! the schema registry and the database answer) and Prometheus `/metrics`.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use chorus_avro::RegistryClient;
use serde_json::json;
use sqlx::PgPool;

use crate::kafka::fetch_metadata;
use crate::metrics::Metrics;

const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// What the readiness probe checks.
#[derive(Clone)]
pub struct Probes {
    pub pool: PgPool,
    pub brokers: String,
    pub registry: Arc<RegistryClient>,
    pub metrics: Arc<Metrics>,
}

pub fn router(probes: Probes) -> Router {
    Router::new()
        .route("/healthz", get(|| async { Json(json!({"status": "ok"})) }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(probes)
}

async fn readyz(State(probes): State<Probes>) -> impl IntoResponse {
    let database = tokio::time::timeout(
        PROBE_TIMEOUT,
        sqlx::query_scalar::<_, i32>("SELECT 1").fetch_one(&probes.pool),
    )
    .await
    .map_err(|_| "timed out".to_string())
    .and_then(|r| r.map(drop).map_err(|e| e.to_string()));
    let kafka = fetch_metadata(&probes.brokers, None, PROBE_TIMEOUT)
        .await
        .map(drop)
        .map_err(|e| e.to_string());
    let registry = tokio::time::timeout(PROBE_TIMEOUT, probes.registry.subjects())
        .await
        .map_err(|_| "timed out".to_string())
        .and_then(|r| r.map(drop).map_err(|e| e.to_string()));
    let checks = [
        ("database", database),
        ("kafka", kafka),
        ("schema_registry", registry),
    ];
    let ready = checks.iter().all(|(_, r)| r.is_ok());
    let body: serde_json::Map<_, _> = checks
        .into_iter()
        .map(|(name, result)| {
            let value = match result {
                Ok(()) => json!("ok"),
                Err(e) => json!(e),
            };
            (name.to_string(), value)
        })
        .collect();
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(json!({ "ready": ready, "checks": body })))
}

async fn metrics(State(probes): State<Probes>) -> impl IntoResponse {
    (
        [("content-type", "text/plain; version=0.0.4")],
        probes.metrics.render(),
    )
}
