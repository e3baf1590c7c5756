//! Every metric an alert rule (`compose/prometheus/alerts.yml`, or any rule
//! file compose's Prometheus loads) or a Grafana panel
//! (`compose/grafana/dashboards/*.json`) names is exported by a service:
//! checked against real `/metrics` scrapes of a running deployment, after
//! the events that create the series made on first use (an order, a dead
//! letter, a retried message). Also: every rule file is loaded, and every
//! rule has its `for`, severity, summary and a runbook section that exists.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use chorus_avro::Topic;
use chorus_tests::saga::{Saga, WORKERS, sku};
use rdkafka::producer::FutureRecord;
use serde_json::Value;

use crate::compose_check::{load, repo};

/// Series Prometheus records itself for every target; no service exports them.
const PROMETHEUS_OWN: [&str; 1] = ["up"];

/// Identifiers of PromQL that are never metric names when not followed by
/// `(`: aggregation operators (`sum by (x) (…)`), binary and set operators,
/// modifiers, and the special float literals.
const NOT_METRICS: [&str; 22] = [
    "sum",
    "min",
    "max",
    "avg",
    "group",
    "stddev",
    "stdvar",
    "count",
    "count_values",
    "bottomk",
    "topk",
    "quantile",
    "limitk",
    "limit_ratio",
    "and",
    "or",
    "unless",
    "atan2",
    "bool",
    "offset",
    "inf",
    "nan",
];

/// Keywords followed by a parenthesised list of label names.
const LABEL_LISTS: [&str; 6] = [
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
];

