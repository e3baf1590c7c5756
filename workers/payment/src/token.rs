//! Opening the payment token an order carries: sealed by the gateway for the
//! payment service alone (its key id beside it), or — only in development
//! runs (`CHORUS_DEV=true`) — plain.

use chorus_platform::payment_token::PaymentTokenKeys;

/// How this worker opens payment tokens.
#[derive(Debug, Default)]
pub struct TokenOpener {
    /// `CHORUS_PAYMENT_TOKEN_KEY` (and `…_PREVIOUS`); `None` only in development.
    pub keys: Option<PaymentTokenKeys>,
    /// `CHORUS_DEV=true`: an unsealed token is accepted.
    pub dev: bool,
}

impl TokenOpener {
    /// The token to hand the provider; an error (never showing the token)
    /// when it cannot be opened.
    pub fn open(
        &self,
        order_id: &str,
        token: &str,
        key_id: Option<&str>,
    ) -> Result<String, String> {
        match (key_id, &self.keys) {
            (Some(key_id), Some(keys)) => keys
                .open(order_id, key_id, token)
                .map_err(|e| e.to_string()),
            (Some(key_id), None) => Err(format!(
                "the payment token is sealed with key {key_id}, and no CHORUS_PAYMENT_TOKEN_KEY is set"
            )),
            (None, _) if self.dev => Ok(token.to_string()),
            (None, _) => {
                Err("an unsealed payment token is refused outside development".to_string())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_tokens_open_and_plain_ones_only_in_development() {
        let keys = PaymentTokenKeys::new(&[7; 32], None);
        let sealed = keys.seal("o-1", "tok_ok");
        let opener = TokenOpener {
            keys: Some(keys),
            dev: false,
        };
        assert_eq!(
            opener.open("o-1", &sealed.ciphertext, Some(&sealed.key_id)),
            Ok("tok_ok".to_string())
        );
        let refused = opener
            .open("o-2", &sealed.ciphertext, Some(&sealed.key_id))
            .unwrap_err();
        assert!(!refused.contains("tok_ok"), "{refused}");
        assert!(opener.open("o-1", "tok_ok", None).is_err());
        let dev = TokenOpener {
            keys: None,
            dev: true,
        };
        assert_eq!(dev.open("o-1", "tok_ok", None), Ok("tok_ok".to_string()));
        assert!(
            dev.open("o-1", &sealed.ciphertext, Some(&sealed.key_id))
                .is_err()
        );
    }
}
