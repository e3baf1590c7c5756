//! The statements of `GET /v1/orders` read the order service's indexes
//! (migration 1005) in key order, never every order: their plans, on
//! 20,000 orders in the real read model, name the index and neither sort
//! nor scan the table (a status filter on one customer may fetch that
//! customer's matching orders and sort those few).

use chorus_gateway::store::{ListKey, OrderListing};
use chrono::{Duration, Utc};
use serde_json::Value;
use sqlx::PgPool;
use uuid::Uuid;

use crate::helpers::TestApp;
use crate::list_orders::order_pool;

/// The plan PostgreSQL chooses for a listing, as JSON.
async fn plan(pool: &PgPool, listing: &OrderListing<'_>) -> Value {
    let sql = format!("EXPLAIN (FORMAT JSON) {}", listing.sql());
    let arguments = listing.arguments().unwrap();
    sqlx::query_scalar_with::<_, Value, _>(sqlx::AssertSqlSafe(sql), arguments)
        .fetch_one(pool)
        .await
        .unwrap()
}

/// Every `(node type, index name)` of a plan.
fn nodes(plan: &Value, into: &mut Vec<(String, String)>) {
    if let Some(node) = plan.get("Node Type").and_then(Value::as_str) {
        let index = plan["Index Name"].as_str().unwrap_or_default();
        into.push((node.to_string(), index.to_string()));
    }
    for child in plan
        .get("Plans")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        nodes(child, into);
    }
    if let Some(top) = plan.get(0).and_then(|p| p.get("Plan")) {
        nodes(top, into);
    }
}

#[tokio::test]
async fn every_page_is_read_through_an_index_not_by_sorting_every_order() {
    let app = TestApp::spawn().await;
    let pool = order_pool(&app);
    // 20,000 orders of 200 customers, 100 each; 1 % PENDING.
    sqlx::query(
        "INSERT INTO orders (order_id, customer_id, currency, items, status, created_at) \
         SELECT gen_random_uuid()::text, 'customer-' || (g % 200), 'EUR', \
                '[{\"sku\":\"SKU-1\",\"quantity\":1}]', \
                CASE WHEN g % 100 = 3 THEN 'PENDING' \
                     ELSE (ARRAY['CONFIRMED','CANCELLED','RESERVED'])[1 + g % 3] END, \
                now() - g * interval '1 second' \
         FROM generate_series(1, 20000) AS g",
    )
    .execute(pool)
    .await
    .unwrap();
    sqlx::query("ANALYZE orders").execute(pool).await.unwrap();
    let key = ListKey {
        created_at: Utc::now() - Duration::hours(3),
        order_id: Uuid::nil().to_string(),
    };
    let base = OrderListing {
        customer: None,
        status: None,
        since: None,
        after: None,
        limit: 21,
    };
    // (index, listing, whether the index alone gives the order): with a
    // filter on status the planner may instead fetch the customer's
    // matching orders through the index and sort those few.
    let cases = [
        (
            "orders_by_customer",
            OrderListing {
                customer: Some("customer-7"),
                ..base.clone()
            },
            true,
        ),
        (
            "orders_by_customer",
            OrderListing {
                customer: Some("customer-7"),
                after: Some(&key),
                ..base.clone()
            },
            true,
        ),
        (
            "orders_by_customer",
            OrderListing {
                customer: Some("customer-7"),
                status: Some("RESERVED"),
                since: Some(Utc::now() - Duration::hours(5)),
                ..base.clone()
            },
            false,
        ),
        ("orders_by_created", base.clone(), true),
        (
            "orders_by_status",
            OrderListing {
                status: Some("PENDING"),
                after: Some(&key),
                ..base.clone()
            },
            true,
        ),
        (
            "orders_by_created",
            OrderListing {
                after: Some(&key),
                ..base.clone()
            },
            true,
        ),
    ];
    for (index, listing, ordered) in cases {
        let mut found = Vec::new();
        nodes(&plan(pool, &listing).await, &mut found);
        assert!(
            found.iter().any(|(_, name)| name == index),
            "{index} unused for {listing:?}: {found:?}"
        );
        assert!(
            !found.iter().any(|(node, _)| node == "Seq Scan"),
            "{listing:?} scans every order: {found:?}"
        );
        assert!(
            !ordered || !found.iter().any(|(node, _)| node == "Sort"),
            "{listing:?} sorts instead of reading the index in order: {found:?}"
        );
    }
}
