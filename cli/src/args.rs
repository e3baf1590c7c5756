//! Command-line arguments. Every connection setting can come from a flag or
//! from its `CHORUS_…` environment variable.

use std::path::PathBuf;
use std::time::Duration;

use chorus_avro::{CodecConfig, EventType, TopicCatalogue};
use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "chorus",
    version,
    about = "Inject and inspect chorus events; manage topics and schemas"
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
