//! How bearer tokens are verified, from `CHORUS_JWT_…`: an identity
//! provider's JWKS (RS256, ES256) when `CHORUS_JWT_JWKS_URL` is set,
//! otherwise HS256 with the shared `CHORUS_JWT_SECRET` (development, or a
//! single trusted minter). A shared secret shorter than 32 bytes, or the
//! public development secret outside development, stops the gateway.

use std::time::Duration;

use chorus_platform::{ConfigError, Env, Secret};

use super::claims::RoleClaim;
use chorus_platform::token::DEV_JWT_SECRET;

/// HS256 secrets shorter than this are refused (RFC 7518 §3.2: a key of at
/// least the hash's size).
pub const MIN_SECRET_BYTES: usize = 32;
/// Default least time between two JWKS fetches caused by unknown `kid`s.
pub const DEFAULT_JWKS_MIN_REFRESH: Duration = Duration::from_secs(10);

#[derive(Debug, Clone)]
pub enum TokenKeys {
    /// HS256 with one shared secret.
    SharedSecret(Secret),
    /// RS256 and ES256 keys from an identity provider's JWKS.
    Jwks { url: String, min_refresh: Duration },
}

#[derive(Debug, Clone)]
pub struct AuthSettings {
    pub keys: TokenKeys,
    /// Checked against `iss` when set.
    pub issuer: Option<String>,
    /// Checked against `aud` when set.
    pub audience: Option<String>,
    pub role_claim: RoleClaim,
}

impl AuthSettings {
    pub fn shared_secret(secret: &str) -> AuthSettings {
        AuthSettings {
            keys: TokenKeys::SharedSecret(Secret::new(secret)),
            issuer: None,
            audience: None,
            role_claim: RoleClaim::default(),
        }
    }

    pub fn jwks(url: &str) -> AuthSettings {
        AuthSettings {
            keys: TokenKeys::Jwks {
                url: url.to_string(),
                min_refresh: DEFAULT_JWKS_MIN_REFRESH,
            },
            ..AuthSettings::shared_secret("")
        }
    }

    pub fn from_env(env: &Env, dev: bool) -> Result<AuthSettings, ConfigError> {
        let keys = match env.optional_url("CHORUS_JWT_JWKS_URL")? {
            Some(url) => TokenKeys::Jwks {
                url,
                min_refresh: DEFAULT_JWKS_MIN_REFRESH,
            },
            None => TokenKeys::SharedSecret(shared_secret(env, dev)?),
        };
        let role_claim = env.string("CHORUS_JWT_ROLE_CLAIM", "role")?;
        Ok(AuthSettings {
            keys,
            issuer: env.optional("CHORUS_JWT_ISSUER"),
            audience: env.optional("CHORUS_JWT_AUDIENCE"),
            role_claim: RoleClaim::parse(&role_claim).map_err(|problem| {
                ConfigError::new("CHORUS_JWT_ROLE_CLAIM", &role_claim, &problem)
            })?,
        })
    }
}

fn shared_secret(env: &Env, dev: bool) -> Result<Secret, ConfigError> {
    let secret = env.secret("CHORUS_JWT_SECRET", DEV_JWT_SECRET)?;
    if secret == DEV_JWT_SECRET && !dev {
        return Err(ConfigError::new(
            "CHORUS_JWT_SECRET",
            "<the public development secret>",
            "refusing to start with the development JWT secret; set CHORUS_JWT_SECRET \
             to a secret of your own (or CHORUS_JWT_JWKS_URL to an identity provider's keys), \
             or CHORUS_DEV=true for a development run",
        ));
    }
    if secret.len() < MIN_SECRET_BYTES {
        return Err(ConfigError::new(
            "CHORUS_JWT_SECRET",
            "",
            &format!(
                "an HS256 secret must be at least {MIN_SECRET_BYTES} bytes (this one has {})",
                secret.len()
            ),
        ));
    }
    Ok(Secret::new(secret))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_short_shared_secret_is_refused_without_showing_it() {
        let env = Env::from_pairs(&[("CHORUS_JWT_SECRET", "s3cret-of-our-own")]);
        let err = AuthSettings::from_env(&env, false).unwrap_err();
        assert_eq!(err.variable, "CHORUS_JWT_SECRET");
        assert!(err.problem.contains("at least 32 bytes"), "{err}");
        assert!(!err.to_string().contains("s3cret"), "{err}");
        let long = "s3cret-of-our-own-long-enough-for-hs256";
        let env = Env::from_pairs(&[("CHORUS_JWT_SECRET", long)]);
        let settings = AuthSettings::from_env(&env, false).unwrap();
        assert!(matches!(settings.keys, TokenKeys::SharedSecret(s) if s.expose() == long));
    }

    #[test]
    fn a_jwks_url_needs_no_shared_secret() {
        let env = Env::from_pairs(&[
            (
                "CHORUS_JWT_JWKS_URL",
                "https://idp.example/realms/shop/certs",
            ),
            ("CHORUS_JWT_ISSUER", "https://idp.example/realms/shop"),
            ("CHORUS_JWT_AUDIENCE", "chorus"),
            ("CHORUS_JWT_ROLE_CLAIM", "realm_access.roles"),
        ]);
        let settings = AuthSettings::from_env(&env, false).unwrap();
        assert!(
            matches!(settings.keys, TokenKeys::Jwks { ref url, .. } if url.ends_with("/certs"))
        );
        assert_eq!(
            settings.issuer.as_deref(),
            Some("https://idp.example/realms/shop")
        );
        assert_eq!(settings.audience.as_deref(), Some("chorus"));
        assert_eq!(settings.role_claim.as_str(), "realm_access.roles");
        for (variable, value) in [
            ("CHORUS_JWT_JWKS_URL", "idp.example/certs"),
            ("CHORUS_JWT_ROLE_CLAIM", "realm_access..roles"),
        ] {
            // The first pair of a name wins.
            let env = Env::from_pairs(&[
                (variable, value),
                ("CHORUS_JWT_JWKS_URL", "https://idp.example/certs"),
            ]);
            assert_eq!(
                AuthSettings::from_env(&env, false).unwrap_err().variable,
                variable
            );
        }
    }
}
