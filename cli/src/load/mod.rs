//! `chorus load`: drives the gateway like a fleet of storefronts. Each order
//! is POSTed and then long-polled (`?wait=&seen=`) to its final status; the
//! run reports outcomes, completed sagas per second, latency from POST to
//! final status, HTTP errors, and what a saga cost Kafka and PostgreSQL.
//!
//! Closed loop (`--concurrency C`): C orders in flight, the next placed when
//! one finishes. Open loop (`--rate R`): order i is placed at i/R seconds
//! whatever happens to the others, and its latency counts from that due time
//! (no coordinated omission).

mod catalogue;
pub mod costs;
mod order;
pub mod pg_split;
mod report;
pub mod stats;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, bail};
use chorus_platform::token::{DEV_JWT_SECRET, Role, issue_token};
use futures::StreamExt;
use indicatif::{ProgressBar, ProgressStyle};
use reqwest::{Client, Url};
use serde::Serialize;
use tokio::time::Instant;

use crate::args::{Global, LoadArgs};
use costs::{CostProbe, Counts};
use order::{Counters, Ctx, OrderResult, place_and_follow};
pub use report::write_json;
use report::{CostReport, LoadReport, render};

fn jwt_secret() -> String {
    std::env::var("CHORUS_JWT_SECRET")
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| DEV_JWT_SECRET.to_string())
}

/// How the load is offered.
#[derive(Debug, Clone, Copy, Serialize)]
#[serde(tag = "mode", rename_all = "snake_case")]
pub enum Mode {
    Closed { concurrency: u64 },
    Open { rate: f64 },
}

pub async fn run(global: &Global, args: &LoadArgs) -> anyhow::Result<()> {
    let (mode, orders) = plan(args)?;
    let base = Url::parse(&format!("{}/", args.gateway.trim_end_matches('/')))
        .with_context(|| format!("--gateway {} is not a URL", args.gateway))?;
    let (admin, tokens) = tokens(args)?;
    let client = Client::builder()
        .connect_timeout(global.timeout())
        .timeout(Duration::from_secs(args.wait + 15))
        .tcp_nodelay(true)
        .build()?;
    if !args.no_setup {
        eprintln!(
            "setting up the catalogue: {} SKUs and {}",
            args.skus,
            catalogue::OOS_SKU
        );
        catalogue::set_up(&client, &base, &admin, args.skus).await?;
    }
    let mut probe = cost_probe(global, args).await?;
    let (before, idle_rate) = match &mut probe {
        Some(probe) => {
            let (before, idle_rate) = baseline(probe).await?;
            (Some(before), idle_rate)
        }
        None => (None, None),
    };

    let progress = progress_bar(args.quiet, orders)?;
    let ctx = Arc::new(Ctx {
        client,
        base,
        tokens,
        mix: args.mix,
        lines: args.lines,
        skus: args.skus,
        wait: args.wait,
        order_timeout: Duration::from_secs_f64(args.order_timeout),
        progress: progress.clone(),
        counters: Counters::default(),
        http_errors: Mutex::new(BTreeMap::new()),
    });
    eprintln!(
        "placing {orders} orders, {}",
        match mode {
            Mode::Closed { concurrency } => format!("closed loop at concurrency {concurrency}"),
            Mode::Open { rate } => format!("open loop at {rate:.1} orders/s"),
        }
    );
    let results = drive(ctx.clone(), mode, orders).await;
    progress.finish_and_clear();

    let sagas = results.iter().filter(|r| r.status.is_some()).count() as u64;
    let costs = match (&mut probe, before) {
        (Some(probe), Some(before)) => Some(costs_of_run(probe, &before, sagas, idle_rate).await?),
        _ => None,
    };
    let http_errors = ctx
        .http_errors
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    let report = LoadReport::of(args, mode, orders, &results, http_errors, costs);
    print!("{}", render(&report));
    let out = args.out.clone().unwrap_or_else(|| {
        PathBuf::from(format!(
            "bench/results/load-{}.json",
            chrono::Utc::now().format("%Y%m%dT%H%M%SZ")
        ))
    });
    write_json(&out, &report)?;
    println!("results: {}", out.display());
    Ok(())
}

