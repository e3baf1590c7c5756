//! Stock is conserved when, per SKU: `reserved` is 0 (the check runs once
//! the sagas have settled); `sold` equals the units of that SKU in CONFIRMED
//! orders; and `available + reserved + sold` equals the stock its last
//! adjustment set plus the units already reserved or sold then — counted as
//! the units of CONFIRMED orders created before the adjustment.
//! That count is exact when no order of the SKU was in flight across the
//! adjustment (created before it, final after it); a SKU with such an order,
//! or without an adjustment on record, is left unchecked and counted so.

use std::collections::HashMap;

use super::Verdict;
use crate::chaos::check::facts::{Facts, OrderFact};

pub fn stock_conserved(facts: &Facts) -> Verdict {
    let mut v = Verdict::new("stock conserved");
    let mut sold_to: HashMap<&str, i64> = HashMap::new();
    let mut reserving: HashMap<&str, Vec<&OrderFact>> = HashMap::new();
    for order in facts.orders.iter().filter(|o| o.reserved) {
        for (sku, quantity) in &order.lines {
            reserving.entry(sku).or_default().push(order);
            if order.status == "CONFIRMED" {
                *sold_to.entry(sku).or_default() += quantity;
            }
        }
    }
    let (mut checked, mut no_adjustment, mut in_flight) = (0, 0, 0);
    for stock in &facts.stock {
        let sku = stock.sku.as_str();
        if stock.reserved != 0 {
            v.violation(format!("{sku}: {} units still reserved", stock.reserved));
        }
        let sold = sold_to.get(sku).copied().unwrap_or(0);
        if stock.sold != sold {
            v.violation(format!(
                "{sku}: sold {} but CONFIRMED orders hold {sold}",
                stock.sold
            ));
        }
        let Some(adjustment) = facts.adjustments.get(sku) else {
            no_adjustment += 1;
            continue;
        };
        let orders = reserving.get(sku).map(Vec::as_slice).unwrap_or_default();
        if orders
            .iter()
            .any(|o| o.created_at < adjustment.at && o.updated_at > adjustment.at)
        {
            in_flight += 1;
            continue;
        }
        checked += 1;
        let before: i64 = orders
            .iter()
            .filter(|o| o.status == "CONFIRMED" && o.created_at < adjustment.at)
            .flat_map(|o| o.lines.iter().filter(|(s, _)| s == sku).map(|(_, q)| q))
            .sum();
        let expected = adjustment.available + before;
        if stock.available + stock.reserved + stock.sold != expected {
            v.violation(format!(
                "{sku}: available {} + reserved {} + sold {} ≠ {expected} (adjusted to {}, {before} sold or reserved before)",
                stock.available, stock.reserved, stock.sold, adjustment.available
            ));
        }
    }
    v.figure("SKUs", facts.stock.len());
    v.figure("totals checked", checked);
    v.figure("unchecked: no adjustment on record", no_adjustment);
    v.figure("unchecked: orders in flight at the adjustment", in_flight);
    v.figure(
        "units sold",
        facts.stock.iter().map(|s| s.sold).sum::<i64>().max(0) as usize,
    );
    v
}
