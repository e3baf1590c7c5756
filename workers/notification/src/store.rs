//! The `deliveries` table: one row per order, final state and channel, in the
//! handler's transaction. Claiming the row before sending also serialises two
//! handlers racing for the same delivery: the second waits on the key, then
//! finds it taken.

use sqlx::PgConnection;
use uuid::Uuid;

use crate::rules::{Channel, FinalStatus};

/// A recorded delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub delivery_id: Uuid,
    pub attempts: i32,
    pub delivered_at: chrono::DateTime<chrono::Utc>,
}

/// Claims the delivery; `false` when it is already recorded (delivered).
pub async fn claim_delivery(
    conn: &mut PgConnection,
    order_id: &str,
    final_status: FinalStatus,
    channel: Channel,
    delivery_id: Uuid,
) -> Result<bool, sqlx::Error> {
    let claimed = sqlx::query(
        "INSERT INTO deliveries (order_id, final_status, channel, delivery_id)
         VALUES ($1, $2, $3, $4)
         ON CONFLICT (order_id, final_status, channel) DO NOTHING",
    )
    .bind(order_id)
    .bind(final_status.as_str())
    .bind(channel.as_str())
    .bind(delivery_id)
    .execute(conn)
    .await?
    .rows_affected();
    Ok(claimed == 1)
}

/// Completes a claimed delivery after the channel accepted it.
pub async fn mark_delivered(
    conn: &mut PgConnection,
    order_id: &str,
    final_status: FinalStatus,
    channel: Channel,
    attempts: u32,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE deliveries SET attempts = $4, delivered_at = now()
         WHERE order_id = $1 AND final_status = $2 AND channel = $3",
    )
    .bind(order_id)
    .bind(final_status.as_str())
    .bind(channel.as_str())
    .bind(i32::try_from(attempts).unwrap_or(i32::MAX))
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn find_delivery(
    conn: &mut PgConnection,
    order_id: &str,
    final_status: FinalStatus,
    channel: Channel,
) -> Result<Option<Delivery>, sqlx::Error> {
    let row: Option<(Uuid, i32, chrono::DateTime<chrono::Utc>)> = sqlx::query_as(
        "SELECT delivery_id, attempts, delivered_at FROM deliveries
         WHERE order_id = $1 AND final_status = $2 AND channel = $3",
    )
    .bind(order_id)
    .bind(final_status.as_str())
    .bind(channel.as_str())
    .fetch_optional(conn)
    .await?;
    Ok(row.map(|(delivery_id, attempts, delivered_at)| Delivery {
        delivery_id,
        attempts,
        delivered_at,
    }))
}
