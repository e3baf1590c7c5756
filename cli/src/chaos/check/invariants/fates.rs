//! Orders the gateway accepted while the campaign only stopped and restarted
//! services (from `--designed-fates-from` on) end with the fate their input
//! designed. The load designs confirmations, `payment_declined` and
//! `out_of_stock`; a `timeout` or `payment_unavailable` among them is a crash
//! or a restart showing through to a customer.

use super::{Verdict, orders_by_id};
use crate::chaos::check::facts::Facts;

/// Reasons no order of the load is designed to end with.
const UNDESIGNED: [&str; 2] = ["timeout", "payment_unavailable"];

/// None when the campaign named no such stretch.
pub fn designed_fates(facts: &Facts) -> Option<Verdict> {
    let from = facts.designed_from?;
    let mut v =
        Verdict::new("no order placed during restarts timed out or found payment unavailable");
    let orders = orders_by_id(facts);
    let (mut placed, mut timeout, mut unavailable) = (0, 0, 0);
    for accepted in facts
        .accepted
        .iter()
        .filter(|a| a.published && a.created_at >= from)
    {
        placed += 1;
        // One the read model does not know is `every accepted order final`'s.
        let Some(order) = orders.get(accepted.order_id.as_str()) else {
            continue;
        };
        let reason = order.reason.as_deref().unwrap_or_default();
        if order.status == "CANCELLED" && UNDESIGNED.contains(&reason) {
            if reason == "timeout" {
                timeout += 1;
            } else {
                unavailable += 1;
            }
            v.violation(format!(
                "order {} placed during restarts, cancelled {reason}",
                accepted.order_id
            ));
        }
    }
    v.figure("orders placed during restarts", placed);
    v.figure("cancelled timeout", timeout);
    v.figure("cancelled payment_unavailable", unavailable);
    Some(v)
}
