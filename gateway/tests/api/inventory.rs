//! Admin stock routes: a PUT emits StockAdjusted keyed by SKU; a GET reads
//! the inventory service's `stock_levels`.

use axum::http::StatusCode;
use chorus_avro::Event;
use serde_json::json;

use crate::helpers::{TestApp, admin};

#[tokio::test]
async fn setting_stock_emits_stock_adjusted() {
    let app = TestApp::spawn().await;
    let body = json!({"available": 100, "unit_price": "19.99", "name": "Blue mug"});
    let response = app.put_stock(&admin(), "SKU-1", &body).await;
    assert_eq!(response.status, StatusCode::ACCEPTED, "{}", response.text);
    let answer = response.json();
    assert_eq!(answer["sku"], "SKU-1");
    assert_eq!(answer["available"], 100);
    assert_eq!(answer["unit_price"], "19.99");
    let published = app.publisher.published();
    let [(Event::StockAdjusted(event), _)] = published.as_slice() else {
        panic!("{published:?}")
    };
    assert_eq!(event.sku, "SKU-1");
    assert_eq!(event.name, "Blue mug");
    assert_eq!(event.available, 100);
    assert_eq!(event.unit_price.to_string(), "19.99");
    assert_eq!(event.event_id, answer["event_id"].as_str().unwrap());
    assert_eq!(published[0].0.key(), "SKU-1");
}

#[tokio::test]
async fn leaving_out_the_name_keeps_the_catalogue_name() {
    let app = TestApp::spawn().await;
    app.set_stock_level("SKU-1", "Blue mug", 5, 0, "9.50").await;
    let body = json!({"available": 7, "unit_price": "10"});
    let response = app.put_stock(&admin(), "SKU-1", &body).await;
    assert_eq!(response.status, StatusCode::ACCEPTED, "{}", response.text);
    assert_eq!(response.json()["name"], "Blue mug");
    // A new SKU without a name is named after itself.
    let response = app.put_stock(&admin(), "SKU-NEW", &body).await;
    assert_eq!(response.json()["name"], "SKU-NEW");
}

#[tokio::test]
async fn reading_stock_shows_the_inventory_read_model() {
    let app = TestApp::spawn().await;
    app.set_stock_level("SKU-1", "Blue mug", 95, 3, "19.99")
        .await;
    let response = app.get("/v1/admin/inventory/SKU-1", Some(&admin())).await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.text);
    assert_eq!(
        response.json(),
        json!({"sku": "SKU-1", "name": "Blue mug", "available": 95, "reserved": 3, "unit_price": "19.99"})
    );
    let response = app.get("/v1/admin/inventory/SKU-404", Some(&admin())).await;
    assert_eq!(response.error(StatusCode::NOT_FOUND).0, "not_found");
}

#[tokio::test]
async fn kafka_down_is_503_for_stock_too() {
    let app = TestApp::spawn().await;
    app.publisher.set_failing(true);
    let body = json!({"available": 1, "unit_price": "1", "name": "x"});
    let response = app.put_stock(&admin(), "SKU-1", &body).await;
    assert_eq!(
        response.error(StatusCode::SERVICE_UNAVAILABLE).0,
        "unavailable"
    );
}
