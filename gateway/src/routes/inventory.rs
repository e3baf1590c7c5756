//! `PUT` and `GET /v1/admin/inventory/{sku}` (admin only). A PUT emits
//! `StockAdjusted` (keyed by SKU) to the inventory command topic and answers
//! 202 once Kafka acknowledged it; the inventory worker applies it, and a GET
//! reads the result from its `stock_levels` view.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chorus_avro::{Event, StockAdjusted};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::AppState;
use crate::auth::Admin;
use crate::error::AppError;
use crate::extract::{JsonBody, PathParam, integer};
use crate::request_span::TraceHeaders;
use crate::routes::openapi::{
    BadRequest, Forbidden, InternalError, NotFound, PayloadTooLarge, TooManyRequests, Unauthorized,
    Unavailable, UnsupportedMediaType,
};
use crate::validate::{Available, ProductName, Sku, UnitPrice};

/// A SKU's stock and price as an admin sets them. An unknown field is
/// refused (`additionalProperties: false`): a misspelt `name` must not
/// leave the old one in place unnoticed.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = StockAdjustment)]
pub struct StockBody {
    /// A whole number; `5.0` counts as 5, as JSON Schema counts it.
    #[serde(deserialize_with = "integer")]
    #[schema(minimum = 0, maximum = 1_000_000_000)]
    available: i64,
    /// Decimal string below 1000000000, at most 4 decimal places, e.g. "19.99".
    #[schema(pattern = r"^0*[0-9]{1,9}(\.[0-9]{1,4})?$", example = "19.99")]
    unit_price: String,
    /// Kept as it is when left out; trimmed, not blank, no control characters.
    #[serde(default)]
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\u0000-\u001F\u007F-\u009F]*[^\u0000-\u0020\u007F-\u00A0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000][^\u0000-\u001F\u007F-\u009F]*$"
    )]
    name: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct StockAdjustmentAccepted {
    sku: String,
    name: String,
    available: i32,
    /// Decimal string.
    unit_price: String,
    #[schema(format = "uuid")]
    event_id: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct StockLevel {
    sku: String,
    name: String,
    available: i64,
    reserved: i64,
    /// Decimal string.
    unit_price: String,
}

fn parse_sku(text: &str) -> Result<Sku, AppError> {
    Sku::parse(text).map_err(|m| AppError::field("sku", m))
}

/// Set a SKU's stock and price (admin); emits StockAdjusted
#[utoipa::path(
    put,
    path = "/v1/admin/inventory/{sku}",
    operation_id = "setStock",
    tag = "inventory",
    security(("bearer" = [])),
    params(
        ("sku" = String, Path, pattern = "^[A-Z0-9-]{1,32}$"),
        ("traceparent" = Option<String>, Header, description = "W3C trace context, carried into Kafka"),
    ),
    request_body = StockBody,
    responses(
        (status = 202, description = "Accepted; the inventory service applies it", body = StockAdjustmentAccepted),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 413, response = PayloadTooLarge),
        (status = 415, response = UnsupportedMediaType),
        (status = 429, response = TooManyRequests),
        (status = 500, response = InternalError),
        (status = 503, response = Unavailable),
    ),
)]
pub async fn set_stock(
    State(state): State<AppState>,
    Admin(claims): Admin,
    trace: TraceHeaders,
    PathParam(sku): PathParam,
    JsonBody(body): JsonBody<StockBody>,
) -> Result<(StatusCode, Json<StockAdjustmentAccepted>), AppError> {
    let sku = parse_sku(&sku)?;
    let available =
        Available::parse(body.available).map_err(|m| AppError::field("available", m))?;
    let unit_price =
        UnitPrice::parse(&body.unit_price).map_err(|m| AppError::field("unit_price", m))?;
    let name = match body.name.as_deref() {
        Some(name) => ProductName::parse(name)
            .map_err(|m| AppError::field("name", m))?
            .as_str()
            .to_string(),
        // Keep the catalogue's name when only stock or price changes.
        None => match state.inner.store.stock_level(sku.as_str()).await? {
            Some(level) => level.name,
            None => sku.as_str().to_string(),
        },
    };
    let event_id = Uuid::new_v4().to_string();
    let event = Event::from(StockAdjusted {
        event_id: event_id.clone(),
        sku: sku.as_str().to_string(),
        occurred_at: chrono::Utc::now().timestamp_millis(),
        correlation_id: event_id.clone(),
        causation_id: None,
        name: name.clone(),
        available: available.get(),
        unit_price: unit_price.get(),
    });
    state
        .inner
        .publisher
        .publish(&event, &trace)
        .await
        .map_err(|e| {
            state.inner.metrics.publish_failures.inc();
            AppError::from(e)
        })?;
    tracing::info!(sku = sku.as_str(), admin = %claims.sub, available = available.get(), "stock adjusted");
    Ok((
        StatusCode::ACCEPTED,
        Json(StockAdjustmentAccepted {
            sku: sku.as_str().to_string(),
            name,
            available: available.get(),
            unit_price: unit_price.get().to_string(),
            event_id,
        }),
    ))
}

/// A SKU's stock level (admin)
#[utoipa::path(
    get,
    path = "/v1/admin/inventory/{sku}",
    operation_id = "getStock",
    tag = "inventory",
    security(("bearer" = [])),
    params(("sku" = String, Path, pattern = "^[A-Z0-9-]{1,32}$")),
    responses(
        (status = 200, description = "The stock level", body = StockLevel),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 404, response = NotFound),
        (status = 429, response = TooManyRequests),
        (status = 500, response = InternalError),
        (status = 503, response = Unavailable),
    ),
)]
pub async fn get_stock(
    State(state): State<AppState>,
    _admin: Admin,
    PathParam(sku): PathParam,
) -> Result<Json<StockLevel>, AppError> {
    let sku = parse_sku(&sku)?;
    let level = state
        .inner
        .store
        .stock_level(sku.as_str())
        .await?
        .ok_or_else(|| AppError::NotFound(format!("no stock level for SKU {}", sku.as_str())))?;
    Ok(Json(StockLevel {
        sku: level.sku,
        name: level.name,
        available: level.available,
        reserved: level.reserved,
        unit_price: level.unit_price.to_string(),
    }))
}
