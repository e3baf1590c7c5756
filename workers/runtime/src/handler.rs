//! What a worker plugs into the runtime: its topics, one `apply` that applies
//! a batch of events inside the loop's transaction, and — for a worker that
//! talks to the outside world — the external calls it asks for.
//!
//! The loop opens the transaction, records the events' ids in the inbox
//! (duplicates never reach `apply`), calls `apply`, writes the returned
//! events to the outbox, and commits: all or nothing. External calls are made
//! only after that commit, never inside a transaction (see [`Calls`]).

use std::future::Future;
use std::time::Duration;

use chorus_avro::{Event, EventType, Topic};
use sqlx::PgConnection;

use crate::failure::Failure;

/// Why a batch could not be applied. A batch of several events that fails is
/// split and applied again in halves, so a failure is pinned on the event
/// that causes it.
#[derive(Debug, thiserror::Error)]
pub enum HandleError {
    /// Can never succeed (invalid content): dead-lettered.
    #[error("permanent: {0}")]
    Permanent(String),
    /// May succeed later (database or provider down): retried, never skipped.
    #[error("transient: {0}")]
    Transient(String),
    /// A database error, classed by its SQLSTATE (see [`crate::failure`]).
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

impl From<HandleError> for Failure {
    fn from(e: HandleError) -> Failure {
        match e {
            HandleError::Permanent(reason) => Failure::permanent("rejected", reason),
            HandleError::Transient(reason) => Failure::transient("handler", reason),
            HandleError::Database(e) => e.into(),
        }
    }
}

/// One consumed event as `apply` sees it, with the span of its message: log
/// inside `span.in_scope(…)` so each line names the order, event and offset.
pub struct Incoming<'a> {
    pub event: &'a Event,
    pub span: &'a tracing::Span,
    /// The Kafka partition the event came from (every chorus topic has the
    /// same partitions and keys, so an order's events share one number).
    pub partition: i32,
}

/// What became of one event of a batch.
#[derive(Debug)]
pub enum Verdict<C> {
    /// Applied: `emit` leaves through the outbox; `calls` are made after the commit.
    Applied { emit: Vec<Event>, calls: Vec<C> },
    /// Can never be applied (the handler's own rule says so): the message is
    /// dead-lettered with class `rejected` and its effects are not applied.
    Rejected(String),
}

impl<C> Verdict<C> {
    /// Applied, emitting `emit`, no external call.
    pub fn emit(emit: Vec<Event>) -> Verdict<C> {
        Verdict::Applied {
            emit,
            calls: Vec::new(),
        }
    }
}

/// A worker's business logic as seen by the consumer loop.
pub trait Handler: Send + Sync + 'static {
    /// The external calls this worker makes ([`NoCalls`] when it makes none).
    type Calls: Calls;

    /// Short name: the consumer group suffix, log and metric label (`inventory`).
    fn name(&self) -> &'static str;

    /// The topics this worker consumes.
    fn topics(&self) -> &'static [Topic];

    /// Whether `apply` acts on events of this type. Events it does not act on
    /// (other services' events sharing a topic) are acknowledged without a
    /// transaction.
    fn handles(&self, event_type: EventType) -> bool;

    /// Applies `events`, in order, using `tx` (the loop's transaction), and
    /// returns one verdict per event, in the same order. Several events may
    /// concern one key; each must see the effects of those before it.
    /// Rows must be locked in one global order (sorted keys), so concurrent
    /// batches cannot deadlock; a deadlock is retried anyway.
    fn apply(
        &self,
        tx: &mut PgConnection,
        events: &[Incoming<'_>],
    ) -> impl Future<Output = Result<Vec<Verdict<<Self::Calls as Calls>::Call>>, HandleError>> + Send;

    /// The worker's external calls.
    fn calls(&self) -> &Self::Calls;

    /// How often [`Handler::tick`] runs; `None` (the default) for never.
    fn tick_every(&self) -> Option<Duration> {
        None
    }

    /// Periodic work in its own transaction (the order worker's deadlines),
    /// returning events to emit through the outbox.
    fn tick(
        &self,
        tx: &mut PgConnection,
    ) -> impl Future<Output = Result<Vec<Event>, HandleError>> + Send {
        let _ = tx;
        async { Ok(Vec::new()) }
    }
}

