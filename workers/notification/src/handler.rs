//! The notification worker's `Handler`.
//!
//! What "exactly once" means here: for each order, final state and channel,
//! the `deliveries` row and the `NotificationSent` event are written exactly
//! once, in the consumer loop's transaction. For each enabled channel the
//! handler claims the row (skipping the channel if it is already recorded),
//! sends, then completes the row — and the loop commits after `handle`
//! returns. Sending is therefore at least once: if the process dies, or a
//! later channel fails, after a send and before the commit, the transaction
//! rolls back and the replay sends again. Every resend carries the same
//! deterministic delivery id (`X-Chorus-Delivery` for webhooks, the
//! `Message-ID` of e-mails) so receivers can drop the repeat. A channel that
//! keeps failing returns `HandleError::Transient`: the loop retries the event
//! later, it is never skipped. The log channel goes last, so a failing remote
//! channel rolls back before anything is logged.

use chorus_avro::{Event, EventType, Topic};
use chorus_runtime::{Env, HandleError, Handler};
use sqlx::PgConnection;

use crate::channels::{Channels, DeliveryError};
use crate::config::NotificationConfig;
use crate::rules::{self, Channel};
use crate::store;

#[derive(Debug)]
pub struct NotificationHandler {
    channels: Channels,
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

    async fn handle(
        &self,
        conn: &mut PgConnection,
        event: &Event,
    ) -> Result<Vec<Event>, HandleError> {
        let Some(outcome) = rules::order_outcome(event) else {
            return Ok(vec![]);
        };
        self.channels.check(&outcome).map_err(handle_error)?;
        let mut emitted = Vec::new();
        for channel in self.channels.enabled() {
            let delivery_id = rules::delivery_id(&outcome.order_id, outcome.final_status, channel);
            if !store::claim_delivery(
                conn,
                &outcome.order_id,
                outcome.final_status,
                channel,
                delivery_id,
            )
            .await?
            {
                tracing::debug!(order_id = %outcome.order_id, %channel, "already notified");
                continue;
            }
            let attempts = self
                .channels
                .deliver(channel, &outcome, delivery_id)
                .await
                .map_err(handle_error)?;
            store::mark_delivered(
                conn,
                &outcome.order_id,
                outcome.final_status,
                channel,
                attempts,
            )
            .await?;
            emitted.push(rules::notification_sent(event, &outcome, channel));
        }
        Ok(emitted)
    }
}

fn handle_error(error: DeliveryError) -> HandleError {
    match error {
        DeliveryError::Failed(problem) => HandleError::Transient(problem),
        DeliveryError::Invalid(problem) => HandleError::Permanent(problem),
    }
}
