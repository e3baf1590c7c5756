//! Kafka client settings in one place, for every service and CLI verb:
//! where the brokers are and how to authenticate to them (`CHORUS_KAFKA_…`).
//! Producers are idempotent with `acks=all`, so a retried send never
//! duplicates or reorders a message within a partition.

use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::metadata::Metadata;
use rdkafka::producer::FutureProducer;

use crate::config::{ConfigError, Env};
use crate::secret::Secret;

/// Kafka could not be reached or refused the request.
#[derive(Debug, thiserror::Error)]
#[error("Kafka at {brokers} is unreachable: {cause}")]
pub struct KafkaUnreachable {
    pub brokers: String,
    pub cause: String,
}

/// `CHORUS_KAFKA_SECURITY_PROTOCOL`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecurityProtocol {
    Plaintext,
    Ssl,
    SaslPlaintext,
    SaslSsl,
}

impl SecurityProtocol {
    fn parse(value: &str) -> Option<SecurityProtocol> {
        Some(match value.trim().to_ascii_lowercase().as_str() {
            "plaintext" => SecurityProtocol::Plaintext,
            "ssl" => SecurityProtocol::Ssl,
            "sasl_plaintext" => SecurityProtocol::SaslPlaintext,
            "sasl_ssl" => SecurityProtocol::SaslSsl,
            _ => return None,
        })
    }

    /// librdkafka's name for it.
    pub fn as_str(self) -> &'static str {
        match self {
            SecurityProtocol::Plaintext => "plaintext",
            SecurityProtocol::Ssl => "ssl",
            SecurityProtocol::SaslPlaintext => "sasl_plaintext",
            SecurityProtocol::SaslSsl => "sasl_ssl",
        }
    }

    fn uses_sasl(self) -> bool {
        matches!(
            self,
            SecurityProtocol::SaslPlaintext | SecurityProtocol::SaslSsl
        )
    }
}

/// SASL credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sasl {
    /// `PLAIN`, `SCRAM-SHA-256` or `SCRAM-SHA-512`.
    pub mechanism: String,
    pub username: String,
    pub password: Secret,
}

/// How to reach and authenticate to the Kafka cluster. `Debug` never shows
/// the password (nor any extra property whose name says it is one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KafkaSettings {
    pub brokers: String,
    pub security_protocol: SecurityProtocol,
    pub sasl: Option<Sasl>,
    pub ssl_ca_location: Option<String>,
    /// Further librdkafka properties (`CHORUS_KAFKA_PROPERTY_<name>`), applied last.
    pub properties: Vec<(String, Secret)>,
}

const SASL_MECHANISMS: [&str; 3] = ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"];
const PROPERTY_PREFIX: &str = "CHORUS_KAFKA_PROPERTY_";

impl KafkaSettings {
    /// Plaintext brokers without authentication (the local stack).
    pub fn plaintext(brokers: impl Into<String>) -> KafkaSettings {
        KafkaSettings {
            brokers: brokers.into(),
            security_protocol: SecurityProtocol::Plaintext,
            sasl: None,
            ssl_ca_location: None,
            properties: Vec::new(),
        }
    }

    /// The settings from `CHORUS_KAFKA_…` variables (brokers default to the local stack).
    pub fn from_env(env: &Env) -> Result<KafkaSettings, ConfigError> {
        let brokers = env.string("CHORUS_KAFKA_BROKERS", "127.0.0.1:9092")?;
        KafkaSettings::from_env_with_brokers(env, brokers)
    }

