//! Narrows each error response of the OpenAPI document to the error codes
//! that can really travel with it: an operation lists the codes of what it
//! takes (a bearer token, a JSON body, a path or query parameter, the
//! databases, Kafka) and of its own refusals; every status of those codes
//! becomes a response whose `error.code` is an `enum` of exactly them. The
//! shared responses under `components.responses` enumerate their status's
//! codes across the API, including the fallbacks' (no route, wrong method).

use std::collections::{BTreeMap, BTreeSet};

use axum::http::StatusCode;
use serde_json::{Map, Value, json};

use crate::error::ErrorCode;

/// The limits every request meets before its route (`limits::requests`):
/// its address's rate, a place among the requests in flight, the timeout.
pub const EDGE: &[ErrorCode] = &[
    ErrorCode::AddressRateLimited,
    ErrorCode::Overloaded,
    ErrorCode::RequestTimeout,
];
/// A bearer token checked and its subject's rate limit counted (`Caller`);
/// 503 when the identity provider's keys cannot be fetched.
pub const BEARER: &[ErrorCode] = &[
    ErrorCode::Unauthorized,
    ErrorCode::RateLimited,
    ErrorCode::Unavailable,
];
/// As [`BEARER`], with the admin role required (`Admin`).
pub const ADMIN: &[ErrorCode] = &[
    ErrorCode::Unauthorized,
    ErrorCode::Forbidden,
    ErrorCode::RateLimited,
    ErrorCode::Unavailable,
];
/// A JSON body (`JsonBody`).
pub const JSON_BODY: &[ErrorCode] = &[
    ErrorCode::UnsupportedMediaType,
    ErrorCode::PayloadTooLarge,
    ErrorCode::InvalidJson,
    ErrorCode::InvalidBody,
    ErrorCode::InvalidField,
];
/// A path parameter (`PathParam`).
pub const PATH: &[ErrorCode] = &[ErrorCode::InvalidPath];
/// Query parameters (`QueryParams`).
pub const QUERY: &[ErrorCode] = &[ErrorCode::InvalidQuery];
/// Reads or writes a database.
pub const STORE: &[ErrorCode] = &[ErrorCode::Unavailable, ErrorCode::Internal];
/// Publishes to Kafka.
pub const PUBLISH: &[ErrorCode] = &[ErrorCode::Unavailable, ErrorCode::Internal];

/// The error codes of each operation, and the shared response of each status.
pub struct OperationErrors {
    shared: &'static [(u16, &'static str)],
    fallbacks: &'static [ErrorCode],
    operations: BTreeMap<&'static str, BTreeSet<ErrorCode>>,
}

impl OperationErrors {
    /// `shared`: the `components.responses` entry of each error status;
    /// `fallbacks`: codes answered outside every operation.
    pub fn new(
        shared: &'static [(u16, &'static str)],
        fallbacks: &'static [ErrorCode],
    ) -> OperationErrors {
        OperationErrors {
            shared,
            fallbacks,
            operations: BTreeMap::new(),
        }
    }

    /// The operation `operation_id` answers exactly the codes of `parts`.
    pub fn operation(mut self, operation_id: &'static str, parts: &[&[ErrorCode]]) -> Self {
        let codes = self.operations.entry(operation_id).or_default();
        codes.extend(parts.iter().flat_map(|part| part.iter().copied()));
        self
    }

    pub fn operation_ids(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.operations.keys().copied()
    }

    fn shared_response(&self, status: u16) -> Option<&'static str> {
        self.shared
            .iter()
            .find(|(s, _)| *s == status)
            .map(|(_, name)| *name)
    }

    /// Rewrites `document`'s error responses: each operation's inline, with
    /// its codes; each shared one with the codes of its status across the API.
    pub fn enumerate(&self, document: &mut Value) {
        let shared = document
            .pointer("/components/responses")
            .cloned()
            .unwrap_or_default();
        // The codes of each shared response, gathered from where it is used.
        let mut shared_codes: BTreeMap<String, BTreeSet<ErrorCode>> = BTreeMap::new();
        for code in self.fallbacks {
            if let Some(name) = self.shared_response(code.status().as_u16()) {
                shared_codes
                    .entry(name.to_string())
                    .or_default()
                    .insert(*code);
            }
        }
        let operations = document["paths"]
            .as_object_mut()
            .into_iter()
            .flat_map(|paths| paths.values_mut())
            .filter_map(Value::as_object_mut)
            .flat_map(|item| item.values_mut());
        for operation in operations {
            let Some(codes) = operation["operationId"]
                .as_str()
                .and_then(|id| self.operations.get(id))
            else {
                continue;
            };
            let Some(responses) = operation
                .get_mut("responses")
                .and_then(Value::as_object_mut)
            else {
                continue;
            };
            for (status, codes) in by_status(codes) {
                let key = status.to_string();
                // A status the annotations lack gets its shared response.
                let response =
                    responses
                        .remove(&key)
                        .unwrap_or_else(|| match self.shared_response(status) {
                            Some(name) => json!({"$ref": format!("#/components/responses/{name}")}),
                            None => json!({"description": canonical_reason(status)}),
                        });
                // Inlined, so that each operation enumerates its own codes.
                let mut response = match shared_name(&response) {
                    Some(name) => {
                        let inline = shared[name.as_str()].clone();
                        shared_codes
                            .entry(name)
                            .or_default()
                            .extend(codes.iter().copied());
                        inline
                    }
                    None => response,
                };
                narrow_response(&mut response, &codes);
                responses.insert(key, response);
            }
        }
        if let Some(responses) = document
            .pointer_mut("/components/responses")
            .and_then(Value::as_object_mut)
        {
            for (name, codes) in shared_codes {
                if let Some(response) = responses.get_mut(&name) {
                    narrow_response(response, &codes);
                }
            }
        }
    }
}

fn canonical_reason(status: u16) -> &'static str {
    StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("Error")
}

fn by_status(codes: &BTreeSet<ErrorCode>) -> BTreeMap<u16, BTreeSet<ErrorCode>> {
    let mut by_status: BTreeMap<u16, BTreeSet<ErrorCode>> = BTreeMap::new();
    for code in codes {
        by_status
            .entry(code.status().as_u16())
            .or_default()
            .insert(*code);
    }
    by_status
}

/// `Name` of a `{"$ref": "#/components/responses/Name"}`.
fn shared_name(response: &Value) -> Option<String> {
    response["$ref"]
        .as_str()?
        .strip_prefix("#/components/responses/")
        .map(str::to_string)
}

/// Every body of `response` keeps its schema and gains: `error.code` is one
/// of `codes` (the error shape, and readiness's report, both hold `error`).
fn narrow_response(response: &mut Value, codes: &BTreeSet<ErrorCode>) {
    let Some(response) = response.as_object_mut() else {
        return;
    };
    let content = response.entry("content").or_insert_with(
        || json!({"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}),
    );
    for media in content
        .as_object_mut()
        .into_iter()
        .flat_map(Map::values_mut)
    {
        let schema = media["schema"].take();
        media["schema"] = narrowed(schema, codes);
    }
}

fn narrowed(schema: Value, codes: &BTreeSet<ErrorCode>) -> Value {
    let description: Vec<String> = codes
        .iter()
        .map(|code| format!("- `{code}`: {}", code.meaning()))
        .collect();
    let values: Vec<&str> = codes.iter().map(|code| code.as_str()).collect();
    json!({
        "allOf": [schema],
        "required": ["error"],
        "properties": {"error": {"properties": {"code": {
            "enum": values,
            "description": description.join("\n"),
        }}}},
    })
}
