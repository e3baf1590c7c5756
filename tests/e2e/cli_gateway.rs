//! The CLI's gateway verbs (`order place|status|cancel`, `stock set|get`)
//! against a whole deployment: the real gateway binary, workers and stack.
//! A refused request prints the gateway's error JSON alone on stderr and
//! exits non-zero.

use std::process::Output;
use std::time::Duration;

use chorus_avro::{Event, Topic};
use chorus_tests::saga::{Saga, sku};
use chorus_tests::{describe, run};
use rdkafka::message::Message;
use serde_json::Value;

fn answer(output: &Output) -> Value {
    assert!(output.status.success(), "{}", describe(output));
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| panic!("{e}: {}", describe(output)))
}

/// The error JSON of a refused request (stdout empty, exit non-zero).
fn refusal(output: &Output) -> Value {
    assert!(!output.status.success(), "{}", describe(output));
    assert!(output.stdout.is_empty(), "{}", describe(output));
    serde_json::from_slice(&output.stderr)
        .unwrap_or_else(|e| panic!("the error JSON alone on stderr ({e}): {}", describe(output)))
}

fn place(saga: &Saga, customer: &str, sku: &str) -> String {
    let placed = answer(&run(saga.chorus().args([
        "order",
        "place",
        "--sub",
        customer,
        "--sku",
        &format!("{sku}:1"),
    ])));
    assert_eq!(placed["status"], "PENDING");
    placed["order_id"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn order_cancel_answers_with_the_order_and_refuses_what_it_must() {
    let mut saga = Saga::start().await;
    let kettle = sku("KETTLE");
    saga.set_stock(&kettle, 10, "25.00").await;

    // A confirmed order can no longer be cancelled: 409 already_final.
    let confirmed = place(&saga, "alice", &kettle);
    let order = saga
        .wait_final("alice", &confirmed, Duration::from_secs(60))
        .await;
    assert_eq!(order["status"], "CONFIRMED");
    let error = refusal(&run(saga
        .chorus()
        .args(["order", "cancel", &confirmed, "--sub", "alice"])));
    assert_eq!(error["error"]["code"], "already_final", "{error}");

    // Without the payment worker the next order waits, reserved, for its payment.
    saga.kill("payment");
    let waiting = place(&saga, "alice", &kettle);
    let mut status = Value::Null;
    for _ in 0..300 {
        status = answer(&run(saga
            .chorus()
            .args(["order", "status", &waiting, "--sub", "alice"])))["status"]
            .clone();
        if status == "RESERVED" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(status, "RESERVED");

    // Someone else's order does not exist for them.
    let error = refusal(&run(saga
        .chorus()
        .args(["order", "cancel", &waiting, "--sub", "mallory"])));
    assert_eq!(error["error"]["code"], "not_found", "{error}");

    // The owner's request is accepted and answered with the order as it stands.
    let accepted = answer(&run(saga
        .chorus()
        .args(["order", "cancel", &waiting, "--sub", "alice"])));
    assert_eq!(accepted["order_id"], waiting.as_str());
    assert!(
        ["PENDING", "RESERVED", "CANCELLED"].contains(&accepted["status"].as_str().unwrap()),
        "{accepted}"
    );
    let order = saga
        .wait_final("alice", &waiting, Duration::from_secs(60))
        .await;
    assert_eq!(order["status"], "CANCELLED", "{order}");
    assert_eq!(order["reason"], "customer_cancelled", "{order}");
}

#[tokio::test]
async fn orders_and_stock_through_the_gateway() {
    let mut saga = Saga::start().await;
    let cup = sku("CUP");
    let saucer = sku("SAUCER");

    // stock set: an admin token is minted; the answer is the gateway's 202 body.
    let set = answer(&run(saga.chorus().args([
        "stock",
        "set",
        &cup,
        "--available",
        "5",
        "--price",
        "1.50",
        "--name",
        "Cup",
    ])));
    assert_eq!(set["unit_price"], "1.50", "{set}");
    saga.set_stock(&saucer, 5, "2.00").await;
    let mut stock = Value::Null;
    for _ in 0..300 {
        let got = run(saga.chorus().args(["stock", "get", &cup]));
        if got.status.success() {
            stock = answer(&got);
            if stock["available"] == 5 {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(stock["available"], 5, "{stock}");
    assert_eq!(stock["name"], "Cup");
    // Setting stock takes an admin; an unknown SKU is a 404.
    let error = refusal(&run(saga.chorus().args([
        "stock",
        "set",
        &cup,
        "--available",
        "9",
        "--price",
        "1.50",
        "--role",
        "customer",
    ])));
    assert_eq!(error["error"]["code"], "forbidden", "{error}");
    let error = refusal(&run(saga.chorus().args(["stock", "get", "SKU-404"])));
    assert_eq!(error["error"]["code"], "not_found", "{error}");

    // Without the payment worker, orders wait RESERVED until it comes back.
    // (Stopped cleanly, it leaves its consumer group at once: its successor
    // does not wait out a session timeout.)
    assert!(saga.terminate("payment").success());
    let place = |key: &str| {
        run(saga.chorus().args([
            "order",
            "place",
            "--sub",
            "alice",
            "--sku",
            &format!("{cup}:2"),
            "--sku",
            &saucer,
            "--idempotency-key",
            key,
        ]))
    };
    let placed = answer(&place("k1"));
    assert_eq!(placed["status"], "PENDING");
    let order_id = placed["order_id"].as_str().unwrap().to_string();
    assert_eq!(
        answer(&place("k1"))["order_id"],
        order_id.as_str(),
        "same key, same order"
    );
    let published = saga
        .stack
        .read(&saga.topics.name(Topic::Orders), 1, Duration::from_secs(10))
        .await;
    let codec = saga.stack.codec(&saga.topics, false);
    let Ok(Event::OrderPlaced(event)) = codec.decode(published[0].payload()).await else {
        panic!("not an OrderPlaced")
    };
    assert_eq!(event.order_id, order_id);
    assert_eq!(
        event.items.iter().map(|l| l.quantity).collect::<Vec<_>>(),
        [2, 1],
        "a SKU without :N is one unit"
    );

    // Someone else's order: the gateway's 404 JSON alone on stderr.
    let error = refusal(&run(saga
        .chorus()
        .args(["order", "status", &order_id, "--sub", "mallory"])));
    assert_eq!(error["error"]["code"], "not_found", "{error}");

    // --wait follows the order to its final status, one line per change.
    let follower = tokio::process::Command::from({
        let mut command = saga.chorus();
        command.args(["order", "status", &order_id, "--sub", "alice", "--wait"]);
        command
    })
    .kill_on_drop(true)
    .output();
    let follower = tokio::spawn(follower);
    let mut status = Value::Null;
    for _ in 0..300 {
        status = answer(&run(saga
            .chorus()
            .args(["order", "status", &order_id, "--sub", "alice"])))["status"]
            .clone();
        if status == "RESERVED" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(status, "RESERVED");
    saga.spawn("payment");
    let followed = tokio::time::timeout(Duration::from_secs(60), follower)
        .await
        .expect("--wait ends at the final status")
        .unwrap()
        .unwrap();
    assert!(followed.status.success(), "{}", describe(&followed));
    let statuses: Vec<String> = String::from_utf8(followed.stdout)
        .unwrap()
        .lines()
        .map(|line| {
            serde_json::from_str::<Value>(line).unwrap()["status"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    let tail: Vec<&str> = statuses
        .iter()
        .rev()
        .take(2)
        .rev()
        .map(String::as_str)
        .collect();
    assert_eq!(tail, ["RESERVED", "CONFIRMED"], "{statuses:?}");
    assert!(
        statuses.len() <= 3 && (statuses.len() == 2 || statuses[0] == "PENDING"),
        "{statuses:?}"
    );
}

#[tokio::test]
async fn load_places_its_orders_and_reports_what_became_of_them() {
    let saga = Saga::start().await;
    let out = std::env::temp_dir().join(format!("chorus-load-{}.json", uuid::Uuid::new_v4()));
    let output = run(saga.chorus().args([
        "load",
        "--orders",
        "20",
        "--concurrency",
        "4",
        "--skus",
        "3",
        "--customers",
        "5",
        "--mix",
        "decline=0.2,out-of-stock=0.2",
        "--quiet",
        "--out",
        out.to_str().unwrap(),
    ]));
    assert!(output.status.success(), "{}", describe(&output));
    let report: Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    std::fs::remove_file(&out).ok();
    assert_eq!(report["orders"], 20, "{report}");
    assert_eq!(report["completed"], 20, "{report}");
    assert_eq!(report["unexpected"], 0, "{report}");
    let outcomes = report["outcomes"].as_object().unwrap();
    assert_eq!(
        outcomes.values().map(|n| n.as_u64().unwrap()).sum::<u64>(),
        20
    );
    assert!(
        outcomes.len() == 3,
        "confirmed, declined and out of stock: {report}"
    );
    assert!(report["sagas_per_sec"].as_f64().unwrap() > 0.0);
    assert!(report["latency_ms"]["p50"].as_f64().unwrap() > 0.0);
    let costs = &report["costs"];
    assert!(
        costs["kafka_messages_per_saga"].as_f64().unwrap() >= 4.0,
        "{costs}"
    );
    let summary = String::from_utf8_lossy(&output.stdout);
    assert!(summary.contains("completed sagas"), "{summary}");
}
