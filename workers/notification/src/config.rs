//! Notification configuration: which channels are on, from `CHORUS_NOTIFY_…`,
//! `CHORUS_WEBHOOK_…` and `CHORUS_SMTP_…` variables. A bad or missing value
//! stops the worker at start-up naming the variable; secrets are never shown.

use std::time::Duration;

use chorus_platform::check_scheme;
use chorus_runtime::retry::RetryPolicy;
use chorus_runtime::{ConfigError, Env};
use lettre::message::Mailbox;

use crate::rules::Channel;
use crate::signature::{SigningSecrets, WebhookSecret};

const SECRET_VARIABLE: &str = "CHORUS_WEBHOOK_SECRET";
const PREVIOUS_SECRET_VARIABLE: &str = "CHORUS_WEBHOOK_SECRET_PREVIOUS";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotificationConfig {
    /// `CHORUS_NOTIFY_LOG` (default true): a structured log line per notification.
    pub log: bool,
    pub webhook: Option<WebhookConfig>,
    pub smtp: Option<SmtpConfig>,
    /// `CHORUS_NOTIFY_MAX_ATTEMPTS` (default 4) for the webhook and SMTP channels.
    pub retry: RetryPolicy,
}

/// On when `CHORUS_WEBHOOK_URL` is set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookConfig {
    pub url: String,
    /// `CHORUS_WEBHOOK_SECRET` (`whsec_<base64 key>`), required with the URL,
    /// and during a rotation `CHORUS_WEBHOOK_SECRET_PREVIOUS` (same form):
    /// every delivery is signed under each. Their `Debug` shows nothing of them.
    pub secrets: SigningSecrets,
    /// `CHORUS_WEBHOOK_TIMEOUT_MS` (default 2000).
    pub timeout: Duration,
}

/// On when `CHORUS_SMTP_URL` is set (e.g. `smtp://127.0.0.1:1025`).
#[derive(Clone, PartialEq, Eq)]
pub struct SmtpConfig {
    pub url: String,
    /// `CHORUS_SMTP_FROM` (default `chorus@localhost`).
    pub from: Mailbox,
    /// `CHORUS_SMTP_RECIPIENT_DOMAIN` (default `example.com`), for customer ids
    /// that are not e-mail addresses.
    pub recipient_domain: String,
    /// `CHORUS_SMTP_TIMEOUT_MS` (default 5000).
    pub timeout: Duration,
}

impl std::fmt::Debug for SmtpConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpConfig")
            .field("url", &without_credentials(&self.url))
            .field("from", &self.from)
            .field("recipient_domain", &self.recipient_domain)
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl NotificationConfig {
    pub fn from_env(env: &Env) -> Result<NotificationConfig, ConfigError> {
        let config = NotificationConfig {
            log: env.parse("CHORUS_NOTIFY_LOG", true)?,
            webhook: webhook(env)?,
            smtp: smtp(env)?,
            retry: RetryPolicy {
                max_attempts: env.positive("CHORUS_NOTIFY_MAX_ATTEMPTS", 4)?,
                ..RetryPolicy::default()
            },
        };
        if config.channels().is_empty() {
            return Err(ConfigError::new(
                "CHORUS_NOTIFY_LOG",
                "false",
                "no notification channel left: keep the log on, or set CHORUS_WEBHOOK_URL or CHORUS_SMTP_URL",
            ));
        }
        Ok(config)
    }

    /// The channels that are on, in the order they are tried.
    pub fn channels(&self) -> Vec<Channel> {
        let mut channels = Vec::new();
        if self.webhook.is_some() {
            channels.push(Channel::Webhook);
        }
        if self.smtp.is_some() {
            channels.push(Channel::Smtp);
        }
        if self.log {
            channels.push(Channel::Log);
        }
        channels
    }
}

