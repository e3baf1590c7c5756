//! The webhook channel against a stub receiver, verified the way a receiver
//! verifies it: with the off-the-shelf `standardwebhooks` library, never with
//! chorus's own signing code.

use std::time::Duration;

use axum::http::HeaderValue;
use chorus_notification::signature::{SigningSecrets, WebhookSecret};
use chorus_notification::{DeliveryError, RetryPolicy, WebhookChannel, WebhookConfig};
use standardwebhooks::{Webhook, WebhookError};
use uuid::Uuid;

use crate::stubs::{Hook, webhook_receiver};

/// `whsec_` + base64 of "chorus webhook test key".
const SECRET: &str = "whsec_Y2hvcnVzIHdlYmhvb2sgdGVzdCBrZXk=";
/// `whsec_` + base64 of "the key being rotated out".
const PREVIOUS: &str = "whsec_dGhlIGtleSBiZWluZyByb3RhdGVkIG91dA==";

fn channel(url: &str, max_attempts: u32) -> WebhookChannel {
    channel_signing(url, max_attempts, None)
}

/// A channel signing with `SECRET` and, when given, a previous secret.
fn channel_signing(url: &str, max_attempts: u32, previous: Option<&str>) -> WebhookChannel {
    let config = WebhookConfig {
        url: url.into(),
        secrets: SigningSecrets {
            current: WebhookSecret::parse(SECRET).unwrap(),
            previous: previous.map(|p| WebhookSecret::parse(p).unwrap()),
        },
        timeout: Duration::from_secs(2),
    };
    let retry = RetryPolicy {
        max_attempts,
        first_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(40),
    };
    WebhookChannel::new(&config, retry).unwrap()
}

fn receiver_library() -> Webhook {
    Webhook::new(SECRET).unwrap()
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// The `webhook-timestamp` of `hook`, which must lie within [from, to].
fn assert_stamped_between(hook: &Hook, from: i64, to: i64) {
    let stamp: i64 = hook.header("webhook-timestamp").unwrap().parse().unwrap();
    assert!(
        (from..=to).contains(&stamp),
        "webhook-timestamp {stamp} is not the time of the attempt ({from}..={to})"
    );
}

const BODY: &[u8] = br#"{"order_id":"o-1","customer_id":"alice","status":"CONFIRMED","reason":null,"total":"19.99","currency":"EUR","event_id":"e-1"}"#;

#[tokio::test]
async fn a_standard_webhooks_library_verifies_the_delivery() {
    let (url, received) = webhook_receiver(|_| 204).await;
    let delivery_id = Uuid::new_v4();
    let before = now();

    let attempts = channel(&url, 4).deliver(BODY, delivery_id).await.unwrap();

    assert_eq!(attempts, 1);
    let received = received.lock().unwrap();
    let hook = &received[0];
    assert_eq!(hook.body, BODY);
    receiver_library()
        .verify(&hook.body, &hook.headers)
        .unwrap();
    assert_eq!(hook.delivery(), Some(delivery_id.to_string()));
    assert_eq!(
        hook.header("content-type").as_deref(),
        Some("application/json")
    );
    // One signature, as before rotations existed: no space-delimited list.
    let signature = hook.header("webhook-signature").unwrap();
    assert!(signature.starts_with("v1,"), "{signature}");
    assert_eq!(signature.split(' ').count(), 1, "{signature}");
    assert_stamped_between(hook, before, now());
    assert_eq!(hook.header("x-chorus-signature"), None);
    assert_eq!(hook.header("x-chorus-delivery"), None);
}

#[tokio::test]
async fn during_a_rotation_receivers_on_either_secret_verify_and_no_other() {
    let (url, received) = webhook_receiver(|n| if n == 0 { 503 } else { 204 }).await;
    let delivery_id = Uuid::new_v4();

    let attempts = channel_signing(&url, 4, Some(PREVIOUS))
        .deliver(BODY, delivery_id)
        .await
        .unwrap();

    assert_eq!(attempts, 2);
    let received = received.lock().unwrap();
    // Every attempt, the retry too, carries both signatures.
    for hook in received.iter() {
        let signature = hook.header("webhook-signature").unwrap();
        let signatures: Vec<&str> = signature.split(' ').collect();
        assert_eq!(signatures.len(), 2, "{signature}");
        assert!(
            signatures.iter().all(|s| s.starts_with("v1,")),
            "{signature}"
        );
        // A receiver already moved to the new secret, and one not yet.
        for receiver_secret in [SECRET, PREVIOUS] {
            Webhook::new(receiver_secret)
                .unwrap()
                .verify(&hook.body, &hook.headers)
                .unwrap_or_else(|e| panic!("{receiver_secret}: {e:?}"));
        }
        let unrelated = Webhook::new("whsec_b3RoZXIga2V5").unwrap();
        assert!(matches!(
            unrelated.verify(&hook.body, &hook.headers),
            Err(WebhookError::InvalidSignature)
        ));
        assert_eq!(hook.delivery(), Some(delivery_id.to_string()));
    }
}

#[tokio::test]
async fn the_library_refuses_another_key_a_changed_body_and_an_old_timestamp() {
    let (url, received) = webhook_receiver(|_| 200).await;
    channel(&url, 1)
        .deliver(BODY, Uuid::new_v4())
        .await
        .unwrap();
    let hook = received.lock().unwrap()[0].clone();

    let other_key = Webhook::new("whsec_b3RoZXIga2V5").unwrap();
    assert!(matches!(
        other_key.verify(&hook.body, &hook.headers),
        Err(WebhookError::InvalidSignature)
    ));
    let tampered = [&hook.body[..], b" "].concat();
    assert!(matches!(
        receiver_library().verify(&tampered, &hook.headers),
        Err(WebhookError::InvalidSignature)
    ));
    // A replay of the request an hour later: refused by its timestamp before
    // the signature is even looked at (re-stamping it breaks the signature).
    let mut replayed = hook.headers.clone();
    let an_hour_ago = hook
        .header("webhook-timestamp")
        .unwrap()
        .parse::<i64>()
        .unwrap()
        - 3600;
    replayed.insert(
        "webhook-timestamp",
        HeaderValue::from_str(&an_hour_ago.to_string()).unwrap(),
    );
    assert!(matches!(
        receiver_library().verify(&hook.body, &replayed),
        Err(WebhookError::TimestampTooOldError)
    ));
}

#[tokio::test]
async fn a_500_then_200_is_retried_with_the_same_delivery_id_each_attempt_signed_afresh() {
    let (url, received) = webhook_receiver(|n| if n == 0 { 500 } else { 200 }).await;
    let delivery_id = Uuid::new_v4();
    let before = now();

    let attempts = channel(&url, 4).deliver(BODY, delivery_id).await.unwrap();

    assert_eq!(attempts, 2);
    let received = received.lock().unwrap();
    assert_eq!(received.len(), 2);
    let after = now();
    for hook in received.iter() {
        assert_eq!(hook.delivery(), Some(delivery_id.to_string()));
        receiver_library()
            .verify(&hook.body, &hook.headers)
            .unwrap();
        assert_stamped_between(hook, before, after);
    }
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
async fn a_client_error_is_refused_for_good_and_not_retried() {
    let (url, received) = webhook_receiver(|_| 401).await;

    let error = channel(&url, 4)
        .deliver(BODY, Uuid::new_v4())
        .await
        .unwrap_err();

    assert!(matches!(error, DeliveryError::Invalid(_)), "{error:?}");
    assert_eq!(received.lock().unwrap().len(), 1);
}
