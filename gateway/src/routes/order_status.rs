//! `GET /v1/orders/{order_id}`: the order service's read model, or — until
//! that has seen the order — the gateway's own record as `PENDING`, so an
//! order is never 404 to its owner after its 202. `?wait=&seen=` long-polls
//! through the shared [`StatusWatch`](crate::status_watch::StatusWatch).

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use chrono::SecondsFormat;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::time::Instant;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::AppState;
use crate::auth::Caller;
use crate::error::AppError;
use crate::extract::{PathParam, QueryParams};
use crate::routes::openapi::{
    BadRequest, InternalError, NotFound, TooManyRequests, Unauthorized, Unavailable,
};
use crate::store::{AcceptedOrder, OrderStatusRow};
use crate::validate::StatusName;

pub const FINAL_STATUSES: [&str; 2] = ["CONFIRMED", "CANCELLED"];
pub const MAX_WAIT_SECS: u64 = 30;

/// An order as its customer sees it.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[schema(as = Order)]
pub struct OrderView {
    pub order_id: String,
    /// PENDING, RESERVED, then CONFIRMED or CANCELLED (final).
    pub status: String,
    /// Why it was cancelled, e.g. out_of_stock, customer_cancelled.
    #[schema(required = true)]
    pub reason: Option<String>,
    pub items: Vec<ItemView>,
    /// Decimal string; null until priced.
    #[schema(required = true)]
    pub total: Option<String>,
    pub currency: String,
    pub history: Vec<HistoryEntry>,
    /// What became of a cancellation request: `accepted`, `rejected`, or
    /// `null` (none, or not settled yet).
    #[schema(required = true)]
    pub cancellation: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[schema(as = OrderItem)]
pub struct ItemView {
    pub sku: String,
    pub quantity: i64,
    /// Decimal string; null until priced.
    #[schema(required = true)]
    pub unit_price: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct HistoryEntry {
    pub status: String,
    /// When the order reached this status (RFC 3339, UTC).
    #[schema(value_type = String, format = DateTime)]
    pub at: Value,
}

impl OrderView {
    pub fn is_final(&self) -> bool {
        is_final(&self.status)
    }
}

pub fn is_final(status: &str) -> bool {
    FINAL_STATUSES
        .iter()
        .any(|s| s.eq_ignore_ascii_case(status))
}

/// `?wait=<seconds>&seen=<STATUS>`.
#[derive(Debug, Deserialize)]
pub struct StatusQuery {
    wait: Option<String>,
    seen: Option<String>,
}

/// An order's status (its owner or an admin); long-polls with wait and seen
#[utoipa::path(
    get,
    path = "/v1/orders/{order_id}",
    operation_id = "getOrder",
    tag = "orders",
    security(("bearer" = [])),
    params(
        ("order_id" = String, Path, format = "uuid"),
        ("wait" = Option<u64>, Query, minimum = 0, maximum = 30,
         description = "Seconds to wait for the status to differ from `seen` (or become final)"),
        ("seen" = Option<String>, Query, pattern = "^[A-Za-z_]{1,32}$",
         description = "The status the client already knows, e.g. PENDING"),
    ),
    responses(
        (status = 200, description = "The order", body = OrderView),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 404, response = NotFound),
        (status = 429, response = TooManyRequests),
        (status = 500, response = InternalError),
        (status = 503, response = Unavailable),
    ),
)]
pub async fn get_order(
    State(state): State<AppState>,
    caller: Caller,
    PathParam(order_id): PathParam,
    QueryParams(query): QueryParams<StatusQuery>,
) -> Result<Json<OrderView>, AppError> {
    let wait = match query.wait.as_deref() {
        None => 0,
        Some(text) => text
            .parse::<u64>()
            .ok()
            .filter(|&secs| secs <= MAX_WAIT_SECS)
            .ok_or_else(|| {
                AppError::field(
                    "wait",
                    format!("must be a whole number of seconds from 0 to {MAX_WAIT_SECS}"),
                )
            })?,
    };
    let seen = query
        .seen
        .as_deref()
        .map(StatusName::parse)
        .transpose()
        .map_err(|m| AppError::field("seen", m))?;
    let view = load(&state, &caller, &order_id).await?;
    let Some(seen) = seen.filter(|s| wait > 0 && s.matches(&view.status) && !view.is_final())
    else {
        return Ok(Json(view));
    };
    let deadline = Instant::now() + Duration::from_secs(wait);
    let inner = &state.inner;
    let mut watch = inner.status_watch.subscribe(&view.order_id);
    loop {
        // A shutdown answers the current state at once instead of holding
        // the graceful drain for up to 30 s.
        tokio::select! {
            changed = watch.row.changed() => {
                if changed.is_err() {
                    break;
                }
                let row = watch.row.borrow_and_update().clone();
                // The caller may see it: the first read said so.
                if let Some(row) = row.filter(|r| !seen.matches(&r.status) || is_final(&r.status)) {
                    return Ok(Json(from_read_model((*row).clone())?));
                }
            }
            () = tokio::time::sleep_until(deadline) => break,
            () = inner.shutdown.cancelled() => break,
        }
    }
    drop(watch);
    Ok(Json(load(&state, &caller, &order_id).await?))
}

