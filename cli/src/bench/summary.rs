//! The figures of one `make bench` run under stable names, for scripts to
//! read: `ramp`, `best`, `curve`, `costs` (per saga, at the closed-loop
//! maximum), `pg_commit_ceiling` and `sagas_per_pg_commit_ceiling`. Pure
//! arithmetic over the parts the run wrote, so the tests check it.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

/// The load's own requests: `chorus load` reads every partition's high
/// watermark while it waits for the sagas to settle. Measurement, not saga.
const MEASUREMENT_REQUESTS: &[&str] = &["ListOffsets"];

/// What the saga asks of the broker: its consumers' fetches and its producers' produces.
const SAGA_REQUESTS: &[&str] = &["Fetch", "Produce"];

/// The numeric `--meta` facts whose key starts with `prefix`, the prefix taken off.
pub fn meta_numbers(meta: &Value, prefix: &str) -> BTreeMap<String, f64> {
    meta.as_object()
        .into_iter()
        .flatten()
        .filter_map(|(k, v)| {
            let value = match v {
                Value::String(s) => s.parse::<f64>().ok()?,
                other => other.as_f64()?,
            };
            Some((k.strip_prefix(prefix)?.to_string(), value))
        })
        .collect()
}

fn per(count: f64, sagas: f64) -> Value {
    if sagas > 0.0 {
        json!(count / sagas)
    } else {
        Value::Null
    }
}

/// One ramp step per closed-loop load result, by concurrency.
pub fn ramp(steps: &[Value]) -> Value {
    let mut rows: Vec<Value> = steps
        .iter()
        .map(|load| {
            json!({
                "concurrency": load["concurrency"],
                "orders": load["orders"],
                "sagas_per_sec": load["sagas_per_sec"],
                "http_errors": errors(load),
            })
        })
        .collect();
    rows.sort_by_key(|r| r["concurrency"].as_u64().unwrap_or(0));
    Value::Array(rows)
}

fn errors(load: &Value) -> u64 {
    load["http_errors"]
        .as_object()
        .map(|e| e.values().filter_map(Value::as_u64).sum())
        .unwrap_or(0)
}

/// The curve point of an open-loop result: its fraction of the closed
/// loop's sagas/s is named in its label (`curve-0.25`), or else computed.
pub fn curve_point(load: &Value, closed_sagas_per_sec: f64) -> Value {
    let offered = load["offered_per_sec"]
        .as_f64()
        .or_else(|| load["rate"].as_f64());
    let fraction = load["label"]
        .as_str()
        .and_then(|l| l.strip_prefix("curve-"))
        .and_then(|f| f.parse::<f64>().ok())
        .or_else(|| {
            offered
                .filter(|_| closed_sagas_per_sec > 0.0)
                .map(|o| (o / closed_sagas_per_sec * 100.0).round() / 100.0)
        });
    let lat = &load["latency_ms"];
    json!({
        "fraction": fraction,
        "offered_per_sec": offered,
        "sagas_per_sec": load["sagas_per_sec"],
        "p50_ms": lat["p50"],
        "p90_ms": lat["p90"],
        "p99_ms": lat["p99"],
        "max_ms": lat["max"],
        "http_errors": errors(load),
        "label": load["label"],
    })
}

/// Every open-loop run as a curve point, lowest offered rate first.
pub fn curve(runs: &[Value], closed_sagas_per_sec: f64) -> Value {
    let mut points: Vec<Value> = runs
        .iter()
        .map(|r| curve_point(r, closed_sagas_per_sec))
        .collect();
    points.sort_by(|a, b| {
        let rate = |v: &Value| v["offered_per_sec"].as_f64().unwrap_or(0.0);
        rate(a).total_cmp(&rate(b))
    });
    Value::Array(points)
}

