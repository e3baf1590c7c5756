//! The order worker as the consumer loop sees it: the facts a batch of events
//! states → lock their order rows → rules, event by event → write back, all
//! inside the loop's transaction, so the recorded facts, the new statuses
//! and the final events commit together or not at all. Every second it also
//! cancels the orders whose deadline passed (`CHORUS_ORDER_DEADLINE_SECS`
//! after `OrderPlaced`), in a transaction of its own, through the same rules.

use std::collections::HashMap;
use std::time::Duration;

use chorus_avro::{Envelope, Event, EventType, Topic};
use chorus_runtime::{Env, HandleError, Handler, Incoming, NoCalls, Verdict};
use chrono::{DateTime, Utc};
use prometheus::IntGaugeVec;
use sqlx::PgConnection;

use crate::rules::{self, Fact, Order};
use crate::store::{self, LastEvent};

/// Orders cancelled by one deadline scan at most.
const OVERDUE_BATCH: i64 = 500;
/// The `chorus_orders{status}` gauge is refreshed every this many ticks.
const CENSUS_EVERY: u64 = 15;

/// The order state machine: records what the saga's events state about an
/// order, derives its status, announces the final one.
#[derive(Debug)]
pub struct OrderHandler {
    deadline: Duration,
    orders: Option<IntGaugeVec>,
    ticks: std::sync::atomic::AtomicU64,
}

impl Default for OrderHandler {
    fn default() -> Self {
        OrderHandler::new(Duration::from_secs(60))
    }
}

impl OrderHandler {
    /// Orders not final `deadline` after their `OrderPlaced` are cancelled (`timeout`).
    pub fn new(deadline: Duration) -> OrderHandler {
        OrderHandler {
            deadline,
            orders: None,
            ticks: Default::default(),
        }
    }

    /// The handler configured from `CHORUS_ORDER_DEADLINE_SECS` (default 60).
    pub fn from_env(env: &Env) -> Result<OrderHandler, chorus_runtime::ConfigError> {
        let secs: u64 = env.positive("CHORUS_ORDER_DEADLINE_SECS", 60)?;
        Ok(OrderHandler::new(Duration::from_secs(secs)))
    }

    /// Exposes `chorus_orders{status}` (orders by status) in `registry`.
    pub fn with_census(mut self, registry: &prometheus::Registry) -> anyhow::Result<OrderHandler> {
        let gauge = IntGaugeVec::new(
            prometheus::Opts::new(
                "orders",
                "Orders by status (none: OrderPlaced not seen yet)",
            ),
            &["status"],
        )?;
        registry.register(Box::new(gauge.clone()))?;
        self.orders = Some(gauge);
        Ok(self)
    }

    fn deadline_of(&self, event: &Event) -> Option<DateTime<Utc>> {
        let Event::OrderPlaced(placed) = event else {
            return None;
        };
        let placed_at =
            DateTime::from_timestamp_millis(placed.occurred_at).unwrap_or_else(Utc::now);
        chrono::Duration::from_std(self.deadline)
            .ok()
            .map(|deadline| placed_at + deadline)
    }

    async fn census(&self, tx: &mut PgConnection) -> Result<(), HandleError> {
        let Some(gauge) = &self.orders else {
            return Ok(());
        };
        let tick = self
            .ticks
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if !tick.is_multiple_of(CENSUS_EVERY) {
            return Ok(());
        }
        gauge.reset();
        for (status, count) in store::status_counts(tx).await? {
            let status = status.unwrap_or_else(|| "none".to_string());
            gauge.with_label_values(&[status.as_str()]).set(count);
        }
        Ok(())
    }
}

impl Handler for OrderHandler {
    type Calls = NoCalls;

