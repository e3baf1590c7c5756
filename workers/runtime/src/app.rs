//! Starting and stopping a worker process: configuration, telemetry,
//! database and migrations, Kafka clients, then the consumer loop, the
//! outbox relay, the external-call executor, the periodic work and the
//! health server, until SIGINT/SIGTERM.
//!
//! Exit: after a signal, the loop finishes the batch in hand, commits its
//! offsets, the outbox is flushed, and the process exits 0 ("stopped
//! cleanly"). If any part of the runtime fails or ends on its own, every part
//! is stopped and the process exits 1 saying which part and why; it never
//! reports a clean stop after a failure.

use std::future::Future;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use chorus_avro::Codec;
use chorus_platform::health::Readiness;
use chorus_platform::{redact, shutdown, telemetry};
use rdkafka::consumer::Consumer;
use rdkafka::producer::Producer;
use sqlx::PgPool;
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::apply::Applier;
use crate::calls::{CONCURRENCY, CallExecutor, DeadLetters};
use crate::config::WorkerConfig;
use crate::consumer::{self, LoopContext, LoopSettings, WorkerConsumer};
use crate::delivery::OutboxPublisher;
use crate::emit::Emitter;
use crate::handler::Handler;
use crate::http;
use crate::metrics::Metrics;
use crate::relay::Relay;
use crate::ticks::Ticker;

static RUNTIME_MIGRATOR: Migrator = sqlx::migrate!();

/// The runtime's own migrations (inbox, outbox), for tests that build a
/// worker's database by hand.
pub fn runtime_migrator() -> &'static Migrator {
    &RUNTIME_MIGRATOR
}

/// What a worker's `build` closure gets to construct its handler.
pub struct WorkerContext {
    pub config: WorkerConfig,
    pub pool: PgPool,
    /// For the worker's own metrics.
    pub metrics: Arc<Metrics>,
}

