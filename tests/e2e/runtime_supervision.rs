//! Every task a worker spawns is supervised: one that panics or fails stops
//! the whole worker with an error naming it, never a worker that goes on
//! answering health checks with a part of it dead. Driven through the real
//! runtime (`chorus_runtime::app::serve`) against the real stack, with a
//! handler whose external-call side breaks on purpose.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use chorus_avro::{EventType, Topic};
use chorus_platform::testing::TestDb;
use chorus_runtime::{CallOutcome, Calls, HandleError, Handler, Incoming, Settling, Verdict};
use chorus_tests::Stack;
use sqlx::PgConnection;
use tokio_util::sync::CancellationToken;

/// Where the test's calls break.
#[derive(Clone, Copy, PartialEq)]
enum Breaks {
    /// Looking for intents nobody holds (the call executor's own loop).
    Recovery,
    /// Recording an answer (the answer recorder).
    Recording,
}

struct Breaking {
    breaks: Breaks,
    offered: AtomicBool,
}

impl Calls for Breaking {
    type Call = String;
    type Answer = String;

    fn id(call: &String) -> String {
        call.clone()
    }

    fn span_name(_call: &String) -> &'static str {
        "breaking call"
    }

    fn key(call: &String) -> &str {
        call
    }

    fn traceparent(_call: &String) -> Option<&str> {
        None
    }

    async fn call(&self, call: &String, _attempt: u32) -> CallOutcome<String> {
        CallOutcome::Answered(call.clone())
    }

    async fn settle(
        &self,
        _tx: &mut PgConnection,
        _answers: &[Settling<'_, String, String>],
    ) -> Result<Vec<Verdict<String>>, HandleError> {
        panic!("recording an answer panics");
    }

    async fn unsettled(
        &self,
        _conn: &mut PgConnection,
        _lease: Duration,
        _limit: i64,
    ) -> Result<Vec<String>, sqlx::Error> {
        match self.breaks {
            Breaks::Recovery => panic!("looking for intents panics"),
            Breaks::Recording => Ok(if self.offered.swap(true, Ordering::SeqCst) {
                Vec::new()
            } else {
                vec!["the-call".to_string()]
            }),
        }
    }

    async fn renew(
        &self,
        _conn: &mut PgConnection,
        _calls: &[&String],
        _lease: Duration,
    ) -> Result<(), sqlx::Error> {
        Ok(())
    }

    async fn release(
        &self,
        _conn: &mut PgConnection,
        _calls: &[&String],
    ) -> Result<(), sqlx::Error> {
        Ok(())
    }
}

struct Quiet(Breaking);

impl Handler for Quiet {
    type Calls = Breaking;

    fn name(&self) -> &'static str {
        "quiet"
    }

    fn topics(&self) -> &'static [Topic] {
        &[Topic::InventoryCommands]
    }

    fn handles(&self, _event_type: EventType) -> bool {
        false
    }

    fn calls(&self) -> &Breaking {
        &self.0
    }

    async fn apply(
        &self,
        _tx: &mut PgConnection,
        events: &[Incoming<'_>],
    ) -> Result<Vec<Verdict<String>>, HandleError> {
        Ok(events.iter().map(|_| Verdict::emit(vec![])).collect())
    }
}

static NO_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate::Migrator::DEFAULT;

/// Runs a worker whose calls break so; the error it ended with.
async fn run_until_it_ends(breaks: Breaks) -> String {
    let stack = Stack::get().await;
    let topics = stack.fresh_topics().await;
    let db = TestDb::create(&[chorus_runtime::app::runtime_migrator()]).await;
    let (config, _http) = stack.worker_config("quiet", &topics, &db.url, &[]);
    // Nobody cancels it: the worker must stop by itself.
    let stop = CancellationToken::new();
    let handler = Quiet(Breaking {
        breaks,
        offered: AtomicBool::new(false),
    });
    let serving = chorus_runtime::app::serve(
        config,
        &NO_MIGRATIONS,
        |_| async { Ok(handler) },
        stop.clone(),
    );
    let ended = tokio::time::timeout(Duration::from_secs(60), serving)
        .await
        .expect("a worker with a dead task stops by itself");
    let _keep = Arc::new(db);
    format!(
        "{:#}",
        ended.expect_err("a dead task is never a clean stop")
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_call_executor_stops_the_worker_naming_it() {
    let error = run_until_it_ends(Breaks::Recovery).await;
    assert!(error.contains("external calls"), "{error}");
    assert!(error.contains("panicked"), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_answer_recorder_stops_the_worker_naming_it() {
    let error = run_until_it_ends(Breaks::Recording).await;
    assert!(error.contains("call answer recorder"), "{error}");
    assert!(error.contains("panicked"), "{error}");
}
