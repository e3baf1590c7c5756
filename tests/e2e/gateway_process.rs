//! The `chorus-gateway` binary as operators run it: a bad configuration stops
//! it at start-up naming the variable and never showing a secret; with
//! `CHORUS_LOG_FORMAT=json` it logs one JSON object per line, and nothing it
//! was given or handled in secret (JWT secret, bearer token, payment-token
//! key, a payment token, a database password) appears in any line, at any
//! level; SIGTERM ends it cleanly.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use chorus_platform::testing::TestDb;
use chorus_platform::token::{Role, issue_token};
use chorus_tests::Stack;
use chorus_tests::saga::{binary, free_port};
use serde_json::{Value, json};

const JWT_SECRET: &str = "gw-e2e-jwt-secret-5a1d8e0c7b3f4e29a6d1";
/// 32 random bytes, base64: the payment-token key of this test.
const PAYMENT_TOKEN_KEY: &str = "wO7xvGpEubQM4KVOxBxnZ6D5qHkbFPOBaZ3ci/+QDWo=";
const DB_PASSWORD: &str = "gw-e2e-db-password-93f1c2";

/// The gateway with exactly `env` (nothing inherited from the test's own).
fn gateway(env: &[(&str, &str)]) -> Command {
    let mut command = Command::new(binary("gateway"));
    command.env_clear().envs(env.iter().copied());
    command
}

