//! Payment tokens are never readable on Kafka: the gateway seals each one
//! with AES-256-GCM under `CHORUS_PAYMENT_TOKEN_KEY`, bound to its order (the
//! order id is the associated data, so a sealed token cannot be moved to
//! another order), and only the payment service opens it. The key id travels
//! beside the ciphertext so keys can rotate: a token sealed under the key
//! now in `CHORUS_PAYMENT_TOKEN_KEY_PREVIOUS` still opens. No error and no
//! `Debug` output ever shows a token or a key.

use aes_gcm::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use sha2::{Digest, Sha256};

use crate::config::{ConfigError, Env};

pub const KEY_VARIABLE: &str = "CHORUS_PAYMENT_TOKEN_KEY";
pub const PREVIOUS_KEY_VARIABLE: &str = "CHORUS_PAYMENT_TOKEN_KEY_PREVIOUS";

/// AES-GCM's standard 96-bit nonce, drawn at random for every seal.
const NONCE_BYTES: usize = 12;

/// A short, stable name of a key: the first 8 hex digits of its SHA-256.
pub fn key_id(key: &[u8; 32]) -> String {
    hex::encode(&Sha256::digest(key)[..4])
}

/// A token sealed for one order: `ciphertext` is base64 of nonce ‖ AES-GCM
/// output (ciphertext and tag).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sealed {
    pub key_id: String,
    pub ciphertext: String,
}

/// Why a sealed token did not open. Never carries the token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OpenError {
    #[error(
        "the payment token was sealed with key {0}, which is neither {KEY_VARIABLE} \
         nor {PREVIOUS_KEY_VARIABLE}"
    )]
    UnknownKey(String),
    #[error("the sealed payment token is not base64 of a nonce and a ciphertext")]
    Malformed,
    #[error(
        "the sealed payment token does not open with key {0} for this order \
         (altered, or sealed for another order)"
    )]
    Rejected(String),
}

#[derive(Clone)]
struct Key {
    id: String,
    cipher: Aes256Gcm,
}

impl Key {
    fn new(bytes: &[u8; 32]) -> Key {
        Key {
            id: key_id(bytes),
            cipher: Aes256Gcm::new(bytes.into()),
        }
    }
}

/// The current key (seals and opens) and the previous one (opens only).
#[derive(Clone)]
pub struct PaymentTokenKeys {
    current: Key,
    previous: Option<Key>,
}

impl std::fmt::Debug for PaymentTokenKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PaymentTokenKeys")
            .field("current", &self.current.id)
            .field("previous", &self.previous.as_ref().map(|k| &k.id))
            .finish()
    }
}

impl PaymentTokenKeys {
    pub fn new(current: &[u8; 32], previous: Option<&[u8; 32]>) -> PaymentTokenKeys {
        PaymentTokenKeys {
            current: Key::new(current),
            previous: previous.map(Key::new),
        }
    }

    /// The keys from `CHORUS_PAYMENT_TOKEN_KEY` (and `…_PREVIOUS`), each
    /// base64 of 32 bytes. Without a key a service refuses to start, unless
    /// `CHORUS_DEV=true`: then `None`, and tokens travel in plaintext.
    pub fn from_env(env: &Env) -> Result<Option<PaymentTokenKeys>, ConfigError> {
        let dev = env.parse("CHORUS_DEV", false)?;
        let current = read_key(env, KEY_VARIABLE)?;
        let previous = read_key(env, PREVIOUS_KEY_VARIABLE)?;
        match (current, previous) {
            (Some(current), previous) => {
                Ok(Some(PaymentTokenKeys::new(&current, previous.as_ref())))
            }
            (None, Some(_)) => Err(ConfigError::new(
                KEY_VARIABLE,
                "",
                "must be set when CHORUS_PAYMENT_TOKEN_KEY_PREVIOUS is: the previous key only opens",
            )),
            (None, None) if dev => Ok(None),
            (None, None) => Err(ConfigError::new(
                KEY_VARIABLE,
                "",
                "payment tokens must be sealed: set it to base64 of 32 random bytes \
                 (`openssl rand -base64 32`), or CHORUS_DEV=true for a development run",
            )),
        }
    }

