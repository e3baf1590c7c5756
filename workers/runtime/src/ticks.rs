//! A worker's periodic work (the order worker's deadlines): every
//! [`Handler::tick_every`], [`Handler::tick`] runs in a transaction of its
//! own, and the events it returns leave through the outbox like any others.
//! A failed tick is logged and tried again at the next; it never stops the
//! worker, and it never holds a partition.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use futures::FutureExt;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::emit::Emitter;
use crate::failure::Failure;
use crate::handler::Handler;
use crate::metrics::Metrics;
use crate::outbox;
use crate::outbox_publisher::OutboxPublisher;

pub struct Ticker<H: Handler> {
    pub handler: Arc<H>,
    pub pool: PgPool,
    pub emitter: Arc<Emitter>,
    pub publisher: OutboxPublisher,
    pub metrics: Arc<Metrics>,
}

impl<H: Handler> Ticker<H> {
    pub async fn run(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let Some(every) = self.handler.tick_every() else {
            // Nothing periodic: wait for the stop like every other part.
            shutdown.cancelled().await;
            return Ok(());
        };
        let mut interval = tokio::time::interval(every);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return Ok(()),
                _ = interval.tick() => {}
            }
            let span =
                tracing::info_span!("tick", otel.name = format!("{} tick", self.handler.name()));
            let result = AssertUnwindSafe(self.tick_once(&span).instrument(span.clone()))
                .catch_unwind()
                .await
                .unwrap_or_else(|panic| Err(Failure::panic(panic.as_ref())));
            match result {
                Ok(0) => {}
                Ok(emitted) => span.in_scope(|| tracing::info!(emitted, "periodic work done")),
                Err(failure) => {
                    if failure.class == crate::failure::FailureClass::Panic {
                        self.metrics.panics.inc();
                    }
                    span.in_scope(|| tracing::warn!(error = %failure, "periodic work failed; trying again at the next tick"))
                }
            }
        }
    }

    async fn tick_once(&self, span: &tracing::Span) -> Result<usize, Failure> {
        let mut tx = self.pool.begin().await?;
        let events = self.handler.tick(&mut tx).await.map_err(Failure::from)?;
        let emitted = events.len();
        let rows = self.emitter.rows(events, span).await?;
        let written = outbox::write(&mut tx, rows).await?;
        tx.commit().await?;
        self.publisher.enqueue(written).await;
        Ok(emitted)
    }
}
