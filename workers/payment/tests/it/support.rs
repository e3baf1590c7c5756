//! A fresh database per test, migrated and dropped afterwards; a test that
//! cannot reach PostgreSQL fails saying how to start it.

use std::time::Duration;

use chorus_avro::{PricedLine, StockReserved};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, Connection, Executor, PgConnection, PgPool};

const DEFAULT_ADMIN_URL: &str = "postgres://chorus:chorus@127.0.0.1:55432/postgres";

pub struct TestDb {
    pub pool: PgPool,
    name: String,
    admin: PgConnectOptions,
}

impl TestDb {
    /// A fresh, migrated database; panics naming PostgreSQL and how to start it.
    pub async fn create() -> TestDb {
        let url = std::env::var("CHORUS_TEST_POSTGRES_URL").unwrap_or(DEFAULT_ADMIN_URL.into());
        TestDb::try_create(&url)
            .await
            .unwrap_or_else(|problem| panic!("{problem}"))
    }

    pub async fn try_create(admin_url: &str) -> Result<TestDb, String> {
        let admin: PgConnectOptions = admin_url.parse().map_err(|e| format!("{admin_url}: {e}"))?;
        let mut conn = connect(&admin).await?;
        let name = format!(
            "chorus_test_{}",
            &uuid::Uuid::new_v4().simple().to_string()[..16]
        );
        conn.execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .await
            .map_err(|e| format!("creating the test database: {e}"))?;
        let db = TestDb {
            pool: PgPoolOptions::new()
                .max_connections(4)
                .connect_with(admin.clone().database(&name))
                .await
                .map_err(|e| format!("connecting to {name}: {e}"))?,
            name,
            admin,
        };
        chorus_payment::MIGRATOR
            .run(&db.pool)
            .await
            .map_err(|e| format!("migrating the test database: {e}"))?;
        Ok(db)
    }
}

async fn connect(options: &PgConnectOptions) -> Result<PgConnection, String> {
    let unreachable = |e: String| {
        format!(
            "PostgreSQL unreachable at {}:{}: start the stack with `make up` ({e})",
            options.get_host(),
            options.get_port()
        )
    };
    tokio::time::timeout(Duration::from_secs(5), options.connect())
        .await
        .map_err(|_| unreachable("timed out".into()))?
        .map_err(|e| unreachable(e.to_string()))
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let (admin, name) = (self.admin.clone(), self.name.clone());
        // Drop runs inside the test's runtime, which cannot be blocked on: use another.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            runtime.block_on(async {
                let mut conn = admin.connect().await?;
                conn.execute(sqlx::AssertSqlSafe(format!(
                    "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                )))
                .await?;
                conn.close().await
            })?;
            Ok::<_, Box<dyn std::error::Error + Send + Sync>>(())
        })
        .join();
        if let Ok(Err(e)) = dropped {
            eprintln!("could not drop test database {}: {e}", self.name);
        }
    }
}

pub fn stock_reserved(total: &str, token: &str) -> StockReserved {
    let order_id = format!("order-{}", uuid::Uuid::new_v4());
    StockReserved {
        event_id: uuid::Uuid::new_v4().to_string(),
        order_id: order_id.clone(),
        occurred_at: 0,
        correlation_id: order_id,
        causation_id: None,
        customer_id: "customer-1".into(),
        lines: vec![PricedLine {
            sku: "sku-1".into(),
            quantity: 1,
            unit_price: total.parse().unwrap(),
        }],
        total: total.parse().unwrap(),
        currency: "EUR".into(),
        payment_token: token.into(),
    }
}

#[tokio::test]
async fn an_unreachable_postgres_fails_saying_how_to_start_it() {
    let Err(problem) = TestDb::try_create("postgres://chorus:chorus@127.0.0.1:1/postgres").await
    else {
        panic!("port 1 should refuse connections");
    };
    assert!(
        problem
            .starts_with("PostgreSQL unreachable at 127.0.0.1:1: start the stack with `make up`"),
        "{problem}"
    );
}
