//! `GET /openapi.json`: the OpenAPI 3.1 description of exactly the routes in
//! [`super::table`] (a test holds the two together), written by hand.

use axum::Json;
use serde_json::{Value, json};

pub async fn openapi_json() -> Json<Value> {
    Json(document())
}

fn error_response(description: &str, extra_headers: Value) -> Value {
    json!({
        "description": description,
        "headers": extra_headers,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    })
}

fn refs(names: &[&str]) -> Value {
    names
        .iter()
        .map(|n| {
            (
                n.to_string(),
                json!({"$ref": format!("#/components/responses/{n}")}),
            )
        })
        .collect::<serde_json::Map<_, _>>()
        .into()
}

fn ok_json(description: &str, schema: &str) -> Value {
    json!({
        "description": description,
        "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{schema}")}}}
    })
}

fn responses(success: (&str, Value), errors: &[&str]) -> Value {
    let mut all = refs(errors);
    all[success.0] = success.1;
    all
}

fn json_body(schema: &str) -> Value {
    json!({
        "required": true,
        "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{schema}")}}}
    })
}

const MONEY: &str = "^[0-9]+(\\.[0-9]{1,4})?$";

pub fn document() -> Value {
    let bearer = json!([{"bearer": []}]);
    let trace = json!({"$ref": "#/components/parameters/traceparent"});
    let sku = json!({"$ref": "#/components/parameters/sku"});
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "chorus gateway",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Place orders, read their status (long-poll), adjust stock. Every error is {\"error\":{\"code\",\"message\",\"field\"}}."
        },
        "paths": {
            "/v1/orders": {"post": {
                "operationId": "placeOrder",
                "summary": "Place an order; 202 once OrderPlaced is durable in Kafka",
                "description": "The same Idempotency-Key (per token subject) with the same body answers the same order id again; with another body, 422.",
                "security": bearer,
                "parameters": [{"$ref": "#/components/parameters/idempotencyKey"}, trace],
                "requestBody": json_body("PlaceOrderRequest"),
                "responses": responses(("202", json!({
                    "description": "Accepted; the saga runs asynchronously",
                    "headers": {"Location": {"description": "The status URL", "schema": {"type": "string"}}},
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/OrderAccepted"}}}
                })), &["BadRequest", "Unauthorized", "PayloadTooLarge", "UnsupportedMediaType", "IdempotencyKeyReused", "TooManyRequests", "Unavailable"])
            }},
            "/v1/orders/{order_id}": {"get": {
                "operationId": "getOrder",
                "summary": "An order's status (its owner or an admin); long-polls with wait and seen",
                "security": bearer,
                "parameters": [
                    {"name": "order_id", "in": "path", "required": true, "schema": {"type": "string", "format": "uuid"}},
                    {"name": "wait", "in": "query", "required": false, "description": "Seconds to wait for the status to differ from `seen` (or become final)", "schema": {"type": "integer", "minimum": 0, "maximum": 30, "default": 0}},
                    {"name": "seen", "in": "query", "required": false, "description": "The status the client already knows, e.g. PENDING", "schema": {"type": "string", "pattern": "^[A-Za-z_]{1,32}$"}}
                ],
                "responses": responses(("200", ok_json("The order", "Order")), &["BadRequest", "Unauthorized", "NotFound", "TooManyRequests", "Unavailable"])
            }},
            "/v1/orders/{order_id}/cancel": {"post": {
                "operationId": "cancelOrder",
                "summary": "Ask to cancel an order (its owner or an admin); emits OrderCancellationRequested",
                "description": "No body. The order worker settles the request: an order not yet CONFIRMED becomes CANCELLED (customer_cancelled); a CONFIRMED one stays, and its `cancellation` shows `rejected`. Asking again is harmless.",
                "security": bearer,
                "parameters": [{"name": "order_id", "in": "path", "required": true, "schema": {"type": "string", "format": "uuid"}}, trace],
                "responses": responses(("202", ok_json("Requested; the order as it is now", "Order")), &["Unauthorized", "NotFound", "AlreadyFinal", "TooManyRequests", "Unavailable"])
            }},
            "/v1/admin/inventory/{sku}": {
                "put": {
                    "operationId": "setStock",
                    "summary": "Set a SKU's stock and price (admin); emits StockAdjusted",
                    "security": bearer,
                    "parameters": [sku, trace],
                    "requestBody": json_body("StockAdjustment"),
                    "responses": responses(("202", ok_json("Accepted; the inventory service applies it", "StockAdjustmentAccepted")), &["BadRequest", "Unauthorized", "Forbidden", "PayloadTooLarge", "UnsupportedMediaType", "TooManyRequests", "Unavailable"])
                },
                "get": {
                    "operationId": "getStock",
                    "summary": "A SKU's stock level (admin)",
                    "security": bearer,
                    "parameters": [sku],
                    "responses": responses(("200", ok_json("The stock level", "StockLevel")), &["BadRequest", "Unauthorized", "Forbidden", "NotFound", "TooManyRequests", "Unavailable"])
                }
            },
            "/healthz": {"get": {
                "operationId": "healthz", "summary": "Liveness: the process serves",
                "responses": {"200": ok_json("Alive", "Health")}
            }},
            "/readyz": {"get": {
                "operationId": "readyz", "summary": "Readiness: Kafka, the schema registry and every database answer",
                "responses": {
                    "200": ok_json("Ready", "Readiness"),
                    "503": {"description": "Not ready; `error.message` and `checks` name what failed", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Readiness"}}}}
                }
            }},
            "/metrics": {"get": {
                "operationId": "metrics", "summary": "Prometheus metrics",
                "responses": {"200": {"description": "Prometheus text format", "content": {"text/plain": {"schema": {"type": "string"}}}}}
            }},
            "/openapi.json": {"get": {
                "operationId": "openapi", "summary": "This document",
                "responses": {"200": {"description": "OpenAPI 3.1", "content": {"application/json": {"schema": {"type": "object"}}}}}
            }}
        },
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT", "description": "HS256; claims sub, role (customer|admin), exp"}},
            "parameters": {
                "idempotencyKey": {"name": "Idempotency-Key", "in": "header", "required": true, "schema": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[!-~]+$"}},
                "traceparent": {"name": "traceparent", "in": "header", "required": false, "description": "W3C trace context, carried into the Kafka record", "schema": {"type": "string"}},
                "sku": {"name": "sku", "in": "path", "required": true, "schema": {"$ref": "#/components/schemas/Sku"}}
            },
            "responses": {
                "BadRequest": error_response("Bad JSON, a bad field (named in error.field) or a missing Idempotency-Key", json!({})),
                "Unauthorized": error_response("Missing, invalid or expired bearer token", json!({"WWW-Authenticate": {"schema": {"type": "string", "const": "Bearer"}}})),
                "Forbidden": error_response("The token's role may not use this route", json!({})),
                "NotFound": error_response("No such resource (or not yours)", json!({})),
                "PayloadTooLarge": error_response("The body is larger than 64 KiB", json!({})),
                "UnsupportedMediaType": error_response("The body is not application/json", json!({})),
                "IdempotencyKeyReused": error_response("The Idempotency-Key was used with another body", json!({})),
                "AlreadyFinal": error_response("The order is already final (code already_final)", json!({})),
                "TooManyRequests": error_response("Rate limit of the token's subject exceeded", json!({"Retry-After": {"description": "Seconds", "schema": {"type": "integer"}}})),
                "Unavailable": error_response("Kafka, the schema registry or a database is unavailable; retry", json!({"Retry-After": {"description": "Seconds", "schema": {"type": "integer"}}}))
            },
            "schemas": {
                "Error": {"type": "object", "required": ["error"], "properties": {"error": {
                    "type": "object", "required": ["code", "message", "field"],
                    "properties": {"code": {"type": "string"}, "message": {"type": "string"}, "field": {"type": ["string", "null"]}}
                }}},
                "Sku": {"type": "string", "pattern": "^[A-Z0-9-]{1,32}$"},
                "Money": {"type": "string", "pattern": MONEY, "examples": ["19.99"]},
                "PlaceOrderRequest": {"type": "object", "required": ["items", "currency", "payment_token"], "properties": {
                    "items": {"type": "array", "minItems": 1, "maxItems": 50, "items": {"type": "object", "required": ["sku", "quantity"], "properties": {
                        "sku": {"$ref": "#/components/schemas/Sku"},
                        "quantity": {"type": "integer", "minimum": 1, "maximum": 1000}
                    }}},
                    "currency": {"type": "string", "pattern": "^[A-Z]{3}$"},
                    "payment_token": {"type": "string", "minLength": 1, "maxLength": 256}
                }},
                "OrderAccepted": {"type": "object", "required": ["order_id", "status", "status_url"], "properties": {
                    "order_id": {"type": "string", "format": "uuid"},
                    "status": {"type": "string", "const": "PENDING"},
                    "status_url": {"type": "string"}
                }},
                "Order": {"type": "object", "required": ["order_id", "status", "reason", "items", "total", "currency", "history", "cancellation"], "properties": {
                    "cancellation": {"type": ["string", "null"], "enum": ["accepted", "rejected", null], "description": "What became of a cancellation request; null when none was settled"},
                    "order_id": {"type": "string"},
                    "status": {"type": "string", "description": "PENDING until final: CONFIRMED or CANCELLED"},
                    "reason": {"type": ["string", "null"], "description": "Why it was cancelled, e.g. out_of_stock"},
                    "items": {"type": "array", "items": {"type": "object", "required": ["sku", "quantity", "unit_price"], "properties": {
                        "sku": {"type": "string"},
                        "quantity": {"type": "integer"},
                        "unit_price": {"type": ["string", "null"], "description": "Decimal string, null until priced"}
                    }}},
                    "total": {"type": ["string", "null"], "description": "Decimal string, null until priced"},
                    "currency": {"type": "string"},
                    "history": {"type": "array", "items": {"type": "object", "required": ["status", "at"], "properties": {
                        "status": {"type": "string"}, "at": {"type": "string", "format": "date-time"}
                    }}}
                }},
                "StockAdjustment": {"type": "object", "required": ["available", "unit_price"], "properties": {
                    "available": {"type": "integer", "minimum": 0, "maximum": 1_000_000_000},
                    "unit_price": {"$ref": "#/components/schemas/Money"},
                    "name": {"type": "string", "minLength": 1, "maxLength": 200, "description": "Kept as it is when left out"}
                }},
                "StockAdjustmentAccepted": {"type": "object", "required": ["sku", "name", "available", "unit_price", "event_id"], "properties": {
                    "sku": {"type": "string"}, "name": {"type": "string"}, "available": {"type": "integer"},
                    "unit_price": {"$ref": "#/components/schemas/Money"}, "event_id": {"type": "string", "format": "uuid"}
                }},
                "StockLevel": {"type": "object", "required": ["sku", "name", "available", "reserved", "unit_price"], "properties": {
                    "sku": {"type": "string"}, "name": {"type": "string"}, "available": {"type": "integer"},
                    "reserved": {"type": "integer"}, "unit_price": {"$ref": "#/components/schemas/Money"}
                }},
                "Health": {"type": "object", "required": ["status"], "properties": {"status": {"type": "string", "const": "ok"}}},
                "Readiness": {"type": "object", "required": ["checks"], "properties": {
                    "status": {"type": "string", "const": "ready"},
                    "error": {"$ref": "#/components/schemas/Error/properties/error"},
                    "checks": {"type": "object", "additionalProperties": {"type": "string", "description": "ok, or what failed"}}
                }}
            }
        }
    })
}
