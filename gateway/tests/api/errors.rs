//! Every refusal answers in the error shape with the right status, before any
//! database or Kafka is touched (these tests run without the stack).

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use chorus_gateway::auth::Role;
use serde_json::{Value, json};

use crate::helpers::{TestApp, admin, customer, order_body, settings, token};

fn order_with(f: impl FnOnce(&mut Value)) -> Value {
    let mut body = order_body();
    f(&mut body);
    body
}

#[tokio::test]
async fn a_missing_or_bad_token_is_401_with_www_authenticate() {
    let app = TestApp::without_db();
    let expired = {
        use jsonwebtoken::{EncodingKey, Header, encode};
        let exp = jsonwebtoken::get_current_timestamp() - 5;
        encode(
            &Header::default(),
            &json!({"sub": "alice", "role": "customer", "exp": exp}),
            &EncodingKey::from_secret(crate::helpers::SECRET.as_bytes()),
        )
        .unwrap()
    };
    let forged = chorus_gateway::auth::issue_token(
        "another-secret",
        "alice",
        Role::Customer,
        std::time::Duration::from_secs(60),
    )
    .unwrap();
    for authorization in [
        None,
        Some("Bearer".to_string()),
        Some("Basic YWxpY2U6cHc=".to_string()),
        Some("Bearer not-a-jwt".to_string()),
        Some(format!("Bearer {expired}")),
        Some(format!("Bearer {forged}")),
    ] {
        for (method, uri) in [
            (Method::POST, "/v1/orders"),
            (
                Method::GET,
                "/v1/orders/5f0c6a43-9f5e-4c55-8a53-6f6e0d0b1a11",
            ),
            (Method::GET, "/v1/admin/inventory/SKU-1"),
        ] {
            let mut request = Request::builder()
                .method(method)
                .uri(uri)
                .header("content-type", "application/json")
                .header("idempotency-key", "k1");
            if let Some(value) = &authorization {
                request = request.header("authorization", value);
            }
            let response = app
                .send(request.body(Body::from(order_body().to_string())).unwrap())
                .await;
            let (code, field) = response.error(StatusCode::UNAUTHORIZED);
            assert_eq!(code, "unauthorized");
            assert_eq!(field, None);
            assert_eq!(response.headers["www-authenticate"], "Bearer");
        }
    }
}

#[tokio::test]
async fn a_customer_on_admin_routes_is_403() {
    let app = TestApp::without_db();
    let alice = customer("alice");
    let response = app.get("/v1/admin/inventory/SKU-1", Some(&alice)).await;
    assert_eq!(response.error(StatusCode::FORBIDDEN).0, "forbidden");
    let body = json!({"available": 5, "unit_price": "1.00", "name": "x"});
    let response = app.put_stock(&alice, "SKU-1", &body).await;
    assert_eq!(response.error(StatusCode::FORBIDDEN).0, "forbidden");
    assert!(app.publisher.published().is_empty());
}

#[tokio::test]
async fn a_missing_idempotency_key_is_400_naming_the_header() {
    let app = TestApp::without_db();
    let response = app
        .post_order(&customer("alice"), None, &order_body())
        .await;
    let (code, field) = response.error(StatusCode::BAD_REQUEST);
    assert_eq!(code, "missing_header");
    assert_eq!(field.as_deref(), Some("Idempotency-Key"));
    let long_key = "k".repeat(256);
    for bad in ["has space", long_key.as_str()] {
        let response = app
            .post_order(&customer("alice"), Some(bad), &order_body())
            .await;
        let (_, field) = response.error(StatusCode::BAD_REQUEST);
        assert_eq!(field.as_deref(), Some("Idempotency-Key"));
    }
}

