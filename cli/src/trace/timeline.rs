//! An order's messages as a timeline: decoded, in time order, each with
//! the milliseconds since the order's `OrderPlaced`, the service that
//! produced it and the event that caused it. Dead letters and messages that
//! do not decode have their line too: a trace hides nothing it found.

use chorus_avro::{Codec, EventType, headers};
use chrono::{DateTime, SecondsFormat, Utc};
use rdkafka::message::{Message, OwnedMessage};
use serde::Serialize;
use serde_json::Value;

use crate::render::{event_json, header};
use crate::saga_steps::producing_service;

/// One message of the order.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Entry {
    /// The message's Kafka timestamp, UTC milliseconds.
    pub timestamp: i64,
    pub at: String,
    /// Milliseconds since the order's `OrderPlaced` (None when it was not found).
    pub since_placed_ms: Option<i64>,
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub event_type: Option<String>,
    pub service: Option<&'static str>,
    pub event_id: Option<String>,
    pub caused_by: Option<String>,
    /// On a dead-letter topic: why it is there.
    pub dead_letter: Option<String>,
    /// Why the payload does not decode.
    pub undecodable: Option<String>,
    /// The decoded event (payment token hidden).
    pub event: Option<Value>,
}

pub async fn decode(codec: &Codec, messages: &[OwnedMessage]) -> Vec<Entry> {
    let mut entries = Vec::with_capacity(messages.len());
    for message in messages {
        let timestamp = message.timestamp().to_millis().unwrap_or_default();
        let mut entry = Entry {
            timestamp,
            at: format_millis(timestamp),
            since_placed_ms: None,
            topic: message.topic().to_string(),
            partition: message.partition(),
            offset: message.offset(),
            event_type: header(message, headers::EVENT_TYPE),
            service: None,
            event_id: header(message, headers::EVENT_ID),
            caused_by: None,
            dead_letter: message
                .topic()
                .ends_with(".dlq")
                .then(|| header(message, headers::ERROR_CLASS).unwrap_or_else(|| "-".into())),
            undecodable: None,
            event: None,
        };
        match codec.decode(message.payload()).await {
            Ok(event) => {
                let json = event_json(&event);
                entry.event_type = Some(event.event_type().name().to_string());
                entry.service = Some(producing_service(event.event_type()));
                entry.event_id = Some(event.event_id().to_string());
                entry.caused_by = json["causation_id"].as_str().map(str::to_string);
                entry.event = Some(json);
            }
            Err(e) => entry.undecodable = Some(format!("{}: {e}", e.class())),
        }
        entries.push(entry);
    }
    entries
}

/// Sorts by time (ties by topic, partition, offset) and measures every
/// entry from the first `OrderPlaced` on a topic that is not a dead-letter one.
pub fn arrange(mut entries: Vec<Entry>) -> Vec<Entry> {
    entries.sort_by(|a, b| {
        (a.timestamp, &a.topic, a.partition, a.offset).cmp(&(
            b.timestamp,
            &b.topic,
            b.partition,
            b.offset,
        ))
    });
    let placed = EventType::OrderPlaced.name();
    let placed_at = entries
        .iter()
        .find(|e| e.dead_letter.is_none() && e.event_type.as_deref() == Some(placed))
        .map(|e| e.timestamp);
    for entry in &mut entries {
        entry.since_placed_ms = placed_at.map(|at| entry.timestamp - at);
    }
    entries
}

pub fn format_millis(millis: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(millis)
        .map(|t| t.to_rfc3339_opts(SecondsFormat::Millis, true))
        .unwrap_or_else(|| millis.to_string())
}

/// One line of the printed timeline.
pub fn line(entry: &Entry) -> String {
    let since = entry
        .since_placed_ms
        .map_or("-".to_string(), |ms| format!("{ms:+}ms"));
    let mut line = format!(
        "{}  {:>9}  {:<34} {:<26} {:<12} {:<36}  caused by {}",
        entry.at,
        since,
        format!("{}/{}:{}", entry.topic, entry.partition, entry.offset),
        entry.event_type.as_deref().unwrap_or("?"),
        entry.service.unwrap_or("?"),
        entry.event_id.as_deref().unwrap_or("-"),
        entry.caused_by.as_deref().unwrap_or("-"),
    );
    if let Some(class) = &entry.dead_letter {
        line.push_str(&format!("  DEAD-LETTERED ({class})"));
    }
    if let Some(why) = &entry.undecodable {
        line.push_str(&format!("  UNDECODABLE ({why})"));
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(timestamp: i64, topic: &str, event_type: &str) -> Entry {
        Entry {
            timestamp,
            at: format_millis(timestamp),
            since_placed_ms: None,
            topic: topic.to_string(),
            partition: 0,
            offset: timestamp,
            event_type: Some(event_type.to_string()),
            service: None,
            event_id: None,
            caused_by: None,
            dead_letter: topic.ends_with(".dlq").then(|| "rejected".to_string()),
            undecodable: None,
            event: None,
        }
    }

    #[test]
    fn entries_are_in_time_order_measured_from_the_order_placed() {
        let arranged = arrange(vec![
            entry(1_030, "t.payments", "PaymentAuthorized"),
            entry(990, "t.orders.dlq", "OrderPlaced"),
            entry(1_000, "t.orders", "OrderPlaced"),
            entry(1_012, "t.inventory", "StockReserved"),
        ]);
        let order: Vec<(&str, Option<i64>)> = arranged
            .iter()
            .map(|e| (e.event_type.as_deref().unwrap(), e.since_placed_ms))
            .collect();
        assert_eq!(
            order,
            [
                ("OrderPlaced", Some(-10)),
                ("OrderPlaced", Some(0)),
                ("StockReserved", Some(12)),
                ("PaymentAuthorized", Some(30)),
            ]
        );
        assert!(line(&arranged[0]).contains("DEAD-LETTERED (rejected)"));
        assert!(line(&arranged[2]).contains("+12ms"));
    }

    #[test]
    fn without_an_order_placed_nothing_is_measured() {
        let arranged = arrange(vec![entry(5, "t.inventory", "StockReleased")]);
        assert_eq!(arranged[0].since_placed_ms, None);
        assert!(line(&arranged[0]).contains("        -  "));
    }

    #[test]
    fn times_print_as_utc_milliseconds() {
        assert_eq!(format_millis(1_767_225_600_123), "2026-01-01T00:00:00.123Z");
    }
}
