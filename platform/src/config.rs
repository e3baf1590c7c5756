//! Configuration from the environment: defaults, then `CHORUS_…` variables,
//! validated at start-up. A bad value stops the process naming the variable;
//! a secret's value never appears in an error.

use std::str::FromStr;
use std::time::Duration;

/// A configuration value that cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration: {variable}={value:?}: {problem}")]
pub struct ConfigError {
    pub variable: String,
    pub value: String,
    pub problem: String,
}

impl ConfigError {
    /// `variable` holds `value`, which is wrong because of `problem`. Pass a
    /// redacted `value` (or `""`) for secrets and URLs with passwords.
    pub fn new(variable: &str, value: &str, problem: &str) -> ConfigError {
        ConfigError {
            variable: variable.to_string(),
            value: value.to_string(),
            problem: problem.to_string(),
        }
    }
}

/// Typed access to environment variables; every error names the variable.
pub struct Env {
    /// `None`: the process environment.
    pairs: Option<Vec<(String, String)>>,
}

impl Env {
    pub fn process() -> Env {
        Env { pairs: None }
    }

    /// An environment made of fixed pairs, for tests.
    pub fn from_pairs(pairs: &[(&str, &str)]) -> Env {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Env { pairs: Some(pairs) }
    }

    pub fn get(&self, name: &str) -> Option<String> {
        match &self.pairs {
            None => std::env::var(name).ok(),
            Some(pairs) => pairs
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone()),
        }
    }

    fn vars(&self) -> Vec<(String, String)> {
        match &self.pairs {
            None => std::env::vars().collect(),
            Some(pairs) => pairs.clone(),
        }
    }

    /// Every variable whose name starts with `prefix`, as (rest of the name,
    /// value), blank values left out.
    pub fn with_prefix(&self, prefix: &str) -> Vec<(String, String)> {
        self.vars()
            .into_iter()
            .filter_map(|(name, value)| {
                let rest = name.strip_prefix(prefix)?;
                (!value.trim().is_empty()).then(|| (rest.to_string(), value))
            })
            .collect()
    }

    /// The value of `name` unless it is unset or blank.
    pub fn optional(&self, name: &str) -> Option<String> {
        self.get(name).filter(|value| !value.trim().is_empty())
    }

    pub fn string(&self, name: &str, default: &str) -> Result<String, ConfigError> {
        match self.get(name) {
            Some(value) if value.trim().is_empty() => {
                Err(ConfigError::new(name, &value, "must not be empty"))
            }
            Some(value) => Ok(value),
            None => Ok(default.to_string()),
        }
    }

    /// As [`Env::string`], for a secret: an error never shows the value.
    pub fn secret(&self, name: &str, default: &str) -> Result<String, ConfigError> {
        self.string(name, default).map_err(|e| ConfigError {
            value: String::new(),
            ..e
        })
    }

    /// The value of `name`, which must be set and not blank; `why` says what
    /// needs it. The error shows no value, so this serves secrets too.
    pub fn required(&self, name: &str, why: &str) -> Result<String, ConfigError> {
        self.optional(name)
            .ok_or_else(|| ConfigError::new(name, "", why))
    }

    pub fn parse<T: FromStr>(&self, name: &str, default: T) -> Result<T, ConfigError>
    where
        T::Err: std::fmt::Display,
    {
        match self.get(name) {
            None => Ok(default),
            Some(value) => value
                .trim()
                .parse()
                .map_err(|e: T::Err| ConfigError::new(name, &value, &e.to_string())),
        }
    }

    /// As [`Env::parse`], and the value must be at least 1.
    pub fn positive<T>(&self, name: &str, default: T) -> Result<T, ConfigError>
    where
        T: FromStr + PartialOrd + From<u8> + std::fmt::Display,
        T::Err: std::fmt::Display,
    {
        let value = self.parse(name, default)?;
        if value < T::from(1) {
            return Err(ConfigError::new(
                name,
                &value.to_string(),
                "must be at least 1",
            ));
        }
        Ok(value)
    }

    /// A duration given in milliseconds (a `…_MS` variable), zero allowed.
    pub fn duration_ms(&self, name: &str, default_ms: u64) -> Result<Duration, ConfigError> {
        self.parse(name, default_ms).map(Duration::from_millis)
    }

    /// A duration given in milliseconds (a `…_MS` variable), at least 1 ms.
    pub fn positive_duration_ms(
        &self,
        name: &str,
        default_ms: u64,
    ) -> Result<Duration, ConfigError> {
        self.positive(name, default_ms).map(Duration::from_millis)
    }

    pub fn url(&self, name: &str, default: &str) -> Result<String, ConfigError> {
        let value = self.string(name, default)?;
        check_url(name, &value)?;
        Ok(value.trim_end_matches('/').to_string())
    }

    pub fn optional_url(&self, name: &str) -> Result<Option<String>, ConfigError> {
        match self.optional(name) {
            None => Ok(None),
            Some(value) => {
                check_url(name, &value)?;
                Ok(Some(value))
            }
        }
    }

    /// As [`Env::url`] without a default: unset or blank is an error saying `why`.
    pub fn required_url(&self, name: &str, why: &str) -> Result<String, ConfigError> {
        let value = self.required(name, why)?;
        check_url(name, &value)?;
        Ok(value.trim_end_matches('/').to_string())
    }
}

