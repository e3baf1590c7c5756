//! The inbox: one row per consumed event id, written in the same transaction
//! as the event's effects, so an event redelivered after a crash is
//! recognised and skipped.

use sqlx::PgConnection;

/// Records `event_id`; false when it was already recorded (a duplicate).
pub async fn record(
    conn: &mut PgConnection,
    event_id: &str,
    topic: &str,
    partition: i32,
    offset: i64,
) -> Result<bool, sqlx::Error> {
    let inserted = sqlx::query(
        "INSERT INTO inbox (event_id, topic, kafka_partition, kafka_offset)
         VALUES ($1, $2, $3, $4) ON CONFLICT (event_id) DO NOTHING",
    )
    .bind(event_id)
    .bind(topic)
    .bind(partition)
    .bind(offset)
    .execute(conn)
    .await?
    .rows_affected();
    Ok(inserted == 1)
}
