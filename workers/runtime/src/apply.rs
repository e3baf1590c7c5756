//! Processing a batch of messages, exactly once in effect: decode, then one
//! PostgreSQL transaction holding the inbox rows, the handler's state changes
//! and the outbox rows of every event in the batch; only after it commits are
//! the outbox rows published and the external calls made.
//!
//! A batch that fails is classified (see [`crate::failure`]): a transient
//! failure puts the whole batch back to be retried; any other failure splits
//! it in halves until the one message that causes it is found, which is then
//! dead-lettered (permanent, panic, or unknown after `CHORUS_MAX_ATTEMPTS`
//! attempts that count: transient failures do not) or retried (unknown,
//! attempts left). A message is never applied before an
//! earlier message of its partition: once one is put back, the rest of its
//! partition in the batch waits too.

use std::collections::{HashMap, HashSet};
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Instant;

use chorus_avro::{Codec, Event};
use futures::FutureExt;
use rdkafka::message::{Headers, Message, OwnedMessage};
use rdkafka::producer::FutureProducer;
use sqlx::PgPool;
use tokio::sync::mpsc;

use crate::consumer::queues::{Queued, TopicPartition};
use crate::dlq::{DeadLetter, dead_letter};
use crate::emit::Emitter;
use crate::failure::{Failure, FailureClass, Settlement};
use crate::handler::{Calls, Handler, Incoming, Verdict};
use crate::inbox::{self, InboxEntry};
use crate::metrics::Metrics;
use crate::outbox;
use crate::outbox_publisher::OutboxPublisher;

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

/// What the consumer loop does with a message after a batch.
#[derive(Debug)]
pub enum Outcome {
    /// Finished: its offset may be stored.
    Done(ProcessOutcome),
    /// Failed; try again after a pause.
    Retry(Failure),
    /// Not tried: an earlier message of its partition is to be retried.
    Deferred,
}

/// The external calls asked for by an applied batch, sent on after its commit.
pub type CallSender<H> =
    mpsc::Sender<crate::calls::CallRequest<<<H as Handler>::Calls as Calls>::Call>>;

/// Everything needed to process messages for one worker.
pub struct Applier<H: Handler> {
    pub handler: Arc<H>,
    pub pool: PgPool,
    pub codec: Arc<Codec>,
    pub emitter: Emitter,
    /// For dead letters, which are awaited before the offset moves on.
    pub producer: FutureProducer,
    /// For emitted events, which leave after their commit without being awaited.
    pub publisher: OutboxPublisher,
    pub calls: CallSender<H>,
    pub metrics: Arc<Metrics>,
    pub consumer_group: String,
    pub max_attempts: u32,
}

/// A decoded message of the batch being applied.
struct Item {
    /// Index into the batch.
    index: usize,
    event: Event,
    span: tracing::Span,
}

/// The result of one transaction over items.
struct Committed {
    outcomes: Vec<(usize, Result<ProcessOutcome, String>)>,
}

