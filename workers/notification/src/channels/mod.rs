//! The channels a notification goes out on. Each delivery carries its
//! deterministic delivery id; a failure is reported, never swallowed.

mod log;
mod smtp;
mod webhook;

use uuid::Uuid;

pub use smtp::SmtpChannel;
pub use webhook::WebhookChannel;

use crate::config::NotificationConfig;
use crate::rules::{Channel, OrderOutcome};

/// Why a notification did not go out.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeliveryError {
    /// Still failing after the channel's retries; may work later.
    #[error("{0}")]
    Failed(String),
    /// Can never work for this order (e.g. no valid e-mail address).
    #[error("{0}")]
    Invalid(String),
}

/// The configured channels.
#[derive(Debug)]
pub struct Channels {
    webhook: Option<WebhookChannel>,
    smtp: Option<SmtpChannel>,
    log: bool,
}

impl Channels {
    pub fn from_config(config: &NotificationConfig) -> anyhow::Result<Channels> {
        Ok(Channels {
            webhook: config
                .webhook
                .as_ref()
                .map(|webhook| WebhookChannel::new(webhook, config.retry))
                .transpose()?,
            smtp: config
                .smtp
                .as_ref()
                .map(|smtp| SmtpChannel::new(smtp, config.retry))
                .transpose()?,
            log: config.log,
        })
    }

    /// The channels that are on, in the order they are tried.
    pub fn enabled(&self) -> Vec<Channel> {
        let on = [
            (Channel::Webhook, self.webhook.is_some()),
            (Channel::Smtp, self.smtp.is_some()),
            (Channel::Log, self.log),
        ];
        on.into_iter()
            .filter(|(_, on)| *on)
            .map(|(c, _)| c)
            .collect()
    }

    /// Finds what can never be delivered before anything is sent.
    pub fn check(&self, outcome: &OrderOutcome) -> Result<(), DeliveryError> {
        if let Some(smtp) = &self.smtp {
            smtp.recipient(&outcome.customer_id)?;
        }
        Ok(())
    }

    /// Writes `outcome` to the log channel (which cannot fail).
    pub fn log(&self, outcome: &OrderOutcome, delivery_id: Uuid) {
        log::deliver(outcome, delivery_id);
    }

    /// Delivers `outcome` on `channel`; returns the attempts it took.
    pub async fn deliver(
        &self,
        channel: Channel,
        outcome: &OrderOutcome,
        delivery_id: Uuid,
    ) -> Result<u32, DeliveryError> {
        let off = || DeliveryError::Invalid(format!("the {channel} channel is not configured"));
        match channel {
            Channel::Webhook => {
                let webhook = self.webhook.as_ref().ok_or_else(off)?;
                webhook
                    .deliver(&crate::rules::webhook_body(outcome), delivery_id)
                    .await
            }
            Channel::Smtp => {
                let smtp = self.smtp.as_ref().ok_or_else(off)?;
                smtp.deliver(outcome, delivery_id).await
            }
            Channel::Log => {
                log::deliver(outcome, delivery_id);
                Ok(1)
            }
        }
    }
}
