//! Starting and stopping a worker process: configuration, telemetry,
//! database and migrations, Kafka clients, the consumer loop, the outbox
//! relay and the health server, until SIGINT/SIGTERM.

use std::future::Future;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use chorus_avro::{Codec, RegistryClient};
use chorus_platform::health::Readiness;
use chorus_platform::{redact, shutdown, telemetry};
use rdkafka::consumer::Consumer;
use rdkafka::producer::Producer;
use sqlx::PgPool;
use sqlx::migrate::Migrator;
use sqlx::postgres::PgPoolOptions;

use crate::config::WorkerConfig;
use crate::consumer::{self, LaneSettings, RebalanceContext, WorkerConsumer};
use crate::delivery::OutboxPublisher;
use crate::handler::Handler;
use crate::metrics::Metrics;
use crate::process::Processor;
use crate::{http, relay};

static RUNTIME_MIGRATOR: Migrator = sqlx::migrate!();

/// What a worker's `build` closure gets to construct its handler.
pub struct WorkerContext {
    pub config: WorkerConfig,
    pub pool: PgPool,
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
    match run(config, migrator, build).await {
        Ok(()) => {
            tracing::info!("stopped cleanly");
            ExitCode::SUCCESS
        }
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "worker failed");
            ExitCode::FAILURE
        }
    }
}

async fn run<H, F, Fut>(
    config: WorkerConfig,
    migrator: &'static Migrator,
    build: F,
) -> anyhow::Result<()>
where
    H: Handler,
    F: FnOnce(WorkerContext) -> Fut,
    Fut: Future<Output = anyhow::Result<H>>,
{
    let shutdown = shutdown::on_signal();
    let pool = connect(&config).await?;
    migrate(&pool, migrator).await?;
    let handler = Arc::new(
        build(WorkerContext {
            config: config.clone(),
            pool: pool.clone(),
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
        .producer(Duration::from_secs(30), Duration::from_millis(2))?;
    let consumer: Arc<WorkerConsumer> = Arc::new(
        config
            .kafka
            .client_config()
            .set("group.id", &config.consumer_group)
            .set("client.id", format!("chorus-{}", config.name))
            .set("enable.auto.commit", "true")
            .set("auto.commit.interval.ms", "1000")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "earliest")
            // Low latency over fewer fetch requests: an idle partition does not
            // hold a fetch back longer than this.
            .set("fetch.wait.max.ms", "50")
            .set("enable.partition.eof", "false")
            .set("partition.assignment.strategy", "cooperative-sticky")
            .create_with_context(RebalanceContext)
            .context("creating the Kafka consumer")?,
    );
    let topic_refs: Vec<&str> = topics.iter().map(String::as_str).collect();
    consumer.subscribe(&topic_refs).context("subscribing")?;

    let metrics = Arc::new(Metrics::new(&config.name));
    let registry = Arc::new(RegistryClient::new(
        &config.registry,
        Duration::from_secs(2),
    )?);
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
    let http_shutdown = shutdown.clone();
    let router = http::router(readiness, metrics.clone());
    let http = tokio::spawn(async move {
        axum::serve(listener, router)
            .with_graceful_shutdown(async move { http_shutdown.cancelled().await })
            .await
    });
    let relay = tokio::spawn(relay::run(
        pool.clone(),
        producer.clone(),
        metrics.clone(),
        Duration::from_millis(500),
        shutdown.clone(),
    ));

    let (publisher, tracker) = OutboxPublisher::start(producer.clone(), pool.clone());
    let processor = Arc::new(Processor {
        handler,
        pool: pool.clone(),
        codec,
        producer: producer.clone(),
        publisher,
        metrics,
    });
    let lanes = LaneSettings {
        max_batch: config.max_batch,
        max_backoff: config.max_backoff,
    };
    consumer::run(processor, consumer, lanes, shutdown.clone()).await;

    shutdown.cancel();
    // The processor (and with it the publisher) is gone: deliver what is left.
    tracker.drain().await;
    let _ = relay.await;
    producer
        .flush(Duration::from_secs(10))
        .context("flushing the producer")?;
    http.await?.context("health server")?;
    pool.close().await;
    Ok(())
}

async fn connect(config: &WorkerConfig) -> anyhow::Result<PgPool> {
    PgPoolOptions::new()
        .max_connections(config.db_pool_size)
        .acquire_timeout(Duration::from_secs(10))
        .connect(&config.database_url)
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

/// Workers never create topics: a missing one means `chorus topics create` was not run.
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
