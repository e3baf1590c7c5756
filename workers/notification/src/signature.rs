//! Webhook signatures per the Standard Webhooks specification, made by the
//! `standardwebhooks` crate (the reference implementation receivers verify
//! with): every attempt carries `webhook-id` (the delivery id, the same on
//! every resend), `webhook-timestamp` (Unix seconds of that attempt) and
//! `webhook-signature` (`v1,<base64 HMAC-SHA256 of "id.timestamp.body">`),
//! keyed with the bytes of a `whsec_<base64>` secret. While a secret is
//! being rotated out, each delivery is signed under both, space-delimited
//! (`v1,<current> v1,<previous>`), as the specification allows: a receiver
//! verifies if any one signature is its secret's, so receivers can move to
//! the new secret one at a time.
//!
//! Guarantee: a secret is accepted only in the `whsec_<base64>` form with a
//! non-empty key (the library alone would take any base64, prefix or not,
//! and an empty key), and is never shown.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use standardwebhooks::{Webhook, WebhookError};

/// The header carrying the delivery id receivers dedupe on.
pub const ID_HEADER: &str = standardwebhooks::HEADER_WEBHOOK_ID;
/// The header carrying the attempt's time, Unix seconds.
pub const TIMESTAMP_HEADER: &str = standardwebhooks::HEADER_WEBHOOK_TIMESTAMP;
/// The header carrying `v1,<signature>`.
pub const SIGNATURE_HEADER: &str = standardwebhooks::HEADER_WEBHOOK_SIGNATURE;

const PREFIX: &str = "whsec_";

/// The HMAC key of a `whsec_<base64>` secret. Never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookSecret {
    // The key's bytes, not a `standardwebhooks::Webhook`: that type can be
    // neither cloned nor compared, which the configuration needs.
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

/// Why a body could not be signed (the library refuses a body that is not
/// UTF-8 text; a JSON body always is).
#[derive(Debug, thiserror::Error)]
#[error("the webhook cannot be signed: {0}")]
pub struct SignError(#[from] pub WebhookError);

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

    /// How many bytes the key has (the configuration refuses short ones).
    pub fn key_len(&self) -> usize {
        self.key.len()
    }

    /// The `webhook-signature` value of `body` sent as delivery `id` at
    /// `timestamp` (Unix seconds).
    pub fn sign(&self, id: &str, timestamp: i64, body: &[u8]) -> Result<String, SignError> {
        Ok(Webhook::from_bytes(self.key.clone())?.sign(id, timestamp, body)?)
    }
}

/// The secrets every delivery is signed under: the current one, and while a
/// rotation is under way the one it replaces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SigningSecrets {
    pub current: WebhookSecret,
    pub previous: Option<WebhookSecret>,
}

impl SigningSecrets {
    /// Just `current`: one signature per delivery.
    pub fn new(current: WebhookSecret) -> SigningSecrets {
        SigningSecrets {
            current,
            previous: None,
        }
    }

    /// The `webhook-signature` value: `v1,<sig>` under the current secret,
    /// then ` v1,<sig>` under the previous one when there is one.
    pub fn sign(&self, id: &str, timestamp: i64, body: &[u8]) -> Result<String, SignError> {
        let mut signatures = self.current.sign(id, timestamp, body)?;
        if let Some(previous) = &self.previous {
            signatures.push(' ');
            signatures.push_str(&previous.sign(id, timestamp, body)?);
        }
        Ok(signatures)
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
            secret
                .sign(
                    "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk",
                    1649367553,
                    br#"{"email":"test@example.com","username":"test_user"}"#
                )
                .unwrap(),
            "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw="
        );
    }

    #[test]
    fn the_signature_covers_id_timestamp_and_body() {
        let secret = WebhookSecret::parse("whsec_c2VjcmV0LWtleQ==").unwrap();
        let sign = |id, timestamp, body| secret.sign(id, timestamp, body).unwrap();
        let signed = sign("d-1", 1_700_000_000, b"{}");
        assert_ne!(signed, sign("d-2", 1_700_000_000, b"{}"));
        assert_ne!(signed, sign("d-1", 1_700_000_001, b"{}"));
        assert_ne!(signed, sign("d-1", 1_700_000_000, b"[]"));
        let other = WebhookSecret::parse("whsec_b3RoZXIta2V5").unwrap();
        assert_ne!(signed, other.sign("d-1", 1_700_000_000, b"{}").unwrap());
    }

    #[test]
    fn during_a_rotation_the_header_carries_one_signature_per_secret_current_first() {
        let current = WebhookSecret::parse("whsec_c2VjcmV0LWtleQ==").unwrap();
        let previous = WebhookSecret::parse("whsec_b3RoZXIta2V5").unwrap();
        let (id, timestamp, body) = ("d-1", 1_700_000_000, b"{}");
        let alone = SigningSecrets::new(current.clone());
        assert_eq!(
            alone.sign(id, timestamp, body).unwrap(),
            current.sign(id, timestamp, body).unwrap()
        );
        let rotating = SigningSecrets {
            current: current.clone(),
            previous: Some(previous.clone()),
        };
        assert_eq!(
            rotating.sign(id, timestamp, body).unwrap(),
            format!(
                "{} {}",
                current.sign(id, timestamp, body).unwrap(),
                previous.sign(id, timestamp, body).unwrap()
            )
        );
    }

    #[test]
    fn a_body_that_is_not_text_is_not_signed() {
        let secret = WebhookSecret::parse("whsec_c2VjcmV0LWtleQ==").unwrap();
        assert!(matches!(
            secret.sign("d-1", 0, &[0xff, 0xfe]),
            Err(SignError(WebhookError::InvalidPayload))
        ));
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
