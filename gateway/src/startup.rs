//! Builds the application from its configuration (databases, migrations,
//! Kafka producer, listener) and runs it until SIGINT or SIGTERM, then stops
//! taking connections, lets in-flight requests finish and flushes Kafka.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use chorus_avro::Codec;
use chorus_platform::redact;
use sqlx::postgres::PgPoolOptions;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::config::GatewayConfig;
use crate::publish::KafkaPublisher;
use crate::store::Store;
use crate::{AppState, Settings, app};

pub struct Application {
    listener: TcpListener,
    state: AppState,
    publisher: Arc<KafkaPublisher>,
}

impl Application {
    /// Connects to the gateway database and migrates it (failing if it is
    /// unreachable), prepares the read-model pools and the Kafka producer
    /// (which connect on first use) and binds the listener.
    pub async fn build(config: GatewayConfig) -> anyhow::Result<Application> {
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
        let codec = Codec::new(&config.codec_config(), config.catalogue())
            .context("CHORUS_SCHEMA_REGISTRY_URL")?;
        let publisher = Arc::new(KafkaPublisher::new(
            &config.kafka,
            codec,
            &config.registry,
            config.publish_timeout,
        )?);
        let state = AppState::new(
            store,
            publisher.clone(),
            &Settings {
                auth: config.auth.clone(),
                rate_limit_per_sec: config.rate_limit_per_sec,
                rate_limit_burst: config.rate_limit_burst,
            },
        )?;
        let listener = TcpListener::bind(config.http_addr)
            .await
            .with_context(|| format!("binding CHORUS_HTTP_ADDR={}", config.http_addr))?;
        Ok(Application {
            listener,
            state,
            publisher,
        })
    }

    /// The port bound (useful with `CHORUS_HTTP_ADDR=127.0.0.1:0`).
    pub fn port(&self) -> u16 {
        self.listener
            .local_addr()
            .map(|a| a.port())
            .unwrap_or_default()
    }

    /// Cancel it to stop the application as a signal would.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.state.shutdown_token()
    }

    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        let shutdown = self.state.shutdown_token();
        tokio::spawn(cancel_on_signal(shutdown.clone()));
        tracing::info!(addr = %self.listener.local_addr()?, "gateway listening");
        axum::serve(self.listener, app(self.state))
            .with_graceful_shutdown(async move { shutdown.cancelled().await })
            .await
            .context("serving HTTP")?;
        let publisher = self.publisher;
        tokio::task::spawn_blocking(move || publisher.flush(Duration::from_secs(5))).await?;
        tracing::info!("gateway stopped");
        Ok(())
    }
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
