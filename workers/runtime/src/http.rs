//! The worker's HTTP side: `/healthz` (the process runs), `/readyz` (Kafka,
//! the schema registry and the database answer; cached, see
//! [`chorus_platform::health`]) and Prometheus `/metrics`.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use chorus_platform::health::Readiness;
use serde_json::json;

use crate::metrics::Metrics;

#[derive(Clone)]
struct Shared {
    readiness: Arc<Readiness>,
    metrics: Arc<Metrics>,
}

pub fn router(readiness: Readiness, metrics: Arc<Metrics>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { Json(json!({"status": "ok"})) }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(render_metrics))
        .with_state(Shared {
            readiness: Arc::new(readiness),
            metrics,
        })
}

async fn readyz(State(shared): State<Shared>) -> impl IntoResponse {
    let (ready, answer) = shared.readiness.answer().await;
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(answer))
}

async fn render_metrics(State(shared): State<Shared>) -> impl IntoResponse {
    (
        [("content-type", "text/plain; version=0.0.4")],
        shared.metrics.render(),
    )
}
