//! A provider's answer the payment worker cannot keep leaves no charge
//! standing: an authorization id PostgreSQL refuses (a NUL inside it), or
//! one it stores but no consumer accepts (longer than the shared rule
//! allows), is voided by the idempotency key (the order id) and the order
//! ends CANCELLED `payment_unavailable` with its stock released, without
//! waiting for its deadline and without the worker dying.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use chorus_avro::validate::fields::MAX_AUTHORIZATION_ID_BYTES;
use chorus_tests::saga::{Saga, sku};

use crate::stub_provider::{Request, StubProvider};

/// The payment row's status once it is no longer waiting for a call (or
/// after 30 s).
async fn settled_payment(saga: &Saga, order_id: &str) -> Option<(String, Option<String>)> {
    let db = saga.db("payment").await;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let row: Option<(String, Option<String>)> =
            sqlx::query_as("SELECT status, authorization_id FROM payments WHERE order_id = $1")
                .bind(order_id)
                .fetch_optional(&db)
                .await
                .unwrap();
        let open = row
            .as_ref()
            .is_none_or(|(status, _)| status == "authorizing" || status == "voiding");
        if !open || Instant::now() >= deadline {
            return row;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Places one order against a provider that authorizes with
/// `authorization_id` and checks that it ends as designed.
async fn an_answer_that_cannot_be_kept_is_voided(authorization_id: String) {
    let provider = StubProvider::start(authorization_id, HashMap::new()).await;
    let url = provider.url.clone();
    // A deadline short enough that an order left waiting would end as
    // `timeout` well within the wait below, instead of passing slowly.
    let mut saga = Saga::start_with(&[
        ("CHORUS_PAYMENT_PROVIDER", "http"),
        ("CHORUS_PAYMENT_URL", url.as_str()),
        ("CHORUS_ORDER_DEADLINE_SECS", "8"),
    ])
    .await;
    let toaster = sku("TOASTER");
    saga.set_stock(&toaster, 5, "30.00").await;

    let order_id = saga.place_ok("hazel", &[(&toaster, 2)], "tok_ok").await;
    let order = saga
        .wait_final("hazel", &order_id, Duration::from_secs(60))
        .await;

    assert_eq!(
        (order["status"].as_str(), order["reason"].as_str()),
        (Some("CANCELLED"), Some("payment_unavailable")),
        "{order}\nprovider saw: {:?}\npayment log:\n{}",
        provider.received(),
        saga.log("payment")
    );
    let received = provider.received();
    assert!(
        received
            .iter()
            .any(|r| r.path == "/v1/authorizations" && r.idempotency_key == order_id),
        "the provider was asked to authorize {order_id}: {received:?}"
    );
    let voids: Vec<&Request> = received
        .iter()
        .filter(|r| r.path == "/v1/voids" && r.idempotency_key == order_id)
        .collect();
    assert!(
        !voids.is_empty(),
        "no void asked under the key {order_id}: {received:?}"
    );
    assert_eq!(voids[0].body["reference"], order_id.as_str(), "{voids:?}");
    assert_eq!(
        saga.settled_stock(&toaster).await,
        (5, 0, 0),
        "the reserved stock is released"
    );
    assert_eq!(
        settled_payment(&saga, &order_id).await,
        Some(("unavailable".to_string(), None)),
        "the payment row"
    );
    // The worker is still the process the test started, and ready.
    saga.wait_ready("payment").await;
}

#[tokio::test]
async fn an_authorization_id_postgres_refuses_is_voided_and_the_order_cancelled() {
    an_answer_that_cannot_be_kept_is_voided("auth_\u{0}_nul".to_string()).await;
}

#[tokio::test]
async fn an_authorization_id_longer_than_the_shared_rule_is_voided_and_the_order_cancelled() {
    an_answer_that_cannot_be_kept_is_voided("a".repeat(MAX_AUTHORIZATION_ID_BYTES + 1)).await;
}
