//! Administrative calls to a Confluent-compatible schema registry (Confluent
//! Schema Registry, or Apicurio under `/apis/ccompat/v7`): set the
//! compatibility level, register, check compatibility, list subjects.

use std::time::Duration;

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
}

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
        let response = self.send(self.http.post(&url).json(&body)).await?;
        parse::<Id>(&url, &response).map(|r| r.id)
    }

    /// The latest version of a subject, or `None` when the subject does not exist.
    pub async fn latest(&self, subject: &str) -> Result<Option<RegisteredVersion>, RegistryError> {
        let url = self.url(&format!("/subjects/{subject}/versions/latest"));
        match self.send(self.http.get(&url)).await {
            Ok(body) => parse(&url, &body).map(Some),
            Err(RegistryError::Status { status: 404, .. }) => Ok(None),
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

    /// The schema text registered under `id`; `None` when the registry
    /// answers that it has no such id (404).
    pub async fn schema_by_id(&self, id: u32) -> Result<Option<String>, RegistryError> {
        #[derive(Deserialize)]
        struct Schema {
            schema: String,
        }
        let url = self.url(&format!("/schemas/ids/{id}"));
        match self.send(self.http.get(&url)).await {
            Ok(body) => parse::<Schema>(&url, &body).map(|s| Some(s.schema)),
            Err(RegistryError::Status { status: 404, .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    pub async fn subjects(&self) -> Result<Vec<String>, RegistryError> {
        let url = self.url("/subjects");
        let body = self.send(self.http.get(&url)).await?;
        parse(&url, &body)
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
