//! The order's SQL, run on the consumer loop's transaction. The order row is
//! locked before it is read, so events of one order consumed in parallel
//! from different topics apply one after the other, never over each other.

use chorus_avro::{OrderLine, PricedLine};
use rust_decimal::Decimal;
use sqlx::PgConnection;
use sqlx::types::Json;

use crate::rules::{
    Authorized, Facts, HistoryEntry, Order, PaymentDeclined, Placed, ReservationFailed, Reserved,
    Status,
};

#[cfg(test)]
mod tests;

/// The order, created empty if this is its first event, locked until the
/// transaction ends.
pub async fn lock_order(conn: &mut PgConnection, order_id: &str) -> Result<Order, sqlx::Error> {
    if let Some(row) = select_for_update(conn, order_id).await? {
        return row.into_order();
    }
    // A concurrent first insert of the same order waits here for the other
    // transaction, then finds its row: the SELECT below always sees one.
    sqlx::query("INSERT INTO orders (order_id) VALUES ($1) ON CONFLICT (order_id) DO NOTHING")
        .bind(order_id)
        .execute(&mut *conn)
        .await?;
    select_for_update(conn, order_id)
        .await?
        .ok_or(sqlx::Error::RowNotFound)?
        .into_order()
}

async fn select_for_update(
    conn: &mut PgConnection,
    order_id: &str,
) -> Result<Option<OrderRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT order_id, customer_id, currency, items, reserved_lines, total,
                reservation_failed_reason, reservation_failed_skus,
                authorization_id, authorized_amount,
                payment_failed_reason, payment_failed_detail,
                status, reason, detail, history
         FROM orders WHERE order_id = $1 FOR UPDATE",
    )
    .bind(order_id)
    .fetch_optional(conn)
    .await
}

/// Writes the order's facts and derived status (its row is locked by [`lock_order`]).
pub async fn save_order(conn: &mut PgConnection, order: &Order) -> Result<(), sqlx::Error> {
    let facts = &order.facts;
    let placed = facts.placed.as_ref();
    let reserved = facts.reserved.as_ref();
    let failed = facts.reservation_failed.as_ref();
    let authorized = facts.payment_authorized.as_ref();
    let declined = facts.payment_failed.as_ref();
    let (reason, detail) = match &order.status {
        Some(Status::Cancelled { reason, detail }) => (Some(reason), detail.as_ref()),
        _ => (None, None),
    };
    sqlx::query(
        "UPDATE orders SET
             customer_id = $2, currency = $3, items = $4,
             reserved_lines = $5, total = $6,
             reservation_failed_reason = $7, reservation_failed_skus = $8,
             authorization_id = $9, authorized_amount = $10,
             payment_failed_reason = $11, payment_failed_detail = $12,
             status = $13, reason = $14, detail = $15, history = $16,
             updated_at = now()
         WHERE order_id = $1",
    )
    .bind(&order.order_id)
    .bind(placed.map(|p| &p.customer_id))
    .bind(placed.map(|p| &p.currency))
    .bind(placed.map(|p| Json(&p.items)))
    .bind(reserved.map(|r| Json(&r.lines)))
    .bind(reserved.map(|r| r.total))
    .bind(failed.map(|f| &f.reason))
    .bind(failed.map(|f| &f.skus))
    .bind(authorized.map(|a| &a.authorization_id))
    .bind(authorized.map(|a| a.amount))
    .bind(declined.map(|d| &d.reason))
    .bind(declined.and_then(|d| d.detail.as_ref()))
    .bind(order.status.as_ref().map(Status::name))
    .bind(reason)
    .bind(detail)
    .bind(Json(&order.history))
    .execute(conn)
    .await?;
    Ok(())
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
    status: Option<String>,
    reason: Option<String>,
    detail: Option<String>,
    history: Json<Vec<HistoryEntry>>,
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
            },
            status,
            history: self.history.0,
        })
    }
}
