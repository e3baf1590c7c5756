//! `chorus tail`: a topic's messages decoded, one JSON line each. A message
//! that does not decode is printed with its error and raw bytes, never
//! skipped and never fatal. Payment tokens never show.

use std::collections::HashMap;
use std::time::Duration;

use anyhow::{Context, bail};
use chorus_avro::Codec;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};

use crate::args::{Global, TailArgs};
use crate::render::message_json;

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
        println!("{}", message_json(&codec, &message).await);
    }
    Ok(())
}
