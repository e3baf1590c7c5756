//! Starting and stopping a worker process: configuration, telemetry,
//! database and migrations, Kafka clients, then the consumer loop, the
//! outbox publisher and republisher, pruning, the external-call executor,
//! the periodic work and the health server, until SIGINT/SIGTERM.
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
use chorus_platform::{Supervisor, redact, shutdown, telemetry};
use rdkafka::consumer::Consumer;
use rdkafka::producer::Producer;
use sqlx::PgPool;
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::apply::Applier;
use crate::calls::{CallExecutor, DeadLetters, REQUEST_QUEUE};
use crate::config::WorkerConfig;
use crate::consumer::{self, LoopContext, LoopSettings, WorkerConsumer};
use crate::emit::Emitter;
use crate::handler::Handler;
use crate::http;
use crate::metrics::Metrics;
use crate::outbox_publisher::OutboxPublisher;
use crate::outbox_republisher::Republisher;
use crate::progress::Progress;
use crate::pruning::Pruner;
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
///
/// The steps: the database and its migrations, the handler, the Kafka
/// clients, the background tasks (each supervised: one ending unasked stops
/// the worker naming it), then the consumer loop until shutdown, then the
/// stop: every task ends, the outbox deliveries are awaited, the producer
/// flushed.
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
    if config.dev {
        chorus_platform::dev_mode::warn_at_start();
    }
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
    let kafka = KafkaClients::connect(&config, handler.topics(), metrics.clone()).await?;
    let loops = Loops::default();
    for progress in loops.all() {
        metrics.watch(progress);
    }
    let listener = tokio::net::TcpListener::bind(config.http_addr)
        .await
        .with_context(|| format!("binding CHORUS_HTTP_ADDR={}", config.http_addr))?;
    tracing::info!(
        addr = %listener.local_addr()?, topics = ?kafka.topics, group = %config.consumer_group,
        group_instance_id = config.group_instance_id.as_deref(),
        "worker started"
    );
    // One registry client: the codec's, for encoding, decoding and readiness.
    let readiness = readiness(&config, &pool, kafka.codec.registry().clone(), &loops);
    let router = http::router(readiness, metrics.clone());

    let (publisher, tracker) = OutboxPublisher::start(kafka.producer.clone(), pool.clone());
    let emitter = Arc::new(Emitter {
        codec: kafka.codec.clone(),
        producer: handler.name(),
    });
    let (calls, call_requests) = mpsc::channel(REQUEST_QUEUE);
    let mut tasks = Supervisor::new();
    let http_shutdown = shutdown.clone();
    tasks.spawn("health server", async move {
        axum::serve(listener, router)
            .with_graceful_shutdown(async move { http_shutdown.cancelled().await })
            .await
            .context("serving health and metrics")
    });
    tasks.spawn(
        "outbox republisher",
        Republisher {
            pool: pool.clone(),
            producer: kafka.producer.clone(),
            metrics: metrics.clone(),
            interval: Duration::from_millis(500),
        }
        .run(shutdown.clone()),
    );
    tasks.spawn(
        "pruning",
        Pruner {
            pool: pool.clone(),
            inbox_retention: config.inbox_retention,
            interval: Duration::from_secs(60),
        }
        .run(shutdown.clone()),
    );
    tasks.spawn(
        "external calls",
        CallExecutor {
            calls: Arc::new(CallsOf(handler.clone())),
            pool: pool.clone(),
            emitter: emitter.clone(),
            publisher: publisher.clone(),
            metrics: metrics.clone(),
            retry: config.retry_policy(),
            max_attempts: config.call_max_attempts,
            dead_letters: DeadLetters {
                producer: kafka.producer.clone(),
                catalogue: kafka.catalogue.clone(),
                consumer_group: config.consumer_group.clone(),
            },
            progress: loops.calls.clone(),
            recorder_progress: loops.answers.clone(),
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

    let consumer_metrics = metrics.clone();
    let applier = Arc::new(Applier {
        handler,
        pool: pool.clone(),
        codec: kafka.codec.clone(),
        emitter: Emitter {
            codec: emitter.codec.clone(),
            producer: emitter.producer,
        },
        producer: kafka.producer.clone(),
        publisher,
        calls,
        metrics,
        consumer_group: config.consumer_group.clone(),
        max_attempts: config.max_attempts,
    });
    // Last, so that it is joined after every holder of a publisher ended.
    tasks.spawn("outbox delivery tracker", async move {
        tracker.drain().await;
        Ok(())
    });
    let settings = LoopSettings {
        max_batch: config.max_batch,
        partition_capacity: 1000,
        retry: config.retry_policy(),
    };
    let replace = {
        let (config, metrics, topics) = (config.clone(), consumer_metrics, kafka.topics.clone());
        move || subscribed_consumer(&config, metrics.clone(), &topics)
    };
    let consuming = consumer::run(
        applier,
        kafka.consumer.clone(),
        replace,
        settings,
        loops.consumer.clone(),
        shutdown.clone(),
    );
    let outcome = run_until_stopped(consuming, &mut tasks, &shutdown).await;
    // However the loop ended, closing the consumer must not commit again.
    kafka.consumer.context().close();
    let stopped = tasks.join(Duration::from_secs(30)).await;
    let flushed = kafka
        .producer
        .flush(Duration::from_secs(10))
        .context("flushing the producer");
    pool.close().await;
    outcome?;
    stopped?;
    flushed?;
    Ok(())
}

/// Runs the consumer loop until `shutdown`, or until it or any task ends on
/// its own (a failure); then asks everything to stop and lets the loop
/// finish its batch and commit its offsets.
async fn run_until_stopped(
    consuming: impl Future<Output = anyhow::Result<()>>,
    tasks: &mut Supervisor,
    shutdown: &CancellationToken,
) -> anyhow::Result<()> {
    let mut consuming = std::pin::pin!(consuming);
    let (failure, consumed) = tokio::select! {
        result = &mut consuming => {
            // Ending with an error says why; ending well before shutdown is
            // a failure of its own.
            let failure = (result.is_ok() && !shutdown.is_cancelled())
                .then(|| anyhow::anyhow!("the consumer loop ended on its own"));
            (failure, Some(result))
        }
        ended = tasks.first_to_end(shutdown) => (ended.map(anyhow::Error::from), None),
    };
    shutdown.cancel();
    let consumed = match consumed {
        Some(result) => result,
        None => consuming.await,
    };
    let consumed = consumed.context("the consumer loop failed");
    match failure {
        Some(failure) => Err(failure),
        None => consumed,
    }
}

/// The worker's Kafka side: its topics (checked to exist), the codec, the
/// producer and the subscribed consumer.
struct KafkaClients {
    topics: Vec<String>,
    catalogue: chorus_avro::TopicCatalogue,
    codec: Arc<Codec>,
    producer: rdkafka::producer::FutureProducer,
    consumer: Arc<WorkerConsumer>,
}

impl KafkaClients {
    async fn connect(
        config: &WorkerConfig,
        topics: &[chorus_avro::Topic],
        metrics: Arc<Metrics>,
    ) -> anyhow::Result<KafkaClients> {
        let catalogue = config.catalogue();
        // Workers never create topics; nor do they start without their ACLs.
        crate::kafka_access::require_kafka_access(config, topics).await?;
        let topics: Vec<String> = topics.iter().map(|&t| catalogue.name(t)).collect();
        let codec = Arc::new(Codec::new(&config.codec_config(), catalogue.clone())?);
        let producer = config
            .kafka
            .producer(Duration::from_secs(30), Duration::from_millis(1))?;
        let consumer = subscribed_consumer(config, metrics, &topics)?;
        Ok(KafkaClients {
            topics,
            catalogue,
            codec,
            producer,
            consumer,
        })
    }
}

/// The beats of the worker's loops (see [`crate::progress`]).
#[derive(Clone)]
struct Loops {
    consumer: Progress,
    calls: Progress,
    answers: Progress,
}

impl Default for Loops {
    fn default() -> Loops {
        let loops = Loops {
            consumer: Progress::new("consumer"),
            calls: Progress::new("external calls"),
            answers: Progress::new("call answer recorder"),
        };
        for progress in loops.all() {
            progress.beat();
        }
        loops
    }
}

impl Loops {
    fn all(&self) -> [&Progress; 3] {
        [&self.consumer, &self.calls, &self.answers]
    }
}

/// `/readyz`: the database, Kafka and the registry answer, and no loop is
/// stalled.
fn readiness(
    config: &WorkerConfig,
    pool: &PgPool,
    registry: Arc<chorus_avro::RegistryClient>,
    loops: &Loops,
) -> Readiness {
    let loops = loops.clone();
    Readiness::new()
        .with_database("database", pool.clone(), "SELECT 1")
        .with_kafka(&config.kafka)
        .with_registry(registry)
        .with("loops", move || {
            let loops = loops.clone();
            async move {
                for progress in loops.all() {
                    progress.check()?;
                }
                Ok(())
            }
        })
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

    fn cause_event_id(call: &Self::Call) -> Option<&str> {
        H::Calls::cause_event_id(call)
    }

    fn fallback(call: &Self::Call, why: crate::handler::Fallback<'_>) -> Option<Self::Answer> {
        H::Calls::fallback(call, why)
    }

    fn settle(
        &self,
        tx: &mut sqlx::PgConnection,
        answers: &[crate::handler::Settling<'_, Self::Call, Self::Answer>],
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

    fn renew(
        &self,
        conn: &mut sqlx::PgConnection,
        calls: &[&Self::Call],
        lease: Duration,
    ) -> impl Future<Output = Result<(), sqlx::Error>> + Send {
        self.0.calls().renew(conn, calls, lease)
    }

    fn release(
        &self,
        conn: &mut sqlx::PgConnection,
        calls: &[&Self::Call],
    ) -> impl Future<Output = Result<(), sqlx::Error>> + Send {
        self.0.calls().release(conn, calls)
    }
}

/// The worker's consumer, subscribed to `topics`.
fn subscribed_consumer(
    config: &WorkerConfig,
    metrics: Arc<Metrics>,
    topics: &[String],
) -> anyhow::Result<Arc<WorkerConsumer>> {
    let consumer = Arc::new(create_consumer(config, metrics)?);
    let topic_refs: Vec<&str> = topics.iter().map(String::as_str).collect();
    consumer.subscribe(&topic_refs).context("subscribing")?;
    Ok(consumer)
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
        // Fetch on demand. An idle loop gets a message as soon as the broker
        // has one (`fetch.min.bytes` 1; an idle partition holds a fetch at
        // most 20 ms). A busy loop is not fetched for while librdkafka still
        // holds messages it has not taken (`queued.min.messages` 1; looked
        // at again every millisecond), so the next fetch brings everything
        // that arrived while the loop applied its batch: one fetch per batch
        // instead of one per message or two, and no wait added when idle.
        .set("fetch.wait.max.ms", "20")
        .set("queued.min.messages", "1")
        .set("fetch.queue.backoff.ms", "1")
        .set("enable.partition.eof", "false")
        .set("partition.assignment.strategy", "cooperative-sticky")
        // Consumer lag per partition comes from librdkafka's statistics.
        .set("statistics.interval.ms", "5000")
        // What librdkafka prefetches per partition, held while one is paused.
        .set("queued.max.messages.kbytes", "8192")
        // A crashed replica's partitions wait this long for it, no more.
        .set(
            "session.timeout.ms",
            config.session_timeout.as_millis().to_string(),
        )
        .set(
            "heartbeat.interval.ms",
            (config.session_timeout.as_millis() / 3).to_string(),
        );
    // Static membership: a replica restarted with the same id takes its
    // partitions back at once, without a rebalance of the group.
    if let Some(id) = &config.group_instance_id {
        client.set("group.instance.id", id);
    }
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
