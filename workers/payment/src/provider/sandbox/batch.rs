//! Group commit of the sandbox's books. Every call hands what it records to
//! one batcher and waits; whatever queued while the previous batch was being
//! written goes in the next (no linger), at most [`MAX_BATCH`] calls. A batch
//! is one transaction of set-based statements, so it is recorded whole or not
//! at all: a database failure answers "not now" to every call of the batch.
//!
//! The answers are those of one call at a time: each call is recorded in
//! `sandbox_calls`; one charge per key, the first asker's amount, and every
//! asker of the key (in this batch or another, in this process or another)
//! reads that same charge back; a void marks the key's charge voided once.
//!
//! The batcher cannot stop silently: if it ends (a panic, its runtime
//! stopping), its queue is dropped, every call waiting in it or in its batch
//! is answered "not now", and the next call starts a new batcher. It ends on
//! its own once every handle to it is gone.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use chorus_runtime::error_chain;
use rust_decimal::Decimal;
use sqlx::{PgConnection, PgPool};
use tokio::sync::{mpsc, oneshot};

use crate::provider::ProviderError;

/// At most this many calls share a batch (one transaction).
pub const MAX_BATCH: usize = 256;
/// Calls waiting for the batcher at most; more wait for room.
const QUEUE: usize = 4 * MAX_BATCH;

/// What one call records.
#[derive(Debug, Clone)]
pub enum Entry {
    /// An approving token: charge once under the key.
    Charge {
        key: String,
        amount: Decimal,
        currency: String,
    },
    /// Any other token: the call is only recorded.
    Call { key: String },
    /// Void the key's charge.
    Void { key: String },
}

impl Entry {
    fn key(&self) -> &str {
        match self {
            Entry::Charge { key, .. } | Entry::Call { key } | Entry::Void { key } => key,
        }
    }

    fn text(&self) -> impl Iterator<Item = &str> {
        let currency = match self {
            Entry::Charge { currency, .. } => Some(currency.as_str()),
            _ => None,
        };
        std::iter::once(self.key()).chain(currency)
    }

    fn kind(&self) -> &'static str {
        match self {
            Entry::Charge { .. } | Entry::Call { .. } => "authorize",
            Entry::Void { .. } => "void",
        }
    }
}

/// The key's charge as the books hold it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Charge {
    pub amount: Decimal,
    pub currency: String,
    pub authorization_id: String,
}

/// What the books answered one entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recorded {
    /// The key's charge (made by this call or an earlier one).
    Charge(Charge),
    /// The call was recorded.
    Call,
    /// The authorization the void found under the key, if any.
    Void(Option<String>),
}

type Reply = oneshot::Sender<Result<Recorded, ProviderError>>;

/// How much the batcher has written, for tests and reports.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BatchStats {
    /// Batches written (transactions, committed or not).
    pub batches: u64,
    /// Calls in those batches.
    pub calls: u64,
    /// The largest batch.
    pub largest: u64,
}

#[derive(Debug, Default)]
struct Counters {
    batches: AtomicU64,
    calls: AtomicU64,
    largest: AtomicU64,
}

/// The handle calls use: the queue to the batcher, started on first use and
/// again whenever it is found stopped.
#[derive(Debug)]
pub struct Ledger {
    pool: PgPool,
    max_batch: usize,
    queue: Mutex<Option<mpsc::Sender<(Entry, Reply)>>>,
    counters: Arc<Counters>,
}

impl Ledger {
    pub fn new(pool: PgPool, max_batch: usize) -> Ledger {
        Ledger {
            pool,
            max_batch: max_batch.clamp(1, MAX_BATCH),
            queue: Mutex::new(None),
            counters: Arc::default(),
        }
    }

    pub fn stats(&self) -> BatchStats {
        BatchStats {
            batches: self.counters.batches.load(Ordering::Relaxed),
            calls: self.counters.calls.load(Ordering::Relaxed),
            largest: self.counters.largest.load(Ordering::Relaxed),
        }
    }

