//! `GET /v1/orders` against the order service's real read model (its own
//! migrations; rows written into `orders` as its worker writes them): whose
//! orders a token lists, newest first, pages that hold each order once while
//! orders keep arriving, the filters, 400s naming the field, every status
//! documented (`list_orders_plans`: the statements read the order service's
//! indexes). `tests/e2e/list_orders.rs` pages through orders placed through
//! the whole saga.

use std::collections::BTreeSet;

use axum::http::StatusCode;
use chrono::{DateTime, Duration, SubsecRound, Utc};
use sqlx::PgPool;
use uuid::Uuid;

use crate::helpers::{TestApp, TestResponse, admin, customer};
use crate::openapi::served_document;

pub fn order_pool(app: &TestApp) -> &PgPool {
    &app.db.as_ref().expect("test databases").order.pool
}

/// Records an order as the order worker does once its stock is reserved
/// (priced, SKU-1 × 2 at 19.99), at `created_at`; returns its id.
async fn record(app: &TestApp, customer: &str, status: &str, created_at: DateTime<Utc>) -> String {
    let order_id = Uuid::new_v4().to_string();
    sqlx::query(
        "INSERT INTO orders (order_id, customer_id, currency, items, reserved_lines, total, \
                             status, history, created_at) \
         VALUES ($1, $2, 'EUR', '[{\"sku\":\"SKU-1\",\"quantity\":2}]', \
                 '[{\"sku\":\"SKU-1\",\"quantity\":2,\"unit_price\":\"19.99\"}]', 39.98, $3, \
                 jsonb_build_array(jsonb_build_object('status', 'PENDING', 'at', '2026-01-01T00:00:00.000Z')), \
                 $4)",
    )
    .bind(&order_id)
    .bind(customer)
    .bind(status)
    .bind(created_at)
    .execute(order_pool(app))
    .await
    .expect("recording an order");
    order_id
}

async fn list(app: &TestApp, token: &str, query: &str) -> TestResponse {
    app.get(&format!("/v1/orders{query}"), Some(token)).await
}

/// The ids of a 200 page, and its `next`.
fn page(response: &TestResponse) -> (Vec<String>, Option<String>) {
    assert_eq!(response.status, StatusCode::OK, "{}", response.text);
    let body = response.json();
    let ids = body["orders"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["order_id"].as_str().unwrap().to_string())
        .collect();
    (ids, body["next"].as_str().map(str::to_string))
}

async fn ids(app: &TestApp, token: &str, query: &str) -> Vec<String> {
    let (ids, next) = page(&list(app, token, query).await);
    assert_eq!(next, None, "one page expected");
    ids
}

#[tokio::test]
async fn a_customer_lists_their_own_orders_newest_first_and_an_admin_anyones() {
    let app = TestApp::spawn().await;
    // PostgreSQL keeps microseconds.
    let t0 = (Utc::now() - Duration::hours(1)).trunc_subsecs(6);
    let a1 = record(&app, "alice", "CONFIRMED", t0).await;
    let a2 = record(&app, "alice", "PENDING", t0 + Duration::seconds(1)).await;
    let b1 = record(&app, "bob", "CANCELLED", t0 + Duration::seconds(2)).await;
    let (alice, bob, ops) = (customer("alice"), customer("bob"), admin());

    let (a1, a2, b1) = (a1.as_str(), a2.as_str(), b1.as_str());
    assert_eq!(ids(&app, &alice, "").await, [a2, a1]);
    assert_eq!(ids(&app, &bob, "").await, [b1]);
    assert_eq!(
        ids(&app, &customer("carol"), "").await,
        Vec::<String>::new()
    );
    // Naming oneself is allowed; naming anyone else is the role's 403.
    assert_eq!(ids(&app, &alice, "?customer=alice").await, [a2, a1]);
    let refused = list(&app, &alice, "?customer=bob").await;
    assert_eq!(refused.error(StatusCode::FORBIDDEN).0, "forbidden");
    // An admin lists everyone's, or one customer's.
    assert_eq!(ids(&app, &ops, "").await, [b1, a2, a1]);
    assert_eq!(ids(&app, &ops, "?customer=alice").await, [a2, a1]);
    assert_eq!(
        ids(&app, &ops, "?customer=nobody").await,
        Vec::<String>::new()
    );

    // Each order exactly as GET /v1/orders/{order_id} shows it, with placed_at.
    let body = list(&app, &alice, "").await.json();
    for (listed, at) in body["orders"].as_array().unwrap().iter().zip([1, 0]) {
        let mut listed = listed.clone();
        let placed_at = listed.as_object_mut().unwrap().remove("placed_at").unwrap();
        let id = listed["order_id"].as_str().unwrap();
        let single = app.get(&format!("/v1/orders/{id}"), Some(&alice)).await;
        assert_eq!(listed, single.json());
        let placed_at: DateTime<Utc> = placed_at.as_str().unwrap().parse().unwrap();
        assert_eq!(placed_at, t0 + Duration::seconds(at));
    }
    assert_eq!(
        app.get("/v1/orders", None)
            .await
            .error(StatusCode::UNAUTHORIZED)
            .0,
        "unauthorized"
    );
}