/// How one external call went.
#[derive(Debug)]
pub enum CallOutcome<A> {
    /// A final answer (which may be a refusal): settle it.
    Answered(A),
    /// Not now (a timeout, a 5xx, a refused connection): call again after a pause.
    Retry(String),
}

/// One answer to record, as [`Calls::settle`] sees it, with the call's span:
/// log inside `span.in_scope(…)` so each line carries the order, the trace
/// and the event that asked for the call.
pub struct Settling<'a, Call, Answer> {
    pub call: &'a Call,
    pub answer: &'a Answer,
    pub span: &'a tracing::Span,
}

impl<'a, Call, Answer> Settling<'a, Call, Answer> {
    /// An answer outside any span (tools and tests that record one by hand).
    pub fn untraced(call: &'a Call, answer: &'a Answer) -> Settling<'a, Call, Answer> {
        static NONE: std::sync::LazyLock<tracing::Span> =
            std::sync::LazyLock::new(tracing::Span::none);
        Settling {
            call,
            answer,
            span: &NONE,
        }
    }
}

/// Why the runtime asks a worker for an answer the provider did not give.
#[derive(Debug, Clone, Copy)]
pub enum Fallback<'a> {
    /// Every attempt in a row answered "not now".
    Exhausted(&'a str),
    /// The answer given cannot be recorded (the database refuses it).
    Unrecordable(&'a str),
}

/// External calls (a payment provider, a webhook, SMTP), made outside any
/// transaction: `apply` records the intent with its state change and asks for
/// the call; after the commit the runtime calls, retrying with backoff while
/// the answer is "not now" (a bounded number of times, then
/// [`Calls::fallback`]); then [`Calls::settle`] records the answer and emits
/// its events in a transaction of its own. The intent is leased to the
/// process making the call ([`Calls::renew`], [`Calls::release`]); an intent
/// nobody holds (a crash, a stop, a call never asked for) is found again by
/// [`Calls::unsettled`]. A call may therefore be made more than once, so it
/// must carry an idempotency key.
pub trait Calls: Send + Sync + 'static {
    type Call: Send + Sync + Clone + std::fmt::Debug + 'static;
    type Answer: Send + Sync + 'static;

    /// A stable identity of the call (no two calls in flight share one).
    fn id(call: &Self::Call) -> String;

    /// The span name of the call, e.g. `authorize payment`.
    fn span_name(call: &Self::Call) -> &'static str;

    /// The order the call is about, for logs and spans.
    fn key(call: &Self::Call) -> &str;

    /// The W3C `traceparent` of the message that asked for the call.
    fn traceparent(call: &Self::Call) -> Option<&str>;

    /// The id of the event that asked for the call, when the call knows it
    /// (a call taken up again after a restart has no message at hand).
    fn cause_event_id(call: &Self::Call) -> Option<&str> {
        let _ = call;
        None
    }

    /// Makes attempt number `attempt` (1-based) of the call.
    fn call(
        &self,
        call: &Self::Call,
        attempt: u32,
    ) -> impl Future<Output = CallOutcome<Self::Answer>> + Send;

    /// The answer to record when the provider gave none that can be: its
    /// attempts ran out, or its answer cannot be recorded. `None` (the
    /// default) parks the call: it is taken again later and the message that
    /// asked for it is dead-lettered.
    fn fallback(call: &Self::Call, why: Fallback<'_>) -> Option<Self::Answer> {
        let _ = (call, why);
        None
    }

    /// Records answers inside `tx`; one verdict per answer, in order: the
    /// events it emits and the calls that follow (a void after an answer
    /// that came too late). An answer recorded before (a call made twice)
    /// must change nothing and emit nothing.
    fn settle(
        &self,
        tx: &mut PgConnection,
        answers: &[Settling<'_, Self::Call, Self::Answer>],
    ) -> impl Future<Output = Result<Vec<Verdict<Self::Call>>, HandleError>> + Send;

    /// Calls asked for but not answered and not leased to anyone (at most
    /// `limit`), leased to this process for `lease` so no one else takes them.
    fn unsettled(
        &self,
        conn: &mut PgConnection,
        lease: Duration,
        limit: i64,
    ) -> impl Future<Output = Result<Vec<Self::Call>, sqlx::Error>> + Send;

    /// Extends the lease of calls this process holds to `lease` from now
    /// (those already answered are left alone).
    fn renew(
        &self,
        conn: &mut PgConnection,
        calls: &[&Self::Call],
        lease: Duration,
    ) -> impl Future<Output = Result<(), sqlx::Error>> + Send;

    /// Gives up the lease of calls this process took and did not answer, so
    /// anyone may take them at once.
    fn release(
        &self,
        conn: &mut PgConnection,
        calls: &[&Self::Call],
    ) -> impl Future<Output = Result<(), sqlx::Error>> + Send;
}

/// A worker without external calls.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoCalls;

/// The call a worker without external calls never makes.
#[derive(Debug, Clone, Copy)]
pub enum NoCall {}

impl Calls for NoCalls {
    type Call = NoCall;
    type Answer = NoCall;

    fn id(call: &NoCall) -> String {
        match *call {}
    }

    fn span_name(call: &NoCall) -> &'static str {
        match *call {}
    }

    fn key(call: &NoCall) -> &str {
        match *call {}
    }

    fn traceparent(call: &NoCall) -> Option<&str> {
        match *call {}
    }

    async fn call(&self, call: &NoCall, _attempt: u32) -> CallOutcome<NoCall> {
        match *call {}
    }

    async fn settle(
        &self,
        _tx: &mut PgConnection,
        answers: &[Settling<'_, NoCall, NoCall>],
    ) -> Result<Vec<Verdict<NoCall>>, HandleError> {
        match answers.first() {
            None => Ok(Vec::new()),
            Some(settling) => match *settling.call {},
        }
    }

    async fn renew(
        &self,
        _conn: &mut PgConnection,
        calls: &[&NoCall],
        _lease: Duration,
    ) -> Result<(), sqlx::Error> {
        match calls.first() {
            None => Ok(()),
            Some(call) => match **call {},
        }
    }

    async fn release(
        &self,
        _conn: &mut PgConnection,
        calls: &[&NoCall],
    ) -> Result<(), sqlx::Error> {
        match calls.first() {
            None => Ok(()),
            Some(call) => match **call {},
        }
    }

    async fn unsettled(
        &self,
        _conn: &mut PgConnection,
        _lease: Duration,
        _limit: i64,
    ) -> Result<Vec<NoCall>, sqlx::Error> {
        Ok(Vec::new())
    }
}

/// Applies one event with `handler` inside `tx`, as the consumer loop would
/// for a batch of one; `Rejected` comes back as [`HandleError::Permanent`].
/// For handlers' own tests and tools that apply a single event.
pub async fn apply_one<H: Handler>(
    handler: &H,
    tx: &mut PgConnection,
    event: &Event,
) -> Result<(Vec<Event>, Vec<<H::Calls as Calls>::Call>), HandleError> {
    let span = tracing::Span::none();
    let verdicts = handler
        .apply(
            tx,
            &[Incoming {
                event,
                span: &span,
                partition: 0,
            }],
        )
        .await?;
    match verdicts.into_iter().next() {
        Some(Verdict::Applied { emit, calls }) => Ok((emit, calls)),
        Some(Verdict::Rejected(reason)) => Err(HandleError::Permanent(reason)),
        None => Err(HandleError::Permanent(
            "the handler gave no verdict for the event".to_string(),
        )),
    }
}
