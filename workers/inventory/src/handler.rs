//! The inventory worker as the consumer loop sees it: refuse what the shared
//! validation refuses → lock the batch's reservations, then its catalogue
//! rows (each set in key order) → the rules, event by event, on the locked
//! state in memory → write back, all inside the loop's transaction, so an
//! event's stock moves, its reservation and the events it emits commit
//! together or not at all.

use std::collections::{BTreeSet, HashMap};

use chorus_avro::{Envelope, Event, EventType, Topic};
use chorus_runtime::{HandleError, Handler, Incoming, NoCall, NoCalls, Verdict};
use sqlx::PgConnection;

use crate::rules::{self, Invalid, Reservation, StockLevel, Transition};
use crate::store::{self, CatalogueRow};

/// Catalogue and reservations: reserves stock for placed orders, releases it
/// on compensation, sells it on confirmation.
#[derive(Debug, Default, Clone)]
pub struct InventoryHandler {
    // Stateless today; the private field keeps construction to `default()`.
    _private: (),
}

impl Handler for InventoryHandler {
    type Calls = NoCalls;

    fn name(&self) -> &'static str {
        "inventory"
    }

    fn topics(&self) -> &'static [Topic] {
        &[Topic::InventoryCommands, Topic::Orders, Topic::Payments]
    }

    fn handles(&self, event_type: EventType) -> bool {
        matches!(
            event_type,
            EventType::StockAdjusted
                | EventType::OrderPlaced
                | EventType::PaymentFailed
                | EventType::OrderCancelled
                | EventType::OrderConfirmed
        )
    }

    fn calls(&self) -> &NoCalls {
        &NoCalls
    }

    async fn apply(
        &self,
        tx: &mut PgConnection,
        events: &[Incoming<'_>],
    ) -> Result<Vec<Verdict<NoCall>>, HandleError> {
        // Refused content is dead-lettered before any row is locked: its ids
        // may be what PostgreSQL cannot even compare (a NUL).
        let checked: Vec<Result<(), Invalid>> =
            events.iter().map(|e| rules::check(e.event)).collect();
        let valid: Vec<&Event> = events
            .iter()
            .zip(&checked)
            .filter(|(_, checked)| checked.is_ok())
            .map(|(e, _)| e.event)
            .collect();
        let mut order_ids: Vec<&str> = valid
            .iter()
            .filter(|e| !matches!(e, Event::StockAdjusted(_)))
            .map(|e| e.key())
            .collect();
        order_ids.sort_unstable();
        order_ids.dedup();
        let reservations = store::lock_reservations(tx, &order_ids).await?;
        let skus = skus_of(&valid, &reservations);
        let skus: Vec<&str> = skus.iter().map(String::as_str).collect();
        let catalogue = store::lock_catalogue(tx, &skus).await?;

        let mut state = State {
            new_reservations: BTreeSet::new(),
            changed_reservations: BTreeSet::new(),
            changed_skus: BTreeSet::new(),
            reservations,
            catalogue,
        };
        let verdicts: Vec<Verdict<NoCall>> = events
            .iter()
            .zip(checked)
            .map(|(e, checked)| match checked {
                Ok(()) => state.apply(e),
                Err(Invalid(reason)) => Verdict::Rejected(reason),
            })
            .collect();

        let inserted = reservation_rows(&state.new_reservations, &state.reservations);
        if !store::insert_reservations(tx, &inserted).await? {
            // Another partition's event (or replica) answered one of these
            // orders after we looked; the retry sees it and decides again.
            return Err(HandleError::Transient(
                "a reservation of this batch was written concurrently".into(),
            ));
        }
        let updated = reservation_rows(&state.changed_reservations, &state.reservations);
        store::update_reservations(tx, &updated).await?;
        let stock: Vec<(&str, &CatalogueRow)> = state
            .changed_skus
            .iter()
            .map(|sku| (sku.as_str(), &state.catalogue[sku]))
            .collect();
        store::save_catalogue(tx, &stock).await?;
        Ok(verdicts)
    }
}

fn reservation_rows<'a>(
    ids: &'a BTreeSet<String>,
    reservations: &'a HashMap<String, Reservation>,
) -> Vec<(&'a str, &'a Reservation)> {
    ids.iter()
        .map(|id| (id.as_str(), &reservations[id]))
        .collect()
}

