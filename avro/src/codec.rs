//! Encodes events to the Confluent wire format and decodes them back, with the
//! schema of each event type registered under `<topic>-<record full name>`
//! (TopicRecordNameStrategy), through one [`RegistryClient`] for both ways
//! (and for whoever else asks, e.g. a readiness probe: [`Codec::registry`]).
//!
//! Registration posts the `.avsc` text as written (defaults kept). Whether a
//! producer registers a missing schema itself is [`CodecConfig::auto_register`],
//! as Confluent's `auto.register.schemas`: on for development runs, off otherwise;
//! with it off, an event is written with the subject's latest registered schema.
//!
//! Decoding fetches the writer's schema by id and resolves the body against
//! our own schema of that event type (so data written with an older or newer
//! compatible version decodes). Only schemas the registry returned are cached:
//! a registry that was down, or refused us, is asked again for the next
//! message, and only its 404 — from a registry that proves itself one, see
//! [`crate::registry`] — makes an id unknown.
//!
//! Every error is typed where it arises: an event the schema does not take
//! ([`EncodeError::Invalid`]), the registry's own answers by status, a body
//! cut short by the reader's end-of-file.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, RwLock};
use std::time::Duration;

use apache_avro::Schema;
use apache_avro::types::Value;
use apache_avro::writer::datum::GenericDatumWriter;

use crate::error::{DecodeError, EncodeError, RegistryError};
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

/// The schema events of one subject are written with, and its id.
struct SubjectSchema {
    id: u32,
    schema: Schema,
}

/// Encoder and decoder sharing one registry client.
pub struct Codec {
    registry: Arc<RegistryClient>,
    /// Decoding: writer schemas by id.
    writers: RwLock<HashMap<u32, Arc<WriterSchema>>>,
    /// Encoding: the schema of each subject written so far.
    subjects: RwLock<HashMap<String, Arc<SubjectSchema>>>,
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
        let registry = RegistryClient::new(&config.registry, config.timeout)
            .map_err(|e| EncodeError::RegistryUnavailable(e.to_string()))?;
        Ok(Codec::with_registry(
            Arc::new(registry),
            catalogue,
            config.auto_register,
        ))
    }

    /// A codec over a registry client the caller shares.
    pub fn with_registry(
        registry: Arc<RegistryClient>,
        catalogue: TopicCatalogue,
        auto_register: bool,
    ) -> Codec {
        Codec {
            registry,
            writers: RwLock::new(HashMap::new()),
            subjects: RwLock::new(HashMap::new()),
            catalogue,
            auto_register,
        }
    }

    /// The one registry client this codec encodes and decodes through.
    pub fn registry(&self) -> &Arc<RegistryClient> {
        &self.registry
    }

    pub fn catalogue(&self) -> &TopicCatalogue {
        &self.catalogue
    }

    /// Encodes an event for its catalogue topic.
    pub async fn encode(&self, event: &Event) -> Result<Vec<u8>, EncodeError> {
        let event_type = event.event_type();
        let subject = subject_name(&self.catalogue.topic_of(event_type), event_type);
        let writer = self.subject_schema(subject, event_type).await?;
        let body = GenericDatumWriter::builder(&writer.schema)
            .build()
            .and_then(|w| w.write_ser_to_vec(event))
            .map_err(|e| EncodeError::Invalid(crate::error_chain(&e)))?;
        let mut bytes = Vec::with_capacity(5 + body.len());
        bytes.push(0);
        bytes.extend_from_slice(&writer.id.to_be_bytes());
        bytes.extend_from_slice(&body);
        Ok(bytes)
    }

    /// The schema and id events of `subject` are written with: from the
    /// cache, else registered (auto-registration) or the latest version.
    async fn subject_schema(
        &self,
        subject: String,
        event_type: EventType,
    ) -> Result<Arc<SubjectSchema>, EncodeError> {
        if let Some(found) = self
            .subjects
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&subject)
        {
            return Ok(found.clone());
        }
        let found = if self.auto_register {
            let id = self
                .registry
                .register(&subject, event_type.schema_text())
                .await
                .map_err(|e| registry_refusal(e, &subject))?;
            SubjectSchema {
                id,
                schema: READERS[&event_type].clone(),
            }
        } else {
            let latest = self
                .registry
                .latest(&subject)
                .await
                .map_err(|e| registry_refusal(e, &subject))?
                .ok_or_else(|| EncodeError::NotRegistered {
                    subject: subject.clone(),
                    cause: "the registry has no version of it".to_string(),
                })?;
            let schema = Schema::parse_str(&latest.schema).map_err(|e| EncodeError::Rejected {
                subject: subject.clone(),
                cause: format!("its latest version (id {}) does not parse: {e}", latest.id),
            })?;
            SubjectSchema {
                id: latest.id,
                schema,
            }
        };
        let found = Arc::new(found);
        self.subjects
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(subject, found.clone());
        Ok(found)
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

/// Whether the body ended before its record did: the reader hit the end of
/// its input (an I/O `UnexpectedEof` somewhere in the cause chain).
fn caused_by_eof(e: &apache_avro::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(s) = source {
        if let Some(io) = s.downcast_ref::<std::io::Error>()
            && io.kind() == std::io::ErrorKind::UnexpectedEof
        {
            return true;
        }
        source = s.source();
    }
    false
}

/// A registry call made for encoding that failed: the registry down, busy or
/// misrouted is transient; anything else it answered is a refusal.
fn registry_refusal(e: RegistryError, subject: &str) -> EncodeError {
    if e.is_transient() {
        EncodeError::RegistryUnavailable(e.to_string())
    } else {
        EncodeError::Rejected {
            subject: subject.to_string(),
            cause: e.to_string(),
        }
    }
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

    #[tokio::test]
    async fn a_misrouted_registry_makes_messages_wait_not_dead_letter() {
        let url = crate::registry::tests::stub(|_| (404, "Not Found")).await;
        let config = CodecConfig {
            registry: RegistrySettings::new(url),
            auto_register: false,
            timeout: Duration::from_secs(5),
        };
        let codec = Codec::new(&config, TopicCatalogue::default()).unwrap();
        let err = codec.decode(Some(&[0, 0, 0, 0, 7, 2])).await.unwrap_err();
        assert!(
            matches!(err, DecodeError::RegistryUnavailable(_)) && err.is_transient(),
            "{err:?}"
        );
        let err = codec
            .encode(&EventType::OrderPlaced.example("o-1"))
            .await
            .unwrap_err();
        assert!(err.is_transient(), "{err:?}");
        // Encoding and decoding ask through one client.
        assert!(codec.registry().is_misrouted());
    }
}
