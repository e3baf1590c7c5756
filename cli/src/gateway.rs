//! `chorus token`, `chorus order …` and `chorus stock …`: the gateway's HTTP
//! API from a terminal. A non-2xx answer prints the gateway's error JSON to
//! stderr and exits non-zero.

use std::time::Duration;

use anyhow::Context;
use chorus_platform::token::{DEV_JWT_SECRET, Role, issue_token};
use reqwest::{Client, Method, Url};
use serde_json::{Value, json};

use crate::args::{
    CancelOrderArgs, GatewayArgs, GetStockArgs, Global, ListOrdersArgs, OrderStatusArgs,
    PlaceOrderArgs, SetStockArgs, TokenArgs,
};

/// The gateway refused the request; its answer is already on stderr.
#[derive(Debug, thiserror::Error)]
#[error("the gateway answered {0}")]
pub struct Refused(pub reqwest::StatusCode);

const FINAL_STATUSES: [&str; 2] = ["CONFIRMED", "CANCELLED"];
/// Seconds the gateway holds one long-poll (its maximum).
const LONG_POLL_SECS: u64 = 30;

fn jwt_secret() -> String {
    std::env::var("CHORUS_JWT_SECRET")
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| DEV_JWT_SECRET.to_string())
}

pub fn token(args: &TokenArgs) -> anyhow::Result<()> {
    let token = issue_token(
        &jwt_secret(),
        &args.sub,
        args.role,
        Duration::from_secs(args.ttl_secs),
    )?;
    println!("{token}");
    Ok(())
}

struct Gateway {
    client: Client,
    base: Url,
    token: String,
}

impl Gateway {
    fn new(global: &Global, args: &GatewayArgs, default_role: Role) -> anyhow::Result<Gateway> {
        let base = Url::parse(&args.gateway)
            .with_context(|| format!("--gateway {} is not a URL", args.gateway))?;
        let token = match &args.token {
            Some(token) => token.clone(),
            None => issue_token(
                &jwt_secret(),
                &args.sub,
                args.role.unwrap_or(default_role),
                Duration::from_secs(3600),
            )?,
        };
        let client = Client::builder()
            .connect_timeout(global.timeout())
            .timeout(global.timeout() + Duration::from_secs(LONG_POLL_SECS))
            .build()?;
        Ok(Gateway {
            client,
            base,
            token,
        })
    }

    fn url(&self, segments: &[&str], query: &[(&str, &str)]) -> anyhow::Result<Url> {
        let mut url = self.base.clone();
        url.path_segments_mut()
            .map_err(|()| anyhow::anyhow!("--gateway {} cannot be a base URL", self.base))?
            .pop_if_empty()
            .extend(segments);
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        Ok(url)
    }

    /// Sends one request; a non-2xx answer is printed to stderr as [`Refused`].
    async fn send(
        &self,
        method: Method,
        url: Url,
        body: Option<&Value>,
        idempotency_key: Option<&str>,
    ) -> anyhow::Result<Value> {
        let mut request = self
            .client
            .request(method.clone(), url.clone())
            .bearer_auth(&self.token);
        if let Some(body) = body {
            request = request.json(body);
        }
        if let Some(key) = idempotency_key {
            request = request.header("Idempotency-Key", key);
        }
        let response = request
            .send()
            .await
            .with_context(|| format!("the gateway at {} is unreachable", self.base))?;
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        if !status.is_success() {
            let error = serde_json::from_str::<Value>(&text).unwrap_or_else(|_| {
                json!({"error": {"code": "http_error", "message": format!("{status}: {text}"), "field": null}})
            });
            eprintln!("{error}");
            return Err(Refused(status).into());
        }
        serde_json::from_str(&text)
            .with_context(|| format!("{method} {url} answered {status} with non-JSON: {text}"))
    }
}

fn print_pretty(value: &Value) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

pub async fn place_order(global: &Global, args: &PlaceOrderArgs) -> anyhow::Result<()> {
    let gateway = Gateway::new(global, &args.gateway, Role::Customer)?;
    let items: Vec<Value> = args
        .lines
        .iter()
        .map(|(sku, quantity)| json!({"sku": sku, "quantity": quantity}))
        .collect();
    let body = json!({
        "items": items,
        "currency": args.currency,
        "payment_token": args.payment_token,
    });
    let key = args
        .idempotency_key
        .clone()
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let url = gateway.url(&["v1", "orders"], &[])?;
    let accepted = gateway
        .send(Method::POST, url, Some(&body), Some(&key))
        .await?;
    print_pretty(&accepted)
}