    /// As [`KafkaSettings::from_env`], with the brokers given (a CLI flag).
    pub fn from_env_with_brokers(env: &Env, brokers: String) -> Result<KafkaSettings, ConfigError> {
        const PROTOCOL: &str = "CHORUS_KAFKA_SECURITY_PROTOCOL";
        let protocol_text = env.string(PROTOCOL, "plaintext")?;
        let security_protocol = SecurityProtocol::parse(&protocol_text).ok_or_else(|| {
            ConfigError::new(
                PROTOCOL,
                &protocol_text,
                "must be plaintext, ssl, sasl_plaintext or sasl_ssl",
            )
        })?;
        let sasl = if security_protocol.uses_sasl() {
            const MECHANISM: &str = "CHORUS_KAFKA_SASL_MECHANISM";
            let mechanism = env.string(MECHANISM, "SCRAM-SHA-512")?.trim().to_string();
            if !SASL_MECHANISMS.contains(&mechanism.as_str()) {
                return Err(ConfigError::new(
                    MECHANISM,
                    &mechanism,
                    "must be PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512",
                ));
            }
            let why = format!("required when {PROTOCOL}={}", security_protocol.as_str());
            Some(Sasl {
                mechanism,
                username: env.required("CHORUS_KAFKA_SASL_USERNAME", &why)?,
                password: Secret::new(env.required("CHORUS_KAFKA_SASL_PASSWORD", &why)?),
            })
        } else {
            None
        };
        let mut properties: Vec<(String, Secret)> = env
            .with_prefix(PROPERTY_PREFIX)
            .into_iter()
            .map(|(suffix, value)| (property_name(&suffix), Secret::new(value)))
            .collect();
        properties.sort_by(|a, b| a.0.cmp(&b.0));
        for (name, _) in &properties {
            if name.is_empty() {
                return Err(ConfigError::new(
                    PROPERTY_PREFIX,
                    "",
                    "needs a property name after the prefix",
                ));
            }
        }
        Ok(KafkaSettings {
            brokers,
            security_protocol,
            sasl,
            ssl_ca_location: env.optional("CHORUS_KAFKA_SSL_CA_LOCATION"),
            properties,
        })
    }

    /// Settings every client shares: brokers, security, extra properties.
    pub fn client_config(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", &self.brokers)
            .set("socket.connection.setup.timeout.ms", "5000")
            // librdkafka logs every failed connection attempt; the caller reports
            // unreachability itself, once, naming the address.
            .set("log_level", "3")
            .set("security.protocol", self.security_protocol.as_str());
        if let Some(sasl) = &self.sasl {
            config
                .set("sasl.mechanism", &sasl.mechanism)
                .set("sasl.username", &sasl.username)
                .set("sasl.password", sasl.password.expose());
        }
        if let Some(ca) = &self.ssl_ca_location {
            config.set("ssl.ca.location", ca);
        }
        self.override_with_properties(&mut config);
        config
    }

    /// Applies `CHORUS_KAFKA_PROPERTY_*` to `config` (again): call it after
    /// setting a client's own defaults, so the operator's word wins.
    pub fn override_with_properties(&self, config: &mut ClientConfig) {
        for (name, value) in &self.properties {
            config.set(name, value.expose());
        }
    }

    fn unreachable(&self, cause: impl Into<String>) -> KafkaUnreachable {
        KafkaUnreachable {
            brokers: self.brokers.clone(),
            cause: cause.into(),
        }
    }

    /// An idempotent producer (`acks=all`) whose deliveries time out after
    /// `delivery_timeout`; `linger` lets records sent close together share a
    /// produce request.
    pub fn producer(
        &self,
        delivery_timeout: Duration,
        linger: Duration,
    ) -> Result<FutureProducer, KafkaUnreachable> {
        let mut config = self.client_config();
        config
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("linger.ms", linger.as_millis().to_string())
            // Our events are a few hundred bytes: compressing them costs CPU on
            // both ends and the broker, and saves next to nothing.
            .set("compression.type", "none")
            .set(
                "message.timeout.ms",
                delivery_timeout.as_millis().to_string(),
            );
        self.override_with_properties(&mut config);
        config.create().map_err(|e| self.unreachable(e.to_string()))
    }

    /// Fetches cluster metadata (all topics, or one), failing within `timeout`
    /// when no broker answers. A refused login (wrong password) says so.
    pub async fn fetch_metadata(
        &self,
        topic: Option<&str>,
        timeout: Duration,
    ) -> Result<Metadata, KafkaUnreachable> {
        let settings = self.clone();
        let topic = topic.map(str::to_string);
        tokio::task::spawn_blocking(move || {
            let context = crate::kafka_auth::AuthWatch::default();
            let consumer: BaseConsumer<crate::kafka_auth::AuthWatch> = settings
                .client_config()
                .create_with_context(context)
                .map_err(|e| settings.unreachable(e.to_string()))?;
            consumer
                .fetch_metadata(topic.as_deref(), timeout)
                .map_err(|e| {
                    // librdkafka queues a refused login as an error event,
                    // which the context only sees once the queue is served.
                    for _ in 0..20 {
                        if consumer.context().failure().is_some() {
                            break;
                        }
                        let _ = consumer.poll(Duration::from_millis(50));
                    }
                    let cause = match consumer.context().failure() {
                        Some(auth) => format!("{auth} ({e})"),
                        None => e.to_string(),
                    };
                    settings.unreachable(cause)
                })
        })
        .await
        .expect("metadata task does not panic")
    }

