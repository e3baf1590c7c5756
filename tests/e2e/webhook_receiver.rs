//! A webhook endpoint on 127.0.0.1:0 that answers 204 and records each
//! request's headers and exact body, for tests that configure the
//! notification worker's webhook channel.

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;

/// One request as received.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

type Received = Arc<Mutex<Vec<Delivery>>>;

pub struct WebhookReceiver {
    /// For `CHORUS_WEBHOOK_URL`.
    pub url: String,
    received: Received,
}

async fn receive(State(received): State<Received>, headers: HeaderMap, body: Bytes) -> StatusCode {
    received.lock().unwrap().push(Delivery {
        headers,
        body: body.to_vec(),
    });
    StatusCode::NO_CONTENT
}

impl WebhookReceiver {
    pub async fn start() -> WebhookReceiver {
        let received = Received::default();
        let app = Router::new()
            .route("/hooks/orders", post(receive))
            .with_state(received.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hooks/orders", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        WebhookReceiver { url, received }
    }

    pub fn deliveries(&self) -> Vec<Delivery> {
        self.received.lock().unwrap().clone()
    }
}
