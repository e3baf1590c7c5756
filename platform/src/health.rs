//! Readiness probes every service shares: whether Kafka, the schema registry
//! and a database answer, each within a time limit.
//!
//! [`Readiness`] runs them at most once per [`CACHE_FOR`] whatever the
//! number of callers (a burst of `/readyz` calls costs one round of probes,
//! and the Kafka probe reuses one client), and answers with `"ok"` or
//! `"unavailable"` per dependency: the cause, which may name hosts, goes to
//! the log, never into the answer.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chorus_avro::RegistryClient;
use rdkafka::consumer::{BaseConsumer, Consumer};
use serde_json::{Map, Value, json};
use sqlx::PgPool;
use tokio::sync::Mutex;

use crate::kafka::KafkaSettings;

/// How long one round of probe results is served before probing again.
pub const CACHE_FOR: Duration = Duration::from_secs(2);
/// How long one probe may take.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// One dependency's answer to a readiness probe: its name, and `Ok` or the problem.
pub type Check = (&'static str, Result<(), String>);

type ProbeFuture = Pin<Box<dyn Future<Output = Result<(), String>> + Send>>;
type Probe = Box<dyn Fn() -> ProbeFuture + Send + Sync>;

/// The readiness of a service: named probes, run together, results cached.
pub struct Readiness {
    probes: Vec<(&'static str, Probe)>,
    last: Mutex<Option<(Instant, Vec<Check>)>>,
}

impl Readiness {
    pub fn new() -> Readiness {
        Readiness {
            probes: Vec::new(),
            last: Mutex::new(None),
        }
    }

    /// Adds a probe; `probe` is called afresh for every round.
    pub fn with<F, Fut>(mut self, name: &'static str, probe: F) -> Readiness
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), String>> + Send + 'static,
    {
        self.probes.push((
            name,
            Box::new(move || Box::pin(within(PROBE_TIMEOUT, probe()))),
        ));
        self
    }

    /// Adds a probe of `pool`'s database answering `sql`.
    pub fn with_database(self, name: &'static str, pool: PgPool, sql: &'static str) -> Readiness {
        self.with(name, move || {
            let pool = pool.clone();
            async move { probe_database(&pool, sql).await }
        })
    }

    /// Adds a probe of the Kafka cluster (through one client kept for it).
    pub fn with_kafka(self, kafka: &KafkaSettings) -> Readiness {
        let probe = Arc::new(KafkaProbe::new(kafka));
        self.with("kafka", move || {
            let probe = probe.clone();
            async move { probe.check(None).await }
        })
    }

    /// Adds a probe of the schema registry.
    pub fn with_registry(self, registry: Arc<RegistryClient>) -> Readiness {
        self.with("schema_registry", move || {
            let registry = registry.clone();
            async move { probe_registry(&registry).await }
        })
    }

    /// Every probe's result, from the cache when it is fresh.
    pub async fn checks(&self) -> Vec<Check> {
        let mut last = self.last.lock().await;
        if let Some((at, checks)) = last.as_ref()
            && at.elapsed() < CACHE_FOR
        {
            return checks.clone();
        }
        let results = futures::future::join_all(self.probes.iter().map(|(_, probe)| probe())).await;
        let checks: Vec<Check> = self
            .probes
            .iter()
            .map(|(name, _)| *name)
            .zip(results)
            .collect();
        for (name, result) in &checks {
            if let Err(problem) = result {
                tracing::warn!(dependency = name, problem, "readiness probe failed");
            }
        }
        *last = Some((Instant::now(), checks.clone()));
        checks
    }

    /// `(ready, {"ready": …, "checks": {name: "ok" | "unavailable"}})`.
    pub async fn answer(&self) -> (bool, Value) {
        let checks = self.checks().await;
        let ready = checks.iter().all(|(_, r)| r.is_ok());
        (ready, json!({ "ready": ready, "checks": report(&checks) }))
    }
}

impl Default for Readiness {
    fn default() -> Self {
        Readiness::new()
    }
}

/// The `checks` object of a readiness answer: `"ok"` or `"unavailable"` per
/// dependency. The problem itself is logged, not shown.
pub fn report(checks: &[Check]) -> Map<String, Value> {
    checks
        .iter()
        .map(|(name, result)| {
            let value = if result.is_ok() { "ok" } else { "unavailable" };
            (name.to_string(), json!(value))
        })
        .collect()
}

/// One Kafka client kept for probing, so probes do not create a client each.
pub struct KafkaProbe {
    kafka: KafkaSettings,
    client: std::sync::Mutex<Option<Arc<BaseConsumer>>>,
}

impl KafkaProbe {
    pub fn new(kafka: &KafkaSettings) -> KafkaProbe {
        KafkaProbe {
            kafka: kafka.clone(),
            client: std::sync::Mutex::new(None),
        }
    }

    fn client(&self) -> Result<Arc<BaseConsumer>, String> {
        let mut client = self.client.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(client) = client.as_ref() {
            return Ok(client.clone());
        }
        let created: BaseConsumer = self
            .kafka
            .client_config()
            .create()
            .map_err(|e| e.to_string())?;
        let created = Arc::new(created);
        *client = Some(created.clone());
        Ok(created)
    }

    /// Whether a broker answers; with `topic`, also whether the topic exists
    /// and has partitions.
    pub async fn check(&self, topic: Option<&str>) -> Result<(), String> {
        let client = self.client()?;
        let brokers = self.kafka.brokers.clone();
        let topic = topic.map(str::to_string);
        tokio::task::spawn_blocking(move || {
            let metadata = client
                .fetch_metadata(topic.as_deref(), PROBE_TIMEOUT)
                .map_err(|e| format!("Kafka at {brokers}: {e}"))?;
            let Some(topic) = topic else {
                return Ok(());
            };
            match metadata.topics().iter().find(|t| t.name() == topic) {
                Some(t) if t.error().is_none() && !t.partitions().is_empty() => Ok(()),
                _ => Err(format!(
                    "topic {topic} is missing at {brokers}; run `chorus topics create`"
                )),
            }
        })
        .await
        .map_err(|e| e.to_string())?
    }
}

/// Whether the database behind `pool` answers `sql` (`"SELECT 1"`, or a query
/// that also proves a table is there).
pub async fn probe_database(pool: &PgPool, sql: &'static str) -> Result<(), String> {
    sqlx::query(sql)
        .execute(pool)
        .await
        .map(drop)
        .map_err(|e| e.to_string())
}

/// Whether the schema registry answers, as a registry: a URL that answers
/// 404 even for the subject list is reported as misrouted, naming the
/// variable to check.
pub async fn probe_registry(registry: &RegistryClient) -> Result<(), String> {
    registry.probe().await.map_err(|e| e.to_string())
}

/// `probe`'s answer, or `"timed out"` when it takes longer than `timeout`.
pub async fn within(
    timeout: Duration,
    probe: impl Future<Output = Result<(), String>>,
) -> Result<(), String> {
    tokio::time::timeout(timeout, probe)
        .await
        .unwrap_or_else(|_| Err("timed out".to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test]
    async fn a_burst_of_calls_probes_once_and_shows_no_cause() {
        let calls = Arc::new(AtomicUsize::new(0));
        let counted = calls.clone();
        let readiness = Readiness::new().with("database", move || {
            counted.fetch_add(1, Ordering::SeqCst);
            async { Err("connection refused at db.internal:5432".to_string()) }
        });
        for _ in 0..1000 {
            let (ready, answer) = readiness.answer().await;
            assert!(!ready);
            assert_eq!(answer["checks"]["database"], "unavailable");
            assert!(!answer.to_string().contains("db.internal"));
        }
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }
}
