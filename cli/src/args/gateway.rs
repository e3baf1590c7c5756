//! Arguments of the verbs that talk to the gateway.

use chorus_platform::token::Role;
use clap::{Args, Subcommand};

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
    /// List orders newest first, one JSON line each: the --sub customer's own,
    /// or with --role admin anyone's (--customer: one customer's).
    List(ListOrdersArgs),
    /// Ask to cancel an order; prints the order as the gateway answers it (202).
    Cancel(CancelOrderArgs),
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

#[derive(Debug, Args)]
pub struct ListOrdersArgs {
    /// Only orders with this status: PENDING, RESERVED, CONFIRMED or CANCELLED.
    #[arg(long)]
    pub status: Option<String>,
    /// Only orders placed at or after this RFC 3339 time, e.g. 2026-12-01T00:00:00Z.
    #[arg(long)]
    pub since: Option<String>,
    /// Orders per page, 1 to 100 (the gateway's default: 20).
    #[arg(long)]
    pub limit: Option<u32>,
    /// With --role admin: only this customer's orders.
    #[arg(long)]
    pub customer: Option<String>,
    /// Start after the page that printed this `next` (with the same filters).
    #[arg(long)]
    pub cursor: Option<String>,
    /// Follow `next` to the end of the list instead of stopping after one page.
    #[arg(long)]
    pub all: bool,
    #[command(flatten)]
    pub gateway: GatewayArgs,
}

#[derive(Debug, Args)]
pub struct CancelOrderArgs {
    pub order_id: String,
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
