//! The saga under pressure: racing orders, a worker killed mid-stream,
//! garbage on a topic, duplicated events, shutdown.

use std::collections::HashMap;
use std::time::Duration;

use chorus_avro::EventType;
use chorus_avro::headers as dlq;
use chorus_tests::designed::{self, Design, Placed};
use chorus_tests::saga::{Saga, order_body, sku};
use chorus_tests::{describe, run};
use futures::StreamExt;
use rdkafka::message::{Headers, Message};
use rdkafka::producer::FutureRecord;
use serde_json::json;

#[tokio::test]
async fn racing_orders_never_oversell() {
    let saga = Saga::start().await;
    let ticket = sku("TICKET");
    saga.set_stock(&ticket, 50, "10.00").await;

    let orders: Vec<(String, String)> = futures::stream::iter(0..200)
        .map(|i| {
            let saga = &saga;
            let ticket = ticket.clone();
            async move {
                let customer = format!("fan-{i}");
                let order_id = saga.place_ok(&customer, &[(&ticket, 1)], "tok_ok").await;
                (customer, order_id)
            }
        })
        .buffer_unordered(50)
        .collect()
        .await;
    let mut outcomes: HashMap<String, usize> = HashMap::new();
    for (customer, order_id) in &orders {
        let order = saga
            .wait_final(customer, order_id, Duration::from_secs(120))
            .await;
        let outcome = format!("{}:{}", order["status"], order["reason"]);
        *outcomes.entry(outcome).or_default() += 1;
    }
    assert_eq!(
        outcomes.get("\"CONFIRMED\":null"),
        Some(&50),
        "{outcomes:?}"
    );
    assert_eq!(
        outcomes.get("\"CANCELLED\":\"out_of_stock\""),
        Some(&150),
        "{outcomes:?}"
    );
    assert_eq!(saga.settled_stock(&ticket).await, (0, 0, 50));
}

#[tokio::test]
async fn a_worker_killed_mid_stream_loses_and_doubles_nothing() {
    let mut saga = Saga::start().await;
    let widget = sku("WIDGET");
    // 400 payable orders of one unit, and room for the 50 declined ones to
    // hold a unit each until their payment fails: no payable order can run
    // out of stock, so every order's fate is known before it is placed.
    saga.set_stock(&widget, 450, "3.00").await;

    let mut orders = Vec::new();
    let mut payment_stops = Vec::new();
    for i in 0..500 {
        // One order in ten declines, so compensations run through the crash
        // too; one in ten asks for more than there ever is.
        let (design, quantity) = match i % 10 {
            0 => (Design::Declined, 1),
            5 => (Design::OutOfStock, 451),
            _ => (Design::Payable, 1),
        };
        let customer = format!("buyer-{}", i % 20);
        let placed_at = chrono::Utc::now();
        let order_id = saga
            .place_ok(&customer, &[(&widget, quantity)], design.token())
            .await;
        orders.push(Placed {
            customer,
            order_id,
            design,
            placed_at,
        });
        if i == 150 {
            saga.kill("inventory");
            saga.spawn("inventory");
        }
        if i == 300 {
            let stopping = chrono::Utc::now();
            saga.kill("payment");
            saga.spawn("payment");
            saga.wait_ready("payment").await;
            payment_stops.push((stopping, chrono::Utc::now()));
        }
    }
    saga.wait_ready("inventory").await;

    // Past the default deadline: an order the crash stalled ends `timeout`.
    designed::wait_final(&saga, &orders, Duration::from_secs(180)).await;
    // Each order its designed fate, final within 20 s of being placed (a
    // crash included); no double charge, counted from the provider's own
    // call log: one standing charge per confirmed order, no authorize call
    // again but across the payment worker's crash, none for an order out of
    // stock, no charge for a declined one.
    designed::check(
        &saga,
        &orders,
        &payment_stops,
        Some(Duration::from_secs(20)),
    )
    .await
    .assert_as_designed();
    let payments = saga.db("payment").await;
    let (charges, standing): (i64, i64) = sqlx::query_as(
        "SELECT count(*), count(*) FILTER (WHERE voided_at IS NULL) FROM sandbox_charges",
    )
    .fetch_one(&payments)
    .await
    .unwrap();
    assert_eq!((charges, standing), (400, 400), "the provider's charges");

    // Stock conserved: every unit is available or sold, none left reserved.
    assert_eq!(saga.settled_stock(&widget).await, (50, 0, 400));

    // One notification per order's final state.
    assert_eq!(saga.deliveries(None, 500).await, (500, 500));
}

