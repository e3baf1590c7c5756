//! The start-up check of a service's Kafka permissions: the broker is asked
//! which operations this connection may do on each topic the service needs
//! and on its consumer group, so a service whose ACLs are missing stops at
//! start-up naming the topic (or group) and the operation, not after its
//! first message. A broker that does not say (no authorizer, too old) is
//! trusted: the service starts and logs that it could not check.

use std::time::Duration;

use chorus_avro::{Service, Topic, TopicCatalogue};

use crate::kafka::{KafkaSettings, KafkaUnreachable};
use crate::kafka_admin::{Access, Operation, describe_group_access, describe_topic_access};

/// What a service needs of Kafka.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Needs {
    /// An operation on each topic (a topic may appear twice: read and written).
    pub topics: Vec<(String, Operation)>,
    /// READ on this consumer group.
    pub group: Option<String>,
}

impl Needs {
    /// `service`'s needs under `catalogue`: WRITE on what it writes, READ on
    /// what it reads, READ on `group` (its consumer group, for a worker).
    pub fn of_service(service: Service, catalogue: &TopicCatalogue, group: Option<&str>) -> Needs {
        Needs::of(catalogue, &service.produces(), service.consumes(), group)
    }

    /// The needs of a process that publishes on `produces` and consumes
    /// `consumes` (writing their dead letters) with consumer group `group`.
    pub fn of(
        catalogue: &TopicCatalogue,
        produces: &[Topic],
        consumes: &[Topic],
        group: Option<&str>,
    ) -> Needs {
        // What `chorus acls apply` grants a service (`Service::writes`,
        // `Service::reads`) is derived the same way.
        let written = catalogue.written_by(produces, consumes);
        let read = catalogue.names(consumes);
        Needs {
            topics: written
                .into_iter()
                .map(|t| (t, Operation::Write))
                .chain(read.into_iter().map(|t| (t, Operation::Read)))
                .collect(),
            group: group.map(str::to_string),
        }
    }
}

/// Why a service may not start.
#[derive(Debug, thiserror::Error)]
pub enum AccessError {
    #[error(
        "Kafka does not allow {principal} {operation} on {kind} {name} (its ACLs: chorus acls apply)"
    )]
    Denied {
        principal: String,
        operation: Operation,
        kind: &'static str,
        name: String,
    },
    #[error("topics missing at {brokers}: {names:?}; run `chorus topics create`")]
    Missing { brokers: String, names: Vec<String> },
    #[error(transparent)]
    Unreachable(#[from] KafkaUnreachable),
}

/// The principal a connection with `kafka` authenticates as, for messages.
pub fn principal_of(kafka: &KafkaSettings) -> String {
    match &kafka.sasl {
        Some(sasl) => format!("User:{}", sasl.username),
        None => "this connection's principal".to_string(),
    }
}

