//! Rust types of the events, one per `.avsc` in `avro/schemas/`, field for field.
//!
//! Money is a `Decimal` carried as a decimal string; timestamps are UTC
//! milliseconds. [`EventType`] ties each type to its schema text and topic.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::topics::Topic;

/// What every event carries besides its own fields.
pub trait EventPayload: Serialize + for<'de> Deserialize<'de> + Clone + Into<Event> {
    const TYPE: EventType;
    /// The Kafka key: the order id, or the SKU for catalogue events.
    fn key(&self) -> &str;
    fn event_id(&self) -> &str;
}

macro_rules! event_types {
    ($($name:ident => $topic:ident, key = $key:ident;)*) => {
        /// Every event type of the saga.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum EventType { $($name),* }

        impl EventType {
            pub const ALL: &'static [EventType] = &[$(EventType::$name),*];

            /// The record name, e.g. `OrderPlaced`.
            pub fn name(self) -> &'static str {
                match self { $(EventType::$name => stringify!($name)),* }
            }

            /// The `.avsc` text exactly as written, defaults and docs included.
            pub fn schema_text(self) -> &'static str {
                match self {
                    $(EventType::$name => include_str!(concat!("../schemas/", stringify!($name), ".avsc"))),*
                }
            }

            /// The topic this event type is published on.
            pub fn topic(self) -> Topic {
                match self { $(EventType::$name => Topic::$topic),* }
            }
        }

        /// Any event of the saga.
        #[derive(Debug, Clone, PartialEq)]
        pub enum Event { $($name($name)),* }

        impl Event {
            pub fn event_type(&self) -> EventType {
                match self { $(Event::$name(_) => EventType::$name),* }
            }

            pub fn key(&self) -> &str {
                match self { $(Event::$name(e) => e.key()),* }
            }

            pub fn event_id(&self) -> &str {
                match self { $(Event::$name(e) => e.event_id()),* }
            }

            pub fn correlation_id(&self) -> &str {
                match self { $(Event::$name(e) => &e.correlation_id),* }
            }

            pub(crate) fn from_avro(
                event_type: EventType,
                value: &apache_avro::types::Value,
            ) -> Result<Event, apache_avro::Error> {
                Ok(match event_type {
                    $(EventType::$name => Event::$name(apache_avro::from_value(value)?)),*
                })
            }

            pub(crate) fn from_json_value(
                event_type: EventType,
                value: serde_json::Value,
            ) -> Result<Event, serde_path_to_error::Error<serde_json::Error>> {
                Ok(match event_type {
                    $(EventType::$name => Event::$name(serde_path_to_error::deserialize(value)?)),*
                })
            }

            pub(crate) fn to_json_value(&self) -> serde_json::Value {
                let value = match self { $(Event::$name(e) => serde_json::to_value(e)),* };
                value.expect("events serialize to JSON infallibly")
            }

            /// Serialize the inner event (for the Avro encoder).
            pub(crate) fn serialize_inner<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                match self { $(Event::$name(e) => e.serialize(s)),* }
            }
        }

        $(
            impl From<$name> for Event {
                fn from(e: $name) -> Event { Event::$name(e) }
            }

            impl EventPayload for $name {
                const TYPE: EventType = EventType::$name;
                fn key(&self) -> &str { &self.$key }
                fn event_id(&self) -> &str { &self.event_id }
            }
        )*
    };
}

event_types! {
    OrderPlaced => Orders, key = order_id;
    OrderConfirmed => Orders, key = order_id;
    OrderCancelled => Orders, key = order_id;
    OrderCancellationRequested => Orders, key = order_id;
    StockAdjusted => InventoryCommands, key = sku;
    StockReserved => Inventory, key = order_id;
    StockReservationFailed => Inventory, key = order_id;
    StockReleased => Inventory, key = order_id;
    PaymentAuthorized => Payments, key = order_id;
    PaymentFailed => Payments, key = order_id;
    PaymentVoided => Payments, key = order_id;
    NotificationSent => Notifications, key = order_id;
}

impl std::fmt::Display for EventType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for EventType {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        EventType::ALL
            .iter()
            .copied()
            .find(|t| t.name().eq_ignore_ascii_case(s) || t.full_name() == s)
            .ok_or_else(|| {
                let known: Vec<_> = EventType::ALL.iter().map(|t| t.name()).collect();
                format!("unknown event type `{s}`; known: {}", known.join(", "))
            })
    }
}

impl EventType {
    pub const NAMESPACE: &'static str = "io.chorus.events";