    /// The id written beside tokens sealed now.
    pub fn current_key_id(&self) -> &str {
        &self.current.id
    }

    /// Seals `token` for `order_id` under the current key, with a fresh
    /// random nonce (sealing the same token twice gives two ciphertexts).
    pub fn seal(&self, order_id: &str, token: &str) -> Sealed {
        let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
        let sealed = self
            .current
            .cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: token.as_bytes(),
                    aad: order_id.as_bytes(),
                },
            )
            // AES-GCM refuses only messages of 64 GiB and more.
            .expect("a payment token is far below AES-GCM's message limit");
        let mut bytes = Vec::with_capacity(NONCE_BYTES + sealed.len());
        bytes.extend_from_slice(&nonce);
        bytes.extend_from_slice(&sealed);
        Sealed {
            key_id: self.current.id.clone(),
            ciphertext: BASE64.encode(bytes),
        }
    }

    /// The token sealed for `order_id` under the key `key_id` (current or previous).
    pub fn open(
        &self,
        order_id: &str,
        key_id: &str,
        ciphertext: &str,
    ) -> Result<String, OpenError> {
        let key = [Some(&self.current), self.previous.as_ref()]
            .into_iter()
            .flatten()
            .find(|key| key.id == key_id)
            .ok_or_else(|| OpenError::UnknownKey(key_id.to_string()))?;
        let bytes = BASE64
            .decode(ciphertext.trim())
            .map_err(|_| OpenError::Malformed)?;
        if bytes.len() <= NONCE_BYTES {
            return Err(OpenError::Malformed);
        }
        let (nonce, sealed) = bytes.split_at(NONCE_BYTES);
        let token = key
            .cipher
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: sealed,
                    aad: order_id.as_bytes(),
                },
            )
            .map_err(|_| OpenError::Rejected(key.id.clone()))?;
        String::from_utf8(token).map_err(|_| OpenError::Malformed)
    }
}

