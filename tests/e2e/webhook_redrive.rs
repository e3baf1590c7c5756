//! A webhook refused for good, redriven once the receiver is fixed, against
//! a whole deployment: the refusal dead-letters the order's final-state
//! event; `chorus dlq redrive` then delivers the webhook exactly once, and a
//! second redrive delivers nothing more.

use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use chorus_avro::Topic;
use chorus_tests::saga::{Saga, sku};
use chorus_tests::{describe, run, stdout};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Offset, TopicPartitionList};
use serde_json::Value;

const WEBHOOK_SECRET: &str = "whsec_Y2hvcnVzIHJlZHJpdmUgdGVzdCBrZXksIDI0IGJ5dGVzIG9yIG1vcmU=";
const WITHIN: Duration = Duration::from_secs(30);

/// One request as received, and what the receiver answered.
#[derive(Debug, Clone)]
struct Request {
    headers: HeaderMap,
    body: Vec<u8>,
    answered: u16,
}

/// A receiver answering with whatever `status` holds: broken, then fixed.
#[derive(Clone)]
struct Receiver {
    status: Arc<AtomicU16>,
    received: Arc<Mutex<Vec<Request>>>,
}

async fn receive(State(receiver): State<Receiver>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let answered = receiver.status.load(Ordering::SeqCst);
    receiver.received.lock().unwrap().push(Request {
        headers,
        body: body.to_vec(),
        answered,
    });
    StatusCode::from_u16(answered).unwrap()
}