    /// Records `entry` with the next batch; answers once that committed.
    pub async fn record(&self, entry: Entry) -> Result<Recorded, ProviderError> {
        // The one value PostgreSQL refuses in text; refused here, so that it
        // never fails the batch of the calls it would share.
        if entry.text().any(|text| text.contains('\0')) {
            return Err(ProviderError::Unavailable {
                cause: "sandbox ledger: text with a NUL byte cannot be recorded".to_string(),
            });
        }
        let (reply, answer) = oneshot::channel();
        let queue = self.queue();
        queue.send((entry, reply)).await.map_err(|_| stopped())?;
        // A batcher that ended dropped this reply with its queue or batch.
        answer.await.map_err(|_| stopped())?
    }

    /// The batcher's queue, starting a batcher if none runs.
    fn queue(&self) -> mpsc::Sender<(Entry, Reply)> {
        let mut queue = self.queue.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(running) = queue.as_ref().filter(|q| !q.is_closed()) {
            return running.clone();
        }
        if queue.is_some() {
            tracing::error!("the sandbox ledger's batcher had stopped; starting another");
        }
        let (sender, arrivals) = mpsc::channel(QUEUE);
        tokio::spawn(run(
            self.pool.clone(),
            arrivals,
            self.max_batch,
            self.counters.clone(),
        ));
        *queue = Some(sender.clone());
        sender
    }
}

fn stopped() -> ProviderError {
    ProviderError::Unavailable {
        cause: "sandbox ledger: its batcher stopped".to_string(),
    }
}

/// Writes batch after batch until every handle is gone.
async fn run(
    pool: PgPool,
    mut arrivals: mpsc::Receiver<(Entry, Reply)>,
    max_batch: usize,
    counters: Arc<Counters>,
) {
    let mut batch = Vec::with_capacity(max_batch);
    while arrivals.recv_many(&mut batch, max_batch).await > 0 {
        let size = batch.len() as u64;
        counters.batches.fetch_add(1, Ordering::Relaxed);
        counters.calls.fetch_add(size, Ordering::Relaxed);
        counters.largest.fetch_max(size, Ordering::Relaxed);
        let (entries, replies): (Vec<Entry>, Vec<Reply>) = batch.drain(..).unzip();
        let answers = match write(&pool, &entries).await {
            Ok(answers) => answers,
            Err(e) => {
                let unavailable = ProviderError::Unavailable {
                    cause: format!("sandbox ledger: {}", error_chain(&e)),
                };
                vec![Err(unavailable); entries.len()]
            }
        };
        for (reply, answer) in replies.into_iter().zip(answers) {
            // The caller may have gone (a stop): its call is recorded anyway,
            // like a provider's answer lost on the way.
            let _ = reply.send(answer);
        }
    }
}

/// Records `entries` in one transaction; each entry's answer, in order.
async fn write(
    pool: &PgPool,
    entries: &[Entry],
) -> Result<Vec<Result<Recorded, ProviderError>>, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let charges = charge(&mut tx, entries).await?;
    let voids = void(&mut tx, entries).await?;
    tx.commit().await?;
    Ok(entries
        .iter()
        .map(|entry| match entry {
            Entry::Call { .. } => Ok(Recorded::Call),
            Entry::Void { key } => Ok(Recorded::Void(voids.get(key).cloned())),
            Entry::Charge { key, .. } => match charges.get(key) {
                Some(charge) => Ok(Recorded::Charge(charge.clone())),
                // A key's row is either inserted or read back; this would be
                // a row deleted meanwhile, which nothing does.
                None => Err(ProviderError::Unavailable {
                    cause: format!("sandbox ledger: no charge found for {key}"),
                }),
            },
        })
        .collect())
}

/// A `sandbox_charges` row as read: its key and its charge.
fn keyed_charge(
    (key, amount, currency, authorization_id): (String, Decimal, String, String),
) -> (String, Charge) {
    (
        key,
        Charge {
            amount,
            currency,
            authorization_id,
        },
    )
}

