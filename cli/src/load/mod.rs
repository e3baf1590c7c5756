//! `chorus load`: drives the gateway like a fleet of storefronts. Each order
//! is POSTed and then long-polled (`?wait=&seen=`) to its final status; the
//! run reports outcomes, completed sagas per second, latency from POST to
//! final status, HTTP errors, and what a saga cost Kafka and PostgreSQL.
//!
//! Closed loop (`--concurrency C`): C orders in flight, the next placed when
//! one finishes. Open loop (`--rate R`): order i is placed at i/R seconds
//! whatever happens to the others, and its latency counts from that due time
//! (no coordinated omission).

pub mod costs;
pub mod stats;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, bail};
use chorus_platform::token::{DEV_JWT_SECRET, Role, issue_token};
use futures::StreamExt;
use indicatif::{ProgressBar, ProgressStyle};
use reqwest::{Client, StatusCode, Url};
use serde::Serialize;
use serde_json::{Value, json};
use tokio::time::Instant;

use crate::args::{Global, LoadArgs, Mix};
use stats::{Kind, Percentiles};

const OOS_SKU: &str = "LOAD-OOS";
const STOCK: i64 = 100_000_000;
const FINAL: [&str; 2] = ["CONFIRMED", "CANCELLED"];

fn sku_name(n: u64) -> String {
    format!("LOAD-{n:04}")
}

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

/// Everything an order task needs, shared.
struct Ctx {
    client: Client,
    base: Url,
    tokens: Vec<String>,
    mix: Mix,
    lines: u64,
    skus: u64,
    wait: u64,
    order_timeout: Duration,
    progress: ProgressBar,
    counters: Counters,
    http_errors: Mutex<BTreeMap<String, u64>>,
}

#[derive(Default)]
struct Counters {
    confirmed: AtomicU64,
    cancelled: AtomicU64,
    failed: AtomicU64,
}

impl Ctx {
    fn error(&self, label: String) {
        *self
            .http_errors
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(label)
            .or_insert(0) += 1;
    }

    fn url(&self, path: &str) -> anyhow::Result<Url> {
        self.base
            .join(path)
            .with_context(|| format!("joining {path} to {}", self.base))
    }

    fn tick(&self, outcome: &OrderResult) {
        let counter = match outcome.status.as_deref() {
            Some("CONFIRMED") => &self.counters.confirmed,
            Some(_) => &self.counters.cancelled,
            None => &self.counters.failed,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        self.progress.set_message(format!(
            "confirmed {} cancelled {} failed {}",
            self.counters.confirmed.load(Ordering::Relaxed),
            self.counters.cancelled.load(Ordering::Relaxed),
            self.counters.failed.load(Ordering::Relaxed),
        ));
        self.progress.inc(1);
    }
}

fn error_label(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "timeout".into()
    } else if e.is_connect() {
        "connect".into()
    } else {
        "transport".into()
    }
}

/// What became of one order.
#[derive(Debug, Clone)]
struct OrderResult {
    kind: Kind,
    /// The final status, when it was reached.
    status: Option<String>,
    outcome: String,
    /// POST (or, open loop, its due time) to final status.
    latency: Option<Duration>,
    /// POST to its 202.
    accepted_in: Option<Duration>,
    /// When the final status arrived, from the start of the run.
    finished_at: Duration,
}