    /// The Avro full name, e.g. `io.chorus.events.OrderPlaced`.
    pub fn full_name(self) -> String {
        format!("{}.{}", Self::NAMESPACE, self.name())
    }

    pub fn from_full_name(full_name: &str) -> Option<EventType> {
        let name = full_name.strip_prefix(Self::NAMESPACE)?.strip_prefix('.')?;
        EventType::ALL.iter().copied().find(|t| t.name() == name)
    }
}

impl Serialize for Event {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.serialize_inner(s)
    }
}

/// The envelope fields of an event caused by another one.
///
/// The event id is a UUIDv5 of the cause's id and the new event's type (and,
/// with [`Envelope::caused_by_keyed`], a discriminator), so a cause processed
/// twice (after a crash) emits the same ids again and downstream consumers
/// recognise the repeat as a duplicate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    pub event_id: String,
    pub occurred_at: i64,
    pub correlation_id: String,
    pub causation_id: Option<String>,
}

impl Envelope {
    /// The one event of `event_type` that `cause` gives rise to.
    pub fn caused_by(cause: &Event, event_type: EventType) -> Envelope {
        Envelope::caused_by_parts(cause.event_id(), cause.correlation_id(), event_type)
    }

    /// One of several events of `event_type` that `cause` gives rise to, told
    /// apart by `discriminator` (e.g. the channel a notification went out on):
    /// each gets an id of its own, the same again when the cause is reprocessed.
    pub fn caused_by_keyed(cause: &Event, event_type: EventType, discriminator: &str) -> Envelope {
        Envelope::derive(
            &format!("{}#{discriminator}", cause.event_id()),
            cause.event_id(),
            cause.correlation_id(),
            event_type,
        )
    }

    /// [`Envelope::caused_by_keyed`] for a cause known only by its ids.
    pub fn caused_by_keyed_parts(
        cause_id: &str,
        correlation_id: &str,
        event_type: EventType,
        discriminator: &str,
    ) -> Envelope {
        Envelope::derive(
            &format!("{cause_id}#{discriminator}"),
            cause_id,
            correlation_id,
            event_type,
        )
    }

    /// [`Envelope::caused_by`] for a cause known only by its ids.
    pub fn caused_by_parts(
        cause_id: &str,
        correlation_id: &str,
        event_type: EventType,
    ) -> Envelope {
        Envelope::derive(cause_id, cause_id, correlation_id, event_type)
    }

    /// The event id is derived from `seed` (the cause's id, with any
    /// discriminator) and the event type.
    fn derive(seed: &str, cause_id: &str, correlation_id: &str, event_type: EventType) -> Envelope {
        let namespace = uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_OID, seed.as_bytes());
        Envelope {
            event_id: uuid::Uuid::new_v5(&namespace, event_type.name().as_bytes()).to_string(),
            occurred_at: chrono::Utc::now().timestamp_millis(),
            correlation_id: correlation_id.to_string(),
            causation_id: Some(cause_id.to_string()),
        }
    }
}

