//! Every error code is a contract. `/openapi.json` enumerates, in each error
//! response of each route, exactly the codes that route can answer with that
//! status; every `ErrorCode` is documented under its status; a battery of
//! requests reaching every code but `internal` finds each answer documented
//! on the route that gave it; and the README's table lists every code with
//! its status.

use std::collections::BTreeSet;
use std::path::PathBuf;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, request};
use chorus_gateway::error::ErrorCode;
use chorus_gateway::routes::openapi::SHARED_RESPONSES;
use serde_json::{Value, json};

use crate::helpers::{TestApp, TestResponse, admin, customer, order_body, settings};
use crate::openapi::served_document;

const ORDERS: &str = "/v1/orders";
const ORDER: &str = "/v1/orders/{order_id}";
const CANCEL: &str = "/v1/orders/{order_id}/cancel";
const STOCK: &str = "/v1/admin/inventory/{sku}";
const READYZ: &str = "/readyz";
/// Answered by the router's fallbacks, outside every operation.
const NO_OPERATION: &str = "";

/// The codes a response of the document enumerates in `error.code`.
fn enumerated(response: &Value) -> Option<BTreeSet<String>> {
    let codes = response
        .pointer("/content/application~1json/schema/properties/error/properties/code/enum")?
        .as_array()?;
    Some(
        codes
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect(),
    )
}

/// `(METHOD, path, operation)` of every operation.
pub(crate) fn operations(doc: &Value) -> Vec<(String, String, &Value)> {
    doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, item)| {
            item.as_object()
                .unwrap()
                .iter()
                .map(move |(method, op)| (method.to_uppercase(), path.clone(), op))
        })
        .collect()
}

fn shared_response(status: u16) -> &'static str {
    SHARED_RESPONSES
        .iter()
        .find(|(s, _)| *s == status)
        .unwrap_or_else(|| panic!("no shared response for {status}"))
        .1
}

/// The codes documented for an answer `status` of `METHOD route`.
fn documented(doc: &Value, method: &str, route: &str, status: u16) -> Option<BTreeSet<String>> {
    let response = if route == NO_OPERATION {
        &doc["components"]["responses"][shared_response(status)]
    } else {
        &doc["paths"][route][method.to_lowercase()]["responses"][status.to_string()]
    };
    enumerated(response)
}

