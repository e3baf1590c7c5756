//! A webhook refused for good, then redriven: the refusal is recorded
//! (`failed`) and its final-state event dead-lettered; once the receiver
//! accepts, the redriven event delivers it, exactly once however often it is
//! redriven. Only the dead-lettered event itself sends it again.

use std::sync::atomic::Ordering;

use chorus_avro::OrderConfirmed;
use chorus_avro::headers::{ERROR_CLASS, EVENT_ID};
use chorus_notification::{Channel, FinalStatus};

use crate::deliveries::{SECRET, a_moment, confirmed};
use crate::stubs::switchable_webhook_receiver;
use crate::worker::{Worker, header};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_webhook_is_delivered_once_when_its_dead_letter_is_redriven() {
    let (url, hooks, answer) = switchable_webhook_receiver(410).await;
    let worker = Worker::start(&[
        ("CHORUS_WEBHOOK_URL", &url),
        ("CHORUS_WEBHOOK_SECRET", SECRET),
    ])
    .await;
    let order = confirmed("alice");
    let (id, webhook) = (&order.order_id, Channel::Webhook);
    let confirmed_state = FinalStatus::Confirmed;

    worker.publish(&order.clone().into()).await;

    // Refused for good: recorded, asked once, and the event dead-lettered.
    let failed = worker
        .wait_delivery(id, confirmed_state, webhook, "failed")
        .await;
    assert!(failed.error.unwrap().contains("410"));
    let dead = worker.dead_letters(1).await;
    assert_eq!(header(&dead[0], ERROR_CLASS).as_deref(), Some("rejected"));
    assert_eq!(
        header(&dead[0], EVENT_ID).as_deref(),
        Some(order.event_id.as_str())
    );
    assert_eq!(hooks.lock().unwrap().len(), 1, "a 410 is not asked again");
    assert_eq!(worker.notified(id).await, ["log"]);

    // The receiver is fixed. Another event announcing the same state is not
    // the dead letter: it does not send the refused webhook.
    answer.store(204, Ordering::SeqCst);
    let another = OrderConfirmed {
        event_id: uuid::Uuid::new_v4().to_string(),
        ..order.clone()
    };
    worker.publish(&another.clone().into()).await;
    worker.wait_applied(&another.event_id).await;
    a_moment().await;
    assert_eq!(hooks.lock().unwrap().len(), 1);
    assert_eq!(
        worker
            .delivery(id, confirmed_state, webhook)
            .await
            .unwrap()
            .status,
        "failed"
    );

    // The redriven dead letter delivers it, with the delivery's own id.
    worker.redrive(&dead[0]).await;
    let delivered = worker
        .wait_delivery(id, confirmed_state, webhook, "delivered")
        .await;
    assert_eq!(delivered.error, None);
    {
        let hooks = hooks.lock().unwrap();
        assert_eq!(hooks.len(), 2);
        assert_eq!(hooks[1].delivery(), Some(delivered.delivery_id.to_string()));
        standardwebhooks::Webhook::new(SECRET)
            .unwrap()
            .verify(&hooks[1].body, &hooks[1].headers)
            .unwrap();
    }
    assert_eq!(worker.notified(id).await, ["log", "webhook"]);

    // Redriven again: nothing more is sent, nothing dead-lettered. An event
    // published after it, on the same partition (same key), is applied
    // after it.
    worker.redrive(&dead[0]).await;
    let later = OrderConfirmed {
        event_id: uuid::Uuid::new_v4().to_string(),
        ..order.clone()
    };
    worker.publish(&later.clone().into()).await;
    worker.wait_applied(&later.event_id).await;
    a_moment().await;
    assert_eq!(hooks.lock().unwrap().len(), 2);
    assert_eq!(worker.notified(id).await, ["log", "webhook"]);
    assert_eq!(worker.dead_letter_count(), 1);
    worker.stop().await;
}
