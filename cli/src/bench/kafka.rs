//! `chorus bench kafka`: the Kafka ceiling on this machine. On a throwaway
//! topic, an idempotent `acks=all` producer (the services' own settings,
//! from `chorus_platform::KafkaSettings::producer`) sends messages the size of an
//! encoded OrderPlaced; then a consumer reads them all; then both run at once
//! and every message is produced and consumed. The combined rate is the
//! ceiling `make bench` compares the sagas with. The topic is deleted after.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use chorus_avro::{Codec, Event, EventType, OrderLine, OrderPlaced};
use chorus_platform::KafkaSettings;
use futures::StreamExt;
use futures::stream::FuturesUnordered;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Offset, TopicPartitionList};
use serde::Serialize;

use crate::args::{BenchKafkaArgs, Global};
use crate::load::{stats, write_json};

/// Distinct messages cycled through (distinct keys and ids, as real events have).
const DISTINCT: usize = 1024;

#[derive(Debug, Serialize)]
pub struct KafkaReport {
    pub messages: u64,
    pub partitions: i32,
    pub message_bytes: usize,
    pub produce_per_sec: f64,
    pub consume_per_sec: f64,
    /// Messages produced and consumed per second with both running at once: the ceiling.
    pub produce_consume_per_sec: f64,
}

/// Encoded OrderPlaced events of a two-line order, like the gateway publishes.
async fn sample_messages(global: &Global) -> anyhow::Result<Vec<(String, Vec<u8>)>> {
    let codec = Codec::new(&global.codec_config(false)?, global.catalogue())?;
    let mut messages = Vec::with_capacity(DISTINCT);
    for _ in 0..DISTINCT {
        let order_id = uuid::Uuid::new_v4().to_string();
        let event = Event::from(OrderPlaced {
            event_id: uuid::Uuid::new_v4().to_string(),
            order_id: order_id.clone(),
            occurred_at: chrono::Utc::now().timestamp_millis(),
            correlation_id: order_id.clone(),
            causation_id: None,
            customer_id: "load-customer-00042".into(),
            items: vec![
                OrderLine {
                    sku: "LOAD-0001".into(),
                    quantity: 1,
                },
                OrderLine {
                    sku: "LOAD-0002".into(),
                    quantity: 1,
                },
            ],
            currency: "EUR".into(),
            payment_token: "tok_ok".into(),
            payment_token_key_id: None,
        });
        let bytes = codec.encode(&event).await.with_context(|| {
            format!(
                "encoding a sample {} (is the schema registered? run `chorus schemas register`)",
                EventType::OrderPlaced.name()
            )
        })?;
        messages.push((order_id, bytes));
    }
    Ok(messages)
}

fn admin(kafka: &KafkaSettings) -> anyhow::Result<AdminClient<DefaultClientContext>> {
    Ok(kafka.client_config().create()?)
}

async fn create_topic(global: &Global, topic: &str, partitions: i32) -> anyhow::Result<()> {
    let options = AdminOptions::new().operation_timeout(Some(global.timeout()));
    let kafka = global.kafka()?;
    let results = admin(&kafka)?
        .create_topics(
            &[NewTopic::new(topic, partitions, TopicReplication::Fixed(1))],
            &options,
        )
        .await
        .with_context(|| format!("Kafka at {} is unreachable", kafka.brokers))?;
    for result in results {
        result.map_err(|(name, code)| anyhow::anyhow!("creating topic {name}: {code}"))?;
    }
    // Usable once every partition answers an offset request.
    let (topic, timeout) = (topic.to_string(), global.timeout());
    tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
        let consumer: BaseConsumer = kafka.client_config().create()?;
        let deadline = Instant::now() + timeout;
        for partition in 0..partitions {
            while let Err(e) = consumer.fetch_watermarks(&topic, partition, timeout) {
                if Instant::now() > deadline {
                    bail!("topic {topic} partition {partition} has no leader: {e}");
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        Ok(())
    })
    .await?
}

async fn delete_topic(global: &Global, topic: &str) -> anyhow::Result<()> {
    let options = AdminOptions::new().operation_timeout(Some(global.timeout()));
    for result in admin(&global.kafka()?)?
        .delete_topics(&[topic], &options)
        .await?
    {
        result.map_err(|(name, code)| anyhow::anyhow!("deleting topic {name}: {code}"))?;
    }
    Ok(())
}

/// Produces `count` messages and waits for every acknowledgement.
async fn produce(
    producer: &FutureProducer,
    topic: &str,
    messages: &[(String, Vec<u8>)],
    count: u64,
) -> anyhow::Result<()> {
    let check = |delivered: Result<rdkafka::producer::future_producer::OwnedDeliveryResult, _>| {
        match delivered {
            Ok(Ok(_)) => Ok(()),
            Ok(Err((e, _))) => Err(anyhow::anyhow!("a delivery failed: {e}")),
            Err(_) => Err(anyhow::anyhow!("a delivery was cancelled")),
        }
    };
    let mut in_flight = FuturesUnordered::new();
    for i in 0..count as usize {
        let (key, payload) = &messages[i % messages.len()];
        loop {
            match producer.send_result(FutureRecord::to(topic).key(key).payload(payload)) {
                Ok(delivery) => {
                    in_flight.push(delivery);
                    break;
                }
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                    match in_flight.next().await {
                        Some(delivered) => check(delivered)?,
                        None => tokio::time::sleep(Duration::from_millis(1)).await,
                    }
                }
                Err((e, _)) => bail!("producing to {topic}: {e}"),
            }
        }
    }
    while let Some(delivered) = in_flight.next().await {
        check(delivered)?;
    }
    Ok(())
}

