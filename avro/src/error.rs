//! Typed codec errors. Each says whether retrying can help: a payload that
//! can never decode is permanent (dead-letter it); an unreachable registry is
//! transient (retry it).

use thiserror::Error;

/// Why bytes did not decode into an event.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DecodeError {
    #[error(
        "empty payload: expected the Confluent wire format (magic byte 0, schema id, Avro body)"
    )]
    Empty,
    #[error("truncated payload: {0}")]
    Truncated(String),
    #[error("wrong magic byte {0:#04x}: expected 0x00 (not Confluent wire format)")]
    WrongMagicByte(u8),
    #[error("schema id {0} is unknown to the schema registry")]
    UnknownSchemaId(u32),
    #[error("schema registry unavailable: {0}")]
    RegistryUnavailable(String),
    /// The registry answered, but neither with the schema nor with "no such id".
    #[error("schema registry refused the schema lookup: {0}")]
    RegistryRefused(String),
    #[error("record type `{0}` is not a chorus event")]
    UnknownRecordType(String),
    #[error("expected a {expected} but the payload is a {found}")]
    WrongRecordType { expected: String, found: String },
    #[error("payload does not match its schema: {0}")]
    Malformed(String),
}

impl DecodeError {
    /// True when retrying can never succeed: the message belongs in the dead-letter topic.
    pub fn is_permanent(&self) -> bool {
        !matches!(
            self,
            DecodeError::RegistryUnavailable(_) | DecodeError::RegistryRefused(_)
        )
    }

    /// True when the registry is down or busy: retry, however long it takes.
    pub fn is_transient(&self) -> bool {
        matches!(self, DecodeError::RegistryUnavailable(_))
    }

    /// A short stable name for headers and metrics, e.g. `wrong_magic_byte`.
    pub fn class(&self) -> &'static str {
        match self {
            DecodeError::Empty => "empty",
            DecodeError::Truncated(_) => "truncated",
            DecodeError::WrongMagicByte(_) => "wrong_magic_byte",
            DecodeError::UnknownSchemaId(_) => "unknown_schema_id",
            DecodeError::RegistryUnavailable(_) => "registry_unavailable",
            DecodeError::RegistryRefused(_) => "registry_refused",
            DecodeError::UnknownRecordType(_) => "unknown_record_type",
            DecodeError::WrongRecordType { .. } => "wrong_record_type",
            DecodeError::Malformed(_) => "malformed",
        }
    }
}

/// Why an event could not be encoded.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum EncodeError {
    #[error(
        "no schema registered for subject `{subject}` and auto-registration is off (run `chorus schemas register`): {cause}"
    )]
    NotRegistered { subject: String, cause: String },
    #[error("schema registry unavailable: {0}")]
    RegistryUnavailable(String),
    #[error("schema registry refused subject `{subject}`: {cause}")]
    Rejected { subject: String, cause: String },
    #[error("event does not fit its schema: {0}")]
    Invalid(String),
}

impl EncodeError {
    pub fn is_transient(&self) -> bool {
        matches!(self, EncodeError::RegistryUnavailable(_))
    }
}

/// A schema registry call that failed.
#[derive(Debug, Error)]
pub enum RegistryError {
    #[error("schema registry at {url} is unreachable: {cause}")]
    Unreachable { url: String, cause: String },
    #[error("schema registry at {url} answered {status}: {body}")]
    Status {
        url: String,
        status: u16,
        body: String,
    },
    #[error("schema registry at {url} answered something unexpected: {cause}")]
    Unexpected { url: String, cause: String },
    /// What answers at the base URL is not a registry: it answers 404 (or
    /// not as a registry does) even for its subject list, so its 404 for a
    /// schema says nothing about the schema. A wrong URL or prefix, or a
    /// proxy routing elsewhere.
    #[error(
        "the schema registry at {url} answers 404 for everything, its subject list included: \
         check CHORUS_SCHEMA_REGISTRY_URL (for Apicurio it ends in /apis/ccompat/v7)"
    )]
    Misrouted { url: String },
}

impl RegistryError {
    /// True when the registry is down or busy (no connection, a timeout, 408,
    /// 429, 5xx) and asking again later may succeed. A refused login (401,
    /// 403) and a misrouted URL count too: it is the deployment that is
    /// wrong, not the message, and fixing it must not find the messages
    /// dead-lettered.
    pub fn is_transient(&self) -> bool {
        match self {
            RegistryError::Unreachable { .. } | RegistryError::Misrouted { .. } => true,
            RegistryError::Status { status, .. } => {
                matches!(status, 401 | 403 | 408 | 429) || *status >= 500
            }
            RegistryError::Unexpected { .. } => false,
        }
    }
}

/// An error and its sources on one line (`outer: cause: root cause`), for a
/// log field, an error message or an event detail.
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