/// Follows `next` from `query`, calling `between` after each page; every
/// page's ids.
async fn pages(
    app: &TestApp,
    token: &str,
    query: &str,
    mut between: impl AsyncFnMut(usize),
) -> Vec<Vec<String>> {
    let mut pages = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let uri = match &cursor {
            None => query.to_string(),
            Some(next) => format!("{query}&cursor={next}"),
        };
        let (ids, next) = page(&list(app, token, &uri).await);
        pages.push(ids);
        between(pages.len()).await;
        match next {
            None => return pages,
            Some(next) => cursor = Some(next),
        }
        assert!(pages.len() < 100, "the list never ends");
    }
}

#[tokio::test]
async fn pages_hold_each_order_once_while_orders_keep_arriving() {
    let app = TestApp::spawn().await;
    let t0 = Utc::now() - Duration::hours(1);
    // Three orders a timestamp, as orders recorded by one batch share its
    // transaction's: the order id breaks the tie.
    let mut original = BTreeSet::new();
    for i in 0..45 {
        let at = t0 + Duration::milliseconds(i / 3);
        original.insert(record(&app, "alice", "CONFIRMED", at).await);
    }
    record(&app, "bob", "CONFIRMED", t0).await;
    let alice = customer("alice");
    let mut arrived = BTreeSet::new();
    let pages = pages(&app, &alice, "?limit=10", async |n| {
        // New orders after each page: newer than all, and one recorded by a
        // transaction that began before the list did (an older timestamp).
        for at in [Utc::now(), t0 + Duration::milliseconds(n as i64)] {
            arrived.insert(record(&app, "alice", "CONFIRMED", at).await);
        }
    })
    .await;
    let seen: Vec<&String> = pages.iter().flatten().collect();
    let distinct: BTreeSet<&String> = seen.iter().copied().collect();
    assert_eq!(distinct.len(), seen.len(), "an order twice: {pages:?}");
    let missing: Vec<&String> = original
        .iter()
        .filter(|id| !distinct.contains(id))
        .collect();
    assert!(missing.is_empty(), "original orders missing: {missing:?}");
    assert!(
        distinct
            .iter()
            .all(|id| original.contains(*id) || arrived.contains(*id)),
        "another customer's order"
    );
    assert!(pages.iter().all(|p| p.len() <= 10), "{pages:?}");
    // Newest first across pages: the key never goes up.
    let keys: Vec<(DateTime<Utc>, String)> = sqlx::query_as(
        "SELECT created_at, order_id FROM orders WHERE order_id = ANY($1) \
         ORDER BY array_position($1, order_id)",
    )
    .bind(seen.iter().map(|s| s.as_str()).collect::<Vec<_>>())
    .fetch_all(order_pool(&app))
    .await
    .unwrap();
    assert!(keys.windows(2).all(|w| w[0] > w[1]), "{keys:?}");
}

