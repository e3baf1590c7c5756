//! Every service works through the stack's SASL listener (SASL_PLAINTEXT,
//! SCRAM-SHA-512) with its own principal, and a wrong password stops a
//! worker at start-up with an error that names authentication as the cause.

use std::time::Duration;

use chorus_platform::testing::TestDb;
use chorus_platform::{Env, KafkaSettings};
use chorus_tests::saga::{Saga, WORKERS, sku};
use chorus_tests::{HOW_TO_START, Stack, describe, exit_within, run, spawn_worker};

/// The SASL listener of the stack and its development user, from
/// `CHORUS_TEST_KAFKA_SASL_{BROKERS,USERNAME,PASSWORD}` (defaults: what
/// `scripts/stack.sh up` opens and creates).
struct SaslListener {
    brokers: String,
    username: String,
    password: String,
}

impl SaslListener {
    fn from_env() -> SaslListener {
        let var =
            |name: &str, default: &str| std::env::var(name).unwrap_or_else(|_| default.into());
        SaslListener {
            brokers: var("CHORUS_TEST_KAFKA_SASL_BROKERS", "127.0.0.1:9094"),
            username: var("CHORUS_TEST_KAFKA_SASL_USERNAME", "chorus"),
            password: var("CHORUS_TEST_KAFKA_SASL_PASSWORD", "chorus"),
        }
    }

    /// What a service reads to connect through the listener with `password`.
    fn service_env(&self, password: &str) -> Vec<(&'static str, String)> {
        vec![
            ("CHORUS_KAFKA_BROKERS", self.brokers.clone()),
            ("CHORUS_KAFKA_SECURITY_PROTOCOL", "sasl_plaintext".into()),
            ("CHORUS_KAFKA_SASL_MECHANISM", "SCRAM-SHA-512".into()),
            ("CHORUS_KAFKA_SASL_USERNAME", self.username.clone()),
            ("CHORUS_KAFKA_SASL_PASSWORD", password.into()),
        ]
    }

    /// Fails the test, saying how to get the listener, unless the right
    /// credentials are accepted there.
    async fn require(&self) {
        let pairs = self.service_env(&self.password);
        let pairs: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let settings = KafkaSettings::from_env(&Env::from_pairs(&pairs)).expect("SASL settings");
        if let Err(e) = settings.fetch_metadata(None, Duration::from_secs(10)).await {
            panic!(
                "the SASL listener of the stack is not usable ({e}); a stack started before \
                 it existed opens it after `scripts/stack.sh restart kafka`; otherwise {HOW_TO_START}"
            );
        }
    }
}

#[tokio::test]
async fn a_saga_runs_with_every_service_on_its_own_principal() {
    let sasl = SaslListener::from_env();
    sasl.require().await;
    // A test's deployment connects each service through the authorizing
    // listener as `chorus-<service>`, with the ACLs `chorus acls apply` gave
    // it on the test's namespace, and nothing more.
    let saga = Saga::start().await;
    for service in WORKERS.iter().chain(["gateway"].iter()) {
        let env = saga.env_of(service);
        let user = env
            .iter()
            .rev()
            .find(|(k, _)| k == "CHORUS_KAFKA_SASL_USERNAME")
            .map(|(_, v)| v.as_str());
        assert_eq!(
            user,
            Some(format!("chorus-{service}").as_str()),
            "{service}"
        );
    }

    let kettle = sku("KETTLE");
    saga.set_stock(&kettle, 10, "29.90").await;
    let order_id = saga.place_ok("alice", &[(&kettle, 2)], "tok_ok").await;
    let order = saga
        .wait_final("alice", &order_id, Duration::from_secs(60))
        .await;

    assert_eq!(order["status"], "CONFIRMED", "{order}");
    assert_eq!(order["total"], "59.80");
    assert_eq!(saga.settled_stock(&kettle).await, (8, 0, 2));
    assert_eq!(saga.deliveries(Some(&order_id), 1).await, (1, 1));
}

#[tokio::test]
async fn a_worker_with_a_wrong_password_stops_at_start_up_naming_authentication() {
    let sasl = SaslListener::from_env();
    sasl.require().await;
    let stack = Stack::get().await;
    let topics = stack.fresh_topics().await;
    let wrong = sasl.service_env("not-the-password");

    // Every worker at once, each with its own (empty) database, so that
    // Kafka is the only thing that can refuse them.
    let mut running = Vec::new();
    for worker in WORKERS {
        let db = TestDb::create(&[]).await;
        let wrong: Vec<(String, String)> = wrong
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect();
        let (child, log) = spawn_worker(&stack, worker, worker, &topics, &db.url, &wrong);
        running.push((worker, child, log, db));
    }
    for (worker, child, log, _db) in running {
        let status = tokio::task::spawn_blocking(move || exit_within(child, 120))
            .await
            .unwrap();
        let log = std::fs::read_to_string(log).unwrap_or_default();
        let status = status
            .unwrap_or_else(|| panic!("chorus-{worker} still runs with a wrong password:\n{log}"));
        assert!(
            !status.success(),
            "chorus-{worker} exited 0 with a wrong password:\n{log}"
        );
        assert!(
            log.to_lowercase().contains("authentication"),
            "chorus-{worker} does not name authentication as the cause:\n{log}"
        );
        assert!(
            !log.contains("not-the-password"),
            "chorus-{worker} logged the password:\n{log}"
        );
    }
}

#[tokio::test]
async fn the_cli_with_a_wrong_password_says_authentication_failed() {
    let sasl = SaslListener::from_env();
    sasl.require().await;
    let stack = Stack::get().await;
    let output = run(stack
        .chorus(&chorus_avro::TopicCatalogue::default())
        .args(["topics", "list"])
        .envs(sasl.service_env("not-the-password"))
        .env("CHORUS_TIMEOUT_SECS", "10"));
    assert!(!output.status.success(), "{}", describe(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("authentication"), "{}", describe(&output));
    assert!(
        !stderr.contains("not-the-password"),
        "{}",
        describe(&output)
    );
}
