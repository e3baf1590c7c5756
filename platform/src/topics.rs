//! Creates the catalogue's topics and dead-letter topics. Creating a topic
//! that already exists is success, so this is safe to run at every start.
//! New topics fit the cluster ([`TopicSpec::fitted`]): replication factor
//! min(3, brokers), and `min.insync.replicas=2` once it is 3 or more, so
//! with `acks=all` a message Kafka acknowledged is on two brokers at least.

use std::time::{Duration, Instant};

use chorus_avro::TopicCatalogue;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::types::RDKafkaErrorCode;

use crate::kafka::{KafkaSettings, KafkaUnreachable};

/// The topic config that says how many replicas must have a message before
/// an `acks=all` produce succeeds.
pub const MIN_INSYNC_REPLICAS: &str = "min.insync.replicas";

/// What happened to one topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TopicCreation {
    Created(String),
    AlreadyExisted(String),
}

/// How topics are created: replication factor and `min.insync.replicas`
/// (`None`: the broker's default).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TopicSpec {
    pub replication_factor: i32,
    pub min_insync_replicas: Option<i32>,
}

impl TopicSpec {
    /// What fits a cluster of `brokers` brokers: replication factor
    /// min(3, brokers) and `min.insync.replicas=2` when that is 3 or more,
    /// each unless given.
    pub fn fitted(
        brokers: usize,
        replication_factor: Option<i32>,
        min_insync_replicas: Option<i32>,
    ) -> TopicSpec {
        let fitted = i32::try_from(brokers.clamp(1, 3)).unwrap_or(3);
        let replication_factor = replication_factor.unwrap_or(fitted);
        TopicSpec {
            replication_factor,
            min_insync_replicas: min_insync_replicas.or((replication_factor >= 3).then_some(2)),
        }
    }

    /// As [`TopicSpec::fitted`], counting the brokers in the cluster's metadata.
    pub async fn for_cluster(
        kafka: &KafkaSettings,
        replication_factor: Option<i32>,
        min_insync_replicas: Option<i32>,
        timeout: Duration,
    ) -> Result<TopicSpec, KafkaUnreachable> {
        let brokers = kafka.fetch_metadata(None, timeout).await?.brokers().len();
        Ok(TopicSpec::fitted(
            brokers,
            replication_factor,
            min_insync_replicas,
        ))
    }
}

/// Creates every topic of the catalogue that is missing, with
/// `replication_factor` and the broker's default `min.insync.replicas`.
pub async fn ensure_topics(
    kafka: &KafkaSettings,
    catalogue: &TopicCatalogue,
    replication_factor: i32,
    timeout: Duration,
) -> Result<Vec<TopicCreation>, KafkaUnreachable> {
    let spec = TopicSpec {
        replication_factor,
        min_insync_replicas: None,
    };
    ensure_topics_with(kafka, catalogue, spec, timeout).await
}

/// Creates every topic of the catalogue that is missing, as `spec` says.
pub async fn ensure_topics_with(
    kafka: &KafkaSettings,
    catalogue: &TopicCatalogue,
    spec: TopicSpec,
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
    let min_insync = spec.min_insync_replicas.map(|n| n.to_string());
    let new_topics: Vec<NewTopic> = names
        .iter()
        .map(|name| {
            let topic = NewTopic::new(
                name,
                catalogue.partitions(),
                TopicReplication::Fixed(spec.replication_factor),
            );
            match &min_insync {
                Some(n) => topic.set(MIN_INSYNC_REPLICAS, n),
                None => topic,
            }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics_fit_the_cluster_unless_told_otherwise() {
        let fitted = |brokers, rf, isr| TopicSpec::fitted(brokers, rf, isr);
        let spec = |replication_factor, min_insync_replicas| TopicSpec {
            replication_factor,
            min_insync_replicas,
        };
        assert_eq!(fitted(1, None, None), spec(1, None));
        assert_eq!(fitted(2, None, None), spec(2, None));
        assert_eq!(fitted(3, None, None), spec(3, Some(2)));
        assert_eq!(fitted(5, None, None), spec(3, Some(2)));
        assert_eq!(fitted(5, Some(1), None), spec(1, None));
        assert_eq!(fitted(1, Some(3), None), spec(3, Some(2)));
        assert_eq!(fitted(3, None, Some(3)), spec(3, Some(3)));
        assert_eq!(fitted(1, None, Some(1)), spec(1, Some(1)));
    }
}
