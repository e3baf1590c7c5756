//! Machinery shared by every chorus worker and tool: Kafka clients, topic
//! administration, and (as the workers arrive) the consumer loop with its
//! inbox/outbox, relay, dead-lettering, retry, telemetry and shutdown.

pub mod kafka;
pub mod topics;
