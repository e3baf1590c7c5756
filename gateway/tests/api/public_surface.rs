//! The public surface leaks nothing: with every dependency but the gateway's
//! own database unreachable behind hostnames and passwords, the answers of
//! the whole application (error bodies, `/readyz`, `/metrics`) name which
//! dependency failed, never where it is, how to log in or what it said.
//! Readiness and metrics are served on `CHORUS_ADMIN_ADDR`, never on the API address.
//! Needs PostgreSQL and the schema registry of the local stack.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use axum::http::StatusCode;
use chorus_gateway::AppState;
use chorus_gateway::testing::MemoryPublisher;
use chorus_platform::health::{CACHE_FOR, Readiness};
use serde_json::json;

use crate::helpers::{TestApp, TestDbs, admin, customer, nowhere_store, order_body, settings};
use crate::running::{RunningGateway, registry_url};

/// Text that must never reach a client: hosts, users, passwords.
const INTERNALS: [&str; 8] = [
    "kafka.invalid",
    "db.invalid",
    "registry.invalid",
    "hunter2",
    "sr-user",
    "sr-pass",
    "chorus_gateway_ro",
    "9093",
];

fn assert_no_internals(what: &str, text: &str) {
    for secret in INTERNALS {
        assert!(!text.contains(secret), "{what} shows `{secret}`: {text}");
    }
}

#[tokio::test]
async fn unreachable_dependencies_are_named_but_never_located() {
    let dbs = TestDbs::create().await;
    let db = &dbs.gateway;
    let read_model =
        "postgres://chorus_gateway_ro:hunter2-db-password@db.invalid:5432/chorus_order";
    let registry = registry_url().await;
    let broken_registry = "http://sr-user:sr-pass@registry.invalid:8081/apis/ccompat/v7";
    let gateway = RunningGateway::start(&[
        ("CHORUS_KAFKA_BROKERS", "kafka.invalid:9093"),
        ("CHORUS_SCHEMA_REGISTRY_URL", broken_registry),
        ("CHORUS_DATABASE_URL", &db.url),
        ("CHORUS_ORDER_DB_URL", read_model),
        ("CHORUS_INVENTORY_DB_URL", read_model),
    ])
    .await;

    let ready = gateway.get_at(&gateway.admin, "/readyz").await;
    assert_eq!(
        ready.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        ready.text
    );
    let body = ready.json();
    assert_eq!(body["checks"]["gateway_db"], "ok", "{body}");
    for dependency in ["kafka", "schema_registry", "order_db", "inventory_db"] {
        assert_eq!(body["checks"][dependency], "unavailable", "{body}");
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains(dependency),
            "{body}"
        );
    }
    assert_no_internals("/readyz", &ready.text);

    let order = gateway
        .get(
            &format!("/v1/orders/{}", uuid::Uuid::new_v4()),
            Some(&customer("alice")),
        )
        .await;
    order.error(StatusCode::SERVICE_UNAVAILABLE);
    assert!(order.text.contains("order_db"), "{}", order.text);
    assert_no_internals("a read-model failure", &order.text);

    let stock = json!({"available": 1, "unit_price": "1.00", "name": "Mug"});
    let response = gateway
        .put("/v1/admin/inventory/SKU-1", &admin(), &stock)
        .await;
    response.error(StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        response.text.contains("schema_registry"),
        "{}",
        response.text
    );
    assert_no_internals("a registry failure", &response.text);

    let metrics = gateway.get_at(&gateway.admin, "/metrics").await;
    assert_eq!(metrics.status, StatusCode::OK);
    assert_no_internals("/metrics", &metrics.text);
    gateway.stop().await;

    // With the registry up, Kafka's own failure reaches the client as `kafka`.
    let gateway = RunningGateway::start(&[
        ("CHORUS_KAFKA_BROKERS", "kafka.invalid:9093"),
        ("CHORUS_SCHEMA_REGISTRY_URL", &registry),
        ("CHORUS_AUTO_REGISTER_SCHEMAS", "true"),
        ("CHORUS_PUBLISH_TIMEOUT_MS", "1000"),
        ("CHORUS_DATABASE_URL", &db.url),
        ("CHORUS_ORDER_DB_URL", read_model),
        ("CHORUS_INVENTORY_DB_URL", read_model),
    ])
    .await;
    let response = gateway
        .put("/v1/admin/inventory/SKU-1", &admin(), &stock)
        .await;
    response.error(StatusCode::SERVICE_UNAVAILABLE);
    assert!(response.text.contains("kafka"), "{}", response.text);
    assert_no_internals("a Kafka failure", &response.text);
    let response = gateway
        .post_order(&customer("alice"), "key-1", &order_body())
        .await;
    response.error(StatusCode::SERVICE_UNAVAILABLE);
    assert_no_internals("a Kafka failure", &response.text);
    gateway.stop().await;
}

#[tokio::test]
async fn readiness_and_metrics_are_served_on_the_admin_address_only() {
    let dbs = TestDbs::create().await;
    let registry = registry_url().await;
    let mut env = vec![("CHORUS_SCHEMA_REGISTRY_URL", registry.as_str())];
    env.extend(dbs.env());
    let gateway = RunningGateway::start(&env).await;
    let admin = gateway.admin.clone();
    for path in ["/readyz", "/metrics"] {
        let response = gateway.get(path, None).await;
        assert_eq!(
            response.error(StatusCode::NOT_FOUND).0,
            "not_found",
            "{path}"
        );
        let response = gateway.get_at(&admin, path).await;
        assert_ne!(
            response.status,
            StatusCode::NOT_FOUND,
            "{path}: {}",
            response.text
        );
    }
    for base in [&gateway.base, &admin] {
        assert_eq!(
            gateway.get_at(base, "/healthz").await.status,
            StatusCode::OK
        );
    }
    // The API is not on the admin address.
    let response = gateway.get_at(&admin, "/openapi.json").await;
    assert_eq!(response.status, StatusCode::NOT_FOUND);
    let metrics = gateway.get_at(&admin, "/metrics").await.text;
    assert!(metrics.contains(r#"route="/readyz""#), "{metrics}");
    gateway.stop().await;
}

#[tokio::test]
async fn a_burst_of_readiness_calls_probes_once_per_cache_period() {
    let calls = Arc::new(AtomicUsize::new(0));
    let counted = calls.clone();
    let readiness = Readiness::new().with("kafka", move || {
        counted.fetch_add(1, Ordering::SeqCst);
        async { Err("broker kafka.invalid:9093 refused".to_string()) }
    });
    let publisher = Arc::new(MemoryPublisher::default());
    let state = AppState::new(
        nowhere_store(),
        publisher.clone(),
        readiness,
        &settings(1000, 1000),
    )
    .unwrap();
    let app = TestApp::from_state(state, publisher, None);
    let started = Instant::now();
    for _ in 0..1000 {
        let response = app.get("/readyz", None).await;
        assert_eq!(response.status, StatusCode::SERVICE_UNAVAILABLE);
        assert_no_internals("/readyz", &response.text);
    }
    // One round of probes per cache period, however many calls came in it.
    let periods = started.elapsed().as_secs_f64() / CACHE_FOR.as_secs_f64();
    let rounds = calls.load(Ordering::SeqCst);
    assert!(
        rounds as f64 <= 1.0 + periods.ceil(),
        "{rounds} rounds in {periods:.1} periods"
    );
}
