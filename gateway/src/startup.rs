//! Builds the application from its configuration (databases, migrations,
//! Kafka producer, readiness probes, listeners) and runs it until SIGINT or
//! SIGTERM, then stops taking connections, lets in-flight requests finish
//! and flushes Kafka.
//!
//! Every task the gateway spawns (listeners, order batcher, status poller,
//! key expiry, signal listener) runs under one [`Supervisor`]: if any of
//! them ends before shutdown, fails or panics, the application stops and
//! the run ends with that [`TaskFailure`](chorus_platform::TaskFailure),
//! which names the task (the binary then exits 1). After shutdown the tasks
//! get [`STOP_WITHIN`] to stop.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use chorus_avro::{Codec, RegistryClient, Topic};
use chorus_platform::health::{KafkaProbe, Readiness};
use chorus_platform::{Supervisor, redact};
use sqlx::postgres::PgPoolOptions;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::config::GatewayConfig;
use crate::publish::KafkaPublisher;
use crate::store::Store;
use crate::{AppState, Settings, admin_app, app, public_app, tasks};

/// How long the tasks have, all together, to stop after shutdown: in-flight
/// requests finish (a POST waits at most `CHORUS_PUBLISH_TIMEOUT_MS` for
/// Kafka; long-polls answer at once), then the batcher ends.
pub const STOP_WITHIN: Duration = Duration::from_secs(20);

pub struct Application {
    listener: TcpListener,
    admin_listener: TcpListener,
    state: AppState,
    tasks: Supervisor,
    publisher: Arc<KafkaPublisher>,
}

impl Application {
    /// Connects to the gateway database and migrates it (failing if it is
    /// unreachable), asks Kafka for its metadata once (failing if it refuses
    /// the login, not if it is away), prepares the read-model pools and the
    /// Kafka producer (which connect on first use) and binds the listeners.
    pub async fn build(mut config: GatewayConfig) -> anyhow::Result<Application> {
        if config.dev {
            chorus_platform::dev_mode::warn_at_start();
        }
        crate::limits::fd_limit::fit(
            &mut config.limits,
            crate::limits::fd_limit::reserve(config.db_pool_size),
        )?;
        let gateway_db = PgPoolOptions::new()
            .max_connections(config.db_pool_size)
            .acquire_timeout(Duration::from_secs(5))
            .connect(&config.database_url)
            .await
            .with_context(|| {
                format!(
                    "the gateway database at {} (CHORUS_DATABASE_URL) is unreachable",
                    redact(&config.database_url)
                )
            })?;
        crate::MIGRATOR
            .run(&gateway_db)
            .await
            .context("migrating the gateway database")?;
        let store = Store::new(
            gateway_db,
            Store::lazy_pool(&config.order_db_url, config.db_pool_size)
                .context("CHORUS_ORDER_DB_URL")?,
            Store::lazy_pool(&config.inventory_db_url, config.db_pool_size)
                .context("CHORUS_INVENTORY_DB_URL")?,
        );
        crate::kafka_login::check_at_start_up(&config.kafka, &config.catalogue()).await?;
        let codec = Codec::new(&config.codec_config(), config.catalogue())
            .context("CHORUS_SCHEMA_REGISTRY_URL")?;
        let publisher = Arc::new(KafkaPublisher::new(
            &config.kafka,
            codec,
            config.publish_timeout,
        )?);
        let readiness = readiness(&config, &store)?;
        let (state, tasks) = AppState::new(
            store,
            publisher.clone(),
            readiness,
            &Settings {
                auth: config.auth.clone(),
                rate_limit_per_sec: config.rate_limit_per_sec,
                rate_limit_burst: config.rate_limit_burst,
                payment_tokens: config.payment_tokens.clone(),
                key_expiry: config.key_expiry,
                limits: config.limits.clone(),
            },
        )?;
        let listener = bind(config.http_addr, "CHORUS_HTTP_ADDR").await?;
        let admin_listener = bind(config.admin_addr, "CHORUS_ADMIN_ADDR").await?;
        Ok(Application {
            listener,
            admin_listener,
            state,
            tasks,
            publisher,
        })
    }

    /// The port bound (useful with `CHORUS_HTTP_ADDR=127.0.0.1:0`).
    pub fn port(&self) -> u16 {
        port_of(&self.listener)
    }

    /// The port of `CHORUS_ADMIN_ADDR` (readiness and metrics).
    pub fn admin_port(&self) -> u16 {
        port_of(&self.admin_listener)
    }

