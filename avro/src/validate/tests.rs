//! Each field rule with values it accepts and refuses; each event type's
//! validation on its valid example and on every refused example, naming
//! the field.

use std::collections::BTreeSet;

use super::fields::*;
use super::*;

fn price(text: &str) -> Decimal {
    text.parse().unwrap()
}

#[test]
fn identifiers_are_short_visible_text() {
    for ok in ["o-1", "alice", "bob@shop.test", "no body", &"i".repeat(128)] {
        assert_eq!(identifier(ok), Ok(()), "{ok:?}");
    }
    for bad in ["", "  ", "c\0", "mallory\u{7}", "a\nb", &"i".repeat(129)] {
        assert!(identifier(bad).is_err(), "{bad:?}");
    }
    assert_eq!(authorization_id(&"a".repeat(256)), Ok(()));
    for bad in ["", "a\0", &"a".repeat(257)] {
        assert!(authorization_id(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn skus_and_currencies_have_the_catalogues_form() {
    for ok in ["SKU-1", "A", "0", "-", &"A".repeat(32)] {
        assert_eq!(sku(ok), Ok(()), "{ok:?}");
    }
    for bad in ["", "sku-1", "SKU_1", "SKU 1", "SKÜ", &"A".repeat(33)] {
        assert!(sku(bad).is_err(), "{bad:?}");
    }
    assert_eq!(currency("EUR"), Ok(()));
    for bad in ["eur", "EU", "EURO", "E1R", "", "ÉUR"] {
        assert!(currency(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn quantities_and_line_lists_are_bounded_as_the_gateway_bounds_them() {
    assert_eq!(quantity(1), Ok(()));
    assert_eq!(quantity(MAX_QUANTITY), Ok(()));
    for bad in [0, -1, MAX_QUANTITY + 1, i32::MIN, i32::MAX] {
        assert!(quantity(bad).is_err(), "{bad}");
    }
    // Merged lines of one SKU may hold every line's most, never more.
    assert_eq!(reserved_units(MAX_ORDER_UNITS), Ok(()));
    assert!(reserved_units(MAX_ORDER_UNITS + 1).is_err());
    assert!(reserved_units(0).is_err());
    assert_eq!(line_count(1), Ok(()));
    assert_eq!(line_count(MAX_LINES), Ok(()));
    assert!(line_count(0).is_err());
    assert!(line_count(MAX_LINES + 1).is_err());
    assert_eq!(available(0), Ok(()));
    assert!(available(-1).is_err());
    assert!(available(MAX_AVAILABLE + 1).is_err());
}

#[test]
fn money_is_a_non_negative_decimal_of_at_most_four_places() {
    for ok in ["0", "19.99", "0.0001", "123456789012.5"] {
        assert_eq!(amount(price(ok)), Ok(()), "{ok}");
    }
    for bad in ["-0.01", "0.00001"] {
        assert!(amount(price(bad)).is_err(), "{bad}");
    }
    assert_eq!(unit_price(price("999999999.9999")), Ok(()));
    for bad in ["1000000000", "-1", "1.23456"] {
        assert!(unit_price(price(bad)).is_err(), "{bad}");
    }
}

#[test]
fn texts_codes_and_tokens() {
    assert_eq!(product_name("Blue mug"), Ok(()));
    for bad in ["", " ", "mug\0", &"n".repeat(201)] {
        assert!(product_name(bad).is_err(), "{bad:?}");
    }
    for ok in ["out_of_stock", "timeout", "payment_declined"] {
        assert_eq!(code(ok), Ok(()), "{ok}");
    }
    for bad in ["", "Out", "out of stock", "a-b", &"c".repeat(65)] {
        assert!(code(bad).is_err(), "{bad:?}");
    }
    assert_eq!(detail(""), Ok(()));
    assert_eq!(detail("SKU-1, SKU-2 (card declined)"), Ok(()));
    assert!(detail("a\0").is_err());
    assert!(detail(&"d".repeat(MAX_DETAIL_CHARS + 1)).is_err());
    assert_eq!(payment_token(&"t".repeat(MAX_TOKEN_BYTES)), Ok(()));
    for bad in ["", "t\0", &"t".repeat(MAX_TOKEN_BYTES + 1)] {
        assert!(payment_token(bad).is_err(), "{} bytes", bad.len());
    }
    assert_eq!(one_of("log", &["log", "smtp"]), Ok(()));
    assert!(one_of("fax", &["log", "smtp"]).is_err());
}

#[test]
fn a_refused_token_is_never_shown() {
    let problem = payment_token("secret\0token").unwrap_err();
    assert!(!problem.contains("secret"), "{problem}");
}

#[test]
fn any_text_can_be_fitted_into_a_detail() {
    let fitted = fit_detail(&format!("line one\nline\0two{}", "x".repeat(10_000)));
    assert_eq!(detail(&fitted), Ok(()));
    assert!(fitted.starts_with("line one line two"), "{fitted}");
    assert_eq!(fit_detail("card declined"), "card declined");
}

#[test]
fn the_example_of_every_event_type_is_accepted() {
    for &event_type in EventType::ALL {
        let example = event_type.example("order-1");
        assert_eq!(event(&example), Ok(()), "{event_type}");
    }
}

#[test]
fn every_refused_example_is_refused_naming_its_field() {
    for refused in refused_examples() {
        let invalid = event(&refused.event).expect_err(refused.field);
        assert_eq!(invalid.field, refused.field, "{invalid}");
        assert_eq!(invalid.event_type, refused.event.event_type());
        let message = invalid.to_string();
        assert!(message.contains(refused.field), "{message}");
        assert!(
            !message.contains('\0') && !message.contains('\n'),
            "{message:?}"
        );
    }
}

#[test]
fn every_event_type_has_refused_examples() {
    let covered: BTreeSet<EventType> = refused_examples()
        .iter()
        .map(|r| r.event.event_type())
        .collect();
    let all: BTreeSet<EventType> = EventType::ALL.iter().copied().collect();
    assert_eq!(covered, all);
}

#[test]
fn a_reservation_whose_total_is_not_its_lines_is_refused_at_the_total() {
    let Event::StockReserved(mut reserved) = EventType::StockReserved.example("o-1") else {
        unreachable!()
    };
    reserved.total += Decimal::ONE;
    assert_eq!(stock_reserved(&reserved).unwrap_err().field, "total");
    reserved.lines[0].unit_price = Decimal::MAX;
    reserved.lines[0].quantity = 2;
    assert_eq!(
        stock_reserved(&reserved).unwrap_err().field,
        "lines[0].unit_price"
    );
}

#[test]
fn a_reservation_of_merged_lines_at_their_most_is_accepted() {
    let Event::StockReserved(mut reserved) = EventType::StockReserved.example("o-1") else {
        unreachable!()
    };
    reserved.lines[0].quantity = MAX_ORDER_UNITS;
    reserved.lines[0].unit_price = price("999999999.9999");
    reserved.total = Decimal::from(MAX_ORDER_UNITS) * reserved.lines[0].unit_price;
    assert_eq!(stock_reserved(&reserved), Ok(()));
}
