//! The handler inside a real transaction: one recorded notification per
//! order, final state and channel.

use std::time::Duration;

use chorus_avro::{Event, OrderCancelled, OrderConfirmed, StockReleased};
use chorus_notification::store::{Delivery, find_delivery};
use chorus_notification::{
    Channel, FinalStatus, NotificationConfig, NotificationHandler, RetryPolicy,
};
use chorus_platform::testing::TestDb;
use chorus_runtime::{CallOutcome, Calls, Env, HandleError, Handler, Verdict, apply_one};

use crate::stubs::{smtp_server, webhook_receiver};

const SECRET: &str = "whsec_Y2hvcnVzIGhhbmRsZXIgdGVzdCBrZXk=";

fn handler(pairs: &[(&str, &str)], max_attempts: u32) -> NotificationHandler {
    let mut config = NotificationConfig::from_env(&Env::from_pairs(pairs)).unwrap();
    config.retry = RetryPolicy {
        max_attempts,
        first_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(40),
    };
    NotificationHandler::from_config(&config).unwrap()
}

/// Handles `event` as the runtime does: the loop's transaction (intents, the
/// log channel), committed; then each send outside it, asked again while
/// the channel answers "not now" (at most `retries` times), and its result
/// recorded in a transaction of its own. Every event emitted, and the
/// refusals for good.
async fn handle_with(
    db: &TestDb,
    handler: &NotificationHandler,
    event: &Event,
    retries: u32,
) -> Result<(Vec<Event>, Vec<String>), HandleError> {
    let mut tx = db.pool.begin().await.unwrap();
    let (mut emitted, calls) = apply_one(handler, &mut tx, event).await?;
    tx.commit().await.unwrap();
    let mut refused = Vec::new();
    for call in calls {
        let mut attempt = 1;
        let answer = loop {
            match handler.calls().call(&call, attempt).await {
                CallOutcome::Answered(answer) => break answer,
                CallOutcome::Retry(why) if attempt > retries => {
                    return Err(HandleError::Transient(why));
                }
                CallOutcome::Retry(_) => attempt += 1,
            }
        };
        let mut tx = db.pool.begin().await.unwrap();
        for verdict in handler
            .calls()
            .settle(
                &mut tx,
                &[chorus_runtime::Settling::untraced(&call, &answer)],
            )
            .await?
        {
            match verdict {
                Verdict::Applied { emit, .. } => emitted.extend(emit),
                Verdict::Rejected(reason) => refused.push(reason),
            }
        }
        tx.commit().await.unwrap();
    }
    Ok((emitted, refused))
}

async fn handle(
    db: &TestDb,
    handler: &NotificationHandler,
    event: &Event,
) -> Result<Vec<Event>, HandleError> {
    Ok(handle_with(db, handler, event, 10).await?.0)
}

