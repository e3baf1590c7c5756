//! `GET /v1/orders`: a customer's own orders, or (admin) anyone's, newest
//! first, a page at a time. Served from the order service's read model
//! (see [`crate::store::OrderListing`]): an order shows once the order
//! service has recorded it, milliseconds after its 202. The `next` cursor
//! continues the list where the page ended (see [`cursor`]), so orders
//! placed while a client pages never repeat or hide one it has not seen.

mod cursor;

use axum::Json;
use axum::extract::State;
use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::AppState;
use crate::auth::Caller;
use crate::auth::claims::MAX_SUBJECT_LEN;
use crate::error::AppError;
use crate::extract::QueryParams;
use crate::routes::openapi::{
    BadRequest, Forbidden, InternalError, TooManyRequests, Unauthorized, Unavailable,
};
use crate::routes::order_status::{OrderView, from_read_model};
use crate::store::OrderListing;
use cursor::ListScope;

/// Orders per page unless `limit` says otherwise.
pub const DEFAULT_LIMIT: i64 = 20;
pub const MAX_LIMIT: i64 = 100;

/// A page of orders.
#[derive(Debug, Serialize, ToSchema)]
pub struct OrderList {
    /// Newest first.
    pub orders: Vec<ListedOrder>,
    /// Pass it back as `cursor` (with the same customer, status and since)
    /// for the next page; null on the last page.
    #[schema(required = true)]
    pub next: Option<String>,
}

/// An order as `GET /v1/orders/{order_id}` returns it, with its place in the list.
#[derive(Debug, Serialize, ToSchema)]
pub struct ListedOrder {
    #[serde(flatten)]
    pub order: OrderView,
    /// When the order service recorded the order (RFC 3339, UTC), normally
    /// milliseconds after its 202: what the list is ordered by and `since`
    /// compares.
    #[schema(value_type = String, format = DateTime)]
    pub placed_at: String,
}

/// An order status, as a list filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum OrderStatus {
    Pending,
    Reserved,
    Confirmed,
    Cancelled,
}

impl OrderStatus {
    const ALL: [OrderStatus; 4] = [
        OrderStatus::Pending,
        OrderStatus::Reserved,
        OrderStatus::Confirmed,
        OrderStatus::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            OrderStatus::Pending => "PENDING",
            OrderStatus::Reserved => "RESERVED",
            OrderStatus::Confirmed => "CONFIRMED",
            OrderStatus::Cancelled => "CANCELLED",
        }
    }

    /// Any case, as `seen` of `GET /v1/orders/{order_id}`.
    pub fn parse(text: &str) -> Result<OrderStatus, AppError> {
        OrderStatus::ALL
            .into_iter()
            .find(|s| s.as_str().eq_ignore_ascii_case(text))
            .ok_or_else(|| {
                AppError::field(
                    "status",
                    "must be one of PENDING, RESERVED, CONFIRMED, CANCELLED",
                )
            })
    }
}

/// The query string, each parameter read as text so a bad one is named.
#[derive(Debug, Deserialize)]
pub struct ListQuery {
    customer: Option<String>,
    status: Option<String>,
    since: Option<String>,
    limit: Option<String>,
    cursor: Option<String>,
}

/// List orders, newest first: a customer's own, or (admin) anyone's
#[utoipa::path(
    get,
    path = "/v1/orders",
    operation_id = "listOrders",
    tag = "orders",
    security(("bearer" = [])),
    params(
        ("customer" = Option<String>, Query, min_length = 1, max_length = 128,
         description = "Admin: only this customer's orders (without it, everyone's). \
                        A customer's token lists that customer's orders; naming anyone \
                        else is 403 `forbidden`"),
        ("status" = inline(Option<OrderStatus>), Query,
         description = "Only orders with this status (any case)"),
        ("since" = Option<String>, Query, format = "date-time",
         description = "RFC 3339: only orders placed at or after it (`placed_at`); \
                        write `+` as %2B"),
        ("limit" = Option<i64>, Query, minimum = 1, maximum = 100,
         description = "Orders per page, 1 to 100 (default 20)"),
        ("cursor" = Option<String>, Query, max_length = 512, pattern = "^([0-9a-fA-F]{2}){18,256}$",
         description = "The `next` of the previous page, unchanged; the other \
                        parameters must be the same as for that page. Opaque: \
                        a cursor this list did not return is 400 `invalid_field`"),
    ),
    responses(
        (status = 200, description = "A page of orders, newest first", body = OrderList),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 429, response = TooManyRequests),
        (status = 500, response = InternalError),
        (status = 503, response = Unavailable),
    ),
)]
pub async fn list_orders(
    State(state): State<AppState>,
    caller: Caller,
    QueryParams(query): QueryParams<ListQuery>,
) -> Result<Json<OrderList>, AppError> {
    let limit = query
        .limit
        .as_deref()
        .map_or(Ok(DEFAULT_LIMIT), parse_limit)?;
    let status = query
        .status
        .as_deref()
        .map(OrderStatus::parse)
        .transpose()?;
    let since = query.since.as_deref().map(parse_since).transpose()?;
    let customer = whose(&caller, query.customer.as_deref())?;
    let scope = ListScope {
        customer,
        status: status.map(OrderStatus::as_str),
        since,
    };
    let after = query
        .cursor
        .as_deref()
        .map(|text| cursor::decode(text, &scope).map_err(|m| AppError::field("cursor", m)))
        .transpose()?;
    let listing = OrderListing {
        customer: scope.customer,
        status: scope.status,
        since,
        after: after.as_ref(),
        // One more than the page: whether there is a next page at all.
        limit: limit + 1,
    };
    let mut rows = state.inner.store.list_orders(&listing).await?;
    let more = rows.len() as i64 > limit;
    rows.truncate(limit as usize);
    let next = rows
        .last()
        .filter(|_| more)
        .map(|last| cursor::encode(&last.key(), &scope));
    let orders = rows
        .into_iter()
        .map(|listed| {
            Ok(ListedOrder {
                placed_at: listed
                    .created_at
                    .to_rfc3339_opts(SecondsFormat::Micros, true),
                order: from_read_model(listed.row)?,
            })
        })
        .collect::<Result<Vec<_>, AppError>>()?;
    Ok(Json(OrderList { orders, next }))
}

