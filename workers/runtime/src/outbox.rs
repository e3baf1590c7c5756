//! The outbox: emitted events are written, already encoded, in the
//! transaction that caused them, and leave for Kafka only after it commits.
//! A row is marked sent after its delivery report, in the next transaction
//! its worker commits anyway (see [`crate::outbox_publisher`]); the
//! republisher publishes again whatever a crash left unsent. Event ids are deterministic, so a re-publish
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

/// Writes rows in one statement and returns those written, with their ids,
/// in the order given (ids grow in that order, which is the publishing
/// order). A row whose event id is already in the outbox (the same cause
/// processed again) is not written twice.
pub async fn write(
    conn: &mut PgConnection,
    rows: Vec<NewOutboxRow>,
) -> Result<Vec<OutboxRow>, sqlx::Error> {
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let event_ids: Vec<&str> = rows.iter().map(|r| r.event_id.as_str()).collect();
    let topics: Vec<&str> = rows.iter().map(|r| r.topic.as_str()).collect();
    let keys: Vec<&str> = rows.iter().map(|r| r.key.as_str()).collect();
    let payloads: Vec<&[u8]> = rows.iter().map(|r| r.payload.as_slice()).collect();
    let headers: Vec<String> = rows
        .iter()
        .map(|r| serde_json::to_string(&r.headers).expect("string headers serialize"))
        .collect();
    let written: Vec<(i64, String)> = sqlx::query_as(
        "INSERT INTO outbox (event_id, topic, key, payload, headers)
         SELECT e, t, k, p, h::jsonb
         FROM unnest($1::text[], $2::text[], $3::text[], $4::bytea[], $5::text[])
              WITH ORDINALITY AS r(e, t, k, p, h, n)
         ORDER BY n
         ON CONFLICT (event_id) DO NOTHING
         RETURNING id, event_id",
    )
    .bind(&event_ids)
    .bind(&topics)
    .bind(&keys)
    .bind(&payloads)
    .bind(&headers)
    .fetch_all(conn)
    .await?;
    let ids: std::collections::HashMap<String, i64> = written
        .into_iter()
        .map(|(id, event_id)| (event_id, id))
        .collect();
    Ok(rows
        .into_iter()
        .filter_map(|row| {
            let id = *ids.get(&row.event_id)?;
            Some(OutboxRow {
                id,
                topic: row.topic,
                key: row.key,
                payload: row.payload,
                headers: sqlx::types::Json(row.headers),
            })
        })
        .collect())
}

/// Publishes rows (in order), awaiting every delivery report.
pub async fn publish(
    producer: &FutureProducer,
    rows: &[OutboxRow],
    timeout: Duration,
) -> anyhow::Result<()> {
    let deliveries: Vec<_> = rows
        .iter()
        .map(|row| producer.send(crate::outbox_publisher::record(row), timeout))
        .collect();
    for delivery in futures::future::join_all(deliveries).await {
        delivery.map_err(|(e, _)| anyhow::anyhow!("publishing from the outbox: {e}"))?;
    }
    Ok(())
}

/// Marks published rows sent, by id, on `conn` (a pool, or a transaction
/// the marks ride in).
pub async fn mark_sent<'e>(
    conn: impl sqlx::PgExecutor<'e>,
    ids: &[i64],
) -> Result<(), sqlx::Error> {
    if ids.is_empty() {
        return Ok(());
    }
    sqlx::query("UPDATE outbox SET sent_at = now() WHERE id = ANY($1)")
        .bind(ids)
        .execute(conn)
        .await?;
    Ok(())
}

/// Leases rows left unsent for longer than `min_age` (their publisher
/// crashed or failed) and not leased in the last `lease`, oldest first; the
/// statement commits on its own, so no transaction stays open while they go
/// to Kafka.
pub async fn lease_stale(
    pool: &PgPool,
    min_age: Duration,
    lease: Duration,
    limit: i64,
) -> Result<Vec<OutboxRow>, sqlx::Error> {
    sqlx::query_as(
        "UPDATE outbox SET relayed_at = now()
         WHERE id IN (
             SELECT id FROM outbox
             WHERE sent_at IS NULL AND created_at < now() - make_interval(secs => $1)
               AND (relayed_at IS NULL OR relayed_at < now() - make_interval(secs => $2))
             ORDER BY id LIMIT $3
             FOR UPDATE SKIP LOCKED
         )
         RETURNING id, topic, key, payload, headers",
    )
    .bind(min_age.as_secs_f64())
    .bind(lease.as_secs_f64())
    .bind(limit)
    .fetch_all(pool)
    .await
    .map(|mut rows: Vec<OutboxRow>| {
        rows.sort_by_key(|r| r.id);
        rows
    })
}

/// How many rows wait to be published, and the age in seconds of the oldest.
pub async fn backlog(pool: &PgPool) -> Result<(i64, f64), sqlx::Error> {
    sqlx::query_as(
        "SELECT count(*), COALESCE(EXTRACT(EPOCH FROM now() - min(created_at)), 0)::float8
         FROM outbox WHERE sent_at IS NULL",
    )
    .fetch_one(pool)
    .await
}

/// Deletes at most `batch` sent rows older than `age`; returns how many.
pub async fn prune(pool: &PgPool, age: Duration, batch: i64) -> Result<u64, sqlx::Error> {
    Ok(sqlx::query(
        "DELETE FROM outbox WHERE id IN (
             SELECT id FROM outbox
             WHERE sent_at IS NOT NULL AND sent_at < now() - make_interval(secs => $1)
             ORDER BY id LIMIT $2
         )",
    )
    .bind(age.as_secs_f64())
    .bind(batch)
    .execute(pool)
    .await?
    .rows_affected())
}
