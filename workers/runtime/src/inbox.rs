//! The inbox: one row per consumed event id, written in the same transaction
//! as the event's effects, so an event redelivered after a crash (or redriven
//! from a dead-letter topic) is recognised and skipped. Rows older than the
//! retention (`CHORUS_INBOX_RETENTION_HOURS`) are pruned in small batches:
//! that is the dedup window, which must exceed how long Kafka may redeliver.

use std::collections::HashSet;
use std::time::Duration;

use sqlx::{PgConnection, PgPool};

/// One consumed event to record.
pub struct InboxEntry<'a> {
    pub event_id: &'a str,
    pub topic: &'a str,
    pub partition: i32,
    pub offset: i64,
}

/// Records the entries in one statement; returns the event ids that were new
/// (the others were recorded before: duplicates). A concurrent transaction
/// recording the same id makes this one wait for it, then see a duplicate.
pub async fn record(
    conn: &mut PgConnection,
    entries: &[InboxEntry<'_>],
) -> Result<HashSet<String>, sqlx::Error> {
    if entries.is_empty() {
        return Ok(HashSet::new());
    }
    let ids: Vec<&str> = entries.iter().map(|e| e.event_id).collect();
    let topics: Vec<&str> = entries.iter().map(|e| e.topic).collect();
    let partitions: Vec<i32> = entries.iter().map(|e| e.partition).collect();
    let offsets: Vec<i64> = entries.iter().map(|e| e.offset).collect();
    let fresh: Vec<String> = sqlx::query_scalar(
        "INSERT INTO inbox (event_id, topic, kafka_partition, kafka_offset)
         SELECT * FROM unnest($1::text[], $2::text[], $3::int[], $4::bigint[])
         ORDER BY 1
         ON CONFLICT (event_id) DO NOTHING
         RETURNING event_id",
    )
    .bind(ids)
    .bind(topics)
    .bind(partitions)
    .bind(offsets)
    .fetch_all(conn)
    .await?;
    Ok(fresh.into_iter().collect())
}

/// Forgets events (rejected ones, or causes whose effect failed for good), so
/// that a redrive of them is applied rather than skipped.
pub async fn forget(conn: &mut PgConnection, event_ids: &[&str]) -> Result<(), sqlx::Error> {
    if event_ids.is_empty() {
        return Ok(());
    }
    sqlx::query("DELETE FROM inbox WHERE event_id = ANY($1)")
        .bind(event_ids)
        .execute(conn)
        .await?;
    Ok(())
}

/// Deletes at most `batch` rows older than `retention`; returns how many.
pub async fn prune(pool: &PgPool, retention: Duration, batch: i64) -> Result<u64, sqlx::Error> {
    Ok(sqlx::query(
        "DELETE FROM inbox WHERE event_id IN (
             SELECT event_id FROM inbox
             WHERE processed_at < now() - make_interval(secs => $1)
             LIMIT $2
         )",
    )
    .bind(retention.as_secs_f64())
    .bind(batch)
    .execute(pool)
    .await?
    .rows_affected())
}
