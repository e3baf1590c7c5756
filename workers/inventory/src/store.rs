//! The inventory's SQL, run on the consumer loop's transaction a batch at a
//! time. Every transaction locks the reservations it touches, then the
//! catalogue rows, each set in one statement in key order, so concurrent
//! batches (or replicas) queue instead of deadlocking; the stock moves are
//! computed on the locked rows and written back in one statement, and the
//! CHECK constraints refuse any negative counter whatever the code does.

use std::collections::HashMap;

use rust_decimal::Decimal;
use sqlx::PgConnection;
use sqlx::types::Json;

use crate::rules::{Reservation, ReservationLine, ReservationStatus};

#[cfg(test)]
mod tests;

/// A catalogue row, as locked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatalogueRow {
    pub name: String,
    pub unit_price: Decimal,
    pub available: i32,
    pub reserved: i32,
    pub sold: i32,
}

/// The reservations of `order_ids` that exist, locked until the transaction ends.
pub async fn lock_reservations(
    conn: &mut PgConnection,
    order_ids: &[&str],
) -> Result<HashMap<String, Reservation>, sqlx::Error> {
    if order_ids.is_empty() {
        return Ok(HashMap::new());
    }
    type Row = (String, String, Json<Vec<ReservationLine>>, Option<String>);
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT order_id, status, lines, reason FROM reservations
         WHERE order_id = ANY($1) ORDER BY order_id FOR UPDATE",
    )
    .bind(order_ids)
    .fetch_all(conn)
    .await?;
    rows.into_iter()
        .map(|(order_id, status, Json(lines), reason)| {
            let status = ReservationStatus::parse(&status).ok_or_else(|| {
                sqlx::Error::Decode(
                    format!("reservation {order_id} has unknown status {status:?}").into(),
                )
            })?;
            Ok((
                order_id,
                Reservation {
                    status,
                    lines,
                    reason,
                },
            ))
        })
        .collect()
}

/// The catalogue rows of `skus` that exist, locked in SKU order.
pub async fn lock_catalogue(
    conn: &mut PgConnection,
    skus: &[&str],
) -> Result<HashMap<String, CatalogueRow>, sqlx::Error> {
    if skus.is_empty() {
        return Ok(HashMap::new());
    }
    let rows: Vec<(String, String, Decimal, i32, i32, i32)> = sqlx::query_as(
        "SELECT sku, name, unit_price, available, reserved, sold FROM catalogue
         WHERE sku = ANY($1) ORDER BY sku FOR UPDATE",
    )
    .bind(skus)
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(sku, name, unit_price, available, reserved, sold)| {
            (
                sku,
                CatalogueRow {
                    name,
                    unit_price,
                    available,
                    reserved,
                    sold,
                },
            )
        })
        .collect())
}

/// Writes catalogue rows (locked, or new) with their final values.
pub async fn save_catalogue(
    conn: &mut PgConnection,
    rows: &[(&str, &CatalogueRow)],
) -> Result<(), sqlx::Error> {
    if rows.is_empty() {
        return Ok(());
    }
    let skus: Vec<&str> = rows.iter().map(|(sku, _)| *sku).collect();
    let names: Vec<&str> = rows.iter().map(|(_, r)| r.name.as_str()).collect();
    let prices: Vec<Decimal> = rows.iter().map(|(_, r)| r.unit_price).collect();
    let available: Vec<i32> = rows.iter().map(|(_, r)| r.available).collect();
    let reserved: Vec<i32> = rows.iter().map(|(_, r)| r.reserved).collect();
    let sold: Vec<i32> = rows.iter().map(|(_, r)| r.sold).collect();
    sqlx::query(
        "INSERT INTO catalogue AS c (sku, name, unit_price, available, reserved, sold)
         SELECT * FROM unnest($1::text[], $2::text[], $3::numeric[], $4::int[], $5::int[], $6::int[])
         ORDER BY 1
         ON CONFLICT (sku) DO UPDATE
         SET name = EXCLUDED.name, unit_price = EXCLUDED.unit_price,
             available = EXCLUDED.available, reserved = EXCLUDED.reserved,
             sold = EXCLUDED.sold, updated_at = now()",
    )
    .bind(skus)
    .bind(names)
    .bind(prices)
    .bind(available)
    .bind(reserved)
    .bind(sold)
    .execute(conn)
    .await?;
    Ok(())
}

/// Records new reservations; false if a concurrent transaction recorded one
/// of them first (then nothing of this transaction may stand: retry).
pub async fn insert_reservations(
    conn: &mut PgConnection,
    rows: &[(&str, &Reservation)],
) -> Result<bool, sqlx::Error> {
    if rows.is_empty() {
        return Ok(true);
    }
    let (ids, statuses, lines, reasons) = columns(rows);
    let inserted = sqlx::query(
        "INSERT INTO reservations (order_id, status, lines, reason)
         SELECT o, s, l::jsonb, r FROM unnest($1::text[], $2::text[], $3::text[], $4::text[]) AS u(o, s, l, r)
         ORDER BY o
         ON CONFLICT (order_id) DO NOTHING",
    )
    .bind(ids)
    .bind(statuses)
    .bind(lines)
    .bind(reasons)
    .execute(conn)
    .await?
    .rows_affected();
    Ok(inserted == rows.len() as u64)
}

/// Writes reservations' new state (their rows are locked by [`lock_reservations`]).
pub async fn update_reservations(
    conn: &mut PgConnection,
    rows: &[(&str, &Reservation)],
) -> Result<(), sqlx::Error> {
    if rows.is_empty() {
        return Ok(());
    }
    let (ids, statuses, lines, reasons) = columns(rows);
    sqlx::query(
        "UPDATE reservations AS r
         SET status = u.s, lines = u.l::jsonb, reason = u.r, updated_at = now()
         FROM unnest($1::text[], $2::text[], $3::text[], $4::text[]) AS u(o, s, l, r)
         WHERE r.order_id = u.o",
    )
    .bind(ids)
    .bind(statuses)
    .bind(lines)
    .bind(reasons)
    .execute(conn)
    .await?;
    Ok(())
}

type ReservationColumns<'a> = (
    Vec<&'a str>,
    Vec<&'static str>,
    Vec<String>,
    Vec<Option<&'a str>>,
);

fn columns<'a>(rows: &[(&'a str, &'a Reservation)]) -> ReservationColumns<'a> {
    (
        rows.iter().map(|(id, _)| *id).collect(),
        rows.iter().map(|(_, r)| r.status.as_str()).collect(),
        rows.iter()
            .map(|(_, r)| serde_json::to_string(&r.lines).expect("lines serialize"))
            .collect(),
        rows.iter().map(|(_, r)| r.reason.as_deref()).collect(),
    )
}
