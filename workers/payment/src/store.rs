//! The `payments` table: one row per order, ever, written in the handler's
//! transaction together with the event it caused.

use rust_decimal::Decimal;
use sqlx::PgConnection;

use crate::rules::{Charge, PaymentOutcome};

/// What happened to an order's payment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentRecord {
    pub order_id: String,
    pub amount: Decimal,
    pub currency: String,
    /// `authorized`, `declined` or `unavailable`.
    pub status: String,
    pub authorization_id: Option<String>,
    pub reason: Option<String>,
    pub attempts: i32,
}

impl PaymentRecord {
    pub fn new(order_id: &str, amount: Decimal, currency: &str, charge: &Charge) -> PaymentRecord {
        let (status, authorization_id, reason) = match &charge.outcome {
            PaymentOutcome::Authorized { authorization_id } => {
                ("authorized", Some(authorization_id.clone()), None)
            }
            PaymentOutcome::Declined { detail } => ("declined", None, Some(detail.clone())),
            PaymentOutcome::Unavailable { detail } => ("unavailable", None, Some(detail.clone())),
        };
        PaymentRecord {
            order_id: order_id.to_string(),
            amount,
            currency: currency.to_string(),
            status: status.to_string(),
            authorization_id,
            reason,
            attempts: i32::try_from(charge.attempts).unwrap_or(i32::MAX),
        }
    }
}

type PaymentRow = (
    String,
    Decimal,
    String,
    String,
    Option<String>,
    Option<String>,
    i32,
);

pub async fn find_payment(
    conn: &mut PgConnection,
    order_id: &str,
) -> Result<Option<PaymentRecord>, sqlx::Error> {
    let row: Option<PaymentRow> = sqlx::query_as(
        "SELECT order_id, amount, currency, status, authorization_id, reason, attempts
         FROM payments WHERE order_id = $1",
    )
    .bind(order_id)
    .fetch_optional(conn)
    .await?;
    Ok(row.map(
        |(order_id, amount, currency, status, authorization_id, reason, attempts)| PaymentRecord {
            order_id,
            amount,
            currency,
            status,
            authorization_id,
            reason,
            attempts,
        },
    ))
}

/// Records the order's payment; `false` when the order already had one (then
/// nothing is written and nothing new may be emitted).
pub async fn record_payment(
    conn: &mut PgConnection,
    record: &PaymentRecord,
) -> Result<bool, sqlx::Error> {
    let inserted = sqlx::query(
        "INSERT INTO payments
             (order_id, amount, currency, status, authorization_id, reason, attempts)
         VALUES ($1, $2, $3, $4, $5, $6, $7)
         ON CONFLICT (order_id) DO NOTHING",
    )
    .bind(&record.order_id)
    .bind(record.amount)
    .bind(&record.currency)
    .bind(&record.status)
    .bind(&record.authorization_id)
    .bind(&record.reason)
    .bind(record.attempts)
    .execute(conn)
    .await?
    .rows_affected();
    Ok(inserted == 1)
}
