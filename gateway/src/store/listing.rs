//! Lists of orders from the order service's `order_status` view, newest
//! first, a page at a time by keyset on `(created_at, order_id)`: a page
//! starts strictly after the last row of the previous one, so rows added
//! meanwhile never shift what the next page holds (no row twice, none
//! skipped), unlike an offset. The order service's indexes on that key
//! (migration 1005) make each page cost its own rows, not the rows before.
//!
//! Each combination of filters is a statement of its own, with no
//! `$n IS NULL OR …`: a prepared statement whose generic plan had to serve
//! every combination would scan all orders for a customer who has few.

use chrono::{DateTime, Utc};
use sqlx::Arguments;
use sqlx::postgres::PgArguments;

use super::{ORDER_DB, OrderStatusRow, Store};
use crate::error::{AppError, database_error};

/// Where a list stands: the key of the last order it returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListKey {
    pub created_at: DateTime<Utc>,
    pub order_id: String,
}

/// Which orders to list, and from where.
#[derive(Debug, Clone)]
pub struct OrderListing<'a> {
    /// Only this customer's; `None`: everyone's.
    pub customer: Option<&'a str>,
    /// Only orders with this status (as the read model spells it).
    pub status: Option<&'a str>,
    /// Only orders recorded at or after this time.
    pub since: Option<DateTime<Utc>>,
    /// Only orders after this key (older, or as old with a smaller id).
    pub after: Option<&'a ListKey>,
    /// At most this many rows.
    pub limit: i64,
}

/// An `order_status` row with its key in the list.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ListedRow {
    #[sqlx(flatten)]
    pub row: OrderStatusRow,
    /// When the order service recorded the order; never changes.
    pub created_at: DateTime<Utc>,
}

impl ListedRow {
    pub fn key(&self) -> ListKey {
        ListKey {
            created_at: self.created_at,
            order_id: self.row.order_id.clone(),
        }
    }
}

impl OrderListing<'_> {
    /// The statement's parameters (see [`OrderListing::sql`]), in its order.
    pub fn arguments(&self) -> Result<PgArguments, AppError> {
        let mut arguments = PgArguments::default();
        let add = |added: Result<(), sqlx::error::BoxDynError>| {
            added.map_err(|e| AppError::Internal(format!("binding a list parameter: {e}")))
        };
        if let Some(customer) = self.customer {
            add(arguments.add(customer))?;
        }
        if let Some(status) = self.status {
            add(arguments.add(status))?;
        }
        if let Some(since) = self.since {
            add(arguments.add(since))?;
        }
        if let Some(after) = self.after {
            add(arguments.add(after.created_at))?;
            add(arguments.add(after.order_id.as_str()))?;
        }
        add(arguments.add(self.limit))?;
        Ok(arguments)
    }

    /// The statement for these filters (public so tests can EXPLAIN it).
    /// Its parameters are those present of customer, status, since, the
    /// key after which to start (time, then id) and the limit, in this order.
    pub fn sql(&self) -> String {
        let mut sql = String::from(
            "SELECT s.order_id::text AS order_id, s.customer_id::text AS customer_id, \
                    s.status::text AS status, s.reason::text AS reason, \
                    s.currency::text AS currency, s.total::numeric AS total, \
                    s.items::jsonb AS items, s.history::jsonb AS history, \
                    s.cancellation::text AS cancellation, s.updated_at, s.created_at \
             FROM order_status AS s WHERE TRUE",
        );
        let mut n = 0;
        let mut next = || {
            n += 1;
            n
        };
        if self.customer.is_some() {
            sql += &format!(" AND s.customer_id = ${}::text", next());
        }
        if self.status.is_some() {
            sql += &format!(" AND s.status = ${}::text", next());
        }
        if self.since.is_some() {
            sql += &format!(" AND s.created_at >= ${}::timestamptz", next());
        }
        if self.after.is_some() {
            let (at, id) = (next(), next());
            sql += &format!(" AND (s.created_at, s.order_id) < (${at}::timestamptz, ${id}::text)");
        }
        sql += &format!(
            " ORDER BY s.created_at DESC, s.order_id DESC LIMIT ${}::bigint",
            next()
        );
        sql
    }
}

impl Store {
    /// The orders `listing` selects, newest first.
    pub async fn list_orders(
        &self,
        listing: &OrderListing<'_>,
    ) -> Result<Vec<ListedRow>, AppError> {
        sqlx::query_as_with::<_, ListedRow, _>(
            sqlx::AssertSqlSafe(listing.sql()),
            listing.arguments()?,
        )
        .fetch_all(&self.orders)
        .await
        .map_err(database_error(ORDER_DB))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listing<'a>(customer: Option<&'a str>, after: Option<&'a ListKey>) -> OrderListing<'a> {
        OrderListing {
            customer,
            status: None,
            since: None,
            after,
            limit: 21,
        }
    }

    #[test]
    fn each_filter_adds_its_condition_and_parameters_are_numbered_in_binding_order() {
        let key = ListKey {
            created_at: Utc::now(),
            order_id: "o".into(),
        };
        let everyone = listing(None, None).sql();
        assert!(!everyone.contains("customer_id ="), "{everyone}");
        assert!(everyone.ends_with("LIMIT $1::bigint"), "{everyone}");

        let mut all = listing(Some("alice"), Some(&key));
        all.status = Some("PENDING");
        all.since = Some(Utc::now());
        let sql = all.sql();
        for part in [
            "s.customer_id = $1::text",
            "s.status = $2::text",
            "s.created_at >= $3::timestamptz",
            "(s.created_at, s.order_id) < ($4::timestamptz, $5::text)",
            "ORDER BY s.created_at DESC, s.order_id DESC LIMIT $6::bigint",
        ] {
            assert!(sql.contains(part), "{part} not in {sql}");
        }
    }
}
