//! At start-up the gateway asks Kafka for its metadata once: a refused login
//! (a wrong SASL password) stops the process with an error naming the cause,
//! since retrying cannot fix it; a Kafka merely unreachable does not — the
//! gateway starts, answers 503 and reports not ready until Kafka is back.

use std::time::Duration;

use chorus_platform::{KafkaSettings, KafkaUnreachable};

/// How long the start-up question may take when Kafka does not answer.
pub const TIMEOUT: Duration = Duration::from_secs(3);

/// How `KafkaSettings::fetch_metadata` begins the cause of a refused login.
const REFUSED_LOGIN: &str = "authentication to Kafka failed";

pub async fn check_at_start_up(kafka: &KafkaSettings) -> anyhow::Result<()> {
    decide(kafka.fetch_metadata(None, TIMEOUT).await.map(drop))
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
    fn an_unreachable_kafka_does_not() {
        assert!(decide(Ok(())).is_ok());
        assert!(decide(unreachable("Meta data fetch error: BrokerTransportFailure")).is_ok());
        assert!(decide(unreachable("timed out")).is_ok());
    }
}
