//! A payment provider over HTTP, speaking the small JSON API described in
//! `workers/payment/README.md`.
//!
//! Every call carries the order id as `Idempotency-Key`, so a retry after a
//! timeout (when the first call may have gone through) cannot charge twice,
//! and a void by that key releases a charge whose answer never arrived.
//! Failures the provider may recover from (5xx, 429, timeouts, connection
//! errors) are `Unavailable`; every other refusal is `Declined`.

use std::time::Duration;

use chorus_runtime::error_chain;
use reqwest::StatusCode;
use serde::{Deserialize, Serialize};

use super::{
    Authorization, AuthorizationRequest, PaymentProvider, ProviderError, VoidRequest, Voided,
};

#[derive(Debug, Clone)]
pub struct HttpProvider {
    client: reqwest::Client,
    endpoint: String,
    voids: String,
}

/// Answers are read up to this size; a longer one is cut (and is no answer we know).
const MAX_ANSWER_BYTES: usize = 64 * 1024;

#[derive(Serialize)]
struct VoidBody<'a> {
    reference: &'a str,
    authorization_id: Option<&'a str>,
}

#[derive(Serialize)]
struct AuthorizationBody<'a> {
    /// A decimal string such as "19.99", never a JSON number.
    amount: String,
    currency: &'a str,
    token: &'a str,
    reference: &'a str,
}

#[derive(Deserialize)]
struct Reply {
    status: String,
    authorization_id: Option<String>,
    reason: Option<String>,
}

impl HttpProvider {
    /// A provider at `base_url` (e.g. `http://127.0.0.1:8090`), giving each call `timeout`.
    pub fn new(base_url: &str, timeout: Duration) -> Result<HttpProvider, reqwest::Error> {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            // A redirect of a POST would lose the body; treat it as an answer.
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        let base = base_url.trim_end_matches('/');
        Ok(HttpProvider {
            client,
            endpoint: format!("{base}/v1/authorizations"),
            voids: format!("{base}/v1/voids"),
        })
    }
}

impl PaymentProvider for HttpProvider {
    async fn authorize(
        &self,
        request: &AuthorizationRequest,
    ) -> Result<Authorization, ProviderError> {
        let body = AuthorizationBody {
            amount: request.amount.to_string(),
            currency: &request.currency,
            token: &request.token,
            reference: &request.order_id,
        };
        let unavailable = |e: reqwest::Error| ProviderError::Unavailable {
            cause: error_chain(&e),
        };
        let response = self
            .client
            .post(&self.endpoint)
            .header("Idempotency-Key", request.idempotency_key())
            .json(&body)
            .send()
            .await
            .map_err(unavailable)?;
        let status = response.status();
        let body = read_limited(response).await.map_err(unavailable)?;
        classify(status, &body)
    }

    async fn void(&self, request: &VoidRequest) -> Result<Voided, ProviderError> {
        let unavailable = |e: reqwest::Error| ProviderError::Unavailable {
            cause: error_chain(&e),
        };
        let response = self
            .client
            .post(&self.voids)
            .header("Idempotency-Key", &request.order_id)
            .json(&VoidBody {
                reference: &request.order_id,
                authorization_id: request.authorization_id.as_deref(),
            })
            .send()
            .await
            .map_err(unavailable)?;
        let status = response.status();
        let body = read_limited(response).await.map_err(unavailable)?;
        classify_void(status, &body)
    }
}

/// The body, at most [`MAX_ANSWER_BYTES`] of it.
async fn read_limited(mut response: reqwest::Response) -> Result<Vec<u8>, reqwest::Error> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        let room = MAX_ANSWER_BYTES - body.len();
        body.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if body.len() >= MAX_ANSWER_BYTES {
            break;
        }
    }
    Ok(body)
}

