//! The order's SQL, run on the consumer loop's transaction, a batch at a
//! time: the batch's order rows are locked before they are read (in order id
//! order), so events of one order consumed in parallel from different topics
//! (or by other replicas) apply one after the other, never over each other,
//! and written back in one statement.

use std::collections::HashMap;

use chorus_avro::{OrderLine, PricedLine};
use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use sqlx::PgConnection;
use sqlx::types::Json;

use crate::rules::{
    Authorized, Cancellation, CancellationRequested, Facts, HistoryEntry, Order, PaymentDeclined,
    Placed, ReservationFailed, Reserved, Status,
};

#[cfg(test)]
mod tests;

const COLUMNS: &str = "order_id, customer_id, currency, items, reserved_lines, total,
     reservation_failed_reason, reservation_failed_skus,
     authorization_id, authorized_amount,
     payment_failed_reason, payment_failed_detail,
     cancellation_requested_by, timed_out_at,
     status, reason, detail, history, cancellation, deadline_at";

/// The orders of `order_ids`, those not seen before created empty, all
/// locked (in order id order, so concurrent batches cannot deadlock) until
/// the transaction ends.
pub async fn lock_orders(
    conn: &mut PgConnection,
    order_ids: &[&str],
) -> Result<HashMap<String, Order>, sqlx::Error> {
    let mut ids: Vec<&str> = order_ids.to_vec();
    ids.sort_unstable();
    ids.dedup();
    // A concurrent first insert of the same order waits here for the other
    // transaction, then finds its row: the SELECT below always sees them all.
    sqlx::query(
        "INSERT INTO orders (order_id) SELECT id FROM unnest($1::text[]) AS id ORDER BY id
         ON CONFLICT (order_id) DO NOTHING",
    )
    .bind(&ids)
    .execute(&mut *conn)
    .await?;
    let rows: Vec<OrderRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM orders WHERE order_id = ANY($1) ORDER BY order_id FOR UPDATE"
    )))
    .bind(&ids)
    .fetch_all(conn)
    .await?;
    rows.into_iter()
        .map(|row| {
            row.into_order()
                .map(|order| (order.order_id.clone(), order))
        })
        .collect()
}

/// Orders whose deadline passed while they are not final, at most `limit`,
/// locked; orders another transaction holds are skipped (another replica
/// is cancelling them), so each deadline fires once.
pub async fn lock_overdue(conn: &mut PgConnection, limit: i64) -> Result<Vec<Order>, sqlx::Error> {
    let rows: Vec<OrderRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM orders
         WHERE status IN ('PENDING', 'RESERVED') AND timed_out_at IS NULL AND deadline_at <= now()
         ORDER BY deadline_at LIMIT $1
         FOR UPDATE SKIP LOCKED"
    )))
    .bind(limit)
    .fetch_all(conn)
    .await?;
    rows.into_iter().map(OrderRow::into_order).collect()
}

/// The last saga event applied to an order, for operators.
pub struct LastEvent {
    pub event_type: &'static str,
    pub at: DateTime<Utc>,
}

