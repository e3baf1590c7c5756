//! `accepted_orders`, written in batches (group commit): one multi-row
//! insert for every attempt that arrived together, a lookup of the rows
//! earlier attempts wrote for the keys that conflicted, and one update that
//! marks a whole batch published once Kafka acknowledged its events. Rows
//! older than the idempotency window are deleted in small batches (see
//! [`crate::key_expiry`]).

use std::collections::HashMap;
use std::time::Duration;

use uuid::Uuid;

use super::{AcceptedOrder, GATEWAY_DB, NewOrder, Store};
use crate::error::{AppError, database_error};

/// The columns of an [`AcceptedOrder`], as a literal for `concat!`.
macro_rules! columns {
    () => {
        "customer_id, idempotency_key, order_id, request_hash, items, currency, published, created_at"
    };
}

/// A row's key: (customer, Idempotency-Key).
pub type AttemptKey = (String, String);

impl Store {
    /// The row of each attempt's (customer, key): the one inserted now, or
    /// the one an earlier attempt inserted, whatever its body was. The
    /// attempts' keys must be distinct.
    pub async fn accept_batch(
        &self,
        attempts: &[NewOrder],
    ) -> Result<HashMap<AttemptKey, AcceptedOrder>, AppError> {
        let column = |f: fn(&NewOrder) -> String| attempts.iter().map(f).collect::<Vec<_>>();
        let inserted = sqlx::query_as::<_, AcceptedOrder>(concat!(
            "INSERT INTO accepted_orders \
               (customer_id, idempotency_key, request_hash, order_id, items, currency) \
             SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::uuid[], $5::jsonb[], $6::text[]) \
             ON CONFLICT (customer_id, idempotency_key) DO NOTHING \
             RETURNING ",
            columns!()
        ))
        .bind(column(|a| a.customer_id.clone()))
        .bind(column(|a| a.idempotency_key.clone()))
        .bind(column(|a| a.request_hash.clone()))
        .bind(attempts.iter().map(|a| a.order_id).collect::<Vec<Uuid>>())
        .bind(attempts.iter().map(|a| a.items.clone()).collect::<Vec<_>>())
        .bind(column(|a| a.currency.clone()))
        .fetch_all(&self.gateway)
        .await
        .map_err(database_error(GATEWAY_DB))?;
        let mut rows: HashMap<AttemptKey, AcceptedOrder> = inserted
            .into_iter()
            .map(|row| ((row.customer_id.clone(), row.idempotency_key.clone()), row))
            .collect();
        let conflicted: Vec<&NewOrder> = attempts
            .iter()
            .filter(|a| !rows.contains_key(&(a.customer_id.clone(), a.idempotency_key.clone())))
            .collect();
        if conflicted.is_empty() {
            return Ok(rows);
        }
        // A statement of its own: it must see rows that concurrent
        // transactions committed after the insert's snapshot was taken.
        let existing = sqlx::query_as::<_, AcceptedOrder>(concat!(
            "SELECT ",
            columns!(),
            " FROM accepted_orders \
             JOIN unnest($1::text[], $2::text[]) AS k (customer_id, idempotency_key) \
             USING (customer_id, idempotency_key)"
        ))
        .bind(
            conflicted
                .iter()
                .map(|a| a.customer_id.clone())
                .collect::<Vec<_>>(),
        )
        .bind(
            conflicted
                .iter()
                .map(|a| a.idempotency_key.clone())
                .collect::<Vec<_>>(),
        )
        .fetch_all(&self.gateway)
        .await
        .map_err(database_error(GATEWAY_DB))?;
        rows.extend(
            existing
                .into_iter()
                .map(|row| ((row.customer_id.clone(), row.idempotency_key.clone()), row)),
        );
        Ok(rows)
    }

    /// Marks these orders' `OrderPlaced` acknowledged by Kafka, in one statement.
    pub async fn mark_published(&self, order_ids: &[Uuid]) -> Result<(), AppError> {
        sqlx::query("UPDATE accepted_orders SET published = TRUE WHERE order_id = ANY($1)")
            .bind(order_ids)
            .execute(&self.gateway)
            .await
            .map_err(database_error(GATEWAY_DB))?;
        Ok(())
    }

    /// An accepted order that Kafka acknowledged (an unacknowledged one was
    /// answered 503 and does not exist for the client yet).
    pub async fn published_order(&self, order_id: Uuid) -> Result<Option<AcceptedOrder>, AppError> {
        sqlx::query_as::<_, AcceptedOrder>(concat!(
            "SELECT ",
            columns!(),
            " FROM accepted_orders WHERE order_id = $1 AND published"
        ))
        .bind(order_id)
        .fetch_optional(&self.gateway)
        .await
        .map_err(database_error(GATEWAY_DB))
    }
}

impl Store {
    /// Deletes at most `limit` rows accepted more than `window` ago (oldest
    /// first, through `accepted_orders_created_at`); how many it deleted.
    /// Rows another transaction holds are left for the next call, so
    /// replicas expiring at once never wait on each other.
    pub async fn expire_accepted_orders(
        &self,
        window: Duration,
        limit: i64,
    ) -> Result<u64, sqlx::Error> {
        let deleted = sqlx::query(
            "DELETE FROM accepted_orders WHERE order_id IN ( \
                 SELECT order_id FROM accepted_orders \
                 WHERE created_at < now() - make_interval(secs => $1) \
                 ORDER BY created_at LIMIT $2 \
                 FOR UPDATE SKIP LOCKED)",
        )
        .bind(window.as_secs_f64())
        .bind(limit)
        .execute(&self.gateway)
        .await?;
        Ok(deleted.rows_affected())
    }
}
