//! `chorus dlq list|show|redrive`: what is in a dead-letter topic, one dead
//! letter in full, and republishing dead letters to where they came from.
//! Reading never changes anything; only `redrive` without `--dry-run` sends.

mod letter;
mod redrive;

use anyhow::bail;
use chorus_avro::Codec;
use rdkafka::message::{Message, OwnedMessage};
use serde_json::json;

use crate::args::{DlqListArgs, DlqShowArgs, Global, Position};
use crate::render::message_json;
use crate::topic_reader::{Step, Stretch, TopicReader};
pub use letter::DeadLetter;
pub use redrive::redrive;

/// The full name of a dead-letter topic given as `orders.dlq` or in full.
fn dead_letter_topic(global: &Global, name: &str) -> anyhow::Result<String> {
    let topic = global.catalogue().full_name(name);
    if !topic.ends_with(".dlq") {
        bail!(
            "{topic} is not a dead-letter topic: dead-letter topics end in .dlq, e.g. orders.dlq"
        );
    }
    Ok(topic)
}

/// Every message the topic holds now, by partition and offset.
pub async fn read_all(reader: &TopicReader, topic: &str) -> anyhow::Result<Vec<OwnedMessage>> {
    let mut stretches = Vec::new();
    for partition in reader.partitions(topic).await? {
        stretches.push(reader.whole(topic, partition)?);
    }
    reader.read(&stretches, |_| Step::Keep).await
}

/// The messages at `positions`; an error naming the first that is not there.
async fn read_at(
    reader: &TopicReader,
    topic: &str,
    positions: &[Position],
) -> anyhow::Result<Vec<OwnedMessage>> {
    let partitions = reader.partitions(topic).await?;
    let mut stretches = Vec::new();
    for position in positions {
        if !partitions.contains(&position.partition) {
            bail!(
                "{topic} has no partition {} (it has {partitions:?})",
                position.partition
            );
        }
        let (low, high) = reader.watermarks(topic, position.partition)?;
        if !(low..high).contains(&position.offset) {
            bail!(
                "{topic} holds no message at {position}: partition {} holds offsets {low} to {}",
                position.partition,
                high - 1
            );
        }
        stretches.push(Stretch {
            topic: topic.to_string(),
            partition: position.partition,
            start: position.offset,
            end: position.offset + 1,
        });
    }
    stretches.sort_by_key(|s| (s.partition, s.start));
    stretches.dedup();
    let messages = reader.read(&stretches, |_| Step::Keep).await?;
    for position in positions {
        let found = messages
            .iter()
            .any(|m| (m.partition(), m.offset()) == (position.partition, position.offset));
        if !found {
            bail!("{topic} holds no message at {position} (compacted or deleted)");
        }
    }
    Ok(messages)
}

pub async fn list(global: &Global, args: &DlqListArgs) -> anyhow::Result<()> {
    let topic = dead_letter_topic(global, &args.topic)?;
    let reader = TopicReader::new(&global.kafka()?, global.timeout())?;
    let letters: Vec<DeadLetter> = read_all(&reader, &topic)
        .await?
        .iter()
        .map(DeadLetter::of)
        .collect();
    if args.json {
        let messages: Vec<_> = letters.iter().map(DeadLetter::to_json).collect();
        let document = json!({"topic": topic, "count": letters.len(), "messages": messages});
        println!("{}", serde_json::to_string_pretty(&document)?);
        return Ok(());
    }
    println!("{} dead letters in {topic}", letters.len());
    for letter in &letters {
        println!("{}", letter.line());
    }
    Ok(())
}

pub async fn show(global: &Global, args: &DlqShowArgs) -> anyhow::Result<()> {
    let topic = dead_letter_topic(global, &args.topic)?;
    let reader = TopicReader::new(&global.kafka()?, global.timeout())?;
    let messages = read_at(&reader, &topic, &[args.at]).await?;
    let message = &messages[0];
    let codec = Codec::new(&global.codec_config(false)?, global.catalogue())?;
    let mut shown = message_json(&codec, message).await;
    shown["dead_letter"] = DeadLetter::of(message).to_json();
    println!("{}", serde_json::to_string_pretty(&shown)?);
    Ok(())
}
