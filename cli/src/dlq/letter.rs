//! A dead letter as the runtime writes it: the original key, value and
//! headers, plus headers saying why and from where. Which headers the
//! dead-lettering added is decided here, so a redrive strips exactly those.

use chorus_avro::headers;
use rdkafka::message::{Header, Headers, Message, OwnedHeaders};
use serde::Serialize;
use serde_json::{Value, json};

use crate::args::Position;
use crate::render::{header, key_text};

/// Headers a dead-lettering (or an earlier redrive) added; a redrive drops
/// them so the republished message carries the event's own headers only.
pub const ADDED_BY_DEAD_LETTERING: [&str; 8] = [
    headers::ERROR_CLASS,
    headers::ERROR_MESSAGE,
    headers::ATTEMPTS,
    headers::CONSUMER_GROUP,
    headers::ORIGINAL_TOPIC,
    headers::ORIGINAL_PARTITION,
    headers::ORIGINAL_OFFSET,
    headers::REDRIVEN_FROM,
];

/// What a dead letter says about itself (fields are absent on dead letters
/// written by older runtimes, which lacked some headers).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeadLetter {
    pub partition: i32,
    pub offset: i64,
    pub timestamp: Option<i64>,
    pub key: Option<String>,
    pub error_class: Option<String>,
    pub error_message: Option<String>,
    pub attempts: Option<String>,
    pub consumer_group: Option<String>,
    pub original_topic: Option<String>,
    pub original_partition: Option<i32>,
    pub original_offset: Option<i64>,
}

impl DeadLetter {
    pub fn of<M: Message>(message: &M) -> DeadLetter {
        let number = |name| header(message, name).and_then(|v| v.trim().parse().ok());
        DeadLetter {
            partition: message.partition(),
            offset: message.offset(),
            timestamp: message.timestamp().to_millis(),
            key: key_text(message),
            error_class: header(message, headers::ERROR_CLASS),
            error_message: header(message, headers::ERROR_MESSAGE),
            attempts: header(message, headers::ATTEMPTS),
            consumer_group: header(message, headers::CONSUMER_GROUP),
            original_topic: header(message, headers::ORIGINAL_TOPIC),
            original_partition: number(headers::ORIGINAL_PARTITION).map(|p: i64| p as i32),
            original_offset: number(headers::ORIGINAL_OFFSET),
        }
    }

    pub fn position(&self) -> Position {
        Position {
            partition: self.partition,
            offset: self.offset,
        }
    }

    /// `topic/partition:offset` of the original, as far as the headers tell.
    pub fn origin(&self) -> String {
        let or_dash = |v: Option<String>| v.unwrap_or_else(|| "-".to_string());
        format!(
            "{}/{}:{}",
            or_dash(self.original_topic.clone()),
            or_dash(self.original_partition.map(|p| p.to_string())),
            or_dash(self.original_offset.map(|o| o.to_string())),
        )
    }

    /// The topic a redrive sends it to: the header's, else the dead-letter
    /// topic's name without `.dlq`.
    pub fn redrive_target(&self, dead_letter_topic: &str) -> Option<String> {
        self.original_topic
            .clone()
            .filter(|t| !t.trim().is_empty())
            .or_else(|| dead_letter_topic.strip_suffix(".dlq").map(str::to_string))
    }

    /// One line of `dlq list`.
    pub fn line(&self) -> String {
        let message: String = self
            .error_message
            .as_deref()
            .unwrap_or("-")
            .chars()
            .take(120)
            .collect();
        format!(
            "{:<10} {:<20} {:<60} from {}  key {}",
            self.position().to_string(),
            self.error_class.as_deref().unwrap_or("-"),
            message,
            self.origin(),
            self.key.as_deref().unwrap_or("-"),
        )
    }

    pub fn to_json(&self) -> Value {
        json!(self)
    }
}

