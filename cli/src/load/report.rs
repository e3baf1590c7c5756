//! What a load run reports: the JSON written to `--out` and the summary
//! printed at the end.

use std::collections::BTreeMap;
use std::fmt::Write;

use anyhow::Context;
use serde::Serialize;

use super::Mode;
use super::order::OrderResult;
use super::stats::{self, Percentiles};
use crate::args::{LoadArgs, Mix};

/// The JSON written at the end of a run.
#[derive(Debug, Serialize)]
pub struct LoadReport {
    pub label: Option<String>,
    #[serde(flatten)]
    pub mode: Mode,
    pub orders: u64,
    pub mix: Mix,
    pub customers: u64,
    pub skus: u64,
    pub lines_per_order: u64,
    pub elapsed_secs: f64,
    /// Orders that reached CONFIRMED or CANCELLED.
    pub completed: u64,
    pub outcomes: BTreeMap<String, u64>,
    /// Completed orders whose final status is not the one their kind should produce.
    pub unexpected: u64,
    pub sagas_per_sec: f64,
    /// Open loop: orders offered per second (as scheduled).
    pub offered_per_sec: Option<f64>,
    /// POST (open loop: its due time) to final status, milliseconds.
    pub latency_ms: Percentiles,
    /// POST to its 202, milliseconds.
    pub accept_latency_ms: Percentiles,
    /// Failed requests by HTTP status (or `connect`, `timeout`, `transport`).
    pub http_errors: BTreeMap<String, u64>,
    pub costs: Option<CostReport>,
}