impl Receiver {
    /// Starts on 127.0.0.1:0 answering `status`; returns it and its URL.
    async fn start(status: u16) -> (Receiver, String) {
        let receiver = Receiver {
            status: Arc::new(AtomicU16::new(status)),
            received: Arc::default(),
        };
        let app = Router::new()
            .route("/hooks/orders", post(receive))
            .with_state(receiver.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hooks/orders", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (receiver, url)
    }

    fn requests(&self) -> Vec<Request> {
        self.received.lock().unwrap().clone()
    }

    /// The requests answered 2xx: deliveries the receiver took.
    fn accepted(&self) -> Vec<Request> {
        self.requests()
            .into_iter()
            .filter(|r| (200..300).contains(&r.answered))
            .collect()
    }
}

/// Asks `probe` every 100 ms until it answers, failing after [`WITHIN`].
async fn wait_for<T, F: std::future::Future<Output = Option<T>>>(
    what: &str,
    mut probe: impl FnMut() -> F,
) -> T {
    let deadline = tokio::time::Instant::now() + WITHIN;
    loop {
        if let Some(found) = probe().await {
            return found;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "waited {WITHIN:?} in vain for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `chorus dlq list orders.dlq --json`.
fn dead_letters(saga: &Saga) -> Value {
    let output = run(saga.chorus().args(["dlq", "list", "orders.dlq", "--json"]));
    assert!(output.status.success(), "{}", describe(&output));
    serde_json::from_str(&stdout(&output)).unwrap_or_else(|e| panic!("{e}: {}", describe(&output)))
}

/// `chorus dlq redrive orders.dlq --all`: where each copy went.
fn redrive(saga: &Saga) -> Vec<Value> {
    let output = run(saga
        .chorus()
        .args(["dlq", "redrive", "orders.dlq", "--all"]));
    assert!(output.status.success(), "{}", describe(&output));
    stdout(&output)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

/// The status of the order's webhook delivery and its delivery id.
async fn webhook_delivery(saga: &Saga, order_id: &str) -> Option<(String, String)> {
    sqlx::query_as(
        "SELECT status, delivery_id::text FROM deliveries
         WHERE order_id = $1 AND final_status = 'CONFIRMED' AND channel = 'webhook'",
    )
    .bind(order_id)
    .fetch_optional(&saga.db("notification").await)
    .await
    .unwrap()
}

/// The channels of the order's `NotificationSent` events on Kafka, sorted.
fn notified(saga: &Saga, order_id: &str) -> Vec<String> {
    let mut channels: Vec<String> = saga
        .tail("notifications", order_id)
        .iter()
        .filter(|m| m["type"] == "NotificationSent")
        .map(|m| m["event"]["channel"].as_str().unwrap().to_string())
        .collect();
    channels.sort();
    channels
}

/// The offset the notification worker's group committed on a partition.
fn committed(saga: &Saga, topic: &str, partition: i32) -> Option<i64> {
    let group = format!("{}.notification", saga.topics.namespace());
    let consumer: BaseConsumer = saga
        .stack
        .kafka()
        .client_config()
        .set("group.id", &group)
        .create()
        .unwrap();
    let mut query = TopicPartitionList::new();
    query.add_partition(topic, partition);
    let found = consumer
        .committed_offsets(query, Duration::from_secs(10))
        .unwrap();
    match found.elements()[0].offset() {
        Offset::Offset(offset) => Some(offset),
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_webhook_redriven_after_the_receiver_is_fixed_is_delivered_exactly_once() {
    let (receiver, url) = Receiver::start(400).await;
    let saga = Saga::start_with(&[
        ("CHORUS_WEBHOOK_URL", &url),
        ("CHORUS_WEBHOOK_SECRET", WEBHOOK_SECRET),
    ])
    .await;
    let lamp = sku("REDRIVE");
    saga.set_stock(&lamp, 10, "4.50").await;
    let order_id = saga.place_ok("alice", &[(&lamp, 1)], "tok_ok").await;
    let order = saga
        .wait_final("alice", &order_id, Duration::from_secs(60))
        .await;
    assert_eq!(order["status"], "CONFIRMED", "{order}");

    // The receiver refuses (400): the delivery fails and the confirmation is
    // dead-lettered, once.
    let listed = wait_for("the refused confirmation dead-lettered", || async {
        let listed = dead_letters(&saga);
        (listed["count"] == 1).then_some(listed)
    })
    .await;
    let dead = &listed["messages"][0];
    assert_eq!(dead["key"], order_id.as_str(), "{listed}");
    assert_eq!(dead["error_class"], "rejected", "{listed}");
    let (status, delivery_id) = webhook_delivery(&saga, &order_id).await.unwrap();
    assert_eq!(status, "failed");
    assert_eq!(receiver.requests().len(), 1, "a 400 is not asked again");
    assert!(receiver.accepted().is_empty());

    // Fixed, then redriven: delivered, signed, under the delivery's own id.
    receiver.status.store(204, Ordering::SeqCst);
    let copies = redrive(&saga);
    assert_eq!(copies.len(), 1, "{copies:?}");
    assert_eq!(copies[0]["to"], saga.topics.name(Topic::Orders));
    let accepted = wait_for("the redriven webhook delivered", || async {
        let accepted = receiver.accepted();
        (!accepted.is_empty()).then_some(accepted)
    })
    .await;
    standardwebhooks::Webhook::new(WEBHOOK_SECRET)
        .unwrap()
        .verify(&accepted[0].body, &accepted[0].headers)
        .unwrap();
    assert_eq!(
        accepted[0].headers["webhook-id"].to_str().unwrap(),
        delivery_id
    );
    let body: Value = serde_json::from_slice(&accepted[0].body).unwrap();
    assert_eq!(body["order_id"], order_id.as_str());
    assert_eq!(body["status"], "CONFIRMED");
    wait_for("the webhook delivery recorded", || async {
        let (status, _) = webhook_delivery(&saga, &order_id).await?;
        (status == "delivered").then_some(())
    })
    .await;
    wait_for("one NotificationSent per channel", || async {
        (notified(&saga, &order_id) == ["log", "webhook"]).then_some(())
    })
    .await;

    // Redriven again: the worker passes over the copy and sends nothing.
    let again = redrive(&saga);
    assert_eq!(again.len(), 1, "{again:?}");
    let (partition, offset) = (
        again[0]["partition"].as_i64().unwrap() as i32,
        again[0]["offset"].as_i64().unwrap(),
    );
    let orders = saga.topics.name(Topic::Orders);
    wait_for("the notification worker past the second copy", || async {
        committed(&saga, &orders, partition)
            .is_some_and(|o| o > offset)
            .then_some(())
    })
    .await;
    // Its effects, had it any, start right after its commit.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(receiver.accepted().len(), 1, "{:?}", receiver.requests());
    assert_eq!(receiver.requests().len(), 2);
    assert_eq!(notified(&saga, &order_id), ["log", "webhook"]);
    assert_eq!(
        dead_letters(&saga)["count"],
        1,
        "nothing dead-lettered again"
    );
}
