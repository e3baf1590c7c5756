//! Publishing committed outbox rows without waiting on Kafka in the
//! processing path: rows are handed to the idempotent producer in commit
//! order (which keeps per-key order), and a tracker awaits their delivery
//! reports. Delivered rows are marked sent in the next transaction the
//! worker commits anyway ([`OutboxPublisher::commit`]: one `UPDATE` riding
//! in a batch, no commit of its own); only rows no batch took within
//! [`MARK_AFTER`] (an idle worker) are marked by the tracker itself. A row
//! whose delivery fails stays unsent and the republisher publishes it again;
//! marks lost to a crash only mean a row is published again (a duplicate,
//! which consumers' inboxes drop, never a loss).

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use futures::StreamExt;
use futures::stream::FuturesUnordered;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord};
use sqlx::{PgPool, Postgres, Transaction};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::outbox::OutboxRow;

/// Deliveries awaited at once before `enqueue` waits (bounded memory).
const IN_FLIGHT: usize = 20_000;
/// Delivered rows the tracker marks itself at once, without waiting for a batch.
const MARK_BATCH: usize = 5_000;
/// How long delivered rows wait for a batch transaction to mark them before
/// the tracker does. Far below the republisher's staleness threshold, so it
/// does not publish them again meanwhile.
const MARK_AFTER: Duration = Duration::from_millis(300);
/// How often the tracker looks at how long delivered rows have waited.
const MARK_EVERY: Duration = Duration::from_millis(100);

/// Hands outbox rows to Kafka; see the module docs.
#[derive(Clone)]
pub struct OutboxPublisher {
    producer: FutureProducer,
    deliveries: mpsc::Sender<(i64, DeliveryFuture)>,
    delivered: Arc<Mutex<Delivered>>,
}

/// Rows delivered and not yet marked sent.
#[derive(Default)]
struct Delivered {
    ids: Vec<i64>,
    /// When the first of `ids` was delivered.
    since: Option<Instant>,
}

impl Delivered {
    fn push(&mut self, id: i64) {
        self.since.get_or_insert_with(Instant::now);
        self.ids.push(id);
    }

    fn take(&mut self) -> Vec<i64> {
        self.since = None;
        std::mem::take(&mut self.ids)
    }

    /// Puts back marks a failed transaction did not make; they keep their
    /// place in the wait (the tracker takes them if no batch does).
    fn give_back(&mut self, ids: Vec<i64>, since: Option<Instant>) {
        if !ids.is_empty() {
            self.since = match (self.since, since) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            self.ids.extend(ids);
        }
    }
}

fn lock(delivered: &Mutex<Delivered>) -> MutexGuard<'_, Delivered> {
    delivered.lock().unwrap_or_else(|e| e.into_inner())
}

/// The tracker task. Once every [`OutboxPublisher`] clone is dropped,
/// [`Tracker::drain`] waits for the remaining deliveries and marks them.
pub struct Tracker(JoinHandle<()>);

impl Tracker {
    pub async fn drain(self) {
        let _ = self.0.await;
    }
}

impl OutboxPublisher {
    pub fn start(producer: FutureProducer, pool: PgPool) -> (OutboxPublisher, Tracker) {
        Self::start_marking_after(producer, pool, MARK_AFTER)
    }

    /// As [`start`](Self::start), with the tracker marking rows itself only
    /// once they waited `mark_after` for a transaction to take them.
    pub fn start_marking_after(
        producer: FutureProducer,
        pool: PgPool,
        mark_after: Duration,
    ) -> (OutboxPublisher, Tracker) {
        let (deliveries, receiver) = mpsc::channel(IN_FLIGHT);
        let delivered = Arc::new(Mutex::new(Delivered::default()));
        let tracker = tokio::spawn(track(receiver, delivered.clone(), pool, mark_after));
        (
            OutboxPublisher {
                producer,
                deliveries,
                delivered,
            },
            Tracker(tracker),
        )
    }

