//! Health, readiness and metrics answer as documented.

use axum::http::StatusCode;

use crate::helpers::{TestApp, customer};

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
