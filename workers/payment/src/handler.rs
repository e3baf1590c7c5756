//! The payment worker's `Handler`: one authorization per order, ever, and no
//! charge standing for a cancelled order.
//!
//! The provider is never called inside a transaction. A `StockReserved`
//! records the intent (`authorizing`) in the consumer loop's transaction;
//! after the commit the runtime calls the provider (retrying "not now" up to
//! `CHORUS_PAYMENT_MAX_ATTEMPTS` times under the same idempotency key, the
//! order id), and [`PaymentCalls::settle`] records the answer with its event
//! in a transaction of its own. An `OrderCancelled` voids what stands, or
//! makes sure nothing will. A crash between the call and the record leaves
//! the intent, which is called again (the key turns it into a read).

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use chorus_avro::{Event, EventType, Topic};
use chorus_runtime::metrics::Metrics;
use chorus_runtime::retry::RetryPolicy;
use chorus_runtime::{
    CallOutcome, Calls, Env, Fallback, HandleError, Handler, Incoming, Settling, Verdict,
};
use sqlx::{PgConnection, PgPool};

use crate::config::{PaymentConfig, ProviderChoice};
use crate::provider::{
    AuthorizationRequest, ConfiguredProvider, HttpProvider, PaymentProvider, ProviderError,
    SandboxProvider, VoidRequest, Voided,
};
use crate::rules::{self, AuthorizeAnswer, Payment, PaymentCall, Step, VoidAnswer};
use crate::store;
use crate::token::TokenOpener;

/// How long a call's intent is reserved for the process making it.
const LEASE: Duration = chorus_runtime::calls::LEASE;

pub struct PaymentHandler<P = ConfiguredProvider> {
    calls: PaymentCalls<P>,
    unconfirmed: Option<UnconfirmedVoids>,
}

/// `void_reason` of an authorization voided because its order was never
/// seen confirmed (a forged or orphaned `StockReserved`).
pub const ORDER_NOT_CONFIRMED: &str = "order_not_confirmed";
/// How often unconfirmed authorizations are looked for.
const SWEEP_EVERY: Duration = Duration::from_secs(5);
/// A lag report older than this does not prove a partition consumed to the end.
const LAG_FRESH: Duration = Duration::from_secs(15);

/// Voiding authorizations whose order was never seen confirmed: only on
/// partitions of the orders topic this process has consumed to the end, so
/// an `OrderConfirmed` still waiting in Kafka never gets its charge voided.
struct UnconfirmedVoids {
    after: Duration,
    metrics: Arc<Metrics>,
    orders_topic: String,
}

/// The provider's answer to one call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PaymentAnswer {
    Authorize {
        answer: AuthorizeAnswer,
        attempts: u32,
    },
    Void(VoidAnswer),
}

/// The worker's calls to the payment provider.
pub struct PaymentCalls<P> {
    provider: P,
    retry: RetryPolicy,
    tokens: TokenOpener,
}

impl PaymentHandler {
    /// The handler configured from `CHORUS_PAYMENT_…` variables; the sandbox
    /// provider keeps its books in `pool`'s database, on connections of its own.
    pub fn from_env(pool: &PgPool) -> anyhow::Result<PaymentHandler> {
        PaymentHandler::from_config(&PaymentConfig::from_env(&Env::process())?, pool)
    }

    pub fn from_config(config: &PaymentConfig, pool: &PgPool) -> anyhow::Result<PaymentHandler> {
        Ok(
            PaymentHandler::with_provider(config, pool)?.with_tokens(TokenOpener {
                keys: config.token_keys.clone(),
                dev: config.dev,
            }),
        )
    }

    /// The handler of a worker process: configured from the environment,
    /// voiding unconfirmed authorizations by the lag `ctx.metrics` reports.
    pub fn for_worker(ctx: &chorus_runtime::WorkerContext) -> anyhow::Result<PaymentHandler> {
        let config = PaymentConfig::from_env(&Env::process())?;
        let orders_topic = ctx.config.catalogue().name(Topic::Orders);
        Ok(
            PaymentHandler::from_config(&config, &ctx.pool)?.voiding_unconfirmed(
                config.void_unconfirmed_after,
                ctx.metrics.clone(),
                orders_topic,
            ),
        )
    }

    fn with_provider(config: &PaymentConfig, pool: &PgPool) -> anyhow::Result<PaymentHandler> {
        let provider = match &config.provider {
            ProviderChoice::Sandbox => {
                ConfiguredProvider::Sandbox(SandboxProvider::alongside(pool))
            }
            ProviderChoice::Http { url, timeout } => {
                ConfiguredProvider::Http(HttpProvider::new(url, *timeout)?)
            }
        };
        Ok(PaymentHandler::new(provider, config.retry))
    }
}

