//! Arguments of the operator verbs: dead letters, saga traces, stuck sagas,
//! and where the read models they consult live.

use std::time::Duration;

use clap::{Args, Subcommand};

/// The order worker's read model (view `order_status`), as the gateway reads it.
pub const DEFAULT_ORDER_DB_URL: &str =
    "postgres://chorus_gateway_ro:chorus_gateway_ro@127.0.0.1:55432/chorus_order";
/// The notification worker's database (table `deliveries`).
pub const DEFAULT_NOTIFICATION_DB_URL: &str =
    "postgres://chorus_notification:chorus_notification@127.0.0.1:55432/chorus_notification";

#[derive(Debug, Args)]
pub struct OrderDbArgs {
    /// PostgreSQL URL of the order worker's read model (view `order_status`).
    #[arg(id = "order_db_url", long = "order-db", env = "CHORUS_ORDER_DB_URL", default_value = DEFAULT_ORDER_DB_URL,
          hide_env_values = true, hide_default_value = true)]
    pub url: String,
}

#[derive(Debug, Args)]
pub struct NotificationDbArgs {
    /// PostgreSQL URL of the notification worker's database (table `deliveries`).
    #[arg(id = "notification_db_url", long = "notification-db", env = "CHORUS_NOTIFICATION_DB_URL",
          default_value = DEFAULT_NOTIFICATION_DB_URL, hide_env_values = true, hide_default_value = true)]
    pub url: String,
}

#[derive(Debug, Subcommand)]
pub enum DlqCommand {
    /// Count the dead letters of a dead-letter topic and print a line for each.
    List(DlqListArgs),
    /// Print one dead letter, decoded when possible (raw bytes as hex otherwise).
    Show(DlqShowArgs),
    /// Republish dead letters to their original topic (key, value and the event's own headers).
    Redrive(DlqRedriveArgs),
}

#[derive(Debug, Args)]
pub struct DlqListArgs {
    /// Dead-letter topic: `orders.dlq`, or a full name (`chorus.orders.dlq`).
    pub topic: String,
    /// One JSON document instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct DlqShowArgs {
    /// Dead-letter topic: `orders.dlq`, or a full name (`chorus.orders.dlq`).
    pub topic: String,
    /// The dead letter's place, as PARTITION:OFFSET (e.g. `0:17`).
    #[arg(value_parser = parse_position)]
    pub at: Position,
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("which").required(true).args(["all", "at"])))]
pub struct DlqRedriveArgs {
    /// Dead-letter topic: `orders.dlq`, or a full name (`chorus.orders.dlq`).
    pub topic: String,
    /// Every message now in the dead-letter topic.
    #[arg(long)]
    pub all: bool,
    /// One message, as PARTITION:OFFSET; repeat for more.
    #[arg(long, value_parser = parse_position)]
    pub at: Vec<Position>,
    /// Print what would be sent without sending anything.
    #[arg(long)]
    pub dry_run: bool,
}

/// A message's place in a topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Position {
    pub partition: i32,
    pub offset: i64,
}

impl std::fmt::Display for Position {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.partition, self.offset)
    }
}

pub fn parse_position(text: &str) -> Result<Position, String> {
    let bad = || format!("`{text}`: write PARTITION:OFFSET, e.g. 0:17");
    let (partition, offset) = text.split_once(':').ok_or_else(bad)?;
    let partition: i32 = partition.trim().parse().map_err(|_| bad())?;
    let offset: i64 = offset.trim().parse().map_err(|_| bad())?;
    if partition < 0 || offset < 0 {
        return Err(bad());
    }
    Ok(Position { partition, offset })
}

#[derive(Debug, Args)]
pub struct TraceArgs {
    pub order_id: String,
    /// One JSON document instead of the timeline and tables.
    #[arg(long)]
    pub json: bool,
    /// How long before the order's creation in the read model to start reading each topic.
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    pub before: Duration,
    /// How long after the order's last recorded activity to keep reading each topic.
    #[arg(long, default_value = "120s", value_parser = parse_duration)]
    pub after: Duration,
    /// Read every partition instead of the one the order id hashes to (for
    /// messages produced with another partitioner than librdkafka's default).
    #[arg(long)]
    pub all_partitions: bool,
    #[command(flatten)]
    pub order_db: OrderDbArgs,
    #[command(flatten)]
    pub notification_db: NotificationDbArgs,
}

#[derive(Debug, Subcommand)]
pub enum SagasCommand {
    /// List every order not yet CONFIRMED or CANCELLED that is older than a threshold.
    Stuck(StuckArgs),
}

#[derive(Debug, Args)]
pub struct StuckArgs {
    /// Only orders created longer ago than this (e.g. `90s`, `5m`, `1h`).
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    pub older_than: Duration,
    /// One JSON document instead of a table.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub order_db: OrderDbArgs,
}

/// `250ms`, `60s`, `5m`, `2h`, or a bare number of seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let bad = || format!("`{text}`: write a duration such as 500ms, 60s, 5m or 2h");
    let value: f64 = number.parse().map_err(|_| bad())?;
    let seconds = match unit.trim() {
        "ms" => value / 1000.0,
        "" | "s" => value,
        "m" | "min" => value * 60.0,
        "h" => value * 3600.0,
        "d" => value * 86_400.0,
        _ => return Err(bad()),
    };
    Duration::try_from_secs_f64(seconds).map_err(|_| bad())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_take_the_usual_units() {
        assert_eq!(parse_duration("60s"), Ok(Duration::from_secs(60)));
        assert_eq!(parse_duration("90"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("1.5h"), Ok(Duration::from_secs(5400)));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("5 parsecs").is_err());
        assert!(parse_duration("-1s").is_err());
    }

    #[test]
    fn positions_are_partition_colon_offset() {
        assert_eq!(
            parse_position("2:17"),
            Ok(Position {
                partition: 2,
                offset: 17
            })
        );
        assert!(parse_position("17").is_err());
        assert!(parse_position("a:1").is_err());
        assert!(parse_position("-1:3").is_err());
    }
}
