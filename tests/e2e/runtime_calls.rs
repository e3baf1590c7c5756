//! The call executor against the real PostgreSQL and broker, with a
//! provider made up for the test: leases renewed while a call is retried,
//! handed over at once by a clean stop, intents nobody asked for called,
//! calls that keep failing parked without starving the others, and an answer
//! the database refuses replaced by the worker's fallback.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chorus_platform::testing::TestDb;
use chorus_runtime::calls::{CallExecutor, CallRequest, DeadLetters, REQUEST_QUEUE};
use chorus_runtime::emit::Emitter;
use chorus_runtime::metrics::Metrics;
use chorus_runtime::outbox_publisher::OutboxPublisher;
use chorus_runtime::progress::Progress;
use chorus_runtime::retry::RetryPolicy;
use chorus_runtime::{CallOutcome, Calls, Fallback, HandleError, Settling, Verdict};
use chorus_tests::Stack;
use sqlx::{PgConnection, PgPool};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// How the made-up provider answers a call.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Behaviour {
    Answer,
    /// "Not now", every time.
    NotNow,
    /// An answer PostgreSQL refuses (a NUL byte in text).
    Unrecordable,
    Panic,
}

/// A provider made up for the test: intents in a table of its own, the
/// behaviour of each call set by the test, every attempt logged with the
/// executor that made it.
struct FakeCalls {
    executor: &'static str,
    behaviour: Arc<Mutex<HashMap<String, Behaviour>>>,
    log: Arc<Mutex<Vec<(&'static str, String)>>>,
}

async fn create_intents(pool: &PgPool) {
    sqlx::query("CREATE TABLE intents (id TEXT PRIMARY KEY, answer TEXT, lease_until TIMESTAMPTZ)")
        .execute(pool)
        .await
        .unwrap();
}

/// An intent as the consumer loop commits it: leased to its process.
async fn intent(pool: &PgPool, id: &str, lease_secs: f64) {
    sqlx::query(
        "INSERT INTO intents (id, lease_until) VALUES ($1, now() + make_interval(secs => $2))",
    )
    .bind(id)
    .bind(lease_secs)
    .execute(pool)
    .await
    .unwrap();
}

impl Calls for FakeCalls {
    type Call = String;
    type Answer = String;

    fn id(call: &String) -> String {
        call.clone()
    }

    fn span_name(_call: &String) -> &'static str {
        "fake call"
    }

    fn key(call: &String) -> &str {
        call
    }

    fn traceparent(_call: &String) -> Option<&str> {
        None
    }

    async fn call(&self, call: &String, _attempt: u32) -> CallOutcome<String> {
        self.log.lock().unwrap().push((self.executor, call.clone()));
        let behaviour = self
            .behaviour
            .lock()
            .unwrap()
            .get(call)
            .copied()
            .unwrap_or(Behaviour::Answer);
        match behaviour {
            Behaviour::Answer => CallOutcome::Answered(format!("answered by {}", self.executor)),
            Behaviour::NotNow => CallOutcome::Retry("not now".into()),
            Behaviour::Unrecordable => CallOutcome::Answered("bad\0answer".into()),
            Behaviour::Panic => panic!("the fake provider panicked on {call}"),
        }
    }

    fn fallback(_call: &String, why: Fallback<'_>) -> Option<String> {
        match why {
            Fallback::Unrecordable(_) => Some("fallback".into()),
            Fallback::Exhausted(_) => None,
        }
    }

