//! Dead-lettering: a message that can never be processed is copied, key,
//! payload and headers intact, to its topic's dead-letter topic with headers
//! naming the error class, the error and where it came from. The offset moves
//! on only after the dead-letter topic has the copy.

use std::time::Duration;

use rdkafka::message::{Header, Headers, Message, OwnedHeaders, OwnedMessage};
use rdkafka::producer::{FutureProducer, FutureRecord};

pub use chorus_avro::headers::{
    ERROR_CLASS, ERROR_MESSAGE, ORIGINAL_OFFSET, ORIGINAL_PARTITION, ORIGINAL_TOPIC,
};

pub async fn dead_letter(
    producer: &FutureProducer,
    dead_letter_topic: &str,
    message: &OwnedMessage,
    class: &str,
    error: &str,
) -> anyhow::Result<()> {
    let partition = message.partition().to_string();
    let offset = message.offset().to_string();
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
        (ERROR_CLASS, class),
        (ERROR_MESSAGE, error),
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
        .map_err(|(e, _)| anyhow::anyhow!("dead-lettering to {dead_letter_topic}: {e}"))?;
    Ok(())
}