impl<P: PaymentProvider> PaymentHandler<P> {
    /// A handler calling `provider`, accepting unsealed tokens (development).
    pub fn new(provider: P, retry: RetryPolicy) -> PaymentHandler<P> {
        PaymentHandler {
            calls: PaymentCalls {
                provider,
                retry,
                tokens: TokenOpener {
                    keys: None,
                    dev: true,
                },
            },
            unconfirmed: None,
        }
    }

    /// Voids authorizations whose order it has not seen confirmed `after`
    /// they were asked for, on the partitions of `orders_topic` that
    /// `metrics` reports consumed to the end.
    pub fn voiding_unconfirmed(
        mut self,
        after: Duration,
        metrics: Arc<Metrics>,
        orders_topic: String,
    ) -> PaymentHandler<P> {
        self.unconfirmed = Some(UnconfirmedVoids {
            after,
            metrics,
            orders_topic,
        });
        self
    }

    /// Opens payment tokens with `tokens`.
    pub fn with_tokens(mut self, tokens: TokenOpener) -> PaymentHandler<P> {
        self.calls.tokens = tokens;
        self
    }

    pub fn provider(&self) -> &P {
        &self.calls.provider
    }
}

impl<P: PaymentProvider> Handler for PaymentHandler<P> {
    type Calls = PaymentCalls<P>;

    fn name(&self) -> &'static str {
        "payment"
    }

    fn topics(&self) -> &'static [Topic] {
        &[Topic::Inventory, Topic::Orders]
    }

    fn handles(&self, event_type: EventType) -> bool {
        matches!(
            event_type,
            EventType::StockReserved | EventType::OrderCancelled | EventType::OrderConfirmed
        )
    }

    fn calls(&self) -> &PaymentCalls<P> {
        &self.calls
    }

    async fn apply(
        &self,
        tx: &mut PgConnection,
        events: &[Incoming<'_>],
    ) -> Result<Vec<Verdict<PaymentCall>>, HandleError> {
        // Refused content (the validation every consumer shares) is
        // dead-lettered before any payment row is locked.
        let checked: Vec<Result<(), String>> =
            events.iter().map(|e| rules::check(e.event)).collect();
        let ids: Vec<&str> = events
            .iter()
            .zip(&checked)
            .filter(|(_, checked)| checked.is_ok())
            .map(|(e, _)| e.event.key())
            .collect();
        let mut ids = ids;
        ids.sort_unstable();
        ids.dedup();
        let mut payments = store::lock_payments(tx, &ids).await?;
        let existing: BTreeSet<String> = payments.keys().cloned().collect();
        let mut changed = BTreeSet::new();
        let mut confirmed = Vec::new();
        let mut partitions = HashMap::new();
        let mut verdicts = Vec::with_capacity(events.len());
        for (incoming, checked) in events.iter().zip(checked) {
            if let Err(reason) = checked {
                verdicts.push(Verdict::Rejected(reason));
                continue;
            }
            let traceparent = chorus_runtime::traceparent(incoming.span);
            let step = match incoming.event {
                Event::OrderConfirmed(order) => {
                    confirmed.push(order.order_id.as_str());
                    None
                }
                Event::StockReserved(reserved) => {
                    partitions.insert(reserved.order_id.clone(), incoming.partition);
                    let current = payments.get(&reserved.order_id);
                    match rules::on_stock_reserved(current, reserved, traceparent) {
                        Ok(step) => step,
                        Err(reason) => {
                            verdicts.push(Verdict::Rejected(reason));
                            continue;
                        }
                    }
                }
                Event::OrderCancelled(cancelled) => rules::on_order_cancelled(
                    payments.get(&cancelled.order_id),
                    &cancelled.order_id,
                    &cancelled.reason,
                    traceparent,
                ),
                _ => None,
            };
            let Some(step) = step else {
                verdicts.push(Verdict::emit(vec![]));
                continue;
            };
            incoming.span.in_scope(|| {
                tracing::info!(status = step.payment.status.as_str(), "payment recorded")
            });
            verdicts.push(record(&mut payments, &mut changed, step));
        }
        save(tx, &payments, &existing, &changed, &partitions).await?;
        store::mark_confirmed(tx, &confirmed).await?;
        Ok(verdicts)
    }

    fn tick_every(&self) -> Option<Duration> {
        self.unconfirmed.as_ref().map(|_| SWEEP_EVERY)
    }

    /// Voids authorizations whose order was never seen confirmed; the void
    /// itself is made by the call executor, which takes the intent at once.
    async fn tick(&self, tx: &mut PgConnection) -> Result<Vec<Event>, HandleError> {
        let Some(unconfirmed) = &self.unconfirmed else {
            return Ok(Vec::new());
        };
        let partitions = unconfirmed
            .metrics
            .caught_up_partitions(&unconfirmed.orders_topic, LAG_FRESH);
        let voided =
            store::void_unconfirmed(tx, unconfirmed.after, &partitions, ORDER_NOT_CONFIRMED, 500)
                .await?;
        for order_id in &voided {
            tracing::warn!(
                order_id,
                after_secs = unconfirmed.after.as_secs(),
                "voiding an authorization whose order was never confirmed"
            );
        }
        Ok(Vec::new())
    }
}

