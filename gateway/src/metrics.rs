//! Prometheus metrics of the gateway: requests by route, method and status,
//! and their latency; connections open, and those closed by a limit. Each application owns its registry, so tests never
//! share counters.

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts,
    Registry, TextEncoder,
};

use crate::AppState;
use crate::group_commit::BatchMetrics;

pub struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    latency: HistogramVec,
    pub orders_accepted: IntCounter,
    pub publish_failures: IntCounter,
    order_batch_size: Histogram,
    connections: ConnectionMetrics,
}

/// What the server moves: connections open, and those it closed by a limit
/// (`reason`: `header_timeout`, `idle_timeout`, `per_address`).
#[derive(Clone)]
pub struct ConnectionMetrics {
    pub open: IntGauge,
    pub closed: IntCounterVec,
}

impl Metrics {
    pub fn new() -> Metrics {
        let registry = Registry::new();
        let requests = IntCounterVec::new(
            Opts::new(
                "chorus_gateway_http_requests_total",
                "HTTP requests answered, by route, method and status",
            ),
            &["route", "method", "status"],
        )
        .expect("valid metric");
        let latency = HistogramVec::new(
            HistogramOpts::new(
                "chorus_gateway_http_request_duration_seconds",
                "Time to answer an HTTP request, by route and method",
            )
            .buckets(vec![
                0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
            ]),
            &["route", "method"],
        )
        .expect("valid metric");
        let orders_accepted = IntCounter::new(
            "chorus_gateway_orders_accepted_total",
            "Orders answered 202 after OrderPlaced was acknowledged by Kafka",
        )
        .expect("valid metric");
        let publish_failures = IntCounter::new(
            "chorus_gateway_publish_failures_total",
            "Events that could not be published (answered 503)",
        )
        .expect("valid metric");
        let order_batch_size = Histogram::with_opts(
            HistogramOpts::new(
                "chorus_gateway_order_batch_size",
                "Orders written and published together (group commit)",
            )
            .buckets(vec![1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0]),
        )
        .expect("valid metric");
        let connections = ConnectionMetrics {
            open: IntGauge::new(
                "chorus_gateway_connections_open",
                "HTTP connections open now",
            )
            .expect("valid metric"),
            closed: IntCounterVec::new(
                Opts::new(
                    "chorus_gateway_connections_closed_total",
                    "HTTP connections the gateway closed by a limit, by reason \
                     (header_timeout, idle_timeout, per_address)",
                ),
                &["reason"],
            )
            .expect("valid metric"),
        };
        for collector in [
            Box::new(requests.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(connections.open.clone()),
            Box::new(connections.closed.clone()),
            Box::new(latency.clone()),
            Box::new(orders_accepted.clone()),
            Box::new(publish_failures.clone()),
            Box::new(order_batch_size.clone()),
        ] {
            registry
                .register(collector)
                .expect("metric registered once");
        }
        Metrics {
            registry,
            requests,
            latency,
            orders_accepted,
            publish_failures,
            order_batch_size,
            connections,
        }
    }

    /// The connection metrics the server moves (they share this registry).
    pub fn connection_metrics(&self) -> ConnectionMetrics {
        self.connections.clone()
    }

    /// The counters the order batcher moves (they share this registry).
    pub fn batch_metrics(&self) -> BatchMetrics {
        BatchMetrics {
            batch_size: self.order_batch_size.clone(),
            orders_accepted: self.orders_accepted.clone(),
            publish_failures: self.publish_failures.clone(),
        }
    }

    pub fn observe(&self, route: &str, method: &str, status: u16, seconds: f64) {
        self.requests
            .with_label_values(&[route, method, &status.to_string()])
            .inc();
        self.latency
            .with_label_values(&[route, method])
            .observe(seconds);
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut buffer = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut buffer)
            .expect("text encoding into a Vec does not fail");
        String::from_utf8(buffer).expect("the text format is UTF-8")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

/// Middleware: counts and times every request under its route template
/// (`/v1/orders/{order_id}`), so ids never become label values.
pub async fn track(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".to_string());
    // Custom methods would make label values unbounded.
    let method = match request.method().as_str() {
        m @ ("GET" | "HEAD" | "POST" | "PUT" | "PATCH" | "DELETE" | "OPTIONS") => m,
        _ => "OTHER",
    }
    .to_string();
    let response = next.run(request).await;
    state.inner.metrics.observe(
        &route,
        &method,
        response.status().as_u16(),
        started.elapsed().as_secs_f64(),
    );
    response
}
