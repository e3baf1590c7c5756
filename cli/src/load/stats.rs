//! The arithmetic of `chorus load`, kept pure so the tests check it without
//! a clock: which orders take a compensation path, when an open-loop order is
//! due, percentiles and rates.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;

use crate::args::Mix;

/// What an order is meant to exercise.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// Stock and payment succeed: the order should be CONFIRMED.
    Ok,
    /// Payment token `tok_decline`: cancelled after the stock was reserved (and released).
    Decline,
    /// A line whose SKU has no stock: cancelled at the reservation.
    OutOfStock,
}

/// 1/φ: successive multiples modulo 1 spread evenly over [0, 1) (a
/// low-discrepancy sequence), so every stretch of the run has close to the
/// mix's shares, deterministically.
const GOLDEN: f64 = 0.618_033_988_749_894_9;

/// The kind of order number `i` under `mix`.
pub fn kind_of(i: u64, mix: &Mix) -> Kind {
    let u = (i as f64 * GOLDEN).fract();
    if u < mix.decline {
        Kind::Decline
    } else if u < mix.decline + mix.out_of_stock {
        Kind::OutOfStock
    } else {
        Kind::Ok
    }
}

/// When order `i` is due after the start of an open-loop run at `rate` orders per second.
pub fn due_after(i: u64, rate: f64) -> Duration {
    Duration::from_secs_f64(i as f64 / rate)
}

/// Orders of an open-loop run of `duration` seconds at `rate` per second (at least one).
pub fn open_loop_orders(rate: f64, duration: f64) -> u64 {
    ((rate * duration).round() as u64).max(1)
}

/// The SKUs of order `i`: `lines` distinct ones out of `skus`, spread so
/// consecutive orders touch different rows.
pub fn skus_of(i: u64, lines: u64, skus: u64) -> Vec<u64> {
    let lines = lines.min(skus);
    let first = (i * lines) % skus;
    (0..lines).map(|k| (first + k) % skus).collect()
}

/// Latency percentiles in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize)]
pub struct Percentiles {
    pub count: u64,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
    pub mean: f64,
}

/// The nearest-rank percentile `p` (0 < p ≤ 100) of ascending `sorted` values.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = (p / 100.0 * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// p50, p90, p99, max and mean of `samples` (any order).
pub fn summarize(samples: &[f64]) -> Percentiles {
    if samples.is_empty() {
        return Percentiles::default();
    }
    let mut sorted = samples.to_vec();
    sorted.sort_by(f64::total_cmp);
    Percentiles {
        count: sorted.len() as u64,
        p50: percentile(&sorted, 50.0),
        p90: percentile(&sorted, 90.0),
        p99: percentile(&sorted, 99.0),
        max: sorted[sorted.len() - 1],
        mean: sorted.iter().sum::<f64>() / sorted.len() as f64,
    }
}

/// Events per second; zero when no time passed.
pub fn per_second(count: u64, elapsed: Duration) -> f64 {
    let secs = elapsed.as_secs_f64();
    if secs > 0.0 { count as f64 / secs } else { 0.0 }
}

/// `numerator / sagas`, or `None` without sagas.
pub fn per_saga(numerator: i64, sagas: u64) -> Option<f64> {
    (sagas > 0).then(|| numerator as f64 / sagas as f64)
}

/// `after - before` per key, divided by `sagas`, and the total difference.
pub fn deltas_per_saga(
    before: &BTreeMap<String, i64>,
    after: &BTreeMap<String, i64>,
    sagas: u64,
) -> (i64, BTreeMap<String, f64>) {
    let mut total = 0;
    let mut per = BTreeMap::new();
    for (key, &a) in after {
        let delta = a - before.get(key).copied().unwrap_or(0);
        total += delta;
        if let Some(cost) = per_saga(delta, sagas) {
            per.insert(key.clone(), cost);
        }
    }
    (total, per)
}

/// The label of an order's outcome: `CONFIRMED`, `CANCELLED (<reason>)`, or
/// what stopped it (`rejected`, `timeout`).
pub fn outcome_label(status: &str, reason: Option<&str>) -> String {
    match reason {
        Some(reason) if !reason.is_empty() && status != "CONFIRMED" => {
            format!("{status} ({reason})")
        }
        _ => status.to_string(),
    }
}

/// Whether a final status is what the order's kind is meant to produce.
pub fn as_expected(kind: Kind, status: &str) -> bool {
    match kind {
        Kind::Ok => status == "CONFIRMED",
        Kind::Decline | Kind::OutOfStock => status == "CANCELLED",
    }
}

