//! Asks the provider until it answers or the attempts run out. Every attempt
//! carries the same idempotency key, so retrying can never charge twice.

use crate::provider::{AuthorizationRequest, PaymentProvider, ProviderError};
use chorus_runtime::retry::RetryPolicy;

use crate::rules::{Charge, PaymentOutcome};

/// Authorizes `request`, retrying `Unavailable` with `policy`'s backoff; a
/// provider still unavailable after the last attempt is an outcome, not an error.
pub async fn authorize_with_retries<P: PaymentProvider>(
    provider: &P,
    request: &AuthorizationRequest,
    policy: &RetryPolicy,
) -> Charge {
    let mut attempt = 1;
    loop {
        let outcome = match provider.authorize(request).await {
            Ok(authorization) => PaymentOutcome::Authorized {
                authorization_id: authorization.authorization_id,
            },
            Err(ProviderError::Declined { reason }) => PaymentOutcome::Declined { detail: reason },
            Err(ProviderError::Unavailable { cause }) if policy.may_retry_after(attempt) => {
                let pause = policy.backoff_after(attempt);
                tracing::warn!(
                    order_id = %request.order_id,
                    attempt,
                    pause_ms = pause.as_millis() as u64,
                    %cause,
                    "payment provider unavailable; retrying",
                );
                tokio::time::sleep(pause).await;
                attempt += 1;
                continue;
            }
            Err(ProviderError::Unavailable { cause }) => PaymentOutcome::Unavailable {
                detail: format!("provider unavailable after {attempt} attempts: {cause}"),
            },
        };
        return Charge {
            outcome,
            attempts: attempt,
        };
    }
}
