//! The `chorus-gateway` binary stops with exit code 1 and names the task
//! when one of its tasks dies: here the idempotency-key expiry, run by a
//! role that may insert and read `accepted_orders` but not delete from it
//! (a least-privilege grant made for a gateway that never deleted), which
//! would otherwise let the table grow without bound while the gateway
//! looks healthy. Needs PostgreSQL; Kafka may be away.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use sqlx::{AssertSqlSafe, PgPool};

use crate::helpers::{PAYMENT_TOKEN_KEY, SECRET, TestDbs};

async fn run_sql(pool: &PgPool, statement: String) {
    sqlx::query(AssertSqlSafe(statement))
        .execute(pool)
        .await
        .unwrap();
}

#[tokio::test]
async fn the_binary_exits_1_naming_a_task_that_dies() {
    let dbs = TestDbs::create().await;
    let pool = &dbs.gateway.pool;
    let role = format!(
        "gw_nodelete_{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    );
    run_sql(pool, format!("CREATE ROLE {role} LOGIN PASSWORD '{role}'")).await;
    run_sql(
        pool,
        format!("GRANT USAGE, CREATE ON SCHEMA public TO {role}"),
    )
    .await;
    run_sql(
        pool,
        format!("GRANT SELECT, INSERT, UPDATE ON accepted_orders TO {role}"),
    )
    .await;
    run_sql(pool, format!("GRANT SELECT ON _sqlx_migrations TO {role}")).await;
    let (_, place) = dbs.gateway.url.split_once('@').expect("a URL with a user");
    let url = format!("postgres://{role}:{role}@{place}");

    let mut child = Command::new(env!("CARGO_BIN_EXE_chorus-gateway"))
        .env_clear()
        .envs([
            ("CHORUS_HTTP_ADDR", "127.0.0.1:0"),
            ("CHORUS_ADMIN_ADDR", "127.0.0.1:0"),
            ("CHORUS_JWT_SECRET", SECRET),
            ("CHORUS_PAYMENT_TOKEN_KEY", PAYMENT_TOKEN_KEY),
            ("CHORUS_DATABASE_URL", url.as_str()),
            ("CHORUS_ORDER_DB_URL", dbs.order.url.as_str()),
            ("CHORUS_INVENTORY_DB_URL", dbs.inventory.url.as_str()),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting the gateway");
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the gateway runs on without its key expiry");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);

    run_sql(
        pool,
        format!("REVOKE ALL ON accepted_orders, _sqlx_migrations FROM {role}"),
    )
    .await;
    run_sql(pool, format!("REVOKE ALL ON SCHEMA public FROM {role}")).await;
    run_sql(pool, format!("DROP ROLE {role}")).await;

    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("chorus-gateway: the idempotency-key expiry task failed"),
        "{stderr}"
    );
    assert!(stderr.contains("permission denied"), "{stderr}");
}
