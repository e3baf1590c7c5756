//! The notification rules, pure: which events are final states, what each
//! channel says about them and their delivery ids. The retry schedule is
//! [`chorus_runtime::retry::RetryPolicy`]'s.

use chorus_avro::{CancelReason, Envelope, Event, EventPayload, NotificationSent};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// An order's final state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum FinalStatus {
    Confirmed,
    Cancelled,
}

impl FinalStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            FinalStatus::Confirmed => "CONFIRMED",
            FinalStatus::Cancelled => "CANCELLED",
        }
    }
}

/// A way of telling the customer, in the order they are tried: the log,
/// which cannot fail, comes last so a failing remote channel rolls back
/// before anything is logged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Channel {
    Webhook,
    Smtp,
    Log,
}

impl Channel {
    pub const ALL: [Channel; 3] = [Channel::Webhook, Channel::Smtp, Channel::Log];

    pub fn parse(s: &str) -> Option<Channel> {
        Channel::ALL.into_iter().find(|c| c.as_str() == s)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Webhook => "webhook",
            Channel::Smtp => "smtp",
            Channel::Log => "log",
        }
    }
}

impl std::fmt::Display for Channel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the customer is told: an order's final state and why. The event's
/// `detail` is not kept: the customer reads the reason's fixed text
/// ([`CancelReason`]), whatever an event written before the texts were
/// fixed says (an outcome stored then, with a `detail`, still reads).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderOutcome {
    pub order_id: String,
    pub customer_id: String,
    pub final_status: FinalStatus,
    /// Why it was cancelled (`out_of_stock`, `payment_declined`, …).
    pub reason: Option<String>,
    /// The amount charged, for a confirmed order.
    pub total: Option<Decimal>,
    pub currency: Option<String>,
    /// The event announcing the final state.
    pub event_id: String,
}

/// The validation every consumer shares ([`chorus_avro::validate`]),
/// applied to a final state before anything is claimed or sent: the
/// customer is told only of what every worker accepts.
pub fn check(event: &Event) -> Result<(), String> {
    chorus_avro::validate::event(event).map_err(|invalid| invalid.to_string())
}

/// The final state `event` announces, if it announces one.
pub fn order_outcome(event: &Event) -> Option<OrderOutcome> {
    match event {
        Event::OrderConfirmed(e) => Some(OrderOutcome {
            order_id: e.order_id.clone(),
            customer_id: e.customer_id.clone(),
            final_status: FinalStatus::Confirmed,
            reason: None,
            total: Some(e.total),
            currency: Some(e.currency.clone()),
            event_id: e.event_id.clone(),
        }),
        Event::OrderCancelled(e) => Some(OrderOutcome {
            order_id: e.order_id.clone(),
            customer_id: e.customer_id.clone(),
            final_status: FinalStatus::Cancelled,
            reason: Some(e.reason.clone()),
            total: None,
            currency: None,
            event_id: e.event_id.clone(),
        }),
        _ => None,
    }
}

/// The id of the one delivery of an order's final state on a channel. It is
/// derived, not drawn, so every resend of that delivery carries the same id.
pub fn delivery_id(order_id: &str, final_status: FinalStatus, channel: Channel) -> Uuid {
    let namespace = Uuid::new_v5(&Uuid::NAMESPACE_URL, b"urn:chorus:notification:delivery");
    let name = format!("{order_id}/{}/{}", final_status.as_str(), channel.as_str());
    Uuid::new_v5(&namespace, name.as_bytes())
}

#[derive(Serialize)]
struct WebhookBody<'a> {
    order_id: &'a str,
    customer_id: &'a str,
    status: &'static str,
    reason: Option<&'a str>,
    total: Option<String>,
    currency: Option<&'a str>,
    event_id: &'a str,
}

/// The webhook's JSON body; its exact bytes are what gets signed.
pub fn webhook_body(outcome: &OrderOutcome) -> Vec<u8> {
    let body = WebhookBody {
        order_id: &outcome.order_id,
        customer_id: &outcome.customer_id,
        status: outcome.final_status.as_str(),
        reason: outcome.reason.as_deref(),
        total: outcome.total.map(|total| total.to_string()),
        currency: outcome.currency.as_deref(),
        event_id: &outcome.event_id,
    };
    serde_json::to_vec(&body).expect("a struct of strings serializes")
}

