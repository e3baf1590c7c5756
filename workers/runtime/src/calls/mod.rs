//! Making the external calls a worker asked for, outside any transaction.
//!
//! Guarantee: a call is made only after the transaction that recorded its
//! intent committed, and its answer is recorded (with the events it emits)
//! in a transaction of its own, so no external call ever happens inside an
//! open transaction and a rolled-back batch never made one.
//!
//! Failover: an intent is leased to the process that makes the call for
//! [`LEASE`] (seconds, far below an order's deadline), and the lease is
//! renewed every [`RENEW_EVERY`] while the call is retried. A clean stop
//! gives up the leases of the calls it did not finish; a crash lets them run
//! out. Every [`RECOVER_EVERY`] each process takes intents nobody holds
//! ([`Calls::unsettled`]) — after a crash, a stop, or an intent committed
//! whose call was never asked for (a lost acknowledgement, a redelivery the
//! inbox skipped) — and calls them again under the same idempotency key.
//!
//! No wait cycle: requests from the consumer loop, follow-up calls (a void
//! after a late answer) and answers each have their own queue; a call task
//! gives back its permit before it hands on its answer, and hands it on
//! without waiting. At most [`CONCURRENCY`] calls are in progress and at most
//! [`MAX_HELD`] taken but not recorded (then the consumer waits: back-pressure,
//! visible as a stall). A call answered "not now" is retried at most
//! `CHORUS_CALL_MAX_ATTEMPTS` times in a row; then its worker may record a
//! fallback answer ([`Calls::fallback`]), or the call is parked for
//! [`PARK`] and the message that asked is dead-lettered as `call_exhausted`,
//! so calls that keep failing never hold every permit.

mod attempts;
mod record;

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rdkafka::message::OwnedMessage;
use rdkafka::producer::FutureProducer;
use sqlx::PgPool;
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::emit::Emitter;
use crate::handler::Calls;
use crate::metrics::Metrics;
use crate::outbox_publisher::OutboxPublisher;
use crate::progress::Progress;
use crate::retry::RetryPolicy;

pub use attempts::Finished;

/// Calls in progress at once.
pub const CONCURRENCY: usize = 64;
/// Calls taken (queued, in progress or waiting to be recorded) at most;
/// more wait in the consumer's queue.
pub const MAX_HELD: usize = 4096;
/// How long a call's intent is reserved for the process that makes it.
pub const LEASE: Duration = Duration::from_secs(10);
/// How often the leases of held calls are renewed.
pub const RENEW_EVERY: Duration = Duration::from_secs(3);
/// How often intents nobody holds are looked for.
pub const RECOVER_EVERY: Duration = Duration::from_secs(2);
/// How long a call that used up its attempts waits before it is taken again.
pub const PARK: Duration = Duration::from_secs(30);
/// Requests from the consumer loop waiting for the executor at most.
pub const REQUEST_QUEUE: usize = CONCURRENCY * 4;

/// Makes calls and records their answers.
pub struct CallExecutor<C: Calls> {
    pub calls: Arc<C>,
    pub pool: PgPool,
    pub emitter: Arc<Emitter>,
    pub publisher: OutboxPublisher,
    pub metrics: Arc<Metrics>,
    /// Backoff between attempts of a call answered "not now".
    pub retry: RetryPolicy,
    /// Attempts in a row before a call is given up for now.
    pub max_attempts: u32,
    /// Dead letters of messages whose call was refused or gave up.
    pub dead_letters: DeadLetters,
    /// The beat of the executor's loop (see [`crate::progress`]).
    pub progress: Progress,
    /// The beat of the answer recorder.
    pub recorder_progress: Progress,
}

/// Where a message whose external call was refused for good is dead-lettered.
pub struct DeadLetters {
    pub producer: FutureProducer,
    pub catalogue: chorus_avro::TopicCatalogue,
    pub consumer_group: String,
}

/// A call to make, with the message that asked for it when this process
/// consumed it (a call found again after a restart has none).
pub type CallRequest<Call> = (Call, Option<Arc<OwnedMessage>>);

/// The calls this process has taken and not yet recorded, by id: their
/// leases are renewed, and given up at a clean stop.
type Held<Call> = Arc<Mutex<HashMap<String, Call>>>;

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

