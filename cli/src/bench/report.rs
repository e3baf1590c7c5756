//! `chorus bench report`: one `make bench` run's results (ceilings, the two
//! loads, memory) assembled into one JSON file and a markdown table, with
//! the load set against the ceilings:
//!
//! - Kafka ratio = sagas/s × Kafka messages per saga ÷ Kafka produce+consume ceiling
//! - PostgreSQL ratio = sagas/s × transactions per saga ÷ PostgreSQL commit ceiling
//!
//! and, under stable names (`summary`), the closed-loop ramp, the best
//! concurrency, the curve of latency against offered rate and the cost model
//! at the maximum: write commits, reads, Kafka requests by type (the broker's
//! own counters) and CPU milliseconds by process, per saga.

use std::collections::BTreeMap;
use std::fmt::Write;

use anyhow::Context;
use serde_json::{Value, json};

use super::summary;
use crate::args::BenchReportArgs;
use crate::load::write_json;

/// The share of a ceiling that `sagas_per_sec` sagas costing `per_saga` each use.
pub fn ratio(sagas_per_sec: f64, per_saga: Option<f64>, ceiling: f64) -> Option<f64> {
    per_saga
        .filter(|_| ceiling > 0.0)
        .map(|cost| sagas_per_sec * cost / ceiling)
}

fn read(path: &std::path::Path) -> anyhow::Result<Value> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{} is not JSON", path.display()))
}

fn num(v: &Value) -> Option<f64> {
    v.as_f64()
}

/// The entries of a JSON object of numbers, the largest first.
fn largest_first(object: &Value) -> Vec<(&String, &Value)> {
    let mut entries: Vec<(&String, &Value)> = object.as_object().into_iter().flatten().collect();
    entries.sort_by(|a, b| num(b.1).unwrap_or(0.0).total_cmp(&num(a.1).unwrap_or(0.0)));
    entries
}

fn fmt(v: Option<f64>, decimals: usize) -> String {
    v.map_or("–".to_string(), |v| format!("{v:.decimals$}"))
}

fn pct(v: Option<f64>) -> String {
    v.map_or("–".to_string(), |v| format!("{:.1} %", v * 100.0))
}

fn run_name(load: &Value) -> String {
    match load["mode"].as_str() {
        Some("closed") => format!("closed loop, concurrency {}", load["concurrency"]),
        Some("open") => format!("open loop, {} orders/s offered", fmt(num(&load["rate"]), 1)),
        _ => "?".to_string(),
    }
}

/// Ratios of one load run against the ceilings.
pub fn ratios(load: &Value, kafka: &Value, pg: &Value) -> Value {
    let sagas = num(&load["sagas_per_sec"]).unwrap_or(0.0);
    let costs = &load["costs"];
    json!({
        "kafka": ratio(
            sagas,
            num(&costs["kafka_messages_per_saga"]),
            num(&kafka["produce_consume_per_sec"]).unwrap_or(0.0),
        ),
        "pg": ratio(
            sagas,
            num(&costs["pg_transactions_per_saga"]),
            num(&pg["transactions_per_sec"]).unwrap_or(0.0),
        ),
    })
}

/// The markdown tables of an assembled result.
pub fn markdown(result: &Value) -> String {
    let mut s = String::new();
    loads_table(&mut s, result);
    ramp_table(&mut s, result);
    curve_table(&mut s, &result["curve"]);
    costs_table(&mut s, result);
    ceilings_table(&mut s, &result["kafka"], &result["pg"]);
    rss_table(&mut s, &result["rss_kb"]);
    s
}

