//! Worker configuration: defaults, then `CHORUS_…` environment variables,
//! validated at start-up. A bad value stops the process naming the variable.

use std::net::SocketAddr;
use std::time::Duration;

use chorus_avro::{CodecConfig, DEFAULT_PARTITIONS, RegistrySettings, TopicCatalogue};
use chorus_platform::{ConfigError, Env, KafkaSettings, registry_from_env};

/// Everything a worker process needs to connect and run.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    pub name: String,
    pub kafka: KafkaSettings,
    pub registry: RegistrySettings,
    pub auto_register_schemas: bool,
    pub database_url: String,
    pub db_pool_size: u32,
    pub namespace: String,
    pub partitions: i32,
    pub consumer_group: String,
    pub http_addr: SocketAddr,
    pub otlp_endpoint: Option<String>,
    /// Ceiling of the exponential backoff between retries of a failed message
    /// or external call (`CHORUS_MAX_BACKOFF_MS`).
    pub max_backoff: Duration,
    /// Attempts an unknown failure gets before its message is dead-lettered
    /// with class `exhausted` (`CHORUS_MAX_ATTEMPTS`).
    pub max_attempts: u32,
    /// Messages applied in one transaction at most (`CHORUS_BATCH_MAX`).
    pub max_batch: usize,
    /// How long inbox rows are kept, i.e. the dedup window
    /// (`CHORUS_INBOX_RETENTION_HOURS`).
    pub inbox_retention: Duration,
}

impl WorkerConfig {
    /// Reads the configuration of worker `name` from the environment.
    /// `default_port` is the health/metrics port when `CHORUS_HTTP_ADDR` is unset.
    pub fn from_env(name: &str, default_port: u16) -> Result<WorkerConfig, ConfigError> {
        WorkerConfig::from(&Env::process(), name, default_port)
    }

    /// As [`WorkerConfig::from_env`], from `env`.
    pub fn from(env: &Env, name: &str, default_port: u16) -> Result<WorkerConfig, ConfigError> {
        let namespace = env.string("CHORUS_TOPIC_NAMESPACE", "chorus")?;
        Ok(WorkerConfig {
            name: name.to_string(),
            kafka: KafkaSettings::from_env(env)?,
            registry: registry_from_env(env)?,
            auto_register_schemas: env.parse("CHORUS_AUTO_REGISTER_SCHEMAS", false)?,
            database_url: env.string(
                "CHORUS_DATABASE_URL",
                &format!("postgres://chorus_{name}:chorus_{name}@127.0.0.1:55432/chorus_{name}"),
            )?,
            db_pool_size: env.parse("CHORUS_DB_POOL_SIZE", 8)?,
            partitions: env.parse("CHORUS_TOPIC_PARTITIONS", DEFAULT_PARTITIONS)?,
            consumer_group: env.string("CHORUS_CONSUMER_GROUP", &format!("{namespace}.{name}"))?,
            namespace,
            http_addr: env.parse(
                "CHORUS_HTTP_ADDR",
                SocketAddr::from(([127, 0, 0, 1], default_port)),
            )?,
            otlp_endpoint: env.optional_url("CHORUS_OTLP_ENDPOINT")?,
            max_backoff: env.positive_duration_ms("CHORUS_MAX_BACKOFF_MS", 5_000)?,
            max_attempts: env.positive("CHORUS_MAX_ATTEMPTS", 10)?,
            max_batch: env.positive("CHORUS_BATCH_MAX", 256)?,
            inbox_retention: Duration::from_secs(
                env.positive::<u64>("CHORUS_INBOX_RETENTION_HOURS", 168)? * 3600,
            ),
        })
    }

    pub fn catalogue(&self) -> TopicCatalogue {
        TopicCatalogue::new(self.namespace.clone(), self.partitions)
    }

    /// The backoff of retried messages and external calls.
    pub fn retry_policy(&self) -> crate::retry::RetryPolicy {
        crate::retry::RetryPolicy {
            max_attempts: self.max_attempts,
            first_backoff: Duration::from_millis(50).min(self.max_backoff),
            max_backoff: self.max_backoff,
        }
    }

    pub fn codec_config(&self) -> CodecConfig {
        CodecConfig {
            registry: self.registry.clone(),
            auto_register: self.auto_register_schemas,
            timeout: Duration::from_secs(10),
        }
    }
}