/// Whose orders `caller` lists: an admin's, everyone's or `customer`'s; a
/// customer's, their own (403 when `customer` names someone else, as for
/// other routes the role may not use).
fn whose<'a>(caller: &'a Caller, customer: Option<&'a str>) -> Result<Option<&'a str>, AppError> {
    if let Some(customer) = customer
        && !(1..=MAX_SUBJECT_LEN).contains(&customer.chars().count())
    {
        return Err(AppError::field(
            "customer",
            format!("must be a customer id of 1 to {MAX_SUBJECT_LEN} characters"),
        ));
    }
    if caller.is_admin() {
        return Ok(customer);
    }
    match customer {
        Some(other) if other != caller.subject() => Err(AppError::Forbidden(
            "a customer lists only their own orders: leave out customer".to_string(),
        )),
        _ => Ok(Some(caller.subject())),
    }
}

fn parse_limit(text: &str) -> Result<i64, AppError> {
    text.parse::<i64>()
        .ok()
        .filter(|n| (1..=MAX_LIMIT).contains(n))
        .ok_or_else(|| {
            AppError::field(
                "limit",
                format!("must be a whole number from 1 to {MAX_LIMIT}"),
            )
        })
}

fn parse_since(text: &str) -> Result<DateTime<Utc>, AppError> {
    let parsed = DateTime::parse_from_rfc3339(text).or_else(|e| {
        // An offset's `+` written unescaped in a query string arrives as a space.
        match text.rfind(' ') {
            Some(at) if at >= 19 => {
                DateTime::parse_from_rfc3339(&format!("{}+{}", &text[..at], &text[at + 1..]))
            }
            _ => Err(e),
        }
    });
    parsed.map(|at| at.with_timezone(&Utc)).map_err(|_| {
        AppError::field(
            "since",
            "must be an RFC 3339 timestamp such as 2026-12-01T00:00:00Z",
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chorus_platform::token::{Claims, Role};

    fn caller(sub: &str, role: Role) -> Caller {
        Caller(Claims {
            sub: sub.to_string(),
            role,
            exp: 0,
        })
    }

    fn field_of(error: AppError) -> Option<String> {
        match error {
            AppError::BadRequest { field, .. } => field,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn limits_statuses_and_times() {
        assert_eq!(parse_limit("1").unwrap(), 1);
        assert_eq!(parse_limit("100").unwrap(), 100);
        for bad in ["0", "101", "-1", "ten", "", "1.5"] {
            assert_eq!(field_of(parse_limit(bad).unwrap_err()).unwrap(), "limit");
        }
        assert_eq!(
            OrderStatus::parse("confirmed").unwrap(),
            OrderStatus::Confirmed
        );
        for bad in ["", "DONE", "CONFIRMED "] {
            let error = OrderStatus::parse(bad).unwrap_err();
            assert_eq!(field_of(error).unwrap(), "status");
        }
        let at = parse_since("2026-12-01T10:00:00+01:00").unwrap();
        assert_eq!(at.to_rfc3339(), "2026-12-01T09:00:00+00:00");
        assert_eq!(parse_since("2026-12-01T10:00:00 01:00").unwrap(), at);
        assert_eq!(
            parse_since("2026-12-01T09:00:00.5Z")
                .unwrap()
                .timestamp_millis(),
            at.timestamp_millis() + 500
        );
        for bad in ["yesterday", "2026-12-01", "2026-12-01T10:00:00", ""] {
            assert_eq!(field_of(parse_since(bad).unwrap_err()).unwrap(), "since");
        }
    }

    #[test]
    fn a_customer_lists_their_own_and_an_admin_anyones() {
        let alice = caller("alice", Role::Customer);
        assert_eq!(whose(&alice, None).unwrap(), Some("alice"));
        assert_eq!(whose(&alice, Some("alice")).unwrap(), Some("alice"));
        assert!(matches!(
            whose(&alice, Some("bob")),
            Err(AppError::Forbidden(_))
        ));
        let ops = caller("ops", Role::Admin);
        assert_eq!(whose(&ops, None).unwrap(), None);
        assert_eq!(whose(&ops, Some("bob")).unwrap(), Some("bob"));
        let long = "x".repeat(MAX_SUBJECT_LEN + 1);
        for bad in ["", long.as_str()] {
            let error = whose(&ops, Some(bad)).unwrap_err();
            assert_eq!(field_of(error).unwrap(), "customer");
        }
        // Characters, as the document's maxLength counts them (such a
        // customer has no orders: a subject is at most 128 bytes).
        let wide = "é".repeat(MAX_SUBJECT_LEN);
        assert_eq!(whose(&ops, Some(&wide)).unwrap(), Some(wide.as_str()));
    }
}
