//! W3C trace context: the gateway continues the caller's trace (or starts
//! one) and hands a child `traceparent` to Kafka, so the saga's workers join
//! the same trace.

use std::convert::Infallible;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;

pub const HEADER: &str = "traceparent";

/// The `traceparent` this request's work runs under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceContext {
    pub trace_id: String,
    pub span_id: String,
    pub flags: String,
}

impl TraceContext {
    /// A child span of the caller's context, or a new sampled trace when the
    /// header is missing or invalid (as the W3C spec asks).
    pub fn from_header(header: Option<&str>) -> TraceContext {
        match header.and_then(parse) {
            Some((trace_id, flags)) => TraceContext {
                trace_id,
                span_id: random_hex(8),
                flags,
            },
            None => TraceContext {
                trace_id: random_hex(16),
                span_id: random_hex(8),
                flags: "01".to_string(),
            },
        }
    }

    /// `00-<trace id>-<span id>-<flags>`.
    pub fn header_value(&self) -> String {
        format!("00-{}-{}-{}", self.trace_id, self.span_id, self.flags)
    }
}

/// The trace id and flags of a valid header. Version 00 has exactly four
/// fields; a later version may append more, and its first four are read as 00.
fn parse(header: &str) -> Option<(String, String)> {
    let parts: Vec<&str> = header.trim().split('-').collect();
    let (version, rest) = parts.split_first()?;
    let known_shape = match *version {
        "00" => rest.len() == 3,
        "ff" => false,
        v => is_hex(v, 2) && rest.len() >= 3,
    };
    if !known_shape {
        return None;
    }
    let (trace_id, parent_id, flags) = (rest[0], rest[1], rest[2]);
    let valid = is_hex(trace_id, 32)
        && trace_id.bytes().any(|b| b != b'0')
        && is_hex(parent_id, 16)
        && parent_id.bytes().any(|b| b != b'0')
        && is_hex(flags, 2);
    valid.then(|| (trace_id.to_string(), flags.to_string()))
}

fn is_hex(s: &str, len: usize) -> bool {
    s.len() == len
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

fn random_hex(bytes: usize) -> String {
    let random = uuid::Uuid::new_v4();
    hex::encode(&random.as_bytes()[..bytes])
}

impl<S: Send + Sync> FromRequestParts<S> for TraceContext {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Infallible> {
        let header = parts.headers.get(HEADER).and_then(|v| v.to_str().ok());
        Ok(TraceContext::from_header(header))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn continues_a_valid_trace_with_a_new_span() {
        let incoming = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let context = TraceContext::from_header(Some(incoming));
        assert_eq!(context.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_ne!(context.span_id, "00f067aa0ba902b7");
        assert!(
            context
                .header_value()
                .starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-")
        );
        assert!(context.header_value().ends_with("-01"));
    }

    #[test]
    fn starts_a_new_trace_when_the_header_is_missing_or_invalid() {
        for header in [
            None,
            Some("garbage"),
            Some("00-00000000000000000000000000000000-00f067aa0ba902b7-01"),
            Some("00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01"),
            Some("ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
        ] {
            let context = TraceContext::from_header(header);
            assert_ne!(context.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
            assert_eq!(context.header_value().len(), 55, "{header:?}");
            assert!(parse(&context.header_value()).is_some());
        }
    }
}
