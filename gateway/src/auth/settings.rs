//! How bearer tokens are verified, from `CHORUS_JWT_…`: an identity
//! provider's JWKS (RS256, ES256) when `CHORUS_JWT_JWKS_URL` is set,
//! otherwise HS256 with the shared `CHORUS_JWT_SECRET` (development, or a
//! single trusted minter) and, while it is being rotated out, the secret it
//! replaced in `CHORUS_JWT_SECRET_PREVIOUS`. Either secret shorter than 32
//! bytes, or the public development secret outside development (in any
//! spelling: surrounding blanks or quotes, other letter case), stops the
//! gateway naming its variable; so does a previous secret equal to the
//! current one, or set beside a JWKS URL. A JWKS URL must be `https://`
//! (`http://` only to a loopback host) and comes with the issuer and the
//! audience tokens must name: without them a token the same provider issued
//! to any other application would be accepted.

use std::time::Duration;

use chorus_platform::{ConfigError, Env, Secret, check_secure_url};

use super::claims::RoleClaim;
use chorus_platform::token::DEV_JWT_SECRET;

/// HS256 secrets shorter than this are refused (RFC 7518 §3.2: a key of at
/// least the hash's size).
pub const MIN_SECRET_BYTES: usize = 32;
pub const SECRET_VARIABLE: &str = "CHORUS_JWT_SECRET";
pub const PREVIOUS_SECRET_VARIABLE: &str = "CHORUS_JWT_SECRET_PREVIOUS";
pub const JWKS_URL_VARIABLE: &str = "CHORUS_JWT_JWKS_URL";
/// Default least time between two JWKS fetches caused by unknown `kid`s.
pub const DEFAULT_JWKS_MIN_REFRESH: Duration = Duration::from_secs(10);

#[derive(Debug, Clone)]
pub enum TokenKeys {
    /// HS256 with a shared secret. Tokens signed with `previous` verify too,
    /// so the secret can rotate without a hard cut; the gateway signs nothing.
    SharedSecret {
        current: Secret,
        previous: Option<Secret>,
    },
    /// RS256 and ES256 keys from an identity provider's JWKS.
    Jwks { url: String, min_refresh: Duration },
}

#[derive(Debug, Clone)]
pub struct AuthSettings {
    pub keys: TokenKeys,
    /// Checked against `iss` when set (always, with a JWKS).
    pub issuer: Option<String>,
    /// Checked against `aud` when set (always, with a JWKS).
    pub audience: Option<String>,
    pub role_claim: RoleClaim,
}

impl AuthSettings {
    pub fn shared_secret(secret: &str) -> AuthSettings {
        AuthSettings {
            keys: TokenKeys::SharedSecret {
                current: Secret::new(secret),
                previous: None,
            },
            issuer: None,
            audience: None,
            role_claim: RoleClaim::default(),
        }
    }

    /// An identity provider's keys, for tokens it issued as `issuer` to `audience`.
    pub fn jwks(url: &str, issuer: &str, audience: &str) -> AuthSettings {
        AuthSettings {
            keys: TokenKeys::Jwks {
                url: url.to_string(),
                min_refresh: DEFAULT_JWKS_MIN_REFRESH,
            },
            issuer: Some(issuer.to_string()),
            audience: Some(audience.to_string()),
            role_claim: RoleClaim::default(),
        }
    }

    /// HS256 with `current`, still accepting tokens signed with `previous`.
    pub fn shared_secret_rotating(current: &str, previous: &str) -> AuthSettings {
        AuthSettings {
            keys: TokenKeys::SharedSecret {
                current: Secret::new(current),
                previous: Some(Secret::new(previous)),
            },
            ..AuthSettings::shared_secret("")
        }
    }

