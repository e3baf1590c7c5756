//! The webhook channel against a stub receiver.

use std::time::Duration;

use chorus_notification::signature::verify;
use chorus_notification::{DeliveryError, RetryPolicy, WebhookChannel, WebhookConfig};
use uuid::Uuid;

use crate::stubs::webhook_receiver;

const SECRET: &str = "whsec_test";

fn channel(url: &str, max_attempts: u32) -> WebhookChannel {
    let config = WebhookConfig {
        url: url.into(),
        secret: SECRET.into(),
        timeout: Duration::from_secs(2),
    };
    let retry = RetryPolicy {
        max_attempts,
        first_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(40),
    };
    WebhookChannel::new(&config, retry).unwrap()
}

const BODY: &[u8] = br#"{"order_id":"o-1","customer_id":"alice","status":"CONFIRMED","reason":null,"total":"19.99","currency":"EUR","event_id":"e-1"}"#;

#[tokio::test]
async fn the_receiver_can_verify_the_signature_of_the_exact_body() {
    let (url, received) = webhook_receiver(|_| 204).await;
    let delivery_id = Uuid::new_v4();

    let attempts = channel(&url, 4).deliver(BODY, delivery_id).await.unwrap();

    assert_eq!(attempts, 1);
    let received = received.lock().unwrap();
    let hook = &received[0];
    assert_eq!(hook.body, BODY);
    assert!(verify(
        SECRET.as_bytes(),
        &hook.body,
        hook.signature.as_deref().unwrap()
    ));
    assert!(!verify(
        b"wrong",
        &hook.body,
        hook.signature.as_deref().unwrap()
    ));
    assert_eq!(hook.delivery, Some(delivery_id.to_string()));
    assert_eq!(hook.content_type.as_deref(), Some("application/json"));
}

#[tokio::test]
async fn a_500_then_200_is_retried_with_the_same_delivery_id_and_signature() {
    let (url, received) = webhook_receiver(|n| if n == 0 { 500 } else { 200 }).await;
    let delivery_id = Uuid::new_v4();

    let attempts = channel(&url, 4).deliver(BODY, delivery_id).await.unwrap();

    assert_eq!(attempts, 2);
    let received = received.lock().unwrap();
    assert_eq!(received.len(), 2);
    assert_eq!(received[0].delivery, received[1].delivery);
    assert_eq!(received[0].signature, received[1].signature);
    assert_eq!(received[1].delivery, Some(delivery_id.to_string()));
}

#[tokio::test]
async fn a_receiver_that_keeps_failing_is_tried_a_bounded_number_of_times() {
    let (url, received) = webhook_receiver(|_| 503).await;

    let error = channel(&url, 3)
        .deliver(BODY, Uuid::new_v4())
        .await
        .unwrap_err();

    assert!(
        matches!(&error, DeliveryError::Failed(problem) if problem.contains("after 3 attempt")),
        "{error}"
    );
    assert_eq!(received.lock().unwrap().len(), 3);
}

#[tokio::test]
async fn a_client_error_is_not_retried_in_place() {
    let (url, received) = webhook_receiver(|_| 401).await;

    let error = channel(&url, 4)
        .deliver(BODY, Uuid::new_v4())
        .await
        .unwrap_err();

    assert!(matches!(error, DeliveryError::Failed(_)));
    assert_eq!(received.lock().unwrap().len(), 1);
}
