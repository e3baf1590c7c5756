//! The storefront examples (`examples/python`, `examples/node`) run as a
//! developer runs them, against a whole deployment: each gets a development
//! token with `chorus token`, places an order with an Idempotency-Key (and
//! retries it), long-polls it to CONFIRMED, cancels a second order, and
//! verifies both notifications the notification worker posts to its
//! receiver with its language's Standard Webhooks library. What each prints
//! is checked against the gateway and the notification worker's records.
//!
//! Their dependencies are installed from the package registries (pip into a
//! virtualenv, `npm ci`) into `target/examples/`, once per lock file.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use axum::Router;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use chorus_tests::saga::{Saga, free_port, sku};
use chorus_tests::{chorus_bin, exit_within};
use serde_json::json;

/// The notification worker's secret here: not the examples' development
/// default, so an example that ignored `CHORUS_WEBHOOK_SECRET` would fail.
const WEBHOOK_SECRET: &str = "whsec_Y2hvcnVzIGV4YW1wbGVzIHRlc3Qgd2ViaG9vayBrZXk=";
/// How long the payment provider takes to authorize, as a card network
/// might: the examples cancel their second order well within it.
const AUTHORIZATION_TAKES: Duration = Duration::from_secs(1);

#[tokio::test]
async fn the_storefront_examples_order_poll_cancel_and_verify_webhooks() {
    // Installed first: a missing tool fails the test before anything starts.
    let examples = [("python", python_example()), ("node", node_example())];
    let provider = slow_provider().await;
    let receiver = format!("127.0.0.1:{}", free_port());
    let webhook_url = format!("http://{receiver}/webhooks/chorus");
    let saga = Saga::start_with(&[
        ("CHORUS_WEBHOOK_URL", webhook_url.as_str()),
        ("CHORUS_WEBHOOK_SECRET", WEBHOOK_SECRET),
        ("CHORUS_PAYMENT_PROVIDER", "http"),
        ("CHORUS_PAYMENT_URL", provider.as_str()),
        ("CHORUS_PAYMENT_TIMEOUT_MS", "5000"),
    ])
    .await;
    let mug = sku("MUG");
    saga.set_stock(&mug, 10, "19.99").await;

    // One after the other: the worker posts to one receiver address.
    for (language, mut example) in examples {
        let customer = format!("{language}-shopper");
        example
            .env("CHORUS_GATEWAY_URL", &saga.gateway_url)
            .env("CHORUS_BIN", chorus_bin())
            .env("CHORUS_JWT_SECRET", chorus_tests::saga::JWT_SECRET)
            .env("CHORUS_WEBHOOK_SECRET", WEBHOOK_SECRET)
            .env("STOREFRONT_WEBHOOK_ADDR", &receiver)
            .env("STOREFRONT_CUSTOMER", &customer)
            .env("STOREFRONT_SKU", &mug)
            .env_remove("CHORUS_TOKEN");
        let printed = run_example(language, example).await;
        check_what_it_printed(&saga, &customer, &printed).await;
    }
}

/// Runs an example to its end (at most 90 s); its stdout, or a panic with
/// its exit status and both outputs.
async fn run_example(language: &str, mut example: Command) -> String {
    let out = examples_cache().join(format!("{language}.out"));
    let err = examples_cache().join(format!("{language}.err"));
    let child = example
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(std::fs::File::create(&err).unwrap())
        .spawn()
        .unwrap_or_else(|e| panic!("starting the {language} example: {e}"));
    // The slow provider is served by this test's runtime: wait off it.
    let status = tokio::task::spawn_blocking(move || exit_within(child, 90))
        .await
        .unwrap();
    let stdout = std::fs::read_to_string(&out).unwrap();
    let stderr = std::fs::read_to_string(&err).unwrap();
    let ended = status.map_or("no end within 90 s (killed)".to_string(), |s| s.to_string());
    assert!(
        status.is_some_and(|s| s.success()),
        "the {language} example ended with {ended}\n--- stdout\n{stdout}\n--- stderr\n{stderr}"
    );
    stdout
}

/// The example's account, line by line, and the system's agree: the first
/// order confirmed, the second cancelled by the customer, each final state
/// delivered to the example's receiver under the webhook id it printed.
async fn check_what_it_printed(saga: &Saga, customer: &str, printed: &str) {
    let line = |step: &str, n: usize| -> Vec<&str> {
        let lines: Vec<Vec<&str>> = printed
            .lines()
            .filter_map(|l| {
                let mut words = l.split_whitespace();
                (words.next() == Some(step)).then(|| words.collect())
            })
            .collect();
        lines
            .get(n)
            .unwrap_or_else(|| panic!("no {step} line #{n} in:\n{printed}"))
            .clone()
    };
    let bought = line("placed", 0)[0];
    let cancelled = line("placed", 1)[0];
    assert_eq!(line("retried", 0)[0], bought, "{printed}");
    assert_eq!(
        line("final", 0),
        [bought, "CONFIRMED", "total", "39.98", "EUR"],
        "{printed}"
    );
    assert_eq!(line("cancel", 0)[..2], [cancelled, "202"], "{printed}");
    assert_eq!(
        line("final", 1),
        [
            cancelled,
            "CANCELLED",
            "reason",
            "customer_cancelled",
            "cancellation",
            "accepted"
        ],
        "{printed}"
    );
    let confirmed = line("webhook", 0);
    assert_eq!(
        confirmed[..6],
        [bought, "CONFIRMED", "total", "39.98", "EUR", "verified"],
        "{printed}"
    );
    let withdrawn = line("webhook", 1);
    assert_eq!(
        withdrawn[..5],
        [
            cancelled,
            "CANCELLED",
            "reason",
            "customer_cancelled",
            "verified"
        ],
        "{printed}"
    );

    for (order_id, status) in [(bought, "CONFIRMED"), (cancelled, "CANCELLED")] {
        assert_eq!(saga.order(customer, order_id).await["status"], status);
    }
    let webhook_id = |words: &[&str]| words.last().unwrap().trim_end_matches(')').to_string();
    assert_eq!(
        delivered_webhook(saga, bought, "CONFIRMED").await,
        webhook_id(&confirmed),
        "{printed}"
    );
    assert_eq!(
        delivered_webhook(saga, cancelled, "CANCELLED").await,
        webhook_id(&withdrawn),
        "{printed}"
    );
}

