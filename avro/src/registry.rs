//! Calls to a Confluent-compatible schema registry (Confluent Schema
//! Registry, or Apicurio under `/apis/ccompat/v7`): set the compatibility
//! level, register, check compatibility, list subjects, fetch a schema by id.
//!
//! A 404 is believed only from a registry that proves itself one: before
//! "no such schema" or "no such subject" is answered, the subject list must
//! answer as a registry's does. A base URL that answers 404 for that too, or
//! answers what no registry would (a wrong prefix, a proxy routing
//! elsewhere), is [`RegistryError::Misrouted`],
//! a transient fault of the deployment, logged once until it answers again,
//! so good messages wait instead of being dead-lettered as unknown schemas.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_json::json;

use crate::error::{RegistryError, error_chain};
use crate::events::EventType;

const CONTENT_TYPE: &str = "application/vnd.schemaregistry.v1+json";

/// The subject of an event type on a topic (TopicRecordNameStrategy).
pub fn subject_name(topic: &str, event_type: EventType) -> String {
    format!("{topic}-{}", event_type.full_name())
}

/// The registry's verdict on a candidate schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Compatibility {
    /// The subject does not exist yet: any schema may be its first version.
    NewSubject,
    Compatible,
    Incompatible {
        messages: Vec<String>,
    },
}

/// The latest registered version of a subject.
#[derive(Debug, Clone, Deserialize)]
pub struct RegisteredVersion {
    pub id: u32,
    pub version: u32,
    pub schema: String,
}

/// Where the registry is and how to sign in to it. `Debug` hides the password.
#[derive(Clone, PartialEq, Eq)]
pub struct RegistrySettings {
    /// Base URL without a trailing slash, e.g. `http://127.0.0.1:8081/apis/ccompat/v7`.
    pub url: String,
    /// HTTP basic authentication (username, password).
    pub basic_auth: Option<(String, String)>,
}

impl RegistrySettings {
    /// A registry that needs no authentication.
    pub fn new(url: impl Into<String>) -> RegistrySettings {
        RegistrySettings {
            url: url.into().trim_end_matches('/').to_string(),
            basic_auth: None,
        }
    }

    pub fn with_basic_auth(mut self, username: String, password: String) -> RegistrySettings {
        self.basic_auth = Some((username, password));
        self
    }
}

impl std::fmt::Debug for RegistrySettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistrySettings")
            .field("url", &self.url)
            .field(
                "basic_auth",
                &self
                    .basic_auth
                    .as_ref()
                    .map(|(user, _)| (user, "<redacted>")),
            )
            .finish()
    }
}

pub struct RegistryClient {
    base: String,
    basic_auth: Option<(String, String)>,
    http: reqwest::Client,
    /// Whether the last look at the subject list found no registry there:
    /// the misrouting is logged when it starts and when it ends, not per call.
    misrouted: AtomicBool,
    /// When the subject list last answered as a registry's does.
    proven_at: Mutex<Option<Instant>>,
}

/// How long the subject list answering proves a 404 trustworthy.
const PROOF_HOLDS_FOR: Duration = Duration::from_secs(5);

impl RegistryClient {
    pub fn new(
        settings: &RegistrySettings,
        timeout: Duration,
    ) -> Result<RegistryClient, RegistryError> {
        let base = settings.url.trim_end_matches('/').to_string();
        let http = reqwest::Client::builder()
            .connect_timeout(timeout.min(Duration::from_secs(3)))
            .timeout(timeout)
            .no_proxy()
            .build()
            .map_err(|e| RegistryError::Unexpected {
                url: base.clone(),
                cause: e.to_string(),
            })?;
        Ok(RegistryClient {
            base,
            basic_auth: settings.basic_auth.clone(),
            http,
            misrouted: AtomicBool::new(false),
            proven_at: Mutex::new(None),
        })
    }

    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// Sets the global compatibility level, e.g. `BACKWARD`.
    pub async fn set_compatibility(&self, level: &str) -> Result<(), RegistryError> {
        let body = json!({ "compatibility": level });
        self.send(self.http.put(self.url("/config")).json(&body))
            .await
            .map(drop)
    }

