//! `chorus token`, `order` and `stock` against an in-process gateway (real
//! router and database, in-memory publisher) on a random port. Needs
//! PostgreSQL; fails saying how to start it when it is down.

use std::process::Output;
use std::sync::Arc;
use std::time::Duration;

use chorus_avro::Event;
use chorus_gateway::auth::{Role, TokenVerifier};
use chorus_gateway::publish::MemoryPublisher;
use chorus_gateway::store::Store;
use chorus_gateway::{AppState, Settings, app};
use chorus_platform::testing::TestDb;
use serde_json::Value;
use sqlx::PgPool;

const SECRET: &str = "chorus-cli-test-secret";

struct Gateway {
    url: String,
    pool: PgPool,
    db: TestDb,
    publisher: Arc<MemoryPublisher>,
}

impl Gateway {
    async fn start() -> Gateway {
        let db = TestDb::create(&[&chorus_gateway::MIGRATOR]).await;
        sqlx::raw_sql(chorus_gateway::READ_MODEL_STAND_INS)
            .execute(&db.pool)
            .await
            .expect("creating the read models");
        let pool = db.pool.clone();
        let publisher = Arc::new(MemoryPublisher::default());
        let state = AppState::new(
            Store::new(pool.clone(), pool.clone(), pool.clone()),
            publisher.clone(),
            &Settings {
                jwt_secret: SECRET.to_string(),
                rate_limit_per_sec: 1000,
                rate_limit_burst: 1000,
            },
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app(state)).await });
        Gateway {
            url,
            pool,
            db,
            publisher,
        }
    }

    async fn chorus(&self, args: &[&str]) -> Output {
        tokio::process::Command::new(env!("CARGO_BIN_EXE_chorus"))
            .args(args)
            .env("CHORUS_GATEWAY_URL", &self.url)
            .env("CHORUS_JWT_SECRET", SECRET)
            .env_remove("CHORUS_TOKEN")
            .output()
            .await
            .unwrap()
    }

    async fn stop(self) {
        self.pool.close().await;
        // Dropping the test database removes it.
        drop(self.db);
    }
}

fn stdout_json(output: &Output) -> Value {
    assert!(output.status.success(), "{}", describe(output));
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| panic!("{e}: {}", describe(output)))
}

fn describe(output: &Output) -> String {
    format!(
        "exit {:?}\nstdout: {}\nstderr: {}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn token_prints_a_verifiable_jwt_and_nothing_else() {
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_chorus"))
        .args([
            "token",
            "--sub",
            "alice",
            "--role",
            "admin",
            "--ttl-secs",
            "60",
        ])
        .env("CHORUS_JWT_SECRET", SECRET)
        .output()
        .await
        .unwrap();
    assert!(output.status.success(), "{}", describe(&output));
    let stdout = String::from_utf8(output.stdout).unwrap();
    let token = stdout.strip_suffix('\n').expect("one line");
    assert!(!token.contains(char::is_whitespace), "{stdout:?}");
    let claims = TokenVerifier::new(SECRET).verify(token).unwrap();
    assert_eq!((claims.sub.as_str(), claims.role), ("alice", Role::Admin));
}

#[tokio::test(flavor = "multi_thread")]
async fn orders_and_stock_through_the_gateway() {
    let gateway = Gateway::start().await;

    let placed = gateway
        .chorus(&[
            "order",
            "place",
            "--sub",
            "alice",
            "--sku",
            "SKU-1:2",
            "--sku",
            "SKU-2",
            "--idempotency-key",
            "k1",
        ])
        .await;
    let placed = stdout_json(&placed);
    assert_eq!(placed["status"], "PENDING");
    let order_id = placed["order_id"].as_str().unwrap().to_string();
    let again = gateway
        .chorus(&[
            "order",
            "place",
            "--sub",
            "alice",
            "--sku",
            "SKU-1:2",
            "--sku",
            "SKU-2",
            "--idempotency-key",
            "k1",
        ])
        .await;
    assert_eq!(stdout_json(&again)["order_id"], order_id);
    let published = gateway.publisher.published();
    let [(Event::OrderPlaced(event), _)] = published.as_slice() else {
        panic!("{published:?}")
    };
    assert_eq!(event.items[1].quantity, 1, "a SKU without :N is one unit");

    let status = gateway
        .chorus(&["order", "status", &order_id, "--sub", "alice"])
        .await;
    assert_eq!(stdout_json(&status)["status"], "PENDING");

    // Someone else's order: the gateway's 404 JSON on stderr, non-zero exit.
    let refused = gateway
        .chorus(&["order", "status", &order_id, "--sub", "mallory"])
        .await;
    assert!(!refused.status.success());
    assert!(refused.stdout.is_empty());
    let error: Value = serde_json::from_slice(&refused.stderr).expect("the error JSON alone");
    assert_eq!(error["error"]["code"], "not_found");

    // --wait follows the order to its final status, one line per change.
    let follower = {
        let url = gateway.url.clone();
        let order_id = order_id.clone();
        tokio::spawn(async move {
            tokio::process::Command::new(env!("CARGO_BIN_EXE_chorus"))
                .args(["order", "status", &order_id, "--sub", "alice", "--wait"])
                .env("CHORUS_GATEWAY_URL", url)
                .env("CHORUS_JWT_SECRET", SECRET)
                .output()
                .await
                .unwrap()
        })
    };
    for status in ["RESERVED", "CONFIRMED"] {
        tokio::time::sleep(Duration::from_millis(500)).await;
        sqlx::query(
            "INSERT INTO order_status (order_id, customer_id, status, currency, items, history) \
             VALUES ($1, 'alice', $2, 'EUR', '[]', '[]') \
             ON CONFLICT (order_id) DO UPDATE SET status = EXCLUDED.status",
        )
        .bind(&order_id)
        .bind(status)
        .execute(&gateway.pool)
        .await
        .unwrap();
    }
    let followed = tokio::time::timeout(Duration::from_secs(30), follower)
        .await
        .expect("--wait ends at the final status")
        .unwrap();
    assert!(followed.status.success(), "{}", describe(&followed));
    let statuses: Vec<String> = String::from_utf8(followed.stdout)
        .unwrap()
        .lines()
        .map(|line| {
            serde_json::from_str::<Value>(line).unwrap()["status"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(statuses, ["PENDING", "RESERVED", "CONFIRMED"]);

    let set = gateway
        .chorus(&[
            "stock",
            "set",
            "SKU-1",
            "--available",
            "5",
            "--price",
            "1.50",
            "--name",
            "Mug",
        ])
        .await;
    assert_eq!(stdout_json(&set)["unit_price"], "1.50");
    assert!(matches!(
        gateway.publisher.published().last(),
        Some((Event::StockAdjusted(_), _))
    ));
    let customer_set = gateway
        .chorus(&[
            "stock",
            "set",
            "SKU-1",
            "--available",
            "5",
            "--price",
            "1.50",
            "--role",
            "customer",
        ])
        .await;
    assert!(!customer_set.status.success());
    let unknown = gateway.chorus(&["stock", "get", "SKU-404"]).await;
    assert!(!unknown.status.success());
    let error: Value = serde_json::from_slice(&unknown.stderr).expect("the error JSON alone");
    assert_eq!(error["error"]["code"], "not_found");

    gateway.stop().await;
}
