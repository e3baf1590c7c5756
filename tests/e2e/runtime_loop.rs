//! The worker runtime's consumer loop against the real broker, registry and
//! PostgreSQL, with a handler written for the test: what each failure class
//! does to a message and to its partition, and that nothing else waits.
//!
//! The handler applies `StockAdjusted` commands (key = SKU) by recording them
//! in a table; the command's `name` says how it behaves:
//! `ok` is applied; `nul` writes a NUL byte (PostgreSQL: 22021); `panic`
//! panics; `unknown` raises an exception of no known class (P0001); `gate`
//! fails transiently until the test opens the gate.

use std::sync::Arc;
use std::time::Duration;

use chorus_avro::headers::{ATTEMPTS, ERROR_CLASS};
use chorus_avro::{Event, EventType, StockAdjusted, Topic, TopicCatalogue};
use chorus_platform::testing::TestDb;
use chorus_runtime::{HandleError, Handler, Incoming, NoCall, NoCalls, Verdict};
use chorus_tests::Stack;
use rdkafka::message::{Headers, Message};
use rdkafka::producer::{FutureProducer, FutureRecord};
use sqlx::PgConnection;
use tokio_util::sync::CancellationToken;

/// The test's handler (see the module docs).
struct Commands;

impl Handler for Commands {
    type Calls = NoCalls;

    fn name(&self) -> &'static str {
        "commands"
    }

    fn topics(&self) -> &'static [Topic] {
        &[Topic::InventoryCommands]
    }

    fn handles(&self, event_type: EventType) -> bool {
        event_type == EventType::StockAdjusted
    }

    fn calls(&self) -> &NoCalls {
        &NoCalls
    }

    async fn apply(
        &self,
        tx: &mut PgConnection,
        events: &[Incoming<'_>],
    ) -> Result<Vec<Verdict<NoCall>>, HandleError> {
        let mut verdicts = Vec::new();
        for incoming in events {
            let Event::StockAdjusted(command) = incoming.event else {
                verdicts.push(Verdict::emit(vec![]));
                continue;
            };
            let written = match command.name.as_str() {
                "nul" => "with a \0 inside".to_string(),
                "panic" => panic!("the handler panics on {}", command.sku),
                "unknown" => {
                    sqlx::query("DO $$ BEGIN RAISE EXCEPTION 'nobody knows this one'; END $$")
                        .execute(&mut *tx)
                        .await?;
                    unreachable!("the exception is raised");
                }
                "gate" => {
                    let open: bool = sqlx::query_scalar("SELECT open FROM gate")
                        .fetch_one(&mut *tx)
                        .await?;
                    if !open {
                        return Err(HandleError::Transient("the gate is closed".into()));
                    }
                    "gate".to_string()
                }
                other => other.to_string(),
            };
            sqlx::query("INSERT INTO applied (sku, name) VALUES ($1, $2)")
                .bind(&command.sku)
                .bind(written)
                .execute(&mut *tx)
                .await?;
            verdicts.push(Verdict::emit(vec![]));
        }
        Ok(verdicts)
    }
}

static NO_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate::Migrator::DEFAULT;

