//! One poller serves every long-poll: while any request waits on an order,
//! a single task reads the statuses of all watched orders in one indexed
//! query every [`POLL_INTERVAL`] and wakes the waiters whose order changed.
//! The read model is another service's view, so there is nothing to LISTEN
//! to; this keeps the load one query per tick however many clients wait.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::{Notify, watch};
use tokio_util::sync::CancellationToken;

use crate::store::Store;

pub const POLL_INTERVAL: Duration = Duration::from_millis(25);

#[derive(Default)]
pub struct StatusWatch {
    entries: Mutex<HashMap<String, Entry>>,
    wake: Notify,
    started: AtomicBool,
}

struct Entry {
    status: watch::Sender<Option<String>>,
    watchers: usize,
}

/// Interest in one order; the latest status read for it arrives on `status`.
pub struct Subscription {
    hub: Arc<StatusWatch>,
    order_id: String,
    pub status: watch::Receiver<Option<String>>,
}

impl StatusWatch {
    fn entries(&self) -> MutexGuard<'_, HashMap<String, Entry>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Watches `order_id` until the subscription drops. The poller starts
    /// with the first subscription (inside the runtime) and stops at shutdown.
    pub fn subscribe(
        self: &Arc<Self>,
        order_id: &str,
        store: &Store,
        shutdown: &CancellationToken,
    ) -> Subscription {
        if !self.started.swap(true, Ordering::SeqCst) {
            tokio::spawn(poll(self.clone(), store.clone(), shutdown.clone()));
        }
        let status = {
            let mut entries = self.entries();
            let entry = entries
                .entry(order_id.to_string())
                .or_insert_with(|| Entry {
                    status: watch::channel(None).0,
                    watchers: 0,
                });
            entry.watchers += 1;
            entry.status.subscribe()
        };
        self.wake.notify_one();
        Subscription {
            hub: self.clone(),
            order_id: order_id.to_string(),
            status,
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

async fn poll(hub: Arc<StatusWatch>, store: Store, shutdown: CancellationToken) {
    loop {
        let ids: Vec<String> = hub.entries().keys().cloned().collect();
        if ids.is_empty() {
            tokio::select! {
                () = hub.wake.notified() => continue,
                () = shutdown.cancelled() => return,
            }
        }
        match store.order_statuses(&ids).await {
            Ok(rows) => {
                let entries = hub.entries();
                for (order_id, status) in rows {
                    if let Some(entry) = entries.get(&order_id) {
                        entry.status.send_if_modified(|current| {
                            let changed = current.as_deref() != Some(status.as_str());
                            if changed {
                                *current = Some(status);
                            }
                            changed
                        });
                    }
                }
            }
            // Waiters then answer at their deadline; the read itself reports
            // the error to each client.
            Err(e) => tracing::warn!(error = %e, "long-poll status read failed"),
        }
        tokio::select! {
            () = tokio::time::sleep(POLL_INTERVAL) => {}
            () = shutdown.cancelled() => return,
        }
    }
}