impl<H: Handler> Applier<H> {
    /// Processes `batch` (in arrival order); one outcome per message, in order.
    pub async fn process(&self, batch: &[Queued]) -> Vec<Outcome> {
        let started = Instant::now();
        let mut outcomes: Vec<Option<Outcome>> = (0..batch.len()).map(|_| None).collect();
        let mut blocked: HashSet<TopicPartition> = HashSet::new();
        let mut items = Vec::new();
        let mut spans = Vec::with_capacity(batch.len());
        for (index, queued) in batch.iter().enumerate() {
            // Another service's event sharing the topic, as its header says:
            // acknowledged without decoding it (the services that act on it
            // decode it, and dead-letter it if it is not what it claims).
            if self.ignores(&queued.message) {
                outcomes[index] = Some(Outcome::Done(ProcessOutcome::Ignored));
                spans.push(tracing::Span::none());
                continue;
            }
            // Decoded first, so the message's span carries the event's fields
            // from its start (every log line about it names it).
            let decoded = self.codec.decode(queued.message.payload()).await;
            let span = crate::span::message_span(
                self.handler.name(),
                &queued.message,
                decoded.as_ref().ok(),
            );
            spans.push(span.clone());
            // An event type that is not published on this topic (a schema of
            // another topic's event) can never be meant for us.
            let decoded = decoded.map_err(|e| Failure::from(&e)).and_then(|event| {
                let expected = self.codec.catalogue().topic_of(event.event_type());
                if expected == queued.message.topic() {
                    Ok(event)
                } else {
                    Err(Failure::permanent(
                        "wrong_topic",
                        format!(
                            "a {} belongs on {expected}, not on {}",
                            event.event_type(),
                            queued.message.topic()
                        ),
                    ))
                }
            });
            match decoded {
                Ok(event) => {
                    if self.handler.handles(event.event_type()) {
                        items.push(Item { index, event, span });
                    } else {
                        outcomes[index] = Some(Outcome::Done(ProcessOutcome::Ignored));
                    }
                }
                Err(failure) => {
                    let outcome = self.settle_failure(queued, failure, &span).await;
                    if !matches!(outcome, Outcome::Done(_)) {
                        blocked.insert(queued.partition());
                    }
                    outcomes[index] = Some(outcome);
                }
            }
        }
        self.apply_split(batch, items, &mut outcomes, &mut blocked)
            .await;
        let outcomes: Vec<Outcome> = outcomes
            .into_iter()
            .map(|o| o.unwrap_or(Outcome::Deferred))
            .collect();
        for ((queued, outcome), span) in batch.iter().zip(&outcomes).zip(&spans) {
            self.record(&queued.message, outcome, started, span);
        }
        self.metrics.batch_size.observe(batch.len() as f64);
        outcomes
    }

    /// Whether the message's `chorus-event-type` header names an event of its
    /// topic that this worker does not act on.
    fn ignores(&self, message: &OwnedMessage) -> bool {
        let Some(claimed) = message
            .headers()
            .and_then(|h| h.iter().find(|h| h.key == chorus_avro::headers::EVENT_TYPE))
            .and_then(|h| std::str::from_utf8(h.value?).ok())
            .and_then(|name| name.parse::<chorus_avro::EventType>().ok())
        else {
            return false;
        };
        !self.handler.handles(claimed)
            && self.codec.catalogue().topic_of(claimed) == message.topic()
    }

