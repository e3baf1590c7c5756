//! What a saga costs the infrastructure, measured rather than guessed:
//! messages appended to the chorus topics (the sum of their high watermarks)
//! transactions committed in the chorus databases (`pg_stat_database`), the
//! cluster's transaction-id counter (every transaction that wrote takes one
//! id) and, where the stack loads `pg_stat_statements`, the statements they
//! executed, read once the system has settled before and after a run.
//! `super::pg_split` turns two readings into write commits and reads.

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

/// Databases the integration tests create on the same cluster
/// (`chorus_test_<uuid>`): never the services', so never counted as theirs.
const TEST_DATABASES: &str = "chorus\\_test\\_%";

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
            "SELECT datname::text, xact_commit FROM pg_stat_database \
             WHERE datname LIKE $1 AND datname NOT LIKE $2",
        )
        .bind(&self.like)
        .bind(TEST_DATABASES)
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
             WHERE d.datname LIKE $1 AND d.datname NOT LIKE $2 GROUP BY d.datname",
        )
        .bind(&self.like)
        .bind(TEST_DATABASES)
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

    /// The cluster's next transaction id, the rolled-back transactions of
    /// the counted databases, and every other database's transactions (but
    /// the probe's own): what `super::pg_split` needs besides the commits.
    pub async fn transaction_ids(&mut self) -> anyhow::Result<PgTransactionIds> {
        // pg_current_snapshot() takes no transaction id of its own.
        let next_xid: i64 =
            sqlx::query_scalar("SELECT pg_snapshot_xmax(pg_current_snapshot())::text::bigint")
                .fetch_one(&mut self.conn)
                .await
                .context("reading the transaction-id counter")?;
        let rollbacks: i64 = sqlx::query_scalar(
            "SELECT coalesce(sum(xact_rollback), 0)::bigint FROM pg_stat_database \
             WHERE datname LIKE $1 AND datname NOT LIKE $2",
        )
        .bind(&self.like)
        .bind(TEST_DATABASES)
        .fetch_one(&mut self.conn)
        .await
        .context("reading pg_stat_database")?;
        let others: Vec<(String, i64)> = sqlx::query_as(
            "SELECT datname::text, (xact_commit + xact_rollback)::bigint FROM pg_stat_database \
             WHERE datname IS NOT NULL AND datname <> current_database() \
             AND NOT (datname LIKE $1 AND datname NOT LIKE $2)",
        )
        .bind(&self.like)
        .bind(TEST_DATABASES)
        .fetch_all(&mut self.conn)
        .await
        .context("reading pg_stat_database")?;
        Ok(PgTransactionIds {
            next_xid,
            rollbacks,
            others: others.into_iter().collect(),
        })
    }

    /// The payment sandbox's statements (it stands for an outside provider,
    /// so its cost is reported apart), and every statement by database and
    /// role. Ask only once `statements` found `pg_stat_statements` usable.
    pub async fn statement_detail(&mut self) -> anyhow::Result<PgStatementDetail> {
        // The sandbox's statements name its tables. It records the calls
        // that arrive together in one transaction, and every such
        // transaction records its calls with one `INSERT INTO
        // sandbox_calls`: those statements are its write commits. Its
        // batch's read-back (`= ANY(...)`) runs inside that transaction;
        // any other read of its tables is a transaction of its own.
        let (sandbox_writes, sandbox_reads): (i64, i64) = sqlx::query_as(
            "SELECT coalesce(sum(s.calls) FILTER (WHERE s.query ~* '\\minsert\\s+into\\s+sandbox_calls\\M'), 0)::bigint, \
                    coalesce(sum(s.calls) FILTER (WHERE s.query !~* '\\m(insert|update|delete)\\M' \
                                                  AND s.query !~* '=\\s*any\\s*\\('), 0)::bigint \
             FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid \
             WHERE d.datname LIKE $1 AND d.datname NOT LIKE $2 \
             AND s.query ~* '\\msandbox_(calls|charges)\\M'",
        )
        .bind(&self.like)
        .bind(TEST_DATABASES)
        .fetch_one(&mut self.conn)
        .await
        .context("reading pg_stat_statements")?;
        let by_role: Vec<(String, i64)> = sqlx::query_as(
            "SELECT d.datname || '/' || coalesce(r.rolname, s.userid::text), sum(s.calls)::bigint \
             FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid \
             LEFT JOIN pg_roles r ON r.oid = s.userid \
             WHERE d.datname LIKE $1 AND d.datname NOT LIKE $2 GROUP BY 1",
        )
        .bind(&self.like)
        .bind(TEST_DATABASES)
        .fetch_all(&mut self.conn)
        .await
        .context("reading pg_stat_statements")?;
        Ok(PgStatementDetail {
            sandbox_writes,
            sandbox_reads,
            by_role: by_role.into_iter().collect(),
        })
    }
}

/// What the transaction-id counter and `pg_stat_database` say besides commits.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PgTransactionIds {
    /// `pg_snapshot_xmax(pg_current_snapshot())`: the next id to be taken.
    pub next_xid: i64,
    /// `xact_rollback` summed over the counted databases.
    pub rollbacks: i64,
    /// `xact_commit + xact_rollback` of every other database but the probe's own.
    pub others: BTreeMap<String, i64>,
}

/// `pg_stat_statements` calls of the sandbox, and by `database/role`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PgStatementDetail {
    pub sandbox_writes: i64,
    pub sandbox_reads: i64,
    pub by_role: BTreeMap<String, i64>,
}

/// The cost counters at one moment.
pub struct Counts {
    pub kafka: BTreeMap<String, i64>,
    pub pg: Option<BTreeMap<String, i64>>,
    pub pg_statements: Option<BTreeMap<String, i64>>,
    pub pg_ids: Option<PgTransactionIds>,
    pub pg_detail: Option<PgStatementDetail>,
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
        let (pg, pg_statements, pg_ids, pg_detail) = match &mut self.pg {
            Some(pg) => {
                let commits = pg.commits().await?;
                let statements = pg.statements().await?;
                let ids = pg.transaction_ids().await?;
                let detail = match statements {
                    Some(_) => Some(pg.statement_detail().await?),
                    None => None,
                };
                (Some(commits), statements, Some(ids), detail)
            }
            None => (None, None, None, None),
        };
        Ok(Counts {
            kafka,
            pg,
            pg_statements,
            pg_ids,
            pg_detail,
            at: Instant::now(),
        })
    }
}
