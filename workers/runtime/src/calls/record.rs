//! Recording calls' answers: many in one transaction, with the events they
//! emit, then the follow-up calls they ask for. A transient failure (the
//! database away) is retried until it goes through; any other is narrowed
//! down to the one answer that causes it, which is replaced by the worker's
//! fallback answer ([`Calls::fallback`], e.g. "unavailable", which voids the
//! charge by its idempotency key). A call with no answer to record is parked:
//! its lease is set [`PARK`] ahead and the message that asked for it is
//! dead-lettered with a class naming why.

use std::sync::Arc;

use rdkafka::message::OwnedMessage;
use tokio::sync::mpsc;

use super::attempts::{Ended, Finished, event_id_of};
use super::{CallExecutor, CallRequest, DeadLetters, Held, PARK, lock};
use crate::failure::{Failure, FailureClass};
use crate::handler::{Calls, Fallback, Settling, Verdict};
use crate::{inbox, outbox};

/// Answers recorded in one transaction at most.
const RECORD_BATCH: usize = 256;

/// An answer to record.
struct Answer<C: Calls> {
    call: C::Call,
    answer: C::Answer,
    span: tracing::Span,
    origin: Option<Arc<OwnedMessage>>,
    /// Already the worker's fallback in place of an answer.
    fallback: bool,
}

/// A call left without an answer this time, and why.
struct Parked<C: Calls> {
    call: C::Call,
    class: &'static str,
    why: String,
    span: tracing::Span,
    origin: Option<Arc<OwnedMessage>>,
}

impl<C: Calls> CallExecutor<C> {
    /// Records what the calls came to until every sender is gone.
    pub(super) async fn record_loop(
        self: Arc<Self>,
        mut finished: mpsc::UnboundedReceiver<Finished<C>>,
        held: Held<C::Call>,
        follow_ups: mpsc::UnboundedSender<CallRequest<C::Call>>,
    ) -> anyhow::Result<()> {
        loop {
            self.recorder_progress.beat();
            let first = match tokio::time::timeout(super::RECOVER_EVERY, finished.recv()).await {
                Err(_) => continue,
                Ok(None) => return Ok(()),
                Ok(Some(first)) => first,
            };
            let mut batch = vec![first];
            while batch.len() < RECORD_BATCH {
                match finished.try_recv() {
                    Ok(more) => batch.push(more),
                    Err(_) => break,
                }
            }
            let ids: Vec<String> = batch.iter().map(|f| C::id(&f.call)).collect();
            let mut answers = Vec::new();
            let mut parked = Vec::new();
            for f in batch {
                match f.outcome {
                    Ended::Answered(answer) => answers.push(Answer {
                        call: f.call,
                        answer,
                        span: f.span,
                        origin: f.origin,
                        fallback: false,
                    }),
                    Ended::GaveUp(why) => match C::fallback(&f.call, Fallback::Exhausted(&why)) {
                        Some(answer) => answers.push(Answer {
                            call: f.call,
                            answer,
                            span: f.span,
                            origin: f.origin,
                            fallback: true,
                        }),
                        None => parked.push(Parked {
                            call: f.call,
                            class: "call_exhausted",
                            why,
                            span: f.span,
                            origin: f.origin,
                        }),
                    },
                }
            }
            parked.extend(self.record_until_done(answers, &follow_ups).await);
            self.park(parked).await;
            let mut held = lock(&held);
            for id in ids {
                held.remove(&id);
            }
        }
    }

