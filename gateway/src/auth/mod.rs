//! Bearer tokens: every `/v1` route needs one; the admin routes need the
//! admin role. Tokens are HS256 with a shared secret (and, while it rotates,
//! the one it replaced), or RS256/ES256 from an identity provider's JWKS (see
//! [`settings`]). The gateway only verifies; it signs no token. The subject is also the unit
//! of rate limiting and of idempotency.

pub mod claims;
pub mod jwks;
pub mod settings;
pub mod verifier;

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;

pub use chorus_platform::token::{Claims, DEV_JWT_SECRET, Role, issue_token};
pub use claims::RoleClaim;
pub use settings::{AuthSettings, TokenKeys};
pub use verifier::TokenVerifier;

use crate::AppState;
use crate::error::AppError;

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

fn bearer_token(parts: &Parts) -> Result<&str, AppError> {
    let header = parts
        .headers
        .get(AUTHORIZATION)
        .ok_or_else(|| AppError::Unauthorized("missing bearer token".to_string()))?;
    header
        .to_str()
        .ok()
        .and_then(|h| {
            h.strip_prefix("Bearer ")
                .or_else(|| h.strip_prefix("bearer "))
        })
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| {
            AppError::Unauthorized("the Authorization header must be `Bearer <token>`".to_string())
        })
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AppError> {
        let claims = state.inner.tokens.verify(bearer_token(parts)?).await?;
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
    use jsonwebtoken::{Algorithm, EncodingKey, Header};
    use std::time::Duration;

    const ONE: &str = "the-first-secret-of-at-least-32-bytes";
    const TWO: &str = "the-second-secret-of-at-least-32-bytes";

    fn verifier(secret: &str) -> TokenVerifier {
        TokenVerifier::new(&AuthSettings::shared_secret(secret)).unwrap()
    }

    fn hs(alg: Algorithm, claims: serde_json::Value, secret: &str) -> String {
        jsonwebtoken::encode(
            &Header::new(alg),
            &claims,
            &EncodingKey::from_secret(secret.as_bytes()),
        )
        .unwrap()
    }

    #[tokio::test]
    async fn an_issued_token_verifies_with_its_secret_only() {
        let token = issue_token(ONE, "alice", Role::Admin, Duration::from_secs(60)).unwrap();
        let claims = verifier(ONE).verify(&token).await.unwrap();
        assert_eq!(claims.sub, "alice");
        assert_eq!(claims.role, Role::Admin);
        assert!(verifier(TWO).verify(&token).await.is_err());
    }

    #[tokio::test]
    async fn during_a_rotation_tokens_of_either_secret_verify_and_no_other() {
        const RETIRING: &str = "the-retiring-secret-of-at-least-32-bytes";
        let rotating =
            TokenVerifier::new(&AuthSettings::shared_secret_rotating(ONE, RETIRING)).unwrap();
        for (secret, sub) in [(ONE, "signed-now"), (RETIRING, "signed-before")] {
            let token = issue_token(secret, sub, Role::Customer, Duration::from_secs(60)).unwrap();
            let claims = rotating.verify(&token).await.unwrap();
            assert_eq!(claims.sub, sub);
        }
        let unrelated = issue_token(TWO, "mallory", Role::Admin, Duration::from_secs(60)).unwrap();
        let err = rotating.verify(&unrelated).await.unwrap_err();
        assert!(err.to_string().contains("signature is invalid"), "{err}");
        // Once the previous secret is gone, its tokens are refused.
        let retired =
            issue_token(RETIRING, "late", Role::Customer, Duration::from_secs(60)).unwrap();
        assert!(verifier(ONE).verify(&retired).await.is_err());
    }

    #[tokio::test]
    async fn a_token_of_the_previous_secret_is_held_to_every_other_rule() {
        const RETIRING: &str = "the-retiring-secret-of-at-least-32-bytes";
        let verifier =
            TokenVerifier::new(&AuthSettings::shared_secret_rotating(ONE, RETIRING)).unwrap();
        let exp = jsonwebtoken::get_current_timestamp() - 1;
        let expired = hs(
            Algorithm::HS256,
            serde_json::json!({"sub": "alice", "role": "customer", "exp": exp}),
            RETIRING,
        );
        let err = verifier.verify(&expired).await.unwrap_err();
        assert!(err.to_string().contains("expired"), "{err}");
        let hs512 = hs(
            Algorithm::HS512,
            serde_json::json!({"sub": "a", "role": "admin", "exp": u32::MAX}),
            RETIRING,
        );
        assert!(verifier.verify(&hs512).await.is_err());
    }

    #[tokio::test]
    async fn an_expired_token_is_refused() {
        let exp = jsonwebtoken::get_current_timestamp() - 1;
        let token = hs(
            Algorithm::HS256,
            serde_json::json!({"sub": "alice", "role": "customer", "exp": exp}),
            ONE,
        );
        let err = verifier(ONE).verify(&token).await.unwrap_err();
        assert!(err.to_string().contains("expired"), "{err}");
    }

    #[tokio::test]
    async fn unknown_roles_and_other_algorithms_are_refused() {
        let root = hs(
            Algorithm::HS256,
            serde_json::json!({"sub": "a", "role": "root", "exp": u32::MAX}),
            ONE,
        );
        assert!(verifier(ONE).verify(&root).await.is_err());
        let hs512 = hs(
            Algorithm::HS512,
            serde_json::json!({"sub": "a", "role": "admin", "exp": u32::MAX}),
            ONE,
        );
        assert!(verifier(ONE).verify(&hs512).await.is_err());
    }

    #[tokio::test]
    async fn issuer_and_audience_are_checked_when_configured() {
        let mut settings = AuthSettings::shared_secret(ONE);
        settings.issuer = Some("https://idp.example".into());
        settings.audience = Some("chorus".into());
        let verifier = TokenVerifier::new(&settings).unwrap();
        let claims = |iss: &str, aud: &str| serde_json::json!({"sub": "a", "role": "customer", "exp": u32::MAX, "iss": iss, "aud": aud});
        let good = hs(
            Algorithm::HS256,
            claims("https://idp.example", "chorus"),
            ONE,
        );
        assert!(verifier.verify(&good).await.is_ok());
        for (iss, aud) in [
            ("https://other.example", "chorus"),
            ("https://idp.example", "other"),
        ] {
            let token = hs(Algorithm::HS256, claims(iss, aud), ONE);
            assert!(verifier.verify(&token).await.is_err(), "{iss} {aud}");
        }
        let no_issuer = hs(
            Algorithm::HS256,
            serde_json::json!({"sub": "a", "role": "customer", "exp": u32::MAX, "aud": "chorus"}),
            ONE,
        );
        let err = verifier.verify(&no_issuer).await.unwrap_err();
        assert!(err.to_string().contains("`iss`"), "{err}");
    }
}
