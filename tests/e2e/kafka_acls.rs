//! Least privilege on the broker: every service connects with its own
//! principal, and the ACLs `chorus acls apply` derives from the topic
//! catalogue let it write only what it produces. A well-formed `StockReserved`
//! from the order worker's or the gateway's principal is refused by the
//! broker and never reaches the topic; the inventory worker's is accepted.
//! A worker missing one of its ACLs stops at start-up, naming it.

use std::time::Duration;

use chorus_avro::{EventType, Service, Topic};
use chorus_platform::acls::{Principals, derive_acls};
use chorus_platform::kafka_admin::{AclBinding, Operation, delete_acls};
use chorus_platform::testing::TestDb;
use chorus_platform::{Env, KafkaSettings};
use chorus_tests::{Stack, describe, exit_within, run, spawn_worker};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::FutureRecord;

/// The Kafka settings of `service`'s own principal on the authorizing listener.
fn principal_of(stack: &Stack, service: &str) -> KafkaSettings {
    let vars = stack.service_kafka_env(service);
    let pairs: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    KafkaSettings::from_env(&Env::from_pairs(&pairs)).expect("the service's Kafka settings")
}

#[tokio::test]
async fn a_stock_reserved_from_the_order_worker_or_the_gateway_is_refused_by_the_broker() {
    let stack = Stack::get().await;
    let topics = stack.fresh_topics().await;
    let applied = run(stack.chorus(&topics).args(["acls", "apply"]));
    assert!(applied.status.success(), "{}", describe(&applied));
    let codec = stack.codec(&topics, true);
    let inventory = topics.name(Topic::Inventory);

    let order_id = uuid::Uuid::new_v4().to_string();
    let event = EventType::StockReserved.example(&order_id);
    let payload = codec.encode(&event).await.expect("encoding StockReserved");
    let send = |service: &'static str| {
        let producer = principal_of(&stack, service)
            .producer(Duration::from_secs(10), Duration::ZERO)
            .expect("a producer");
        let payload = payload.clone();
        let topic = inventory.clone();
        let key = order_id.clone();
        async move {
            producer
                .send(
                    FutureRecord::to(&topic).key(&key).payload(&payload),
                    Duration::from_secs(10),
                )
                .await
                .map_err(|(e, _)| e)
        }
    };

    for service in ["order", "gateway"] {
        match send(service).await {
            Err(KafkaError::MessageProduction(RDKafkaErrorCode::TopicAuthorizationFailed)) => {}
            other => panic!(
                "chorus-{service} producing StockReserved to {inventory}: expected \
                 TopicAuthorizationFailed, got {other:?}"
            ),
        }
    }
    // The inventory worker produces it: the same message from its principal goes through.
    send("inventory")
        .await
        .unwrap_or_else(|e| panic!("chorus-inventory may produce to {inventory}: {e}"));

    // Exactly that one message is on the topic: none of the refused reached it.
    let consumer: BaseConsumer = stack.kafka().client_config().create().unwrap();
    let messages = tokio::task::spawn_blocking(move || {
        (0..topics.partitions())
            .map(|p| {
                let (low, high) = consumer
                    .fetch_watermarks(&inventory, p, Duration::from_secs(10))
                    .expect("watermarks");
                high - low
            })
            .sum::<i64>()
    })
    .await
    .unwrap();
    assert_eq!(messages, 1, "messages on the inventory topic");
}

#[tokio::test]
async fn a_worker_missing_an_acl_stops_at_start_up_naming_the_topic_and_operation() {
    let stack = Stack::get().await;
    let topics = stack.fresh_topics().await;
    let applied = run(stack.chorus(&topics).args(["acls", "apply"]));
    assert!(applied.status.success(), "{}", describe(&applied));
    // Take one of the payment worker's ACLs away: WRITE on the topic it produces.
    let payments = topics.name(Topic::Payments);
    let principals = Principals::default();
    let write_payments: Vec<AclBinding> = derive_acls(&topics, &principals)
        .into_iter()
        .filter(|b| {
            b.principal == principals.of(Service::Payment)
                && b.operation == Operation::Write
                && b.name == payments
        })
        .collect();
    assert_eq!(write_payments.len(), 1, "{write_payments:?}");
    delete_acls(&stack.kafka(), write_payments, Duration::from_secs(10))
        .await
        .expect("deleting the ACL");

    let db = TestDb::create(&[]).await;
    let kafka = stack.service_kafka_env("payment");
    let (child, log) = spawn_worker(&stack, "payment", "payment", &topics, &db.url, &kafka);
    let status = tokio::task::spawn_blocking(move || exit_within(child, 60))
        .await
        .unwrap();
    let log = std::fs::read_to_string(log).unwrap_or_default();
    let status = status.unwrap_or_else(|| panic!("chorus-payment runs without its ACL:\n{log}"));
    assert!(!status.success(), "chorus-payment exited 0:\n{log}");
    let named = format!("User:chorus-payment WRITE on topic {payments}");
    assert!(
        log.contains(&named),
        "the log does not say `{named}`:\n{log}"
    );
    // It stopped before consuming anything: no partition was ever assigned.
    assert!(
        !log.contains("assigned"),
        "chorus-payment consumed before stopping:\n{log}"
    );
}