    /// Cancel it to stop the application as a signal would.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.state.shutdown_token()
    }

    /// Serves until SIGINT/SIGTERM or the shutdown token (`Ok`), or until
    /// a task fails (that failure); flushes Kafka either way.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        let result = serve(
            self.state,
            self.tasks,
            self.listener,
            Some(self.admin_listener),
        )
        .await;
        let publisher = self.publisher;
        tokio::task::spawn_blocking(move || publisher.flush(Duration::from_secs(5))).await?;
        if result.is_ok() {
            tracing::info!("gateway stopped");
        }
        result
    }
}

/// Serves `state` on `listener` (the public API, and readiness and metrics
/// unless `admin_listener` takes those) with `tasks` (those of
/// [`AppState::new`]) until its shutdown token is cancelled (by SIGINT or
/// SIGTERM too), then lets in-flight requests finish: `Ok` for a clean
/// stop. If a task ends first, fails or panics, everything is stopped and
/// that failure returned (a [`chorus_platform::TaskFailure`] naming it).
pub async fn serve(
    state: AppState,
    mut tasks: Supervisor,
    listener: TcpListener,
    admin_listener: Option<TcpListener>,
) -> anyhow::Result<()> {
    // Nothing returns early once the first task is spawned below.
    let addr = listener.local_addr()?;
    let admin_addr = admin_listener
        .as_ref()
        .map(TcpListener::local_addr)
        .transpose()?;
    let shutdown = state.shutdown_token();
    let signals = shutdown.clone();
    tasks.spawn(tasks::SIGNAL_LISTENER, async move {
        cancel_on_signal(signals).await;
        Ok(())
    });
    tracing::info!(%addr, "gateway listening");
    let api = match admin_listener {
        None => app(state.clone()),
        Some(admin) => {
            if let Some(addr) = admin_addr {
                tracing::info!(%addr, "readiness and metrics listening");
            }
            let router = admin_app(state.clone());
            tasks.spawn(
                tasks::ADMIN_SERVER,
                serve_http(admin, router, &state, shutdown.clone()),
            );
            public_app(state.clone())
        }
    };
    tasks.spawn(
        tasks::HTTP_SERVER,
        serve_http(listener, api, &state, shutdown.clone()),
    );
    // The routers hold the state from here on: when they are gone the
    // batcher sees no more orders coming and ends.
    drop(state);
    let failure = tasks.first_to_end(&shutdown).await;
    if let Some(failure) = &failure {
        tracing::error!(
            error = chorus_platform::error_chain(failure),
            "a task of the gateway failed; stopping"
        );
    }
    shutdown.cancel();
    let stopped = tasks.join(STOP_WITHIN).await;
    match failure {
        Some(failure) => Err(failure.into()),
        None => stopped.map_err(Into::into),
    }
}

/// One listener served within the state's limits until `shutdown`, then drained.
fn serve_http(
    listener: TcpListener,
    router: axum::Router,
    state: &AppState,
    shutdown: CancellationToken,
) -> impl Future<Output = anyhow::Result<()>> + Send + 'static {
    let limits = state.limits().clone();
    let metrics = state.connection_metrics();
    async move {
        let addr = listener.local_addr()?;
        crate::limits::server::serve(listener, router, &limits, metrics, shutdown)
            .await
            .with_context(|| format!("serving HTTP on {addr}"))
    }
}

/// Probes of Kafka (the orders topic exists), the schema registry and each
/// database, run at most once per [`chorus_platform::health::CACHE_FOR`].
fn readiness(config: &GatewayConfig, store: &Store) -> anyhow::Result<Readiness> {
    let kafka = Arc::new(KafkaProbe::new(&config.kafka));
    let orders = config.catalogue().name(Topic::Orders);
    let registry = Arc::new(
        RegistryClient::new(&config.registry, Duration::from_secs(2))
            .context("CHORUS_SCHEMA_REGISTRY_URL")?,
    );
    let readiness = Readiness::new()
        .with("kafka", move || {
            let (kafka, orders) = (kafka.clone(), orders.clone());
            async move { kafka.check(Some(&orders)).await }
        })
        .with_registry(registry);
    Ok(store.with_probes(readiness))
}

async fn bind(addr: SocketAddr, variable: &str) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding {variable}={addr}"))
}

fn port_of(listener: &TcpListener) -> u16 {
    listener.local_addr().map(|a| a.port()).unwrap_or_default()
}

async fn cancel_on_signal(shutdown: CancellationToken) {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = interrupt => tracing::info!("SIGINT: shutting down"),
        () = terminate => tracing::info!("SIGTERM: shutting down"),
        () = shutdown.cancelled() => {}
    }
    shutdown.cancel();
}
