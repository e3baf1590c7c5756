//! The relay: publishes outbox rows that their own publisher left unsent
//! (it crashed between commit and delivery, or Kafka was down), and reports
//! the outbox backlog.

use std::sync::Arc;
use std::time::Duration;

use rdkafka::producer::FutureProducer;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use crate::metrics::Metrics;
use crate::outbox;

/// Rows younger than this are presumably being published by their own lane.
const STALE_AFTER: Duration = Duration::from_secs(2);
const BATCH: i64 = 500;
const KEEP_SENT: Duration = Duration::from_secs(3600);

pub async fn run(
    pool: PgPool,
    producer: FutureProducer,
    metrics: Arc<Metrics>,
    interval: Duration,
    shutdown: CancellationToken,
) {
    let mut ticks = 0u64;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(interval) => {}
        }
        if let Err(e) = relay_once(&pool, &producer).await {
            tracing::warn!(error = format!("{e:#}"), "outbox relay failed; will retry");
        }
        if let Ok(backlog) = outbox::backlog(&pool).await {
            metrics.outbox_backlog.set(backlog);
        }
        ticks += 1;
        if ticks.is_multiple_of(600)
            && let Err(e) = outbox::prune(&pool, KEEP_SENT).await
        {
            tracing::warn!(error = %e, "pruning the outbox failed");
        }
    }
}

/// Publishes one batch of stale rows; returns how many.
pub async fn relay_once(pool: &PgPool, producer: &FutureProducer) -> anyhow::Result<usize> {
    let mut tx = pool.begin().await?;
    let rows = outbox::claim_stale(&mut tx, STALE_AFTER, BATCH).await?;
    if rows.is_empty() {
        return Ok(0);
    }
    tracing::info!(rows = rows.len(), "relaying unsent outbox rows");
    outbox::publish(producer, &rows, Duration::from_secs(30)).await?;
    outbox::mark_sent(&mut tx, &rows).await?;
    tx.commit().await?;
    Ok(rows.len())
}