    async fn settle(
        &self,
        tx: &mut PgConnection,
        answers: &[Settling<'_, String, String>],
    ) -> Result<Vec<Verdict<String>>, HandleError> {
        for settling in answers {
            sqlx::query(
                "UPDATE intents SET answer = $2, lease_until = NULL
                 WHERE id = $1 AND answer IS NULL",
            )
            .bind(settling.call)
            .bind(settling.answer)
            .execute(&mut *tx)
            .await?;
        }
        Ok(answers.iter().map(|_| Verdict::emit(vec![])).collect())
    }

    async fn unsettled(
        &self,
        conn: &mut PgConnection,
        lease: Duration,
        limit: i64,
    ) -> Result<Vec<String>, sqlx::Error> {
        sqlx::query_scalar(
            "UPDATE intents SET lease_until = now() + make_interval(secs => $1)
             WHERE id IN (SELECT id FROM intents
                          WHERE answer IS NULL AND (lease_until IS NULL OR lease_until < now())
                          ORDER BY id LIMIT $2 FOR UPDATE SKIP LOCKED)
             RETURNING id",
        )
        .bind(lease.as_secs_f64())
        .bind(limit)
        .fetch_all(conn)
        .await
    }

    async fn renew(
        &self,
        conn: &mut PgConnection,
        calls: &[&String],
        lease: Duration,
    ) -> Result<(), sqlx::Error> {
        let ids: Vec<&str> = calls.iter().map(|c| c.as_str()).collect();
        sqlx::query(
            "UPDATE intents SET lease_until = now() + make_interval(secs => $2)
             WHERE id = ANY($1) AND answer IS NULL",
        )
        .bind(&ids)
        .bind(lease.as_secs_f64())
        .execute(conn)
        .await?;
        Ok(())
    }

    async fn release(&self, conn: &mut PgConnection, calls: &[&String]) -> Result<(), sqlx::Error> {
        let ids: Vec<&str> = calls.iter().map(|c| c.as_str()).collect();
        sqlx::query("UPDATE intents SET lease_until = NULL WHERE id = ANY($1) AND answer IS NULL")
            .bind(&ids)
            .execute(conn)
            .await?;
        Ok(())
    }
}

/// One executor (a replica's), running until its token is cancelled.
struct Replica {
    requests: mpsc::Sender<CallRequest<String>>,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
    progress: Progress,
}

struct Bench {
    stack: Stack,
    db: TestDb,
    catalogue: chorus_avro::TopicCatalogue,
    behaviour: Arc<Mutex<HashMap<String, Behaviour>>>,
    log: Arc<Mutex<Vec<(&'static str, String)>>>,
}

impl Bench {
    async fn new() -> Bench {
        let stack = Stack::get().await;
        let catalogue = stack.fresh_topics().await;
        let db = TestDb::create(&[chorus_runtime::app::runtime_migrator()]).await;
        create_intents(&db.pool).await;
        Bench {
            stack,
            db,
            catalogue,
            behaviour: Arc::default(),
            log: Arc::default(),
        }
    }

    fn set(&self, id: &str, behaviour: Behaviour) {
        self.behaviour
            .lock()
            .unwrap()
            .insert(id.to_string(), behaviour);
    }

    fn calls_of(&self, executor: &str, id: &str) -> usize {
        let log = self.log.lock().unwrap();
        log.iter()
            .filter(|(e, c)| *e == executor && c == id)
            .count()
    }

    fn start(&self, executor: &'static str, max_attempts: u32) -> Replica {
        let producer = self.stack.producer();
        let (publisher, _tracker) = OutboxPublisher::start(producer.clone(), self.db.pool.clone());
        let (requests, received) = mpsc::channel(REQUEST_QUEUE);
        let shutdown = CancellationToken::new();
        let progress = Progress::new("external calls");
        progress.beat();
        let executor = CallExecutor {
            calls: Arc::new(FakeCalls {
                executor,
                behaviour: self.behaviour.clone(),
                log: self.log.clone(),
            }),
            pool: self.db.pool.clone(),
            emitter: Arc::new(Emitter {
                codec: Arc::new(self.stack.codec(&self.catalogue, true)),
                producer: "test",
            }),
            publisher,
            metrics: Arc::new(Metrics::new(executor)),
            retry: RetryPolicy {
                max_attempts: 3,
                first_backoff: Duration::from_millis(20),
                max_backoff: Duration::from_millis(400),
            },
            max_attempts,
            dead_letters: DeadLetters {
                producer,
                catalogue: self.catalogue.clone(),
                consumer_group: format!("{executor}-group"),
            },
            progress: progress.clone(),
            recorder_progress: Progress::new("call answer recorder"),
        };
        let task = tokio::spawn(executor.run(received, shutdown.clone()));
        Replica {
            requests,
            shutdown,
            task,
            progress,
        }
    }

    async fn answer(&self, id: &str) -> Option<String> {
        sqlx::query_scalar("SELECT answer FROM intents WHERE id = $1")
            .bind(id)
            .fetch_one(&self.db.pool)
            .await
            .unwrap()
    }

    async fn lease_secs(&self, id: &str) -> Option<f64> {
        sqlx::query_scalar(
            "SELECT EXTRACT(EPOCH FROM lease_until - now())::float8 FROM intents WHERE id = $1",
        )
        .bind(id)
        .fetch_one(&self.db.pool)
        .await
        .unwrap()
    }

