//! `/openapi.json` documents every status the gateway was seen to answer on
//! each route: a battery of requests drives each route through its answers,
//! and the gateway's own request metrics say which (route, method, status)
//! it sent.

use std::collections::{BTreeMap, BTreeSet};

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use serde_json::json;

use crate::helpers::{TestApp, admin, customer, order_body, settings};
use crate::openapi::served_document;

/// `(METHOD, route, status)` of every answer in the gateway's request metrics.
fn answered(metrics: &str) -> BTreeSet<(String, String, u16)> {
    metrics
        .lines()
        .filter(|line| line.starts_with("chorus_gateway_http_requests_total{"))
        .map(|line| {
            let labels = &line[line.find('{').unwrap() + 1..line.rfind('}').unwrap()];
            let label: BTreeMap<&str, &str> = labels
                .split("\",")
                .filter_map(|pair| pair.split_once("=\""))
                .map(|(k, v)| (k, v.trim_end_matches('"')))
                .collect();
            (
                label["method"].to_string(),
                label["route"].to_string(),
                label["status"].parse().unwrap(),
            )
        })
        .collect()
}

async fn request(
    app: &TestApp,
    method: Method,
    uri: &str,
    token: Option<&str>,
    body: Option<String>,
) {
    let mut builder = Request::builder().method(method).uri(uri);
    if let Some(token) = token {
        builder = builder.header("authorization", format!("Bearer {token}"));
    }
    let body = match body {
        Some(body) => {
            builder = builder.header("content-type", "application/json");
            Body::from(body)
        }
        None => Body::empty(),
    };
    app.send(builder.body(body).unwrap()).await;
}