    /// Records answers; returns the calls whose answer could not be
    /// recorded, even as the fallback.
    async fn record_until_done(
        &self,
        answers: Vec<Answer<C>>,
        follow_ups: &mpsc::UnboundedSender<CallRequest<C::Call>>,
    ) -> Vec<Parked<C>> {
        let mut unrecorded = Vec::new();
        let mut pending = vec![answers];
        let mut pauses = self.retry.pauses();
        while let Some(batch) = pending.pop() {
            if batch.is_empty() {
                continue;
            }
            match self.record_once(&batch, follow_ups).await {
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
                    let mut one = batch;
                    let failed = one.pop().expect("a batch of one");
                    let why = failure.to_string();
                    let fallback = if failed.fallback {
                        None
                    } else {
                        C::fallback(&failed.call, Fallback::Unrecordable(&why))
                    };
                    failed.span.in_scope(|| {
                        tracing::error!(error = %why, call = ?failed.call, fallback = fallback.is_some(), "the answer of an external call cannot be recorded")
                    });
                    match fallback {
                        Some(answer) => pending.push(vec![Answer {
                            answer,
                            fallback: true,
                            ..failed
                        }]),
                        None => unrecorded.push(Parked {
                            call: failed.call,
                            class: "unrecordable",
                            why,
                            span: failed.span,
                            origin: failed.origin,
                        }),
                    }
                }
            }
        }
        unrecorded
    }

    async fn record_once(
        &self,
        batch: &[Answer<C>],
        follow_ups: &mpsc::UnboundedSender<CallRequest<C::Call>>,
    ) -> Result<(), Failure> {
        let mut tx = self.pool.begin().await?;
        let settling: Vec<Settling<'_, C::Call, C::Answer>> = batch
            .iter()
            .map(|a| Settling {
                call: &a.call,
                answer: &a.answer,
                span: &a.span,
            })
            .collect();
        let verdicts = self
            .calls
            .settle(&mut tx, &settling)
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
        let mut asked = Vec::new();
        let mut refused = Vec::new();
        for (answered, verdict) in batch.iter().zip(verdicts) {
            match verdict {
                Verdict::Applied { emit, calls } => {
                    rows.extend(self.emitter.rows(emit, &answered.span).await?);
                    asked.extend(calls.into_iter().map(|c| (c, answered.origin.clone())));
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
        self.publisher.commit(tx).await?;
        self.publisher.enqueue(written).await;
        for (answered, reason) in refused {
            if let Some(origin) = &answered.origin {
                self.dead_letters.send(origin, "rejected", &reason).await;
            }
        }
        for call in asked {
            // The executor outlives its recorder; a send fails only at a stop,
            // when the follow-up's intent is committed for the next start.
            let _ = follow_ups.send(call);
        }
        Ok(())
    }

    /// Leaves calls without an answer for [`PARK`], then anyone takes them
    /// again; the messages that asked are dead-lettered so operators see them.
    async fn park(&self, parked: Vec<Parked<C>>) {
        if parked.is_empty() {
            return;
        }
        let calls: Vec<&C::Call> = parked.iter().map(|p| &p.call).collect();
        let renewed = async {
            let mut conn = self.pool.acquire().await?;
            self.calls.renew(&mut conn, &calls, PARK).await
        };
        if let Err(e) = renewed.await {
            tracing::warn!(error = %e, calls = calls.len(), "parking external calls failed; they are taken again when their lease runs out");
        }
        for p in &parked {
            p.span.in_scope(|| {
                tracing::warn!(class = p.class, why = %p.why, "external call parked for {} s", PARK.as_secs())
            });
            if let Some(origin) = &p.origin {
                self.dead_letters.send(origin, p.class, &p.why).await;
            }
        }
    }
}

impl DeadLetters {
    /// Dead-letters `message` with `class`; a failure is logged: the
    /// outcome is recorded by the worker either way.
    pub(super) async fn send(&self, message: &OwnedMessage, class: &str, reason: &str) {
        let topic = self
            .catalogue
            .resolve(rdkafka::Message::topic(message))
            .map(|t| self.catalogue.dead_letter(t))
            .unwrap_or_else(|| format!("{}.dlq", rdkafka::Message::topic(message)));
        let why = crate::dlq::DeadLetter {
            class,
            error: reason,
            attempts: 1,
            consumer_group: &self.consumer_group,
        };
        if let Err(e) = crate::dlq::dead_letter(&self.producer, &topic, message, &why).await {
            tracing::error!(error = %e, dead_letter_topic = %topic, "dead-lettering a message whose call did not go through failed");
        }
    }
}
