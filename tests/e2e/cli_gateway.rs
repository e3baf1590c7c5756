//! The CLI's gateway verbs (`order place|status|cancel`, `stock set|get`)
//! against a whole deployment: the real gateway binary, workers and stack.
//! A refused request prints the gateway's error JSON alone on stderr and
//! exits non-zero.

use std::process::Output;
use std::time::Duration;

use chorus_tests::saga::{Saga, sku};
use chorus_tests::{describe, run};
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
