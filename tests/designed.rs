//! Orders whose fate is designed before they are placed (payable, a declining
//! payment token, more than there is in stock), and the check of what became
//! of each, read from the services' own records rather than our tallies: the
//! order's status and status history (`order_status`), and the payment
//! provider's own books (the sandbox's `sandbox_calls` and `sandbox_charges`).
//! A fault test passes only when every order ended as designed, in time, and
//! the provider was asked exactly what each order needed.

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::PgPool;

use crate::saga::Saga;

/// What an order's input makes of it when nothing goes wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Design {
    /// In stock, approving token: CONFIRMED.
    Payable,
    /// In stock, `tok_decline`: CANCELLED `payment_declined`.
    Declined,
    /// More than the SKU ever holds: CANCELLED `out_of_stock`.
    OutOfStock,
}

impl Design {
    /// The designed final (status, reason).
    pub fn fate(self) -> (&'static str, Option<&'static str>) {
        match self {
            Design::Payable => ("CONFIRMED", None),
            Design::Declined => ("CANCELLED", Some("payment_declined")),
            Design::OutOfStock => ("CANCELLED", Some("out_of_stock")),
        }
    }

    /// The sandbox payment token the design places with.
    pub fn token(self) -> &'static str {
        match self {
            Design::Declined => "tok_decline",
            Design::Payable | Design::OutOfStock => "tok_ok",
        }
    }
}

/// One placed order and what it was designed to become.
#[derive(Debug, Clone)]
pub struct Placed {
    pub customer: String,
    pub order_id: String,
    pub design: Design,
    /// When the customer first asked (before the POST), by this machine's clock.
    pub placed_at: DateTime<Utc>,
}

/// A stop of a worker: from when it was told to stop (or killed) until it
/// was ready again.
pub type Stop = (DateTime<Utc>, DateTime<Utc>);

/// What the order read model says of one order now.
#[derive(Debug, Clone)]
struct Seen {
    status: Option<String>,
    reason: Option<String>,
    history: Value,
}

