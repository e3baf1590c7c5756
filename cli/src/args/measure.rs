//! Arguments of the measuring verbs (`load`, `bench`).

use std::path::PathBuf;

use clap::{Args, Subcommand};

/// `chorus load`: closed-loop at `--concurrency`, or open-loop at `--rate`.
#[derive(Debug, Args)]
pub struct LoadArgs {
    /// Gateway base URL.
    #[arg(
        long,
        env = "CHORUS_GATEWAY_URL",
        default_value = "http://127.0.0.1:8000"
    )]
    pub gateway: String,
    /// Orders to place (open loop: default --rate × --duration).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
    pub orders: Option<u64>,
    /// Closed loop: orders in flight at once, each placed when another reaches its final status.
    #[arg(long, default_value_t = 32, conflicts_with = "rate",
          value_parser = clap::value_parser!(u64).range(1..=100_000))]
    pub concurrency: u64,
    /// Open loop: orders placed per second, whatever the system's answers.
    #[arg(long)]
    pub rate: Option<f64>,
    /// Open loop: seconds of offered load (sets --orders to rate × duration).
    #[arg(long, requires = "rate", conflicts_with = "orders")]
    pub duration: Option<f64>,
    /// Shares of orders that take a compensation path, e.g. `decline=0.1,out-of-stock=0.1`
    /// (declined payment; a line whose SKU has no stock). The rest should confirm.
    #[arg(long, default_value = "decline=0,out-of-stock=0", value_parser = parse_mix)]
    pub mix: Mix,
    /// Distinct customers (token subjects) the orders are spread over.
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub customers: u64,
    /// SKUs in the load's own catalogue (`LOAD-0000`, …), each with ample stock.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..=10_000))]
    pub skus: u64,
    /// Lines per order (distinct SKUs, quantity 1 each).
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u64).range(1..=50))]
    pub lines: u64,
    /// Seconds after which an order that has not reached its final status counts as timed out.
    #[arg(long, default_value_t = 120.0)]
    pub order_timeout: f64,
    /// Seconds each status long-poll may be held (the gateway allows up to 30).
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=30))]
    pub wait: u64,
    /// Write the results as JSON to this file (default: bench/results/load-<UTC time>.json).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Skip the catalogue set-up (it already exists from an earlier run with the same --skus).
    #[arg(long)]
    pub no_setup: bool,
    /// Do not measure Kafka messages and PostgreSQL transactions per saga.
    #[arg(long)]
    pub no_costs: bool,
    /// PostgreSQL URL whose role can read `pg_stat_database` (for transactions per saga).
    #[arg(
        long,
        env = "CHORUS_PG_ADMIN_URL",
        default_value = "postgres://chorus:chorus@127.0.0.1:55432/postgres",
        hide_env_values = true
    )]
    pub pg_url: String,
    /// Databases counted for transactions per saga (SQL LIKE pattern on the name).
    #[arg(long, default_value = "chorus\\_%")]
    pub pg_databases: String,
    /// A label written into the results (e.g. `closed` or `open`).
    #[arg(long)]
    pub label: Option<String>,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
}

/// Shares of the orders meant to be cancelled by a compensation path.
#[derive(Debug, Clone, Copy, PartialEq, Default, serde::Serialize)]
pub struct Mix {
    pub decline: f64,
    pub out_of_stock: f64,
}

pub fn parse_mix(text: &str) -> Result<Mix, String> {
    let mut mix = Mix::default();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (name, value) = part
            .split_once('=')
            .ok_or_else(|| format!("`{part}`: write NAME=SHARE, e.g. decline=0.1"))?;
        let share = match value.trim().strip_suffix('%') {
            Some(percent) => percent.trim().parse::<f64>().map(|p| p / 100.0),
            None => value.trim().parse::<f64>(),
        }
        .ok()
        .filter(|s| (0.0..=1.0).contains(s))
        .ok_or_else(|| format!("`{value}`: a share from 0 to 1 (or 0% to 100%)"))?;
        match name.trim() {
            "decline" => mix.decline = share,
            "out-of-stock" | "out_of_stock" | "oos" => mix.out_of_stock = share,
            other => {
                return Err(format!(
                    "unknown mix entry `{other}`: decline or out-of-stock"
                ));
            }
        }
    }
    if mix.decline + mix.out_of_stock > 1.0 + 1e-9 {
        return Err("the shares add up to more than 1".to_string());
    }
    Ok(mix)
}

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Kafka ceiling: produce then consume messages the size of an OrderPlaced on a throwaway topic.
    Kafka(BenchKafkaArgs),
    /// PostgreSQL ceiling: single-row insert + commit transactions per second on a throwaway database.
    Pg(BenchPgArgs),
    /// Assemble the results of one `make bench` run into one JSON file and a markdown table.
    Report(BenchReportArgs),
}

