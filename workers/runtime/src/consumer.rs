//! The consumer loop shared by every worker.
//!
//! Guarantee: an offset is stored only after its message's transaction
//! committed (or its dead-letter copy was delivered); librdkafka commits
//! stored offsets periodically, when partitions are revoked, and at shutdown.
//! A crash therefore redelivers at most the uncommitted tail, which the
//! inbox recognises. Messages are processed in order within a partition and
//! in parallel across partitions, each partition through a bounded queue.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use rdkafka::ClientContext;
use rdkafka::consumer::{
    BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance, StreamConsumer,
};
use rdkafka::message::{Message, OwnedMessage};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::handler::Handler;
use crate::process::Processor;
use crate::retry::backoff;

/// Messages buffered per partition before the loop waits (back-pressure).
const LANE_CAPACITY: usize = 256;

/// Logs rebalances and commits stored offsets before partitions are revoked.
pub struct RebalanceContext;

impl ClientContext for RebalanceContext {}

impl ConsumerContext for RebalanceContext {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Revoke(partitions) => {
                tracing::info!(count = partitions.count(), "partitions revoked");
                if let Err(e) = consumer.commit_consumer_state(CommitMode::Sync) {
                    tracing::debug!(error = %e, "nothing to commit on revoke");
                }
            }
            Rebalance::Assign(partitions) => {
                tracing::info!(count = partitions.count(), "partitions assigned");
            }
            Rebalance::Error(e) => tracing::warn!(error = %e, "rebalance error"),
        }
    }
}

pub type WorkerConsumer = StreamConsumer<RebalanceContext>;

/// Consumes until `shutdown`, then finishes the message in flight in each
/// partition, commits, and returns.
/// How a partition's lane works through its messages.
#[derive(Debug, Clone, Copy)]
pub struct LaneSettings {
    /// Messages applied in one transaction at most.
    pub max_batch: usize,
    /// Ceiling of the backoff between retries of a transient failure.
    pub max_backoff: Duration,
}

pub async fn run<H: Handler>(
    processor: Arc<Processor<H>>,
    consumer: Arc<WorkerConsumer>,
    settings: LaneSettings,
    shutdown: CancellationToken,
) {
    let mut lanes: HashMap<(String, i32), (mpsc::Sender<OwnedMessage>, JoinHandle<()>)> =
        HashMap::new();
    loop {
        let received = tokio::select! {
            _ = shutdown.cancelled() => break,
            received = consumer.recv() => received,
        };
        let message = match received {
            Ok(message) => message.detach(),
            Err(e) => {
                tracing::warn!(error = %e, "Kafka receive error");
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
        };
        let topic = message.topic().to_string();
        processor
            .metrics
            .consumed
            .with_label_values(&[&topic])
            .inc();
        let lane = lanes
            .entry((topic, message.partition()))
            .or_insert_with(|| {
                let (sender, receiver) = mpsc::channel(LANE_CAPACITY);
                let handle = tokio::spawn(lane(
                    processor.clone(),
                    consumer.clone(),
                    receiver,
                    settings,
                    shutdown.clone(),
                ));
                (sender, handle)
            });
        tokio::select! {
            _ = shutdown.cancelled() => break,
            sent = lane.0.send(message) => if sent.is_err() { break },
        }
    }
    for (_, (sender, handle)) in lanes {
        drop(sender);
        let _ = handle.await;
    }
    match consumer.commit_consumer_state(CommitMode::Sync) {
        Ok(()) => tracing::info!("offsets committed"),
        Err(e) => tracing::debug!(error = %e, "no offsets to commit at shutdown"),
    }
}

/// Processes one partition's messages in order: whatever is waiting (up to
/// `max_batch`) in one transaction when the handler allows, else one by one.
async fn lane<H: Handler>(
    processor: Arc<Processor<H>>,
    consumer: Arc<WorkerConsumer>,
    mut receiver: mpsc::Receiver<OwnedMessage>,
    settings: LaneSettings,
    shutdown: CancellationToken,
) {
    while let Some(first) = receiver.recv().await {
        if shutdown.is_cancelled() {
            return;
        }
        let mut batch = vec![first];
        while batch.len() < settings.max_batch {
            match receiver.try_recv() {
                Ok(message) => batch.push(message),
                Err(_) => break,
            }
        }
        let applied_whole = batch.len() > 1
            && processor.handler.batchable()
            && processor.process_batch(&batch).await.is_some();
        if !applied_whole {
            for message in &batch {
                if !process_until_done(&processor, message, settings.max_backoff, &shutdown).await {
                    return;
                }
                store_offset(&consumer, message);
            }
        } else if let Some(last) = batch.last() {
            store_offset(&consumer, last);
        }
    }
}

fn store_offset(consumer: &WorkerConsumer, message: &OwnedMessage) {
    if let Err(e) = consumer.store_offset(message.topic(), message.partition(), message.offset()) {
        // The partition was revoked meanwhile; its new owner sees the
        // message again and the inbox recognises it.
        tracing::debug!(error = %e, "offset not stored");
    }
}

/// Retries transient failures with capped backoff; false if shutdown came first.
async fn process_until_done<H: Handler>(
    processor: &Processor<H>,
    message: &OwnedMessage,
    max_backoff: Duration,
    shutdown: &CancellationToken,
) -> bool {
    let mut attempt = 0;
    loop {
        match processor.process(message).await {
            Ok(_) => return true,
            Err(e) => {
                attempt += 1;
                let delay = backoff(attempt, Duration::from_millis(50), max_backoff);
                processor
                    .metrics
                    .retried
                    .with_label_values(&[message.topic()])
                    .inc();
                tracing::warn!(
                    error = %e, attempt, retry_in_ms = delay.as_millis() as u64,
                    topic = message.topic(), partition = message.partition(), offset = message.offset(),
                    "transient failure; retrying"
                );
                tokio::select! {
                    _ = shutdown.cancelled() => return false,
                    _ = tokio::time::sleep(delay) => {}
                }
            }
        }
    }
}
