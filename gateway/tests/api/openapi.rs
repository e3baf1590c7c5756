//! `/openapi.json` is a valid OpenAPI 3.1 document (see `openapi_check`,
//! which refuses broken ones) and describes exactly the router's routes.

use std::collections::BTreeSet;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use chorus_gateway::routes::route_list;
use serde_json::{Value, json};

use crate::helpers::TestApp;
use crate::openapi_check::validate;

/// The document the gateway serves, as text and as JSON.
pub async fn served_document() -> (String, Value) {
    let app = TestApp::without_db();
    let response = app.get("/openapi.json", None).await;
    assert_eq!(response.status, StatusCode::OK);
    let doc = response.json();
    (response.text, doc)
}

#[tokio::test]
async fn the_document_is_valid_openapi_3_1_and_lists_exactly_the_routes() {
    let (text, doc) = served_document().await;
    if let Err(problems) = validate(&text) {
        panic!("invalid OpenAPI document:\n{}", problems.join("\n"));
    }
    assert_eq!(doc["openapi"], "3.1.0");

    let documented: BTreeSet<(String, String)> = crate::error_codes::operations(&doc)
        .into_iter()
        .map(|(method, path, _)| (method, path))
        .collect();
    let routed: BTreeSet<(String, String)> = route_list()
        .into_iter()
        .map(|(method, path)| (method.to_string(), path.to_string()))
        .collect();
    assert_eq!(documented, routed);

    // Every route in the list is really served: no fallback 404 or 405.
    let app = TestApp::without_db();
    for (method, path) in &routed {
        let uri = path
            .replace("{order_id}", "not-an-order")
            .replace("{sku}", "SKU-1");
        let request = Request::builder()
            .method(Method::from_bytes(method.as_bytes()).unwrap())
            .uri(uri)
            .body(Body::empty())
            .unwrap();
        let response = app.send(request).await;
        assert_ne!(
            response.status,
            StatusCode::METHOD_NOT_ALLOWED,
            "{method} {path}"
        );
        if response.status == StatusCode::NOT_FOUND {
            assert!(!response.text.contains("no route"), "{method} {path}");
        }
    }
}

/// A way to break a valid document.
type Breaking = Box<dyn Fn(&mut Value)>;

#[tokio::test]
async fn the_validator_refuses_broken_documents() {
    let (_, doc) = served_document().await;
    let broken: Vec<(&str, Breaking)> = vec![
        (
            "no info",
            Box::new(|d| drop(d.as_object_mut().unwrap().remove("info"))),
        ),
        ("paths is not a map", Box::new(|d| d["paths"] = json!([]))),
        ("OpenAPI 3.0", Box::new(|d| d["openapi"] = json!("3.0.3"))),
        (
            "a dangling $ref",
            Box::new(|d| {
                d["paths"]["/v1/orders"]["post"]["responses"]["400"] =
                    json!({"$ref": "#/components/responses/Nope"})
            }),
        ),
        (
            "a response key that is no status",
            Box::new(|d| {
                d["paths"]["/v1/orders"]["post"]["responses"]["created"] =
                    json!({"description": "x"})
            }),
        ),
        (
            "an undeclared path parameter",
            Box::new(|d| d["paths"]["/v1/orders/{order_id}"]["get"]["parameters"] = json!([])),
        ),
        (
            "an unknown security scheme",
            Box::new(|d| d["paths"]["/v1/orders"]["post"]["security"] = json!([{"apiKey": []}])),
        ),
        (
            "a duplicate operationId",
            Box::new(|d| d["paths"]["/healthz"]["get"]["operationId"] = json!("placeOrder")),
        ),
        (
            "a required property that does not exist",
            Box::new(|d| {
                d["components"]["schemas"]["Error"]["required"] = json!(["error", "nope"])
            }),
        ),
    ];
    for (what, breaking) in broken {
        let mut document = doc.clone();
        breaking(&mut document);
        assert!(validate(&document.to_string()).is_err(), "accepted: {what}");
    }
}