/// Reads `count` messages from `start` (per partition) on a blocking thread;
/// returns the time from the first poll to the last message.
fn consume(
    kafka: &KafkaSettings,
    topic: &str,
    start: &[(i32, i64)],
    count: u64,
    ready: Option<Arc<AtomicBool>>,
    limit: Duration,
) -> anyhow::Result<Duration> {
    let consumer: BaseConsumer = kafka
        .client_config()
        .set("group.id", format!("chorus-bench-{}", uuid::Uuid::new_v4()))
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "false")
        .create()?;
    let mut assignment = TopicPartitionList::new();
    for &(partition, offset) in start {
        assignment.add_partition_offset(topic, partition, Offset::Offset(offset))?;
    }
    consumer.assign(&assignment)?;
    if let Some(ready) = ready {
        ready.store(true, Ordering::Release);
    }
    let began = Instant::now();
    let mut seen = 0u64;
    let mut bytes = 0usize;
    while seen < count {
        if began.elapsed() > limit {
            bail!("consumed only {seen} of {count} messages within {limit:?}");
        }
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(message)) => {
                bytes += message.payload().map_or(0, <[u8]>::len);
                seen += 1;
            }
            Some(Err(e)) => bail!("consuming {topic}: {e}"),
            None => {}
        }
    }
    std::hint::black_box(bytes);
    Ok(began.elapsed())
}

async fn high_watermarks(
    global: &Global,
    topic: &str,
    partitions: i32,
) -> anyhow::Result<Vec<(i32, i64)>> {
    let (kafka, topic, timeout) = (global.kafka()?, topic.to_string(), global.timeout());
    tokio::task::spawn_blocking(move || -> anyhow::Result<Vec<(i32, i64)>> {
        let consumer: BaseConsumer = kafka.client_config().create()?;
        (0..partitions)
            .map(|p| Ok((p, consumer.fetch_watermarks(&topic, p, timeout)?.1)))
            .collect()
    })
    .await?
}

async fn measure(
    global: &Global,
    args: &BenchKafkaArgs,
    topic: &str,
    messages: &[(String, Vec<u8>)],
) -> anyhow::Result<KafkaReport> {
    let n = args.messages;
    let limit = Duration::from_secs(600);
    let kafka = global.kafka()?;
    let producer = kafka.producer(Duration::from_secs(60), Duration::from_millis(2))?;

    // Connections, producer id and metadata first, outside the measurement.
    produce(&producer, topic, messages, (n / 10).clamp(1, 10_000)).await?;
    let from_start = high_watermarks(global, topic, args.topic_partitions).await?;

    eprintln!("producing {n} messages of {} bytes", messages[0].1.len());
    let began = Instant::now();
    produce(&producer, topic, messages, n).await?;
    let produce_time = began.elapsed();

    eprintln!("consuming them");
    let (consumer_kafka, name) = (kafka.clone(), topic.to_string());
    let consume_time = tokio::task::spawn_blocking(move || {
        consume(&consumer_kafka, &name, &from_start, n, None, limit)
    })
    .await??;

    eprintln!("producing and consuming {n} more at once");
    let from_end = high_watermarks(global, topic, args.topic_partitions).await?;
    let ready = Arc::new(AtomicBool::new(false));
    let (name, flag) = (topic.to_string(), ready.clone());
    let began = Instant::now();
    let consumer = tokio::task::spawn_blocking(move || {
        consume(&kafka, &name, &from_end, n, Some(flag), limit)
    });
    while !ready.load(Ordering::Acquire) && !consumer.is_finished() {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let produced = produce(&producer, topic, messages, n).await;
    let consumed = consumer.await?;
    produced?;
    consumed?;
    let combined_time = began.elapsed();

    Ok(KafkaReport {
        messages: n,
        partitions: args.topic_partitions,
        message_bytes: messages[0].1.len(),
        produce_per_sec: stats::per_second(n, produce_time),
        consume_per_sec: stats::per_second(n, consume_time),
        produce_consume_per_sec: stats::per_second(n, combined_time),
    })
}

pub async fn run(global: &Global, args: &BenchKafkaArgs) -> anyhow::Result<()> {
    let messages = sample_messages(global).await?;
    let topic = format!(
        "{}.bench.{}",
        global.namespace,
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    );
    create_topic(global, &topic, args.topic_partitions).await?;
    let measured = measure(global, args, &topic, &messages).await;
    let deleted = delete_topic(global, &topic).await;
    let report = measured?;
    deleted?;
    println!(
        "Kafka ceiling: {} messages of {} bytes, {} partitions, idempotent acks=all producer\n  \
         produce            {:>10.0} messages/s\n  \
         consume            {:>10.0} messages/s\n  \
         produce + consume  {:>10.0} messages/s  (the ceiling)",
        report.messages,
        report.message_bytes,
        report.partitions,
        report.produce_per_sec,
        report.consume_per_sec,
        report.produce_consume_per_sec
    );
    if let Some(out) = &args.out {
        write_json(out, &report)?;
    }
    Ok(())
}
