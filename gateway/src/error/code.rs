//! Every `code` the gateway answers in `{"error":{"code",…}}`, in one table:
//! a handler can only answer one of these, each has exactly one HTTP status,
//! and `/openapi.json` enumerates them under the statuses and routes that
//! carry them (see `routes::openapi`). The README's table of codes says what
//! a client should do about each.

use std::borrow::Cow;
use std::fmt;

use axum::http::StatusCode;
use serde::{Serialize, Serializer};
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::{PartialSchema, ToSchema};

macro_rules! error_codes {
    ($($variant:ident = $text:literal, $status:ident, $meaning:literal;)+) => {
        /// A machine-readable error code: the contract clients branch on.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum ErrorCode {
            $(#[doc = $meaning] $variant,)+
        }

        impl ErrorCode {
            /// Every code, in the order of the README's table.
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$variant),+];

            /// The code as the body carries it, e.g. `invalid_field`.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(ErrorCode::$variant => $text,)+
                }
            }

            /// The one status that carries this code.
            pub fn status(self) -> StatusCode {
                match self {
                    $(ErrorCode::$variant => StatusCode::$status,)+
                }
            }

            /// What the code means, in one line.
            pub fn meaning(self) -> &'static str {
                match self {
                    $(ErrorCode::$variant => $meaning,)+
                }
            }
        }
    };
}

error_codes! {
    InvalidField = "invalid_field", BAD_REQUEST,
        "A value is refused: the body field, query or path parameter, or header named in `field`.";
    MissingHeader = "missing_header", BAD_REQUEST,
        "A required header is absent (named in `field`), e.g. Idempotency-Key.";
    InvalidJson = "invalid_json", BAD_REQUEST,
        "The body is not valid JSON.";
    InvalidBody = "invalid_body", BAD_REQUEST,
        "The body is JSON but not an object of the expected shape, or could not be read.";
    InvalidPath = "invalid_path", BAD_REQUEST,
        "A path parameter cannot be decoded (e.g. bad percent-encoding).";
    InvalidQuery = "invalid_query", BAD_REQUEST,
        "The query string cannot be parsed (e.g. a parameter given twice).";
    Unauthorized = "unauthorized", UNAUTHORIZED,
        "The bearer token is missing, malformed, expired or not accepted.";
    Forbidden = "forbidden", FORBIDDEN,
        "The token's role may not use this route (admin routes).";
    NotFound = "not_found", NOT_FOUND,
        "No such resource, not yours, or no such route.";
    MethodNotAllowed = "method_not_allowed", METHOD_NOT_ALLOWED,
        "The path exists but does not accept this method.";
    AlreadyFinal = "already_final", CONFLICT,
        "The order is already CONFIRMED or CANCELLED.";
    PayloadTooLarge = "payload_too_large", PAYLOAD_TOO_LARGE,
        "The body is larger than 64 KiB.";
    UnsupportedMediaType = "unsupported_media_type", UNSUPPORTED_MEDIA_TYPE,
        "The body is not sent as application/json.";
    IdempotencyKeyReused = "idempotency_key_reused", UNPROCESSABLE_ENTITY,
        "This Idempotency-Key was already used with a different body.";
    RequestTimeout = "request_timeout", REQUEST_TIMEOUT,
        "The request (its body read, its handler run) took longer than the gateway allows; retry.";
    RateLimited = "rate_limited", TOO_MANY_REQUESTS,
        "The token subject's rate limit is exceeded; see Retry-After.";
    AddressRateLimited = "address_rate_limited", TOO_MANY_REQUESTS,
        "The client address's rate limit is exceeded (checked before the token); see Retry-After.";
    LongPollLimit = "long_poll_limit", TOO_MANY_REQUESTS,
        "Too many long-polls wait already (of this subject, or in all); see Retry-After, or read without `wait`.";
    OpenOrderLimit = "open_order_limit", TOO_MANY_REQUESTS,
        "The customer has as many orders not yet final as allowed; place more once some are confirmed or cancelled.";
    Internal = "internal", INTERNAL_SERVER_ERROR,
        "A bug on the gateway's side; the detail is in its log.";
    Unavailable = "unavailable", SERVICE_UNAVAILABLE,
        "Kafka, the schema registry, a database or the identity provider is unavailable; see Retry-After.";
    Overloaded = "overloaded", SERVICE_UNAVAILABLE,
        "The gateway is handling as many requests as it allows; see Retry-After.";
    NotReady = "not_ready", SERVICE_UNAVAILABLE,
        "Readiness: a dependency does not answer (named in the message and `checks`).";
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for ErrorCode {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// A string enumerating every code; each route's responses narrow it to
/// the codes that route can answer.
impl PartialSchema for ErrorCode {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .description(Some(
                "Machine-readable error code; each response lists the codes it can carry.",
            ))
            .enum_values(Some(ErrorCode::ALL.iter().map(|code| code.as_str())))
            .into()
    }
}

impl ToSchema for ErrorCode {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("ErrorCode")
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    #[test]
    fn codes_are_distinct_snake_case_and_serialize_as_written() {
        let texts: BTreeSet<&str> = ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
        assert_eq!(texts.len(), ErrorCode::ALL.len());
        for code in ErrorCode::ALL {
            let text = code.as_str();
            assert!(
                text.chars().all(|c| c.is_ascii_lowercase() || c == '_'),
                "{text}"
            );
            assert_eq!(serde_json::to_value(code).unwrap(), text);
            assert_eq!(code.to_string(), text);
            assert!(code.status().is_client_error() || code.status().is_server_error());
        }
    }
}
