//! `POST /v1/orders`.
//!
//! A POST answers 202 only after Kafka acknowledged `OrderPlaced`. The
//! accepted order is recorded first under (subject, Idempotency-Key); if Kafka
//! fails the row stays unpublished and a retry with the same key publishes the
//! same order (same order id, same event id) again. Orders arriving together
//! share their database statements and produce requests
//! ([`group_commit`](crate::group_commit)).

use axum::Json;
use axum::extract::State;
use axum::http::header::LOCATION;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::AppState;
use crate::auth::Caller;
use crate::error::{AppError, ErrorCode};
use crate::extract::{JsonBody, integer};
use crate::group_commit::Attempt;
use crate::request_span::{TraceHeaders, record_order_id};
use crate::routes::openapi::{
    BadRequest, IdempotencyKeyReused, InternalError, PayloadTooLarge, TooManyRequests,
    Unauthorized, Unavailable, UnsupportedMediaType,
};
use crate::validate::{Currency, IdempotencyKey, PaymentToken, Quantity, Sku};

pub const IDEMPOTENCY_KEY: &str = "idempotency-key";
pub const MAX_LINES: usize = 50;

/// The body of `POST /v1/orders` as the client sends it. An unknown field
/// is refused (`additionalProperties: false`): a misspelt field or a price
/// the client thinks it sets must not pass unnoticed.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = PlaceOrderRequest)]
pub struct PlaceOrderBody {
    #[schema(min_items = 1, max_items = 50)]
    items: Vec<LineBody>,
    /// Three capital letters, e.g. EUR.
    #[schema(pattern = "^[A-Z]{3}$")]
    currency: String,
    /// The payment provider's token, 1 to 256 characters without control
    /// characters; sealed before it leaves the gateway.
    #[schema(
        min_length = 1,
        max_length = 256,
        pattern = r"^[^\u0000-\u001F\u007F-\u009F]*$"
    )]
    payment_token: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = OrderLine)]
struct LineBody {
    #[schema(pattern = "^[A-Z0-9-]{1,32}$")]
    sku: String,
    /// A whole number; `2.0` counts as 2, as JSON Schema counts it.
    #[serde(deserialize_with = "integer")]
    #[schema(minimum = 1, maximum = 1000)]
    quantity: i64,
}

/// A valid order request.
#[derive(Debug)]
pub struct PlaceOrder {
    pub items: Vec<(Sku, Quantity)>,
    pub currency: Currency,
    pub payment_token: PaymentToken,
}

impl PlaceOrder {
    pub fn parse(body: PlaceOrderBody) -> Result<PlaceOrder, AppError> {
        if body.items.is_empty() || body.items.len() > MAX_LINES {
            return Err(AppError::field(
                "items",
                format!("must hold 1 to {MAX_LINES} lines"),
            ));
        }
        let items = body
            .items
            .iter()
            .enumerate()
            .map(|(i, line)| {
                let sku = Sku::parse(&line.sku)
                    .map_err(|m| AppError::field(format!("items[{i}].sku"), m))?;
                let quantity = Quantity::parse(line.quantity)
                    .map_err(|m| AppError::field(format!("items[{i}].quantity"), m))?;
                Ok((sku, quantity))
            })
            .collect::<Result<Vec<_>, AppError>>()?;
        Ok(PlaceOrder {
            items,
            currency: Currency::parse(&body.currency)
                .map_err(|m| AppError::field("currency", m))?,
            payment_token: PaymentToken::parse(&body.payment_token)
                .map_err(|m| AppError::field("payment_token", m))?,
        })
    }

    /// The lines as `accepted_orders.items` keeps them.
    pub fn lines_json(&self) -> Value {
        self.items
            .iter()
            .map(|(sku, quantity)| json!({"sku": sku.as_str(), "quantity": quantity.get()}))
            .collect()
    }

    /// Identifies the request's content, whitespace and field order aside.
    pub fn request_hash(&self) -> String {
        let canonical = json!({
            "items": self.lines_json(),
            "currency": self.currency.as_str(),
            "payment_token": self.payment_token.as_str(),
        });
        hex::encode(Sha256::digest(canonical.to_string().as_bytes()))
    }
}

/// The event id of an order's `OrderPlaced`: derived from the order id, so
/// a re-publish after a failure is recognised downstream as a duplicate.
pub fn order_placed_event_id(order_id: Uuid) -> Uuid {
    let namespace = Uuid::new_v5(&Uuid::NAMESPACE_OID, b"chorus.gateway.OrderPlaced");
    Uuid::new_v5(&namespace, order_id.to_string().as_bytes())
}

