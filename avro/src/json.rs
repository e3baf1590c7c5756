//! Events from and to JSON, for developers at a terminal (`chorus produce`,
//! `chorus tail`). A JSON error names the field path that is wrong.
//!
//! Envelope fields may be left out of the JSON: `occurred_at` becomes now,
//! `correlation_id` the key, `causation_id` null, and `event_id` a UUIDv5 of
//! the event type and the JSON as given, so producing the same JSON twice
//! yields the same event id and consumers treat the second as a duplicate.

use serde_json::{Map, Value};
use uuid::Uuid;

use crate::events::{Event, EventType};

/// A JSON document that is not a valid event of the requested type.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct JsonError {
    /// Path of the offending field, e.g. `items[0].quantity`; `.` for the whole document.
    pub field: String,
    pub message: String,
}

const CLI_NAMESPACE: Uuid = Uuid::from_u128(0x6f1c_2a9e_54d3_4b0f_9a77_0c1d_e2f3_a4b5);

pub fn event_from_json(event_type: EventType, text: &str) -> Result<Event, JsonError> {
    let value: Value = serde_json::from_str(text).map_err(|e| JsonError {
        field: ".".to_string(),
        message: format!("invalid JSON: {e}"),
    })?;
    let Value::Object(mut object) = value else {
        return Err(JsonError {
            field: ".".to_string(),
            message: "expected a JSON object".to_string(),
        });
    };
    fill_envelope(event_type, &mut object, text);
    Event::from_json_value(event_type, Value::Object(object)).map_err(|e| {
        let path = e.path().to_string();
        let message = e.inner().to_string();
        let field = match missing_field(&message) {
            Some(name) if path == "." => name.to_string(),
            Some(name) => format!("{path}.{name}"),
            None => path,
        };
        JsonError { field, message }
    })
}

pub fn event_to_json(event: &Event) -> Value {
    event.to_json_value()
}

fn fill_envelope(event_type: EventType, object: &mut Map<String, Value>, text: &str) {
    let key_field = if event_type == EventType::StockAdjusted {
        "sku"
    } else {
        "order_id"
    };
    if !object.contains_key("event_id") {
        let seed = format!("{}\n{}", event_type.name(), text.trim());
        let id = Uuid::new_v5(&CLI_NAMESPACE, seed.as_bytes());
        object.insert("event_id".into(), Value::String(id.to_string()));
    }
    if !object.contains_key("occurred_at") {
        let now = chrono::Utc::now().timestamp_millis();
        object.insert("occurred_at".into(), Value::from(now));
    }
    if !object.contains_key("correlation_id")
        && let Some(key) = object.get(key_field).cloned()
    {
        object.insert("correlation_id".into(), key);
    }
    object.entry("causation_id").or_insert(Value::Null);
}

fn missing_field(message: &str) -> Option<&str> {
    message.strip_prefix("missing field `")?.split('`').next()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wrong_type_names_the_nested_field() {
        let text = r#"{"order_id":"o1","customer_id":"c","currency":"EUR","payment_token":"tok_ok",
                       "items":[{"sku":"A","quantity":"two"}]}"#;
        let err = event_from_json(EventType::OrderPlaced, text).unwrap_err();
        assert_eq!(err.field, "items[0].quantity");
    }

    #[test]
    fn a_missing_field_is_named() {
        let err = event_from_json(EventType::OrderPlaced, r#"{"order_id":"o1"}"#).unwrap_err();
        assert_eq!(err.field, "customer_id");
        let text = r#"{"order_id":"o1","customer_id":"c","currency":"EUR","payment_token":"t","items":[{"sku":"A"}]}"#;
        assert_eq!(
            event_from_json(EventType::OrderPlaced, text)
                .unwrap_err()
                .field,
            "items[0].quantity"
        );
    }

    #[test]
    fn invalid_json_is_an_error_not_a_panic() {
        let err = event_from_json(EventType::OrderPlaced, "{nope").unwrap_err();
        assert!(err.message.starts_with("invalid JSON"), "{err}");
    }

    #[test]
    fn the_same_json_gives_the_same_event_id() {
        let text = r#"{"sku":"SKU-1","name":"Mug","available":5,"unit_price":"4.50"}"#;
        let a = event_from_json(EventType::StockAdjusted, text).unwrap();
        let b = event_from_json(EventType::StockAdjusted, text).unwrap();
        assert_eq!(a.event_id(), b.event_id());
        assert_eq!(a.key(), "SKU-1");
        let Event::StockAdjusted(adjusted) = a else {
            panic!("wrong type")
        };
        assert_eq!(adjusted.unit_price.to_string(), "4.50");
        assert_eq!(adjusted.correlation_id, "SKU-1");
    }
}
