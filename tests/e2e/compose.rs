//! `compose/` is checked, not only written: the compose file follows the
//! Compose Specification (its JSON schema, vendored as
//! `compose/compose-spec.json`, and `docker compose config` where the compose
//! plugin is installed), each chorus service sets exactly what its binary
//! reads and is accepted by the services' own configuration loaders,
//! Prometheus scrapes every service and Grafana finds its data sources.
//! Everything is read as the README's compose command gives it: the
//! variables that command sets, evaluated by bash, are the shell Compose
//! interpolates in. None of this needs the stack or a Docker engine.

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

use chorus_platform::{Env, KafkaSettings, registry_from_env};
use serde_json::Value;

use crate::binary_env::{Reads, scan, workspace_binaries};
use crate::compose_check::{
    ComposeCommand, README_COMPOSE, binaries_of, env_problems, interpolate, interpolated_variables,
    load, readme_compose_command, repo, required_variables, schema_problems, service_env,
};

fn compose_text() -> String {
    std::fs::read_to_string(repo().join("compose/docker-compose.yml")).unwrap()
}

fn readme_command() -> ComposeCommand {
    readme_compose_command().unwrap_or_else(|e| panic!("{e}"))
}

fn compose_file() -> Value {
    let path = repo().join("compose/docker-compose.yml");
    load(&std::fs::read_to_string(&path).unwrap())
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn yaml(relative: &str) -> Value {
    let path = repo().join(relative);
    load(&std::fs::read_to_string(&path).unwrap())
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn listed(problems: &[String]) -> String {
    problems.join("\n  ")
}

#[test]
fn the_compose_file_follows_the_compose_specification() {
    let problems = schema_problems(&compose_file());
    assert!(
        problems.is_empty(),
        "compose/docker-compose.yml:\n  {}",
        listed(&problems)
    );

    let plugin = Command::new("docker").args(["compose", "version"]).output();
    if plugin.is_ok_and(|out| out.status.success()) {
        // The README's command, with `config` in place of `up …`.
        let readme = readme_command();
        let up = readme.args.iter().position(|a| a == "up").unwrap();
        let config = Command::new("docker")
            .arg("compose")
            .args(&readme.args[..up])
            .args(["config", "--quiet"])
            .current_dir(repo())
            .envs(&readme.env)
            .output()
            .unwrap();
        assert!(
            config.status.success(),
            "docker compose config:\n{}",
            String::from_utf8_lossy(&config.stderr)
        );
    } else {
        eprintln!("docker compose is not installed: checked against the JSON schema only");
    }
}

#[test]
fn the_readme_compose_command_sets_every_variable_compose_requires() {
    let readme = readme_command();
    assert_eq!(
        readme.args[..3],
        ["-f", "compose/docker-compose.yml", "up"],
        "{}",
        readme.line
    );
    let text = compose_text();
    let required = required_variables(&text);
    assert!(
        required.contains("CHORUS_JWT_SECRET") && required.contains("CHORUS_PAYMENT_TOKEN_KEY"),
        "{required:?}"
    );
    let given: BTreeSet<String> = readme.env.keys().cloned().collect();
    let missing: Vec<_> = required.difference(&given).collect();
    assert!(
        missing.is_empty(),
        "the README's `{README_COMPOSE}` sets no {missing:?}, which compose/docker-compose.yml requires:\n  {}",
        readme.line
    );
    let used = interpolated_variables(&text);
    let unused: Vec<_> = given.difference(&used).collect();
    assert!(
        unused.is_empty(),
        "the README's command sets {unused:?}, which compose/docker-compose.yml never reads"
    );
    for (name, value) in &readme.env {
        assert!(!value.trim().is_empty(), "{name} comes out empty");
    }
}

#[test]
fn every_chorus_service_sets_only_what_its_binary_reads_and_all_it_requires() {
    let doc = compose_file();
    let binaries = workspace_binaries();
    for expected in [
        "chorus",
        "chorus-gateway",
        "chorus-order",
        "chorus-notification",
    ] {
        assert!(
            binaries.contains_key(expected),
            "binaries found: {binaries:?}"
        );
    }
    let problems = env_problems(&doc, &binaries, &readme_command().env);
    assert!(
        problems.is_empty(),
        "compose/docker-compose.yml:\n  {}",
        listed(&problems)
    );
}

#[test]
fn the_services_own_configuration_loaders_accept_the_compose_environment() {
    let doc = compose_file();
    let binaries = workspace_binaries();
    let shell = readme_command().env;
    let mut problems = Vec::new();
    for service in doc["services"].as_object().unwrap().keys() {
        for binary in binaries_of(&doc, service, &binaries) {
            if binary == "chorus" {
                continue; // the CLI takes its settings as flags, checked by clap
            }
            let env = service_env(&doc, service, &shell).unwrap();
            let pairs: Vec<(&str, &str)> =
                env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            let env = Env::from_pairs(&pairs);
            let mut check = |result: Result<(), chorus_platform::ConfigError>| {
                if let Err(e) = result {
                    problems.push(format!("{service} ({binary}): {e}"));
                }
            };
            check(KafkaSettings::from_env(&env).map(drop));
            check(registry_from_env(&env).map(drop));
            match binary.as_str() {
                "chorus-gateway" => check(chorus_gateway::GatewayConfig::from_env(&env).map(drop)),
                "chorus-payment" => check(chorus_payment::PaymentConfig::from_env(&env).map(drop)),
                "chorus-notification" => {
                    check(chorus_notification::NotificationConfig::from_env(&env).map(drop))
                }
                _ => {}
            }
        }
    }
    assert!(
        problems.is_empty(),
        "compose/docker-compose.yml:\n  {}",
        listed(&problems)
    );
}

#[test]
fn prometheus_scrapes_every_chorus_service_where_it_serves_metrics() {
    let doc = compose_file();
    let binaries = workspace_binaries();
    let shell = readme_command().env;
    let prometheus = yaml("compose/prometheus/prometheus.yml");
    let targets: BTreeSet<String> = prometheus["scrape_configs"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|job| {
            job["static_configs"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .flat_map(|config| config["targets"].as_array().cloned().unwrap_or_default())
        .map(|target| target.as_str().unwrap().to_string())
        .collect();
    let mut scraped = 0;
    for service in doc["services"].as_object().unwrap().keys() {
        if binaries_of(&doc, service, &binaries)
            .iter()
            .all(|b| b == "chorus")
        {
            continue; // infrastructure, or the one-shot CLI setup
        }
        let env = service_env(&doc, service, &shell).unwrap();
        // The gateway serves metrics on its admin address, workers on their only one.
        let addr = env
            .get("CHORUS_ADMIN_ADDR")
            .or_else(|| env.get("CHORUS_HTTP_ADDR"))
            .unwrap_or_else(|| panic!("{service} sets no CHORUS_HTTP_ADDR"));
        let port = addr.rsplit(':').next().unwrap();
        let target = format!("{service}:{port}");
        assert!(
            targets.contains(&target),
            "Prometheus does not scrape {target}: {targets:?}"
        );
        scraped += 1;
    }
    assert_eq!(scraped, 5, "the gateway and four workers");
}

#[test]
fn grafana_provisions_the_dashboard_with_the_data_sources_its_panels_use() {
    let datasources = yaml("compose/grafana/provisioning/datasources/datasources.yml");
    let uids: BTreeSet<&str> = datasources["datasources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|source| source["uid"].as_str().unwrap())
        .collect();
    let path = repo().join("compose/grafana/dashboards/chorus.json");
    let dashboard: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap())
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let panels = dashboard["panels"].as_array().unwrap();
    let titles: Vec<String> = panels
        .iter()
        .map(|p| p["title"].as_str().unwrap().to_lowercase())
        .collect();
    for topic in ["throughput", "latency", "lag", "dead", "stuck"] {
        assert!(
            titles.iter().any(|t| t.contains(topic)),
            "no {topic} panel in {titles:?}"
        );
    }
    for panel in panels.iter().filter(|p| p["type"] != "row") {
        let uid = panel["datasource"]["uid"].as_str().unwrap_or("");
        assert!(
            uids.contains(uid),
            "panel {:?} uses data source {uid:?}",
            panel["title"]
        );
        assert!(
            !panel["targets"].as_array().unwrap().is_empty(),
            "{}",
            panel["title"]
        );
    }
}

// The checks above catch what they are meant to catch.

#[test]
fn a_compose_file_that_breaks_the_specification_is_refused() {
    let broken = load(
        "services:\n  gateway:\n    image: chorus:local\n    ports: 8000\n    enviroment: {}\n",
    )
    .unwrap();
    let problems = schema_problems(&broken);
    assert!(
        problems.iter().any(|p| p.contains("enviroment")),
        "{problems:?}"
    );
    assert!(
        problems
            .iter()
            .any(|p| p.contains("/services/gateway/ports")),
        "{problems:?}"
    );
    assert!(load("services: [unclosed").is_err());
}

#[test]
fn a_misspelt_missing_or_empty_variable_and_an_unknown_binary_are_refused() {
    let mut binaries = workspace_binaries();
    let mut strict = Reads::default();
    scan(
        r#"env.required("CHORUS_MUST", "the service cannot run without it");
           env.required("CHORUS_SOMETIMES", "required when CHORUS_OTHER=yes");
           env.string("CHORUS_EMPTY_OK", "x");
           env.string("CHORUS_KEY", "");"#,
        &mut strict,
    );
    assert_eq!(strict.required, BTreeSet::from(["CHORUS_MUST".to_string()]));
    binaries.insert("chorus-strict".into(), strict);
    let doc = load(
        r#"
x-env: &env
  CHORUS_KAFKA_BROKERS: kafka:19092
services:
  order-worker:
    image: chorus:local
    command: ["chorus-order"]
    environment:
      <<: *env
      CHORUS_DATABSE_URL: postgres://chorus_order@postgres/chorus_order
      CHORUS_HTTP_ADDR: ${ORDER_ADDR}
  strict:
    image: chorus:local
    command: chorus-strict --serve
    environment: ["CHORUS_EMPTY_OK=x", "CHORUS_KEY=${THE_KEY:-}"]
  insisting:
    image: chorus:local
    command: chorus-strict
    environment:
      CHORUS_MUST: ${GIVEN:?set GIVEN}
      CHORUS_KEY: ${NOT_GIVEN:?set NOT_GIVEN}
  mystery:
    image: chorus:local
    command: ["sleep", "1"]
  postgres:
    image: postgres:16
"#,
    )
    .unwrap();

    let shell = BTreeMap::from([("GIVEN".to_string(), "yes".to_string())]);
    let problems: BTreeMap<usize, String> = env_problems(&doc, &binaries, &shell)
        .into_iter()
        .enumerate()
        .collect();
    let found = |needle: &str| problems.values().any(|p| p.contains(needle));
    assert!(
        found("order-worker: sets CHORUS_DATABSE_URL, which chorus-order never reads"),
        "{problems:?}"
    );
    assert!(
        found("order-worker: CHORUS_HTTP_ADDR comes out empty"),
        "{problems:?}"
    );
    assert!(found("strict: does not set CHORUS_MUST"), "{problems:?}");
    // A blank default is no value.
    assert!(found("strict: CHORUS_KEY comes out empty"), "{problems:?}");
    assert!(
        found("insisting: CHORUS_KEY: compose refuses to start: NOT_GIVEN is required"),
        "{problems:?}"
    );
    assert!(!found("CHORUS_SOMETIMES"), "{problems:?}");
    assert!(!found("CHORUS_KAFKA_BROKERS"), "{problems:?}");
    assert!(found("mystery: uses chorus:local"), "{problems:?}");
    assert!(!found("postgres"), "{problems:?}");
    assert_eq!(problems.len(), 6, "{problems:?}");
}

#[test]
fn interpolation_follows_compose() {
    let none = BTreeMap::new();
    assert_eq!(interpolate("${RUST_LOG:-info}", &none).unwrap(), "info");
    assert_eq!(interpolate("a${X-b}c", &none).unwrap(), "abc");
    assert_eq!(interpolate("${X}", &none).unwrap(), "");
    assert_eq!(interpolate("$X/y", &none).unwrap(), "/y");
    assert_eq!(interpolate("$$HOME", &none).unwrap(), "$HOME");
    assert!(
        interpolate("${CHORUS_JWT_SECRET:?set it}", &none)
            .unwrap_err()
            .contains("CHORUS_JWT_SECRET is required (set it)")
    );
    let blank = BTreeMap::from([("X".to_string(), String::new())]);
    assert_eq!(interpolate("${X:-d}", &blank).unwrap(), "d");
    assert_eq!(interpolate("${X-d}", &blank).unwrap(), "");
    assert!(interpolate("${X:?m}", &blank).is_err());
    assert_eq!(interpolate("${X?m}", &blank).unwrap(), "");
    let set = BTreeMap::from([("X".to_string(), "v".to_string())]);
    assert_eq!(interpolate("${X:?m}/$X/${X:-d}", &set).unwrap(), "v/v/v");
    assert!(interpolate("${UNCLOSED", &none).is_err());
    assert!(interpolate("price $ 5", &none).is_err());
}