/// Asks the broker and judges its answers ([`judge`]); resources whose
/// operations the broker did not say are logged.
pub async fn require_access(
    kafka: &KafkaSettings,
    needs: &Needs,
    timeout: Duration,
) -> Result<(), AccessError> {
    // A cluster just started, or one whose coordinator is moving, answers
    // "not now" for a while (the group's coordinator loading, say): ask
    // again for up to three timeouts before giving up. A refusal or a
    // missing topic is an answer, and final.
    let deadline = tokio::time::Instant::now() + timeout * 3;
    loop {
        match check_access(kafka, needs, timeout).await {
            Err(AccessError::Unreachable(e)) if tokio::time::Instant::now() < deadline => {
                tracing::info!(cause = %e, "Kafka cannot say yet what this service may do; asking again");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            answer => return answer,
        }
    }
}

async fn check_access(
    kafka: &KafkaSettings,
    needs: &Needs,
    timeout: Duration,
) -> Result<(), AccessError> {
    let unreachable = |cause: String| KafkaUnreachable {
        brokers: kafka.brokers.clone(),
        cause,
    };
    let mut names: Vec<String> = needs.topics.iter().map(|(t, _)| t.clone()).collect();
    names.sort();
    names.dedup();
    let topics = describe_topic_access(kafka, names, timeout)
        .await
        .map_err(unreachable)?;
    let group = match &needs.group {
        Some(group) => Some(
            describe_group_access(kafka, group, timeout)
                .await
                .map_err(unreachable)?,
        ),
        None => None,
    };
    let unknown = judge(kafka, needs, &topics, group.as_ref())?;
    if !unknown.is_empty() {
        tracing::warn!(
            resources = ?unknown,
            "Kafka does not say which operations this service may do (no authorizer?); not checked"
        );
    }
    Ok(())
}

/// Checks every need against the broker's answers; `Ok` holds the resources
/// whose allowed operations the broker did not say.
pub fn judge(
    kafka: &KafkaSettings,
    needs: &Needs,
    topics: &[(String, Access)],
    group: Option<&Access>,
) -> Result<Vec<String>, AccessError> {
    let denied = |operation, kind, name: &str| AccessError::Denied {
        principal: principal_of(kafka),
        operation,
        kind,
        name: name.to_string(),
    };
    let mut unknown = Vec::new();
    let mut missing = Vec::new();
    for (name, operation) in &needs.topics {
        let answer = topics.iter().find(|(t, _)| t == name).map(|(_, a)| a);
        match answer {
            None | Some(Access::Missing) => {
                if !missing.contains(name) {
                    missing.push(name.clone());
                }
            }
            Some(Access::Refused) => return Err(denied(*operation, "topic", name)),
            Some(Access::Failed(why)) => {
                return Err(AccessError::Unreachable(KafkaUnreachable {
                    brokers: kafka.brokers.clone(),
                    cause: format!("describing topic {name}: {why}"),
                }));
            }
            Some(Access::Allowed(None)) => {
                let resource = format!("topic {name}");
                if !unknown.contains(&resource) {
                    unknown.push(resource);
                }
            }
            Some(Access::Allowed(Some(ops))) => {
                if !allows(ops, *operation) {
                    return Err(denied(*operation, "topic", name));
                }
            }
        }
    }
    if !missing.is_empty() {
        return Err(AccessError::Missing {
            brokers: kafka.brokers.clone(),
            names: missing,
        });
    }
    if let (Some(name), Some(answer)) = (&needs.group, group) {
        match answer {
            Access::Refused => return Err(denied(Operation::Read, "group", name)),
            Access::Allowed(Some(ops)) if !allows(ops, Operation::Read) => {
                return Err(denied(Operation::Read, "group", name));
            }
            Access::Allowed(Some(_)) => {}
            // A group that never had a member: the broker let us describe it
            // (so the ACLs name it), but says nothing of READ.
            Access::Allowed(None) | Access::Missing => unknown.push(format!("group {name}")),
            Access::Failed(why) => {
                return Err(AccessError::Unreachable(KafkaUnreachable {
                    brokers: kafka.brokers.clone(),
                    cause: format!("describing consumer group {name}: {why}"),
                }));
            }
        }
    }
    Ok(unknown)
}

fn allows(ops: &[Operation], needed: Operation) -> bool {
    ops.iter().any(|&op| op == needed || op == Operation::All)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kafka::Sasl;
    use crate::secret::Secret;

    fn order_kafka() -> KafkaSettings {
        let mut kafka = KafkaSettings::plaintext("k:9094");
        kafka.sasl = Some(Sasl {
            mechanism: "SCRAM-SHA-512".into(),
            username: "chorus-order".into(),
            password: Secret::new("x"),
        });
        kafka
    }

    fn needs() -> Needs {
        Needs::of_service(
            Service::Order,
            &TopicCatalogue::new("t1", 3),
            Some("t1.order"),
        )
    }

    fn all_allowed(needs: &Needs, ops: &[Operation]) -> Vec<(String, Access)> {
        needs
            .topics
            .iter()
            .map(|(t, _)| (t.clone(), Access::Allowed(Some(ops.to_vec()))))
            .collect()
    }

    #[test]
    fn the_order_worker_needs_its_topics_and_group() {
        let needs = needs();
        assert!(
            needs
                .topics
                .contains(&("t1.orders".into(), Operation::Write))
        );
        assert!(
            needs
                .topics
                .contains(&("t1.orders".into(), Operation::Read))
        );
        assert!(
            needs
                .topics
                .contains(&("t1.payments.dlq".into(), Operation::Write))
        );
        assert!(!needs.topics.iter().any(|(t, _)| t == "t1.notifications"));
        assert_eq!(needs.group.as_deref(), Some("t1.order"));
    }

    #[test]
    fn everything_allowed_passes_and_a_silent_broker_is_noted() {
        let needs = needs();
        let ops = [Operation::Read, Operation::Write, Operation::Describe];
        let group = Access::Allowed(Some(vec![Operation::Read]));
        let unknown = judge(
            &order_kafka(),
            &needs,
            &all_allowed(&needs, &ops),
            Some(&group),
        )
        .unwrap();
        assert!(unknown.is_empty());
        let silent = all_allowed(&needs, &[])
            .into_iter()
            .map(|(t, _)| (t, Access::Allowed(None)))
            .collect::<Vec<_>>();
        let unknown = judge(
            &order_kafka(),
            &needs,
            &silent,
            Some(&Access::Allowed(None)),
        )
        .unwrap();
        assert_eq!(unknown.len(), 7, "{unknown:?}");
    }

    #[test]
    fn a_missing_operation_names_the_principal_the_topic_and_the_operation() {
        let needs = needs();
        let mut answers = all_allowed(&needs, &[Operation::Read, Operation::Write]);
        for (topic, answer) in &mut answers {
            if topic == "t1.payments.dlq" {
                *answer = Access::Allowed(Some(vec![Operation::Describe, Operation::Read]));
            }
        }
        let err = judge(&order_kafka(), &needs, &answers, None)
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "Kafka does not allow User:chorus-order WRITE on topic t1.payments.dlq (its ACLs: chorus acls apply)"
        );
    }

    #[test]
    fn a_topic_it_may_not_describe_is_refused_by_the_operation_it_needs() {
        let needs = needs();
        let mut answers = all_allowed(&needs, &[Operation::All]);
        for (topic, answer) in &mut answers {
            if topic == "t1.inventory" {
                *answer = Access::Refused;
            }
        }
        let err = judge(&order_kafka(), &needs, &answers, None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("READ on topic t1.inventory"), "{err}");
    }

    #[test]
    fn a_refused_group_and_a_missing_topic_are_named() {
        let needs = needs();
        let answers = all_allowed(&needs, &[Operation::All]);
        let err = judge(&order_kafka(), &needs, &answers, Some(&Access::Refused))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("User:chorus-order READ on group t1.order"),
            "{err}"
        );
        let mut answers = answers;
        answers.retain(|(t, _)| t != "t1.orders.dlq");
        let err = judge(&order_kafka(), &needs, &answers, None)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("topics missing at k:9094: [\"t1.orders.dlq\"]"),
            "{err}"
        );
    }
}