/// The per-saga costs of the closed-loop run: PostgreSQL from its own cost
/// counters, Kafka requests and CPU from the run's `--meta` facts
/// (`kafka_requests.<type>` counts, `cpu_secs.<process>` seconds).
pub fn costs(closed: &Value, meta: &Value) -> Value {
    let sagas = closed["completed"].as_f64().unwrap_or(0.0);
    let load = &closed["costs"];
    let mut out = Map::new();
    out.insert("sagas".into(), json!(sagas as u64));
    for key in [
        "pg_write_commits_per_saga",
        "pg_sandbox_write_commits_per_saga",
        "pg_sandbox_reads_per_saga",
        "pg_reads_per_saga",
        "pg_rollbacks",
        "pg_write_transactions",
        "pg_other_database_transactions",
        "pg_transactions_per_saga",
        "pg_transactions_per_saga_by_database",
        "pg_statements_per_saga",
        "pg_statements_per_saga_by_role",
        "kafka_messages_per_saga",
    ] {
        out.insert(key.into(), load[key].clone());
    }
    // The gateway's read-only role only reads, one autocommit statement a
    // transaction: its statements are its reads, exactly, per database.
    let gateway_reads: Map<String, Value> = load["pg_statements_per_saga_by_role"]
        .as_object()
        .into_iter()
        .flatten()
        .filter_map(|(key, v)| {
            let (db, role) = key.split_once('/')?;
            role.ends_with("_ro").then(|| (db.to_string(), v.clone()))
        })
        .collect();
    out.insert(
        "pg_gateway_reads_per_saga_by_database".into(),
        Value::Object(gateway_reads),
    );

    let requests = meta_numbers(meta, "kafka_requests.");
    if !requests.is_empty() {
        let saga: f64 = SAGA_REQUESTS.iter().filter_map(|r| requests.get(*r)).sum();
        out.insert("kafka_requests_per_saga".into(), per(saga, sagas));
        let by_type: Map<String, Value> = requests
            .iter()
            .filter(|(r, _)| !MEASUREMENT_REQUESTS.contains(&r.as_str()))
            .map(|(r, n)| (r.clone(), per(*n, sagas)))
            .collect();
        out.insert(
            "kafka_requests_by_type_per_saga".into(),
            Value::Object(by_type),
        );
        let measurement: f64 = MEASUREMENT_REQUESTS
            .iter()
            .filter_map(|r| requests.get(*r))
            .sum();
        out.insert(
            "kafka_load_list_offsets_per_saga".into(),
            per(measurement, sagas),
        );
    }

    let cpu = meta_numbers(meta, "cpu_secs.");
    if !cpu.is_empty() {
        let by_process: Map<String, Value> = cpu
            .iter()
            .map(|(p, secs)| (p.clone(), per(secs * 1000.0, sagas)))
            .collect();
        out.insert("cpu_ms_per_saga".into(), Value::Object(by_process));
        out.insert(
            "cpu_ms_per_saga_all".into(),
            per(cpu.values().sum::<f64>() * 1000.0, sagas),
        );
    }
    Value::Object(out)
}

