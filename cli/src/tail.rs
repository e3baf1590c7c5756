//! `chorus tail`: a topic's messages decoded, one JSON line each. A message
//! that does not decode is printed with its error and raw bytes, never
//! skipped and never fatal.

use std::collections::HashMap;
use std::time::Duration;

use anyhow::{Context, bail};
use chorus_avro::{Codec, event_to_json};
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::{BorrowedMessage, Headers, Message};
use rdkafka::{Offset, TopicPartitionList};
use serde_json::{Value, json};

use crate::args::{Global, TailArgs};

pub async fn tail(global: &Global, args: &TailArgs) -> anyhow::Result<()> {
    let catalogue = global.catalogue();
    let topic = catalogue.full_name(&args.topic);
    let kafka = global.kafka()?;
    let partitions = kafka.topic_partitions(&topic, global.timeout()).await?;
    if partitions.is_empty() {
        bail!("topic {topic} does not exist at {}", kafka.brokers);
    }

    let consumer: StreamConsumer = kafka
        .client_config()
        .set("group.id", format!("chorus-tail-{}", uuid::Uuid::new_v4()))
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .create()?;
    // Where each partition ends now: without --follow we stop there.
    let mut remaining: HashMap<i32, i64> = HashMap::new();
    let mut assignment = TopicPartitionList::new();
    for &partition in &partitions {
        let (low, high) = consumer
            .fetch_watermarks(&topic, partition, global.timeout())
            .with_context(|| format!("reading offsets of {topic}/{partition}"))?;
        let start = if args.from_beginning {
            low
        } else {
            (high - args.lines).max(low)
        };
        assignment.add_partition_offset(&topic, partition, Offset::Offset(start))?;
        if high > start {
            remaining.insert(partition, high);
        }
    }
    consumer.assign(&assignment)?;

    let codec = Codec::new(&global.codec_config(false)?, catalogue)?;
    while args.follow || !remaining.is_empty() {
        let message = match tokio::time::timeout(Duration::from_secs(1), consumer.recv()).await {
            Err(_) => continue,
            Ok(message) => message.with_context(|| format!("reading {topic}"))?,
        };
        let partition = message.partition();
        if remaining
            .get(&partition)
            .is_some_and(|&end| message.offset() + 1 >= end)
        {
            remaining.remove(&partition);
        }
        if args
            .order
            .as_deref()
            .is_some_and(|order| message.key() != Some(order.as_bytes()))
        {
            continue;
        }
        println!("{}", render(&codec, &message).await);
    }
    Ok(())
}

async fn render(codec: &Codec, message: &BorrowedMessage<'_>) -> Value {
    let mut line = json!({
        "topic": message.topic(),
        "partition": message.partition(),
        "offset": message.offset(),
        "timestamp": message.timestamp().to_millis(),
        "key": message.key().map(String::from_utf8_lossy),
        "headers": headers(message),
    });
    match codec.decode(message.payload()).await {
        Ok(event) => {
            line["type"] = json!(event.event_type().name());
            line["event"] = event_to_json(&event);
        }
        Err(e) => {
            line["undecodable"] = json!({ "class": e.class(), "error": e.to_string() });
            line["raw_hex"] = json!(message.payload().map(hex).unwrap_or_default());
        }
    }
    line
}

fn headers(message: &BorrowedMessage<'_>) -> Value {
    let mut map = serde_json::Map::new();
    if let Some(headers) = message.headers() {
        for header in headers.iter() {
            let value = header
                .value
                .map(String::from_utf8_lossy)
                .unwrap_or_default();
            map.insert(header.key.to_string(), Value::String(value.into_owned()));
        }
    }
    Value::Object(map)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
