//! The relay: publishes outbox rows that their own publisher left unsent
//! (it crashed between commit and delivery, or Kafka was down), reports the
//! outbox backlog and its age, and keeps the inbox and outbox from growing
//! without bound: sent outbox rows after an hour, inbox rows after the
//! retention, deleted in small batches.

use std::sync::Arc;
use std::time::Duration;

use rdkafka::producer::FutureProducer;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use crate::metrics::Metrics;
use crate::{inbox, outbox};

/// Rows younger than this are presumably being published by their own lane.
const STALE_AFTER: Duration = Duration::from_secs(2);
const BATCH: i64 = 500;
/// A leased row is not relayed again before this (longer than a delivery may take).
const LEASE: Duration = Duration::from_secs(45);
const KEEP_SENT: Duration = Duration::from_secs(3600);
/// Rows one pruning statement deletes at most, so it never holds locks long.
const PRUNE_BATCH: i64 = 1000;
/// Pruning runs every this many relay ticks.
const PRUNE_EVERY: u64 = 120;

pub struct Relay {
    pub pool: PgPool,
    pub producer: FutureProducer,
    pub metrics: Arc<Metrics>,
    pub interval: Duration,
    /// How long inbox rows are kept: the dedup window.
    pub inbox_retention: Duration,
}

impl Relay {
    pub async fn run(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let mut ticks = 0u64;
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return Ok(()),
                _ = tokio::time::sleep(self.interval) => {}
            }
            if let Err(e) = relay_once(&self.pool, &self.producer).await {
                tracing::warn!(error = format!("{e:#}"), "outbox relay failed; will retry");
            }
            if let Ok((backlog, oldest)) = outbox::backlog(&self.pool).await {
                self.metrics.outbox_backlog.set(backlog);
                self.metrics.outbox_oldest_seconds.set(oldest);
            }
            ticks += 1;
            if ticks.is_multiple_of(PRUNE_EVERY) {
                self.prune().await;
            }
        }
    }

    /// Deletes old rows a batch at a time until none is left to delete.
    async fn prune(&self) {
        loop {
            match inbox::prune(&self.pool, self.inbox_retention, PRUNE_BATCH).await {
                Ok(n) if n == PRUNE_BATCH as u64 => continue,
                Ok(_) => break,
                Err(e) => {
                    tracing::warn!(error = %e, "pruning the inbox failed");
                    break;
                }
            }
        }
        loop {
            match outbox::prune(&self.pool, KEEP_SENT, PRUNE_BATCH).await {
                Ok(n) if n == PRUNE_BATCH as u64 => continue,
                Ok(_) => break,
                Err(e) => {
                    tracing::warn!(error = %e, "pruning the outbox failed");
                    break;
                }
            }
        }
    }
}

/// Publishes one batch of stale rows; returns how many. The rows are leased
/// first (see [`outbox::lease_stale`]); a row that fails to go out is
/// published again once its lease ran out.
pub async fn relay_once(pool: &PgPool, producer: &FutureProducer) -> anyhow::Result<usize> {
    let rows = outbox::lease_stale(pool, STALE_AFTER, LEASE, BATCH).await?;
    if rows.is_empty() {
        return Ok(0);
    }
    tracing::info!(rows = rows.len(), "relaying unsent outbox rows");
    outbox::publish(producer, &rows, Duration::from_secs(30)).await?;
    outbox::mark_sent(pool, &rows).await?;
    Ok(rows.len())
}