#[tokio::test]
async fn every_error_response_enumerates_codes_of_its_status() {
    let (_, doc) = served_document().await;
    let mut problems = Vec::new();
    for (method, path, operation) in operations(&doc) {
        let id = operation["operationId"].as_str().unwrap_or_default();
        for (status, response) in operation["responses"].as_object().unwrap() {
            if status.parse::<u16>().is_ok_and(|s| s < 400) {
                continue;
            }
            let Some(codes) = enumerated(response).filter(|codes| !codes.is_empty()) else {
                problems.push(format!(
                    "{method} {path} {status} enumerates no error code: give {id} its codes \
                     with `.operation(\"{id}\", ..)` in gateway/src/routes/openapi.rs"
                ));
                continue;
            };
            for code in codes {
                match ErrorCode::ALL.iter().find(|c| c.as_str() == code) {
                    Some(c) if c.status().as_u16().to_string() == *status => {}
                    Some(c) => problems.push(format!(
                        "{method} {path} {status}: {code} is a {} code",
                        c.status().as_u16()
                    )),
                    None => {
                        problems.push(format!("{method} {path} {status}: {code} is no ErrorCode"))
                    }
                }
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[tokio::test]
async fn every_error_code_is_documented_under_its_status() {
    let (_, doc) = served_document().await;
    let mut documented_pairs: BTreeSet<(u16, String)> = BTreeSet::new();
    for (_, _, operation) in operations(&doc) {
        for (status, response) in operation["responses"].as_object().unwrap() {
            for code in enumerated(response).into_iter().flatten() {
                documented_pairs.insert((status.parse().unwrap(), code));
            }
        }
    }
    for (status, name) in SHARED_RESPONSES {
        let response = &doc["components"]["responses"][name];
        for code in enumerated(response).into_iter().flatten() {
            documented_pairs.insert((*status, code));
        }
    }
    let missing: Vec<String> = ErrorCode::ALL
        .iter()
        .filter(|code| !documented_pairs.contains(&(code.status().as_u16(), code.to_string())))
        .map(|code| format!("{code} ({})", code.status().as_u16()))
        .collect();
    assert!(
        missing.is_empty(),
        "codes the document lacks: {missing:?}; give the routes that answer them these codes \
         in operation_errors() (gateway/src/routes/openapi.rs)"
    );
}

#[tokio::test]
async fn placing_an_order_documents_422_idempotency_key_reused() {
    let (_, doc) = served_document().await;
    let codes = documented(&doc, "POST", ORDERS, 422);
    assert_eq!(
        codes,
        Some(BTreeSet::from(["idempotency_key_reused".to_string()]))
    );
}

/// `(METHOD, route, status, code)` of every error answer of the battery.
#[derive(Default)]
struct Answers(BTreeSet<(String, &'static str, u16, String)>);

impl Answers {
    fn record(&mut self, method: Method, route: &'static str, response: TestResponse) {
        if response.status.as_u16() < 400 {
            return;
        }
        let code = response.json()["error"]["code"]
            .as_str()
            .unwrap_or_else(|| panic!("{method} {route}: no error code in {}", response.text))
            .to_string();
        self.0
            .insert((method.to_string(), route, response.status.as_u16(), code));
    }
}

fn call(method: Method, uri: &str, token: Option<&str>) -> request::Builder {
    let builder = Request::builder().method(method).uri(uri);
    match token {
        Some(token) => builder.header("authorization", format!("Bearer {token}")),
        None => builder,
    }
}

fn with_json(builder: request::Builder, body: impl Into<String>) -> Request<Body> {
    builder
        .header("content-type", "application/json")
        .body(Body::from(body.into()))
        .unwrap()
}

fn empty(builder: request::Builder) -> Request<Body> {
    builder.body(Body::empty()).unwrap()
}

#[tokio::test]
async fn every_code_the_gateway_answers_is_documented_on_its_route() {
    let (alice, ops) = (customer("alice"), admin());
    let huge = json!({"padding": "x".repeat(70 * 1024)}).to_string();
    let stock = json!({"available": 5, "unit_price": "1.50", "name": "Mug"}).to_string();
    let an_order = "5f0c6a43-9f5e-4c55-8a53-6f6e0d0b1a11";
    let mut answers = Answers::default();

    // With a database: what needs an order or a stock level stored.
    let app = TestApp::spawn().await;
    let placed = app.post_order(&alice, Some("k1"), &order_body()).await;
    assert_eq!(placed.status, StatusCode::ACCEPTED, "{}", placed.text);
    let order_id = placed.json()["order_id"].as_str().unwrap().to_string();
    let mut other = order_body();
    other["currency"] = json!("USD");
    answers.record(
        Method::POST,
        ORDERS,
        app.post_order(&alice, Some("k1"), &other).await,
    );
    app.set_order_status(&order_id, "alice", "CONFIRMED").await;
    let cancel = format!("/v1/orders/{order_id}/cancel");
    let response = app
        .send(empty(call(Method::POST, &cancel, Some(&alice))))
        .await;
    answers.record(Method::POST, CANCEL, response);
    let response = app.get("/v1/admin/inventory/SKU-404", Some(&ops)).await;
    answers.record(Method::GET, STOCK, response);

    // Without one: refusals before any database, and 503s.
    let app = TestApp::without_db();
    let orders = || call(Method::POST, ORDERS, Some(&alice)).header("idempotency-key", "k1");
    let order = order_body().to_string();
    for request in [
        with_json(call(Method::POST, ORDERS, None), order.clone()),
        with_json(call(Method::POST, ORDERS, Some(&alice)), order.clone()),
        orders().body(Body::from(order.clone())).unwrap(),
        with_json(orders(), huge.clone()),
        with_json(orders(), "{"),
        with_json(orders(), "[]"),
        with_json(orders(), json!({"items": []}).to_string()),
        with_json(orders(), order.clone()),
    ] {
        answers.record(Method::POST, ORDERS, app.send(request).await);
    }
    for uri in [
        "/v1/orders/%FF".to_string(),
        format!("/v1/orders/{an_order}?wait=1&wait=2"),
        format!("/v1/orders/{an_order}?wait=31"),
        "/v1/orders/not-an-order".to_string(),
        format!("/v1/orders/{an_order}"),
    ] {
        answers.record(Method::GET, ORDER, app.get(&uri, Some(&alice)).await);
    }
    answers.record(
        Method::GET,
        ORDER,
        app.get(&format!("/v1/orders/{an_order}"), None).await,
    );
    for uri in [
        "/v1/orders/not-an-order/cancel".to_string(),
        "/v1/orders/%FF/cancel".to_string(),
        format!("/v1/orders/{an_order}/cancel"),
    ] {
        let response = app
            .send(empty(call(Method::POST, &uri, Some(&alice))))
            .await;
        answers.record(Method::POST, CANCEL, response);
    }
    for (token, sku) in [
        (&alice, "SKU-1"),
        (&ops, "bad_sku"),
        (&ops, "%FF"),
        (&ops, "SKU-1"),
    ] {
        let uri = format!("/v1/admin/inventory/{sku}");
        answers.record(Method::GET, STOCK, app.get(&uri, Some(token)).await);
    }
    let stock_uri = "/v1/admin/inventory/SKU-1";
    for request in [
        empty(call(Method::PUT, stock_uri, Some(&ops))),
        with_json(call(Method::PUT, stock_uri, Some(&ops)), huge.clone()),
        with_json(call(Method::PUT, stock_uri, Some(&ops)), "{"),
        with_json(call(Method::PUT, stock_uri, Some(&ops)), "[]"),
        with_json(
            call(Method::PUT, stock_uri, Some(&ops)),
            json!({"available": -1, "unit_price": "1.50"}).to_string(),
        ),
    ] {
        answers.record(Method::PUT, STOCK, app.send(request).await);
    }
    let response = app
        .send(empty(call(Method::DELETE, ORDERS, Some(&alice))))
        .await;
    answers.record(Method::DELETE, NO_OPERATION, response);
    answers.record(
        Method::GET,
        NO_OPERATION,
        app.get("/v1/nowhere", None).await,
    );
    answers.record(Method::GET, READYZ, app.get("/readyz", None).await);
    app.publisher.set_failing(true);
    let response = app
        .send(with_json(call(Method::PUT, stock_uri, Some(&ops)), stock))
        .await;
    answers.record(Method::PUT, STOCK, response);

    // Over the rate limit.
    let app = TestApp::without_db_with(settings(1, 1));
    for _ in 0..2 {
        let response = app.get("/v1/orders/not-an-order", Some(&alice)).await;
        answers.record(Method::GET, ORDER, response);
    }

    // Over the limits at the edge, of long-polls and of open orders.
    answers.record(
        Method::POST,
        ORDERS,
        crate::limits::open_order_refusal().await,
    );
    for response in [
        crate::limits::long_poll_refusal().await,
        crate::limits::overloaded_refusal().await,
        crate::limits::timed_out().await,
        crate::limits::address_refusal().await,
    ] {
        answers.record(Method::GET, ORDER, response);
    }

    let (_, doc) = served_document().await;
    let undocumented: Vec<String> = answers
        .0
        .iter()
        .filter(|(method, route, status, code)| {
            documented(&doc, method, route, *status).is_none_or(|codes| !codes.contains(code))
        })
        .map(|(method, route, status, code)| format!("{method} {route} {status} {code}"))
        .collect();
    assert!(
        undocumented.is_empty(),
        "answered but not documented (add them to operation_errors() in \
         gateway/src/routes/openapi.rs): {undocumented:?}"
    );
    // The battery reached every code a request can provoke, so the check
    // above covers them all (`internal` is a bug, never provoked on purpose).
    let reached: BTreeSet<&str> = answers.0.iter().map(|(.., code)| code.as_str()).collect();
    let expected: BTreeSet<&str> = ErrorCode::ALL
        .iter()
        .filter(|code| **code != ErrorCode::Internal)
        .map(|code| code.as_str())
        .collect();
    assert_eq!(reached, expected, "{:?}", answers.0);
}

const TABLE_HEADER: &str = "| code | HTTP status |";

/// The README's table of error codes: its path and the table's lines.
fn error_table() -> (PathBuf, Vec<String>) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../README.md");
    let text = std::fs::read_to_string(&path).expect("README.md");
    let table: Vec<String> = text
        .lines()
        .skip_while(|line| !line.starts_with(TABLE_HEADER))
        .take_while(|line| line.starts_with('|'))
        .map(str::to_string)
        .collect();
    assert!(
        !table.is_empty(),
        "no table of error codes (a line `{TABLE_HEADER} …`) in README.md"
    );
    (path, table)
}

#[test]
fn the_readme_table_lists_every_code_with_its_status() {
    let (path, table) = error_table();
    let rows: BTreeSet<(String, u16)> = table
        .iter()
        .filter_map(|line| line.strip_prefix("| `"))
        .filter_map(|rest| {
            let (code, rest) = rest.split_once('`')?;
            let status = rest.trim_start_matches([' ', '|']).split(' ').next()?;
            Some((code.to_string(), status.parse().ok()?))
        })
        .collect();
    let codes: BTreeSet<(String, u16)> = ErrorCode::ALL
        .iter()
        .map(|code| (code.to_string(), code.status().as_u16()))
        .collect();
    let missing: Vec<_> = codes.difference(&rows).collect();
    let extra: Vec<_> = rows.difference(&codes).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "{}: the table lacks the rows (code, status) {missing:?} of ErrorCode, and has {extra:?} \
         that ErrorCode does not",
        path.display()
    );
}
