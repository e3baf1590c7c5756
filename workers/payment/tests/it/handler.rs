//! The handler and its provider calls against a real PostgreSQL: the intent
//! in the loop's transaction, the call outside it, the answer recorded in a
//! transaction of its own — one charge per order, none standing for a
//! cancelled one.

use chorus_avro::Event;
use chorus_payment::store::find_payment;
use chorus_payment::{
    ConfiguredProvider, PaymentAnswer, PaymentCall, PaymentConfig, PaymentHandler, SandboxProvider,
};
use chorus_platform::testing::TestDb;
use chorus_runtime::{Calls, Env, HandleError, Handler, Verdict, apply_one};

use crate::support::{answer, order_cancelled, stock_reserved};

fn sandbox_handler(db: &TestDb) -> (PaymentHandler, SandboxProvider) {
    let config = PaymentConfig::from_env(&Env::from_pairs(&[("CHORUS_DEV", "true")])).unwrap();
    let handler = PaymentHandler::from_config(&config, &db.pool).unwrap();
    (handler, SandboxProvider::new(db.pool.clone()))
}

/// Applies `event` in one committed transaction, then makes every call it
/// asks for (and those that follow) and records their answers, as the
/// runtime does; every event emitted along the way.
async fn handle(
    db: &TestDb,
    handler: &PaymentHandler,
    event: impl Into<Event>,
) -> Result<Vec<Event>, HandleError> {
    let mut tx = db.pool.begin().await.unwrap();
    let (mut emitted, mut calls) = apply_one(handler, &mut tx, &event.into()).await?;
    tx.commit().await.unwrap();
    while let Some(call) = calls.pop() {
        let (answered, _) = answer(handler.calls(), &call).await;
        let verdicts = settle(db, handler, &call, &answered).await?;
        for verdict in verdicts {
            let Verdict::Applied { emit, calls: more } = verdict else {
                panic!("an answer was refused: {verdict:?}");
            };
            emitted.extend(emit);
            calls.extend(more);
        }
    }
    Ok(emitted)
}

/// Records `answered` to `call` in a committed transaction of its own, as
/// the runtime does once the call came back.
async fn settle(
    db: &TestDb,
    handler: &PaymentHandler,
    call: &PaymentCall,
    answered: &PaymentAnswer,
) -> Result<Vec<Verdict<PaymentCall>>, HandleError> {
    let mut tx = db.pool.begin().await.unwrap();
    let verdicts = handler
        .calls()
        .settle(
            &mut tx,
            &[chorus_runtime::Settling::untraced(call, answered)],
        )
        .await?;
    tx.commit().await.unwrap();
    Ok(verdicts)
}

fn names(events: &[Event]) -> Vec<&'static str> {
    events.iter().map(|e| e.event_type().name()).collect()
}

async fn status(db: &TestDb, order_id: &str) -> String {
    let mut conn = db.pool.acquire().await.unwrap();
    let payment = find_payment(&mut conn, order_id).await.unwrap().unwrap();
    payment.status.as_str().to_string()
}

#[tokio::test]
async fn an_approved_token_is_authorized_once_and_recorded() {
    let db = TestDb::create(&[&chorus_payment::MIGRATOR]).await;
    let (handler, sandbox) = sandbox_handler(&db);
    assert!(matches!(handler.provider(), ConfiguredProvider::Sandbox(_)));
    let reserved = stock_reserved("19.99", "tok_ok");

    // The loop's transaction only records the intent and asks for the call.
    let mut tx = db.pool.begin().await.unwrap();
    let (emitted, calls) = apply_one(&handler, &mut tx, &reserved.clone().into())
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert!(emitted.is_empty());
    assert!(matches!(calls.as_slice(), [PaymentCall::Authorize { .. }]));
    assert_eq!(
        sandbox.calls(&reserved.order_id).await.unwrap(),
        0,
        "no call inside the transaction"
    );
    assert_eq!(status(&db, &reserved.order_id).await, "authorizing");

    let (answered, attempts) = answer(handler.calls(), &calls[0]).await;
    assert_eq!(attempts, 1);
    let verdicts = settle(&db, &handler, &calls[0], &answered).await.unwrap();
    let [Verdict::Applied { emit, calls: more }] = verdicts.as_slice() else {
        panic!("{verdicts:?}")
    };
    assert!(more.is_empty());
    let [Event::PaymentAuthorized(authorized)] = emit.as_slice() else {
        panic!("{emit:?}");
    };
    assert_eq!(authorized.amount.to_string(), "19.99");
    assert_eq!(
        authorized.causation_id.as_deref(),
        Some(reserved.event_id.as_str())
    );
    assert_eq!(status(&db, &reserved.order_id).await, "authorized");
    assert_eq!(sandbox.charges(&reserved.order_id).await.unwrap(), 1);

    // The same event again (a replay, a redrive) asks nothing.
    assert!(
        handle(&db, &handler, reserved.clone())
            .await
            .unwrap()
            .is_empty()
    );
    // The same answer recorded twice (a call made twice) emits nothing more.
    let mut tx = db.pool.begin().await.unwrap();
    let again = handler
        .calls()
        .settle(
            &mut tx,
            &[chorus_runtime::Settling::untraced(&calls[0], &answered)],
        )
        .await
        .unwrap();
    assert!(matches!(again.as_slice(), [Verdict::Applied { emit, .. }] if emit.is_empty()));
    assert_eq!(sandbox.calls(&reserved.order_id).await.unwrap(), 1);
}

