//! The outbox: emitted events are written, already encoded, in the
//! transaction that caused them, and leave for Kafka only after it commits.
//! A row is marked sent after its delivery report; the relay re-publishes
//! whatever a crash left unsent. Event ids are deterministic, so a re-publish
//! is a duplicate downstream, never a second effect.

use std::collections::BTreeMap;
use std::time::Duration;

use rdkafka::producer::FutureProducer;
use sqlx::{PgConnection, PgPool};

/// One event waiting in the outbox.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct OutboxRow {
    pub id: i64,
    pub topic: String,
    pub key: String,
    pub payload: Vec<u8>,
    pub headers: sqlx::types::Json<BTreeMap<String, String>>,
}

/// A new row to write.
#[derive(Debug, Clone)]
pub struct NewOutboxRow {
    pub event_id: String,
    pub topic: String,
    pub key: String,
    pub payload: Vec<u8>,
    pub headers: BTreeMap<String, String>,
}

/// Writes rows and returns them with their ids. A row whose event id is
/// already in the outbox (the same cause processed again) is not written twice.
pub async fn write(
    conn: &mut PgConnection,
    rows: Vec<NewOutboxRow>,
) -> Result<Vec<OutboxRow>, sqlx::Error> {
    let mut written = Vec::with_capacity(rows.len());
    for row in rows {
        let id: Option<i64> = sqlx::query_scalar(
            "INSERT INTO outbox (event_id, topic, key, payload, headers)
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (event_id) DO NOTHING RETURNING id",
        )
        .bind(&row.event_id)
        .bind(&row.topic)
        .bind(&row.key)
        .bind(&row.payload)
        .bind(sqlx::types::Json(&row.headers))
        .fetch_optional(&mut *conn)
        .await?;
        if let Some(id) = id {
            written.push(OutboxRow {
                id,
                topic: row.topic,
                key: row.key,
                payload: row.payload,
                headers: sqlx::types::Json(row.headers),
            });
        }
    }
    Ok(written)
}

/// Publishes rows (in order), awaiting every delivery report.
pub async fn publish(
    producer: &FutureProducer,
    rows: &[OutboxRow],
    timeout: Duration,
) -> anyhow::Result<()> {
    let deliveries: Vec<_> = rows
        .iter()
        .map(|row| producer.send(crate::delivery::record(row), timeout))
        .collect();
    for delivery in futures::future::join_all(deliveries).await {
        delivery.map_err(|(e, _)| anyhow::anyhow!("publishing from the outbox: {e}"))?;
    }
    Ok(())
}

/// Marks published rows sent.
pub async fn mark_sent(conn: &mut PgConnection, rows: &[OutboxRow]) -> Result<(), sqlx::Error> {
    let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
    sqlx::query("UPDATE outbox SET sent_at = now() WHERE id = ANY($1)")
        .bind(&ids)
        .execute(conn)
        .await?;
    Ok(())
}

/// Rows left unsent for longer than `min_age` (their publisher crashed or failed).
pub async fn claim_stale(
    conn: &mut PgConnection,
    min_age: Duration,
    limit: i64,
) -> Result<Vec<OutboxRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, topic, key, payload, headers FROM outbox
         WHERE sent_at IS NULL AND created_at < now() - make_interval(secs => $1)
         ORDER BY id LIMIT $2 FOR UPDATE SKIP LOCKED",
    )
    .bind(min_age.as_secs_f64())
    .bind(limit)
    .fetch_all(conn)
    .await
}

/// How many rows wait to be published.
pub async fn backlog(pool: &PgPool) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT count(*) FROM outbox WHERE sent_at IS NULL")
        .fetch_one(pool)
        .await
}

/// Deletes sent rows older than `age`, keeping the table small.
pub async fn prune(pool: &PgPool, age: Duration) -> Result<u64, sqlx::Error> {
    Ok(sqlx::query(
        "DELETE FROM outbox WHERE sent_at IS NOT NULL AND sent_at < now() - make_interval(secs => $1)",
    )
    .bind(age.as_secs_f64())
    .execute(pool)
    .await?
    .rows_affected())
}
