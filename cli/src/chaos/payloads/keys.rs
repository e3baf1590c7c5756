//! The keys poison carries: a `chaos-…` order id and a `CHAOS-…` SKU that no
//! real order or catalogue has, in the key and everywhere in the payload.

use chorus_avro::{Event, EventType, event_from_json, event_to_json};
use serde_json::Value as JsonValue;

/// The keys of one poison message: an order id and a SKU no real order or
/// catalogue has.
pub struct Keys {
    order: String,
    sku: String,
}

impl Keys {
    pub fn new() -> Keys {
        let suffix = uuid::Uuid::new_v4().simple().to_string();
        Keys {
            sku: format!("CHAOS-{}", suffix[..12].to_uppercase()),
            order: format!("chaos-{suffix}"),
        }
    }

    /// The Kafka key of an event of `event_type`.
    pub fn of(&self, event_type: EventType) -> &str {
        if event_type == EventType::StockAdjusted {
            &self.sku
        } else {
            &self.order
        }
    }

    /// The example event of `event_type` for this order, every SKU in it
    /// (the examples name `SKU-1`, which may well be real) this chaos SKU.
    pub fn example(&self, event_type: EventType) -> anyhow::Result<Event> {
        let mut json = event_to_json(&event_type.example(&self.order));
        replace_skus(&mut json, &self.sku);
        if event_type == EventType::StockAdjusted {
            json["correlation_id"] = JsonValue::String(self.sku.clone());
        }
        Ok(event_from_json(event_type, &json.to_string())?)
    }
}

fn replace_skus(json: &mut JsonValue, sku: &str) {
    match json {
        JsonValue::Object(fields) => {
            for (name, value) in fields.iter_mut() {
                match (name.as_str(), value) {
                    ("sku", value) => *value = JsonValue::String(sku.to_string()),
                    ("skus", JsonValue::Array(skus)) => {
                        skus.iter_mut()
                            .for_each(|s| *s = JsonValue::String(sku.to_string()));
                    }
                    (_, value) => replace_skus(value, sku),
                }
            }
        }
        JsonValue::Array(items) => items.iter_mut().for_each(|i| replace_skus(i, sku)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn poison_events_name_only_chaos_keys() {
        let keys = Keys::new();
        for &event_type in EventType::ALL {
            let event = keys.example(event_type).unwrap();
            let text = event_to_json(&event).to_string();
            let real_sku = text.contains("\"sku\":\"SKU-") || text.contains("\"skus\":[\"SKU-");
            assert!(!real_sku, "{event_type}: {text}");
            assert_eq!(event.key(), keys.of(event_type), "{event_type}");
        }
    }
}
