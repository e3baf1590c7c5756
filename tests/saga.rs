//! A whole chorus deployment for one test: its own topics, its own databases,
//! the four workers and the gateway as real processes (the binaries `make
//! test` builds), torn down when the test ends.

use std::collections::HashMap;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use chorus_avro::TopicCatalogue;
use chorus_platform::testing::TestDb;
use serde_json::{Value, json};
use sqlx::PgPool;

use crate::Stack;
use crate::storefront::Storefront;

pub const WORKERS: [&str; 4] = ["order", "inventory", "payment", "notification"];
/// `CHORUS_PAYMENT_TOKEN_KEY` of every deployment a test starts (base64 of 32 bytes).
pub const PAYMENT_TOKEN_KEY: &str = "ZTJlLXBheW1lbnQtdG9rZW4ta2V5LTMyLWJ5dGVzISE=";

/// The gateway's `CHORUS_JWT_SECRET` in every deployment a test starts.
pub const JWT_SECRET: &str = "e2e-test-secret-with-enough-entropy-0123456789";

/// One running deployment.
pub struct Saga {
    pub stack: Stack,
    pub topics: TopicCatalogue,
    pub gateway_url: String,
    pub http: reqwest::Client,
    databases: HashMap<&'static str, TestDb>,
    processes: HashMap<&'static str, Child>,
    env: HashMap<&'static str, Vec<(String, String)>>,
    logs: PathBuf,
}

impl Saga {
    /// Starts everything and waits until every process is ready.
    pub async fn start() -> Saga {
        Saga::start_with(&[]).await
    }

    /// Like `start`, with extra environment for every process.
    pub async fn start_with(extra_env: &[(&str, &str)]) -> Saga {
        Saga::start_with_databases_of(extra_env, None).await
    }

