//! OrderPlaced: all lines reserved at catalogue prices, or none.

use std::collections::{BTreeMap, HashMap};

use chorus_avro::{
    Envelope, EventType, OrderLine, OrderPlaced, PricedLine, StockReservationFailed, StockReserved,
};
use rust_decimal::Decimal;

use super::{
    FailureReason, Invalid, Reservation, ReservationLine, ReservationStatus, StockLevel, StockMove,
    Transition,
};

/// The order's lines, one per SKU in SKU order (the order in which catalogue
/// rows are locked): duplicate SKU lines are merged. `placed` passed
/// [`check`](super::check), so its lines are SKUs with positive quantities.
pub fn requested_lines(placed: &OrderPlaced) -> Result<Vec<OrderLine>, Invalid> {
    let mut merged: BTreeMap<&str, i32> = BTreeMap::new();
    for line in &placed.items {
        let total = merged.entry(&line.sku).or_insert(0);
        *total = total.checked_add(line.quantity).ok_or_else(|| {
            Invalid(format!(
                "OrderPlaced {}: sku {} quantity overflows",
                placed.order_id, line.sku
            ))
        })?;
    }
    Ok(merged
        .into_iter()
        .map(|(sku, quantity)| OrderLine {
            sku: sku.to_string(),
            quantity,
        })
        .collect())
}

/// Reserves every line of `placed` (which passed [`check`](super::check))
/// or none. `stock` holds the catalogue rows
/// of the order's SKUs that exist, locked by the caller.
pub fn reserve(
    placed: &OrderPlaced,
    stock: &[StockLevel],
    envelope: impl Fn(EventType) -> Envelope,
) -> Result<Transition, Invalid> {
    let lines = requested_lines(placed)?;
    let levels: HashMap<&str, &StockLevel> = stock.iter().map(|s| (s.sku.as_str(), s)).collect();

    let unknown: Vec<String> = lines
        .iter()
        .filter(|l| !levels.contains_key(l.sku.as_str()))
        .map(|l| l.sku.clone())
        .collect();
    if !unknown.is_empty() {
        return Ok(refuse(
            placed,
            lines,
            FailureReason::UnknownSku,
            unknown,
            envelope,
        ));
    }
    let short: Vec<String> = lines
        .iter()
        .filter(|l| levels[l.sku.as_str()].available < l.quantity)
        .map(|l| l.sku.clone())
        .collect();
    if !short.is_empty() {
        return Ok(refuse(
            placed,
            lines,
            FailureReason::OutOfStock,
            short,
            envelope,
        ));
    }

    let priced: Vec<PricedLine> = lines
        .iter()
        .map(|l| PricedLine {
            sku: l.sku.clone(),
            quantity: l.quantity,
            unit_price: levels[l.sku.as_str()].unit_price,
        })
        .collect();
    let total = priced.iter().try_fold(Decimal::ZERO, |sum, l| {
        Decimal::from(l.quantity)
            .checked_mul(l.unit_price)
            .and_then(|amount| sum.checked_add(amount))
            .ok_or_else(|| Invalid(format!("OrderPlaced {}: total overflows", placed.order_id)))
    })?;
    let env = envelope(EventType::StockReserved);
    let event = StockReserved {
        event_id: env.event_id,
        order_id: placed.order_id.clone(),
        occurred_at: env.occurred_at,
        correlation_id: env.correlation_id,
        causation_id: env.causation_id,
        customer_id: placed.customer_id.clone(),
        lines: priced.clone(),
        total,
        currency: placed.currency.clone(),
        payment_token: placed.payment_token.clone(),
        payment_token_key_id: placed.payment_token_key_id.clone(),
    };
    Ok(Transition {
        reservation: Reservation {
            status: ReservationStatus::Reserved,
            lines: priced
                .into_iter()
                .map(|l| ReservationLine {
                    sku: l.sku,
                    quantity: l.quantity,
                    unit_price: Some(l.unit_price),
                })
                .collect(),
            reason: None,
        },
        moves: lines
            .iter()
            .map(|l| StockMove {
                sku: l.sku.clone(),
                available: -l.quantity,
                reserved: l.quantity,
                sold: 0,
            })
            .collect(),
        events: vec![event.into()],
    })
}

fn refuse(
    placed: &OrderPlaced,
    lines: Vec<OrderLine>,
    reason: FailureReason,
    skus: Vec<String>,
    envelope: impl Fn(EventType) -> Envelope,
) -> Transition {
    let env = envelope(EventType::StockReservationFailed);
    let event = StockReservationFailed {
        event_id: env.event_id,
        order_id: placed.order_id.clone(),
        occurred_at: env.occurred_at,
        correlation_id: env.correlation_id,
        causation_id: env.causation_id,
        reason: reason.as_str().to_string(),
        skus,
    };
    Transition {
        reservation: Reservation {
            status: ReservationStatus::Failed,
            lines: lines
                .into_iter()
                .map(|l| ReservationLine {
                    sku: l.sku,
                    quantity: l.quantity,
                    unit_price: None,
                })
                .collect(),
            reason: Some(reason.as_str().to_string()),
        },
        moves: vec![],
        events: vec![event.into()],
    }
}
