//! Creates the catalogue's topics and dead-letter topics. Creating a topic
//! that already exists is success, so this is safe to run at every start.

use std::time::{Duration, Instant};

use chorus_avro::TopicCatalogue;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::types::RDKafkaErrorCode;

use crate::kafka::{KafkaSettings, KafkaUnreachable};

/// What happened to one topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TopicCreation {
    Created(String),
    AlreadyExisted(String),
}

/// Creates every topic of the catalogue that is missing.
pub async fn ensure_topics(
    kafka: &KafkaSettings,
    catalogue: &TopicCatalogue,
    replication_factor: i32,
    timeout: Duration,
) -> Result<Vec<TopicCreation>, KafkaUnreachable> {
    // Fail fast, naming the address, when no broker answers at all.
    kafka.fetch_metadata(None, timeout).await?;
    let fail = |cause: String| KafkaUnreachable {
        brokers: kafka.brokers.clone(),
        cause,
    };
    let admin: AdminClient<DefaultClientContext> = kafka
        .client_config()
        .create()
        .map_err(|e| fail(e.to_string()))?;
    let names = catalogue.all_names();
    let new_topics: Vec<NewTopic> = names
        .iter()
        .map(|name| {
            NewTopic::new(
                name,
                catalogue.partitions(),
                TopicReplication::Fixed(replication_factor),
            )
        })
        .collect();
    let options = AdminOptions::new()
        .request_timeout(Some(timeout))
        .operation_timeout(Some(timeout));
    let results = admin
        .create_topics(&new_topics, &options)
        .await
        .map_err(|e| fail(e.to_string()))?;
    let outcome = results
        .into_iter()
        .map(|result| match result {
            Ok(name) => Ok(TopicCreation::Created(name)),
            Err((name, RDKafkaErrorCode::TopicAlreadyExists)) => {
                Ok(TopicCreation::AlreadyExisted(name))
            }
            Err((name, code)) => Err(fail(format!("creating topic {name}: {code}"))),
        })
        .collect::<Result<Vec<_>, _>>()?;
    wait_for_leaders(kafka, &names, timeout).await?;
    Ok(outcome)
}

/// New topics are usable once every partition answers an offset request
/// (metadata can name a leader a moment before the leader serves it).
async fn wait_for_leaders(
    kafka: &KafkaSettings,
    names: &[String],
    timeout: Duration,
) -> Result<(), KafkaUnreachable> {
    let mut partitions: Vec<(String, i32)> = Vec::new();
    for name in names {
        let ids = kafka.topic_partitions(name, timeout).await?;
        if ids.is_empty() {
            return Err(KafkaUnreachable {
                brokers: kafka.brokers.clone(),
                cause: format!("topic {name} was created but does not appear in the metadata"),
            });
        }
        partitions.extend(ids.into_iter().map(|id| (name.clone(), id)));
    }
    let kafka = kafka.clone();
    tokio::task::spawn_blocking(move || {
        let fail = |cause: String| KafkaUnreachable {
            brokers: kafka.brokers.clone(),
            cause,
        };
        let consumer: BaseConsumer = kafka
            .client_config()
            .create()
            .map_err(|e| fail(e.to_string()))?;
        let deadline = Instant::now() + timeout;
        for (topic, partition) in partitions {
            while let Err(e) = consumer.fetch_watermarks(&topic, partition, timeout) {
                if Instant::now() >= deadline {
                    return Err(fail(format!("{topic}/{partition} has no leader yet: {e}")));
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        Ok(())
    })
    .await
    .expect("leader wait does not panic")
}
