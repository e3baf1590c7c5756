//! Logs a machine can read, secrets never logged: a whole deployment runs two
//! sagas (one confirmed, one declined) with `CHORUS_LOG_FORMAT=json` at
//! `RUST_LOG=debug`, with distinctive secrets everywhere a service holds one
//! (its database password, the JWT secret, payment tokens, the webhook
//! secret). Every line of every service's log must be one JSON object, every
//! line about a message must say which message, and no secret may appear in
//! any line.

use std::collections::BTreeMap;
use std::time::Duration;

use chorus_platform::testing::DEFAULT_ADMIN_URL;
use chorus_tests::saga::{JWT_SECRET, Saga, WORKERS, sku};
use serde_json::Value;
use sqlx::{AssertSqlSafe, Connection, Executor, PgConnection};

use crate::webhook_receiver::WebhookReceiver;

/// `whsec_` + base64 of "chorus log test: never log this key".
const WEBHOOK_SECRET: &str = "whsec_Y2hvcnVzIGxvZyB0ZXN0OiBuZXZlciBsb2cgdGhpcyBrZXk=";
/// Unknown to the sandbox provider, so its order is declined (and compensated).
const PAYMENT_TOKEN: &str = "tok_e2e_card_9f3c1b7d5a";

/// What a line about one message must carry.
const MESSAGE_FIELDS: [&str; 7] = [
    "order_id",
    "event_id",
    "event_type",
    "topic",
    "partition",
    "offset",
    "trace_id",
];

fn admin_url() -> String {
    std::env::var("CHORUS_TEST_PG_ADMIN_URL").unwrap_or_else(|_| DEFAULT_ADMIN_URL.into())
}

/// A login role with a password no other text contains; the services'
/// databases are created through it, so their URLs carry that password.
/// Dropped (after the databases it owns) when the value is.
struct DbRole {
    name: String,
    password: String,
}

impl DbRole {
    async fn create() -> DbRole {
        let unique = uuid::Uuid::new_v4().simple().to_string();
        let role = DbRole {
            name: format!("chorus_logs_{}", &unique[..12]),
            password: format!("pw{}", &unique[12..]),
        };
        let mut admin = PgConnection::connect(&admin_url())
            .await
            .unwrap_or_else(|e| panic!("PostgreSQL: {e}; {}", chorus_tests::HOW_TO_START));
        admin
            .execute(AssertSqlSafe(format!(
                "CREATE ROLE {} LOGIN CREATEDB PASSWORD '{}'",
                role.name, role.password
            )))
            .await
            .expect("creating the test role (the admin role needs CREATEROLE)");
        role
    }

    /// The admin URL with this role's credentials.
    fn url(&self) -> String {
        let admin = admin_url();
        let (scheme, rest) = admin.split_once("://").unwrap();
        let host = rest.rsplit_once('@').map_or(rest, |(_, host)| host);
        format!("{scheme}://{}:{}@{host}", self.name, self.password)
    }
}

impl Drop for DbRole {
    fn drop(&mut self) {
        // As TestDb does: Drop cannot await inside the test's runtime.
        let name = self.name.clone();
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async {
                let mut admin = PgConnection::connect(&admin_url()).await.ok()?;
                admin
                    .execute(AssertSqlSafe(format!("DROP ROLE IF EXISTS {name}")))
                    .await
                    .ok()
            })
        })
        .join();
    }
}

