//! What the worker needs from a payment provider: authorize an amount under an
//! idempotency key, void an authorization (by its id, or by the key when its
//! answer never arrived), and say whether a failure is a "no" or a "not now".
//!
//! A provider must honour the idempotency key: asked twice with the same key it
//! charges once and answers with the same authorization both times. The
//! worker's retries and replays rely on it.

mod http;
mod sandbox;

use std::future::Future;

use rust_decimal::Decimal;

pub use http::HttpProvider;
pub use sandbox::SandboxProvider;

/// One authorization to ask for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorizationRequest {
    /// The order; also the idempotency key and the provider-side reference.
    pub order_id: String,
    pub amount: Decimal,
    pub currency: String,
    /// The opaque payment-method token the customer handed over.
    pub token: String,
}

impl AuthorizationRequest {
    pub fn idempotency_key(&self) -> &str {
        &self.order_id
    }
}

/// The provider's reference for a granted authorization.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorization {
    pub authorization_id: String,
}

/// Why no authorization came back; the variant decides whether to ask again.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProviderError {
    /// A final answer: asking again would get the same "no".
    #[error("declined: {reason}")]
    Declined { reason: String },
    /// The provider could not answer now (5xx, 429, timeout, connection):
    /// asking again with the same idempotency key is safe.
    #[error("unavailable: {cause}")]
    Unavailable { cause: String },
}

/// An authorization to void.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VoidRequest {
    /// The order: the idempotency key the authorization was asked under.
    pub order_id: String,
    /// The authorization, when its answer arrived; `None` voids whatever the
    /// key charged (an answer that never arrived).
    pub authorization_id: Option<String>,
}

/// What a void found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Voided {
    /// The authorization existed and no longer stands.
    Voided,
    /// The provider holds no authorization under the key: nothing stands.
    NothingToVoid,
}

/// A payment provider.
pub trait PaymentProvider: Send + Sync + 'static {
    fn authorize(
        &self,
        request: &AuthorizationRequest,
    ) -> impl Future<Output = Result<Authorization, ProviderError>> + Send;

    /// Voids under the order id as idempotency key; voiding twice is harmless.
    fn void(
        &self,
        request: &VoidRequest,
    ) -> impl Future<Output = Result<Voided, ProviderError>> + Send;
}

/// The provider chosen by configuration (`CHORUS_PAYMENT_PROVIDER`).
#[derive(Debug, Clone)]
pub enum ConfiguredProvider {
    Sandbox(SandboxProvider),
    Http(HttpProvider),
}

impl PaymentProvider for ConfiguredProvider {
    async fn authorize(
        &self,
        request: &AuthorizationRequest,
    ) -> Result<Authorization, ProviderError> {
        match self {
            ConfiguredProvider::Sandbox(sandbox) => sandbox.authorize(request).await,
            ConfiguredProvider::Http(http) => http.authorize(request).await,
        }
    }

    async fn void(&self, request: &VoidRequest) -> Result<Voided, ProviderError> {
        match self {
            ConfiguredProvider::Sandbox(sandbox) => sandbox.void(request).await,
            ConfiguredProvider::Http(http) => http.void(request).await,
        }
    }
}
