//! One poller serves every long-poll: while any request waits on an order,
//! a single task reads, in one indexed query every [`POLL_INTERVAL`], the
//! rows of the watched orders that changed since it last read them, and
//! hands each changed row to its waiters, who answer with it (no second read
//! per waiter). The read model is another service's view, so there is
//! nothing to LISTEN to; this keeps the load one query per tick however
//! many clients wait. The poller is a supervised task that runs from
//! start-up to shutdown (idle while nobody waits): a failed read is logged
//! and retried at the next tick, but a closed pool, which never reopens,
//! ends it with an error, so the process stops instead of long-polls
//! silently answering only at their deadline.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use anyhow::Context;
use tokio::sync::{Notify, watch};
use tokio_util::sync::CancellationToken;

use crate::store::{OrderStatusRow, Store};

pub const POLL_INTERVAL: Duration = Duration::from_millis(25);

#[derive(Default)]
pub struct StatusWatch {
    entries: Mutex<HashMap<String, Entry>>,
    wake: Notify,
}

struct Entry {
    row: watch::Sender<Option<Arc<OrderStatusRow>>>,
    watchers: usize,
}

/// Interest in one order; each row read for it after a change arrives on `row`.
pub struct Subscription {
    hub: Arc<StatusWatch>,
    order_id: String,
    pub row: watch::Receiver<Option<Arc<OrderStatusRow>>>,
}

impl StatusWatch {
    fn entries(&self) -> MutexGuard<'_, HashMap<String, Entry>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Watches `order_id` until the subscription drops.
    pub fn subscribe(self: &Arc<Self>, order_id: &str) -> Subscription {
        let row = {
            let mut entries = self.entries();
            let entry = entries
                .entry(order_id.to_string())
                .or_insert_with(|| Entry {
                    row: watch::channel(None).0,
                    watchers: 0,
                });
            entry.watchers += 1;
            entry.row.subscribe()
        };
        self.wake.notify_one();
        Subscription {
            hub: self.clone(),
            order_id: order_id.to_string(),
            row,
        }
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        let mut entries = self.hub.entries();
        if let Some(entry) = entries.get_mut(&self.order_id) {
            entry.watchers -= 1;
            if entry.watchers == 0 {
                entries.remove(&self.order_id);
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
        let (ids, seen_at): (Vec<String>, Vec<_>) = hub
            .entries()
            .iter()
            .map(|(id, entry)| {
                (
                    id.clone(),
                    entry.row.borrow().as_ref().map(|r| r.updated_at),
                )
            })
            .unzip();
        if ids.is_empty() {
            tokio::select! {
                () = hub.wake.notified() => continue,
                () = shutdown.cancelled() => return Ok(()),
            }
        }
        match store.changed_orders(&ids, &seen_at).await {
            Ok(rows) => {
                let entries = hub.entries();
                for row in rows {
                    if let Some(entry) = entries.get(&row.order_id) {
                        entry.row.send_replace(Some(Arc::new(row)));
                    }
                }
            }
            Err(e @ sqlx::Error::PoolClosed) if !shutdown.is_cancelled() => {
                return Err(e).context("reading the order_status of watched orders");
            }
            // Waiters then answer at their deadline; the read itself reports
            // the error to each client.
            Err(e) => tracing::warn!(error = %e, "long-poll status read failed"),
        }
        tokio::select! {
            () = tokio::time::sleep(POLL_INTERVAL) => {}
            () = shutdown.cancelled() => return Ok(()),
        }
    }
}
