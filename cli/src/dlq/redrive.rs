//! `chorus dlq redrive`: republishes dead letters, original key, value and
//! the event's own headers, to the topic they were dead-lettered from, with
//! `chorus-redriven-from` added. The event keeps its id, so a second redrive
//! of the same dead letter is a duplicate the consumer's inbox drops.

use std::collections::BTreeSet;

use anyhow::{Context, bail};
use chorus_avro::headers;
use rdkafka::message::{Message, OwnedMessage};
use rdkafka::producer::FutureRecord;
use serde_json::{Value, json};

use super::letter::{DeadLetter, redrive_headers};
use super::{dead_letter_topic, read_all, read_at};
use crate::args::{DlqRedriveArgs, Global};
use crate::render::header;
use crate::topic_reader::TopicReader;

/// One dead letter and where it goes.
struct Planned {
    message: OwnedMessage,
    from: String,
    target: String,
}

pub async fn redrive(global: &Global, args: &DlqRedriveArgs) -> anyhow::Result<()> {
    let topic = dead_letter_topic(global, &args.topic)?;
    let kafka = global.kafka()?;
    let reader = TopicReader::new(&kafka, global.timeout())?;
    let messages = if args.all {
        read_all(&reader, &topic).await?
    } else {
        read_at(&reader, &topic, &args.at).await?
    };
    let plan = plan(&topic, messages)?;
    // Every target must exist before anything is sent: all or nothing.
    let mut checked = BTreeSet::new();
    for planned in &plan {
        if checked.insert(planned.target.clone()) {
            reader.partitions(&planned.target).await.with_context(|| {
                format!("{} names {} as its origin", planned.from, planned.target)
            })?;
        }
    }

    if args.dry_run {
        for planned in &plan {
            let mut line = describe(planned);
            line["dry_run"] = json!(true);
            println!("{line}");
        }
        eprintln!(
            "would redrive {} dead letters from {topic} (nothing sent)",
            plan.len()
        );
        return Ok(());
    }

    let producer = kafka.producer(global.timeout(), std::time::Duration::ZERO)?;
    let sends = plan.iter().map(|planned| {
        let mut record = FutureRecord::<[u8], [u8]>::to(&planned.target)
            .headers(redrive_headers(&planned.message, &planned.from));
        if let Some(key) = planned.message.key() {
            record = record.key(key);
        }
        if let Some(payload) = planned.message.payload() {
            record = record.payload(payload);
        }
        producer.send(record, global.timeout())
    });
    let deliveries = futures::future::join_all(sends).await;
    let mut sent = 0;
    for (planned, delivery) in plan.iter().zip(deliveries) {
        let delivery = delivery.map_err(|(e, _)| e).with_context(|| {
            format!(
                "redriving {} to {} at {} ({sent} sent before it)",
                planned.from, planned.target, kafka.brokers
            )
        })?;
        let mut line = describe(planned);
        line["partition"] = json!(delivery.partition);
        line["offset"] = json!(delivery.offset);
        println!("{line}");
        sent += 1;
    }
    eprintln!("redrove {sent} dead letters from {topic}");
    Ok(())
}

/// Where each dead letter goes; an error for one whose origin is unknown.
fn plan(topic: &str, messages: Vec<OwnedMessage>) -> anyhow::Result<Vec<Planned>> {
    messages
        .into_iter()
        .map(|message| {
            let letter = DeadLetter::of(&message);
            let from = format!("{topic}/{}", letter.position());
            let Some(target) = letter.redrive_target(topic) else {
                bail!("{from} does not say which topic it came from");
            };
            Ok(Planned {
                message,
                from,
                target,
            })
        })
        .collect()
}

/// What a redrive line reports before the delivery is known.
fn describe(planned: &Planned) -> Value {
    json!({
        "from": planned.from,
        "to": planned.target,
        "key": crate::render::key_text(&planned.message),
        "event_type": header(&planned.message, headers::EVENT_TYPE),
        "event_id": header(&planned.message, headers::EVENT_ID),
    })
}
