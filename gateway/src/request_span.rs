//! One span per request, named after its route (`POST /v1/orders`), that
//! continues the caller's W3C trace context (`traceparent`, `tracestate`)
//! through the OpenTelemetry propagator, or starts a trace. Events the
//! request emits carry this span's context in their Kafka headers
//! ([`TraceHeaders`]), so the saga's workers join the same trace.

use std::collections::{BTreeMap, HashMap};
use std::convert::Infallible;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{FromRequestParts, MatchedPath};
use axum::http::request::Parts;
use axum::http::{Request, Response};
use chorus_platform::telemetry;
use tracing::Span;
use tracing::field::Empty;

/// The W3C headers read from a request.
const TRACE_CONTEXT: [&str; 2] = ["traceparent", "tracestate"];

/// The request's span: `otel.name` is what tracing backends show as its name.
pub fn make_span(request: &Request<Body>) -> Span {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", MatchedPath::as_str);
    let method = request.method();
    let span = tracing::info_span!(
        "request",
        otel.name = %format!("{method} {route}"),
        otel.kind = "server",
        http.request.method = %method,
        http.route = route,
        http.response.status_code = Empty,
        order_id = Empty,
    );
    let headers: HashMap<String, String> = TRACE_CONTEXT
        .iter()
        .filter_map(|name| {
            let value = request.headers().get(*name)?.to_str().ok()?;
            Some((name.to_string(), value.to_string()))
        })
        .collect();
    telemetry::continue_trace(&span, &headers);
    span
}

pub fn record_status<B>(response: &Response<B>, _latency: Duration, span: &Span) {
    span.record("http.response.status_code", response.status().as_u16());
}

/// Records the order a request is about on its span.
pub fn record_order_id(order_id: &str) {
    Span::current().record("order_id", order_id);
}

/// The W3C trace context of the current request's span, for the Kafka
/// headers of the events it emits.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TraceHeaders(pub BTreeMap<String, String>);

impl TraceHeaders {
    pub fn current() -> TraceHeaders {
        TraceHeaders(telemetry::trace_headers(&Span::current()))
    }

    pub fn traceparent(&self) -> Option<&str> {
        self.0.get("traceparent").map(String::as_str)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for TraceHeaders {
    type Rejection = Infallible;

    async fn from_request_parts(_parts: &mut Parts, _state: &S) -> Result<Self, Infallible> {
        Ok(TraceHeaders::current())
    }
}