#[tokio::test]
async fn status_and_since_filter_and_a_cursor_keeps_to_its_filters() {
    let app = TestApp::spawn().await;
    let t0 = Utc::now() - Duration::hours(1);
    let mut cancelled = Vec::new();
    for i in 0..5 {
        let at = t0 + Duration::seconds(i);
        let status = if i % 2 == 0 { "CANCELLED" } else { "CONFIRMED" };
        let id = record(&app, "alice", status, at).await;
        if status == "CANCELLED" {
            cancelled.insert(0, id);
        }
    }
    let alice = customer("alice");
    // Any case.
    assert_eq!(ids(&app, &alice, "?status=cancelled").await, cancelled);
    assert_eq!(
        ids(&app, &alice, "?status=PENDING").await,
        Vec::<String>::new()
    );
    // Since is inclusive, to the microsecond, in any offset.
    let body = list(&app, &alice, "").await.json();
    let third = &body["orders"][2];
    let at: DateTime<Utc> = third["placed_at"].as_str().unwrap().parse().unwrap();
    let since = |at: DateTime<Utc>| {
        let text = at
            .with_timezone(&chrono::FixedOffset::east_opt(3600).unwrap())
            .to_rfc3339_opts(chrono::SecondsFormat::Micros, false);
        format!("?since={}", text.replace('+', "%2B"))
    };
    let from_third = ids(&app, &alice, &since(at)).await;
    assert_eq!(from_third.len(), 3);
    assert_eq!(from_third[2], third["order_id"].as_str().unwrap());
    let after_third = ids(&app, &alice, &since(at + Duration::microseconds(1))).await;
    assert_eq!(after_third, from_third[..2]);

    // A cursor continues its own list only.
    let (_, next) = page(&list(&app, &alice, "?status=CANCELLED&limit=1").await);
    let next = next.expect("a second page");
    let (second, _) = page(
        &list(
            &app,
            &alice,
            &format!("?status=CANCELLED&limit=1&cursor={next}"),
        )
        .await,
    );
    assert_eq!(second, cancelled[1..2]);
    for other in [
        "?",
        "?status=CONFIRMED&",
        "?status=CANCELLED&since=2020-01-01T00:00:00Z&",
    ] {
        let response = list(&app, &alice, &format!("{other}cursor={next}")).await;
        let (code, field) = response.error(StatusCode::BAD_REQUEST);
        assert_eq!(
            (code.as_str(), field.as_deref()),
            ("invalid_field", Some("cursor"))
        );
    }
    let response = list(&app, &admin(), &format!("?status=CANCELLED&cursor={next}")).await;
    assert_eq!(
        response.error(StatusCode::BAD_REQUEST).1.as_deref(),
        Some("cursor")
    );
}

#[tokio::test]
async fn bad_parameters_are_400_naming_the_field_and_every_answer_is_documented() {
    let app = TestApp::spawn().await;
    let t0 = Utc::now();
    for i in 0..3 {
        record(&app, "alice", "CONFIRMED", t0 + Duration::seconds(i)).await;
    }
    let (alice, ops) = (customer("alice"), admin());
    let (_, next) = page(&list(&app, &alice, "?limit=1").await);
    let next = next.unwrap();
    let mut tampered = next.clone().into_bytes();
    tampered[4] = if tampered[4] == b'0' { b'1' } else { b'0' };
    let tampered = format!("?cursor={}", String::from_utf8(tampered).unwrap());
    let cut = format!("?cursor={}", &next[..next.len() - 2]);
    let long = format!("?customer={}", "x".repeat(129));
    let mut statuses = BTreeSet::from([200, 401, 403]);
    for (token, query, field) in [
        (&alice, "?limit=0", "limit"),
        (&alice, "?limit=101", "limit"),
        (&alice, "?limit=ten", "limit"),
        (&alice, "?limit=", "limit"),
        (&alice, "?status=DONE", "status"),
        (&alice, "?status=", "status"),
        (&alice, "?since=yesterday", "since"),
        (&alice, "?since=2026-12-01", "since"),
        (&alice, "?cursor=not-a-cursor", "cursor"),
        (&alice, tampered.as_str(), "cursor"),
        (&alice, cut.as_str(), "cursor"),
        (&ops, "?customer=", "customer"),
        (&ops, long.as_str(), "customer"),
    ] {
        let response = list(&app, token, query).await;
        let (code, named) = response.error(StatusCode::BAD_REQUEST);
        assert_eq!(code, "invalid_field", "{query}");
        assert_eq!(named.as_deref(), Some(field), "{query}");
        statuses.insert(400);
    }
    // The limit's bounds pass.
    for query in ["?limit=1", "?limit=100"] {
        assert_eq!(list(&app, &alice, query).await.status, StatusCode::OK);
    }
    // Without its database: 503.
    let down = TestApp::without_db();
    let response = list(&down, &alice, "").await;
    assert_eq!(
        response.error(StatusCode::SERVICE_UNAVAILABLE).0,
        "unavailable"
    );
    statuses.insert(503);

    let (_, doc) = served_document().await;
    let responses = &doc["paths"]["/v1/orders"]["get"]["responses"];
    for status in statuses {
        assert!(
            responses.get(status.to_string()).is_some(),
            "GET /v1/orders answers {status}, undocumented"
        );
    }
    let schema = &responses["200"]["content"]["application/json"]["schema"];
    assert_eq!(schema["$ref"], "#/components/schemas/OrderList", "{schema}");
}
