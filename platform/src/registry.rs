//! Schema-registry settings from the environment: its base URL and, for a
//! registry that needs it (Confluent Cloud, a secured Apicurio), basic auth.

use chorus_avro::RegistrySettings;

use crate::config::{ConfigError, Env};

/// The registry of the local stack unless `CHORUS_SCHEMA_REGISTRY_URL` says otherwise.
pub const DEFAULT_REGISTRY_URL: &str = "http://127.0.0.1:8081/apis/ccompat/v7";

/// `CHORUS_SCHEMA_REGISTRY_URL`, `…_USERNAME`, `…_PASSWORD`.
pub fn registry_from_env(env: &Env) -> Result<RegistrySettings, ConfigError> {
    let url = env.url("CHORUS_SCHEMA_REGISTRY_URL", DEFAULT_REGISTRY_URL)?;
    registry_with_url(env, url)
}

/// As [`registry_from_env`], with the URL given (a CLI flag).
pub fn registry_with_url(env: &Env, url: String) -> Result<RegistrySettings, ConfigError> {
    let settings = RegistrySettings::new(url);
    match env.optional("CHORUS_SCHEMA_REGISTRY_USERNAME") {
        None => Ok(settings),
        Some(username) => {
            let password = env.required(
                "CHORUS_SCHEMA_REGISTRY_PASSWORD",
                "required when CHORUS_SCHEMA_REGISTRY_USERNAME is set",
            )?;
            Ok(settings.with_basic_auth(username, password))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_auth_needs_both_halves_and_stays_out_of_debug() {
        let env = Env::from_pairs(&[("CHORUS_SCHEMA_REGISTRY_USERNAME", "svc")]);
        assert_eq!(
            registry_from_env(&env).unwrap_err().variable,
            "CHORUS_SCHEMA_REGISTRY_PASSWORD"
        );
        let env = Env::from_pairs(&[
            ("CHORUS_SCHEMA_REGISTRY_USERNAME", "svc"),
            ("CHORUS_SCHEMA_REGISTRY_PASSWORD", "pa55-word"),
        ]);
        let settings = registry_from_env(&env).unwrap();
        assert_eq!(settings.url, DEFAULT_REGISTRY_URL);
        assert!(!format!("{settings:?}").contains("pa55"));
    }
}
