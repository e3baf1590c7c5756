//! Dead-lettering: a message that can never be processed is copied, key,
//! payload and headers intact, to its topic's dead-letter topic with headers
//! naming the error class, the error, the attempts it had, the consumer group
//! and where it came from. The offset moves on only after the dead-letter
//! topic has acknowledged the copy.

use std::time::Duration;

use chorus_avro::headers::{
    ATTEMPTS, CONSUMER_GROUP, ERROR_CLASS, ERROR_MESSAGE, ORIGINAL_OFFSET, ORIGINAL_PARTITION,
    ORIGINAL_TOPIC,
};
use rdkafka::message::{Header, Headers, Message, OwnedHeaders, OwnedMessage};
use rdkafka::producer::{FutureProducer, FutureRecord};

/// Why and after how many attempts a message is dead-lettered.
pub struct DeadLetter<'a> {
    pub class: &'a str,
    pub error: &'a str,
    pub attempts: u32,
    pub consumer_group: &'a str,
}

/// Sends the copy and waits for its acknowledgement.
pub async fn dead_letter(
    producer: &FutureProducer,
    dead_letter_topic: &str,
    message: &OwnedMessage,
    why: &DeadLetter<'_>,
) -> Result<(), rdkafka::error::KafkaError> {
    let partition = message.partition().to_string();
    let offset = message.offset().to_string();
    let attempts = why.attempts.to_string();
    // Header values are text; an error message is cut to a size any broker takes.
    let error: String = why.error.chars().take(2000).collect();
    let mut headers = OwnedHeaders::new();
    if let Some(original) = message.headers() {
        for header in original.iter() {
            headers = headers.insert(Header {
                key: header.key,
                value: header.value,
            });
        }
    }
    for (key, value) in [
        (ERROR_CLASS, why.class),
        (ERROR_MESSAGE, error.as_str()),
        (ATTEMPTS, attempts.as_str()),
        (CONSUMER_GROUP, why.consumer_group),
        (ORIGINAL_TOPIC, message.topic()),
        (ORIGINAL_PARTITION, partition.as_str()),
        (ORIGINAL_OFFSET, offset.as_str()),
    ] {
        headers = headers.insert(Header {
            key,
            value: Some(value),
        });
    }
    let mut record = FutureRecord::<[u8], [u8]>::to(dead_letter_topic).headers(headers);
    if let Some(key) = message.key() {
        record = record.key(key);
    }
    if let Some(payload) = message.payload() {
        record = record.payload(payload);
    }
    producer
        .send(record, Duration::from_secs(30))
        .await
        .map(drop)
        .map_err(|(e, _)| e)
}
