//! The notification worker's `Handler`.
//!
//! What "exactly once" means here: for each order, final state and channel,
//! the `deliveries` row and the `NotificationSent` event are written exactly
//! once. The log channel, which cannot fail, is written and emitted in the
//! consumer loop's transaction. A webhook or an e-mail is never sent inside a
//! transaction: the loop's transaction records the intent (`pending`); after
//! its commit the runtime sends, retrying "not now" answers (5xx, 408, 429,
//! timeouts, connection errors) with backoff without limit; the result and
//! `NotificationSent` are then recorded in a transaction of their own. A
//! rolled-back batch therefore never sent anything. Sending is at least once
//! (a crash between the send and its record sends again after the lease
//! runs out), always with the same deterministic `webhook-id` / `Message-ID`,
//! so receivers drop the repeat. A receiver's refusal for good (a 4xx other
//! than 408/429, an SMTP 5xx) is recorded on the delivery (`failed`) and the
//! final-state event is dead-lettered (the runtime's inbox forgets it), so
//! once the receiver is fixed, `chorus dlq redrive` sends it again: the
//! redriven event claims the failed delivery anew. A delivered one is never
//! claimed again, however often its event is redriven.

use std::time::Duration;

use chorus_avro::{EventType, Topic};
use chorus_runtime::{CallOutcome, Calls, Env, HandleError, Handler, Incoming, Settling, Verdict};
use sqlx::PgConnection;

use crate::channels::{Channels, DeliveryError};
use crate::config::NotificationConfig;
use crate::rules::{self, Channel};
use crate::store::{self, Claim, Pending};

const LEASE: Duration = chorus_runtime::calls::LEASE;

#[derive(Debug)]
pub struct NotificationHandler {
    channels: Channels,
}

/// What a remote channel made of one delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryAnswer {
    Delivered { attempts: u32 },
    Refused { error: String },
}

impl NotificationHandler {
    /// The handler with the channels configured by the environment.
    pub fn from_env() -> anyhow::Result<NotificationHandler> {
        NotificationHandler::from_config(&NotificationConfig::from_env(&Env::process())?)
    }

    pub fn from_config(config: &NotificationConfig) -> anyhow::Result<NotificationHandler> {
        let channels = Channels::from_config(config)?;
        tracing::info!(channels = ?channels.enabled(), "notification channels");
        Ok(NotificationHandler { channels })
    }

    pub fn channels(&self) -> Vec<Channel> {
        self.channels.enabled()
    }
}

impl Handler for NotificationHandler {
    type Calls = Channels;

    fn name(&self) -> &'static str {
        "notification"
    }

    fn topics(&self) -> &'static [Topic] {
        &[Topic::Orders]
    }

    fn handles(&self, event_type: EventType) -> bool {
        matches!(
            event_type,
            EventType::OrderConfirmed | EventType::OrderCancelled
        )
    }

    fn calls(&self) -> &Channels {
        &self.channels
    }

    async fn apply(
        &self,
        tx: &mut PgConnection,
        events: &[Incoming<'_>],
    ) -> Result<Vec<Verdict<Pending>>, HandleError> {
        let mut verdicts: Vec<Verdict<Pending>> = Vec::with_capacity(events.len());
        let outcomes: Vec<_> = events
            .iter()
            .map(|e| rules::order_outcome(e.event))
            .collect();
        let traceparents: Vec<Option<String>> = events
            .iter()
            .map(|e| chorus_runtime::traceparent(e.span))
            .collect();
        let mut claims = Vec::new();
        // Which event each claim is for.
        let mut owners = Vec::new();
        for (index, (incoming, outcome)) in events.iter().zip(&outcomes).enumerate() {
            let Some(outcome) = outcome else {
                verdicts.push(Verdict::emit(vec![]));
                continue;
            };
            if let Err(reason) = rules::check(incoming.event) {
                verdicts.push(Verdict::Rejected(reason));
                continue;
            }
            if let Err(DeliveryError::Invalid(problem) | DeliveryError::Failed(problem)) =
                self.channels.check(outcome)
            {
                verdicts.push(Verdict::Rejected(problem));
                continue;
            }
            verdicts.push(Verdict::emit(vec![]));
            for channel in self.channels.enabled() {
                claims.push(Claim {
                    outcome,
                    channel,
                    delivery_id: rules::delivery_id(
                        &outcome.order_id,
                        outcome.final_status,
                        channel,
                    ),
                    delivered: channel == Channel::Log,
                    cause_event_id: incoming.event.event_id(),
                    correlation_id: incoming.event.correlation_id(),
                    traceparent: traceparents[index].as_deref(),
                });
                owners.push(index);
            }
        }
        let new = store::claim(tx, &claims, LEASE).await?;
        for ((claim, index), new) in claims.iter().zip(owners).zip(new) {
            let incoming = &events[index];
            if !new {
                incoming.span.in_scope(
                    || tracing::debug!(channel = %claim.channel, "already notified, or under way"),
                );
                continue;
            }
            let Verdict::Applied { emit, calls } = &mut verdicts[index] else {
                continue;
            };
            if claim.channel == Channel::Log {
                incoming
                    .span
                    .in_scope(|| self.channels.log(claim.outcome, claim.delivery_id));
                emit.push(rules::notification_sent(
                    claim.cause_event_id,
                    claim.correlation_id,
                    claim.outcome,
                    Channel::Log,
                ));
            } else {
                calls.push(Pending {
                    delivery_id: claim.delivery_id,
                    channel: claim.channel,
                    outcome: claim.outcome.clone(),
                    cause_event_id: claim.cause_event_id.to_string(),
                    correlation_id: claim.correlation_id.to_string(),
                    traceparent: claim.traceparent.map(str::to_string),
                });
            }
        }
        Ok(verdicts)
    }
}

