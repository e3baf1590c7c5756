//! One rule per kind of field, each the gateway's own where the gateway
//! accepts the value from a client, so nothing it accepts is refused
//! downstream. Each answers what is wrong with the value, naming the rule
//! and showing (the start of) the value; the caller names the field.

use rust_decimal::Decimal;

/// Identifiers (order, customer, event, correlation, causation, token key):
/// a token's subject is at most this long, a UUID far shorter.
pub const MAX_ID_BYTES: usize = 128;
/// A payment provider's authorization id.
pub const MAX_AUTHORIZATION_ID_BYTES: usize = 256;
/// Lines of an order, as the gateway accepts them.
pub const MAX_LINES: usize = 50;
/// Units of one ordered line, as the gateway accepts them.
pub const MAX_QUANTITY: i32 = 1000;
/// Units of one SKU in a reservation: the inventory merges an order's lines
/// of the same SKU, so at most every line's most.
pub const MAX_ORDER_UNITS: i32 = MAX_LINES as i32 * MAX_QUANTITY;
/// Units on hand an admin may set.
pub const MAX_AVAILABLE: i32 = 1_000_000_000;
/// Decimal places of any amount of money (prices have at most 4, and a
/// quantity times a price adds none).
pub const MAX_MONEY_SCALE: u32 = 4;
/// A unit price is below this many currency units.
pub const UNIT_PRICE_CEILING: i64 = 1_000_000_000;
/// A product's name, in characters.
pub const MAX_NAME_CHARS: usize = 200;
/// A payment token as it travels: sealed, it is longer than the 256
/// characters the client may send.
pub const MAX_TOKEN_BYTES: usize = 4096;
/// A reason code such as `payment_declined`.
pub const MAX_CODE_BYTES: usize = 64;
/// A free-text detail (a provider's answer, the SKUs that failed), in characters.
pub const MAX_DETAIL_CHARS: usize = 4096;

/// The rule's answer: `Err` says what is wrong, without the field's name.
pub type Rule = Result<(), String>;

/// The start of `value`, escaped, for a message that must stay one line.
pub(crate) fn shown(value: &str) -> String {
    let start: String = value.chars().take(40).collect();
    let more = if start.len() < value.len() { "…" } else { "" };
    format!("\"{}{more}\"", start.escape_debug())
}

fn refuse(rule: &str, value: &str) -> Rule {
    Err(format!("must be {rule}, got {}", shown(value)))
}

/// Order, customer, event, correlation and causation ids, token key ids:
/// 1 to 128 bytes, not blank, no control characters (PostgreSQL cannot
/// store a NUL; a log line or a mail header must not break on one).
pub fn identifier(value: &str) -> Rule {
    let valid = !value.trim().is_empty()
        && value.len() <= MAX_ID_BYTES
        && !value.chars().any(char::is_control);
    if valid {
        Ok(())
    } else {
        refuse(
            "1 to 128 bytes, not blank, without control characters",
            value,
        )
    }
}

/// A provider's authorization id: 1 to 256 bytes, not blank, no control characters.
pub fn authorization_id(value: &str) -> Rule {
    let valid = !value.trim().is_empty()
        && value.len() <= MAX_AUTHORIZATION_ID_BYTES
        && !value.chars().any(char::is_control);
    if valid {
        Ok(())
    } else {
        refuse(
            "1 to 256 bytes, not blank, without control characters",
            value,
        )
    }
}

/// A catalogue SKU: `[A-Z0-9-]{1,32}`.
pub fn sku(value: &str) -> Rule {
    let valid = (1..=32).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'-');
    if valid {
        Ok(())
    } else {
        refuse("a SKU of 1 to 32 characters of A-Z, 0-9 and '-'", value)
    }
}

/// An ISO 4217-style currency code: three uppercase letters.
pub fn currency(value: &str) -> Rule {
    if value.len() == 3 && value.bytes().all(|b| b.is_ascii_uppercase()) {
        Ok(())
    } else {
        refuse("a 3-letter uppercase currency code such as EUR", value)
    }
}

