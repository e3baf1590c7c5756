//! The chorus event contract: one Avro schema per event type, the Rust type of
//! each event, the topic catalogue, and a codec that speaks the Confluent wire
//! format (magic byte, 4-byte schema id, Avro body) against a schema registry,
//! and the one validation of each event's content every consumer applies
//! ([`validate`]).
//!
//! Nothing here panics on bad bytes: every way a payload can be wrong comes
//! back as a [`DecodeError`] variant the caller can dead-letter or retry.

mod codec;
mod compat;
mod customer_texts;
mod error;
mod events;
mod examples;
pub mod headers;
mod json;
mod registry;
mod services;
mod topics;
pub mod validate;

pub use codec::{Codec, CodecConfig};
pub use compat::{SchemaDiff, backward_incompatibilities};
pub use customer_texts::{CancelReason, UNEXPLAINED_TEXT};
pub use error::{DecodeError, EncodeError, RegistryError, error_chain};
pub use events::*;
pub use json::{JsonError, event_from_json, event_to_json};
pub use registry::{Compatibility, RegistryClient, RegistrySettings, subject_name};
pub use services::Service;
pub use topics::{DEFAULT_PARTITIONS, Topic, TopicCatalogue};
