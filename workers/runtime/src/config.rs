//! Worker configuration: defaults, then `CHORUS_…` environment variables,
//! validated at start-up. A bad value stops the process naming the variable.

use std::net::SocketAddr;
use std::time::Duration;

use chorus_avro::{CodecConfig, DEFAULT_PARTITIONS, RegistrySettings, TopicCatalogue};
use chorus_platform::{ConfigError, Env, KafkaSettings, dev_mode, registry_from_env};

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
    /// Development mode (`CHORUS_DEV=true`, one switch for every chorus
    /// service): then `http_addr` must be a loopback address.
    pub dev: bool,
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
    /// Attempts in a row an external call answered "not now" gets before it
    /// is given up for now (`CHORUS_CALL_MAX_ATTEMPTS`).
    pub call_max_attempts: u32,
    /// This replica's stable identity in its consumer group (static
    /// membership), kept across restarts so a restarted replica takes its
    /// partitions back at once; `None` for dynamic membership.
    pub group_instance_id: Option<String>,
    /// How long the group waits for a replica that stopped heartbeating
    /// before its partitions go to the others (`CHORUS_KAFKA_SESSION_TIMEOUT_MS`).
    pub session_timeout: Duration,
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
        let http_addr = env.parse(
            "CHORUS_HTTP_ADDR",
            SocketAddr::from(([127, 0, 0, 1], default_port)),
        )?;
        let dev = dev_mode::from_env(env, &[("CHORUS_HTTP_ADDR", http_addr)])?;
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
            http_addr,
            dev,
            otlp_endpoint: env.optional_url("CHORUS_OTLP_ENDPOINT")?,
            max_backoff: env.positive_duration_ms("CHORUS_MAX_BACKOFF_MS", 5_000)?,
            max_attempts: env.positive("CHORUS_MAX_ATTEMPTS", 10)?,
            max_batch: env.positive("CHORUS_BATCH_MAX", 256)?,
            inbox_retention: Duration::from_secs(
                env.positive::<u64>("CHORUS_INBOX_RETENTION_HOURS", 168)? * 3600,
            ),
            call_max_attempts: env.positive("CHORUS_CALL_MAX_ATTEMPTS", 10)?,
            group_instance_id: group_instance_id(env, name, http_addr.port())?,
            session_timeout: session_timeout(env)?,
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

/// The replica's `group.instance.id`: `chorus-<worker>-<CHORUS_INSTANCE_ID>`,
/// the id defaulting to `<host name>-<health port>` (unique on a host, stable
/// across restarts of the same replica; a Kubernetes StatefulSet's pod name
/// is such a host name). `CHORUS_STATIC_MEMBERSHIP=false` turns it off; a
/// health port of 0 without an explicit id has no stable identity, so that
/// replica joins dynamically.
fn group_instance_id(
    env: &Env,
    name: &str,
    health_port: u16,
) -> Result<Option<String>, ConfigError> {
    if !env.parse("CHORUS_STATIC_MEMBERSHIP", true)? {
        return Ok(None);
    }
    let id = match env.optional("CHORUS_INSTANCE_ID") {
        Some(id) => id,
        None => {
            if health_port == 0 {
                return Ok(None);
            }
            format!("{}-{health_port}", host_name())
        }
    };
    let valid = !id.is_empty()
        && id.len() <= 200
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if !valid {
        return Err(ConfigError::new(
            "CHORUS_INSTANCE_ID",
            &id,
            "must be 1-200 characters of letters, digits, '-', '_' or '.'",
        ));
    }
    Ok(Some(format!("chorus-{name}-{id}")))
}

