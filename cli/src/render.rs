//! Kafka messages as JSON for a terminal: decoded when the registry knows
//! them, raw bytes as hex with the decode error otherwise. A payment token
//! is never printed, sealed or not: it shows as `"<encrypted>"`.

use chorus_avro::{Codec, Event, event_to_json};
use rdkafka::message::{Headers, Message};
use serde_json::{Map, Value, json};

/// What a payment token shows as.
pub const HIDDEN_TOKEN: &str = "<encrypted>";

/// The event's fields as JSON, the payment token hidden.
pub fn event_json(event: &Event) -> Value {
    let mut value = event_to_json(event);
    if let Some(token) = value.get_mut("payment_token") {
        *token = Value::String(HIDDEN_TOKEN.to_string());
    }
    value
}

/// The message's headers as a JSON object (values as UTF-8, lossily).
pub fn headers_json<M: Message>(message: &M) -> Value {
    let mut map = Map::new();
    if let Some(headers) = message.headers() {
        for header in headers.iter() {
            let value = header
                .value
                .map(String::from_utf8_lossy)
                .unwrap_or_default();
            map.insert(header.key.to_string(), Value::String(value.into_owned()));
        }
    }
    Value::Object(map)
}

/// One header's value as text.
pub fn header<M: Message>(message: &M, name: &str) -> Option<String> {
    message
        .headers()?
        .iter()
        .find(|h| h.key == name)
        .and_then(|h| h.value)
        .map(|v| String::from_utf8_lossy(v).into_owned())
}

pub fn key_text<M: Message>(message: &M) -> Option<String> {
    message
        .key()
        .map(|k| String::from_utf8_lossy(k).into_owned())
}

/// Where the message is, its key, timestamp and headers, then the event
/// (`type`, `event`) or why it does not decode (`undecodable`, `raw_hex`).
pub async fn message_json<M: Message>(codec: &Codec, message: &M) -> Value {
    let mut line = json!({
        "topic": message.topic(),
        "partition": message.partition(),
        "offset": message.offset(),
        "timestamp": message.timestamp().to_millis(),
        "key": key_text(message),
        "headers": headers_json(message),
    });
    match codec.decode(message.payload()).await {
        Ok(event) => {
            line["type"] = json!(event.event_type().name());
            line["event"] = event_json(&event);
        }
        Err(e) => {
            line["undecodable"] = json!({ "class": e.class(), "error": e.to_string() });
            line["raw_hex"] = json!(message.payload().map(hex).unwrap_or_default());
        }
    }
    line
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chorus_avro::EventType;

    #[test]
    fn payment_tokens_never_show() {
        for event_type in [EventType::OrderPlaced, EventType::StockReserved] {
            let event = event_type.example("o-1");
            let shown = event_json(&event);
            assert_eq!(shown["payment_token"], HIDDEN_TOKEN, "{event_type}");
            assert_eq!(shown["order_id"], "o-1");
        }
        let confirmed = event_json(&EventType::OrderConfirmed.example("o-1"));
        assert!(confirmed.get("payment_token").is_none());
    }

    #[test]
    fn hex_is_lower_case_pairs() {
        assert_eq!(hex(b"\x00\x0fgarbage"), "000f67617262616765");
    }
}
