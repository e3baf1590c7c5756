//! Publishing events. `publish` returns only once Kafka has acknowledged the
//! record (idempotent producer, `acks=all`), so a 202 means the event is
//! durable; any failure is reported and the caller answers 503.

use std::time::Duration;

use chorus_avro::{Codec, EncodeError, Event, TopicCatalogue, headers};
use chorus_platform::KafkaSettings;
use futures::future::BoxFuture;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::util::Timeout;

use crate::error::AppError;
use crate::request_span::TraceHeaders;

/// Why an event was not published.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// Kafka or the schema registry cannot take the event now; a retry may.
    /// The cause may name hosts: it is logged, never shown to a client.
    #[error("{dependency} unavailable: {cause}")]
    Unavailable {
        dependency: &'static str,
        cause: String,
    },
    /// The event does not fit its schema: a bug, retrying cannot help.
    #[error("event does not fit its schema: {0}")]
    Invalid(String),
}

impl From<PublishError> for AppError {
    fn from(e: PublishError) -> AppError {
        match e {
            PublishError::Unavailable { dependency, cause } => {
                AppError::Unavailable { dependency, cause }
            }
            PublishError::Invalid(cause) => AppError::Internal(cause),
        }
    }
}

/// Where events go. The Kafka implementation serves production; tests of the
/// HTTP layer use an in-memory one (`testing::MemoryPublisher`).
pub trait Publisher: Send + Sync + 'static {
    /// Publishes one event on its catalogue topic, keyed by [`Event::key`],
    /// and waits for the broker's acknowledgement.
    fn publish<'a>(
        &'a self,
        event: &'a Event,
        trace: &'a TraceHeaders,
    ) -> BoxFuture<'a, Result<(), PublishError>>;
}

pub struct KafkaPublisher {
    producer: FutureProducer,
    codec: Codec,
    brokers: String,
}

impl KafkaPublisher {
    /// Creating the producer does not connect; an unreachable broker shows in
    /// readiness and as 503s until it is back.
    pub fn new(
        kafka: &KafkaSettings,
        codec: Codec,
        delivery_timeout: Duration,
    ) -> anyhow::Result<KafkaPublisher> {
        Ok(KafkaPublisher {
            producer: kafka.producer(delivery_timeout, Duration::from_millis(2))?,
            codec,
            brokers: kafka.brokers.clone(),
        })
    }

    fn catalogue(&self) -> &TopicCatalogue {
        self.codec.catalogue()
    }

    /// Waits for records still in flight (at shutdown).
    pub fn flush(&self, timeout: Duration) {
        if let Err(e) = self.producer.flush(Timeout::After(timeout)) {
            tracing::warn!(error = %e, "Kafka producer flush at shutdown");
        }
    }
}

impl Publisher for KafkaPublisher {
    fn publish<'a>(
        &'a self,
        event: &'a Event,
        trace: &'a TraceHeaders,
    ) -> BoxFuture<'a, Result<(), PublishError>> {
        Box::pin(async move {
            let payload = self.codec.encode(event).await.map_err(|e| match e {
                EncodeError::Invalid(cause) => PublishError::Invalid(cause),
                other => PublishError::Unavailable {
                    dependency: "schema_registry",
                    cause: other.to_string(),
                },
            })?;
            let topic = self.catalogue().topic_of(event.event_type());
            let mut headers = OwnedHeaders::new()
                .insert(Header {
                    key: headers::EVENT_TYPE,
                    value: Some(event.event_type().name()),
                })
                .insert(Header {
                    key: headers::EVENT_ID,
                    value: Some(event.event_id()),
                })
                .insert(Header {
                    key: headers::PRODUCER,
                    value: Some("gateway"),
                });
            for (key, value) in &trace.0 {
                headers = headers.insert(Header {
                    key,
                    value: Some(value),
                });
            }
            let record = FutureRecord::to(&topic)
                .key(event.key())
                .payload(&payload)
                .headers(headers);
            // The queue timeout bounds waiting for room in librdkafka's queue;
            // `message.timeout.ms` bounds the delivery itself.
            self.producer
                .send(record, Timeout::After(Duration::from_secs(1)))
                .await
                .map(|_| ())
                .map_err(|(e, _)| PublishError::Unavailable {
                    dependency: "kafka",
                    cause: format!("producing to {topic} at {}: {e}", self.brokers),
                })
        })
    }
}
