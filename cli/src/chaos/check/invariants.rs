//! The saga's invariants after a chaos campaign, as pure functions of the
//! facts read. Each gives a verdict: figures worth printing and, when it is
//! violated, one line per violation.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::Serialize;

use super::facts::{Facts, OrderFact};
use crate::chaos::payloads::PoisonKind;
use crate::saga_steps::is_final;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Verdict {
    pub name: &'static str,
    pub ok: bool,
    pub figures: BTreeMap<&'static str, i64>,
    pub violations: Vec<String>,
}

impl Verdict {
    fn new(name: &'static str) -> Verdict {
        Verdict {
            name,
            ok: true,
            figures: BTreeMap::new(),
            violations: Vec::new(),
        }
    }

    fn figure(&mut self, name: &'static str, value: usize) {
        self.figures.insert(name, value as i64);
    }

    fn violation(&mut self, text: String) {
        self.ok = false;
        self.violations.push(text);
    }
}

pub fn all(facts: &Facts) -> Vec<Verdict> {
    let mut verdicts = vec![
        accepted_orders_final(facts),
        stock_conserved(facts),
        one_standing_charge(facts),
        one_notification(facts),
        no_real_order_dead_lettered(facts),
    ];
    if let Some(fates) = designed_fates(facts) {
        verdicts.push(fates);
    }
    if let Some(poison) = poison_accounted(facts) {
        verdicts.push(poison);
    }
    verdicts
}

fn orders_by_id(facts: &Facts) -> HashMap<&str, &OrderFact> {
    facts
        .orders
        .iter()
        .map(|o| (o.order_id.as_str(), o))
        .collect()
}

/// Every order the gateway accepted (its OrderPlaced acknowledged) is final.
pub fn accepted_orders_final(facts: &Facts) -> Verdict {
    let mut v = Verdict::new("every accepted order final");
    let orders = orders_by_id(facts);
    let published: Vec<_> = facts.accepted.iter().filter(|a| a.published).collect();
    v.figure("accepted", published.len());
    v.figure("never published", facts.accepted.len() - published.len());
    let (mut confirmed, mut cancelled) = (0, 0);
    for accepted in published {
        match orders.get(accepted.order_id.as_str()) {
            None => v.violation(format!(
                "order {} accepted, unknown to the read model",
                accepted.order_id
            )),
            Some(o) if o.status == "CONFIRMED" => confirmed += 1,
            Some(o) if o.status == "CANCELLED" => cancelled += 1,
            Some(o) => v.violation(format!(
                "order {} accepted, still {}",
                accepted.order_id, o.status
            )),
        }
    }
    v.figure("confirmed", confirmed);
    v.figure("cancelled", cancelled);
    v.figure("not final", v.violations.len());
    v
}

/// One delivery per (final order, its final state, channel in use), no
/// delivery for a state the order did not end in, and at most one distinct
/// NotificationSent for each.
pub fn one_notification(facts: &Facts) -> Verdict {
    let mut v = Verdict::new("one notification per order, final state and channel");
    let channels: BTreeSet<&str> = facts
        .deliveries
        .iter()
        .map(|d| d.channel.as_str())
        .collect();
    let mut rows: HashMap<(&str, &str, &str), Vec<&str>> = HashMap::new();
    for d in &facts.deliveries {
        rows.entry((&d.order_id, &d.final_status, &d.channel))
            .or_default()
            .push(&d.status);
    }
    let orders = orders_by_id(facts);
    let mut finals = 0;
    for order in facts.orders.iter().filter(|o| is_final(&o.status)) {
        finals += 1;
        for channel in &channels {
            match rows
                .get(&(order.order_id.as_str(), order.status.as_str(), *channel))
                .map(Vec::as_slice)
            {
                Some(["delivered" | "failed"]) => {}
                Some([status]) => {
                    v.violation(format!("order {} on {channel}: {status}", order.order_id))
                }
                Some(more) => v.violation(format!(
                    "order {} on {channel}: {} deliveries",
                    order.order_id,
                    more.len()
                )),
                None => v.violation(format!(
                    "order {} {} never notified on {channel}",
                    order.order_id, order.status
                )),
            }
        }
    }
    if finals > 0 && channels.is_empty() {
        v.violation(format!("{finals} final orders, no delivery at all"));
    }
    for d in &facts.deliveries {
        if orders
            .get(d.order_id.as_str())
            .is_some_and(|o| o.status != d.final_status)
        {
            v.violation(format!(
                "order {} notified {} but is {}",
                d.order_id,
                d.final_status,
                orders[d.order_id.as_str()].status
            ));
        }
    }
    let mut sent: HashMap<(&str, &str, &str), BTreeSet<&str>> = HashMap::new();
    for s in &facts.sent {
        sent.entry((&s.order_id, &s.final_status, &s.channel))
            .or_default()
            .insert(&s.event_id);
    }
    for ((order_id, status, channel), ids) in &sent {
        if ids.len() > 1 {
            v.violation(format!(
                "order {order_id} {status} on {channel}: {} distinct NotificationSent",
                ids.len()
            ));
        }
    }
    v.figure("final orders", finals);
    v.figure("channels", channels.len());
    v.figure("deliveries", facts.deliveries.len());
    v.figure("NotificationSent events", facts.sent.len());
    v
}