#[tokio::test]
async fn every_order_rule_is_a_400_naming_its_field() {
    let app = TestApp::without_db();
    let alice = customer("alice");
    let line = json!({"sku": "SKU-1", "quantity": 1});
    let cases: Vec<(Value, &str)> = vec![
        (order_with(|b| b["items"] = json!([])), "items"),
        (
            order_with(|b| b["items"] = json!(vec![line.clone(); 51])),
            "items",
        ),
        (order_with(|b| b["items"] = json!("SKU-1")), "items"),
        (
            order_with(|b| {
                b.as_object_mut().unwrap().remove("items");
            }),
            "items",
        ),
        (
            order_with(|b| b["items"][0]["quantity"] = json!(0)),
            "items[0].quantity",
        ),
        (
            order_with(|b| b["items"][0]["quantity"] = json!(1001)),
            "items[0].quantity",
        ),
        (
            order_with(|b| b["items"][0]["quantity"] = json!(-3)),
            "items[0].quantity",
        ),
        (
            order_with(|b| b["items"][0]["quantity"] = json!(1.5)),
            "items[0].quantity",
        ),
        (
            order_with(|b| b["items"][0]["quantity"] = json!("2")),
            "items[0].quantity",
        ),
        (
            order_with(|b| b["items"][0]["quantity"] = json!(1e20)),
            "items[0].quantity",
        ),
        (
            order_with(|b| {
                b["items"][0].as_object_mut().unwrap().remove("quantity");
            }),
            "items[0].quantity",
        ),
        (
            order_with(|b| b["items"] = json!([line, {"sku": "sku-1", "quantity": 1}])),
            "items[1].sku",
        ),
        (
            order_with(|b| b["items"][0]["sku"] = json!("S".repeat(33))),
            "items[0].sku",
        ),
        (
            order_with(|b| b["items"][0]["sku"] = json!("")),
            "items[0].sku",
        ),
        (
            order_with(|b| b["items"][0]["sku"] = json!("SKU_1")),
            "items[0].sku",
        ),
        (
            order_with(|b| b["items"][0]["sku"] = json!(7)),
            "items[0].sku",
        ),
        (order_with(|b| b["currency"] = json!("eur")), "currency"),
        (order_with(|b| b["currency"] = json!("EURO")), "currency"),
        (order_with(|b| b["currency"] = json!(null)), "currency"),
        (
            order_with(|b| {
                b.as_object_mut().unwrap().remove("currency");
            }),
            "currency",
        ),
        (
            order_with(|b| b["payment_token"] = json!("")),
            "payment_token",
        ),
        (
            order_with(|b| {
                b.as_object_mut().unwrap().remove("payment_token");
            }),
            "payment_token",
        ),
        (
            order_with(|b| b["payment_token"] = json!("tok\u{7}")),
            "payment_token",
        ),
        (
            order_with(|b| b["payment_token"] = json!("é".repeat(257))),
            "payment_token",
        ),
        // Unknown fields are refused by name (`additionalProperties: false`).
        (order_with(|b| b["coupon"] = json!("FREE")), "coupon"),
        (
            order_with(|b| b["items"][0]["unit_price"] = json!("0.01")),
            "items[0].unit_price",
        ),
    ];
    for (body, expected) in cases {
        let response = app.post_order(&alice, Some("k1"), &body).await;
        let (code, field) = response.error(StatusCode::BAD_REQUEST);
        assert_eq!(code, "invalid_field", "{body}");
        assert_eq!(
            field.as_deref(),
            Some(expected),
            "{body}: {}",
            response.text
        );
    }
    // The limits themselves are fine (and only then is the database asked),
    // and so is a whole number written as JSON Schema allows (`2.0`, `1e3`),
    // a token of 256 characters of two bytes each.
    let fifty = order_with(|b| b["items"] = json!(vec![json!({"sku": "S", "quantity": 1000}); 50]));
    let whole = order_with(|b| {
        b["items"] = json!([{"sku": "S", "quantity": 2.0}, {"sku": "T", "quantity": 1e3}]);
        b["payment_token"] = json!("é".repeat(256));
    });
    for body in [fifty, whole] {
        let response = app.post_order(&alice, Some("k1"), &body).await;
        assert_eq!(
            response.error(StatusCode::SERVICE_UNAVAILABLE).0,
            "unavailable",
            "{body}"
        );
    }
}

fn raw_post(content_type: Option<&str>, body: impl Into<Body>) -> Request<Body> {
    let mut request = Request::builder()
        .method(Method::POST)
        .uri("/v1/orders")
        .header("authorization", format!("Bearer {}", customer("alice")))
        .header("idempotency-key", "k1");
    if let Some(content_type) = content_type {
        request = request.header("content-type", content_type);
    }
    request.body(body.into()).unwrap()
}

#[tokio::test]
async fn bad_json_is_400_wrong_content_type_415_big_body_413() {
    let app = TestApp::without_db();
    let trailing = format!("{} {{}}", order_body());
    for text in ["{", "", "not json", "{\"items\": [}", &trailing] {
        let response = app
            .send(raw_post(Some("application/json"), text.to_string()))
            .await;
        let (code, field) = response.error(StatusCode::BAD_REQUEST);
        assert_eq!((code.as_str(), field), ("invalid_json", None), "{text}");
    }
    let response = app.send(raw_post(Some("application/json"), "[1]")).await;
    assert_eq!(response.error(StatusCode::BAD_REQUEST).0, "invalid_body");

    let body = order_body().to_string();
    for content_type in [
        None,
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
    ] {
        let response = app.send(raw_post(content_type, body.clone())).await;
        let (code, _) = response.error(StatusCode::UNSUPPORTED_MEDIA_TYPE);
        assert_eq!(code, "unsupported_media_type");
    }

    let mut big = order_body();
    big["padding"] = json!("x".repeat(64 * 1024));
    let response = app
        .send(raw_post(Some("application/json"), big.to_string()))
        .await;
    assert_eq!(
        response.error(StatusCode::PAYLOAD_TOO_LARGE).0,
        "payload_too_large"
    );
    // Exactly at the limit is still read (and then validated).
    let mut at_limit = order_body();
    at_limit["items"][0]["sku"] = json!("bad sku");
    let text = at_limit.to_string();
    let padded = format!("{}{}", text, " ".repeat(64 * 1024 - text.len()));
    let response = app.send(raw_post(Some("application/json"), padded)).await;
    assert_eq!(
        response.error(StatusCode::BAD_REQUEST).1.as_deref(),
        Some("items[0].sku")
    );
}

