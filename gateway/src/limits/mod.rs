//! The gateway's limits at the edge, what each protects and how it is
//! configured: connection timeouts and caps (served by [`server`]), the
//! per-address request rate checked before any token is verified, the cap on
//! requests in flight and their timeout ([`requests`]), and the caps on
//! long-polls ([`long_polls`]). Every limit has a `CHORUS_GATEWAY_…`
//! variable with a production default, validated at start-up.

pub mod client_addr;
mod connection;
pub mod fd_limit;
pub mod long_polls;
pub mod requests;
pub mod server;

use std::time::Duration;

use chorus_platform::{ConfigError, Env};

pub use client_addr::{ClientAddr, TrustedProxies};
pub use long_polls::LongPolls;
pub use requests::EdgeGuard;

use crate::routes::order_status::MAX_WAIT_SECS;

/// How much longer than the longest long-poll (and than the publish timeout)
/// a request may run before the gateway gives up on it.
const REQUEST_TIMEOUT_MARGIN: Duration = Duration::from_secs(5);

/// Every limit, as configured.
#[derive(Debug, Clone)]
pub struct Limits {
    /// A connection must deliver a request's complete headers within this
    /// time of its first byte (or of being opened, for its first request).
    pub header_timeout: Duration,
    /// A keep-alive connection waiting for its next request is closed after this.
    pub idle_timeout: Duration,
    /// A request (its body read, its handler run) answers 408 after this.
    pub request_timeout: Duration,
    /// Connections held at once; more wait in the listen backlog.
    pub max_connections: usize,
    /// Whether `max_connections` was set, not derived from the default.
    pub max_connections_set: bool,
    /// Connections held at once from one peer address (a quarter of
    /// `max_connections` by default).
    pub max_connections_per_addr: usize,
    /// Requests being handled at once; more answer 503 `overloaded`.
    pub max_in_flight: usize,
    /// Long-polls waiting at once, in all and per token subject.
    pub long_polls: usize,
    pub long_polls_per_subject: usize,
    /// Requests per second (and burst) per client address, before authentication.
    pub addr_rate_per_sec: u32,
    pub addr_rate_burst: u32,
    /// Proxies whose `X-Forwarded-For` names the client.
    pub trusted_proxies: TrustedProxies,
    /// Orders not yet final a customer may have; more answer 429 `open_order_limit`.
    pub open_orders_per_customer: u32,
}

pub const DEFAULT_MAX_CONNECTIONS: usize = 10_000;

impl Limits {
    /// Reads every `CHORUS_GATEWAY_…` limit. `subject_rate_per_sec` (the
    /// per-subject rate) sets the per-address default, ten subjects' worth:
    /// one address often carries many customers (a storefront's servers, a
    /// NAT). A request must be allowed to outlast the longest long-poll and
    /// `publish_timeout`.
    pub fn from_env(
        env: &Env,
        subject_rate_per_sec: u32,
        publish_timeout: Duration,
    ) -> Result<Limits, ConfigError> {
        let addr_rate_per_sec = env.positive(
            "CHORUS_GATEWAY_ADDR_RATE_LIMIT_PER_SEC",
            subject_rate_per_sec.saturating_mul(10),
        )?;
        let max_connections =
            env.positive("CHORUS_GATEWAY_MAX_CONNECTIONS", DEFAULT_MAX_CONNECTIONS)?;
        let limits = Limits {
            header_timeout: env.positive_duration_ms("CHORUS_GATEWAY_HEADER_TIMEOUT_MS", 10_000)?,
            idle_timeout: env.positive_duration_ms("CHORUS_GATEWAY_IDLE_TIMEOUT_MS", 60_000)?,
            request_timeout: env
                .positive_duration_ms("CHORUS_GATEWAY_REQUEST_TIMEOUT_MS", 60_000)?,
            max_connections,
            max_connections_set: env.optional("CHORUS_GATEWAY_MAX_CONNECTIONS").is_some(),
            // No one address takes more than a quarter of the connections.
            max_connections_per_addr: env.positive(
                "CHORUS_GATEWAY_MAX_CONNECTIONS_PER_ADDR",
                (max_connections / 4).max(1),
            )?,
            max_in_flight: env.positive("CHORUS_GATEWAY_MAX_IN_FLIGHT", 4_096)?,
            long_polls: env.positive("CHORUS_GATEWAY_LONG_POLLS", 2_048)?,
            long_polls_per_subject: env.positive("CHORUS_GATEWAY_LONG_POLLS_PER_SUBJECT", 16)?,
            addr_rate_per_sec,
            addr_rate_burst: env.positive(
                "CHORUS_GATEWAY_ADDR_RATE_LIMIT_BURST",
                addr_rate_per_sec.saturating_mul(2),
            )?,
            trusted_proxies: TrustedProxies::from_env(env, "CHORUS_GATEWAY_TRUSTED_PROXIES")?,
            open_orders_per_customer: env
                .positive("CHORUS_GATEWAY_OPEN_ORDERS_PER_CUSTOMER", 100)?,
        };
        limits.check(publish_timeout)?;
        Ok(limits)
    }

