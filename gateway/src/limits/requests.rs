//! The limits every request meets before its route, in this order: its
//! client address's rate (before any token is verified, so that floods
//! without a valid token are limited too; 429 `address_rate_limited`), a
//! place among the requests in flight (503 `overloaded` when every place is
//! taken: the gateway sheds load instead of queueing it), and the request
//! timeout around reading its body and running its handler (408
//! `request_timeout`).

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tokio::sync::Semaphore;

use super::client_addr::{ClientAddr, PeerAddr, TrustedProxies};
use super::{Limits, LongPolls};
use crate::AppState;
use crate::error::{AppError, ErrorCode};
use crate::rate_limit::RateLimiter;

/// The per-request limits' state, shared by every request.
pub struct EdgeGuard {
    per_address: RateLimiter<ClientAddr>,
    in_flight: Arc<Semaphore>,
    request_timeout: Duration,
    trusted_proxies: TrustedProxies,
    long_polls: Arc<LongPolls>,
}

impl EdgeGuard {
    pub fn new(limits: &Limits) -> EdgeGuard {
        EdgeGuard {
            per_address: RateLimiter::new(limits.addr_rate_per_sec, limits.addr_rate_burst),
            in_flight: Arc::new(Semaphore::new(limits.max_in_flight)),
            request_timeout: limits.request_timeout,
            trusted_proxies: limits.trusted_proxies.clone(),
            long_polls: LongPolls::new(limits.long_polls, limits.long_polls_per_subject),
        }
    }

    pub fn long_polls(&self) -> &Arc<LongPolls> {
        &self.long_polls
    }

    /// The client a request is counted against; `None` for a request that
    /// did not come over a socket (tests that drive the router directly).
    pub fn client(&self, request: &Request) -> Option<ClientAddr> {
        let PeerAddr(peer) = request.extensions().get::<PeerAddr>()?;
        Some(self.trusted_proxies.client(peer.ip(), request.headers()))
    }

    async fn guard(&self, request: Request, next: Next) -> Result<Response, AppError> {
        if let Some(client) = self.client(&request) {
            self.per_address
                .check(&client)
                .map_err(|retry_after| AppError::Limited {
                    code: ErrorCode::AddressRateLimited,
                    message: format!(
                        "too many requests from this address; retry after {} s",
                        crate::error::retry_after_secs(retry_after)
                    ),
                    retry_after,
                })?;
        }
        let _place = self
            .in_flight
            .clone()
            .try_acquire_owned()
            .map_err(|_| AppError::Overloaded)?;
        tokio::time::timeout(self.request_timeout, next.run(request))
            .await
            .map_err(|_| AppError::RequestTimeout(self.request_timeout))
    }
}

/// The middleware (see the module's header).
pub async fn limit_requests(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    state
        .inner
        .edge
        .guard(request, next)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}