#[tokio::test]
async fn garbage_is_dead_lettered_and_the_next_order_still_completes() {
    let saga = Saga::start().await;
    let cup = sku("CUP");
    saga.set_stock(&cup, 5, "7.00").await;
    let orders_topic = saga.topics.topic_of(EventType::OrderPlaced);
    let producer = saga.stack.producer();
    producer
        .send(
            FutureRecord::to(&orders_topic)
                .key("garbage-key")
                .payload(&b"\x00\x00\x00not avro at all"[..]),
            Duration::from_secs(10),
        )
        .await
        .unwrap();

    let order_id = saga.place_ok("frank", &[(&cup, 1)], "tok_ok").await;
    let order = saga
        .wait_final("frank", &order_id, Duration::from_secs(60))
        .await;
    assert_eq!(order["status"], "CONFIRMED");

    // Every worker reading the orders topic dead-letters its own copy.
    let dead = saga
        .stack
        .read(
            &saga.topics.dead_letter(chorus_avro::Topic::Orders),
            1,
            Duration::from_secs(30),
        )
        .await;
    let message = &dead[0];
    assert_eq!(message.key(), Some(&b"garbage-key"[..]));
    assert_eq!(message.payload(), Some(&b"\x00\x00\x00not avro at all"[..]));
    let headers = message.headers().unwrap();
    let header = |name: &str| {
        headers
            .iter()
            .find(|h| h.key == name)
            .and_then(|h| h.value)
            .map(|v| String::from_utf8_lossy(v).into_owned())
    };
    assert!(header(dlq::ERROR_CLASS).is_some());
    assert!(header(dlq::ERROR_MESSAGE).is_some());
    assert_eq!(header(dlq::ORIGINAL_TOPIC), Some(orders_topic));
    assert!(header(dlq::ORIGINAL_OFFSET).is_some());
}

/// Produces one event from its JSON with `chorus produce`; where it landed.
fn produce(saga: &Saga, event_type: &str, json: &str) -> (i32, i64) {
    let output = run(saga.chorus().args(["produce", event_type, "--json", json]));
    assert!(output.status.success(), "{}", describe(&output));
    let landed: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    (
        landed["partition"].as_i64().unwrap() as i32,
        landed["offset"].as_i64().unwrap(),
    )
}

