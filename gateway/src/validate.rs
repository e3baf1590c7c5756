//! Domain newtypes that parse client input into valid values. A value of one
//! of these types is valid by construction; parsing fails with a message fit
//! for the client, and the caller names the field.
//!
//! Where a value goes into an event, the rule deciding it is the one every
//! worker applies to that event ([`chorus_avro::validate::fields`]), so
//! nothing accepted here is refused downstream.

use chorus_avro::validate::fields;
use rust_decimal::Decimal;

/// A stock keeping unit: `[A-Z0-9-]{1,32}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Sku(String);

impl Sku {
    pub fn parse(s: &str) -> Result<Sku, String> {
        if fields::sku(s).is_ok() {
            Ok(Sku(s.to_string()))
        } else {
            Err("must be 1 to 32 characters of A-Z, 0-9 and '-'".to_string())
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Units of one order line: 1 to 1000.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quantity(i32);

impl Quantity {
    pub const MAX: i64 = fields::MAX_QUANTITY as i64;

    pub fn parse(n: i64) -> Result<Quantity, String> {
        match i32::try_from(n) {
            Ok(units) if fields::quantity(units).is_ok() => Ok(Quantity(units)),
            _ => Err(format!("must be an integer from 1 to {}", Self::MAX)),
        }
    }

    pub fn get(self) -> i32 {
        self.0
    }
}

/// An ISO 4217-style currency code: three uppercase letters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Currency(String);

impl Currency {
    pub fn parse(s: &str) -> Result<Currency, String> {
        if fields::currency(s).is_ok() {
            Ok(Currency(s.to_string()))
        } else {
            Err("must be a 3-letter uppercase currency code such as EUR".to_string())
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The opaque token the payment provider charges; never logged.
#[derive(Clone, PartialEq, Eq)]
pub struct PaymentToken(String);

impl PaymentToken {
    /// 1 to 256 characters (as JSON Schema's `maxLength` counts them).
    pub fn parse(s: &str) -> Result<PaymentToken, String> {
        if (1..=256).contains(&s.chars().count()) && !s.chars().any(char::is_control) {
            Ok(PaymentToken(s.to_string()))
        } else {
            Err("must be 1 to 256 characters without control characters".to_string())
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for PaymentToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PaymentToken(<redacted>)")
    }
}

/// The client's key for one order attempt: 1 to 255 visible ASCII characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    pub fn parse(s: &str) -> Result<IdempotencyKey, String> {
        if (1..=255).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_graphic()) {
            Ok(IdempotencyKey(s.to_string()))
        } else {
            Err("must be 1 to 255 visible ASCII characters".to_string())
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A non-negative price with at most 4 decimal places, given as a decimal string.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnitPrice(Decimal);

impl UnitPrice {
    pub fn parse(s: &str) -> Result<UnitPrice, String> {
        let problem = || {
            "must be a decimal string such as \"19.99\": at least 0, at most 4 decimal places, below 1000000000".to_string()
        };
        let plain = !s.is_empty()
            && s.bytes().all(|b| b.is_ascii_digit() || b == b'.')
            && s.bytes().filter(|&b| b == b'.').count() <= 1
            && !s.starts_with('.')
            && !s.ends_with('.');
        if !plain {
            return Err(problem());
        }
        // Leading zeros carry nothing, and past 28 digits a Decimal refuses them.
        let significant = s.trim_start_matches('0');
        let s = if significant.is_empty() || significant.starts_with('.') {
            &s[s.len() - significant.len() - 1..]
        } else {
            significant
        };
        let price: Decimal = s.parse().map_err(|_| problem())?;
        fields::unit_price(price).map_err(|_| problem())?;
        Ok(UnitPrice(price))
    }

    pub fn get(self) -> Decimal {
        self.0
    }
}

/// Units on hand as set by an admin: 0 to 1 000 000 000.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Available(i32);

impl Available {
    pub fn parse(n: i64) -> Result<Available, String> {
        match i32::try_from(n) {
            Ok(units) if fields::available(units).is_ok() => Ok(Available(units)),
            _ => Err("must be an integer from 0 to 1000000000".to_string()),
        }
    }

    pub fn get(self) -> i32 {
        self.0
    }
}

/// A product's display name: 1 to 200 characters, no control characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProductName(String);

impl ProductName {
    /// Trimmed; the limit counts the characters sent, as the document's
    /// `maxLength` does.
    pub fn parse(s: &str) -> Result<ProductName, String> {
        let trimmed = s.trim();
        if s.chars().count() <= fields::MAX_NAME_CHARS && fields::product_name(trimmed).is_ok() {
            Ok(ProductName(trimmed.to_string()))
        } else {
            Err("must be 1 to 200 characters, not blank, without control characters".to_string())
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An order status as the read model spells it (`PENDING`, `CONFIRMED`, …).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusName(String);

impl StatusName {
    pub fn parse(s: &str) -> Result<StatusName, String> {
        if (1..=32).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphabetic() || b == b'_') {
            Ok(StatusName(s.to_ascii_uppercase()))
        } else {
            Err("must be an order status such as PENDING".to_string())
        }
    }

    pub fn matches(&self, status: &str) -> bool {
        self.0.eq_ignore_ascii_case(status)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skus() {
        for ok in ["SKU-1", "A", "0", "-", &"A".repeat(32)] {
            assert!(Sku::parse(ok).is_ok(), "{ok}");
        }
        for bad in ["", "sku-1", "SKU_1", "SKU 1", "SKÜ", &"A".repeat(33)] {
            assert!(Sku::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn quantities() {
        assert!(Quantity::parse(1).is_ok());
        assert!(Quantity::parse(1000).is_ok());
        for bad in [0, -1, 1001, i64::MAX] {
            assert!(Quantity::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn currencies() {
        assert!(Currency::parse("EUR").is_ok());
        for bad in ["eur", "EU", "EURO", "E1R", "", "ÉUR"] {
            assert!(Currency::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn idempotency_keys_and_tokens() {
        assert!(IdempotencyKey::parse("order-7f3a").is_ok());
        assert!(IdempotencyKey::parse("").is_err());
        assert!(IdempotencyKey::parse("has space").is_err());
        assert!(IdempotencyKey::parse(&"k".repeat(256)).is_err());
        assert!(PaymentToken::parse("tok_ok").is_ok());
        assert!(PaymentToken::parse("").is_err());
        assert!(PaymentToken::parse(&"é".repeat(256)).is_ok());
        assert!(PaymentToken::parse(&"é".repeat(257)).is_err());
        assert!(PaymentToken::parse("tok\u{85}").is_err());
        assert!(!format!("{:?}", PaymentToken::parse("tok_secret").unwrap()).contains("secret"));
    }

    #[test]
    fn prices_names_and_stock() {
        assert_eq!(
            UnitPrice::parse("19.99").unwrap().get().to_string(),
            "19.99"
        );
        assert!(UnitPrice::parse("0").is_ok());
        for (padded, price) in [
            ("0000", "0"),
            ("000.5", "0.5"),
            (&format!("{}19.99", "0".repeat(40)), "19.99"),
        ] {
            assert_eq!(
                UnitPrice::parse(padded).unwrap().get().to_string(),
                price,
                "{padded}"
            );
        }
        assert!(UnitPrice::parse(&format!("{}1000000000", "0".repeat(40))).is_err());
        for bad in [
            "",
            "-1",
            "1.",
            ".5",
            "1.23456",
            "1e3",
            "abc",
            "1000000000",
            " 1",
        ] {
            assert!(UnitPrice::parse(bad).is_err(), "{bad}");
        }
        assert!(Available::parse(0).is_ok());
        assert!(Available::parse(-1).is_err());
        assert!(ProductName::parse("Blue mug").is_ok());
        assert!(ProductName::parse("  ").is_err());
        assert!(ProductName::parse(&format!(" {} ", "n".repeat(199))).is_err());
        assert!(StatusName::parse("pending").unwrap().matches("PENDING"));
        assert!(StatusName::parse("PEND ING").is_err());
    }
}