    fn name(&self) -> &'static str {
        "order"
    }

    fn topics(&self) -> &'static [Topic] {
        &[Topic::Orders, Topic::Inventory, Topic::Payments]
    }

    fn handles(&self, event_type: EventType) -> bool {
        matches!(
            event_type,
            EventType::OrderPlaced
                | EventType::OrderCancellationRequested
                | EventType::StockReserved
                | EventType::StockReservationFailed
                | EventType::PaymentAuthorized
                | EventType::PaymentFailed
        )
    }

    fn calls(&self) -> &NoCalls {
        &NoCalls
    }

    async fn apply(
        &self,
        tx: &mut PgConnection,
        events: &[Incoming<'_>],
    ) -> Result<Vec<Verdict<chorus_runtime::NoCall>>, HandleError> {
        let facts: Vec<Result<Option<(&str, Fact)>, rules::Invalid>> =
            events.iter().map(|e| rules::fact_of(e.event)).collect();
        let ids: Vec<&str> = facts
            .iter()
            .filter_map(|f| f.as_ref().ok()?.as_ref().map(|(id, _)| *id))
            .collect();
        let mut orders = if ids.is_empty() {
            HashMap::new()
        } else {
            store::lock_orders(tx, &ids).await?
        };
        let mut changed: HashMap<String, LastEvent> = HashMap::new();
        let mut verdicts = Vec::with_capacity(events.len());
        let now = Utc::now();
        for (incoming, fact) in events.iter().zip(facts) {
            let (order_id, fact) = match fact {
                Err(invalid) => {
                    verdicts.push(Verdict::Rejected(invalid.0));
                    continue;
                }
                Ok(None) => {
                    verdicts.push(Verdict::emit(vec![]));
                    continue;
                }
                Ok(Some(found)) => found,
            };
            let order = orders
                .get(order_id)
                .cloned()
                .unwrap_or_else(|| Order::new(order_id));
            let envelope = |event_type: EventType| Envelope::caused_by(incoming.event, event_type);
            let Some((mut next, emitted)) = rules::apply(&order, fact, now, envelope) else {
                incoming
                    .span
                    .in_scope(|| tracing::debug!("fact known already; nothing changes"));
                verdicts.push(Verdict::emit(vec![]));
                continue;
            };
            if next.deadline_at.is_none() {
                next.deadline_at = self.deadline_of(incoming.event);
            }
            if next.status != order.status {
                let status = next.status.as_ref().map(rules::Status::name);
                incoming
                    .span
                    .in_scope(|| tracing::info!(status, "order status changed"));
            }
            changed.insert(
                order_id.to_string(),
                LastEvent {
                    event_type: incoming.event.event_type().name(),
                    at: now,
                },
            );
            orders.insert(order_id.to_string(), next);
            verdicts.push(Verdict::emit(emitted));
        }
        let rows: Vec<(&Order, Option<&LastEvent>)> = changed
            .iter()
            .map(|(id, last)| (&orders[id], Some(last)))
            .collect();
        store::save_orders(tx, &rows).await?;
        Ok(verdicts)
    }

    fn tick_every(&self) -> Option<Duration> {
        Some(Duration::from_secs(1))
    }

    /// Cancels overdue orders (`timeout`): each through the rules like any
    /// fact, so its stock is released and its payment voided downstream.
    async fn tick(&self, tx: &mut PgConnection) -> Result<Vec<Event>, HandleError> {
        self.census(tx).await?;
        let overdue = store::lock_overdue(tx, OVERDUE_BATCH).await?;
        let now = Utc::now();
        let mut emitted = Vec::new();
        let mut cancelled = Vec::new();
        for order in &overdue {
            // The deadline's events get ids of their own, the same however
            // often this runs for the order.
            let cause = format!("deadline:{}", order.order_id);
            let envelope = |event_type: EventType| {
                Envelope::caused_by_parts(&cause, &order.order_id, event_type)
            };
            if let Some((next, events)) = rules::apply(order, Fact::TimedOut, now, envelope) {
                tracing::info!(order_id = %order.order_id, "order deadline passed; cancelling");
                emitted.extend(events);
                cancelled.push(next);
            }
        }
        let last = LastEvent {
            event_type: "deadline",
            at: now,
        };
        let rows: Vec<(&Order, Option<&LastEvent>)> =
            cancelled.iter().map(|order| (order, Some(&last))).collect();
        store::save_orders(tx, &rows).await?;
        Ok(emitted)
    }
}
