//! Every `CHORUS_*` variable that a binary or a script reads is documented
//! in README.md's "Configuration of the services" (one of its tables, with a
//! default), so an operator finds every setting in one place. The names come
//! from the code itself, the moment they are written:
//! - each crate's `src/`: every `"CHORUS_…"` literal (as the compose check
//!   reads them, `binary_env::scan`);
//! - test code (the tests crate, each crate's `tests/`): the literals it reads
//!   from its environment (`var(…)`, `var_os(…)`, `env_or(…)`), not those it
//!   sets for a process it starts;
//! - `scripts/`, `Makefile`, `.ci/`: every `CHORUS_…` name.
//!
//! A row naming a family (`CHORUS_BENCH_<NAME>`) documents the names that
//! start with it; when its meaning cell lists the members (`` `RAMP` ``,
//! …), only those.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use crate::binary_env::{Reads, rust_files, scan};
use crate::compose_check::repo;

const SECTION: &str = "## Configuration of the services";
const TEST_READERS: [&str; 3] = ["var(", "var_os(", "env_or("];

/// What the code reads, each name with the first file that reads it.
#[derive(Debug, Default)]
struct Read {
    names: BTreeMap<String, String>,
    prefixes: BTreeMap<String, String>,
}

impl Read {
    fn add(&mut self, name: &str, file: &Path) {
        if name == "CHORUS_" {
            return;
        }
        let shown = file
            .strip_prefix(repo())
            .unwrap_or(file)
            .display()
            .to_string();
        let into = if name.ends_with('_') {
            &mut self.prefixes
        } else {
            &mut self.names
        };
        into.entry(name.to_string()).or_insert(shown);
    }
}

/// `CHORUS_…` names in `text` (a trailing `_` kept: a family).
fn names_in(text: &str) -> Vec<String> {
    text.match_indices("CHORUS_")
        .filter(|(at, _)| {
            !text[..*at]
                .chars()
                .next_back()
                .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
        })
        .map(|(at, _)| {
            let rest = &text[at..];
            let end = rest
                .find(|c: char| !(c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_'))
                .unwrap_or(rest.len());
            rest[..end].to_string()
        })
        .collect()
}

/// The literals test code reads from its environment.
fn test_reads(source: &str) -> Vec<String> {
    source
        .match_indices("\"CHORUS_")
        .filter(|(at, _)| {
            let before = source[..*at].trim_end();
            TEST_READERS.iter().any(|reader| before.ends_with(reader))
        })
        .filter_map(|(at, _)| names_in(&source[at + 1..]).into_iter().next())
        .collect()
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            found.extend(files(&path));
        } else {
            found.push(path);
        }
    }
    found
}

fn is_test_code(path: &Path) -> bool {
    let relative = path.strip_prefix(repo()).unwrap_or(path);
    relative.starts_with("tests")
        || relative
            .components()
            .any(|c| c.as_os_str() == "tests" || c.as_os_str() == "benches")
}

/// Every variable the workspace's code and scripts read.
fn read_by_the_code() -> Read {
    let root = repo();
    let mut read = Read::default();
    let mut sources = Vec::new();
    for entry in std::fs::read_dir(&root).unwrap().flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().to_string();
        if path.is_dir() && !name.starts_with('.') && name != "target" {
            sources.extend(rust_files(&path));
        }
    }
    for file in sources {
        let text = std::fs::read_to_string(&file).unwrap();
        if is_test_code(&file) {
            for name in test_reads(&text) {
                read.add(&name, &file);
            }
        } else {
            let mut reads = Reads::default();
            scan(&text, &mut reads);
            for name in reads.names.iter().chain(&reads.prefixes) {
                read.add(name, &file);
            }
        }
    }
    let mut scripts = files(&root.join("scripts"));
    scripts.extend(files(&root.join(".ci")));
    scripts.push(root.join("Makefile"));
    for file in scripts {
        let Ok(text) = std::fs::read_to_string(&file) else {
            continue; // not text
        };
        for name in names_in(&text) {
            read.add(&name, &file);
        }
    }
    read
}

/// A documented row: its default (second cell) and, for a family, the
/// members its meaning cell lists in backticks (none: any member).
#[derive(Debug, Default)]
struct Row {
    default: String,
    members: BTreeSet<String>,
}

