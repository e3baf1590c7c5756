//! The log channel: one structured line per notification, for operators and
//! for setups without any remote channel.

use uuid::Uuid;

use crate::rules::OrderOutcome;

pub(super) fn deliver(outcome: &OrderOutcome, delivery_id: Uuid) {
    tracing::info!(
        target: "chorus_notification::notify",
        order_id = %outcome.order_id,
        customer_id = %outcome.customer_id,
        final_status = outcome.final_status.as_str(),
        reason = outcome.reason.as_deref(),
        total = outcome.total.map(|t| t.to_string()),
        currency = outcome.currency.as_deref(),
        event_id = %outcome.event_id,
        %delivery_id,
        "order {}",
        outcome.final_status.as_str(),
    );
}
