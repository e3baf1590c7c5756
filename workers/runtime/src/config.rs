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
    /// Ceiling of the exponential backoff between retries of a transient failure.
    pub max_backoff: Duration,
    /// Messages of one partition applied in one transaction at most.
    pub max_batch: usize,
}

impl WorkerConfig {
    /// Reads the configuration of worker `name` from the environment.
    /// `default_port` is the health/metrics port when `CHORUS_HTTP_ADDR` is unset.
    pub fn from_env(name: &str, default_port: u16) -> Result<WorkerConfig, ConfigError> {
        let env = Env::process();
        let namespace = env.string("CHORUS_TOPIC_NAMESPACE", "chorus")?;
        Ok(WorkerConfig {
            name: name.to_string(),
            kafka: KafkaSettings::from_env(&env)?,
            registry: registry_from_env(&env)?,
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
            max_backoff: env.duration_ms("CHORUS_MAX_BACKOFF_MS", 5_000)?,
            max_batch: env.positive("CHORUS_BATCH_MAX", 32)?,
        })
    }

    pub fn catalogue(&self) -> TopicCatalogue {
        TopicCatalogue::new(self.namespace.clone(), self.partitions)
    }

    pub fn codec_config(&self) -> CodecConfig {
        CodecConfig {
            registry: self.registry.clone(),
            auto_register: self.auto_register_schemas,
            timeout: Duration::from_secs(10),
        }
    }
}
