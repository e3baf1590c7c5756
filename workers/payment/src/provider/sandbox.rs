//! The sandbox provider: a pretend payment provider for local runs and tests,
//! driven by the payment token.
//!
//! It behaves like an external provider would: its books (`sandbox_charges`,
//! `sandbox_calls`) are written through its own pool connections, so a worker
//! transaction that rolls back does not un-charge, and the same idempotency key
//! charges once and returns the same authorization however often and however
//! concurrently it is asked. A void marks the key's charge voided
//! (`voided_at`); it records no token. The calls that arrive together are
//! written in one transaction ([`batch`]): an outside service's cost, paid
//! per batch rather than per call.

mod batch;

use std::sync::Arc;
use std::time::Duration;

use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;

use super::{
    Authorization, AuthorizationRequest, PaymentProvider, ProviderError, VoidRequest, Voided,
};
pub use batch::{BatchStats, MAX_BATCH};
use batch::{Entry, Ledger, Recorded};

/// Approves.
pub const TOKEN_APPROVE: &str = "tok_ok";
/// Declines.
pub const TOKEN_DECLINE: &str = "tok_decline";
/// Fails transiently on every call.
pub const TOKEN_UNAVAILABLE: &str = "tok_unavailable";

#[derive(Debug, Clone)]
pub struct SandboxProvider {
    pool: PgPool,
    ledger: Arc<Ledger>,
}

impl SandboxProvider {
    /// A sandbox keeping its books through `pool`, [`MAX_BATCH`] calls a
    /// transaction at most.
    pub fn new(pool: PgPool) -> SandboxProvider {
        SandboxProvider::batching(pool, MAX_BATCH)
    }

    /// A sandbox writing at most `max_batch` calls a transaction (1: a
    /// transaction per call).
    pub fn batching(pool: PgPool, max_batch: usize) -> SandboxProvider {
        SandboxProvider {
            ledger: Arc::new(Ledger::new(pool.clone(), max_batch)),
            pool,
        }
    }

    /// A sandbox with a small pool of its own to `worker_pool`'s database, so
    /// it never waits for a connection held by a handler's transaction (which
    /// would be waiting for the sandbox).
    pub fn alongside(worker_pool: &PgPool) -> SandboxProvider {
        let options = (*worker_pool.connect_options()).clone();
        let pool = PgPoolOptions::new()
            .max_connections(2)
            .acquire_timeout(Duration::from_secs(5))
            .connect_lazy_with(options);
        SandboxProvider::new(pool)
    }

    /// How many calls the sandbox received for `idempotency_key`.
    pub async fn calls(&self, idempotency_key: &str) -> Result<i64, sqlx::Error> {
        sqlx::query_scalar("SELECT count(*) FROM sandbox_calls WHERE idempotency_key = $1")
            .bind(idempotency_key)
            .fetch_one(&self.pool)
            .await
    }

    /// How many charges the sandbox holds for `idempotency_key` (0 or 1).
    pub async fn charges(&self, idempotency_key: &str) -> Result<i64, sqlx::Error> {
        sqlx::query_scalar("SELECT count(*) FROM sandbox_charges WHERE idempotency_key = $1")
            .bind(idempotency_key)
            .fetch_one(&self.pool)
            .await
    }

    /// How many charges stand for `idempotency_key` (0 or 1): made and not voided.
    pub async fn standing_charges(&self, idempotency_key: &str) -> Result<i64, sqlx::Error> {
        sqlx::query_scalar(
            "SELECT count(*) FROM sandbox_charges WHERE idempotency_key = $1 AND voided_at IS NULL",
        )
        .bind(idempotency_key)
        .fetch_one(&self.pool)
        .await
    }

    /// How many batches the sandbox wrote its books in, and how many calls.
    pub fn batch_stats(&self) -> BatchStats {
        self.ledger.stats()
    }
}

/// The ledger answers each entry in kind; anything else is its bug, and
/// the call is asked again rather than answered wrongly.
fn misanswered(answer: Recorded) -> ProviderError {
    ProviderError::Unavailable {
        cause: format!("sandbox ledger: unexpected answer {answer:?}"),
    }
}

impl PaymentProvider for SandboxProvider {
    async fn authorize(
        &self,
        request: &AuthorizationRequest,
    ) -> Result<Authorization, ProviderError> {
        let key = request.idempotency_key().to_string();
        if request.token != TOKEN_APPROVE {
            self.ledger.record(Entry::Call { key }).await?;
            return Err(match request.token.as_str() {
                TOKEN_DECLINE => ProviderError::Declined {
                    reason: "card declined".to_string(),
                },
                TOKEN_UNAVAILABLE => ProviderError::Unavailable {
                    cause: "sandbox: tok_unavailable never gets through".to_string(),
                },
                _ => ProviderError::Declined {
                    reason: "unknown token".to_string(),
                },
            });
        }
        let entry = Entry::Charge {
            key,
            amount: request.amount,
            currency: request.currency.clone(),
        };
        let charge = match self.ledger.record(entry).await? {
            Recorded::Charge(charge) => charge,
            other => return Err(misanswered(other)),
        };
        // Like a real provider, refuse to reuse a key for a different charge.
        if charge.amount != request.amount || charge.currency != request.currency {
            return Err(ProviderError::Declined {
                reason: format!(
                    "idempotency key already used for {} {}, not {} {}",
                    charge.amount, charge.currency, request.amount, request.currency
                ),
            });
        }
        Ok(Authorization {
            authorization_id: charge.authorization_id,
        })
    }

    async fn void(&self, request: &VoidRequest) -> Result<Voided, ProviderError> {
        let entry = Entry::Void {
            key: request.order_id.clone(),
        };
        let voided = match self.ledger.record(entry).await? {
            Recorded::Void(voided) => voided,
            other => return Err(misanswered(other)),
        };
        match voided {
            None => Ok(Voided::NothingToVoid),
            Some(found) => match &request.authorization_id {
                Some(asked) if *asked != found => Err(ProviderError::Declined {
                    reason: format!("authorization {asked} is not the key's ({found})"),
                }),
                _ => Ok(Voided::Voided),
            },
        }
    }
}
