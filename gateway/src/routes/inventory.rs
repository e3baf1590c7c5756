//! `PUT` and `GET /v1/admin/inventory/{sku}` (admin only). A PUT emits
//! `StockAdjusted` (keyed by SKU) to the inventory command topic and answers
//! 202 once Kafka acknowledged it; the inventory worker applies it, and a GET
//! reads the result from its `stock_levels` view.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chorus_avro::{Event, StockAdjusted};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::AppState;
use crate::auth::Admin;
use crate::error::AppError;
use crate::extract::{JsonBody, PathParam};
use crate::traceparent::TraceContext;
use crate::validate::{Available, ProductName, Sku, UnitPrice};

#[derive(Debug, Deserialize)]
pub struct StockBody {
    available: i64,
    unit_price: String,
    #[serde(default)]
    name: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct StockAdjustmentAccepted {
    sku: String,
    name: String,
    available: i32,
    unit_price: String,
    event_id: String,
}

#[derive(Debug, Serialize)]
pub struct StockLevel {
    sku: String,
    name: String,
    available: i64,
    reserved: i64,
    unit_price: String,
}

fn parse_sku(text: &str) -> Result<Sku, AppError> {
    Sku::parse(text).map_err(|m| AppError::field("sku", m))
}

pub async fn set_stock(
    State(state): State<AppState>,
    Admin(claims): Admin,
    trace: TraceContext,
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
