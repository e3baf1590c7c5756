//! The `payments` table: one row per order, ever — the intent of a call to
//! the provider, then its answer — written in the consumer loop's
//! transaction (with the events a message causes) or in the transaction that
//! records an answer. Rows are locked in order id order before they are read.

use std::collections::HashMap;
use std::time::Duration;

use rust_decimal::Decimal;
use sqlx::PgConnection;

use crate::rules::{Payment, Status};

const COLUMNS: &str = "order_id, amount, currency, status, authorization_id, reason, attempts,
     token, token_key_id, cancel_reason, void_reason, cause_event_id, correlation_id, traceparent";

type PaymentRow = (
    String,
    Decimal,
    String,
    String,
    Option<String>,
    Option<String>,
    i32,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
);

fn payment(row: PaymentRow) -> Result<Payment, sqlx::Error> {
    let (order_id, amount, currency, status, authorization_id, reason, attempts, token) =
        (row.0, row.1, row.2, row.3, row.4, row.5, row.6, row.7);
    let status = Status::parse(&status).ok_or_else(|| {
        sqlx::Error::Decode(format!("payment {order_id} has unknown status {status:?}").into())
    })?;
    Ok(Payment {
        order_id,
        amount,
        currency,
        status,
        authorization_id,
        reason,
        attempts,
        token,
        token_key_id: row.8,
        cancel_reason: row.9,
        void_reason: row.10,
        cause_event_id: row.11,
        correlation_id: row.12,
        traceparent: row.13,
    })
}

/// The payments of `order_ids` that exist, locked until the transaction ends.
pub async fn lock_payments(
    conn: &mut PgConnection,
    order_ids: &[&str],
) -> Result<HashMap<String, Payment>, sqlx::Error> {
    if order_ids.is_empty() {
        return Ok(HashMap::new());
    }
    let rows: Vec<PaymentRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM payments WHERE order_id = ANY($1) ORDER BY order_id FOR UPDATE"
    )))
    .bind(order_ids)
    .fetch_all(conn)
    .await?;
    rows.into_iter()
        .map(|row| payment(row).map(|p| (p.order_id.clone(), p)))
        .collect()
}

/// The order's payment, unlocked (for tests and operators).
pub async fn find_payment(
    conn: &mut PgConnection,
    order_id: &str,
) -> Result<Option<Payment>, sqlx::Error> {
    let row: Option<PaymentRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM payments WHERE order_id = $1"
    )))
    .bind(order_id)
    .fetch_optional(conn)
    .await?;
    row.map(payment).transpose()
}

/// Inserts new payments; a payment waiting for a call is leased for `lease`
/// to this process, which makes the call. False when a concurrent
/// transaction inserted one of them first (then nothing of this transaction
/// may stand: retry, and decide again from the row it wrote).
/// `partitions` holds the Kafka partition each order's events come from.
pub async fn insert_payments(
    conn: &mut PgConnection,
    payments: &[&Payment],
    partitions: &HashMap<String, i32>,
    lease: Duration,
) -> Result<bool, sqlx::Error> {
    if payments.is_empty() {
        return Ok(true);
    }
    let c = Columns::of(payments);
    let partitions: Vec<Option<i32>> = payments
        .iter()
        .map(|p| partitions.get(&p.order_id).copied())
        .collect();
    let inserted = sqlx::query(
        "INSERT INTO payments (order_id, amount, currency, status, authorization_id, reason,
                               attempts, token, token_key_id, cancel_reason, void_reason,
                               cause_event_id, correlation_id, traceparent, kafka_partition,
                               lease_until)
         SELECT u.*, CASE WHEN u.status IN ('authorizing', 'voiding')
                          THEN now() + make_interval(secs => $15) END
         FROM unnest($1::text[], $2::numeric[], $3::text[], $4::text[], $5::text[], $6::text[],
                     $7::int[], $8::text[], $9::text[], $10::text[], $11::text[], $12::text[],
                     $13::text[], $14::text[], $16::int[])
              AS u(order_id, amount, currency, status, authorization_id, reason, attempts, token,
                   token_key_id, cancel_reason, void_reason, cause_event_id, correlation_id,
                   traceparent, kafka_partition)
         ORDER BY 1
         ON CONFLICT (order_id) DO NOTHING",
    )
    .bind(c.order_id)
    .bind(c.amount)
    .bind(c.currency)
    .bind(c.status)
    .bind(c.authorization_id)
    .bind(c.reason)
    .bind(c.attempts)
    .bind(c.token)
    .bind(c.token_key_id)
    .bind(c.cancel_reason)
    .bind(c.void_reason)
    .bind(c.cause_event_id)
    .bind(c.correlation_id)
    .bind(c.traceparent)
    .bind(lease.as_secs_f64())
    .bind(partitions)
    .execute(conn)
    .await?
    .rows_affected();
    Ok(inserted == payments.len() as u64)
}

