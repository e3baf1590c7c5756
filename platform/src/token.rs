//! The claims of a chorus bearer token and how to mint one (HS256): shared by
//! the gateway, which verifies tokens, and the CLI and tests, which mint them.

use std::time::Duration;

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::{Deserialize, Serialize};

/// The public development secret. The gateway refuses to start with it unless
/// `CHORUS_DEV=true`; `make run` and the CLI default to it for local use.
pub const DEV_JWT_SECRET: &str = "chorus-development-secret-never-use-in-production";

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