/// Writes orders' facts and derived status (their rows are locked by
/// [`lock_orders`] or [`lock_overdue`]) in one statement.
pub async fn save_orders(
    conn: &mut PgConnection,
    orders: &[(&Order, Option<&LastEvent>)],
) -> Result<(), sqlx::Error> {
    if orders.is_empty() {
        return Ok(());
    }
    let mut c = SaveColumns::default();
    for (order, last) in orders {
        c.push(order, *last);
    }
    sqlx::query(
        "UPDATE orders AS o SET
             customer_id = u.customer_id, currency = u.currency, items = u.items::jsonb,
             reserved_lines = u.reserved_lines::jsonb, total = u.total,
             reservation_failed_reason = u.failed_reason,
             reservation_failed_skus = CASE WHEN u.failed_skus IS NULL THEN NULL
                 ELSE ARRAY(SELECT jsonb_array_elements_text(u.failed_skus::jsonb)) END,
             authorization_id = u.authorization_id, authorized_amount = u.authorized_amount,
             payment_failed_reason = u.declined_reason, payment_failed_detail = u.declined_detail,
             cancellation_requested_by = u.cancel_by,
             timed_out_at = CASE WHEN u.timed_out THEN COALESCE(o.timed_out_at, now()) END,
             status = u.status, reason = u.reason, detail = u.detail, history = u.history::jsonb,
             cancellation = u.cancellation, deadline_at = u.deadline_at,
             last_event = COALESCE(u.last_event, o.last_event),
             last_event_at = COALESCE(u.last_event_at, o.last_event_at),
             updated_at = now()
         FROM unnest(
             $1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::numeric[],
             $7::text[], $8::text[], $9::text[], $10::numeric[], $11::text[], $12::text[],
             $13::text[], $14::bool[], $15::text[], $16::text[], $17::text[], $18::text[],
             $19::text[], $20::timestamptz[], $21::text[], $22::timestamptz[]
         ) AS u(order_id, customer_id, currency, items, reserved_lines, total,
                failed_reason, failed_skus, authorization_id, authorized_amount,
                declined_reason, declined_detail, cancel_by, timed_out,
                status, reason, detail, history, cancellation, deadline_at,
                last_event, last_event_at)
         WHERE o.order_id = u.order_id",
    )
    .bind(c.order_id)
    .bind(c.customer_id)
    .bind(c.currency)
    .bind(c.items)
    .bind(c.reserved_lines)
    .bind(c.total)
    .bind(c.failed_reason)
    .bind(c.failed_skus)
    .bind(c.authorization_id)
    .bind(c.authorized_amount)
    .bind(c.declined_reason)
    .bind(c.declined_detail)
    .bind(c.cancel_by)
    .bind(c.timed_out)
    .bind(c.status)
    .bind(c.reason)
    .bind(c.detail)
    .bind(c.history)
    .bind(c.cancellation)
    .bind(c.deadline_at)
    .bind(c.last_event)
    .bind(c.last_event_at)
    .execute(conn)
    .await?;
    Ok(())
}

/// How many orders have each status (`none`: events seen, `OrderPlaced`
/// not yet), from the census table kept by triggers on `orders` (migration
/// 1004): the changes recorded since the last census are folded in first,
/// so the cost is that of those changes, not of counting every order.
/// Changes another census is folding right now are skipped (it counts
/// them), so replicas never wait on each other here.
pub async fn status_counts(conn: &mut PgConnection) -> Result<Vec<(String, i64)>, sqlx::Error> {
    sqlx::query(
        "WITH folded AS (
             DELETE FROM order_census_changes
             WHERE ctid = ANY(ARRAY(SELECT ctid FROM order_census_changes FOR UPDATE SKIP LOCKED))
             RETURNING status, delta)
         INSERT INTO order_census AS c (status, orders)
         SELECT status, sum(delta)::bigint FROM folded GROUP BY status
         ON CONFLICT (status) DO UPDATE SET orders = c.orders + EXCLUDED.orders",
    )
    .execute(&mut *conn)
    .await?;
    sqlx::query_as("SELECT status, orders FROM order_census ORDER BY status")
        .fetch_all(conn)
        .await
}

/// The columns of [`save_orders`], one array each.
#[derive(Default)]
struct SaveColumns {
    order_id: Vec<String>,
    customer_id: Vec<Option<String>>,
    currency: Vec<Option<String>>,
    items: Vec<Option<String>>,
    reserved_lines: Vec<Option<String>>,
    total: Vec<Option<Decimal>>,
    failed_reason: Vec<Option<String>>,
    failed_skus: Vec<Option<String>>,
    authorization_id: Vec<Option<String>>,
    authorized_amount: Vec<Option<Decimal>>,
    declined_reason: Vec<Option<String>>,
    declined_detail: Vec<Option<String>>,
    cancel_by: Vec<Option<String>>,
    timed_out: Vec<bool>,
    status: Vec<Option<String>>,
    reason: Vec<Option<String>>,
    detail: Vec<Option<String>>,
    history: Vec<String>,
    cancellation: Vec<Option<String>>,
    deadline_at: Vec<Option<DateTime<Utc>>>,
    last_event: Vec<Option<String>>,
    last_event_at: Vec<Option<DateTime<Utc>>>,
}

fn json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).expect("order facts serialize to JSON")
}

