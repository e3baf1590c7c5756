//! The Kafka headers chorus writes, part of the contract like the schemas:
//! every event carries its type and id; a dead letter also says why it is
//! there and where it came from; a redriven message says where it was.

/// The event's type, e.g. `OrderPlaced`.
pub const EVENT_TYPE: &str = "chorus-event-type";
/// The event's id.
pub const EVENT_ID: &str = "chorus-event-id";
/// The service that produced the event (`gateway`, `order`, …).
pub const PRODUCER: &str = "chorus-producer";

/// Why a message was dead-lettered: `rejected`, `exhausted`, `panic`, or
/// the decode error's class (`wrong_magic_byte`, `unknown_schema_id`, …).
pub const ERROR_CLASS: &str = "chorus-error-class";
/// The error that dead-lettered it, on one line.
pub const ERROR_MESSAGE: &str = "chorus-error-message";
/// How many times it was tried before it was dead-lettered.
pub const ATTEMPTS: &str = "chorus-attempts";
/// The consumer group that dead-lettered it.
pub const CONSUMER_GROUP: &str = "chorus-consumer-group";
/// Where the message was before it was dead-lettered.
pub const ORIGINAL_TOPIC: &str = "chorus-original-topic";
pub const ORIGINAL_PARTITION: &str = "chorus-original-partition";
pub const ORIGINAL_OFFSET: &str = "chorus-original-offset";

/// On a message republished from a dead-letter topic: `<dlq topic>/<partition>:<offset>`.
pub const REDRIVEN_FROM: &str = "chorus-redriven-from";

/// W3C trace context.
pub const TRACEPARENT: &str = "traceparent";
