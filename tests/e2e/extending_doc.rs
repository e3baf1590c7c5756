//! `docs/extending.md` is a checklist a developer follows file by file, so
//! every path it names must exist and every symbol it names must be in the
//! code. Read from the document's backticked words:
//! - a word with a `/` is a path from the repository root (`<…>` stands for
//!   a name to choose: then its directory must exist);
//! - a word with `::`, or ending in `()` or `!`, or starting with a capital
//!   letter is a symbol: each of its `::` segments must be a word of the
//!   sources, and the last one, with `()`, a function (`fn name`, or a shell
//!   function `name()`), with `!`, a macro (`macro_rules! name`);
//! - anything else (a command, a value, a placeholder) is prose.

use std::path::Path;

use crate::compose_check::repo;

const DOCUMENT: &str = "docs/extending.md";
const SOURCE_EXTENSIONS: [&str; 7] = ["rs", "sh", "sql", "yml", "toml", "avsc", "json"];

fn sources(dir: &Path, into: &mut String) {
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().to_string();
        if path.is_dir() {
            if !name.starts_with('.') && name != "target" && name != "docs" {
                sources(&path, into);
            }
        } else if name == "Dockerfile"
            || path
                .extension()
                .is_some_and(|e| SOURCE_EXTENSIONS.iter().any(|s| e == *s))
        {
            into.push_str(&std::fs::read_to_string(&path).unwrap_or_default());
            into.push('\n');
        }
    }
}

fn is_word(code: &str, word: &str) -> bool {
    code.match_indices(word).any(|(at, _)| {
        let ident = |c: char| c.is_ascii_alphanumeric() || c == '_';
        !code[..at].chars().next_back().is_some_and(ident)
            && !code[at + word.len()..].chars().next().is_some_and(ident)
    })
}

/// What `word` (backticked in `document`) names that the code lacks.
fn missing(word: &str, code: &str) -> Option<String> {
    if word.contains(' ') {
        return None;
    }
    if word.contains('/') {
        let path = word.split('<').next().unwrap();
        let path = if word.contains('<') {
            path.rsplit_once('/').map_or("", |(dir, _)| dir)
        } else {
            path
        };
        return (!repo().join(path).exists()).then(|| format!("{word}: no such path"));
    }
    let symbol = word.trim_end_matches("()").trim_end_matches('!');
    let is_symbol = word.contains("::")
        || word.ends_with("()")
        || word.ends_with('!')
        || word.starts_with(|c: char| c.is_ascii_uppercase());
    let well_formed = !symbol.is_empty()
        && symbol
            .split("::")
            .all(|s| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'));
    if !is_symbol || !well_formed {
        return None;
    }
    let segments: Vec<&str> = symbol.split("::").collect();
    if let Some(absent) = segments.iter().find(|s| !is_word(code, s)) {
        return Some(format!("{word}: `{absent}` is not in the code"));
    }
    let last = segments[segments.len() - 1];
    let defined = if word.ends_with("()") {
        is_word(code, &format!("fn {last}")) || code.contains(&format!("\n{last}() {{"))
    } else if word.ends_with('!') {
        code.contains(&format!("macro_rules! {last}"))
    } else {
        true
    };
    (!defined).then(|| format!("{word}: no definition of `{last}`"))
}

fn problems(document: &str, code: &str) -> Vec<String> {
    let mut found: Vec<String> = document
        .split('`')
        .skip(1)
        .step_by(2)
        .filter_map(|word| missing(word, code))
        .collect();
    found.dedup();
    found
}

#[test]
fn every_path_and_symbol_the_extending_checklist_names_exists() {
    let root = repo();
    let document = std::fs::read_to_string(root.join(DOCUMENT)).unwrap();
    let mut code = String::new();
    sources(&root, &mut code);
    for heading in ["## Add an event", "## Add a saga step", "## Add a worker"] {
        assert!(document.contains(heading), "{DOCUMENT} has no {heading:?}");
    }
    let named = document.split('`').skip(1).step_by(2).count();
    assert!(named > 50, "{DOCUMENT} names only {named} things");
    let problems = problems(&document, &code);
    assert!(
        problems.is_empty(),
        "{DOCUMENT} names what the code lacks:\n  {}",
        problems.join("\n  ")
    );
}

#[test]
fn a_renamed_file_or_symbol_is_named() {
    let code =
        "pub fn present() {}\nmacro_rules! listed { }\npub enum Shape { Round }\nhelper() {\n";
    let document = "`avro/src/events.rs` `avro/src/gone.rs` `avro/schemas/<Name>.avsc` \
                    `nowhere/<Name>.rs` `present()` `absent()` `listed!` `Shape::Round` \
                    `Shape::Square` `Round()` `helper()` `chorus schemas register` `sasl_plaintext`";
    assert_eq!(
        problems(document, code),
        [
            "avro/src/gone.rs: no such path",
            "nowhere/<Name>.rs: no such path",
            "absent(): `absent` is not in the code",
            "Shape::Square: `Square` is not in the code",
            "Round(): no definition of `Round`",
        ]
    );
}
