//! Identity-provider tokens: RS256 and ES256 tokens verified with the keys of
//! a JWKS served by a local server the test controls (rotating its keys and
//! counting its fetches). The private keys are fixed test keys under
//! `tests/keys/`.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::StatusCode;
use axum::routing::get;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chorus_gateway::auth::{AuthSettings, RoleClaim, TokenKeys};
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

use crate::helpers::{TestApp, settings};

const ISSUER: &str = "https://idp.test/realms/shop";
const AUDIENCE: &str = "chorus";
/// Answers 404 to an accepted caller without touching any database.
const PROBE: &str = "/v1/orders/not-an-order";

struct TestKey {
    kid: &'static str,
    algorithm: Algorithm,
    key: EncodingKey,
}

impl TestKey {
    fn load(kid: &'static str) -> TestKey {
        let path = format!("{}/tests/keys/{kid}.pem", env!("CARGO_MANIFEST_DIR"));
        let pem = std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        let (algorithm, key) = if kid.starts_with("rsa") {
            (Algorithm::RS256, EncodingKey::from_rsa_pem(&pem).unwrap())
        } else {
            (Algorithm::ES256, EncodingKey::from_ec_pem(&pem).unwrap())
        };
        TestKey {
            kid,
            algorithm,
            key,
        }
    }

    fn jwk(&self) -> Value {
        let mut jwk = Jwk::from_encoding_key(&self.key, self.algorithm).unwrap();
        jwk.common.key_id = Some(self.kid.to_string());
        serde_json::to_value(jwk).unwrap()
    }

    fn sign(&self, claims: &Value) -> String {
        let mut header = Header::new(self.algorithm);
        header.kid = Some(self.kid.to_string());
        jsonwebtoken::encode(&header, claims, &self.key).unwrap()
    }
}

fn claims(sub: &str) -> Value {
    json!({
        "sub": sub,
        "iss": ISSUER,
        "aud": AUDIENCE,
        "exp": jsonwebtoken::get_current_timestamp() + 600,
        "realm_access": {"roles": ["offline_access", "default-roles-shop"]},
    })
}

/// A JWKS endpoint whose keys the test sets, counting the fetches.
struct Jwks {
    url: String,
    keys: Arc<Mutex<Vec<Value>>>,
    fetches: Arc<AtomicUsize>,
}

