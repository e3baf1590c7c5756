//! The load's own catalogue: `--skus` SKUs (`LOAD-0000`, …) with ample stock
//! and one SKU with none (for the out-of-stock share), set through the
//! gateway's admin API and waited for until the inventory has applied it.

use std::time::Duration;

use anyhow::bail;
use futures::StreamExt;
use reqwest::{Client, StatusCode, Url};
use serde_json::{Value, json};
use tokio::time::Instant;

/// A SKU that never has stock: orders with a line of it cancel out of stock.
pub const OOS_SKU: &str = "LOAD-OOS";
const STOCK: i64 = 100_000_000;

pub fn sku_name(n: u64) -> String {
    format!("LOAD-{n:04}")
}

/// Sends an admin request, waiting out the gateway's rate limit.
async fn admin_send(
    request: impl Fn() -> reqwest::RequestBuilder,
) -> anyhow::Result<reqwest::Response> {
    loop {
        let response = request().send().await?;
        if response.status() != StatusCode::TOO_MANY_REQUESTS {
            return Ok(response);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Puts the load's catalogue in place and waits until the inventory service has applied it.
pub async fn set_up(client: &Client, base: &Url, admin: &str, skus: u64) -> anyhow::Result<()> {
    let mut wanted: Vec<(String, i64)> = (0..skus).map(|n| (sku_name(n), STOCK)).collect();
    wanted.push((OOS_SKU.to_string(), 0));
    let puts = futures::stream::iter(wanted.clone())
        .map(|(sku, available)| async move {
            let url = base.join(&format!("v1/admin/inventory/{sku}"))?;
            let body = json!({"available": available, "unit_price": "9.99", "name": format!("Load {sku}")});
            let response =
                admin_send(|| client.put(url.clone()).bearer_auth(admin).json(&body)).await?;
            if !response.status().is_success() {
                let status = response.status();
                bail!(
                    "PUT /v1/admin/inventory/{sku} answered {status}: {}",
                    response.text().await.unwrap_or_default()
                );
            }
            anyhow::Ok(())
        })
        .buffer_unordered(16)
        .collect::<Vec<_>>()
        .await;
    puts.into_iter().collect::<anyhow::Result<Vec<()>>>()?;
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut pending = wanted;
    while !pending.is_empty() {
        if Instant::now() > deadline {
            bail!(
                "the inventory service did not apply the catalogue within 60 s ({} SKUs left, e.g. {})",
                pending.len(),
                pending[0].0
            );
        }
        pending = not_yet_applied(client, base, admin, pending).await?;
        if !pending.is_empty() {
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
    Ok(())
}

/// The SKUs whose stock the gateway does not show as `available` yet.
async fn not_yet_applied(
    client: &Client,
    base: &Url,
    admin: &str,
    pending: Vec<(String, i64)>,
) -> anyhow::Result<Vec<(String, i64)>> {
    let checks = futures::stream::iter(pending)
        .map(|(sku, available)| async move {
            let url = base.join(&format!("v1/admin/inventory/{sku}"))?;
            let response = admin_send(|| client.get(url.clone()).bearer_auth(admin)).await?;
            let applied = response.status().is_success()
                && response.json::<Value>().await?["available"].as_i64() == Some(available);
            anyhow::Ok((sku, available, applied))
        })
        .buffer_unordered(16)
        .collect::<Vec<_>>()
        .await;
    Ok(checks
        .into_iter()
        .collect::<anyhow::Result<Vec<_>>>()?
        .into_iter()
        .filter(|(_, _, applied)| !applied)
        .map(|(sku, available, _)| (sku, available))
        .collect())
}
