//! The cap on a customer's orders not yet final
//! (`CHORUS_GATEWAY_OPEN_ORDERS_PER_CUSTOMER`): a batch of POSTs is checked
//! before it is written; a new order that would take its customer past the
//! cap answers 429 `open_order_limit`, so one customer cannot hoard stock
//! with orders it never lets finish. A retry of an order already placed (its
//! Idempotency-Key has an order) is not a new order and always passes.
//!
//! Open orders are counted in the order service's read model (which records
//! an order milliseconds after its 202), in one statement for the customers
//! of a batch whose count is older than [`FRESH_FOR`] or who would reach the
//! cap; between two reads, the orders this gateway accepted count on top.
//! So a customer placing orders costs a read every [`FRESH_FOR`] at most,
//! not one per order. If the read model cannot be read, the batch is let
//! through (placing orders does not depend on it) and a warning logged.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::error::{AppError, ErrorCode};
use crate::store::Store;

/// What a refused POST is told to wait (orders usually finish within seconds).
const RETRY_AFTER: Duration = Duration::from_secs(5);
/// How long a customer's count read from the read model is used.
pub const FRESH_FOR: Duration = Duration::from_secs(2);
/// Counts older than [`FRESH_FOR`] are forgotten once this many are kept.
const SWEEP_THRESHOLD: usize = 10_000;

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

fn refusal(cap: u32) -> AppError {
    AppError::Limited {
        code: ErrorCode::OpenOrderLimit,
        message: format!(
            "this customer already has {cap} orders not yet final, the most allowed \
             (open-order limit); place more once some are confirmed or cancelled"
        ),
        retry_after: RETRY_AFTER,
    }
}

/// A customer's open orders as last read, plus those accepted since.
struct Counted {
    open: i64,
    read_at: Instant,
}

/// The cap and the counts it keeps between reads.
pub struct OpenOrderCap {
    cap: u32,
    counts: Mutex<HashMap<String, Counted>>,
}

impl OpenOrderCap {
    pub fn new(cap: u32) -> OpenOrderCap {
        OpenOrderCap {
            cap,
            counts: Mutex::new(HashMap::new()),
        }
    }

    fn counts(&self) -> std::sync::MutexGuard<'_, HashMap<String, Counted>> {
        self.counts.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The error a refused attempt answers.
    pub fn refusal(&self) -> AppError {
        refusal(self.cap)
    }

    /// [`admit`] for a batch, reading what it needs: `None` when every
    /// attempt may go ahead.
    pub async fn check(&self, store: &Store, keys: &[Key]) -> Result<Option<Vec<bool>>, AppError> {
        let mut new_per_customer: HashMap<&str, i64> = HashMap::new();
        for key in keys.iter().collect::<HashSet<_>>() {
            *new_per_customer.entry(key.0.as_str()).or_default() += 1;
        }
        let now = Instant::now();
        let stale: Vec<String> = {
            let counts = self.counts();
            new_per_customer
                .iter()
                .filter(|(customer, new)| {
                    counts.get(**customer).is_none_or(|c| {
                        now.duration_since(c.read_at) >= FRESH_FOR
                            || c.open + **new > i64::from(self.cap)
                    })
                })
                .map(|(customer, _)| customer.to_string())
                .collect()
        };
        if !stale.is_empty() {
            match store.open_orders(&stale).await {
                Ok(open) => {
                    let mut counts = self.counts();
                    if counts.len() >= SWEEP_THRESHOLD {
                        counts.retain(|_, c| now.duration_since(c.read_at) < FRESH_FOR);
                    }
                    for customer in stale {
                        let open = open.get(&customer).copied().unwrap_or(0);
                        counts.insert(customer, Counted { open, read_at: now });
                    }
                }
                Err(e) => {
                    tracing::warn!(
                        error = %e,
                        "cannot count open orders in the read model; this batch is not held to the open-order limit"
                    );
                    return Ok(None);
                }
            }
        }
        let open: HashMap<String, i64> = {
            let counts = self.counts();
            new_per_customer
                .keys()
                .filter_map(|c| counts.get(*c).map(|counted| (c.to_string(), counted.open)))
                .collect()
        };
        let mut existing = HashSet::new();
        let mut verdicts = admit(keys, &open, &existing, self.cap);
        if !verdicts.iter().all(|&ok| ok) {
            // Some would go past the cap: those that are retries pass after all.
            let refused: Vec<Key> = keys
                .iter()
                .zip(&verdicts)
                .filter(|(_, ok)| !**ok)
                .map(|(key, _)| key.clone())
                .collect();
            existing = store.existing_keys(&refused).await?;
            verdicts = admit(keys, &open, &existing, self.cap);
        }
        // The new orders admitted count until the next read sees them.
        let mut counted = HashSet::new();
        let mut counts = self.counts();
        for (key, ok) in keys.iter().zip(&verdicts) {
            if *ok
                && !existing.contains(key)
                && counted.insert(key)
                && let Some(c) = counts.get_mut(&key.0)
            {
                c.open += 1;
            }
        }
        Ok((!verdicts.iter().all(|&ok| ok)).then_some(verdicts))
    }
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