/// Counts by label, in a stable order.
pub fn count<I: IntoIterator<Item = String>>(labels: I) -> BTreeMap<String, u64> {
    let mut counts = BTreeMap::new();
    for label in labels {
        *counts.entry(label).or_insert(0) += 1;
    }
    counts
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::args::parse_mix;

    #[test]
    fn nearest_rank_percentiles() {
        let samples: Vec<f64> = (1..=100).map(f64::from).collect();
        let p = summarize(&samples);
        assert_eq!((p.p50, p.p90, p.p99, p.max), (50.0, 90.0, 99.0, 100.0));
        assert_eq!(p.count, 100);
        assert!((p.mean - 50.5).abs() < 1e-9);
        // Order of the input does not matter; a single sample is every percentile.
        let p = summarize(&[3.0, 1.0, 2.0]);
        assert_eq!((p.p50, p.p90, p.max), (2.0, 3.0, 3.0));
        assert_eq!(summarize(&[7.0]).p99, 7.0);
        assert_eq!(summarize(&[]), Percentiles::default());
        assert_eq!(percentile(&[1.0, 2.0], 0.0), 1.0);
    }

    #[test]
    fn the_mix_is_met_over_any_stretch() {
        let mix = parse_mix("decline=0.1,out-of-stock=20%").unwrap();
        let kinds: Vec<Kind> = (0..1000).map(|i| kind_of(i, &mix)).collect();
        let n = |k| kinds.iter().filter(|&&x| x == k).count() as i64;
        assert!((n(Kind::Decline) - 100).abs() <= 3, "{}", n(Kind::Decline));
        assert!(
            (n(Kind::OutOfStock) - 200).abs() <= 3,
            "{}",
            n(Kind::OutOfStock)
        );
        // Every window of 100 orders holds roughly its share too.
        for start in (0..900).step_by(100) {
            let window = &kinds[start..start + 100];
            let declines = window.iter().filter(|&&k| k == Kind::Decline).count();
            assert!((8..=12).contains(&declines), "{start}: {declines}");
        }
        // Same index, same kind.
        assert_eq!(kind_of(42, &mix), kind_of(42, &mix));
        assert!((0..1000).all(|i| kind_of(i, &Mix::default()) == Kind::Ok));
    }

    #[test]
    fn mix_parsing_names_the_problem() {
        assert_eq!(parse_mix("").unwrap(), Mix::default());
        assert_eq!(parse_mix("oos=0.5").unwrap().out_of_stock, 0.5);
        assert!(parse_mix("decline=2").unwrap_err().contains("share"));
        assert!(parse_mix("refund=0.1").unwrap_err().contains("refund"));
        assert!(
            parse_mix("decline=0.6,oos=0.6")
                .unwrap_err()
                .contains("more than 1")
        );
        assert!(parse_mix("decline").is_err());
    }

    #[test]
    fn open_loop_pacing() {
        assert_eq!(due_after(0, 50.0), Duration::ZERO);
        assert_eq!(due_after(50, 50.0), Duration::from_secs(1));
        assert_eq!(due_after(3, 4.0), Duration::from_millis(750));
        assert_eq!(open_loop_orders(37.5, 60.0), 2250);
        assert_eq!(open_loop_orders(0.01, 1.0), 1);
    }

    #[test]
    fn orders_spread_over_distinct_skus() {
        assert_eq!(skus_of(0, 2, 10), vec![0, 1]);
        assert_eq!(skus_of(1, 2, 10), vec![2, 3]);
        assert_eq!(skus_of(4, 3, 10), vec![2, 3, 4]);
        assert_eq!(skus_of(7, 5, 3), vec![0, 1, 2]);
        for i in 0..100 {
            let mut skus = skus_of(i, 3, 7);
            skus.sort_unstable();
            skus.dedup();
            assert_eq!(skus.len(), 3);
        }
    }

    #[test]
    fn rates_and_outcomes() {
        assert_eq!(per_second(300, Duration::from_secs(2)), 150.0);
        assert_eq!(per_second(3, Duration::ZERO), 0.0);
        assert_eq!(per_saga(900, 100), Some(9.0));
        assert_eq!(per_saga(900, 0), None);
        let before = BTreeMap::from([("a".to_string(), 10), ("b".to_string(), 5)]);
        let after = BTreeMap::from([
            ("a".to_string(), 30),
            ("b".to_string(), 5),
            ("c".to_string(), 10),
        ]);
        let (total, per) = deltas_per_saga(&before, &after, 10);
        assert_eq!(total, 30);
        assert_eq!(per["a"], 2.0);
        assert_eq!(per["b"], 0.0);
        assert_eq!(per["c"], 1.0);
        assert_eq!(
            outcome_label("CANCELLED", Some("out_of_stock")),
            "CANCELLED (out_of_stock)"
        );
        assert_eq!(outcome_label("CONFIRMED", None), "CONFIRMED");
        assert!(as_expected(Kind::Decline, "CANCELLED"));
        assert!(!as_expected(Kind::Ok, "CANCELLED"));
        let counts = count(["b".to_string(), "a".to_string(), "b".to_string()]);
        assert_eq!(
            counts.into_iter().collect::<Vec<_>>(),
            [("a".into(), 1), ("b".into(), 2)]
        );
    }
}
