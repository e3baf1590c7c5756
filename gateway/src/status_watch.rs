//! One poller serves every long-poll: while any request waits on an order,
//! a single task reads, in one indexed query per tick, the rows of the
//! watched orders that changed since it last read them, and hands each
//! changed row to its waiters, who answer with it (no read of their own).
//! The read model is another service's view, so there is nothing to LISTEN
//! to; this keeps the load one query per tick however many clients wait.
//!
//! A waiter answers only from a read that began after it subscribed, never
//! from a row read earlier (which might be older than what its client has
//! seen): a new subscription's first read returns the order's current row
//! whatever its status, unless the subscriber knows the row as of some
//! `updated_at` with the very status its client has seen ([`Since`]); then
//! the poller reads changes since that row, which the waiter never answers
//! with. The tick is [`MIN_INTERVAL`] while few orders are watched, so a
//! status change reaches its waiters within a few ms, and grows with the
//! number watched up to [`MAX_INTERVAL`], since each read looks every
//! watched order up; an idle poller reads at once when a subscription
//! arrives.
//!
//! The poller is a supervised task that runs from start-up to shutdown
//! (idle while nobody waits): a failed read is logged and retried at the
//! next tick, but a closed pool, which never reopens, ends it with an error,
//! so the process stops instead of long-polls silently answering only at
//! their deadline.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use anyhow::Context;
use chrono::{DateTime, Utc};
use tokio::sync::{Notify, watch};
use tokio_util::sync::CancellationToken;

use crate::known_orders::KnownOrders;
use crate::store::{OrderStatusRow, Store};

/// The tick while at most [`MIN_INTERVAL`] ÷ [`INTERVAL_PER_ORDER`] (100)
/// orders are watched.
pub const MIN_INTERVAL: Duration = Duration::from_millis(5);
/// The longest tick (from 500 orders watched).
pub const MAX_INTERVAL: Duration = Duration::from_millis(25);
/// What each watched order adds to the tick beyond 100: the poller looks
/// up at most ~20,000 orders a second until the tick reaches its maximum.
pub const INTERVAL_PER_ORDER: Duration = Duration::from_micros(50);

/// The pause after a read of `watched` orders.
pub fn interval(watched: usize) -> Duration {
    let scaled = INTERVAL_PER_ORDER.saturating_mul(u32::try_from(watched).unwrap_or(u32::MAX));
    scaled.clamp(MIN_INTERVAL, MAX_INTERVAL)
}

#[derive(Default)]
pub struct StatusWatch {
    state: Mutex<State>,
    wake: Notify,
    known: KnownOrders,
}

#[derive(Default)]
struct State {
    entries: HashMap<String, Entry>,
    /// Reads begun so far; a read's number is its place in this count.
    reads_begun: u64,
    /// Entries made so far, so a read's answer reaches only the entries it asked for.
    entries_made: u64,
}

struct Entry {
    id: u64,
    latest: watch::Sender<Latest>,
    watchers: usize,
    /// The `updated_at` of the row last read (or of the starting point);
    /// the next read returns the row only if it differs.
    since: Option<DateTime<Utc>>,
    /// A subscriber needs the current row: the next read returns it whatever
    /// `since` is, and says so when the read model has no row.
    full_read: bool,
}

/// What the poller last learnt of one watched order.
#[derive(Debug, Clone, Default)]
pub struct Latest {
    /// The order's row; `None` when the read model does not have it, or
    /// when it was watched from a starting point no read has changed yet.
    pub row: Option<Arc<OrderStatusRow>>,
    /// The read that returned `row` or found no row (0: none has).
    pub delivered: u64,
    /// The last read that found `row` still current (0: none has).
    pub confirmed: u64,
}

/// A starting point: the subscriber knows the order's row as of
/// `updated_at`, with the status its client has seen (not a final one).
#[derive(Debug, Clone)]
pub struct Since {
    pub updated_at: DateTime<Utc>,
    /// The row itself, when the subscriber read it just now: answered at
    /// the deadline once a later read confirmed it current.
    pub row: Option<Arc<OrderStatusRow>>,
}

/// Interest in one order, until it drops.
pub struct Subscription {
    hub: Arc<StatusWatch>,
    order_id: String,
    latest: watch::Receiver<Latest>,
    /// Reads numbered above this began after the subscription.
    after: u64,
}

/// The orders one read asks for.
pub struct Read {
    number: u64,
    orders: Vec<Watched>,
}

struct Watched {
    order_id: String,
    entry: u64,
    seen_at: Option<DateTime<Utc>>,
    full: bool,
}

impl StatusWatch {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The owners (and last reads) of orders accepted or read recently.
    pub fn known(&self) -> &KnownOrders {
        &self.known
    }

    /// Watches `order_id` until the subscription drops; the first read that
    /// begins afterwards returns its current row, or (`start`) its changes
    /// since the row the subscriber knows.
    pub fn subscribe(self: &Arc<Self>, order_id: &str, start: Option<Since>) -> Subscription {
        let (latest, after) = {
            let mut state = self.state();
            let after = state.reads_begun;
            state.entries_made += 1;
            let id = state.entries_made;
            let entry = state
                .entries
                .entry(order_id.to_string())
                .and_modify(|entry| entry.full_read = true)
                .or_insert_with(|| {
                    let (since, row) = start.map_or((None, None), |s| (Some(s.updated_at), s.row));
                    Entry {
                        id,
                        latest: watch::channel(Latest {
                            row,
                            ..Latest::default()
                        })
                        .0,
                        watchers: 0,
                        full_read: since.is_none(),
                        since,
                    }
                });
            entry.watchers += 1;
            (entry.latest.subscribe(), after)
        };
        self.wake.notify_one();
        Subscription {
            hub: self.clone(),
            order_id: order_id.to_string(),
            latest,
            after,
        }
    }

