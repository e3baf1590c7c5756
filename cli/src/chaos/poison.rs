//! `chorus chaos poison`: sends poison messages spread over every worker
//! input topic and every kind in turn, and records where each landed
//! (topic, partition, offset), so `chaos check` can find out what became of it.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Context;
use chorus_avro::{Codec, Topic};
use chrono::{DateTime, Utc};
use rdkafka::producer::FutureRecord;
use serde::{Deserialize, Serialize};

use super::payloads::{PoisonKind, PoisonMaker};
use crate::args::{Global, PoisonArgs};
use crate::load::write_json;

/// The topics the workers consume.
pub const INPUT_TOPICS: [Topic; 4] = [
    Topic::Orders,
    Topic::Inventory,
    Topic::InventoryCommands,
    Topic::Payments,
];

/// One poison message as sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PoisonRecord {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub kind: PoisonKind,
    pub key: String,
    /// The event type the payload decodes to, for the kinds that decode.
    pub event_type: Option<String>,
    pub detail: String,
}

/// What `chaos poison` writes and `chaos check --poison` reads.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PoisonFile {
    pub namespace: String,
    pub sent_at: DateTime<Utc>,
    pub count: usize,
    pub messages: Vec<PoisonRecord>,
}

impl PoisonFile {
    pub fn read(path: &Path) -> anyhow::Result<PoisonFile> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        serde_json::from_str(&text).with_context(|| {
            format!(
                "{} is not what `chorus chaos poison` writes",
                path.display()
            )
        })
    }
}

/// The topic and kind of poison message `i`: every topic in turn, and over
/// each run of four messages the next kind, so any 32 in a row cover every
/// (topic, kind) pair.
pub fn slot(i: usize) -> (Topic, PoisonKind) {
    let topic = INPUT_TOPICS[i % INPUT_TOPICS.len()];
    let kind = PoisonKind::ALL[(i / INPUT_TOPICS.len()) % PoisonKind::ALL.len()];
    (topic, kind)
}

pub async fn poison(global: &Global, args: &PoisonArgs) -> anyhow::Result<()> {
    let catalogue = global.catalogue();
    let kafka = global.kafka()?;
    for topic in INPUT_TOPICS {
        let name = catalogue.name(topic);
        if kafka
            .topic_partitions(&name, global.timeout())
            .await?
            .is_empty()
        {
            anyhow::bail!(
                "topic {name} does not exist at {}; run `chorus topics create`",
                kafka.brokers
            );
        }
    }
    let codec = Codec::new(&global.codec_config(false)?, catalogue.clone())?;
    let mut maker = PoisonMaker::new(&codec);
    let producer = kafka.producer(global.timeout(), std::time::Duration::from_millis(5))?;
    let mut messages = Vec::with_capacity(args.count as usize);
    for i in 0..args.count as usize {
        let (topic, kind) = slot(i);
        let payload = maker.make(kind, topic).await?;
        let name = catalogue.name(topic);
        let delivery = producer
            .send(
                FutureRecord::to(&name)
                    .key(&payload.key)
                    .payload(&payload.bytes),
                global.timeout(),
            )
            .await
            .map_err(|(e, _)| e)
            .with_context(|| format!("producing poison to {name} at {}", kafka.brokers))?;
        messages.push(PoisonRecord {
            topic: name,
            partition: delivery.partition,
            offset: delivery.offset,
            kind,
            key: payload.key,
            event_type: payload.event_type.map(|t| t.name().to_string()),
            detail: payload.detail,
        });
    }
    let file = PoisonFile {
        namespace: catalogue.namespace().to_string(),
        sent_at: Utc::now(),
        count: messages.len(),
        messages,
    };
    match &args.out {
        Some(path) => {
            write_json(path, &file)?;
            print!("{}", summary(&file));
            println!("written to {}", path.display());
        }
        None => println!("{}", serde_json::to_string_pretty(&file)?),
    }
    Ok(())
}

/// Messages sent per topic and kind.
pub fn summary(file: &PoisonFile) -> String {
    let mut counts: BTreeMap<(&str, &str), usize> = BTreeMap::new();
    for m in &file.messages {
        *counts.entry((m.topic.as_str(), m.kind.name())).or_default() += 1;
    }
    let mut s = format!("sent {} poison messages\n", file.count);
    for ((topic, kind), n) in counts {
        s.push_str(&format!("  {topic:<32} {kind:<20} {n}\n"));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn thirty_two_in_a_row_cover_every_topic_and_kind() {
        for start in [0, 5, 31] {
            let covered: BTreeSet<_> = (start..start + 32).map(slot).collect();
            assert_eq!(covered.len(), INPUT_TOPICS.len() * PoisonKind::ALL.len());
        }
        let first: BTreeSet<_> = (0..4).map(|i| slot(i).0).collect();
        assert_eq!(first.len(), 4, "every topic from the first four on");
    }
}