    /// Applies `items` in one transaction, or — when that fails for a reason
    /// other than a transient one — in halves, down to single messages.
    fn apply_split<'a>(
        &'a self,
        batch: &'a [Queued],
        mut items: Vec<Item>,
        outcomes: &'a mut [Option<Outcome>],
        blocked: &'a mut HashSet<TopicPartition>,
    ) -> futures::future::BoxFuture<'a, ()> {
        async move {
            items.retain(|item| {
                let waiting = blocked.contains(&batch[item.index].partition());
                if waiting {
                    outcomes[item.index] = Some(Outcome::Deferred);
                }
                !waiting
            });
            if items.is_empty() {
                return;
            }
            let failure = match self.apply_once(batch, &items).await {
                Ok(committed) => {
                    self.finish(batch, &items, committed, outcomes, blocked).await;
                    return;
                }
                Err(failure) => failure,
            };
            if failure.is_outage() || (failure.class == FailureClass::Transient && items.len() == 1) {
                tracing::warn!(error = %failure, messages = items.len(), "transient failure; the batch will be retried");
                for item in &items {
                    blocked.insert(batch[item.index].partition());
                    outcomes[item.index] = Some(Outcome::Retry(failure.clone()));
                }
                return;
            }
            if items.len() == 1 {
                let item = &items[0];
                let queued = &batch[item.index];
                let outcome = self.settle_failure(queued, failure, &item.span).await;
                if !matches!(outcome, Outcome::Done(_)) {
                    blocked.insert(queued.partition());
                }
                outcomes[item.index] = Some(outcome);
                return;
            }
            tracing::debug!(error = %failure, messages = items.len(), "batch failed; applying it in halves");
            let second = items.split_off(items.len() / 2);
            self.apply_split(batch, items, outcomes, blocked).await;
            self.apply_split(batch, second, outcomes, blocked).await;
        }
        .boxed()
    }

    /// One transaction: inbox, handler, outbox, commit. A panic in the
    /// handler is caught and becomes a failure like any other.
    async fn apply_once(&self, batch: &[Queued], items: &[Item]) -> Result<Committed, Failure> {
        AssertUnwindSafe(self.transaction(batch, items))
            .catch_unwind()
            .await
            .unwrap_or_else(|panic| Err(Failure::panic(panic.as_ref())))
    }

    async fn transaction(&self, batch: &[Queued], items: &[Item]) -> Result<Committed, Failure> {
        let mut tx = self.pool.begin().await?;
        // The first of several copies of one event in a batch is the one applied.
        let mut seen = HashSet::new();
        let entries: Vec<InboxEntry<'_>> = items
            .iter()
            .filter(|item| seen.insert(item.event.event_id()))
            .map(|item| {
                let message = &batch[item.index].message;
                InboxEntry {
                    event_id: item.event.event_id(),
                    topic: message.topic(),
                    partition: message.partition(),
                    offset: message.offset(),
                }
            })
            .collect();
        let mut fresh = inbox::record(&mut tx, &entries).await?;
        let mut applied: Vec<&Item> = Vec::new();
        let mut outcomes = Vec::with_capacity(items.len());
        for item in items {
            if fresh.remove(item.event.event_id()) {
                applied.push(item);
            } else {
                outcomes.push((item.index, Ok(ProcessOutcome::Duplicate)));
            }
        }
        let incoming: Vec<Incoming<'_>> = applied
            .iter()
            .map(|item| Incoming {
                event: &item.event,
                span: &item.span,
                partition: batch[item.index].message.partition(),
            })
            .collect();
        let verdicts = if incoming.is_empty() {
            Vec::new()
        } else {
            self.handler
                .apply(&mut tx, &incoming)
                .await
                .map_err(Failure::from)?
        };
        if verdicts.len() != applied.len() {
            return Err(Failure::unknown(
                "handler",
                format!(
                    "the handler answered {} verdicts for {} events",
                    verdicts.len(),
                    applied.len()
                ),
            ));
        }
        let mut rows = Vec::new();
        let mut calls = Vec::new();
        let mut rejected = Vec::new();
        for (item, verdict) in applied.iter().zip(verdicts) {
            match verdict {
                Verdict::Applied { emit, calls: asked } => {
                    let emitted = emit.len();
                    rows.extend(self.emitter.rows(emit, &item.span).await?);
                    if !asked.is_empty() {
                        let origin = Arc::new(batch[item.index].message.clone());
                        calls.extend(asked.into_iter().map(|call| (call, Some(origin.clone()))));
                    }
                    outcomes.push((item.index, Ok(ProcessOutcome::Applied { emitted })));
                }
                Verdict::Rejected(reason) => {
                    rejected.push(item.event.event_id());
                    outcomes.push((item.index, Err(reason)));
                }
            }
        }
        // A rejected event is not recorded: redriven after a fix, it applies.
        inbox::forget(&mut tx, &rejected).await?;
        let written = outbox::write(&mut tx, rows).await?;
        self.publisher.commit(tx).await?;
        self.publisher.enqueue(written).await;
        for call in calls {
            if self.calls.send(call).await.is_err() {
                // The call executor is gone (shutting down): the intent is
                // committed and the next start finds it unsettled.
                break;
            }
        }
        Ok(Committed { outcomes })
    }

    /// Records a committed transaction's outcomes; rejected messages go to
    /// the dead-letter topic now that the others' effects are committed.
    async fn finish(
        &self,
        batch: &[Queued],
        items: &[Item],
        committed: Committed,
        outcomes: &mut [Option<Outcome>],
        blocked: &mut HashSet<TopicPartition>,
    ) {
        let spans: HashMap<usize, &tracing::Span> =
            items.iter().map(|item| (item.index, &item.span)).collect();
        for (index, result) in committed.outcomes {
            let outcome = match result {
                Ok(done) => Outcome::Done(done),
                Err(reason) => {
                    let failure = Failure::permanent("rejected", reason);
                    let outcome = self
                        .settle_failure(&batch[index], failure, spans[&index])
                        .await;
                    if !matches!(outcome, Outcome::Done(_)) {
                        blocked.insert(batch[index].partition());
                    }
                    outcome
                }
            };
            outcomes[index] = Some(outcome);
        }
    }

    /// What a single message's failure means: dead-lettered, or retried.
    async fn settle_failure(
        &self,
        queued: &Queued,
        failure: Failure,
        span: &tracing::Span,
    ) -> Outcome {
        let (class, attempts) = match failure.settle(queued.attempts, self.max_attempts) {
            Settlement::Retry => {
                if failure.class == FailureClass::Unknown {
                    let attempts = queued.attempts + 1;
                    span.in_scope(|| {
                        tracing::warn!(error = %failure, attempts, max_attempts = self.max_attempts, "unknown failure; retrying")
                    });
                }
                return Outcome::Retry(failure);
            }
            Settlement::DeadLetter { class, attempts } => (class, attempts),
        };
        let topic = self.dead_letter_topic(queued.message.topic());
        let why = DeadLetter {
            class,
            error: &failure.message,
            attempts,
            consumer_group: &self.consumer_group,
        };
        match dead_letter(&self.producer, &topic, &queued.message, &why).await {
            Ok(()) => {
                span.in_scope(|| {
                    tracing::warn!(class, error = %failure, attempts, dead_letter_topic = %topic, "message dead-lettered")
                });
                if failure.class == FailureClass::Panic {
                    self.metrics.panics.inc();
                }
                Outcome::Done(ProcessOutcome::DeadLettered { class })
            }
            Err(e) => Outcome::Retry(Failure::transient(
                "kafka",
                format!("dead-lettering to {topic}: {e}"),
            )),
        }
    }

    fn dead_letter_topic(&self, topic: &str) -> String {
        let catalogue = self.codec.catalogue();
        catalogue
            .resolve(topic)
            .map(|t| catalogue.dead_letter(t))
            .unwrap_or_else(|| format!("{topic}.dlq"))
    }

    fn record(
        &self,
        message: &OwnedMessage,
        outcome: &Outcome,
        started: Instant,
        span: &tracing::Span,
    ) {
        let topic = message.topic();
        match outcome {
            Outcome::Done(done) => {
                self.metrics
                    .processing_seconds
                    .with_label_values(&[topic])
                    .observe(started.elapsed().as_secs_f64());
                self.metrics
                    .processed
                    .with_label_values(&[topic, done.label()])
                    .inc();
                if let ProcessOutcome::DeadLettered { class } = done {
                    self.metrics
                        .dead_lettered
                        .with_label_values(&[topic, class])
                        .inc();
                }
                span.in_scope(|| tracing::debug!(outcome = done.label(), "message processed"));
            }
            Outcome::Retry(failure) => {
                self.metrics.retried.with_label_values(&[topic]).inc();
                span.in_scope(|| tracing::debug!(error = %failure, "message to be retried"));
            }
            Outcome::Deferred => {}
        }
    }
}

/// The headers of a message as text, for the trace context.
pub(crate) fn headers_of(message: &OwnedMessage) -> HashMap<String, String> {
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
