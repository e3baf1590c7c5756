//! Test support: event builders and a throwaway, migrated PostgreSQL database.

use std::time::Duration;

use chorus_avro::{
    OrderLine, OrderPlaced, PaymentAuthorized, PaymentFailed, PricedLine, StockReservationFailed,
    StockReserved,
};
use rust_decimal::Decimal;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{AssertSqlSafe, Connection, PgConnection, PgPool};

pub fn price(s: &str) -> Decimal {
    s.parse().expect("a decimal literal")
}

fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

pub fn placed(order_id: &str, items: &[(&str, i32)]) -> OrderPlaced {
    OrderPlaced {
        event_id: new_id(),
        order_id: order_id.into(),
        occurred_at: 1_700_000_000_000,
        correlation_id: order_id.into(),
        causation_id: None,
        customer_id: "cust-7".into(),
        items: items
            .iter()
            .map(|(sku, quantity)| OrderLine {
                sku: sku.to_string(),
                quantity: *quantity,
            })
            .collect(),
        currency: "EUR".into(),
        payment_token: "tok_ok".into(),
    }
}

/// Priced at `unit_price` per unit, total computed.
pub fn stock_reserved(order_id: &str, lines: &[(&str, i32, &str)]) -> StockReserved {
    let lines: Vec<PricedLine> = lines
        .iter()
        .map(|(sku, quantity, unit_price)| PricedLine {
            sku: sku.to_string(),
            quantity: *quantity,
            unit_price: price(unit_price),
        })
        .collect();
    StockReserved {
        event_id: new_id(),
        order_id: order_id.into(),
        occurred_at: 1_700_000_000_000,
        correlation_id: order_id.into(),
        causation_id: None,
        customer_id: "cust-7".into(),
        total: lines
            .iter()
            .map(|l| Decimal::from(l.quantity) * l.unit_price)
            .sum(),
        lines,
        currency: "EUR".into(),
        payment_token: "tok_ok".into(),
    }
}

pub fn reservation_failed(order_id: &str, reason: &str, skus: &[&str]) -> StockReservationFailed {
    StockReservationFailed {
        event_id: new_id(),
        order_id: order_id.into(),
        occurred_at: 1_700_000_000_000,
        correlation_id: order_id.into(),
        causation_id: None,
        reason: reason.into(),
        skus: skus.iter().map(|s| s.to_string()).collect(),
    }
}

pub fn authorized(order_id: &str, amount: &str) -> PaymentAuthorized {
    PaymentAuthorized {
        event_id: new_id(),
        order_id: order_id.into(),
        occurred_at: 1_700_000_000_000,
        correlation_id: order_id.into(),
        causation_id: None,
        amount: price(amount),
        currency: "EUR".into(),
        authorization_id: "auth-1".into(),
    }
}

pub fn payment_failed(order_id: &str, reason: &str) -> PaymentFailed {
    PaymentFailed {
        event_id: new_id(),
        order_id: order_id.into(),
        occurred_at: 1_700_000_000_000,
        correlation_id: order_id.into(),
        causation_id: None,
        amount: price("10"),
        currency: "EUR".into(),
        reason: reason.into(),
        detail: Some("card declined".into()),
    }
}

/// A database of its own for one test, migrated with [`crate::MIGRATOR`] and
/// dropped when the value is (also when the test panics).
pub struct TestDb {
    pub pool: PgPool,
    name: String,
    admin: PgConnectOptions,
}

impl TestDb {
    /// Fails, saying how to start it, when PostgreSQL cannot be reached.
    pub async fn new() -> TestDb {
        let url = std::env::var("CHORUS_TEST_PG_ADMIN_URL")
            .unwrap_or_else(|_| "postgres://chorus:chorus@127.0.0.1:55432/postgres".into());
        let admin: PgConnectOptions = url
            .parse()
            .expect("CHORUS_TEST_PG_ADMIN_URL is a postgres URL");
        let mut conn = connect(&admin).await;
        let name = format!("chorus_test_{}", uuid::Uuid::new_v4().simple());
        sqlx::query(AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut conn)
            .await
            .expect("CREATE DATABASE (the admin role needs CREATEDB)");
        conn.close().await.ok();
        let db = TestDb {
            pool: PgPoolOptions::new()
                .max_connections(24)
                .connect_with(admin.clone().database(&name))
                .await
                .expect("connect to the test database"),
            name,
            admin,
        };
        crate::MIGRATOR
            .run(&db.pool)
            .await
            .expect("migrations apply");
        db
    }
}

async fn connect(options: &PgConnectOptions) -> PgConnection {
    let at = format!("{}:{}", options.get_host(), options.get_port());
    match tokio::time::timeout(Duration::from_secs(10), PgConnection::connect_with(options)).await {
        Ok(Ok(conn)) => conn,
        Ok(Err(e)) => panic!("PostgreSQL unreachable at {at}: {e}; start the stack with `make up`"),
        Err(_) => {
            panic!("PostgreSQL unreachable at {at}: timed out; start the stack with `make up`")
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        // Drop cannot await; a helper thread with its own runtime does the
        // cleanup while this one waits. FORCE ends the pool's connections.
        let (admin, name) = (self.admin.clone(), self.name.clone());
        let cleanup = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime for the cleanup");
            runtime.block_on(async move {
                let mut conn = connect(&admin).await;
                let drop = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
                if let Err(e) = sqlx::query(AssertSqlSafe(drop)).execute(&mut conn).await {
                    eprintln!("could not drop test database {name}: {e}");
                }
            });
        });
        let _ = cleanup.join();
    }
}
