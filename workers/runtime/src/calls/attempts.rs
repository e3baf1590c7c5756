//! One call's attempts: asked again with capped, jittered backoff while the
//! answer is "not now", at most `CHORUS_CALL_MAX_ATTEMPTS` times in a row,
//! inside a span that continues the saga's trace and names the message that
//! asked for the call. A panicking call is caught and counts as given up.

use std::sync::Arc;

use chorus_avro::headers::EVENT_ID;
use chorus_platform::telemetry::{continue_trace, trace_id};
use futures::FutureExt;
use rdkafka::message::{Headers, Message, OwnedMessage};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::CallExecutor;
use crate::handler::{CallOutcome, Calls};

/// How a taken call ended in this process.
pub struct Finished<C: Calls> {
    pub call: C::Call,
    pub outcome: Ended<C::Answer>,
    /// The call's span: everything logged about its answer goes inside it.
    pub span: tracing::Span,
    /// The message that asked for the call, if this process consumed it.
    pub origin: Option<Arc<OwnedMessage>>,
}

/// What a call's attempts came to.
pub enum Ended<A> {
    Answered(A),
    /// Every attempt answered "not now" (or the call panicked): why.
    GaveUp(String),
}

impl<C: Calls> CallExecutor<C> {
    /// Calls until an answer or the attempts run out; `None` if `shutdown`
    /// came first (the lease is then given up by the executor).
    pub(super) async fn call_until_answered(
        &self,
        call: C::Call,
        origin: Option<Arc<OwnedMessage>>,
        shutdown: &CancellationToken,
    ) -> Option<Finished<C>> {
        let name = C::span_name(&call);
        let span = call_span::<C>(&call, origin.as_deref());
        let mut pauses = self.retry.pauses();
        let mut attempt = 1;
        let outcome = loop {
            let outcome = std::panic::AssertUnwindSafe(self.calls.call(&call, attempt))
                .catch_unwind()
                .instrument(span.clone())
                .await;
            match outcome {
                Ok(CallOutcome::Answered(answer)) => {
                    self.metrics
                        .calls
                        .with_label_values(&[name, "answered"])
                        .inc();
                    span.record("attempts", attempt);
                    break Ended::Answered(answer);
                }
                Err(panic) => {
                    self.metrics.panics.inc();
                    let why = crate::failure::Failure::panic(panic.as_ref()).message;
                    span.in_scope(|| tracing::error!(attempt, %why, "{name}: the call panicked"));
                    break Ended::GaveUp(why);
                }
                Ok(CallOutcome::Retry(why)) if attempt >= self.max_attempts => {
                    self.metrics
                        .calls
                        .with_label_values(&[name, "exhausted"])
                        .inc();
                    span.record("attempts", attempt);
                    break Ended::GaveUp(format!(
                        "{name}: not answered after {attempt} attempts: {why}"
                    ));
                }
                Ok(CallOutcome::Retry(why)) => {
                    self.metrics.calls.with_label_values(&[name, "retry"]).inc();
                    let pause = pauses.next().unwrap_or(self.retry.max_backoff);
                    span.in_scope(|| {
                        tracing::warn!(attempt, pause_ms = pause.as_millis() as u64, %why, "{name}: not now; retrying")
                    });
                    tokio::select! {
                        _ = shutdown.cancelled() => return None,
                        _ = tokio::time::sleep(pause) => {}
                    }
                    attempt += 1;
                }
            }
        };
        Some(Finished {
            call,
            outcome,
            span,
            origin,
        })
    }
}

/// The span of a call: child of the trace of the message that asked for it,
/// with the order, that message's event id and the trace id as fields.
fn call_span<C: Calls>(call: &C::Call, origin: Option<&OwnedMessage>) -> tracing::Span {
    let event_id = origin
        .and_then(event_id_of)
        .or_else(|| C::cause_event_id(call));
    let span = tracing::info_span!(
        "call",
        otel.name = C::span_name(call),
        order_id = C::key(call),
        event_id,
        trace_id = tracing::field::Empty,
        attempts = tracing::field::Empty,
    );
    if let Some(traceparent) = C::traceparent(call) {
        let headers = [(
            chorus_avro::headers::TRACEPARENT.to_string(),
            traceparent.to_string(),
        )]
        .into_iter()
        .collect();
        continue_trace(&span, &headers);
    }
    if let Some(id) = trace_id(&span) {
        span.record("trace_id", id.as_str());
    }
    span
}

/// The `chorus-event-id` header of a message.
pub(super) fn event_id_of(message: &OwnedMessage) -> Option<&str> {
    message
        .headers()?
        .iter()
        .find(|h| h.key == EVENT_ID)
        .and_then(|h| std::str::from_utf8(h.value?).ok())
}
