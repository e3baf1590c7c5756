//! PostgreSQL's share of a run split into durable write commits and reads,
//! from two readings of the counters (`costs::PgCounter`), kept pure so the
//! tests check the arithmetic:
//!
//! - every transaction that writes takes a transaction id, and a read-only
//!   one does not, so Δ(next transaction id) counts the transactions that
//!   wrote, cluster-wide;
//! - the payment sandbox stands for an outside provider: its write
//!   transactions (one per batch of calls, counted by `pg_stat_statements`
//!   as its statements that record calls) are taken out and reported apart;
//! - reads = Δ commits of the counted databases − Δ transaction ids − the
//!   sandbox's reads.
//!
//! What the counter cannot tell apart is reported beside it so a reader can
//! judge: rolled-back transactions (a rolled-back writer took an id but did
//! not commit, so reads are low by at most that many) and transactions in
//! other databases of the cluster (their writers would count as writes).

use std::collections::BTreeMap;

use super::costs::{PgStatementDetail, PgTransactionIds};
use super::stats;

/// The split of one run, in transactions (not yet per saga).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PgSplit {
    /// Δ transaction ids: every transaction that wrote, the sandbox's included.
    pub write_transactions: i64,
    /// The chorus services' and the gateway's write commits (the sandbox's
    /// taken out); `None` without `pg_stat_statements`.
    pub write_commits: Option<i64>,
    pub sandbox_write_commits: Option<i64>,
    pub sandbox_reads: Option<i64>,
    /// Read-only transactions of the services and the gateway.
    pub reads: Option<i64>,
    /// Δ `xact_rollback` of the counted databases.
    pub rollbacks: i64,
    /// Δ transactions of other databases that moved during the run.
    pub other_databases: BTreeMap<String, i64>,
}

/// The split between two readings; `commits` are `xact_commit` by database.
pub fn split(
    commits: (&BTreeMap<String, i64>, &BTreeMap<String, i64>),
    ids: (&PgTransactionIds, &PgTransactionIds),
    detail: (Option<&PgStatementDetail>, Option<&PgStatementDetail>),
) -> PgSplit {
    let (committed, _) = stats::deltas_per_saga(commits.0, commits.1, 1);
    let write_transactions = ids.1.next_xid - ids.0.next_xid;
    let sandbox = match detail {
        (Some(b), Some(a)) => Some((
            a.sandbox_writes - b.sandbox_writes,
            a.sandbox_reads - b.sandbox_reads,
        )),
        _ => None,
    };
    let other_databases = ids
        .1
        .others
        .iter()
        .filter_map(|(db, &after)| {
            let delta = after - ids.0.others.get(db).copied().unwrap_or(0);
            (delta != 0).then(|| (db.clone(), delta))
        })
        .collect();
    PgSplit {
        write_transactions,
        write_commits: sandbox.map(|(writes, _)| write_transactions - writes),
        sandbox_write_commits: sandbox.map(|(writes, _)| writes),
        sandbox_reads: sandbox.map(|(_, reads)| reads),
        reads: sandbox.map(|(_, reads)| committed - write_transactions - reads),
        rollbacks: ids.1.rollbacks - ids.0.rollbacks,
        other_databases,
    }
}

/// Statements per saga by `database/role`, between two readings.
pub fn by_role_per_saga(
    before: Option<&PgStatementDetail>,
    after: Option<&PgStatementDetail>,
    sagas: u64,
) -> BTreeMap<String, f64> {
    match (before, after) {
        (Some(b), Some(a)) => stats::deltas_per_saga(&b.by_role, &a.by_role, sagas).1,
        _ => BTreeMap::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, i64)]) -> BTreeMap<String, i64> {
        pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
    }

    fn ids(next_xid: i64, rollbacks: i64, others: &[(&str, i64)]) -> PgTransactionIds {
        PgTransactionIds {
            next_xid,
            rollbacks,
            others: map(others),
        }
    }

    fn detail(writes: i64, reads: i64, by_role: &[(&str, i64)]) -> PgStatementDetail {
        PgStatementDetail {
            sandbox_writes: writes,
            sandbox_reads: reads,
            by_role: map(by_role),
        }
    }

    #[test]
    fn writes_are_the_ids_taken_less_the_sandbox_and_reads_the_rest() {
        // 1000 commits in the chorus databases; 700 ids taken, 300 of them by
        // the sandbox's own writes; the sandbox also read twice.
        let before = map(&[("chorus_order", 5000), ("chorus_payment", 100)]);
        let after = map(&[("chorus_order", 5600), ("chorus_payment", 500)]);
        let s = split(
            (&before, &after),
            (
                &ids(10_000, 3, &[("chorus_test_x", 9)]),
                &ids(10_700, 5, &[("chorus_test_x", 9)]),
            ),
            (Some(&detail(40, 1, &[])), Some(&detail(340, 3, &[]))),
        );
        assert_eq!(s.write_transactions, 700);
        assert_eq!(s.sandbox_write_commits, Some(300));
        assert_eq!(s.write_commits, Some(400));
        assert_eq!(s.sandbox_reads, Some(2));
        assert_eq!(s.reads, Some(1000 - 700 - 2));
        assert_eq!(s.rollbacks, 2);
        // A database nobody touched is not named.
        assert!(s.other_databases.is_empty());
    }

    #[test]
    fn without_pg_stat_statements_only_the_gross_writes_are_known() {
        let counts = map(&[("chorus_order", 10)]);
        let s = split(
            (&counts, &counts),
            (&ids(1, 0, &[]), &ids(51, 0, &[("postgres_other", 7)])),
            (None, None),
        );
        assert_eq!(s.write_transactions, 50);
        assert_eq!(
            (s.write_commits, s.reads, s.sandbox_write_commits),
            (None, None, None)
        );
        // Another database that moved (a test's, say) is named: its writers took ids too.
        assert_eq!(s.other_databases, map(&[("postgres_other", 7)]));
    }

    #[test]
    fn statements_by_role_are_divided_by_the_sagas() {
        let b = detail(0, 0, &[("chorus_order/chorus_gateway_ro", 100)]);
        let a = detail(
            0,
            0,
            &[
                ("chorus_order/chorus_gateway_ro", 300),
                ("chorus_order/chorus_order", 50),
            ],
        );
        let per = by_role_per_saga(Some(&b), Some(&a), 100);
        assert_eq!(per["chorus_order/chorus_gateway_ro"], 2.0);
        assert_eq!(per["chorus_order/chorus_order"], 0.5);
        assert!(by_role_per_saga(None, Some(&a), 100).is_empty());
    }
}
