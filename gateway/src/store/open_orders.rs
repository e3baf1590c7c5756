//! What the cap on a customer's orders not yet final reads: how many orders
//! each customer has in the order service's read model that are neither
//! CONFIRMED nor CANCELLED (one statement per batch of POSTs, through the
//! read model's index on status, so it costs the open orders, not every
//! order ever placed), and which idempotency keys already have an order
//! (a retry of a placed order is not a new order).

use std::collections::{HashMap, HashSet};

use super::{GATEWAY_DB, ORDER_DB, Store};
use crate::error::{AppError, database_error};
use crate::store::accepted::AttemptKey;

/// The read model's statuses that are not final (its `status` column
/// allows these and CONFIRMED, CANCELLED).
pub const OPEN_STATUSES: [&str; 2] = ["PENDING", "RESERVED"];

impl Store {
    /// Orders not yet final of each of `customers` (absent: none).
    pub async fn open_orders(
        &self,
        customers: &[String],
    ) -> Result<HashMap<String, i64>, AppError> {
        let rows: Vec<(String, i64)> = sqlx::query_as(
            "SELECT customer_id::text, count(*) FROM order_status \
             WHERE status = ANY($1) AND customer_id = ANY($2) \
             GROUP BY customer_id",
        )
        .bind(&OPEN_STATUSES[..])
        .bind(customers)
        .fetch_all(&self.orders)
        .await
        .map_err(database_error(ORDER_DB))?;
        Ok(rows.into_iter().collect())
    }

    /// Those of `keys` that already have an accepted order.
    pub async fn existing_keys(
        &self,
        keys: &[AttemptKey],
    ) -> Result<HashSet<AttemptKey>, AppError> {
        let (customers, idempotency_keys): (Vec<String>, Vec<String>) =
            keys.iter().cloned().unzip();
        let rows: Vec<(String, String)> = sqlx::query_as(
            "SELECT customer_id, idempotency_key FROM accepted_orders \
             JOIN unnest($1::text[], $2::text[]) AS k (customer_id, idempotency_key) \
             USING (customer_id, idempotency_key)",
        )
        .bind(customers)
        .bind(idempotency_keys)
        .fetch_all(&self.gateway)
        .await
        .map_err(database_error(GATEWAY_DB))?;
        Ok(rows.into_iter().collect())
    }
}