/// Kafka's own default (45 s) would stall the partitions of a replica that
/// never comes back far too long for an order's deadline (a replica restarted
/// at once takes them back at once: static membership). The session must
/// outlast a broker's failover, though: while the group's coordinator moves
/// to another broker (the cluster fences a dead one after its
/// `broker.session.timeout.ms`, 9 s by default, then elects), heartbeats go
/// unanswered, and a session that ends meanwhile makes the replica rejoin,
/// which fences its own in-flight commits. 15 s covers that.
fn session_timeout(env: &Env) -> Result<Duration, ConfigError> {
    let timeout = env.positive_duration_ms("CHORUS_KAFKA_SESSION_TIMEOUT_MS", 15_000)?;
    if timeout < Duration::from_secs(3) {
        return Err(ConfigError::new(
            "CHORUS_KAFKA_SESSION_TIMEOUT_MS",
            &timeout.as_millis().to_string(),
            "must be at least 3000 (heartbeats go every third of it)",
        ));
    }
    Ok(timeout)
}

fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|name| {
            name.trim()
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || c == '-' {
                        c
                    } else {
                        '-'
                    }
                })
                .collect::<String>()
        })
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "host".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(pairs: &[(&str, &str)]) -> Result<WorkerConfig, ConfigError> {
        WorkerConfig::from(&Env::from_pairs(pairs), "payment", 9103)
    }

    #[test]
    fn each_replica_has_a_stable_group_instance_id_by_default() {
        let first = config(&[("CHORUS_HTTP_ADDR", "127.0.0.1:9103")]).unwrap();
        let again = config(&[("CHORUS_HTTP_ADDR", "127.0.0.1:9103")]).unwrap();
        let other = config(&[("CHORUS_HTTP_ADDR", "127.0.0.1:9113")]).unwrap();
        let id = first.group_instance_id.clone().unwrap();
        assert!(
            id.starts_with("chorus-payment-") && id.ends_with("-9103"),
            "{id}"
        );
        assert_eq!(first.group_instance_id, again.group_instance_id);
        assert_ne!(first.group_instance_id, other.group_instance_id);
        assert_eq!(first.session_timeout, Duration::from_secs(15));
    }

    #[test]
    fn an_explicit_id_wins_and_static_membership_can_be_turned_off() {
        let named = config(&[("CHORUS_INSTANCE_ID", "payment-0")]).unwrap();
        assert_eq!(
            named.group_instance_id.as_deref(),
            Some("chorus-payment-payment-0")
        );
        let off = config(&[("CHORUS_STATIC_MEMBERSHIP", "false")]).unwrap();
        assert_eq!(off.group_instance_id, None);
        let ephemeral = config(&[("CHORUS_HTTP_ADDR", "127.0.0.1:0")]).unwrap();
        assert_eq!(ephemeral.group_instance_id, None);
    }

    #[test]
    fn development_mode_keeps_the_health_address_on_loopback() {
        let err =
            config(&[("CHORUS_DEV", "true"), ("CHORUS_HTTP_ADDR", "0.0.0.0:9103")]).unwrap_err();
        assert_eq!(err.variable, "CHORUS_DEV");
        assert!(
            err.problem.contains("CHORUS_HTTP_ADDR=0.0.0.0:9103"),
            "{err}"
        );
        assert!(config(&[("CHORUS_DEV", "true")]).unwrap().dev);
        let deployed = config(&[("CHORUS_HTTP_ADDR", "0.0.0.0:9103")]).unwrap();
        assert!(!deployed.dev);
    }

    #[test]
    fn bad_values_name_their_variable() {
        for (pairs, variable) in [
            (&[("CHORUS_INSTANCE_ID", "a b")][..], "CHORUS_INSTANCE_ID"),
            (
                &[("CHORUS_KAFKA_SESSION_TIMEOUT_MS", "1000")][..],
                "CHORUS_KAFKA_SESSION_TIMEOUT_MS",
            ),
            (
                &[("CHORUS_CALL_MAX_ATTEMPTS", "0")][..],
                "CHORUS_CALL_MAX_ATTEMPTS",
            ),
            (
                &[("CHORUS_STATIC_MEMBERSHIP", "maybe")][..],
                "CHORUS_STATIC_MEMBERSHIP",
            ),
        ] {
            let error = config(pairs).unwrap_err().to_string();
            assert!(error.contains(variable), "{error}");
        }
    }
}