impl SaveColumns {
    fn push(&mut self, order: &Order, last: Option<&LastEvent>) {
        let facts = &order.facts;
        let placed = facts.placed.as_ref();
        let reserved = facts.reserved.as_ref();
        let failed = facts.reservation_failed.as_ref();
        let authorized = facts.payment_authorized.as_ref();
        let declined = facts.payment_failed.as_ref();
        let (reason, detail) = match &order.status {
            Some(Status::Cancelled { reason, detail }) => (Some(reason.clone()), detail.clone()),
            _ => (None, None),
        };
        self.order_id.push(order.order_id.clone());
        self.customer_id.push(placed.map(|p| p.customer_id.clone()));
        self.currency.push(placed.map(|p| p.currency.clone()));
        self.items.push(placed.map(|p| json(&p.items)));
        self.reserved_lines.push(reserved.map(|r| json(&r.lines)));
        self.total.push(reserved.map(|r| r.total));
        self.failed_reason.push(failed.map(|f| f.reason.clone()));
        self.failed_skus.push(failed.map(|f| json(&f.skus)));
        self.authorization_id
            .push(authorized.map(|a| a.authorization_id.clone()));
        self.authorized_amount.push(authorized.map(|a| a.amount));
        self.declined_reason
            .push(declined.map(|d| d.reason.clone()));
        self.declined_detail
            .push(declined.and_then(|d| d.detail.clone()));
        self.cancel_by.push(
            facts
                .cancellation_requested
                .as_ref()
                .map(|c| c.requested_by.clone()),
        );
        self.timed_out.push(facts.timed_out);
        self.status
            .push(order.status.as_ref().map(|s| s.name().to_string()));
        self.reason.push(reason);
        self.detail.push(detail);
        self.history.push(json(&order.history));
        self.cancellation
            .push(order.cancellation.map(|c| c.as_str().to_string()));
        self.deadline_at.push(order.deadline_at);
        self.last_event.push(last.map(|l| l.event_type.to_string()));
        self.last_event_at.push(last.map(|l| l.at));
    }
}

#[derive(sqlx::FromRow)]
struct OrderRow {
    order_id: String,
    customer_id: Option<String>,
    currency: Option<String>,
    items: Option<Json<Vec<OrderLine>>>,
    reserved_lines: Option<Json<Vec<PricedLine>>>,
    total: Option<Decimal>,
    reservation_failed_reason: Option<String>,
    reservation_failed_skus: Option<Vec<String>>,
    authorization_id: Option<String>,
    authorized_amount: Option<Decimal>,
    payment_failed_reason: Option<String>,
    payment_failed_detail: Option<String>,
    cancellation_requested_by: Option<String>,
    timed_out_at: Option<DateTime<Utc>>,
    status: Option<String>,
    reason: Option<String>,
    detail: Option<String>,
    history: Json<Vec<HistoryEntry>>,
    cancellation: Option<String>,
    deadline_at: Option<DateTime<Utc>>,
}

impl OrderRow {
    fn into_order(self) -> Result<Order, sqlx::Error> {
        let placed = match (self.customer_id, self.currency, self.items) {
            (Some(customer_id), Some(currency), Some(Json(items))) => Some(Placed {
                customer_id,
                items,
                currency,
            }),
            _ => None,
        };
        let reserved = match (self.reserved_lines, self.total) {
            (Some(Json(lines)), Some(total)) => Some(Reserved { lines, total }),
            _ => None,
        };
        let status = match self.status.as_deref() {
            None => None,
            Some("PENDING") => Some(Status::Pending),
            Some("RESERVED") => Some(Status::Reserved),
            Some("CONFIRMED") => Some(Status::Confirmed),
            Some("CANCELLED") => Some(Status::Cancelled {
                reason: self.reason.unwrap_or_default(),
                detail: self.detail,
            }),
            Some(other) => {
                return Err(sqlx::Error::Decode(
                    format!("order {} has unknown status {other:?}", self.order_id).into(),
                ));
            }
        };
        Ok(Order {
            order_id: self.order_id,
            facts: Facts {
                placed,
                reserved,
                reservation_failed: self.reservation_failed_reason.map(|reason| {
                    ReservationFailed {
                        reason,
                        skus: self.reservation_failed_skus.unwrap_or_default(),
                    }
                }),
                payment_authorized: self.authorization_id.zip(self.authorized_amount).map(
                    |(authorization_id, amount)| Authorized {
                        authorization_id,
                        amount,
                    },
                ),
                payment_failed: self.payment_failed_reason.map(|reason| PaymentDeclined {
                    reason,
                    detail: self.payment_failed_detail,
                }),
                cancellation_requested: self
                    .cancellation_requested_by
                    .map(|requested_by| CancellationRequested { requested_by }),
                timed_out: self.timed_out_at.is_some(),
            },
            status,
            history: self.history.0,
            cancellation: self.cancellation.as_deref().and_then(Cancellation::parse),
            deadline_at: self.deadline_at,
        })
    }
}
