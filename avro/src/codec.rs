//! Encodes events to the Confluent wire format and decodes them back, with the
//! schema of each event type registered under `<topic>-<record full name>`
//! (TopicRecordNameStrategy).
//!
//! Registration posts the `.avsc` text as written (defaults kept). Whether a
//! producer registers a missing schema itself is [`CodecConfig::auto_register`],
//! as Confluent's `auto.register.schemas`: on for development runs, off otherwise.
//!
//! Decoding fetches the writer's schema by id and resolves the body against
//! our own schema of that event type (so data written with an older or newer
//! compatible version decodes). Only schemas the registry returned are cached:
//! a registry that was down, or refused us, is asked again for the next
//! message, and only its 404 makes an id unknown.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, RwLock};
use std::time::Duration;

use apache_avro::Schema;
use apache_avro::types::Value;
use schema_registry_converter::async_impl::avro::AvroEncoder;
use schema_registry_converter::async_impl::schema_registry::SrSettings;
use schema_registry_converter::error::SRCError;
use schema_registry_converter::schema_registry_common::{
    SchemaType, SubjectNameStrategy, SuppliedSchema,
};

use crate::error::{DecodeError, EncodeError};
use crate::events::{Event, EventPayload, EventType};
use crate::registry::{RegistryClient, RegistrySettings, subject_name};
use crate::topics::TopicCatalogue;

/// Where the registry is and how the codec may use it.
#[derive(Debug, Clone)]
pub struct CodecConfig {
    pub registry: RegistrySettings,
    /// Register a schema missing from the registry on first use.
    pub auto_register: bool,
    pub timeout: Duration,
}

/// A writer schema the registry returned, with the event type it is.
struct WriterSchema {
    schema: Schema,
    event_type: Option<EventType>,
    name: String,
}

/// Encoder and decoder sharing one registry.
pub struct Codec {
    encoder: AvroEncoder,
    registry: RegistryClient,
    writers: RwLock<HashMap<u32, Arc<WriterSchema>>>,
    catalogue: TopicCatalogue,
    auto_register: bool,
}

/// Our own schema of every event type, parsed once: the reader schemas.
static READERS: LazyLock<HashMap<EventType, Schema>> = LazyLock::new(|| {
    EventType::ALL
        .iter()
        .map(|&t| {
            let schema = Schema::parse_str(t.schema_text())
                .unwrap_or_else(|e| panic!("avro/schemas/{}.avsc does not parse: {e}", t.name()));
            (t, schema)
        })
        .collect()
});

impl Codec {
    pub fn new(config: &CodecConfig, catalogue: TopicCatalogue) -> Result<Codec, EncodeError> {
        let mut builder = SrSettings::new_builder(config.registry.url.clone());
        builder.set_timeout(config.timeout).no_proxy();
        if let Some((username, password)) = &config.registry.basic_auth {
            builder.set_basic_authorization(username, Some(password));
        }
        let settings = builder
            .build()
            .map_err(|e| EncodeError::RegistryUnavailable(describe(&e)))?;
        let registry = RegistryClient::new(&config.registry, config.timeout)
            .map_err(|e| EncodeError::RegistryUnavailable(e.to_string()))?;
        Ok(Codec {
            encoder: AvroEncoder::new(settings),
            registry,
            writers: RwLock::new(HashMap::new()),
            catalogue,
            auto_register: config.auto_register,
        })
    }

    pub fn catalogue(&self) -> &TopicCatalogue {
        &self.catalogue
    }

    /// Encodes an event for its catalogue topic.
    pub async fn encode(&self, event: &Event) -> Result<Vec<u8>, EncodeError> {
        let event_type = event.event_type();
        let topic = self.catalogue.topic_of(event_type);
        let subject = subject_name(&topic, event_type);
        let strategy = if self.auto_register {
            SubjectNameStrategy::TopicRecordNameStrategyWithSchema(
                topic,
                SuppliedSchema::new(
                    Some(event_type.full_name()),
                    SchemaType::Avro,
                    event_type.schema_text().to_string(),
                ),
            )
        } else {
            SubjectNameStrategy::TopicRecordNameStrategy(topic, event_type.full_name())
        };
        self.encoder
            .encode_struct(event, &strategy)
            .await
            .map_err(|e| {
                self.encoder.remove_errors_from_cache();
                classify_encode_error(e, subject, self.auto_register)
            })
    }

    /// Decodes bytes into whichever event they hold.
    pub async fn decode(&self, bytes: Option<&[u8]>) -> Result<Event, DecodeError> {
        let (event_type, value) = self.decode_value(bytes).await?;
        Event::from_avro(event_type, &value).map_err(|e| DecodeError::Malformed(e.to_string()))
    }

    /// Decodes bytes that must hold one particular event type.
    pub async fn decode_as<T: EventPayload>(&self, bytes: Option<&[u8]>) -> Result<T, DecodeError> {
        let (event_type, value) = self.decode_value(bytes).await?;
        if event_type != T::TYPE {
            return Err(DecodeError::WrongRecordType {
                expected: T::TYPE.name().to_string(),
                found: event_type.name().to_string(),
            });
        }
        apache_avro::from_value(&value).map_err(|e| DecodeError::Malformed(e.to_string()))
    }

