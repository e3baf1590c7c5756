//! The messages a worker holds, per partition, in arrival order, and which
//! partitions must be paused: one whose head message waits for a retry, or
//! whose queue is full. Pure bookkeeping (no Kafka, no clock of its own), so
//! every rule here is tested on its own.
//!
//! Order: messages leave a partition's queue only from the front, and any
//! prefix of the global arrival order is a prefix of every partition's queue,
//! so a batch (or half of one) never applies a message before an earlier one
//! of its partition.

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

use rdkafka::message::{Message, OwnedMessage};

use crate::failure::Failure;
use crate::retry::{Pauses, RetryPolicy};

/// A topic and partition.
pub type TopicPartition = (String, i32);

/// A message waiting to be processed, with how often it was tried.
#[derive(Debug)]
pub struct Queued {
    /// Arrival order across all partitions.
    pub seq: u64,
    pub message: OwnedMessage,
    /// Failed attempts so far that count against `CHORUS_MAX_ATTEMPTS`
    /// (transient failures do not: see [`Failure::counts_as_attempt`]).
    pub attempts: u32,
}

impl Queued {
    pub fn partition(&self) -> TopicPartition {
        (self.message.topic().to_string(), self.message.partition())
    }

    /// The message failed and goes back for a retry.
    pub fn failed(&mut self, failure: &Failure) {
        if failure.counts_as_attempt() {
            self.attempts += 1;
        }
    }
}

struct Retrying {
    due: Instant,
    pauses: Pauses,
}

#[derive(Default)]
struct PartitionQueue {
    queue: VecDeque<Queued>,
    retrying: Option<Retrying>,
}

/// Every assigned partition's queue and retry state.
pub struct Queues {
    partitions: BTreeMap<TopicPartition, PartitionQueue>,
    next_seq: u64,
    capacity: usize,
    retry: RetryPolicy,
}

impl Queues {
    /// `capacity`: messages a partition may hold before it is paused.
    pub fn new(capacity: usize, retry: RetryPolicy) -> Queues {
        Queues {
            partitions: BTreeMap::new(),
            next_seq: 0,
            capacity: capacity.max(1),
            retry,
        }
    }

    /// Appends a message received from Kafka.
    pub fn push(&mut self, message: OwnedMessage) {
        let queued = Queued {
            seq: self.next_seq,
            message,
            attempts: 0,
        };
        self.next_seq += 1;
        self.partitions
            .entry(queued.partition())
            .or_default()
            .queue
            .push_back(queued);
    }