/// The order was accepted: `OrderPlaced` is durable in Kafka.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = OrderAccepted)]
struct Accepted {
    #[schema(format = "uuid")]
    order_id: String,
    /// Always PENDING.
    #[schema(value_type = String, example = "PENDING")]
    status: &'static str,
    /// Where to read the order: `/v1/orders/{order_id}`.
    status_url: String,
}

/// Place an order; 202 once OrderPlaced is durable in Kafka
///
/// The same Idempotency-Key (per token subject) with the same body answers
/// the same order id again; with another body, 422. Prices come from the
/// inventory catalogue, never from the client.
#[utoipa::path(
    post,
    path = "/v1/orders",
    operation_id = "placeOrder",
    tag = "orders",
    security(("bearer" = [])),
    params(
        ("Idempotency-Key" = String, Header, min_length = 1, max_length = 255, pattern = "^[!-~]+$",
         description = "The client's key for this order attempt, scoped to the token's subject"),
        ("traceparent" = Option<String>, Header, description = "W3C trace context, carried into Kafka"),
    ),
    request_body = PlaceOrderBody,
    responses(
        (status = 202, description = "Accepted; the saga runs asynchronously", body = Accepted,
         headers(("Location" = String, description = "The status URL"))),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 413, response = PayloadTooLarge),
        (status = 415, response = UnsupportedMediaType),
        (status = 422, response = IdempotencyKeyReused),
        (status = 429, response = TooManyRequests),
        (status = 500, response = InternalError),
        (status = 503, response = Unavailable),
    ),
)]
pub async fn place_order(
    State(state): State<AppState>,
    caller: Caller,
    trace: TraceHeaders,
    headers: HeaderMap,
    JsonBody(body): JsonBody<PlaceOrderBody>,
) -> Result<Response, AppError> {
    let key = idempotency_key(&headers)?;
    let order = PlaceOrder::parse(body)?;
    let accepted = state
        .inner
        .orders
        .accept(Attempt {
            customer_id: caller.subject().to_string(),
            idempotency_key: key.as_str().to_string(),
            request_hash: order.request_hash(),
            order,
            trace,
        })
        .await?;
    record_order_id(&accepted.order_id.to_string());
    // Its long-polls then wait without reading it first.
    state
        .inner
        .status_watch
        .known()
        .record_owner(accepted.order_id, caller.subject());
    if accepted.published_now {
        tracing::info!(order_id = %accepted.order_id, "order accepted");
    }
    let order_id = accepted.order_id.to_string();
    let status_url = format!("/v1/orders/{order_id}");
    let mut response = (
        StatusCode::ACCEPTED,
        Json(Accepted {
            order_id,
            status: "PENDING",
            status_url: status_url.clone(),
        }),
    )
        .into_response();
    if let Ok(location) = HeaderValue::from_str(&status_url) {
        response.headers_mut().insert(LOCATION, location);
    }
    Ok(response)
}

fn idempotency_key(headers: &HeaderMap) -> Result<IdempotencyKey, AppError> {
    let value = headers.get(IDEMPOTENCY_KEY).ok_or(AppError::BadRequest {
        code: ErrorCode::MissingHeader,
        message: "the Idempotency-Key header is required".to_string(),
        field: Some("Idempotency-Key".to_string()),
    })?;
    value
        .to_str()
        .map_err(|_| "must be visible ASCII".to_string())
        .and_then(IdempotencyKey::parse)
        .map_err(|m| AppError::field("Idempotency-Key", m))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(json: Value) -> PlaceOrderBody {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn the_hash_ignores_formatting_but_not_content() {
        let a = PlaceOrder::parse(body(
            json!({"items":[{"sku":"A","quantity":1}],"currency":"EUR","payment_token":"t"}),
        ))
        .unwrap();
        let b = PlaceOrder::parse(body(
            json!({"payment_token":"t","currency":"EUR","items":[{"quantity":1,"sku":"A"}]}),
        ))
        .unwrap();
        let c = PlaceOrder::parse(body(
            json!({"items":[{"sku":"A","quantity":2}],"currency":"EUR","payment_token":"t"}),
        ))
        .unwrap();
        assert_eq!(a.request_hash(), b.request_hash());
        assert_ne!(a.request_hash(), c.request_hash());
    }

    #[test]
    fn event_ids_are_deterministic_per_order() {
        let id = Uuid::new_v4();
        assert_eq!(order_placed_event_id(id), order_placed_event_id(id));
        assert_ne!(
            order_placed_event_id(id),
            order_placed_event_id(Uuid::new_v4())
        );
    }
}