    /// The next read: every watched order, or `None` when nobody waits.
    pub fn begin_read(&self) -> Option<Read> {
        let mut state = self.state();
        if state.entries.is_empty() {
            return None;
        }
        state.reads_begun += 1;
        let number = state.reads_begun;
        let orders = state
            .entries
            .iter_mut()
            .map(|(order_id, entry)| {
                let full = std::mem::take(&mut entry.full_read);
                Watched {
                    order_id: order_id.clone(),
                    entry: entry.id,
                    seen_at: if full { None } else { entry.since },
                    full,
                }
            })
            .collect();
        Some(Read { number, orders })
    }

    /// Hands the read's rows to the waiters of the entries it asked for.
    pub fn finish_read(&self, read: &Read, rows: Vec<OrderStatusRow>) {
        for row in &rows {
            self.known.record_read(row);
        }
        let mut rows: HashMap<String, OrderStatusRow> = rows
            .into_iter()
            .map(|row| (row.order_id.clone(), row))
            .collect();
        let number = read.number;
        let mut state = self.state();
        for watched in &read.orders {
            let Some(entry) = state
                .entries
                .get_mut(&watched.order_id)
                .filter(|entry| entry.id == watched.entry)
            else {
                continue;
            };
            match rows.remove(&watched.order_id) {
                Some(row) => {
                    entry.since = Some(row.updated_at);
                    entry.latest.send_replace(Latest {
                        row: Some(Arc::new(row)),
                        delivered: number,
                        confirmed: number,
                    });
                }
                None if watched.full => {
                    entry.latest.send_replace(Latest {
                        row: None,
                        delivered: number,
                        confirmed: number,
                    });
                }
                // Unchanged: no waiter wakes.
                None => {
                    entry.latest.send_if_modified(|latest| {
                        latest.confirmed = number;
                        false
                    });
                }
            }
        }
    }

    /// A read failed: the orders it read in full are read in full again.
    pub fn fail_read(&self, read: &Read) {
        let mut state = self.state();
        for watched in read.orders.iter().filter(|w| w.full) {
            if let Some(entry) = state
                .entries
                .get_mut(&watched.order_id)
                .filter(|entry| entry.id == watched.entry)
            {
                entry.full_read = true;
            }
        }
    }
}

impl Read {
    /// The order ids and the `updated_at` each was last read with (`None`:
    /// return its row whatever it is), as the poller's query takes them.
    pub fn query(&self) -> (Vec<&str>, Vec<Option<DateTime<Utc>>>) {
        self.orders
            .iter()
            .map(|w| (w.order_id.as_str(), w.seen_at))
            .unzip()
    }

    pub fn len(&self) -> usize {
        self.orders.len()
    }

    pub fn is_empty(&self) -> bool {
        self.orders.is_empty()
    }
}

impl Subscription {
    /// Waits until the poller has news of the order.
    pub async fn changed(&mut self) -> Result<(), watch::error::RecvError> {
        self.latest.changed().await
    }

    /// What the last read that began after the subscription delivered: the
    /// row (`Some(Some)`), no row in the read model (`Some(None)`), or
    /// nothing yet (`None`).
    pub fn fresh(&mut self) -> Option<Option<Arc<OrderStatusRow>>> {
        let latest = self.latest.borrow_and_update();
        (latest.delivered > self.after).then(|| latest.row.clone())
    }

    /// The row, if a read that began after the subscription found it current.
    pub fn confirmed_row(&self) -> Option<Arc<OrderStatusRow>> {
        let latest = self.latest.borrow();
        if latest.confirmed > self.after {
            latest.row.clone()
        } else {
            None
        }
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        let mut state = self.hub.state();
        if let Some(entry) = state.entries.get_mut(&self.order_id) {
            entry.watchers -= 1;
            if entry.watchers == 0 {
                state.entries.remove(&self.order_id);
            }
        }
    }
}

/// The poller: runs until `shutdown` (`Ok`), or fails when the order
/// database's pool is closed.
pub async fn poll(
    hub: Arc<StatusWatch>,
    store: Store,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    loop {
        let Some(read) = hub.begin_read() else {
            tokio::select! {
                () = hub.wake.notified() => continue,
                () = shutdown.cancelled() => return Ok(()),
            }
        };
        let (ids, seen_at) = read.query();
        match store.changed_orders(&ids, &seen_at).await {
            Ok(rows) => hub.finish_read(&read, rows),
            Err(e @ sqlx::Error::PoolClosed) if !shutdown.is_cancelled() => {
                return Err(e).context("reading the order_status of watched orders");
            }
            // Waiters then answer at their deadline; the read itself reports
            // the error to each client.
            Err(e) => {
                hub.fail_read(&read);
                tracing::warn!(error = %e, "long-poll status read failed");
            }
        }
        tokio::select! {
            () = tokio::time::sleep(interval(read.len())) => {}
            () = shutdown.cancelled() => return Ok(()),
        }
    }
}

#[cfg(test)]
mod tests;
