//! The bytes of each kind of poison. Framing poison (random bytes, a wrong
//! magic byte, an unknown schema id) never decodes; a registered schema of
//! the wrong event type decodes as an event that does not belong on the
//! topic; value poison is valid Avro of the topic's own kind of event whose
//! values no business rule accepts. Every key is a `chaos-…` order id or a
//! `CHAOS-…` SKU, so poison never touches a real order or SKU.

mod keys;
mod values;

use std::collections::HashMap;

use anyhow::Context;
use apache_avro::Schema;
use chorus_avro::{Codec, EventType, Topic};
use rand::Rng;
use serde::{Deserialize, Serialize};

use keys::Keys;
use values::{huge, set, value_change};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PoisonKind {
    RandomBytes,
    WrongMagicByte,
    UnknownSchemaId,
    WrongEventType,
    MoneyOverflow,
    HugeSku,
    NulBytes,
    NegativeQuantity,
}

impl PoisonKind {
    pub const ALL: [PoisonKind; 8] = [
        PoisonKind::RandomBytes,
        PoisonKind::WrongMagicByte,
        PoisonKind::UnknownSchemaId,
        PoisonKind::WrongEventType,
        PoisonKind::MoneyOverflow,
        PoisonKind::HugeSku,
        PoisonKind::NulBytes,
        PoisonKind::NegativeQuantity,
    ];

    pub fn name(self) -> &'static str {
        match self {
            PoisonKind::RandomBytes => "random_bytes",
            PoisonKind::WrongMagicByte => "wrong_magic_byte",
            PoisonKind::UnknownSchemaId => "unknown_schema_id",
            PoisonKind::WrongEventType => "wrong_event_type",
            PoisonKind::MoneyOverflow => "money_overflow",
            PoisonKind::HugeSku => "huge_sku",
            PoisonKind::NulBytes => "nul_bytes",
            PoisonKind::NegativeQuantity => "negative_quantity",
        }
    }
}

/// The event type each input topic carries, the one poison of its values is made of.
fn own_type(topic: Topic) -> EventType {
    match topic {
        Topic::Orders => EventType::OrderPlaced,
        Topic::Inventory => EventType::StockReserved,
        Topic::InventoryCommands => EventType::StockAdjusted,
        Topic::Payments | Topic::Notifications => EventType::PaymentAuthorized,
    }
}

/// A registered event type that does not belong on the topic, handled by
/// one of the topic's consumers where there is one (StockAdjusted on the
/// payments topic reaches the inventory worker, which handles StockAdjusted).
fn foreign_type(topic: Topic) -> EventType {
    match topic {
        Topic::Orders => EventType::StockReserved,
        Topic::Inventory => EventType::OrderConfirmed,
        Topic::InventoryCommands => EventType::PaymentAuthorized,
        Topic::Payments | Topic::Notifications => EventType::StockAdjusted,
    }
}

/// One poison message.
#[derive(Debug, Clone)]
pub struct Payload {
    pub key: String,
    pub bytes: Vec<u8>,
    pub event_type: Option<EventType>,
    /// What is wrong with it, in a few words.
    pub detail: String,
}

/// Builds poison; remembers the Confluent header (magic byte and schema id)
/// of each event type, taken from a real encoding.
pub struct PoisonMaker<'a> {
    codec: &'a Codec,
    headers: HashMap<EventType, Vec<u8>>,
}

impl<'a> PoisonMaker<'a> {
    pub fn new(codec: &'a Codec) -> PoisonMaker<'a> {
        PoisonMaker {
            codec,
            headers: HashMap::new(),
        }
    }

    pub async fn make(&mut self, kind: PoisonKind, topic: Topic) -> anyhow::Result<Payload> {
        let mut rng = rand::rng();
        let keys = Keys::new();
        let own = own_type(topic);
        let framing = |bytes: Vec<u8>, detail: String| Payload {
            key: keys.of(own).to_string(),
            bytes,
            event_type: None,
            detail,
        };
        Ok(match kind {
            PoisonKind::RandomBytes => {
                let mut bytes = vec![0u8; rng.random_range(1..=256)];
                rng.fill(&mut bytes[..]);
                framing(bytes, "random bytes".into())
            }
            PoisonKind::WrongMagicByte => {
                let mut bytes = self.encode(&keys.example(own)?).await?;
                bytes[0] = rng.random_range(1..=u8::MAX);
                let detail = format!("a {own} with magic byte {:#04x}", bytes[0]);
                framing(bytes, detail)
            }
            PoisonKind::UnknownSchemaId => {
                let mut bytes = self.encode(&keys.example(own)?).await?;
                let id: u32 = rng.random_range(0x4000_0000..=0x7fff_ffff);
                bytes[1..5].copy_from_slice(&id.to_be_bytes());
                framing(bytes, format!("a {own} framed with schema id {id}"))
            }
            PoisonKind::WrongEventType => {
                let foreign = foreign_type(topic);
                Payload {
                    bytes: self.encode(&keys.example(foreign)?).await?,
                    key: keys.of(foreign).to_string(),
                    event_type: Some(foreign),
                    detail: format!("a {foreign}, which does not belong on this topic"),
                }
            }
            value_kind => self.value_poison(value_kind, topic, &keys).await?,
        })
    }

    async fn encode(&mut self, event: &chorus_avro::Event) -> anyhow::Result<Vec<u8>> {
        let bytes = self
            .codec
            .encode(event)
            .await
            .with_context(|| format!("encoding a {}", event.event_type()))?;
        self.headers.insert(event.event_type(), bytes[..5].to_vec());
        Ok(bytes)
    }

    /// Valid Avro of the topic's own event type with one value no rule accepts.
    async fn value_poison(
        &mut self,
        kind: PoisonKind,
        topic: Topic,
        keys: &Keys,
    ) -> anyhow::Result<Payload> {
        let (event_type, path, value, detail) = value_change(kind, topic);
        let event = keys.example(event_type)?;
        // A real encoding first: the schema is registered, its header known.
        self.encode(&event).await?;
        let schema = Schema::parse_str(event_type.schema_text())?;
        let mut record = apache_avro::to_value(&event)?.resolve(&schema)?;
        set(&mut record, path, value)?;
        #[allow(deprecated)]
        let body = apache_avro::to_avro_datum(&schema, record)
            .with_context(|| format!("encoding a poisoned {event_type}"))?;
        let mut bytes = self.headers[&event_type].clone();
        bytes.extend_from_slice(&body);
        let key = match (kind, event_type) {
            // The SKU is StockAdjusted's key: the key is as huge as the SKU.
            (PoisonKind::HugeSku, EventType::StockAdjusted) => huge('S'),
            _ => keys.of(event_type).to_string(),
        };
        Ok(Payload {
            key,
            bytes,
            event_type: Some(event_type),
            detail: format!("a {event_type} with {detail}"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn foreign_types_never_belong_on_their_topic() {
        for topic in [
            Topic::Orders,
            Topic::Inventory,
            Topic::InventoryCommands,
            Topic::Payments,
        ] {
            assert_ne!(foreign_type(topic).topic(), topic);
            assert_eq!(own_type(topic).topic(), topic);
        }
    }
}
