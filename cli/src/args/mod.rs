//! Command-line arguments. Every connection setting can come from a flag or
//! from its `CHORUS_…` environment variable; Kafka security and registry
//! credentials come from the environment for every verb alike.

mod acls;
mod chaos;
mod events;
mod gateway;
mod measure;
mod ops;

use std::time::Duration;

use chorus_avro::{CodecConfig, RegistrySettings, TopicCatalogue};
use chorus_platform::{Env, KafkaSettings, registry::registry_with_url};
use clap::{Args, Parser, Subcommand};

pub use acls::*;
pub use chaos::*;
pub use events::*;
pub use gateway::*;
pub use measure::*;
pub use ops::*;

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
    /// Derive the Kafka ACLs of each service and the operator from the topic catalogue and apply them.
    #[command(subcommand)]
    Acls(AclsCommand),
    /// Print an example event as JSON, a starting point for `produce`.
    Example(ExampleArgs),
    /// Produce one event from JSON, keyed by its order id (or SKU).
    Produce(ProduceArgs),
    /// Print a topic's messages decoded, one JSON line each.
    Tail(TailArgs),
    /// List, show and redrive dead letters.
    #[command(subcommand)]
    Dlq(DlqCommand),
    /// Print one order's whole saga: every event, its status, its notifications.
    Trace(TraceArgs),
    /// Find sagas that have not ended.
    #[command(subcommand)]
    Sagas(SagasCommand),
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
    /// Poison the input topics and check the saga's invariants (`make chaos`).
    #[command(subcommand)]
    Chaos(ChaosCommand),
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn every_verb_is_well_formed() {
        super::Cli::command().debug_assert();
    }

    fn parse(args: &[&str]) -> super::Cli {
        use clap::Parser;
        super::Cli::try_parse_from(args).unwrap()
    }

    #[test]
    fn acls_apply_takes_a_dry_run_flag() {
        use super::{AclsCommand, Command};
        let Command::Acls(AclsCommand::Apply(args)) =
            parse(&["chorus", "acls", "apply", "--dry-run"]).command
        else {
            panic!("not acls apply");
        };
        assert!(args.dry_run);
        let Command::Acls(AclsCommand::Apply(args)) = parse(&["chorus", "acls", "apply"]).command
        else {
            panic!("not acls apply");
        };
        assert!(!args.dry_run);
    }

    #[test]
    fn topics_create_and_check_fit_the_cluster_unless_told() {
        use super::{Command, TopicsCommand};
        // Unset in the test environment, so the defaults are the cluster's.
        let Command::Topics(TopicsCommand::Create(args)) =
            parse(&["chorus", "topics", "create"]).command
        else {
            panic!("not topics create");
        };
        if std::env::var_os("CHORUS_REPLICATION_FACTOR").is_none() {
            assert_eq!(args.replication_factor, None);
        }
        let Command::Topics(TopicsCommand::Check(args)) = parse(&[
            "chorus",
            "topics",
            "check",
            "--replication-factor",
            "1",
            "--min-insync-replicas",
            "1",
        ])
        .command
        else {
            panic!("not topics check");
        };
        assert_eq!(args.replication_factor, Some(1));
        assert_eq!(args.min_insync_replicas, Some(1));
    }
}
