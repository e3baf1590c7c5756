//! What the running worker delivers (the runtime's consumer loop and call
//! executor, as in production): one recorded notification per order, final
//! state and channel; remote channels called only after the intent
//! committed, retried while the receiver answers "not now".

use std::sync::Arc;

use chorus_avro::headers::ERROR_CLASS;
use chorus_avro::{Event, OrderCancelled, OrderConfirmed};
use chorus_notification::{Channel, FinalStatus};

use crate::stubs::{Witness, smtp_server, webhook_receiver, webhook_receiver_watching};
use crate::worker::{Worker, header};

/// `whsec_` + base64 of "chorus notification handler test key" (36 bytes;
/// the worker refuses a key under 24).
pub const SECRET: &str = "whsec_Y2hvcnVzIG5vdGlmaWNhdGlvbiBoYW5kbGVyIHRlc3Qga2V5";

/// A confirmation of a new order, announced by a new event.
pub fn confirmed(customer_id: &str) -> OrderConfirmed {
    let order_id = format!("order-{}", uuid::Uuid::new_v4());
    OrderConfirmed {
        event_id: uuid::Uuid::new_v4().to_string(),
        order_id: order_id.clone(),
        occurred_at: 0,
        correlation_id: order_id,
        causation_id: None,
        customer_id: customer_id.into(),
        total: "19.99".parse().unwrap(),
        currency: "EUR".into(),
    }
}