/// Every SKU the batch may touch: ordered, adjusted, or held by a reservation.
fn skus_of(events: &[&Event], reservations: &HashMap<String, Reservation>) -> BTreeSet<String> {
    let mut skus = BTreeSet::new();
    for event in events {
        match event {
            Event::StockAdjusted(a) => {
                skus.insert(a.sku.clone());
            }
            Event::OrderPlaced(p) => skus.extend(p.items.iter().map(|l| l.sku.clone())),
            other => {
                if let Some(r) = reservations.get(other.key()) {
                    skus.extend(r.lines.iter().map(|l| l.sku.clone()));
                }
            }
        }
    }
    skus
}

/// The batch's locked rows, changed in memory event by event.
struct State {
    reservations: HashMap<String, Reservation>,
    catalogue: HashMap<String, CatalogueRow>,
    new_reservations: BTreeSet<String>,
    changed_reservations: BTreeSet<String>,
    changed_skus: BTreeSet<String>,
}

impl State {
    fn apply(&mut self, incoming: &Incoming<'_>) -> Verdict<NoCall> {
        let event = incoming.event;
        let envelope = |event_type: EventType| Envelope::caused_by(event, event_type);
        let transition = match event {
            Event::StockAdjusted(adjusted) => {
                let row = self
                    .catalogue
                    .entry(adjusted.sku.clone())
                    .or_insert_with(|| CatalogueRow {
                        name: String::new(),
                        unit_price: adjusted.unit_price,
                        available: 0,
                        reserved: 0,
                        sold: 0,
                    });
                row.name = adjusted.name.clone();
                row.unit_price = adjusted.unit_price;
                row.available = adjusted.available;
                self.changed_skus.insert(adjusted.sku.clone());
                return Verdict::emit(vec![]);
            }
            Event::OrderPlaced(placed) => {
                if self.reservations.contains_key(&placed.order_id) {
                    // A re-send under a new event id: the order was answered already.
                    incoming.span.in_scope(|| {
                        tracing::debug!("order already answered; ignoring OrderPlaced")
                    });
                    return Verdict::emit(vec![]);
                }
                let levels: Vec<StockLevel> = placed
                    .items
                    .iter()
                    .filter_map(|l| {
                        let row = self.catalogue.get(&l.sku)?;
                        Some(StockLevel {
                            sku: l.sku.clone(),
                            unit_price: row.unit_price,
                            available: row.available,
                        })
                    })
                    .collect();
                match rules::reserve(placed, &levels, envelope) {
                    Ok(transition) => Some(transition),
                    Err(Invalid(reason)) => return Verdict::Rejected(reason),
                }
            }
            Event::PaymentFailed(failed) => rules::release(
                &failed.order_id,
                self.reservations.get(&failed.order_id),
                &failed.reason,
                envelope,
            ),
            Event::OrderCancelled(cancelled) => rules::release(
                &cancelled.order_id,
                self.reservations.get(&cancelled.order_id),
                &cancelled.reason,
                envelope,
            ),
            Event::OrderConfirmed(confirmed) => {
                rules::sell(self.reservations.get(&confirmed.order_id))
            }
            _ => None,
        };
        let Some(transition) = transition else {
            return Verdict::emit(vec![]);
        };
        match self.record(event.key(), transition) {
            Ok(events) => Verdict::emit(events),
            Err(reason) => Verdict::Rejected(reason),
        }
    }

    /// Applies a transition to the locked rows; its events, or why it cannot be.
    fn record(&mut self, order_id: &str, transition: Transition) -> Result<Vec<Event>, String> {
        let missing: Vec<&str> = transition
            .moves
            .iter()
            .filter(|m| !self.catalogue.contains_key(&m.sku))
            .map(|m| m.sku.as_str())
            .collect();
        if !missing.is_empty() {
            return Err(format!(
                "catalogue rows missing for {missing:?} (order {order_id})"
            ));
        }
        for m in &transition.moves {
            let row = self.catalogue.get_mut(&m.sku).expect("checked above");
            row.available += m.available;
            row.reserved += m.reserved;
            row.sold += m.sold;
            self.changed_skus.insert(m.sku.clone());
        }
        if self
            .reservations
            .insert(order_id.to_string(), transition.reservation)
            .is_none()
        {
            self.new_reservations.insert(order_id.to_string());
        } else if !self.new_reservations.contains(order_id) {
            self.changed_reservations.insert(order_id.to_string());
        }
        Ok(transition.events)
    }
}
