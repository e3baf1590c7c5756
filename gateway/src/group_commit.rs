//! Group commit of placed orders. A POST hands its validated order to one
//! batcher task and waits; whatever arrived while the previous batch was
//! being written goes in the next. Per batch: one multi-row insert into
//! `accepted_orders` (plus one lookup of the rows earlier attempts wrote for
//! keys that conflicted), the batch's `OrderPlaced` events produced together,
//! and once Kafka acknowledged them one update marking them published. The
//! guarantees are those of one order at a time: a 202 only after Kafka
//! acknowledged the order's `OrderPlaced`; the same key and body answer the
//! same order, the same key with another body 422; a GET right after the
//! 202 finds the order. A batch is first held to the cap on each
//! customer's orders not yet final ([`open_order_cap`](crate::open_order_cap)).

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::Arc;

use chorus_avro::{Event, OrderLine, OrderPlaced};
use chorus_platform::payment_token::PaymentTokenKeys;
use prometheus::{Histogram, IntCounter};
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

use crate::error::AppError;
use crate::open_order_cap::OpenOrderCap;
use crate::publish::Publisher;
use crate::request_span::TraceHeaders;
use crate::routes::orders::{PlaceOrder, order_placed_event_id};
use crate::store::{AcceptedOrder, NewOrder, Store};

/// At most this many attempts share a batch.
pub const MAX_BATCH: usize = 256;

/// One POST's order, validated, under its (customer, key).
pub struct Attempt {
    pub customer_id: String,
    pub idempotency_key: String,
    pub request_hash: String,
    pub order: PlaceOrder,
    /// The request's trace context, for the event's headers.
    pub trace: TraceHeaders,
}

impl Attempt {
    fn key(&self) -> (String, String) {
        (self.customer_id.clone(), self.idempotency_key.clone())
    }
}

/// What a 202 answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Accepted {
    pub order_id: Uuid,
    /// Published by this request (not answered again from an earlier one).
    pub published_now: bool,
}

/// The counters the batcher moves.
#[derive(Clone)]
pub struct BatchMetrics {
    pub batch_size: Histogram,
    pub orders_accepted: IntCounter,
    pub publish_failures: IntCounter,
}

type Reply = oneshot::Sender<Result<Accepted, AppError>>;

/// The handle POSTs use; the batcher stops when every handle is gone.
pub struct GroupCommit {
    queue: mpsc::Sender<(Attempt, Reply)>,
}

impl GroupCommit {
    /// The handle, and the batcher to run as a supervised task: it ends
    /// (`Ok`) once every handle is gone, which is only at shutdown.
    pub fn new(
        store: Store,
        publisher: Arc<dyn Publisher>,
        payment_tokens: Option<Arc<PaymentTokenKeys>>,
        metrics: BatchMetrics,
        open_orders_per_customer: u32,
    ) -> (
        GroupCommit,
        impl Future<Output = anyhow::Result<()>> + Send + 'static,
    ) {
        // Bounded: a POST waits for room instead of piling up without limit.
        let (queue, mut arrivals) = mpsc::channel(4 * MAX_BATCH);
        let batcher = Batcher {
            store,
            publisher,
            payment_tokens,
            metrics,
            open_order_cap: OpenOrderCap::new(open_orders_per_customer),
        };
        let run = async move {
            let mut batch = Vec::with_capacity(MAX_BATCH);
            while arrivals.recv_many(&mut batch, MAX_BATCH).await > 0 {
                batcher.commit(std::mem::take(&mut batch)).await;
            }
            Ok(())
        };
        (GroupCommit { queue }, run)
    }

    /// Accepts the order with the next batch; answers once that is done.
    pub async fn accept(&self, attempt: Attempt) -> Result<Accepted, AppError> {
        let (reply, answer) = oneshot::channel();
        let stopped = || AppError::Internal("the order batcher has stopped".to_string());
        self.queue
            .send((attempt, reply))
            .await
            .map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }
}

struct Batcher {
    store: Store,
    publisher: Arc<dyn Publisher>,
    payment_tokens: Option<Arc<PaymentTokenKeys>>,
    metrics: BatchMetrics,
    open_order_cap: OpenOrderCap,
}