    /// The limits must fit together.
    fn check(&self, publish_timeout: Duration) -> Result<(), ConfigError> {
        let at_least =
            Duration::from_secs(MAX_WAIT_SECS).max(publish_timeout) + REQUEST_TIMEOUT_MARGIN;
        if self.request_timeout < at_least {
            return Err(ConfigError::new(
                "CHORUS_GATEWAY_REQUEST_TIMEOUT_MS",
                &self.request_timeout.as_millis().to_string(),
                &format!(
                    "must be at least {} ms: {MAX_WAIT_SECS} s of long-poll (or \
                     CHORUS_PUBLISH_TIMEOUT_MS if longer) plus {} s",
                    at_least.as_millis(),
                    REQUEST_TIMEOUT_MARGIN.as_secs()
                ),
            ));
        }
        let bad = |variable: &str, value: usize, problem: String| {
            Err(ConfigError::new(variable, &value.to_string(), &problem))
        };
        if self.max_connections_per_addr > self.max_connections {
            return bad(
                "CHORUS_GATEWAY_MAX_CONNECTIONS_PER_ADDR",
                self.max_connections_per_addr,
                format!(
                    "must be at most CHORUS_GATEWAY_MAX_CONNECTIONS ({})",
                    self.max_connections
                ),
            );
        }
        if self.long_polls >= self.max_in_flight {
            return bad(
                "CHORUS_GATEWAY_LONG_POLLS",
                self.long_polls,
                format!(
                    "must be below CHORUS_GATEWAY_MAX_IN_FLIGHT ({}), so that long-polls \
                     never take every request's place",
                    self.max_in_flight
                ),
            );
        }
        if self.long_polls_per_subject > self.long_polls {
            return bad(
                "CHORUS_GATEWAY_LONG_POLLS_PER_SUBJECT",
                self.long_polls_per_subject,
                format!(
                    "must be at most CHORUS_GATEWAY_LONG_POLLS ({})",
                    self.long_polls
                ),
            );
        }
        Ok(())
    }
}

impl Default for Limits {
    /// The production defaults (what an empty environment gives).
    fn default() -> Limits {
        Limits::from_env(&Env::from_pairs(&[]), 100, Duration::from_secs(15))
            .expect("the defaults fit together")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(pairs: &[(&str, &str)]) -> Result<Limits, ConfigError> {
        Limits::from_env(&Env::from_pairs(pairs), 100, Duration::from_secs(15))
    }

    #[test]
    fn defaults() {
        let limits = limits(&[]).unwrap();
        assert_eq!(limits.header_timeout, Duration::from_secs(10));
        assert_eq!(limits.idle_timeout, Duration::from_secs(60));
        assert_eq!(limits.request_timeout, Duration::from_secs(60));
        assert_eq!(limits.max_connections, 10_000);
        assert!(!limits.max_connections_set);
        assert_eq!(limits.max_connections_per_addr, 2_500);
        assert_eq!(limits.addr_rate_per_sec, 1_000);
        assert_eq!(limits.addr_rate_burst, 2_000);
        assert_eq!(limits.long_polls, 2_048);
        assert_eq!(limits.long_polls_per_subject, 16);
        assert_eq!(limits.open_orders_per_customer, 100);
        assert!(limits.trusted_proxies.is_empty());
    }

    #[test]
    fn bad_values_name_their_variable() {
        for (variable, value) in [
            ("CHORUS_GATEWAY_HEADER_TIMEOUT_MS", "0"),
            ("CHORUS_GATEWAY_IDLE_TIMEOUT_MS", "soon"),
            ("CHORUS_GATEWAY_REQUEST_TIMEOUT_MS", "30000"),
            ("CHORUS_GATEWAY_MAX_CONNECTIONS", "0"),
            ("CHORUS_GATEWAY_MAX_CONNECTIONS_PER_ADDR", "20000"),
            ("CHORUS_GATEWAY_MAX_IN_FLIGHT", "-1"),
            ("CHORUS_GATEWAY_LONG_POLLS", "4096"),
            ("CHORUS_GATEWAY_LONG_POLLS_PER_SUBJECT", "4000"),
            ("CHORUS_GATEWAY_ADDR_RATE_LIMIT_PER_SEC", "0"),
            ("CHORUS_GATEWAY_ADDR_RATE_LIMIT_BURST", "many"),
            ("CHORUS_GATEWAY_TRUSTED_PROXIES", "10.0.0.0/33"),
            ("CHORUS_GATEWAY_TRUSTED_PROXIES", "proxy.internal"),
            ("CHORUS_GATEWAY_OPEN_ORDERS_PER_CUSTOMER", "0"),
        ] {
            let err = limits(&[(variable, value)]).unwrap_err();
            assert_eq!(err.variable, variable, "{value}: {err}");
        }
    }

    #[test]
    fn the_request_timeout_outlasts_a_longer_publish_timeout() {
        let env = Env::from_pairs(&[("CHORUS_GATEWAY_REQUEST_TIMEOUT_MS", "40000")]);
        assert!(Limits::from_env(&env, 100, Duration::from_secs(15)).is_ok());
        let err = Limits::from_env(&env, 100, Duration::from_secs(36)).unwrap_err();
        assert_eq!(err.variable, "CHORUS_GATEWAY_REQUEST_TIMEOUT_MS");
    }
}