fn webhook(env: &Env) -> Result<Option<WebhookConfig>, ConfigError> {
    let Some(url) = env.optional_url("CHORUS_WEBHOOK_URL")? else {
        return Ok(None);
    };
    let secret = env.required(
        SECRET_VARIABLE,
        "required when CHORUS_WEBHOOK_URL is set (webhooks are signed with it)",
    )?;
    let current = parse_secret(SECRET_VARIABLE, &secret)?;
    // Unset or blank: no rotation under way.
    let previous = match env.optional(PREVIOUS_SECRET_VARIABLE) {
        None => None,
        Some(text) => {
            let previous = parse_secret(PREVIOUS_SECRET_VARIABLE, &text)?;
            if previous == current {
                // Most likely the new secret pasted twice: receivers still on
                // the old one, which this variable is there to serve, would
                // refuse every delivery.
                return Err(ConfigError::new(
                    PREVIOUS_SECRET_VARIABLE,
                    "<redacted>",
                    "is the same key as CHORUS_WEBHOOK_SECRET: during a rotation it holds \
                     the secret being retired (unset it when no rotation is under way)",
                ));
            }
            Some(previous)
        }
    };
    Ok(Some(WebhookConfig {
        url,
        secrets: SigningSecrets { current, previous },
        timeout: env.positive_duration_ms("CHORUS_WEBHOOK_TIMEOUT_MS", 2_000)?,
    }))
}

/// The shortest webhook key accepted: the Standard Webhooks specification
/// asks for keys of 24 to 64 bytes (`whsec_` + base64 of 32 random bytes is
/// what `chorus`'s docs make); a shorter one can be guessed offline from any
/// signed delivery a receiver leaks.
pub const MIN_SECRET_BYTES: usize = 24;

/// The value is a key: the error names the variable and the problem only.
fn parse_secret(variable: &str, text: &str) -> Result<WebhookSecret, ConfigError> {
    let secret = WebhookSecret::parse(text)
        .map_err(|e| ConfigError::new(variable, "<redacted>", &e.to_string()))?;
    if secret.key_len() < MIN_SECRET_BYTES {
        return Err(ConfigError::new(
            variable,
            "<redacted>",
            &format!(
                "the key after whsec_ must be at least {MIN_SECRET_BYTES} bytes (this one has {}); \
                 make one with: echo \"whsec_$(head -c 32 /dev/urandom | base64)\"",
                secret.key_len()
            ),
        ));
    }
    Ok(secret)
}

fn smtp(env: &Env) -> Result<Option<SmtpConfig>, ConfigError> {
    let Some(url) = env.optional("CHORUS_SMTP_URL") else {
        return Ok(None);
    };
    let shown = without_credentials(&url);
    check_scheme(
        "CHORUS_SMTP_URL",
        &url,
        &shown,
        &["smtp://", "smtps://"],
        "must be an smtp:// or smtps:// URL",
    )?;
    if let Err(e) = lettre::AsyncSmtpTransport::<lettre::Tokio1Executor>::from_url(&url) {
        return Err(ConfigError::new("CHORUS_SMTP_URL", &shown, &e.to_string()));
    }
    let from = env.string("CHORUS_SMTP_FROM", "chorus@localhost")?;
    Ok(Some(SmtpConfig {
        url,
        from: from.parse().map_err(|e: lettre::address::AddressError| {
            ConfigError::new("CHORUS_SMTP_FROM", &from, &e.to_string())
        })?,
        recipient_domain: env.string("CHORUS_SMTP_RECIPIENT_DOMAIN", "example.com")?,
        timeout: env.positive_duration_ms("CHORUS_SMTP_TIMEOUT_MS", 5_000)?,
    }))
}

