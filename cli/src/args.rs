//! Command-line arguments. Every connection setting can come from a flag or
//! from its `CHORUS_…` environment variable.

use std::path::PathBuf;
use std::time::Duration;

use chorus_avro::{CodecConfig, EventType, RegistrySettings, TopicCatalogue};
use chorus_platform::token::Role;
use chorus_platform::{Env, KafkaSettings, registry::registry_with_url};
use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "chorus",
    version,
    about = "Inject and inspect chorus events; manage topics and schemas; talk to the gateway"
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct Global {
    /// Kafka bootstrap servers.
    #[arg(
        long,
        global = true,
        env = "CHORUS_KAFKA_BROKERS",
        default_value = "127.0.0.1:9092"
    )]
    pub brokers: String,
    /// Schema registry base URL (Confluent API; for Apicurio end it with /apis/ccompat/v7).
    #[arg(
        long,
        global = true,
        env = "CHORUS_SCHEMA_REGISTRY_URL",
        default_value = "http://127.0.0.1:8081/apis/ccompat/v7"
    )]
    pub registry: String,
    /// Topic namespace: topics are named `<namespace>.orders`, `<namespace>.payments`, …
    #[arg(
        long,
        global = true,
        env = "CHORUS_TOPIC_NAMESPACE",
        default_value = "chorus"
    )]
    pub namespace: String,
    /// Partitions of each topic created by `topics create`.
    #[arg(long, global = true, env = "CHORUS_TOPIC_PARTITIONS", default_value_t = chorus_avro::DEFAULT_PARTITIONS,
          value_parser = clap::value_parser!(i32).range(1..=1000))]
    pub partitions: i32,
    /// Seconds to wait for Kafka or the registry before giving up.
    #[arg(long, global = true, env = "CHORUS_TIMEOUT_SECS", default_value_t = 10,
          value_parser = clap::value_parser!(u64).range(1..=600))]
    pub timeout: u64,
}

impl Global {
    pub fn catalogue(&self) -> TopicCatalogue {
        TopicCatalogue::new(self.namespace.clone(), self.partitions)
    }

    pub fn timeout(&self) -> Duration {
        Duration::from_secs(self.timeout)
    }

    /// The brokers of `--brokers`, with the security settings of the
    /// environment (`CHORUS_KAFKA_SECURITY_PROTOCOL`, …).
    pub fn kafka(&self) -> anyhow::Result<KafkaSettings> {
        Ok(KafkaSettings::from_env_with_brokers(
            &Env::process(),
            self.brokers.clone(),
        )?)
    }

    /// The registry of `--registry`, with basic auth from the environment.
    pub fn registry_settings(&self) -> anyhow::Result<RegistrySettings> {
        Ok(registry_with_url(
            &Env::process(),
            self.registry.trim_end_matches('/').to_string(),
        )?)
    }

    pub fn codec_config(&self, auto_register: bool) -> anyhow::Result<CodecConfig> {
        Ok(CodecConfig {
            registry: self.registry_settings()?,
            auto_register,
            timeout: self.timeout(),
        })
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create and list the chorus topics.
    #[command(subcommand)]
    Topics(TopicsCommand),
    /// Register the event schemas or check local edits against the registry.
    #[command(subcommand)]
    Schemas(SchemasCommand),
    /// Print an example event as JSON, a starting point for `produce`.
    Example(ExampleArgs),
    /// Produce one event from JSON, keyed by its order id (or SKU).
    Produce(ProduceArgs),
    /// Print a topic's messages decoded, one JSON line each.
    Tail(TailArgs),
    /// Print a gateway token (JWT) signed with CHORUS_JWT_SECRET (default: the development secret).
    Token(TokenArgs),
    /// Place orders and read their status through the gateway.
    #[command(subcommand)]
    Order(OrderCommand),
    /// Set and read stock levels through the gateway (admin token).
    #[command(subcommand)]
    Stock(StockCommand),
    /// Drive the gateway like a fleet of storefronts and measure completed sagas.
    Load(Box<LoadArgs>),
    /// Measure the ceilings of the stack (Kafka, PostgreSQL); assemble `make bench` results.
    #[command(subcommand)]
    Bench(BenchCommand),
}

#[derive(Debug, Subcommand)]
pub enum TopicsCommand {
    /// Create every topic and dead-letter topic that is missing (safe to repeat).
    Create(CreateTopicsArgs),
    /// List the chorus topics with partition and message counts.
    List,
}

#[derive(Debug, Args)]
pub struct CreateTopicsArgs {
    /// Replication factor of new topics.
    #[arg(long, env = "CHORUS_REPLICATION_FACTOR", default_value_t = 1,
          value_parser = clap::value_parser!(i32).range(1..=10))]
    pub replication_factor: i32,
}

