//! What a verified token says about its caller: the subject, and the role
//! read from a configurable claim. Identity providers put roles in different
//! places (`role`, Keycloak's `realm_access.roles`, a namespaced claim), so
//! the claim is a dotted path, and a list of roles means admin if it holds
//! `admin`, customer otherwise.

use serde_json::Value;

use chorus_platform::token::{Claims, Role};

/// Subjects longer than this are refused: they become rate-limit and
/// idempotency keys.
pub const MAX_SUBJECT_LEN: usize = 128;

/// Where the role is in a token's claims (`CHORUS_JWT_ROLE_CLAIM`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleClaim(String);

impl RoleClaim {
    /// `role`, `realm_access.roles`, or a claim name of its own.
    pub fn parse(text: &str) -> Result<RoleClaim, String> {
        let text = text.trim();
        if text.is_empty() || text.split('.').any(str::is_empty) {
            return Err("must be a claim name or a dotted path such as realm_access.roles".into());
        }
        Ok(RoleClaim(text.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The value at this claim: a top-level claim of exactly this name first
    /// (namespaced claims such as `https://example.com/roles` hold dots),
    /// then the dotted path.
    fn find<'a>(&self, claims: &'a Value) -> Option<&'a Value> {
        if let Some(value) = claims.get(&self.0) {
            return Some(value);
        }
        self.0
            .split('.')
            .try_fold(claims, |value, segment| value.get(segment))
    }

    /// The role the claims give, or why there is none.
    pub fn role_in(&self, claims: &Value) -> Result<Role, String> {
        match self.find(claims) {
            Some(Value::String(role)) => role
                .parse()
                .map_err(|_| format!("the token's `{}` claim is not a known role", self.0)),
            Some(Value::Array(roles)) => {
                let admin = roles.iter().any(|r| r.as_str() == Some("admin"));
                Ok(if admin { Role::Admin } else { Role::Customer })
            }
            Some(_) => Err(format!(
                "the token's `{}` claim must be a role or a list of roles",
                self.0
            )),
            None => Err(format!("the token has no `{}` claim", self.0)),
        }
    }
}

impl Default for RoleClaim {
    fn default() -> Self {
        RoleClaim("role".to_string())
    }
}

/// The caller's claims from a token whose signature and times were checked.
pub fn caller_claims(claims: &Value, role_claim: &RoleClaim) -> Result<Claims, String> {
    let sub = claims
        .get("sub")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty() && s.len() <= MAX_SUBJECT_LEN)
        .ok_or_else(|| {
            format!("the bearer token's subject must be 1 to {MAX_SUBJECT_LEN} characters")
        })?;
    let exp = claims
        .get("exp")
        .and_then(Value::as_u64)
        .ok_or("the bearer token's expiry must be a whole number of seconds")?;
    Ok(Claims {
        sub: sub.to_string(),
        role: role_claim.role_in(claims)?,
        exp,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_role_comes_from_a_string_or_a_list() {
        let role = RoleClaim::default();
        assert_eq!(role.role_in(&json!({"role": "admin"})), Ok(Role::Admin));
        assert_eq!(
            role.role_in(&json!({"role": "customer"})),
            Ok(Role::Customer)
        );
        assert!(role.role_in(&json!({"role": "root"})).is_err());
        assert!(role.role_in(&json!({"role": 7})).is_err());
        assert!(role.role_in(&json!({})).is_err());
        assert_eq!(
            role.role_in(&json!({"role": ["x", "admin"]})),
            Ok(Role::Admin)
        );
        assert_eq!(role.role_in(&json!({"role": []})), Ok(Role::Customer));
    }

    #[test]
    fn a_dotted_path_reaches_keycloak_realm_roles() {
        let role = RoleClaim::parse("realm_access.roles").unwrap();
        let admin = json!({"realm_access": {"roles": ["offline_access", "admin"]}});
        let customer = json!({"realm_access": {"roles": ["offline_access"]}});
        assert_eq!(role.role_in(&admin), Ok(Role::Admin));
        assert_eq!(role.role_in(&customer), Ok(Role::Customer));
        assert!(role.role_in(&json!({"realm_access": {}})).is_err());
        // A claim whose own name holds dots is found as it is.
        let namespaced = RoleClaim::parse("https://shop.example/roles").unwrap();
        assert_eq!(
            namespaced.role_in(&json!({"https://shop.example/roles": ["admin"]})),
            Ok(Role::Admin)
        );
        for bad in ["", " ", "a..b", ".a", "a."] {
            assert!(RoleClaim::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_subject_must_be_present_and_short() {
        let role = RoleClaim::default();
        let ok = json!({"sub": "alice", "role": "customer", "exp": 10});
        assert_eq!(caller_claims(&ok, &role).unwrap().sub, "alice");
        for bad in [
            json!({"sub": "", "role": "customer", "exp": 10}),
            json!({"sub": "a".repeat(129), "role": "customer", "exp": 10}),
            json!({"sub": 7, "role": "customer", "exp": 10}),
            json!({"sub": "alice", "role": "customer", "exp": "soon"}),
        ] {
            assert!(caller_claims(&bad, &role).is_err(), "{bad}");
        }
    }
}
