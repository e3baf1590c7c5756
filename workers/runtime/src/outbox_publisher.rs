//! Publishing committed outbox rows without waiting on Kafka in the
//! processing path: rows are handed to the idempotent producer in commit
//! order (which keeps per-key order), and a tracker awaits their delivery
//! reports and marks them sent in batches, at most every [`MARK_EVERY`]: one
//! `UPDATE` for many rows instead of one per row. A row whose delivery fails
//! stays unsent and the republisher publishes it again.

use std::time::Duration;

use futures::StreamExt;
use futures::stream::FuturesUnordered;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord};
use sqlx::PgPool;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::outbox::OutboxRow;

/// Deliveries awaited at once before `enqueue` waits (bounded memory).
const IN_FLIGHT: usize = 20_000;
/// How many delivered rows one `UPDATE … sent_at` marks at most.
const MARK_BATCH: usize = 1_000;
/// How long delivered rows wait to be marked together. Far below the
/// republisher's staleness threshold, so it does not publish them again
/// meanwhile; a crash in between only means they are published again (duplicates,
/// which consumers' inboxes drop, never losses).
const MARK_EVERY: Duration = Duration::from_millis(100);

/// Hands outbox rows to Kafka; see the module docs.
#[derive(Clone)]
pub struct OutboxPublisher {
    producer: FutureProducer,
    deliveries: mpsc::Sender<(i64, DeliveryFuture)>,
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
        let (deliveries, receiver) = mpsc::channel(IN_FLIGHT);
        let tracker = tokio::spawn(track(receiver, pool));
        (
            OutboxPublisher {
                producer,
                deliveries,
            },
            Tracker(tracker),
        )
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

async fn track(mut receiver: mpsc::Receiver<(i64, DeliveryFuture)>, pool: PgPool) {
    let mut pending = FuturesUnordered::new();
    let mut delivered: Vec<i64> = Vec::new();
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
                Ok(Ok(_)) => delivered.push(id),
                Ok(Err((e, _))) => tracing::warn!(error = %e, outbox_id = id, "delivery failed; the republisher will publish the row again"),
                Err(_) => tracing::warn!(outbox_id = id, "delivery report lost; the republisher will publish the row again"),
            },
            _ = tick.tick() => due = true,
        }
        if !delivered.is_empty() && (due || delivered.len() >= MARK_BATCH) {
            mark_sent(&pool, std::mem::take(&mut delivered)).await;
        }
    }
    if !delivered.is_empty() {
        mark_sent(&pool, delivered).await;
    }
}

async fn mark_sent(pool: &PgPool, ids: Vec<i64>) {
    if let Err(e) = crate::outbox::mark_sent(pool, &ids).await {
        // Unmarked rows are republished: duplicates, never losses.
        tracing::warn!(error = %e, rows = ids.len(), "marking outbox rows sent failed");
    }
}
