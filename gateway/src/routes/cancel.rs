//! `POST /v1/orders/{order_id}/cancel` (its owner or an admin; anyone else
//! 404): emits `OrderCancellationRequested` and answers 202 with the order's
//! current view; the order worker settles the request (an order not yet
//! confirmed is cancelled, a confirmed one stays, the request recorded as
//! rejected). An order the read model already shows final is 409
//! `already_final`. The event id is derived from (order, caller), so asking
//! again is one request downstream.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chorus_avro::{Event, OrderCancellationRequested};
use uuid::Uuid;

use crate::AppState;
use crate::auth::Caller;
use crate::error::{AppError, ErrorCode};
use crate::extract::PathParam;
use crate::request_span::{TraceHeaders, record_order_id};
use crate::routes::openapi::{
    AlreadyFinal, BadRequest, InternalError, NotFound, TooManyRequests, Unauthorized, Unavailable,
};
use crate::routes::order_status::{OrderView, load_owned};

/// The id of `requested_by`'s request to cancel `order_id`.
pub fn cancellation_event_id(order_id: &str, requested_by: &str) -> Uuid {
    let namespace = Uuid::new_v5(
        &Uuid::NAMESPACE_OID,
        b"chorus.gateway.OrderCancellationRequested",
    );
    // The order id is a UUID, so the first '/' ends it: no two pairs collide.
    Uuid::new_v5(&namespace, format!("{order_id}/{requested_by}").as_bytes())
}

/// Ask to cancel an order (its owner or an admin); emits OrderCancellationRequested
///
/// No body. The order worker settles the request: an order not yet
/// CONFIRMED becomes CANCELLED (customer_cancelled); a CONFIRMED one stays,
/// and its `cancellation` shows `rejected`. Asking again is harmless.
#[utoipa::path(
    post,
    path = "/v1/orders/{order_id}/cancel",
    operation_id = "cancelOrder",
    tag = "orders",
    security(("bearer" = [])),
    params(
        ("order_id" = String, Path, format = "uuid"),
        ("traceparent" = Option<String>, Header, description = "W3C trace context, carried into Kafka"),
    ),
    responses(
        (status = 202, description = "Requested; the order as it is now", body = OrderView),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 404, response = NotFound),
        (status = 409, response = AlreadyFinal),
        (status = 429, response = TooManyRequests),
        (status = 500, response = InternalError),
        (status = 503, response = Unavailable),
    ),
)]
pub async fn cancel_order(
    State(state): State<AppState>,
    caller: Caller,
    trace: TraceHeaders,
    PathParam(order_id): PathParam,
) -> Result<(StatusCode, Json<OrderView>), AppError> {
    let (owner, view) = load_owned(&state, &caller, &order_id).await?;
    record_order_id(&view.order_id);
    if view.is_final() {
        return Err(AppError::Conflict {
            code: ErrorCode::AlreadyFinal,
            message: format!("order {} is already {}", view.order_id, view.status),
        });
    }
    let event = Event::from(OrderCancellationRequested {
        event_id: cancellation_event_id(&view.order_id, caller.subject()).to_string(),
        order_id: view.order_id.clone(),
        occurred_at: chrono::Utc::now().timestamp_millis(),
        correlation_id: view.order_id.clone(),
        causation_id: None,
        customer_id: owner,
        requested_by: caller.subject().to_string(),
    });
    if let Err(e) = state.inner.publisher.publish(&event, &trace).await {
        state.inner.metrics.publish_failures.inc();
        return Err(e.into());
    }
    tracing::info!(order_id = %view.order_id, requested_by = caller.subject(), "cancellation requested");
    Ok((StatusCode::ACCEPTED, Json(view)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_event_id_per_order_and_caller() {
        let order = "5f0c6a43-9f5e-4c55-8a53-6f6e0d0b1a11";
        assert_eq!(
            cancellation_event_id(order, "alice"),
            cancellation_event_id(order, "alice")
        );
        assert_ne!(
            cancellation_event_id(order, "alice"),
            cancellation_event_id(order, "ops")
        );
        assert_ne!(
            cancellation_event_id(order, "alice"),
            cancellation_event_id("6f0c6a43-9f5e-4c55-8a53-6f6e0d0b1a11", "alice")
        );
    }
}
