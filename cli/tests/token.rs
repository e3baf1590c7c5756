//! `chorus token` prints a JWT the gateway accepts: HS256 with
//! `CHORUS_JWT_SECRET`, the subject and role asked for, and nothing else on
//! stdout. (The verbs that talk to the gateway are tested end to end against
//! the real gateway binary in `tests/e2e/cli_gateway.rs`.)

use chorus_platform::token::{Claims, Role};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};

const SECRET: &str = "chorus-cli-test-secret-with-32-bytes-or-more";

#[test]
fn token_prints_a_verifiable_jwt_and_nothing_else() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_chorus"))
        .args([
            "token",
            "--sub",
            "alice",
            "--role",
            "admin",
            "--ttl-secs",
            "60",
        ])
        .env("CHORUS_JWT_SECRET", SECRET)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8(output.stdout).unwrap();
    let token = stdout.strip_suffix('\n').expect("one line");
    assert!(!token.contains(char::is_whitespace), "{stdout:?}");
    let claims = jsonwebtoken::decode::<Claims>(
        token,
        &DecodingKey::from_secret(SECRET.as_bytes()),
        &Validation::new(Algorithm::HS256),
    )
    .unwrap()
    .claims;
    assert_eq!((claims.sub.as_str(), claims.role), ("alice", Role::Admin));
    let now = jsonwebtoken::get_current_timestamp();
    assert!((now + 50..=now + 61).contains(&claims.exp), "{claims:?}");
    let wrong = jsonwebtoken::decode::<Claims>(
        token,
        &DecodingKey::from_secret(b"another-secret-another-secret-another"),
        &Validation::new(Algorithm::HS256),
    );
    assert!(wrong.is_err(), "signed with the secret given, not another");
}