impl<C: Calls> CallExecutor<C> {
    /// Runs until `shutdown`; calls still in progress then are stopped and
    /// their leases given up, so another process (or the next start) takes
    /// them at once. Fails if the answer recorder ends on its own.
    pub async fn run(
        self,
        mut requests: mpsc::Receiver<CallRequest<C::Call>>,
        shutdown: CancellationToken,
    ) -> anyhow::Result<()> {
        let this = Arc::new(self);
        let held: Held<C::Call> = Arc::default();
        let permits = Arc::new(Semaphore::new(CONCURRENCY));
        let (answers, answered) = mpsc::unbounded_channel::<Finished<C>>();
        let (follow_ups, mut followed) = mpsc::unbounded_channel::<CallRequest<C::Call>>();
        let mut recorder =
            tokio::spawn(this.clone().record_loop(answered, held.clone(), follow_ups));
        let mut waiting: VecDeque<CallRequest<C::Call>> = VecDeque::new();
        let mut calling = JoinSet::new();
        let mut recover = tokio::time::interval(RECOVER_EVERY);
        let mut renew = tokio::time::interval(RENEW_EVERY);
        renew.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            this.progress.beat();
            let room = lock(&held).len() < MAX_HELD;
            tokio::select! {
                _ = shutdown.cancelled() => break,
                ended = &mut recorder => {
                    return Err(match ended {
                        Ok(Ok(())) => anyhow::anyhow!("the call answer recorder ended on its own"),
                        Ok(Err(e)) => e.context("the call answer recorder failed"),
                        Err(e) => anyhow::anyhow!("the call answer recorder panicked: {e}"),
                    });
                }
                Some(request) = requests.recv(), if room => take::<C>(&held, &mut waiting, request),
                Some(request) = followed.recv() => take::<C>(&held, &mut waiting, request),
                _ = recover.tick(), if room => {
                    for call in this.recover().await {
                        take::<C>(&held, &mut waiting, (call, None));
                    }
                }
                _ = renew.tick() => this.renew(&held).await,
                permit = permits.clone().acquire_owned(), if !waiting.is_empty() => {
                    let permit = permit?;
                    let (call, origin) = waiting.pop_front().expect("checked non-empty");
                    let this = this.clone();
                    let answers = answers.clone();
                    let shutdown = shutdown.clone();
                    calling.spawn(async move {
                        let finished = this.call_until_answered(call, origin, &shutdown).await;
                        // The permit goes back before the answer is handed on.
                        drop(permit);
                        if let Some(finished) = finished {
                            let _ = answers.send(finished);
                        }
                    });
                }
                Some(_) = calling.join_next(), if !calling.is_empty() => {}
            }
        }
        // A clean stop: no call goes on, the answers already in hand are
        // recorded, and the rest is given back.
        calling.shutdown().await;
        drop(answers);
        let recorded = recorder.await;
        while let Ok(request) = requests.try_recv() {
            take::<C>(&held, &mut waiting, request);
        }
        while let Ok(request) = followed.try_recv() {
            take::<C>(&held, &mut waiting, request);
        }
        this.release(&held).await;
        match recorded {
            Ok(result) => result,
            Err(e) => Err(anyhow::anyhow!("the call answer recorder panicked: {e}")),
        }
    }

    /// Intents nobody holds a lease on, leased to this process.
    async fn recover(&self) -> Vec<C::Call> {
        let found = async {
            let mut conn = self.pool.acquire().await?;
            self.calls.unsettled(&mut conn, LEASE, 500).await
        };
        match tokio::time::timeout(RECOVER_EVERY * 5, found).await {
            Ok(Ok(calls)) => {
                if !calls.is_empty() {
                    tracing::info!(calls = calls.len(), "resuming external calls nobody holds");
                }
                calls
            }
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "looking for unanswered external calls failed; will look again");
                Vec::new()
            }
            Err(_) => {
                tracing::warn!("looking for unanswered external calls timed out; will look again");
                Vec::new()
            }
        }
    }

    /// Renews the leases of every call this process holds.
    async fn renew(&self, held: &Held<C::Call>) {
        let calls: Vec<C::Call> = lock(held).values().cloned().collect();
        if calls.is_empty() {
            return;
        }
        let renewed = async {
            let mut conn = self.pool.acquire().await?;
            let refs: Vec<&C::Call> = calls.iter().collect();
            self.calls.renew(&mut conn, &refs, LEASE).await
        };
        match tokio::time::timeout(RENEW_EVERY, renewed).await {
            Ok(Ok(())) => {}
            // Another process may take a call whose lease ran out meanwhile:
            // the idempotency key makes that a repeat, never a second effect.
            Ok(Err(e)) => {
                tracing::warn!(error = %e, calls = calls.len(), "renewing call leases failed")
            }
            Err(_) => tracing::warn!(calls = calls.len(), "renewing call leases timed out"),
        }
    }

    /// Gives up the leases of calls taken and not recorded (a clean stop).
    async fn release(&self, held: &Held<C::Call>) {
        let calls: Vec<C::Call> = lock(held).drain().map(|(_, call)| call).collect();
        if calls.is_empty() {
            return;
        }
        let released = async {
            let mut conn = self.pool.acquire().await?;
            let refs: Vec<&C::Call> = calls.iter().collect();
            self.calls.release(&mut conn, &refs).await
        };
        match tokio::time::timeout(Duration::from_secs(5), released).await {
            Ok(Ok(())) => {
                tracing::info!(
                    calls = calls.len(),
                    "gave up the leases of unfinished external calls"
                )
            }
            Ok(Err(e)) => {
                tracing::warn!(error = %e, calls = calls.len(), "giving up call leases failed; they run out in {} s", LEASE.as_secs())
            }
            Err(_) => {
                tracing::warn!(
                    calls = calls.len(),
                    "giving up call leases timed out; they run out in {} s",
                    LEASE.as_secs()
                )
            }
        }
    }
}

/// Takes a call unless this process already holds it.
fn take<C: Calls>(
    held: &Held<C::Call>,
    waiting: &mut VecDeque<CallRequest<C::Call>>,
    request: CallRequest<C::Call>,
) {
    let id = C::id(&request.0);
    let mut held = lock(held);
    if held.contains_key(&id) {
        return;
    }
    held.insert(id, request.0.clone());
    waiting.push_back(request);
}
