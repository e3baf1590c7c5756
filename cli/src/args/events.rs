//! Arguments of the verbs that manage topics and schemas and inject or read events.

use std::path::PathBuf;

use chorus_avro::EventType;
use clap::{Args, Subcommand};

#[derive(Debug, Subcommand)]
pub enum TopicsCommand {
    /// Create every topic and dead-letter topic that is missing (safe to repeat).
    Create(CreateTopicsArgs),
    /// List the chorus topics with partition and message counts.
    List,
    /// Compare each topic's partitions, replication factor and
    /// min.insync.replicas with what `create` would make; exit 1 on any difference.
    Check(CreateTopicsArgs),
}

#[derive(Debug, Args)]
pub struct CreateTopicsArgs {
    /// Replication factor of new topics [default: min(3, brokers in the cluster)].
    #[arg(long, env = "CHORUS_REPLICATION_FACTOR",
          value_parser = clap::value_parser!(i32).range(1..=10))]
    pub replication_factor: Option<i32>,
    /// min.insync.replicas of new topics [default: 2 when the replication factor is 3 or more, else the broker's].
    #[arg(long, env = "CHORUS_MIN_INSYNC_REPLICAS",
          value_parser = clap::value_parser!(i32).range(1..=10))]
    pub min_insync_replicas: Option<i32>,
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
