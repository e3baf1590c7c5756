//! `chorus sagas stuck`: every order that is neither CONFIRMED nor CANCELLED
//! and older than a threshold, with what it waits for. Listing none is as
//! much an answer as listing some: the exit status is 0 either way.

use std::fmt::Write;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;

use crate::args::{Global, StuckArgs};
use crate::read_model::{self, OrderView};
use crate::saga_steps::waiting_for;

#[derive(Debug, Serialize)]
pub struct StuckSaga {
    pub order_id: String,
    pub customer_id: String,
    pub status: String,
    pub created_at: DateTime<Utc>,
    pub age_secs: f64,
    pub last_event: Option<String>,
    pub last_event_at: Option<DateTime<Utc>>,
    pub waiting_for: Option<&'static str>,
}

#[derive(Debug, Serialize)]
pub struct StuckReport {
    pub older_than_secs: f64,
    /// The order database's clock when it was asked.
    pub now: DateTime<Utc>,
    pub count: usize,
    pub sagas: Vec<StuckSaga>,
}

pub async fn stuck(global: &Global, args: &StuckArgs) -> anyhow::Result<()> {
    let pool =
        read_model::connect(&args.order_db.url, "order read model", global.timeout()).await?;
    let (orders, now) = read_model::unfinished_orders(&pool, args.older_than).await?;
    let report = StuckReport {
        older_than_secs: args.older_than.as_secs_f64(),
        now,
        count: orders.len(),
        sagas: orders.into_iter().map(|o| stuck_saga(o, now)).collect(),
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", text(&report));
    }
    Ok(())
}

fn stuck_saga(order: OrderView, now: DateTime<Utc>) -> StuckSaga {
    StuckSaga {
        age_secs: (now - order.created_at).num_milliseconds() as f64 / 1000.0,
        waiting_for: waiting_for(&order.status),
        order_id: order.order_id,
        customer_id: order.customer_id,
        status: order.status,
        created_at: order.created_at,
        last_event: order.last_event,
        last_event_at: order.last_event_at,
    }
}

/// `95s` → `1m35s`; whole seconds are enough for an age.
fn age(secs: f64) -> String {
    let secs = secs.max(0.0) as u64;
    match (secs / 3600, secs % 3600 / 60, secs % 60) {
        (0, 0, s) => format!("{s}s"),
        (0, m, s) => format!("{m}m{s:02}s"),
        (h, m, s) => format!("{h}h{m:02}m{s:02}s"),
    }
}

pub fn text(report: &StuckReport) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{} sagas not ended after {}",
        report.count,
        age(report.older_than_secs)
    );
    if report.sagas.is_empty() {
        return s;
    }
    let _ = writeln!(
        s,
        "{:<36}  {:>10}  {:<9}  {:<52}  WAITING FOR",
        "ORDER", "AGE", "STATUS", "LAST EVENT"
    );
    for saga in &report.sagas {
        let last = match (&saga.last_event, &saga.last_event_at) {
            (Some(event), Some(at)) => {
                format!(
                    "{event} at {}",
                    at.to_rfc3339_opts(SecondsFormat::Millis, true)
                )
            }
            (Some(event), None) => event.clone(),
            _ => "-".to_string(),
        };
        let _ = writeln!(
            s,
            "{:<36}  {:>10}  {:<9}  {:<52}  {}",
            saga.order_id,
            age(saga.age_secs),
            saga.status,
            last,
            saga.waiting_for.unwrap_or("-")
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn saga(order_id: &str, status: &str, age_secs: f64) -> StuckSaga {
        StuckSaga {
            order_id: order_id.into(),
            customer_id: "c".into(),
            status: status.into(),
            created_at: DateTime::<Utc>::from_timestamp(1_767_225_600, 0).unwrap(),
            age_secs,
            last_event: Some("StockReserved".into()),
            last_event_at: DateTime::<Utc>::from_timestamp(1_767_225_601, 0),
            waiting_for: waiting_for(status),
        }
    }

    #[test]
    fn ages_read_as_hours_minutes_seconds() {
        assert_eq!(age(5.9), "5s");
        assert_eq!(age(95.0), "1m35s");
        assert_eq!(age(3_725.0), "1h02m05s");
    }

    #[test]
    fn the_table_has_a_line_per_saga_with_what_it_waits_for() {
        let report = StuckReport {
            older_than_secs: 60.0,
            now: Utc::now(),
            count: 1,
            sagas: vec![saga("o-1", "RESERVED", 125.0)],
        };
        let shown = text(&report);
        let lines: Vec<&str> = shown.lines().collect();
        assert_eq!(lines[0], "1 sagas not ended after 1m00s");
        assert!(lines[2].starts_with("o-1 "), "{shown}");
        assert!(lines[2].contains("2m05s"), "{shown}");
        assert!(
            lines[2].contains("StockReserved at 2026-01-01T00:00:01.000Z"),
            "{shown}"
        );
        assert!(
            lines[2].ends_with("payment: PaymentAuthorized or PaymentFailed"),
            "{shown}"
        );
    }

    #[test]
    fn none_listed_is_one_line() {
        let report = StuckReport {
            older_than_secs: 60.0,
            now: Utc::now(),
            count: 0,
            sagas: vec![],
        };
        assert_eq!(text(&report), "0 sagas not ended after 1m00s\n");
    }
}
