//! Every saga ends, and nothing is left charged or reserved: deadlines,
//! customer cancellation, voided authorizations — through the real services.

use std::collections::HashMap;
use std::io::Read;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chorus_tests::saga::{Saga, sku};
use chorus_tests::{describe, run};
use futures::StreamExt;
use serde_json::{Value, json};

/// Charges the payment provider (the sandbox) holds for `order_id` that
/// were not voided.
async fn standing_charges(saga: &Saga, order_id: &str) -> i64 {
    sqlx::query_scalar(
        "SELECT count(*) FROM sandbox_charges WHERE idempotency_key = $1 AND voided_at IS NULL",
    )
    .bind(order_id)
    .fetch_one(&saga.db("payment").await)
    .await
    .unwrap()
}

/// Waits until the payment worker holds no call unanswered (no payment
/// `authorizing` or `voiding`) and knows at least `orders` orders.
async fn payments_settled(saga: &Saga, orders: i64) {
    let db = saga.db("payment").await;
    for _ in 0..600 {
        let (known, open): (i64, i64) = sqlx::query_as(
            "SELECT count(*), count(*) FILTER (WHERE status IN ('authorizing', 'voiding'))
             FROM payments",
        )
        .fetch_one(&db)
        .await
        .unwrap();
        if known >= orders && open == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the payment worker did not settle within 60 s");
}

#[tokio::test]
async fn with_the_payment_worker_down_orders_end_at_their_deadline_and_nothing_stands() {
    let mut saga = Saga::start_with(&[("CHORUS_ORDER_DEADLINE_SECS", "5")]).await;
    let lamp = sku("LAMP");
    saga.set_stock(&lamp, 10, "25.00").await;
    saga.kill("payment");
    let mut orders = Vec::new();
    for i in 0..4 {
        let customer = format!("patient-{i}");
        let order_id = saga.place_ok(&customer, &[(&lamp, 2)], "tok_ok").await;
        orders.push((customer, order_id));
    }
    for (customer, order_id) in &orders {
        let order = saga
            .wait_final(customer, order_id, Duration::from_secs(60))
            .await;
        assert_eq!(
            (order["status"].as_str(), order["reason"].as_str()),
            (Some("CANCELLED"), Some("timeout")),
            "{order}"
        );
    }
    assert_eq!(
        saga.settled_stock(&lamp).await,
        (10, 0, 0),
        "the stock is back"
    );

    // The payment worker comes back to reservations of cancelled orders.
    saga.spawn("payment");
    saga.wait_ready("payment").await;
    payments_settled(&saga, orders.len() as i64).await;
    for (_, order_id) in &orders {
        assert_eq!(standing_charges(&saga, order_id).await, 0, "{order_id}");
    }
}

/// A payment provider that takes every connection and request and never
/// answers; it records each request's path and idempotency key.
/// The requests a test server saw: (path, idempotency key).
type Seen = Arc<Mutex<Vec<(String, String)>>>;

fn silent_provider() -> (String, Seen) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let seen: Seen = Arc::default();
    let record = seen.clone();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let record = record.clone();
            // Read the request head, remember it, hold the connection open.
            let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
            let mut buffer = [0u8; 4096];
            let n = stream.read(&mut buffer).unwrap_or(0);
            let head = String::from_utf8_lossy(&buffer[..n]).to_string();
            let path = head.split_whitespace().nth(1).unwrap_or("").to_string();
            let key = head
                .lines()
                .find_map(|l| {
                    let (name, value) = l.split_once(':')?;
                    name.eq_ignore_ascii_case("idempotency-key")
                        .then(|| value.trim().to_string())
                })
                .unwrap_or_default();
            record.lock().unwrap().push((path, key));
            held.push(stream);
        }
    });
    (url, seen)
}

