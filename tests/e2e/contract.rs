//! Every event type survives encode → Kafka → decode unchanged, and the
//! registry then holds one subject per event type.

use std::time::Duration;

use chorus_avro::{EventType, RegistryClient, subject_name};
use chorus_tests::Stack;
use rdkafka::message::Message;
use rdkafka::producer::FutureRecord;

#[tokio::test]
async fn every_event_type_round_trips_through_kafka_and_the_registry() {
    let stack = Stack::get().await;
    let topics = stack.fresh_topics().await;
    let codec = stack.codec(&topics, true);
    let producer = stack.producer();

    let originals: Vec<_> = EventType::ALL
        .iter()
        .map(|t| t.example(&format!("order-{}", t.name())))
        .collect();
    for event in &originals {
        let payload = codec.encode(event).await.unwrap();
        assert_eq!(
            payload[0], 0,
            "Confluent wire format starts with magic byte 0"
        );
        let topic = topics.topic_of(event.event_type());
        producer
            .send(
                FutureRecord::to(&topic).key(event.key()).payload(&payload),
                Duration::from_secs(10),
            )
            .await
            .unwrap();
    }

    for event_type in EventType::ALL {
        let topic = topics.topic_of(*event_type);
        let expected: Vec<_> = originals
            .iter()
            .filter(|e| e.event_type().topic() == event_type.topic())
            .collect();
        let messages = stack
            .read(&topic, expected.len(), Duration::from_secs(30))
            .await;
        let mut decoded = Vec::new();
        for message in &messages {
            let event = codec.decode(message.payload()).await.unwrap();
            assert_eq!(message.key(), Some(event.key().as_bytes()));
            decoded.push(event);
        }
        for original in expected {
            assert!(decoded.contains(original), "{original:?} did not come back");
        }
    }

    let registry =
        RegistryClient::new(&stack.registry_settings(), Duration::from_secs(10)).unwrap();
    // Each subject is asked for by name: a shared registry lists only its
    // first thousand subjects.
    for event_type in EventType::ALL {
        let subject = subject_name(&topics.topic_of(*event_type), *event_type);
        let latest = registry
            .latest(&subject)
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("{subject} is not registered"));
        // Registered as written: field defaults survive (no canonical form).
        let registered: serde_json::Value = serde_json::from_str(&latest.schema).unwrap();
        let causation = registered["fields"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["name"] == "causation_id")
            .unwrap();
        assert!(
            causation.get("default").is_some(),
            "{subject} lost its defaults"
        );
    }
    // Nothing was registered under a topic the events were not sent to.
    let stray = subject_name(
        &topics.dead_letter(chorus_avro::Topic::Orders),
        EventType::OrderPlaced,
    );
    assert!(registry.latest(&stray).await.unwrap().is_none(), "{stray}");
}

#[tokio::test]
async fn without_auto_registration_an_unregistered_subject_is_refused() {
    let stack = Stack::get().await;
    let topics = stack.fresh_topics().await;
    let codec = stack.codec(&topics, false);
    let err = codec
        .encode(&EventType::OrderPlaced.example("o-1"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, chorus_avro::EncodeError::NotRegistered { .. }),
        "{err:?}"
    );
}
