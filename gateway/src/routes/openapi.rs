//! `GET /openapi.json`: the OpenAPI 3.1 description of the gateway, generated
//! by `utoipa` from the handlers' annotations and the types they read and
//! answer, so the document moves with the code; each error response then
//! enumerates the error codes its route can answer ([`operation_errors`]).
//! Tests validate it, hold it to the route table, to the statuses and codes
//! the gateway really sends, and to its copy in `docs/openapi.json`.

mod error_codes;

use axum::Json;
use serde_json::Value;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi, ToResponse};

pub use error_codes::{
    ADMIN, BEARER, EDGE, JSON_BODY, OperationErrors, PATH, PUBLISH, QUERY, STORE,
};

use super::{cancel, health, inventory, list_orders, order_status, orders};
use crate::error::{ErrorBody, ErrorCode};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "chorus gateway",
        description = "Place orders, read their status (long-poll), ask to cancel them, adjust stock. \
                       Every error is {\"error\":{\"code\",\"message\",\"field\"}}; each error \
                       response enumerates the codes it can carry. A request outside these \
                       operations answers NotFound (no route) or MethodNotAllowed \
                       (components.responses)."
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
        schemas(ErrorBody, ErrorCode),
        responses(
        BadRequest,
        Unauthorized,
        Forbidden,
        NotFound,
        MethodNotAllowed,
        AlreadyFinal,
        PayloadTooLarge,
        UnsupportedMediaType,
        IdempotencyKeyReused,
        RequestTimeout,
        TooManyRequests,
        Unavailable,
        InternalError,
    )),
    modifiers(&BearerTokens),
)]
pub struct ApiDoc;

/// The document as served (and as `docs/openapi.json` holds it).
pub fn document() -> Value {
    let mut document = serde_json::to_value(ApiDoc::openapi()).expect("the document serializes");
    operation_errors().enumerate(&mut document);
    document
}

/// `docs/openapi.json`: the document pretty-printed, its keys sorted (the
/// order of `serde_json`'s map), ending with a newline.
pub fn document_text() -> String {
    let mut text = serde_json::to_string_pretty(&document()).expect("the document serializes");
    text.push('\n');
    text
}

/// The error codes each operation (by `operationId`) can answer: those of
/// what it takes, then its handler's own. A new route adds one
/// `.operation(..)`; a test fails while an error response of any operation
/// lists no code, or while the gateway answers a code its route lacks.
pub fn operation_errors() -> OperationErrors {
    use crate::error::ErrorCode as C;
    OperationErrors::new(SHARED_RESPONSES, FALLBACKS)
        .operation(
            "placeOrder",
            &[
                EDGE,
                BEARER,
                JSON_BODY,
                STORE,
                PUBLISH,
                &[C::MissingHeader, C::IdempotencyKeyReused, C::OpenOrderLimit],
            ],
        )
        .operation(
            "listOrders",
            &[EDGE, BEARER, QUERY, STORE, &[C::InvalidField, C::Forbidden]],
        )
        .operation(
            "getOrder",
            &[
                EDGE,
                BEARER,
                PATH,
                QUERY,
                STORE,
                &[C::InvalidField, C::NotFound, C::LongPollLimit],
            ],
        )
        .operation(
            "cancelOrder",
            &[
                EDGE,
                BEARER,
                PATH,
                STORE,
                PUBLISH,
                &[C::NotFound, C::AlreadyFinal],
            ],
        )
        .operation(
            "setStock",
            &[
                EDGE,
                ADMIN,
                PATH,
                JSON_BODY,
                STORE,
                PUBLISH,
                &[C::InvalidField],
            ],
        )
        .operation(
            "getStock",
            &[EDGE, ADMIN, PATH, STORE, &[C::InvalidField, C::NotFound]],
        )
        .operation("readyz", &[EDGE, &[C::NotReady]])
        .operation("healthz", &[EDGE])
        .operation("metrics", &[EDGE])
        .operation("openapi", &[EDGE])
}

/// Codes answered outside every operation: no route, wrong method, and
/// the limits every request meets ([`EDGE`]).
const FALLBACKS: &[ErrorCode] = &[
    ErrorCode::NotFound,
    ErrorCode::MethodNotAllowed,
    ErrorCode::AddressRateLimited,
    ErrorCode::Overloaded,
    ErrorCode::RequestTimeout,
];

/// The shared response (`components.responses`) of each error status.
pub const SHARED_RESPONSES: &[(u16, &str)] = &[
    (400, "BadRequest"),
    (401, "Unauthorized"),
    (403, "Forbidden"),
    (404, "NotFound"),
    (405, "MethodNotAllowed"),
    (408, "RequestTimeout"),
    (409, "AlreadyFinal"),
    (413, "PayloadTooLarge"),
    (415, "UnsupportedMediaType"),
    (422, "IdempotencyKeyReused"),
    (429, "TooManyRequests"),
    (500, "InternalError"),
    (503, "Unavailable"),
];

/// This document.
#[utoipa::path(
    get,
    path = "/openapi.json",
    operation_id = "openapi",
    tag = "operations",
    responses((status = 200, description = "OpenAPI 3.1", body = Object)),
)]
pub async fn openapi_json() -> Json<Value> {
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

/// No such resource (or not yours), or no route for the path
#[derive(ToResponse)]
pub struct NotFound(pub ErrorBody);

/// The path exists but does not accept this method
#[derive(ToResponse)]
pub struct MethodNotAllowed(pub ErrorBody);

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

/// The request took longer than the gateway allows (its body arrived too slowly,
/// or its handler did not answer in time); retry
#[derive(ToResponse)]
pub struct RequestTimeout(pub ErrorBody);

/// A limit is exceeded (error.code says which: the subject's or the address's
/// rate, long-polls, open orders)
#[derive(ToResponse)]
#[response(headers(("Retry-After" = u64, description = "Seconds until a request may pass")))]
pub struct TooManyRequests(pub ErrorBody);

/// Kafka, the schema registry, a database or the identity provider is
/// unavailable (named in error.message), or the gateway is overloaded; retry
#[derive(ToResponse)]
#[response(headers(("Retry-After" = u64, description = "Seconds")))]
pub struct Unavailable(pub ErrorBody);

/// A bug on the gateway's side; the detail is in its log
#[derive(ToResponse)]
pub struct InternalError(pub ErrorBody);

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    #[test]
    fn every_listed_operation_exists() {
        let document = document();
        let ids: BTreeSet<&str> = document["paths"]
            .as_object()
            .unwrap()
            .values()
            .flat_map(|item| item.as_object().unwrap().values())
            .filter_map(|operation| operation["operationId"].as_str())
            .collect();
        for id in operation_errors().operation_ids() {
            assert!(
                ids.contains(id),
                "operation_errors() names {id}, which is no operationId"
            );
        }
    }

    #[test]
    fn every_shared_response_is_declared_under_its_status() {
        let document = document();
        for (status, name) in SHARED_RESPONSES {
            let response = &document["components"]["responses"][name];
            assert!(response.is_object(), "components.responses.{name}");
            let codes = &response["content"]["application/json"]["schema"]["properties"]["error"]["properties"]
                ["code"]["enum"];
            for code in codes
                .as_array()
                .unwrap_or_else(|| panic!("{name}: no codes"))
            {
                let code = ErrorCode::ALL
                    .iter()
                    .find(|c| code.as_str() == Some(c.as_str()))
                    .unwrap_or_else(|| panic!("{name}: {code} is no ErrorCode"));
                assert_eq!(code.status().as_u16(), *status, "{name}: {code}");
            }
        }
    }
}
