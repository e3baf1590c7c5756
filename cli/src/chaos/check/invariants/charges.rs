//! The payment provider's side of the saga, counted from its own books. Its
//! charges (`sandbox_charges`) hold one row per idempotency key by
//! construction, so counting them per order can never show a second
//! authorization; its call log (`sandbox_calls`) records every authorize and
//! void it was asked for, answered or not. Kept when every CONFIRMED order was
//! asked to authorize and never to void, and its one charge stands for its
//! total; no charge stands for a cancelled order or for one never placed; and
//! no order was asked to authorize after it was voided (a provider that had
//! voided it would authorize it afresh).

use std::collections::{BTreeMap, HashMap};

use super::{Verdict, orders_by_id};
use crate::chaos::check::facts::{CallFact, CallKind, ChargeFact, Facts};

pub fn one_standing_charge(facts: &Facts) -> Verdict {
    let mut v =
        Verdict::new("one authorization per confirmed order, none standing for a cancelled one");
    let orders = orders_by_id(facts);
    // BTreeMap: violations in a stable order.
    let mut log: BTreeMap<&str, Vec<&CallFact>> = BTreeMap::new();
    for call in &facts.calls {
        log.entry(&call.key).or_default().push(call);
    }
    let asked = |key: &str, kind: CallKind| {
        log.get(key)
            .map_or(0, |calls| calls.iter().filter(|c| c.kind == kind).count())
    };
    let standing: HashMap<&str, &ChargeFact> = facts
        .charges
        .iter()
        .filter(|c| !c.voided)
        .map(|c| (c.order_id.as_str(), c))
        .collect();
    let mut standing_ids: Vec<&str> = standing.keys().copied().collect();
    standing_ids.sort_unstable();
    for order_id in standing_ids {
        match orders.get(order_id) {
            None => v.violation(format!(
                "order {order_id} charged, unknown to the read model"
            )),
            Some(o) if o.status == "CANCELLED" => v.violation(format!(
                "order {order_id} cancelled ({}), charge standing",
                o.reason.as_deref().unwrap_or("-")
            )),
            Some(_) => {}
        }
    }
    let mut confirmed = 0;
    for order in facts.orders.iter().filter(|o| o.status == "CONFIRMED") {
        confirmed += 1;
        let id = order.order_id.as_str();
        if asked(id, CallKind::Authorize) == 0 {
            v.violation(format!(
                "order {id} confirmed, the provider was never asked to authorize it"
            ));
        }
        let voids = asked(id, CallKind::Void);
        if voids > 0 {
            v.violation(format!(
                "order {id} confirmed, the provider was asked to void it {voids} times"
            ));
        }
        match standing.get(id) {
            Some(charge) if Some(charge.amount) == order.total => {}
            Some(charge) => v.violation(format!(
                "order {id} confirmed for {}, charged {}",
                order.total.map_or("-".into(), |t| t.to_string()),
                charge.amount
            )),
            None => v.violation(format!("order {id} confirmed without a standing charge")),
        }
    }
    for (key, calls) in &log {
        if let Some(void) = calls.iter().position(|c| c.kind == CallKind::Void)
            && calls[void..].iter().any(|c| c.kind == CallKind::Authorize)
        {
            v.violation(format!(
                "order {key}: the provider was asked to authorize it after its void"
            ));
        }
    }
    let authorize_calls = facts
        .calls
        .iter()
        .filter(|c| c.kind == CallKind::Authorize)
        .count();
    v.figure("charges", facts.charges.len());
    v.figure("voided", facts.charges.iter().filter(|c| c.voided).count());
    v.figure("confirmed orders", confirmed);
    v.figure("authorize calls", authorize_calls);
    v.figure("void calls", facts.calls.len() - authorize_calls);
    // The same idempotency key asked again: a call whose answer a crash lost.
    v.figure(
        "orders asked to authorize more than once",
        log.keys()
            .filter(|key| asked(key, CallKind::Authorize) > 1)
            .count(),
    );
    v.figure("void marker in the sandbox", usize::from(facts.void_marker));
    v
}