/// One worker running the test's handler in this process.
pub(crate) struct Worker {
    pub(crate) http: String,
    stop: CancellationToken,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Worker {
    pub(crate) async fn start(
        stack: &Stack,
        topics: &TopicCatalogue,
        db: Arc<TestDb>,
        extra: &[(&str, &str)],
    ) -> Worker {
        // The first value of a variable counts: the test's own come first.
        let mut pairs = extra.to_vec();
        pairs.extend([
            ("CHORUS_MAX_BACKOFF_MS", "300"),
            ("CHORUS_MAX_ATTEMPTS", "3"),
        ]);
        let (config, http) = stack.worker_config("commands", topics, &db.url, &pairs);
        let stop = CancellationToken::new();
        let task = tokio::spawn(chorus_runtime::app::serve(
            config,
            &NO_MIGRATIONS,
            |_| async { Ok(Commands) },
            stop.clone(),
        ));
        let worker = Worker { http, stop, task };
        worker.wait_ready().await;
        worker
    }

    async fn wait_ready(&self) {
        for _ in 0..300 {
            if let Ok(r) = reqwest::get(format!("http://{}/healthz", self.http)).await
                && r.status().is_success()
            {
                return;
            }
            assert!(
                !self.task.is_finished(),
                "the worker stopped while starting"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("the worker did not start within 30 s");
    }

    pub(crate) async fn metrics(&self) -> String {
        reqwest::get(format!("http://{}/metrics", self.http))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    pub(crate) async fn stop(self) {
        self.stop.cancel();
        self.task.await.unwrap().expect("the worker stops cleanly");
    }
}

pub(crate) async fn database() -> Arc<TestDb> {
    let db = TestDb::create(&[chorus_runtime::app::runtime_migrator()]).await;
    sqlx::raw_sql(
        "CREATE TABLE applied (seq BIGSERIAL PRIMARY KEY, sku TEXT NOT NULL, name TEXT NOT NULL);
         CREATE TABLE gate (open BOOLEAN NOT NULL); INSERT INTO gate VALUES (false);",
    )
    .execute(&db.pool)
    .await
    .unwrap();
    Arc::new(db)
}

pub(crate) fn command(sku: &str, name: &str) -> Event {
    StockAdjusted {
        event_id: uuid::Uuid::new_v4().to_string(),
        sku: sku.into(),
        occurred_at: 0,
        correlation_id: sku.into(),
        causation_id: None,
        name: name.into(),
        available: 1,
        unit_price: "1.00".parse().unwrap(),
    }
    .into()
}

/// Produces `events` (encoded) or raw bytes to a partition of the commands topic, in order.
pub(crate) async fn send(
    stack: &Stack,
    topics: &TopicCatalogue,
    partition: i32,
    payloads: Vec<(String, Vec<u8>)>,
) {
    let producer: FutureProducer = stack.producer();
    let topic = topics.name(Topic::InventoryCommands);
    for (key, payload) in payloads {
        producer
            .send(
                FutureRecord::to(&topic)
                    .partition(partition)
                    .key(&key)
                    .payload(&payload),
                Duration::from_secs(10),
            )
            .await
            .map_err(|(e, _)| e)
            .unwrap();
    }
}

pub(crate) async fn encoded(
    stack: &Stack,
    topics: &TopicCatalogue,
    events: &[Event],
) -> Vec<(String, Vec<u8>)> {
    let codec = stack.codec(topics, true);
    let mut out = Vec::new();
    for event in events {
        out.push((event.key().to_string(), codec.encode(event).await.unwrap()));
    }
    out
}

pub(crate) async fn applied(db: &TestDb) -> Vec<(String, String)> {
    sqlx::query_as("SELECT sku, name FROM applied ORDER BY seq")
        .fetch_all(&db.pool)
        .await
        .unwrap()
}

/// Waits until `done` holds on the applied rows, or fails after 60 s.
pub(crate) async fn until_applied(
    db: &TestDb,
    done: impl Fn(&[(String, String)]) -> bool,
) -> Vec<(String, String)> {
    for _ in 0..600 {
        let rows = applied(db).await;
        if done(&rows) {
            return rows;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("not applied within 60 s: {:?}", applied(db).await);
}

pub(crate) fn metric(text: &str, name: &str, labels: &[&str]) -> Option<f64> {
    text.lines()
        .filter(|l| l.starts_with(name) && labels.iter().all(|label| l.contains(label)))
        .find_map(|l| l.rsplit(' ').next()?.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retrying_partition_is_paused_while_the_others_flow() {
    let stack = Stack::get().await;
    let topics = stack.fresh_topics().await;
    let db = database().await;
    let worker = Worker::start(&stack, &topics, db.clone(), &[]).await;

    let mut p0 = vec![command("P0-GATE", "gate")];
    p0.extend((0..5).map(|i| command(&format!("P0-{i}"), "ok")));
    let p1: Vec<Event> = (0..5).map(|i| command(&format!("P1-{i}"), "ok")).collect();
    send(&stack, &topics, 0, encoded(&stack, &topics, &p0).await).await;
    send(&stack, &topics, 1, encoded(&stack, &topics, &p1).await).await;

    // Partition 1 goes through while partition 0's head waits for the gate.
    let rows = until_applied(&db, |rows| rows.len() >= 5).await;
    assert!(
        rows.iter().all(|(sku, _)| sku.starts_with("P1-")),
        "{rows:?}"
    );
    let topic = topics.name(Topic::InventoryCommands);
    let labels = [format!("topic=\"{topic}\""), "partition=\"0\"".to_string()];
    let labels: Vec<&str> = labels.iter().map(String::as_str).collect();
    let mut text = String::new();
    for _ in 0..50 {
        text = worker.metrics().await;
        if metric(&text, "chorus_partition_paused", &labels) == Some(1.0) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        metric(&text, "chorus_partition_paused", &labels),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        metric(&text, "chorus_retrying", &labels),
        Some(1.0),
        "{text}"
    );
    assert!(
        applied(&db)
            .await
            .iter()
            .all(|(sku, _)| sku.starts_with("P1-"))
    );

    // The gate opens: partition 0 goes through, in its order, and is resumed.
    sqlx::query("UPDATE gate SET open = true")
        .execute(&db.pool)
        .await
        .unwrap();
    let rows = until_applied(&db, |rows| rows.len() == 11).await;
    let p0_order: Vec<&str> = rows
        .iter()
        .filter(|(sku, _)| sku.starts_with("P0"))
        .map(|(sku, _)| sku.as_str())
        .collect();
    assert_eq!(
        p0_order,
        ["P0-GATE", "P0-0", "P0-1", "P0-2", "P0-3", "P0-4"]
    );
    let mut text = String::new();
    for _ in 0..50 {
        text = worker.metrics().await;
        if metric(&text, "chorus_partition_paused", &labels) == Some(0.0) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        metric(&text, "chorus_partition_paused", &labels),
        Some(0.0),
        "{text}"
    );
    assert_eq!(
        metric(&text, "chorus_retrying", &labels),
        Some(0.0),
        "{text}"
    );
    worker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_failure_class_dead_letters_or_retries_and_the_partition_moves_on() {
    let stack = Stack::get().await;
    let topics = stack.fresh_topics().await;
    let db = database().await;
    let worker = Worker::start(&stack, &topics, db.clone(), &[]).await;

    let events = [
        command("NUL", "nul"),
        command("OK-1", "ok"),
        command("PANIC", "panic"),
        command("OK-2", "ok"),
        command("UNKNOWN", "unknown"),
        command("OK-3", "ok"),
    ];
    let mut payloads = encoded(&stack, &topics, &events).await;
    payloads.insert(1, ("BYTES".into(), b"\x07not the wire format".to_vec()));
    send(&stack, &topics, 0, payloads).await;

    let rows = until_applied(&db, |rows| rows.len() == 3).await;
    let names: Vec<&str> = rows.iter().map(|(sku, _)| sku.as_str()).collect();
    assert_eq!(names, ["OK-1", "OK-2", "OK-3"]);

    let dead = stack
        .read(
            &topics.dead_letter(Topic::InventoryCommands),
            4,
            Duration::from_secs(30),
        )
        .await;
    let mut found: Vec<(String, String, String)> = dead
        .iter()
        .map(|m| {
            let header = |name: &str| {
                m.headers()
                    .and_then(|h| h.iter().find(|h| h.key == name))
                    .and_then(|h| h.value)
                    .map(|v| String::from_utf8_lossy(v).into_owned())
                    .unwrap_or_default()
            };
            (
                String::from_utf8_lossy(m.key().unwrap_or_default()).into_owned(),
                header(ERROR_CLASS),
                header(ATTEMPTS),
            )
        })
        .collect();
    found.sort();
    assert_eq!(
        found,
        [
            (
                "BYTES".to_string(),
                "wrong_magic_byte".to_string(),
                "1".to_string()
            ),
            ("NUL".to_string(), "database".to_string(), "1".to_string()),
            ("PANIC".to_string(), "panic".to_string(), "1".to_string()),
            // CHORUS_MAX_ATTEMPTS=3: an unknown failure is tried three times.
            (
                "UNKNOWN".to_string(),
                "exhausted".to_string(),
                "3".to_string()
            ),
        ]
    );
    let text = worker.metrics().await;
    assert_eq!(
        metric(&text, "chorus_panics_total", &[]),
        Some(1.0),
        "{text}"
    );
    worker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_killed_under_the_loop_are_retried_never_dead_lettered() {
    let stack = Stack::get().await;
    let topics = stack.fresh_topics().await;
    let db = database().await;
    let worker = Worker::start(&stack, &topics, db.clone(), &[]).await;
    let events: Vec<Event> = (0..60)
        .map(|i| command(&format!("K-{i:02}"), "ok"))
        .collect();
    let payloads = encoded(&stack, &topics, &events).await;
    let (first, second) = payloads.split_at(30);
    send(&stack, &topics, 0, first.to_vec()).await;
    // As a PostgreSQL restart looks from the worker: every connection to its
    // database ends (SQLSTATE 57P01) while it works, again and again.
    let killer = {
        let db = db.clone();
        tokio::spawn(async move {
            for _ in 0..15 {
                let _ = sqlx::query(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
                     WHERE datname = current_database() AND pid <> pg_backend_pid()",
                )
                .execute(&db.pool)
                .await;
                tokio::time::sleep(Duration::from_millis(150)).await;
            }
        })
    };
    send(&stack, &topics, 1, second.to_vec()).await;
    killer.await.unwrap();
    // The inbox keeps a redelivered command from applying twice: exactly 60.
    let rows = until_applied(&db, |rows| rows.len() >= 60).await;
    assert_eq!(rows.len(), 60, "every command once: {rows:?}");
    let text = worker.metrics().await;
    assert_eq!(
        metric(&text, "chorus_messages_dead_lettered_total", &[]),
        None,
        "nothing dead-lettered: {text}"
    );
    worker.stop().await;
}

/// A TCP proxy to the schema registry that the test switches off and on.
struct RegistryProxy {
    url: String,
    up: Arc<std::sync::atomic::AtomicBool>,
}

impl RegistryProxy {
    async fn start(registry: &str) -> RegistryProxy {
        let target = url::Url::parse(registry).unwrap();
        let target_addr = format!(
            "{}:{}",
            target.host_str().unwrap(),
            target.port_or_known_default().unwrap()
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let up = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let serving = up.clone();
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                if !serving.load(std::sync::atomic::Ordering::SeqCst) {
                    drop(inbound); // refused, as a registry that is down
                    continue;
                }
                let target_addr = target_addr.clone();
                tokio::spawn(async move {
                    if let Ok(mut outbound) = tokio::net::TcpStream::connect(target_addr).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
            }
        });
        let mut url = target.clone();
        url.set_port(Some(port)).unwrap();
        RegistryProxy {
            url: url.to_string().trim_end_matches('/').to_string(),
            up,
        }
    }

    fn set_up(&self, up: bool) {
        self.up.store(up, std::sync::atomic::Ordering::SeqCst);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registry_outage_with_a_cold_cache_delays_but_never_dead_letters() {
    let stack = Stack::get().await;
    let topics = stack.fresh_topics().await;
    let db = database().await;
    let proxy = RegistryProxy::start(&stack.registry).await;
    proxy.set_up(true);
    let worker = Worker::start(
        &stack,
        &topics,
        db.clone(),
        &[("CHORUS_SCHEMA_REGISTRY_URL", proxy.url.as_str())],
    )
    .await;
    // The worker has never decoded anything: its schema cache is cold.
    proxy.set_up(false);
    let events: Vec<Event> = (0..5).map(|i| command(&format!("R-{i}"), "ok")).collect();
    send(&stack, &topics, 0, encoded(&stack, &topics, &events).await).await;
    // The worker asks the registry again and again, and gives up on nothing.
    let mut text = String::new();
    for _ in 0..300 {
        text = worker.metrics().await;
        if metric(&text, "chorus_messages_retried_total", &[]).unwrap_or(0.0) >= 3.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        metric(&text, "chorus_messages_retried_total", &[]).unwrap_or(0.0) >= 3.0,
        "{text}"
    );
    assert_eq!(
        metric(&text, "chorus_messages_dead_lettered_total", &[]),
        None,
        "{text}"
    );
    assert!(applied(&db).await.is_empty());

    proxy.set_up(true);
    let rows = until_applied(&db, |rows| rows.len() == 5).await;
    let skus: Vec<&str> = rows.iter().map(|(sku, _)| sku.as_str()).collect();
    assert_eq!(skus, ["R-0", "R-1", "R-2", "R-3", "R-4"]);
    worker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partitions_move_between_replicas_with_nothing_lost_or_doubled() {
    let stack = Stack::get().await;
    let namespace = format!("t{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
    let topics = TopicCatalogue::new(namespace, 4);
    chorus_platform::topics::ensure_topics(&stack.kafka(), &topics, 1, Duration::from_secs(30))
        .await
        .unwrap();
    let db = database().await;
    let first = Worker::start(&stack, &topics, db.clone(), &[]).await;
    let batch = |from: usize| -> Vec<Event> {
        (from..from + 100)
            .map(|i| command(&format!("M-{i:03}"), "ok"))
            .collect()
    };
    for (partition, chunk) in encoded(&stack, &topics, &batch(0))
        .await
        .chunks(25)
        .enumerate()
    {
        send(&stack, &topics, partition as i32, chunk.to_vec()).await;
    }
    // A second replica joins: partitions are revoked from the first and handed over.
    let second = Worker::start(&stack, &topics, db.clone(), &[]).await;
    for (partition, chunk) in encoded(&stack, &topics, &batch(100))
        .await
        .chunks(25)
        .enumerate()
    {
        send(&stack, &topics, partition as i32, chunk.to_vec()).await;
    }
    until_applied(&db, |rows| rows.len() >= 200).await;
    // The first leaves: the second takes everything.
    first.stop().await;
    for (partition, chunk) in encoded(&stack, &topics, &batch(200))
        .await
        .chunks(25)
        .enumerate()
    {
        send(&stack, &topics, partition as i32, chunk.to_vec()).await;
    }
    let rows = until_applied(&db, |rows| rows.len() >= 300).await;
    assert_eq!(rows.len(), 300, "{rows:?}");
    let mut skus: Vec<&str> = rows.iter().map(|(sku, _)| sku.as_str()).collect();
    skus.sort();
    skus.dedup();
    assert_eq!(skus.len(), 300, "each message applied once");
    second.stop().await;
    drop(db);
}
