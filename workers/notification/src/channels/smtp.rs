//! The SMTP channel: one plain-text e-mail per notification, its `Message-ID`
//! derived from the delivery id so a resend is recognisably the same mail.
//! Transient SMTP failures (4xx replies, connection errors) are retried with
//! backoff; a permanent reply fails at once.

use chorus_runtime::error_chain;
use chorus_runtime::retry::RetryPolicy;
use lettre::message::Mailbox;
use lettre::message::header::ContentType;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use uuid::Uuid;

use super::DeliveryError;
use crate::config::SmtpConfig;
use crate::rules::{OrderOutcome, email_text, recipient_address};

#[derive(Debug)]
pub struct SmtpChannel {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    recipient_domain: String,
    retry: RetryPolicy,
}

impl SmtpChannel {
    pub fn new(
        config: &SmtpConfig,
        retry: RetryPolicy,
    ) -> Result<SmtpChannel, lettre::transport::smtp::Error> {
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(&config.url)?
            .timeout(Some(config.timeout))
            .build();
        Ok(SmtpChannel {
            transport,
            from: config.from.clone(),
            recipient_domain: config.recipient_domain.clone(),
            retry,
        })
    }

    /// The customer's mailbox, or why the customer cannot be mailed.
    pub fn recipient(&self, customer_id: &str) -> Result<Mailbox, DeliveryError> {
        let address = recipient_address(customer_id, &self.recipient_domain);
        address.parse().map_err(|e| {
            DeliveryError::Invalid(format!(
                "customer {customer_id:?} has no valid e-mail address {address:?}: {e}"
            ))
        })
    }

    /// Sends the mail until accepted or the attempts run out; returns the attempts.
    pub async fn deliver(
        &self,
        outcome: &OrderOutcome,
        delivery_id: Uuid,
    ) -> Result<u32, DeliveryError> {
        let (subject, body) = email_text(outcome);
        let message = Message::builder()
            .from(self.from.clone())
            .to(self.recipient(&outcome.customer_id)?)
            .subject(subject)
            .message_id(Some(format!("<{delivery_id}@chorus>")))
            .header(ContentType::TEXT_PLAIN)
            .body(body)
            .map_err(|e| DeliveryError::Invalid(format!("building the e-mail: {e}")))?;
        let mut attempt = 1;
        loop {
            let error = match self.transport.send(message.clone()).await {
                Ok(_) => return Ok(attempt),
                Err(e) => e,
            };
            let problem = error_chain(&error);
            if error.is_permanent() {
                // An SMTP 5xx: the server will never take this mail.
                return Err(DeliveryError::Invalid(format!(
                    "e-mail to {} refused: {problem}",
                    outcome.customer_id
                )));
            }
            if !self.retry.may_retry_after(attempt) {
                return Err(DeliveryError::Failed(format!(
                    "e-mail to {} failed after {attempt} attempt(s): {problem}",
                    outcome.customer_id
                )));
            }
            let pause = self.retry.backoff_after(attempt);
            tracing::warn!(%delivery_id, attempt, pause_ms = pause.as_millis() as u64, %problem, "e-mail delivery failed; retrying");
            tokio::time::sleep(pause).await;
            attempt += 1;
        }
    }
}