/// Keeps a step's payment and turns the step into a verdict.
fn record(
    payments: &mut HashMap<String, Payment>,
    changed: &mut BTreeSet<String>,
    step: Step,
) -> Verdict<PaymentCall> {
    let order_id = step.payment.order_id.clone();
    payments.insert(order_id.clone(), step.payment);
    changed.insert(order_id);
    Verdict::Applied {
        emit: step.events,
        calls: step.call.into_iter().collect(),
    }
}

/// Inserts the new payments and updates the locked ones.
async fn save(
    tx: &mut PgConnection,
    payments: &HashMap<String, Payment>,
    existing: &BTreeSet<String>,
    changed: &BTreeSet<String>,
    partitions: &HashMap<String, i32>,
) -> Result<(), HandleError> {
    let (old, new): (Vec<&Payment>, Vec<&Payment>) = changed
        .iter()
        .map(|id| &payments[id])
        .partition(|p| existing.contains(&p.order_id));
    if !store::insert_payments(tx, &new, partitions, LEASE).await? {
        // An event of another topic (or replica) recorded one of these
        // orders after we looked; the retry decides again from its row.
        return Err(HandleError::Transient(
            "a payment of this batch was written concurrently".into(),
        ));
    }
    store::update_payments(tx, &old, LEASE).await?;
    Ok(())
}

impl<P: PaymentProvider> Calls for PaymentCalls<P> {
    type Call = PaymentCall;
    type Answer = PaymentAnswer;

    fn id(call: &PaymentCall) -> String {
        match call {
            PaymentCall::Authorize { order_id, .. } => format!("authorize:{order_id}"),
            PaymentCall::Void { order_id, .. } => format!("void:{order_id}"),
        }
    }

