//! The webhook channel: POSTs the order's final state as JSON, signed per the
//! Standard Webhooks specification — `webhook-id` (the delivery id, the same
//! on every retry and resend, for receivers to dedupe on), `webhook-timestamp`
//! and `webhook-signature`, signed anew for each attempt so its timestamp is
//! fresh. A 2xx answer is delivered; 5xx, 408, 429, timeouts and connection
//! errors are retried with backoff; anything else fails at once.

use chorus_runtime::error_chain;
use chorus_runtime::retry::RetryPolicy;
use reqwest::StatusCode;
use uuid::Uuid;

use super::DeliveryError;
use crate::config::WebhookConfig;
use crate::signature::{ID_HEADER, SIGNATURE_HEADER, SigningSecrets, TIMESTAMP_HEADER};

pub struct WebhookChannel {
    client: reqwest::Client,
    url: String,
    secrets: SigningSecrets,
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
            secrets: config.secrets.clone(),
            retry,
        })
    }

    /// Sends `body` until a 2xx or the attempts run out; returns the attempts.
    pub async fn deliver(&self, body: &[u8], delivery_id: Uuid) -> Result<u32, DeliveryError> {
        let mut attempt = 1;
        loop {
            match self.attempt(body, delivery_id).await {
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
                Attempt::Retryable(problem) => {
                    return Err(DeliveryError::Failed(format!(
                        "webhook {} failed after {attempt} attempt(s): {problem}",
                        self.url
                    )));
                }
                // A 4xx other than 408/429: the receiver will never take it.
                Attempt::Refused(problem) => {
                    return Err(DeliveryError::Invalid(format!(
                        "webhook {} refused the delivery: {problem}",
                        self.url
                    )));
                }
            }
        }
    }

    async fn attempt(&self, body: &[u8], delivery_id: Uuid) -> Attempt {
        // Receivers reject a timestamp older than their tolerance (five
        // minutes in the reference libraries), so every attempt is signed
        // with its own time rather than the first attempt's.
        let id = delivery_id.to_string();
        let timestamp = chrono::Utc::now().timestamp();
        let signature = match self.secrets.sign(&id, timestamp, body) {
            Ok(signature) => signature,
            // Signing again would fail again: nothing a receiver could take.
            Err(e) => return Attempt::Refused(e.to_string()),
        };
        let sent = self
            .client
            .post(&self.url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(ID_HEADER, id)
            .header(TIMESTAMP_HEADER, timestamp.to_string())
            .header(SIGNATURE_HEADER, signature)
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
        let answer = read_limited(response).await;
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

/// Up to [`MAX_ANSWER_BYTES`] of an answer's body, as text (a receiver's
/// error page is shown in logs, never read whole).
async fn read_limited(mut response: reqwest::Response) -> String {
    const MAX_ANSWER_BYTES: usize = 4 * 1024;
    let mut body = Vec::new();
    while let Ok(Some(chunk)) = response.chunk().await {
        let room = MAX_ANSWER_BYTES.saturating_sub(body.len());
        body.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if body.len() >= MAX_ANSWER_BYTES {
            break;
        }
    }
    String::from_utf8_lossy(&body).into_owned()
}