/// One row per load run: throughput, latency, costs, ratios, outcomes.
fn loads_table(s: &mut String, result: &Value) {
    let _ = writeln!(
        s,
        "| run | sagas/s | p50 ms | p90 ms | p99 ms | max ms | Kafka msgs/saga | PG tx/saga | PG statements/saga | Kafka ratio | PG ratio | outcomes | HTTP errors |"
    );
    let _ = writeln!(
        s,
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|"
    );
    for key in ["closed", "open"] {
        let load = &result[key];
        let lat = &load["latency_ms"];
        let outcomes = load["outcomes"]
            .as_object()
            .map(|o| {
                o.iter()
                    .map(|(k, v)| format!("{k} {v}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .unwrap_or_default();
        let errors = match load["http_errors"].as_object() {
            Some(e) if !e.is_empty() => e
                .iter()
                .map(|(k, v)| format!("{k}: {v}"))
                .collect::<Vec<_>>()
                .join(", "),
            _ => "none".to_string(),
        };
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            run_name(load),
            fmt(num(&load["sagas_per_sec"]), 1),
            fmt(num(&lat["p50"]), 0),
            fmt(num(&lat["p90"]), 0),
            fmt(num(&lat["p99"]), 0),
            fmt(num(&lat["max"]), 0),
            fmt(num(&load["costs"]["kafka_messages_per_saga"]), 2),
            fmt(num(&load["costs"]["pg_transactions_per_saga"]), 2),
            fmt(num(&load["costs"]["pg_statements_per_saga"]), 1),
            pct(num(&result["ratios"][key]["kafka"])),
            pct(num(&result["ratios"][key]["pg"])),
            outcomes,
            errors,
        );
    }
}

/// Latency against offered rate, one row per open-loop run (`summary::curve`).
fn curve_table(s: &mut String, curve: &Value) {
    let Some(points) = curve.as_array().filter(|c| !c.is_empty()) else {
        return;
    };
    let _ = writeln!(
        s,
        "\n| fraction of the maximum | offered orders/s | completed sagas/s | p50 ms | p90 ms | p99 ms | max ms | HTTP errors |\n|---:|---:|---:|---:|---:|---:|---:|---:|"
    );
    for p in points {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} | {} | {} |",
            fmt(num(&p["fraction"]), 2),
            fmt(num(&p["offered_per_sec"]), 1),
            fmt(num(&p["sagas_per_sec"]), 1),
            fmt(num(&p["p50_ms"]), 0),
            fmt(num(&p["p90_ms"]), 0),
            fmt(num(&p["p99_ms"]), 0),
            fmt(num(&p["max_ms"]), 0),
            p["http_errors"],
        );
    }
}

fn ceilings_table(s: &mut String, kafka: &Value, pg: &Value) {
    let _ = writeln!(s, "\n| ceiling (same machine, same run) | per second |");
    let _ = writeln!(s, "|---|---:|");
    let bytes = kafka["message_bytes"].as_u64().unwrap_or(0);
    let _ = writeln!(
        s,
        "| Kafka produce, {bytes}-byte messages, acks=all, idempotent | {} |",
        fmt(num(&kafka["produce_per_sec"]), 0)
    );
    let _ = writeln!(
        s,
        "| Kafka consume | {} |",
        fmt(num(&kafka["consume_per_sec"]), 0)
    );
    let _ = writeln!(
        s,
        "| **Kafka produce + consume** (the Kafka ceiling) | **{}** |",
        fmt(num(&kafka["produce_consume_per_sec"]), 0)
    );
    let _ = writeln!(
        s,
        "| **PostgreSQL insert + commit**, {} connections (the PostgreSQL ceiling) | **{}** |",
        pg["connections"],
        fmt(num(&pg["transactions_per_sec"]), 0)
    );
}

fn rss_table(s: &mut String, rss_kb: &Value) {
    let Some(rss) = rss_kb.as_object().filter(|r| !r.is_empty()) else {
        return;
    };
    let _ = writeln!(
        s,
        "\n| service | idle RSS MiB | peak RSS MiB |\n|---|---:|---:|"
    );
    for (service, kb) in rss {
        let mib = |v: &Value| fmt(num(v).map(|kb| kb / 1024.0), 1);
        let _ = writeln!(
            s,
            "| {service} | {} | {} |",
            mib(&kb["idle"]),
            mib(&kb["peak"])
        );
    }
}

/// The closed-loop ramp, one row per concurrency.
fn ramp_table(s: &mut String, result: &Value) {
    let Some(steps) = result["ramp"].as_array().filter(|r| !r.is_empty()) else {
        return;
    };
    let _ = writeln!(
        s,
        "\nClosed-loop ramp (no cost counters); the main run at concurrency {} gave {} sagas/s:\n\n| concurrency | orders | sagas/s | HTTP errors |\n|---:|---:|---:|---:|",
        result["best"]["concurrency"],
        fmt(num(&result["best"]["sagas_per_sec"]), 1),
    );
    for step in steps {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} |",
            step["concurrency"],
            step["orders"],
            fmt(num(&step["sagas_per_sec"]), 1),
            step["http_errors"],
        );
    }
}

