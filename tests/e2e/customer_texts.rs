//! Customers read fixed texts. A provider that refuses with a long error
//! body naming an internal host — as a decline (402) and as an outage (503,
//! every attempt) — leaves none of it in anything a customer reads: the
//! order view, the list, the `PaymentFailed` and `OrderCancelled` events a
//! notification is built from, the webhook's body, the outcome kept for the
//! e-mail, the notification log. Nor does the error of a call that timed
//! out, which names the provider's URL. What the provider said is in the
//! payment worker's log, for operators.

use std::collections::HashMap;
use std::time::Duration;

use axum::http::StatusCode;
use chorus_avro::CancelReason;
use chorus_tests::saga::{Saga, sku};
use serde_json::Value;

use crate::stub_provider::{Scripted, StubProvider};
use crate::webhook_receiver::WebhookReceiver;

/// What must never reach a customer: the internal host in the provider's answer.
const INTERNAL: &str = "db-7.internal:5432";
/// What else of that answer must not.
const PROVIDER_TEXT: [&str; 3] = [INTERNAL, "payments-ledger", "pool.rs"];
const WEBHOOK_SECRET: &str = "whsec_Y3VzdG9tZXIgdGV4dHMgdGVzdCBrZXkgMzIgYnl0ZXM=";

/// A provider's error body as one in trouble sends it: long, and naming
/// the host behind it.
fn internal_error_body() -> String {
    format!(
        "FATAL: connection to {INTERNAL} (payments-ledger) refused\n{}",
        "    at ledger::pool::acquire (src/pool.rs:88)\n".repeat(600)
    )
}

#[tokio::test]
async fn a_providers_internal_error_text_reaches_no_customer_only_the_payment_log() {
    let body = internal_error_body();
    let provider = StubProvider::start(
        "auth_never".to_string(),
        HashMap::from([
            (
                "tok_refused".to_string(),
                Scripted::Answer(StatusCode::PAYMENT_REQUIRED, body.clone()),
            ),
            (
                "tok_down".to_string(),
                Scripted::Answer(StatusCode::SERVICE_UNAVAILABLE, body),
            ),
            (
                "tok_stalled".to_string(),
                Scripted::Stall(Duration::from_secs(2)),
            ),
        ]),
    )
    .await;
    // The error of a call that timed out names the provider's address.
    let address = provider.url.trim_start_matches("http://").to_string();
    let hooks = WebhookReceiver::start().await;
    let saga = Saga::start_with(&[
        ("CHORUS_PAYMENT_PROVIDER", "http"),
        ("CHORUS_PAYMENT_URL", provider.url.as_str()),
        ("CHORUS_PAYMENT_TIMEOUT_MS", "300"),
        ("CHORUS_WEBHOOK_URL", hooks.url.as_str()),
        ("CHORUS_WEBHOOK_SECRET", WEBHOOK_SECRET),
    ])
    .await;
    let toaster = sku("TOASTER");
    saga.set_stock(&toaster, 5, "30.00").await;

    let declined = saga.place_ok("ivy", &[(&toaster, 1)], "tok_refused").await;
    let unavailable = saga.place_ok("ivy", &[(&toaster, 1)], "tok_down").await;
    let timed_out = saga.place_ok("ivy", &[(&toaster, 1)], "tok_stalled").await;
    let leaks: Vec<&str> = PROVIDER_TEXT
        .into_iter()
        .chain([address.as_str()])
        .collect();
    for (order_id, reason) in [
        (&declined, CancelReason::PaymentDeclined),
        (&unavailable, CancelReason::PaymentUnavailable),
        (&timed_out, CancelReason::PaymentUnavailable),
    ] {
        let order = saga
            .wait_final("ivy", order_id, Duration::from_secs(60))
            .await;
        assert_eq!(
            (order["status"].as_str(), order["reason"].as_str()),
            (Some("CANCELLED"), Some(reason.code())),
            "{order}\npayment log:\n{}",
            saga.log("payment")
        );
        assert_none_of(
            &leaks,
            &format!("GET /v1/orders/{order_id}"),
            &order.to_string(),
        );
        assert_customer_events(&saga, order_id, reason, &leaks);
    }

    let list = saga
        .http
        .get(format!("{}/v1/orders", saga.gateway_url))
        .bearer_auth(saga.token("ivy", "customer"))
        .send()
        .await
        .unwrap();
    assert_eq!(list.status(), 200);
    assert_none_of(&leaks, "GET /v1/orders", &list.text().await.unwrap());

    // Each final state is notified: the webhook (and log) channel of each order.
    saga.deliveries(None, 6).await;
    let mut webhooks = hooks.deliveries();
    for _ in 0..300 {
        if webhooks.len() >= 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        webhooks = hooks.deliveries();
    }
    assert!(webhooks.len() >= 3, "{webhooks:?}");
    for delivery in &webhooks {
        let text = String::from_utf8_lossy(&delivery.body);
        assert_none_of(&leaks, "a webhook body", &text);
        let body: Value = serde_json::from_str(&text).unwrap();
        assert!(
            CancelReason::parse(body["reason"].as_str().unwrap_or_default()).is_some(),
            "{body}"
        );
    }
    let notifications = saga.db("notification").await;
    let outcomes: Vec<Value> = sqlx::query_scalar("SELECT outcome FROM deliveries")
        .fetch_all(&notifications)
        .await
        .unwrap();
    for outcome in outcomes {
        assert_none_of(
            &leaks,
            "an outcome kept for an e-mail",
            &outcome.to_string(),
        );
    }
    let notification_log = std::fs::read_to_string(saga.log_file("notification")).unwrap();
    // The notification worker never calls the provider: its log may not name it either.
    assert_none_of(&leaks, "the notification log", &notification_log);

    // Operators find what the provider said in the payment worker's log.
    let payment_log = std::fs::read_to_string(saga.log_file("payment")).unwrap();
    for (order_id, said) in [
        (&declined, INTERNAL),
        (&unavailable, INTERNAL),
        (&timed_out, address.as_str()),
    ] {
        assert!(
            payment_log
                .lines()
                .any(|line| line.contains(order_id.as_str()) && line.contains(said)),
            "the payment log names what the provider said about {order_id}:\n{}",
            saga.log("payment")
        );
    }
}

/// The order's `PaymentFailed` and `OrderCancelled` carry `reason` and its
/// fixed text, nothing of the provider's.
fn assert_customer_events(saga: &Saga, order_id: &str, reason: CancelReason, leaks: &[&str]) {
    for (topic, event_type) in [("payments", "PaymentFailed"), ("orders", "OrderCancelled")] {
        let events: Vec<Value> = saga
            .tail(topic, order_id)
            .into_iter()
            .filter(|m| m["type"] == event_type)
            .collect();
        assert_eq!(
            events.len(),
            1,
            "one {event_type} of {order_id}: {events:?}"
        );
        let event = &events[0]["event"];
        assert_none_of(leaks, event_type, &event.to_string());
        assert_eq!(event["reason"], reason.code(), "{event}");
        assert_eq!(event["detail"], reason.text(), "{event}");
    }
}

fn assert_none_of(leaks: &[&str], what: &str, text: &str) {
    for leak in leaks {
        assert!(
            !text.contains(leak),
            "{what} shows `{leak}` to the customer: {text:.2000}"
        );
    }
}
