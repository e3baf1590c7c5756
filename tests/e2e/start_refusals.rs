//! The binaries as operators start them with unsafe settings: development
//! mode on a public address, the development JWT secret in another spelling,
//! weak identity-provider settings, a plain-HTTP payment provider, a short
//! webhook key. Each process exits non-zero at start-up naming the variable
//! and shows no secret; development mode on loopback starts, with a warning.
//! The worker cases read their service settings once their database is
//! migrated, so they need the stack's PostgreSQL (`make up`).

use std::process::{Command, Output};

use chorus_platform::testing::TestDb;
use chorus_platform::token::DEV_JWT_SECRET;
use chorus_tests::saga::binary;

/// 32 random bytes, base64.
const PAYMENT_TOKEN_KEY: &str = "3q8rZ1x1m0R4Jp6hB9f2cV7kT5yN0wQeLsUaIoPdXgM=";
const JWT_SECRET: &str = "start-refusals-jwt-secret-51c0e9a7d2";
/// A database URL the driver refuses before connecting (no such `sslmode`):
/// a process that got past its configuration stops there at once, touching
/// no one's stack.
const NOWHERE_DB: &str = "postgres://nobody:nobody@127.0.0.1:9/nowhere?sslmode=never";

/// Runs `service` with exactly `env` (nothing inherited) to its end.
fn run(service: &str, env: &[(&str, &str)]) -> Output {
    Command::new(binary(service))
        .env_clear()
        .envs(env.iter().copied())
        .output()
        .unwrap_or_else(|e| panic!("running chorus-{service}: {e}"))
}

/// `service` exited non-zero naming each of `names`, and showing no `hidden`.
fn assert_refused(service: &str, output: &Output, names: &[&str], hidden: &[&str]) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{service} started: {stderr}");
    for name in names {
        assert!(
            stderr.contains(name),
            "{service} does not name {name}: {stderr}"
        );
    }
    for secret in hidden {
        assert!(
            !stderr.contains(secret),
            "{service} shows a secret: {stderr}"
        );
    }
}

/// A gateway's settings with `extra` in place of the defaults of the same
/// names (a process takes the last value of a name).
fn gateway_env<'a>(extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut env = vec![
        ("CHORUS_HTTP_ADDR", "127.0.0.1:0"),
        ("CHORUS_ADMIN_ADDR", "127.0.0.1:0"),
        ("CHORUS_JWT_SECRET", JWT_SECRET),
        ("CHORUS_PAYMENT_TOKEN_KEY", PAYMENT_TOKEN_KEY),
        ("CHORUS_DATABASE_URL", NOWHERE_DB),
        ("CHORUS_ORDER_DB_URL", NOWHERE_DB),
        ("CHORUS_INVENTORY_DB_URL", NOWHERE_DB),
        ("CHORUS_KAFKA_BROKERS", "127.0.0.1:9"),
    ];
    env.extend_from_slice(extra);
    env
}

#[test]
fn development_mode_on_a_public_address_stops_each_service() {
    for (variable, addr) in [
        ("CHORUS_HTTP_ADDR", "0.0.0.0:0"),
        ("CHORUS_ADMIN_ADDR", "0.0.0.0:0"),
    ] {
        let output = run(
            "gateway",
            &gateway_env(&[("CHORUS_DEV", "true"), (variable, addr)]),
        );
        assert_refused("gateway", &output, &["CHORUS_DEV", variable], &[]);
    }
    for worker in ["order", "inventory", "payment", "notification"] {
        let output = run(
            worker,
            &[
                ("CHORUS_DEV", "true"),
                ("CHORUS_HTTP_ADDR", "0.0.0.0:0"),
                ("CHORUS_DATABASE_URL", NOWHERE_DB),
            ],
        );
        assert_refused(worker, &output, &["CHORUS_DEV", "CHORUS_HTTP_ADDR"], &[]);
    }
}

