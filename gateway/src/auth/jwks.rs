//! The identity provider's signing keys (JWKS), cached. A token whose `kid`
//! is unknown triggers a refresh, at most one per `min_refresh` however many
//! such tokens arrive (an attacker cannot make the gateway hammer the
//! provider); a rotated-in key is found by that refresh, a rotated-out one
//! is gone after it. Keys older than [`MAX_AGE`] are refetched on use, and
//! kept when the provider cannot be reached. A redirect is refused rather
//! than followed (the keys that decide who is trusted come from the one
//! address configured, never from wherever it points), and an answer longer
//! than [`MAX_BODY_BYTES`] is refused unread.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use chorus_platform::redact;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey};
use serde_json::Value;

/// Keys are refetched when they are older than this.
pub const MAX_AGE: Duration = Duration::from_secs(15 * 60);
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);
/// The longest JWKS answer read. Providers' sets hold a handful of keys of
/// well under 1 KiB each (Google's, Auth0's, Keycloak's are 1-10 KiB), so
/// 1 MiB leaves room for hundreds of keys while an endpoint that misbehaves,
/// or an attacker who took it over, cannot make the gateway buffer more.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// A public key from the JWKS and the one algorithm it verifies.
#[derive(Clone)]
pub struct VerifyingKey {
    pub algorithm: Algorithm,
    pub key: Arc<DecodingKey>,
}

#[derive(Debug, thiserror::Error)]
pub enum JwksError {
    #[error("no signing key `{0}` in the identity provider's JWKS")]
    UnknownKey(String),
    /// The cause may name the provider's address: log it, do not show it.
    #[error("the identity provider's JWKS is unavailable: {0}")]
    Unavailable(String),
}

pub struct JwksKeys {
    url: String,
    http: reqwest::Client,
    min_refresh: Duration,
    cached: RwLock<Cached>,
    /// When the last fetch started; held while fetching, so concurrent
    /// misses wait for one fetch instead of starting their own.
    last_fetch: tokio::sync::Mutex<Option<Instant>>,
}

#[derive(Default)]
struct Cached {
    keys: HashMap<String, VerifyingKey>,
    fetched_at: Option<Instant>,
}

impl Cached {
    fn get(&self, kid: &str) -> Option<VerifyingKey> {
        self.keys.get(kid).cloned()
    }

    fn fresh(&self) -> bool {
        self.fetched_at.is_some_and(|at| at.elapsed() < MAX_AGE)
    }
}

impl JwksKeys {
    pub fn new(url: &str, min_refresh: Duration) -> Result<JwksKeys, reqwest::Error> {
        Ok(JwksKeys {
            url: url.to_string(),
            http: reqwest::Client::builder()
                .timeout(FETCH_TIMEOUT)
                .redirect(reqwest::redirect::Policy::none())
                .build()?,
            min_refresh,
            cached: RwLock::default(),
            last_fetch: tokio::sync::Mutex::new(None),
        })
    }

    fn cached(&self) -> std::sync::RwLockReadGuard<'_, Cached> {
        self.cached.read().unwrap_or_else(|e| e.into_inner())
    }

    /// The key `kid`, refreshing the set when it is unknown or old.
    pub async fn key(&self, kid: &str) -> Result<VerifyingKey, JwksError> {
        let (known, fresh) = {
            let cached = self.cached();
            (cached.get(kid), cached.fresh())
        };
        if let Some(key) = &known
            && fresh
        {
            return Ok(key.clone());
        }
        match self.refresh(kid).await {
            Ok(()) => {}
            // An old key still verifies while the provider is away.
            Err(e) if known.is_some() => {
                tracing::warn!(error = %e, "keeping the cached JWKS");
            }
            Err(e) => return Err(e),
        }
        self.cached()
            .get(kid)
            .ok_or_else(|| JwksError::UnknownKey(kid.to_string()))
    }

    /// Fetches the set again unless another request just did, or the last
    /// fetch was less than `min_refresh` ago.
    async fn refresh(&self, kid: &str) -> Result<(), JwksError> {
        let mut last_fetch = self.last_fetch.lock().await;
        {
            let cached = self.cached();
            if cached.get(kid).is_some() && cached.fresh() {
                return Ok(());
            }
        }
        if last_fetch.is_some_and(|at| at.elapsed() < self.min_refresh) {
            return Ok(());
        }
        *last_fetch = Some(Instant::now());
        let keys = self.fetch().await?;
        tracing::info!(keys = keys.len(), url = %redact(&self.url), "fetched the JWKS");
        *self.cached.write().unwrap_or_else(|e| e.into_inner()) = Cached {
            keys,
            fetched_at: Some(Instant::now()),
        };
        Ok(())
    }

    async fn fetch(&self) -> Result<HashMap<String, VerifyingKey>, JwksError> {
        let unavailable = |e: &dyn std::fmt::Display| {
            JwksError::Unavailable(format!("{}: {e}", redact(&self.url)))
        };
        let response = self
            .http
            .get(&self.url)
            .send()
            .await
            .map_err(|e| unavailable(&e.without_url()))?;
        let status = response.status();
        if status.is_redirection() {
            return Err(unavailable(&format_args!(
                "answered {status}: redirects are not followed; set CHORUS_JWT_JWKS_URL \
                 to the address the keys are served at"
            )));
        }
        let body = read_capped(
            response
                .error_for_status()
                .map_err(|e| unavailable(&e.without_url()))?,
        )
        .await
        .map_err(|e| unavailable(&e))?;
        let document: Value = serde_json::from_slice(&body)
            .map_err(|e| unavailable(&format_args!("not JSON: {e}")))?;
        signing_keys(&document).ok_or_else(|| unavailable(&"the answer is not a JWKS"))
    }
}

