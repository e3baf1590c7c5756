//! `chorus bench pg`: the PostgreSQL ceiling on this machine. In a throwaway
//! database (created with the admin role, dropped after), as many
//! connections as the services use together each run BEGIN; INSERT one row;
//! COMMIT as fast as they can; the result is committed transactions per
//! second, measured after a second of warm-up.

use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde::Serialize;
use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::{Connection, Executor};

use crate::args::BenchPgArgs;
use crate::load::{stats, write_json};

/// The services' pools together at their defaults: four workers with
/// `CHORUS_DB_POOL_SIZE` 8 each, the payment sandbox's own pool of 2, and the
/// gateway's write pool of 16 (its two read-model pools only read).
pub const SERVICE_CONNECTIONS: u32 = 4 * 8 + 2 + 16;

/// Bytes of the row's payload, about an encoded event (as in an outbox row).
const ROW_BYTES: usize = 200;

#[derive(Debug, Serialize)]
pub struct PgReport {
    pub connections: u32,
    pub seconds: f64,
    pub transactions: u64,
    pub transactions_per_sec: f64,
    pub synchronous_commit: String,
}

pub async fn run(args: &BenchPgArgs) -> anyhow::Result<()> {
    if !(args.seconds.is_finite() && args.seconds > 0.0) {
        bail!("--seconds must be a positive number");
    }
    let admin_options = PgConnectOptions::from_str(&args.pg_url).context("--pg-url")?;
    let mut admin = PgConnection::connect_with(&admin_options)
        .await
        .context("connecting to PostgreSQL with the admin URL (--pg-url)")?;
    let database = format!(
        "bench_pg_{}",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    );
    admin
        .execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE {database}")))
        .await
        .with_context(|| format!("creating the throwaway database {database}"))?;
    let measured = measure(args, admin_options.clone().database(&database)).await;
    let dropped = admin
        .execute(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {database} WITH (FORCE)"
        )))
        .await
        .with_context(|| format!("dropping the throwaway database {database}"));
    let report = measured?;
    dropped?;
    println!(
        "PostgreSQL ceiling: {} connections, BEGIN; INSERT one row; COMMIT (synchronous_commit={})\n  \
         {:>10.0} transactions/s ({} in {:.1} s)",
        report.connections,
        report.synchronous_commit,
        report.transactions_per_sec,
        report.transactions,
        report.seconds
    );
    if let Some(out) = &args.out {
        write_json(out, &report)?;
    }
    Ok(())
}

async fn measure(args: &BenchPgArgs, options: PgConnectOptions) -> anyhow::Result<PgReport> {
    let mut setup = PgConnection::connect_with(&options).await?;
    setup
        .execute(
            "CREATE TABLE bench_rows (id uuid PRIMARY KEY, body bytea NOT NULL, \
             at timestamptz NOT NULL DEFAULT now())",
        )
        .await?;
    let (synchronous_commit,): (String,) = sqlx::query_as("SHOW synchronous_commit")
        .fetch_one(&mut setup)
        .await?;
    setup.close().await?;

    let mut connections = Vec::with_capacity(args.connections as usize);
    for _ in 0..args.connections {
        connections.push(
            PgConnection::connect_with(&options)
                .await
                .context("opening the bench connections")?,
        );
    }
    let committed = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let workers: Vec<_> = connections
        .into_iter()
        .map(|mut conn| {
            let (committed, stop) = (committed.clone(), stop.clone());
            tokio::spawn(async move {
                let body = vec![0x5a_u8; ROW_BYTES];
                while !stop.load(Ordering::Relaxed) {
                    let mut tx = conn.begin().await?;
                    sqlx::query("INSERT INTO bench_rows (id, body) VALUES ($1, $2)")
                        .bind(uuid::Uuid::new_v4())
                        .bind(&body)
                        .execute(&mut *tx)
                        .await?;
                    tx.commit().await?;
                    committed.fetch_add(1, Ordering::Relaxed);
                }
                conn.close().await?;
                anyhow::Ok(())
            })
        })
        .collect();
    eprintln!(
        "committing on {} connections for {:.0} s (after 1 s of warm-up)",
        args.connections, args.seconds
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (from, began) = (committed.load(Ordering::Relaxed), Instant::now());
    tokio::time::sleep(Duration::from_secs_f64(args.seconds)).await;
    let (to, elapsed) = (committed.load(Ordering::Relaxed), began.elapsed());
    stop.store(true, Ordering::Relaxed);
    for worker in workers {
        worker.await??;
    }
    Ok(PgReport {
        connections: args.connections,
        seconds: elapsed.as_secs_f64(),
        transactions: to - from,
        transactions_per_sec: stats::per_second(to - from, elapsed),
        synchronous_commit,
    })
}
