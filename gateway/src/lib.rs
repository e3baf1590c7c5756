//! The chorus gateway: the HTTP face of the order saga. Storefronts place
//! orders (answered 202 once `OrderPlaced` is durable in Kafka) and read their
//! status from the order service's read model; admins set stock and prices.

pub mod auth;
pub mod config;
pub mod error;
pub mod extract;
pub mod group_commit;
pub mod kafka_login;
pub mod key_expiry;
pub mod known_orders;
pub mod limits;
pub mod metrics;
pub mod open_order_cap;
pub mod publish;
pub mod rate_limit;
pub mod request_span;
pub mod routes;
pub mod status_watch;
pub mod store;
/// Test support (an in-memory publisher), for dev-dependencies only.
#[cfg(feature = "testing")]
pub mod testing;
pub mod validate;

mod startup;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use chorus_platform::Supervisor;
use chorus_platform::health::Readiness;
use chorus_platform::payment_token::PaymentTokenKeys;
use tokio_util::sync::CancellationToken;
use tower_http::trace::TraceLayer;

pub use config::GatewayConfig;

/// The gateway database's migrations (its idempotency records).
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!();

pub use startup::{Application, serve};

/// The names of the gateway's supervised tasks, as failures name them.
pub mod tasks {
    pub const ORDER_BATCHER: &str = "order batcher";
    pub const STATUS_POLLER: &str = "status poller";
    pub const KEY_EXPIRY: &str = "idempotency-key expiry";
    pub const HTTP_SERVER: &str = "HTTP server";
    pub const ADMIN_SERVER: &str = "admin server";
    pub const SIGNAL_LISTENER: &str = "signal listener";
}

use auth::{AuthSettings, TokenVerifier};
use error::BODY_LIMIT_BYTES;
use group_commit::GroupCommit;
use key_expiry::KeyExpiry;
use limits::{EdgeGuard, Limits};
use metrics::Metrics;
use publish::Publisher;
use rate_limit::RateLimiter;
use routes::Surface;
use status_watch::StatusWatch;
use store::Store;

/// What every handler shares. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    publisher: Arc<dyn Publisher>,
    /// Where POSTs hand their orders (group commit).
    orders: GroupCommit,
    readiness: Readiness,
    tokens: TokenVerifier,
    rate_limiter: RateLimiter,
    metrics: Metrics,
    status_watch: Arc<StatusWatch>,
    /// The limits, and the per-request ones' state (address rates, requests
    /// in flight, long-polls).
    limits: Limits,
    edge: EdgeGuard,
    /// Cancelled at shutdown: long-polls answer at once.
    shutdown: CancellationToken,
}

/// The knobs of [`AppState`] that do not connect to anything.
#[derive(Debug, Clone)]
pub struct Settings {
    pub auth: AuthSettings,
    pub rate_limit_per_sec: u32,
    pub rate_limit_burst: u32,
    /// Seals payment tokens; `None` sends them in plaintext (development only).
    pub payment_tokens: Option<Arc<PaymentTokenKeys>>,
    /// How long idempotency keys are kept (`CHORUS_IDEMPOTENCY_WINDOW_HOURS`).
    pub key_expiry: KeyExpiry,
    /// Connection, request, long-poll and open-order limits (`CHORUS_GATEWAY_…`).
    pub limits: Limits,
}

impl AppState {
    /// `readiness` holds the probes of every dependency (see
    /// [`Store::with_probes`]). Starts the state's tasks (the order batcher,
    /// the status poller, the key expiry), so it must run within a Tokio
    /// runtime; they run under the returned supervisor, whose owner stops
    /// the process when one of them fails (see [`serve`]). They
    /// stop at shutdown (the batcher once every clone of the state is gone).
    pub fn new(
        store: Store,
        publisher: Arc<dyn Publisher>,
        readiness: Readiness,
        settings: &Settings,
    ) -> anyhow::Result<(AppState, Supervisor)> {
        let metrics = Metrics::new();
        let shutdown = CancellationToken::new();
        let mut tasks = Supervisor::new();
        let (orders, batcher) = GroupCommit::new(
            store.clone(),
            publisher.clone(),
            settings.payment_tokens.clone(),
            metrics.batch_metrics(),
            settings.limits.open_orders_per_customer,
        );
        tasks.spawn(tasks::ORDER_BATCHER, batcher);
        let status_watch = Arc::new(StatusWatch::default());
        tasks.spawn(
            tasks::STATUS_POLLER,
            status_watch::poll(status_watch.clone(), store.clone(), shutdown.clone()),
        );
        tasks.spawn(
            tasks::KEY_EXPIRY,
            settings.key_expiry.run(store.clone(), shutdown.clone()),
        );
        let state = AppState {
            inner: Arc::new(Inner {
                store,
                publisher,
                orders,
                readiness,
                tokens: TokenVerifier::new(&settings.auth)?,
                rate_limiter: RateLimiter::new(
                    settings.rate_limit_per_sec,
                    settings.rate_limit_burst,
                ),
                metrics,
                status_watch,
                limits: settings.limits.clone(),
                edge: EdgeGuard::new(&settings.limits),
                shutdown,
            }),
        };
        Ok((state, tasks))
    }

    /// Cancel it to make long-polls answer now (graceful shutdown).
    pub fn shutdown_token(&self) -> CancellationToken {
        self.inner.shutdown.clone()
    }

    pub fn limits(&self) -> &Limits {
        &self.inner.limits
    }

    /// The connection metrics the server moves.
    pub fn connection_metrics(&self) -> metrics::ConnectionMetrics {
        self.inner.metrics.connection_metrics()
    }
}

/// Every route on one address; tests drive it with `tower::ServiceExt::oneshot`.
pub fn app(state: AppState) -> Router {
    router(state, |_| true)
}

/// The public API alone, for when operators' routes have an address of their own.
pub fn public_app(state: AppState) -> Router {
    router(state, |surface| surface != Surface::Admin)
}

/// Readiness, metrics and liveness, on `CHORUS_ADMIN_ADDR`.
pub fn admin_app(state: AppState) -> Router {
    router(state, |surface| surface != Surface::Api)
}

fn router(state: AppState, serve: impl Fn(Surface) -> bool) -> Router {
    let mut router = Router::new();
    for route in routes::table() {
        if serve(route.surface) {
            router = router.route(route.path, route.handler);
        }
    }
    router
        .method_not_allowed_fallback(routes::method_not_allowed)
        .fallback(routes::not_found)
        .layer(DefaultBodyLimit::max(BODY_LIMIT_BYTES))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            limits::requests::limit_requests,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            metrics::track,
        ))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(request_span::make_span)
                .on_response(request_span::record_status),
        )
        .with_state(state)
}