/// How many lines a list of lines holds: 1 to 50.
pub fn line_count(count: usize) -> Rule {
    if (1..=MAX_LINES).contains(&count) {
        Ok(())
    } else {
        Err(format!("must hold 1 to {MAX_LINES} lines, holds {count}"))
    }
}

/// Units of one ordered line: 1 to 1000.
pub fn quantity(units: i32) -> Rule {
    if (1..=MAX_QUANTITY).contains(&units) {
        Ok(())
    } else {
        Err(format!("must be from 1 to {MAX_QUANTITY}, got {units}"))
    }
}

/// Units of one SKU of a reservation: 1 to [`MAX_ORDER_UNITS`].
pub fn reserved_units(units: i32) -> Rule {
    if (1..=MAX_ORDER_UNITS).contains(&units) {
        Ok(())
    } else {
        Err(format!("must be from 1 to {MAX_ORDER_UNITS}, got {units}"))
    }
}

/// Units on hand: 0 to 1 000 000 000.
pub fn available(units: i32) -> Rule {
    if (0..=MAX_AVAILABLE).contains(&units) {
        Ok(())
    } else {
        Err(format!("must be from 0 to {MAX_AVAILABLE}, got {units}"))
    }
}

/// An amount of money (a total, a charge): at least 0, at most 4 decimal places.
pub fn amount(value: Decimal) -> Rule {
    if value >= Decimal::ZERO && value.scale() <= MAX_MONEY_SCALE {
        Ok(())
    } else {
        Err(format!(
            "must be at least 0 with at most {MAX_MONEY_SCALE} decimal places, got {value}"
        ))
    }
}

/// A unit price: an amount below 1 000 000 000.
pub fn unit_price(value: Decimal) -> Rule {
    amount(value)?;
    if value < Decimal::from(UNIT_PRICE_CEILING) {
        Ok(())
    } else {
        Err(format!("must be below {UNIT_PRICE_CEILING}, got {value}"))
    }
}

/// A product's name: 1 to 200 characters, not blank, no control characters.
pub fn product_name(value: &str) -> Rule {
    let valid = !value.trim().is_empty()
        && value.chars().count() <= MAX_NAME_CHARS
        && !value.chars().any(char::is_control);
    if valid {
        Ok(())
    } else {
        refuse(
            "1 to 200 characters, not blank, without control characters",
            value,
        )
    }
}

/// A payment token as it travels (sealed or not): 1 to 4096 bytes, no
/// control characters. Never shown: it is a secret.
pub fn payment_token(value: &str) -> Rule {
    let valid =
        (1..=MAX_TOKEN_BYTES).contains(&value.len()) && !value.chars().any(char::is_control);
    if valid {
        Ok(())
    } else {
        Err(format!(
            "must be 1 to {MAX_TOKEN_BYTES} bytes without control characters ({} bytes given)",
            value.len()
        ))
    }
}

/// A reason code such as `out_of_stock`: 1 to 64 of `a-z`, `0-9`, `_`.
pub fn code(value: &str) -> Rule {
    let valid = (1..=MAX_CODE_BYTES).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if valid {
        Ok(())
    } else {
        refuse("a code of 1 to 64 characters of a-z, 0-9 and '_'", value)
    }
}

/// Free text (a provider's answer, the SKUs that failed): at most 4096
/// characters, no control characters. [`fit_detail`] makes any text one.
pub fn detail(value: &str) -> Rule {
    let valid = value.chars().count() <= MAX_DETAIL_CHARS && !value.chars().any(char::is_control);
    if valid {
        Ok(())
    } else {
        refuse("at most 4096 characters without control characters", value)
    }
}

/// `text` made a valid [`detail`]: control characters become spaces and
/// the text is cut to [`MAX_DETAIL_CHARS`], for a producer that passes on
/// what others said (a provider's answer).
pub fn fit_detail(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(MAX_DETAIL_CHARS)
        .collect()
}

/// One of a fixed set of names, e.g. a final status or a channel.
pub fn one_of(value: &str, names: &[&str]) -> Rule {
    if names.contains(&value) {
        Ok(())
    } else {
        Err(format!("must be one of {names:?}, got {}", shown(value)))
    }
}
