//! Compares the cluster's topics with the catalogue: each topic and
//! dead-letter topic must exist with the catalogue's partitions, the
//! replication factor `topics create` would choose, and its
//! `min.insync.replicas` (`chorus topics check`).

use std::time::Duration;

use chorus_avro::TopicCatalogue;
use rdkafka::admin::{AdminClient, AdminOptions, ResourceSpecifier};
use rdkafka::client::DefaultClientContext;

use crate::kafka::{KafkaSettings, KafkaUnreachable};
use crate::topics::{MIN_INSYNC_REPLICAS, TopicSpec};

/// What a topic is like on the cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicShape {
    pub partitions: i32,
    pub replication_factor: i32,
    pub min_insync_replicas: Option<i32>,
}

/// One topic's verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TopicCheck {
    Fits {
        name: String,
        shape: TopicShape,
    },
    Missing {
        name: String,
    },
    /// Each difference said as `partitions 3, expected 6`.
    Differs {
        name: String,
        differences: Vec<String>,
    },
}

impl TopicCheck {
    pub fn fits(&self) -> bool {
        matches!(self, TopicCheck::Fits { .. })
    }
}

impl std::fmt::Display for TopicCheck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TopicCheck::Fits { name, shape } => write!(
                f,
                "ok       {name}: partitions {}, replication factor {}, min.insync.replicas {}",
                shape.partitions,
                shape.replication_factor,
                shape
                    .min_insync_replicas
                    .map_or("unknown".to_string(), |n| n.to_string())
            ),
            TopicCheck::Missing { name } => write!(f, "missing  {name}"),
            TopicCheck::Differs { name, differences } => {
                write!(f, "differs  {name}: {}", differences.join("; "))
            }
        }
    }
}

/// Compares one topic's shape with what the catalogue and `spec` expect
/// (`min.insync.replicas` only when `spec` sets it).
pub fn compare(name: &str, shape: &TopicShape, partitions: i32, spec: TopicSpec) -> TopicCheck {
    let mut differences = Vec::new();
    if shape.partitions != partitions {
        differences.push(format!(
            "partitions {}, expected {partitions}",
            shape.partitions
        ));
    }
    if shape.replication_factor != spec.replication_factor {
        differences.push(format!(
            "replication factor {}, expected {}",
            shape.replication_factor, spec.replication_factor
        ));
    }
    if let Some(expected) = spec.min_insync_replicas
        && shape.min_insync_replicas != Some(expected)
    {
        let actual = shape
            .min_insync_replicas
            .map_or("unknown".to_string(), |n| n.to_string());
        differences.push(format!(
            "{MIN_INSYNC_REPLICAS} {actual}, expected {expected}"
        ));
    }
    if differences.is_empty() {
        TopicCheck::Fits {
            name: name.to_string(),
            shape: shape.clone(),
        }
    } else {
        TopicCheck::Differs {
            name: name.to_string(),
            differences,
        }
    }
}

/// Checks every topic of `catalogue` against `spec`.
pub async fn check_topics(
    kafka: &KafkaSettings,
    catalogue: &TopicCatalogue,
    spec: TopicSpec,
    timeout: Duration,
) -> Result<Vec<TopicCheck>, KafkaUnreachable> {
    let fail = |cause: String| KafkaUnreachable {
        brokers: kafka.brokers.clone(),
        cause,
    };
    let metadata = kafka.fetch_metadata(None, timeout).await?;
    let names = catalogue.all_names();
    let present: Vec<(String, i32, i32)> = names
        .iter()
        .filter_map(|name| {
            let topic = metadata
                .topics()
                .iter()
                .find(|t| t.name() == name && t.error().is_none())?;
            let partitions = topic.partitions();
            let replicas = partitions.iter().map(|p| p.replicas().len()).max()?;
            Some((name.clone(), partitions.len() as i32, replicas as i32))
        })
        .collect();
    let admin: AdminClient<DefaultClientContext> = kafka
        .client_config()
        .create()
        .map_err(|e| fail(e.to_string()))?;
    let resources: Vec<ResourceSpecifier<'_>> = present
        .iter()
        .map(|(name, _, _)| ResourceSpecifier::Topic(name))
        .collect();
    let options = AdminOptions::new().request_timeout(Some(timeout));
    let configs = if resources.is_empty() {
        Vec::new()
    } else {
        admin
            .describe_configs(&resources, &options)
            .await
            .map_err(|e| fail(format!("describing the topics' configs: {e}")))?
    };
    let min_insync_of = |name: &str| -> Option<i32> {
        configs
            .iter()
            .flatten()
            .find_map(|resource| match &resource.specifier {
                rdkafka::admin::OwnedResourceSpecifier::Topic(t) if t == name => resource
                    .get(MIN_INSYNC_REPLICAS)
                    .and_then(|entry| entry.value.as_deref())
                    .and_then(|v| v.parse().ok()),
                _ => None,
            })
    };
    Ok(names
        .iter()
        .map(|name| match present.iter().find(|(n, _, _)| n == name) {
            None => TopicCheck::Missing { name: name.clone() },
            Some((_, partitions, replication_factor)) => {
                let shape = TopicShape {
                    partitions: *partitions,
                    replication_factor: *replication_factor,
                    min_insync_replicas: min_insync_of(name),
                };
                compare(name, &shape, catalogue.partitions(), spec)
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(partitions: i32, replication_factor: i32, isr: Option<i32>) -> TopicShape {
        TopicShape {
            partitions,
            replication_factor,
            min_insync_replicas: isr,
        }
    }

    #[test]
    fn each_difference_is_said_and_a_fitting_topic_is_ok() {
        let three = TopicSpec::fitted(3, None, None);
        assert!(compare("t.orders", &shape(6, 3, Some(2)), 6, three).fits());
        let check = compare("t.orders", &shape(3, 1, Some(1)), 6, three);
        assert_eq!(
            check.to_string(),
            "differs  t.orders: partitions 3, expected 6; replication factor 1, expected 3; \
             min.insync.replicas 1, expected 2"
        );
        // One broker: min.insync.replicas is the broker's business.
        assert!(
            compare(
                "t.orders",
                &shape(6, 1, Some(1)),
                6,
                TopicSpec::fitted(1, None, None)
            )
            .fits()
        );
    }
}