#[derive(Debug, Subcommand)]
pub enum SchemasCommand {
    /// Set compatibility BACKWARD, then register every event schema for its topic.
    Register(SchemaSourceArgs),
    /// Check the local schemas against the registry without registering anything.
    Check(SchemaSourceArgs),
}

#[derive(Debug, Args)]
pub struct SchemaSourceArgs {
    /// Read the `.avsc` files from this directory instead of the schemas built into chorus.
    #[arg(long, env = "CHORUS_SCHEMA_DIR")]
    pub dir: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ExampleArgs {
    /// Event type, e.g. OrderPlaced.
    pub event_type: EventType,
    /// Order id to put in the example.
    #[arg(long, default_value = "order-1")]
    pub order: String,
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("input").required(true).args(["json", "file"])))]
pub struct ProduceArgs {
    /// Event type, e.g. OrderPlaced (see `chorus example <type>`).
    pub event_type: EventType,
    /// The event as JSON. Envelope fields (event_id, occurred_at, correlation_id,
    /// causation_id) may be left out; event_id then derives from the JSON text,
    /// so producing the same JSON twice is recognised downstream as a duplicate.
    #[arg(long)]
    pub json: Option<String>,
    /// Read the JSON from a file (`-` for standard input).
    #[arg(long)]
    pub file: Option<PathBuf>,
    /// Register the schema if the registry lacks it (development only).
    #[arg(long, env = "CHORUS_AUTO_REGISTER_SCHEMAS")]
    pub auto_register: bool,
}

#[derive(Debug, Args)]
pub struct TailArgs {
    /// Topic: a full name (`chorus.orders`), a short one (`orders`) or a dead-letter one (`orders.dlq`).
    pub topic: String,
    /// Start at the oldest message instead of the last `--lines` of each partition.
    #[arg(long)]
    pub from_beginning: bool,
    /// Messages to show from the end of each partition when not reading from the beginning.
    #[arg(long, default_value_t = 10)]
    pub lines: i64,
    /// Only messages keyed by this order id (or SKU).
    #[arg(long)]
    pub order: Option<String>,
    /// Keep waiting for new messages instead of stopping at the end.
    #[arg(long, short)]
    pub follow: bool,
}

#[derive(Debug, Args)]
pub struct TokenArgs {
    /// Subject: the customer id (or admin name) the token speaks for.
    #[arg(long)]
    pub sub: String,
    /// Role: customer or admin.
    #[arg(long, default_value = "customer")]
    pub role: Role,
    /// Seconds until the token expires.
    #[arg(long, default_value_t = 3600, value_parser = clap::value_parser!(u64).range(1..=31_536_000))]
    pub ttl_secs: u64,
}

/// How to reach the gateway and whom to speak for.
#[derive(Debug, Args)]
pub struct GatewayArgs {
    /// Gateway base URL.
    #[arg(
        long,
        env = "CHORUS_GATEWAY_URL",
        default_value = "http://127.0.0.1:8000"
    )]
    pub gateway: String,
    /// Bearer token; without it one is minted from CHORUS_JWT_SECRET (default:
    /// the development secret) for --sub and --role.
    #[arg(long, env = "CHORUS_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Subject of the minted token.
    #[arg(long, default_value = "dev-customer")]
    pub sub: String,
    /// Role of the minted token (default: customer for orders, admin for stock).
    #[arg(long)]
    pub role: Option<Role>,
}

#[derive(Debug, Subcommand)]
pub enum OrderCommand {
    /// Place an order and print the gateway's 202 answer.
    Place(PlaceOrderArgs),
    /// Print an order's status; with --wait, follow it to its final status.
    Status(OrderStatusArgs),
}

#[derive(Debug, Args)]
pub struct PlaceOrderArgs {
    /// A line as SKU:QUANTITY (quantity 1 when left out); repeat for more lines.
    #[arg(long = "sku", required = true, value_parser = parse_line)]
    pub lines: Vec<(String, u32)>,
    #[arg(long, default_value = "EUR")]
    pub currency: String,
    #[arg(long, default_value = "tok_ok")]
    pub payment_token: String,
    /// Idempotency key (default: a fresh random one); reuse it to retry safely.
    #[arg(long)]
    pub idempotency_key: Option<String>,
    #[command(flatten)]
    pub gateway: GatewayArgs,
}