/// Waits (polling the order database, not the gateway, which a test may be
/// restarting) until every order is final or `within` has passed.
pub async fn wait_final(saga: &Saga, orders: &[Placed], within: Duration) {
    let db = saga.db("order").await;
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let seen = read_orders(&db, orders).await;
        let open = orders
            .iter()
            .filter(|o| !seen.get(&o.order_id).is_some_and(is_final))
            .count();
        if open == 0 || tokio::time::Instant::now() >= deadline {
            return;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

fn is_final(seen: &Seen) -> bool {
    matches!(seen.status.as_deref(), Some("CONFIRMED" | "CANCELLED"))
}

async fn read_orders(db: &PgPool, orders: &[Placed]) -> HashMap<String, Seen> {
    let ids: Vec<&str> = orders.iter().map(|o| o.order_id.as_str()).collect();
    let rows: Vec<(String, Option<String>, Option<String>, Value)> = sqlx::query_as(
        "SELECT order_id, status, reason, history FROM order_status WHERE order_id = ANY($1)",
    )
    .bind(&ids)
    .fetch_all(db)
    .await
    .expect("reading order_status");
    rows.into_iter()
        .map(|(id, status, reason, history)| {
            (
                id,
                Seen {
                    status,
                    reason,
                    history,
                },
            )
        })
        .collect()
}

/// When the order's history says it became final.
fn final_at(history: &Value) -> Option<DateTime<Utc>> {
    history.as_array()?.iter().find_map(|step| {
        matches!(step["status"].as_str(), Some("CONFIRMED" | "CANCELLED"))
            .then(|| step["at"].as_str()?.parse().ok())
            .flatten()
    })
}

/// The provider's record of one idempotency key (an order id).
#[derive(Debug, Default)]
struct Provider {
    /// When each authorize call came, in the order they came.
    authorize_at: Vec<DateTime<Utc>>,
    voids: usize,
    /// Its charge: `Some(voided)` when there is one.
    charge: Option<bool>,
}

async fn read_provider(db: &PgPool, orders: &[Placed]) -> HashMap<String, Provider> {
    let ids: Vec<&str> = orders.iter().map(|o| o.order_id.as_str()).collect();
    let calls: Vec<(String, String, DateTime<Utc>)> = sqlx::query_as(
        "SELECT idempotency_key, kind, at FROM sandbox_calls
         WHERE idempotency_key = ANY($1) ORDER BY id",
    )
    .bind(&ids)
    .fetch_all(db)
    .await
    .expect("reading sandbox_calls");
    let charges: Vec<(String, bool)> = sqlx::query_as(
        "SELECT idempotency_key, voided_at IS NOT NULL FROM sandbox_charges
         WHERE idempotency_key = ANY($1)",
    )
    .bind(&ids)
    .fetch_all(db)
    .await
    .expect("reading sandbox_charges");
    let mut provider: HashMap<String, Provider> = HashMap::new();
    for (key, kind, at) in calls {
        let entry = provider.entry(key).or_default();
        match kind.as_str() {
            "authorize" => entry.authorize_at.push(at),
            _ => entry.voids += 1,
        }
    }
    for (key, voided) in charges {
        provider.entry(key).or_default().charge = Some(voided);
    }
    provider
}

/// How the orders ended, for a failure message: `(design, status, reason) → count`.
pub struct Report {
    pub problems: Vec<String>,
    pub summary: String,
}

impl Report {
    /// Prints the summary, then fails listing the first 40 problems, if any.
    pub fn assert_as_designed(&self) {
        eprintln!("{}", self.summary);
        assert!(
            self.problems.is_empty(),
            "{} problems; {}:\n{}",
            self.problems.len(),
            self.summary,
            self.problems[..self.problems.len().min(40)].join("\n")
        );
    }
}

/// Everything wrong with how the orders ended:
///
/// - each ended with its designed fate (not merely some final state);
/// - when `final_within` is given, each became final (by its own status
///   history) within that long of being placed;
/// - the provider's call log: a payable order was authorized, its charge
///   stands and it was never voided; a declined one was asked once and holds
///   no charge; an out-of-stock one was never asked to authorize. A second
///   authorize call for one order is allowed only across a stop of the payment
///   worker (`payment_stops`: from when it was told to stop until it was
///   ready again): a call it made and could not record the answer of, made
///   again under the same idempotency key. Anything else is a call the saga
///   should not have made.
pub async fn check(
    saga: &Saga,
    orders: &[Placed],
    payment_stops: &[Stop],
    final_within: Option<Duration>,
) -> Report {
    let seen = read_orders(&saga.db("order").await, orders).await;
    let provider = read_provider(&saga.db("payment").await, orders).await;
    let none = Provider::default();
    let mut problems = Vec::new();
    let mut tally: HashMap<String, usize> = HashMap::new();
    let mut latencies = Vec::new();
    for order in orders {
        let id = &order.order_id;
        let design = order.design;
        let Some(seen) = seen.get(id) else {
            problems.push(format!("{id} ({design:?}) unknown to the order read model"));
            continue;
        };
        let got = (seen.status.as_deref(), seen.reason.as_deref());
        *tally
            .entry(format!("{design:?} → {}", describe(got)))
            .or_default() += 1;
        let wanted = design.fate();
        if got != (Some(wanted.0), wanted.1) {
            problems.push(format!(
                "{id} ({design:?}) ended {}, designed {}",
                describe(got),
                describe((Some(wanted.0), wanted.1))
            ));
        }
        if let Some(at) = final_at(&seen.history) {
            let took = (at - order.placed_at).to_std().unwrap_or_default();
            latencies.push(took);
            if let Some(limit) = final_within
                && took > limit
            {
                problems.push(format!(
                    "{id} ({design:?}) final {:.1} s after it was placed (history {})",
                    took.as_secs_f64(),
                    seen.history
                ));
            }
        }
        let calls = provider.get(id).unwrap_or(&none);
        problems.extend(provider_problems(id, design, calls, payment_stops));
    }
    latencies.sort();
    let quantile = |q: f64| {
        latencies
            .get(((latencies.len() as f64 - 1.0) * q).round() as usize)
            .map_or(0.0, Duration::as_secs_f64)
    };
    let mut tally: Vec<_> = tally.into_iter().collect();
    tally.sort();
    let summary = format!(
        "{} orders: {}; placed to final: p50 {:.2} s, p99 {:.2} s, max {:.2} s",
        orders.len(),
        tally
            .iter()
            .map(|(k, n)| format!("{k}: {n}"))
            .collect::<Vec<_>>()
            .join(", "),
        quantile(0.5),
        quantile(0.99),
        quantile(1.0)
    );
    Report { problems, summary }
}

fn describe((status, reason): (Option<&str>, Option<&str>)) -> String {
    match (status, reason) {
        (Some(status), Some(reason)) => format!("{status} {reason}"),
        (Some(status), None) => status.to_string(),
        (None, _) => "without a status".to_string(),
    }
}

fn provider_problems(
    id: &str,
    design: Design,
    calls: &Provider,
    payment_stops: &[Stop],
) -> Vec<String> {
    let mut problems = Vec::new();
    let asked = calls.authorize_at.len();
    match design {
        Design::Payable => {
            if calls.charge != Some(false) {
                problems.push(format!(
                    "{id} (Payable): provider charge {:?} (Some(false) is one standing)",
                    calls.charge
                ));
            }
            if asked == 0 {
                problems.push(format!("{id} (Payable): never asked to authorize"));
            }
            if calls.voids > 0 {
                problems.push(format!("{id} (Payable): {} void calls", calls.voids));
            }
        }
        Design::Declined => {
            if calls.charge.is_some() {
                problems.push(format!("{id} (Declined): provider holds a charge"));
            }
            if asked == 0 {
                problems.push(format!("{id} (Declined): never asked to authorize"));
            }
        }
        Design::OutOfStock => {
            if calls.charge.is_some() || asked > 0 {
                problems.push(format!(
                    "{id} (OutOfStock): {asked} authorize calls, charge {:?}",
                    calls.charge
                ));
            }
        }
    }
    // The same key asked again: only a retry across a stop of the worker.
    for pair in calls.authorize_at.windows(2) {
        let (first, again) = (pair[0], pair[1]);
        if !payment_stops
            .iter()
            .any(|(stopping, back)| first <= *back && *stopping <= again)
        {
            problems.push(format!(
                "{id} ({design:?}): authorize called again at {again} (first at {first}) \
                 with no stop of the payment worker between"
            ));
        }
    }
    problems
}