/// The customer's e-mail address: the customer id itself when it is one.
pub fn recipient_address(customer_id: &str, recipient_domain: &str) -> String {
    if customer_id.contains('@') {
        customer_id.to_string()
    } else {
        format!("{customer_id}@{recipient_domain}")
    }
}

/// The e-mail's subject and plain-text body.
pub fn email_text(outcome: &OrderOutcome) -> (String, String) {
    let order = &outcome.order_id;
    match outcome.final_status {
        FinalStatus::Confirmed => {
            let amount = match (&outcome.total, &outcome.currency) {
                (Some(total), Some(currency)) => format!(" We charged {total} {currency}."),
                _ => String::new(),
            };
            (
                format!("Your order {order} is confirmed"),
                format!("Your order {order} is confirmed.{amount}\n"),
            )
        }
        FinalStatus::Cancelled => (
            format!("Your order {order} was cancelled"),
            format!(
                "Your order {order} was cancelled. {}\n",
                CancelReason::text_of(outcome.reason.as_deref())
            ),
        ),
    }
}

/// The event recording the delivery of `outcome` on `channel`; `outcome`
/// came from the event `cause_id` of saga `correlation_id`.
pub fn notification_sent(
    cause_id: &str,
    correlation_id: &str,
    outcome: &OrderOutcome,
    channel: Channel,
) -> Event {
    // One cause yields one NotificationSent per channel: the channel tells them apart.
    let envelope = Envelope::caused_by_keyed_parts(
        cause_id,
        correlation_id,
        NotificationSent::TYPE,
        channel.as_str(),
    );
    NotificationSent {
        event_id: envelope.event_id,
        order_id: outcome.order_id.clone(),
        occurred_at: envelope.occurred_at,
        correlation_id: envelope.correlation_id,
        causation_id: envelope.causation_id,
        customer_id: outcome.customer_id.clone(),
        final_status: outcome.final_status.as_str().to_string(),
        channel: channel.as_str().to_string(),
    }
    .into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chorus_avro::{EventType, OrderCancelled, OrderConfirmed, StockReserved};

    fn confirmed() -> Event {
        OrderConfirmed {
            event_id: "e-1".into(),
            order_id: "o-1".into(),
            occurred_at: 0,
            correlation_id: "o-1".into(),
            causation_id: None,
            customer_id: "alice".into(),
            total: "19.99".parse().unwrap(),
            currency: "EUR".into(),
        }
        .into()
    }

    fn cancelled(reason: &str) -> Event {
        OrderCancelled {
            event_id: "e-2".into(),
            order_id: "o-2".into(),
            occurred_at: 0,
            correlation_id: "o-2".into(),
            causation_id: None,
            customer_id: "bob@shop.test".into(),
            reason: reason.into(),
            detail: Some("db-7.internal:5432 refused".into()),
        }
        .into()
    }

    #[test]
    fn given_a_confirmation_then_the_webhook_body_carries_the_total() {
        let outcome = order_outcome(&confirmed()).unwrap();
        let body: serde_json::Value = serde_json::from_slice(&webhook_body(&outcome)).unwrap();
        assert_eq!(
            body,
            serde_json::json!({
                "order_id": "o-1", "customer_id": "alice", "status": "CONFIRMED",
                "reason": null, "total": "19.99", "currency": "EUR", "event_id": "e-1"
            })
        );
    }

    #[test]
    fn given_a_cancellation_then_the_webhook_body_carries_the_reason() {
        let outcome = order_outcome(&cancelled("out_of_stock")).unwrap();
        let body: serde_json::Value = serde_json::from_slice(&webhook_body(&outcome)).unwrap();
        assert_eq!(body["status"], "CANCELLED");
        assert_eq!(body["reason"], "out_of_stock");
        assert_eq!(body["total"], serde_json::Value::Null);
    }

    #[test]
    fn events_that_are_not_final_states_notify_nobody() {
        let reserved = StockReserved {
            event_id: "e".into(),
            order_id: "o".into(),
            occurred_at: 0,
            correlation_id: "o".into(),
            causation_id: None,
            customer_id: "c".into(),
            lines: vec![],
            total: Decimal::ZERO,
            currency: "EUR".into(),
            payment_token: "t".into(),
            payment_token_key_id: None,
        };
        assert_eq!(order_outcome(&reserved.into()), None);
    }

    #[test]
    fn a_delivery_id_is_stable_and_differs_per_channel_and_state() {
        let id = delivery_id("o-1", FinalStatus::Confirmed, Channel::Webhook);
        assert_eq!(
            id,
            delivery_id("o-1", FinalStatus::Confirmed, Channel::Webhook)
        );
        assert_ne!(
            id,
            delivery_id("o-1", FinalStatus::Confirmed, Channel::Smtp)
        );
        assert_ne!(
            id,
            delivery_id("o-1", FinalStatus::Cancelled, Channel::Webhook)
        );
        assert_ne!(
            id,
            delivery_id("o-2", FinalStatus::Confirmed, Channel::Webhook)
        );
    }

    #[test]
    fn the_recipient_is_the_customer_id_or_the_id_at_the_domain() {
        assert_eq!(
            recipient_address("bob@shop.test", "example.com"),
            "bob@shop.test"
        );
        assert_eq!(
            recipient_address("alice", "example.com"),
            "alice@example.com"
        );
    }

    #[test]
    fn the_email_says_what_happened_and_why() {
        let (subject, body) = email_text(&order_outcome(&confirmed()).unwrap());
        assert_eq!(subject, "Your order o-1 is confirmed");
        assert!(body.contains("19.99 EUR"), "{body}");
        let (subject, body) = email_text(&order_outcome(&cancelled("payment_declined")).unwrap());
        assert_eq!(subject, "Your order o-2 was cancelled");
        assert_eq!(
            body, "Your order o-2 was cancelled. The payment was declined.\n",
            "the fixed text, never the event's detail"
        );
    }

    #[test]
    fn each_channel_gets_its_own_deterministic_notification_sent() {
        let cause = confirmed();
        let outcome = order_outcome(&cause).unwrap();
        let sent = |channel| notification_sent(cause.event_id(), "o-1", &outcome, channel);
        let webhook = sent(Channel::Webhook);
        let log = sent(Channel::Log);
        assert_ne!(webhook.event_id(), log.event_id());
        assert_eq!(webhook.event_id(), sent(Channel::Webhook).event_id());
        // The same as the keyed envelope of the cause itself.
        assert_eq!(
            webhook.event_id(),
            Envelope::caused_by_keyed(&cause, EventType::NotificationSent, "webhook").event_id
        );
        let Event::NotificationSent(sent) = webhook else {
            panic!("expected NotificationSent");
        };
        assert_eq!(sent.causation_id.as_deref(), Some("e-1"));
        assert_eq!(
            (sent.final_status.as_str(), sent.channel.as_str()),
            ("CONFIRMED", "webhook")
        );
    }

    #[test]
    fn final_states_no_worker_accepts_are_refused_and_the_ones_it_emits_accepted() {
        assert_eq!(check(&confirmed()), Ok(()));
        assert_eq!(check(&cancelled("out_of_stock")), Ok(()));
        let Event::OrderConfirmed(mut bad) = confirmed() else {
            unreachable!()
        };
        bad.customer_id = "alice\u{7}".into();
        assert!(check(&bad.into()).is_err());
        let Event::OrderCancelled(mut bad) = cancelled("Out of stock") else {
            unreachable!()
        };
        assert!(check(&bad.clone().into()).is_err());
        bad.reason = "out_of_stock".into();
        let outcome = order_outcome(&bad.into()).unwrap();
        for channel in Channel::ALL {
            let sent = notification_sent("e-2", "o-2", &outcome, channel);
            assert_eq!(check(&sent), Ok(()), "{channel}");
        }
    }
}
