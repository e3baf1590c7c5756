//! Command-line arguments. Every connection setting can come from a flag or
//! from its `CHORUS_…` environment variable.

use std::path::PathBuf;
use std::time::Duration;

use chorus_avro::{CodecConfig, EventType, TopicCatalogue};
use chorus_gateway::auth::Role;
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

    pub fn codec_config(&self, auto_register: bool) -> CodecConfig {
        CodecConfig {
            registry_url: self.registry.clone(),
            auto_register,
            timeout: self.timeout(),
        }
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

fn parse_line(text: &str) -> Result<(String, u32), String> {
    match text.rsplit_once(':') {
        None => Ok((text.to_string(), 1)),
        Some((sku, quantity)) => quantity.parse().map(|q| (sku.to_string(), q)).map_err(|_| {
            format!("`{quantity}` is not a quantity; write SKU:QUANTITY, e.g. SKU-1:2")
        }),
    }
}
