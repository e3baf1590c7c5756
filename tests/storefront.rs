//! A storefront's side of the gateway: it places orders as a customer and,
//! like a real one, asks again with the same Idempotency-Key after a 503 or a
//! connection the gateway dropped (a restart), so an order is placed once
//! however often it is asked. Cheap to clone: tests place orders from tasks
//! of their own while they stop and start services.

use std::time::Duration;

use serde_json::{Value, json};

use crate::saga::{JWT_SECRET, order_body};

/// How long [`Storefront::place_ok`] keeps asking before it gives up.
const PLACE_WITHIN: Duration = Duration::from_secs(60);

#[derive(Debug, Clone)]
pub struct Storefront {
    pub gateway_url: String,
    pub http: reqwest::Client,
}

impl Storefront {
    /// A signed token for `sub` with `role`.
    pub fn token(&self, sub: &str, role: &str) -> String {
        let claims = json!({
            "sub": sub,
            "role": role,
            "exp": chrono::Utc::now().timestamp() + 3600,
        });
        jsonwebtoken::encode(
            &jsonwebtoken::Header::default(),
            &claims,
            &jsonwebtoken::EncodingKey::from_secret(JWT_SECRET.as_bytes()),
        )
        .unwrap()
    }

    /// Places an order as `customer`; (status code, body), or the transport
    /// error when no answer came.
    pub async fn try_place(
        &self,
        customer: &str,
        key: &str,
        body: &Value,
    ) -> Result<(u16, Value), reqwest::Error> {
        let response = self
            .http
            .post(format!("{}/v1/orders", self.gateway_url))
            .bearer_auth(self.token(customer, "customer"))
            .header("Idempotency-Key", key)
            .json(body)
            .send()
            .await?;
        let status = response.status().as_u16();
        Ok((status, response.json().await.unwrap_or(Value::Null)))
    }

    /// Places an order that must be accepted; returns its id. A 503 (a busy
    /// dependency) or no answer at all (the gateway restarting) is asked
    /// again with the same Idempotency-Key, for up to a minute.
    pub async fn place_ok(&self, customer: &str, items: &[(&str, i64)], token: &str) -> String {
        let body = order_body(items, token);
        let key = uuid::Uuid::new_v4().to_string();
        let deadline = tokio::time::Instant::now() + PLACE_WITHIN;
        let mut last = String::new();
        while tokio::time::Instant::now() < deadline {
            match self.try_place(customer, &key, &body).await {
                Ok((202, answer)) => {
                    // A body cut short by a restart: the same key answers again.
                    if let Some(order_id) = answer["order_id"].as_str() {
                        return order_id.to_string();
                    }
                    last = format!("202 without an order id: {answer}");
                }
                Ok((503, answer)) => last = format!("503 {answer}"),
                Ok((status, answer)) => panic!("POST /v1/orders answered {status}: {answer}"),
                Err(e) => last = format!("no answer: {e}"),
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        panic!("POST /v1/orders not accepted within {PLACE_WITHIN:?}; last: {last}");
    }
}
