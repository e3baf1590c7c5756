//! The consumer loop shared by every worker.
//!
//! Guarantee: an offset is stored only after its message's effects committed
//! (or its dead-letter copy was acknowledged), and only once every earlier
//! message of its partition is done; librdkafka commits stored offsets every
//! second, when partitions are revoked and at shutdown. A crash therefore
//! redelivers at most the uncommitted tail, which the inbox recognises.
//!
//! Everything the poll returns, across partitions, is applied in one batch
//! (one transaction), in arrival order; per partition, order is kept. A
//! partition whose message is to be retried is paused (and so is one whose
//! queue is full) while the others go on; the loop keeps polling throughout,
//! so it never overruns `max.poll.interval.ms`. Processing is inline in the
//! loop, so a rebalance callback never finds a message half-processed.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use futures::FutureExt;
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::error::{KafkaError, KafkaResult};
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::{Offset, TopicPartitionList};
use tokio_util::sync::CancellationToken;

use crate::apply::{Applier, Outcome};
use crate::consumer::queues::{Queued, Queues, TopicPartition};
use crate::consumer::rebalance::LoopContext;
use crate::handler::Handler;
use crate::progress::Progress;
use crate::retry::RetryPolicy;

pub type WorkerConsumer = StreamConsumer<LoopContext>;

/// How often an idle loop shows it is alive (see [`crate::progress`]).
const IDLE_BEAT: std::time::Duration = std::time::Duration::from_secs(1);

/// How the loop works through its messages.
#[derive(Debug, Clone, Copy)]
pub struct LoopSettings {
    /// Messages applied in one transaction at most.
    pub max_batch: usize,
    /// Messages a partition may hold before it is paused.
    pub partition_capacity: usize,
    /// Backoff between retries of a failed message, and the attempts an
    /// unknown failure gets.
    pub retry: RetryPolicy,
}

/// How many fatal consumer errors in [`FATAL_WINDOW`] a worker replaces its
/// consumer for before it stops.
const FATAL_REPLACEMENTS: usize = 3;
const FATAL_WINDOW: std::time::Duration = std::time::Duration::from_secs(600);

/// Consumes until `shutdown`, then commits the stored offsets and returns.
/// An error is the loop itself failing (not a message): the worker must stop.
/// `replace` makes a new subscribed consumer, for when librdkafka declares
/// the current one dead.
pub async fn run<H: Handler>(
    applier: Arc<Applier<H>>,
    consumer: Arc<WorkerConsumer>,
    replace: impl Fn() -> anyhow::Result<Arc<WorkerConsumer>>,
    settings: LoopSettings,
    progress: Progress,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let mut state = Loop {
        consumer,
        queues: Queues::new(settings.partition_capacity, settings.retry),
        paused: HashSet::new(),
        applier: &applier,
        fatal: None,
    };
    let mut fatal_at: Vec<Instant> = Vec::new();
    loop {
        if let Some(fatal) = state.fatal.take() {
            // librdkafka's consumer is unusable after a fatal error: a static
            // member fenced when its session ended while the group's
            // coordinator moved to another broker (its rejoin fences what the
            // old member still had in flight). A new consumer with the same
            // identity takes the partitions back; what the old one held and
            // had not committed is delivered again, and the inbox drops what
            // was applied. Fenced again and again is another replica with
            // this identity: stop, loudly.
            fatal_at.retain(|at| at.elapsed() < FATAL_WINDOW);
            anyhow::ensure!(
                fatal_at.len() < FATAL_REPLACEMENTS,
                "Kafka's consumer failed fatally {} times in {} s, the last time: {fatal}; \
                 is another replica running with this CHORUS_INSTANCE_ID?",
                fatal_at.len() + 1,
                FATAL_WINDOW.as_secs()
            );
            fatal_at.push(Instant::now());
            tracing::error!(error = %fatal, "Kafka's consumer failed fatally; replacing it");
            state.consumer.context().close();
            state.consumer = replace().context("replacing the failed Kafka consumer")?;
            state.queues = Queues::new(settings.partition_capacity, settings.retry);
            state.paused.clear();
        }
        let consumer = state.consumer.clone();
        progress.beat();
        let now = Instant::now();
        if !state.queues.has_ready(now) {
            let due = state.queues.next_due();
            tokio::select! {
                _ = shutdown.cancelled() => break,
                received = consumer.recv() => state.receive(received),
                _ = sleep_until(due) => {}
                // An idle loop still beats: silence means stuck, not idle.
                _ = tokio::time::sleep(IDLE_BEAT) => {}
            }
        }
        // Whatever else has arrived meanwhile joins this batch.
        while state.queues.len() < settings.max_batch * 4 {
            match consumer.recv().now_or_never() {
                Some(received) => state.receive(received),
                None => break,
            }
        }
        state.reconcile_revoked();
        let batch = state.queues.take_ready(Instant::now(), settings.max_batch);
        if !batch.is_empty() {
            state.process(batch).await;
        }
        state.sync_pauses();
    }
    let consumer = &state.consumer;
    match consumer.commit_consumer_state(CommitMode::Sync) {
        Ok(()) => tracing::info!("offsets committed"),
        Err(e) => tracing::debug!(error = %e, "no offsets to commit at shutdown"),
    }
    consumer.context().close();
    Ok(())
}

async fn sleep_until(due: Option<Instant>) {
    match due {
        Some(due) => tokio::time::sleep_until(due.into()).await,
        None => std::future::pending().await,
    }
}

