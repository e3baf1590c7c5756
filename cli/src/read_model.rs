//! What the workers' databases say about orders, read only: the order
//! worker's read model (view `order_status`) and the notification worker's
//! `deliveries`. Connection errors name the database without its password.

use std::time::Duration;

use anyhow::Context;
use chorus_platform::redact;
use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::Serialize;
use serde_json::Value;
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;

/// A pool of at most two connections, failing within `timeout` when the
/// database does not answer.
pub async fn connect(url: &str, what: &str, timeout: Duration) -> anyhow::Result<PgPool> {
    PgPoolOptions::new()
        .max_connections(2)
        .acquire_timeout(timeout)
        .connect(url)
        .await
        .with_context(|| format!("connecting to the {what} at {}", redact(url)))
}

/// One row of `order_status`.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct OrderView {
    pub order_id: String,
    pub customer_id: String,
    pub status: String,
    pub reason: Option<String>,
    pub currency: Option<String>,
    #[serde(with = "rust_decimal::serde::str_option")]
    pub total: Option<Decimal>,
    pub items: Value,
    pub history: Value,
    pub cancellation: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub deadline_at: Option<DateTime<Utc>>,
    pub last_event: Option<String>,
    pub last_event_at: Option<DateTime<Utc>>,
}

const ORDER_COLUMNS: &str = "order_id, customer_id, status, reason, currency, total, items, \
     history, cancellation, created_at, updated_at, deadline_at, last_event, last_event_at";

pub async fn order(pool: &PgPool, order_id: &str) -> anyhow::Result<Option<OrderView>> {
    let sql = format!("SELECT {ORDER_COLUMNS} FROM order_status WHERE order_id = $1");
    sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(order_id)
        .fetch_optional(pool)
        .await
        .context("reading order_status")
}

/// Orders neither CONFIRMED nor CANCELLED created more than `older_than`
/// ago by the database's clock, oldest first, with that clock's now.
pub async fn unfinished_orders(
    pool: &PgPool,
    older_than: Duration,
) -> anyhow::Result<(Vec<OrderView>, DateTime<Utc>)> {
    let now: DateTime<Utc> = sqlx::query_scalar("SELECT now()")
        .fetch_one(pool)
        .await
        .context("reading the database's clock")?;
    let before = chrono::TimeDelta::from_std(older_than)
        .ok()
        .and_then(|d| now.checked_sub_signed(d))
        .unwrap_or(DateTime::<Utc>::MIN_UTC);
    let sql = format!(
        "SELECT {ORDER_COLUMNS} FROM order_status
         WHERE status NOT IN ('CONFIRMED', 'CANCELLED') AND created_at < $1
         ORDER BY created_at, order_id"
    );
    let orders = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(before)
        .fetch_all(pool)
        .await
        .context("reading order_status")?;
    Ok((orders, now))
}

/// One row of `deliveries`: a notification for an order's final state on
/// one channel. Newer tables keep intents too (`status` pending, no
/// `delivered_at` yet); older ones hold delivered rows only.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Delivery {
    pub order_id: String,
    pub final_status: String,
    pub channel: String,
    pub status: String,
    pub delivery_id: Option<String>,
    pub attempts: Option<i64>,
    pub delivered_at: Option<DateTime<Utc>>,
    pub error: Option<String>,
}

impl Delivery {
    /// From the row as JSON, whichever columns the table has.
    fn from_row(row: &Value) -> Delivery {
        let text = |name: &str| row[name].as_str().map(str::to_string);
        Delivery {
            order_id: text("order_id").unwrap_or_default(),
            final_status: text("final_status").unwrap_or_default(),
            channel: text("channel").unwrap_or_default(),
            status: text("status").unwrap_or_else(|| "delivered".to_string()),
            delivery_id: text("delivery_id"),
            attempts: row["attempts"].as_i64(),
            delivered_at: text("delivered_at").and_then(|t| t.parse().ok()),
            error: text("error"),
        }
    }
}

pub async fn deliveries(pool: &PgPool, order_id: &str) -> anyhow::Result<Vec<Delivery>> {
    let rows: Vec<Value> = sqlx::query_scalar(
        "SELECT to_jsonb(d) FROM deliveries AS d WHERE order_id = $1 ORDER BY final_status, channel",
    )
    .bind(order_id)
    .fetch_all(pool)
    .await
    .context("reading deliveries")?;
    Ok(rows.iter().map(Delivery::from_row).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn deliveries_read_from_old_and_new_tables_alike() {
        let old = Delivery::from_row(&json!({
            "order_id": "o-1", "final_status": "CONFIRMED", "channel": "log",
            "delivery_id": "5f16d1b9-3150-5b48-9657-56511f5ea16d", "attempts": 1,
            "delivered_at": "2026-01-01T00:00:00.123+00:00"
        }));
        assert_eq!(old.status, "delivered");
        assert_eq!(
            old.delivered_at.unwrap().timestamp_millis(),
            1_767_225_600_123
        );
        let pending = Delivery::from_row(&json!({
            "order_id": "o-1", "final_status": "CANCELLED", "channel": "webhook",
            "status": "pending", "delivered_at": null, "attempts": 0
        }));
        assert_eq!(
            (pending.status.as_str(), pending.delivered_at),
            ("pending", None)
        );
    }
}
