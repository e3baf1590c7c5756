//! Test support, behind the `testing` feature (enabled from
//! dev-dependencies, never in a build that ships): a publisher that keeps
//! events in memory and can be told to fail like an unreachable Kafka.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use chorus_avro::Event;
use futures::future::BoxFuture;

use crate::publish::{PublishError, Publisher};
use crate::request_span::TraceHeaders;

/// An in-memory publisher for tests: records what was published, and can be
/// told to fail like an unreachable Kafka.
#[derive(Default)]
pub struct MemoryPublisher {
    published: Mutex<Vec<(Event, String)>>,
    failing: AtomicBool,
}

impl MemoryPublisher {
    /// The events published so far, each with its `traceparent` (empty
    /// when the request had no trace context).
    pub fn published(&self) -> Vec<(Event, String)> {
        self.published
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub fn set_failing(&self, failing: bool) {
        self.failing.store(failing, Ordering::SeqCst);
    }

    pub fn is_failing(&self) -> bool {
        self.failing.load(Ordering::SeqCst)
    }
}

impl Publisher for MemoryPublisher {
    fn publish<'a>(
        &'a self,
        event: &'a Event,
        trace: &'a TraceHeaders,
    ) -> BoxFuture<'a, Result<(), PublishError>> {
        Box::pin(async move {
            if self.failing.load(Ordering::SeqCst) {
                return Err(PublishError::Unavailable {
                    dependency: "kafka",
                    cause: "the in-memory publisher was told to fail".to_string(),
                });
            }
            self.published
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push((
                    event.clone(),
                    trace.traceparent().unwrap_or_default().to_string(),
                ));
            Ok(())
        })
    }
}
