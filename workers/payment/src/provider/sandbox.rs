//! The sandbox provider: a pretend payment provider for local runs and tests,
//! driven by the payment token.
//!
//! It behaves like an external provider would: its books (`sandbox_charges`,
//! `sandbox_calls`) are written through its own pool connection, so a worker
//! transaction that rolls back does not un-charge, and the same idempotency key
//! charges once and returns the same authorization however often it is asked.
//! A void marks the key's charge voided (`voided_at`); it records no token.

use std::time::Duration;

use chorus_runtime::error_chain;
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;

use super::{
    Authorization, AuthorizationRequest, PaymentProvider, ProviderError, VoidRequest, Voided,
};

/// Approves.
pub const TOKEN_APPROVE: &str = "tok_ok";
/// Declines.
pub const TOKEN_DECLINE: &str = "tok_decline";
/// Fails transiently on every call.
pub const TOKEN_UNAVAILABLE: &str = "tok_unavailable";

#[derive(Debug, Clone)]
pub struct SandboxProvider {
    pool: PgPool,
}

impl SandboxProvider {
    /// A sandbox keeping its books through `pool`.
    pub fn new(pool: PgPool) -> SandboxProvider {
        SandboxProvider { pool }
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
        SandboxProvider { pool }
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

    async fn record_call(&self, key: &str, kind: &str) -> Result<(), ProviderError> {
        sqlx::query("INSERT INTO sandbox_calls (idempotency_key, kind) VALUES ($1, $2)")
            .bind(key)
            .bind(kind)
            .execute(&self.pool)
            .await
            .map_err(ledger_unavailable)?;
        Ok(())
    }

    /// Records the call and charges once per idempotency key, in one
    /// statement; a repeat reads back the first charge.
    async fn charge(&self, request: &AuthorizationRequest) -> Result<Authorization, ProviderError> {
        let new_id = format!("sbx_{}", uuid::Uuid::new_v4().simple());
        // The last SELECT sees the table as it was when the statement began:
        // the row inserted here comes from `charged`, an earlier one from the
        // table. A charge committed by a concurrent call after that instant
        // is in neither, and is read by the fallback below.
        let found: Option<(rust_decimal::Decimal, String, String)> = sqlx::query_as(
            "WITH called AS (
                 INSERT INTO sandbox_calls (idempotency_key, kind) VALUES ($1, 'authorize')
             ), charged AS (
                 INSERT INTO sandbox_charges (idempotency_key, amount, currency, authorization_id)
                 VALUES ($1, $2, $3, $4)
                 ON CONFLICT (idempotency_key) DO NOTHING
                 RETURNING amount, currency, authorization_id
             )
             SELECT amount, currency, authorization_id FROM charged
             UNION ALL
             SELECT amount, currency, authorization_id FROM sandbox_charges
             WHERE idempotency_key = $1
             LIMIT 1",
        )
        .bind(request.idempotency_key())
        .bind(request.amount)
        .bind(&request.currency)
        .bind(&new_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(ledger_unavailable)?;
        let (amount, currency, authorization_id) = match found {
            Some(charge) => charge,
            None => sqlx::query_as(
                "SELECT amount, currency, authorization_id FROM sandbox_charges
                 WHERE idempotency_key = $1",
            )
            .bind(request.idempotency_key())
            .fetch_one(&self.pool)
            .await
            .map_err(ledger_unavailable)?,
        };
        // Like a real provider, refuse to reuse a key for a different charge.
        if amount != request.amount || currency != request.currency {
            return Err(ProviderError::Declined {
                reason: format!(
                    "idempotency key already used for {amount} {currency}, not {} {}",
                    request.amount, request.currency
                ),
            });
        }
        Ok(Authorization { authorization_id })
    }
}

fn ledger_unavailable(e: sqlx::Error) -> ProviderError {
    ProviderError::Unavailable {
        cause: format!("sandbox ledger: {}", error_chain(&e)),
    }
}

impl PaymentProvider for SandboxProvider {
    async fn authorize(
        &self,
        request: &AuthorizationRequest,
    ) -> Result<Authorization, ProviderError> {
        if request.token == TOKEN_APPROVE {
            return self.charge(request).await;
        }
        self.record_call(request.idempotency_key(), "authorize")
            .await?;
        match request.token.as_str() {
            TOKEN_DECLINE => Err(ProviderError::Declined {
                reason: "card declined".to_string(),
            }),
            TOKEN_UNAVAILABLE => Err(ProviderError::Unavailable {
                cause: "sandbox: tok_unavailable never gets through".to_string(),
            }),
            _ => Err(ProviderError::Declined {
                reason: "unknown token".to_string(),
            }),
        }
    }

    async fn void(&self, request: &VoidRequest) -> Result<Voided, ProviderError> {
        let voided: Option<String> = sqlx::query_scalar(
            "WITH called AS (
                 INSERT INTO sandbox_calls (idempotency_key, kind) VALUES ($1, 'void')
             )
             UPDATE sandbox_charges SET voided_at = COALESCE(voided_at, now())
             WHERE idempotency_key = $1
             RETURNING authorization_id",
        )
        .bind(&request.order_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(ledger_unavailable)?;
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
