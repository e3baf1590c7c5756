//! The webhook channel: POSTs the order's final state as JSON, signed with
//! HMAC-SHA256 (`X-Chorus-Signature`) and carrying the delivery id
//! (`X-Chorus-Delivery`, the same on every retry and resend) for receivers to
//! dedupe on. A 2xx answer is delivered; 5xx, 408, 429, timeouts and
//! connection errors are retried with backoff; anything else fails at once.

use chorus_runtime::error_chain;
use chorus_runtime::retry::RetryPolicy;
use reqwest::StatusCode;
use uuid::Uuid;

use super::DeliveryError;
use crate::config::WebhookConfig;
use crate::signature::{DELIVERY_HEADER, SIGNATURE_HEADER, sign};

pub struct WebhookChannel {
    client: reqwest::Client,
    url: String,
    secret: String,
    retry: RetryPolicy,
}

impl std::fmt::Debug for WebhookChannel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookChannel")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

enum Attempt {
    Delivered,
    Retryable(String),
    Refused(String),
}

impl WebhookChannel {
    pub fn new(
        config: &WebhookConfig,
        retry: RetryPolicy,
    ) -> Result<WebhookChannel, reqwest::Error> {
        let client = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(config.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(WebhookChannel {
            client,
            url: config.url.clone(),
            secret: config.secret.clone(),
            retry,
        })
    }

    /// Sends `body` until a 2xx or the attempts run out; returns the attempts.
    pub async fn deliver(&self, body: &[u8], delivery_id: Uuid) -> Result<u32, DeliveryError> {
        let signature = sign(self.secret.as_bytes(), body);
        let mut attempt = 1;
        loop {
            match self.attempt(body, &signature, delivery_id).await {
                Attempt::Delivered => return Ok(attempt),
                Attempt::Retryable(problem) if self.retry.may_retry_after(attempt) => {
                    let pause = self.retry.backoff_after(attempt);
                    tracing::warn!(
                        %delivery_id,
                        attempt,
                        pause_ms = pause.as_millis() as u64,
                        %problem,
                        "webhook delivery failed; retrying",
                    );
                    tokio::time::sleep(pause).await;
                    attempt += 1;
                }
                Attempt::Retryable(problem) | Attempt::Refused(problem) => {
                    return Err(DeliveryError::Failed(format!(
                        "webhook {} failed after {attempt} attempt(s): {problem}",
                        self.url
                    )));
                }
            }
        }
    }

    async fn attempt(&self, body: &[u8], signature: &str, delivery_id: Uuid) -> Attempt {
        let sent = self
            .client
            .post(&self.url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(SIGNATURE_HEADER, signature)
            .header(DELIVERY_HEADER, delivery_id.to_string())
            .body(body.to_vec())
            .send()
            .await;
        let response = match sent {
            Ok(response) => response,
            Err(e) => return Attempt::Retryable(error_chain(&e)),
        };
        let status = response.status();
        if status.is_success() {
            return Attempt::Delivered;
        }
        let answer = response.text().await.unwrap_or_default();
        let problem = format!("{status}: {}", answer.chars().take(200).collect::<String>());
        if status.is_server_error()
            || status == StatusCode::TOO_MANY_REQUESTS
            || status == StatusCode::REQUEST_TIMEOUT
        {
            Attempt::Retryable(problem)
        } else {
            Attempt::Refused(problem)
        }
    }
}
