//! Bearer tokens: HS256 JWTs with `sub`, `role` and `exp`. Every `/v1` route
//! needs one; the admin routes need `role = admin`. The subject is also the
//! unit of rate limiting and of idempotency.

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};

pub use chorus_platform::token::{Claims, DEV_JWT_SECRET, Role, issue_token};

const MAX_SUBJECT_LEN: usize = 128;

use crate::AppState;
use crate::error::AppError;

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
    use jsonwebtoken::{EncodingKey, Header};
    use std::time::Duration;

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