    /// Like `start_with`, the services' databases created through
    /// `db_admin_url` (a role with CREATEDB) instead of the default admin, so
    /// the services connect as that role, with its password in their URLs.
    pub async fn start_with_databases_of(
        extra_env: &[(&str, &str)],
        db_admin_url: Option<&str>,
    ) -> Saga {
        let stack = Stack::get().await;
        let topics = stack.fresh_topics().await;
        // As `make run` does: the schemas are registered before anything runs.
        let registered = crate::run(stack.chorus(&topics).args(["schemas", "register"]));
        assert!(
            registered.status.success(),
            "{}",
            crate::describe(&registered)
        );
        // As `make run` does: each service's ACLs on this namespace, derived
        // from the topic catalogue; every service connects with its own principal.
        let acls = crate::run(stack.chorus(&topics).args(["acls", "apply"]));
        assert!(acls.status.success(), "{}", crate::describe(&acls));
        // Empty databases, one per service: each migrates its own at start-up.
        let mut databases = HashMap::new();
        for service in WORKERS.iter().chain(["gateway"].iter()) {
            let db = match db_admin_url {
                None => TestDb::create(&[]).await,
                Some(url) => TestDb::try_create(url, &[])
                    .await
                    .unwrap_or_else(|problem| panic!("{problem}")),
            };
            databases.insert(*service, db);
        }

        let logs = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../target/e2e-logs")
            .join(topics.namespace());
        std::fs::create_dir_all(&logs).unwrap();
        let gateway_port = free_port();
        let common: Vec<(String, String)> = [
            ("CHORUS_SCHEMA_REGISTRY_URL", stack.registry.as_str()),
            ("CHORUS_TOPIC_NAMESPACE", topics.namespace()),
            ("CHORUS_TOPIC_PARTITIONS", &topics.partitions().to_string()),
            ("CHORUS_MAX_BACKOFF_MS", "500"),
            // Production mode: payment tokens are sealed by the gateway and
            // opened by the payment worker (no CHORUS_DEV).
            ("CHORUS_PAYMENT_TOKEN_KEY", PAYMENT_TOKEN_KEY),
            ("RUST_LOG", "info,rdkafka=warn,sqlx=warn"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        // The service's own principal first, so a test's extra variables win.
        let with_principal = |service: &str| -> Vec<(String, String)> {
            let mut vars = common.clone();
            vars.extend(stack.service_kafka_env(service));
            vars.extend(
                extra_env
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string())),
            );
            vars
        };
        let mut env = HashMap::new();
        for worker in WORKERS {
            let mut vars = with_principal(worker);
            vars.push(("CHORUS_INSTANCE_ID".into(), instance_id(worker)));
            vars.push(("CHORUS_DATABASE_URL".into(), databases[worker].url.clone()));
            vars.push((
                "CHORUS_HTTP_ADDR".into(),
                format!("127.0.0.1:{}", free_port()),
            ));
            env.insert(worker, vars);
        }
        let mut gateway = with_principal("gateway");
        gateway.extend([
            (
                "CHORUS_DATABASE_URL".into(),
                databases["gateway"].url.clone(),
            ),
            ("CHORUS_ORDER_DB_URL".into(), databases["order"].url.clone()),
            (
                "CHORUS_INVENTORY_DB_URL".into(),
                databases["inventory"].url.clone(),
            ),
            (
                "CHORUS_HTTP_ADDR".into(),
                format!("127.0.0.1:{gateway_port}"),
            ),
            // Readiness and metrics, apart from the API as in production.
            (
                "CHORUS_ADMIN_ADDR".into(),
                format!("127.0.0.1:{}", free_port()),
            ),
            ("CHORUS_JWT_SECRET".into(), JWT_SECRET.into()),
            ("CHORUS_RATE_LIMIT_PER_SEC".into(), "100000".into()),
            // Tests place hundreds of orders of one customer in parallel,
            // faster than the saga finishes them.
            (
                "CHORUS_GATEWAY_OPEN_ORDERS_PER_CUSTOMER".into(),
                "100000".into(),
            ),
            ("CHORUS_INSTANCE_ID".into(), instance_id("gateway")),
        ]);
        env.insert("gateway", gateway);

        let mut saga = Saga {
            stack,
            topics,
            gateway_url: format!("http://127.0.0.1:{gateway_port}"),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(60))
                .build()
                .unwrap(),
            databases,
            processes: HashMap::new(),
            env,
            logs,
        };
        for service in ["order", "inventory", "payment", "notification", "gateway"] {
            saga.spawn(service);
        }
        for service in ["order", "inventory", "payment", "notification", "gateway"] {
            saga.wait_ready(service).await;
        }
        saga
    }

    /// Starts (or restarts) one service's process.
    pub fn spawn(&mut self, service: &'static str) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.logs.join(format!("{service}.log")))
            .unwrap();
        let child = Command::new(binary(service))
            .envs(self.env[service].iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log))
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", binary(service).display()));
        self.processes.insert(service, child);
    }

    /// Kills a service with SIGKILL (no chance to flush or commit).
    pub fn kill(&mut self, service: &'static str) {
        if let Some(mut child) = self.processes.remove(service) {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Sends SIGTERM and returns the exit status.
    pub fn terminate(&mut self, service: &'static str) -> std::process::ExitStatus {
        let mut child = self.processes.remove(service).expect("service running");
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        for _ in 0..300 {
            if let Some(status) = child.try_wait().unwrap() {
                return status;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = child.kill();
        panic!("{service} did not exit within 30 s of SIGTERM");
    }

    /// Waits for the service's `/readyz` (the gateway's on its admin
    /// address), failing with its log if it died.
    pub async fn wait_ready(&mut self, service: &'static str) {
        let url = self.admin_url(service, "/readyz");
        for _ in 0..600 {
            if let Some(child) = self.processes.get_mut(service)
                && let Some(status) = child.try_wait().unwrap()
            {
                panic!("{service} exited with {status}:\n{}", self.log(service));
            }
            if let Ok(response) = self.http.get(&url).send().await
                && response.status().is_success()
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("{service} not ready within 60 s:\n{}", self.log(service));
    }

    /// Where `service` serves `/readyz` and `/metrics`: the gateway's
    /// `CHORUS_ADMIN_ADDR`, a worker's `CHORUS_HTTP_ADDR` (later entries win).
    pub fn admin_addr(&self, service: &str) -> Option<String> {
        let var = |name: &str| {
            self.env[service]
                .iter()
                .rev()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        };
        var("CHORUS_ADMIN_ADDR").or_else(|| var("CHORUS_HTTP_ADDR"))
    }

    /// `path` (`/readyz`, `/metrics`) on `service`'s admin address.
    pub fn admin_url(&self, service: &str, path: &str) -> String {
        let addr = self
            .admin_addr(service)
            .unwrap_or_else(|| panic!("{service} has no HTTP address"));
        format!("http://{addr}{path}")
    }

    /// The file `service` logs to (stdout and stderr), whole.
    /// The environment `service` runs with (later entries win).
    pub fn env_of(&self, service: &str) -> &[(String, String)] {
        &self.env[service]
    }

    pub fn log_file(&self, service: &str) -> PathBuf {
        self.logs.join(format!("{service}.log"))
    }

    pub fn log(&self, service: &str) -> String {
        let text =
            std::fs::read_to_string(self.logs.join(format!("{service}.log"))).unwrap_or_default();
        let tail: Vec<&str> = text.lines().rev().take(40).collect();
        tail.into_iter().rev().collect::<Vec<_>>().join("\n")
    }

    /// The `chorus` binary pointed at this deployment: its topics, its gateway
    /// (tokens signed with its secret) and its databases (`CHORUS_<SERVICE>_DB_URL`).
    pub fn chorus(&self) -> Command {
        let mut command = self.stack.chorus(&self.topics);
        command
            .env("CHORUS_GATEWAY_URL", &self.gateway_url)
            .env("CHORUS_JWT_SECRET", JWT_SECRET)
            .env("CHORUS_PAYMENT_TOKEN_KEY", PAYMENT_TOKEN_KEY)
            .env_remove("CHORUS_TOKEN");
        for service in WORKERS.iter().chain(["gateway"].iter()) {
            let variable = format!("CHORUS_{}_DB_URL", service.to_uppercase());
            command.env(variable, &self.databases[service].url);
        }
        command
    }

    /// The URL of one service's database (admin role).
    pub fn db_url(&self, service: &str) -> String {
        self.databases[service].url.clone()
    }

    /// A connection pool to one service's database.
    pub async fn db(&self, service: &str) -> PgPool {
        self.databases[service].pool.clone()
    }

    /// A signed token for `sub` with `role`.
    pub fn token(&self, sub: &str, role: &str) -> String {
        self.storefront().token(sub, role)
    }

    /// The gateway as a storefront sees it, for placing orders from tasks of
    /// their own while the test stops and starts services.
    pub fn storefront(&self) -> Storefront {
        Storefront {
            gateway_url: self.gateway_url.clone(),
            http: self.http.clone(),
        }
    }

    /// Sets a SKU's stock and price through the admin API and waits until the
    /// inventory read model shows it.
    pub async fn set_stock(&self, sku: &str, available: i64, unit_price: &str) {
        let admin = self.token("ops", "admin");
        let response = self
            .http
            .put(format!("{}/v1/admin/inventory/{sku}", self.gateway_url))
            .bearer_auth(&admin)
            .json(&json!({"available": available, "unit_price": unit_price, "name": sku}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 202, "{}", response.text().await.unwrap());
        let shown = |stock: &Option<Value>| {
            stock.as_ref().is_some_and(|stock| {
                stock["available"] == available && stock["unit_price"] == unit_price
            })
        };
        let stock = settle(|| self.stock(sku), shown).await;
        assert!(shown(&stock), "stock of {sku} never became {available}");
    }

    /// The admin view of a SKU, or None when unknown.
    pub async fn stock(&self, sku: &str) -> Option<Value> {
        let response = self
            .http
            .get(format!("{}/v1/admin/inventory/{sku}", self.gateway_url))
            .bearer_auth(self.token("ops", "admin"))
            .send()
            .await
            .unwrap();
        match response.status().as_u16() {
            200 => Some(response.json().await.unwrap()),
            404 => None,
            other => panic!(
                "GET inventory {sku}: {other} {}",
                response.text().await.unwrap()
            ),
        }
    }

    /// `(available, reserved, sold)` of a SKU once nothing of it is reserved:
    /// an order's final status is written before the inventory worker has
    /// turned its reservation into a sale or released it.
    pub async fn settled_stock(&self, sku: &str) -> (i32, i32, i32) {
        let inventory = &self.db("inventory").await;
        settle(
            move || async move {
                sqlx::query_as("SELECT available, reserved, sold FROM stock_levels WHERE sku = $1")
                    .bind(sku)
                    .fetch_one(inventory)
                    .await
                    .unwrap()
            },
            |levels: &(i32, i32, i32)| levels.1 == 0,
        )
        .await
    }

    /// `(deliveries, distinct orders)` recorded by the notification worker,
    /// of one order or of all, once there are at least `expected` (or after
    /// [`SETTLE_WITHIN`]): it delivers after the order's final status is readable.
    pub async fn deliveries(&self, order_id: Option<&str>, expected: i64) -> (i64, i64) {
        let notifications = &self.db("notification").await;
        settle(
            move || async move {
                sqlx::query_as(
                    "SELECT count(*), count(DISTINCT order_id) FROM deliveries
                     WHERE $1::text IS NULL OR order_id = $1",
                )
                .bind(order_id)
                .fetch_one(notifications)
                .await
                .unwrap()
            },
            |counts: &(i64, i64)| counts.0 >= expected,
        )
        .await
    }

    /// Places an order as `customer`; returns (status code, body).
    pub async fn place(&self, customer: &str, key: &str, body: &Value) -> (u16, Value) {
        self.storefront()
            .try_place(customer, key, body)
            .await
            .unwrap_or_else(|e| panic!("POST /v1/orders: {e}"))
    }

    /// Places an order that must be accepted; returns its id. Like a
    /// storefront, it asks again with the same Idempotency-Key after a 503 (a
    /// busy dependency) or no answer (see [`Storefront::place_ok`]).
    pub async fn place_ok(&self, customer: &str, items: &[(&str, i64)], token: &str) -> String {
        self.storefront().place_ok(customer, items, token).await
    }

    /// `POST /v1/orders/{id}/cancel` as `customer`; returns (status code,
    /// body). A 503 is asked again after its `Retry-After`, as a storefront would.
    pub async fn cancel(&self, customer: &str, order_id: &str) -> (u16, Value) {
        for _ in 0..30 {
            let response = self
                .http
                .post(format!("{}/v1/orders/{order_id}/cancel", self.gateway_url))
                .bearer_auth(self.token(customer, "customer"))
                .send()
                .await
                .unwrap();
            if response.status() == 503 {
                tokio::time::sleep(retry_after(&response)).await;
                continue;
            }
            let status = response.status().as_u16();
            return (status, response.json().await.unwrap_or(Value::Null));
        }
        panic!("POST /v1/orders/{order_id}/cancel stayed unavailable for 30 attempts");
    }

    /// The order as its customer sees it now (`GET /v1/orders/{id}`).
    pub async fn order(&self, customer: &str, order_id: &str) -> Value {
        let response = self
            .http
            .get(format!("{}/v1/orders/{order_id}", self.gateway_url))
            .bearer_auth(self.token(customer, "customer"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "GET {order_id}");
        response.json().await.unwrap()
    }

    /// Waits (up to [`SETTLE_WITHIN`]) until the order's status is `status`.
    pub async fn wait_status(&self, customer: &str, order_id: &str, status: &str) -> Value {
        let order = settle(
            || self.order(customer, order_id),
            |order: &Value| order["status"] == status,
        )
        .await;
        assert_eq!(order["status"], status, "{order}");
        order
    }

    /// Every event of `order_id` on a topic (short name, e.g. `orders`), as
    /// `chorus tail` decodes them, in topic order.
    pub fn tail(&self, topic: &str, order_id: &str) -> Vec<Value> {
        let output = crate::run(self.chorus().args([
            "tail",
            topic,
            "--from-beginning",
            "--order",
            order_id,
        ]));
        assert!(output.status.success(), "{}", crate::describe(&output));
        crate::stdout(&output)
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect()
    }

    /// Long-polls an order until it is final (or `timeout` passes); returns
    /// its body. Like a storefront, it asks again after a 503 (a busy
    /// dependency) once the advertised `Retry-After` has passed.
    pub async fn wait_final(&self, customer: &str, order_id: &str, timeout: Duration) -> Value {
        let token = self.token(customer, "customer");
        let deadline = tokio::time::Instant::now() + timeout;
        let mut seen = "PENDING".to_string();
        loop {
            let response = self
                .http
                .get(format!(
                    "{}/v1/orders/{order_id}?wait=10&seen={seen}",
                    self.gateway_url
                ))
                .bearer_auth(&token)
                .send()
                .await
                .unwrap();
            if response.status() == 503 && tokio::time::Instant::now() < deadline {
                tokio::time::sleep(retry_after(&response)).await;
                continue;
            }
            assert_eq!(response.status(), 200, "GET {order_id}");
            let body: Value = response.json().await.unwrap();
            seen = body["status"].as_str().unwrap().to_string();
            if seen == "CONFIRMED" || seen == "CANCELLED" {
                return body;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "order {order_id} still {seen} after {timeout:?}"
            );
        }
    }
}

impl Drop for Saga {
    fn drop(&mut self) {
        // The processes go first, then (as the fields drop) their databases.
        for (_, mut child) in self.processes.drain() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The pause a 503's `Retry-After` asks for (1 s when it names none).
fn retry_after(response: &reqwest::Response) -> Duration {
    response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok()?.parse().ok())
        .map_or(Duration::from_secs(1), Duration::from_secs)
}

/// The stable identity of a service's one replica, kept across its restarts
/// as a deployment keeps a pod's (its health port stays the same too): a
/// worker that comes back under it takes its partitions back at once.
pub fn instance_id(service: &str) -> String {
    format!("{service}-1")
}

/// `{"items":[…],"currency":"EUR","payment_token":token}`.
pub fn order_body(items: &[(&str, i64)], token: &str) -> Value {
    let items: Vec<Value> = items
        .iter()
        .map(|(sku, quantity)| json!({"sku": sku, "quantity": quantity}))
        .collect();
    json!({"items": items, "currency": "EUR", "payment_token": token})
}

/// A fresh SKU name no other test uses.
pub fn sku(label: &str) -> String {
    format!(
        "{label}-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..8].to_uppercase()
    )
}

/// The path of `chorus-<service>` beside the `chorus` binary under test.
pub fn binary(service: &str) -> PathBuf {
    let dir = crate::chorus_bin()
        .parent()
        .expect("binary directory")
        .to_path_buf();
    let path = dir.join(format!("chorus-{service}"));
    assert!(
        path.exists(),
        "{} is missing: build it with `cargo build --workspace --bins` (make test does)",
        path.display()
    );
    path
}

/// A TCP port nobody listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// How long [`settle`] waits for the workers to catch up.
pub const SETTLE_WITHIN: Duration = Duration::from_secs(30);

/// Reads until `done` holds or [`SETTLE_WITHIN`] has passed, and returns the
/// last read: the workers apply an event after the state a test waited on.
async fn settle<T, F>(mut read: impl FnMut() -> F, done: impl Fn(&T) -> bool) -> T
where
    F: Future<Output = T>,
{
    let deadline = Instant::now() + SETTLE_WITHIN;
    loop {
        let value = read().await;
        if done(&value) || Instant::now() >= deadline {
            return value;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
