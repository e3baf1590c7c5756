//! Gateway configuration: defaults, then `CHORUS_…` environment variables,
//! validated at start-up. A bad value stops the process naming the variable;
//! the JWT secret and database passwords are never printed.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use chorus_avro::{CodecConfig, DEFAULT_PARTITIONS, RegistrySettings, TopicCatalogue};
use chorus_platform::payment_token::PaymentTokenKeys;
use chorus_platform::{
    ConfigError, Env, KafkaSettings, check_scheme, dev_mode, redact, registry_from_env,
};

use crate::auth::AuthSettings;
use crate::key_expiry::KeyExpiry;
use crate::limits::Limits;

/// The longest idempotency window accepted (a year), in hours.
const MAX_IDEMPOTENCY_WINDOW_HOURS: u64 = 24 * 366;

/// Readiness and metrics by default: loopback, on the port the workers'
/// numbering (9101-9104) leaves free.
pub const DEFAULT_ADMIN_ADDR: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 9100);

/// Everything the gateway process needs to connect and serve.
#[derive(Clone)]
pub struct GatewayConfig {
    pub http_addr: SocketAddr,
    /// Where `/readyz` and `/metrics` are served (`CHORUS_ADMIN_ADDR`,
    /// [`DEFAULT_ADMIN_ADDR`]): never on `http_addr`, so operators' routes
    /// are not public unless an operator binds them so.
    pub admin_addr: SocketAddr,
    pub kafka: KafkaSettings,
    pub registry: RegistrySettings,
    pub auto_register_schemas: bool,
    pub namespace: String,
    pub partitions: i32,
    /// How bearer tokens are verified.
    pub auth: AuthSettings,
    /// Development mode: the public development JWT secret is allowed, and
    /// payment tokens may travel unsealed when no key is set.
    pub dev: bool,
    /// Seal payment tokens for the payment service (`None`: development, in plaintext).
    pub payment_tokens: Option<Arc<PaymentTokenKeys>>,
    /// The gateway's own database (accepted orders, idempotency keys).
    pub database_url: String,
    /// The order service's read model (`order_status` view), read-only.
    pub order_db_url: String,
    /// The inventory service's read model (`stock_levels` view), read-only.
    pub inventory_db_url: String,
    pub db_pool_size: u32,
    /// Sustained requests per second per subject; bursts up to `rate_limit_burst`.
    pub rate_limit_per_sec: u32,
    pub rate_limit_burst: u32,
    /// How long a POST waits for Kafka to acknowledge `OrderPlaced` before answering 503.
    pub publish_timeout: Duration,
    /// OTLP gRPC endpoint the spans go to (`CHORUS_OTLP_ENDPOINT`); none: not exported.
    pub otlp_endpoint: Option<String>,
    /// How long idempotency keys are kept (`CHORUS_IDEMPOTENCY_WINDOW_HOURS`, 24).
    pub key_expiry: KeyExpiry,
    /// Connection, request, long-poll and open-order limits (`CHORUS_GATEWAY_…`).
    pub limits: Limits,
}

impl std::fmt::Debug for GatewayConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GatewayConfig")
            .field("http_addr", &self.http_addr)
            .field("admin_addr", &self.admin_addr)
            .field("kafka", &self.kafka)
            .field("registry", &self.registry)
            .field("auto_register_schemas", &self.auto_register_schemas)
            .field("namespace", &self.namespace)
            .field("partitions", &self.partitions)
            .field("auth", &self.auth)
            .field("dev", &self.dev)
            .field("payment_tokens", &self.payment_tokens)
            .field("database_url", &redact(&self.database_url))
            .field("order_db_url", &redact(&self.order_db_url))
            .field("inventory_db_url", &redact(&self.inventory_db_url))
            .field("db_pool_size", &self.db_pool_size)
            .field("rate_limit_per_sec", &self.rate_limit_per_sec)
            .field("rate_limit_burst", &self.rate_limit_burst)
            .field("publish_timeout", &self.publish_timeout)
            .field("otlp_endpoint", &self.otlp_endpoint.as_deref().map(redact))
            .field("key_expiry", &self.key_expiry)
            .field("limits", &self.limits)
            .finish()
    }
}