    /// How many messages are held in all.
    pub fn len(&self) -> usize {
        self.partitions.values().map(|p| p.queue.len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether some message may be processed at `now`.
    pub fn has_ready(&self, now: Instant) -> bool {
        self.partitions
            .values()
            .any(|p| !p.queue.is_empty() && p.retrying.as_ref().is_none_or(|r| r.due <= now))
    }

    /// Takes up to `max` messages that may be processed at `now`, in arrival
    /// order: everything queued in partitions not waiting for a retry, and
    /// the queues of partitions whose retry is due.
    pub fn take_ready(&mut self, now: Instant, max: usize) -> Vec<Queued> {
        let mut ready: Vec<&mut PartitionQueue> = self
            .partitions
            .values_mut()
            .filter(|p| p.retrying.as_ref().is_none_or(|r| r.due <= now))
            .collect();
        let mut taken = Vec::new();
        // Merge the partitions' queues by arrival order.
        while taken.len() < max {
            let next = ready
                .iter()
                .enumerate()
                .filter_map(|(i, p)| p.queue.front().map(|q| (i, q.seq)))
                .min_by_key(|(_, seq)| *seq)
                .map(|(i, _)| i);
            let Some(i) = next else { break };
            if let Some(queued) = ready[i].queue.pop_front() {
                taken.push(queued);
            }
        }
        taken
    }

    /// Puts messages (of one partition, in order) back at the front of its
    /// queue, untried or failed: they go again before anything that came after.
    pub fn give_back(&mut self, partition: &TopicPartition, messages: Vec<Queued>) {
        let queue = &mut self.partitions.entry(partition.clone()).or_default().queue;
        for queued in messages.into_iter().rev() {
            queue.push_front(queued);
        }
    }

    /// The partition's head failed: try it again after the next pause of its
    /// backoff sequence (a fresh sequence if it was not retrying).
    pub fn retry_later(&mut self, partition: &TopicPartition, now: Instant) -> Duration {
        let state = self.partitions.entry(partition.clone()).or_default();
        let retrying = state.retrying.get_or_insert_with(|| Retrying {
            due: now,
            pauses: self.retry.pauses(),
        });
        let pause = retrying.pauses.next().unwrap_or(self.retry.max_backoff);
        retrying.due = now + pause;
        pause
    }

    /// The partition's head went through: it no longer waits for a retry.
    pub fn succeeded(&mut self, partition: &TopicPartition) {
        if let Some(state) = self.partitions.get_mut(partition) {
            state.retrying = None;
        }
    }

    /// When the earliest retry is due, if any partition waits for one.
    pub fn next_due(&self) -> Option<Instant> {
        self.partitions
            .values()
            .filter(|p| !p.queue.is_empty())
            .filter_map(|p| p.retrying.as_ref().map(|r| r.due))
            .min()
    }

    /// Forgets revoked partitions and everything queued for them.
    pub fn revoke(&mut self, partitions: &HashSet<TopicPartition>) -> usize {
        let mut dropped = 0;
        for partition in partitions {
            if let Some(state) = self.partitions.remove(partition) {
                dropped += state.queue.len();
            }
        }
        dropped
    }

    /// The partitions that must be paused now: waiting for a retry, or full.
    pub fn to_pause(&self) -> HashSet<TopicPartition> {
        self.partitions
            .iter()
            .filter(|(_, p)| p.retrying.is_some() || p.queue.len() >= self.capacity)
            .map(|(tp, _)| tp.clone())
            .collect()
    }

    /// The partitions waiting for a retry.
    pub fn retrying(&self) -> HashSet<TopicPartition> {
        self.partitions
            .iter()
            .filter(|(_, p)| p.retrying.is_some())
            .map(|(tp, _)| tp.clone())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rdkafka::Timestamp;

    fn message(topic: &str, partition: i32, offset: i64) -> OwnedMessage {
        OwnedMessage::new(
            None,
            None,
            topic.into(),
            Timestamp::NotAvailable,
            partition,
            offset,
            None,
        )
    }

    fn queues(capacity: usize) -> Queues {
        Queues::new(
            capacity,
            RetryPolicy {
                max_attempts: 10,
                first_backoff: Duration::from_millis(100),
                max_backoff: Duration::from_secs(1),
            },
        )
    }

    fn offsets(taken: &[Queued]) -> Vec<(i32, i64)> {
        taken
            .iter()
            .map(|q| (q.message.partition(), q.message.offset()))
            .collect()
    }

    #[test]
    fn messages_leave_in_arrival_order_across_partitions() {
        let mut q = queues(10);
        for (p, o) in [(0, 1), (1, 7), (0, 2), (1, 8), (0, 3)] {
            q.push(message("t", p, o));
        }
        let now = Instant::now();
        assert_eq!(offsets(&q.take_ready(now, 3)), [(0, 1), (1, 7), (0, 2)]);
        assert_eq!(offsets(&q.take_ready(now, 10)), [(1, 8), (0, 3)]);
        assert!(q.is_empty());
    }

    #[test]
    fn drained_partitions_do_not_stop_the_others() {
        let mut q = queues(10);
        q.push(message("t", 0, 1));
        q.take_ready(Instant::now(), 10);
        q.push(message("t", 1, 1));
        q.push(message("t", 1, 2));
        assert_eq!(offsets(&q.take_ready(Instant::now(), 10)), [(1, 1), (1, 2)]);
    }

    #[test]
    fn a_retrying_partition_is_paused_and_skipped_while_the_others_flow() {
        let mut q = queues(10);
        q.push(message("t", 0, 1));
        q.push(message("t", 1, 1));
        q.push(message("t", 0, 2));
        let now = Instant::now();
        let mut taken = q.take_ready(now, 10);
        assert_eq!(taken.len(), 3);
        // Partition 0's head failed: it and its successor go back.
        let p0: TopicPartition = ("t".into(), 0);
        let back: Vec<Queued> = taken.drain(..).filter(|m| m.partition() == p0).collect();
        q.give_back(&p0, back);
        let pause = q.retry_later(&p0, now);
        assert!(pause >= Duration::from_millis(100) && pause <= Duration::from_secs(1));
        assert_eq!(q.to_pause(), HashSet::from([p0.clone()]));
        assert_eq!(q.retrying(), HashSet::from([p0.clone()]));

        q.push(message("t", 1, 2));
        assert_eq!(offsets(&q.take_ready(now, 10)), [(1, 2)]);
        assert_eq!(q.next_due(), Some(now + pause));

        // Due: partition 0 comes back, in its order.
        assert_eq!(offsets(&q.take_ready(now + pause, 10)), [(0, 1), (0, 2)]);
        q.succeeded(&p0);
        assert!(q.to_pause().is_empty());
    }

    #[test]
    fn repeated_failures_back_off_further() {
        let mut q = queues(10);
        let p: TopicPartition = ("t".into(), 0);
        let now = Instant::now();
        let first = q.retry_later(&p, now);
        let later: Vec<Duration> = (0..6).map(|_| q.retry_later(&p, now)).collect();
        assert!(later.iter().all(|&d| d <= Duration::from_secs(1)));
        assert!(later.last().unwrap() > &first, "{first:?} then {later:?}");
    }

    #[test]
    fn a_full_partition_is_paused_until_it_drains() {
        let mut q = queues(2);
        q.push(message("t", 0, 1));
        q.push(message("t", 0, 2));
        q.push(message("t", 1, 1));
        assert_eq!(q.to_pause(), HashSet::from([("t".to_string(), 0)]));
        q.take_ready(Instant::now(), 1);
        assert!(q.to_pause().is_empty());
    }

    #[test]
    fn an_outage_then_one_unknown_failure_is_retried_not_exhausted() {
        use crate::failure::Settlement;
        let max_attempts = 3;
        let mut q = queues(10);
        q.push(message("t", 0, 1));
        let mut queued = q.take_ready(Instant::now(), 1).remove(0);
        // The database was down for a long while: many transient failures.
        let outage = Failure::transient("connection", "PostgreSQL is restarting");
        for _ in 0..50 {
            assert_eq!(
                outage.settle(queued.attempts, max_attempts),
                Settlement::Retry
            );
            queued.failed(&outage);
        }
        assert_eq!(queued.attempts, 0);
        // Then the message fails for an unknown reason: attempt 1 of 3.
        let unknown = Failure::unknown("database", "nobody knows this one");
        assert_eq!(
            unknown.settle(queued.attempts, max_attempts),
            Settlement::Retry
        );
        queued.failed(&unknown);
        queued.failed(&outage);
        assert_eq!(
            unknown.settle(queued.attempts, max_attempts),
            Settlement::Retry
        );
        queued.failed(&unknown);
        assert_eq!(
            unknown.settle(queued.attempts, max_attempts),
            Settlement::DeadLetter {
                class: "exhausted",
                attempts: 3
            }
        );
    }

    #[test]
    fn revoked_partitions_lose_their_queue() {
        let mut q = queues(10);
        q.push(message("t", 0, 1));
        q.push(message("t", 0, 2));
        q.push(message("t", 1, 1));
        let dropped = q.revoke(&HashSet::from([("t".to_string(), 0)]));
        assert_eq!(dropped, 2);
        assert_eq!(offsets(&q.take_ready(Instant::now(), 10)), [(1, 1)]);
    }
}
