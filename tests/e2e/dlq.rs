//! `chorus dlq list|show|redrive` against the real broker and registry, and
//! a redrive into a running deployment: a redriven dead letter takes effect
//! once; redriving it again changes nothing.

use std::time::Duration;

use chorus_avro::headers;
use chorus_avro::{Event, EventType, StockAdjusted, Topic};
use chorus_tests::saga::{Saga, sku};
use chorus_tests::{Stack, describe, run, stdout};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::FutureRecord;
use serde_json::Value;

/// Produces `payload` to `topic` keyed `key` with `headers`; returns (partition, offset).
async fn produce(
    stack: &Stack,
    topic: &str,
    key: &str,
    payload: &[u8],
    header_pairs: &[(&str, &str)],
) -> (i32, i64) {
    let mut owned = OwnedHeaders::new();
    for (name, value) in header_pairs {
        owned = owned.insert(Header {
            key: name,
            value: Some(*value),
        });
    }
    let producer = stack.producer();
    let delivery = producer
        .send(
            FutureRecord::to(topic)
                .key(key)
                .payload(payload)
                .headers(owned),
            Duration::from_secs(10),
        )
        .await
        .unwrap();
    (delivery.partition, delivery.offset)
}

fn json_lines(output: &std::process::Output) -> Vec<Value> {
    assert!(output.status.success(), "{}", describe(output));
    stdout(output)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

fn dead_letter_headers<'a>(
    event_type: &'a str,
    event_id: &'a str,
    original_topic: &'a str,
) -> Vec<(&'a str, &'a str)> {
    vec![
        (headers::EVENT_TYPE, event_type),
        (headers::EVENT_ID, event_id),
        (headers::ERROR_CLASS, "exhausted"),
        (
            headers::ERROR_MESSAGE,
            "database unavailable after 5 attempts",
        ),
        (headers::ATTEMPTS, "5"),
        (headers::CONSUMER_GROUP, "someone.inventory"),
        (headers::ORIGINAL_TOPIC, original_topic),
        (headers::ORIGINAL_PARTITION, "1"),
        (headers::ORIGINAL_OFFSET, "41"),
    ]
}