#[derive(Debug, Args)]
pub struct BenchKafkaArgs {
    /// Messages produced (and then consumed) in each phase.
    #[arg(long, default_value_t = 500_000, value_parser = clap::value_parser!(u64).range(1..=100_000_000))]
    pub messages: u64,
    /// Partitions of the throwaway topic.
    #[arg(long = "topic-partitions", default_value_t = 6, value_parser = clap::value_parser!(i32).range(1..=1000))]
    pub topic_partitions: i32,
    /// Write the results as JSON to this file.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct BenchPgArgs {
    /// Admin URL; the bench creates a throwaway database next to this one and drops it.
    #[arg(
        long,
        env = "CHORUS_PG_ADMIN_URL",
        default_value = "postgres://chorus:chorus@127.0.0.1:55432/postgres",
        hide_env_values = true
    )]
    pub pg_url: String,
    /// Connections committing at once (default: the services' pools together at
    /// their defaults: 4 workers × 8, the payment sandbox's 2, the gateway's write pool of 16).
    #[arg(long, default_value_t = crate::bench::pg::SERVICE_CONNECTIONS,
          value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub connections: u32,
    /// Seconds of measurement (after one second of warm-up).
    #[arg(long, default_value_t = 10.0)]
    pub seconds: f64,
    /// Write the results as JSON to this file.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct BenchReportArgs {
    /// `chorus bench kafka` results.
    #[arg(long)]
    pub kafka: PathBuf,
    /// `chorus bench pg` results.
    #[arg(long)]
    pub pg: PathBuf,
    /// `chorus load` results at maximum closed-loop throughput.
    #[arg(long)]
    pub closed: PathBuf,
    /// `chorus load` results at a fixed offered rate.
    #[arg(long)]
    pub open: PathBuf,
    /// Open-loop results, one per point of the curve of latency against
    /// offered rate (labelled `curve-<fraction>`, or the fraction is offered ÷
    /// the closed loop's sagas/s); repeat.
    #[arg(long = "curve")]
    pub curve: Vec<PathBuf>,
    /// Closed-loop results of the ramp, one per concurrency; repeat.
    #[arg(long = "ramp")]
    pub ramp: Vec<PathBuf>,
    /// Memory of a service as NAME=IDLE_KB:PEAK_KB (VmRSS before the load, VmHWM after); repeat.
    #[arg(long = "rss", value_parser = parse_rss)]
    pub rss: Vec<(String, u64, u64)>,
    /// Extra facts to record, as KEY=VALUE (machine, commit, durations); repeat.
    #[arg(long = "meta", value_parser = parse_meta)]
    pub meta: Vec<(String, String)>,
    /// Where to write the assembled JSON.
    #[arg(long)]
    pub out: PathBuf,
}

fn parse_rss(text: &str) -> Result<(String, u64, u64), String> {
    let bad = || format!("`{text}`: write NAME=IDLE_KB:PEAK_KB, e.g. order=10240:20480");
    let (name, kbs) = text.split_once('=').ok_or_else(bad)?;
    let (idle, peak) = kbs.split_once(':').ok_or_else(bad)?;
    Ok((
        name.to_string(),
        idle.trim().parse().map_err(|_| bad())?,
        peak.trim().parse().map_err(|_| bad())?,
    ))
}

fn parse_meta(text: &str) -> Result<(String, String), String> {
    text.split_once('=')
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .ok_or_else(|| format!("`{text}`: write KEY=VALUE"))
}
