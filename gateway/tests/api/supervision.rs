//! Every task of the gateway is supervised: when one dies the run ends with
//! an error naming it (and the binary exits 1), instead of the process
//! serving on without it. Each kind of task is made to die for real here,
//! in the whole application served on a real listener: the order batcher
//! panics inside a publisher, the status poller and the key expiry find
//! their database pool closed. Needs PostgreSQL.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use chorus_avro::Event;
use chorus_gateway::publish::{PublishError, Publisher};
use chorus_gateway::request_span::TraceHeaders;
use chorus_gateway::{AppState, Settings, serve, tasks};
use chorus_platform::TaskFailure;
use chorus_platform::health::Readiness;
use reqwest::StatusCode;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::helpers::{TestDbs, customer, order_body, settings};

/// A publisher whose code panics, as a bug in the batch's path would.
struct PanickingPublisher;

impl Publisher for PanickingPublisher {
    fn publish<'a>(
        &'a self,
        _event: &'a Event,
        _trace: &'a TraceHeaders,
    ) -> Pin<Box<dyn Future<Output = Result<(), PublishError>> + Send + 'a>> {
        Box::pin(async { panic!("the producer's state is corrupt") })
    }
}

/// The application served on a random port: its address and its run.
async fn run(
    dbs: &TestDbs,
    publisher: Arc<dyn Publisher>,
    settings: &Settings,
) -> (String, JoinHandle<anyhow::Result<()>>) {
    crate::spans::init();
    let (state, tasks) = AppState::new(dbs.store(), publisher, Readiness::new(), settings)
        .expect("the application state");
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    (base, tokio::spawn(serve(state, tasks, listener, None)))
}

/// How the run ended: it must end, with a task's failure.
async fn failure_of(run: JoinHandle<anyhow::Result<()>>) -> anyhow::Error {
    let ended = tokio::time::timeout(Duration::from_secs(30), run)
        .await
        .expect("the run ends when a task dies")
        .expect("the run itself does not panic");
    ended.expect_err("a dead task is not a clean stop")
}

fn task_of(error: &anyhow::Error) -> &TaskFailure {
    error
        .downcast_ref::<TaskFailure>()
        .unwrap_or_else(|| panic!("not a task's failure: {error:#}"))
}

fn closed_pool(failure: &TaskFailure) -> bool {
    matches!(
        failure,
        TaskFailure::Failed { error, .. }
            if matches!(error.downcast_ref::<sqlx::Error>(), Some(sqlx::Error::PoolClosed))
    )
}

#[tokio::test]
async fn a_panicking_order_batcher_stops_the_gateway_naming_it() {
    let dbs = TestDbs::create().await;
    let (base, run) = run(&dbs, Arc::new(PanickingPublisher), &settings(1000, 1000)).await;
    let response = reqwest::Client::new()
        .post(format!("{base}/v1/orders"))
        .bearer_auth(customer("alice"))
        .header("idempotency-key", "k-1")
        .json(&order_body())
        .send()
        .await
        .unwrap();
    // The POST in the batch is not left hanging: the batcher is gone.
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);

    let error = failure_of(run).await;
    match task_of(&error) {
        TaskFailure::Panicked { task, message } => {
            assert_eq!(*task, tasks::ORDER_BATCHER);
            assert_eq!(message, "the producer's state is corrupt");
        }
        other => panic!("not the batcher's panic: {other:?}"),
    }
    assert!(format!("{error:#}").contains("order batcher"), "{error:#}");
}

#[tokio::test]
async fn a_status_poller_that_cannot_read_stops_the_gateway_naming_it() {
    let dbs = TestDbs::create().await;
    let order_id = uuid::Uuid::new_v4().to_string();
    sqlx::query(
        "INSERT INTO orders (order_id, customer_id, currency, items, status) \
         VALUES ($1, 'alice', 'EUR', '[{\"sku\":\"SKU-1\",\"quantity\":2}]', 'PENDING')",
    )
    .bind(&order_id)
    .execute(&dbs.order.pool)
    .await
    .unwrap();
    let (base, run) = run(
        &dbs,
        Arc::new(chorus_gateway::testing::MemoryPublisher::default()),
        &settings(1000, 1000),
    )
    .await;
    // A long-poll puts the poller to work on the order…
    let waiting = tokio::spawn(
        reqwest::Client::new()
            .get(format!("{base}/v1/orders/{order_id}?wait=20&seen=PENDING"))
            .bearer_auth(customer("alice"))
            .send(),
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    // …then the order database's pool closes under it, never to reopen.
    dbs.order.pool.close().await;

    let error = failure_of(run).await;
    let failure = task_of(&error);
    assert_eq!(failure.task(), tasks::STATUS_POLLER, "{error:#}");
    assert!(closed_pool(failure), "{error:#}");
    // The waiting client is answered at shutdown, not at its deadline.
    let answered = tokio::time::timeout(Duration::from_secs(5), waiting).await;
    assert!(answered.is_ok(), "the long-poll still hangs");
}

#[tokio::test]
async fn a_key_expiry_that_cannot_delete_stops_the_gateway_naming_it() {
    let dbs = TestDbs::create().await;
    let mut settings = settings(1000, 1000);
    settings.key_expiry.every = Duration::from_millis(50);
    let (_, run) = run(
        &dbs,
        Arc::new(chorus_gateway::testing::MemoryPublisher::default()),
        &settings,
    )
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !run.is_finished(),
        "the gateway runs while it can expire keys"
    );
    dbs.gateway.pool.close().await;

    let error = failure_of(run).await;
    let failure = task_of(&error);
    assert_eq!(failure.task(), tasks::KEY_EXPIRY, "{error:#}");
    assert!(closed_pool(failure), "{error:#}");
}

#[tokio::test]
async fn a_shutdown_stops_every_task_cleanly() {
    let dbs = TestDbs::create().await;
    crate::spans::init();
    let (state, tasks) = AppState::new(
        dbs.store(),
        Arc::new(chorus_gateway::testing::MemoryPublisher::default()),
        Readiness::new(),
        &settings(1000, 1000),
    )
    .unwrap();
    let shutdown = state.shutdown_token();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let admin = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let run = tokio::spawn(serve(state, tasks, listener, Some(admin)));
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!run.is_finished());
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(10), run)
        .await
        .expect("stopped within 10 s")
        .unwrap()
        .expect("a clean stop");
}
