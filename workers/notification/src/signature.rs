//! Webhook signatures per the Standard Webhooks specification: every attempt
//! carries `webhook-id` (the delivery id, the same on every resend),
//! `webhook-timestamp` (Unix seconds of that attempt) and `webhook-signature`
//! (`v1,<base64 HMAC-SHA256 of "id.timestamp.body">`), keyed with the bytes of
//! a `whsec_<base64>` secret, so any Standard Webhooks library verifies them
//! and rejects replays by their timestamp.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// The header carrying the delivery id receivers dedupe on.
pub const ID_HEADER: &str = "webhook-id";
/// The header carrying the attempt's time, Unix seconds.
pub const TIMESTAMP_HEADER: &str = "webhook-timestamp";
/// The header carrying `v1,<signature>`.
pub const SIGNATURE_HEADER: &str = "webhook-signature";

const PREFIX: &str = "whsec_";

/// The HMAC key of a `whsec_<base64>` secret. Never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookSecret {
    key: Vec<u8>,
}

impl std::fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WebhookSecret(<redacted>)")
    }
}

/// Why a secret is not a `whsec_<base64>` key; says nothing of its value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    #[error("must start with whsec_ (a Standard Webhooks secret: whsec_<base64 key>)")]
    MissingPrefix,
    #[error("the part after whsec_ is not valid base64")]
    NotBase64,
    #[error("the key after whsec_ is empty")]
    EmptyKey,
}

impl WebhookSecret {
    /// Parses `whsec_<base64>`: the key is the decoded bytes.
    pub fn parse(text: &str) -> Result<WebhookSecret, SecretError> {
        let encoded = text
            .strip_prefix(PREFIX)
            .ok_or(SecretError::MissingPrefix)?;
        let key = STANDARD
            .decode(encoded)
            .map_err(|_| SecretError::NotBase64)?;
        if key.is_empty() {
            return Err(SecretError::EmptyKey);
        }
        Ok(WebhookSecret { key })
    }

    /// The `webhook-signature` value of `body` sent as delivery `id` at
    /// `timestamp` (Unix seconds).
    pub fn sign(&self, id: &str, timestamp: i64, body: &[u8]) -> String {
        let mut mac = HmacSha256::new_from_slice(&self.key).expect("HMAC takes keys of any length");
        mac.update(id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_specification_test_vector() {
        // The example of the Standard Webhooks reference implementations.
        let secret = WebhookSecret::parse("whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD").unwrap();
        assert_eq!(
            secret.sign(
                "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk",
                1649367553,
                br#"{"email":"test@example.com","username":"test_user"}"#
            ),
            "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw="
        );
    }

    #[test]
    fn the_signature_covers_id_timestamp_and_body() {
        let secret = WebhookSecret::parse("whsec_c2VjcmV0LWtleQ==").unwrap();
        let signed = secret.sign("d-1", 1_700_000_000, b"{}");
        assert_ne!(signed, secret.sign("d-2", 1_700_000_000, b"{}"));
        assert_ne!(signed, secret.sign("d-1", 1_700_000_001, b"{}"));
        assert_ne!(signed, secret.sign("d-1", 1_700_000_000, b"[]"));
    }

    #[test]
    fn only_whsec_base64_with_a_key_is_a_secret() {
        assert_eq!(
            WebhookSecret::parse("c2VjcmV0"),
            Err(SecretError::MissingPrefix)
        );
        assert_eq!(
            WebhookSecret::parse("whsec_not base64!"),
            Err(SecretError::NotBase64)
        );
        assert_eq!(WebhookSecret::parse("whsec_"), Err(SecretError::EmptyKey));
        assert_eq!(
            format!("{:?}", WebhookSecret::parse("whsec_c2VjcmV0").unwrap()),
            "WebhookSecret(<redacted>)"
        );
    }
}
