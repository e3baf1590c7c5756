//! The whole application against the real local stack (Kafka, schema
//! registry, PostgreSQL) on a random port, under its own topic namespace:
//! a POST lands as an Avro `OrderPlaced` in Kafka before its 202.

use std::time::Duration;

use chorus_avro::RegistrySettings;
use chorus_avro::{Codec, CodecConfig, Event, Topic, TopicCatalogue};
use chorus_gateway::auth::Role;
use chorus_gateway::{Application, GatewayConfig};
use chorus_platform::Env;
use chorus_platform::KafkaSettings;
use chorus_platform::topics::ensure_topics;
use rdkafka::Message;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::{BorrowedMessage, Headers};
use serde_json::json;

use crate::helpers::{HOW_TO_START, SECRET, order_body, test_db, token};

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_string())
}

async fn next_message<'a>(consumer: &'a StreamConsumer, topic: &str) -> BorrowedMessage<'a> {
    tokio::time::timeout(Duration::from_secs(30), consumer.recv())
        .await
        .unwrap_or_else(|_| panic!("no message on {topic} within 30 s"))
        .expect("consuming")
}

fn header<'a>(message: &'a BorrowedMessage<'_>, key: &str) -> Option<&'a str> {
    let headers = message.headers()?;
    headers
        .iter()
        .find(|h| h.key == key)
        .and_then(|h| h.value)
        .and_then(|v| std::str::from_utf8(v).ok())
}

#[tokio::test]
async fn the_gateway_publishes_order_placed_to_kafka_before_its_202() {
    let brokers = env_or("CHORUS_KAFKA_BROKERS", "127.0.0.1:9092");
    let registry = env_or(
        "CHORUS_SCHEMA_REGISTRY_URL",
        "http://127.0.0.1:8081/apis/ccompat/v7",
    );
    let kafka = KafkaSettings::plaintext(brokers.clone());
    if let Err(e) = kafka.fetch_metadata(None, Duration::from_secs(5)).await {
        panic!("Kafka unreachable at {brokers}: {HOW_TO_START} ({e})");
    }
    let registry_client = chorus_avro::RegistryClient::new(
        &RegistrySettings::new(registry.clone()),
        Duration::from_secs(5),
    )
    .unwrap();
    if let Err(e) = registry_client.subjects().await {
        panic!("Schema registry unreachable at {registry}: {HOW_TO_START} ({e})");
    }
    let db = test_db().await;
    let namespace = format!("gw{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
    let catalogue = TopicCatalogue::new(namespace.clone(), 2);
    ensure_topics(&kafka, &catalogue, 1, Duration::from_secs(30))
        .await
        .expect("creating the test's topics");

    let config = GatewayConfig::from_env(&Env::from_pairs(&[
        ("CHORUS_HTTP_ADDR", "127.0.0.1:0"),
        ("CHORUS_KAFKA_BROKERS", &brokers),
        ("CHORUS_SCHEMA_REGISTRY_URL", &registry),
        ("CHORUS_TOPIC_NAMESPACE", &namespace),
        ("CHORUS_TOPIC_PARTITIONS", "2"),
        ("CHORUS_AUTO_REGISTER_SCHEMAS", "true"),
        ("CHORUS_JWT_SECRET", SECRET),
        ("CHORUS_DATABASE_URL", &db.url),
        ("CHORUS_ORDER_DB_URL", &db.url),
        ("CHORUS_INVENTORY_DB_URL", &db.url),
    ]))
    .unwrap();
    let application = Application::build(config)
        .await
        .expect("building the gateway");
    let base = format!("http://127.0.0.1:{}", application.port());
    let shutdown = application.shutdown_token();
    let server = tokio::spawn(application.run_until_stopped());

    let consumer: StreamConsumer = kafka
        .client_config()
        .set("group.id", format!("{namespace}.test"))
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
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

    let ready = http.get(format!("{base}/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 200, "{}", ready.text().await.unwrap());

    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(15), server)
        .await
        .expect("the gateway stops on shutdown")
        .unwrap()
        .expect("a clean stop");
}
