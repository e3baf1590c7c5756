//! A gateway per test: the real router driven with `oneshot`, an in-memory
//! publisher, and (when the test needs them) fresh PostgreSQL databases
//! `chorus_test_<random>`, dropped afterwards: the gateway's own, and the
//! order and inventory services' migrated with those services' real
//! migrations, so the gateway reads the very views it reads in production.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use chorus_gateway::auth::{AuthSettings, Role, issue_token};
use chorus_gateway::store::Store;
use chorus_gateway::testing::MemoryPublisher;
use chorus_gateway::{AppState, Settings, app};
use chorus_platform::Supervisor;
use chorus_platform::health::Readiness;
use chorus_platform::payment_token::PaymentTokenKeys;
use serde_json::Value;
use sqlx::PgPool;
use tower::ServiceExt;

pub const SECRET: &str = "chorus-gateway-test-secret-of-32-bytes-or-more";
/// The payment-token key of the tests (base64 of 32 bytes of 42).
pub const PAYMENT_TOKEN_KEY: &str = "KioqKioqKioqKioqKioqKioqKioqKioqKioqKioqKio=";

pub fn payment_keys() -> Arc<PaymentTokenKeys> {
    Arc::new(PaymentTokenKeys::new(&[42; 32], None))
}

pub const HOW_TO_START: &str = "start the stack with `make up`";

pub use crate::databases::TestDbs;

pub struct TestApp {
    pub router: Router,
    pub state: AppState,
    pub publisher: Arc<MemoryPublisher>,
    pub db: Option<TestDbs>,
}

pub struct TestResponse {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub text: String,
}

impl TestResponse {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {} {}", self.status, self.text))
    }

    /// Asserts the error shape and returns `(code, field)`.
    pub fn error(&self, status: StatusCode) -> (String, Option<String>) {
        assert_eq!(self.status, status, "{}", self.text);
        let body = self.json();
        let error = &body["error"];
        assert!(error["code"].is_string(), "{body}");
        assert!(error["message"].is_string(), "{body}");
        assert!(
            error.get("field").is_some(),
            "field must be present: {body}"
        );
        (
            error["code"].as_str().unwrap().to_string(),
            error["field"].as_str().map(str::to_string),
        )
    }
}

pub fn settings(per_sec: u32, burst: u32) -> Settings {
    Settings {
        auth: AuthSettings::shared_secret(SECRET),
        rate_limit_per_sec: per_sec,
        rate_limit_burst: burst,
        payment_tokens: Some(payment_keys()),
        key_expiry: Default::default(),
        limits: Default::default(),
    }
}

impl TestApp {
    /// With a fresh database behind all three pools.
    pub async fn spawn() -> TestApp {
        TestApp::spawn_with(settings(1000, 1000)).await
    }

    pub async fn spawn_with(settings: Settings) -> TestApp {
        let dbs = TestDbs::create().await;
        TestApp::with_store(dbs.store(), Some(dbs), settings)
    }

    /// With pools pointing nowhere: for tests that must answer before any
    /// database is touched (any database use answers 503).
    pub fn without_db() -> TestApp {
        TestApp::without_db_with(settings(1000, 1000))
    }

    pub fn without_db_with(settings: Settings) -> TestApp {
        TestApp::with_store(nowhere_store(), None, settings)
    }

    fn with_store(store: Store, db: Option<TestDbs>, settings: Settings) -> TestApp {
        let publisher = Arc::new(MemoryPublisher::default());
        let state = AppState::new(
            store.clone(),
            publisher.clone(),
            readiness(&store, &publisher),
            &settings,
        )
        .expect("the application state");
        TestApp::from_state(state, publisher, db)
    }

    /// The router driven in process; the state's tasks (batcher, poller,
    /// key expiry) run unsupervised (`supervision` tests the supervised run).
    pub fn from_state(
        (state, _tasks): (AppState, Supervisor),
        publisher: Arc<MemoryPublisher>,
        db: Option<TestDbs>,
    ) -> TestApp {
        crate::spans::init();
        TestApp {
            router: app(state.clone()),
            state,
            publisher,
            db,
        }
    }

    fn dbs(&self) -> &TestDbs {
        self.db.as_ref().expect("test databases")
    }

    /// The gateway's own database.
    pub fn pool(&self) -> &PgPool {
        &self.dbs().gateway.pool
    }

