//! Processing one message, exactly once in effect: decode, then one
//! PostgreSQL transaction holding the inbox row, the state change and the
//! outbox rows; only after it commits are the outbox rows published. A
//! message that can never be processed goes to the dead-letter topic; a
//! transient failure is returned for the caller to retry.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Instant;

use chorus_avro::{Codec, EncodeError, Event};
use rdkafka::message::{Headers, Message, OwnedMessage};
use rdkafka::producer::FutureProducer;
use sqlx::{PgConnection, PgPool};
use tracing::Instrument;

use crate::delivery::OutboxPublisher;
use crate::dlq::dead_letter;
use crate::handler::{HandleError, Handler};
use crate::metrics::Metrics;
use crate::outbox::{self, NewOutboxRow, OutboxRow};
use chorus_platform::telemetry::{continue_trace, trace_headers};

/// What became of a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProcessOutcome {
    Applied {
        emitted: usize,
    },
    Duplicate,
    /// An event type this worker does not act on: no transaction at all.
    Ignored,
    DeadLettered {
        class: &'static str,
    },
}

impl ProcessOutcome {
    fn label(&self) -> &'static str {
        match self {
            ProcessOutcome::Applied { .. } => "applied",
            ProcessOutcome::Duplicate => "duplicate",
            ProcessOutcome::Ignored => "ignored",
            ProcessOutcome::DeadLettered { .. } => "dead_lettered",
        }
    }
}

/// A failure that may pass: the message must be retried, never skipped.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Transient(pub String);

impl From<sqlx::Error> for Transient {
    fn from(e: sqlx::Error) -> Self {
        Transient(format!("database: {e}"))
    }
}

/// Everything needed to process messages for one worker.
pub struct Processor<H> {
    pub handler: Arc<H>,
    pub pool: PgPool,
    pub codec: Arc<Codec>,
    /// For dead letters, which are awaited before the offset moves on.
    pub producer: FutureProducer,
    /// For emitted events, which leave after their commit without being awaited.
    pub publisher: OutboxPublisher,
    pub metrics: Arc<Metrics>,
}

/// Why applying one event inside a transaction did not succeed.
pub(crate) enum ApplyError {
    /// The message belongs in the dead-letter topic.
    Permanent {
        class: &'static str,
        reason: String,
    },
    Transient(Transient),
}

impl From<sqlx::Error> for ApplyError {
    fn from(e: sqlx::Error) -> Self {
        ApplyError::Transient(e.into())
    }
}

impl<H: Handler> Processor<H> {
    pub async fn process(&self, message: &OwnedMessage) -> Result<ProcessOutcome, Transient> {
        let span = self.message_span(message);
        let started = Instant::now();
        let outcome = self
            .process_in_span(message, &span)
            .instrument(span.clone())
            .await?;
        self.record(message, &outcome, started);
        Ok(outcome)
    }

    async fn process_in_span(
        &self,
        message: &OwnedMessage,
        span: &tracing::Span,
    ) -> Result<ProcessOutcome, Transient> {
        let event = match self.codec.decode(message.payload()).await {
            Ok(event) => event,
            Err(e) if e.is_permanent() => {
                return self.dead_letter(message, e.class(), &e.to_string()).await;
            }
            Err(e) => return Err(Transient(e.to_string())),
        };
        span.record("event_type", event.event_type().name());
        if !self.handler.handles(event.event_type()) {
            return Ok(ProcessOutcome::Ignored);
        }
        let mut tx = self.pool.begin().await?;
        match self.apply(&mut tx, message, &event, span).await {
            Ok(None) => {
                tx.commit().await?;
                Ok(ProcessOutcome::Duplicate)
            }
            Ok(Some(rows)) => {
                tx.commit().await?;
                let emitted = rows.len();
                self.publisher.enqueue(rows).await;
                Ok(ProcessOutcome::Applied { emitted })
            }
            Err(ApplyError::Permanent { class, reason }) => {
                tx.rollback().await?;
                self.dead_letter(message, class, &reason).await
            }
            Err(ApplyError::Transient(e)) => Err(e),
        }
    }