#[tokio::test]
async fn the_same_event_produced_twice_has_one_effect() {
    let saga = Saga::start().await;
    let book = sku("BOOK");
    // The stock is set by an event produced here rather than through the
    // admin API, so that the very same event can come again later. The same
    // text is the same event (the same event id).
    let adjusted = json!({
        "sku": book,
        "name": book,
        "available": 10,
        "unit_price": "12.00",
        "occurred_at": chrono::Utc::now().timestamp_millis(),
    })
    .to_string();
    produce(&saga, "StockAdjusted", &adjusted);
    let mut shown = None;
    for _ in 0..300 {
        shown = saga.stock(&book).await;
        if shown.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(shown.expect("the adjustment applied")["available"], 10);

    let order_id = uuid::Uuid::new_v4().to_string();
    let json = json!({
        "order_id": order_id,
        "customer_id": "grace",
        "items": [{"sku": book, "quantity": 3}],
        "currency": "EUR",
        "payment_token": "tok_ok",
        // Placed now (its deadline runs from here).
        "occurred_at": chrono::Utc::now().timestamp_millis(),
    })
    .to_string();
    for _ in 0..2 {
        produce(&saga, "OrderPlaced", &json);
    }
    // Injected behind the gateway's back, the order shows once the order
    // worker has recorded it.
    let url = format!("{}/v1/orders/{order_id}", saga.gateway_url);
    let token = saga.token("grace", "customer");
    for _ in 0..300 {
        let response = saga
            .http
            .get(&url)
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        if response.status() == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let order = saga
        .wait_final("grace", &order_id, Duration::from_secs(60))
        .await;
    assert_eq!(order["status"], "CONFIRMED");
    assert_eq!(saga.settled_stock(&book).await, (7, 0, 3));

    // The adjustment again, after the sale (a redelivery, or a producer's
    // retry that got through late): applied a second time, it would put the
    // three units sold back on sale.
    let (partition, offset) = produce(&saga, "StockAdjusted", &adjusted);
    let group = format!("{}.inventory", saga.topics.namespace());
    let commands = saga.topics.topic_of(EventType::StockAdjusted);
    saga.stack
        .wait_committed_past(&group, &commands, partition, offset)
        .await;
    assert_eq!(
        saga.settled_stock(&book).await,
        (7, 0, 3),
        "(available, reserved, sold) after the adjustment came again"
    );

    // One authorization, counted from the payment provider's own call log.
    let calls: Vec<(String, i64)> = sqlx::query_as(
        "SELECT kind, count(*) FROM sandbox_calls WHERE idempotency_key = $1 GROUP BY kind",
    )
    .bind(&order_id)
    .fetch_all(&saga.db("payment").await)
    .await
    .unwrap();
    assert_eq!(calls, [("authorize".to_string(), 1)]);
}

#[tokio::test]
async fn sigterm_stops_every_service_cleanly() {
    let mut saga = Saga::start().await;
    let bag = sku("BAG");
    saga.set_stock(&bag, 3, "30.00").await;
    let order_id = saga.place_ok("heidi", &[(&bag, 1)], "tok_ok").await;
    saga.wait_final("heidi", &order_id, Duration::from_secs(60))
        .await;
    for service in ["gateway", "order", "inventory", "payment", "notification"] {
        let status = saga.terminate(service);
        assert!(
            status.success(),
            "{service} exited with {status}:\n{}",
            saga.log(service)
        );
    }
}

#[tokio::test]
async fn bad_requests_get_their_documented_status_and_error_body() {
    let saga = Saga::start().await;
    let token = saga.token("ivan", "customer");
    let url = format!("{}/v1/orders", saga.gateway_url);
    let post = |body: String, content_type: &'static str, key: Option<&'static str>| {
        let mut request = saga
            .http
            .post(&url)
            .bearer_auth(&token)
            .header("content-type", content_type)
            .body(body);
        if let Some(key) = key {
            request = request.header("Idempotency-Key", key);
        }
        request.send()
    };
    let good = order_body(&[("SKU-1", 1)], "tok_ok");
    let with = |field: &str, value: serde_json::Value| {
        let mut body = good.clone();
        body[field] = value;
        body.to_string()
    };
    // (body, content type, Idempotency-Key, status, the field the error names)
    type Case<'a> = (String, &'a str, Option<&'a str>, u16, Option<&'a str>);
    let cases: Vec<Case> = vec![
        (
            good.to_string(),
            "application/json",
            None,
            400,
            Some("Idempotency-Key"),
        ),
        (
            "{not json".into(),
            "application/json",
            Some("k1"),
            400,
            None,
        ),
        (good.to_string(), "text/plain", Some("k2"), 415, None),
        (
            with("items", json!([])),
            "application/json",
            Some("k3"),
            400,
            Some("items"),
        ),
        (
            with("items", json!([{"sku": "SKU-1", "quantity": 0}])),
            "application/json",
            Some("k4"),
            400,
            Some("items[0].quantity"),
        ),
        (
            with("items", json!([{"sku": "bad sku", "quantity": 1}])),
            "application/json",
            Some("k5"),
            400,
            Some("items[0].sku"),
        ),
        (
            with("currency", json!("euro")),
            "application/json",
            Some("k6"),
            400,
            Some("currency"),
        ),
        (
            format!("{{\"pad\":\"{}\"}}", "x".repeat(70 * 1024)),
            "application/json",
            Some("k7"),
            413,
            None,
        ),
    ];
    for (body, content_type, key, status, field) in cases {
        let response = post(body.clone(), content_type, key).await.unwrap();
        let got = response.status().as_u16();
        let error: serde_json::Value = response.json().await.unwrap();
        let preview: String = body.chars().take(80).collect();
        assert_eq!(got, status, "{preview}: {error}");
        assert!(error["error"]["code"].is_string(), "{preview}: {error}");
        assert!(error["error"]["message"].is_string(), "{preview}: {error}");
        if let Some(field) = field {
            assert_eq!(error["error"]["field"], field, "{preview}: {error}");
        }
    }
}
