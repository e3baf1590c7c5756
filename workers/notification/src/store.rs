//! The `deliveries` table: one row per order, final state and channel. For a
//! remote channel the row is first the intent (`pending`, with what to send,
//! leased to the process that sends it), written in the consumer loop's
//! transaction; the result is recorded in a transaction of its own after the
//! send. Claiming the row also serialises two handlers racing for the same
//! delivery: the second waits on the key, then finds it taken.
//!
//! Guarantee: a `delivered` row is never claimed again, so nobody is told
//! twice. A `failed` row (the receiver refused for good, and the final-state
//! event was dead-lettered) is claimed again — back to `pending` — only by
//! that same event coming back, which is what `chorus dlq redrive` does.

use std::collections::HashSet;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use sqlx::types::Json;
use uuid::Uuid;

use crate::rules::{Channel, FinalStatus, OrderOutcome};

/// A delivery to claim.
pub struct Claim<'a> {
    pub outcome: &'a OrderOutcome,
    pub channel: Channel,
    pub delivery_id: Uuid,
    /// `delivered` at once (the log channel), or `pending` (a remote one).
    pub delivered: bool,
    pub cause_event_id: &'a str,
    pub correlation_id: &'a str,
    pub traceparent: Option<&'a str>,
}

/// Claims deliveries in one statement; returns, for each, whether it is to
/// be sent: new, or `failed` and claimed again by the event it failed for (a
/// redrive). `false`: delivered, pending, or failed for another event, so it
/// is not sent. Of several claims of one delivery, only the first can be true.
pub async fn claim(
    conn: &mut PgConnection,
    claims: &[Claim<'_>],
    lease: Duration,
) -> Result<Vec<bool>, sqlx::Error> {
    if claims.is_empty() {
        return Ok(Vec::new());
    }
    let order_ids: Vec<&str> = claims.iter().map(|c| c.outcome.order_id.as_str()).collect();
    let statuses: Vec<&str> = claims
        .iter()
        .map(|c| c.outcome.final_status.as_str())
        .collect();
    let channels: Vec<&str> = claims.iter().map(|c| c.channel.as_str()).collect();
    let ids: Vec<Uuid> = claims.iter().map(|c| c.delivery_id).collect();
    let delivered: Vec<bool> = claims.iter().map(|c| c.delivered).collect();
    let outcomes: Vec<String> = claims
        .iter()
        .map(|c| serde_json::to_string(c.outcome).expect("an outcome serializes"))
        .collect();
    let causes: Vec<&str> = claims.iter().map(|c| c.cause_event_id).collect();
    let correlations: Vec<&str> = claims.iter().map(|c| c.correlation_id).collect();
    let traceparents: Vec<Option<&str>> = claims.iter().map(|c| c.traceparent).collect();
    let new: Vec<Uuid> = sqlx::query_scalar(
        "INSERT INTO deliveries (order_id, final_status, channel, delivery_id, attempts, status,
                                 delivered_at, outcome, cause_event_id, correlation_id,
                                 traceparent, lease_until)
         SELECT DISTINCT ON (o, f, c) o, f, c, d, CASE WHEN done THEN 1 ELSE 0 END,
                CASE WHEN done THEN 'delivered' ELSE 'pending' END,
                CASE WHEN done THEN now() END, oc::jsonb, cause, corr, tp,
                CASE WHEN done THEN NULL ELSE now() + make_interval(secs => $10) END
         FROM unnest($1::text[], $2::text[], $3::text[], $4::uuid[], $5::bool[], $6::text[],
                     $7::text[], $8::text[], $9::text[])
              WITH ORDINALITY AS u(o, f, c, d, done, oc, cause, corr, tp, n)
         ORDER BY o, f, c, n
         -- A refused delivery is retried when the event it was refused for
         -- comes back (redriven from its dead letter); its last error stays
         -- until the new answer replaces it. DISTINCT ON above: an upsert
         -- may not touch one row twice in a statement.
         ON CONFLICT (order_id, final_status, channel) DO UPDATE
             SET status = 'pending', lease_until = EXCLUDED.lease_until,
                 outcome = EXCLUDED.outcome, correlation_id = EXCLUDED.correlation_id,
                 traceparent = EXCLUDED.traceparent
             WHERE deliveries.status = 'failed'
               AND deliveries.cause_event_id = EXCLUDED.cause_event_id
         RETURNING delivery_id",
    )
    .bind(order_ids)
    .bind(statuses)
    .bind(channels)
    .bind(&ids)
    .bind(delivered)
    .bind(outcomes)
    .bind(causes)
    .bind(correlations)
    .bind(traceparents)
    .bind(lease.as_secs_f64())
    .fetch_all(conn)
    .await?;
    let mut new: HashSet<Uuid> = new.into_iter().collect();
    Ok(ids.iter().map(|id| new.remove(id)).collect())
}

