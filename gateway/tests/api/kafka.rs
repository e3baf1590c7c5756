//! The whole application against the real local stack (Kafka, schema
//! registry, PostgreSQL) on a random port, under its own topic namespace:
//! a POST lands as an Avro `OrderPlaced` in Kafka before its 202.

use std::time::Duration;

use chorus_avro::RegistrySettings;
use chorus_avro::{Codec, CodecConfig, Event, Topic, TopicCatalogue};
use chorus_gateway::auth::Role;
use chorus_platform::KafkaSettings;
use chorus_platform::topics::ensure_topics;
use rdkafka::Message;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::{BorrowedMessage, Headers};
use serde_json::json;

use crate::helpers::{
    HOW_TO_START, TestDbs, customer as token_for, order_body, payment_keys, token,
};
use crate::running::{RunningGateway, brokers, registry_url};

async fn next_message<'a>(consumer: &'a StreamConsumer, topic: &str) -> BorrowedMessage<'a> {
    tokio::time::timeout(Duration::from_secs(30), consumer.recv())
        .await
        .unwrap_or_else(|_| panic!("no message on {topic} within 30 s"))
        .expect("consuming")
}

/// A consumer of its own group that reads every topic it subscribes to from
/// the beginning.
fn from_the_start(kafka: &KafkaSettings, group: String) -> StreamConsumer {
    kafka
        .client_config()
        .set("group.id", group)
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap()
}

fn header<'a>(message: &'a BorrowedMessage<'_>, key: &str) -> Option<&'a str> {
    let headers = message.headers()?;
    headers
        .iter()
        .find(|h| h.key == key)
        .and_then(|h| h.value)
        .and_then(|v| std::str::from_utf8(v).ok())
}

/// The local Kafka, checked reachable, and a gateway on it whose topics exist.
async fn gateway_on_kafka(dbs: &TestDbs) -> (RunningGateway, KafkaSettings, TopicCatalogue) {
    let kafka = KafkaSettings::plaintext(brokers());
    if let Err(e) = kafka.fetch_metadata(None, Duration::from_secs(5)).await {
        panic!("Kafka unreachable at {}: {HOW_TO_START} ({e})", brokers());
    }
    registry_url().await;
    let mut env = vec![("CHORUS_AUTO_REGISTER_SCHEMAS", "true")];
    env.extend(dbs.env());
    let gateway = RunningGateway::start(&env).await;
    let catalogue = TopicCatalogue::new(gateway.namespace.clone(), 2);
    ensure_topics(&kafka, &catalogue, 1, Duration::from_secs(30))
        .await
        .expect("creating the test's topics");
    (gateway, kafka, catalogue)
}

