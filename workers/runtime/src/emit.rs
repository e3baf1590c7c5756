//! Events a worker emits become outbox rows: encoded for their topic, keyed
//! by order id, with their type, id, producing service and the W3C trace
//! context of what caused them in the headers. One place for every path that
//! emits (consumed messages, answered external calls, periodic work).

use std::collections::BTreeMap;
use std::sync::Arc;

use chorus_avro::headers::{EVENT_ID, EVENT_TYPE, PRODUCER};
use chorus_avro::{Codec, Event};
use chorus_platform::telemetry::trace_headers;

use crate::failure::Failure;
use crate::outbox::NewOutboxRow;

/// Encodes emitted events into outbox rows.
pub struct Emitter {
    pub codec: Arc<Codec>,
    /// The service name in the `chorus-producer` header.
    pub producer: &'static str,
}

impl Emitter {
    /// The rows of `events`, each caused within `span` (its trace context
    /// goes along).
    pub async fn rows(
        &self,
        events: Vec<Event>,
        span: &tracing::Span,
    ) -> Result<Vec<NewOutboxRow>, Failure> {
        let trace = trace_headers(span);
        let mut rows = Vec::with_capacity(events.len());
        for event in events {
            let mut headers: BTreeMap<String, String> = trace.clone();
            headers.insert(EVENT_TYPE.into(), event.event_type().name().into());
            headers.insert(EVENT_ID.into(), event.event_id().into());
            headers.insert(PRODUCER.into(), self.producer.into());
            rows.push(NewOutboxRow {
                event_id: event.event_id().to_string(),
                topic: self.codec.catalogue().topic_of(event.event_type()),
                key: event.key().to_string(),
                payload: self.codec.encode(&event).await?,
                headers,
            });
        }
        Ok(rows)
    }
}

/// The `traceparent` of `span`, to keep with an intent that outlives it.
pub fn traceparent(span: &tracing::Span) -> Option<String> {
    trace_headers(span).remove(chorus_avro::headers::TRACEPARENT)
}
