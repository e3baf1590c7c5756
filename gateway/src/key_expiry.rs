//! Idempotency keys expire: a supervised task deletes the `accepted_orders`
//! rows older than the window (`CHORUS_IDEMPOTENCY_WINDOW_HOURS`, 24 h by
//! default, as Stripe keeps its keys), [`BATCH`] rows per statement so no
//! statement holds many locks or runs long, at start-up and then every
//! `every`. Within the window a retried POST answers the order it placed;
//! after it, the same key places a new order. A failed pass is logged and
//! retried at the next one; an error no retry can mend (a closed pool, a
//! role that may not delete, a missing table) ends the task with an error,
//! so the process stops, at start-up already, instead of growing the table
//! without bound.

use std::time::Duration;

use anyhow::Context;
use tokio_util::sync::CancellationToken;

use crate::store::Store;

/// Rows deleted by one statement at most.
pub const BATCH: i64 = 1000;

/// How long a key is kept, and how often expired ones are looked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyExpiry {
    pub window: Duration,
    pub every: Duration,
}

impl Default for KeyExpiry {
    fn default() -> KeyExpiry {
        KeyExpiry {
            window: Duration::from_secs(24 * 3600),
            every: Duration::from_secs(60),
        }
    }
}

impl KeyExpiry {
    /// Runs until `shutdown` (`Ok`), or fails when the gateway's pool is closed.
    pub async fn run(self, store: Store, shutdown: CancellationToken) -> anyhow::Result<()> {
        loop {
            let mut expired = 0;
            while !shutdown.is_cancelled() {
                match store.expire_accepted_orders(self.window, BATCH).await {
                    Ok(deleted) => {
                        expired += deleted;
                        if deleted < BATCH as u64 {
                            break;
                        }
                    }
                    Err(e) if never_succeeds(&e) && !shutdown.is_cancelled() => {
                        return Err(e).context("deleting expired accepted_orders");
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "deleting expired idempotency keys failed");
                        break;
                    }
                }
            }
            if expired > 0 {
                tracing::info!(expired, "idempotency keys expired");
            }
            tokio::select! {
                () = tokio::time::sleep(self.every) => {}
                () = shutdown.cancelled() => return Ok(()),
            }
        }
    }
}

/// Errors that every later pass would meet again: the pool was closed (it
/// never reopens), or the database refuses the statement itself
/// (`insufficient_privilege`, `undefined_table`) until an operator acts.
fn never_succeeds(e: &sqlx::Error) -> bool {
    const INSUFFICIENT_PRIVILEGE: &str = "42501";
    const UNDEFINED_TABLE: &str = "42P01";
    match e {
        sqlx::Error::PoolClosed => true,
        sqlx::Error::Database(db) => matches!(
            db.code().as_deref(),
            Some(INSUFFICIENT_PRIVILEGE | UNDEFINED_TABLE)
        ),
        _ => false,
    }
}