    pub async fn send(&self, request: Request<Body>) -> TestResponse {
        let response = self.router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        TestResponse {
            status,
            headers,
            text: String::from_utf8_lossy(&bytes).into_owned(),
        }
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> TestResponse {
        let mut request = Request::builder().method(Method::GET).uri(path);
        if let Some(token) = token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        self.send(request.body(Body::empty()).unwrap()).await
    }

    pub async fn post_order(&self, token: &str, key: Option<&str>, body: &Value) -> TestResponse {
        let mut request = Request::builder()
            .method(Method::POST)
            .uri("/v1/orders")
            .header("authorization", format!("Bearer {token}"))
            .header("content-type", "application/json");
        if let Some(key) = key {
            request = request.header("idempotency-key", key);
        }
        self.send(request.body(Body::from(body.to_string())).unwrap())
            .await
    }

    pub async fn put_stock(&self, token: &str, sku: &str, body: &Value) -> TestResponse {
        let request = Request::builder()
            .method(Method::PUT)
            .uri(format!("/v1/admin/inventory/{sku}"))
            .header("authorization", format!("Bearer {token}"))
            .header("content-type", "application/json")
            .body(Body::from(body.to_string()))
            .unwrap();
        self.send(request).await
    }

    /// Writes the order's row in the order service's `orders` table, as its
    /// worker would once stock is reserved (priced, SKU-1 × 2 at 19.99).
    pub async fn set_order_status(&self, order_id: &str, customer: &str, status: &str) {
        sqlx::query(
            "INSERT INTO orders (order_id, customer_id, currency, items, reserved_lines, total, status, history) \
             VALUES ($1, $2, 'EUR', '[{\"sku\":\"SKU-1\",\"quantity\":2}]', \
                     '[{\"sku\":\"SKU-1\",\"quantity\":2,\"unit_price\":\"19.99\"}]', 39.98, $3, \
                     jsonb_build_array(jsonb_build_object('status', 'PENDING', 'at', '2025-01-01T00:00:00Z'), \
                                       jsonb_build_object('status', $3::text, 'at', '2025-01-01T00:00:01Z'))) \
             ON CONFLICT (order_id) DO UPDATE \
             SET status = EXCLUDED.status, history = EXCLUDED.history, updated_at = now()",
        )
        .bind(order_id)
        .bind(customer)
        .bind(status)
        .execute(&self.dbs().order.pool)
        .await
        .expect("writing the order");
    }

    /// Records what the order worker made of a cancellation request.
    pub async fn set_cancellation(&self, order_id: &str, outcome: &str) {
        sqlx::query("UPDATE orders SET cancellation = $2 WHERE order_id = $1")
            .bind(order_id)
            .bind(outcome)
            .execute(&self.dbs().order.pool)
            .await
            .expect("writing the order");
    }

    /// Writes a SKU's row in the inventory service's catalogue.
    pub async fn set_stock_level(
        &self,
        sku: &str,
        name: &str,
        available: i32,
        reserved: i32,
        price: &str,
    ) {
        sqlx::query(
            "INSERT INTO catalogue (sku, name, available, reserved, unit_price) \
             VALUES ($1, $2, $3, $4, $5::numeric)",
        )
        .bind(sku)
        .bind(name)
        .bind(available)
        .bind(reserved)
        .bind(price)
        .execute(&self.dbs().inventory.pool)
        .await
        .expect("writing the catalogue");
    }
}

pub fn nowhere_store() -> Store {
    let nowhere = || Store::lazy_pool("postgres://nobody:x@127.0.0.1:1/none", 1).unwrap();
    Store::new(nowhere(), nowhere(), nowhere())
}

/// The real database probes; Kafka and the registry as the in-memory
/// publisher says (it fails like an unreachable Kafka when told to).
pub fn readiness(store: &Store, publisher: &Arc<MemoryPublisher>) -> Readiness {
    let publisher = publisher.clone();
    let probes = Readiness::new()
        .with("kafka", move || {
            let failing = publisher.is_failing();
            async move {
                if failing {
                    Err("the in-memory publisher was told to fail".to_string())
                } else {
                    Ok(())
                }
            }
        })
        .with("schema_registry", || async { Ok(()) });
    store.with_probes(probes)
}

pub fn token(sub: &str, role: Role) -> String {
    issue_token(SECRET, sub, role, Duration::from_secs(600)).unwrap()
}

pub fn customer(sub: &str) -> String {
    token(sub, Role::Customer)
}

pub fn admin() -> String {
    token("ops", Role::Admin)
}

pub fn order_body() -> Value {
    serde_json::json!({"items":[{"sku":"SKU-1","quantity":2}],"currency":"EUR","payment_token":"tok_ok"})
}
