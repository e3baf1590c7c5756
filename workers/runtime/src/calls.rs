//! Making the external calls a worker asked for, outside any transaction.
//!
//! Guarantee: a call is made only after the transaction that recorded its
//! intent committed, and its answer is recorded (with the events it emits)
//! in a transaction of its own, so no external call ever happens inside an
//! open transaction and a rolled-back batch never made one. "Not now" answers
//! are retried with capped, jittered backoff without limit, other calls
//! meanwhile going on (at most [`CONCURRENCY`] at once). An intent whose
//! answer was never recorded (a crash, a stop) is found again by
//! [`Calls::unsettled`] once its lease ran out, and called again under the
//! same idempotency key.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chorus_avro::headers::EVENT_ID;
use chorus_platform::telemetry::continue_trace;
use rdkafka::message::{Headers, Message, OwnedMessage};
use rdkafka::producer::FutureProducer;
use sqlx::PgPool;
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::delivery::OutboxPublisher;
use crate::emit::Emitter;
use crate::failure::{Failure, FailureClass};
use crate::handler::{CallOutcome, Calls, Verdict};
use crate::metrics::Metrics;
use crate::retry::RetryPolicy;
use crate::{inbox, outbox};

/// Calls in flight at once; more wait (and the consumer loop with them).
pub const CONCURRENCY: usize = 64;
/// How long a call's intent is reserved for the process that makes it.
pub const LEASE: Duration = Duration::from_secs(300);
/// How often intents left unanswered are looked for.
const RECOVER_EVERY: Duration = Duration::from_secs(15);
/// Answers recorded in one transaction at most.
const SETTLE_BATCH: usize = 256;

/// Makes calls and records their answers.
pub struct CallExecutor<C: Calls> {
    pub calls: Arc<C>,
    pub pool: PgPool,
    pub emitter: Arc<Emitter>,
    pub publisher: OutboxPublisher,
    pub metrics: Arc<Metrics>,
    /// Backoff between attempts of a call answered "not now".
    pub retry: RetryPolicy,
    /// Where calls that follow a recorded answer are asked for.
    pub follow_ups: mpsc::Sender<CallRequest<C::Call>>,
    /// Dead letters of messages whose call was refused for good.
    pub dead_letters: DeadLetters,
}

/// Where a message whose external call was refused for good is dead-lettered.
pub struct DeadLetters {
    pub producer: FutureProducer,
    pub catalogue: chorus_avro::TopicCatalogue,
    pub consumer_group: String,
}

/// A call to make, with the message that asked for it when this process
/// consumed it (a call found again after a restart has none).
pub type CallRequest<Call> = (Call, Option<Arc<OwnedMessage>>);

struct Answered<C: Calls> {
    call: C::Call,
    answer: C::Answer,
    span: tracing::Span,
    origin: Option<Arc<OwnedMessage>>,
}

impl<C: Calls> CallExecutor<C> {
    /// Runs until `shutdown`; calls still in flight then are abandoned (their
    /// intents stay unsettled, for the next start).
    pub async fn run(
        self,
        mut requests: mpsc::Receiver<CallRequest<C::Call>>,
        shutdown: CancellationToken,
    ) -> anyhow::Result<()> {
        let this = Arc::new(self);
        let in_flight: Arc<Mutex<HashSet<String>>> = Arc::default();
        let permits = Arc::new(Semaphore::new(CONCURRENCY));
        let (answers, answered) = mpsc::channel::<Answered<C>>(SETTLE_BATCH * 4);
        let settler = tokio::spawn(this.clone().settle_loop(answered, in_flight.clone()));
        let mut calling = JoinSet::new();
        let mut recover = tokio::time::interval(RECOVER_EVERY);
        loop {
            let call = tokio::select! {
                _ = shutdown.cancelled() => break,
                Some(call) = requests.recv() => vec![call],
                _ = recover.tick() => this.recover().await.into_iter().map(|c| (c, None)).collect(),
                Some(done) = calling.join_next(), if !calling.is_empty() => {
                    done?;
                    continue;
                }
            };
            for (call, origin) in call {
                if !in_flight
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(C::id(&call))
                {
                    continue;
                }
                let permit = tokio::select! {
                    _ = shutdown.cancelled() => break,
                    permit = permits.clone().acquire_owned() => permit?,
                };
                let this = this.clone();
                let answers = answers.clone();
                let shutdown = shutdown.clone();
                calling.spawn(async move {
                    this.call_until_answered(call, origin, answers, shutdown)
                        .await;
                    drop(permit);
                });
            }
        }
        calling.abort_all();
        drop(answers);
        settler.await??;
        Ok(())
    }

