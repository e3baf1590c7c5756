//! `/openapi.json` describes exactly the router's routes; health, readiness
//! and metrics answer as documented.

use std::collections::BTreeSet;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use chorus_gateway::routes::route_list;
use serde_json::Value;

use crate::helpers::{TestApp, customer};

fn collect_refs(value: &Value, refs: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            if let Some(Value::String(r)) = map.get("$ref") {
                refs.push(r.clone());
            }
            map.values().for_each(|v| collect_refs(v, refs));
        }
        Value::Array(items) => items.iter().for_each(|v| collect_refs(v, refs)),
        _ => {}
    }
}

#[tokio::test]
async fn openapi_lists_exactly_the_routes_the_router_serves() {
    let app = TestApp::without_db();
    let response = app.get("/openapi.json", None).await;
    assert_eq!(response.status, StatusCode::OK);
    let doc = response.json();
    assert_eq!(doc["openapi"], "3.1.0");

    let documented: BTreeSet<(String, String)> = doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, item)| {
            item.as_object()
                .unwrap()
                .keys()
                .map(move |method| (method.to_uppercase(), path.clone()))
        })
        .collect();
    let routed: BTreeSet<(String, String)> = route_list()
        .into_iter()
        .map(|(method, path)| (method.to_string(), path.to_string()))
        .collect();
    assert_eq!(documented, routed);

    // Every route in the list is really served: no fallback 404 or 405.
    for (method, path) in &routed {
        let uri = path
            .replace("{order_id}", "not-an-order")
            .replace("{sku}", "SKU-1");
        let request = Request::builder()
            .method(Method::from_bytes(method.as_bytes()).unwrap())
            .uri(uri)
            .body(Body::empty())
            .unwrap();
        let response = app.send(request).await;
        assert_ne!(
            response.status,
            StatusCode::METHOD_NOT_ALLOWED,
            "{method} {path}"
        );
        if response.status == StatusCode::NOT_FOUND {
            assert!(!response.text.contains("no route"), "{method} {path}");
        }
    }

    // Every reference resolves inside the document.
    let mut refs = Vec::new();
    collect_refs(&doc, &mut refs);
    assert!(!refs.is_empty());
    for r in refs {
        let pointer = r.strip_prefix('#').expect("a local reference");
        assert!(doc.pointer(pointer).is_some(), "unresolved {r}");
    }
}

#[tokio::test]
async fn health_and_metrics_answer_without_dependencies() {
    let app = TestApp::without_db();
    let response = app.get("/healthz", None).await;
    assert_eq!(response.status, StatusCode::OK);
    assert_eq!(response.json()["status"], "ok");
    let alice = customer("alice");
    app.get("/v1/orders/not-an-order", Some(&alice)).await;

    let response = app.get("/metrics", None).await;
    assert_eq!(response.status, StatusCode::OK);
    assert!(
        response.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let text = response.text;
    assert!(
        text.contains(
            r#"chorus_gateway_http_requests_total{method="GET",route="/healthz",status="200"} 1"#
        ),
        "{text}"
    );
    assert!(
        text.contains(r#"route="/v1/orders/{order_id}",status="404""#),
        "ids never become labels: {text}"
    );
    assert!(text.contains("chorus_gateway_http_request_duration_seconds_bucket"));
}

#[tokio::test]
async fn readiness_names_each_dependency_that_fails() {
    let app = TestApp::without_db();
    app.publisher.set_failing(true);
    let response = app.get("/readyz", None).await;
    let (code, _) = response.error(StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(code, "not_ready");
    let body = response.json();
    for failed in ["kafka", "gateway_db", "order_db", "inventory_db"] {
        assert_ne!(body["checks"][failed], "ok", "{body}");
        assert!(body["error"]["message"].as_str().unwrap().contains(failed));
    }
    assert_eq!(body["checks"]["schema_registry"], "ok");

    let app = TestApp::spawn().await;
    let response = app.get("/readyz", None).await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.text);
    assert_eq!(response.json()["status"], "ready");
}
