//! The outbox republisher: publishes outbox rows that their own publisher
//! left unsent (it crashed between commit and delivery, or Kafka was down),
//! and reports the outbox backlog and its age. Rows are leased before they
//! are sent, so no transaction stays open across a Kafka round trip and two
//! replicas do not send the same rows at once; a republished row is a
//! duplicate downstream (deterministic event ids), never a second effect.

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
/// A leased row is not republished again before this (longer than a delivery may take).
const LEASE: Duration = Duration::from_secs(45);

pub struct Republisher {
    pub pool: PgPool,
    pub producer: FutureProducer,
    pub metrics: Arc<Metrics>,
    pub interval: Duration,
}

impl Republisher {
    pub async fn run(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return Ok(()),
                _ = tokio::time::sleep(self.interval) => {}
            }
            if let Err(e) = republish_once(&self.pool, &self.producer).await {
                tracing::warn!(
                    error = format!("{e:#}"),
                    "republishing the outbox failed; will retry"
                );
            }
            if let Ok((backlog, oldest)) = outbox::backlog(&self.pool).await {
                self.metrics.outbox_backlog.set(backlog);
                self.metrics.outbox_oldest_seconds.set(oldest);
            }
        }
    }
}

/// Publishes one batch of stale rows; returns how many. The rows are leased
/// first (see [`outbox::lease_stale`]); a row that fails to go out is
/// published again once its lease ran out.
pub async fn republish_once(pool: &PgPool, producer: &FutureProducer) -> anyhow::Result<usize> {
    let rows = outbox::lease_stale(pool, STALE_AFTER, LEASE, BATCH).await?;
    if rows.is_empty() {
        return Ok(0);
    }
    tracing::info!(rows = rows.len(), "republishing unsent outbox rows");
    outbox::publish(producer, &rows, Duration::from_secs(30)).await?;
    let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
    outbox::mark_sent(pool, &ids).await?;
    Ok(rows.len())
}