/// Waits long enough for a call the worker wrongly asked for to reach the
/// receiver: calls start as soon as their intent committed.
pub async fn a_moment() {
    tokio::time::sleep(std::time::Duration::from_millis(700)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_confirmation_is_delivered_once_per_channel_and_never_again() {
    let (url, hooks) = webhook_receiver(|_| 200).await;
    let worker = Worker::start(&[
        ("CHORUS_WEBHOOK_URL", &url),
        ("CHORUS_WEBHOOK_SECRET", SECRET),
    ])
    .await;
    let order = confirmed("alice");

    worker.publish(&order.clone().into()).await;

    let delivery = worker
        .wait_delivery(
            &order.order_id,
            FinalStatus::Confirmed,
            Channel::Webhook,
            "delivered",
        )
        .await;
    assert_eq!(delivery.attempts, 1);
    assert_eq!(worker.notified(&order.order_id).await, ["log", "webhook"]);
    {
        let hooks = hooks.lock().unwrap();
        assert_eq!(hooks.len(), 1);
        standardwebhooks::Webhook::new(SECRET)
            .unwrap()
            .verify(&hooks[0].body, &hooks[0].headers)
            .unwrap();
        let body: serde_json::Value = serde_json::from_slice(&hooks[0].body).unwrap();
        assert_eq!(body["order_id"], order.order_id.as_str());
        assert_eq!(body["event_id"], order.event_id.as_str());
        assert_eq!(hooks[0].delivery(), Some(delivery.delivery_id.to_string()));
    }

    // The same final state announced again (another event id): nobody is told twice.
    let again = OrderConfirmed {
        event_id: uuid::Uuid::new_v4().to_string(),
        ..order.clone()
    };
    worker.publish(&again.clone().into()).await;
    worker.wait_applied(&again.event_id).await;
    a_moment().await;
    assert_eq!(hooks.lock().unwrap().len(), 1);
    assert_eq!(worker.notified(&order.order_id).await, ["log", "webhook"]);
    worker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_webhook_is_called_after_its_intent_committed_until_it_goes_through() {
    // At each request the receiver looks, from a connection of its own, at
    // the delivery row: a call made inside the transaction would find none.
    let db_url: Arc<std::sync::OnceLock<String>> = Arc::default();
    let order = confirmed("alice");
    let witness: Arc<Witness> = {
        let db_url = db_url.clone();
        let order_id = order.order_id.clone();
        Arc::new(move || {
            let db_url = db_url.get().cloned();
            let order_id = order_id.clone();
            Box::pin(async move {
                let url = db_url.expect("the worker's database");
                let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&url)
                    .await
                    .unwrap();
                let status: Option<String> = sqlx::query_scalar(
                    "SELECT status FROM deliveries WHERE order_id = $1 AND channel = 'webhook'",
                )
                .bind(&order_id)
                .fetch_optional(&mut conn)
                .await
                .unwrap();
                status.unwrap_or_else(|| "no committed intent".into())
            })
        })
    };
    // Down for the first two calls, up for the third.
    let (url, hooks) =
        webhook_receiver_watching(|n| if n < 2 { 500 } else { 200 }, Some(witness)).await;
    let worker = Worker::start(&[
        ("CHORUS_WEBHOOK_URL", &url),
        ("CHORUS_WEBHOOK_SECRET", SECRET),
        // One try per call: the executor asks again after "not now".
        ("CHORUS_NOTIFY_MAX_ATTEMPTS", "1"),
    ])
    .await;
    db_url.set(worker.db.url.clone()).unwrap();

    worker.publish(&order.clone().into()).await;

    let delivered = worker
        .wait_delivery(
            &order.order_id,
            FinalStatus::Confirmed,
            Channel::Webhook,
            "delivered",
        )
        .await;
    let hooks = hooks.lock().unwrap().clone();
    assert_eq!(hooks.len(), 3);
    for hook in &hooks {
        assert_eq!(hook.seen.as_deref(), Some("pending"), "{hook:?}");
        assert_eq!(hook.delivery(), Some(delivered.delivery_id.to_string()));
        assert_eq!(hook.body, hooks[0].body);
    }
    assert_eq!(worker.notified(&order.order_id).await, ["log", "webhook"]);
    worker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancellation_is_mailed_and_recorded() {
    let (url, mails) = smtp_server(0).await;
    let worker = Worker::start(&[("CHORUS_SMTP_URL", &url), ("CHORUS_NOTIFY_LOG", "false")]).await;
    let order_id = format!("order-{}", uuid::Uuid::new_v4());
    let cancelled = OrderCancelled {
        event_id: uuid::Uuid::new_v4().to_string(),
        order_id: order_id.clone(),
        occurred_at: 0,
        correlation_id: order_id,
        causation_id: None,
        customer_id: "bob@shop.test".into(),
        reason: "payment_declined".into(),
        detail: Some("card declined".into()),
    };

    worker.publish(&cancelled.clone().into()).await;

    worker
        .wait_delivery(
            &cancelled.order_id,
            FinalStatus::Cancelled,
            Channel::Smtp,
            "delivered",
        )
        .await;
    assert_eq!(worker.notified(&cancelled.order_id).await, ["smtp"]);
    let mails = mails.lock().unwrap().clone();
    assert_eq!(mails.len(), 1);
    assert_eq!(mails[0].to, ["<bob@shop.test>"]);
    worker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_customer_without_a_mailable_address_is_dead_lettered_before_anything_is_sent() {
    let (hook_url, hooks) = webhook_receiver(|_| 200).await;
    let (smtp_url, mails) = smtp_server(0).await;
    let worker = Worker::start(&[
        ("CHORUS_WEBHOOK_URL", &hook_url),
        ("CHORUS_WEBHOOK_SECRET", SECRET),
        ("CHORUS_SMTP_URL", &smtp_url),
    ])
    .await;
    let order = confirmed("no body");

    worker.publish(&Event::from(order.clone())).await;

    let dead = worker.dead_letters(1).await;
    assert_eq!(header(&dead[0], ERROR_CLASS).as_deref(), Some("rejected"));
    a_moment().await;
    assert!(hooks.lock().unwrap().is_empty());
    assert!(mails.lock().unwrap().is_empty());
    for channel in [Channel::Webhook, Channel::Smtp, Channel::Log] {
        assert_eq!(
            worker
                .delivery(&order.order_id, FinalStatus::Confirmed, channel)
                .await,
            None
        );
    }
    worker.stop().await;
}
