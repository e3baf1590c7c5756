//! Payment configuration from `CHORUS_PAYMENT_…` variables; a bad value stops
//! the worker at start-up naming the variable.

use std::time::Duration;

use chorus_platform::check_secure_url;
use chorus_platform::payment_token::PaymentTokenKeys;
use chorus_runtime::retry::RetryPolicy;
use chorus_runtime::{ConfigError, Env};

/// Which provider charges the customer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProviderChoice {
    /// `CHORUS_PAYMENT_PROVIDER=sandbox` (the default).
    Sandbox,
    /// `CHORUS_PAYMENT_PROVIDER=http` with `CHORUS_PAYMENT_URL`.
    Http { url: String, timeout: Duration },
}

#[derive(Debug, Clone)]
pub struct PaymentConfig {
    pub provider: ProviderChoice,
    pub retry: RetryPolicy,
    /// `CHORUS_PAYMENT_TOKEN_KEY` (and `…_PREVIOUS`): required unless `dev`.
    pub token_keys: Option<PaymentTokenKeys>,
    /// `CHORUS_DEV=true`.
    pub dev: bool,
    /// An authorization whose order this worker has not seen confirmed this
    /// long after it was asked for is voided: the order's deadline
    /// (`CHORUS_ORDER_DEADLINE_SECS`, the order worker's, default 60) plus
    /// `CHORUS_PAYMENT_UNCONFIRMED_GRACE_SECS` (default 300).
    pub void_unconfirmed_after: Duration,
}

impl PaymentConfig {
    pub fn from_env(env: &Env) -> Result<PaymentConfig, ConfigError> {
        let provider = match env.string("CHORUS_PAYMENT_PROVIDER", "sandbox")?.trim() {
            "sandbox" => ProviderChoice::Sandbox,
            "http" => ProviderChoice::Http {
                url: provider_url(env)?,
                timeout: env.positive_duration_ms("CHORUS_PAYMENT_TIMEOUT_MS", 2_000)?,
            },
            other => {
                return Err(ConfigError::new(
                    "CHORUS_PAYMENT_PROVIDER",
                    other,
                    "must be `sandbox` or `http`",
                ));
            }
        };
        Ok(PaymentConfig {
            provider,
            retry: RetryPolicy {
                max_attempts: env.positive("CHORUS_PAYMENT_MAX_ATTEMPTS", 4)?,
                ..RetryPolicy::default()
            },
            token_keys: PaymentTokenKeys::from_env(env)?,
            dev: env.parse("CHORUS_DEV", false)?,
            void_unconfirmed_after: Duration::from_secs(
                env.positive::<u64>("CHORUS_ORDER_DEADLINE_SECS", 60)?
                    + env.positive::<u64>("CHORUS_PAYMENT_UNCONFIRMED_GRACE_SECS", 300)?,
            ),
        })
    }
}

/// The provider receives the customer's opened payment token: `https://`,
/// or `http://` only to a provider on this machine (a test double).
fn provider_url(env: &Env) -> Result<String, ConfigError> {
    let url = env.required_url(
        "CHORUS_PAYMENT_URL",
        "required when CHORUS_PAYMENT_PROVIDER=http",
    )?;
    check_secure_url("CHORUS_PAYMENT_URL", &url)?;
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sandbox_with_four_attempts_is_the_default() {
        let config = PaymentConfig::from_env(&Env::from_pairs(&[("CHORUS_DEV", "true")])).unwrap();
        assert_eq!(config.provider, ProviderChoice::Sandbox);
        assert_eq!(config.retry, RetryPolicy::default());
        assert_eq!(config.retry.max_attempts, 4);
    }

    #[test]
    fn http_takes_its_url_and_timeout() {
        let env = Env::from_pairs(&[
            ("CHORUS_PAYMENT_PROVIDER", "http"),
            ("CHORUS_PAYMENT_URL", "http://127.0.0.1:8090/"),
            ("CHORUS_PAYMENT_MAX_ATTEMPTS", "2"),
            ("CHORUS_DEV", "true"),
        ]);
        let config = PaymentConfig::from_env(&env).unwrap();
        assert_eq!(
            config.provider,
            ProviderChoice::Http {
                url: "http://127.0.0.1:8090".into(),
                timeout: Duration::from_millis(2_000)
            }
        );
        assert_eq!(config.retry.max_attempts, 2);
    }

    #[test]
    fn outside_development_a_payment_token_key_is_needed() {
        let err = PaymentConfig::from_env(&Env::from_pairs(&[])).unwrap_err();
        assert_eq!(err.variable, "CHORUS_PAYMENT_TOKEN_KEY");
        let key = "BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=";
        let config =
            PaymentConfig::from_env(&Env::from_pairs(&[("CHORUS_PAYMENT_TOKEN_KEY", key)]))
                .unwrap();
        assert!(config.token_keys.is_some() && !config.dev);
    }

    #[test]
    fn errors_name_the_variable() {
        let variable = |pairs: &[(&str, &str)]| {
            PaymentConfig::from_env(&Env::from_pairs(
                &[pairs, &[("CHORUS_DEV", "true")]].concat(),
            ))
            .unwrap_err()
            .variable
        };
        assert_eq!(
            variable(&[("CHORUS_PAYMENT_PROVIDER", "stripe")]),
            "CHORUS_PAYMENT_PROVIDER"
        );
        assert_eq!(
            variable(&[("CHORUS_PAYMENT_PROVIDER", "http")]),
            "CHORUS_PAYMENT_URL"
        );
        assert_eq!(
            variable(&[
                ("CHORUS_PAYMENT_PROVIDER", "http"),
                ("CHORUS_PAYMENT_URL", "127.0.0.1:8090")
            ]),
            "CHORUS_PAYMENT_URL"
        );
        assert_eq!(
            variable(&[
                ("CHORUS_PAYMENT_PROVIDER", "http"),
                ("CHORUS_PAYMENT_URL", "https://pay.example"),
                ("CHORUS_PAYMENT_TIMEOUT_MS", "soon")
            ]),
            "CHORUS_PAYMENT_TIMEOUT_MS"
        );
        for url in ["http://pay.example/charge", "http://10.0.0.7:8090"] {
            assert_eq!(
                variable(&[
                    ("CHORUS_PAYMENT_PROVIDER", "http"),
                    ("CHORUS_PAYMENT_URL", url)
                ]),
                "CHORUS_PAYMENT_URL",
                "{url}"
            );
        }
        assert_eq!(
            variable(&[("CHORUS_PAYMENT_MAX_ATTEMPTS", "0")]),
            "CHORUS_PAYMENT_MAX_ATTEMPTS"
        );
    }
}
