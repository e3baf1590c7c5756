//! `chorus sagas stuck` against a deployment with a worker down: the orders
//! that have not ended are listed with the step they wait for, the others
//! are not, and the exit status is 0 whether any are listed or not.

use std::time::Duration;

use chorus_tests::saga::{Saga, sku};
use chorus_tests::{describe, run, stdout};
use serde_json::Value;

/// Polls the gateway until the order shows `status`.
async fn wait_status(saga: &Saga, customer: &str, order_id: &str, status: &str) {
    let url = format!("{}/v1/orders/{order_id}", saga.gateway_url);
    let mut shown = Value::Null;
    for _ in 0..300 {
        let response = saga
            .http
            .get(&url)
            .bearer_auth(saga.token(customer, "customer"))
            .send()
            .await
            .unwrap();
        if response.status() == 200 {
            shown = response.json::<Value>().await.unwrap()["status"].clone();
            if shown == status {
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("order {order_id} is {shown}, never {status}");
}

fn stuck(saga: &Saga, older_than: &str) -> Value {
    let output = run(saga
        .chorus()
        .args(["sagas", "stuck", "--older-than", older_than, "--json"]));
    assert!(output.status.success(), "{}", describe(&output));
    serde_json::from_str(&stdout(&output)).unwrap_or_else(|e| panic!("{e}: {}", describe(&output)))
}

#[tokio::test]
async fn stuck_sagas_are_listed_with_the_step_they_wait_for() {
    let mut saga = Saga::start().await;
    let pen = sku("PEN");
    saga.set_stock(&pen, 10, "1.50").await;
    let done = saga.place_ok("carol", &[(&pen, 1)], "tok_ok").await;
    saga.wait_final("carol", &done, Duration::from_secs(60))
        .await;

    saga.kill("payment");
    let reserved = saga.place_ok("carol", &[(&pen, 1)], "tok_ok").await;
    wait_status(&saga, "carol", &reserved, "RESERVED").await;
    saga.kill("inventory");
    let pending = saga.place_ok("dave", &[(&pen, 1)], "tok_ok").await;
    wait_status(&saga, "dave", &pending, "PENDING").await;

    let report = stuck(&saga, "0s");
    assert_eq!(report["count"], 2, "{report}");
    let sagas = report["sagas"].as_array().unwrap();
    let listed: Vec<(&str, &str, &str)> = sagas
        .iter()
        .map(|s| {
            (
                s["order_id"].as_str().unwrap(),
                s["status"].as_str().unwrap(),
                s["waiting_for"]
                    .as_str()
                    .unwrap()
                    .split(':')
                    .next()
                    .unwrap(),
            )
        })
        .collect();
    assert_eq!(
        listed,
        [
            (reserved.as_str(), "RESERVED", "payment"),
            (pending.as_str(), "PENDING", "inventory")
        ],
        "oldest first, the confirmed order left out: {report}"
    );
    assert!(sagas.iter().all(|s| s["age_secs"].as_f64().unwrap() >= 0.0));

    // Younger than the threshold: none listed, still a success.
    let none = stuck(&saga, "1h");
    assert_eq!(none["count"], 0, "{none}");
    let text = run(saga.chorus().args(["sagas", "stuck", "--older-than", "1h"]));
    assert!(text.status.success(), "{}", describe(&text));
    assert_eq!(stdout(&text), "0 sagas not ended after 1h00m00s\n");

    let text = run(saga.chorus().args(["sagas", "stuck", "--older-than", "0s"]));
    assert!(text.status.success(), "{}", describe(&text));
    let text = stdout(&text);
    assert!(text.starts_with("2 sagas not ended after 0s\n"), "{text}");
    assert!(
        text.contains(&reserved) && text.contains(&pending),
        "{text}"
    );
    assert!(!text.contains(&done), "{text}");
}

#[tokio::test]
async fn an_unreachable_read_model_is_named_without_its_password() {
    let stack = chorus_tests::Stack::get().await;
    let topics = chorus_avro::TopicCatalogue::default();
    let url = "postgres://reader:hunter2-secret@127.0.0.1:1/chorus_order";
    for args in [
        vec!["sagas", "stuck", "--order-db", url],
        vec!["trace", "some-order", "--order-db", url],
    ] {
        let output = run(stack
            .chorus(&topics)
            .args(&args)
            .env("CHORUS_TIMEOUT_SECS", "2"));
        assert!(!output.status.success(), "{args:?}: {}", describe(&output));
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("127.0.0.1:1"), "{args:?}: {stderr}");
        assert!(!stderr.contains("hunter2"), "{args:?}: {stderr}");
    }
    let output = run(stack
        .chorus(&topics)
        .args(["chaos", "check", "--gateway-db", url]));
    assert!(!output.status.success(), "{}", describe(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("gateway database at postgres://reader:***@127.0.0.1:1"),
        "{stderr}"
    );
}
