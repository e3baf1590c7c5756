//! The SMTP channel against a stub SMTP server.

use std::time::Duration;

use chorus_avro::OrderCancelled;
use chorus_notification::rules::{delivery_id, order_outcome};
use chorus_notification::{Channel, FinalStatus, RetryPolicy, SmtpChannel, SmtpConfig};

use crate::stubs::smtp_server;

fn channel(url: &str) -> SmtpChannel {
    let config = SmtpConfig {
        url: url.into(),
        from: "chorus@localhost".parse().unwrap(),
        recipient_domain: "example.com".into(),
        timeout: Duration::from_secs(2),
    };
    let retry = RetryPolicy {
        max_attempts: 3,
        first_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(40),
    };
    SmtpChannel::new(&config, retry).unwrap()
}

#[tokio::test]
async fn a_cancellation_is_mailed_to_the_customer_at_the_domain_after_a_busy_server() {
    let (url, mails) = smtp_server(1).await;
    let cancelled = OrderCancelled {
        event_id: "e-9".into(),
        order_id: "o-9".into(),
        occurred_at: 0,
        correlation_id: "o-9".into(),
        causation_id: None,
        customer_id: "alice".into(),
        reason: "out_of_stock".into(),
        detail: None,
    };
    let outcome = order_outcome(&cancelled.into()).unwrap();
    let id = delivery_id("o-9", FinalStatus::Cancelled, Channel::Smtp);

    let attempts = channel(&url).deliver(&outcome, id).await.unwrap();

    assert_eq!(attempts, 2);
    let mails = mails.lock().unwrap();
    assert_eq!(mails.len(), 1);
    assert_eq!(mails[0].from, "<chorus@localhost>");
    assert_eq!(mails[0].to, ["<alice@example.com>"]);
    assert!(
        mails[0]
            .data
            .contains(&format!("Message-ID: <{id}@chorus>")),
        "{}",
        mails[0].data
    );
    assert!(
        mails[0]
            .data
            .contains("Subject: Your order o-9 was cancelled"),
        "{}",
        mails[0].data
    );
    assert!(mails[0].data.contains("out of stock"), "{}", mails[0].data);
}

#[tokio::test]
async fn a_customer_id_that_makes_no_address_is_refused_before_sending() {
    let (url, _) = smtp_server(0).await;
    assert!(channel(&url).recipient("no body").is_err());
    assert_eq!(
        channel(&url)
            .recipient("bob@shop.test")
            .unwrap()
            .to_string(),
        "bob@shop.test"
    );
}