fn read_key(env: &Env, variable: &str) -> Result<Option<[u8; 32]>, ConfigError> {
    let Some(text) = env.optional(variable) else {
        return Ok(None);
    };
    let bad = || {
        ConfigError::new(
            variable,
            "",
            "must be base64 of exactly 32 bytes (`openssl rand -base64 32`)",
        )
    };
    let bytes = BASE64.decode(text.trim()).map_err(|_| bad())?;
    bytes.try_into().map(Some).map_err(|_| bad())
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: [u8; 32] = [7; 32];
    const B: [u8; 32] = [9; 32];
    const ORDER: &str = "0b9f6a4e-5d0c-4f3e-9a51-2c1d7e8f9a00";
    const TOKEN: &str = "tok_visa_4242424242424242";

    #[test]
    fn a_sealed_token_opens_for_its_order_only() {
        let keys = PaymentTokenKeys::new(&A, None);
        let sealed = keys.seal(ORDER, TOKEN);
        assert_eq!(sealed.key_id, key_id(&A));
        assert_eq!(sealed.key_id.len(), 8);
        assert!(!sealed.ciphertext.contains("tok_"));
        assert_ne!(sealed, keys.seal(ORDER, TOKEN), "a fresh nonce per seal");
        assert_eq!(
            keys.open(ORDER, &sealed.key_id, &sealed.ciphertext)
                .unwrap(),
            TOKEN
        );
        let moved = keys.open("another-order", &sealed.key_id, &sealed.ciphertext);
        assert_eq!(moved, Err(OpenError::Rejected(key_id(&A))));
    }

    #[test]
    fn an_altered_ciphertext_is_rejected() {
        let keys = PaymentTokenKeys::new(&A, None);
        let sealed = keys.seal(ORDER, TOKEN);
        let bytes = BASE64.decode(&sealed.ciphertext).unwrap();
        for position in [0, NONCE_BYTES, bytes.len() - 1] {
            let mut altered = bytes.clone();
            altered[position] ^= 1;
            let result = keys.open(ORDER, &sealed.key_id, &BASE64.encode(&altered));
            assert_eq!(
                result,
                Err(OpenError::Rejected(key_id(&A))),
                "byte {position}"
            );
        }
        let short = BASE64.encode(&bytes[..NONCE_BYTES]);
        assert_eq!(
            keys.open(ORDER, &sealed.key_id, &short),
            Err(OpenError::Malformed)
        );
        assert_eq!(
            keys.open(ORDER, &sealed.key_id, "not base64!"),
            Err(OpenError::Malformed)
        );
    }

    #[test]
    fn the_previous_key_still_opens_after_a_rotation() {
        let before = PaymentTokenKeys::new(&A, None);
        let sealed_before = before.seal(ORDER, TOKEN);
        let after = PaymentTokenKeys::new(&B, Some(&A));
        assert_eq!(after.current_key_id(), key_id(&B));
        let opened = after.open(ORDER, &sealed_before.key_id, &sealed_before.ciphertext);
        assert_eq!(opened.unwrap(), TOKEN);
        let sealed_after = after.seal(ORDER, TOKEN);
        assert_eq!(sealed_after.key_id, key_id(&B));
        // Once A is retired, its tokens name a key nobody has.
        let retired = PaymentTokenKeys::new(&B, None);
        let result = retired.open(ORDER, &sealed_before.key_id, &sealed_before.ciphertext);
        assert_eq!(result, Err(OpenError::UnknownKey(key_id(&A))));
        // A ciphertext relabelled with the other key's id does not open either.
        let relabelled = after.open(ORDER, &key_id(&B), &sealed_before.ciphertext);
        assert_eq!(relabelled, Err(OpenError::Rejected(key_id(&B))));
    }

    #[test]
    fn errors_and_debug_show_neither_tokens_nor_keys() {
        let keys = PaymentTokenKeys::new(&A, Some(&B));
        let shown = format!("{keys:?}");
        assert!(
            shown.contains(&key_id(&A)) && shown.contains(&key_id(&B)),
            "{shown}"
        );
        assert!(
            !shown.contains("7, 7") && !shown.contains(&BASE64.encode(A)),
            "{shown}"
        );
        let sealed = keys.seal(ORDER, TOKEN);
        let errors = [
            keys.open("other", &sealed.key_id, &sealed.ciphertext)
                .unwrap_err(),
            keys.open(ORDER, "00000000", &sealed.ciphertext)
                .unwrap_err(),
            keys.open(ORDER, &sealed.key_id, "%%").unwrap_err(),
        ];
        for error in errors {
            let text = format!("{error} {error:?}");
            assert!(!text.contains("tok_"), "{text}");
        }
    }

    #[test]
    fn keys_come_from_the_environment() {
        let a = BASE64.encode(A);
        let b = BASE64.encode(B);
        let env = |pairs: &[(&str, &str)]| PaymentTokenKeys::from_env(&Env::from_pairs(pairs));
        let keys = env(&[(KEY_VARIABLE, &b), (PREVIOUS_KEY_VARIABLE, &a)])
            .unwrap()
            .unwrap();
        assert_eq!(keys.current_key_id(), key_id(&B));
        let sealed = PaymentTokenKeys::new(&A, None).seal(ORDER, TOKEN);
        assert_eq!(
            keys.open(ORDER, &sealed.key_id, &sealed.ciphertext)
                .unwrap(),
            TOKEN
        );

        assert!(env(&[("CHORUS_DEV", "true")]).unwrap().is_none());
        let err = env(&[]).unwrap_err();
        assert_eq!(err.variable, KEY_VARIABLE);
        assert!(err.problem.contains("CHORUS_DEV=true"), "{err}");
        let err = env(&[(PREVIOUS_KEY_VARIABLE, &a), ("CHORUS_DEV", "true")]).unwrap_err();
        assert_eq!(err.variable, KEY_VARIABLE);
        let short = BASE64.encode([1u8; 16]);
        for (variable, value) in [
            (KEY_VARIABLE, "not base64 at all"),
            (KEY_VARIABLE, short.as_str()),
            (PREVIOUS_KEY_VARIABLE, short.as_str()),
        ] {
            let err = env(&[(variable, value), (KEY_VARIABLE, &a)]).unwrap_err();
            assert_eq!(err.variable, variable);
            assert!(!err.to_string().contains(value), "{err}");
        }
    }
}
