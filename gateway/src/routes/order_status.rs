//! `GET /v1/orders/{order_id}`: the order service's read model, or — until
//! that has seen the order — the gateway's own record as `PENDING`, so an
//! order is never 404 to its owner after its 202. `?wait=&seen=` long-polls
//! through the shared [`StatusWatch`](crate::status_watch::StatusWatch): on
//! an order the gateway remembers ([`KnownOrders`](crate::known_orders)),
//! without a read of its own, the poller's reads supplying the answer.

use std::sync::Arc;
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
use crate::known_orders::LastRead;
use crate::routes::openapi::{
    BadRequest, InternalError, NotFound, TooManyRequests, Unauthorized, Unavailable,
};
use crate::status_watch::Since;
use crate::store::{AcceptedOrder, OrderStatusRow};
use crate::validate::StatusName;

pub const FINAL_STATUSES: [&str; 2] = ["CONFIRMED", "CANCELLED"];
/// An order's status until the order service has seen it.
const PENDING: &str = "PENDING";
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
    let deadline = Instant::now() + Duration::from_secs(wait);
    let Ok(uuid) = Uuid::parse_str(&order_id) else {
        return Err(not_found(&order_id));
    };
    let known = state.inner.status_watch.known();
    let Some(seen) = seen.filter(|_| wait > 0) else {
        let (owner, found) = read(&state, &caller, &order_id, uuid).await?;
        known.record_owner(uuid, &owner);
        return Ok(Json(found.into_view()?));
    };
    // An order this gateway accepted or read recently: its owner decides
    // who may see it, and the poller's next read supplies its row.
    if let Some(order) = known.get(uuid) {
        if !visible(&caller, &order.owner) {
            return Err(not_found(&order_id));
        }
        let start = starting_point(order.last_read, &seen);
        let _place = state.inner.edge.long_polls().enter(caller.subject())?;
        return wait_for_change(&state, &caller, uuid, &seen, deadline, start).await;
    }
    let (owner, found) = read(&state, &caller, &order_id, uuid).await?;
    known.record_owner(uuid, &owner);
    let status = found.status();
    if !seen.matches(status) || is_final(status) {
        return Ok(Json(found.into_view()?));
    }
    // Read just now with the status the client has seen: the poller reads
    // its changes since.
    let start = match found {
        Found::ReadModel(row) => Some(Since {
            updated_at: row.updated_at,
            row: Some(Arc::new(row)),
        }),
        Found::Accepted(_) => None,
    };
    let _place = state.inner.edge.long_polls().enter(caller.subject())?;
    wait_for_change(&state, &caller, uuid, &seen, deadline, start).await
}

/// Where a long-poll on a known order starts watching: the status the
/// poller last read may stand in for a read only when it is the one the
/// client has seen (and not final), and then only as the point from which
/// changes are read; a remembered row is never an answer, as it may be
/// stale.
pub fn starting_point(last_read: Option<LastRead>, seen: &StatusName) -> Option<Since> {
    last_read
        .filter(|read| seen.matches(read.status) && !is_final(read.status))
        .map(|read| Since {
            updated_at: read.updated_at,
            row: None,
        })
}

/// Waits for a read (begun after now) to show a status other than `seen`,
/// or a final one; at the deadline or shutdown, answers the row as the
/// latest read found it, reading only when no read has (the read model
/// lacks the order, or the watch started from a remembered status).
async fn wait_for_change(
    state: &AppState,
    caller: &Caller,
    uuid: Uuid,
    seen: &StatusName,
    deadline: Instant,
    start: Option<Since>,
) -> Result<Json<OrderView>, AppError> {
    let inner = &state.inner;
    let order_id = uuid.to_string();
    let mut watch = inner.status_watch.subscribe(&order_id, start);
    loop {
        // A shutdown answers the current state at once instead of holding
        // the graceful drain for up to 30 s.
        tokio::select! {
            changed = watch.changed() => {
                if changed.is_err() {
                    break;
                }
                match watch.fresh() {
                    Some(Some(row)) if !seen.matches(&row.status) || is_final(&row.status) => {
                        return Ok(Json(from_read_model((*row).clone())?));
                    }
                    // Not in the read model: PENDING (accepted_orders), which
                    // answers a client that has seen another status.
                    Some(None) if !seen.matches(PENDING) => break,
                    _ => {}
                }
            }
            () = tokio::time::sleep_until(deadline) => break,
            () = inner.shutdown.cancelled() => break,
        }
    }
    let latest = watch.confirmed_row();
    drop(watch);
    match latest {
        Some(row) => Ok(Json(from_read_model((*row).clone())?)),
        None => Ok(Json(load(state, caller, &order_id).await?)),
    }
}

