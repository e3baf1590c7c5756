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

/// One row of `deliveries`: a notification delivered.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct Delivery {
    pub order_id: String,
    pub final_status: String,
    pub channel: String,
    pub delivery_id: uuid::Uuid,
    pub attempts: i32,
    pub delivered_at: DateTime<Utc>,
}

pub async fn deliveries(pool: &PgPool, order_id: &str) -> anyhow::Result<Vec<Delivery>> {
    sqlx::query_as(
        "SELECT order_id, final_status, channel, delivery_id, attempts, delivered_at
         FROM deliveries WHERE order_id = $1 ORDER BY delivered_at, channel",
    )
    .bind(order_id)
    .fetch_all(pool)
    .await
    .context("reading deliveries")
}