/// `smtp://user:pass@host` shown as `smtp://***@host`.
fn without_credentials(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            format!("{}***{}", &url[..scheme_end + 3], &url[at..])
        }
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Keys of 30 and 28 bytes.
    const CURRENT: &str = "whsec_czNjcmV0LWtleS1vZi0yNC1ieXRlcy1vci1tb3Jl";
    const OLD: &str = "whsec_b2xkLWtleS1vZi0yNC1ieXRlcy1vci1tb3JlIQ==";

    fn config(pairs: &[(&str, &str)]) -> Result<NotificationConfig, ConfigError> {
        NotificationConfig::from_env(&Env::from_pairs(pairs))
    }

    #[test]
    fn only_the_log_is_on_by_default() {
        let config = config(&[]).unwrap();
        assert_eq!(config.channels(), [Channel::Log]);
        assert_eq!(config.retry.max_attempts, 4);
    }

    #[test]
    fn a_webhook_url_with_a_secret_turns_the_webhook_on() {
        let config = config(&[
            ("CHORUS_WEBHOOK_URL", "http://127.0.0.1:9000/hooks"),
            ("CHORUS_WEBHOOK_SECRET", CURRENT),
        ])
        .unwrap();
        assert_eq!(config.channels(), [Channel::Webhook, Channel::Log]);
        let webhook = config.webhook.unwrap();
        assert_eq!(webhook.url, "http://127.0.0.1:9000/hooks");
        assert_eq!(webhook.timeout, Duration::from_secs(2));
        assert_eq!(
            webhook.secrets,
            SigningSecrets::new(WebhookSecret::parse(CURRENT).unwrap())
        );
        assert!(!format!("{webhook:?}").contains("czNjcmV0"));
    }

    #[test]
    fn a_previous_secret_signs_beside_the_current_one_until_it_is_unset() {
        let with_previous = |previous: &str| {
            config(&[
                ("CHORUS_WEBHOOK_URL", "http://127.0.0.1:9000/hooks"),
                ("CHORUS_WEBHOOK_SECRET", CURRENT),
                ("CHORUS_WEBHOOK_SECRET_PREVIOUS", previous),
            ])
        };
        let webhook = with_previous(OLD).unwrap().webhook.unwrap();
        assert_eq!(
            webhook.secrets.previous,
            Some(WebhookSecret::parse(OLD).unwrap())
        );
        assert!(!format!("{webhook:?}").contains(&OLD[6..16]));
        // Blank is how a deployment template says "no rotation under way".
        let webhook = with_previous("").unwrap().webhook.unwrap();
        assert_eq!(webhook.secrets.previous, None);
    }

    #[test]
    fn a_previous_secret_is_held_to_the_current_ones_form_and_may_not_repeat_it() {
        for bad in ["0ld-s3cret-key", "whsec_0ld s3cret!", "whsec_", CURRENT] {
            let err = config(&[
                ("CHORUS_WEBHOOK_URL", "http://127.0.0.1:9000"),
                ("CHORUS_WEBHOOK_SECRET", CURRENT),
                ("CHORUS_WEBHOOK_SECRET_PREVIOUS", bad),
            ])
            .unwrap_err();
            assert_eq!(err.variable, "CHORUS_WEBHOOK_SECRET_PREVIOUS", "{bad}");
            let shown = err.to_string();
            assert!(shown.contains("CHORUS_WEBHOOK_SECRET_PREVIOUS"), "{shown}");
            assert!(
                !shown.contains("s3cret") && !shown.contains("czNjcmV0"),
                "{shown}"
            );
        }
    }

    #[test]
    fn a_secret_not_in_the_whsec_base64_form_is_refused_without_showing_it() {
        for bad in ["s3cret-key", "whsec_s3cret key!", "whsec_"] {
            let err = config(&[
                ("CHORUS_WEBHOOK_URL", "http://127.0.0.1:9000"),
                ("CHORUS_WEBHOOK_SECRET", bad),
            ])
            .unwrap_err();
            assert_eq!(err.variable, "CHORUS_WEBHOOK_SECRET");
            let shown = err.to_string();
            assert!(shown.contains("CHORUS_WEBHOOK_SECRET"), "{shown}");
            assert!(!shown.contains("s3cret"), "{shown}");
        }
    }

    #[test]
    fn a_key_shorter_than_24_bytes_is_refused_for_either_secret() {
        use base64::Engine;
        let secret = |bytes: usize| {
            let key = base64::engine::general_purpose::STANDARD.encode(vec![7u8; bytes]);
            format!("whsec_{key}")
        };
        let (short, enough) = (secret(23), secret(24));
        for variable in ["CHORUS_WEBHOOK_SECRET", "CHORUS_WEBHOOK_SECRET_PREVIOUS"] {
            let with = |value: &str| {
                let mut pairs = vec![
                    ("CHORUS_WEBHOOK_URL", "http://127.0.0.1:9000"),
                    (variable, value),
                ];
                pairs.push(("CHORUS_WEBHOOK_SECRET", CURRENT));
                config(&pairs)
            };
            let err = with(&short).unwrap_err();
            assert_eq!(err.variable, variable);
            assert!(err.problem.contains("at least 24 bytes"), "{err}");
            assert!(!err.to_string().contains(&short[6..]), "{err}");
            assert!(with(&enough).is_ok(), "{variable}");
        }
    }

    #[test]
    fn a_webhook_without_a_secret_is_refused_naming_the_secret() {
        let err = config(&[("CHORUS_WEBHOOK_URL", "http://127.0.0.1:9000")]).unwrap_err();
        assert_eq!(err.variable, "CHORUS_WEBHOOK_SECRET");
        assert!(err.to_string().contains("CHORUS_WEBHOOK_SECRET"));
    }

    #[test]
    fn an_smtp_url_turns_mail_on_with_default_sender_and_domain() {
        let config = config(&[
            ("CHORUS_SMTP_URL", "smtp://127.0.0.1:1025"),
            ("CHORUS_NOTIFY_LOG", "false"),
        ])
        .unwrap();
        assert_eq!(config.channels(), [Channel::Smtp]);
        let smtp = config.smtp.unwrap();
        assert_eq!(smtp.from.to_string(), "chorus@localhost");
        assert_eq!(smtp.recipient_domain, "example.com");
    }

    #[test]
    fn all_three_channels_in_their_order() {
        let config = config(&[
            ("CHORUS_WEBHOOK_URL", "https://hooks.test/x"),
            ("CHORUS_WEBHOOK_SECRET", CURRENT),
            ("CHORUS_SMTP_URL", "smtp://mail.test:25"),
        ])
        .unwrap();
        assert_eq!(
            config.channels(),
            [Channel::Webhook, Channel::Smtp, Channel::Log]
        );
    }

    #[test]
    fn bad_values_name_their_variable_and_hide_credentials() {
        let variable = |pairs: &[(&str, &str)]| config(pairs).unwrap_err().variable;
        assert_eq!(
            variable(&[("CHORUS_NOTIFY_LOG", "perhaps")]),
            "CHORUS_NOTIFY_LOG"
        );
        assert_eq!(
            variable(&[("CHORUS_NOTIFY_LOG", "false")]),
            "CHORUS_NOTIFY_LOG"
        );
        assert_eq!(
            variable(&[("CHORUS_WEBHOOK_URL", "hooks.test")]),
            "CHORUS_WEBHOOK_URL"
        );
        assert_eq!(
            variable(&[
                ("CHORUS_SMTP_FROM", "x"),
                ("CHORUS_SMTP_URL", "smtp://h:25")
            ]),
            "CHORUS_SMTP_FROM"
        );
        assert_eq!(
            variable(&[("CHORUS_NOTIFY_MAX_ATTEMPTS", "0")]),
            "CHORUS_NOTIFY_MAX_ATTEMPTS"
        );
        let err = config(&[("CHORUS_SMTP_URL", "http://user:pw@mail.test")]).unwrap_err();
        assert_eq!(err.variable, "CHORUS_SMTP_URL");
        assert!(!err.to_string().contains("pw"), "{err}");
    }
}