    /// Commits `tx` with the rows delivered so far marked sent in it, so the
    /// marks cost no commit of their own. If the transaction fails, the
    /// marks are kept for the next one.
    pub async fn commit(&self, mut tx: Transaction<'_, Postgres>) -> Result<(), sqlx::Error> {
        let (ids, since) = {
            let mut delivered = lock(&self.delivered);
            let since = delivered.since;
            (delivered.take(), since)
        };
        let committed = match crate::outbox::mark_sent(&mut *tx, &ids).await {
            Ok(()) => tx.commit().await,
            Err(e) => Err(e),
        };
        if committed.is_err() {
            lock(&self.delivered).give_back(ids, since);
        }
        committed
    }

    /// Enqueues `rows` in order; returns once the producer holds them all.
    pub async fn enqueue(&self, rows: Vec<OutboxRow>) {
        for row in rows {
            let delivery = loop {
                match self.producer.send_result(record(&row)) {
                    Ok(delivery) => break delivery,
                    // The producer's queue is full: wait for it to drain (back-pressure).
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                    // Leave this row and the rest for the republisher, in order.
                    Err((e, _)) => {
                        tracing::warn!(error = %e, outbox_id = row.id, "outbox row not enqueued; the republisher will publish it");
                        return;
                    }
                }
            };
            if self.deliveries.send((row.id, delivery)).await.is_err() {
                return;
            }
        }
    }
}

/// The Kafka record of an outbox row.
pub fn record(row: &OutboxRow) -> FutureRecord<'_, str, [u8]> {
    let mut headers = OwnedHeaders::new_with_capacity(row.headers.len());
    for (key, value) in row.headers.iter() {
        headers = headers.insert(Header {
            key,
            value: Some(value.as_str()),
        });
    }
    FutureRecord::to(&row.topic)
        .key(row.key.as_str())
        .payload(row.payload.as_slice())
        .headers(headers)
}

async fn track(
    mut receiver: mpsc::Receiver<(i64, DeliveryFuture)>,
    delivered: Arc<Mutex<Delivered>>,
    pool: PgPool,
    mark_after: Duration,
) {
    let mut pending = FuturesUnordered::new();
    let mut open = true;
    let mut tick = tokio::time::interval(MARK_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    while open || !pending.is_empty() {
        let mut due = false;
        tokio::select! {
            next = receiver.recv(), if open => match next {
                Some((id, delivery)) => pending.push(async move { (id, delivery.await) }),
                None => open = false,
            },
            Some((id, result)) = pending.next(), if !pending.is_empty() => match result {
                Ok(Ok(_)) => lock(&delivered).push(id),
                Ok(Err((e, _))) => tracing::warn!(error = %e, outbox_id = id, "delivery failed; the republisher will publish the row again"),
                Err(_) => tracing::warn!(outbox_id = id, "delivery report lost; the republisher will publish the row again"),
            },
            _ = tick.tick() => due = true,
        }
        let ids = {
            let mut delivered = lock(&delivered);
            let waited = delivered
                .since
                .is_some_and(|since| since.elapsed() >= mark_after);
            if (due && waited) || delivered.ids.len() >= MARK_BATCH {
                delivered.take()
            } else {
                Vec::new()
            }
        };
        mark_sent(&pool, ids).await;
    }
    let ids = lock(&delivered).take();
    mark_sent(&pool, ids).await;
}

async fn mark_sent(pool: &PgPool, ids: Vec<i64>) {
    if let Err(e) = crate::outbox::mark_sent(pool, &ids).await {
        // Unmarked rows are republished: duplicates, never losses.
        tracing::warn!(error = %e, rows = ids.len(), "marking outbox rows sent failed");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marks_a_failed_transaction_took_are_given_back_with_their_age() {
        let mut delivered = Delivered::default();
        delivered.push(1);
        let since = delivered.since;
        assert!(since.is_some());
        assert_eq!(delivered.take(), vec![1]);
        assert!(delivered.since.is_none(), "nothing waits after a take");
        delivered.push(2);
        delivered.give_back(vec![1], since);
        assert_eq!(delivered.ids, vec![2, 1]);
        assert_eq!(delivered.since, since, "the oldest wait counts");
        delivered.take();
        delivered.give_back(Vec::new(), since);
        assert!(
            delivered.since.is_none(),
            "giving back nothing starts no wait"
        );
    }
}