    /// The inbox row, the effects and the outbox rows of one event, inside
    /// `conn`'s transaction; `None` when the inbox already had the event.
    pub(crate) async fn apply(
        &self,
        conn: &mut PgConnection,
        message: &OwnedMessage,
        event: &Event,
        span: &tracing::Span,
    ) -> Result<Option<Vec<OutboxRow>>, ApplyError> {
        let fresh = crate::inbox::record(
            conn,
            event.event_id(),
            message.topic(),
            message.partition(),
            message.offset(),
        )
        .await?;
        if !fresh {
            tracing::debug!(event_id = event.event_id(), "duplicate event skipped");
            return Ok(None);
        }
        let emitted = match self.handler.handle(conn, event).await {
            Ok(emitted) => emitted,
            Err(HandleError::Permanent(reason)) => {
                return Err(ApplyError::Permanent {
                    class: "rejected",
                    reason,
                });
            }
            Err(HandleError::Transient(reason)) => {
                return Err(ApplyError::Transient(Transient(reason)));
            }
        };
        let rows = match self.outbox_rows(&emitted, span).await {
            Ok(rows) => rows,
            Err(EncodeError::Invalid(reason)) => {
                return Err(ApplyError::Permanent {
                    class: "unencodable_output",
                    reason: format!("an emitted event does not fit its schema: {reason}"),
                });
            }
            Err(e) => return Err(ApplyError::Transient(Transient(e.to_string()))),
        };
        Ok(Some(outbox::write(conn, rows).await?))
    }

    /// One span per message, continuing the trace its headers carry.
    pub(crate) fn message_span(&self, message: &OwnedMessage) -> tracing::Span {
        let span = tracing::info_span!(
            "message",
            worker = self.handler.name(),
            topic = message.topic(),
            partition = message.partition(),
            offset = message.offset(),
            order_id = message.key().map(String::from_utf8_lossy).as_deref(),
            event_type = tracing::field::Empty,
        );
        continue_trace(&span, &headers_of(message));
        span
    }

    pub(crate) fn record(
        &self,
        message: &OwnedMessage,
        outcome: &ProcessOutcome,
        started: Instant,
    ) {
        let topic = message.topic();
        self.metrics
            .processing_seconds
            .with_label_values(&[topic])
            .observe(started.elapsed().as_secs_f64());
        self.metrics
            .processed
            .with_label_values(&[topic, outcome.label()])
            .inc();
        if let ProcessOutcome::DeadLettered { class } = outcome {
            self.metrics
                .dead_lettered
                .with_label_values(&[topic, class])
                .inc();
        }
    }

    async fn outbox_rows(
        &self,
        events: &[Event],
        span: &tracing::Span,
    ) -> Result<Vec<NewOutboxRow>, EncodeError> {
        let trace = trace_headers(span);
        let mut rows = Vec::with_capacity(events.len());
        for event in events {
            let mut headers: BTreeMap<String, String> = trace.clone();
            headers.insert("chorus-event-type".into(), event.event_type().name().into());
            headers.insert("chorus-event-id".into(), event.event_id().into());
            rows.push(NewOutboxRow {
                event_id: event.event_id().to_string(),
                topic: self.codec.catalogue().topic_of(event.event_type()),
                key: event.key().to_string(),
                payload: self.codec.encode(event).await?,
                headers,
            });
        }
        Ok(rows)
    }

    async fn dead_letter(
        &self,
        message: &OwnedMessage,
        class: &'static str,
        error: &str,
    ) -> Result<ProcessOutcome, Transient> {
        let catalogue = self.codec.catalogue();
        let topic = catalogue
            .resolve(message.topic())
            .map(|t| catalogue.dead_letter(t))
            .unwrap_or_else(|| format!("{}.dlq", message.topic()));
        tracing::warn!(class, error, dead_letter_topic = %topic, "message dead-lettered");
        dead_letter(&self.producer, &topic, message, class, error)
            .await
            .map_err(|e| Transient(e.to_string()))?;
        Ok(ProcessOutcome::DeadLettered { class })
    }
}

fn headers_of(message: &OwnedMessage) -> HashMap<String, String> {
    let mut map = HashMap::new();
    if let Some(headers) = message.headers() {
        for header in headers.iter() {
            if let Some(value) = header.value {
                map.insert(
                    header.key.to_string(),
                    String::from_utf8_lossy(value).into_owned(),
                );
            }
        }
    }
    map
}
