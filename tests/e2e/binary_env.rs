//! The `CHORUS_*` variables each binary of the workspace reads, derived
//! from the source itself: every `"CHORUS_…"` literal in its crate and in the
//! workspace crates it links, so a new setting is known the moment it is
//! written, and those it requires without a default.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use crate::compose_check::repo;

/// What one binary reads: every `"CHORUS_…"` literal in the sources of its
/// crate and of the workspace crates it depends on (a literal ending in `_`
/// is a prefix), and those it requires without a default.
#[derive(Debug, Default, Clone)]
pub struct Reads {
    pub names: BTreeSet<String>,
    pub prefixes: BTreeSet<String>,
    pub required: BTreeSet<String>,
}

impl Reads {
    pub fn reads(&self, variable: &str) -> bool {
        self.names.contains(variable) || self.prefixes.iter().any(|p| variable.starts_with(p))
    }
}

/// Every binary of the workspace (by its name) with what it reads.
pub fn workspace_binaries() -> BTreeMap<String, Reads> {
    let root = repo();
    let manifest = std::fs::read_to_string(root.join("Cargo.toml")).unwrap();
    let members = section(&manifest, "workspace")
        .split("members")
        .nth(1)
        .and_then(|list| list.split(']').next())
        .map(quoted)
        .expect("[workspace] members");
    let crates: BTreeMap<String, PathBuf> = members
        .iter()
        .map(|dir| (package_name(&root.join(dir)), root.join(dir)))
        .collect();
    let mut binaries = BTreeMap::new();
    for dir in crates.values() {
        let manifest = std::fs::read_to_string(dir.join("Cargo.toml")).unwrap();
        for bin in manifest.split("[[bin]]").skip(1) {
            let name = field(bin, "name").expect("[[bin]] name");
            binaries.insert(name, reads_of(dir, &crates));
        }
    }
    binaries
}

/// The reads of the crate in `dir` and of its workspace dependencies.
fn reads_of(dir: &Path, crates: &BTreeMap<String, PathBuf>) -> Reads {
    let mut reads = Reads::default();
    let mut todo = vec![dir.to_path_buf()];
    let mut seen = BTreeSet::new();
    while let Some(dir) = todo.pop() {
        if !seen.insert(dir.clone()) {
            continue;
        }
        let manifest = std::fs::read_to_string(dir.join("Cargo.toml")).unwrap();
        // Normal dependencies only: what the binary links, not its tests.
        for line in section(&manifest, "dependencies").lines() {
            let name = line.split(['=', '.']).next().unwrap_or("").trim();
            if let Some(path) = crates.get(name) {
                todo.push(path.clone());
            }
        }
        for file in rust_files(&dir.join("src")) {
            scan(&std::fs::read_to_string(file).unwrap(), &mut reads);
        }
    }
    reads
}

/// Records the `"CHORUS_…"` literals of `source`, and as required those
/// passed to `required(…)`/`required_url(…)` with a literal reason that
/// does not say "when": the code's convention is that a requirement which
/// depends on another setting says so ("required when CHORUS_X=…").
pub fn scan(source: &str, reads: &mut Reads) {
    for (at, _) in source.match_indices("\"CHORUS_") {
        let literal = &source[at + 1..];
        let end = literal
            .find(|c: char| !(c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_'))
            .unwrap_or(literal.len());
        let name = literal[..end].to_string();
        if name == "CHORUS_" {
            continue; // not a variable (a prefix of them all)
        }
        if name.ends_with('_') {
            reads.prefixes.insert(name);
            continue;
        }
        let before = source[..at].trim_end();
        let after = literal[end..].trim_start_matches('"').trim_start();
        let reason = after.strip_prefix(',').map(str::trim_start).unwrap_or("");
        if (before.ends_with(".required(") || before.ends_with(".required_url("))
            && reason.starts_with('"')
            && !reason.split('"').nth(1).unwrap_or("").contains("when")
        {
            reads.required.insert(name.clone());
        }
        reads.names.insert(name);
    }
}

pub fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            files.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
    files
}

/// The text of the TOML table `[name]` up to the next table.
fn section<'a>(manifest: &'a str, name: &str) -> &'a str {
    let header = format!("\n[{name}]\n");
    let Some(start) = format!("\n{manifest}").find(&header) else {
        return "";
    };
    let body = &manifest[start + header.len() - 1..];
    body.find("\n[").map_or(body, |end| &body[..end])
}

fn field(table: &str, key: &str) -> Option<String> {
    table
        .lines()
        .map(str::trim)
        .find(|line| line.split('=').next().map(str::trim) == Some(key))
        .and_then(|line| quoted(line).into_iter().next())
}

fn quoted(text: &str) -> Vec<String> {
    text.split('"')
        .skip(1)
        .step_by(2)
        .map(String::from)
        .collect()
}

fn package_name(dir: &Path) -> String {
    let manifest = std::fs::read_to_string(dir.join("Cargo.toml")).unwrap();
    field(section(&manifest, "package"), "name").expect("[package] name")
}
