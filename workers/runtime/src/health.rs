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
use serde_json::{Map, Value, json};
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
    let checks = vec![
        (
            "database",
            within(PROBE_TIMEOUT, probe_database(&probes.pool, "SELECT 1")).await,
        ),
        (
            "kafka",
            probe_kafka(&probes.brokers, None, PROBE_TIMEOUT).await,
        ),
        (
            "schema_registry",
            within(PROBE_TIMEOUT, probe_registry(&probes.registry)).await,
        ),
    ];
    let ready = checks.iter().all(|(_, r)| r.is_ok());
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        Json(json!({ "ready": ready, "checks": report(checks) })),
    )
}

/// One dependency's answer to a readiness probe: its name, and `Ok` or the problem.
pub type Check = (&'static str, Result<(), String>);

/// Whether the database behind `pool` answers `sql` (`"SELECT 1"`, or a query
/// that also proves a table is there).
pub async fn probe_database(pool: &PgPool, sql: &'static str) -> Result<(), String> {
    sqlx::query(sql)
        .execute(pool)
        .await
        .map(drop)
        .map_err(|e| e.to_string())
}

/// Whether a Kafka broker answers within `timeout`; with `topic`, also whether
/// that topic exists and has partitions.
pub async fn probe_kafka(
    brokers: &str,
    topic: Option<&str>,
    timeout: Duration,
) -> Result<(), String> {
    let metadata = fetch_metadata(brokers, topic, timeout)
        .await
        .map_err(|e| e.to_string())?;
    let Some(topic) = topic else {
        return Ok(());
    };
    match metadata.topics().iter().find(|t| t.name() == topic) {
        Some(t) if t.error().is_none() && !t.partitions().is_empty() => Ok(()),
        _ => Err(format!(
            "topic {topic} is missing at {brokers}; run `chorus topics create`"
        )),
    }
}

/// Whether the schema registry answers.
pub async fn probe_registry(registry: &RegistryClient) -> Result<(), String> {
    registry
        .subjects()
        .await
        .map(drop)
        .map_err(|e| e.to_string())
}

/// `probe`'s answer, or `"timed out"` when it takes longer than `timeout`.
pub async fn within(
    timeout: Duration,
    probe: impl Future<Output = Result<(), String>>,
) -> Result<(), String> {
    tokio::time::timeout(timeout, probe)
        .await
        .unwrap_or_else(|_| Err("timed out".to_string()))
}

/// The `checks` object of a readiness answer: each dependency's `"ok"` or its problem.
pub fn report(checks: Vec<Check>) -> Map<String, Value> {
    checks
        .into_iter()
        .map(|(name, result)| {
            let value = match result {
                Ok(()) => json!("ok"),
                Err(e) => json!(e),
            };
            (name.to_string(), value)
        })
        .collect()
}

async fn metrics(State(probes): State<Probes>) -> impl IntoResponse {
    (
        [("content-type", "text/plain; version=0.0.4")],
        probes.metrics.render(),
    )
}