/// A pending delivery, as its intent was recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    pub delivery_id: Uuid,
    pub channel: Channel,
    pub outcome: OrderOutcome,
    pub cause_event_id: String,
    pub correlation_id: String,
    pub traceparent: Option<String>,
}

/// Records a delivery's result if it is still pending; false when it was
/// recorded before (a send made twice), so nothing more may follow.
pub async fn record_result(
    conn: &mut PgConnection,
    delivery_id: Uuid,
    attempts: u32,
    error: Option<&str>,
) -> Result<bool, sqlx::Error> {
    let updated = sqlx::query(
        "UPDATE deliveries
         SET status = CASE WHEN $3::text IS NULL THEN 'delivered' ELSE 'failed' END,
             delivered_at = CASE WHEN $3::text IS NULL THEN now() END,
             attempts = $2, error = $3, lease_until = NULL
         WHERE delivery_id = $1 AND status = 'pending'",
    )
    .bind(delivery_id)
    .bind(i32::try_from(attempts).unwrap_or(i32::MAX))
    .bind(error)
    .execute(conn)
    .await?
    .rows_affected();
    Ok(updated == 1)
}

/// Sets the lease of pending deliveries to `lease` from now, or gives it up
/// (`None`) so anyone may take them at once.
pub async fn renew_leases(
    conn: &mut PgConnection,
    delivery_ids: &[Uuid],
    lease: Option<Duration>,
) -> Result<(), sqlx::Error> {
    if delivery_ids.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "UPDATE deliveries
         SET lease_until = CASE WHEN $2::float8 IS NULL THEN NULL
                                ELSE now() + make_interval(secs => $2) END
         WHERE delivery_id = ANY($1) AND status = 'pending'",
    )
    .bind(delivery_ids)
    .bind(lease.map(|lease| lease.as_secs_f64()))
    .execute(conn)
    .await?;
    Ok(())
}

/// Pending deliveries whose lease ran out, leased anew to the caller.
pub async fn lease_pending(
    conn: &mut PgConnection,
    lease: Duration,
    limit: i64,
) -> Result<Vec<Pending>, sqlx::Error> {
    type Row = (
        Uuid,
        String,
        Json<OrderOutcome>,
        Option<String>,
        Option<String>,
        Option<String>,
    );
    let rows: Vec<Row> = sqlx::query_as(
        "UPDATE deliveries SET lease_until = now() + make_interval(secs => $1)
         WHERE delivery_id IN (
             SELECT delivery_id FROM deliveries
             WHERE status = 'pending' AND (lease_until IS NULL OR lease_until < now())
             ORDER BY delivery_id LIMIT $2
             FOR UPDATE SKIP LOCKED
         )
         RETURNING delivery_id, channel, outcome, cause_event_id, correlation_id, traceparent",
    )
    .bind(lease.as_secs_f64())
    .bind(limit)
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .filter_map(
            |(delivery_id, channel, Json(outcome), cause, correlation, traceparent)| {
                Some(Pending {
                    delivery_id,
                    channel: Channel::parse(&channel)?,
                    cause_event_id: cause.unwrap_or_else(|| outcome.event_id.clone()),
                    correlation_id: correlation.unwrap_or_else(|| outcome.order_id.clone()),
                    outcome,
                    traceparent,
                })
            },
        )
        .collect())
}

/// A recorded delivery.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Delivery {
    pub delivery_id: Uuid,
    pub status: String,
    pub attempts: i32,
    pub delivered_at: Option<DateTime<Utc>>,
    pub error: Option<String>,
}

pub async fn find_delivery(
    conn: &mut PgConnection,
    order_id: &str,
    final_status: FinalStatus,
    channel: Channel,
) -> Result<Option<Delivery>, sqlx::Error> {
    sqlx::query_as(
        "SELECT delivery_id, status, attempts, delivered_at, error FROM deliveries
         WHERE order_id = $1 AND final_status = $2 AND channel = $3",
    )
    .bind(order_id)
    .bind(final_status.as_str())
    .bind(channel.as_str())
    .fetch_optional(conn)
    .await
}
