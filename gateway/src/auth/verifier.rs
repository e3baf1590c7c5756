//! Verifies a bearer token: its algorithm against the configured key source
//! (HS256 with the shared secret — or, during a rotation, the previous one —
//! or RS256/ES256 with the JWKS key its `kid` names; never `none`, never
//! HS256 with a public key), its signature, its expiry, and `iss`/`aud` when
//! configured; then reads the caller's claims.

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::Value;

use chorus_platform::token::Claims;

use super::claims::{RoleClaim, caller_claims};
use super::jwks::{JwksError, JwksKeys};
use super::settings::{AuthSettings, TokenKeys};
use crate::error::AppError;

/// Identity providers' clocks drift from ours; our own tokens are checked exactly.
const IDP_LEEWAY_SECS: u64 = 30;

enum KeySource {
    Shared {
        current: DecodingKey,
        previous: Option<DecodingKey>,
    },
    Jwks(JwksKeys),
}

pub struct TokenVerifier {
    keys: KeySource,
    issuer: Option<String>,
    audience: Option<String>,
    role_claim: RoleClaim,
}

impl TokenVerifier {
    pub fn new(settings: &AuthSettings) -> anyhow::Result<TokenVerifier> {
        let keys = match &settings.keys {
            TokenKeys::SharedSecret { current, previous } => KeySource::Shared {
                current: DecodingKey::from_secret(current.expose().as_bytes()),
                previous: previous
                    .as_ref()
                    .map(|secret| DecodingKey::from_secret(secret.expose().as_bytes())),
            },
            TokenKeys::Jwks { url, min_refresh } => {
                // Without both, a token the provider issued to any other
                // application (or any other provider's, on a shared host) verifies.
                anyhow::ensure!(
                    settings.issuer.is_some() && settings.audience.is_some(),
                    "identity-provider tokens need the issuer and the audience to check \
                     (CHORUS_JWT_ISSUER, CHORUS_JWT_AUDIENCE)"
                );
                KeySource::Jwks(JwksKeys::new(url, *min_refresh)?)
            }
        };
        Ok(TokenVerifier {
            keys,
            issuer: settings.issuer.clone(),
            audience: settings.audience.clone(),
            role_claim: settings.role_claim.clone(),
        })
    }

    pub async fn verify(&self, token: &str) -> Result<Claims, AppError> {
        let header = jsonwebtoken::decode_header(token).map_err(|e| invalid(&e))?;
        let claims = match &self.keys {
            KeySource::Shared { current, previous } => {
                if header.alg != Algorithm::HS256 {
                    return Err(unauthorized("the bearer token must be signed with HS256"));
                }
                let validation = self.validation(Algorithm::HS256, 0);
                // The signature is checked before any claim, so only a token
                // the current secret did not sign is tried with the previous
                // one, and what that answers (expired, wrong audience, …) is
                // what the caller hears.
                match jsonwebtoken::decode::<Value>(token, current, &validation) {
                    Err(e) if matches!(e.kind(), ErrorKind::InvalidSignature) => match previous {
                        Some(previous) => {
                            jsonwebtoken::decode::<Value>(token, previous, &validation)
                        }
                        None => Err(e),
                    },
                    decoded => decoded,
                }
            }
            KeySource::Jwks(jwks) => {
                if !matches!(header.alg, Algorithm::RS256 | Algorithm::ES256) {
                    return Err(unauthorized(
                        "the bearer token must be signed with RS256 or ES256",
                    ));
                }
                let kid = header
                    .kid
                    .as_deref()
                    .ok_or_else(|| unauthorized("the bearer token names no key (`kid`)"))?;
                let jwks_key = jwks.key(kid).await.map_err(|e| match e {
                    JwksError::UnknownKey(_) => unauthorized(&e.to_string()),
                    JwksError::Unavailable(cause) => AppError::Unavailable {
                        dependency: "identity_provider",
                        cause,
                    },
                })?;
                if jwks_key.algorithm != header.alg {
                    return Err(unauthorized(
                        "the bearer token's algorithm does not fit its key",
                    ));
                }
                let validation = self.validation(jwks_key.algorithm, IDP_LEEWAY_SECS);
                jsonwebtoken::decode::<Value>(token, &jwks_key.key, &validation)
            }
        }
        .map_err(|e| invalid(&e))?
        .claims;
        caller_claims(&claims, &self.role_claim).map_err(|m| unauthorized(&m))
    }

    fn validation(&self, algorithm: Algorithm, leeway: u64) -> Validation {
        let mut validation = Validation::new(algorithm);
        validation.leeway = leeway;
        validation.validate_nbf = true;
        let mut required = vec!["exp", "sub"];
        if let Some(issuer) = &self.issuer {
            validation.set_issuer(&[issuer]);
            required.push("iss");
        }
        match &self.audience {
            Some(audience) => {
                validation.set_audience(&[audience]);
                required.push("aud");
            }
            None => validation.validate_aud = false,
        }
        validation.set_required_spec_claims(&required);
        validation
    }
}

fn unauthorized(message: &str) -> AppError {
    AppError::Unauthorized(message.to_string())
}

/// A client-facing reason; none of these carries more than the token itself said.
fn invalid(e: &jsonwebtoken::errors::Error) -> AppError {
    if let ErrorKind::MissingRequiredClaim(claim) = e.kind() {
        return unauthorized(&format!("the bearer token lacks the `{claim}` claim"));
    }
    unauthorized(match e.kind() {
        ErrorKind::ExpiredSignature => "the bearer token has expired",
        ErrorKind::ImmatureSignature => "the bearer token is not valid yet",
        ErrorKind::InvalidSignature => "the bearer token's signature is invalid",
        ErrorKind::InvalidIssuer => "the bearer token's issuer is not accepted",
        ErrorKind::InvalidAudience => "the bearer token is meant for another audience",
        ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName => {
            "the bearer token's algorithm is not accepted"
        }
        _ => "the bearer token is invalid",
    })
}