impl Batcher {
    async fn commit(&self, batch: Vec<(Attempt, Reply)>) {
        self.metrics.batch_size.observe(batch.len() as f64);
        let batch = self.within_open_order_cap(batch).await;
        if batch.is_empty() {
            return;
        }
        // The first attempt of each (customer, key) proposes the row.
        let mut keys = HashSet::new();
        let proposals: Vec<NewOrder> = batch
            .iter()
            .filter(|(attempt, _)| keys.insert(attempt.key()))
            .map(|(attempt, _)| NewOrder {
                customer_id: attempt.customer_id.clone(),
                idempotency_key: attempt.idempotency_key.clone(),
                request_hash: attempt.request_hash.clone(),
                order_id: Uuid::new_v4(),
                items: attempt.order.lines_json(),
                currency: attempt.order.currency.as_str().to_string(),
            })
            .collect();
        let rows = match self.store.accept_batch(&proposals).await {
            Ok(rows) => rows,
            Err(e) => {
                for (_, reply) in batch {
                    let _ = reply.send(Err(e.clone()));
                }
                return;
            }
        };

        // Each attempt is answered from its row, or waits for its order's publish.
        let mut events: HashMap<Uuid, (Event, TraceHeaders)> = HashMap::new();
        let mut waiting: Vec<(Uuid, Reply)> = Vec::new();
        for (attempt, reply) in batch {
            let answer = match rows.get(&attempt.key()) {
                None => Err(AppError::Internal(
                    "no accepted_orders row for a key just written".to_string(),
                )),
                Some(row) if row.request_hash != attempt.request_hash => {
                    Err(AppError::IdempotencyKeyReused)
                }
                Some(row) if row.published => Ok(Accepted {
                    order_id: row.order_id,
                    published_now: false,
                }),
                Some(row) => {
                    events.entry(row.order_id).or_insert_with(|| {
                        (self.order_placed(row, &attempt), attempt.trace.clone())
                    });
                    waiting.push((row.order_id, reply));
                    continue;
                }
            };
            let _ = reply.send(answer);
        }
        let failed = self.publish(&events).await;
        for (order_id, reply) in waiting {
            let answer = match failed.get(&order_id) {
                Some(e) => Err(e.clone()),
                None => Ok(Accepted {
                    order_id,
                    published_now: true,
                }),
            };
            let _ = reply.send(answer);
        }
    }

    /// The attempts that may go ahead; the others are answered here.
    async fn within_open_order_cap(&self, batch: Vec<(Attempt, Reply)>) -> Vec<(Attempt, Reply)> {
        let keys: Vec<_> = batch.iter().map(|(attempt, _)| attempt.key()).collect();
        let verdicts = match self.open_order_cap.check(&self.store, &keys).await {
            Ok(None) => return batch,
            Ok(Some(verdicts)) => verdicts,
            Err(e) => {
                for (_, reply) in batch {
                    let _ = reply.send(Err(e.clone()));
                }
                return Vec::new();
            }
        };
        let mut admitted = Vec::with_capacity(batch.len());
        for ((attempt, reply), ok) in batch.into_iter().zip(verdicts) {
            if ok {
                admitted.push((attempt, reply));
            } else {
                let _ = reply.send(Err(self.open_order_cap.refusal()));
            }
        }
        admitted
    }

    /// Produces the events together, then marks the acknowledged ones
    /// published in one statement; returns why each failed order failed.
    async fn publish(
        &self,
        events: &HashMap<Uuid, (Event, TraceHeaders)>,
    ) -> HashMap<Uuid, AppError> {
        let sends = events.iter().map(|(order_id, (event, trace))| async move {
            (*order_id, self.publisher.publish(event, trace).await)
        });
        let mut failed = HashMap::new();
        let mut acknowledged = Vec::new();
        for (order_id, result) in futures::future::join_all(sends).await {
            match result {
                Ok(()) => acknowledged.push(order_id),
                Err(e) => {
                    self.metrics.publish_failures.inc();
                    failed.insert(order_id, AppError::from(e));
                }
            }
        }
        if acknowledged.is_empty() {
            return failed;
        }
        match self.store.mark_published(&acknowledged).await {
            Ok(()) => self
                .metrics
                .orders_accepted
                .inc_by(acknowledged.len() as u64),
            // Published but not marked: a retry with the same key publishes
            // the same event again, a duplicate downstream drops.
            Err(e) => failed.extend(acknowledged.into_iter().map(|id| (id, e.clone()))),
        }
        failed
    }

    /// The order's `OrderPlaced`, rebuilt from its row and this attempt: the
    /// same key and body carry the same payment token, so a re-publish after
    /// a failure is the same event (same id; the token sealed afresh).
    fn order_placed(&self, row: &AcceptedOrder, attempt: &Attempt) -> Event {
        let order_id = row.order_id.to_string();
        let token = attempt.order.payment_token.as_str();
        let (payment_token, payment_token_key_id) = match &self.payment_tokens {
            Some(keys) => {
                let sealed = keys.seal(&order_id, token);
                (sealed.ciphertext, Some(sealed.key_id))
            }
            None => (token.to_string(), None),
        };
        Event::from(OrderPlaced {
            event_id: order_placed_event_id(row.order_id).to_string(),
            order_id: order_id.clone(),
            occurred_at: row.created_at.timestamp_millis(),
            correlation_id: order_id,
            causation_id: None,
            customer_id: row.customer_id.clone(),
            items: attempt
                .order
                .items
                .iter()
                .map(|(sku, quantity)| OrderLine {
                    sku: sku.as_str().to_string(),
                    quantity: quantity.get(),
                })
                .collect(),
            currency: attempt.order.currency.as_str().to_string(),
            payment_token,
            payment_token_key_id,
        })
    }
}
