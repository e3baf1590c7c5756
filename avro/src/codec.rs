//! Encodes events to the Confluent wire format and decodes them back, with the
//! schema of each event type registered under `<topic>-<record full name>`
//! (TopicRecordNameStrategy).
//!
//! Registration posts the `.avsc` text as written (defaults kept). Whether a
//! producer registers a missing schema itself is [`CodecConfig::auto_register`],
//! as Confluent's `auto.register.schemas`: on for development runs, off otherwise.

use std::time::Duration;

use apache_avro::types::Value;
use schema_registry_converter::async_impl::avro::{AvroDecoder, AvroEncoder};
use schema_registry_converter::async_impl::schema_registry::SrSettings;
use schema_registry_converter::error::SRCError;
use schema_registry_converter::schema_registry_common::{
    SchemaType, SubjectNameStrategy, SuppliedSchema,
};

use crate::error::{DecodeError, EncodeError};
use crate::events::{Event, EventPayload, EventType};
use crate::registry::subject_name;
use crate::topics::TopicCatalogue;

/// Where the registry is and how the codec may use it.
#[derive(Debug, Clone)]
pub struct CodecConfig {
    /// Base URL without a trailing slash, e.g. `http://127.0.0.1:8081/apis/ccompat/v7`.
    pub registry_url: String,
    /// Register a schema missing from the registry on first use.
    pub auto_register: bool,
    pub timeout: Duration,
}

/// Encoder and decoder sharing one schema cache per direction.
pub struct Codec {
    encoder: AvroEncoder,
    decoder: AvroDecoder,
    catalogue: TopicCatalogue,
    auto_register: bool,
}

impl Codec {
    pub fn new(config: &CodecConfig, catalogue: TopicCatalogue) -> Result<Codec, EncodeError> {
        let url = config.registry_url.trim_end_matches('/').to_string();
        let settings = || {
            SrSettings::new_builder(url.clone())
                .set_timeout(config.timeout)
                .no_proxy()
                .build()
                .map_err(|e| EncodeError::RegistryUnavailable(describe(&e)))
        };
        Ok(Codec {
            encoder: AvroEncoder::new(settings()?),
            decoder: AvroDecoder::new(settings()?),
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

    async fn decode_value(&self, bytes: Option<&[u8]>) -> Result<(EventType, Value), DecodeError> {
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
        let id = u32::from_be_bytes([bytes[1], bytes[2], bytes[3], bytes[4]]);
        // Fetch the schema first so that a registry problem is told apart
        // from a body that does not fit its schema.
        if let Err(e) = self.decoder.get_schema(id).await {
            return Err(if e.retriable {
                DecodeError::RegistryUnavailable(describe(&e))
            } else {
                DecodeError::UnknownSchemaId(id)
            });
        }
        let decoded = self.decoder.decode(Some(bytes)).await.map_err(|e| {
            if caused_by_eof(&e) {
                DecodeError::Truncated(describe(&e))
            } else {
                DecodeError::Malformed(describe(&e))
            }
        })?;
        let name = decoded
            .name
            .map(|n| n.fullname(None))
            .unwrap_or_else(|| "<not a record>".to_string());
        let event_type =
            EventType::from_full_name(&name).ok_or(DecodeError::UnknownRecordType(name))?;
        Ok((event_type, decoded.value))
    }
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

fn caused_by_eof(e: &SRCError) -> bool {
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        if let Some(io) = s.downcast_ref::<std::io::Error>()
            && io.kind() == std::io::ErrorKind::UnexpectedEof
        {
            return true;
        }
        if s.to_string()
            .to_lowercase()
            .contains("unexpected end of file")
            || s.to_string().contains("UnexpectedEof")
        {
            return true;
        }
        source = s.source();
    }
    false
}