fn wait_for_exit(child: &mut Child, within: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + within;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            panic!("the gateway did not exit within {within:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The environment, the variable it gets wrong, and text that must not show.
type BadConfiguration<'a> = (&'a [(&'a str, &'a str)], &'a str, &'a str);

#[test]
fn a_bad_configuration_stops_the_gateway_naming_the_variable() {
    let cases: [BadConfiguration; 4] = [
        (
            &[
                ("CHORUS_JWT_SECRET", "short-s3cret"),
                ("CHORUS_PAYMENT_TOKEN_KEY", PAYMENT_TOKEN_KEY),
            ],
            "CHORUS_JWT_SECRET",
            "short-s3cret",
        ),
        (
            &[("CHORUS_JWT_SECRET", JWT_SECRET)],
            "CHORUS_PAYMENT_TOKEN_KEY",
            JWT_SECRET,
        ),
        (
            &[
                ("CHORUS_JWT_SECRET", JWT_SECRET),
                ("CHORUS_PAYMENT_TOKEN_KEY", "bm90LTMyLWJ5dGVz"),
            ],
            "CHORUS_PAYMENT_TOKEN_KEY",
            "bm90LTMyLWJ5dGVz",
        ),
        (
            &[("CHORUS_DEV", "true"), ("CHORUS_ADMIN_ADDR", "admin-port")],
            "CHORUS_ADMIN_ADDR",
            "\u{0}",
        ),
    ];
    for (env, variable, secret) in cases {
        let output = gateway(env).output().expect("running the gateway");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{variable}: {stderr}");
        assert!(stderr.contains(variable), "{variable}: {stderr}");
        assert!(
            !stderr.contains(secret),
            "{variable} shows its value: {stderr}"
        );
    }
}

#[tokio::test]
async fn json_logs_carry_no_secret() {
    let stack = Stack::get().await;
    let topics = stack.fresh_topics().await;
    let db = TestDb::create(&[]).await;
    let (port, admin_port) = (free_port(), free_port());
    let read_model = format!("postgres://gateway_ro:{DB_PASSWORD}@db.invalid:5432/chorus_order");
    let logs = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../target/e2e-logs")
        .join(topics.namespace());
    std::fs::create_dir_all(&logs).unwrap();
    let log_path = logs.join("gateway.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let (http, admin) = (
        format!("127.0.0.1:{port}"),
        format!("127.0.0.1:{admin_port}"),
    );
    let partitions = topics.partitions().to_string();
    let mut child = gateway(&[
        ("CHORUS_HTTP_ADDR", &http),
        ("CHORUS_ADMIN_ADDR", &admin),
        ("CHORUS_KAFKA_BROKERS", &stack.brokers),
        ("CHORUS_SCHEMA_REGISTRY_URL", &stack.registry),
        ("CHORUS_AUTO_REGISTER_SCHEMAS", "true"),
        ("CHORUS_TOPIC_NAMESPACE", topics.namespace()),
        ("CHORUS_TOPIC_PARTITIONS", &partitions),
        ("CHORUS_DATABASE_URL", &db.url),
        ("CHORUS_ORDER_DB_URL", &read_model),
        ("CHORUS_INVENTORY_DB_URL", &read_model),
        ("CHORUS_JWT_SECRET", JWT_SECRET),
        ("CHORUS_PAYMENT_TOKEN_KEY", PAYMENT_TOKEN_KEY),
        ("CHORUS_LOG_FORMAT", "json"),
        ("RUST_LOG", "debug"),
    ])
    .stdout(Stdio::from(log.try_clone().unwrap()))
    .stderr(Stdio::from(log))
    .spawn()
    .expect("starting the gateway");
    let log_text = || std::fs::read_to_string(&log_path).unwrap_or_default();

    let client = reqwest::Client::new();
    let base = format!("http://{http}");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("the gateway exited with {status}:\n{}", log_text());
        }
        if let Ok(response) = client.get(format!("{base}/healthz")).send().await
            && response.status().is_success()
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not serving within 60 s:\n{}",
            log_text()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let bearer = issue_token(JWT_SECRET, "alice", Role::Admin, Duration::from_secs(600)).unwrap();
    let payment_token = format!("tok_e2e_{}", uuid::Uuid::new_v4().simple());
    let response = client
        .post(format!("{base}/v1/orders"))
        .bearer_auth(&bearer)
        .header("idempotency-key", "log-test-1")
        .json(&json!({"items": [{"sku": "SKU-1", "quantity": 1}], "currency": "EUR", "payment_token": payment_token}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202, "{}", log_text());
    let order_id = response.json::<Value>().await.unwrap()["order_id"]
        .as_str()
        .unwrap()
        .to_string();
    // The read models are unreachable behind a password: 503s and failed
    // probes, whose causes are logged.
    let status = client
        .get(format!("{base}/v1/orders/{order_id}"))
        .bearer_auth(&bearer)
        .send()
        .await
        .unwrap();
    assert_eq!(status.status(), 503);
    let ready = client
        .get(format!("http://{admin}/readyz"))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 503);
    let response = client
        .put(format!("{base}/v1/admin/inventory/SKU-1"))
        .bearer_auth(&bearer)
        .json(&json!({"available": 3, "unit_price": "2.50", "name": "Mug"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);

    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let status = wait_for_exit(&mut child, Duration::from_secs(30));
    assert!(
        status.success(),
        "SIGTERM ends it cleanly: {status}\n{}",
        log_text()
    );

    let text = log_text();
    let lines: Vec<Value> = text
        .lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| {
            let value: Value =
                serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
            assert!(value.is_object(), "not an object: {line}");
            value
        })
        .collect();
    assert!(lines.len() > 10, "debug logs of a whole run: {text}");
    for secret in [
        JWT_SECRET,
        PAYMENT_TOKEN_KEY,
        DB_PASSWORD,
        &payment_token,
        &bearer,
    ] {
        assert!(!text.contains(secret), "a log line shows a secret");
    }
    // The order's request span, named after its route, carries the order id.
    let accepted = lines.iter().find(|line| {
        line["fields"]["message"] == "order accepted" && line["fields"]["order_id"] == order_id
    });
    let accepted = accepted.unwrap_or_else(|| panic!("no `order accepted` line: {text}"));
    assert_eq!(
        accepted["span"]["otel.name"], "POST /v1/orders",
        "{accepted}"
    );
    assert_eq!(accepted["span"]["order_id"], order_id, "{accepted}");
}