#[test]
fn development_mode_on_loopback_starts_with_a_warning() {
    // It gets as far as its database (unusable), having warned first.
    let output = run("gateway", &gateway_env(&[("CHORUS_DEV", "true")]));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("CHORUS_DATABASE_URL"), "{stderr}");
    assert!(
        stderr.contains("development mode (CHORUS_DEV=true)"),
        "{stderr}"
    );
    let output = run(
        "payment",
        &[
            ("CHORUS_DEV", "true"),
            ("CHORUS_HTTP_ADDR", "127.0.0.1:0"),
            ("CHORUS_DATABASE_URL", NOWHERE_DB),
        ],
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("development mode (CHORUS_DEV=true)"),
        "{stderr}"
    );
    // Outside development mode, no such line.
    let output = run("gateway", &gateway_env(&[]));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("development mode"), "{stderr}");
}

#[test]
fn the_development_secret_in_another_spelling_stops_the_gateway() {
    let spaced = format!("{DEV_JWT_SECRET} ");
    let shouted = DEV_JWT_SECRET.to_uppercase();
    for secret in [spaced.as_str(), shouted.as_str()] {
        let output = run("gateway", &gateway_env(&[("CHORUS_JWT_SECRET", secret)]));
        assert_refused("gateway", &output, &["CHORUS_JWT_SECRET"], &[secret]);
    }
}

#[test]
fn weak_identity_provider_settings_stop_the_gateway() {
    const URL: &str = "CHORUS_JWT_JWKS_URL";
    const ISSUER: (&str, &str) = ("CHORUS_JWT_ISSUER", "https://idp.example/realms/shop");
    const AUDIENCE: (&str, &str) = ("CHORUS_JWT_AUDIENCE", "chorus");
    let cases: [(&[(&str, &str)], &str); 3] = [
        (&[(URL, "http://idp.example/certs"), ISSUER, AUDIENCE], URL),
        (
            &[(URL, "https://idp.example/certs"), AUDIENCE],
            "CHORUS_JWT_ISSUER",
        ),
        (
            &[(URL, "https://idp.example/certs"), ISSUER],
            "CHORUS_JWT_AUDIENCE",
        ),
    ];
    for (settings, variable) in cases {
        let output = run("gateway", &gateway_env(settings));
        assert_refused("gateway", &output, &[variable], &[JWT_SECRET]);
    }
}

#[tokio::test]
async fn a_plain_http_payment_provider_or_a_short_webhook_key_stops_its_worker() {
    let payment_db = TestDb::create(&[]).await;
    let output = run(
        "payment",
        &[
            ("CHORUS_HTTP_ADDR", "127.0.0.1:0"),
            ("CHORUS_DATABASE_URL", &payment_db.url),
            ("CHORUS_PAYMENT_TOKEN_KEY", PAYMENT_TOKEN_KEY),
            ("CHORUS_PAYMENT_PROVIDER", "http"),
            ("CHORUS_PAYMENT_URL", "http://psp.example/charges"),
        ],
    );
    assert_refused(
        "payment",
        &output,
        &["CHORUS_PAYMENT_URL"],
        &[PAYMENT_TOKEN_KEY],
    );

    // 17 bytes: shorter than the Standard Webhooks specification allows.
    let short = "whsec_c2hvcnQtd2ViaG9vay1rZXk=";
    let notification_db = TestDb::create(&[]).await;
    let output = run(
        "notification",
        &[
            ("CHORUS_HTTP_ADDR", "127.0.0.1:0"),
            ("CHORUS_DATABASE_URL", &notification_db.url),
            ("CHORUS_WEBHOOK_URL", "https://hooks.example/chorus"),
            ("CHORUS_WEBHOOK_SECRET", short),
        ],
    );
    assert_refused(
        "notification",
        &output,
        &["CHORUS_WEBHOOK_SECRET", "at least 24 bytes"],
        &[&short[6..]],
    );
}
