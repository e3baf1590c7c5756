//! The compose check's machinery: reads a compose file as Compose does (YAML
//! merge keys applied, `${…}` interpolated), validates it against the Compose
//! Specification's JSON schema, and compares each chorus service's `CHORUS_*`
//! environment with the variables its binary reads, derived from the
//! workspace's source so that the two cannot drift apart unnoticed.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use serde_json::Value;

use crate::binary_env::Reads;

/// The repository root.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// A compose file's text as Compose sees it: YAML with `<<` merges applied,
/// as JSON.
pub fn load(text: &str) -> Result<Value, String> {
    let mut yaml: serde_norway::Value =
        serde_norway::from_str(text).map_err(|e| format!("not YAML: {e}"))?;
    yaml.apply_merge()
        .map_err(|e| format!("bad merge key: {e}"))?;
    serde_json::to_value(&yaml).map_err(|e| format!("not representable as JSON: {e}"))
}

/// Where `doc` breaks the Compose Specification. `compose/compose-spec.json`
/// is compose-spec's `schema/compose-spec.json` (JSON Schema 2020-12, with
/// `name`, `include`, `models`), vendored as PyPI's check-jsonschema 0.39.0
/// ships it (`check_jsonschema/builtin_schemas/vendor/compose-spec.json`,
/// sha256 d549057e…0e64; licence in `compose/compose-spec.LICENSE`). To
/// update: `pip download --no-deps check-jsonschema==<v>` and copy that file.
pub fn schema_problems(doc: &Value) -> Vec<String> {
    let path = repo().join("compose/compose-spec.json");
    let schema: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap())
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let validator = jsonschema::validator_for(&schema).expect("the Compose schema compiles");
    validator
        .iter_errors(doc)
        .map(|e| format!("{}: {e}", e.instance_path()))
        .collect()
}

/// A compose file's `${…}` text as Compose interpolates it in `env` (the
/// shell's environment): `${VAR}` and `$VAR` (blank when unset),
/// `${VAR:-default}` (unset or blank), `${VAR-default}` (unset),
/// `${VAR:?message}` and `${VAR?message}` (Compose refuses to start without
/// a value: an error here), and `$$`.
pub fn interpolate(text: &str, env: &BTreeMap<String, String>) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some(body) = after.strip_prefix('{') {
            let end = body
                .find('}')
                .ok_or_else(|| format!("unclosed ${{ in {text:?}"))?;
            let expression = &body[..end];
            let name_end = expression
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(expression.len());
            let (name, operator) = expression.split_at(name_end);
            if name.is_empty() {
                return Err(format!("no variable name in ${{{expression}}}"));
            }
            let set = env.get(name);
            let filled = set.filter(|v| !v.is_empty());
            let value = match operator {
                "" => set.cloned().unwrap_or_default(),
                o if o.starts_with(":-") => filled.cloned().unwrap_or_else(|| o[2..].to_string()),
                o if o.starts_with('-') => set.cloned().unwrap_or_else(|| o[1..].to_string()),
                o if o.starts_with(":?") || o.starts_with('?') => {
                    let given = if o.starts_with(':') { filled } else { set };
                    given.cloned().ok_or_else(|| {
                        let message = o.trim_start_matches(':')[1..].trim();
                        format!("compose refuses to start: {name} is required ({message})")
                    })?
                }
                o => return Err(format!("unsupported interpolation ${{{name}{o}}}")),
            };
            out.push_str(&value);
            rest = &body[end + 1..];
        } else {
            let name_end = after
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(after.len());
            if name_end == 0 {
                return Err(format!("a lone $ in {text:?} (write $$)"));
            }
            out.push_str(env.get(&after[..name_end]).map_or("", String::as_str));
            rest = &after[name_end..];
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// The variables a compose file insists on (`${VAR:?…}`, `${VAR?…}`):
/// without them Compose starts nothing.
pub fn required_variables(text: &str) -> BTreeSet<String> {
    text.split("${")
        .skip(1)
        .filter_map(|body| {
            let end = body.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))?;
            let operator = &body[end..];
            (operator.starts_with(":?") || operator.starts_with('?'))
                .then(|| body[..end].to_string())
        })
        .collect()
}

/// Every variable a compose file interpolates.
pub fn interpolated_variables(text: &str) -> BTreeSet<String> {
    text.split("${")
        .skip(1)
        .map(|body| {
            let end = body
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(body.len());
            body[..end].to_string()
        })
        .collect()
}

/// The command README.md gives to run everything with Docker, as a user's
/// shell runs it: the variables it sets (their `$(…)` evaluated by bash) and
/// the words after `docker compose`.
#[derive(Debug)]
pub struct ComposeCommand {
    pub line: String,
    pub env: BTreeMap<String, String>,
    pub args: Vec<String>,
}

pub const README_COMPOSE: &str = "docker compose -f compose/docker-compose.yml up";