    /// Intents nobody holds a lease on.
    async fn recover(&self) -> Vec<C::Call> {
        let found = async {
            let mut conn = self.pool.acquire().await?;
            self.calls.unsettled(&mut conn, LEASE, 500).await
        }
        .await;
        match found {
            Ok(calls) => {
                if !calls.is_empty() {
                    tracing::info!(
                        calls = calls.len(),
                        "resuming external calls left unanswered"
                    );
                }
                calls
            }
            Err(e) => {
                tracing::warn!(error = %e, "looking for unanswered external calls failed; will look again");
                Vec::new()
            }
        }
    }

    async fn call_until_answered(
        &self,
        call: C::Call,
        origin: Option<Arc<OwnedMessage>>,
        answers: mpsc::Sender<Answered<C>>,
        shutdown: CancellationToken,
    ) {
        let name = C::span_name(&call);
        let span = tracing::info_span!(
            "call",
            otel.name = name,
            order_id = C::key(&call),
            attempts = tracing::field::Empty,
        );
        if let Some(traceparent) = C::traceparent(&call) {
            let headers = [(
                chorus_avro::headers::TRACEPARENT.to_string(),
                traceparent.to_string(),
            )]
            .into_iter()
            .collect();
            continue_trace(&span, &headers);
        }
        let mut pauses = self.retry.pauses();
        let mut attempt = 1;
        loop {
            let outcome = self
                .calls
                .call(&call, attempt)
                .instrument(span.clone())
                .await;
            match outcome {
                CallOutcome::Answered(answer) => {
                    self.metrics
                        .calls
                        .with_label_values(&[name, "answered"])
                        .inc();
                    span.record("attempts", attempt);
                    let _ = answers
                        .send(Answered {
                            call,
                            answer,
                            span,
                            origin,
                        })
                        .await;
                    return;
                }
                CallOutcome::Retry(why) => {
                    self.metrics.calls.with_label_values(&[name, "retry"]).inc();
                    let pause = pauses.next().unwrap_or(self.retry.max_backoff);
                    span.in_scope(|| {
                        tracing::warn!(attempt, pause_ms = pause.as_millis() as u64, %why, "{name}: not now; retrying")
                    });
                    tokio::select! {
                        _ = shutdown.cancelled() => return,
                        _ = tokio::time::sleep(pause) => {}
                    }
                    attempt += 1;
                }
            }
        }
    }

    async fn settle_loop(
        self: Arc<Self>,
        mut answered: mpsc::Receiver<Answered<C>>,
        in_flight: Arc<Mutex<HashSet<String>>>,
    ) -> anyhow::Result<()> {
        while let Some(first) = answered.recv().await {
            let mut batch = vec![first];
            while batch.len() < SETTLE_BATCH {
                match answered.try_recv() {
                    Ok(more) => batch.push(more),
                    Err(_) => break,
                }
            }
            let ids: Vec<String> = batch.iter().map(|a| C::id(&a.call)).collect();
            self.settle_until_recorded(batch).await;
            let mut in_flight = in_flight.lock().unwrap_or_else(|e| e.into_inner());
            for id in ids {
                in_flight.remove(&id);
            }
        }
        Ok(())
    }

