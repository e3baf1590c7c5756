//! What a saga costs the infrastructure, measured rather than guessed:
//! messages appended to the chorus topics (the sum of their high watermarks)
//! transactions committed in the chorus databases (`pg_stat_database`) and,
//! where the stack loads `pg_stat_statements`, the statements they executed,
//! read once the system has settled before and after a run.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::Context;
use chorus_platform::KafkaSettings;
use rdkafka::consumer::{BaseConsumer, Consumer};
use sqlx::Connection;
use sqlx::postgres::PgConnection;

/// The sum of the high watermarks of every partition, per topic of `topics`
/// (missing topics are left out).
pub async fn kafka_messages(
    kafka: &KafkaSettings,
    topics: Vec<String>,
    timeout: Duration,
) -> anyhow::Result<BTreeMap<String, i64>> {
    let kafka = kafka.clone();
    tokio::task::spawn_blocking(move || -> anyhow::Result<BTreeMap<String, i64>> {
        let consumer: BaseConsumer = kafka.client_config().create()?;
        let metadata = consumer
            .fetch_metadata(None, timeout)
            .with_context(|| format!("Kafka at {} is unreachable", kafka.brokers))?;
        let mut totals = BTreeMap::new();
        for topic in metadata.topics() {
            if !topics.iter().any(|t| t == topic.name()) {
                continue;
            }
            for partition in topic.partitions() {
                let (_, high) = consumer
                    .fetch_watermarks(topic.name(), partition.id(), timeout)
                    .with_context(|| {
                        format!("reading offsets of {}/{}", topic.name(), partition.id())
                    })?;
                *totals.entry(topic.name().to_string()).or_insert(0) += high;
            }
        }
        Ok(totals)
    })
    .await?
}

/// Waits until the sum of high watermarks stops moving (no saga step left to
/// publish) for `quiet`, at most `limit`; returns the last reading.
pub async fn kafka_settled(
    kafka: &KafkaSettings,
    topics: &[String],
    timeout: Duration,
    quiet: Duration,
    limit: Duration,
) -> anyhow::Result<BTreeMap<String, i64>> {
    let started = Instant::now();
    let mut last = kafka_messages(kafka, topics.to_vec(), timeout).await?;
    let mut stable_since = Instant::now();
    while started.elapsed() < limit {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let now = kafka_messages(kafka, topics.to_vec(), timeout).await?;
        if now != last {
            last = now;
            stable_since = Instant::now();
        } else if stable_since.elapsed() >= quiet {
            break;
        }
    }
    Ok(last)
}

/// Reads committed transactions, summed over the databases matching `like`.
pub struct PgCounter {
    conn: PgConnection,
    like: String,
}

impl PgCounter {
    pub async fn connect(url: &str, like: &str) -> anyhow::Result<PgCounter> {
        let conn = PgConnection::connect(url)
            .await
            .context("connecting to PostgreSQL to read pg_stat_database (--pg-url)")?;
        Ok(PgCounter {
            conn,
            like: like.to_string(),
        })
    }

    /// The current `xact_commit` of each database. Backends flush their
    /// counters at most once a second, so read it a moment after the activity stopped.
    pub async fn commits(&mut self) -> anyhow::Result<BTreeMap<String, i64>> {
        let rows: Vec<(String, i64)> = sqlx::query_as(
            "SELECT datname::text, xact_commit FROM pg_stat_database WHERE datname LIKE $1",
        )
        .bind(&self.like)
        .fetch_all(&mut self.conn)
        .await
        .context("reading pg_stat_database")?;
        Ok(rows.into_iter().collect())
    }

    /// The statements executed so far in each database (`BEGIN` and `COMMIT`
    /// included), or `None` unless `pg_stat_statements` is loaded and
    /// installed in the database of the URL (the native stack does both; its
    /// admin role reads every role's counts through `pg_read_all_stats`).
    pub async fn statements(&mut self) -> anyhow::Result<Option<BTreeMap<String, i64>>> {
        let installed: bool =
            sqlx::query_scalar("SELECT to_regclass('pg_stat_statements') IS NOT NULL")
                .fetch_one(&mut self.conn)
                .await
                .context("looking for pg_stat_statements")?;
        if !installed {
            return Ok(None);
        }
        let rows: Vec<(String, i64)> = match sqlx::query_as(
            "SELECT d.datname::text, sum(s.calls)::bigint \
             FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid \
             WHERE d.datname LIKE $1 GROUP BY d.datname",
        )
        .bind(&self.like)
        .fetch_all(&mut self.conn)
        .await
        {
            Ok(rows) => rows,
            // Installed but not in shared_preload_libraries: nothing counts.
            Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("55000") => {
                return Ok(None);
            }
            Err(e) => return Err(e).context("reading pg_stat_statements"),
        };
        Ok(Some(rows.into_iter().collect()))
    }
}

/// The cost counters at one moment.
pub struct Counts {
    pub kafka: BTreeMap<String, i64>,
    pub pg: Option<BTreeMap<String, i64>>,
    pub pg_statements: Option<BTreeMap<String, i64>>,
    pub at: Instant,
}

pub struct CostProbe {
    pub kafka: KafkaSettings,
    pub topics: Vec<String>,
    pub timeout: Duration,
    pub pg: Option<PgCounter>,
}

impl CostProbe {
    /// Waits until no saga step is left to publish, then reads both counters
    /// (PostgreSQL a moment later: backends flush their statistics at most once a second).
    pub async fn settled(&mut self, quiet: Duration) -> anyhow::Result<Counts> {
        let kafka = kafka_settled(
            &self.kafka,
            &self.topics,
            self.timeout,
            quiet,
            Duration::from_secs(60),
        )
        .await?;
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let (pg, pg_statements) = match &mut self.pg {
            Some(pg) => (Some(pg.commits().await?), pg.statements().await?),
            None => (None, None),
        };
        Ok(Counts {
            kafka,
            pg,
            pg_statements,
            at: Instant::now(),
        })
    }
}