/// What a saga cost at the closed-loop maximum (`summary::costs`).
fn costs_table(s: &mut String, result: &Value) {
    let costs = &result["costs"];
    let meta = &result["meta"];
    let wall = meta["closed_load_wall_secs"].as_str().unwrap_or("?");
    let _ = writeln!(
        s,
        "\n| per saga at the closed-loop maximum ({} sagas, concurrency {}; {wall} s wall, {} s of it placing orders, the rest settling) | per saga |\n|---|---:|",
        costs["sagas"],
        result["closed"]["concurrency"],
        fmt(num(&result["closed"]["elapsed_secs"]), 1),
    );
    let mut row = |name: String, v: &Value, decimals: usize| {
        let _ = writeln!(s, "| {name} | {} |", fmt(num(v), decimals));
    };
    row(
        "**PostgreSQL write commits**, services and gateway".into(),
        &costs["pg_write_commits_per_saga"],
        2,
    );
    row(
        "PostgreSQL write commits of the payment sandbox (an outside provider)".into(),
        &costs["pg_sandbox_write_commits_per_saga"],
        2,
    );
    row(
        "**PostgreSQL reads** (read-only transactions)".into(),
        &costs["pg_reads_per_saga"],
        2,
    );
    for (db, v) in costs["pg_gateway_reads_per_saga_by_database"]
        .as_object()
        .into_iter()
        .flatten()
    {
        row(format!("… of which the gateway's, in {db}"), v, 2);
    }
    row(
        "**Kafka requests** (Fetch + Produce)".into(),
        &costs["kafka_requests_per_saga"],
        2,
    );
    for (request, v) in largest_first(&costs["kafka_requests_by_type_per_saga"]) {
        row(format!("Kafka {request}"), v, 2);
    }
    row(
        "Kafka ListOffsets (the load's own settling probe, not the saga)".into(),
        &costs["kafka_load_list_offsets_per_saga"],
        2,
    );
    for (process, v) in largest_first(&costs["cpu_ms_per_saga"]) {
        row(format!("CPU ms, {process}"), v, 2);
    }
    row("**CPU ms, all**".into(), &costs["cpu_ms_per_saga_all"], 2);
    let _ = writeln!(
        s,
        "\nBest closed-loop sagas/s ÷ the PostgreSQL commit ceiling: {}",
        fmt(num(&result["sagas_per_pg_commit_ceiling"]), 3)
    );
}

