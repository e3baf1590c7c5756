//! The gateway's storage: its own `accepted_orders` table (the idempotency
//! record, written before `OrderPlaced` is produced; see [`accepted`]) and
//! read-only queries of the workers' read models (`order_status`,
//! `stock_levels`; lists of orders in [`listing`]).

mod accepted;
mod listing;
mod open_orders;

pub use listing::{ListKey, ListedRow, OrderListing};

use std::time::Duration;

use chorus_platform::health::Readiness;
use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde_json::Value;
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;
use uuid::Uuid;

use crate::error::{AppError, database_error};

// Names of the databases in 503 answers and readiness checks.
pub(crate) const GATEWAY_DB: &str = "gateway_db";
const ORDER_DB: &str = "order_db";
const INVENTORY_DB: &str = "inventory_db";

/// Connection pools of the three databases the gateway talks to.
#[derive(Clone)]
pub struct Store {
    gateway: PgPool,
    orders: PgPool,
    inventory: PgPool,
}

/// An `accepted_orders` row.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AcceptedOrder {
    pub customer_id: String,
    pub idempotency_key: String,
    pub order_id: Uuid,
    pub request_hash: String,
    pub items: Value,
    pub currency: String,
    pub published: bool,
    pub created_at: DateTime<Utc>,
}

/// What a new order attempt would insert.
#[derive(Debug, Clone)]
pub struct NewOrder {
    pub customer_id: String,
    pub idempotency_key: String,
    pub request_hash: String,
    pub order_id: Uuid,
    pub items: Value,
    pub currency: String,
}

/// A row of the order service's `order_status` view.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct OrderStatusRow {
    pub order_id: String,
    pub customer_id: String,
    pub status: String,
    pub reason: Option<String>,
    pub currency: String,
    pub total: Option<Decimal>,
    pub items: Value,
    pub history: Value,
    /// `accepted`, `rejected` or NULL: what became of a cancellation request.
    pub cancellation: Option<String>,
    /// When the order worker last changed the row.
    pub updated_at: chrono::DateTime<chrono::Utc>,
}

#[cfg(test)]
impl OrderStatusRow {
    /// A row with no items, total or history, for unit tests.
    pub fn for_test(
        order_id: &str,
        owner: &str,
        status: &str,
        updated_at: chrono::DateTime<chrono::Utc>,
    ) -> OrderStatusRow {
        OrderStatusRow {
            order_id: order_id.to_string(),
            customer_id: owner.to_string(),
            status: status.to_string(),
            reason: None,
            currency: "EUR".to_string(),
            total: None,
            items: Value::Array(Vec::new()),
            history: Value::Array(Vec::new()),
            cancellation: None,
            updated_at,
        }
    }
}

/// A row of the inventory service's `stock_levels` view.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct StockLevelRow {
    pub sku: String,
    pub name: String,
    pub available: i64,
    pub reserved: i64,
    pub unit_price: Decimal,
}

impl Store {
    pub fn new(gateway: PgPool, orders: PgPool, inventory: PgPool) -> Store {
        Store {
            gateway,
            orders,
            inventory,
        }
    }

    /// A pool that connects on first use, so a read model that is not up yet
    /// shows in readiness instead of stopping the gateway.
    pub fn lazy_pool(url: &str, size: u32) -> Result<PgPool, sqlx::Error> {
        PgPoolOptions::new()
            .max_connections(size)
            .acquire_timeout(Duration::from_secs(3))
            .connect_lazy(url)
    }

    pub fn gateway_pool(&self) -> &PgPool {
        &self.gateway
    }

    pub async fn order_status(&self, order_id: &str) -> Result<Option<OrderStatusRow>, AppError> {
        sqlx::query_as::<_, OrderStatusRow>(
            "SELECT order_id::text AS order_id, customer_id::text AS customer_id, \
                    status::text AS status, reason::text AS reason, currency::text AS currency, \
                    total::numeric AS total, items::jsonb AS items, history::jsonb AS history, \
                    cancellation::text AS cancellation, updated_at \
             FROM order_status WHERE order_id::text = $1",
        )
        .bind(order_id)
        .fetch_optional(&self.orders)
        .await
        .map_err(database_error(ORDER_DB))
    }

    /// The rows of these orders that changed since `seen_at` (their
    /// `updated_at` as last read; `None` when not read yet), in one query;
    /// the poller's, which tells a closed pool from other errors. One index
    /// lookup per order (the `LATERAL … LIMIT 1` keeps the planner from
    /// hashing the whole `orders` table instead, which it prefers for a
    /// few hundred ids and which grows with every order ever placed).
    pub async fn changed_orders(
        &self,
        order_ids: &[&str],
        seen_at: &[Option<chrono::DateTime<chrono::Utc>>],
    ) -> Result<Vec<OrderStatusRow>, sqlx::Error> {
        sqlx::query_as::<_, OrderStatusRow>(
            "SELECT s.order_id::text AS order_id, s.customer_id::text AS customer_id, \
                    s.status::text AS status, s.reason::text AS reason, \
                    s.currency::text AS currency, s.total::numeric AS total, \
                    s.items::jsonb AS items, s.history::jsonb AS history, \
                    s.cancellation::text AS cancellation, s.updated_at \
             FROM unnest($1::text[], $2::timestamptz[]) AS w(order_id, seen_at) \
             CROSS JOIN LATERAL ( \
                 SELECT * FROM order_status \
                 WHERE order_status.order_id::text = w.order_id \
                   AND order_status.updated_at IS DISTINCT FROM w.seen_at \
                 LIMIT 1) AS s",
        )
        .bind(order_ids)
        .bind(seen_at)
        .fetch_all(&self.orders)
        .await
    }

    pub async fn stock_level(&self, sku: &str) -> Result<Option<StockLevelRow>, AppError> {
        sqlx::query_as::<_, StockLevelRow>(
            "SELECT sku::text AS sku, name::text AS name, available::bigint AS available, \
                    reserved::bigint AS reserved, unit_price::numeric AS unit_price \
             FROM stock_levels WHERE sku::text = $1",
        )
        .bind(sku)
        .fetch_optional(&self.inventory)
        .await
        .map_err(database_error(INVENTORY_DB))
    }

    /// `readiness` with a probe per database: it answers and holds the
    /// table or view the gateway reads.
    pub fn with_probes(&self, readiness: Readiness) -> Readiness {
        readiness
            .with_database(
                GATEWAY_DB,
                self.gateway.clone(),
                "SELECT 1 FROM accepted_orders LIMIT 0",
            )
            .with_database(
                ORDER_DB,
                self.orders.clone(),
                "SELECT 1 FROM order_status LIMIT 0",
            )
            .with_database(
                INVENTORY_DB,
                self.inventory.clone(),
                "SELECT 1 FROM stock_levels LIMIT 0",
            )
    }
}
