//! What the consumer hears from librdkafka: rebalances and statistics.
//!
//! Guarantee on revoke: the consumer loop processes messages inline, so when
//! librdkafka calls back to revoke partitions (from inside the loop's poll)
//! no message of them is being processed; the offsets stored so far — those
//! whose effects committed — are committed before the callback returns, and
//! the loop drops what it still holds for those partitions before it
//! processes anything else. A worker never goes on processing a partition it
//! no longer owns.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance};
use rdkafka::error::KafkaError;
use rdkafka::statistics::Statistics;
use rdkafka::{ClientContext, TopicPartitionList};

use crate::consumer::queues::TopicPartition;
use crate::metrics::Metrics;

/// The consumer's context: rebalance bookkeeping and metrics.
pub struct LoopContext {
    revoked: Mutex<HashSet<TopicPartition>>,
    assigned: Mutex<HashSet<TopicPartition>>,
    metrics: Arc<Metrics>,
    auth_failure: Mutex<Option<String>>,
    /// The loop has ended and committed: the consumer is being closed.
    closing: std::sync::atomic::AtomicBool,
}

impl LoopContext {
    pub fn new(metrics: Arc<Metrics>) -> LoopContext {
        LoopContext {
            revoked: Mutex::new(HashSet::new()),
            assigned: Mutex::new(HashSet::new()),
            metrics,
            auth_failure: Mutex::new(None),
            closing: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// The loop ended and committed what it stored: the revoke that closing
    /// the consumer brings must not commit again. A synchronous commit made
    /// from inside librdkafka's close never gets its answer, and would hold
    /// the stopping process forever.
    pub fn close(&self) {
        self.closing
            .store(true, std::sync::atomic::Ordering::SeqCst);
    }

    /// The partitions revoked since the last call.
    pub fn take_revoked(&self) -> HashSet<TopicPartition> {
        std::mem::take(&mut *self.revoked.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Whether the partition is assigned to this consumer now.
    pub fn owns(&self, partition: &TopicPartition) -> bool {
        self.assigned
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(partition)
    }

    /// An authentication failure librdkafka reported, if any.
    pub fn auth_failure(&self) -> Option<String> {
        self.auth_failure
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

fn partitions(list: &TopicPartitionList) -> Vec<TopicPartition> {
    list.elements()
        .iter()
        .map(|e| (e.topic().to_string(), e.partition()))
        .collect()
}

impl ClientContext for LoopContext {
    fn stats(&self, statistics: Statistics) {
        for (name, topic) in &statistics.topics {
            for (id, partition) in &topic.partitions {
                if *id < 0 {
                    continue;
                }
                // A lag of -1 is librdkafka's "no committed offset yet": a
                // partition that never held a message has nothing to catch up.
                let lag = if partition.consumer_lag >= 0 {
                    partition.consumer_lag
                } else if partition.hi_offset >= 0 && partition.hi_offset == partition.lo_offset {
                    0
                } else {
                    continue;
                };
                self.metrics.set_consumer_lag(name, *id, lag);
            }
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        if chorus_platform::is_authentication_failure(&error) {
            let mut failure = self.auth_failure.lock().unwrap_or_else(|e| e.into_inner());
            failure.get_or_insert_with(|| format!("authentication to Kafka failed: {reason}"));
        }
        tracing::warn!(error = %error, reason, "Kafka client error");
    }
}

impl ConsumerContext for LoopContext {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Revoke(list) => {
                let revoked = partitions(list);
                tracing::info!(partitions = ?revoked, "partitions revoked");
                // Offsets stored so far are exactly those whose effects
                // committed. At close the loop has committed them already.
                // Partitions lost with the session (the coordinator did not
                // answer in time, e.g. while it moved to another broker) are
                // not ours to commit any more: a static member rejoining
                // would fence its own commit, which librdkafka treats as
                // fatal. Their next owner (this replica, once it has
                // rejoined) takes up from the last committed offsets, and
                // the inbox drops what was applied already.
                if consumer.assignment_lost() {
                    tracing::info!(
                        "assignment lost with the group session: not committing on revoke"
                    );
                } else if !self.closing.load(std::sync::atomic::Ordering::SeqCst)
                    && let Err(e) = consumer.commit_consumer_state(CommitMode::Sync)
                {
                    tracing::debug!(error = %e, "nothing to commit on revoke");
                }
                for (topic, partition) in &revoked {
                    self.metrics.forget_partition(topic, *partition);
                }
                let mut assigned = self.assigned.lock().unwrap_or_else(|e| e.into_inner());
                for partition in &revoked {
                    assigned.remove(partition);
                }
                self.revoked
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .extend(revoked);
            }
            Rebalance::Assign(list) => {
                let assigned = partitions(list);
                tracing::info!(partitions = ?assigned, "partitions assigned");
                // A partition revoked and assigned again within one poll
                // stays in `revoked`: the loop drops what it held from
                // before, and Kafka delivers again from the committed offset.
                self.assigned
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .extend(assigned);
            }
            Rebalance::Error(e) => tracing::warn!(error = %e, "rebalance error"),
        }
    }
}
