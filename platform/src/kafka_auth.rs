//! Tells a refused login apart from an unreachable broker: librdkafka reports
//! authentication failures through the client context's error callback,
//! while the request that failed only says it timed out.

use std::sync::Mutex;

use rdkafka::ClientContext;
use rdkafka::consumer::ConsumerContext;
use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaErrorCode;

/// Remembers the first authentication failure librdkafka reported.
#[derive(Default)]
pub struct AuthWatch {
    failure: Mutex<Option<String>>,
}

impl AuthWatch {
    /// The authentication failure, if there was one.
    pub fn failure(&self) -> Option<String> {
        self.failure
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

impl ClientContext for AuthWatch {
    fn error(&self, error: KafkaError, reason: &str) {
        if is_authentication_failure(&error) {
            let mut failure = self.failure.lock().unwrap_or_else(|e| e.into_inner());
            failure.get_or_insert_with(|| {
                format!("authentication to Kafka failed (check CHORUS_KAFKA_SASL_USERNAME / CHORUS_KAFKA_SASL_PASSWORD): {reason}")
            });
        }
    }
}

impl ConsumerContext for AuthWatch {}

/// Whether librdkafka's error is a refused login.
pub fn is_authentication_failure(error: &KafkaError) -> bool {
    matches!(
        error.rdkafka_error_code(),
        Some(RDKafkaErrorCode::Authentication | RDKafkaErrorCode::SaslAuthenticationFailed)
    )
}
