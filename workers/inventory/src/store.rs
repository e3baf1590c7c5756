//! The inventory's SQL. Every function runs on the consumer loop's
//! transaction; catalogue rows are always locked in SKU order, so concurrent
//! orders for the same SKUs queue instead of deadlocking.

use chorus_avro::StockAdjusted;
use sqlx::PgConnection;
use sqlx::types::Json;

use crate::rules::{Reservation, ReservationLine, ReservationStatus, StockLevel, StockMove};

#[cfg(test)]
mod tests;

/// Sets a SKU's name, price and available units; reserved and sold stay as they are.
pub async fn upsert_stock(
    conn: &mut PgConnection,
    adjusted: &StockAdjusted,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO catalogue (sku, name, unit_price, available) VALUES ($1, $2, $3, $4)
         ON CONFLICT (sku) DO UPDATE
         SET name = EXCLUDED.name, unit_price = EXCLUDED.unit_price,
             available = EXCLUDED.available, updated_at = now()",
    )
    .bind(&adjusted.sku)
    .bind(&adjusted.name)
    .bind(adjusted.unit_price)
    .bind(adjusted.available)
    .execute(conn)
    .await?;
    Ok(())
}

/// Locks the catalogue rows of `skus` in SKU order and returns those that exist.
pub async fn lock_stock(
    conn: &mut PgConnection,
    skus: &[String],
) -> Result<Vec<StockLevel>, sqlx::Error> {
    let rows: Vec<(String, rust_decimal::Decimal, i32)> = sqlx::query_as(
        "SELECT sku, unit_price, available FROM catalogue
         WHERE sku = ANY($1) ORDER BY sku FOR UPDATE",
    )
    .bind(skus)
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(sku, unit_price, available)| StockLevel {
            sku,
            unit_price,
            available,
        })
        .collect())
}

/// Moves units between the counters of (already locked) rows; returns how
/// many rows it changed. The CHECK constraints refuse any negative counter.
pub async fn apply_moves(conn: &mut PgConnection, moves: &[StockMove]) -> Result<u64, sqlx::Error> {
    let skus: Vec<&str> = moves.iter().map(|m| m.sku.as_str()).collect();
    let available: Vec<i32> = moves.iter().map(|m| m.available).collect();
    let reserved: Vec<i32> = moves.iter().map(|m| m.reserved).collect();
    let sold: Vec<i32> = moves.iter().map(|m| m.sold).collect();
    let result = sqlx::query(
        "UPDATE catalogue AS c
         SET available = c.available + m.available,
             reserved = c.reserved + m.reserved,
             sold = c.sold + m.sold,
             updated_at = now()
         FROM unnest($1::text[], $2::int[], $3::int[], $4::int[]) AS m(sku, available, reserved, sold)
         WHERE c.sku = m.sku",
    )
    .bind(skus)
    .bind(available)
    .bind(reserved)
    .bind(sold)
    .execute(conn)
    .await?;
    Ok(result.rows_affected())
}

/// Whether the inventory has already answered this order.
pub async fn reservation_exists(
    conn: &mut PgConnection,
    order_id: &str,
) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar("SELECT EXISTS (SELECT FROM reservations WHERE order_id = $1)")
        .bind(order_id)
        .fetch_one(conn)
        .await
}

/// The order's reservation, locked until the transaction ends.
pub async fn lock_reservation(
    conn: &mut PgConnection,
    order_id: &str,
) -> Result<Option<Reservation>, sqlx::Error> {
    let row: Option<(String, Json<Vec<ReservationLine>>, Option<String>)> = sqlx::query_as(
        "SELECT status, lines, reason FROM reservations WHERE order_id = $1 FOR UPDATE",
    )
    .bind(order_id)
    .fetch_optional(conn)
    .await?;
    row.map(|(status, Json(lines), reason)| {
        let status = ReservationStatus::parse(&status).ok_or_else(|| {
            sqlx::Error::Decode(
                format!("reservation {order_id} has unknown status {status:?}").into(),
            )
        })?;
        Ok(Reservation {
            status,
            lines,
            reason,
        })
    })
    .transpose()
}

/// Records the answer to an order; false if a concurrent transaction recorded one first.
pub async fn insert_reservation(
    conn: &mut PgConnection,
    order_id: &str,
    reservation: &Reservation,
) -> Result<bool, sqlx::Error> {
    let result = sqlx::query(
        "INSERT INTO reservations (order_id, status, lines, reason) VALUES ($1, $2, $3, $4)
         ON CONFLICT (order_id) DO NOTHING",
    )
    .bind(order_id)
    .bind(reservation.status.as_str())
    .bind(Json(&reservation.lines))
    .bind(&reservation.reason)
    .execute(conn)
    .await?;
    Ok(result.rows_affected() == 1)
}

/// Writes a reservation's new state (its row is locked by [`lock_reservation`]).
pub async fn update_reservation(
    conn: &mut PgConnection,
    order_id: &str,
    reservation: &Reservation,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE reservations SET status = $2, lines = $3, reason = $4, updated_at = now()
         WHERE order_id = $1",
    )
    .bind(order_id)
    .bind(reservation.status.as_str())
    .bind(Json(&reservation.lines))
    .bind(&reservation.reason)
    .execute(conn)
    .await?;
    Ok(())
}