    /// The partition ids of `topic`. A topic created a moment ago may be missing
    /// from a broker's metadata for a short while, so this asks again until
    /// `timeout`; an empty list means the topic does not exist.
    pub async fn topic_partitions(
        &self,
        topic: &str,
        timeout: Duration,
    ) -> Result<Vec<i32>, KafkaUnreachable> {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            let metadata = self.fetch_metadata(Some(topic), timeout).await?;
            let partitions: Vec<i32> = metadata
                .topics()
                .iter()
                .filter(|t| t.name() == topic && t.error().is_none())
                .flat_map(|t| t.partitions().iter().map(|p| p.id()))
                .collect();
            if !partitions.is_empty() || std::time::Instant::now() >= deadline {
                return Ok(partitions);
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// `SASL_MECHANISM` → `sasl.mechanism`: the variable's suffix with
/// underscores as dots, lower-cased.
fn property_name(suffix: &str) -> String {
    suffix.trim().to_ascii_lowercase().replace('_', ".")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plaintext_is_the_default() {
        let settings = KafkaSettings::from_env(&Env::from_pairs(&[])).unwrap();
        assert_eq!(settings, KafkaSettings::plaintext("127.0.0.1:9092"));
        assert_eq!(
            settings.client_config().get("security.protocol"),
            Some("plaintext")
        );
    }

    #[test]
    fn sasl_needs_credentials_and_a_known_mechanism() {
        let env = |pairs: &[(&str, &str)]| KafkaSettings::from_env(&Env::from_pairs(pairs));
        let err = env(&[("CHORUS_KAFKA_SECURITY_PROTOCOL", "sasl_ssl")]).unwrap_err();
        assert_eq!(err.variable, "CHORUS_KAFKA_SASL_USERNAME");
        let err = env(&[
            ("CHORUS_KAFKA_SECURITY_PROTOCOL", "sasl_plaintext"),
            ("CHORUS_KAFKA_SASL_MECHANISM", "GSSAPI"),
        ])
        .unwrap_err();
        assert_eq!(err.variable, "CHORUS_KAFKA_SASL_MECHANISM");
        let err = env(&[("CHORUS_KAFKA_SECURITY_PROTOCOL", "tls")]).unwrap_err();
        assert_eq!(err.variable, "CHORUS_KAFKA_SECURITY_PROTOCOL");
    }

    #[test]
    fn sasl_settings_reach_librdkafka_and_the_password_stays_out_of_debug() {
        let settings = KafkaSettings::from_env(&Env::from_pairs(&[
            ("CHORUS_KAFKA_BROKERS", "b:9094"),
            ("CHORUS_KAFKA_SECURITY_PROTOCOL", "SASL_SSL"),
            ("CHORUS_KAFKA_SASL_MECHANISM", "SCRAM-SHA-256"),
            ("CHORUS_KAFKA_SASL_USERNAME", "svc"),
            ("CHORUS_KAFKA_SASL_PASSWORD", "hunter2-very-secret"),
            ("CHORUS_KAFKA_SSL_CA_LOCATION", "/etc/ca.pem"),
            (
                "CHORUS_KAFKA_PROPERTY_SSL_ENDPOINT_IDENTIFICATION_ALGORITHM",
                "none",
            ),
        ]))
        .unwrap();
        let config = settings.client_config();
        assert_eq!(config.get("security.protocol"), Some("sasl_ssl"));
        assert_eq!(config.get("sasl.mechanism"), Some("SCRAM-SHA-256"));
        assert_eq!(config.get("sasl.username"), Some("svc"));
        assert_eq!(config.get("sasl.password"), Some("hunter2-very-secret"));
        assert_eq!(config.get("ssl.ca.location"), Some("/etc/ca.pem"));
        assert_eq!(
            config.get("ssl.endpoint.identification.algorithm"),
            Some("none")
        );
        let shown = format!("{settings:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(
            !shown.contains("none\""),
            "extra properties are hidden too: {shown}"
        );
    }
}