/// Records every call and inserts the first charge asked for under each new
/// key (in key order, so two writers never wait on each other in a cycle);
/// the charges of every key charged in the batch, new or already there.
async fn charge(
    tx: &mut PgConnection,
    entries: &[Entry],
) -> Result<HashMap<String, Charge>, sqlx::Error> {
    let call_keys: Vec<&str> = entries.iter().map(Entry::key).collect();
    let call_kinds: Vec<&str> = entries.iter().map(Entry::kind).collect();
    let mut proposed: Vec<(&str, Decimal, &str)> = Vec::new();
    let mut seen = HashSet::new();
    for entry in entries {
        if let Entry::Charge {
            key,
            amount,
            currency,
        } = entry
            && seen.insert(key.as_str())
        {
            proposed.push((key, *amount, currency));
        }
    }
    proposed.sort_unstable_by(|a, b| a.0.cmp(b.0));
    let keys: Vec<&str> = proposed.iter().map(|p| p.0).collect();
    let amounts: Vec<Decimal> = proposed.iter().map(|p| p.1).collect();
    let currencies: Vec<&str> = proposed.iter().map(|p| p.2).collect();
    let ids: Vec<String> = proposed
        .iter()
        .map(|_| format!("sbx_{}", uuid::Uuid::new_v4().simple()))
        .collect();
    let inserted: Vec<(String, Decimal, String, String)> = sqlx::query_as(
        "WITH called AS (
             INSERT INTO sandbox_calls (idempotency_key, kind)
             SELECT k, kind FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS c(k, kind, n)
             ORDER BY n
         )
         INSERT INTO sandbox_charges (idempotency_key, amount, currency, authorization_id)
         SELECT k, a, c, id FROM unnest($3::text[], $4::numeric[], $5::text[], $6::text[])
             WITH ORDINALITY AS p(k, a, c, id, n)
         ORDER BY n
         ON CONFLICT (idempotency_key) DO NOTHING
         RETURNING idempotency_key, amount, currency, authorization_id",
    )
    .bind(&call_keys)
    .bind(&call_kinds)
    .bind(&keys)
    .bind(&amounts)
    .bind(&currencies)
    .bind(&ids)
    .fetch_all(&mut *tx)
    .await?;
    let mut charges: HashMap<String, Charge> = inserted.into_iter().map(keyed_charge).collect();
    // Keys charged before: read back in a statement of its own, whose
    // snapshot includes a charge another writer committed while the insert
    // waited for it.
    let existing: Vec<&str> = keys
        .into_iter()
        .filter(|key| !charges.contains_key(*key))
        .collect();
    if !existing.is_empty() {
        let found: Vec<(String, Decimal, String, String)> = sqlx::query_as(
            "SELECT idempotency_key, amount, currency, authorization_id FROM sandbox_charges
             WHERE idempotency_key = ANY($1)",
        )
        .bind(&existing)
        .fetch_all(&mut *tx)
        .await?;
        charges.extend(found.into_iter().map(keyed_charge));
    }
    Ok(charges)
}

/// Marks the charges of the batch's voided keys voided (the first time
/// only), after the batch's charges; the authorization found under each key.
async fn void(
    tx: &mut PgConnection,
    entries: &[Entry],
) -> Result<HashMap<String, String>, sqlx::Error> {
    let mut keys: Vec<&str> = entries
        .iter()
        .filter_map(|entry| match entry {
            Entry::Void { key } => Some(key.as_str()),
            _ => None,
        })
        .collect();
    if keys.is_empty() {
        return Ok(HashMap::new());
    }
    keys.sort_unstable();
    keys.dedup();
    let voided: Vec<(String, String)> = sqlx::query_as(
        "WITH target AS (
             SELECT idempotency_key FROM sandbox_charges
             WHERE idempotency_key = ANY($1)
             ORDER BY idempotency_key
             FOR UPDATE
         )
         UPDATE sandbox_charges c SET voided_at = COALESCE(c.voided_at, now())
         FROM target WHERE c.idempotency_key = target.idempotency_key
         RETURNING c.idempotency_key, c.authorization_id",
    )
    .bind(&keys)
    .fetch_all(&mut *tx)
    .await?;
    Ok(voided.into_iter().collect())
}