#[tokio::test]
async fn a_declined_token_fails_the_payment() {
    let db = TestDb::create(&[&chorus_payment::MIGRATOR]).await;
    let (handler, sandbox) = sandbox_handler(&db);
    let reserved = stock_reserved("5.00", "tok_decline");
    let events = handle(&db, &handler, reserved.clone()).await.unwrap();
    let [Event::PaymentFailed(failed)] = events.as_slice() else {
        panic!("{events:?}")
    };
    assert_eq!(failed.reason, "payment_declined");
    assert_eq!(sandbox.charges(&reserved.order_id).await.unwrap(), 0);
}

/// A token sealed under a key the worker no longer holds (rotated out
/// before a retried authorization) is no decline of the customer's card:
/// the payment could not be completed, and whatever an earlier attempt may
/// have charged is voided by the key.
#[tokio::test]
async fn a_token_sealed_with_a_retired_key_fails_as_unavailable_not_declined() {
    use chorus_platform::payment_token::PaymentTokenKeys;
    let db = TestDb::create(&[&chorus_payment::MIGRATOR]).await;
    // The worker holds key A (base64 of 32 bytes of 7); the token was sealed with key B.
    let env = Env::from_pairs(&[(
        "CHORUS_PAYMENT_TOKEN_KEY",
        "BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=",
    )]);
    let config = PaymentConfig::from_env(&env).unwrap();
    let handler = PaymentHandler::from_config(&config, &db.pool).unwrap();
    let sandbox = SandboxProvider::new(db.pool.clone());
    let mut reserved = stock_reserved("5.00", "placeholder");
    let sealed = PaymentTokenKeys::new(&[9; 32], None).seal(&reserved.order_id, "tok_ok");
    reserved.payment_token = sealed.ciphertext;
    reserved.payment_token_key_id = Some(sealed.key_id);

    let events = handle(&db, &handler, reserved.clone()).await.unwrap();
    let [Event::PaymentFailed(failed)] = events.as_slice() else {
        panic!("{events:?}")
    };
    assert_eq!(failed.reason, "payment_unavailable");
    assert_eq!(
        failed.detail.as_deref(),
        Some(chorus_avro::CancelReason::PaymentUnavailable.text())
    );
    assert_eq!(status(&db, &reserved.order_id).await, "unavailable");
    assert_eq!(sandbox.charges(&reserved.order_id).await.unwrap(), 0);
}

#[tokio::test]
async fn an_unreachable_provider_is_voided_by_key_then_fails_as_unavailable() {
    let db = TestDb::create(&[&chorus_payment::MIGRATOR]).await;
    let (handler, sandbox) = sandbox_handler(&db);
    let reserved = stock_reserved("5.00", "tok_unavailable");
    let events = handle(&db, &handler, reserved.clone()).await.unwrap();
    // Nothing was charged, so nothing was voided: the payment fails.
    assert_eq!(names(&events), ["PaymentFailed"]);
    let Event::PaymentFailed(failed) = &events[0] else {
        unreachable!()
    };
    assert_eq!(failed.reason, "payment_unavailable");
    assert_eq!(status(&db, &reserved.order_id).await, "unavailable");
    // Four authorization attempts, then one void by the order id.
    assert_eq!(sandbox.calls(&reserved.order_id).await.unwrap(), 5);
}

