//! Rotating the JWT secret without a hard cut: while `CHORUS_JWT_SECRET_PREVIOUS`
//! holds the secret being retired, tokens signed with it are still accepted
//! beside those of `CHORUS_JWT_SECRET`, and nothing else is; a previous
//! secret the current one's rules would refuse stops the binary at start-up.
//! These tests run without the stack.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use chorus_gateway::auth::{AuthSettings, Role, issue_token};

use crate::helpers::{PAYMENT_TOKEN_KEY, SECRET, TestApp, settings};

const RETIRING: &str = "the-retiring-gateway-test-secret-of-32-bytes";

fn rotating_app() -> TestApp {
    let mut settings = settings(1000, 1000);
    settings.auth = AuthSettings::shared_secret_rotating(SECRET, RETIRING);
    TestApp::without_db_with(settings)
}

fn customer_token(secret: &str) -> String {
    issue_token(secret, "alice", Role::Customer, Duration::from_secs(600)).unwrap()
}

#[tokio::test]
async fn tokens_of_the_current_and_the_previous_secret_get_in_and_no_other() {
    let app = rotating_app();
    // A customer on an admin route: 403 says the token was accepted (the
    // caller is known, just not allowed), 401 that it was not.
    for secret in [SECRET, RETIRING] {
        let response = app
            .get("/v1/admin/inventory/SKU-1", Some(&customer_token(secret)))
            .await;
        assert_eq!(response.error(StatusCode::FORBIDDEN).0, "forbidden");
    }
    let unrelated = customer_token("an-unrelated-secret-that-is-32-bytes-long");
    let response = app.get("/v1/admin/inventory/SKU-1", Some(&unrelated)).await;
    assert_eq!(response.error(StatusCode::UNAUTHORIZED).0, "unauthorized");

    // After the rotation (no previous secret), the retired secret's tokens are out.
    let app = TestApp::without_db();
    let response = app
        .get("/v1/admin/inventory/SKU-1", Some(&customer_token(RETIRING)))
        .await;
    assert_eq!(response.error(StatusCode::UNAUTHORIZED).0, "unauthorized");
}

#[test]
fn a_weak_previous_secret_stops_the_binary_naming_the_variable() {
    let weak = "0ld-and-short";
    // Nothing listens on port 9: a gateway that wrongly got past its
    // configuration touches no one's stack, and is stopped below.
    let nowhere = "postgres://nobody:nobody@127.0.0.1:9/nowhere";
    let mut child = Command::new(env!("CARGO_BIN_EXE_chorus-gateway"))
        .env_clear()
        .envs([
            ("CHORUS_HTTP_ADDR", "127.0.0.1:0"),
            ("CHORUS_JWT_SECRET", SECRET),
            ("CHORUS_JWT_SECRET_PREVIOUS", weak),
            ("CHORUS_PAYMENT_TOKEN_KEY", PAYMENT_TOKEN_KEY),
            ("CHORUS_DATABASE_URL", nowhere),
            ("CHORUS_ORDER_DB_URL", nowhere),
            ("CHORUS_INVENTORY_DB_URL", nowhere),
            ("CHORUS_KAFKA_BROKERS", "127.0.0.1:9"),
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting the gateway");
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the gateway started with a previous JWT secret shorter than 32 bytes");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("CHORUS_JWT_SECRET_PREVIOUS") && stderr.contains("at least 32 bytes"),
        "{stderr}"
    );
    assert!(!stderr.contains(weak), "the secret was shown: {stderr}");
}