#[derive(Debug, Args)]
pub struct OrderStatusArgs {
    pub order_id: String,
    /// Long-poll until the order is CONFIRMED or CANCELLED, printing each status change.
    #[arg(long)]
    pub wait: bool,
    #[command(flatten)]
    pub gateway: GatewayArgs,
}

#[derive(Debug, Subcommand)]
pub enum StockCommand {
    /// Set a SKU's available stock and unit price (emits StockAdjusted).
    Set(SetStockArgs),
    /// Print a SKU's stock level.
    Get(GetStockArgs),
}

#[derive(Debug, Args)]
pub struct SetStockArgs {
    pub sku: String,
    #[arg(long)]
    pub available: i64,
    /// Unit price as a decimal, e.g. 19.99.
    #[arg(long)]
    pub price: String,
    /// Product name (kept as it is when left out).
    #[arg(long)]
    pub name: Option<String>,
    #[command(flatten)]
    pub gateway: GatewayArgs,
}

#[derive(Debug, Args)]
pub struct GetStockArgs {
    pub sku: String,
    #[command(flatten)]
    pub gateway: GatewayArgs,
}

/// `chorus load`: closed-loop at `--concurrency`, or open-loop at `--rate`.
#[derive(Debug, Args)]
pub struct LoadArgs {
    /// Gateway base URL.
    #[arg(
        long,
        env = "CHORUS_GATEWAY_URL",
        default_value = "http://127.0.0.1:8000"
    )]
    pub gateway: String,
    /// Orders to place (open loop: default --rate × --duration).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
    pub orders: Option<u64>,
    /// Closed loop: orders in flight at once, each placed when another reaches its final status.
    #[arg(long, default_value_t = 32, conflicts_with = "rate",
          value_parser = clap::value_parser!(u64).range(1..=100_000))]
    pub concurrency: u64,
    /// Open loop: orders placed per second, whatever the system's answers.
    #[arg(long)]
    pub rate: Option<f64>,
    /// Open loop: seconds of offered load (sets --orders to rate × duration).
    #[arg(long, requires = "rate", conflicts_with = "orders")]
    pub duration: Option<f64>,
    /// Shares of orders that take a compensation path, e.g. `decline=0.1,out-of-stock=0.1`
    /// (declined payment; a line whose SKU has no stock). The rest should confirm.
    #[arg(long, default_value = "decline=0,out-of-stock=0", value_parser = parse_mix)]
    pub mix: Mix,
    /// Distinct customers (token subjects) the orders are spread over.
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub customers: u64,
    /// SKUs in the load's own catalogue (`LOAD-0000`, …), each with ample stock.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..=10_000))]
    pub skus: u64,
    /// Lines per order (distinct SKUs, quantity 1 each).
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u64).range(1..=50))]
    pub lines: u64,
    /// Seconds after which an order that has not reached its final status counts as timed out.
    #[arg(long, default_value_t = 120.0)]
    pub order_timeout: f64,
    /// Seconds each status long-poll may be held (the gateway allows up to 30).
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=30))]
    pub wait: u64,
    /// Write the results as JSON to this file (default: bench/results/load-<UTC time>.json).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Skip the catalogue set-up (it already exists from an earlier run with the same --skus).
    #[arg(long)]
    pub no_setup: bool,
    /// Do not measure Kafka messages and PostgreSQL transactions per saga.
    #[arg(long)]
    pub no_costs: bool,
    /// PostgreSQL URL whose role can read `pg_stat_database` (for transactions per saga).
    #[arg(
        long,
        env = "CHORUS_PG_ADMIN_URL",
        default_value = "postgres://chorus:chorus@127.0.0.1:55432/postgres",
        hide_env_values = true
    )]
    pub pg_url: String,
    /// Databases counted for transactions per saga (SQL LIKE pattern on the name).
    #[arg(long, default_value = "chorus\\_%")]
    pub pg_databases: String,
    /// A label written into the results (e.g. `closed` or `open`).
    #[arg(long)]
    pub label: Option<String>,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
}

/// Shares of the orders meant to be cancelled by a compensation path.
#[derive(Debug, Clone, Copy, PartialEq, Default, serde::Serialize)]
pub struct Mix {
    pub decline: f64,
    pub out_of_stock: f64,
}