    pub fn from_env(env: &Env, dev: bool) -> Result<AuthSettings, ConfigError> {
        let jwks_url = env.optional_url(JWKS_URL_VARIABLE)?;
        let keys = match jwks_url {
            Some(url) => {
                check_secure_url(JWKS_URL_VARIABLE, &url)?;
                // Refused rather than ignored: whoever set it expects tokens
                // signed with it to verify, and none would. (The current
                // secret is left unread, as before: compose always sets it.)
                if env.optional(PREVIOUS_SECRET_VARIABLE).is_some() {
                    return Err(ConfigError::new(
                        PREVIOUS_SECRET_VARIABLE,
                        "",
                        "has no use with CHORUS_JWT_JWKS_URL: tokens are then verified \
                         with the identity provider's keys only (its JWKS rotates them); \
                         unset it",
                    ));
                }
                TokenKeys::Jwks {
                    url,
                    min_refresh: DEFAULT_JWKS_MIN_REFRESH,
                }
            }
            None => shared_secrets(env, dev)?,
        };
        let (issuer, audience) = match keys {
            TokenKeys::Jwks { .. } => (
                Some(env.required(
                    "CHORUS_JWT_ISSUER",
                    "required when CHORUS_JWT_JWKS_URL is set: the identity provider's \
                     issuer (`iss` of its tokens), so tokens of another issuer are refused",
                )?),
                Some(env.required(
                    "CHORUS_JWT_AUDIENCE",
                    "required when CHORUS_JWT_JWKS_URL is set: the audience the provider \
                     issues chorus's tokens for (`aud`), so tokens it issued to other \
                     applications are refused",
                )?),
            ),
            TokenKeys::SharedSecret { .. } => (
                env.optional("CHORUS_JWT_ISSUER"),
                env.optional("CHORUS_JWT_AUDIENCE"),
            ),
        };
        let role_claim = env.string("CHORUS_JWT_ROLE_CLAIM", "role")?;
        Ok(AuthSettings {
            keys,
            issuer,
            audience,
            role_claim: RoleClaim::parse(&role_claim).map_err(|problem| {
                ConfigError::new("CHORUS_JWT_ROLE_CLAIM", &role_claim, &problem)
            })?,
        })
    }
}

fn shared_secrets(env: &Env, dev: bool) -> Result<TokenKeys, ConfigError> {
    let current = env.secret(SECRET_VARIABLE, DEV_JWT_SECRET)?;
    check_secret(SECRET_VARIABLE, &current, dev)?;
    // Unset or blank: no rotation under way.
    let previous = env.optional(PREVIOUS_SECRET_VARIABLE);
    if let Some(previous) = &previous {
        check_secret(PREVIOUS_SECRET_VARIABLE, previous, dev)?;
        if *previous == current {
            // Most likely the new secret pasted twice: the old tokens, which
            // this variable is there to keep working, would all be refused.
            return Err(ConfigError::new(
                PREVIOUS_SECRET_VARIABLE,
                "",
                "is the same as CHORUS_JWT_SECRET: during a rotation it holds the \
                 secret being retired (unset it when no rotation is under way)",
            ));
        }
    }
    Ok(TokenKeys::SharedSecret {
        current: Secret::new(current),
        previous: previous.map(Secret::new),
    })
}

/// Whether `secret` is the public development secret however it is spelt:
/// blanks or quotes around it (an env file's `" …"`) or another letter case
/// leave it as public as it was.
fn is_development_secret(secret: &str) -> bool {
    secret
        .trim_matches(|c: char| c.is_whitespace() || c == '"' || c == '\'')
        .eq_ignore_ascii_case(DEV_JWT_SECRET)
}

