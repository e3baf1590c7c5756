//! `chorus produce` and `chorus tail` against the real broker and registry.

use std::time::Duration;

use chorus_tests::{Stack, describe, run, stdout};
use rdkafka::producer::FutureRecord;
use serde_json::Value;

fn lines(output: &std::process::Output) -> Vec<Value> {
    stdout(output)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

#[tokio::test]
async fn produce_then_tail_by_order_shows_the_same_event() {
    let stack = Stack::get().await;
    let topics = stack.fresh_topics().await;
    let order_id = format!("order-{}", uuid::Uuid::new_v4());
    let json = serde_json::json!({
        "order_id": order_id,
        "customer_id": "alice",
        "items": [{"sku": "SKU-1", "quantity": 2}],
        "currency": "EUR",
        "payment_token": "tok_ok"
    });
    // Another order on the same topic, which the filter must hide.
    let other = run(stack.chorus(&topics).args([
        "produce",
        "OrderPlaced",
        "--auto-register",
        "--json",
        &serde_json::json!({"order_id":"someone-else","customer_id":"bob","items":[],"currency":"EUR","payment_token":"tok_ok"}).to_string(),
    ]));
    assert!(other.status.success(), "{}", describe(&other));

    let produced = run(stack.chorus(&topics).args([
        "produce",
        "OrderPlaced",
        "--auto-register",
        "--json",
        &json.to_string(),
    ]));
    assert!(produced.status.success(), "{}", describe(&produced));
    let receipt = &lines(&produced)[0];
    assert_eq!(
        receipt["topic"],
        topics.topic_of(chorus_avro::EventType::OrderPlaced)
    );
    assert!(receipt["partition"].as_i64().is_some() && receipt["offset"].as_i64().is_some());

    let tailed = run(stack.chorus(&topics).args([
        "tail",
        "orders",
        "--from-beginning",
        "--order",
        &order_id,
    ]));
    assert!(tailed.status.success(), "{}", describe(&tailed));
    let shown = lines(&tailed);
    assert_eq!(shown.len(), 1, "{}", describe(&tailed));
    let line = &shown[0];
    assert_eq!(line["key"], order_id.as_str());
    assert_eq!(line["type"], "OrderPlaced");
    assert_eq!(line["partition"], receipt["partition"]);
    assert_eq!(line["offset"], receipt["offset"]);
    assert_eq!(line["event"]["event_id"], receipt["event_id"]);
    assert_eq!(line["event"]["items"], json["items"]);
    // The CLI never prints a payment token, sealed or not.
    assert_eq!(line["event"]["payment_token"], "<encrypted>");
    assert!(!stdout(&tailed).contains("tok_ok"), "{}", describe(&tailed));
    assert_eq!(line["headers"]["chorus-event-type"], "OrderPlaced");
}

#[tokio::test]
async fn produce_rejects_bad_json_naming_the_field() {
    let stack = Stack::get().await;
    let topics = stack.fresh_topics().await;
    let cases = [
        ("{not json", "invalid JSON"),
        (
            r#"{"order_id":"o","customer_id":"c","currency":"EUR","payment_token":"t"}"#,
            "items",
        ),
        (
            r#"{"order_id":"o","customer_id":"c","currency":"EUR","payment_token":"t","items":[{"sku":"A","quantity":"2"}]}"#,
            "items[0].quantity",
        ),
    ];
    for (json, field) in cases {
        let output = run(stack
            .chorus(&topics)
            .args(["produce", "OrderPlaced", "--json", json]));
        assert!(!output.status.success(), "{json}: {}", describe(&output));
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains(field),
            "{json}: expected `{field}` in {stderr}"
        );
    }
}

#[tokio::test]
async fn tail_shows_undecodable_messages_and_keeps_going() {
    let stack = Stack::get().await;
    let topics = stack.fresh_topics().await;
    let topic = topics.topic_of(chorus_avro::EventType::OrderPlaced);
    let producer = stack.producer();
    let codec = stack.codec(&topics, true);
    let good = codec
        .encode(&chorus_avro::EventType::OrderPlaced.example("o-good"))
        .await
        .unwrap();
    for payload in [b"garbage".to_vec(), good] {
        producer
            .send(
                FutureRecord::to(&topic).key("same-key").payload(&payload),
                Duration::from_secs(10),
            )
            .await
            .unwrap();
    }
    let tailed = run(stack
        .chorus(&topics)
        .args(["tail", &topic, "--from-beginning"]));
    assert!(tailed.status.success(), "{}", describe(&tailed));
    let shown = lines(&tailed);
    assert_eq!(shown.len(), 2, "{}", describe(&tailed));
    assert_eq!(shown[0]["undecodable"]["class"], "wrong_magic_byte");
    assert_eq!(shown[0]["raw_hex"], "67617262616765");
    assert_eq!(shown[1]["event"]["order_id"], "o-good");
}