/// The README's one line that runs `docker compose … up` on the whole file
/// (with `--build`: the services included).
pub fn readme_compose_command() -> Result<ComposeCommand, String> {
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    let lines: Vec<&str> = readme
        .lines()
        .filter(|l| l.contains(README_COMPOSE) && l.contains("--build"))
        .collect();
    let [line] = lines[..] else {
        return Err(format!(
            "README.md should hold one `{README_COMPOSE} … --build` line, found {lines:?}"
        ));
    };
    let at = line.find("docker compose").unwrap();
    let (prefix, command) = line.split_at(at);
    let args: Vec<String> = command
        .split_whitespace()
        .skip(2)
        .map(String::from)
        .collect();
    let names: Vec<String> = prefix
        .split_whitespace()
        .filter_map(|word| {
            let (name, _) = word.split_once('=')?;
            name.chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
                .then(|| name.to_string())
        })
        .collect();
    let mut shell = std::process::Command::new("bash");
    shell.arg("-c").arg(format!("{prefix} printenv -0"));
    for name in &names {
        shell.env_remove(name);
    }
    let out = shell.output().map_err(|e| format!("bash: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "the README's variables do not evaluate in bash: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let printed = String::from_utf8(out.stdout).unwrap();
    let env = printed
        .split('\0')
        .filter_map(|pair| pair.split_once('='))
        .filter(|(name, _)| names.iter().any(|n| n == name))
        .map(|(name, value)| (name.to_string(), value.to_string()))
        .collect();
    Ok(ComposeCommand {
        line: line.trim().to_string(),
        env,
        args,
    })
}

/// The environment of `service` (mapping or `KEY=value` list), interpolated
/// in `shell` (the variables the user's command sets).
pub fn service_env(
    doc: &Value,
    service: &str,
    shell: &BTreeMap<String, String>,
) -> Result<BTreeMap<String, String>, String> {
    let scalar = |v: &Value| match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    };
    let pairs: Vec<(String, String)> = match &doc["services"][service]["environment"] {
        Value::Null => Vec::new(),
        Value::Object(map) => map.iter().map(|(k, v)| (k.clone(), scalar(v))).collect(),
        Value::Array(items) => items
            .iter()
            .map(|item| {
                let item = scalar(item);
                let (k, v) = item.split_once('=').unwrap_or((&item, ""));
                (k.to_string(), v.to_string())
            })
            .collect(),
        other => return Err(format!("{service}: environment is {other}")),
    };
    pairs
        .into_iter()
        .map(|(k, v)| {
            let value = interpolate(&v, shell).map_err(|e| format!("{service}: {k}: {e}"))?;
            Ok((k, value))
        })
        .collect()
}

/// The workspace binaries `service` runs, from the words of its command;
/// none unless it runs the chorus image (another image's command may name a
/// chorus service's user, say, without running it).
pub fn binaries_of(doc: &Value, service: &str, binaries: &BTreeMap<String, Reads>) -> Vec<String> {
    if doc["services"][service]["image"].as_str() != Some(CHORUS_IMAGE) {
        return Vec::new();
    }
    let command = match &doc["services"][service]["command"] {
        Value::Array(words) => words
            .iter()
            .map(|w| w.as_str().unwrap_or("").to_string())
            .collect::<Vec<_>>()
            .join(" "),
        Value::String(line) => line.clone(),
        _ => String::new(),
    };
    let words: BTreeSet<&str> = command
        .split(|c: char| c.is_whitespace() || c == ';' || c == '&' || c == '|')
        .collect();
    binaries
        .keys()
        .filter(|name| words.contains(name.as_str()))
        .cloned()
        .collect()
}

/// Where the chorus services' `CHORUS_*` environment, interpolated in
/// `shell`, and their binaries disagree: a variable no binary of the service
/// reads (a typo, or a setting that went away), one a binary requires that
/// is not set, one that comes out empty (a blank `${X:-}` included), one
/// Compose would refuse to start without, or a service built from the
/// chorus image that runs no known binary.
pub fn env_problems(
    doc: &Value,
    binaries: &BTreeMap<String, Reads>,
    shell: &BTreeMap<String, String>,
) -> Vec<String> {
    let mut problems = Vec::new();
    let services = doc["services"].as_object().cloned().unwrap_or_default();
    for (service, definition) in &services {
        let runs = binaries_of(doc, service, binaries);
        if runs.is_empty() {
            if definition["image"].as_str() == Some(CHORUS_IMAGE) {
                problems.push(format!(
                    "{service}: uses {CHORUS_IMAGE} but its command runs none of {:?}",
                    binaries.keys().collect::<Vec<_>>()
                ));
            }
            continue;
        }
        let env = match service_env(doc, service, shell) {
            Ok(env) => env,
            Err(e) => {
                problems.push(e);
                continue;
            }
        };
        let reads = |variable: &str| runs.iter().any(|b| binaries[b].reads(variable));
        for (variable, value) in &env {
            if !variable.starts_with("CHORUS_") {
                continue;
            }
            if !reads(variable) {
                problems.push(format!(
                    "{service}: sets {variable}, which {} never reads",
                    runs.join(", ")
                ));
            } else if value.trim().is_empty() {
                problems.push(format!("{service}: {variable} comes out empty"));
            }
        }
        for binary in &runs {
            for variable in &binaries[binary].required {
                if !env.contains_key(variable) {
                    problems.push(format!(
                        "{service}: does not set {variable}, which {binary} requires (it has no default)"
                    ));
                }
            }
        }
    }
    problems
}

/// The image compose builds from compose/Dockerfile for every chorus service.
pub const CHORUS_IMAGE: &str = "chorus:local";