/// The rules every HS256 secret the gateway verifies with must meet.
fn check_secret(variable: &str, secret: &str, dev: bool) -> Result<(), ConfigError> {
    if is_development_secret(secret) && !dev {
        return Err(ConfigError::new(
            variable,
            "<the public development secret>",
            &format!(
                "refusing to start with the development JWT secret; set {variable} \
                 to a secret of your own (or CHORUS_JWT_JWKS_URL to an identity provider's keys), \
                 or CHORUS_DEV=true for a development run"
            ),
        ));
    }
    if secret.len() < MIN_SECRET_BYTES {
        return Err(ConfigError::new(
            variable,
            "",
            &format!(
                "an HS256 secret must be at least {MIN_SECRET_BYTES} bytes (this one has {})",
                secret.len()
            ),
        ));
    }
    Ok(())
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
        assert!(matches!(
            settings.keys,
            TokenKeys::SharedSecret { current, previous: None } if current.expose() == long
        ));
    }

    const CURRENT: &str = "s3cret-of-our-own-long-enough-for-hs256";
    const RETIRING: &str = "the-retiring-secret-long-enough-for-hs256";

    #[test]
    fn a_previous_secret_is_kept_beside_the_current_one() {
        let env = Env::from_pairs(&[
            ("CHORUS_JWT_SECRET", CURRENT),
            ("CHORUS_JWT_SECRET_PREVIOUS", RETIRING),
        ]);
        let settings = AuthSettings::from_env(&env, false).unwrap();
        assert!(matches!(
            &settings.keys,
            TokenKeys::SharedSecret { current, previous: Some(previous) }
                if current.expose() == CURRENT && previous.expose() == RETIRING
        ));
        assert!(!format!("{settings:?}").contains("retiring"));
        // Blank is how a deployment template says "no rotation under way".
        let env = Env::from_pairs(&[
            ("CHORUS_JWT_SECRET", CURRENT),
            ("CHORUS_JWT_SECRET_PREVIOUS", " "),
        ]);
        let settings = AuthSettings::from_env(&env, false).unwrap();
        assert!(matches!(
            settings.keys,
            TokenKeys::SharedSecret { previous: None, .. }
        ));
    }

    #[test]
    fn a_previous_secret_meets_the_current_ones_rules_or_stops_the_gateway() {
        let refused = |previous: &str, dev: bool| {
            let env = Env::from_pairs(&[
                ("CHORUS_JWT_SECRET", CURRENT),
                ("CHORUS_JWT_SECRET_PREVIOUS", previous),
            ]);
            AuthSettings::from_env(&env, dev).unwrap_err()
        };
        let err = refused("weak-0ld-secret", false);
        assert_eq!(err.variable, "CHORUS_JWT_SECRET_PREVIOUS");
        assert!(err.problem.contains("at least 32 bytes"), "{err}");
        assert!(!err.to_string().contains("weak-0ld"), "{err}");
        // Even in development: 32 bytes is what HS256 needs, not a policy.
        assert_eq!(
            refused("weak-0ld-secret", true).variable,
            "CHORUS_JWT_SECRET_PREVIOUS"
        );

        let err = refused(DEV_JWT_SECRET, false);
        assert_eq!(err.variable, "CHORUS_JWT_SECRET_PREVIOUS");
        assert!(err.problem.contains("development JWT secret"), "{err}");
        assert!(!err.to_string().contains(DEV_JWT_SECRET), "{err}");
        let env = Env::from_pairs(&[
            ("CHORUS_JWT_SECRET", CURRENT),
            ("CHORUS_JWT_SECRET_PREVIOUS", DEV_JWT_SECRET),
        ]);
        assert!(AuthSettings::from_env(&env, true).is_ok());

        let err = refused(CURRENT, false);
        assert_eq!(err.variable, "CHORUS_JWT_SECRET_PREVIOUS");
        assert!(
            err.problem.contains("the same as CHORUS_JWT_SECRET"),
            "{err}"
        );
        assert!(!err.to_string().contains(CURRENT), "{err}");
    }

    #[test]
    fn a_previous_secret_beside_a_jwks_url_stops_the_gateway() {
        let env = Env::from_pairs(&[
            ("CHORUS_JWT_JWKS_URL", "https://idp.example/certs"),
            ("CHORUS_JWT_SECRET_PREVIOUS", RETIRING),
        ]);
        let err = AuthSettings::from_env(&env, false).unwrap_err();
        assert_eq!(err.variable, "CHORUS_JWT_SECRET_PREVIOUS");
        assert!(err.problem.contains("CHORUS_JWT_JWKS_URL"), "{err}");
        assert!(!err.to_string().contains("retiring"), "{err}");
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
                ("CHORUS_JWT_ISSUER", "https://idp.example"),
                ("CHORUS_JWT_AUDIENCE", "chorus"),
            ]);
            assert_eq!(
                AuthSettings::from_env(&env, false).unwrap_err().variable,
                variable
            );
        }
    }

    #[test]
    fn the_development_secret_is_refused_in_any_spelling() {
        let upper = DEV_JWT_SECRET.to_uppercase();
        let spellings = [
            DEV_JWT_SECRET.to_string(),
            format!("{DEV_JWT_SECRET} "),
            format!("\t{DEV_JWT_SECRET}\n"),
            format!("\"{DEV_JWT_SECRET}\""),
            format!("'{DEV_JWT_SECRET}'"),
            upper,
        ];
        for spelling in &spellings {
            let env = Env::from_pairs(&[("CHORUS_JWT_SECRET", spelling)]);
            let err = AuthSettings::from_env(&env, false).unwrap_err();
            assert_eq!(err.variable, "CHORUS_JWT_SECRET", "{spelling:?}");
            assert!(err.problem.contains("development JWT secret"), "{err}");
            assert!(AuthSettings::from_env(&env, true).is_ok(), "{spelling:?}");
        }
        let env = Env::from_pairs(&[
            ("CHORUS_JWT_SECRET", CURRENT),
            ("CHORUS_JWT_SECRET_PREVIOUS", &spellings[1]),
        ]);
        let err = AuthSettings::from_env(&env, false).unwrap_err();
        assert_eq!(err.variable, "CHORUS_JWT_SECRET_PREVIOUS");
        // A secret that merely contains it is a secret of its own.
        let longer = format!("{DEV_JWT_SECRET}-but-ours-9c1e");
        let env = Env::from_pairs(&[("CHORUS_JWT_SECRET", longer.as_str())]);
        assert!(AuthSettings::from_env(&env, false).is_ok());
    }

    fn jwks_env(url: &str, issuer: Option<&str>, audience: Option<&str>) -> Env {
        let mut pairs = vec![("CHORUS_JWT_JWKS_URL", url)];
        pairs.extend(issuer.map(|issuer| ("CHORUS_JWT_ISSUER", issuer)));
        pairs.extend(audience.map(|audience| ("CHORUS_JWT_AUDIENCE", audience)));
        Env::from_pairs(&pairs)
    }

    #[test]
    fn a_jwks_url_must_be_https_unless_it_is_on_this_machine() {
        const ISSUER: Option<&str> = Some("https://idp.example");
        const AUDIENCE: Option<&str> = Some("chorus");
        for url in ["http://idp.example/certs", "http://10.1.2.3/certs"] {
            let err = AuthSettings::from_env(&jwks_env(url, ISSUER, AUDIENCE), false).unwrap_err();
            assert_eq!(err.variable, "CHORUS_JWT_JWKS_URL", "{url}");
            assert!(err.problem.contains("https://"), "{err}");
        }
        for url in [
            "https://idp.example/certs",
            "http://127.0.0.1:8080/certs",
            "http://localhost:8080/certs",
        ] {
            let settings = AuthSettings::from_env(&jwks_env(url, ISSUER, AUDIENCE), false);
            assert!(settings.is_ok(), "{url}");
        }
    }

    #[test]
    fn a_jwks_url_needs_an_issuer_and_an_audience() {
        let url = "https://idp.example/certs";
        let err = AuthSettings::from_env(&jwks_env(url, None, Some("chorus")), false).unwrap_err();
        assert_eq!(err.variable, "CHORUS_JWT_ISSUER");
        let issuer = Some("https://idp.example");
        let err = AuthSettings::from_env(&jwks_env(url, issuer, None), false).unwrap_err();
        assert_eq!(err.variable, "CHORUS_JWT_AUDIENCE");
        let err = AuthSettings::from_env(&jwks_env(url, issuer, Some(" ")), false).unwrap_err();
        assert_eq!(err.variable, "CHORUS_JWT_AUDIENCE");
        // Even in development: they say which tokens are ours, not how safe the run is.
        let err = AuthSettings::from_env(&jwks_env(url, None, None), true).unwrap_err();
        assert_eq!(err.variable, "CHORUS_JWT_ISSUER");
    }
}