/// The headers to republish with: the message's own, minus those the
/// dead-lettering added, plus `chorus-redriven-from: <dlq>/<p>:<o>`.
pub fn redrive_headers<M: Message>(message: &M, redriven_from: &str) -> OwnedHeaders {
    let mut kept = OwnedHeaders::new();
    if let Some(original) = message.headers() {
        for h in original.iter() {
            if !ADDED_BY_DEAD_LETTERING.contains(&h.key) {
                kept = kept.insert(Header {
                    key: h.key,
                    value: h.value,
                });
            }
        }
    }
    kept.insert(Header {
        key: headers::REDRIVEN_FROM,
        value: Some(redriven_from),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rdkafka::Timestamp;
    use rdkafka::message::OwnedMessage;

    fn dead_letter(headers: &[(&str, &str)]) -> OwnedMessage {
        let mut owned = OwnedHeaders::new();
        for (key, value) in headers {
            owned = owned.insert(Header {
                key,
                value: Some(*value),
            });
        }
        OwnedMessage::new(
            Some(b"payload".to_vec()),
            Some(b"order-1".to_vec()),
            "ns.orders.dlq".to_string(),
            Timestamp::CreateTime(1_700_000_000_000),
            1,
            7,
            Some(owned),
        )
    }

    fn names(headers: &OwnedHeaders) -> Vec<(String, String)> {
        headers
            .iter()
            .map(|h| {
                (
                    h.key.to_string(),
                    String::from_utf8_lossy(h.value.unwrap_or_default()).into_owned(),
                )
            })
            .collect()
    }

    #[test]
    fn the_headers_say_why_and_from_where() {
        let message = dead_letter(&[
            ("chorus-event-type", "OrderPlaced"),
            (headers::ERROR_CLASS, "rejected"),
            (headers::ERROR_MESSAGE, "quantity -1"),
            (headers::ORIGINAL_TOPIC, "ns.orders"),
            (headers::ORIGINAL_PARTITION, "0"),
            (headers::ORIGINAL_OFFSET, "41"),
        ]);
        let letter = DeadLetter::of(&message);
        assert_eq!(letter.position().to_string(), "1:7");
        assert_eq!(letter.key.as_deref(), Some("order-1"));
        assert_eq!(letter.error_class.as_deref(), Some("rejected"));
        assert_eq!(letter.origin(), "ns.orders/0:41");
        assert_eq!(letter.attempts, None, "older dead letters lack it");
        assert_eq!(
            letter.redrive_target("ns.orders.dlq").as_deref(),
            Some("ns.orders")
        );
        assert!(letter.line().contains("from ns.orders/0:41"));
    }

    #[test]
    fn without_an_original_topic_the_target_is_the_topic_the_dlq_belongs_to() {
        let letter = DeadLetter::of(&dead_letter(&[(headers::ERROR_CLASS, "malformed")]));
        assert_eq!(letter.origin(), "-/-:-");
        assert_eq!(
            letter.redrive_target("ns.payments.dlq").as_deref(),
            Some("ns.payments")
        );
        assert_eq!(letter.redrive_target("ns.payments"), None);
    }

    #[test]
    fn a_redrive_keeps_the_events_headers_and_drops_the_dead_letterings() {
        let message = dead_letter(&[
            (headers::EVENT_TYPE, "StockAdjusted"),
            (headers::EVENT_ID, "e-1"),
            (headers::TRACEPARENT, "00-abc-def-01"),
            (headers::ERROR_CLASS, "exhausted"),
            (headers::ERROR_MESSAGE, "database down"),
            (headers::ATTEMPTS, "5"),
            (headers::CONSUMER_GROUP, "ns.inventory"),
            (headers::ORIGINAL_TOPIC, "ns.inventory.commands"),
            (headers::ORIGINAL_PARTITION, "1"),
            (headers::ORIGINAL_OFFSET, "3"),
            (headers::REDRIVEN_FROM, "ns.inventory.commands.dlq/0:0"),
        ]);
        let republished = redrive_headers(&message, "ns.inventory.commands.dlq/1:7");
        assert_eq!(
            names(&republished),
            [
                (headers::EVENT_TYPE.to_string(), "StockAdjusted".to_string()),
                (headers::EVENT_ID.to_string(), "e-1".to_string()),
                (
                    headers::TRACEPARENT.to_string(),
                    "00-abc-def-01".to_string()
                ),
                (
                    headers::REDRIVEN_FROM.to_string(),
                    "ns.inventory.commands.dlq/1:7".to_string()
                ),
            ]
        );
    }
}
