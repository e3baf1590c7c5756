//! The payment worker's `Handler`: one authorization per order, ever.
//!
//! On `StockReserved` it looks for the order's `payments` row; if there is one
//! the order was already answered (the row and its event were committed
//! together) and nothing happens. Otherwise it asks the provider (retrying a
//! transient failure with backoff, under the same idempotency key), records
//! the outcome and emits `PaymentAuthorized` or `PaymentFailed`. A crash
//! between the provider call and the commit replays the event, and the
//! provider's idempotency key turns the second call into a read of the first.

use chorus_avro::{Event, EventType, Topic};
use chorus_runtime::retry::RetryPolicy;
use chorus_runtime::{Env, HandleError, Handler};
use sqlx::{PgConnection, PgPool};

use crate::config::{PaymentConfig, ProviderChoice};
use crate::provider::{ConfiguredProvider, HttpProvider, PaymentProvider, SandboxProvider};
use crate::retry::authorize_with_retries;
use crate::rules;
use crate::store::{self, PaymentRecord};

pub struct PaymentHandler<P = ConfiguredProvider> {
    provider: P,
    retry: RetryPolicy,
}

impl PaymentHandler {
    /// The handler configured from `CHORUS_PAYMENT_…` variables; the sandbox
    /// provider keeps its books in `pool`'s database, on connections of its own.
    pub fn from_env(pool: &PgPool) -> anyhow::Result<PaymentHandler> {
        PaymentHandler::from_config(&PaymentConfig::from_env(&Env::process())?, pool)
    }

    pub fn from_config(config: &PaymentConfig, pool: &PgPool) -> anyhow::Result<PaymentHandler> {
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
    pub fn new(provider: P, retry: RetryPolicy) -> PaymentHandler<P> {
        PaymentHandler { provider, retry }
    }

    pub fn provider(&self) -> &P {
        &self.provider
    }
}

impl<P: PaymentProvider> Handler for PaymentHandler<P> {
    fn name(&self) -> &'static str {
        "payment"
    }

    fn topics(&self) -> &'static [Topic] {
        &[Topic::Inventory]
    }

    fn handles(&self, event_type: EventType) -> bool {
        matches!(event_type, EventType::StockReserved)
    }

    async fn handle(
        &self,
        conn: &mut PgConnection,
        event: &Event,
    ) -> Result<Vec<Event>, HandleError> {
        let Event::StockReserved(reserved) = event else {
            return Ok(vec![]);
        };
        if let Some(earlier) = store::find_payment(conn, &reserved.order_id).await? {
            tracing::info!(
                order_id = %reserved.order_id,
                status = %earlier.status,
                "order already has a payment; not charging again",
            );
            return Ok(vec![]);
        }
        let request = rules::authorization_request(reserved).map_err(HandleError::Permanent)?;
        let charge = authorize_with_retries(&self.provider, &request, &self.retry).await;
        let record = PaymentRecord::new(
            &reserved.order_id,
            reserved.total,
            &reserved.currency,
            &charge,
        );
        if !store::record_payment(conn, &record).await? {
            // Another transaction recorded this order while the provider was asked;
            // the shared idempotency key made both calls one charge.
            return Ok(vec![]);
        }
        tracing::info!(
            order_id = %reserved.order_id,
            status = %record.status,
            attempts = record.attempts,
            "payment recorded",
        );
        Ok(vec![rules::payment_event(event, reserved, &charge.outcome)])
    }
}
