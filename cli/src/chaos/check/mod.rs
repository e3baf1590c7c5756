//! `chorus chaos check`: reads the topics and databases after a chaos
//! campaign and checks the saga's invariants; prints a table of figures and
//! exits non-zero naming each invariant violated.

mod facts;
mod gather;
mod invariants;

use std::fmt::Write;

use serde_json::json;

use crate::args::{CheckArgs, Global};
use invariants::Verdict;

/// Violations shown per invariant in the table (`--json` has them all).
const SHOWN: usize = 10;

/// Some invariants do not hold; the table naming them is already printed.
#[derive(Debug, thiserror::Error)]
#[error("invariants violated: {}", .0.join("; "))]
pub struct Violated(pub Vec<&'static str>);

pub async fn check(global: &Global, args: &CheckArgs) -> anyhow::Result<()> {
    let facts = gather::facts(global, args).await?;
    let verdicts = invariants::all(&facts);
    if args.json {
        let document = json!({
            "namespace": global.namespace,
            "ok": verdicts.iter().all(|v| v.ok),
            "invariants": verdicts,
        });
        println!("{}", serde_json::to_string_pretty(&document)?);
    } else {
        print!("{}", table(&global.namespace, &verdicts));
    }
    let violated: Vec<&'static str> = verdicts.iter().filter(|v| !v.ok).map(|v| v.name).collect();
    if violated.is_empty() {
        Ok(())
    } else {
        Err(Violated(violated).into())
    }
}

pub fn table(namespace: &str, verdicts: &[Verdict]) -> String {
    let mut s = format!("chaos check of namespace {namespace}\n");
    let _ = writeln!(s, "{:<56} {:<8} FIGURES", "INVARIANT", "RESULT");
    for v in verdicts {
        let figures: Vec<String> = v.figures.iter().map(|(k, n)| format!("{k} {n}")).collect();
        let result = if v.ok { "ok" } else { "VIOLATED" };
        let _ = writeln!(s, "{:<56} {result:<8} {}", v.name, figures.join(", "));
    }
    for v in verdicts.iter().filter(|v| !v.ok) {
        let _ = writeln!(s, "\n{} ({} violations):", v.name, v.violations.len());
        for line in v.violations.iter().take(SHOWN) {
            let _ = writeln!(s, "  {line}");
        }
        if v.violations.len() > SHOWN {
            let _ = writeln!(
                s,
                "  … and {} more (--json lists them all)",
                v.violations.len() - SHOWN
            );
        }
    }
    s
}