    fn span_name(call: &PaymentCall) -> &'static str {
        match call {
            PaymentCall::Authorize { .. } => "authorize payment",
            PaymentCall::Void { .. } => "void payment",
        }
    }

    fn key(call: &PaymentCall) -> &str {
        call.order_id()
    }

    fn traceparent(call: &PaymentCall) -> Option<&str> {
        match call {
            PaymentCall::Authorize { traceparent, .. } | PaymentCall::Void { traceparent, .. } => {
                traceparent.as_deref()
            }
        }
    }

    fn cause_event_id(call: &PaymentCall) -> Option<&str> {
        match call {
            PaymentCall::Authorize { cause_event_id, .. }
            | PaymentCall::Void { cause_event_id, .. } => cause_event_id.as_deref(),
        }
    }

    /// An authorization with no answer that can be recorded (its attempts ran
    /// out, or the provider's answer does not fit the database) is recorded
    /// as unavailable: the charge is then voided by the idempotency key
    /// before the order is cancelled. A void is parked and taken again.
    fn fallback(call: &PaymentCall, why: Fallback<'_>) -> Option<PaymentAnswer> {
        let detail = match why {
            Fallback::Exhausted(why) => format!("the provider did not answer: {why}"),
            Fallback::Unrecordable(why) => {
                format!("the provider's answer could not be recorded: {why}")
            }
        };
        match call {
            PaymentCall::Authorize { .. } => Some(PaymentAnswer::Authorize {
                answer: AuthorizeAnswer::Unavailable { detail },
                attempts: 1,
            }),
            PaymentCall::Void { .. } => None,
        }
    }

    async fn call(&self, call: &PaymentCall, attempt: u32) -> CallOutcome<PaymentAnswer> {
        match call {
            PaymentCall::Authorize {
                order_id,
                amount,
                currency,
                token,
                token_key_id,
                ..
            } => {
                let token = match self.tokens.open(order_id, token, token_key_id.as_deref()) {
                    Ok(token) => token,
                    // Not the customer's card: our key is missing or was
                    // rotated out. An earlier attempt may have charged, so
                    // this is recorded as unavailable (voided by the key).
                    Err(problem) => {
                        tracing::error!(
                            order_id,
                            cause = problem.as_str(),
                            "the payment token cannot be opened; the payment is failed as unavailable"
                        );
                        return CallOutcome::Answered(PaymentAnswer::Authorize {
                            answer: AuthorizeAnswer::Unavailable {
                                detail: format!("the payment token cannot be opened: {problem}"),
                            },
                            attempts: attempt - 1,
                        });
                    }
                };
                let request = AuthorizationRequest {
                    order_id: order_id.clone(),
                    amount: *amount,
                    currency: currency.clone(),
                    token,
                };
                let answer = match self.provider.authorize(&request).await {
                    Ok(authorization) => AuthorizeAnswer::Authorized {
                        authorization_id: authorization.authorization_id,
                    },
                    Err(ProviderError::Declined { reason }) => {
                        AuthorizeAnswer::Declined { detail: reason }
                    }
                    Err(ProviderError::Unavailable { cause }) => {
                        if self.retry.may_retry_after(attempt) {
                            return CallOutcome::Retry(cause);
                        }
                        AuthorizeAnswer::Unavailable {
                            detail: format!(
                                "provider unavailable after {attempt} attempts: {cause}"
                            ),
                        }
                    }
                };
                CallOutcome::Answered(PaymentAnswer::Authorize {
                    answer,
                    attempts: attempt,
                })
            }
            PaymentCall::Void {
                order_id,
                authorization_id,
                ..
            } => {
                let request = VoidRequest {
                    order_id: order_id.clone(),
                    authorization_id: authorization_id.clone(),
                };
                match self.provider.void(&request).await {
                    Ok(Voided::Voided) => {
                        CallOutcome::Answered(PaymentAnswer::Void(VoidAnswer::Voided))
                    }
                    Ok(Voided::NothingToVoid) => {
                        CallOutcome::Answered(PaymentAnswer::Void(VoidAnswer::NothingToVoid))
                    }
                    // A charge must not stand for a cancelled order: a void is
                    // asked again until the provider takes it.
                    Err(ProviderError::Unavailable { cause }) => CallOutcome::Retry(cause),
                    Err(ProviderError::Declined { reason }) => {
                        CallOutcome::Retry(format!("the provider refused the void: {reason}"))
                    }
                }
            }
        }
    }

    async fn settle(
        &self,
        tx: &mut PgConnection,
        answers: &[Settling<'_, PaymentCall, PaymentAnswer>],
    ) -> Result<Vec<Verdict<PaymentCall>>, HandleError> {
        let ids: Vec<&str> = answers.iter().map(|a| a.call.order_id()).collect();
        let mut ids = ids;
        ids.sort_unstable();
        ids.dedup();
        let mut payments = store::lock_payments(tx, &ids).await?;
        let existing: BTreeSet<String> = payments.keys().cloned().collect();
        let mut changed = BTreeSet::new();
        let mut verdicts = Vec::with_capacity(answers.len());
        for Settling { call, answer, span } in answers {
            let step = payments
                .get(call.order_id())
                .and_then(|current| match answer {
                    PaymentAnswer::Authorize { answer, attempts } => {
                        rules::on_authorize_answer(current, answer, *attempts)
                    }
                    PaymentAnswer::Void(answer) => rules::on_void_answer(current, *answer),
                });
            match step {
                Some(step) => {
                    // What the provider (or the worker) said goes to this
                    // log and the payment row; the customer reads a fixed text.
                    span.in_scope(|| {
                        tracing::info!(
                            status = step.payment.status.as_str(),
                            cause = step.payment.reason.as_deref(),
                            "provider answer recorded"
                        )
                    });
                    verdicts.push(record(&mut payments, &mut changed, step));
                }
                None => verdicts.push(Verdict::emit(vec![])),
            }
        }
        save(tx, &payments, &existing, &changed, &HashMap::new()).await?;
        Ok(verdicts)
    }

    async fn unsettled(
        &self,
        conn: &mut PgConnection,
        lease: Duration,
        limit: i64,
    ) -> Result<Vec<PaymentCall>, sqlx::Error> {
        Ok(store::lease_unsettled(conn, lease, limit)
            .await?
            .iter()
            .filter_map(PaymentCall::pending)
            .collect())
    }

    async fn renew(
        &self,
        conn: &mut PgConnection,
        calls: &[&PaymentCall],
        lease: Duration,
    ) -> Result<(), sqlx::Error> {
        let ids: Vec<&str> = calls.iter().map(|call| call.order_id()).collect();
        store::renew_leases(conn, &ids, Some(lease)).await
    }

    async fn release(
        &self,
        conn: &mut PgConnection,
        calls: &[&PaymentCall],
    ) -> Result<(), sqlx::Error> {
        let ids: Vec<&str> = calls.iter().map(|call| call.order_id()).collect();
        store::renew_leases(conn, &ids, None).await
    }
}
