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
        // Kept by triggers on `orders`: no count of every order (see
        // `store::status_counts`).
        for (status, count) in store::status_counts(tx).await? {
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

#[cfg(test)]
mod census_tests {
    //! The census against a real PostgreSQL: what the gauge shows equals a
    //! count of every order, after inserts, status changes, updates that
    //! change no status, deletes and a truncate.

    use chorus_avro::Event;
    use chorus_platform::testing::TestDb;
    use chorus_runtime::apply_one;

    use super::*;
    use crate::testing::{authorized, placed, stock_reserved};

    async fn apply(handler: &OrderHandler, db: &TestDb, event: impl Into<Event>) {
        let mut tx = db.pool.begin().await.unwrap();
        apply_one(handler, &mut tx, &event.into()).await.unwrap();
        tx.commit().await.unwrap();
    }

    /// The gauge after a census, and a count of every order, both sorted.
    async fn census_and_count(
        handler: &OrderHandler,
        registry: &prometheus::Registry,
        db: &TestDb,
    ) -> (Vec<(String, i64)>, Vec<(String, i64)>) {
        // Every CENSUS_EVERY-th tick takes the census: make this one it.
        let tick = handler.ticks.load(std::sync::atomic::Ordering::Relaxed);
        handler.ticks.store(
            tick.next_multiple_of(CENSUS_EVERY),
            std::sync::atomic::Ordering::Relaxed,
        );
        let mut tx = db.pool.begin().await.unwrap();
        handler.tick(&mut tx).await.unwrap();
        tx.commit().await.unwrap();
        let mut gauge: Vec<(String, i64)> = registry
            .gather()
            .iter()
            .filter(|family| family.name() == "orders")
            .flat_map(|family| family.get_metric().to_vec())
            .map(|m| {
                let status = m.get_label()[0].value().to_string();
                (status, m.get_gauge().get_value() as i64)
            })
            .filter(|(_, count)| *count != 0)
            .collect();
        gauge.sort();
        let counted: Vec<(String, i64)> = sqlx::query_as(
            "SELECT COALESCE(status, 'none'), count(*) FROM orders GROUP BY 1 ORDER BY 1",
        )
        .fetch_all(&db.pool)
        .await
        .unwrap();
        (gauge, counted)
    }

    #[tokio::test]
    async fn the_census_equals_a_count_of_every_order() {
        let db = TestDb::create(&[&crate::MIGRATOR]).await;
        let registry = prometheus::Registry::new();
        // No deadline passes during the test: the tick only takes the census.
        let handler = OrderHandler::new(Duration::from_secs(100 * 365 * 24 * 3600))
            .with_census(&registry)
            .unwrap();
        let ids: Vec<String> = (0..6).map(|_| uuid::Uuid::new_v4().to_string()).collect();
        for id in &ids[..5] {
            apply(&handler, &db, placed(id, &[("SKU-1", 1)])).await;
        }
        for id in &ids[..3] {
            apply(&handler, &db, stock_reserved(id, &[("SKU-1", 1, "2.50")])).await;
        }
        apply(&handler, &db, authorized(&ids[0], "2.50")).await;
        // Events before their OrderPlaced: an order with no status yet.
        apply(
            &handler,
            &db,
            stock_reserved(&ids[5], &[("SKU-1", 1, "2.50")]),
        )
        .await;
        let (gauge, counted) = census_and_count(&handler, &registry, &db).await;
        assert_eq!(gauge, counted);
        let expected = [
            ("CONFIRMED", 1),
            ("PENDING", 2),
            ("RESERVED", 2),
            ("none", 1),
        ];
        let expected: Vec<(String, i64)> =
            expected.iter().map(|(s, n)| (s.to_string(), *n)).collect();
        assert_eq!(gauge, expected);

        // A second census folds only what changed since the first.
        apply(&handler, &db, authorized(&ids[1], "2.50")).await;
        sqlx::query("UPDATE orders SET last_event = 'touched'")
            .execute(&db.pool)
            .await
            .unwrap();
        sqlx::query("DELETE FROM orders WHERE order_id = $1")
            .bind(&ids[3])
            .execute(&db.pool)
            .await
            .unwrap();
        let (gauge, counted) = census_and_count(&handler, &registry, &db).await;
        assert_eq!(gauge, counted);
        let pending: i64 = sqlx::query_scalar("SELECT count(*) FROM order_census_changes")
            .fetch_one(&db.pool)
            .await
            .unwrap();
        assert_eq!(pending, 0, "every change folded");

        sqlx::query("TRUNCATE orders")
            .execute(&db.pool)
            .await
            .unwrap();
        let (gauge, counted) = census_and_count(&handler, &registry, &db).await;
        assert_eq!((gauge.len(), counted.len()), (0, 0));
    }
}