#[tokio::test]
async fn every_status_the_gateway_answers_is_documented() {
    let (alice, ops) = (customer("alice"), admin());
    let stock = json!({"available": 5, "unit_price": "1.50", "name": "Mug"}).to_string();
    let huge = json!({"padding": "x".repeat(70 * 1024)}).to_string();
    let mut seen = BTreeSet::new();

    // With a database: the successes and the refusals.
    let app = TestApp::spawn().await;
    let placed = app.post_order(&alice, Some("k1"), &order_body()).await;
    let order_id = placed.json()["order_id"].as_str().unwrap().to_string();
    let mut other = order_body();
    other["currency"] = json!("USD");
    app.post_order(&alice, Some("k1"), &other).await; // 422
    app.post_order(&alice, None, &order_body()).await; // 400
    app.post_order("bad", Some("k2"), &order_body()).await; // 401
    request(
        &app,
        Method::POST,
        "/v1/orders",
        Some(&alice),
        Some(huge.clone()),
    )
    .await; // 413
    app.send(
        Request::builder()
            .method(Method::POST)
            .uri("/v1/orders")
            .header("authorization", format!("Bearer {alice}"))
            .header("idempotency-key", "k3")
            .body(Body::from(order_body().to_string()))
            .unwrap(),
    )
    .await; // 415
    let order = format!("/v1/orders/{order_id}");
    app.get(&order, Some(&alice)).await; // 200
    app.get(&format!("{order}?wait=31"), Some(&alice)).await; // 400
    app.get(&order, None).await; // 401
    app.get(&order, Some(&customer("mallory"))).await; // 404
    let cancel = format!("{order}/cancel");
    request(&app, Method::POST, &cancel, Some(&alice), None).await; // 202
    request(&app, Method::POST, &cancel, None, None).await; // 401
    request(
        &app,
        Method::POST,
        "/v1/orders/%FF/cancel",
        Some(&alice),
        None,
    )
    .await; // 400
    request(
        &app,
        Method::POST,
        &cancel,
        Some(&customer("mallory")),
        None,
    )
    .await; // 404
    app.set_order_status(&order_id, "alice", "CONFIRMED").await;
    request(&app, Method::POST, &cancel, Some(&alice), None).await; // 409
    app.set_stock_level("SKU-1", "Mug", 5, 0, "1.50").await;
    for (token, sku) in [
        (Some(&ops), "SKU-1"),
        (Some(&ops), "SKU-404"),
        (Some(&ops), "bad_sku"),
        (Some(&alice), "SKU-1"),
        (None, "SKU-1"),
    ] {
        let uri = format!("/v1/admin/inventory/{sku}");
        request(&app, Method::GET, &uri, token.map(String::as_str), None).await; // 200 404 400 403 401
        request(
            &app,
            Method::PUT,
            &uri,
            token.map(String::as_str),
            Some(stock.clone()),
        )
        .await; // 202 202 400 403 401
    }
    request(
        &app,
        Method::PUT,
        "/v1/admin/inventory/SKU-1",
        Some(&ops),
        Some(huge),
    )
    .await; // 413
    request(
        &app,
        Method::PUT,
        "/v1/admin/inventory/SKU-1",
        Some(&ops),
        None,
    )
    .await; // 415
    app.publisher.set_failing(true);
    app.post_order(&alice, Some("k9"), &order_body()).await; // 503
    request(
        &app,
        Method::PUT,
        "/v1/admin/inventory/SKU-1",
        Some(&ops),
        Some(stock.clone()),
    )
    .await; // 503
    let fresh = app
        .post_order(&customer("bob"), Some("k1"), &order_body())
        .await;
    assert_eq!(fresh.status, StatusCode::SERVICE_UNAVAILABLE);
    for path in ["/healthz", "/readyz", "/openapi.json"] {
        app.get(path, None).await;
    }
    seen.extend(answered(&app.get("/metrics", None).await.text));

    // Without one: 503 on reads, readiness failing.
    let app = TestApp::without_db();
    app.get(&order, Some(&alice)).await;
    app.get("/v1/admin/inventory/SKU-1", Some(&ops)).await;
    app.get("/readyz", None).await;
    seen.extend(answered(&app.get("/metrics", None).await.text));
    let app = TestApp::spawn().await;
    app.post_order(&alice, Some("k1"), &order_body()).await;
    let order_id = app.publisher.published()[0].0.key().to_string();
    app.publisher.set_failing(true);
    request(
        &app,
        Method::POST,
        &format!("/v1/orders/{order_id}/cancel"),
        Some(&alice),
        None,
    )
    .await; // 503
    seen.extend(answered(&app.get("/metrics", None).await.text));

    // Over the rate limit: 429 on every /v1 route.
    let app = TestApp::without_db_with(settings(1, 1));
    for _ in 0..2 {
        app.get("/v1/orders/not-an-order", Some(&alice)).await;
        app.post_order(&alice, Some("k1"), &json!({})).await;
        request(
            &app,
            Method::POST,
            "/v1/orders/x/cancel",
            Some(&alice),
            None,
        )
        .await;
        app.get("/v1/admin/inventory/SKU-1", Some(&ops)).await;
        request(
            &app,
            Method::PUT,
            "/v1/admin/inventory/SKU-1",
            Some(&ops),
            Some(stock.clone()),
        )
        .await;
    }
    seen.extend(answered(&app.get("/metrics", None).await.text));

    let (_, doc) = served_document().await;
    let mut undocumented = Vec::new();
    let mut statuses = BTreeSet::new();
    for (method, route, status) in &seen {
        if route == "unmatched" || method == "HEAD" {
            continue;
        }
        statuses.insert(*status);
        let responses = &doc["paths"][route][method.to_lowercase()]["responses"];
        if responses.get(status.to_string()).is_none() {
            undocumented.push(format!("{method} {route} {status}"));
        }
    }
    assert!(
        undocumented.is_empty(),
        "answered but not documented: {undocumented:?}"
    );
    // The battery reached what it meant to, so the check above means something.
    let expected = [200, 202, 400, 401, 403, 404, 409, 413, 415, 422, 429, 503];
    assert_eq!(statuses, BTreeSet::from(expected), "{seen:?}");
}
