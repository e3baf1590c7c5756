//! One span per consumed message, named `process <EventType>`, continuing the
//! trace carried in the message's `traceparent` header and carrying the
//! fields every log line about the message needs: `order_id`, `event_id`,
//! `event_type`, `topic`, `partition`, `offset`, `trace_id`.

use chorus_avro::Event;
use chorus_platform::telemetry::{continue_trace, trace_id};
use rdkafka::message::{Message, OwnedMessage};

/// The span of `message`, child of the span its headers name.
pub fn message_span(worker: &'static str, message: &OwnedMessage) -> tracing::Span {
    let span = tracing::info_span!(
        "process",
        otel.name = tracing::field::Empty,
        worker,
        topic = message.topic(),
        partition = message.partition(),
        offset = message.offset(),
        order_id = message.key().map(String::from_utf8_lossy).as_deref(),
        event_id = tracing::field::Empty,
        event_type = tracing::field::Empty,
        trace_id = tracing::field::Empty,
    );
    continue_trace(&span, &crate::apply::headers_of(message));
    if let Some(id) = trace_id(&span) {
        span.record("trace_id", id.as_str());
    }
    span
}

/// Names the span after the event, once it is decoded.
pub fn record_event(span: &tracing::Span, event: &Event) {
    let name = event.event_type().name();
    span.record("otel.name", format!("process {name}").as_str());
    span.record("event_type", name);
    span.record("event_id", event.event_id());
    span.record("order_id", event.key());
}