    /// Records answers; a transient failure is retried until it goes
    /// through, any other is narrowed down to the one answer that causes it,
    /// which is left unsettled (logged) for a later recovery.
    async fn settle_until_recorded(&self, batch: Vec<Answered<C>>) {
        let mut pending = vec![batch];
        let mut pauses = self.retry.pauses();
        while let Some(batch) = pending.pop() {
            match self.settle_once(&batch).await {
                Ok(()) => {}
                Err(failure) if failure.class == FailureClass::Transient => {
                    let pause = pauses.next().unwrap_or(self.retry.max_backoff);
                    tracing::warn!(error = %failure, pause_ms = pause.as_millis() as u64, "recording call answers failed; retrying");
                    tokio::time::sleep(pause).await;
                    pending.push(batch);
                }
                Err(failure) if batch.len() > 1 => {
                    tracing::debug!(error = %failure, "recording call answers failed; one by one");
                    let mut batch = batch;
                    let second = batch.split_off(batch.len() / 2);
                    pending.push(second);
                    pending.push(batch);
                }
                Err(failure) => {
                    let answered = &batch[0];
                    answered.span.in_scope(|| {
                        tracing::error!(error = %failure, call = ?answered.call, "the answer of an external call cannot be recorded; the intent stays unsettled")
                    });
                }
            }
        }
    }

    async fn settle_once(&self, batch: &[Answered<C>]) -> Result<(), Failure> {
        let mut tx = self.pool.begin().await?;
        let pairs: Vec<(&C::Call, &C::Answer)> =
            batch.iter().map(|a| (&a.call, &a.answer)).collect();
        let verdicts = self
            .calls
            .settle(&mut tx, &pairs)
            .await
            .map_err(Failure::from)?;
        if verdicts.len() != batch.len() {
            return Err(Failure::unknown(
                "handler",
                format!(
                    "settle answered {} verdicts for {} answers",
                    verdicts.len(),
                    batch.len()
                ),
            ));
        }
        let mut rows = Vec::new();
        let mut follow_ups = Vec::new();
        let mut refused = Vec::new();
        for (answered, verdict) in batch.iter().zip(verdicts) {
            match verdict {
                Verdict::Applied { emit, calls } => {
                    rows.extend(self.emitter.rows(emit, &answered.span).await?);
                    follow_ups.extend(calls.into_iter().map(|c| (c, answered.origin.clone())));
                }
                Verdict::Rejected(reason) => {
                    answered.span.in_scope(|| {
                        tracing::warn!(call = ?answered.call, reason, "external call refused for good")
                    });
                    self.metrics
                        .calls
                        .with_label_values(&[C::span_name(&answered.call), "refused"])
                        .inc();
                    refused.push((answered, reason));
                }
            }
        }
        // A refused call's cause is forgotten by the inbox, so that the
        // dead letter below, once redriven, is applied again.
        let forgotten: Vec<&str> = refused
            .iter()
            .filter_map(|(answered, _)| event_id_of(answered.origin.as_deref()?))
            .collect();
        inbox::forget(&mut tx, &forgotten).await?;
        let written = outbox::write(&mut tx, rows).await?;
        tx.commit().await?;
        self.publisher.enqueue(written).await;
        for (answered, reason) in refused {
            if let Some(origin) = &answered.origin {
                self.dead_letters.send(origin, &reason).await;
            }
        }
        for call in follow_ups {
            let _ = self.follow_ups.send(call).await;
        }
        Ok(())
    }
}

/// The `chorus-event-id` header of a message.
fn event_id_of(message: &OwnedMessage) -> Option<&str> {
    message
        .headers()?
        .iter()
        .find(|h| h.key == EVENT_ID)
        .and_then(|h| std::str::from_utf8(h.value?).ok())
}

impl DeadLetters {
    /// Dead-letters `message` (class `rejected`); a failure is logged: the
    /// refusal is recorded by the worker either way.
    async fn send(&self, message: &OwnedMessage, reason: &str) {
        let topic = self
            .catalogue
            .resolve(message.topic())
            .map(|t| self.catalogue.dead_letter(t))
            .unwrap_or_else(|| format!("{}.dlq", message.topic()));
        let why = crate::dlq::DeadLetter {
            class: "rejected",
            error: reason,
            attempts: 1,
            consumer_group: &self.consumer_group,
        };
        if let Err(e) = crate::dlq::dead_letter(&self.producer, &topic, message, &why).await {
            tracing::error!(error = %e, dead_letter_topic = %topic, "dead-lettering a message whose call was refused failed");
        }
    }
}
