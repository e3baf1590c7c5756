//! A trace as one JSON document or as text for a terminal; both carry the
//! same content.

use std::fmt::Write;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;

use super::messages::{Scanned, Window};
use super::timeline::{Entry, line};
use crate::read_model::{Delivery, OrderView};

#[derive(Debug, Serialize)]
pub struct Trace {
    pub order: OrderView,
    pub timeline: Vec<Entry>,
    /// None when the notification database could not be read (see `deliveries_error`).
    pub deliveries: Option<Vec<Delivery>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deliveries_error: Option<String>,
    /// What a saga that has not ended waits for, and since when.
    pub waiting: Option<Waiting>,
    pub window: Window,
    pub scanned: Scanned,
}

#[derive(Debug, Serialize)]
pub struct Waiting {
    pub step: &'static str,
    pub since: DateTime<Utc>,
}

fn time(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

pub fn text(trace: &Trace, now: DateTime<Utc>) -> String {
    let mut s = String::new();
    let order = &trace.order;
    let _ = writeln!(
        s,
        "order {} of {}: {}{}",
        order.order_id,
        order.customer_id,
        order.status,
        order
            .reason
            .as_ref()
            .map_or(String::new(), |r| format!(" ({r})"))
    );
    let _ = writeln!(
        s,
        "\ntimeline: {} messages ({} scanned in {} partitions)",
        trace.timeline.len(),
        trace.scanned.messages,
        trace.scanned.partitions
    );
    for entry in &trace.timeline {
        let _ = writeln!(s, "  {}", line(entry));
    }
    status(&mut s, order);
    let _ = writeln!(s, "\nnotifications:");
    match (&trace.deliveries, &trace.deliveries_error) {
        (Some(deliveries), _) if deliveries.is_empty() => {
            let _ = writeln!(s, "  none delivered");
        }
        (Some(deliveries), _) => {
            for d in deliveries {
                let when = d.delivered_at.as_ref().map_or("-".to_string(), time);
                let _ = writeln!(
                    s,
                    "  {} via {}: {} at {} (attempts {}, delivery {}){}",
                    d.final_status,
                    d.channel,
                    d.status,
                    when,
                    d.attempts.map_or("-".to_string(), |a| a.to_string()),
                    d.delivery_id.as_deref().unwrap_or("-"),
                    d.error.as_ref().map_or(String::new(), |e| format!(": {e}"))
                );
            }
        }
        (None, error) => {
            let _ = writeln!(s, "  unknown: {}", error.as_deref().unwrap_or("-"));
        }
    }
    match &trace.waiting {
        None => {
            let _ = writeln!(s, "\nthe saga has ended");
        }
        Some(waiting) => {
            let for_secs = (now - waiting.since).num_milliseconds() as f64 / 1000.0;
            let _ = writeln!(
                s,
                "\nwaiting for {} since {} ({for_secs:.1} s)",
                waiting.step,
                time(&waiting.since)
            );
        }
    }
    s
}

fn status(s: &mut String, order: &OrderView) {
    let or_dash = |v: Option<String>| v.unwrap_or_else(|| "-".into());
    let _ = writeln!(s, "\nread model:");
    let _ = writeln!(
        s,
        "  status {}  reason {}  cancellation {}  total {} {}",
        order.status,
        or_dash(order.reason.clone()),
        or_dash(order.cancellation.clone()),
        or_dash(order.total.map(|t| t.to_string())),
        or_dash(order.currency.clone()),
    );
    let _ = writeln!(
        s,
        "  created {}  deadline {}  updated {}",
        time(&order.created_at),
        or_dash(order.deadline_at.as_ref().map(time)),
        time(&order.updated_at)
    );
    let _ = writeln!(
        s,
        "  last event {} at {}",
        or_dash(order.last_event.clone()),
        or_dash(order.last_event_at.as_ref().map(time))
    );
    let history: Vec<String> = order
        .history
        .as_array()
        .map(|steps| {
            steps
                .iter()
                .map(|h| {
                    format!(
                        "{} at {}",
                        h["status"].as_str().unwrap_or("?"),
                        h["at"].as_str().unwrap_or("?")
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    let _ = writeln!(s, "  history {}", history.join(" → "));
}
