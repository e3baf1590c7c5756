//! `chorus example` and `chorus produce`: one event from JSON onto its topic.

use std::io::Read;

use anyhow::{Context, bail};
use chorus_avro::{Codec, Event, event_from_json, event_to_json};
use chorus_platform::Env;
use chorus_platform::payment_token::{self, PaymentTokenKeys};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::FutureRecord;

use crate::args::{ExampleArgs, Global, ProduceArgs};

pub fn example(args: &ExampleArgs) -> anyhow::Result<()> {
    let event = args.event_type.example(&args.order);
    println!("{}", serde_json::to_string_pretty(&event_to_json(&event))?);
    Ok(())
}

/// A plain payment token is sealed with `CHORUS_PAYMENT_TOKEN_KEY` when one
/// is set, as the gateway seals it: a token never goes onto Kafka readable
/// where the services expect it sealed.
fn seal_payment_token(event: &mut Event) -> anyhow::Result<()> {
    let env = Env::process();
    if env.optional(payment_token::KEY_VARIABLE).is_none() {
        return Ok(());
    }
    let Some(keys) = PaymentTokenKeys::from_env(&env)? else {
        return Ok(());
    };
    let (order_id, token, key_id) = match event {
        Event::OrderPlaced(e) => (
            &e.order_id,
            &mut e.payment_token,
            &mut e.payment_token_key_id,
        ),
        Event::StockReserved(e) => (
            &e.order_id,
            &mut e.payment_token,
            &mut e.payment_token_key_id,
        ),
        _ => return Ok(()),
    };
    if key_id.is_none() {
        let sealed = keys.seal(order_id, token);
        *token = sealed.ciphertext;
        *key_id = Some(sealed.key_id);
    }
    Ok(())
}

pub async fn produce(global: &Global, args: &ProduceArgs) -> anyhow::Result<()> {
    let text = match (&args.json, &args.file) {
        (Some(json), _) => json.clone(),
        (None, Some(path)) if path.as_os_str() == "-" => {
            let mut text = String::new();
            std::io::stdin().read_to_string(&mut text)?;
            text
        }
        (None, Some(path)) => {
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?
        }
        (None, None) => bail!("give the event with --json or --file"),
    };
    let mut event = event_from_json(args.event_type, &text)
        .with_context(|| format!("invalid {}", args.event_type))?;
    seal_payment_token(&mut event)?;

    let catalogue = global.catalogue();
    let topic = catalogue.topic_of(args.event_type);
    let kafka = global.kafka()?;
    if kafka
        .topic_partitions(&topic, global.timeout())
        .await?
        .is_empty()
    {
        bail!(
            "topic {topic} does not exist at {}; run `chorus topics create`",
            kafka.brokers
        );
    }

    let codec = Codec::new(&global.codec_config(args.auto_register)?, catalogue)?;
    let payload = codec
        .encode(&event)
        .await
        .with_context(|| format!("encoding with the schema registry at {}", global.registry))?;
    let producer = kafka.producer(global.timeout(), std::time::Duration::ZERO)?;
    let headers = OwnedHeaders::new()
        .insert(Header {
            key: "chorus-event-type",
            value: Some(args.event_type.name()),
        })
        .insert(Header {
            key: "chorus-event-id",
            value: Some(event.event_id()),
        });
    let record = FutureRecord::to(&topic)
        .key(event.key())
        .payload(&payload)
        .headers(headers);
    let delivery = producer
        .send(record, global.timeout())
        .await
        .map_err(|(e, _)| e)
        .with_context(|| format!("producing to {topic} at {}", kafka.brokers))?;
    let line = serde_json::json!({
        "topic": topic,
        "partition": delivery.partition,
        "offset": delivery.offset,
        "key": event.key(),
        "event_id": event.event_id(),
    });
    println!("{line}");
    Ok(())
}
