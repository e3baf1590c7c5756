//! `chorus bench report`: one `make bench` run's results (ceilings, the two
//! loads, memory) assembled into one JSON file and a markdown table, with
//! the load set against the ceilings:
//!
//! - Kafka ratio = sagas/s × Kafka messages per saga ÷ Kafka produce+consume ceiling
//! - PostgreSQL ratio = sagas/s × transactions per saga ÷ PostgreSQL commit ceiling
//!
//! and the cost model of the closed loop: CPU milliseconds per saga by
//! process, Kafka requests per saga by type (the broker's own counters), and
//! the curve of latency against offered rate.

use std::collections::BTreeMap;
use std::fmt::Write;

use anyhow::Context;
use serde_json::{Value, json};

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
    curve_table(&mut s, &result["curve"]);
    ceilings_table(&mut s, &result["kafka"], &result["pg"]);
    rss_table(&mut s, &result["rss_kb"]);
    meta_notes(&mut s, result);
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

/// Latency against offered rate, one row per open-loop run, slowest first.
fn curve_table(s: &mut String, curve: &Value) {
    let Some(runs) = curve.as_array().filter(|c| !c.is_empty()) else {
        return;
    };
    let mut runs: Vec<&Value> = runs.iter().collect();
    runs.sort_by(|a, b| {
        let rate = |v: &Value| num(&v["rate"]).unwrap_or(0.0);
        rate(a).total_cmp(&rate(b))
    });
    let _ = writeln!(
        s,
        "\n| offered orders/s | completed sagas/s | p50 ms | p90 ms | p99 ms | max ms | HTTP errors |\n|---:|---:|---:|---:|---:|---:|---:|"
    );
    for run in runs {
        let lat = &run["latency_ms"];
        let errors: u64 = run["http_errors"]
            .as_object()
            .map(|e| e.values().filter_map(Value::as_u64).sum())
            .unwrap_or(0);
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} | {errors} |",
            fmt(num(&run["rate"]), 1),
            fmt(num(&run["sagas_per_sec"]), 1),
            fmt(num(&lat["p50"]), 0),
            fmt(num(&lat["p90"]), 0),
            fmt(num(&lat["p99"]), 0),
            fmt(num(&lat["max"]), 0),
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

/// The ramp and the CPU per process, from the run's `--meta` facts.
fn meta_notes(s: &mut String, result: &Value) {
    let meta = result["meta"].as_object();
    let with_prefix = |prefix: &str| -> Vec<(String, f64)> {
        meta.into_iter()
            .flatten()
            .filter_map(|(k, v)| {
                let value = v.as_str()?.parse::<f64>().ok()?;
                Some((k.strip_prefix(prefix)?.to_string(), value))
            })
            .collect()
    };
    let mut ramp = with_prefix("ramp_sagas_per_sec.concurrency_");
    if !ramp.is_empty() {
        ramp.sort_by_key(|(c, _)| c.parse::<u64>().unwrap_or(0));
        let steps: Vec<String> = ramp.iter().map(|(c, v)| format!("{c} → {v:.1}")).collect();
        let _ = writeln!(
            s,
            "\nClosed-loop ramp (concurrency → sagas/s, no cost counters): {}",
            steps.join(", ")
        );
    }
    let mut cpu = with_prefix("cpu_secs.");
    if !cpu.is_empty() {
        cpu.sort_by(|a, b| b.1.total_cmp(&a.1));
        let wall = meta
            .and_then(|m| m.get("closed_load_wall_secs"))
            .and_then(Value::as_str)
            .unwrap_or("?");
        let placing = fmt(num(&result["closed"]["elapsed_secs"]), 1);
        let sagas = num(&result["closed"]["completed"]).filter(|n| *n > 0.0);
        let _ = writeln!(
            s,
            "\n| process: CPU during the closed-loop run ({wall} s wall, {placing} s of it placing orders, the rest settling) | CPU s | CPU ms per saga |\n|---|---:|---:|"
        );
        let mut total = 0.0;
        for (process, secs) in cpu {
            total += secs;
            let per_saga = fmt(sagas.map(|n| secs * 1000.0 / n), 2);
            let _ = writeln!(s, "| {process} | {secs:.1} | {per_saga} |");
        }
        let per_saga = fmt(sagas.map(|n| total * 1000.0 / n), 2);
        let _ = writeln!(s, "| **all** | **{total:.1}** | **{per_saga}** |");
    }
    let mut requests = with_prefix("kafka_requests.");
    if !requests.is_empty() {
        requests.sort_by(|a, b| b.1.total_cmp(&a.1));
        let sagas = num(&result["closed"]["completed"]).filter(|n| *n > 0.0);
        let _ = writeln!(
            s,
            "\n| Kafka requests during the closed-loop run (the broker's counters) | requests | per saga |\n|---|---:|---:|"
        );
        let mut total = 0.0;
        for (request, count) in requests {
            total += count;
            let per_saga = fmt(sagas.map(|n| count / n), 2);
            let _ = writeln!(s, "| {request} | {count:.0} | {per_saga} |");
        }
        let per_saga = fmt(sagas.map(|n| total / n), 2);
        let _ = writeln!(s, "| **all** | **{total:.0}** | **{per_saga}** |");
    }
}

pub fn run(args: &BenchReportArgs) -> anyhow::Result<()> {
    let kafka = read(&args.kafka)?;
    let pg = read(&args.pg)?;
    let closed = read(&args.closed)?;
    let open = read(&args.open)?;
    let curve = args
        .curve
        .iter()
        .map(|path| read(path))
        .collect::<anyhow::Result<Vec<Value>>>()?;
    let rss: BTreeMap<String, Value> = args
        .rss
        .iter()
        .map(|(name, idle, peak)| (name.clone(), json!({"idle": idle, "peak": peak})))
        .collect();
    let meta: BTreeMap<String, String> = args.meta.iter().cloned().collect();
    let result = json!({
        "meta": meta,
        "ratios": {
            "closed": ratios(&closed, &kafka, &pg),
            "open": ratios(&open, &kafka, &pg),
        },
        "kafka": kafka,
        "pg": pg,
        "closed": closed,
        "open": open,
        "curve": curve,
        "rss_kb": rss,
    });
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
    fn the_table_names_runs_ratios_and_memory() {
        let load = |mode: Value| {
            let mut l = json!({
                "sagas_per_sec": 50.0,
                "latency_ms": {"p50": 40.0, "p90": 60.0, "p99": 90.0, "max": 120.0},
                "costs": {"kafka_messages_per_saga": 8.0, "pg_transactions_per_saga": 20.0, "pg_statements_per_saga": 61.5},
                "outcomes": {"CONFIRMED": 9},
                "completed": 1000,
                "http_errors": {},
            });
            l.as_object_mut()
                .unwrap()
                .extend(mode.as_object().unwrap().clone());
            l
        };
        let result = json!({
            "kafka": {"produce_consume_per_sec": 40000.0, "message_bytes": 180},
            "pg": {"transactions_per_sec": 2000.0, "connections": 50},
            "closed": load(json!({"mode": "closed", "concurrency": 64})),
            "open": load(json!({"mode": "open", "rate": 25.0})),
            "curve": [
                load(json!({"mode": "open", "rate": 50.0})),
                load(json!({"mode": "open", "rate": 12.5})),
            ],
            "ratios": {"closed": {"kafka": 0.01, "pg": 0.5}, "open": {"kafka": 0.005, "pg": 0.25}},
            "rss_kb": {"order": {"idle": 10240, "peak": 20480}},
            "meta": {
                "cpu_secs.postgres": "12.5",
                "cpu_secs.order": "3.0",
                "closed_load_wall_secs": "20.0",
                "kafka_requests.Produce": "1500",
                "kafka_requests.Fetch": "2500",
                "ramp_sagas_per_sec.concurrency_96": "80.0",
                "ramp_sagas_per_sec.concurrency_24": "90.5",
            },
        });
        let md = markdown(&result);
        assert!(md.contains("| closed loop, concurrency 64 | 50.0 | 40 | 60 | 90 | 120 | 8.00 | 20.00 | 61.5 | 1.0 % | 50.0 % | CONFIRMED 9 | none |"), "{md}");
        assert!(
            md.contains("| 12.5 | 50.0 | 40 | 60 | 90 | 120 | 0 |\n| 50.0 | 50.0 |"),
            "{md}"
        );
        assert!(md.contains("open loop, 25.0 orders/s offered"), "{md}");
        assert!(
            md.contains("| **Kafka produce + consume** (the Kafka ceiling) | **40000** |"),
            "{md}"
        );
        assert!(md.contains("| order | 10.0 | 20.0 |"), "{md}");
        assert!(md.contains("24 → 90.5, 96 → 80.0"), "{md}");
        assert!(
            md.contains("| postgres | 12.5 | 12.50 |\n| order | 3.0 | 3.00 |\n| **all** | **15.5** | **15.50** |"),
            "{md}"
        );
        assert!(
            md.contains("| Fetch | 2500 | 2.50 |\n| Produce | 1500 | 1.50 |\n| **all** | **4000** | **4.00** |"),
            "{md}"
        );
    }
}