/// The mode and the number of orders the arguments ask for.
fn plan(args: &LoadArgs) -> anyhow::Result<(Mode, u64)> {
    let mode = match args.rate {
        Some(rate) if rate.is_finite() && rate > 0.0 => Mode::Open { rate },
        Some(rate) => bail!("--rate {rate}: must be a positive number of orders per second"),
        None => Mode::Closed {
            concurrency: args.concurrency,
        },
    };
    let orders = match (args.orders, args.duration, mode) {
        (Some(n), _, _) => n,
        (None, Some(d), Mode::Open { rate }) if d.is_finite() && d > 0.0 => {
            stats::open_loop_orders(rate, d)
        }
        (None, Some(d), _) => bail!("--duration {d}: must be a positive number of seconds"),
        (None, None, _) => 1000,
    };
    if !(args.order_timeout.is_finite() && args.order_timeout > 0.0) {
        bail!("--order-timeout must be a positive number of seconds");
    }
    Ok((mode, orders))
}

/// An admin token for the catalogue and one customer token per `--customers`.
fn tokens(args: &LoadArgs) -> anyhow::Result<(String, Vec<String>)> {
    let secret = jwt_secret();
    let ttl = Duration::from_secs(6 * 3600);
    let admin = issue_token(&secret, "chorus-load-admin", Role::Admin, ttl)?;
    let customers = (0..args.customers)
        .map(|k| {
            issue_token(
                &secret,
                &format!("load-customer-{k:05}"),
                Role::Customer,
                ttl,
            )
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok((admin, customers))
}

/// The cost counters, unless `--no-costs` (PostgreSQL's are optional: a
/// run without its admin role still counts Kafka messages).
async fn cost_probe(global: &Global, args: &LoadArgs) -> anyhow::Result<Option<CostProbe>> {
    if args.no_costs {
        return Ok(None);
    }
    let pg = match costs::PgCounter::connect(&args.pg_url, &args.pg_databases).await {
        Ok(pg) => Some(pg),
        Err(e) => {
            eprintln!("warning: no PostgreSQL transactions per saga: {e:#}");
            None
        }
    };
    Ok(Some(CostProbe {
        kafka: global.kafka()?,
        topics: global.catalogue().all_names(),
        timeout: global.timeout(),
        pg,
    }))
}

/// The counters once the system is idle, and the transactions per second it
/// commits while idle (outbox relays, …), which the run's figures include.
async fn baseline(probe: &mut CostProbe) -> anyhow::Result<(Counts, Option<f64>)> {
    eprintln!("waiting for the system to settle");
    let first = probe.settled(Duration::from_secs(1)).await?;
    tokio::time::sleep(Duration::from_secs(4)).await;
    let second = probe.settled(Duration::from_millis(500)).await?;
    let window = second.at - first.at;
    let idle_rate = match (&first.pg, &second.pg) {
        (Some(a), Some(b)) => {
            let (delta, _) = stats::deltas_per_saga(a, b, 1);
            Some(stats::per_second(delta.max(0) as u64, window))
        }
        _ => None,
    };
    Ok((second, idle_rate))
}

/// Kafka messages and PostgreSQL transactions per completed saga.
async fn costs_of_run(
    probe: &mut CostProbe,
    before: &Counts,
    sagas: u64,
    idle_rate: Option<f64>,
) -> anyhow::Result<CostReport> {
    eprintln!("waiting for the last saga steps to settle");
    let after = probe.settled(Duration::from_secs(2)).await?;
    let (kafka_messages, kafka_by_topic) =
        stats::deltas_per_saga(&before.kafka, &after.kafka, sagas);
    let pg = before
        .pg
        .as_ref()
        .zip(after.pg.as_ref())
        .map(|(b, a)| stats::deltas_per_saga(b, a, sagas));
    let statements = before
        .pg_statements
        .as_ref()
        .zip(after.pg_statements.as_ref())
        .map(|(b, a)| stats::deltas_per_saga(b, a, sagas));
    let split = match (&before.pg, &after.pg, &before.pg_ids, &after.pg_ids) {
        (Some(cb), Some(ca), Some(ib), Some(ia)) => Some(pg_split::split(
            (cb, ca),
            (ib, ia),
            (before.pg_detail.as_ref(), after.pg_detail.as_ref()),
        )),
        _ => None,
    };
    let per = |n: Option<i64>| n.and_then(|n| stats::per_saga(n, sagas));
    let split = split.unwrap_or_default();
    Ok(CostReport {
        pg_write_transactions: before.pg_ids.as_ref().map(|_| split.write_transactions),
        pg_write_commits: split.write_commits,
        pg_write_commits_per_saga: per(split.write_commits),
        pg_sandbox_write_commits: split.sandbox_write_commits,
        pg_sandbox_write_commits_per_saga: per(split.sandbox_write_commits),
        pg_sandbox_reads_per_saga: per(split.sandbox_reads),
        pg_reads: split.reads,
        pg_reads_per_saga: per(split.reads),
        pg_rollbacks: before.pg_ids.as_ref().map(|_| split.rollbacks),
        pg_other_database_transactions: split.other_databases,
        pg_statements_per_saga_by_role: pg_split::by_role_per_saga(
            before.pg_detail.as_ref(),
            after.pg_detail.as_ref(),
            sagas,
        ),
        kafka_messages,
        kafka_messages_per_saga: stats::per_saga(kafka_messages, sagas),
        kafka_messages_per_saga_by_topic: kafka_by_topic,
        pg_transactions: pg.as_ref().map(|(t, _)| *t),
        pg_transactions_per_saga: pg.as_ref().and_then(|(t, _)| stats::per_saga(*t, sagas)),
        pg_transactions_per_saga_by_database: pg.map(|(_, by)| by).unwrap_or_default(),
        pg_idle_transactions_per_sec: idle_rate,
        pg_statements: statements.as_ref().map(|(t, _)| *t),
        pg_statements_per_saga: statements
            .as_ref()
            .and_then(|(t, _)| stats::per_saga(*t, sagas)),
        pg_statements_per_saga_by_database: statements.map(|(_, by)| by).unwrap_or_default(),
    })
}

fn progress_bar(quiet: bool, orders: u64) -> anyhow::Result<ProgressBar> {
    if quiet {
        return Ok(ProgressBar::hidden());
    }
    let bar = ProgressBar::new(orders);
    bar.set_style(
        ProgressStyle::with_template(
            "{elapsed_precise} [{bar:30}] {pos}/{len} {per_sec:>10} {msg}",
        )?
        .progress_chars("=> "),
    );
    Ok(bar)
}

/// Places every order as the mode says and waits for each to end.
async fn drive(ctx: Arc<Ctx>, mode: Mode, orders: u64) -> Vec<OrderResult> {
    let run_start = Instant::now();
    let one = move |ctx: Arc<Ctx>, i: u64, due: Instant| async move {
        let result = place_and_follow(&ctx, i, run_start, due).await;
        ctx.tick(&result);
        result
    };
    match mode {
        Mode::Closed { concurrency } => {
            futures::stream::iter(0..orders)
                .map(|i| tokio::spawn(one(ctx.clone(), i, Instant::now())))
                .buffer_unordered(concurrency as usize)
                .map(|joined| joined.expect("an order task does not panic"))
                .collect()
                .await
        }
        Mode::Open { rate } => {
            let mut tasks = Vec::with_capacity(orders as usize);
            for i in 0..orders {
                let due = run_start + stats::due_after(i, rate);
                tokio::time::sleep_until(due).await;
                tasks.push(tokio::spawn(one(ctx.clone(), i, due)));
            }
            futures::future::join_all(tasks)
                .await
                .into_iter()
                .map(|joined| joined.expect("an order task does not panic"))
                .collect()
        }
    }
}