/// Writes locked payments' new state; one that now waits for another call
/// (a void) is leased for `lease` to this process, which makes it.
pub async fn update_payments(
    conn: &mut PgConnection,
    payments: &[&Payment],
    lease: Duration,
) -> Result<(), sqlx::Error> {
    if payments.is_empty() {
        return Ok(());
    }
    let c = Columns::of(payments);
    sqlx::query(
        "UPDATE payments AS p SET
             status = u.status, authorization_id = u.authorization_id, reason = u.reason,
             attempts = u.attempts, token = u.token, token_key_id = u.token_key_id,
             cancel_reason = u.cancel_reason, void_reason = u.void_reason,
             traceparent = u.traceparent,
             lease_until = CASE WHEN u.status = p.status THEN p.lease_until
                                WHEN u.status IN ('authorizing', 'voiding')
                                THEN now() + make_interval(secs => $11) END,
             updated_at = now()
         FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::int[], $6::text[],
                     $7::text[], $8::text[], $9::text[], $10::text[])
              AS u(order_id, status, authorization_id, reason, attempts, token, token_key_id,
                   cancel_reason, void_reason, traceparent)
         WHERE p.order_id = u.order_id",
    )
    .bind(c.order_id)
    .bind(c.status)
    .bind(c.authorization_id)
    .bind(c.reason)
    .bind(c.attempts)
    .bind(c.token)
    .bind(c.token_key_id)
    .bind(c.cancel_reason)
    .bind(c.void_reason)
    .bind(c.traceparent)
    .bind(lease.as_secs_f64())
    .execute(conn)
    .await?;
    Ok(())
}

/// Payments waiting for a call whose lease ran out (their process stopped
/// before recording the answer), leased anew to the caller.
pub async fn lease_unsettled(
    conn: &mut PgConnection,
    lease: Duration,
    limit: i64,
) -> Result<Vec<Payment>, sqlx::Error> {
    let rows: Vec<PaymentRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE payments SET lease_until = now() + make_interval(secs => $1)
         WHERE order_id IN (
             SELECT order_id FROM payments
             WHERE status IN ('authorizing', 'voiding')
               AND (lease_until IS NULL OR lease_until < now())
             ORDER BY order_id LIMIT $2
             FOR UPDATE SKIP LOCKED
         )
         RETURNING {COLUMNS}"
    )))
    .bind(lease.as_secs_f64())
    .bind(limit)
    .fetch_all(conn)
    .await?;
    rows.into_iter().map(payment).collect()
}

/// Sets the lease of `order_ids`' pending calls (`authorizing`, `voiding`)
/// to `lease` from now, or gives it up (`None`) so anyone takes them at once.
pub async fn renew_leases(
    conn: &mut PgConnection,
    order_ids: &[&str],
    lease: Option<Duration>,
) -> Result<(), sqlx::Error> {
    if order_ids.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "UPDATE payments
         SET lease_until = CASE WHEN $2::float8 IS NULL THEN NULL
                                ELSE now() + make_interval(secs => $2) END
         WHERE order_id = ANY($1) AND status IN ('authorizing', 'voiding')",
    )
    .bind(order_ids)
    .bind(lease.map(|lease| lease.as_secs_f64()))
    .execute(conn)
    .await?;
    Ok(())
}

/// Records that the orders were confirmed (their authorization stands for good).
pub async fn mark_confirmed(
    conn: &mut PgConnection,
    order_ids: &[&str],
) -> Result<(), sqlx::Error> {
    if order_ids.is_empty() {
        return Ok(());
    }
    sqlx::query("UPDATE payments SET order_confirmed = true WHERE order_id = ANY($1)")
        .bind(order_ids)
        .execute(conn)
        .await?;
    Ok(())
}

/// Turns authorizations asked for more than `after` ago, whose order was
/// never seen confirmed, into voids (`void_reason`), at most `limit`, only on
/// `partitions` (those consumed to the end); the void is made by whoever
/// takes the intent, at once (no lease). Returns their order ids.
pub async fn void_unconfirmed(
    conn: &mut PgConnection,
    after: Duration,
    partitions: &[i32],
    void_reason: &str,
    limit: i64,
) -> Result<Vec<String>, sqlx::Error> {
    if partitions.is_empty() {
        return Ok(Vec::new());
    }
    sqlx::query_scalar(
        "UPDATE payments SET status = 'voiding', void_reason = $3, lease_until = NULL,
                             updated_at = now()
         WHERE order_id IN (
             SELECT order_id FROM payments
             WHERE status = 'authorized' AND NOT order_confirmed
               AND created_at < now() - make_interval(secs => $1)
               AND kafka_partition = ANY($2)
             ORDER BY created_at LIMIT $4
             FOR UPDATE SKIP LOCKED
         )
         RETURNING order_id",
    )
    .bind(after.as_secs_f64())
    .bind(partitions)
    .bind(void_reason)
    .bind(limit)
    .fetch_all(conn)
    .await
}

#[derive(Default)]
struct Columns {
    order_id: Vec<String>,
    amount: Vec<Decimal>,
    currency: Vec<String>,
    status: Vec<&'static str>,
    authorization_id: Vec<Option<String>>,
    reason: Vec<Option<String>>,
    attempts: Vec<i32>,
    token: Vec<Option<String>>,
    token_key_id: Vec<Option<String>>,
    cancel_reason: Vec<Option<String>>,
    void_reason: Vec<Option<String>>,
    cause_event_id: Vec<Option<String>>,
    correlation_id: Vec<Option<String>>,
    traceparent: Vec<Option<String>>,
}

impl Columns {
    fn of(payments: &[&Payment]) -> Columns {
        let mut c = Columns::default();
        for p in payments {
            c.order_id.push(p.order_id.clone());
            c.amount.push(p.amount);
            c.currency.push(p.currency.clone());
            c.status.push(p.status.as_str());
            c.authorization_id.push(p.authorization_id.clone());
            c.reason.push(p.reason.clone());
            c.attempts.push(p.attempts);
            c.token.push(p.token.clone());
            c.token_key_id.push(p.token_key_id.clone());
            c.cancel_reason.push(p.cancel_reason.clone());
            c.void_reason.push(p.void_reason.clone());
            c.cause_event_id.push(p.cause_event_id.clone());
            c.correlation_id.push(p.correlation_id.clone());
            c.traceparent.push(p.traceparent.clone());
        }
        c
    }
}