impl Jwks {
    async fn serve(keys: &[&TestKey]) -> Jwks {
        let keys: Arc<Mutex<Vec<Value>>> =
            Arc::new(Mutex::new(keys.iter().map(|k| k.jwk()).collect()));
        let fetches = Arc::new(AtomicUsize::new(0));
        let router = {
            let (keys, fetches) = (keys.clone(), fetches.clone());
            axum::Router::new().route(
                "/certs",
                get(move || async move {
                    fetches.fetch_add(1, Ordering::SeqCst);
                    axum::Json(json!({"keys": keys.lock().unwrap().clone()}))
                }),
            )
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/certs", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, router).await });
        Jwks { url, keys, fetches }
    }

    fn rotate_to(&self, keys: &[&TestKey]) {
        *self.keys.lock().unwrap() = keys.iter().map(|k| k.jwk()).collect();
    }

    fn fetches(&self) -> usize {
        self.fetches.load(Ordering::SeqCst)
    }
}

fn app(url: &str, min_refresh: Duration) -> TestApp {
    let mut settings = settings(1000, 1000);
    settings.auth = AuthSettings {
        keys: TokenKeys::Jwks {
            url: url.to_string(),
            min_refresh,
        },
        issuer: Some(ISSUER.into()),
        audience: Some(AUDIENCE.into()),
        role_claim: RoleClaim::parse("realm_access.roles").unwrap(),
    };
    TestApp::without_db_with(settings)
}

async fn status_with(app: &TestApp, token: &str) -> StatusCode {
    let response = app.get(PROBE, Some(token)).await;
    if response.status == StatusCode::UNAUTHORIZED {
        assert_eq!(response.headers["www-authenticate"], "Bearer");
        response.error(StatusCode::UNAUTHORIZED);
    }
    response.status
}

#[tokio::test]
async fn rs256_and_es256_tokens_verify_and_rotated_keys_are_followed() {
    let (rsa1, rsa2, ec1, ec2) = (
        TestKey::load("rsa-1"),
        TestKey::load("rsa-2"),
        TestKey::load("ec-1"),
        TestKey::load("ec-2"),
    );
    let jwks = Jwks::serve(&[&rsa1, &ec1]).await;
    let app = app(&jwks.url, Duration::ZERO);
    for key in [&rsa1, &ec1] {
        let token = key.sign(&claims("alice"));
        assert_eq!(
            status_with(&app, &token).await,
            StatusCode::NOT_FOUND,
            "{}",
            key.kid
        );
    }
    assert_eq!(jwks.fetches(), 1, "the keys are cached");

    // The provider rotates: new keys are found by a refresh, old ones are gone.
    jwks.rotate_to(&[&rsa2, &ec2]);
    for key in [&rsa2, &ec2] {
        let token = key.sign(&claims("alice"));
        assert_eq!(
            status_with(&app, &token).await,
            StatusCode::NOT_FOUND,
            "{}",
            key.kid
        );
    }
    for key in [&rsa1, &ec1] {
        let token = key.sign(&claims("alice"));
        assert_eq!(
            status_with(&app, &token).await,
            StatusCode::UNAUTHORIZED,
            "{}",
            key.kid
        );
    }
}

#[tokio::test]
async fn unknown_kids_refresh_the_keys_at_most_once_per_interval() {
    let (rsa1, rsa2) = (TestKey::load("rsa-1"), TestKey::load("rsa-2"));
    let jwks = Jwks::serve(&[&rsa1]).await;
    let app = app(&jwks.url, Duration::from_secs(3600));
    let known = rsa1.sign(&claims("alice"));
    assert_eq!(status_with(&app, &known).await, StatusCode::NOT_FOUND);
    assert_eq!(jwks.fetches(), 1);

    jwks.rotate_to(&[&rsa1, &rsa2]);
    let unknown = rsa2.sign(&claims("mallory"));
    let attempts = (0..20).map(|_| status_with(&app, &unknown));
    for status in futures::future::join_all(attempts).await {
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(jwks.fetches(), 1, "a burst of unknown kids fetched nothing");
    assert_eq!(status_with(&app, &known).await, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn issuer_audience_expiry_and_algorithm_are_enforced() {
    let (rsa1, rsa2, ec1) = (
        TestKey::load("rsa-1"),
        TestKey::load("rsa-2"),
        TestKey::load("ec-1"),
    );
    let jwks = Jwks::serve(&[&rsa1, &ec1]).await;
    let app = app(&jwks.url, Duration::ZERO);
    let good = claims("alice");
    assert_eq!(
        status_with(&app, &rsa1.sign(&good)).await,
        StatusCode::NOT_FOUND
    );

    let mut unknown_issuer = good.clone();
    unknown_issuer["iss"] = json!("https://evil.test/realms/shop");
    let mut no_issuer = good.clone();
    no_issuer.as_object_mut().unwrap().remove("iss");
    let mut wrong_audience = good.clone();
    wrong_audience["aud"] = json!("another-service");
    let mut expired = good.clone();
    expired["exp"] = json!(jsonwebtoken::get_current_timestamp() - 600);
    for (what, claims) in [
        ("unknown issuer", unknown_issuer),
        ("no issuer", no_issuer),
        ("wrong audience", wrong_audience),
        ("expired", expired),
    ] {
        let token = rsa1.sign(&claims);
        assert_eq!(
            status_with(&app, &token).await,
            StatusCode::UNAUTHORIZED,
            "{what}"
        );
    }

    // `alg: none`, unsigned.
    let segment = |value: Value| URL_SAFE_NO_PAD.encode(value.to_string());
    let none = format!(
        "{}.{}.",
        segment(json!({"alg": "none", "typ": "JWT", "kid": "rsa-1"})),
        segment(good.clone())
    );
    assert_eq!(status_with(&app, &none).await, StatusCode::UNAUTHORIZED);
    // HS256 signed with the provider's public key as the secret (key confusion).
    let public = rsa1.jwk().to_string();
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some("rsa-1".into());
    let confused =
        jsonwebtoken::encode(&header, &good, &EncodingKey::from_secret(public.as_bytes())).unwrap();
    assert_eq!(status_with(&app, &confused).await, StatusCode::UNAUTHORIZED);
    // Signed by a key that is not the one its `kid` names, or naming none.
    let mut forged = TestKey::load("rsa-2");
    forged.kid = "rsa-1";
    assert_eq!(
        status_with(&app, &forged.sign(&good)).await,
        StatusCode::UNAUTHORIZED
    );
    let no_kid = jsonwebtoken::encode(&Header::new(Algorithm::RS256), &good, &rsa2.key).unwrap();
    assert_eq!(status_with(&app, &no_kid).await, StatusCode::UNAUTHORIZED);
    // An RS256 token naming the ES256 key.
    let mut mismatched = TestKey::load("rsa-1");
    mismatched.kid = "ec-1";
    assert_eq!(
        status_with(&app, &mismatched.sign(&good)).await,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn the_role_comes_from_the_configured_claim() {
    let rsa1 = TestKey::load("rsa-1");
    let jwks = Jwks::serve(&[&rsa1]).await;
    let app = app(&jwks.url, Duration::ZERO);
    let mut admin = claims("ops");
    admin["realm_access"]["roles"] = json!(["offline_access", "admin"]);
    // A body the admin route refuses: reaching the body check proves the role.
    let bad_body = json!({"available": -1, "unit_price": "1"});
    let response = app.put_stock(&rsa1.sign(&admin), "SKU-1", &bad_body).await;
    assert_eq!(
        response.error(StatusCode::BAD_REQUEST).1.as_deref(),
        Some("available")
    );
    let response = app
        .put_stock(&rsa1.sign(&claims("alice")), "SKU-1", &bad_body)
        .await;
    assert_eq!(response.error(StatusCode::FORBIDDEN).0, "forbidden");
}

#[tokio::test]
async fn an_unreachable_identity_provider_is_503_without_its_address() {
    let rsa1 = TestKey::load("rsa-1");
    let app = app("http://127.0.0.1:1/realms/shop/certs", Duration::ZERO);
    let response = app.get(PROBE, Some(&rsa1.sign(&claims("alice")))).await;
    assert_eq!(
        response.error(StatusCode::SERVICE_UNAVAILABLE).0,
        "unavailable"
    );
    assert!(!response.text.contains("127.0.0.1"), "{}", response.text);
    assert!(!response.text.contains("certs"), "{}", response.text);
}