struct Loop<'a, H: Handler> {
    consumer: Arc<WorkerConsumer>,
    queues: Queues,
    /// Partitions this loop has paused.
    paused: HashSet<TopicPartition>,
    applier: &'a Applier<H>,
    /// A fatal error of the consumer: it is replaced, or the loop ends.
    fatal: Option<KafkaError>,
}

impl<H: Handler> Loop<'_, H> {
    fn receive(&mut self, received: KafkaResult<BorrowedMessage<'_>>) {
        // A rebalance may have happened inside this poll: drop what was held
        // for revoked partitions before taking anything new.
        self.reconcile_revoked();
        match received {
            Ok(message) => {
                let partition = (message.topic().to_string(), message.partition());
                self.applier
                    .metrics
                    .consumed
                    .with_label_values(&[message.topic()])
                    .inc();
                if self.consumer.context().owns(&partition) {
                    self.queues.push(message.detach());
                } else {
                    tracing::debug!(topic = %partition.0, partition = partition.1, "message of a partition no longer assigned dropped");
                }
            }
            Err(e) => {
                if let Some(auth) = self.consumer.context().auth_failure() {
                    tracing::error!(error = %auth, "Kafka refuses our credentials");
                }
                tracing::warn!(error = %e, "Kafka receive error");
                if matches!(e, KafkaError::MessageConsumptionFatal(_)) {
                    self.fatal = Some(e);
                }
            }
        }
    }

    fn reconcile_revoked(&mut self) {
        let revoked = self.consumer.context().take_revoked();
        if revoked.is_empty() {
            return;
        }
        let dropped = self.queues.revoke(&revoked);
        for partition in &revoked {
            self.paused.remove(partition);
        }
        if dropped > 0 {
            tracing::info!(dropped, "queued messages of revoked partitions dropped");
        }
    }

    async fn process(&mut self, batch: Vec<Queued>) {
        let outcomes = self.applier.process(&batch).await;
        let now = Instant::now();
        // Per partition, in order: the done prefix stores its offset; the
        // first message not done, and all after it, go back.
        let mut per_partition: BTreeMap<TopicPartition, Vec<(Queued, Outcome)>> = BTreeMap::new();
        for (queued, outcome) in batch.into_iter().zip(outcomes) {
            per_partition
                .entry(queued.partition())
                .or_default()
                .push((queued, outcome));
        }
        let mut offsets = TopicPartitionList::new();
        for (partition, messages) in per_partition {
            let mut done_up_to = None;
            let mut back = Vec::new();
            let mut retry = false;
            for (mut queued, outcome) in messages {
                if !back.is_empty() {
                    back.push(queued);
                    continue;
                }
                match outcome {
                    Outcome::Done(_) => done_up_to = Some(queued.message.offset()),
                    Outcome::Retry(failure) => {
                        queued.failed(&failure);
                        tracing::warn!(
                            topic = %partition.0, partition = partition.1,
                            offset = queued.message.offset(), attempts = queued.attempts,
                            error = %failure, "message failed; partition paused for a retry"
                        );
                        retry = true;
                        back.push(queued);
                    }
                    Outcome::Deferred => back.push(queued),
                }
            }
            if let Some(offset) = done_up_to {
                // librdkafka commits the next offset to read.
                let _ = offsets.add_partition_offset(
                    &partition.0,
                    partition.1,
                    Offset::Offset(offset + 1),
                );
            }
            if retry {
                self.queues.retry_later(&partition, now);
            } else if done_up_to.is_some() {
                self.queues.succeeded(&partition);
            }
            if !back.is_empty() {
                self.queues.give_back(&partition, back);
            }
        }
        if offsets.count() > 0
            && let Err(e) = self.consumer.store_offsets(&offsets)
        {
            // A partition revoked meanwhile: its new owner reads the message
            // again and the inbox recognises it.
            tracing::debug!(error = %e, "offsets not stored");
        }
    }

    /// Pauses what must wait and resumes what may go on.
    fn sync_pauses(&mut self) {
        let wanted = self.queues.to_pause();
        let to_pause: Vec<&TopicPartition> = wanted.difference(&self.paused).collect();
        let to_resume: Vec<&TopicPartition> = self.paused.difference(&wanted).collect();
        if !to_pause.is_empty() {
            match self.consumer.pause(&list(&to_pause)) {
                Ok(()) => tracing::info!(partitions = ?to_pause, "partitions paused"),
                Err(e) => tracing::warn!(error = %e, "pausing partitions failed"),
            }
        }
        if !to_resume.is_empty() {
            match self.consumer.resume(&list(&to_resume)) {
                Ok(()) => tracing::info!(partitions = ?to_resume, "partitions resumed"),
                Err(e) => tracing::warn!(error = %e, "resuming partitions failed"),
            }
        }
        let metrics = &self.applier.metrics;
        let retrying = self.queues.retrying();
        for partition in wanted.union(&self.paused) {
            metrics.set_paused(&partition.0, partition.1, wanted.contains(partition));
            metrics.set_retrying(&partition.0, partition.1, retrying.contains(partition));
        }
        self.paused = wanted;
    }
}

fn list(partitions: &[&TopicPartition]) -> TopicPartitionList {
    let mut list = TopicPartitionList::new();
    for (topic, partition) in partitions {
        list.add_partition(topic, *partition);
    }
    list
}
