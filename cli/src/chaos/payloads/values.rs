//! Value poison: which field of which event type gets which value no
//! business rule accepts, per topic, and setting it in an Avro record.

use apache_avro::types::Value;
use chorus_avro::{EventType, Topic};

use super::{PoisonKind, own_type};

/// Money beyond what a decimal of 96 bits holds (its maximum plus one).
pub const MONEY_OVERFLOW: &str = "79228162514264337593543950336.00";
/// The length of the oversized strings.
pub const HUGE: usize = 10_000;

pub fn huge(c: char) -> String {
    std::iter::repeat_n(c, HUGE).collect()
}

/// What a value poison changes: in which event type, at which path into
/// the record, to what value, and how to say it.
pub type Change = (EventType, &'static [&'static str], Value, String);

/// Which event type, which field and what value make `kind` on `topic`.
pub fn value_change(kind: PoisonKind, topic: Topic) -> Change {
    let own = own_type(topic);
    match kind {
        PoisonKind::MoneyOverflow if topic == Topic::Orders => (
            EventType::OrderConfirmed,
            &["total"],
            Value::String(MONEY_OVERFLOW.into()),
            format!("total {MONEY_OVERFLOW}"),
        ),
        PoisonKind::MoneyOverflow => {
            let field: &'static [&'static str] = match own {
                EventType::StockReserved => &["total"],
                EventType::StockAdjusted => &["unit_price"],
                _ => &["amount"],
            };
            let detail = format!("{} {MONEY_OVERFLOW}", field[0]);
            (own, field, Value::String(MONEY_OVERFLOW.into()), detail)
        }
        PoisonKind::HugeSku => huge_value(own),
        PoisonKind::NulBytes => {
            let field: &'static [&'static str] = match own {
                EventType::OrderPlaced | EventType::StockReserved => &["customer_id"],
                EventType::StockAdjusted => &["name"],
                _ => &["authorization_id"],
            };
            let detail = format!("NUL bytes in {}", field[0]);
            (
                own,
                field,
                Value::String("chaos\0nul\0bytes".into()),
                detail,
            )
        }
        _ => negative_value(own),
    }
}

/// A 10,000-character SKU (an authorization id where the event has no SKU).
fn huge_value(own: EventType) -> Change {
    let sku = |path: &'static [&'static str]| {
        (
            own,
            path,
            Value::String(huge('S')),
            "a 10,000-character SKU".to_string(),
        )
    };
    match own {
        EventType::OrderPlaced => sku(&["items", "0", "sku"]),
        EventType::StockReserved => sku(&["lines", "0", "sku"]),
        EventType::StockAdjusted => sku(&["sku"]),
        _ => (
            own,
            &["authorization_id"],
            Value::String(huge('A')),
            "a 10,000-character authorization id (no SKU on this topic)".into(),
        ),
    }
}

/// A negative quantity (available units, or an amount, where there is none).
fn negative_value(own: EventType) -> Change {
    match own {
        EventType::OrderPlaced => (
            own,
            &["items", "0", "quantity"],
            Value::Int(-5),
            "quantity -5".into(),
        ),
        EventType::StockReserved => (
            own,
            &["lines", "0", "quantity"],
            Value::Int(-5),
            "quantity -5".into(),
        ),
        EventType::StockAdjusted => (own, &["available"], Value::Int(-5), "available -5".into()),
        _ => (
            own,
            &["amount"],
            Value::String("-10.00".into()),
            "amount -10.00".into(),
        ),
    }
}

/// Sets the value at `path` (record fields and array indexes) in `value`.
pub fn set(value: &mut Value, path: &[&str], new: Value) -> anyhow::Result<()> {
    let Some((first, rest)) = path.split_first() else {
        *value = new;
        return Ok(());
    };
    let inner = match value {
        Value::Record(fields) => fields
            .iter_mut()
            .find(|(name, _)| name == first)
            .map(|(_, v)| v),
        Value::Array(items) => first.parse::<usize>().ok().and_then(|i| items.get_mut(i)),
        Value::Union(_, boxed) => return set(boxed, path, new),
        _ => None,
    };
    let inner = inner.ok_or_else(|| anyhow::anyhow!("no `{first}` in the example event"))?;
    set(inner, rest, new)
}

#[cfg(test)]
mod tests {
    use super::*;
    use apache_avro::Schema;

    #[test]
    fn every_value_change_fits_its_schema() {
        for topic in [
            Topic::Orders,
            Topic::Inventory,
            Topic::InventoryCommands,
            Topic::Payments,
        ] {
            for kind in [
                PoisonKind::MoneyOverflow,
                PoisonKind::HugeSku,
                PoisonKind::NulBytes,
                PoisonKind::NegativeQuantity,
            ] {
                let (event_type, path, value, _) = value_change(kind, topic);
                let schema = Schema::parse_str(event_type.schema_text()).unwrap();
                let event = event_type.example("chaos-1");
                let mut record = apache_avro::to_value(&event)
                    .unwrap()
                    .resolve(&schema)
                    .unwrap();
                set(&mut record, path, value).unwrap();
                #[allow(deprecated)]
                let body = apache_avro::to_avro_datum(&schema, record).unwrap();
                #[allow(deprecated)]
                let back = apache_avro::from_avro_datum(&schema, &mut &body[..], None).unwrap();
                assert!(
                    format!("{back:?}").len() > 10,
                    "{topic:?} {kind:?} round-trips through Avro"
                );
            }
        }
    }
}