impl GatewayConfig {
    pub fn from_env(env: &Env) -> Result<GatewayConfig, ConfigError> {
        let http_addr = env.parse("CHORUS_HTTP_ADDR", SocketAddr::from(([127, 0, 0, 1], 8000)))?;
        let admin_addr = env.parse("CHORUS_ADMIN_ADDR", DEFAULT_ADMIN_ADDR)?;
        let dev = dev_mode::from_env(
            env,
            &[
                ("CHORUS_HTTP_ADDR", http_addr),
                ("CHORUS_ADMIN_ADDR", admin_addr),
            ],
        )?;
        let auth = AuthSettings::from_env(env, dev)?;
        let rate_limit_per_sec: u32 = env.positive("CHORUS_RATE_LIMIT_PER_SEC", 100)?;
        let rate_limit_burst: u32 = env.positive(
            "CHORUS_RATE_LIMIT_BURST",
            rate_limit_per_sec.saturating_mul(2),
        )?;
        let partitions = env.positive("CHORUS_TOPIC_PARTITIONS", DEFAULT_PARTITIONS)?;
        let publish_timeout = env.positive_duration_ms("CHORUS_PUBLISH_TIMEOUT_MS", 15_000)?;
        let window_hours: u64 = env.positive("CHORUS_IDEMPOTENCY_WINDOW_HOURS", 24)?;
        if window_hours > MAX_IDEMPOTENCY_WINDOW_HOURS {
            return Err(ConfigError::new(
                "CHORUS_IDEMPOTENCY_WINDOW_HOURS",
                &window_hours.to_string(),
                &format!("must be at most {MAX_IDEMPOTENCY_WINDOW_HOURS} (a year)"),
            ));
        }
        Ok(GatewayConfig {
            http_addr,
            admin_addr,
            kafka: KafkaSettings::from_env(env)?,
            registry: registry_from_env(env)?,
            auto_register_schemas: env.parse("CHORUS_AUTO_REGISTER_SCHEMAS", false)?,
            namespace: env.string("CHORUS_TOPIC_NAMESPACE", "chorus")?,
            partitions,
            auth,
            dev,
            payment_tokens: PaymentTokenKeys::from_env(env)?.map(Arc::new),
            database_url: postgres_url(
                env,
                "CHORUS_DATABASE_URL",
                "postgres://chorus_gateway:chorus_gateway@127.0.0.1:55432/chorus_gateway",
            )?,
            order_db_url: postgres_url(
                env,
                "CHORUS_ORDER_DB_URL",
                "postgres://chorus_gateway_ro:chorus_gateway_ro@127.0.0.1:55432/chorus_order",
            )?,
            inventory_db_url: postgres_url(
                env,
                "CHORUS_INVENTORY_DB_URL",
                "postgres://chorus_gateway_ro:chorus_gateway_ro@127.0.0.1:55432/chorus_inventory",
            )?,
            db_pool_size: env.parse("CHORUS_DB_POOL_SIZE", 16)?,
            rate_limit_per_sec,
            rate_limit_burst,
            publish_timeout,
            otlp_endpoint: env.optional_url("CHORUS_OTLP_ENDPOINT")?,
            key_expiry: KeyExpiry {
                window: Duration::from_secs(window_hours * 3600),
                ..KeyExpiry::default()
            },
            limits: Limits::from_env(env, rate_limit_per_sec, publish_timeout)?,
        })
    }

    pub fn catalogue(&self) -> TopicCatalogue {
        TopicCatalogue::new(self.namespace.clone(), self.partitions)
    }

    pub fn codec_config(&self) -> CodecConfig {
        CodecConfig {
            registry: self.registry.clone(),
            auto_register: self.auto_register_schemas,
            timeout: Duration::from_secs(5),
        }
    }
}

