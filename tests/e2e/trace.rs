//! `chorus trace` on real sagas: every event of the order on every topic
//! and dead-letter topic, in time order with its producer and cause; the
//! read model's status and history; the notifications; what a saga that has
//! not ended waits for.

use std::collections::HashSet;
use std::time::Duration;

use chorus_avro::{Topic, headers};
use chorus_tests::saga::{Saga, sku};
use chorus_tests::{describe, run, stdout};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::FutureRecord;
use serde_json::Value;

fn trace_json(saga: &Saga, order_id: &str) -> Value {
    let output = run(saga.chorus().args(["trace", order_id, "--json"]));
    assert!(output.status.success(), "{}", describe(&output));
    serde_json::from_str(&stdout(&output)).unwrap_or_else(|e| panic!("{e}: {}", describe(&output)))
}

#[tokio::test]
async fn trace_prints_a_confirmed_saga_from_order_placed_to_notification() {
    let saga = Saga::start().await;
    let mug = sku("MUG");
    saga.set_stock(&mug, 10, "19.99").await;
    let order_id = saga.place_ok("alice", &[(&mug, 2)], "tok_ok").await;
    saga.wait_final("alice", &order_id, Duration::from_secs(60))
        .await;
    assert_eq!(saga.deliveries(Some(&order_id), 1).await.0, 1);
    // A dead letter of the order belongs in its trace too.
    let producer = saga.stack.producer();
    producer
        .send(
            FutureRecord::to(&saga.topics.dead_letter(Topic::Payments))
                .key(&order_id)
                .payload(&b"not avro"[..])
                .headers(OwnedHeaders::new().insert(Header {
                    key: headers::ERROR_CLASS,
                    value: Some("wrong_magic_byte"),
                })),
            Duration::from_secs(10),
        )
        .await
        .unwrap();

    let trace = trace_json(&saga, &order_id);
    assert_eq!(trace["order"]["order_id"], order_id.as_str());
    assert_eq!(trace["order"]["status"], "CONFIRMED");
    assert_eq!(trace["order"]["history"].as_array().unwrap().len(), 3);
    assert_eq!(trace["waiting"], Value::Null);
    let deliveries = trace["deliveries"].as_array().unwrap();
    assert_eq!(deliveries.len(), 1, "{trace}");
    assert_eq!(deliveries[0]["final_status"], "CONFIRMED");

    let timeline = trace["timeline"].as_array().unwrap();
    let mut types: Vec<&str> = timeline
        .iter()
        .map(|e| e["event_type"].as_str().unwrap_or("?"))
        .collect();
    types.sort_unstable();
    assert_eq!(
        types,
        [
            "?",
            "NotificationSent",
            "OrderConfirmed",
            "OrderPlaced",
            "PaymentAuthorized",
            "StockReserved"
        ],
        "{trace}"
    );
    assert_eq!(timeline[0]["event_type"], "OrderPlaced");
    assert_eq!(timeline[0]["since_placed_ms"], 0);
    assert_eq!(timeline[0]["service"], "gateway");
    assert_eq!(timeline[0]["event"]["payment_token"], "<encrypted>");
    let ids: HashSet<&str> = timeline
        .iter()
        .filter_map(|e| e["event_id"].as_str())
        .collect();
    let mut last = i64::MIN;
    for entry in timeline {
        let at = entry["timestamp"].as_i64().unwrap();
        assert!(at >= last, "not in time order: {trace}");
        last = at;
        if entry["dead_letter"].is_string() {
            assert_eq!(entry["topic"], saga.topics.dead_letter(Topic::Payments));
            assert!(
                entry["undecodable"]
                    .as_str()
                    .unwrap()
                    .starts_with("wrong_magic_byte")
            );
            continue;
        }
        assert!(entry["since_placed_ms"].as_i64().unwrap() >= 0, "{entry}");
        let (event_type, service) = (
            entry["event_type"].as_str().unwrap(),
            entry["service"].as_str().unwrap(),
        );
        let expected = match event_type {
            "OrderPlaced" => "gateway",
            "StockReserved" => "inventory",
            "PaymentAuthorized" => "payment",
            "OrderConfirmed" => "order",
            _ => "notification",
        };
        assert_eq!(service, expected, "{entry}");
        if event_type != "OrderPlaced" {
            let cause = entry["caused_by"].as_str().unwrap();
            assert!(
                ids.contains(cause),
                "{event_type} caused by {cause}, not in the trace"
            );
        }
    }
    // One partition per topic, never the whole topic.
    assert!(
        trace["scanned"]["partitions"].as_u64().unwrap() <= 10,
        "{trace}"
    );

    let text = run(saga.chorus().args(["trace", &order_id]));
    assert!(text.status.success(), "{}", describe(&text));
    let text = stdout(&text);
    assert!(
        text.starts_with(&format!("order {order_id} of alice: CONFIRMED\n")),
        "{text}"
    );
    assert!(text.contains("timeline: 6 messages"), "{text}");
    assert!(text.contains("+0ms"), "{text}");
    assert!(text.contains("DEAD-LETTERED (wrong_magic_byte)"), "{text}");
    assert!(text.contains("CONFIRMED via log"), "{text}");
    assert!(text.contains("the saga has ended"), "{text}");
    assert!(!text.contains("tok_ok"), "{text}");
}

#[tokio::test]
async fn trace_says_what_an_unfinished_saga_waits_for_and_refuses_unknown_orders() {
    let mut saga = Saga::start().await;
    let lamp = sku("LAMP");
    saga.set_stock(&lamp, 10, "45.00").await;
    saga.kill("payment");
    let order_id = saga.place_ok("bob", &[(&lamp, 1)], "tok_ok").await;
    let mut trace = Value::Null;
    for _ in 0..300 {
        let output = run(saga.chorus().args(["trace", &order_id, "--json"]));
        if output.status.success() {
            trace = serde_json::from_str(&stdout(&output)).unwrap();
            if trace["order"]["status"] == "RESERVED" {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(trace["order"]["status"], "RESERVED", "{trace}");
    assert!(
        trace["waiting"]["step"]
            .as_str()
            .unwrap()
            .starts_with("payment"),
        "{trace}"
    );
    assert!(trace["waiting"]["since"].is_string());
    let types: Vec<&str> = trace["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event_type"].as_str().unwrap())
        .collect();
    assert_eq!(types, ["OrderPlaced", "StockReserved"], "{trace}");
    let text = stdout(&run(saga.chorus().args(["trace", &order_id])));
    assert!(text.contains("waiting for payment"), "{text}");

    let unknown = run(saga.chorus().args(["trace", "no-such-order"]));
    assert!(!unknown.status.success(), "{}", describe(&unknown));
    let stderr = String::from_utf8_lossy(&unknown.stderr);
    assert!(
        stderr.contains("order no-such-order is unknown"),
        "{stderr}"
    );
}