pub fn run(args: &BenchReportArgs) -> anyhow::Result<()> {
    let kafka = read(&args.kafka)?;
    let pg = read(&args.pg)?;
    let closed = read(&args.closed)?;
    let open = read(&args.open)?;
    let read_all = |paths: &[std::path::PathBuf]| {
        paths
            .iter()
            .map(|path| read(path))
            .collect::<anyhow::Result<Vec<Value>>>()
    };
    let curve_runs = read_all(&args.curve)?;
    let ramp_steps = read_all(&args.ramp)?;
    let rss: BTreeMap<String, Value> = args
        .rss
        .iter()
        .map(|(name, idle, peak)| (name.clone(), json!({"idle": idle, "peak": peak})))
        .collect();
    let meta: BTreeMap<String, String> = args.meta.iter().cloned().collect();
    let summary = summary::summary(&closed, &ramp_steps, &curve_runs, &pg, &json!(meta));
    let mut result = json!({
        "meta": meta,
        "ratios": {
            "closed": ratios(&closed, &kafka, &pg),
            "open": ratios(&open, &kafka, &pg),
        },
        "kafka": kafka,
        "pg": pg,
        "closed": closed,
        "open": open,
        "curve_runs": curve_runs,
        "rss_kb": rss,
    });
    if let Some(object) = result.as_object_mut() {
        object.extend(summary);
    }
    write_json(&args.out, &result)?;
    print!("{}", markdown(&result));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratios_set_sagas_against_ceilings() {
        assert_eq!(ratio(100.0, Some(10.0), 4000.0), Some(0.25));
        assert_eq!(ratio(100.0, None, 4000.0), None);
        assert_eq!(ratio(100.0, Some(10.0), 0.0), None);
        let load = json!({"sagas_per_sec": 50.0, "costs": {"kafka_messages_per_saga": 8.0, "pg_transactions_per_saga": 20.0}});
        let r = ratios(
            &load,
            &json!({"produce_consume_per_sec": 40000.0}),
            &json!({"transactions_per_sec": 2000.0}),
        );
        assert_eq!(r["kafka"], json!(0.01));
        assert_eq!(r["pg"], json!(0.5));
    }

    #[test]
    fn the_table_names_runs_ramp_curve_costs_and_memory() {
        let load = |mode: Value| {
            let mut l = json!({
                "sagas_per_sec": 50.0,
                "latency_ms": {"p50": 40.0, "p90": 60.0, "p99": 90.0, "max": 120.0},
                "costs": {
                    "kafka_messages_per_saga": 8.0,
                    "pg_transactions_per_saga": 20.0,
                    "pg_statements_per_saga": 61.5,
                    "pg_write_commits_per_saga": 0.55,
                    "pg_sandbox_write_commits_per_saga": 1.0,
                    "pg_reads_per_saga": 0.3,
                    "pg_statements_per_saga_by_role": {"chorus_order/chorus_gateway_ro": 0.25},
                },
                "outcomes": {"CONFIRMED": 9},
                "completed": 1000,
                "orders": 1000,
                "elapsed_secs": 20.0,
                "http_errors": {},
            });
            l.as_object_mut()
                .unwrap()
                .extend(mode.as_object().unwrap().clone());
            l
        };
        let closed = load(json!({"mode": "closed", "concurrency": 64}));
        let pg = json!({"transactions_per_sec": 2000.0, "connections": 50});
        let meta = json!({
            "cpu_secs.postgres": "12.5",
            "cpu_secs.order": "3.0",
            "closed_load_wall_secs": "25.0",
            "kafka_requests.Produce": "1500",
            "kafka_requests.Fetch": "2500",
            "kafka_requests.ListOffsets": "300",
        });
        let mut result = json!({
            "kafka": {"produce_consume_per_sec": 40000.0, "message_bytes": 180},
            "pg": pg,
            "closed": closed,
            "open": load(json!({"mode": "open", "rate": 25.0, "offered_per_sec": 25.0})),
            "ratios": {"closed": {"kafka": 0.01, "pg": 0.5}, "open": {"kafka": 0.005, "pg": 0.25}},
            "rss_kb": {"order": {"idle": 10240, "peak": 20480}},
            "meta": meta,
        });
        let summary = summary::summary(
            &result["closed"],
            &[
                load(json!({"mode": "closed", "concurrency": 96, "sagas_per_sec": 40.0})),
                load(json!({"mode": "closed", "concurrency": 64, "sagas_per_sec": 55.0})),
            ],
            &[
                load(
                    json!({"mode": "open", "label": "curve-0.5", "offered_per_sec": 25.0, "sagas_per_sec": 25.0}),
                ),
                load(
                    json!({"mode": "open", "label": "curve-0.1", "offered_per_sec": 5.0, "sagas_per_sec": 5.0}),
                ),
            ],
            &pg,
            &meta,
        );
        result.as_object_mut().unwrap().extend(summary);
        let md = markdown(&result);
        assert!(md.contains("| closed loop, concurrency 64 | 50.0 | 40 | 60 | 90 | 120 | 8.00 | 20.00 | 61.5 | 1.0 % | 50.0 % | CONFIRMED 9 | none |"), "{md}");
        assert!(md.contains("open loop, 25.0 orders/s offered"), "{md}");
        assert!(
            md.contains("| 64 | 1000 | 55.0 | 0 |\n| 96 | 1000 | 40.0 | 0 |"),
            "{md}"
        );
        assert!(
            md.contains("| 0.10 | 5.0 | 5.0 | 40 | 60 | 90 | 120 | 0 |\n| 0.50 | 25.0 | 25.0 |"),
            "{md}"
        );
        for row in [
            "| **PostgreSQL write commits**, services and gateway | 0.55 |",
            "| PostgreSQL write commits of the payment sandbox (an outside provider) | 1.00 |",
            "| **PostgreSQL reads** (read-only transactions) | 0.30 |",
            "| … of which the gateway's, in chorus_order | 0.25 |",
            "| **Kafka requests** (Fetch + Produce) | 4.00 |",
            "| Kafka Fetch | 2.50 |\n| Kafka Produce | 1.50 |",
            "| Kafka ListOffsets (the load's own settling probe, not the saga) | 0.30 |",
            "| CPU ms, postgres | 12.50 |\n| CPU ms, order | 3.00 |\n| **CPU ms, all** | 15.50 |",
            "1000 sagas, concurrency 64; 25.0 s wall, 20.0 s of it placing orders",
            "commit ceiling: 0.025",
            "| **Kafka produce + consume** (the Kafka ceiling) | **40000** |",
            "| order | 10.0 | 20.0 |",
        ] {
            assert!(md.contains(row), "{row}\n{md}");
        }
    }
}