/// No event of an order the gateway accepted sits in a dead-letter topic.
pub fn no_real_order_dead_lettered(facts: &Facts) -> Verdict {
    let mut v = Verdict::new("no event of a real order dead-lettered");
    let accepted: BTreeSet<&str> = facts.accepted.iter().map(|a| a.order_id.as_str()).collect();
    for dead in &facts.dead_letters {
        if let Some(key) = &dead.key
            && dead.valid_event
            && accepted.contains(key.as_str())
        {
            v.violation(format!("{}: an event of order {key}", dead.topic));
        }
    }
    v.figure("dead letters", facts.dead_letters.len());
    v
}

/// Every poison message dead-lettered (found by its original place) or, for
/// those that decode, rejected by a rule: its order cancelled for a reason
/// other than the deadline, or (StockAdjusted) its SKU never in the catalogue.
pub fn poison_accounted(facts: &Facts) -> Option<Verdict> {
    let poison = facts.poison.as_ref()?;
    let mut v = Verdict::new("every poison message dead-lettered or rejected");
    let dead: BTreeSet<(&str, i32, i64)> = facts
        .dead_letters
        .iter()
        .filter_map(|d| d.original.as_ref().map(|(t, p, o)| (t.as_str(), *p, *o)))
        .collect();
    let orders = orders_by_id(facts);
    let skus: BTreeSet<&str> = facts.stock.iter().map(|s| s.sku.as_str()).collect();
    let (mut dead_lettered, mut rejected) = (0, 0);
    for p in poison {
        let framing = matches!(
            p.kind,
            PoisonKind::RandomBytes | PoisonKind::WrongMagicByte | PoisonKind::UnknownSchemaId
        );
        let cancelled_by_rule = orders
            .get(p.key.as_str())
            .is_some_and(|o| o.status == "CANCELLED" && o.reason.as_deref() != Some("timeout"));
        let never_stocked =
            p.event_type.as_deref() == Some("StockAdjusted") && !skus.contains(p.key.as_str());
        if dead.contains(&(p.topic.as_str(), p.partition, p.offset)) {
            dead_lettered += 1;
        } else if !framing && (cancelled_by_rule || never_stocked) {
            rejected += 1;
        } else {
            let key: String = p.key.chars().take(40).collect();
            v.violation(format!(
                "{} at {}/{}:{} (key {key}): {}",
                p.kind.name(),
                p.topic,
                p.partition,
                p.offset,
                p.detail
            ));
        }
    }
    v.figure("sent", poison.len());
    v.figure("dead-lettered", dead_lettered);
    v.figure("rejected by a rule", rejected);
    v.figure("unaccounted", poison.len() - dead_lettered - rejected);
    Some(v)
}

mod charges;
mod fates;
mod stock;
#[cfg(test)]
mod tests;

pub use charges::one_standing_charge;
pub use fates::designed_fates;
pub use stock::stock_conserved;