    /// Registers a schema text as written; returns its id.
    pub async fn register(&self, subject: &str, schema: &str) -> Result<u32, RegistryError> {
        #[derive(Deserialize)]
        struct Id {
            id: u32,
        }
        let url = self.url(&format!("/subjects/{subject}/versions"));
        let body = json!({ "schema": schema, "schemaType": "AVRO" });
        match self.send(self.http.post(&url).json(&body)).await {
            Ok(response) => parse::<Id>(&url, &response).map(|r| r.id),
            // A registry never answers 404 to a registration: unless it
            // proves itself one, this is not a registry.
            Err(e @ RegistryError::Status { status: 404, .. }) => {
                self.confirm_not_found().await?;
                Err(e)
            }
            Err(e) => Err(e),
        }
    }

    /// The latest version of a subject, or `None` when a registry that
    /// proves itself one answers that the subject does not exist.
    pub async fn latest(&self, subject: &str) -> Result<Option<RegisteredVersion>, RegistryError> {
        let url = self.url(&format!("/subjects/{subject}/versions/latest"));
        match self.send(self.http.get(&url)).await {
            Ok(body) => self.believed(parse(&url, &body)).await.map(Some),
            Err(RegistryError::Status { status: 404, .. }) => {
                self.confirm_not_found().await?;
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// Asks the registry whether `schema` may become the next version of `subject`.
    pub async fn check(&self, subject: &str, schema: &str) -> Result<Compatibility, RegistryError> {
        #[derive(Deserialize)]
        struct Verdict {
            is_compatible: bool,
            #[serde(default)]
            messages: Vec<serde_json::Value>,
        }
        // Apicurio answers "compatible" for a subject it does not have, so
        // ask first whether the subject exists at all.
        if self.latest(subject).await?.is_none() {
            return Ok(Compatibility::NewSubject);
        }
        let url = self.url(&format!(
            "/compatibility/subjects/{subject}/versions/latest?verbose=true"
        ));
        let body = json!({ "schema": schema, "schemaType": "AVRO" });
        match self.send(self.http.post(&url).json(&body)).await {
            Ok(response) => {
                let verdict: Verdict = parse(&url, &response)?;
                Ok(if verdict.is_compatible {
                    Compatibility::Compatible
                } else {
                    let messages = verdict
                        .messages
                        .iter()
                        .map(|m| m.as_str().map_or_else(|| m.to_string(), str::to_string))
                        .collect();
                    Compatibility::Incompatible { messages }
                })
            }
            Err(RegistryError::Status { status: 404, .. }) => Ok(Compatibility::NewSubject),
            Err(e) => Err(e),
        }
    }

    /// The schema text registered under `id`; `None` when a registry that
    /// proves itself one answers that it has no such id (404).
    pub async fn schema_by_id(&self, id: u32) -> Result<Option<String>, RegistryError> {
        #[derive(Deserialize)]
        struct Schema {
            schema: String,
        }
        let url = self.url(&format!("/schemas/ids/{id}"));
        match self.send(self.http.get(&url)).await {
            Ok(body) => self
                .believed(parse::<Schema>(&url, &body))
                .await
                .map(|s| Some(s.schema)),
            Err(RegistryError::Status { status: 404, .. }) => {
                self.confirm_not_found().await?;
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    pub async fn subjects(&self) -> Result<Vec<String>, RegistryError> {
        let url = self.url("/subjects");
        let body = self.send(self.http.get(&url)).await?;
        parse(&url, &body)
    }

    /// Whether a registry answers at the base URL (for a readiness probe):
    /// its subject list answers as a registry's does. A 404 for the list, or
    /// an answer that is not one, is [`RegistryError::Misrouted`].
    pub async fn probe(&self) -> Result<(), RegistryError> {
        let result = match self.subjects().await {
            Ok(_) => Ok(()),
            Err(RegistryError::Status { status: 404, .. } | RegistryError::Unexpected { .. }) => {
                Err(RegistryError::Misrouted {
                    url: self.base.clone(),
                })
            }
            Err(e) => return Err(e),
        };
        self.note_misrouted(result.is_err());
        result
    }

    /// After a 404 for one subject or id: `Ok` when the registry proves
    /// itself one, so that the 404 means what it says. A proof holds for
    /// [`PROOF_HOLDS_FOR`]: a burst of unknown schema ids costs one look at
    /// the subject list, not one each.
    async fn confirm_not_found(&self) -> Result<(), RegistryError> {
        let proven = *self.proven_at.lock().unwrap_or_else(|e| e.into_inner());
        if proven.is_some_and(|at| at.elapsed() < PROOF_HOLDS_FOR) {
            return Ok(());
        }
        self.probe().await?;
        *self.proven_at.lock().unwrap_or_else(|e| e.into_inner()) = Some(Instant::now());
        Ok(())
    }

    /// An answer that did not parse as a registry's is believed to be the
    /// registry's own fault only if it proves itself one; a server that
    /// answers every path with a page (a wrong host behind a proxy) is
    /// misrouted.
    async fn believed<T>(&self, parsed: Result<T, RegistryError>) -> Result<T, RegistryError> {
        if parsed.is_err() {
            self.probe().await?;
        }
        parsed
    }

    /// Logs a misrouting when it starts and when it ends.
    fn note_misrouted(&self, misrouted: bool) {
        let was = self.misrouted.swap(misrouted, Ordering::Relaxed);
        if misrouted && !was {
            tracing::error!(
                url = %self.base,
                "the schema registry at {} answers 404 for everything, its subject list included \
                 (check CHORUS_SCHEMA_REGISTRY_URL): messages wait for it, none is dead-lettered",
                self.base
            );
        } else if was && !misrouted {
            tracing::info!(url = %self.base, "the schema registry answers as a registry again");
        }
    }

    /// Whether the last look found no registry at the base URL.
    pub fn is_misrouted(&self) -> bool {
        self.misrouted.load(Ordering::Relaxed)
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> Result<String, RegistryError> {
        let mut request = request.header(reqwest::header::ACCEPT, CONTENT_TYPE);
        if let Some((username, password)) = &self.basic_auth {
            request = request.basic_auth(username, Some(password));
        }
        let request = request.build().map_err(|e| RegistryError::Unexpected {
            url: self.base.clone(),
            cause: e.to_string(),
        })?;
        let url = request.url().to_string();
        let response =
            self.http
                .execute(request)
                .await
                .map_err(|e| RegistryError::Unreachable {
                    url: url.clone(),
                    cause: error_chain(&e),
                })?;
        let status = response.status().as_u16();
        let body = response
            .text()
            .await
            .map_err(|e| RegistryError::Unreachable {
                url: url.clone(),
                cause: error_chain(&e),
            })?;
        if (200..300).contains(&status) {
            Ok(body)
        } else {
            Err(RegistryError::Status { url, status, body })
        }
    }
}

fn parse<T: for<'de> Deserialize<'de>>(url: &str, body: &str) -> Result<T, RegistryError> {
    serde_json::from_str(body).map_err(|e| RegistryError::Unexpected {
        url: url.to_string(),
        cause: format!("{e}: {body}"),
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// An HTTP server on a free port that answers every request with what
    /// `answer` says for its path; returns its base URL.
    pub(crate) async fn stub(answer: fn(&str) -> (u16, &'static str)) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut request = Vec::new();
                    let mut buf = [0u8; 4096];
                    // The head, then as much body as it announces.
                    let (head_end, length) = loop {
                        let Ok(n) = stream.read(&mut buf).await else {
                            return;
                        };
                        if n == 0 {
                            return;
                        }
                        request.extend_from_slice(&buf[..n]);
                        if let Some(end) = request.windows(4).position(|w| w == b"\r\n\r\n") {
                            let head = String::from_utf8_lossy(&request[..end]).to_lowercase();
                            let length = head
                                .lines()
                                .find_map(|l| l.strip_prefix("content-length:"))
                                .and_then(|v| v.trim().parse::<usize>().ok())
                                .unwrap_or(0);
                            break (end + 4, length);
                        }
                    };
                    while request.len() < head_end + length {
                        match stream.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => request.extend_from_slice(&buf[..n]),
                        }
                    }
                    let head = String::from_utf8_lossy(&request[..head_end]).into_owned();
                    let path = head.split_whitespace().nth(1).unwrap_or("/").to_string();
                    let (status, body) = answer(&path);
                    let response = format!(
                        "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\n\
                         content-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = stream.write_all(response.as_bytes()).await;
                });
            }
        });
        format!("http://127.0.0.1:{port}/apis/ccompat/v7")
    }

    fn client(url: &str) -> RegistryClient {
        RegistryClient::new(&RegistrySettings::new(url), Duration::from_secs(5)).unwrap()
    }

    #[tokio::test]
    async fn a_server_answering_404_for_everything_is_misrouted_not_a_missing_schema() {
        let registry = client(&stub(|_| (404, "<html>Not Found</html>")).await);
        fn misrouted<T>(r: &Result<T, RegistryError>) -> bool {
            matches!(r, Err(e @ RegistryError::Misrouted { .. }) if e.is_transient())
        }
        let by_id = registry.schema_by_id(7).await;
        assert!(misrouted(&by_id), "{by_id:?}");
        let latest = registry.latest("orders-chorus.OrderPlaced").await;
        assert!(misrouted(&latest), "{latest:?}");
        let registered = registry.register("orders-chorus.OrderPlaced", "{}").await;
        assert!(misrouted(&registered), "{registered:?}");
        assert!(misrouted(&registry.probe().await));
        assert!(registry.is_misrouted());
        assert!(
            registry
                .probe()
                .await
                .unwrap_err()
                .to_string()
                .contains("CHORUS_SCHEMA_REGISTRY_URL")
        );
    }

    #[tokio::test]
    async fn a_server_answering_every_path_with_a_page_is_misrouted() {
        let registry = client(&stub(|_| (200, "<html>Welcome</html>")).await);
        let by_id = registry.schema_by_id(7).await;
        assert!(
            matches!(by_id, Err(RegistryError::Misrouted { .. })),
            "{by_id:?}"
        );
    }

    #[tokio::test]
    async fn a_registry_listing_its_subjects_is_believed_when_it_has_no_such_schema() {
        let registry = client(
            &stub(|path| match path {
                "/apis/ccompat/v7/subjects" => (200, r#"["orders-chorus.OrderPlaced"]"#),
                _ => (404, r#"{"error_code":40403,"message":"Schema not found"}"#),
            })
            .await,
        );
        assert_eq!(registry.schema_by_id(7).await.unwrap(), None);
        assert!(registry.latest("nothing-here").await.unwrap().is_none());
        assert!(registry.probe().await.is_ok());
        assert!(!registry.is_misrouted());
    }

    #[tokio::test]
    async fn a_registry_down_while_proving_itself_is_down_not_misrouted() {
        let registry = client(
            &stub(|path| match path {
                "/apis/ccompat/v7/subjects" => (503, "busy"),
                _ => (404, "{}"),
            })
            .await,
        );
        let err = registry.schema_by_id(7).await.unwrap_err();
        assert!(
            matches!(err, RegistryError::Status { status: 503, .. }) && err.is_transient(),
            "{err:?}"
        );
        assert!(!registry.is_misrouted());
    }
}