fn not_found(order_id: &str) -> AppError {
    AppError::NotFound(format!("no order {order_id}"))
}

fn visible(caller: &Caller, owner: &str) -> bool {
    caller.is_admin() || owner == caller.subject()
}

/// An order as read: the read model's row, or (until that has it) the
/// gateway's own record.
enum Found {
    ReadModel(OrderStatusRow),
    Accepted(AcceptedOrder),
}

impl Found {
    fn status(&self) -> &str {
        match self {
            Found::ReadModel(row) => &row.status,
            Found::Accepted(_) => PENDING,
        }
    }

    fn into_view(self) -> Result<OrderView, AppError> {
        match self {
            Found::ReadModel(row) => from_read_model(row),
            Found::Accepted(row) => from_accepted(row),
        }
    }
}

/// The order and its owner if `caller` may see it (its owner or an admin);
/// otherwise 404, never 403, so ids of other customers' orders are not
/// confirmed to exist.
/// `order_id` is the id as the client wrote it, for the 404's message.
async fn read(
    state: &AppState,
    caller: &Caller,
    order_id: &str,
    uuid: Uuid,
) -> Result<(String, Found), AppError> {
    let not_found = || not_found(order_id);
    let store = &state.inner.store;
    if let Some(row) = store.order_status(&uuid.to_string()).await? {
        return if visible(caller, &row.customer_id) {
            Ok((row.customer_id.clone(), Found::ReadModel(row)))
        } else {
            Err(not_found())
        };
    }
    match store.published_order(uuid).await? {
        Some(row) if visible(caller, &row.customer_id) => {
            Ok((row.customer_id.clone(), Found::Accepted(row)))
        }
        _ => Err(not_found()),
    }
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
    let Ok(uuid) = Uuid::parse_str(order_id) else {
        return Err(not_found(order_id));
    };
    let (owner, found) = read(state, caller, order_id, uuid).await?;
    Ok((owner, found.into_view()?))
}

pub(crate) fn from_read_model(row: OrderStatusRow) -> Result<OrderView, AppError> {
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
        status: PENDING.to_string(),
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
            status: PENDING.to_string(),
            at: Value::String(row.created_at.to_rfc3339_opts(SecondsFormat::Millis, true)),
        }],
        cancellation: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seen(status: &str) -> StatusName {
        StatusName::parse(status).unwrap()
    }

    fn last_read(status: &'static str) -> Option<LastRead> {
        Some(LastRead {
            status,
            updated_at: chrono::Utc::now(),
        })
    }

    #[test]
    fn a_remembered_status_is_a_starting_point_only_when_it_is_the_one_seen() {
        let read = last_read("RESERVED");
        let start = starting_point(read, &seen("reserved")).unwrap();
        assert_eq!(start.updated_at, read.unwrap().updated_at);
        // Never an answer: it carries no row.
        assert!(start.row.is_none());
        // Another status than seen: the first read returns the current row.
        assert!(starting_point(read, &seen("PENDING")).is_none());
        assert!(starting_point(last_read("PENDING"), &seen("RESERVED")).is_none());
        // A final status answers from the first read, never waits on changes.
        assert!(starting_point(last_read("CONFIRMED"), &seen("CONFIRMED")).is_none());
        assert!(starting_point(last_read("CANCELLED"), &seen("CANCELLED")).is_none());
        assert!(starting_point(None, &seen("PENDING")).is_none());
    }
}
