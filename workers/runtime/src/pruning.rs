//! Pruning: keeps the inbox and the outbox from growing without bound. Sent
//! outbox rows go after [`KEEP_SENT`], inbox rows after the retention
//! (`CHORUS_INBOX_RETENTION_HOURS`, the dedup window), deleted in batches of
//! [`PRUNE_BATCH`] so no statement holds locks long. A failure is logged and
//! tried again at the next round: nothing is lost by pruning later.

use std::time::Duration;

use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use crate::{inbox, outbox};

/// How long sent outbox rows are kept (for operators reading the table).
pub const KEEP_SENT: Duration = Duration::from_secs(3600);
/// Rows one pruning statement deletes at most.
const PRUNE_BATCH: i64 = 1000;

pub struct Pruner {
    pub pool: PgPool,
    /// How long inbox rows are kept: the dedup window.
    pub inbox_retention: Duration,
    pub interval: Duration,
}

impl Pruner {
    pub async fn run(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return Ok(()),
                _ = tokio::time::sleep(self.interval) => {}
            }
            self.prune().await;
        }
    }

    /// Deletes old rows a batch at a time until none is left to delete.
    async fn prune(&self) {
        let retention = self.inbox_retention;
        prune_all("inbox", || inbox::prune(&self.pool, retention, PRUNE_BATCH)).await;
        prune_all("outbox", || {
            outbox::prune(&self.pool, KEEP_SENT, PRUNE_BATCH)
        })
        .await;
    }
}

async fn prune_all<F, Fut>(table: &str, mut batch: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<u64, sqlx::Error>>,
{
    loop {
        match batch().await {
            Ok(n) if n == PRUNE_BATCH as u64 => continue,
            Ok(_) => break,
            Err(e) => {
                tracing::warn!(error = %e, table, "pruning failed; will try again");
                break;
            }
        }
    }
}