impl Calls for Channels {
    type Call = Pending;
    type Answer = DeliveryAnswer;

    fn id(call: &Pending) -> String {
        call.delivery_id.to_string()
    }

    fn span_name(call: &Pending) -> &'static str {
        match call.channel {
            Channel::Webhook => "deliver webhook",
            Channel::Smtp => "send email",
            Channel::Log => "log notification",
        }
    }

    fn key(call: &Pending) -> &str {
        &call.outcome.order_id
    }

    fn traceparent(call: &Pending) -> Option<&str> {
        call.traceparent.as_deref()
    }

    fn cause_event_id(call: &Pending) -> Option<&str> {
        Some(&call.cause_event_id)
    }

    async fn call(&self, call: &Pending, _attempt: u32) -> CallOutcome<DeliveryAnswer> {
        match self
            .deliver(call.channel, &call.outcome, call.delivery_id)
            .await
        {
            Ok(attempts) => CallOutcome::Answered(DeliveryAnswer::Delivered { attempts }),
            Err(DeliveryError::Failed(problem)) => CallOutcome::Retry(problem),
            Err(DeliveryError::Invalid(problem)) => {
                CallOutcome::Answered(DeliveryAnswer::Refused { error: problem })
            }
        }
    }

    async fn settle(
        &self,
        tx: &mut PgConnection,
        answers: &[Settling<'_, Pending, DeliveryAnswer>],
    ) -> Result<Vec<Verdict<Pending>>, HandleError> {
        let mut verdicts = Vec::with_capacity(answers.len());
        for Settling { call, answer, .. } in answers {
            let (attempts, error) = match answer {
                DeliveryAnswer::Delivered { attempts } => (*attempts, None),
                DeliveryAnswer::Refused { error } => (1, Some(error.as_str())),
            };
            if !store::record_result(tx, call.delivery_id, attempts, error).await? {
                verdicts.push(Verdict::emit(vec![]));
                continue;
            }
            verdicts.push(match answer {
                DeliveryAnswer::Delivered { .. } => Verdict::emit(vec![rules::notification_sent(
                    &call.cause_event_id,
                    &call.correlation_id,
                    &call.outcome,
                    call.channel,
                )]),
                DeliveryAnswer::Refused { error } => Verdict::Rejected(format!(
                    "the {} channel refused the notification of order {} for good: {error}",
                    call.channel, call.outcome.order_id
                )),
            });
        }
        Ok(verdicts)
    }

    async fn unsettled(
        &self,
        conn: &mut PgConnection,
        lease: Duration,
        limit: i64,
    ) -> Result<Vec<Pending>, sqlx::Error> {
        store::lease_pending(conn, lease, limit).await
    }

    async fn renew(
        &self,
        conn: &mut PgConnection,
        calls: &[&Pending],
        lease: Duration,
    ) -> Result<(), sqlx::Error> {
        let ids: Vec<uuid::Uuid> = calls.iter().map(|call| call.delivery_id).collect();
        store::renew_leases(conn, &ids, Some(lease)).await
    }

    async fn release(
        &self,
        conn: &mut PgConnection,
        calls: &[&Pending],
    ) -> Result<(), sqlx::Error> {
        let ids: Vec<uuid::Uuid> = calls.iter().map(|call| call.delivery_id).collect();
        store::renew_leases(conn, &ids, None).await
    }
}
