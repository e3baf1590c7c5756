//! What the gateway remembers of the orders it accepted or read recently:
//! each one's owner (its customer, which never changes) and the status and
//! `updated_at` the poller last read for it. With the owner known, a
//! long-poll decides who may see the order and waits without a read of its
//! own. Bounded in count and age, whichever is reached first: an order is
//! forgotten [`MAX_AGE`] after it was first recorded, or earlier once
//! [`MAX_ORDERS`] later ones were. A forgotten order is read as one another
//! gateway accepted is, so forgetting changes what a GET costs, never what it
//! answers. About 200 bytes an order (the map's entry and key, the owner's
//! text, the queue's entry): some 40 MB at the count bound.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::store::OrderStatusRow;

pub const MAX_ORDERS: usize = 200_000;
pub const MAX_AGE: Duration = Duration::from_secs(600);

/// The statuses a read may be remembered with (any other is not kept).
const STATUSES: [&str; 4] = ["PENDING", "RESERVED", "CONFIRMED", "CANCELLED"];

/// One remembered order.
#[derive(Debug, Clone, PartialEq)]
pub struct Known {
    pub owner: Arc<str>,
    /// The order's row as the poller last read it, when it did.
    pub last_read: Option<LastRead>,
}

/// What a read of the order's row showed: enough to start watching it for
/// changes, never enough to answer from.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LastRead {
    pub status: &'static str,
    pub updated_at: DateTime<Utc>,
}

pub struct KnownOrders {
    max_orders: usize,
    max_age: Duration,
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    orders: HashMap<Uuid, Known>,
    /// Each order once, oldest first, with when it was recorded.
    queue: VecDeque<(Uuid, Instant)>,
}

impl Default for KnownOrders {
    fn default() -> Self {
        KnownOrders::new(MAX_ORDERS, MAX_AGE)
    }
}

impl KnownOrders {
    pub fn new(max_orders: usize, max_age: Duration) -> KnownOrders {
        KnownOrders {
            max_orders,
            max_age,
            inner: Mutex::new(Inner::default()),
        }
    }

    fn inner(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The order, unless it was never recorded or is forgotten.
    pub fn get(&self, order_id: Uuid) -> Option<Known> {
        self.get_at(order_id, Instant::now())
    }

    fn get_at(&self, order_id: Uuid, now: Instant) -> Option<Known> {
        let mut inner = self.inner();
        inner.forget_older(now, self.max_age);
        inner.orders.get(&order_id).cloned()
    }

    /// `owner` placed the order (it was accepted, or read).
    pub fn record_owner(&self, order_id: Uuid, owner: &str) {
        self.record_at(order_id, owner, None, Instant::now());
    }

    /// The poller read the order's row.
    pub fn record_read(&self, row: &OrderStatusRow) {
        let Ok(order_id) = Uuid::parse_str(&row.order_id) else {
            return;
        };
        let last_read = STATUSES
            .iter()
            .find(|s| **s == row.status)
            .map(|status| LastRead {
                status,
                updated_at: row.updated_at,
            });
        self.record_at(order_id, &row.customer_id, last_read, Instant::now());
    }

    fn record_at(&self, order_id: Uuid, owner: &str, last_read: Option<LastRead>, now: Instant) {
        let mut inner = self.inner();
        inner.forget_older(now, self.max_age);
        if let Some(known) = inner.orders.get_mut(&order_id) {
            // An order's age counts from when it was first recorded.
            if last_read.is_some() {
                known.last_read = last_read;
            }
            return;
        }
        while inner.queue.len() >= self.max_orders {
            let Some((oldest, _)) = inner.queue.pop_front() else {
                return;
            };
            inner.orders.remove(&oldest);
        }
        let known = Known {
            owner: Arc::from(owner),
            last_read,
        };
        inner.orders.insert(order_id, known);
        inner.queue.push_back((order_id, now));
    }

    /// How many orders it remembers.
    pub fn len(&self) -> usize {
        self.inner().orders.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Inner {
    fn forget_older(&mut self, now: Instant, max_age: Duration) {
        while let Some(&(order_id, at)) = self.queue.front() {
            if now.saturating_duration_since(at) < max_age {
                break;
            }
            self.queue.pop_front();
            self.orders.remove(&order_id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(order_id: Uuid, owner: &str, status: &str) -> OrderStatusRow {
        OrderStatusRow::for_test(&order_id.to_string(), owner, status, Utc::now())
    }

    #[test]
    fn an_accepted_order_is_known_with_its_owner_and_no_read() {
        let known = KnownOrders::default();
        let id = Uuid::new_v4();
        assert_eq!(known.get(id), None);
        known.record_owner(id, "alice");
        let order = known.get(id).unwrap();
        assert_eq!(&*order.owner, "alice");
        assert_eq!(order.last_read, None);
    }

    #[test]
    fn a_read_keeps_the_status_and_updated_at_and_the_owner_stays() {
        let known = KnownOrders::default();
        let id = Uuid::new_v4();
        known.record_owner(id, "alice");
        let reserved = row(id, "alice", "RESERVED");
        known.record_read(&reserved);
        let order = known.get(id).unwrap();
        assert_eq!(&*order.owner, "alice");
        assert_eq!(
            order.last_read,
            Some(LastRead {
                status: "RESERVED",
                updated_at: reserved.updated_at
            })
        );
        // An owner recorded again (a retried POST) keeps the read.
        known.record_owner(id, "alice");
        assert!(known.get(id).unwrap().last_read.is_some());
        // A status it does not know is not kept as a starting point.
        let other = Uuid::new_v4();
        known.record_read(&row(other, "bob", "ARCHIVED"));
        assert_eq!(known.get(other).unwrap().last_read, None);
    }

    #[test]
    fn beyond_the_count_bound_the_oldest_are_forgotten() {
        let known = KnownOrders::new(3, MAX_AGE);
        let ids: Vec<Uuid> = (0..5).map(|_| Uuid::new_v4()).collect();
        for id in &ids {
            known.record_owner(*id, "alice");
        }
        assert_eq!(known.len(), 3);
        assert_eq!(known.get(ids[0]), None);
        assert_eq!(known.get(ids[1]), None);
        for id in &ids[2..] {
            assert!(known.get(*id).is_some());
        }
        // Updating a known order does not make it count twice.
        known.record_read(&row(ids[2], "alice", "RESERVED"));
        known.record_read(&row(ids[2], "alice", "CONFIRMED"));
        assert_eq!(known.len(), 3);
        assert!(known.get(ids[4]).is_some());
    }

    #[test]
    fn an_order_is_forgotten_once_it_is_older_than_the_age_bound() {
        let known = KnownOrders::new(100, Duration::from_secs(600));
        let start = Instant::now();
        let (old, young) = (Uuid::new_v4(), Uuid::new_v4());
        known.record_at(old, "alice", None, start);
        known.record_at(young, "bob", None, start + Duration::from_secs(300));
        let later = start + Duration::from_secs(599);
        assert!(known.get_at(old, later).is_some());
        // A read does not make it younger: age counts from the first record.
        let read = LastRead {
            status: "RESERVED",
            updated_at: Utc::now(),
        };
        known.record_at(old, "alice", Some(read), later);
        let expired = start + Duration::from_secs(600);
        assert_eq!(known.get_at(old, expired), None);
        assert!(known.get_at(young, expired).is_some());
        assert_eq!(known.len(), 1);
        assert_eq!(known.get_at(young, start + Duration::from_secs(900)), None);
        assert!(known.is_empty());
    }
}