fn confirmed(customer_id: &str) -> OrderConfirmed {
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

/// The recorded webhook delivery of an order's confirmation.
async fn confirmed_webhook(conn: &mut sqlx::PgConnection, order_id: &str) -> Delivery {
    find_delivery(conn, order_id, FinalStatus::Confirmed, Channel::Webhook)
        .await
        .unwrap()
        .expect("a webhook delivery of the confirmation")
}

fn channels_of(events: &[Event]) -> Vec<String> {
    events
        .iter()
        .map(|event| match event {
            Event::NotificationSent(sent) => sent.channel.clone(),
            other => panic!("expected NotificationSent, got {other:?}"),
        })
        .collect()
}

#[tokio::test]
async fn a_confirmation_is_delivered_once_per_channel_and_never_again() {
    let db = TestDb::create(&[&chorus_notification::MIGRATOR]).await;
    let (url, hooks) = webhook_receiver(|_| 200).await;
    let handler = handler(
        &[
            ("CHORUS_WEBHOOK_URL", &url),
            ("CHORUS_WEBHOOK_SECRET", SECRET),
        ],
        4,
    );
    assert_eq!(handler.channels(), [Channel::Webhook, Channel::Log]);
    let order = confirmed("alice");

    let events = handle(&db, &handler, &order.clone().into()).await.unwrap();

    // The log line is written with the intent; the webhook's record follows its send.
    assert_eq!(channels_of(&events), ["log", "webhook"]);
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
    }
    let mut conn = db.pool.acquire().await.unwrap();
    let delivery = confirmed_webhook(&mut conn, &order.order_id).await;
    assert_eq!(delivery.attempts, 1);
    assert_eq!(
        Some(delivery.delivery_id.to_string()),
        hooks.lock().unwrap()[0].delivery()
    );

    // The same final state announced again (another event id): nobody is told twice.
    let again = OrderConfirmed {
        event_id: uuid::Uuid::new_v4().to_string(),
        ..order.clone()
    };
    assert_eq!(handle(&db, &handler, &again.into()).await.unwrap(), vec![]);
    assert_eq!(hooks.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn a_failing_webhook_is_sent_outside_the_transaction_until_it_goes_through() {
    let db = TestDb::create(&[&chorus_notification::MIGRATOR]).await;
    // Down for the first two attempts, up for the third.
    let (url, hooks) = webhook_receiver(|n| if n < 2 { 500 } else { 200 }).await;
    let handler = handler(
        &[
            ("CHORUS_WEBHOOK_URL", &url),
            ("CHORUS_WEBHOOK_SECRET", SECRET),
        ],
        1,
    );
    let order = confirmed("alice");
    let event = Event::from(order.clone());

    // The loop's transaction sends nothing: it records the intent, and the log.
    let mut tx = db.pool.begin().await.unwrap();
    let (logged, calls) = apply_one(&handler, &mut tx, &event).await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(channels_of(&logged), ["log"]);
    assert_eq!(calls.len(), 1);
    assert!(
        hooks.lock().unwrap().is_empty(),
        "nothing sent inside the transaction"
    );
    let mut conn = db.pool.acquire().await.unwrap();
    let pending = confirmed_webhook(&mut conn, &order.order_id).await;
    assert_eq!(pending.status, "pending");

    // "Not now" twice, then delivered: one NotificationSent, one delivery id.
    let mut attempt = 1;
    let answer = loop {
        match handler.calls().call(&calls[0], attempt).await {
            CallOutcome::Answered(answer) => break answer,
            CallOutcome::Retry(_) => attempt += 1,
        }
    };
    assert_eq!(attempt, 3);
    let mut tx = db.pool.begin().await.unwrap();
    let verdicts = handler
        .calls()
        .settle(
            &mut tx,
            &[chorus_runtime::Settling::untraced(&calls[0], &answer)],
        )
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let [Verdict::Applied { emit, .. }] = verdicts.as_slice() else {
        panic!("{verdicts:?}")
    };
    assert_eq!(channels_of(emit), ["webhook"]);
    let delivered = confirmed_webhook(&mut conn, &order.order_id).await;
    assert_eq!(delivered.status, "delivered");
    let hooks = hooks.lock().unwrap();
    assert_eq!(hooks.len(), 3);
    assert!(
        hooks
            .iter()
            .all(|hook| hook.delivery() == hooks[0].delivery() && hook.body == hooks[0].body)
    );
}

#[tokio::test]
async fn a_webhook_refused_for_good_is_recorded_failed_and_refused() {
    let db = TestDb::create(&[&chorus_notification::MIGRATOR]).await;
    let (url, hooks) = webhook_receiver(|_| 410).await;
    let handler = handler(
        &[
            ("CHORUS_WEBHOOK_URL", &url),
            ("CHORUS_WEBHOOK_SECRET", SECRET),
        ],
        4,
    );
    let order = confirmed("alice");
    let (emitted, refused) = handle_with(&db, &handler, &order.clone().into(), 10)
        .await
        .unwrap();
    assert_eq!(channels_of(&emitted), ["log"]);
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert!(refused[0].contains("410"), "{refused:?}");
    assert_eq!(hooks.lock().unwrap().len(), 1, "a 410 is not asked again");
    let mut conn = db.pool.acquire().await.unwrap();
    let failed = confirmed_webhook(&mut conn, &order.order_id).await;
    assert_eq!(failed.status, "failed");
    assert!(failed.error.unwrap().contains("410"));
}

#[tokio::test]
async fn a_cancellation_is_mailed_and_recorded() {
    let db = TestDb::create(&[&chorus_notification::MIGRATOR]).await;
    let (url, mails) = smtp_server(0).await;
    let handler = handler(
        &[("CHORUS_SMTP_URL", &url), ("CHORUS_NOTIFY_LOG", "false")],
        4,
    );
    let cancelled = OrderCancelled {
        event_id: uuid::Uuid::new_v4().to_string(),
        order_id: "order-c".into(),
        occurred_at: 0,
        correlation_id: "order-c".into(),
        causation_id: None,
        customer_id: "bob@shop.test".into(),
        reason: "payment_declined".into(),
        detail: Some("card declined".into()),
    };

    let events = handle(&db, &handler, &cancelled.into()).await.unwrap();

    assert_eq!(channels_of(&events), ["smtp"]);
    let Event::NotificationSent(sent) = &events[0] else {
        unreachable!()
    };
    assert_eq!(sent.final_status, "CANCELLED");
    assert_eq!(mails.lock().unwrap()[0].to, ["<bob@shop.test>"]);
    let mut conn = db.pool.acquire().await.unwrap();
    assert!(
        find_delivery(&mut conn, "order-c", FinalStatus::Cancelled, Channel::Smtp)
            .await
            .unwrap()
            .is_some()
    );
}

#[tokio::test]
async fn a_customer_without_a_mailable_address_is_dead_lettered_before_anything_is_sent() {
    let db = TestDb::create(&[&chorus_notification::MIGRATOR]).await;
    let (hook_url, hooks) = webhook_receiver(|_| 200).await;
    let (smtp_url, mails) = smtp_server(0).await;
    let handler = handler(
        &[
            ("CHORUS_WEBHOOK_URL", &hook_url),
            ("CHORUS_WEBHOOK_SECRET", SECRET),
            ("CHORUS_SMTP_URL", &smtp_url),
        ],
        4,
    );

    let failure = handle(&db, &handler, &confirmed("no body").into())
        .await
        .unwrap_err();

    assert!(matches!(failure, HandleError::Permanent(_)), "{failure}");
    assert!(hooks.lock().unwrap().is_empty());
    assert!(mails.lock().unwrap().is_empty());
}

#[tokio::test]
async fn events_that_are_not_final_states_are_ignored() {
    let db = TestDb::create(&[&chorus_notification::MIGRATOR]).await;
    let handler = handler(&[], 4);
    let released = StockReleased {
        event_id: "e".into(),
        order_id: "o".into(),
        occurred_at: 0,
        correlation_id: "o".into(),
        causation_id: None,
        lines: vec![],
        reason: "payment_declined".into(),
    };
    assert_eq!(
        handle(&db, &handler, &released.into()).await.unwrap(),
        vec![]
    );
}