#[tokio::test]
async fn the_gateway_publishes_order_placed_to_kafka_before_its_202() {
    let dbs = TestDbs::create().await;
    let (gateway, kafka, catalogue) = gateway_on_kafka(&dbs).await;
    let base = gateway.base.clone();
    let namespace = gateway.namespace.clone();
    let registry = registry_url().await;
    let consumer = from_the_start(&kafka, format!("{namespace}.test"));
    let orders_topic = catalogue.name(Topic::Orders);
    let commands_topic = catalogue.name(Topic::InventoryCommands);
    consumer
        .subscribe(&[&orders_topic, &commands_topic])
        .unwrap();

    let http = reqwest::Client::new();
    let alice = token("alice", Role::Customer);
    let traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    let response = http
        .post(format!("{base}/v1/orders"))
        .bearer_auth(&alice)
        .header("idempotency-key", "kafka-key-1")
        .header("traceparent", traceparent)
        .json(&order_body())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202, "{}", response.text().await.unwrap());
    let order_id = response.json::<serde_json::Value>().await.unwrap()["order_id"]
        .as_str()
        .unwrap()
        .to_string();

    let codec = Codec::new(
        &CodecConfig {
            registry: RegistrySettings::new(registry.clone()),
            auto_register: false,
            timeout: Duration::from_secs(10),
        },
        catalogue.clone(),
    )
    .unwrap();
    let message = next_message(&consumer, &orders_topic).await;
    assert_eq!(message.topic(), orders_topic);
    assert_eq!(message.key(), Some(order_id.as_bytes()));
    assert!(
        header(&message, "traceparent")
            .unwrap()
            .starts_with("00-0af7651916cd43dd8448eb211c80319c-")
    );
    assert_eq!(header(&message, "chorus-event-type"), Some("OrderPlaced"));
    let Event::OrderPlaced(event) = codec.decode(message.payload()).await.unwrap() else {
        panic!("not an OrderPlaced")
    };
    assert_eq!(event.order_id, order_id);
    assert_eq!(event.customer_id, "alice");
    assert_eq!(event.items[0].sku, "SKU-1");
    assert_eq!(event.items[0].quantity, 2);
    assert_eq!(
        header(&message, "chorus-event-id"),
        Some(event.event_id.as_str())
    );

    // Read-your-writes through the real server, before any worker ran.
    let status = http
        .get(format!("{base}/v1/orders/{order_id}"))
        .bearer_auth(&alice)
        .send()
        .await
        .unwrap();
    assert_eq!(status.status(), 200);
    assert_eq!(
        status.json::<serde_json::Value>().await.unwrap()["status"],
        "PENDING"
    );

    // A cancellation request goes to the orders topic, keyed by the order.
    let response = http
        .post(format!("{base}/v1/orders/{order_id}/cancel"))
        .bearer_auth(&alice)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    let message = next_message(&consumer, &orders_topic).await;
    assert_eq!(message.key(), Some(order_id.as_bytes()));
    assert_eq!(
        header(&message, "chorus-event-type"),
        Some("OrderCancellationRequested")
    );
    let Event::OrderCancellationRequested(event) = codec.decode(message.payload()).await.unwrap()
    else {
        panic!("not an OrderCancellationRequested")
    };
    assert_eq!(
        (event.customer_id.as_str(), event.requested_by.as_str()),
        ("alice", "alice")
    );

    // Stock adjustments go to the inventory command topic, keyed by SKU.
    let response = http
        .put(format!("{base}/v1/admin/inventory/SKU-K"))
        .bearer_auth(token("ops", Role::Admin))
        .json(&json!({"available": 10, "unit_price": "2.50", "name": "Kettle"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    let message = next_message(&consumer, &commands_topic).await;
    assert_eq!(message.key(), Some("SKU-K".as_bytes()));
    let Event::StockAdjusted(event) = codec.decode(message.payload()).await.unwrap() else {
        panic!("not a StockAdjusted")
    };
    assert_eq!((event.available, event.name.as_str()), (10, "Kettle"));

    let ready = http
        .get(format!("{}/readyz", gateway.admin))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 200, "{}", ready.text().await.unwrap());

    gateway.stop().await;
}

#[tokio::test]
async fn a_payment_token_is_not_readable_in_the_orders_topic() {
    let dbs = TestDbs::create().await;
    let (gateway, kafka, catalogue) = gateway_on_kafka(&dbs).await;
    let token = format!("tok_secret_{}", uuid::Uuid::new_v4().simple());
    let mut body = order_body();
    body["payment_token"] = json!(token);
    let response = gateway
        .post_order(&token_for("alice"), "sealed-1", &body)
        .await;
    assert_eq!(response.status, 202, "{}", response.text);
    let order_id = response.json()["order_id"].as_str().unwrap().to_string();

    let consumer = from_the_start(&kafka, format!("{}.test", gateway.namespace));
    let topic = catalogue.name(Topic::Orders);
    consumer.subscribe(&[&topic]).unwrap();
    let message = next_message(&consumer, &topic).await;
    // Every byte of the record as the broker holds it: key, headers, value.
    let mut raw = message.key().unwrap_or_default().to_vec();
    for header in message.headers().iter().flat_map(|h| h.iter()) {
        raw.extend_from_slice(header.key.as_bytes());
        raw.extend_from_slice(header.value.unwrap_or_default());
    }
    raw.extend_from_slice(message.payload().unwrap_or_default());
    let needle = token.as_bytes();
    assert!(
        !raw.windows(needle.len()).any(|w| w == needle),
        "the token is readable in the record"
    );
    assert!(!raw.windows(10).any(|w| w == b"tok_secret"));

    // Only the key opens it, for this order.
    let codec = Codec::new(
        &CodecConfig {
            registry: RegistrySettings::new(registry_url().await),
            auto_register: false,
            timeout: Duration::from_secs(10),
        },
        catalogue.clone(),
    )
    .unwrap();
    let Event::OrderPlaced(event) = codec.decode(message.payload()).await.unwrap() else {
        panic!("not an OrderPlaced")
    };
    let keys = payment_keys();
    let key_id = event
        .payment_token_key_id
        .expect("a key id beside the token");
    assert_eq!(
        keys.open(&order_id, &key_id, &event.payment_token).unwrap(),
        token
    );
    gateway.stop().await;
}

#[tokio::test]
async fn simultaneous_orders_each_land_once_in_kafka() {
    let dbs = TestDbs::create().await;
    let (gateway, kafka, catalogue) = gateway_on_kafka(&dbs).await;
    let alice = token_for("alice");
    let body = order_body();
    let keys: Vec<String> = (0..30).map(|k| format!("burst-{k}")).collect();
    let attempts = keys
        .iter()
        .chain(keys.iter().take(10))
        .map(|key| gateway.post_order(&alice, key, &body));
    let mut accepted = std::collections::BTreeSet::new();
    for response in futures::future::join_all(attempts).await {
        assert_eq!(response.status, 202, "{}", response.text);
        accepted.insert(response.json()["order_id"].as_str().unwrap().to_string());
    }
    assert_eq!(accepted.len(), 30, "a repeated key answers its order");

    let consumer = from_the_start(&kafka, format!("{}.burst", gateway.namespace));
    let topic = catalogue.name(Topic::Orders);
    consumer.subscribe(&[&topic]).unwrap();
    let mut landed = std::collections::BTreeSet::new();
    for _ in 0..30 {
        let message = next_message(&consumer, &topic).await;
        let key = String::from_utf8(message.key().unwrap().to_vec()).unwrap();
        assert!(landed.insert(key), "an order landed twice");
    }
    assert_eq!(landed, accepted);
    gateway.stop().await;
}
