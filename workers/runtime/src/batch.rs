//! Several messages of one partition in one transaction: under load a lane
//! finds more than one message waiting, and committing them together saves a
//! commit per message. Same guarantee as one at a time — every message's
//! inbox row, effects and outbox rows commit together or not at all. A batch
//! that cannot be applied whole (a message for the dead-letter topic, a
//! transient failure, a deadlock) is rolled back and its messages are then
//! processed one by one.

use std::time::Instant;

use chorus_avro::Event;
use rdkafka::message::{Message, OwnedMessage};
use tracing::Instrument;

use crate::handler::Handler;
use crate::process::{ProcessOutcome, Processor};

impl<H: Handler> Processor<H> {
    /// Applies `messages` (in partition order) in one transaction; `None`
    /// when the caller must process them one by one instead.
    pub async fn process_batch(&self, messages: &[OwnedMessage]) -> Option<Vec<ProcessOutcome>> {
        let started = Instant::now();
        let mut outcomes = vec![ProcessOutcome::Ignored; messages.len()];
        let mut work: Vec<(usize, Event)> = Vec::with_capacity(messages.len());
        for (index, message) in messages.iter().enumerate() {
            let event = self.codec.decode(message.payload()).await.ok()?;
            if self.handler.handles(event.event_type()) {
                work.push((index, event));
            }
        }
        // Concurrent batches lock rows in one global order (by key), so they
        // cannot deadlock on each other; a stable sort keeps each key's order.
        work.sort_by(|a, b| a.1.key().cmp(b.1.key()));

        let mut rows = Vec::new();
        if !work.is_empty() {
            let mut tx = self.pool.begin().await.ok()?;
            for (index, event) in &work {
                let message = &messages[*index];
                let span = self.message_span(message);
                span.record("event_type", event.event_type().name());
                let applied = self
                    .apply(&mut tx, message, event, &span)
                    .instrument(span.clone())
                    .await;
                match applied {
                    Ok(None) => outcomes[*index] = ProcessOutcome::Duplicate,
                    Ok(Some(written)) => {
                        outcomes[*index] = ProcessOutcome::Applied {
                            emitted: written.len(),
                        };
                        rows.extend(written);
                    }
                    Err(_) => {
                        let _ = tx.rollback().await;
                        return None;
                    }
                }
            }
            tx.commit().await.ok()?;
        }
        self.publisher.enqueue(rows).await;
        for (message, outcome) in messages.iter().zip(&outcomes) {
            self.record(message, outcome, started);
        }
        Some(outcomes)
    }
}