/// The names the README's configuration section documents in the first
/// cell of a table row.
fn documented(readme: &str) -> BTreeMap<String, Row> {
    let start = readme
        .find(&format!("\n{SECTION}\n"))
        .unwrap_or_else(|| panic!("README.md has no {SECTION:?}"));
    let section = &readme[start + 1..];
    let end = section[SECTION.len()..]
        .find("\n## ")
        .map_or(section.len(), |e| e + SECTION.len());
    let mut rows = BTreeMap::new();
    for line in section[..end].lines().filter(|l| l.starts_with('|')) {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        let (Some(first), Some(default)) = (cells.get(1), cells.get(2)) else {
            continue;
        };
        let members: BTreeSet<String> = cells
            .get(3)
            .map(|meaning| {
                meaning
                    .split('`')
                    .skip(1)
                    .step_by(2)
                    .filter(|w| {
                        w.chars().any(|c| c.is_ascii_uppercase())
                            && w.chars()
                                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
                    })
                    .map(String::from)
                    .collect()
            })
            .unwrap_or_default();
        for name in names_in(first) {
            let members = if name.ends_with('_') {
                members.clone()
            } else {
                BTreeSet::new()
            };
            let default = default.to_string();
            rows.insert(name, Row { default, members });
        }
    }
    rows
}

/// What the README lacks: each variable (or family) read but not in a
/// table of the section, and each row without a default.
fn undocumented(read: &Read, rows: &BTreeMap<String, Row>) -> Vec<String> {
    let covered = |name: &str| {
        rows.contains_key(name)
            || rows.iter().any(|(family, row)| {
                family.ends_with('_')
                    && name.strip_prefix(family.as_str()).is_some_and(|member| {
                        row.members.is_empty() || row.members.contains(member)
                    })
            })
    };
    let mut problems: Vec<String> = read
        .names
        .iter()
        .filter(|(name, _)| !covered(name))
        .map(|(name, file)| format!("{name} (read in {file})"))
        .collect();
    problems.extend(
        read.prefixes
            .iter()
            .filter(|(prefix, _)| !rows.keys().any(|row| row.starts_with(prefix.as_str())))
            .map(|(prefix, file)| format!("{prefix}<…> (read in {file})")),
    );
    problems.extend(
        rows.iter()
            .filter(|(_, row)| row.default.is_empty())
            .map(|(name, _)| format!("{name}: its row gives no default")),
    );
    problems
}

#[test]
fn every_variable_the_code_reads_is_in_the_readme_configuration_tables() {
    let read = read_by_the_code();
    for expected in [
        "CHORUS_KAFKA_BROKERS",     // platform
        "CHORUS_GATEWAY_URL",       // the CLI (clap)
        "CHORUS_STACK_BROKERS",     // scripts
        "CHORUS_TEST_PG_ADMIN_URL", // test code
    ] {
        assert!(
            read.names.contains_key(expected),
            "{expected} not found: {read:?}"
        );
    }
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    let problems = undocumented(&read, &documented(&readme));
    assert!(
        problems.is_empty(),
        "README.md, {SECTION:?}: add a row (name | default | meaning) for each of\n  {}",
        problems.join("\n  ")
    );
}

#[test]
fn a_variable_missing_from_the_tables_or_without_a_default_is_named() {
    let readme = format!(
        "intro\n{SECTION}\n\n| variable | default | |\n|---|---|---|\n\
         | `CHORUS_A`, `CHORUS_B` | 1 | |\n| `CHORUS_FAMILY_<NAME>` | unset | any |\n\
         | `CHORUS_LISTED_<NAME>` | 3 | `ONE` or `TWO_2`, `_` for `.` |\n\
         | `CHORUS_NO_DEFAULT` | | |\n\n## Next\n\n| `CHORUS_LATER` | 2 | |\n"
    );
    let rows = documented(&readme);
    assert_eq!(
        rows.keys().collect::<Vec<_>>(),
        [
            "CHORUS_A",
            "CHORUS_B",
            "CHORUS_FAMILY_",
            "CHORUS_LISTED_",
            "CHORUS_NO_DEFAULT"
        ]
    );
    let mut read = Read::default();
    let here = repo().join("scripts/x.sh");
    for name in [
        "CHORUS_A",
        "CHORUS_FAMILY_X",
        "CHORUS_LISTED_TWO_2",
        "CHORUS_LISTED_THREE",
        "CHORUS_LATER",
        "CHORUS_GONE_",
    ] {
        read.add(name, &here);
    }
    assert_eq!(
        undocumented(&read, &rows),
        [
            "CHORUS_LATER (read in scripts/x.sh)",
            "CHORUS_LISTED_THREE (read in scripts/x.sh)",
            "CHORUS_GONE_<…> (read in scripts/x.sh)",
            "CHORUS_NO_DEFAULT: its row gives no default",
        ]
    );
    // Test code: only what it reads from its environment counts.
    let reader = format!(
        "std::env::var(\"{a}\"); env_or(\"{b}\", \"x\"); cmd.env(\"{c}\", \"1\");",
        a = "CHORUS_READ_ONE",
        b = "CHORUS_READ_TWO",
        c = "CHORUS_SET_ONLY"
    );
    assert_eq!(test_reads(&reader), ["CHORUS_READ_ONE", "CHORUS_READ_TWO"]);
}