async fn place_and_follow(ctx: Arc<Ctx>, i: u64, run_start: Instant, due: Instant) -> OrderResult {
    let kind = stats::kind_of(i, &ctx.mix);
    let result = |status: Option<String>, outcome: String, latency, accepted_in| OrderResult {
        kind,
        status,
        outcome,
        latency,
        accepted_in,
        finished_at: run_start.elapsed(),
    };
    let token = &ctx.tokens[(i % ctx.tokens.len() as u64) as usize];
    let mut items: Vec<Value> = stats::skus_of(i, ctx.lines, ctx.skus)
        .into_iter()
        .map(|n| json!({"sku": sku_name(n), "quantity": 1}))
        .collect();
    if kind == Kind::OutOfStock {
        let last = items.len() - 1;
        items[last] = json!({"sku": OOS_SKU, "quantity": 1});
    }
    let body = json!({
        "items": items,
        "currency": "EUR",
        "payment_token": if kind == Kind::Decline { "tok_decline" } else { "tok_ok" },
    });
    let Ok(orders_url) = ctx.url("v1/orders") else {
        return result(None, "rejected (bad url)".into(), None, None);
    };
    let posted = Instant::now();
    let response = ctx
        .client
        .post(orders_url)
        .bearer_auth(token)
        .header("Idempotency-Key", uuid::Uuid::new_v4().to_string())
        .json(&body)
        .send()
        .await;
    let accepted: Value = match response {
        Ok(r) if r.status() == StatusCode::ACCEPTED => match r.json().await {
            Ok(v) => v,
            Err(e) => {
                ctx.error(error_label(&e));
                return result(None, "rejected (body)".into(), None, None);
            }
        },
        Ok(r) => {
            let code = r.status().as_u16().to_string();
            ctx.error(code.clone());
            return result(None, format!("rejected ({code})"), None, None);
        }
        Err(e) => {
            let label = error_label(&e);
            ctx.error(label.clone());
            return result(None, format!("rejected ({label})"), None, None);
        }
    };
    let accepted_in = posted.elapsed();
    let order_id = accepted["order_id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let Ok(status_url) = ctx.url(&format!("v1/orders/{order_id}")) else {
        return result(None, "rejected (order id)".into(), None, Some(accepted_in));
    };
    let mut seen = accepted["status"].as_str().unwrap_or("PENDING").to_string();
    let wait = ctx.wait.to_string();
    let poll_url = |seen: &str| {
        let mut url = status_url.clone();
        url.query_pairs_mut()
            .append_pair("wait", &wait)
            .append_pair("seen", seen);
        url
    };
    loop {
        if due.elapsed() > ctx.order_timeout {
            return result(None, "timeout".into(), None, Some(accepted_in));
        }
        let response = ctx
            .client
            .get(poll_url(&seen))
            .bearer_auth(token)
            .send()
            .await;
        let order: Value = match response {
            Ok(r) if r.status().is_success() => match r.json().await {
                Ok(v) => v,
                Err(e) => {
                    ctx.error(error_label(&e));
                    continue;
                }
            },
            Ok(r) => {
                ctx.error(r.status().as_u16().to_string());
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
            Err(e) => {
                ctx.error(error_label(&e));
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let status = order["status"].as_str().unwrap_or_default().to_string();
        if FINAL.contains(&status.as_str()) {
            let latency = due.elapsed();
            let outcome = stats::outcome_label(&status, order["reason"].as_str());
            return result(Some(status), outcome, Some(latency), Some(accepted_in));
        }
        seen = status;
    }
}

/// Sends an admin request, waiting out the gateway's rate limit.
async fn admin_send(
    request: impl Fn() -> reqwest::RequestBuilder,
) -> anyhow::Result<reqwest::Response> {
    loop {
        let response = request().send().await?;
        if response.status() != StatusCode::TOO_MANY_REQUESTS {
            return Ok(response);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Puts the load's catalogue in place (ample stock, and one SKU without any)
/// and waits until the inventory service has applied it.
async fn set_up_catalogue(
    client: &Client,
    base: &Url,
    admin: &str,
    skus: u64,
) -> anyhow::Result<()> {
    let mut wanted: Vec<(String, i64)> = (0..skus).map(|n| (sku_name(n), STOCK)).collect();
    wanted.push((OOS_SKU.to_string(), 0));
    let puts = futures::stream::iter(wanted.clone())
        .map(|(sku, available)| async move {
            let url = base.join(&format!("v1/admin/inventory/{sku}"))?;
            let body = json!({"available": available, "unit_price": "9.99", "name": format!("Load {sku}")});
            let response =
                admin_send(|| client.put(url.clone()).bearer_auth(admin).json(&body))
                    .await?;
            if !response.status().is_success() {
                let status = response.status();
                bail!(
                    "PUT /v1/admin/inventory/{sku} answered {status}: {}",
                    response.text().await.unwrap_or_default()
                );
            }
            anyhow::Ok(())
        })
        .buffer_unordered(16)
        .collect::<Vec<_>>()
        .await;
    puts.into_iter().collect::<anyhow::Result<Vec<()>>>()?;
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut pending = wanted;
    while !pending.is_empty() {
        if Instant::now() > deadline {
            bail!(
                "the inventory service did not apply the catalogue within 60 s ({} SKUs left, e.g. {})",
                pending.len(),
                pending[0].0
            );
        }
        let checks = futures::stream::iter(pending.clone())
            .map(|(sku, available)| async move {
                let url = base.join(&format!("v1/admin/inventory/{sku}"))?;
                let response = admin_send(|| client.get(url.clone()).bearer_auth(admin)).await?;
                let applied = response.status().is_success()
                    && response.json::<Value>().await?["available"].as_i64() == Some(available);
                anyhow::Ok((sku, available, applied))
            })
            .buffer_unordered(16)
            .collect::<Vec<_>>()
            .await;
        pending = checks
            .into_iter()
            .collect::<anyhow::Result<Vec<_>>>()?
            .into_iter()
            .filter(|(_, _, applied)| !applied)
            .map(|(sku, available, _)| (sku, available))
            .collect();
        if !pending.is_empty() {
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
    Ok(())
}

/// The cost counters at one moment.
struct Counts {
    kafka: BTreeMap<String, i64>,
    pg: Option<BTreeMap<String, i64>>,
    at: Instant,
}

struct CostProbe {
    kafka: chorus_platform::KafkaSettings,
    topics: Vec<String>,
    timeout: Duration,
    pg: Option<costs::PgCounter>,
}

impl CostProbe {
    /// Waits until no saga step is left to publish, then reads both counters
    /// (PostgreSQL a moment later: backends flush their statistics at most once a second).
    async fn settled(&mut self, quiet: Duration) -> anyhow::Result<Counts> {
        let kafka = costs::kafka_settled(
            &self.kafka,
            &self.topics,
            self.timeout,
            quiet,
            Duration::from_secs(60),
        )
        .await?;
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let pg = match &mut self.pg {
            Some(pg) => Some(pg.commits().await?),
            None => None,
        };
        Ok(Counts {
            kafka,
            pg,
            at: Instant::now(),
        })
    }
}

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
}

pub async fn run(global: &Global, args: &LoadArgs) -> anyhow::Result<()> {
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
    let base = Url::parse(&format!("{}/", args.gateway.trim_end_matches('/')))
        .with_context(|| format!("--gateway {} is not a URL", args.gateway))?;
    let secret = jwt_secret();
    let ttl = Duration::from_secs(6 * 3600);
    let admin = issue_token(&secret, "chorus-load-admin", Role::Admin, ttl)?;
    let tokens = (0..args.customers)
        .map(|k| {
            issue_token(
                &secret,
                &format!("load-customer-{k:05}"),
                Role::Customer,
                ttl,
            )
        })
        .collect::<Result<Vec<_>, _>>()?;
    let client = Client::builder()
        .connect_timeout(global.timeout())
        .timeout(Duration::from_secs(args.wait + 15))
        .tcp_nodelay(true)
        .build()?;

    if !args.no_setup {
        eprintln!("setting up the catalogue: {} SKUs and {OOS_SKU}", args.skus);
        set_up_catalogue(&client, &base, &admin, args.skus).await?;
    }

    let mut probe = if args.no_costs {
        None
    } else {
        let pg = match costs::PgCounter::connect(&args.pg_url, &args.pg_databases).await {
            Ok(pg) => Some(pg),
            Err(e) => {
                eprintln!("warning: no PostgreSQL transactions per saga: {e:#}");
                None
            }
        };
        Some(CostProbe {
            kafka: global.kafka()?,
            topics: global.catalogue().all_names(),
            timeout: global.timeout(),
            pg,
        })
    };
    let (before, idle_rate) = match &mut probe {
        None => (None, None),
        Some(probe) => {
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
            (Some(second), idle_rate)
        }
    };

    let progress = if args.quiet {
        ProgressBar::hidden()
    } else {
        let bar = ProgressBar::new(orders);
        bar.set_style(
            ProgressStyle::with_template(
                "{elapsed_precise} [{bar:30}] {pos}/{len} {per_sec:>10} {msg}",
            )?
            .progress_chars("=> "),
        );
        bar
    };
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
    let run_start = Instant::now();
    let results: Vec<OrderResult> = match mode {
        Mode::Closed { concurrency } => {
            futures::stream::iter(0..orders)
                .map(|i| {
                    let ctx = ctx.clone();
                    tokio::spawn(async move {
                        let due = Instant::now();
                        let result = place_and_follow(ctx.clone(), i, run_start, due).await;
                        ctx.tick(&result);
                        result
                    })
                })
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
                let ctx = ctx.clone();
                tasks.push(tokio::spawn(async move {
                    let result = place_and_follow(ctx.clone(), i, run_start, due).await;
                    ctx.tick(&result);
                    result
                }));
            }
            futures::future::join_all(tasks)
                .await
                .into_iter()
                .map(|joined| joined.expect("an order task does not panic"))
                .collect()
        }
    };
    let elapsed = results
        .iter()
        .map(|r| r.finished_at)
        .max()
        .unwrap_or_default();
    progress.finish_and_clear();

    let completed: Vec<&OrderResult> = results.iter().filter(|r| r.status.is_some()).collect();
    let sagas = completed.len() as u64;
    let costs = match (&mut probe, before) {
        (Some(probe), Some(before)) => {
            eprintln!("waiting for the last saga steps to settle");
            let after = probe.settled(Duration::from_secs(2)).await?;
            let (kafka_messages, kafka_by_topic) =
                stats::deltas_per_saga(&before.kafka, &after.kafka, sagas);
            let pg = before
                .pg
                .as_ref()
                .zip(after.pg.as_ref())
                .map(|(b, a)| stats::deltas_per_saga(b, a, sagas));
            Some(CostReport {
                kafka_messages,
                kafka_messages_per_saga: stats::per_saga(kafka_messages, sagas),
                kafka_messages_per_saga_by_topic: kafka_by_topic,
                pg_transactions: pg.as_ref().map(|(t, _)| *t),
                pg_transactions_per_saga: pg.as_ref().and_then(|(t, _)| stats::per_saga(*t, sagas)),
                pg_transactions_per_saga_by_database: pg.map(|(_, by)| by).unwrap_or_default(),
                pg_idle_transactions_per_sec: idle_rate,
            })
        }
        _ => None,
    };
    let latencies: Vec<f64> = completed
        .iter()
        .filter_map(|r| r.latency)
        .map(|d| d.as_secs_f64() * 1000.0)
        .collect();
    let accepts: Vec<f64> = results
        .iter()
        .filter_map(|r| r.accepted_in)
        .map(|d| d.as_secs_f64() * 1000.0)
        .collect();
    let report = LoadReport {
        label: args.label.clone(),
        mode,
        orders,
        mix: args.mix,
        customers: args.customers,
        skus: args.skus,
        lines_per_order: args.lines,
        elapsed_secs: elapsed.as_secs_f64(),
        completed: sagas,
        outcomes: stats::count(results.iter().map(|r| r.outcome.clone())),
        unexpected: completed
            .iter()
            .filter(|r| !stats::as_expected(r.kind, r.status.as_deref().unwrap_or_default()))
            .count() as u64,
        sagas_per_sec: stats::per_second(sagas, elapsed),
        offered_per_sec: match mode {
            Mode::Open { rate } => Some(rate),
            Mode::Closed { .. } => None,
        },
        latency_ms: stats::summarize(&latencies),
        accept_latency_ms: stats::summarize(&accepts),
        http_errors: ctx
            .http_errors
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone(),
        costs,
    };
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
    use std::fmt::Write;
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
        let opt = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.2}"));
        row(
            &mut s,
            "Kafka messages per saga",
            format!(
                "{} ({} messages)",
                opt(c.kafka_messages_per_saga),
                c.kafka_messages
            ),
        );
        row(
            &mut s,
            "PostgreSQL transactions per saga",
            format!(
                "{} ({} commits; idle {}/s)",
                opt(c.pg_transactions_per_saga),
                c.pg_transactions.map_or("-".to_string(), |t| t.to_string()),
                opt(c.pg_idle_transactions_per_sec)
            ),
        );
        let by = |m: &BTreeMap<String, f64>| {
            m.iter()
                .filter(|(_, v)| **v > 0.0)
                .map(|(k, v)| format!("{k} {v:.2}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        row(
            &mut s,
            "  by topic",
            by(&c.kafka_messages_per_saga_by_topic),
        );
        row(
            &mut s,
            "  by database",
            by(&c.pg_transactions_per_saga_by_database),
        );
    }
    s
}
