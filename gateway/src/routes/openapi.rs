//! `GET /openapi.json`: the OpenAPI 3.1 description of the gateway, generated
//! by `utoipa` from the handlers' annotations and the types they read and
//! answer, so the document moves with the code. A test validates it and
//! holds it to the route table and to the statuses the gateway really sends.

use axum::Json;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi, ToResponse};

use super::{cancel, health, inventory, list_orders, order_status, orders};
use crate::error::ErrorBody;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "chorus gateway",
        description = "Place orders, read their status (long-poll), ask to cancel them, adjust stock. \
                       Every error is {\"error\":{\"code\",\"message\",\"field\"}}."
    ),
    paths(
        orders::place_order,
        list_orders::list_orders,
        order_status::get_order,
        cancel::cancel_order,
        inventory::set_stock,
        inventory::get_stock,
        health::healthz,
        health::readyz,
        health::metrics,
        openapi_json,
    ),
    components(
        schemas(ErrorBody),
        responses(
        BadRequest,
        Unauthorized,
        Forbidden,
        NotFound,
        AlreadyFinal,
        PayloadTooLarge,
        UnsupportedMediaType,
        IdempotencyKeyReused,
        TooManyRequests,
        Unavailable,
        InternalError,
    )),
    modifiers(&BearerTokens),
)]
pub struct ApiDoc;

/// The document as served.
pub fn document() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

/// This document.
#[utoipa::path(
    get,
    path = "/openapi.json",
    operation_id = "openapi",
    tag = "operations",
    responses((status = 200, description = "OpenAPI 3.1", body = Object)),
)]
pub async fn openapi_json() -> Json<utoipa::openapi::OpenApi> {
    Json(document())
}

struct BearerTokens;

impl Modify for BearerTokens {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some(
                        "HS256 with the gateway's secret, or RS256/ES256 from the identity \
                         provider's JWKS; claims sub, exp and a role (customer | admin)",
                    ))
                    .build(),
            ),
        );
    }
}

/// Bad JSON, a bad field (named in error.field) or a missing Idempotency-Key
#[derive(ToResponse)]
pub struct BadRequest(pub ErrorBody);

/// Missing, invalid or expired bearer token
#[derive(ToResponse)]
#[response(headers(("WWW-Authenticate" = String, description = "Always `Bearer`")))]
pub struct Unauthorized(pub ErrorBody);

/// The token's role may not use this route
#[derive(ToResponse)]
pub struct Forbidden(pub ErrorBody);

/// No such resource (or not yours)
#[derive(ToResponse)]
pub struct NotFound(pub ErrorBody);

/// The order is already CONFIRMED or CANCELLED (code `already_final`)
#[derive(ToResponse)]
pub struct AlreadyFinal(pub ErrorBody);

/// The body is larger than 64 KiB
#[derive(ToResponse)]
pub struct PayloadTooLarge(pub ErrorBody);

/// The body is not application/json
#[derive(ToResponse)]
pub struct UnsupportedMediaType(pub ErrorBody);

/// The Idempotency-Key was used with another body
#[derive(ToResponse)]
pub struct IdempotencyKeyReused(pub ErrorBody);

/// The rate limit of the token's subject is exceeded
#[derive(ToResponse)]
#[response(headers(("Retry-After" = u64, description = "Seconds until a request may pass")))]
pub struct TooManyRequests(pub ErrorBody);

/// Kafka, the schema registry, a database or the identity provider is
/// unavailable (named in error.message); retry
#[derive(ToResponse)]
#[response(headers(("Retry-After" = u64, description = "Seconds")))]
pub struct Unavailable(pub ErrorBody);

/// A bug on the gateway's side; the detail is in its log
#[derive(ToResponse)]
pub struct InternalError(pub ErrorBody);