/// The top-level figures of a run (merged into the results JSON).
pub fn summary(
    closed: &Value,
    ramp_steps: &[Value],
    curve_runs: &[Value],
    pg: &Value,
    meta: &Value,
) -> Map<String, Value> {
    let best_sagas = closed["sagas_per_sec"].as_f64().unwrap_or(0.0);
    let ramp = ramp(ramp_steps);
    let ramp_best = ramp
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r["sagas_per_sec"].as_f64())
        .fold(None, |best: Option<f64>, s| {
            Some(best.map_or(s, |b| b.max(s)))
        });
    let ceiling = pg["transactions_per_sec"].as_f64();
    let mut out = Map::new();
    out.insert(
        "best".into(),
        json!({
            "concurrency": closed["concurrency"],
            "sagas_per_sec": closed["sagas_per_sec"],
            "ramp_sagas_per_sec": ramp_best,
        }),
    );
    out.insert("ramp".into(), ramp);
    out.insert("curve".into(), curve(curve_runs, best_sagas));
    out.insert("costs".into(), costs(closed, meta));
    out.insert("pg_commit_ceiling".into(), json!(ceiling));
    out.insert(
        "sagas_per_pg_commit_ceiling".into(),
        json!(ceiling.filter(|c| *c > 0.0).map(|c| best_sagas / c)),
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(extra: Value) -> Value {
        let mut l = json!({
            "sagas_per_sec": 500.0,
            "completed": 4000,
            "orders": 4000,
            "latency_ms": {"p50": 40.0, "p90": 60.0, "p99": 90.0, "max": 120.0},
            "http_errors": {},
        });
        l.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        l
    }

    fn closed() -> Value {
        load(json!({
            "mode": "closed",
            "concurrency": 384,
            "costs": {
                "pg_write_commits_per_saga": 0.55,
                "pg_sandbox_write_commits_per_saga": 1.0,
                "pg_reads_per_saga": 0.25,
                "pg_statements_per_saga_by_role": {
                    "chorus_order/chorus_gateway_ro": 0.2,
                    "chorus_order/chorus_order": 1.5,
                    "chorus_inventory/chorus_gateway_ro": 0.05,
                },
            },
        }))
    }

    fn meta() -> Value {
        json!({
            "kafka_requests.Fetch": "4000",
            "kafka_requests.Produce": "2000",
            "kafka_requests.ListOffsets": "800",
            "kafka_requests.Metadata": "40",
            "cpu_secs.postgres": "6.0",
            "cpu_secs.gateway": "2.0",
            "machine": "2 cores",
        })
    }

    #[test]
    fn costs_divide_the_closed_runs_counts_by_its_sagas() {
        let c = costs(&closed(), &meta());
        assert_eq!(c["sagas"], json!(4000));
        assert_eq!(c["pg_write_commits_per_saga"], json!(0.55));
        assert_eq!(c["pg_sandbox_write_commits_per_saga"], json!(1.0));
        assert_eq!(c["pg_reads_per_saga"], json!(0.25));
        // Fetch + Produce only; the load's ListOffsets apart and out of the types.
        assert_eq!(c["kafka_requests_per_saga"], json!(1.5));
        assert_eq!(c["kafka_load_list_offsets_per_saga"], json!(0.2));
        assert_eq!(
            c["kafka_requests_by_type_per_saga"],
            json!({"Fetch": 1.0, "Produce": 0.5, "Metadata": 0.01})
        );
        assert_eq!(
            c["cpu_ms_per_saga"],
            json!({"postgres": 1.5, "gateway": 0.5})
        );
        assert_eq!(c["cpu_ms_per_saga_all"], json!(2.0));
        assert_eq!(
            c["pg_gateway_reads_per_saga_by_database"],
            json!({"chorus_order": 0.2, "chorus_inventory": 0.05})
        );
    }

    #[test]
    fn without_counters_the_costs_say_so_rather_than_zero() {
        let c = costs(&load(json!({"completed": 0})), &json!({}));
        assert_eq!(c["pg_write_commits_per_saga"], Value::Null);
        assert!(c.get("kafka_requests_per_saga").is_none());
        let c = costs(&load(json!({"completed": 0})), &meta());
        assert_eq!(c["kafka_requests_per_saga"], Value::Null);
    }

    #[test]
    fn the_summary_names_ramp_best_curve_and_the_ceiling_ratio() {
        let ramp_steps = [
            load(json!({"concurrency": 768, "sagas_per_sec": 480.0})),
            load(json!({"concurrency": 96, "sagas_per_sec": 300.0, "http_errors": {"connect": 2}})),
            load(json!({"concurrency": 384, "sagas_per_sec": 520.0})),
        ];
        let curve_runs = [
            load(json!({"label": "open", "offered_per_sec": 250.0, "sagas_per_sec": 249.0})),
            load(json!({"label": "curve-0.1", "offered_per_sec": 50.0, "sagas_per_sec": 50.0})),
        ];
        let s = summary(
            &closed(),
            &ramp_steps,
            &curve_runs,
            &json!({"transactions_per_sec": 10000.0}),
            &meta(),
        );
        let concurrencies: Vec<u64> = s["ramp"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["concurrency"].as_u64().unwrap())
            .collect();
        assert_eq!(concurrencies, [96, 384, 768]);
        assert_eq!(s["ramp"][0]["http_errors"], json!(2));
        assert_eq!(
            s["best"],
            json!({"concurrency": 384, "sagas_per_sec": 500.0, "ramp_sagas_per_sec": 520.0})
        );
        assert_eq!(s["pg_commit_ceiling"], json!(10000.0));
        assert_eq!(s["sagas_per_pg_commit_ceiling"], json!(0.05));
        // Lowest rate first; the fraction from the label, or offered ÷ best.
        assert_eq!(s["curve"][0]["fraction"], json!(0.1));
        assert_eq!(s["curve"][1]["fraction"], json!(0.5));
        assert_eq!(s["curve"][1]["offered_per_sec"], json!(250.0));
        assert_eq!(s["curve"][1]["sagas_per_sec"], json!(249.0));
        assert_eq!(s["curve"][1]["p99_ms"], json!(90.0));
        assert_eq!(s["curve"][1]["max_ms"], json!(120.0));
        assert_eq!(s["costs"]["kafka_requests_per_saga"], json!(1.5));
    }
}
