//! Arguments of `chorus chaos poison|check`, the verbs `make chaos` drives.

use std::path::PathBuf;

use clap::{Args, Subcommand};

#[derive(Debug, Subcommand)]
pub enum ChaosCommand {
    /// Produce poison messages spread over every worker input topic; print or write what was sent.
    Poison(PoisonArgs),
    /// Read the topics and databases and check the saga's invariants; non-zero exit names each one violated.
    Check(CheckArgs),
}

#[derive(Debug, Args)]
pub struct PoisonArgs {
    /// Poison messages to send, spread over the topics and kinds in turn.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=10_000_000))]
    pub count: u32,
    /// Write what was sent as JSON to this file (default: print it).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// The local stack's admin role on each service's database.
fn admin_url(database: &str) -> String {
    format!("postgres://chorus:chorus@127.0.0.1:55432/{database}")
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// What `chaos poison --out` wrote: each message must be dead-lettered or rejected.
    #[arg(long)]
    pub poison: Option<PathBuf>,
    /// One JSON document instead of the table.
    #[arg(long)]
    pub json: bool,
    /// UTC milliseconds from which the campaign only stopped and restarted
    /// services: every order accepted from then on must end as its input
    /// designed (no `timeout`, no `payment_unavailable`).
    #[arg(long)]
    pub designed_fates_from: Option<i64>,
    /// The gateway's database (`accepted_orders`).
    #[arg(id = "chaos_gateway_db", long = "gateway-db", env = "CHORUS_GATEWAY_DB_URL",
          default_value_t = admin_url("chorus_gateway"), hide_env_values = true, hide_default_value = true)]
    pub gateway_db: String,
    /// The order worker's database (view `order_status`).
    #[arg(id = "chaos_order_db", long = "order-db", env = "CHORUS_ORDER_DB_URL",
          default_value_t = admin_url("chorus_order"), hide_env_values = true, hide_default_value = true)]
    pub order_db: String,
    /// The inventory worker's database (view `stock_levels`).
    #[arg(id = "chaos_inventory_db", long = "inventory-db", env = "CHORUS_INVENTORY_DB_URL",
          default_value_t = admin_url("chorus_inventory"), hide_env_values = true, hide_default_value = true)]
    pub inventory_db: String,
    /// The payment worker's database (`sandbox_charges`, `sandbox_calls`).
    #[arg(id = "chaos_payment_db", long = "payment-db", env = "CHORUS_PAYMENT_DB_URL",
          default_value_t = admin_url("chorus_payment"), hide_env_values = true, hide_default_value = true)]
    pub payment_db: String,
    /// The notification worker's database (`deliveries`).
    #[arg(id = "chaos_notification_db", long = "notification-db", env = "CHORUS_NOTIFICATION_DB_URL",
          default_value_t = admin_url("chorus_notification"), hide_env_values = true, hide_default_value = true)]
    pub notification_db: String,
}
