//! The saga's paths end to end, through the gateway, against the real
//! stack: every order reaches its final state with stock and money right.

use std::time::Duration;

use chorus_avro::Topic;
use chorus_tests::saga::{Saga, order_body, sku};
use rdkafka::message::{Headers, Message};
use serde_json::json;

const FINAL_WITHIN: Duration = Duration::from_secs(60);

#[tokio::test]
async fn happy_path_confirms_the_order_and_sells_the_stock() {
    let saga = Saga::start().await;
    let mug = sku("MUG");
    saga.set_stock(&mug, 10, "19.99").await;

    let order_id = saga.place_ok("alice", &[(&mug, 2)], "tok_ok").await;
    let order = saga.wait_final("alice", &order_id, FINAL_WITHIN).await;

    assert_eq!(order["status"], "CONFIRMED", "{order}");
    assert_eq!(order["reason"], json!(null));
    assert_eq!(order["total"], "39.98");
    assert_eq!(order["currency"], "EUR");
    assert_eq!(
        order["items"],
        json!([{"sku": mug, "quantity": 2, "unit_price": "19.99"}])
    );
    let history: Vec<&str> = order["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["status"].as_str().unwrap())
        .collect();
    assert_eq!(history, ["PENDING", "RESERVED", "CONFIRMED"]);

    // Reserved stock becomes a sale once the order is confirmed.
    assert_eq!(saga.settled_stock(&mug).await, (8, 0, 2));

    // Exactly one notification for the final state.
    assert_eq!(saga.deliveries(Some(&order_id), 1).await, (1, 1));

    // One trace from the gateway through every worker: every event of the
    // order carries a `traceparent` with the gateway's trace id.
    let mut trace_ids = Vec::new();
    for (topic, count) in [
        (Topic::Orders, 2),
        (Topic::Inventory, 1),
        (Topic::Payments, 1),
        (Topic::Notifications, 1),
    ] {
        let messages = saga
            .stack
            .read(&saga.topics.name(topic), count, Duration::from_secs(30))
            .await;
        for message in &messages {
            let traceparent = message
                .headers()
                .and_then(|h| h.iter().find(|h| h.key == "traceparent"))
                .and_then(|h| h.value)
                .map(|v| String::from_utf8_lossy(v).into_owned())
                .unwrap_or_else(|| panic!("no traceparent on {topic:?}"));
            trace_ids.push(traceparent.split('-').nth(1).unwrap().to_string());
        }
    }
    assert_eq!(trace_ids.len(), 5);
    assert!(
        trace_ids.iter().all(|id| *id == trace_ids[0]),
        "{trace_ids:?}"
    );
}

#[tokio::test]
async fn short_or_unknown_stock_cancels_without_reserving_anything() {
    let saga = Saga::start().await;
    let lamp = sku("LAMP");
    let bulb = sku("BULB");
    saga.set_stock(&lamp, 1, "45.00").await;
    saga.set_stock(&bulb, 5, "2.50").await;

    let short = saga
        .place_ok("bob", &[(&bulb, 2), (&lamp, 2)], "tok_ok")
        .await;
    let order = saga.wait_final("bob", &short, FINAL_WITHIN).await;
    assert_eq!(order["status"], "CANCELLED");
    assert_eq!(order["reason"], "out_of_stock");

    let unknown = saga
        .place_ok("bob", &[(&bulb, 1), ("NO-SUCH-SKU", 1)], "tok_ok")
        .await;
    let order = saga.wait_final("bob", &unknown, FINAL_WITHIN).await;
    assert_eq!(order["status"], "CANCELLED");
    assert_eq!(order["reason"], "unknown_sku");

    // Nothing was reserved by either order: all or nothing.
    for (sku, available) in [(&lamp, 1), (&bulb, 5)] {
        let stock = saga.stock(sku).await.unwrap();
        assert_eq!(stock["available"], available, "{sku}");
        assert_eq!(stock["reserved"], 0, "{sku}");
    }
}

#[tokio::test]
async fn a_failed_payment_releases_the_stock_and_cancels_the_order() {
    let saga = Saga::start_with(&[("CHORUS_PAYMENT_MAX_ATTEMPTS", "3")]).await;
    let chair = sku("CHAIR");
    saga.set_stock(&chair, 4, "120.00").await;

    for (token, reason) in [
        ("tok_decline", "payment_declined"),
        ("tok_unavailable", "payment_unavailable"),
    ] {
        let order_id = saga.place_ok("carol", &[(&chair, 3)], token).await;
        let order = saga.wait_final("carol", &order_id, FINAL_WITHIN).await;
        assert_eq!(order["status"], "CANCELLED", "{token}");
        assert_eq!(order["reason"], reason, "{token}");
        // The compensation gives the stock back.
        assert_eq!(saga.settled_stock(&chair).await, (4, 0, 0), "{token}");
    }
    let payments = saga.db("payment").await;
    let charges: i64 = sqlx::query_scalar("SELECT count(*) FROM sandbox_charges")
        .fetch_one(&payments)
        .await
        .unwrap();
    assert_eq!(charges, 0, "nothing may be charged for failed payments");
}

#[tokio::test]
async fn the_gateway_is_idempotent_and_private() {
    let saga = Saga::start().await;
    let pen = sku("PEN");
    saga.set_stock(&pen, 100, "1.10").await;
    let body = order_body(&[(&pen, 1)], "tok_ok");

    let (first, placed) = saga.place("dave", "key-1", &body).await;
    assert_eq!(first, 202, "{placed}");
    assert_eq!(placed["status"], "PENDING");
    let order_id = placed["order_id"].as_str().unwrap().to_string();
    assert_eq!(placed["status_url"], format!("/v1/orders/{order_id}"));

    // Right after the 202 the owner can read it.
    let response = saga
        .http
        .get(format!("{}/v1/orders/{order_id}", saga.gateway_url))
        .bearer_auth(saga.token("dave", "customer"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);

    let (again, replayed) = saga.place("dave", "key-1", &body).await;
    assert_eq!(again, 202);
    assert_eq!(replayed["order_id"], order_id.as_str());
    let other_body = order_body(&[(&pen, 2)], "tok_ok");
    let (conflict, error) = saga.place("dave", "key-1", &other_body).await;
    assert_eq!(conflict, 422, "{error}");
    assert!(error["error"]["code"].is_string(), "{error}");

    let order = saga.wait_final("dave", &order_id, FINAL_WITHIN).await;
    assert_eq!(order["status"], "CONFIRMED");
    // One order, one unit sold, however often the request was retried.
    assert_eq!(saga.stock(&pen).await.unwrap()["available"], 99);

    let url = format!("{}/v1/orders/{order_id}", saga.gateway_url);
    let anonymous = saga.http.get(&url).send().await.unwrap();
    assert_eq!(anonymous.status(), 401);
    let error: serde_json::Value = anonymous.json().await.unwrap();
    assert!(error["error"]["message"].is_string(), "{error}");
    let stranger = saga
        .http
        .get(&url)
        .bearer_auth(saga.token("eve", "customer"))
        .send()
        .await
        .unwrap();
    assert_eq!(stranger.status(), 404);
    let admin = saga
        .http
        .get(&url)
        .bearer_auth(saga.token("ops", "admin"))
        .send()
        .await
        .unwrap();
    assert_eq!(admin.status(), 200);
    let unauthenticated_post = saga
        .http
        .post(format!("{}/v1/orders", saga.gateway_url))
        .header("Idempotency-Key", "k")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(unauthenticated_post.status(), 401);
}
