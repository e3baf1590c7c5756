//! The cap on a customer's orders not yet final
//! (`CHORUS_GATEWAY_OPEN_ORDERS_PER_CUSTOMER`): a batch of POSTs is checked
//! before it is written; a new order that would take its customer past the
//! cap answers 429 `open_order_limit`, so one customer cannot hoard stock
//! with orders it never lets finish. A retry of an order already placed (its
//! Idempotency-Key has an order) is not a new order and always passes.
//!
//! Open orders are counted in the order service's read model, which records
//! an order milliseconds after its 202; orders of the same batch count
//! together. If the read model cannot be read, the batch is let through
//! (placing orders does not depend on it) and a warning logged.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use crate::error::{AppError, ErrorCode};
use crate::store::Store;

/// What a refused POST is told to wait (orders usually finish within seconds).
const RETRY_AFTER: Duration = Duration::from_secs(5);

/// (customer, Idempotency-Key) of an attempt.
pub type Key = (String, String);

/// Which of `keys` (a batch's attempts, in order) may go ahead: `true` for
/// each admitted. `open`: each customer's orders not yet final; `existing`:
/// keys that already have an order.
pub fn admit(
    keys: &[Key],
    open: &HashMap<String, i64>,
    existing: &HashSet<Key>,
    cap: u32,
) -> Vec<bool> {
    let mut taken: HashMap<&str, i64> = HashMap::new();
    let mut admitted: HashSet<&Key> = HashSet::new();
    keys.iter()
        .map(|key| {
            if existing.contains(key) || admitted.contains(key) {
                return true;
            }
            let customer = key.0.as_str();
            let count = taken
                .entry(customer)
                .or_insert_with(|| open.get(customer).copied().unwrap_or(0));
            if *count >= i64::from(cap) {
                return false;
            }
            *count += 1;
            admitted.insert(key);
            true
        })
        .collect()
}

/// The error a refused attempt answers.
pub fn refusal(cap: u32) -> AppError {
    AppError::Limited {
        code: ErrorCode::OpenOrderLimit,
        message: format!(
            "this customer already has {cap} orders not yet final, the most allowed \
             (open-order limit); place more once some are confirmed or cancelled"
        ),
        retry_after: RETRY_AFTER,
    }
}

/// [`admit`] for a batch, reading what it needs: `Ok(None)` when every
/// attempt may go ahead without looking further.
pub async fn check(store: &Store, keys: &[Key], cap: u32) -> Result<Option<Vec<bool>>, AppError> {
    let customers: Vec<String> = keys
        .iter()
        .map(|(customer, _)| customer.clone())
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    let open = match store.open_orders(&customers).await {
        Ok(open) => open,
        Err(e) => {
            tracing::warn!(
                error = %e,
                "cannot count open orders in the read model; this batch is not held to the open-order limit"
            );
            return Ok(None);
        }
    };
    let unknown = HashSet::new();
    let verdicts = admit(keys, &open, &unknown, cap);
    if verdicts.iter().all(|&ok| ok) {
        return Ok(None);
    }
    // Some would go past the cap: those that are retries pass after all.
    let refused: Vec<Key> = keys
        .iter()
        .zip(&verdicts)
        .filter(|(_, ok)| !**ok)
        .map(|(key, _)| key.clone())
        .collect();
    let existing = store.existing_keys(&refused).await?;
    Ok(Some(admit(keys, &open, &existing, cap)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(customer: &str, k: &str) -> Key {
        (customer.to_string(), k.to_string())
    }

    #[test]
    fn new_orders_pass_up_to_the_cap_and_retries_always() {
        let open = HashMap::from([("alice".to_string(), 2), ("bob".to_string(), 3)]);
        let existing = HashSet::from([key("bob", "old")]);
        let keys = [
            key("alice", "a"),
            key("alice", "a"), // the same attempt twice in one batch: one order
            key("alice", "b"),
            key("bob", "new"),
            key("bob", "old"),
            key("carol", "c"),
        ];
        assert_eq!(
            admit(&keys, &open, &existing, 3),
            [true, true, false, false, true, true]
        );
    }
}