/// The delivery id of the order's webhook once the notification worker
/// recorded it delivered (it records after the receiver's 2xx).
async fn delivered_webhook(saga: &Saga, order_id: &str, final_status: &str) -> String {
    let db = saga.db("notification").await;
    let mut last = None;
    for _ in 0..100 {
        last = sqlx::query_as::<_, (String, String)>(
            "SELECT delivery_id::text, status FROM deliveries
             WHERE order_id = $1 AND final_status = $2 AND channel = 'webhook'",
        )
        .bind(order_id)
        .bind(final_status)
        .fetch_optional(&db)
        .await
        .unwrap();
        if let Some((id, status)) = &last
            && status == "delivered"
        {
            return id.clone();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the {final_status} webhook of {order_id} was not recorded delivered: {last:?}");
}

/// A payment provider speaking the documented HTTP API that authorizes
/// every request after [`AUTHORIZATION_TAKES`] and takes every void.
async fn slow_provider() -> String {
    async fn authorize(headers: HeaderMap) -> (StatusCode, String) {
        tokio::time::sleep(AUTHORIZATION_TAKES).await;
        let key = headers
            .get("idempotency-key")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        let answer = json!({"status": "authorized", "authorization_id": format!("auth_{key}")});
        (StatusCode::CREATED, answer.to_string())
    }
    let app = Router::new()
        .route("/v1/authorizations", post(authorize))
        .route("/v1/voids", post(|| async { StatusCode::OK }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    url
}

fn repository() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// `target/examples`: the examples' installed dependencies and outputs.
fn examples_cache() -> PathBuf {
    let cache = repository().join("target/examples");
    std::fs::create_dir_all(&cache).unwrap();
    cache
}

/// The Python example, run by a virtualenv holding `requirements.txt`
/// (made again whenever the file changes).
fn python_example() -> Command {
    let source = repository().join("examples/python");
    let venv = examples_cache().join("python-venv");
    let python = venv.join("bin/python");
    // A virtualenv whose interpreter went away is made again (or says why not).
    let usable = Command::new(&python)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    installed(&venv, &source.join("requirements.txt"), usable, || {
        let missing = "the Python example needs python3 with venv and pip \
                       (Debian: apt-get install python3 python3-venv)";
        need(
            Command::new("python3").args(["-m", "venv"]).arg(&venv),
            missing,
        );
        need(
            Command::new(&python)
                .args([
                    "-m",
                    "pip",
                    "install",
                    "--quiet",
                    "--disable-pip-version-check",
                ])
                .args(["--require-hashes", "-r"])
                .arg(source.join("requirements.txt")),
            "installing examples/python/requirements.txt from the package index",
        );
    });
    let mut example = Command::new(python);
    example.arg(source.join("storefront.py"));
    example
}

/// The Node example, its sources copied beside the `npm ci` of its lock
/// file (installed again whenever the lock file changes), so Node resolves
/// `standardwebhooks` from there.
fn node_example() -> Command {
    let source = repository().join("examples/node");
    let dir = examples_cache().join("node");
    let missing = "the Node example needs Node.js 18 or later with npm \
                   (Debian: apt-get install nodejs npm, or https://nodejs.org)";
    let version = Command::new("node").arg("--version").output();
    let major = version.ok().and_then(|v| {
        let text = String::from_utf8_lossy(&v.stdout).to_string();
        text.trim()
            .trim_start_matches('v')
            .split('.')
            .next()?
            .parse::<u32>()
            .ok()
    });
    assert!(major.is_some_and(|m| m >= 18), "{missing}");
    installed(&dir, &source.join("package-lock.json"), true, || {
        std::fs::create_dir_all(&dir).unwrap();
        for file in ["package.json", "package-lock.json"] {
            std::fs::copy(source.join(file), dir.join(file)).unwrap();
        }
        need(
            Command::new("npm")
                .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
                .current_dir(&dir),
            &format!("npm ci of examples/node/package-lock.json from the registry ({missing})"),
        );
    });
    // The sources of this run, not of the run that installed.
    for entry in std::fs::read_dir(&source).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "js") {
            std::fs::copy(&path, dir.join(path.file_name().unwrap())).unwrap();
        }
    }
    let mut example = Command::new("node");
    example.arg(dir.join("storefront.js"));
    example
}

/// Runs `install` into the empty directory `dir` unless `dir` already holds
/// what it installed from this very `lock` file and is still `usable`.
fn installed(dir: &Path, lock: &Path, usable: bool, install: impl FnOnce()) {
    let stamp = dir.join(".installed-from");
    let wanted = std::fs::read(lock).unwrap();
    if usable && std::fs::read(&stamp).ok().as_ref() == Some(&wanted) {
        return;
    }
    let _ = std::fs::remove_dir_all(dir);
    install();
    std::fs::write(stamp, wanted).unwrap();
}

/// Runs a command that must succeed; panics with `what` and its output.
fn need(command: &mut Command, what: &str) {
    let output = command
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        output.status.success(),
        "{what}: {}",
        chorus_tests::describe(&output)
    );
}
