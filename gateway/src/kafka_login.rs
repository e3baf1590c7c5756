//! At start-up the gateway asks Kafka for its metadata once: a refused login
//! (a wrong SASL password) stops the process with an error naming the cause,
//! since retrying cannot fix it; a Kafka merely unreachable does not — the
//! gateway starts, answers 503 and reports not ready until Kafka is back.
//!
//! Once Kafka answers, the gateway asks which operations its principal may
//! do on the topics it publishes on: missing ACLs stop it at start-up,
//! naming the topic and the operation, rather than failing its first POST.
//! A topic not created yet does not stop it (it answers 503 until it is).

use std::time::Duration;

use chorus_avro::{Service, TopicCatalogue};
use chorus_platform::access_check::{AccessError, Needs, require_access};
use chorus_platform::{KafkaSettings, KafkaUnreachable};

/// How long the start-up question may take when Kafka does not answer.
pub const TIMEOUT: Duration = Duration::from_secs(3);

/// How `KafkaSettings::fetch_metadata` begins the cause of a refused login.
const REFUSED_LOGIN: &str = "authentication to Kafka failed";

pub async fn check_at_start_up(
    kafka: &KafkaSettings,
    catalogue: &TopicCatalogue,
) -> anyhow::Result<()> {
    let login = kafka.fetch_metadata(None, TIMEOUT).await.map(drop);
    let answered = login.is_ok();
    decide(login)?;
    if !answered {
        return Ok(());
    }
    let needs = Needs::of_service(Service::Gateway, catalogue, None);
    decide_access(require_access(kafka, &needs, TIMEOUT).await)
}

/// Stop on missing ACLs; carry on (saying so) when a topic is missing or
/// Kafka stopped answering.
pub fn decide_access(answer: Result<(), AccessError>) -> anyhow::Result<()> {
    match answer {
        Ok(()) => Ok(()),
        Err(e @ AccessError::Denied { .. }) => {
            Err(anyhow::anyhow!("the gateway may not start: {e}"))
        }
        Err(e) => {
            tracing::warn!(error = %e, "the gateway's Kafka ACLs were not checked; starting anyway");
            Ok(())
        }
    }
}

/// Stop on a refused login; carry on (saying so) when Kafka is away.
pub fn decide(answer: Result<(), KafkaUnreachable>) -> anyhow::Result<()> {
    match answer {
        Ok(()) => Ok(()),
        Err(e) if e.cause.starts_with(REFUSED_LOGIN) => Err(anyhow::anyhow!(
            "Kafka at {} refused the gateway's login: {}",
            e.brokers,
            e.cause
        )),
        Err(e) => {
            tracing::warn!(error = %e, "Kafka does not answer yet; starting anyway (503 until it does)");
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unreachable(cause: &str) -> Result<(), KafkaUnreachable> {
        Err(KafkaUnreachable {
            brokers: "kafka:9094".to_string(),
            cause: cause.to_string(),
        })
    }

    #[test]
    fn a_refused_login_stops_the_gateway_naming_the_cause() {
        let refused = unreachable(
            "authentication to Kafka failed (check CHORUS_KAFKA_SASL_USERNAME / \
             CHORUS_KAFKA_SASL_PASSWORD): SASL authentication error (Local: Timed out)",
        );
        let err = decide(refused).unwrap_err().to_string();
        assert!(err.contains("refused the gateway's login"), "{err}");
        assert!(err.contains("CHORUS_KAFKA_SASL_PASSWORD"), "{err}");
        assert!(err.contains("kafka:9094"), "{err}");
    }

    #[test]
    fn missing_acls_stop_the_gateway_and_a_missing_topic_does_not() {
        let denied = AccessError::Denied {
            principal: "User:chorus-gateway".into(),
            operation: chorus_platform::kafka_admin::Operation::Write,
            kind: "topic",
            name: "chorus.orders".into(),
        };
        let err = decide_access(Err(denied)).unwrap_err().to_string();
        assert!(
            err.contains("User:chorus-gateway WRITE on topic chorus.orders"),
            "{err}"
        );
        let missing = AccessError::Missing {
            brokers: "k:9094".into(),
            names: vec!["chorus.orders".into()],
        };
        assert!(decide_access(Err(missing)).is_ok());
    }

    #[test]
    fn an_unreachable_kafka_does_not() {
        assert!(decide(Ok(())).is_ok());
        assert!(decide(unreachable("Meta data fetch error: BrokerTransportFailure")).is_ok());
        assert!(decide(unreachable("timed out")).is_ok());
    }
}