pub fn parse_mix(text: &str) -> Result<Mix, String> {
    let mut mix = Mix::default();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (name, value) = part
            .split_once('=')
            .ok_or_else(|| format!("`{part}`: write NAME=SHARE, e.g. decline=0.1"))?;
        let share = match value.trim().strip_suffix('%') {
            Some(percent) => percent.trim().parse::<f64>().map(|p| p / 100.0),
            None => value.trim().parse::<f64>(),
        }
        .ok()
        .filter(|s| (0.0..=1.0).contains(s))
        .ok_or_else(|| format!("`{value}`: a share from 0 to 1 (or 0% to 100%)"))?;
        match name.trim() {
            "decline" => mix.decline = share,
            "out-of-stock" | "out_of_stock" | "oos" => mix.out_of_stock = share,
            other => {
                return Err(format!(
                    "unknown mix entry `{other}`: decline or out-of-stock"
                ));
            }
        }
    }
    if mix.decline + mix.out_of_stock > 1.0 + 1e-9 {
        return Err("the shares add up to more than 1".to_string());
    }
    Ok(mix)
}

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Kafka ceiling: produce then consume messages the size of an OrderPlaced on a throwaway topic.
    Kafka(BenchKafkaArgs),
    /// PostgreSQL ceiling: single-row insert + commit transactions per second on a throwaway database.
    Pg(BenchPgArgs),
    /// Assemble the results of one `make bench` run into one JSON file and a markdown table.
    Report(BenchReportArgs),
}

#[derive(Debug, Args)]
pub struct BenchKafkaArgs {
    /// Messages produced (and then consumed) in each phase.
    #[arg(long, default_value_t = 500_000, value_parser = clap::value_parser!(u64).range(1..=100_000_000))]
    pub messages: u64,
    /// Partitions of the throwaway topic.
    #[arg(long = "topic-partitions", default_value_t = 6, value_parser = clap::value_parser!(i32).range(1..=1000))]
    pub topic_partitions: i32,
    /// Write the results as JSON to this file.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct BenchPgArgs {
    /// Admin URL; the bench creates a throwaway database next to this one and drops it.
    #[arg(
        long,
        env = "CHORUS_PG_ADMIN_URL",
        default_value = "postgres://chorus:chorus@127.0.0.1:55432/postgres",
        hide_env_values = true
    )]
    pub pg_url: String,
    /// Connections committing at once (default: the services' pools together at
    /// their defaults: 4 workers × 8, the payment sandbox's 2, the gateway's write pool of 16).
    #[arg(long, default_value_t = crate::bench::pg::SERVICE_CONNECTIONS,
          value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub connections: u32,
    /// Seconds of measurement (after one second of warm-up).
    #[arg(long, default_value_t = 10.0)]
    pub seconds: f64,
    /// Write the results as JSON to this file.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct BenchReportArgs {
    /// `chorus bench kafka` results.
    #[arg(long)]
    pub kafka: PathBuf,
    /// `chorus bench pg` results.
    #[arg(long)]
    pub pg: PathBuf,
    /// `chorus load` results at maximum closed-loop throughput.
    #[arg(long)]
    pub closed: PathBuf,
    /// `chorus load` results at a fixed offered rate.
    #[arg(long)]
    pub open: PathBuf,
    /// Memory of a service as NAME=IDLE_KB:PEAK_KB (VmRSS before the load, VmHWM after); repeat.
    #[arg(long = "rss", value_parser = parse_rss)]
    pub rss: Vec<(String, u64, u64)>,
    /// Extra facts to record, as KEY=VALUE (machine, commit, durations); repeat.
    #[arg(long = "meta", value_parser = parse_meta)]
    pub meta: Vec<(String, String)>,
    /// Where to write the assembled JSON.
    #[arg(long)]
    pub out: PathBuf,
}

fn parse_rss(text: &str) -> Result<(String, u64, u64), String> {
    let bad = || format!("`{text}`: write NAME=IDLE_KB:PEAK_KB, e.g. order=10240:20480");
    let (name, kbs) = text.split_once('=').ok_or_else(bad)?;
    let (idle, peak) = kbs.split_once(':').ok_or_else(bad)?;
    Ok((
        name.to_string(),
        idle.trim().parse().map_err(|_| bad())?,
        peak.trim().parse().map_err(|_| bad())?,
    ))
}

fn parse_meta(text: &str) -> Result<(String, String), String> {
    text.split_once('=')
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .ok_or_else(|| format!("`{text}`: write KEY=VALUE"))
}

fn parse_line(text: &str) -> Result<(String, u32), String> {
    match text.rsplit_once(':') {
        None => Ok((text.to_string(), 1)),
        Some((sku, quantity)) => quantity.parse().map(|q| (sku.to_string(), q)).map_err(|_| {
            format!("`{quantity}` is not a quantity; write SKU:QUANTITY, e.g. SKU-1:2")
        }),
    }
}
