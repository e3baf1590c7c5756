//! One span per consumed message, named `process <EventType>`, continuing the
//! trace carried in the message's `traceparent` header and carrying the
//! fields every log line about the message needs: `order_id`, `event_id`,
//! `event_type`, `topic`, `partition`, `offset`, `trace_id`.

use chorus_avro::Event;
use chorus_platform::telemetry::{continue_trace, trace_id};
use rdkafka::message::{Message, OwnedMessage};

/// The span of `message` (and of its `event`, when it decoded), child of
/// the span its headers name.
pub fn message_span(
    worker: &'static str,
    message: &OwnedMessage,
    event: Option<&Event>,
) -> tracing::Span {
    let event_type = event.map(|e| e.event_type().name());
    let key = message.key().map(String::from_utf8_lossy);
    let span = tracing::info_span!(
        "process",
        otel.name = format!("process {}", event_type.unwrap_or("message")).as_str(),
        worker,
        topic = message.topic(),
        partition = message.partition(),
        offset = message.offset(),
        order_id = event.map(Event::key).or(key.as_deref()),
        event_id = event.map(Event::event_id),
        event_type,
        trace_id = tracing::field::Empty,
    );
    continue_trace(&span, &crate::apply::headers_of(message));
    if let Some(id) = trace_id(&span) {
        span.record("trace_id", id.as_str());
    }
    span
}
