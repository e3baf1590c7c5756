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
use std::time::Duration;

use chorus_avro::{Event, EventType, Topic};
use chorus_runtime::retry::RetryPolicy;
use chorus_runtime::{CallOutcome, Calls, Env, HandleError, Handler, Incoming, Verdict};
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
        }
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
            EventType::StockReserved | EventType::OrderCancelled
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
        let mut verdicts = Vec::with_capacity(events.len());
        for (incoming, checked) in events.iter().zip(checked) {
            if let Err(reason) = checked {
                verdicts.push(Verdict::Rejected(reason));
                continue;
            }
            let traceparent = chorus_runtime::traceparent(incoming.span);
            let step = match incoming.event {
                Event::StockReserved(reserved) => {
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
        save(tx, &payments, &existing, &changed).await?;
        Ok(verdicts)
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
) -> Result<(), HandleError> {
    let (old, new): (Vec<&Payment>, Vec<&Payment>) = changed
        .iter()
        .map(|id| &payments[id])
        .partition(|p| existing.contains(&p.order_id));
    if !store::insert_payments(tx, &new, LEASE).await? {
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
                    Err(problem) => {
                        return CallOutcome::Answered(PaymentAnswer::Authorize {
                            answer: AuthorizeAnswer::Declined { detail: problem },
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
        answers: &[(&PaymentCall, &PaymentAnswer)],
    ) -> Result<Vec<Verdict<PaymentCall>>, HandleError> {
        let ids: Vec<&str> = answers.iter().map(|(call, _)| call.order_id()).collect();
        let mut ids = ids;
        ids.sort_unstable();
        ids.dedup();
        let mut payments = store::lock_payments(tx, &ids).await?;
        let existing: BTreeSet<String> = payments.keys().cloned().collect();
        let mut changed = BTreeSet::new();
        let mut verdicts = Vec::with_capacity(answers.len());
        for (call, answer) in answers {
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
                    tracing::info!(
                        order_id = call.order_id(),
                        status = step.payment.status.as_str(),
                        "provider answer recorded"
                    );
                    verdicts.push(record(&mut payments, &mut changed, step));
                }
                None => verdicts.push(Verdict::emit(vec![])),
            }
        }
        save(tx, &payments, &existing, &changed).await?;
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
}