/// Decimal amounts travel as strings, e.g. `"19.99"`.
mod money {
    pub use rust_decimal::serde::str::{deserialize, serialize};
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderLine {
    pub sku: String,
    pub quantity: i32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReleasedLine {
    pub sku: String,
    pub quantity: i32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PricedLine {
    pub sku: String,
    pub quantity: i32,
    #[serde(with = "money")]
    pub unit_price: Decimal,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderPlaced {
    pub event_id: String,
    pub order_id: String,
    pub occurred_at: i64,
    pub correlation_id: String,
    pub causation_id: Option<String>,
    pub customer_id: String,
    pub items: Vec<OrderLine>,
    pub currency: String,
    /// Sealed for the payment service when `payment_token_key_id` is set.
    pub payment_token: String,
    #[serde(default)]
    pub payment_token_key_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderConfirmed {
    pub event_id: String,
    pub order_id: String,
    pub occurred_at: i64,
    pub correlation_id: String,
    pub causation_id: Option<String>,
    pub customer_id: String,
    #[serde(with = "money")]
    pub total: Decimal,
    pub currency: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderCancelled {
    pub event_id: String,
    pub order_id: String,
    pub occurred_at: i64,
    pub correlation_id: String,
    pub causation_id: Option<String>,
    pub customer_id: String,
    pub reason: String,
    pub detail: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderCancellationRequested {
    pub event_id: String,
    pub order_id: String,
    pub occurred_at: i64,
    pub correlation_id: String,
    pub causation_id: Option<String>,
    pub customer_id: String,
    pub requested_by: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StockAdjusted {
    pub event_id: String,
    pub sku: String,
    pub occurred_at: i64,
    pub correlation_id: String,
    pub causation_id: Option<String>,
    pub name: String,
    pub available: i32,
    #[serde(with = "money")]
    pub unit_price: Decimal,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StockReserved {
    pub event_id: String,
    pub order_id: String,
    pub occurred_at: i64,
    pub correlation_id: String,
    pub causation_id: Option<String>,
    pub customer_id: String,
    pub lines: Vec<PricedLine>,
    #[serde(with = "money")]
    pub total: Decimal,
    pub currency: String,
    /// Carried sealed from `OrderPlaced`, as it came.
    pub payment_token: String,
    #[serde(default)]
    pub payment_token_key_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StockReservationFailed {
    pub event_id: String,
    pub order_id: String,
    pub occurred_at: i64,
    pub correlation_id: String,
    pub causation_id: Option<String>,
    pub reason: String,
    pub skus: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StockReleased {
    pub event_id: String,
    pub order_id: String,
    pub occurred_at: i64,
    pub correlation_id: String,
    pub causation_id: Option<String>,
    pub lines: Vec<ReleasedLine>,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentAuthorized {
    pub event_id: String,
    pub order_id: String,
    pub occurred_at: i64,
    pub correlation_id: String,
    pub causation_id: Option<String>,
    #[serde(with = "money")]
    pub amount: Decimal,
    pub currency: String,
    pub authorization_id: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentFailed {
    pub event_id: String,
    pub order_id: String,
    pub occurred_at: i64,
    pub correlation_id: String,
    pub causation_id: Option<String>,
    #[serde(with = "money")]
    pub amount: Decimal,
    pub currency: String,
    pub reason: String,
    pub detail: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentVoided {
    pub event_id: String,
    pub order_id: String,
    pub occurred_at: i64,
    pub correlation_id: String,
    pub causation_id: Option<String>,
    pub authorization_id: Option<String>,
    #[serde(with = "money")]
    pub amount: Decimal,
    pub currency: String,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotificationSent {
    pub event_id: String,
    pub order_id: String,
    pub occurred_at: i64,
    pub correlation_id: String,
    pub causation_id: Option<String>,
    pub customer_id: String,
    pub final_status: String,
    pub channel: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn placed(event_id: &str) -> Event {
        OrderPlaced {
            event_id: event_id.into(),
            order_id: "o-1".into(),
            occurred_at: 0,
            correlation_id: "corr-1".into(),
            causation_id: None,
            customer_id: "c-1".into(),
            items: vec![],
            currency: "EUR".into(),
            payment_token: "tok".into(),
            payment_token_key_id: None,
        }
        .into()
    }

    #[test]
    fn keyed_envelopes_are_distinct_per_discriminator_and_deterministic() {
        let cause = placed("e-1");
        let t = EventType::NotificationSent;
        let webhook = Envelope::caused_by_keyed(&cause, t, "webhook");
        let email = Envelope::caused_by_keyed(&cause, t, "email");
        let plain = Envelope::caused_by(&cause, t);

        assert_ne!(webhook.event_id, email.event_id);
        assert_ne!(webhook.event_id, plain.event_id);
        assert_eq!(
            webhook.event_id,
            Envelope::caused_by_keyed(&cause, t, "webhook").event_id
        );
        assert_ne!(
            webhook.event_id,
            Envelope::caused_by_keyed(&cause, EventType::OrderConfirmed, "webhook").event_id
        );
        assert_ne!(
            webhook.event_id,
            Envelope::caused_by_keyed(&placed("e-2"), t, "webhook").event_id
        );
        assert!(uuid::Uuid::parse_str(&webhook.event_id).is_ok());
        for envelope in [&webhook, &email, &plain] {
            assert_eq!(envelope.causation_id.as_deref(), Some("e-1"));
            assert_eq!(envelope.correlation_id, "corr-1");
        }
    }

    #[test]
    fn caused_by_agrees_with_caused_by_parts() {
        let cause = placed("e-1");
        let plain = Envelope::caused_by(&cause, EventType::StockReserved);
        let parts = Envelope::caused_by_parts("e-1", "corr-1", EventType::StockReserved);
        assert_eq!(plain.event_id, parts.event_id);
        assert_eq!(plain.causation_id, parts.causation_id);
        assert_eq!(plain.correlation_id, parts.correlation_id);
    }
}
