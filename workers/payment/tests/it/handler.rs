//! The handler inside a real transaction: one charge and one answer per order.

use chorus_avro::{Event, OrderConfirmed, PaymentFailed, StockReserved};
use chorus_payment::store::find_payment;
use chorus_payment::{ConfiguredProvider, PaymentConfig, PaymentHandler, SandboxProvider};
use chorus_platform::testing::TestDb;
use chorus_runtime::{Env, HandleError, Handler};

use crate::support::stock_reserved;

fn sandbox_handler(db: &TestDb) -> (PaymentHandler, SandboxProvider) {
    let config = PaymentConfig::from_env(&Env::from_pairs(&[])).unwrap();
    let handler = PaymentHandler::from_config(&config, &db.pool).unwrap();
    (handler, SandboxProvider::new(db.pool.clone()))
}

/// Handles `event` in one transaction and commits it, as the consumer loop does.
async fn handle(
    db: &TestDb,
    handler: &PaymentHandler,
    event: &Event,
) -> Result<Vec<Event>, HandleError> {
    let mut tx = db.pool.begin().await.unwrap();
    let emitted = handler.handle(&mut tx, event).await?;
    tx.commit().await.unwrap();
    Ok(emitted)
}

fn failed(events: &[Event]) -> &PaymentFailed {
    match events {
        [Event::PaymentFailed(failed)] => failed,
        other => panic!("expected one PaymentFailed, got {other:?}"),
    }
}

#[tokio::test]
async fn an_approved_token_is_authorized_once_and_recorded() {
    let db = TestDb::create(&[&chorus_payment::MIGRATOR]).await;
    let (handler, sandbox) = sandbox_handler(&db);
    assert!(matches!(handler.provider(), ConfiguredProvider::Sandbox(_)));
    let reserved = stock_reserved("19.99", "tok_ok");
    let cause = Event::from(reserved.clone());

    let events = handle(&db, &handler, &cause).await.unwrap();

    let [Event::PaymentAuthorized(authorized)] = events.as_slice() else {
        panic!("expected one PaymentAuthorized, got {events:?}");
    };
    assert_eq!(authorized.order_id, reserved.order_id);
    assert_eq!(authorized.amount.to_string(), "19.99");
    assert_eq!(
        authorized.causation_id.as_deref(),
        Some(reserved.event_id.as_str())
    );
    let mut conn = db.pool.acquire().await.unwrap();
    let record = find_payment(&mut conn, &reserved.order_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(record.status, "authorized");
    assert_eq!(
        record.authorization_id.as_deref(),
        Some(authorized.authorization_id.as_str())
    );
    assert_eq!(record.amount.to_string(), "19.99");
    assert_eq!(record.attempts, 1);
    assert_eq!(sandbox.charges(&reserved.order_id).await.unwrap(), 1);
}

#[tokio::test]
async fn a_second_reservation_of_a_paid_order_neither_calls_nor_emits() {
    let db = TestDb::create(&[&chorus_payment::MIGRATOR]).await;
    let (handler, sandbox) = sandbox_handler(&db);
    let reserved = stock_reserved("19.99", "tok_ok");
    handle(&db, &handler, &reserved.clone().into())
        .await
        .unwrap();

    let again = StockReserved {
        event_id: uuid::Uuid::new_v4().to_string(),
        ..reserved.clone()
    };
    assert_eq!(handle(&db, &handler, &again.into()).await.unwrap(), vec![]);
    assert_eq!(sandbox.calls(&reserved.order_id).await.unwrap(), 1);
    assert_eq!(sandbox.charges(&reserved.order_id).await.unwrap(), 1);
}

#[tokio::test]
async fn a_rolled_back_transaction_replays_into_the_same_single_charge() {
    let db = TestDb::create(&[&chorus_payment::MIGRATOR]).await;
    let (handler, sandbox) = sandbox_handler(&db);
    let reserved = stock_reserved("42.00", "tok_ok");
    let cause = Event::from(reserved.clone());

    // The worker crashes after the provider answered, before the commit.
    let mut tx = db.pool.begin().await.unwrap();
    let lost = handler.handle(&mut tx, &cause).await.unwrap();
    tx.rollback().await.unwrap();
    assert_eq!(sandbox.charges(&reserved.order_id).await.unwrap(), 1);

    let replayed = handle(&db, &handler, &cause).await.unwrap();
    assert_eq!(replayed.len(), 1);
    assert_eq!(replayed[0].event_id(), lost[0].event_id());
    let (Event::PaymentAuthorized(first), Event::PaymentAuthorized(second)) =
        (&lost[0], &replayed[0])
    else {
        panic!("expected PaymentAuthorized twice");
    };
    assert_eq!(first.authorization_id, second.authorization_id);
    assert_eq!(sandbox.calls(&reserved.order_id).await.unwrap(), 2);
    assert_eq!(sandbox.charges(&reserved.order_id).await.unwrap(), 1);
}

#[tokio::test]
async fn a_declined_token_fails_the_payment_after_one_call() {
    let db = TestDb::create(&[&chorus_payment::MIGRATOR]).await;
    let (handler, sandbox) = sandbox_handler(&db);
    let reserved = stock_reserved("10.00", "tok_decline");
    let events = handle(&db, &handler, &reserved.clone().into())
        .await
        .unwrap();
    let failed = failed(&events);
    assert_eq!(failed.reason, "payment_declined");
    assert_eq!(failed.detail.as_deref(), Some("card declined"));
    assert_eq!(failed.amount.to_string(), "10.00");
    assert_eq!(sandbox.calls(&reserved.order_id).await.unwrap(), 1);
}

#[tokio::test]
async fn an_unknown_token_is_declined_as_unknown() {
    let db = TestDb::create(&[&chorus_payment::MIGRATOR]).await;
    let (handler, _) = sandbox_handler(&db);
    let events = handle(&db, &handler, &stock_reserved("1.00", "tok_what").into())
        .await
        .unwrap();
    assert_eq!(failed(&events).detail.as_deref(), Some("unknown token"));
}

#[tokio::test]
async fn an_unavailable_provider_is_asked_four_times_then_the_payment_fails() {
    let db = TestDb::create(&[&chorus_payment::MIGRATOR]).await;
    let (handler, sandbox) = sandbox_handler(&db);
    let reserved = stock_reserved("10.00", "tok_unavailable");
    let events = handle(&db, &handler, &reserved.clone().into())
        .await
        .unwrap();
    assert_eq!(failed(&events).reason, "payment_unavailable");
    assert_eq!(sandbox.calls(&reserved.order_id).await.unwrap(), 4);
    let mut conn = db.pool.acquire().await.unwrap();
    let record = find_payment(&mut conn, &reserved.order_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (record.status.as_str(), record.attempts),
        ("unavailable", 4)
    );
}

#[tokio::test]
async fn other_events_are_ignored() {
    let db = TestDb::create(&[&chorus_payment::MIGRATOR]).await;
    let (handler, _) = sandbox_handler(&db);
    let confirmed = OrderConfirmed {
        event_id: "e".into(),
        order_id: "o".into(),
        occurred_at: 0,
        correlation_id: "o".into(),
        causation_id: None,
        customer_id: "c".into(),
        total: "1.00".parse().unwrap(),
        currency: "EUR".into(),
    };
    assert_eq!(
        handle(&db, &handler, &confirmed.into()).await.unwrap(),
        vec![]
    );
}