/// Checks that `value` of `variable` starts with one of `schemes` (such as
/// `"https://"`); the error says `problem` and shows `shown`, which is `value`
/// with any credentials taken out.
pub fn check_scheme(
    variable: &str,
    value: &str,
    shown: &str,
    schemes: &[&str],
    problem: &str,
) -> Result<(), ConfigError> {
    if schemes.iter().any(|scheme| value.starts_with(scheme)) {
        Ok(())
    } else {
        Err(ConfigError::new(variable, shown, problem))
    }
}

/// Checks that `value` of `variable` is an `https://` URL, or an `http://`
/// one to a loopback host (`localhost`, `127.0.0.0/8`, `::1`: a test double
/// on this machine, where nothing crosses a network). For the addresses that
/// receive secrets or whose answers decide who is trusted; the error shows
/// the URL without its credentials.
pub fn check_secure_url(variable: &str, value: &str) -> Result<(), ConfigError> {
    let shown = crate::redact(value);
    let parsed = url::Url::parse(value.trim())
        .map_err(|e| ConfigError::new(variable, &shown, &format!("is not a URL: {e}")))?;
    let loopback = match parsed.host() {
        Some(url::Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.to_canonical().is_loopback(),
        None => false,
    };
    match parsed.scheme() {
        "https" => Ok(()),
        "http" if loopback => Ok(()),
        "http" => Err(ConfigError::new(
            variable,
            &shown,
            "must be an https:// URL (http:// is allowed only to a loopback host: \
             localhost, 127.0.0.1, ::1)",
        )),
        _ => Err(ConfigError::new(
            variable,
            &shown,
            "must be an https:// URL",
        )),
    }
}

fn check_url(name: &str, value: &str) -> Result<(), ConfigError> {
    check_scheme(
        name,
        value,
        value,
        &["http://", "https://"],
        "must be an http:// or https:// URL",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bad_value_names_the_variable() {
        let env = Env::from_pairs(&[("CHORUS_DB_POOL_SIZE", "many")]);
        let err = env.parse::<u32>("CHORUS_DB_POOL_SIZE", 8).unwrap_err();
        assert_eq!(err.variable, "CHORUS_DB_POOL_SIZE");
        assert!(err.to_string().contains("CHORUS_DB_POOL_SIZE"));
        let env = Env::from_pairs(&[("CHORUS_SCHEMA_REGISTRY_URL", "localhost:8081")]);
        assert!(env.url("CHORUS_SCHEMA_REGISTRY_URL", "http://x").is_err());
    }

    #[test]
    fn checked_values_name_the_variable_and_secrets_stay_hidden() {
        let env = Env::from_pairs(&[("N", "0"), ("S", "  "), ("T", "0")]);
        let err = env.positive::<i32>("N", 6).unwrap_err();
        assert_eq!((err.variable.as_str(), err.value.as_str()), ("N", "0"));
        assert_eq!(env.positive("UNSET", 6).unwrap(), 6);
        let err = env.secret("S", "dflt").unwrap_err();
        assert_eq!((err.variable.as_str(), err.value.as_str()), ("S", ""));
        assert_eq!(env.secret("UNSET", "dflt").unwrap(), "dflt");
        assert_eq!(env.required("S", "needed").unwrap_err().problem, "needed");
        assert_eq!(env.duration_ms("T", 5).unwrap(), Duration::ZERO);
        assert_eq!(env.positive_duration_ms("T", 5).unwrap_err().variable, "T");
        assert_eq!(
            env.positive_duration_ms("UNSET", 5).unwrap(),
            Duration::from_millis(5)
        );
    }

    #[test]
    fn a_secure_url_is_https_or_loopback_http() {
        for good in [
            "https://idp.example/certs",
            "http://127.0.0.1:8090/pay",
            "http://localhost/certs",
            "http://[::1]:9/x",
        ] {
            assert!(check_secure_url("U", good).is_ok(), "{good}");
        }
        for bad in [
            "http://idp.example/certs",
            "http://10.0.0.1/pay",
            "http://localhost.evil.example/",
            "ftp://127.0.0.1/",
            "idp.example/certs",
        ] {
            assert_eq!(
                check_secure_url("U", bad).unwrap_err().variable,
                "U",
                "{bad}"
            );
        }
        let err = check_secure_url("U", "http://user:pw-9f2@pay.example/").unwrap_err();
        assert!(!err.to_string().contains("pw-9f2"), "{err}");
    }

    #[test]
    fn defaults_apply_when_unset() {
        let env = Env::from_pairs(&[]);
        assert_eq!(env.parse("CHORUS_DB_POOL_SIZE", 8u32).unwrap(), 8);
        assert_eq!(env.url("U", "http://a/b/").unwrap(), "http://a/b");
    }
}