#[tokio::test]
async fn a_cancelled_order_has_its_authorization_voided() {
    let db = TestDb::create(&[&chorus_payment::MIGRATOR]).await;
    let (handler, sandbox) = sandbox_handler(&db);
    let reserved = stock_reserved("12.00", "tok_ok");
    let order = reserved.order_id.clone();
    handle(&db, &handler, reserved).await.unwrap();
    assert_eq!(sandbox.standing_charges(&order).await.unwrap(), 1);

    let events = handle(&db, &handler, order_cancelled(&order, "customer_cancelled"))
        .await
        .unwrap();
    let [Event::PaymentVoided(voided)] = events.as_slice() else {
        panic!("{events:?}")
    };
    assert_eq!(voided.reason, "customer_cancelled");
    assert!(voided.authorization_id.is_some());
    assert_eq!(status(&db, &order).await, "voided");
    assert_eq!(sandbox.standing_charges(&order).await.unwrap(), 0);
    // Cancelled again: nothing more.
    assert!(
        handle(&db, &handler, order_cancelled(&order, "timeout"))
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn a_cancellation_before_the_reservation_means_no_charge_ever() {
    let db = TestDb::create(&[&chorus_payment::MIGRATOR]).await;
    let (handler, sandbox) = sandbox_handler(&db);
    let reserved = stock_reserved("7.00", "tok_ok");
    let order = reserved.order_id.clone();
    assert!(
        handle(&db, &handler, order_cancelled(&order, "timeout"))
            .await
            .unwrap()
            .is_empty()
    );
    // The late StockReserved is recorded and ignored.
    assert!(handle(&db, &handler, reserved).await.unwrap().is_empty());
    assert_eq!(status(&db, &order).await, "cancelled");
    assert_eq!(sandbox.calls(&order).await.unwrap(), 0);
}

#[tokio::test]
async fn a_cancellation_while_the_authorization_is_in_flight_voids_its_answer() {
    let db = TestDb::create(&[&chorus_payment::MIGRATOR]).await;
    let (handler, sandbox) = sandbox_handler(&db);
    let reserved = stock_reserved("9.00", "tok_ok");
    let order = reserved.order_id.clone();
    let mut tx = db.pool.begin().await.unwrap();
    let (_, calls) = apply_one(&handler, &mut tx, &reserved.into())
        .await
        .unwrap();
    tx.commit().await.unwrap();
    // The provider is being asked when the order is cancelled (a deadline).
    assert!(
        handle(&db, &handler, order_cancelled(&order, "timeout"))
            .await
            .unwrap()
            .is_empty()
    );
    let (answered, _) = answer(handler.calls(), &calls[0]).await;
    let verdicts = settle(&db, &handler, &calls[0], &answered).await.unwrap();
    let [Verdict::Applied { emit, calls: voids }] = verdicts.as_slice() else {
        panic!("{verdicts:?}")
    };
    assert_eq!(names(emit), ["PaymentAuthorized"]);
    let [void] = voids.as_slice() else {
        panic!("{voids:?}")
    };
    let (voided, _) = answer(handler.calls(), void).await;
    let verdicts = settle(&db, &handler, void, &voided).await.unwrap();
    assert!(
        matches!(verdicts.as_slice(), [Verdict::Applied { emit, .. }] if names(emit) == ["PaymentVoided"])
    );
    assert_eq!(sandbox.standing_charges(&order).await.unwrap(), 0);
    assert_eq!(status(&db, &order).await, "voided");
}

#[tokio::test]
async fn an_intent_left_by_a_stopped_worker_is_found_again_once_its_lease_ran_out() {
    let db = TestDb::create(&[&chorus_payment::MIGRATOR]).await;
    let (handler, _) = sandbox_handler(&db);
    let reserved = stock_reserved("3.00", "tok_ok");
    let mut tx = db.pool.begin().await.unwrap();
    apply_one(&handler, &mut tx, &reserved.clone().into())
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let mut conn = db.pool.acquire().await.unwrap();
    let lease = std::time::Duration::from_secs(60);
    // Leased to the process that asked: nobody else takes it.
    assert!(
        handler
            .calls()
            .unsettled(&mut conn, lease, 10)
            .await
            .unwrap()
            .is_empty()
    );
    sqlx::query("UPDATE payments SET lease_until = now() - interval '1 second'")
        .execute(&mut *conn)
        .await
        .unwrap();
    let found = handler
        .calls()
        .unsettled(&mut conn, lease, 10)
        .await
        .unwrap();
    assert!(
        matches!(found.as_slice(), [PaymentCall::Authorize { order_id, .. }] if *order_id == reserved.order_id)
    );
    // Leased anew: not handed out twice.
    assert!(
        handler
            .calls()
            .unsettled(&mut conn, lease, 10)
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn a_negative_total_is_rejected() {
    let db = TestDb::create(&[&chorus_payment::MIGRATOR]).await;
    let (handler, _) = sandbox_handler(&db);
    let result = handle(&db, &handler, stock_reserved("-1.00", "tok_ok")).await;
    assert!(
        matches!(result, Err(HandleError::Permanent(_))),
        "{result:?}"
    );
    assert!(handler.handles(chorus_avro::EventType::OrderCancelled));
}