/// The order if `caller` may see it (its owner or an admin); otherwise 404,
/// never 403, so ids of other customers' orders are not confirmed to exist.
pub async fn load(
    state: &AppState,
    caller: &Caller,
    order_id: &str,
) -> Result<OrderView, AppError> {
    load_owned(state, caller, order_id)
        .await
        .map(|(_, view)| view)
}

/// As [`load`], with the order's owner (its customer).
pub async fn load_owned(
    state: &AppState,
    caller: &Caller,
    order_id: &str,
) -> Result<(String, OrderView), AppError> {
    let not_found = || AppError::NotFound(format!("no order {order_id}"));
    let Ok(uuid) = Uuid::parse_str(order_id) else {
        return Err(not_found());
    };
    let visible = |owner: &str| caller.is_admin() || owner == caller.subject();
    let store = &state.inner.store;
    if let Some(row) = store.order_status(&uuid.to_string()).await? {
        return if visible(&row.customer_id) {
            Ok((row.customer_id.clone(), from_read_model(row)?))
        } else {
            Err(not_found())
        };
    }
    match store.published_order(uuid).await? {
        Some(row) if visible(&row.customer_id) => {
            Ok((row.customer_id.clone(), from_accepted(row)?))
        }
        _ => Err(not_found()),
    }
}

fn from_read_model(row: OrderStatusRow) -> Result<OrderView, AppError> {
    #[derive(Deserialize)]
    struct Item {
        sku: String,
        quantity: i64,
        #[serde(default)]
        unit_price: Option<Value>,
    }
    let bad = |what: &str, e: serde_json::Error| {
        AppError::Internal(format!("order_status.{what} of {}: {e}", row.order_id))
    };
    let items: Vec<Item> =
        serde_json::from_value(row.items.clone()).map_err(|e| bad("items", e))?;
    let history: Vec<HistoryEntry> =
        serde_json::from_value(row.history.clone()).map_err(|e| bad("history", e))?;
    Ok(OrderView {
        order_id: row.order_id,
        status: row.status,
        reason: row.reason,
        items: items
            .into_iter()
            .map(|item| ItemView {
                sku: item.sku,
                quantity: item.quantity,
                unit_price: item.unit_price.and_then(money_text),
            })
            .collect(),
        total: row.total.map(|t| t.to_string()),
        currency: row.currency,
        history,
        cancellation: row.cancellation,
    })
}

/// Money as a decimal string whether the read model stored text or a number.
fn money_text(value: Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn from_accepted(row: AcceptedOrder) -> Result<OrderView, AppError> {
    #[derive(Deserialize)]
    struct Line {
        sku: String,
        quantity: i64,
    }
    let lines: Vec<Line> = serde_json::from_value(row.items).map_err(|e| {
        AppError::Internal(format!("accepted_orders.items of {}: {e}", row.order_id))
    })?;
    Ok(OrderView {
        order_id: row.order_id.to_string(),
        status: "PENDING".to_string(),
        reason: None,
        items: lines
            .into_iter()
            .map(|line| ItemView {
                sku: line.sku,
                quantity: line.quantity,
                unit_price: None,
            })
            .collect(),
        total: None,
        currency: row.currency,
        history: vec![HistoryEntry {
            status: "PENDING".to_string(),
            at: Value::String(row.created_at.to_rfc3339_opts(SecondsFormat::Millis, true)),
        }],
        cancellation: None,
    })
}