/// The body of `response`, refused once it grows past [`MAX_BODY_BYTES`]
/// (before any of it is read when its length is announced).
async fn read_capped(mut response: reqwest::Response) -> Result<Vec<u8>, String> {
    let too_long = || format!("the answer is longer than {MAX_BODY_BYTES} bytes");
    if response
        .content_length()
        .is_some_and(|length| length > MAX_BODY_BYTES as u64)
    {
        return Err(too_long());
    }
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| e.without_url().to_string())?
    {
        if body.len() + chunk.len() > MAX_BODY_BYTES {
            return Err(too_long());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// The RS256 and ES256 signing keys of a JWKS document, by `kid`. Keys of
/// other types or uses (encryption keys, other curves) are left out rather
/// than failing the whole set.
pub fn signing_keys(document: &Value) -> Option<HashMap<String, VerifyingKey>> {
    let keys = document.get("keys")?.as_array()?;
    Some(
        keys.iter()
            .filter_map(|value| {
                let jwk: Jwk = serde_json::from_value(value.clone()).ok()?;
                let kid = jwk.common.key_id.clone()?;
                if jwk.common.public_key_use == Some(PublicKeyUse::Encryption) {
                    return None;
                }
                let algorithm = match (&jwk.algorithm, jwk.common.key_algorithm) {
                    (AlgorithmParameters::RSA(_), None | Some(KeyAlgorithm::RS256)) => {
                        Algorithm::RS256
                    }
                    (AlgorithmParameters::EllipticCurve(ec), None | Some(KeyAlgorithm::ES256))
                        if ec.curve == EllipticCurve::P256 =>
                    {
                        Algorithm::ES256
                    }
                    _ => return None,
                };
                let key = DecodingKey::from_jwk(&jwk).ok()?;
                Some((
                    kid,
                    VerifyingKey {
                        algorithm,
                        key: Arc::new(key),
                    },
                ))
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn only_rs256_and_es256_signing_keys_are_taken() {
        let document = json!({"keys": [
            {"kty": "RSA", "kid": "r", "alg": "RS256", "use": "sig", "n": "sXchDaQebHnPiGvyDOAT4saGEUetSyo9MKLOoWFsueri23bOdgWp4Dy1WlUzewbgBHod5pcM9H95GQRV3JDXboIRROSBigeC5yjU1hGzHHyXss8UDprecbAYxknTcQkhslANGRUZmdTOQ5qTRsLAt6BTYuyvVRdhS8exSZEy_c4gs_7svlJJQ4H9_NxsiIoLwAEk7-Q3UXERGYw_75IDrGA84-lA_-Ct4eTlXHBIY2EaV7t7LjJaynVJCpkv4LKjTTAumiGUIuQhrNhZLuF_RJLqHpM2kgWFLU7-VTdL1VbC2tejvcI2BlMkEpk1BzBZI0KQB0GaDWFLN-aEAw3vRw", "e": "AQAB"},
                    {"kty": "RSA", "kid": "enc", "use": "enc", "n": "sXchDaQebHnPiGvyDOAT4saGEUetSyo9MKLOoWFsueri23bOdgWp4Dy1WlUzewbgBHod5pcM9H95GQRV3JDXboIRROSBigeC5yjU1hGzHHyXss8UDprecbAYxknTcQkhslANGRUZmdTOQ5qTRsLAt6BTYuyvVRdhS8exSZEy_c4gs_7svlJJQ4H9_NxsiIoLwAEk7-Q3UXERGYw_75IDrGA84-lA_-Ct4eTlXHBIY2EaV7t7LjJaynVJCpkv4LKjTTAumiGUIuQhrNhZLuF_RJLqHpM2kgWFLU7-VTdL1VbC2tejvcI2BlMkEpk1BzBZI0KQB0GaDWFLN-aEAw3vRw", "e": "AQAB"},
            {"kty": "RSA", "kid": "ps", "alg": "PS256", "n": "AQAB", "e": "AQAB"},
            {"kty": "EC", "kid": "e", "crv": "P-256", "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU", "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"},
            {"kty": "EC", "kid": "p384", "crv": "P-384", "x": "AQAB", "y": "AQAB"},
            {"kty": "OKP", "kid": "ed", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"},
            {"kid": "broken"},
            {"kty": "RSA", "n": "AQAB", "e": "AQAB"}
        ]});
        let keys = signing_keys(&document).unwrap();
        let mut kids: Vec<&str> = keys.keys().map(String::as_str).collect();
        kids.sort();
        assert_eq!(kids, ["e", "r"]);
        assert_eq!(keys["r"].algorithm, Algorithm::RS256);
        assert_eq!(keys["e"].algorithm, Algorithm::ES256);
        assert!(signing_keys(&json!({"no": "keys"})).is_none());
    }

    /// Serves `router` on a loopback port; the base URL.
    async fn serve(router: axum::Router) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, router).await });
        base
    }

    fn unavailable(result: Result<VerifyingKey, JwksError>) -> String {
        match result {
            Err(JwksError::Unavailable(cause)) => cause,
            Err(other) => panic!("not unavailable: {other}"),
            Ok(_) => panic!("a key was found"),
        }
    }

    #[tokio::test]
    async fn a_redirect_is_refused_not_followed() {
        use axum::routing::get;
        use std::sync::atomic::{AtomicUsize, Ordering};
        let followed = Arc::new(AtomicUsize::new(0));
        let counter = followed.clone();
        let router = axum::Router::new()
            .route(
                "/certs",
                get(|| async { axum::response::Redirect::temporary("/elsewhere") }),
            )
            .route(
                "/elsewhere",
                get(move || async move {
                    counter.fetch_add(1, Ordering::SeqCst);
                    axum::Json(json!({"keys": []}))
                }),
            );
        let base = serve(router).await;
        let jwks = JwksKeys::new(&format!("{base}/certs"), Duration::ZERO).unwrap();
        let cause = unavailable(jwks.key("k").await);
        assert!(
            cause.contains("307") && cause.contains("redirects"),
            "{cause}"
        );
        assert_eq!(
            followed.load(Ordering::SeqCst),
            0,
            "the redirect was followed"
        );
    }

    #[tokio::test]
    async fn an_answer_past_the_cap_is_refused_announced_or_streamed() {
        use axum::body::Body;
        use axum::routing::get;
        let padding = "x".repeat(MAX_BODY_BYTES);
        let announced = format!(r#"{{"keys": [], "padding": "{padding}"}}"#);
        let streamed = announced.clone();
        let router = axum::Router::new()
            .route("/announced", get(move || async move { announced }))
            .route(
                "/streamed",
                get(move || async move {
                    // Chunks without a Content-Length: only counting stops it.
                    let chunks: Vec<Result<Vec<u8>, std::io::Error>> = streamed
                        .into_bytes()
                        .chunks(64 * 1024)
                        .map(|chunk| Ok(chunk.to_vec()))
                        .collect();
                    Body::from_stream(futures::stream::iter(chunks))
                }),
            )
            .route(
                "/small",
                get(|| async { axum::Json(json!({"keys": [], "padding": "x".repeat(1000)})) }),
            );
        let base = serve(router).await;
        for path in ["/announced", "/streamed"] {
            let jwks = JwksKeys::new(&format!("{base}{path}"), Duration::ZERO).unwrap();
            let cause = unavailable(jwks.key("k").await);
            assert!(
                cause.contains("longer than 1048576 bytes"),
                "{path}: {cause}"
            );
        }
        // Under the cap the document is read (and holds no key `k`).
        let jwks = JwksKeys::new(&format!("{base}/small"), Duration::ZERO).unwrap();
        assert!(matches!(jwks.key("k").await, Err(JwksError::UnknownKey(_))));
    }
}