/// Every field a JSON log line carries: its own, its event's `fields`, and
/// those of its current span and the spans around it.
fn fields_of(line: &Value) -> BTreeMap<String, Value> {
    let mut fields = BTreeMap::new();
    let mut add = |object: &Value| {
        if let Some(map) = object.as_object() {
            fields.extend(map.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
    };
    add(line);
    add(&line["fields"]);
    add(&line["span"]);
    for span in line["spans"].as_array().into_iter().flatten() {
        add(span);
    }
    fields
}

/// Whether the line was written while a message was being processed: inside
/// a `process <EventType>` span, or any span that names a topic and offset.
fn is_about_a_message(line: &Value) -> bool {
    let spans =
        std::iter::once(&line["span"]).chain(line["spans"].as_array().into_iter().flatten());
    spans.filter(|span| span.is_object()).any(|span| {
        span["name"]
            .as_str()
            .is_some_and(|name| name.starts_with("process "))
            || (!span["topic"].is_null() && !span["offset"].is_null())
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_of_whole_sagas_name_each_message_and_never_a_secret() {
    let role = DbRole::create().await;
    let hooks = WebhookReceiver::start().await;
    let mut saga = Saga::start_with_databases_of(
        &[
            ("CHORUS_LOG_FORMAT", "json"),
            ("RUST_LOG", "debug"),
            ("CHORUS_WEBHOOK_URL", &hooks.url),
            ("CHORUS_WEBHOOK_SECRET", WEBHOOK_SECRET),
        ],
        Some(&role.url()),
    )
    .await;
    let sku = sku("LOGS");
    saga.set_stock(&sku, 10, "7.25").await;
    let confirmed = saga.place_ok("alice", &[(&sku, 1)], "tok_ok").await;
    let declined = saga.place_ok("bob", &[(&sku, 1)], PAYMENT_TOKEN).await;
    for (customer, order_id, status) in [
        ("alice", &confirmed, "CONFIRMED"),
        ("bob", &declined, "CANCELLED"),
    ] {
        let order = saga
            .wait_final(customer, order_id, Duration::from_secs(60))
            .await;
        assert_eq!(order["status"], status, "{order}");
    }
    let (deliveries, _) = saga.deliveries(None, 4).await;
    assert!(
        deliveries >= 4,
        "webhook and log notifications of both orders: {deliveries}"
    );
    // A clean stop: whatever the services log on the way out is checked too.
    for service in ["gateway", "order", "inventory", "payment", "notification"] {
        let status = saga.terminate(service);
        assert!(status.success(), "{service} exited with {status}");
    }

    let webhook_key = WEBHOOK_SECRET.trim_start_matches("whsec_");
    let secrets = [
        ("the database password", role.password.as_str()),
        ("the JWT secret", JWT_SECRET),
        ("a payment token", PAYMENT_TOKEN),
        ("a payment token", "tok_ok"),
        ("the webhook secret", webhook_key),
    ];
    // Every problem of every service, a few examples of each kind, so one run
    // shows the whole state.
    let mut problems: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut note = |kind: String, example: String| {
        let examples = problems.entry(kind).or_default();
        if examples.len() < 3 {
            examples.push(example);
        }
    };
    let mut message_lines: BTreeMap<&str, usize> = BTreeMap::new();
    let mut answers_recorded = 0;
    for service in ["gateway", "order", "inventory", "payment", "notification"] {
        let path = saga.log_file(service);
        let text = std::fs::read_to_string(&path).unwrap();
        if text.trim().is_empty() {
            note(
                format!("{service} logged nothing"),
                path.display().to_string(),
            );
        }
        for (n, line) in text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
        {
            let shown: String = line.chars().take(400).collect();
            let at = format!("{}:{}: {shown}", path.display(), n + 1);
            for (what, secret) in secrets {
                if line.contains(secret) {
                    note(format!("{what} appears in {service}'s log"), at.clone());
                }
            }
            let json = match serde_json::from_str::<Value>(line) {
                Ok(json) if json.is_object() => json,
                _ => {
                    note(
                        format!("{service} writes lines that are not a JSON object"),
                        at,
                    );
                    continue;
                }
            };
            // The call path keeps the saga's trace: an answer recorded names
            // the order, the trace and the event that asked for the call.
            if fields_of(&json).get("message").and_then(Value::as_str)
                == Some("provider answer recorded")
            {
                answers_recorded += 1;
                let fields = fields_of(&json);
                let missing: Vec<&str> = ["order_id", "event_id", "trace_id"]
                    .into_iter()
                    .filter(|f| fields.get(*f).is_none_or(|v| v.is_null() || v == ""))
                    .collect();
                if !missing.is_empty() {
                    note(
                        format!("{service}: a recorded provider answer lacks {missing:?}"),
                        at.clone(),
                    );
                }
            }
            if is_about_a_message(&json) {
                let fields = fields_of(&json);
                let missing: Vec<&str> = MESSAGE_FIELDS
                    .into_iter()
                    .filter(|f| fields.get(*f).is_none_or(|v| v.is_null() || v == ""))
                    .collect();
                if !missing.is_empty() {
                    note(
                        format!("{service}: lines about a message lack {missing:?}"),
                        at,
                    );
                }
                *message_lines.entry(service).or_default() += 1;
            }
        }
    }
    for worker in WORKERS {
        if !message_lines.contains_key(worker) {
            note(
                format!(
                    "no line of {worker} is about a message (inside a `process <EventType>` span or one naming a topic and offset)"
                ),
                format!("message lines per service: {message_lines:?}"),
            );
        }
    }
    if answers_recorded < 2 {
        note(
            "the payment worker logged fewer than two recorded provider answers".into(),
            format!("{answers_recorded}"),
        );
    }
    let report: Vec<String> = problems
        .iter()
        .map(|(kind, examples)| format!("{kind}, e.g.\n    {}", examples.join("\n    ")))
        .collect();
    assert!(report.is_empty(), "{}", report.join("\n"));
    assert!(!hooks.deliveries().is_empty());
}