/// Runs a worker process to completion; the whole of a worker's `main`.
pub async fn run_worker<H, F, Fut>(
    name: &'static str,
    default_port: u16,
    migrator: &'static Migrator,
    build: F,
) -> ExitCode
where
    H: Handler,
    F: FnOnce(WorkerContext) -> Fut,
    Fut: Future<Output = anyhow::Result<H>>,
{
    let config = match WorkerConfig::from_env(name, default_port) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("chorus-{name}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let _telemetry = match telemetry::init(name, config.otlp_endpoint.as_deref()) {
        Ok(telemetry) => telemetry,
        Err(e) => {
            eprintln!("chorus-{name}: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    match serve(config, migrator, build, shutdown::on_signal()).await {
        Ok(()) => {
            tracing::info!("stopped cleanly");
            ExitCode::SUCCESS
        }
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "worker failed");
            eprintln!("chorus-{name}: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Runs a worker with `config` until `shutdown` is cancelled (a signal, for
/// a process); `Ok` only for a clean stop. `migrator` holds the worker's own
/// migrations (versions from 1000), `build` makes its handler.
pub async fn serve<H, F, Fut>(
    config: WorkerConfig,
    migrator: &'static Migrator,
    build: F,
    shutdown: CancellationToken,
) -> anyhow::Result<()>
where
    H: Handler,
    F: FnOnce(WorkerContext) -> Fut,
    Fut: Future<Output = anyhow::Result<H>>,
{
    let pool = connect(&config).await?;
    migrate(&pool, migrator).await?;
    let metrics = Arc::new(Metrics::new(&config.name));
    let handler = Arc::new(
        build(WorkerContext {
            config: config.clone(),
            pool: pool.clone(),
            metrics: metrics.clone(),
        })
        .await?,
    );
    let catalogue = config.catalogue();
    let topics: Vec<String> = handler
        .topics()
        .iter()
        .map(|&t| catalogue.name(t))
        .collect();
    require_topics(&config, &catalogue.all_names()).await?;

    let codec = Arc::new(Codec::new(&config.codec_config(), catalogue.clone())?);
    let producer = config
        .kafka
        .producer(Duration::from_secs(30), Duration::from_millis(1))?;
    let consumer = Arc::new(create_consumer(&config, metrics.clone())?);
    let topic_refs: Vec<&str> = topics.iter().map(String::as_str).collect();
    consumer.subscribe(&topic_refs).context("subscribing")?;

    // One registry client: the codec's, for encoding, decoding and readiness.
    let registry = codec.registry().clone();
    let listener = tokio::net::TcpListener::bind(config.http_addr)
        .await
        .with_context(|| format!("binding CHORUS_HTTP_ADDR={}", config.http_addr))?;
    tracing::info!(
        addr = %listener.local_addr()?, topics = ?topics, group = %config.consumer_group,
        "worker started"
    );
    let readiness = Readiness::new()
        .with_database("database", pool.clone(), "SELECT 1")
        .with_kafka(&config.kafka)
        .with_registry(registry);
    let router = http::router(readiness, metrics.clone());

    let (publisher, tracker) = OutboxPublisher::start(producer.clone(), pool.clone());
    let emitter = Arc::new(Emitter {
        codec: codec.clone(),
        producer: handler.name(),
    });
    let (calls, call_requests) = mpsc::channel(CONCURRENCY * 4);
    let mut tasks = Tasks::default();
    let http_shutdown = shutdown.clone();
    tasks.spawn("health server", async move {
        axum::serve(listener, router)
            .with_graceful_shutdown(async move { http_shutdown.cancelled().await })
            .await
            .context("serving health and metrics")
    });
    tasks.spawn(
        "outbox relay",
        Relay {
            pool: pool.clone(),
            producer: producer.clone(),
            metrics: metrics.clone(),
            interval: Duration::from_millis(500),
            inbox_retention: config.inbox_retention,
        }
        .run(shutdown.clone()),
    );
    let handler_calls = Arc::new(CallsOf(handler.clone()));
    tasks.spawn(
        "external calls",
        CallExecutor {
            calls: handler_calls,
            pool: pool.clone(),
            emitter: emitter.clone(),
            publisher: publisher.clone(),
            metrics: metrics.clone(),
            retry: config.retry_policy(),
            follow_ups: calls.clone(),
            dead_letters: DeadLetters {
                producer: producer.clone(),
                catalogue: catalogue.clone(),
                consumer_group: config.consumer_group.clone(),
            },
        }
        .run(call_requests, shutdown.clone()),
    );
    tasks.spawn(
        "periodic work",
        Ticker {
            handler: handler.clone(),
            pool: pool.clone(),
            emitter: emitter.clone(),
            publisher: publisher.clone(),
            metrics: metrics.clone(),
        }
        .run(shutdown.clone()),
    );

    let applier = Arc::new(Applier {
        handler,
        pool: pool.clone(),
        codec,
        emitter: Emitter {
            codec: emitter.codec.clone(),
            producer: emitter.producer,
        },
        producer: producer.clone(),
        publisher,
        calls,
        metrics,
        consumer_group: config.consumer_group.clone(),
        max_attempts: config.max_attempts,
    });
    let settings = LoopSettings {
        max_batch: config.max_batch,
        partition_capacity: 1000,
        retry: config.retry_policy(),
    };
    let consuming = consumer::run(applier, consumer.clone(), settings, shutdown.clone());
    tokio::pin!(consuming);
    // The loop ends at shutdown; any task ending before that is a failure.
    let outcome = tokio::select! {
        result = &mut consuming => result.context("the consumer loop failed"),
        ended = tasks.first_to_end(&shutdown) => match ended {
            Some(failure) => Err(failure),
            None => consuming.await.context("the consumer loop failed"),
        },
    };
    shutdown.cancel();
    let stopped = tasks.join().await;
    // Every holder of the publisher is gone now: deliver what is left.
    tracker.drain().await;
    let flushed = producer
        .flush(Duration::from_secs(10))
        .context("flushing the producer");
    pool.close().await;
    outcome?;
    stopped?;
    flushed?;
    Ok(())
}

/// The handler's external calls, as the executor sees them.
struct CallsOf<H>(Arc<H>);

impl<H: Handler> crate::handler::Calls for CallsOf<H> {
    type Call = <H::Calls as crate::handler::Calls>::Call;
    type Answer = <H::Calls as crate::handler::Calls>::Answer;

    fn id(call: &Self::Call) -> String {
        H::Calls::id(call)
    }

    fn span_name(call: &Self::Call) -> &'static str {
        H::Calls::span_name(call)
    }

    fn key(call: &Self::Call) -> &str {
        H::Calls::key(call)
    }

    fn traceparent(call: &Self::Call) -> Option<&str> {
        H::Calls::traceparent(call)
    }

    fn call(
        &self,
        call: &Self::Call,
        attempt: u32,
    ) -> impl Future<Output = crate::handler::CallOutcome<Self::Answer>> + Send {
        self.0.calls().call(call, attempt)
    }

    fn settle(
        &self,
        tx: &mut sqlx::PgConnection,
        answers: &[(&Self::Call, &Self::Answer)],
    ) -> impl Future<Output = Result<Vec<crate::handler::Verdict<Self::Call>>, crate::HandleError>> + Send
    {
        self.0.calls().settle(tx, answers)
    }

    fn unsettled(
        &self,
        conn: &mut sqlx::PgConnection,
        lease: Duration,
        limit: i64,
    ) -> impl Future<Output = Result<Vec<Self::Call>, sqlx::Error>> + Send {
        self.0.calls().unsettled(conn, lease, limit)
    }
}

/// The runtime's background tasks, each named for the error that ends it.
#[derive(Default)]
struct Tasks {
    handles: Vec<(&'static str, JoinHandle<anyhow::Result<()>>)>,
}

impl Tasks {
    fn spawn(
        &mut self,
        name: &'static str,
        task: impl Future<Output = anyhow::Result<()>> + Send + 'static,
    ) {
        self.handles.push((name, tokio::spawn(task)));
    }

    /// Waits for the first task to end and says how it ended: `None` when it
    /// stopped because `shutdown` asked it to; otherwise the failure (an
    /// error, a panic, or ending before it was asked to).
    async fn first_to_end(&mut self, shutdown: &CancellationToken) -> Option<anyhow::Error> {
        if self.handles.is_empty() {
            return std::future::pending().await;
        }
        let (result, index, _) =
            futures::future::select_all(self.handles.iter_mut().map(|(_, handle)| handle)).await;
        let name = self.handles.remove(index).0;
        match result {
            Ok(Ok(())) if shutdown.is_cancelled() => None,
            Ok(Ok(())) => Some(anyhow::anyhow!("the {name} task ended on its own")),
            Ok(Err(e)) => Some(e.context(format!("the {name} task failed"))),
            Err(e) => Some(anyhow::anyhow!("the {name} task panicked: {e}")),
        }
    }

    /// Waits for every task after shutdown; the first failure, if any.
    async fn join(self) -> anyhow::Result<()> {
        let mut first = Ok(());
        for (name, handle) in self.handles {
            let result = match tokio::time::timeout(Duration::from_secs(30), handle).await {
                Err(_) => Err(anyhow::anyhow!("the {name} task did not stop within 30 s")),
                Ok(Ok(result)) => result.with_context(|| format!("the {name} task failed")),
                Ok(Err(e)) => Err(anyhow::anyhow!("the {name} task panicked: {e}")),
            };
            if first.is_ok() {
                first = result;
            }
        }
        first
    }
}

fn create_consumer(config: &WorkerConfig, metrics: Arc<Metrics>) -> anyhow::Result<WorkerConsumer> {
    let mut client = config.kafka.client_config();
    client
        .set("group.id", &config.consumer_group)
        .set("client.id", format!("chorus-{}", config.name))
        // Offsets are stored by the loop once effects committed, and
        // committed every second, on revoke and at shutdown.
        .set("enable.auto.commit", "true")
        .set("auto.commit.interval.ms", "1000")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        // Low latency over fewer fetch requests: an idle partition does not
        // hold a fetch back longer than this.
        .set("fetch.wait.max.ms", "20")
        .set("enable.partition.eof", "false")
        .set("partition.assignment.strategy", "cooperative-sticky")
        // Consumer lag per partition comes from librdkafka's statistics.
        .set("statistics.interval.ms", "5000")
        // What librdkafka prefetches per partition, held while one is paused.
        .set("queued.max.messages.kbytes", "8192");
    config.kafka.override_with_properties(&mut client);
    client
        .create_with_context(LoopContext::new(metrics))
        .context("creating the Kafka consumer")
}

async fn connect(config: &WorkerConfig) -> anyhow::Result<PgPool> {
    let options: PgConnectOptions = config.database_url.parse().with_context(|| {
        format!(
            "CHORUS_DATABASE_URL={} is not a PostgreSQL URL",
            redact(&config.database_url)
        )
    })?;
    // A statement hung on a lost server fails (and is retried) instead of
    // holding the loop.
    let options = options.options([("statement_timeout", "30000")]);
    PgPoolOptions::new()
        .max_connections(config.db_pool_size)
        .acquire_timeout(Duration::from_secs(10))
        .connect_with(options)
        .await
        .with_context(|| {
            format!(
                "connecting to PostgreSQL at {} (CHORUS_DATABASE_URL)",
                redact(&config.database_url)
            )
        })
}

async fn migrate(pool: &PgPool, migrator: &'static Migrator) -> anyhow::Result<()> {
    // Runtime (versions < 1000) and worker (≥ 1000) migrations share one
    // history table; each ignores the other's versions.
    for (what, source) in [("runtime", &RUNTIME_MIGRATOR), ("worker", migrator)] {
        let mut migrator = Migrator::with_migrations(source.iter().cloned().collect());
        migrator.set_ignore_missing(true);
        migrator
            .run(pool)
            .await
            .with_context(|| format!("{what} migrations"))?;
    }
    Ok(())
}

/// Workers never create topics: a missing one means `chorus topics create`
/// was not run. A refused login stops the worker here, naming the cause.
async fn require_topics(config: &WorkerConfig, names: &[String]) -> anyhow::Result<()> {
    let metadata = config
        .kafka
        .fetch_metadata(None, Duration::from_secs(10))
        .await?;
    let missing: Vec<&String> = names
        .iter()
        .filter(|name| !metadata.topics().iter().any(|t| t.name() == name.as_str()))
        .collect();
    anyhow::ensure!(
        missing.is_empty(),
        "topics missing at {}: {missing:?}; run `chorus topics create`",
        config.kafka.brokers
    );
    Ok(())
}