pub async fn order_status(global: &Global, args: &OrderStatusArgs) -> anyhow::Result<()> {
    let gateway = Gateway::new(global, &args.gateway, Role::Customer)?;
    let segments = ["v1", "orders", args.order_id.as_str()];
    if !args.wait {
        let url = gateway.url(&segments, &[])?;
        return print_pretty(&gateway.send(Method::GET, url, None, None).await?);
    }
    let mut seen: Option<String> = None;
    loop {
        let wait = LONG_POLL_SECS.to_string();
        let url = match &seen {
            None => gateway.url(&segments, &[])?,
            Some(status) => gateway.url(&segments, &[("wait", &wait), ("seen", status)])?,
        };
        let order = gateway.send(Method::GET, url, None, None).await?;
        let status = order["status"].as_str().unwrap_or_default().to_string();
        if seen.as_deref() != Some(status.as_str()) {
            println!("{order}");
            seen = Some(status.clone());
        }
        if FINAL_STATUSES.contains(&status.as_str()) {
            return Ok(());
        }
    }
}

/// `GET /v1/orders`: one order per line (as `order status --wait` prints
/// them), newest first. A page with more after it ends with `next` on
/// stderr; with --all, the pages are followed until `next` is null.
pub async fn list_orders(global: &Global, args: &ListOrdersArgs) -> anyhow::Result<()> {
    let gateway = Gateway::new(global, &args.gateway, Role::Customer)?;
    let limit = args.limit.map(|n| n.to_string());
    let mut cursor = args.cursor.clone();
    loop {
        let filters = [
            ("customer", args.customer.as_deref()),
            ("status", args.status.as_deref()),
            ("since", args.since.as_deref()),
            ("limit", limit.as_deref()),
            ("cursor", cursor.as_deref()),
        ];
        let query: Vec<(&str, &str)> = filters
            .into_iter()
            .filter_map(|(name, value)| Some((name, value?)))
            .collect();
        let url = gateway.url(&["v1", "orders"], &query)?;
        let page = gateway.send(Method::GET, url, None, None).await?;
        for order in page["orders"].as_array().into_iter().flatten() {
            println!("{order}");
        }
        let Some(next) = page["next"].as_str() else {
            return Ok(());
        };
        if !args.all {
            eprintln!("more orders: --cursor {next}");
            return Ok(());
        }
        anyhow::ensure!(
            cursor.as_deref() != Some(next),
            "the gateway answered the same `next` twice: {next}"
        );
        cursor = Some(next.to_string());
    }
}

/// `POST /v1/orders/{id}/cancel` (no body): 202 with the order as it stands;
/// 404 for someone else's order, 409 `already_final` once it is final.
pub async fn cancel_order(global: &Global, args: &CancelOrderArgs) -> anyhow::Result<()> {
    let gateway = Gateway::new(global, &args.gateway, Role::Customer)?;
    let url = gateway.url(&["v1", "orders", args.order_id.as_str(), "cancel"], &[])?;
    print_pretty(&gateway.send(Method::POST, url, None, None).await?)
}

pub async fn set_stock(global: &Global, args: &SetStockArgs) -> anyhow::Result<()> {
    let gateway = Gateway::new(global, &args.gateway, Role::Admin)?;
    let mut body = json!({"available": args.available, "unit_price": args.price});
    if let Some(name) = &args.name {
        body["name"] = json!(name);
    }
    let url = gateway.url(&["v1", "admin", "inventory", args.sku.as_str()], &[])?;
    print_pretty(&gateway.send(Method::PUT, url, Some(&body), None).await?)
}

pub async fn get_stock(global: &Global, args: &GetStockArgs) -> anyhow::Result<()> {
    let gateway = Gateway::new(global, &args.gateway, Role::Admin)?;
    let url = gateway.url(&["v1", "admin", "inventory", args.sku.as_str()], &[])?;
    print_pretty(&gateway.send(Method::GET, url, None, None).await?)
}