#[tokio::test]
async fn the_rate_limit_is_per_subject_with_retry_after() {
    let app = TestApp::without_db_with(settings(1, 2));
    let alice = customer("alice");
    let path = "/v1/orders/not-an-order";
    for _ in 0..2 {
        assert_eq!(
            app.get(path, Some(&alice)).await.status,
            StatusCode::NOT_FOUND
        );
    }
    let response = app.get(path, Some(&alice)).await;
    assert_eq!(
        response.error(StatusCode::TOO_MANY_REQUESTS).0,
        "rate_limited"
    );
    let retry_after: u64 = response.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=2).contains(&retry_after), "{retry_after}");
    // Another subject has a bucket of its own.
    let bob = customer("bob");
    assert_eq!(
        app.get(path, Some(&bob)).await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn bad_query_and_path_values_are_400() {
    let app = TestApp::without_db();
    let alice = customer("alice");
    let id = "5f0c6a43-9f5e-4c55-8a53-6f6e0d0b1a11";
    for query in [
        "wait=31",
        "wait=-1",
        "wait=soon",
        "wait=1.5",
        "seen=PEND%20ING",
    ] {
        let response = app
            .get(&format!("/v1/orders/{id}?{query}"), Some(&alice))
            .await;
        let (code, field) = response.error(StatusCode::BAD_REQUEST);
        assert_eq!(code, "invalid_field", "{query}");
        assert!(matches!(field.as_deref(), Some("wait" | "seen")), "{query}");
    }
    let response = app.get("/v1/admin/inventory/bad_sku", Some(&admin())).await;
    assert_eq!(
        response.error(StatusCode::BAD_REQUEST).1.as_deref(),
        Some("sku")
    );
    let response = app.get("/v1/orders/%FF", Some(&alice)).await;
    assert_eq!(response.error(StatusCode::BAD_REQUEST).0, "invalid_path");
}

#[tokio::test]
async fn unknown_routes_and_methods_answer_in_the_error_shape() {
    let app = TestApp::without_db();
    let response = app.get("/v1/nothing-here", None).await;
    assert_eq!(response.error(StatusCode::NOT_FOUND).0, "not_found");
    let request = Request::builder()
        .method(Method::DELETE)
        .uri("/v1/orders")
        .body(Body::empty())
        .unwrap();
    let response = app.send(request).await;
    assert_eq!(
        response.error(StatusCode::METHOD_NOT_ALLOWED).0,
        "method_not_allowed"
    );
}

#[tokio::test]
async fn bad_stock_fields_are_400_naming_the_field() {
    let app = TestApp::without_db();
    let admin = token("ops", Role::Admin);
    let good = json!({"available": 100, "unit_price": "19.99", "name": "Mug"});
    let cases: Vec<(Value, &str)> = vec![
        (
            json!({"available": -1, "unit_price": "1", "name": "x"}),
            "available",
        ),
        (
            json!({"available": "5", "unit_price": "1", "name": "x"}),
            "available",
        ),
        (json!({"unit_price": "1", "name": "x"}), "available"),
        (
            json!({"available": 1, "unit_price": "-1", "name": "x"}),
            "unit_price",
        ),
        (
            json!({"available": 1, "unit_price": 19.99, "name": "x"}),
            "unit_price",
        ),
        (
            json!({"available": 1, "unit_price": "1.23456", "name": "x"}),
            "unit_price",
        ),
        (
            json!({"available": 1, "unit_price": "1", "name": ""}),
            "name",
        ),
        (
            json!({"available": 1, "unit_price": "1", "name": " \u{3000} "}),
            "name",
        ),
        (
            json!({"available": 1, "unit_price": "1000000000", "name": "x"}),
            "unit_price",
        ),
        (
            json!({"available": 1.5, "unit_price": "1", "name": "x"}),
            "available",
        ),
        (
            json!({"available": 1, "unit_price": "1", "nmae": "x"}),
            "nmae",
        ),
    ];
    for (body, expected) in cases {
        let response = app.put_stock(&admin, "SKU-1", &body).await;
        let (_, field) = response.error(StatusCode::BAD_REQUEST);
        assert_eq!(field.as_deref(), Some(expected), "{body}");
    }
    let response = app.put_stock(&admin, "sku-1", &good).await;
    assert_eq!(
        response.error(StatusCode::BAD_REQUEST).1.as_deref(),
        Some("sku")
    );
    assert!(app.publisher.published().is_empty());
    // A whole number written as `5.0` and a zero-padded price are what they say.
    let padded = json!({"available": 5.0, "unit_price": "0019.90", "name": "Mug"});
    let response = app.put_stock(&admin, "SKU-1", &padded).await;
    assert_eq!(response.status, StatusCode::ACCEPTED, "{}", response.text);
    assert_eq!(response.json()["available"], 5);
    assert_eq!(response.json()["unit_price"], "19.90");
}