#[tokio::test]
async fn a_provider_that_never_answers_is_voided_and_the_orders_end() {
    let (provider, seen) = silent_provider();
    let saga = Saga::start_with(&[
        ("CHORUS_PAYMENT_PROVIDER", "http"),
        ("CHORUS_PAYMENT_URL", provider.as_str()),
        ("CHORUS_PAYMENT_TIMEOUT_MS", "300"),
        ("CHORUS_PAYMENT_MAX_ATTEMPTS", "2"),
        ("CHORUS_ORDER_DEADLINE_SECS", "8"),
    ])
    .await;
    let kettle = sku("KETTLE");
    saga.set_stock(&kettle, 5, "40.00").await;
    let mut orders = Vec::new();
    for i in 0..3 {
        let customer = format!("waiting-{i}");
        let order_id = saga.place_ok(&customer, &[(&kettle, 1)], "tok_ok").await;
        orders.push((customer, order_id));
    }
    for (customer, order_id) in &orders {
        let order = saga
            .wait_final(customer, order_id, Duration::from_secs(60))
            .await;
        assert_eq!(order["status"], "CANCELLED", "{order}");
    }
    assert_eq!(saga.settled_stock(&kettle).await, (5, 0, 0));
    // Before giving up on an answer that never came, the worker voided by
    // the order id, for each order.
    for (_, order_id) in &orders {
        let mut voided = false;
        for _ in 0..100 {
            voided = seen
                .lock()
                .unwrap()
                .iter()
                .any(|(path, key)| path == "/v1/voids" && key == order_id);
            if voided {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(
            voided,
            "no void asked for {order_id}: {:?}",
            seen.lock().unwrap()
        );
    }
}

#[tokio::test]
async fn customers_cancel_what_is_not_final_and_nobody_else_can() {
    let mut saga = Saga::start().await;
    let chair = sku("CHAIR");
    saga.set_stock(&chair, 10, "80.00").await;

    // Before payment: the payment worker is away, the order waits RESERVED.
    saga.kill("payment");
    let waiting = saga.place_ok("olga", &[(&chair, 2)], "tok_ok").await;
    saga.wait_status("olga", &waiting, "RESERVED").await;
    let (status, body) = saga.cancel("mallory", &waiting).await;
    assert_eq!(status, 404, "{body}");
    let (status, body) = saga.cancel("olga", &waiting).await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["order_id"], waiting.as_str());
    // Asking again is harmless: accepted again, or already final.
    let (status, body) = saga.cancel("olga", &waiting).await;
    assert!(status == 202 || status == 409, "{status} {body}");
    let order = saga
        .wait_final("olga", &waiting, Duration::from_secs(60))
        .await;
    assert_eq!(
        (&order["status"], &order["reason"], &order["cancellation"]),
        (
            &json!("CANCELLED"),
            &json!("customer_cancelled"),
            &json!("accepted")
        )
    );
    let (status, body) = saga.cancel("olga", &waiting).await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (409, &json!("already_final"))
    );
    assert_eq!(saga.settled_stock(&chair).await, (10, 0, 0));
    saga.spawn("payment");
    saga.wait_ready("payment").await;
    payments_settled(&saga, 1).await;
    assert_eq!(standing_charges(&saga, &waiting).await, 0);
    let cancelled: Vec<Value> = saga
        .tail("orders", &waiting)
        .into_iter()
        .filter(|m| m["type"] == "OrderCancelled")
        .collect();
    assert_eq!(cancelled.len(), 1, "one OrderCancelled: {cancelled:?}");

    // After confirmation: the gateway says it is final; a request that
    // races the confirmation (injected here) is recorded as rejected.
    let bought = saga.place_ok("olga", &[(&chair, 1)], "tok_ok").await;
    let order = saga
        .wait_final("olga", &bought, Duration::from_secs(60))
        .await;
    assert_eq!(order["status"], "CONFIRMED");
    let (status, body) = saga.cancel("olga", &bought).await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (409, &json!("already_final"))
    );
    let request = json!({"order_id": bought, "customer_id": "olga", "requested_by": "olga"});
    let output = run(saga.chorus().args([
        "produce",
        "OrderCancellationRequested",
        "--json",
        &request.to_string(),
    ]));
    assert!(output.status.success(), "{}", describe(&output));
    let mut shown = Value::Null;
    for _ in 0..100 {
        shown = saga.order("olga", &bought).await;
        if shown["cancellation"] == "rejected" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        (&shown["status"], &shown["cancellation"]),
        (&json!("CONFIRMED"), &json!("rejected"))
    );
    assert_eq!(standing_charges(&saga, &bought).await, 1);
}

#[tokio::test]
async fn two_hundred_cancellations_racing_their_sagas_leave_nothing_standing() {
    let saga = Saga::start().await;
    let pen = sku("PEN");
    saga.set_stock(&pen, 1000, "2.00").await;
    let outcomes: Vec<(String, String, Value)> = futures::stream::iter(0..200)
        .map(|i| {
            let saga = &saga;
            let pen = pen.clone();
            async move {
                let customer = format!("racer-{}", i % 40);
                let order_id = saga.place_ok(&customer, &[(&pen, 1)], "tok_ok").await;
                let delay = rand::random::<u64>() % 300;
                tokio::time::sleep(Duration::from_millis(delay)).await;
                let (status, body) = saga.cancel(&customer, &order_id).await;
                assert!(status == 202 || status == 409, "{status} {body}");
                let order = saga
                    .wait_final(&customer, &order_id, Duration::from_secs(120))
                    .await;
                (customer, order_id, order)
            }
        })
        .buffer_unordered(25)
        .collect()
        .await;
    let mut tally: HashMap<String, i64> = HashMap::new();
    payments_settled(&saga, 0).await;
    for (_, order_id, order) in &outcomes {
        let status = order["status"].as_str().unwrap().to_string();
        let standing = standing_charges(&saga, order_id).await;
        match status.as_str() {
            "CONFIRMED" => assert_eq!(standing, 1, "{order_id} confirmed with {standing} charges"),
            "CANCELLED" => assert_eq!(standing, 0, "{order_id} cancelled with a charge standing"),
            other => panic!("{order_id} ended {other}"),
        }
        *tally.entry(status).or_default() += 1;
    }
    let confirmed = tally.get("CONFIRMED").copied().unwrap_or(0) as i32;
    assert_eq!(
        saga.settled_stock(&pen).await,
        (1000 - confirmed, 0, confirmed),
        "{tally:?}"
    );
}