impl LoadReport {
    /// The report of a run whose orders ended as `results`.
    pub fn of(
        args: &LoadArgs,
        mode: Mode,
        orders: u64,
        results: &[OrderResult],
        http_errors: BTreeMap<String, u64>,
        costs: Option<CostReport>,
    ) -> LoadReport {
        let elapsed = results
            .iter()
            .map(|r| r.finished_at)
            .max()
            .unwrap_or_default();
        let completed: Vec<&OrderResult> = results.iter().filter(|r| r.status.is_some()).collect();
        let millis = |d: std::time::Duration| d.as_secs_f64() * 1000.0;
        let latencies: Vec<f64> = completed
            .iter()
            .filter_map(|r| r.latency)
            .map(millis)
            .collect();
        let accepts: Vec<f64> = results
            .iter()
            .filter_map(|r| r.accepted_in)
            .map(millis)
            .collect();
        LoadReport {
            label: args.label.clone(),
            mode,
            orders,
            mix: args.mix,
            customers: args.customers,
            skus: args.skus,
            lines_per_order: args.lines,
            elapsed_secs: elapsed.as_secs_f64(),
            completed: completed.len() as u64,
            outcomes: stats::count(results.iter().map(|r| r.outcome.clone())),
            unexpected: completed
                .iter()
                .filter(|r| !stats::as_expected(r.kind, r.status.as_deref().unwrap_or_default()))
                .count() as u64,
            sagas_per_sec: stats::per_second(completed.len() as u64, elapsed),
            offered_per_sec: match mode {
                Mode::Open { rate } => Some(rate),
                Mode::Closed { .. } => None,
            },
            latency_ms: stats::summarize(&latencies),
            accept_latency_ms: stats::summarize(&accepts),
            http_errors,
            costs,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct CostReport {
    /// Messages appended to the chorus topics during the run (consumption comes on top).
    pub kafka_messages: i64,
    pub kafka_messages_per_saga: Option<f64>,
    pub kafka_messages_per_saga_by_topic: BTreeMap<String, f64>,
    /// Transactions committed in the chorus databases during the run.
    pub pg_transactions: Option<i64>,
    pub pg_transactions_per_saga: Option<f64>,
    /// Read-only transactions count too (the gateway's status reads land in chorus_order).
    pub pg_transactions_per_saga_by_database: BTreeMap<String, f64>,
    /// Transactions per second committed while idle just before the run (outbox relays, …), included above.
    pub pg_idle_transactions_per_sec: Option<f64>,
    /// Statements executed in the chorus databases during the run, `BEGIN`
    /// and `COMMIT` included (needs `pg_stat_statements`).
    pub pg_statements: Option<i64>,
    pub pg_statements_per_saga: Option<f64>,
    pub pg_statements_per_saga_by_database: BTreeMap<String, f64>,
    /// Transaction ids taken during the run: every transaction that wrote,
    /// cluster-wide, the payment sandbox's included (see `pg_split`).
    pub pg_write_transactions: Option<i64>,
    /// Write commits of the services and the gateway (the sandbox's taken out).
    pub pg_write_commits: Option<i64>,
    pub pg_write_commits_per_saga: Option<f64>,
    /// The payment sandbox's own write commits: it stands for an outside provider.
    pub pg_sandbox_write_commits: Option<i64>,
    pub pg_sandbox_write_commits_per_saga: Option<f64>,
    pub pg_sandbox_reads_per_saga: Option<f64>,
    /// Read-only transactions of the services and the gateway (status
    /// answers, the long-poll poller, clocks that found nothing to do).
    pub pg_reads: Option<i64>,
    pub pg_reads_per_saga: Option<f64>,
    /// Rolled back in the chorus databases: reads are low by at most this many.
    pub pg_rollbacks: Option<i64>,
    /// Transactions of other databases during the run (their writes would
    /// count as writes here); empty when nothing else used the cluster.
    pub pg_other_database_transactions: BTreeMap<String, i64>,
    /// Statements per saga by `database/role` (`BEGIN` and `COMMIT` included):
    /// the gateway's reads are its read-only role's.
    pub pg_statements_per_saga_by_role: BTreeMap<String, f64>,
}

/// Writes `value` as pretty JSON, creating the parent directory.
pub fn write_json<T: Serialize>(path: &std::path::Path, value: &T) -> anyhow::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let text = serde_json::to_string_pretty(value)? + "\n";
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

fn ms(p: &Percentiles) -> String {
    format!(
        "p50 {:.1}  p90 {:.1}  p99 {:.1}  max {:.1}",
        p.p50, p.p90, p.p99, p.max
    )
}

/// The human-readable summary of a run.
pub fn render(r: &LoadReport) -> String {
    let mut s = String::new();
    let mode = match r.mode {
        Mode::Closed { concurrency } => format!("closed loop, concurrency {concurrency}"),
        Mode::Open { rate } => format!("open loop, {rate:.1} orders/s offered"),
    };
    let _ = writeln!(
        s,
        "\nchorus load: {mode}; {} orders (mix decline {:.0}%, out of stock {:.0}%), {} customers, {} SKUs",
        r.orders,
        r.mix.decline * 100.0,
        r.mix.out_of_stock * 100.0,
        r.customers,
        r.skus
    );
    let row = |s: &mut String, k: &str, v: String| {
        let _ = writeln!(s, "  {k:<34} {v}");
    };
    for (outcome, n) in &r.outcomes {
        row(&mut s, outcome, n.to_string());
    }
    row(
        &mut s,
        "completed sagas",
        format!("{} in {:.1} s", r.completed, r.elapsed_secs),
    );
    row(&mut s, "unexpected outcomes", r.unexpected.to_string());
    row(
        &mut s,
        "completed sagas/s",
        format!("{:.1}", r.sagas_per_sec),
    );
    row(&mut s, "POST → final status (ms)", ms(&r.latency_ms));
    row(&mut s, "POST → 202 (ms)", ms(&r.accept_latency_ms));
    let errors = if r.http_errors.is_empty() {
        "none".to_string()
    } else {
        r.http_errors
            .iter()
            .map(|(k, v)| format!("{k}: {v}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    row(&mut s, "HTTP errors", errors);
    if let Some(c) = &r.costs {
        render_costs(&mut s, c);
    }
    s
}

/// The cost rows of the summary.
fn render_costs(s: &mut String, c: &CostReport) {
    let row = |s: &mut String, k: &str, v: String| {
        let _ = writeln!(s, "  {k:<34} {v}");
    };
    let opt = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.2}"));
    row(
        s,
        "Kafka messages per saga",
        format!(
            "{} ({} messages)",
            opt(c.kafka_messages_per_saga),
            c.kafka_messages
        ),
    );
    row(
        s,
        "PostgreSQL transactions per saga",
        format!(
            "{} ({} commits; idle {}/s)",
            opt(c.pg_transactions_per_saga),
            c.pg_transactions.map_or("-".to_string(), |t| t.to_string()),
            opt(c.pg_idle_transactions_per_sec)
        ),
    );
    row(
        s,
        "PostgreSQL write commits per saga",
        format!(
            "{} (payment sandbox apart: {}; {} ids taken in all)",
            opt(c.pg_write_commits_per_saga),
            opt(c.pg_sandbox_write_commits_per_saga),
            c.pg_write_transactions
                .map_or("-".to_string(), |t| t.to_string()),
        ),
    );
    row(
        s,
        "PostgreSQL reads per saga",
        format!(
            "{} ({} rolled back; other databases: {})",
            opt(c.pg_reads_per_saga),
            c.pg_rollbacks.map_or("-".to_string(), |t| t.to_string()),
            if c.pg_other_database_transactions.is_empty() {
                "none".to_string()
            } else {
                c.pg_other_database_transactions
                    .iter()
                    .map(|(k, v)| format!("{k} {v}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        ),
    );
    row(
        s,
        "PostgreSQL statements per saga",
        match c.pg_statements {
            Some(n) => format!("{} ({n} statements)", opt(c.pg_statements_per_saga)),
            None => "- (pg_stat_statements is not installed)".to_string(),
        },
    );
    let by = |m: &BTreeMap<String, f64>| {
        m.iter()
            .filter(|(_, v)| **v > 0.0)
            .map(|(k, v)| format!("{k} {v:.2}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    row(s, "  by topic", by(&c.kafka_messages_per_saga_by_topic));
    row(
        s,
        "  by database",
        by(&c.pg_transactions_per_saga_by_database),
    );
    row(
        s,
        "  statements by database",
        by(&c.pg_statements_per_saga_by_database),
    );
}