/// The metric names a PromQL expression reads. Skipped: strings, label
/// matchers `{…}`, ranges and subqueries `[…]`, numbers and durations,
/// Grafana variables (`$__rate_interval`), comments, function and
/// aggregation calls, keywords and their label lists. Histogram series keep
/// their suffix (`…_bucket`), as they are written in the exposition.
fn metric_names(expr: &str) -> BTreeSet<String> {
    let chars: Vec<char> = expr.chars().collect();
    let mut names = BTreeSet::new();
    let mut labels_follow = false;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if matches!(c, '"' | '\'' | '`') {
            i = past_string(&chars, i);
        } else if c == '{' {
            i = past_closing(&chars, i, '}');
        } else if c == '[' {
            i = past_closing(&chars, i, ']');
        } else if c == '(' && labels_follow {
            i = past_closing(&chars, i, ')');
            labels_follow = false;
        } else if c == '#' {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '$' || c.is_ascii_digit() || (c == '.' && next_is_digit(&chars, i)) {
            // A variable, a number (1e3, 0x1f) or a duration (5m): one word.
            i += 1;
            while i < chars.len() && (is_word(chars[i]) || chars[i] == '.') {
                i += 1;
            }
        } else if c.is_ascii_alphabetic() || c == '_' || c == ':' {
            let start = i;
            while i < chars.len() && is_word(chars[i]) {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            let mut next = i;
            while next < chars.len() && chars[next].is_whitespace() {
                next += 1;
            }
            if LABEL_LISTS.contains(&word.as_str()) {
                labels_follow = true;
            } else if chars.get(next) != Some(&'(') && !NOT_METRICS.contains(&word.as_str()) {
                names.insert(word);
            }
        } else {
            i += 1;
        }
    }
    names
}

fn is_word(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == ':'
}

fn next_is_digit(chars: &[char], i: usize) -> bool {
    chars.get(i + 1).is_some_and(char::is_ascii_digit)
}

/// The index just past the string opening at `i` (backslash escapes
/// honoured, except in raw backtick strings).
fn past_string(chars: &[char], i: usize) -> usize {
    let quote = chars[i];
    let mut j = i + 1;
    while j < chars.len() && chars[j] != quote {
        if chars[j] == '\\' && quote != '`' {
            j += 1;
        }
        j += 1;
    }
    j + 1
}

/// The index just past the `close` matching the opener at `i`, strings and
/// nested openers skipped.
fn past_closing(chars: &[char], i: usize, close: char) -> usize {
    let open = chars[i];
    let mut depth = 0;
    let mut j = i;
    while j < chars.len() {
        match chars[j] {
            '"' | '\'' | '`' => {
                j = past_string(chars, j);
                continue;
            }
            c if c == open => depth += 1,
            c if c == close => {
                depth -= 1;
                if depth == 0 {
                    return j + 1;
                }
            }
            _ => {}
        }
        j += 1;
    }
    j
}

/// The metric names a Prometheus text exposition offers: each sample's, and
/// each declared family's (with `_bucket`, `_sum`, `_count` for histograms
/// and summaries, which may have no sample yet).
fn exported_names(exposition: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for line in exposition.lines() {
        if let Some(declared) = line.strip_prefix("# TYPE ") {
            let mut words = declared.split_whitespace();
            let (Some(name), Some(kind)) = (words.next(), words.next()) else {
                continue;
            };
            names.insert(name.to_string());
            if matches!(kind, "histogram" | "summary") {
                for suffix in ["_bucket", "_sum", "_count"] {
                    names.insert(format!("{name}{suffix}"));
                }
            }
        } else if !line.starts_with('#') && !line.trim().is_empty() {
            let end = line.find(['{', ' ']).unwrap_or(line.len());
            names.insert(line[..end].to_string());
        }
    }
    names
}

/// The rule files compose's Prometheus loads, as files in the repository:
/// each `rule_files` entry of `compose/prometheus/prometheus.yml` must be
/// mounted into the prometheus service by `compose/docker-compose.yml`.
fn rule_files() -> Vec<PathBuf> {
    let compose_dir = repo().join("compose");
    let prometheus = yaml(&compose_dir.join("prometheus/prometheus.yml"));
    let compose = yaml(&compose_dir.join("docker-compose.yml"));
    let mounts: BTreeMap<&str, &str> = compose["services"]["prometheus"]["volumes"]
        .as_array()
        .expect("the prometheus service mounts its configuration")
        .iter()
        .filter_map(|volume| {
            let mut parts = volume.as_str()?.split(':');
            let (source, target) = (parts.next()?, parts.next()?);
            Some((target, source))
        })
        .collect();
    prometheus["rule_files"]
        .as_array()
        .expect("prometheus.yml lists rule_files")
        .iter()
        .map(|entry| {
            let path = entry.as_str().unwrap();
            let source = mounts.get(path).unwrap_or_else(|| {
                panic!("rule file {path} is not mounted into the prometheus service: {mounts:?}")
            });
            compose_dir.join(source)
        })
        .collect()
}

fn yaml(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    load(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Every alerting or recording rule of the loaded rule files.
fn rules() -> Vec<Value> {
    rule_files()
        .iter()
        .flat_map(|path| {
            yaml(path)["groups"]
                .as_array()
                .unwrap_or_else(|| panic!("{}: no groups", path.display()))
                .iter()
                .flat_map(|group| group["rules"].as_array().cloned().unwrap_or_default())
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Every panel of a dashboard, those inside collapsed rows included.
fn panels(list: &Value) -> Vec<Value> {
    let mut all = Vec::new();
    for panel in list.as_array().into_iter().flatten() {
        all.push(panel.clone());
        all.extend(panels(&panel["panels"]));
    }
    all
}

/// Each metric name a rule or dashboard panel reads, with who reads it.
fn named_metrics() -> BTreeMap<String, BTreeSet<String>> {
    let mut named: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut add = |expr: &str, user: String| {
        for name in metric_names(expr) {
            named.entry(name).or_default().insert(user.clone());
        }
    };
    for rule in rules() {
        let who = rule["alert"]
            .as_str()
            .or(rule["record"].as_str())
            .unwrap_or("?");
        add(rule["expr"].as_str().unwrap_or(""), format!("rule {who}"));
    }
    let dashboards = repo().join("compose/grafana/dashboards");
    for entry in std::fs::read_dir(&dashboards).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("json") {
            continue;
        }
        let dashboard: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap())
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        for panel in panels(&dashboard["panels"]) {
            let title = panel["title"].as_str().unwrap_or("?").to_string();
            for target in panel["targets"].as_array().into_iter().flatten() {
                if let Some(expr) = target["expr"].as_str() {
                    add(expr, format!("panel {title:?}"));
                }
            }
        }
    }
    named
}

/// GitHub's anchor of a Markdown heading.
fn anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || matches!(c, ' ' | '-' | '_'))
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

#[test]
fn metric_names_are_read_out_of_promql() {
    let names = |expr: &str| -> Vec<String> { metric_names(expr).into_iter().collect() };
    assert_eq!(
        names(
            r#"histogram_quantile(0.99, sum by (worker, le) (rate(chorus_message_processing_seconds_bucket{topic=~"a|b}"}[5m])))"#
        ),
        ["chorus_message_processing_seconds_bucket"]
    );
    assert_eq!(
        names(
            "sum(chorus_orders{status!~\"CONFIRMED|CANCELLED\"})\n  > 120 * (sum(rate(chorus_gateway_orders_accepted_total[5m])) or vector(0))"
        ),
        ["chorus_gateway_orders_accepted_total", "chorus_orders"]
    );
    assert_eq!(
        names(
            "a_total unless on (job) group_left (x) b offset 10m and c > bool 1e3 # d\n or max_over_time(e[$__rate_interval:1m]) / .5"
        ),
        ["a_total", "b", "c", "e"]
    );
    assert_eq!(names(r#"up{job=~"chorus-.*"} == 0"#), ["up"]);
    assert_eq!(
        exported_names(
            "# HELP h x\n# TYPE h histogram\n# TYPE v counter\nc_total{a=\"1\"} 2\ng 0\n"
        )
        .into_iter()
        .collect::<Vec<_>>(),
        ["c_total", "g", "h", "h_bucket", "h_count", "h_sum", "v"]
    );
}

#[test]
fn every_alert_has_its_wait_severity_summary_and_runbook_section() {
    let runbook = std::fs::read_to_string(repo().join("docs/runbook.md")).unwrap();
    let sections: BTreeSet<String> = runbook
        .lines()
        .filter_map(|line| line.strip_prefix("## "))
        .map(anchor)
        .collect();
    let rules = rules();
    let mut alerts = BTreeSet::new();
    for rule in rules.iter().filter(|rule| rule["alert"].is_string()) {
        let name = rule["alert"].as_str().unwrap();
        alerts.insert(anchor(name));
        assert!(rule["expr"].is_string(), "{name}: no expr");
        assert!(rule["for"].is_string(), "{name}: no `for`");
        let severity = rule["labels"]["severity"].as_str();
        assert!(
            matches!(severity, Some("warning" | "critical")),
            "{name}: severity {severity:?}"
        );
        assert!(
            rule["annotations"]["summary"].is_string(),
            "{name}: no summary"
        );
        let url = rule["annotations"]["runbook_url"].as_str().unwrap_or("");
        let section = url.strip_prefix("docs/runbook.md#").unwrap_or_else(|| {
            panic!("{name}: runbook_url {url:?} is not docs/runbook.md#<section>")
        });
        assert!(
            sections.contains(section),
            "{name}: docs/runbook.md has no section #{section}: {sections:?}"
        );
    }
    assert!(alerts.len() >= 7, "{alerts:?}");
    for section in sections.iter().filter(|s| s.starts_with("chorus")) {
        assert!(
            alerts.contains(section),
            "docs/runbook.md#{section} has no alert"
        );
    }
}

#[test]
fn prometheus_loads_every_rule_file_in_compose() {
    let loaded: BTreeSet<PathBuf> = rule_files()
        .iter()
        .map(|p| p.canonicalize().unwrap())
        .collect();
    let dir = repo().join("compose/prometheus");
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let is_yaml = matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("yml" | "yaml")
        );
        if is_yaml && !path.ends_with("prometheus.yml") {
            assert!(
                loaded.contains(&path.canonicalize().unwrap()),
                "{} is not loaded by compose's Prometheus",
                path.display()
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_metric_a_rule_or_panel_names_is_exported_by_a_service() {
    let named = named_metrics();
    assert!(named.len() >= 10, "{named:?}");
    let saga = Saga::start().await;

    // An order end to end: messages consumed, processed and timed, a
    // payment call, an order census, gateway requests.
    let mug = sku("METRICS-MUG");
    saga.set_stock(&mug, 10, "4.00").await;
    let first = saga.place_ok("mia", &[(&mug, 1)], "tok_ok").await;
    saga.wait_final("mia", &first, Duration::from_secs(60))
        .await;

    // A dead letter: bytes that are no event, on the orders topic.
    let orders = saga.topics.name(Topic::Orders);
    saga.stack
        .producer()
        .send(
            FutureRecord::to(&orders)
                .key("metrics-poison")
                .payload(b"not an event".as_slice()),
            Duration::from_secs(10),
        )
        .await
        .unwrap_or_else(|(e, _)| panic!("producing to {orders}: {e}"));

    // A retried message and a paused partition: the notification worker's
    // inbox refuses every write with a serialization failure (transient)
    // until the hold is lifted.
    let notification_db = saga.db("notification").await;
    sqlx::raw_sql(
        "CREATE FUNCTION metrics_hold() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN RAISE EXCEPTION 'held by the metrics test' USING ERRCODE = '40001'; END $$;
         CREATE TRIGGER metrics_hold BEFORE INSERT ON inbox
             FOR EACH STATEMENT EXECUTE FUNCTION metrics_hold();",
    )
    .execute(&notification_db)
    .await
    .unwrap();
    let second = saga.place_ok("mia", &[(&mug, 1)], "tok_ok").await;

    let services: Vec<&str> = WORKERS.iter().copied().chain(["gateway"]).collect();
    let mut exported: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    let missing = |exported: &BTreeMap<&str, BTreeSet<String>>| -> Vec<String> {
        named
            .keys()
            .filter(|name| !PROMETHEUS_OWN.contains(&name.as_str()))
            .filter(|name| !exported.values().any(|names| names.contains(*name)))
            .cloned()
            .collect()
    };
    for _ in 0..120 {
        for service in &services {
            let url = saga.admin_url(service, "/metrics");
            let response = saga.http.get(&url).send().await.unwrap();
            assert_eq!(response.status(), 200, "GET {url}");
            let text = response.text().await.unwrap();
            exported
                .entry(*service)
                .or_default()
                .extend(exported_names(&text));
        }
        if missing(&exported).is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }

    sqlx::raw_sql("DROP TRIGGER metrics_hold ON inbox; DROP FUNCTION metrics_hold();")
        .execute(&notification_db)
        .await
        .unwrap();
    // Held, retried, never skipped: delivered once the hold is lifted.
    saga.wait_final("mia", &second, Duration::from_secs(60))
        .await;
    assert_eq!(saga.deliveries(Some(second.as_str()), 1).await.0, 1);

    let missing = missing(&exported);
    let report: Vec<String> = missing
        .iter()
        .map(|name| {
            let users: Vec<&str> = named[name].iter().map(String::as_str).collect();
            format!("{name} (used by {})", users.join(", "))
        })
        .collect();
    let offered: BTreeSet<&String> = exported
        .values()
        .flatten()
        .filter(|n| n.starts_with("chorus_"))
        .collect();
    assert!(
        missing.is_empty(),
        "metrics a rule or panel names that no service exports:\n  {}\nexported: {offered:?}",
        report.join("\n  ")
    );
}
