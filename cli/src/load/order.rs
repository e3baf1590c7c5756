//! One order of the load, as a storefront drives it: POST it, then long-poll
//! its status (`?wait=&seen=`) until it is final or `--order-timeout` passes.
//! Every failed request is counted by what failed; none ends the run.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::Context;
use indicatif::ProgressBar;
use reqwest::header::{HeaderValue, RETRY_AFTER};
use reqwest::{Client, StatusCode, Url};
use serde_json::{Value, json};
use tokio::time::Instant;

use super::catalogue::{OOS_SKU, sku_name};
use super::stats::{self, Kind};
use crate::args::Mix;
use crate::saga_steps::is_final;

/// Everything an order task needs, shared.
pub struct Ctx {
    pub client: Client,
    pub base: Url,
    pub tokens: Vec<String>,
    pub mix: Mix,
    pub lines: u64,
    pub skus: u64,
    pub wait: u64,
    pub order_timeout: Duration,
    pub progress: ProgressBar,
    pub counters: Counters,
    pub http_errors: Mutex<BTreeMap<String, u64>>,
}

#[derive(Default)]
pub struct Counters {
    confirmed: AtomicU64,
    cancelled: AtomicU64,
    failed: AtomicU64,
}

impl Ctx {
    fn error(&self, label: String) {
        *self
            .http_errors
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(label)
            .or_insert(0) += 1;
    }

    fn url(&self, path: &str) -> anyhow::Result<Url> {
        self.base
            .join(path)
            .with_context(|| format!("joining {path} to {}", self.base))
    }

    pub fn tick(&self, outcome: &OrderResult) {
        let counter = match outcome.status.as_deref() {
            Some("CONFIRMED") => &self.counters.confirmed,
            Some(_) => &self.counters.cancelled,
            None => &self.counters.failed,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        self.progress.set_message(format!(
            "confirmed {} cancelled {} failed {}",
            self.counters.confirmed.load(Ordering::Relaxed),
            self.counters.cancelled.load(Ordering::Relaxed),
            self.counters.failed.load(Ordering::Relaxed),
        ));
        self.progress.inc(1);
    }
}

fn error_label(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "timeout".into()
    } else if e.is_connect() {
        "connect".into()
    } else {
        "transport".into()
    }
}

/// How long to wait before asking again after a refused status request:
/// the answer's `Retry-After` seconds (at most 5), or 100 ms without one.
pub fn retry_delay(retry_after: Option<&HeaderValue>) -> Duration {
    retry_after
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map_or(Duration::from_millis(100), |secs| {
            Duration::from_secs(secs.min(5))
        })
}

/// What became of one order.
#[derive(Debug, Clone)]
pub struct OrderResult {
    pub kind: Kind,
    /// The final status, when it was reached.
    pub status: Option<String>,
    pub outcome: String,
    /// POST (or, open loop, its due time) to final status.
    pub latency: Option<Duration>,
    /// POST to its 202.
    pub accepted_in: Option<Duration>,
    /// When the final status arrived, from the start of the run.
    pub finished_at: Duration,
}

/// Order number `i`: placed, then followed to its final status.
pub async fn place_and_follow(ctx: &Ctx, i: u64, run_start: Instant, due: Instant) -> OrderResult {
    let kind = stats::kind_of(i, &ctx.mix);
    let result = |status: Option<String>, outcome: String, latency, accepted_in| OrderResult {
        kind,
        status,
        outcome,
        latency,
        accepted_in,
        finished_at: run_start.elapsed(),
    };
    let token = &ctx.tokens[(i % ctx.tokens.len() as u64) as usize];
    let posted = Instant::now();
    let accepted = match place(ctx, i, kind, token).await {
        Ok(accepted) => accepted,
        Err(outcome) => return result(None, outcome, None, None),
    };
    let accepted_in = posted.elapsed();
    let order_id = accepted["order_id"].as_str().unwrap_or_default();
    let seen = accepted["status"].as_str().unwrap_or("PENDING");
    match follow(ctx, order_id, seen, token, due).await {
        Ok(order) => {
            let status = order["status"].as_str().unwrap_or_default().to_string();
            let outcome = stats::outcome_label(&status, order["reason"].as_str());
            result(
                Some(status),
                outcome,
                Some(due.elapsed()),
                Some(accepted_in),
            )
        }
        Err(outcome) => result(None, outcome, None, Some(accepted_in)),
    }
}

