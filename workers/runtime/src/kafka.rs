//! Kafka client settings in one place. Producers are idempotent with
//! `acks=all`, so a retried send never duplicates or reorders a message
//! within a partition.

use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::metadata::Metadata;
use rdkafka::producer::FutureProducer;

/// Kafka could not be reached or refused the request.
#[derive(Debug, thiserror::Error)]
#[error("Kafka at {brokers} is unreachable: {cause}")]
pub struct KafkaUnreachable {
    pub brokers: String,
    pub cause: String,
}

/// Settings every client shares.
pub fn client_config(brokers: &str) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", brokers)
        .set("socket.connection.setup.timeout.ms", "5000")
        // librdkafka logs every failed connection attempt; the caller reports
        // unreachability itself, once, naming the address.
        .set("log_level", "3");
    config
}

/// An idempotent producer (`acks=all`) whose deliveries time out after `delivery_timeout`.
pub fn producer(
    brokers: &str,
    delivery_timeout: Duration,
) -> Result<FutureProducer, KafkaUnreachable> {
    client_config(brokers)
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("linger.ms", "2")
        // Our events are a few hundred bytes: compressing them costs CPU on
        // both ends and the broker, and saves next to nothing.
        .set("compression.type", "none")
        .set(
            "message.timeout.ms",
            delivery_timeout.as_millis().to_string(),
        )
        .create()
        .map_err(|e| KafkaUnreachable {
            brokers: brokers.to_string(),
            cause: e.to_string(),
        })
}

/// Fetches cluster metadata (all topics, or one), failing within `timeout`
/// when no broker answers.
pub async fn fetch_metadata(
    brokers: &str,
    topic: Option<&str>,
    timeout: Duration,
) -> Result<Metadata, KafkaUnreachable> {
    let brokers = brokers.to_string();
    let topic = topic.map(str::to_string);
    tokio::task::spawn_blocking(move || {
        let unreachable = |cause: String| KafkaUnreachable {
            brokers: brokers.clone(),
            cause,
        };
        let consumer: BaseConsumer = client_config(&brokers)
            .create()
            .map_err(|e| unreachable(e.to_string()))?;
        consumer
            .fetch_metadata(topic.as_deref(), timeout)
            .map_err(|e| unreachable(e.to_string()))
    })
    .await
    .expect("metadata task does not panic")
}

/// The partition ids of `topic`. A topic created a moment ago may be missing
/// from a broker's metadata for a short while, so this asks again until
/// `timeout`; an empty list means the topic does not exist.
pub async fn topic_partitions(
    brokers: &str,
    topic: &str,
    timeout: Duration,
) -> Result<Vec<i32>, KafkaUnreachable> {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        let metadata = fetch_metadata(brokers, Some(topic), timeout).await?;
        let partitions: Vec<i32> = metadata
            .topics()
            .iter()
            .filter(|t| t.name() == topic && t.error().is_none())
            .flat_map(|t| t.partitions().iter().map(|p| p.id()))
            .collect();
        if !partitions.is_empty() || std::time::Instant::now() >= deadline {
            return Ok(partitions);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
