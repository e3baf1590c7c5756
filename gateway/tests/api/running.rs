//! The whole gateway application (`Application::build` from `CHORUS_…`
//! variables, real listeners on random ports), for tests of what only the
//! assembled process shows: its listeners, its probes, its real publisher.

use std::time::Duration;

use chorus_gateway::{Application, GatewayConfig};
use chorus_platform::Env;
use serde_json::Value;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::helpers::{HOW_TO_START, PAYMENT_TOKEN_KEY, SECRET, TestResponse};

pub fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_string())
}

pub fn brokers() -> String {
    env_or("CHORUS_KAFKA_BROKERS", "127.0.0.1:9092")
}

/// The local stack's schema registry, checked reachable (or the test fails
/// saying how to start it).
pub async fn registry_url() -> String {
    let url = env_or(
        "CHORUS_SCHEMA_REGISTRY_URL",
        "http://127.0.0.1:8081/apis/ccompat/v7",
    );
    let client = chorus_avro::RegistryClient::new(
        &chorus_avro::RegistrySettings::new(url.clone()),
        Duration::from_secs(5),
    )
    .unwrap();
    if let Err(e) = client.subjects().await {
        panic!("Schema registry unreachable at {url}: {HOW_TO_START} ({e})");
    }
    url
}

pub struct RunningGateway {
    pub base: String,
    /// Where readiness and metrics are served (`CHORUS_ADMIN_ADDR`).
    pub admin: String,
    pub namespace: String,
    http: reqwest::Client,
    shutdown: CancellationToken,
    server: JoinHandle<anyhow::Result<()>>,
}

impl RunningGateway {
    /// Builds and runs the application from `pairs`, on top of defaults for
    /// a test: random ports, the test secret, a topic namespace of its own,
    /// the local Kafka and registry.
    pub async fn start(pairs: &[(&str, &str)]) -> RunningGateway {
        // As the binary's main does, so requests carry trace context.
        crate::spans::init();
        let namespace = format!("gw{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
        let (brokers, registry) = (
            brokers(),
            env_or(
                "CHORUS_SCHEMA_REGISTRY_URL",
                "http://127.0.0.1:8081/apis/ccompat/v7",
            ),
        );
        let defaults = [
            ("CHORUS_HTTP_ADDR", "127.0.0.1:0"),
            ("CHORUS_ADMIN_ADDR", "127.0.0.1:0"),
            ("CHORUS_JWT_SECRET", SECRET),
            ("CHORUS_PAYMENT_TOKEN_KEY", PAYMENT_TOKEN_KEY),
            ("CHORUS_TOPIC_NAMESPACE", namespace.as_str()),
            ("CHORUS_TOPIC_PARTITIONS", "2"),
            ("CHORUS_KAFKA_BROKERS", brokers.as_str()),
            ("CHORUS_SCHEMA_REGISTRY_URL", registry.as_str()),
        ];
        // The first pair of a name wins: the test's own come first.
        let all: Vec<(&str, &str)> = pairs.iter().chain(defaults.iter()).copied().collect();
        let config = GatewayConfig::from_env(&Env::from_pairs(&all)).expect("the configuration");
        let application = Application::build(config)
            .await
            .expect("building the gateway");
        let base = format!("http://127.0.0.1:{}", application.port());
        let admin = format!("http://127.0.0.1:{}", application.admin_port());
        let shutdown = application.shutdown_token();
        let server = tokio::spawn(application.run_until_stopped());
        RunningGateway {
            base,
            admin,
            namespace,
            http: reqwest::Client::new(),
            shutdown,
            server,
        }
    }

    async fn answer(response: reqwest::Response) -> TestResponse {
        let status = axum::http::StatusCode::from_u16(response.status().as_u16()).unwrap();
        let headers = response.headers().clone();
        let text = response.text().await.unwrap();
        TestResponse {
            status,
            headers,
            text,
        }
    }

    pub async fn get_at(&self, base: &str, path: &str) -> TestResponse {
        Self::answer(self.http.get(format!("{base}{path}")).send().await.unwrap()).await
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> TestResponse {
        let mut request = self.http.get(format!("{}{path}", self.base));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        Self::answer(request.send().await.unwrap()).await
    }

    pub async fn put(&self, path: &str, token: &str, body: &Value) -> TestResponse {
        let request = self
            .http
            .put(format!("{}{path}", self.base))
            .bearer_auth(token)
            .json(body);
        Self::answer(request.send().await.unwrap()).await
    }

    pub async fn post_order(&self, token: &str, key: &str, body: &Value) -> TestResponse {
        let request = self
            .http
            .post(format!("{}/v1/orders", self.base))
            .bearer_auth(token)
            .header("idempotency-key", key)
            .json(body);
        Self::answer(request.send().await.unwrap()).await
    }

    /// Stops it as SIGTERM would, and waits for a clean stop.
    pub async fn stop(self) {
        self.shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(15), self.server)
            .await
            .expect("the gateway stops on shutdown")
            .unwrap()
            .expect("a clean stop");
    }
}