    /// Waits for `id`'s recorded answer, at most `within`.
    async fn answered(&self, id: &str, within: Duration) -> String {
        let deadline = Instant::now() + within;
        loop {
            if let Some(answer) = self.answer(id).await {
                return answer;
            }
            assert!(
                Instant::now() < deadline,
                "{id} was not answered within {within:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Replica {
    async fn ask(&self, id: &str) {
        self.requests.send((id.to_string(), None)).await.unwrap();
    }

    async fn stop(self) {
        self.shutdown.cancel();
        self.task
            .await
            .expect("the executor does not panic")
            .expect("a clean stop");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_call_keeps_its_lease_and_a_clean_stop_hands_it_over_at_once() {
    let bench = Bench::new().await;
    let first = bench.start("first", 10_000);
    let second = bench.start("second", 10_000);
    intent(&bench.db.pool, "slow", 10.0).await;
    bench.set("slow", Behaviour::NotNow);
    first.ask("slow").await;

    // Well past the 10 s lease: renewed while retried, so the other replica,
    // looking every 2 s, never takes it.
    tokio::time::sleep(Duration::from_secs(14)).await;
    assert!(bench.calls_of("first", "slow") > 3);
    assert_eq!(
        bench.calls_of("second", "slow"),
        0,
        "a call whose lease is renewed is not taken by another replica"
    );
    assert!(
        bench.lease_secs("slow").await.unwrap() > 3.0,
        "the lease is renewed"
    );

    // A clean stop gives the lease back: the other replica takes the call
    // within its 2 s look, not after the lease would have run out.
    bench.set("slow", Behaviour::Answer);
    let stopped = Instant::now();
    first.stop().await;
    assert_eq!(
        bench.lease_secs("slow").await,
        None,
        "the lease is given up"
    );
    let answer = bench.answered("slow", Duration::from_secs(5)).await;
    assert_eq!(answer, "answered by second");
    assert!(stopped.elapsed() < Duration::from_secs(5));
    second.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_intent_whose_call_was_never_asked_for_is_called() {
    let bench = Bench::new().await;
    // Committed by a consumer loop that crashed before it asked for the call
    // (or whose acknowledgement was lost, so the redelivery was a duplicate):
    // leased for 10 s to a process that will never make it.
    intent(&bench.db.pool, "orphan", 10.0).await;
    let replica = bench.start("replica", 10);
    let answer = bench.answered("orphan", Duration::from_secs(15)).await;
    assert_eq!(answer, "answered by replica");
    assert_eq!(bench.calls_of("replica", "orphan"), 1);
    replica.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_that_keep_failing_are_parked_and_never_starve_the_others() {
    let bench = Bench::new().await;
    let replica = bench.start("replica", 3);
    // More failing calls than there are call slots (64), and more requests
    // than the consumer's queue holds: the consumer never waits on them.
    let failing: Vec<String> = (0..300).map(|i| format!("failing-{i:03}")).collect();
    for id in &failing {
        intent(&bench.db.pool, id, 10.0).await;
        bench.set(id, Behaviour::NotNow);
    }
    let asked = Instant::now();
    for id in &failing {
        replica.ask(id).await;
    }
    assert!(
        asked.elapsed() < Duration::from_secs(2),
        "handing over calls never waits on calls that fail: {:?}",
        asked.elapsed()
    );
    for i in 0..5 {
        let id = format!("good-{i}");
        intent(&bench.db.pool, &id, 10.0).await;
        replica.ask(&id).await;
    }
    for i in 0..5 {
        bench
            .answered(&format!("good-{i}"), Duration::from_secs(20))
            .await;
    }
    // Each failing call had its three attempts, then was parked (its lease
    // set 30 s ahead) instead of holding a slot.
    let deadline = Instant::now() + Duration::from_secs(30);
    while failing.iter().any(|id| bench.calls_of("replica", id) < 3) {
        assert!(Instant::now() < deadline, "every failing call is tried");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    for id in failing.iter().take(5) {
        assert_eq!(bench.calls_of("replica", id), 3, "{id}: bounded attempts");
        let lease = bench.lease_secs(id).await.unwrap();
        assert!(lease > 15.0, "{id} is parked: lease {lease} s ahead");
    }
    assert!(
        replica.progress.check().is_ok(),
        "the executor never stalled"
    );
    replica.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_the_database_refuses_is_replaced_by_the_fallback_and_a_panic_is_contained() {
    let bench = Bench::new().await;
    let replica = bench.start("replica", 3);
    for (id, behaviour) in [
        ("unrecordable", Behaviour::Unrecordable),
        ("panicking", Behaviour::Panic),
        ("after", Behaviour::Answer),
    ] {
        intent(&bench.db.pool, id, 10.0).await;
        bench.set(id, behaviour);
        replica.ask(id).await;
    }
    assert_eq!(
        bench
            .answered("unrecordable", Duration::from_secs(15))
            .await,
        "fallback",
        "the answer PostgreSQL refuses (22021) is recorded as the worker's fallback"
    );
    bench.answered("after", Duration::from_secs(15)).await;
    // The panicking call is given up and parked; the executor goes on.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(bench.answer("panicking").await, None);
    assert!(bench.lease_secs("panicking").await.unwrap() > 15.0);
    assert!(
        !replica.task.is_finished(),
        "a panicking call does not end the executor"
    );
    replica.stop().await;
}
