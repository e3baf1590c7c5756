//! What a customer reads about an order that did not go through: one of a
//! fixed set of reasons, each with a fixed text, and nothing else. The
//! reason is the `reason` of `OrderCancelled` (and of the `PaymentFailed` or
//! `StockReservationFailed` that caused it) as the order view, the webhook
//! and the e-mail show it; the text is the event's `detail` and the
//! e-mail's sentence. Producers pick a [`CancelReason`]; what went wrong
//! underneath (a provider's answer, a connection error, who asked for a
//! cancellation) goes to the logs, never into these fields.
//!
//! `detail` stays a free string in the Avro schemas, so events written
//! before the texts were fixed stay readable; consumers never pass an
//! incoming `detail` on: they derive the text from the reason
//! ([`CancelReason::parse`]).

/// Why an order was cancelled, as its customer is told.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CancelReason {
    OutOfStock,
    UnknownSku,
    PaymentDeclined,
    PaymentUnavailable,
    CustomerCancelled,
    Timeout,
}

/// What a customer reads when no reason of the set applies (a message
/// stored before the set was fixed).
pub const UNEXPLAINED_TEXT: &str = "The order could not be completed.";

impl CancelReason {
    pub const ALL: [CancelReason; 6] = [
        CancelReason::OutOfStock,
        CancelReason::UnknownSku,
        CancelReason::PaymentDeclined,
        CancelReason::PaymentUnavailable,
        CancelReason::CustomerCancelled,
        CancelReason::Timeout,
    ];
    /// The reasons of `StockReservationFailed`.
    pub const STOCK: [CancelReason; 2] = [CancelReason::OutOfStock, CancelReason::UnknownSku];
    /// The reasons of `PaymentFailed`.
    pub const PAYMENT: [CancelReason; 2] = [
        CancelReason::PaymentDeclined,
        CancelReason::PaymentUnavailable,
    ];

    /// The reason code, e.g. `payment_declined`.
    pub const fn code(self) -> &'static str {
        match self {
            CancelReason::OutOfStock => "out_of_stock",
            CancelReason::UnknownSku => "unknown_sku",
            CancelReason::PaymentDeclined => "payment_declined",
            CancelReason::PaymentUnavailable => "payment_unavailable",
            CancelReason::CustomerCancelled => "customer_cancelled",
            CancelReason::Timeout => "timeout",
        }
    }

    /// The sentence the customer reads.
    pub const fn text(self) -> &'static str {
        match self {
            CancelReason::OutOfStock => "An item of the order is out of stock.",
            CancelReason::UnknownSku => "An item of the order is not in the catalogue.",
            CancelReason::PaymentDeclined => "The payment was declined.",
            CancelReason::PaymentUnavailable => "The payment could not be completed.",
            CancelReason::CustomerCancelled => "The order was cancelled on request.",
            CancelReason::Timeout => "The order could not be completed in time.",
        }
    }

    /// The `detail` an event carries for this reason.
    pub fn detail(self) -> Option<String> {
        Some(self.text().to_string())
    }

    pub fn parse(code: &str) -> Option<CancelReason> {
        CancelReason::ALL.into_iter().find(|r| r.code() == code)
    }

    /// The text for a reason code as it came, [`UNEXPLAINED_TEXT`] for one
    /// outside the set.
    pub fn text_of(code: Option<&str>) -> &'static str {
        code.and_then(CancelReason::parse)
            .map_or(UNEXPLAINED_TEXT, CancelReason::text)
    }

    /// The codes of `reasons`, for a validation rule.
    pub fn codes<const N: usize>(reasons: [CancelReason; N]) -> [&'static str; N] {
        reasons.map(CancelReason::code)
    }
}

impl std::fmt::Display for CancelReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.code())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reason_parses_from_its_code_and_has_a_text_of_its_own() {
        let mut texts = std::collections::HashSet::new();
        for reason in CancelReason::ALL {
            assert_eq!(CancelReason::parse(reason.code()), Some(reason));
            assert!(texts.insert(reason.text()), "{reason} shares its text");
            assert_eq!(crate::validate::fields::detail(reason.text()), Ok(()));
            assert_eq!(crate::validate::fields::code(reason.code()), Ok(()));
        }
        assert_eq!(CancelReason::parse("card_declined"), None);
        assert_eq!(
            CancelReason::text_of(Some("db-7.internal")),
            UNEXPLAINED_TEXT
        );
        assert_eq!(CancelReason::text_of(None), UNEXPLAINED_TEXT);
    }
}