    /// The schema id of Confluent-framed bytes, once the frame is checked.
    pub fn schema_id(bytes: Option<&[u8]>) -> Result<u32, DecodeError> {
        let bytes = bytes.filter(|b| !b.is_empty()).ok_or(DecodeError::Empty)?;
        if bytes[0] != 0 {
            return Err(DecodeError::WrongMagicByte(bytes[0]));
        }
        if bytes.len() < 5 {
            return Err(DecodeError::Truncated(format!(
                "{} bytes, the header alone is 5",
                bytes.len()
            )));
        }
        Ok(u32::from_be_bytes([bytes[1], bytes[2], bytes[3], bytes[4]]))
    }

    async fn decode_value(&self, bytes: Option<&[u8]>) -> Result<(EventType, Value), DecodeError> {
        let id = Codec::schema_id(bytes)?;
        let body = &bytes.unwrap_or_default()[5..];
        let writer = self.writer_schema(id).await?;
        let event_type = writer
            .event_type
            .ok_or_else(|| DecodeError::UnknownRecordType(writer.name.clone()))?;
        let mut reader = body;
        #[allow(deprecated)]
        let value =
            apache_avro::from_avro_datum(&writer.schema, &mut reader, Some(&READERS[&event_type]))
                .map_err(|e| {
                    if caused_by_eof(&e) {
                        DecodeError::Truncated(crate::error_chain(&e))
                    } else {
                        DecodeError::Malformed(crate::error_chain(&e))
                    }
                })?;
        if !reader.is_empty() {
            return Err(DecodeError::Malformed(format!(
                "{} bytes left over after the record",
                reader.len()
            )));
        }
        Ok((event_type, value))
    }

    /// The writer schema of `id`: from the cache, else from the registry.
    async fn writer_schema(&self, id: u32) -> Result<Arc<WriterSchema>, DecodeError> {
        if let Some(found) = self
            .writers
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&id)
        {
            return Ok(found.clone());
        }
        let text = match self.registry.schema_by_id(id).await {
            Ok(Some(text)) => text,
            Ok(None) => return Err(DecodeError::UnknownSchemaId(id)),
            Err(e) if e.is_transient() => {
                return Err(DecodeError::RegistryUnavailable(e.to_string()));
            }
            Err(e) => return Err(DecodeError::RegistryRefused(e.to_string())),
        };
        let schema = Schema::parse_str(&text)
            .map_err(|e| DecodeError::Malformed(format!("schema id {id} does not parse: {e}")))?;
        let name = match &schema {
            Schema::Record(record) => record.name.fullname(None),
            other => format!("<not a record: {other:?}>"),
        };
        let writer = Arc::new(WriterSchema {
            event_type: EventType::from_full_name(&name),
            schema,
            name,
        });
        self.writers
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id, writer.clone());
        Ok(writer)
    }
}

/// Whether the body ended before its record did.
fn caused_by_eof(e: &apache_avro::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(s) = source {
        if let Some(io) = s.downcast_ref::<std::io::Error>()
            && io.kind() == std::io::ErrorKind::UnexpectedEof
        {
            return true;
        }
        let text = s.to_string().to_lowercase();
        if text.contains("end of file") || text.contains("unexpectedeof") {
            return true;
        }
        source = s.source();
    }
    false
}

fn classify_encode_error(e: SRCError, subject: String, auto_register: bool) -> EncodeError {
    let cause = describe(&e);
    if e.error.contains("Could not get Avro bytes") {
        EncodeError::Invalid(cause)
    } else if e.retriable || cause.contains("error sending request") {
        EncodeError::RegistryUnavailable(cause)
    } else if !auto_register && cause.contains("404") {
        EncodeError::NotRegistered { subject, cause }
    } else {
        EncodeError::Rejected { subject, cause }
    }
}

/// The error with its whole cause chain on one line.
fn describe(e: &SRCError) -> String {
    let mut text = e.error.clone();
    if let Some(cause) = &e.cause {
        text.push_str(": ");
        text.push_str(cause);
    }
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        let s_text = s.to_string();
        if !text.contains(&s_text) {
            text.push_str(": ");
            text.push_str(&s_text);
        }
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_schema_parses_as_a_reader() {
        assert_eq!(READERS.len(), EventType::ALL.len());
    }

    #[test]
    fn a_body_cut_short_is_truncated() {
        let event = EventType::OrderPlaced.example("o-1");
        let value = apache_avro::to_value(&event).unwrap();
        let schema = &READERS[&EventType::OrderPlaced];
        #[allow(deprecated)]
        let body = apache_avro::to_avro_datum(schema, value.resolve(schema).unwrap()).unwrap();
        let half = &body[..body.len() / 2];
        #[allow(deprecated)]
        let err = apache_avro::from_avro_datum(schema, &mut &half[..], None).unwrap_err();
        assert!(caused_by_eof(&err), "{err:?}");
    }

    #[test]
    fn the_frame_is_checked_before_any_lookup() {
        assert_eq!(Codec::schema_id(None), Err(DecodeError::Empty));
        assert_eq!(
            Codec::schema_id(Some(&[1, 0])),
            Err(DecodeError::WrongMagicByte(1))
        );
        assert!(matches!(
            Codec::schema_id(Some(&[0, 0, 1])),
            Err(DecodeError::Truncated(_))
        ));
        assert_eq!(Codec::schema_id(Some(&[0, 0, 0, 1, 2, 9])), Ok(258));
    }
}