/// The meaning of the provider's answer to a void.
fn classify_void(status: StatusCode, body: &[u8]) -> Result<Voided, ProviderError> {
    let text = || {
        String::from_utf8_lossy(body)
            .trim()
            .chars()
            .take(200)
            .collect::<String>()
    };
    match status.as_u16() {
        200..=299 => Ok(Voided::Voided),
        404 => Ok(Voided::NothingToVoid),
        408 | 429 | 500..=599 => Err(ProviderError::Unavailable {
            cause: format!("{status}: {}", text()),
        }),
        _ => Err(ProviderError::Declined {
            reason: format!("{status}: {}", text()),
        }),
    }
}

/// The meaning of the provider's answer.
fn classify(status: StatusCode, body: &[u8]) -> Result<Authorization, ProviderError> {
    let text = || String::from_utf8_lossy(body).trim().to_string();
    let reply = || serde_json::from_slice::<Reply>(body).ok();
    match status.as_u16() {
        200 | 201 => match reply() {
            Some(Reply {
                status,
                authorization_id: Some(authorization_id),
                ..
            }) if status == "authorized" && !authorization_id.is_empty() => {
                Ok(Authorization { authorization_id })
            }
            Some(Reply { status, reason, .. }) if status == "declined" => {
                Err(ProviderError::Declined {
                    reason: reason.unwrap_or_else(|| "declined".to_string()),
                })
            }
            // Whether it charged is unknown; asking again under the same key finds out.
            _ => Err(ProviderError::Unavailable {
                cause: format!("unexpected {status} answer: {}", text()),
            }),
        },
        402 => Err(ProviderError::Declined {
            reason: reply().and_then(|r| r.reason).unwrap_or_else(text),
        }),
        408 | 429 | 500..=599 => Err(ProviderError::Unavailable {
            cause: format!("{status}: {}", text()),
        }),
        400..=499 => Err(ProviderError::Declined {
            reason: format!("{status}: {}", text()),
        }),
        _ => Err(ProviderError::Unavailable {
            cause: format!("unexpected {status} answer: {}", text()),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn classify_str(status: u16, body: &str) -> Result<Authorization, ProviderError> {
        classify(StatusCode::from_u16(status).unwrap(), body.as_bytes())
    }

    #[test]
    fn authorized_with_an_id_is_an_authorization() {
        let ok = classify_str(201, r#"{"status":"authorized","authorization_id":"a-1"}"#);
        assert_eq!(
            ok,
            Ok(Authorization {
                authorization_id: "a-1".into()
            })
        );
    }

    #[test]
    fn a_402_or_a_declined_200_is_a_decline_with_the_reason() {
        let declined = |reason: &str| {
            Err(ProviderError::Declined {
                reason: reason.into(),
            })
        };
        assert_eq!(
            classify_str(
                402,
                r#"{"status":"declined","reason":"insufficient_funds"}"#
            ),
            declined("insufficient_funds")
        );
        assert_eq!(classify_str(402, "no"), declined("no"));
        assert_eq!(
            classify_str(200, r#"{"status":"declined","reason":"stolen"}"#),
            declined("stolen")
        );
    }

    #[test]
    fn overload_and_server_errors_are_transient() {
        for status in [429, 500, 502, 503, 504] {
            assert!(matches!(
                classify_str(status, ""),
                Err(ProviderError::Unavailable { .. })
            ));
        }
        // A 200 we cannot read may or may not have charged: ask again.
        assert!(matches!(
            classify_str(200, "<html>"),
            Err(ProviderError::Unavailable { .. })
        ));
    }

    #[test]
    fn a_void_is_done_when_accepted_or_when_nothing_stands() {
        let void = |status: u16| classify_void(StatusCode::from_u16(status).unwrap(), b"");
        assert_eq!(void(200), Ok(Voided::Voided));
        assert_eq!(void(404), Ok(Voided::NothingToVoid));
        for status in [408, 429, 500, 503] {
            assert!(matches!(
                void(status),
                Err(ProviderError::Unavailable { .. })
            ));
        }
        assert!(matches!(void(409), Err(ProviderError::Declined { .. })));
    }

    #[test]
    fn other_client_errors_decline_with_the_body() {
        assert_eq!(
            classify_str(422, "bad token"),
            Err(ProviderError::Declined {
                reason: "422 Unprocessable Entity: bad token".into()
            })
        );
    }
}