fn postgres_url(env: &Env, name: &str, default: &str) -> Result<String, ConfigError> {
    let value = env.string(name, default)?;
    check_scheme(
        name,
        &value,
        &redact(&value),
        &["postgres://", "postgresql://"],
        "must be a postgres:// URL",
    )?;
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::{DEV_JWT_SECRET, TokenKeys};

    const KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
    const SECRET: &str = "s3cret-of-our-own-long-enough-for-hs256";

    #[test]
    fn refuses_the_development_secret_outside_development() {
        let err = GatewayConfig::from_env(&Env::from_pairs(&[])).unwrap_err();
        assert_eq!(err.variable, "CHORUS_JWT_SECRET");
        assert!(!err.to_string().contains(DEV_JWT_SECRET), "{err}");

        let env = Env::from_pairs(&[
            ("CHORUS_JWT_SECRET", DEV_JWT_SECRET),
            ("CHORUS_PAYMENT_TOKEN_KEY", KEY),
        ]);
        assert_eq!(
            GatewayConfig::from_env(&env).unwrap_err().variable,
            "CHORUS_JWT_SECRET"
        );

        let env = Env::from_pairs(&[("CHORUS_DEV", "true")]);
        let config = GatewayConfig::from_env(&env).unwrap();
        assert!(
            matches!(&config.auth.keys, TokenKeys::SharedSecret { current, previous: None } if current.expose() == DEV_JWT_SECRET)
        );
        assert_eq!(config.http_addr.to_string(), "127.0.0.1:8000");
        assert_eq!(config.admin_addr.to_string(), "127.0.0.1:9100");
        assert_eq!(config.rate_limit_per_sec, 100);
        assert_eq!(config.key_expiry.window, Duration::from_secs(24 * 3600));
        assert!(
            config.payment_tokens.is_none(),
            "development sends tokens unsealed"
        );
    }

    #[test]
    fn outside_development_a_secret_and_a_payment_token_key_are_needed() {
        let env = Env::from_pairs(&[("CHORUS_JWT_SECRET", SECRET)]);
        let err = GatewayConfig::from_env(&env).unwrap_err();
        assert_eq!(err.variable, "CHORUS_PAYMENT_TOKEN_KEY");

        let env = Env::from_pairs(&[
            ("CHORUS_JWT_SECRET", SECRET),
            ("CHORUS_PAYMENT_TOKEN_KEY", KEY),
        ]);
        let config = GatewayConfig::from_env(&env).unwrap();
        assert!(!config.dev);
        assert!(config.payment_tokens.is_some());
        let shown = format!("{config:?}");
        for secret in [SECRET, KEY, "chorus_gateway@"] {
            assert!(!shown.contains(secret), "{shown}");
        }
    }

    #[test]
    fn a_rotation_keeps_the_previous_jwt_secret_unshown() {
        const PREVIOUS: &str = "the-retiring-secret-long-enough-for-hs256";
        let env = Env::from_pairs(&[
            ("CHORUS_JWT_SECRET", SECRET),
            ("CHORUS_JWT_SECRET_PREVIOUS", PREVIOUS),
            ("CHORUS_PAYMENT_TOKEN_KEY", KEY),
        ]);
        let config = GatewayConfig::from_env(&env).unwrap();
        assert!(matches!(
            &config.auth.keys,
            TokenKeys::SharedSecret { previous: Some(previous), .. } if previous.expose() == PREVIOUS
        ));
        let shown = format!("{config:?}");
        assert!(!shown.contains(PREVIOUS), "{shown}");
    }

    #[test]
    fn development_mode_refuses_a_public_address() {
        for (variable, addr) in [
            ("CHORUS_HTTP_ADDR", "0.0.0.0:8000"),
            ("CHORUS_ADMIN_ADDR", "0.0.0.0:9100"),
        ] {
            let env = Env::from_pairs(&[("CHORUS_DEV", "true"), (variable, addr)]);
            let err = GatewayConfig::from_env(&env).unwrap_err();
            assert_eq!(err.variable, "CHORUS_DEV");
            assert!(err.problem.contains(&format!("{variable}={addr}")), "{err}");
        }
        let env = Env::from_pairs(&[
            ("CHORUS_DEV", "true"),
            ("CHORUS_HTTP_ADDR", "[::1]:8000"),
            ("CHORUS_ADMIN_ADDR", "127.0.0.1:0"),
        ]);
        assert!(GatewayConfig::from_env(&env).unwrap().dev);
        // A deployment binds where it likes.
        let env = Env::from_pairs(&[
            ("CHORUS_HTTP_ADDR", "0.0.0.0:8000"),
            ("CHORUS_ADMIN_ADDR", "0.0.0.0:9100"),
            ("CHORUS_JWT_SECRET", SECRET),
            ("CHORUS_PAYMENT_TOKEN_KEY", KEY),
        ]);
        assert!(!GatewayConfig::from_env(&env).unwrap().dev);
    }

    #[test]
    fn the_idempotency_window_is_given_in_hours() {
        let env = Env::from_pairs(&[
            ("CHORUS_DEV", "true"),
            ("CHORUS_IDEMPOTENCY_WINDOW_HOURS", "48"),
        ]);
        let config = GatewayConfig::from_env(&env).unwrap();
        assert_eq!(config.key_expiry.window, Duration::from_secs(48 * 3600));
    }

    #[test]
    fn bad_values_name_their_variable() {
        for (variable, value) in [
            ("CHORUS_RATE_LIMIT_PER_SEC", "0"),
            ("CHORUS_RATE_LIMIT_PER_SEC", "fast"),
            ("CHORUS_HTTP_ADDR", "8000"),
            ("CHORUS_ADMIN_ADDR", "localhost"),
            ("CHORUS_DATABASE_URL", "mysql://x"),
            ("CHORUS_SCHEMA_REGISTRY_URL", "localhost:8081"),
            ("CHORUS_OTLP_ENDPOINT", "127.0.0.1:4317"),
            ("CHORUS_JWT_SECRET", " "),
            ("CHORUS_JWT_SECRET", "shorter-than-32-bytes"),
            ("CHORUS_JWT_SECRET_PREVIOUS", "shorter-than-32-bytes"),
            ("CHORUS_JWT_SECRET_PREVIOUS", DEV_JWT_SECRET),
            ("CHORUS_PAYMENT_TOKEN_KEY", "c2hvcnQ="),
            ("CHORUS_IDEMPOTENCY_WINDOW_HOURS", "0"),
            ("CHORUS_IDEMPOTENCY_WINDOW_HOURS", "1.5"),
            ("CHORUS_IDEMPOTENCY_WINDOW_HOURS", "8785"),
        ] {
            let env = Env::from_pairs(&[("CHORUS_DEV", "true"), (variable, value)]);
            let err = GatewayConfig::from_env(&env).unwrap_err();
            assert_eq!(err.variable, variable, "{err}");
        }
    }
}
