//! The worker's start-up check of Kafka: its login is accepted, its topics
//! exist, and its ACLs let it do what it will do — read the topics it
//! subscribes to with its consumer group, write the dead-letter topics of
//! those and the topics it publishes on — so a worker whose ACLs are missing
//! stops at start-up naming the topic and operation, never after its first
//! message. A known worker's subscriptions must be the catalogue's
//! ([`Service::consumes`]): the ACLs are derived from the catalogue.

use std::time::Duration;

use anyhow::Context;
use chorus_avro::{Service, Topic};
use chorus_platform::access_check::{Needs, require_access};

use crate::config::WorkerConfig;

const TIMEOUT: Duration = Duration::from_secs(10);

pub(crate) async fn require_kafka_access(
    config: &WorkerConfig,
    subscribed: &[Topic],
) -> anyhow::Result<()> {
    // A refused login says so here, naming the cause.
    config.kafka.fetch_metadata(None, TIMEOUT).await?;
    let catalogue = config.catalogue();
    let group = Some(config.consumer_group.as_str());
    let needs = match Service::from_name(&config.name) {
        Some(service) => {
            check_subscriptions(service, subscribed)?;
            Needs::of_service(service, &catalogue, group)
        }
        // A worker outside the catalogue (a test's): what it subscribes to.
        None => Needs::of(&catalogue, &[], subscribed, group),
    };
    require_access(&config.kafka, &needs, TIMEOUT)
        .await
        .with_context(|| format!("checking the Kafka ACLs of the {} worker", config.name))
}

/// The handler's subscriptions are the catalogue's, or the derived ACLs
/// would not fit the worker.
fn check_subscriptions(service: Service, subscribed: &[Topic]) -> anyhow::Result<()> {
    let mut actual = subscribed.to_vec();
    let mut stated = service.consumes().to_vec();
    actual.sort();
    stated.sort();
    anyhow::ensure!(
        actual == stated,
        "the {service} worker subscribes to {actual:?} but the topic catalogue \
         (chorus_avro::Service::consumes, whence its ACLs) says {stated:?}"
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subscriptions_must_be_the_catalogues() {
        let order = [Topic::Payments, Topic::Orders, Topic::Inventory];
        assert!(check_subscriptions(Service::Order, &order).is_ok());
        let err = check_subscriptions(Service::Order, &[Topic::Orders]).unwrap_err();
        assert!(
            err.to_string()
                .contains("the order worker subscribes to [Orders]"),
            "{err}"
        );
    }
}