#[tokio::test]
async fn list_and_show_describe_dead_letters_and_a_dry_run_sends_nothing() {
    let stack = Stack::get().await;
    let topics = stack.fresh_topics().await;
    let dlq = topics.dead_letter(Topic::Orders);
    let orders = topics.name(Topic::Orders);
    let codec = stack.codec(&topics, true);
    let placed = EventType::OrderPlaced.example("o-dead");
    let payload = codec.encode(&placed).await.unwrap();
    let garbage_at = produce(
        &stack,
        &dlq,
        "o-garbage",
        b"garbage",
        &[
            (headers::ERROR_CLASS, "wrong_magic_byte"),
            (headers::ERROR_MESSAGE, "wrong magic byte 0x67"),
            (headers::ORIGINAL_TOPIC, &orders),
            (headers::ORIGINAL_PARTITION, "0"),
            (headers::ORIGINAL_OFFSET, "5"),
        ],
    )
    .await;
    let placed_at = produce(
        &stack,
        &dlq,
        "o-dead",
        &payload,
        &dead_letter_headers("OrderPlaced", placed.event_id(), &orders),
    )
    .await;

    let listed = run(stack
        .chorus(&topics)
        .args(["dlq", "list", "orders.dlq", "--json"]));
    let listed: Value = serde_json::from_str(&stdout(&listed))
        .unwrap_or_else(|e| panic!("{e}: {}", describe(&listed)));
    assert_eq!(listed["topic"], dlq);
    assert_eq!(listed["count"], 2);
    let garbage = listed["messages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["key"] == "o-garbage")
        .expect("the garbage dead letter");
    assert_eq!(garbage["partition"], garbage_at.0);
    assert_eq!(garbage["offset"], garbage_at.1);
    assert_eq!(garbage["error_class"], "wrong_magic_byte");
    assert_eq!(garbage["original_topic"], orders);
    assert_eq!(garbage["original_offset"], 5);

    let table = run(stack.chorus(&topics).args(["dlq", "list", "orders.dlq"]));
    let table = stdout(&table);
    assert!(
        table.starts_with(&format!("2 dead letters in {dlq}\n")),
        "{table}"
    );
    assert!(
        table.contains(&format!("from {orders}/1:41  key o-dead")),
        "{table}"
    );

    let at = |(p, o): (i32, i64)| format!("{p}:{o}");
    let shown = run(stack
        .chorus(&topics)
        .args(["dlq", "show", "orders.dlq", &at(placed_at)]));
    let shown: Value = serde_json::from_str(&stdout(&shown))
        .unwrap_or_else(|e| panic!("{e}: {}", describe(&shown)));
    assert_eq!(shown["type"], "OrderPlaced");
    assert_eq!(shown["event"]["order_id"], "o-dead");
    assert_eq!(shown["event"]["payment_token"], "<encrypted>");
    assert_eq!(shown["dead_letter"]["error_class"], "exhausted");
    assert_eq!(shown["dead_letter"]["attempts"], "5");
    let shown = run(stack
        .chorus(&topics)
        .args(["dlq", "show", "orders.dlq", &at(garbage_at)]));
    let shown: Value = serde_json::from_str(&stdout(&shown))
        .unwrap_or_else(|e| panic!("{e}: {}", describe(&shown)));
    assert_eq!(shown["raw_hex"], "67617262616765");
    assert_eq!(shown["undecodable"]["class"], "wrong_magic_byte");

    let dry =
        run(stack
            .chorus(&topics)
            .args(["dlq", "redrive", "orders.dlq", "--all", "--dry-run"]));
    let planned = json_lines(&dry);
    assert_eq!(planned.len(), 2, "{}", describe(&dry));
    assert!(planned.iter().all(|p| p["to"] == orders.as_str()));
    let (_, high) = watermarks(&stack, &orders);
    assert_eq!(high, 0, "a dry run sends nothing");

    for (args, expected) in [
        (
            vec!["dlq", "show", "orders.dlq", "0:999"],
            "holds no message at 0:999",
        ),
        (vec!["dlq", "show", "orders.dlq", "9:0"], "no partition 9"),
        (vec!["dlq", "list", "orders"], "is not a dead-letter topic"),
        (vec!["dlq", "redrive", "orders.dlq"], "--all"),
    ] {
        let output = run(stack.chorus(&topics).args(&args));
        assert!(!output.status.success(), "{args:?}: {}", describe(&output));
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
    }
}

/// Low and high watermark summed over the topic's partitions.
fn watermarks(stack: &Stack, topic: &str) -> (i64, i64) {
    let consumer: BaseConsumer = stack.kafka().client_config().create().unwrap();
    let metadata = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .unwrap();
    let mut total = (0, 0);
    for partition in metadata.topics()[0].partitions() {
        let (low, high) = consumer
            .fetch_watermarks(topic, partition.id(), Duration::from_secs(10))
            .unwrap();
        total = (total.0 + low, total.1 + high);
    }
    total
}

#[tokio::test]
async fn a_redriven_dead_letter_takes_effect_once() {
    let saga = Saga::start().await;
    let lamp = sku("LAMP");
    saga.set_stock(&lamp, 10, "5.00").await;
    let commands = saga.topics.name(Topic::InventoryCommands);
    let event_id = uuid::Uuid::new_v4().to_string();
    let adjusted = Event::from(StockAdjusted {
        event_id: event_id.clone(),
        sku: lamp.clone(),
        occurred_at: chrono::Utc::now().timestamp_millis(),
        correlation_id: lamp.clone(),
        causation_id: None,
        name: lamp.clone(),
        available: 77,
        unit_price: "5.00".parse().unwrap(),
    });
    let payload = saga
        .stack
        .codec(&saga.topics, false)
        .encode(&adjusted)
        .await
        .unwrap();
    let mut dead_headers = dead_letter_headers("StockAdjusted", &event_id, &commands);
    dead_headers.push((
        headers::TRACEPARENT,
        "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
    ));
    produce(
        &saga.stack,
        &saga.topics.dead_letter(Topic::InventoryCommands),
        &lamp,
        &payload,
        &dead_headers,
    )
    .await;

    let redriven = json_lines(&run(saga.stack.chorus(&saga.topics).args([
        "dlq",
        "redrive",
        "inventory.commands.dlq",
        "--all",
    ])));
    assert_eq!(redriven.len(), 1, "{redriven:?}");
    let first = &redriven[0];
    assert_eq!(first["to"], commands);
    assert_eq!(first["key"], lamp.as_str());
    assert_eq!(first["event_id"], event_id.as_str());
    let from = first["from"].as_str().unwrap().to_string();

    // It takes effect: the stock the dead letter set.
    let mut available = Value::Null;
    for _ in 0..300 {
        available = saga.stock(&lamp).await.unwrap()["available"].clone();
        if available == 77 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(available, 77, "the redriven StockAdjusted was not applied");

    // The republished copy carries the event's own headers and where it was.
    // On the commands topic now: the gateway's adjustment to 10, then the copy.
    let copies = saga.stack.read(&commands, 2, Duration::from_secs(10)).await;
    let copy = copies
        .iter()
        .find(|m| {
            (m.partition(), m.offset())
                == (
                    first["partition"].as_i64().unwrap() as i32,
                    first["offset"].as_i64().unwrap(),
                )
        })
        .expect("the redriven copy");
    let copy_headers: Vec<(String, String)> = copy
        .headers()
        .unwrap()
        .iter()
        .map(|h| {
            (
                h.key.to_string(),
                String::from_utf8_lossy(h.value.unwrap_or_default()).into_owned(),
            )
        })
        .collect();
    let names: Vec<&str> = copy_headers.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        names,
        [
            headers::EVENT_TYPE,
            headers::EVENT_ID,
            headers::TRACEPARENT,
            headers::REDRIVEN_FROM
        ]
    );
    assert_eq!(copy_headers[3].1, from);
    assert_eq!(copy.payload(), Some(&payload[..]));

    // Stock moves on; a second redrive of the same dead letter must not take it back.
    saga.set_stock(&lamp, 20, "5.00").await;
    let at = from.rsplit('/').next().unwrap();
    let again = json_lines(&run(saga.stack.chorus(&saga.topics).args([
        "dlq",
        "redrive",
        "inventory.commands.dlq",
        "--at",
        at,
    ])));
    assert_eq!(again.len(), 1);
    let (partition, offset) = (
        again[0]["partition"].as_i64().unwrap() as i32,
        again[0]["offset"].as_i64().unwrap(),
    );
    // Wait until the inventory worker has processed past the second copy.
    let group = format!("{}.inventory", saga.topics.namespace());
    saga.stack
        .wait_committed_past(&group, &commands, partition, offset)
        .await;
    assert_eq!(saga.stock(&lamp).await.unwrap()["available"], 20);
    let dead = saga.topics.dead_letter(Topic::InventoryCommands);
    assert_eq!(
        watermarks(&saga.stack, &dead).1,
        1,
        "the redriven copies were not dead-lettered again"
    );
}

#[tokio::test]
async fn kafka_verbs_give_up_naming_the_address_they_tried() {
    let nowhere = Stack {
        brokers: "127.0.0.1:1".to_string(),
        registry: "http://127.0.0.1:1/apis/ccompat/v7".to_string(),
        sasl_brokers: "127.0.0.1:1".to_string(),
    };
    let topics = chorus_avro::TopicCatalogue::default();
    for args in [
        vec!["dlq", "list", "orders.dlq"],
        vec!["dlq", "show", "orders.dlq", "0:0"],
        vec!["dlq", "redrive", "orders.dlq", "--all"],
        vec!["chaos", "poison", "--count", "1"],
    ] {
        let output = run(nowhere
            .chorus(&topics)
            .args(&args)
            .env("CHORUS_TIMEOUT_SECS", "2"));
        assert!(!output.status.success(), "{args:?}: {}", describe(&output));
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("127.0.0.1:1"), "{args:?}: {stderr}");
    }
}