/// POSTs order `i`; its 202 body, or the outcome label of a refusal.
async fn place(ctx: &Ctx, i: u64, kind: Kind, token: &str) -> Result<Value, String> {
    let mut items: Vec<Value> = stats::skus_of(i, ctx.lines, ctx.skus)
        .into_iter()
        .map(|n| json!({"sku": sku_name(n), "quantity": 1}))
        .collect();
    if kind == Kind::OutOfStock {
        let last = items.len() - 1;
        items[last] = json!({"sku": OOS_SKU, "quantity": 1});
    }
    let body = json!({
        "items": items,
        "currency": "EUR",
        "payment_token": if kind == Kind::Decline { "tok_decline" } else { "tok_ok" },
    });
    let orders_url = ctx
        .url("v1/orders")
        .map_err(|_| "rejected (bad url)".to_string())?;
    let response = ctx
        .client
        .post(orders_url)
        .bearer_auth(token)
        .header("Idempotency-Key", uuid::Uuid::new_v4().to_string())
        .json(&body)
        .send()
        .await;
    match response {
        Ok(r) if r.status() == StatusCode::ACCEPTED => r.json().await.map_err(|e| {
            ctx.error(error_label(&e));
            "rejected (body)".to_string()
        }),
        Ok(r) => {
            let code = r.status().as_u16().to_string();
            ctx.error(code.clone());
            Err(format!("rejected ({code})"))
        }
        Err(e) => {
            let label = error_label(&e);
            ctx.error(label.clone());
            Err(format!("rejected ({label})"))
        }
    }
}

/// Long-polls the order until its status is final; the final body, or the
/// outcome label when `--order-timeout` passed first.
async fn follow(
    ctx: &Ctx,
    order_id: &str,
    seen: &str,
    token: &str,
    due: Instant,
) -> Result<Value, String> {
    let status_url = ctx
        .url(&format!("v1/orders/{order_id}"))
        .map_err(|_| "rejected (order id)".to_string())?;
    let wait = ctx.wait.to_string();
    let mut seen = seen.to_string();
    loop {
        if due.elapsed() > ctx.order_timeout {
            return Err("timeout".into());
        }
        let mut url = status_url.clone();
        url.query_pairs_mut()
            .append_pair("wait", &wait)
            .append_pair("seen", &seen);
        let response = ctx.client.get(url).bearer_auth(token).send().await;
        let order: Value = match response {
            Ok(r) if r.status().is_success() => match r.json().await {
                Ok(v) => v,
                Err(e) => {
                    ctx.error(error_label(&e));
                    continue;
                }
            },
            Ok(r) => {
                ctx.error(r.status().as_u16().to_string());
                // As a storefront would: an overloaded gateway's Retry-After
                // is honoured, so a thousand waiting orders do not retry it
                // ten times a second each and measure their own storm.
                tokio::time::sleep(retry_delay(r.headers().get(RETRY_AFTER))).await;
                continue;
            }
            Err(e) => {
                ctx.error(error_label(&e));
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let status = order["status"].as_str().unwrap_or_default().to_string();
        if is_final(&status) {
            return Ok(order);
        }
        seen = status;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_status_request_waits_as_the_gateway_asks() {
        let after = |v: &str| retry_delay(Some(&HeaderValue::from_str(v).unwrap()));
        assert_eq!(after("1"), Duration::from_secs(1));
        assert_eq!(after(" 2 "), Duration::from_secs(2));
        // A gateway asking for minutes is not followed past a few seconds.
        assert_eq!(after("3600"), Duration::from_secs(5));
        // No header, or one that is not whole seconds (an HTTP date): a short pause.
        assert_eq!(retry_delay(None), Duration::from_millis(100));
        assert_eq!(
            after("Wed, 21 Oct 2015 07:28:00 GMT"),
            Duration::from_millis(100)
        );
    }
}
