//! Bearer tokens: HS256 JWTs with `sub`, `role` and `exp`. Every `/v1` route
//! needs one; the admin routes need `role = admin`. The subject is also the
//! unit of rate limiting and of idempotency.

use std::time::Duration;

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::AppState;
use crate::error::AppError;

/// The public development secret. The gateway refuses to start with it unless
/// `CHORUS_DEV=true`; `make run` and the CLI default to it for local use.
pub const DEV_JWT_SECRET: &str = "chorus-development-secret-never-use-in-production";

const MAX_SUBJECT_LEN: usize = 128;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Customer,
    Admin,
}

impl std::str::FromStr for Role {
    type Err = String;

    fn from_str(s: &str) -> Result<Role, String> {
        match s {
            "customer" => Ok(Role::Customer),
            "admin" => Ok(Role::Admin),
            other => Err(format!("unknown role `{other}`: customer or admin")),
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Role::Customer => "customer",
            Role::Admin => "admin",
        })
    }
}

/// The claims of a chorus token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    pub role: Role,
    /// Expiry, seconds since the Unix epoch.
    pub exp: u64,
}

/// Mints a token for `sub` valid for `ttl` (used by the CLI and the tests).
pub fn issue_token(
    secret: &str,
    sub: &str,
    role: Role,
    ttl: Duration,
) -> Result<String, jsonwebtoken::errors::Error> {
    let claims = Claims {
        sub: sub.to_string(),
        role,
        exp: jsonwebtoken::get_current_timestamp() + ttl.as_secs(),
    };
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
}

/// Verifies tokens against one secret.
pub struct TokenVerifier {
    key: DecodingKey,
    validation: Validation,
}

impl TokenVerifier {
    pub fn new(secret: &str) -> TokenVerifier {
        let mut validation = Validation::new(Algorithm::HS256);
        // Tokens come from our own issuer: an expired token is expired now.
        validation.leeway = 0;
        validation.set_required_spec_claims(&["exp", "sub"]);
        TokenVerifier {
            key: DecodingKey::from_secret(secret.as_bytes()),
            validation,
        }
    }

    pub fn verify(&self, token: &str) -> Result<Claims, AppError> {
        use jsonwebtoken::errors::ErrorKind;
        let claims = jsonwebtoken::decode::<Claims>(token, &self.key, &self.validation)
            .map(|data| data.claims)
            .map_err(|e| {
                AppError::Unauthorized(match e.kind() {
                    ErrorKind::ExpiredSignature => "the bearer token has expired".to_string(),
                    ErrorKind::InvalidSignature => {
                        "the bearer token's signature is invalid".to_string()
                    }
                    _ => format!("the bearer token is invalid: {e}"),
                })
            })?;
        if claims.sub.is_empty() || claims.sub.len() > MAX_SUBJECT_LEN {
            return Err(AppError::Unauthorized(format!(
                "the bearer token's subject must be 1 to {MAX_SUBJECT_LEN} characters"
            )));
        }
        Ok(claims)
    }
}

/// An authenticated caller within its rate limit.
#[derive(Debug, Clone)]
pub struct Caller(pub Claims);

impl Caller {
    pub fn subject(&self) -> &str {
        &self.0.sub
    }

    pub fn is_admin(&self) -> bool {
        self.0.role == Role::Admin
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AppError> {
        let header = parts
            .headers
            .get(AUTHORIZATION)
            .ok_or_else(|| AppError::Unauthorized("missing bearer token".to_string()))?;
        let token = header
            .to_str()
            .ok()
            .and_then(|h| {
                h.strip_prefix("Bearer ")
                    .or_else(|| h.strip_prefix("bearer "))
            })
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                AppError::Unauthorized(
                    "the Authorization header must be `Bearer <token>`".to_string(),
                )
            })?;
        let claims = state.inner.tokens.verify(token)?;
        state
            .inner
            .rate_limiter
            .check(&claims.sub)
            .map_err(|retry_after| AppError::RateLimited { retry_after })?;
        Ok(Caller(claims))
    }
}

/// An authenticated caller with the admin role.
#[derive(Debug, Clone)]
pub struct Admin(pub Claims);

impl FromRequestParts<AppState> for Admin {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AppError> {
        let caller = Caller::from_request_parts(parts, state).await?;
        if caller.is_admin() {
            Ok(Admin(caller.0))
        } else {
            Err(AppError::Forbidden(
                "this route needs the admin role".to_string(),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_issued_token_verifies_with_its_secret_only() {
        let token = issue_token("one", "alice", Role::Admin, Duration::from_secs(60)).unwrap();
        let claims = TokenVerifier::new("one").verify(&token).unwrap();
        assert_eq!(claims.sub, "alice");
        assert_eq!(claims.role, Role::Admin);
        assert!(TokenVerifier::new("two").verify(&token).is_err());
    }

    #[test]
    fn an_expired_token_is_refused() {
        let claims = Claims {
            sub: "alice".into(),
            role: Role::Customer,
            exp: jsonwebtoken::get_current_timestamp() - 1,
        };
        let token = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(b"k"),
        )
        .unwrap();
        let err = TokenVerifier::new("k").verify(&token).unwrap_err();
        assert!(err.to_string().contains("expired"), "{err}");
    }

    #[test]
    fn unknown_roles_and_other_algorithms_are_refused() {
        let token = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &serde_json::json!({"sub": "a", "role": "root", "exp": u32::MAX}),
            &EncodingKey::from_secret(b"k"),
        )
        .unwrap();
        assert!(TokenVerifier::new("k").verify(&token).is_err());
        let token = jsonwebtoken::encode(
            &Header::new(Algorithm::HS512),
            &serde_json::json!({"sub": "a", "role": "admin", "exp": u32::MAX}),
            &EncodingKey::from_secret(b"k"),
        )
        .unwrap();
        assert!(TokenVerifier::new("k").verify(&token).is_err());
    }
}
